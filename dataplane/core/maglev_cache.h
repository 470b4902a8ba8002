// Maglev tables kept across restarts. A restarted dataplane receives the
// table it ran before (from its agent, or the same --table file), and most of
// its build is Maglev fills whose inputs have not changed. The dataplane
// writes the Maglev tables in force to a file after each table swap; at start
// it reads that file back, and a build takes a table from it instead of
// filling one whenever the inputs (table size, backend addresses and weights,
// in order) are exactly those it was written with.
//
// The file is a cache, never a source of truth: it is checked whole (length,
// format, a hash over everything) and one of its tables is built again and
// compared, so a file written by a build whose Maglev population differs is
// refused rather than used. A refused or missing file costs only the time a
// build from scratch takes.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/status.h"
#include "dataplane/core/maglev.h"

namespace onramp::dp {

// One Maglev table and the inputs it was filled from.
struct MaglevCacheEntry {
  std::span<const MaglevBackend> backends;
  std::span<const uint16_t> slots;  // its size is the table size
};

// The file's bytes for these tables. Entries with the same inputs are
// written once.
std::string encode_maglev_cache(std::span<const MaglevCacheEntry> tables);

class MaglevCache {
 public:
  // Parses and checks a file's bytes (encode_maglev_cache's). The error says
  // why the file is not used.
  static Result<MaglevCache> decode(std::string bytes);
  // The same over bytes that `owner` keeps valid (a mapping of the file).
  static Result<MaglevCache> decode(std::string_view bytes, std::shared_ptr<const void> owner);

  // The table filled from exactly these inputs, or an empty span.
  std::span<const uint16_t> find(std::span<const MaglevBackend> backends, uint32_t size) const;
  size_t tables() const { return index_.size(); }

 private:
  std::shared_ptr<const void> owner_;  // of the bytes the index points into
  // The inputs as the file spells them (table size, then each backend's
  // address and weight) -> the slots; both views into the bytes owner_ keeps.
  std::unordered_map<std::string_view, std::span<const uint16_t>> index_;
};

}  // namespace onramp::dp
