#include "dataplane/core/maglev.h"

#include <algorithm>
#include <numeric>

#include "dataplane/core/hash.h"

namespace onramp::dp {
namespace {

constexpr uint64_t kOffsetSeed = 0x6f6e72616d702d6fULL;  // "onramp-o"
constexpr uint64_t kSkipSeed = 0x6f6e72616d702d73ULL;    // "onramp-s"

struct Permutation {
  uint32_t pos;  // its next permutation entry: offset + tried * skip, mod size
  uint32_t skip;
  uint64_t credit = 0;  // weighted turns accumulated, see build_maglev
  uint16_t index;       // into the caller's span
  uint32_t weight;
};

}  // namespace

bool is_prime(uint32_t n) {
  if (n < 2) return false;
  for (uint32_t d = 2; d * d <= n; ++d)
    if (n % d == 0) return false;
  return true;
}

std::vector<uint16_t> build_maglev(std::span<const MaglevBackend> backends, uint32_t size) {
  std::vector<uint16_t> table(size);
  build_maglev(backends, table);
  return table;
}

void build_maglev(std::span<const MaglevBackend> backends, std::span<uint16_t> table) {
  const auto size = static_cast<uint32_t>(table.size());
  std::fill(table.begin(), table.end(), kMaglevEmpty);
  std::vector<Permutation> perms;
  uint32_t max_weight = 0;
  for (size_t i = 0; i < backends.size(); ++i) {
    const auto& b = backends[i];
    if (b.weight == 0) continue;
    uint64_t h1 = hash_words(b.address.bytes.data(), 16, kOffsetSeed);
    uint64_t h2 = hash_words(b.address.bytes.data(), 16, kSkipSeed);
    perms.push_back({.pos = static_cast<uint32_t>(h1 % size),
                     .skip = static_cast<uint32_t>(h2 % (size - 1)) + 1,
                     .index = static_cast<uint16_t>(i),
                     .weight = b.weight});
    max_weight = std::max(max_weight, b.weight);
  }
  if (perms.empty()) return;
  // Turn order is by address, never by position in the config, so every PoP
  // builds the same table from the same set.
  std::sort(perms.begin(), perms.end(), [&](const Permutation& a, const Permutation& b) {
    return backends[a.index].address < backends[b.index].address;
  });

  // Each round every backend earns its weight in credit; one slot costs
  // max_weight. A backend of weight w thus fills w/max_weight slots a round,
  // and its share of the table is its share of the total weight.
  uint32_t filled = 0;
  while (true) {
    for (auto& p : perms) {
      p.credit += p.weight;
      if (p.credit < max_weight) continue;
      p.credit -= max_weight;
      // Its permutation is offset, offset + skip, offset + 2 skip, ... mod
      // size: stepped by one addition, no division.
      uint32_t slot;
      do {
        slot = p.pos;
        p.pos += p.skip;
        if (p.pos >= size) p.pos -= size;
      } while (table[slot] != kMaglevEmpty);
      table[slot] = p.index;
      if (++filled == size) return;
    }
  }
}

}  // namespace onramp::dp
