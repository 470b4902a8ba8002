// Weighted Maglev lookup tables (Eisenbud et al., NSDI 2016): each backend
// fills table slots in the order of its own permutation, taking turns in
// proportion to its weight. The same backends give the same table on every PoP,
// and removing one of N backends moves about 1/N of the slots.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/ip_address.h"
#include "common/table_spec.h"

namespace onramp::dp {

struct MaglevBackend {
  IpAddress address;    // identity: decides the permutation
  uint32_t weight = 0;  // 0 takes no slot
};

inline constexpr uint16_t kMaglevEmpty = 0xffff;

// Returns `size` slots, each the index into `backends` of the slot's owner;
// all kMaglevEmpty when no backend has weight. `size` must be prime and the
// backends fewer than 65535. The result does not depend on their order.
std::vector<uint16_t> build_maglev(std::span<const MaglevBackend> backends, uint32_t size);
// The same into `table` (its size is the table size).
void build_maglev(std::span<const MaglevBackend> backends, std::span<uint16_t> table);

// How many empty slots are left when filling switches from probing to ranking
// (see maglev.cc). Either way gives the same table; it decides only the cost.
inline constexpr uint32_t kMaglevRankBelow = 128;
void build_maglev(std::span<const MaglevBackend> backends, std::span<uint16_t> table,
                  uint32_t rank_below);

}  // namespace onramp::dp
