#include "dataplane/core/maglev_cache.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <unordered_set>

#include "dataplane/core/hash.h"

namespace onramp::dp {
namespace {

// Layout, in the machine's byte order (the file stays on the machine that
// wrote it):
//   "ONRMAGC1", u32 format, u32 tables,
//   per table: u32 size, u32 backends, per backend (16-byte address, u32
//   weight), size x u16 slots;
//   zeros to a multiple of 8, then u64 checksum() of all that precedes.
constexpr char kMagic[8] = {'O', 'N', 'R', 'M', 'A', 'G', 'C', '1'};
// Bumped when the Maglev population changes (the check in decode catches a
// change that forgot to).
constexpr uint32_t kFormat = 1;
constexpr uint64_t kSeed = 0x6d61676c65766361ULL;  // "maglevca"
constexpr size_t kBackendBytes = 16 + 4;

void put32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }

// The inputs as the file spells them: the lookup key.
void append_key(std::string& out, std::span<const MaglevBackend> backends, uint32_t size) {
  put32(out, size);
  put32(out, static_cast<uint32_t>(backends.size()));
  for (const MaglevBackend& b : backends) {
    out.append(reinterpret_cast<const char*>(b.address.bytes.data()), 16);
    put32(out, b.weight);
  }
}

// Over a multiple of 8 bytes. Four lanes whose multiplies overlap: a file
// of 130 MB is read at memory speed, where one chain (hash_words) spends
// ~60 ms on its multiplies' latency.
uint64_t checksum(std::string_view body) {
  const auto* p = reinterpret_cast<const uint8_t*>(body.data());
  const size_t n = body.size();
  constexpr uint64_t kOdd = 0x9e3779b97f4a7c15ULL;
  uint64_t lane[4] = {kSeed, kSeed + 1, kSeed + 2, kSeed + 3};
  size_t i = 0;
  for (; i + 32 <= n; i += 32)
    for (size_t k = 0; k < 4; ++k)
      lane[k] = std::rotl((lane[k] ^ load_le64(p + i + 8 * k)) * kOdd, 29);
  for (; i < n; i += 8) lane[0] = std::rotl((lane[0] ^ load_le64(p + i)) * kOdd, 29);
  return hash_mix(hash_mix(lane[0] ^ n) ^ hash_mix(lane[1]) ^ std::rotl(hash_mix(lane[2]), 17) ^
                  std::rotl(hash_mix(lane[3]), 41));
}

// Reads from a byte string, refusing to run past its end.
class Reader {
 public:
  explicit Reader(std::string_view s) : s_(s) {}
  bool u32(uint32_t& v) {
    if (s_.size() - at_ < 4) return false;
    std::memcpy(&v, s_.data() + at_, 4);
    at_ += 4;
    return true;
  }
  // `n` bytes from here, or nullptr when fewer are left.
  const char* take(size_t n) {
    if (s_.size() - at_ < n) return nullptr;
    const char* p = s_.data() + at_;
    at_ += n;
    return p;
  }
  size_t at() const { return at_; }

 private:
  std::string_view s_;
  size_t at_ = 0;
};

}  // namespace

std::string encode_maglev_cache(std::span<const MaglevCacheEntry> tables) {
  std::string out(kMagic, sizeof kMagic);
  put32(out, kFormat);
  const size_t count_at = out.size();
  put32(out, 0);
  uint32_t written = 0;
  std::unordered_set<std::string> seen;
  for (const MaglevCacheEntry& t : tables) {
    std::string key;
    append_key(key, t.backends, static_cast<uint32_t>(t.slots.size()));
    if (!seen.insert(key).second) continue;
    out += key;
    out.append(reinterpret_cast<const char*>(t.slots.data()), t.slots.size_bytes());
    ++written;
  }
  std::memcpy(out.data() + count_at, &written, 4);
  out.append((8 - out.size() % 8) % 8, '\0');
  const uint64_t sum = checksum(out);
  out.append(reinterpret_cast<const char*>(&sum), 8);
  return out;
}

Result<MaglevCache> MaglevCache::decode(std::string bytes) {
  auto owned = std::make_shared<const std::string>(std::move(bytes));
  return decode(*owned, owned);
}

Result<MaglevCache> MaglevCache::decode(std::string_view all, std::shared_ptr<const void> owner) {
  MaglevCache c;
  c.owner_ = std::move(owner);
  if (all.size() < sizeof kMagic + 16 || all.size() % 8 != 0 ||
      std::memcmp(all.data(), kMagic, sizeof kMagic) != 0)
    return error("not a Maglev cache file");
  uint64_t sum;
  std::memcpy(&sum, all.data() + all.size() - 8, 8);
  if (checksum(all.substr(0, all.size() - 8)) != sum)
    return error("Maglev cache file damaged: its checksum does not match");
  Reader r(all.substr(0, all.size() - 8));
  r.take(sizeof kMagic);
  uint32_t format = 0, count = 0;
  if (!r.u32(format) || !r.u32(count)) return error("Maglev cache file cut short");
  if (format != kFormat)
    return error("Maglev cache file of format " + std::to_string(format) + ", this build reads " +
                 std::to_string(kFormat));
  // The first table with backends, to be filled again below.
  std::vector<MaglevBackend> probe_backends;
  std::span<const uint16_t> probe_slots;
  for (uint32_t i = 0; i < count; ++i) {
    const size_t key_at = r.at();
    uint32_t size = 0, n = 0;
    if (!r.u32(size) || !r.u32(n) || size == 0 || n >= kMaglevEmpty)
      return error("Maglev cache file: table " + std::to_string(i) + " is malformed");
    const char* backends = r.take(size_t{n} * kBackendBytes);
    const char* slots = backends ? r.take(size_t{size} * 2) : nullptr;
    if (!slots) return error("Maglev cache file cut short");
    std::span<const uint16_t> table(reinterpret_cast<const uint16_t*>(slots), size);
    for (uint16_t s : table)
      if (s != kMaglevEmpty && s >= n)
        return error("Maglev cache file: table " + std::to_string(i) +
                     " names a backend it does not have");
    if (probe_backends.empty() && n > 0) {
      for (uint32_t b = 0; b < n; ++b) {
        MaglevBackend mb;
        std::memcpy(mb.address.bytes.data(), backends + b * kBackendBytes, 16);
        std::memcpy(&mb.weight, backends + b * kBackendBytes + 16, 4);
        probe_backends.push_back(mb);
      }
      probe_slots = table;
    }
    c.index_.emplace(all.substr(key_at, 8 + size_t{n} * kBackendBytes), table);
  }
  if (!probe_backends.empty()) {
    // The tables are only as good as the population that filled them.
    std::vector<uint16_t> again = build_maglev(probe_backends, probe_slots.size());
    if (!std::equal(again.begin(), again.end(), probe_slots.begin(), probe_slots.end()))
      return error("Maglev cache file was filled by another Maglev population than this build's");
  }
  return c;
}

std::span<const uint16_t> MaglevCache::find(std::span<const MaglevBackend> backends,
                                            uint32_t size) const {
  std::string key;
  append_key(key, backends, size);
  auto it = index_.find(key);
  return it == index_.end() ? std::span<const uint16_t>{} : it->second;
}

}  // namespace onramp::dp
