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
  uint32_t inverse_skip = 0;  // skip^-1 mod size, once needed
};

// a^-1 mod p for a prime p, as a^(p-2) (Fermat).
uint32_t inverse_mod_prime(uint32_t a, uint32_t p) {
  uint64_t result = 1, base = a % p;
  for (uint32_t e = p - 2; e != 0; e >>= 1) {
    if (e & 1) result = result * base % p;
    base = base * base % p;
  }
  return static_cast<uint32_t>(result);
}

}  // namespace

std::vector<uint16_t> build_maglev(std::span<const MaglevBackend> backends, uint32_t size) {
  std::vector<uint16_t> table(size);
  build_maglev(backends, table);
  return table;
}

void build_maglev(std::span<const MaglevBackend> backends, std::span<uint16_t> table) {
  build_maglev(backends, table, kMaglevRankBelow);
}

void build_maglev(std::span<const MaglevBackend> backends, std::span<uint16_t> table,
                  uint32_t rank_below) {
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

  // Its permutation is offset, offset + skip, offset + 2 skip, ... mod
  // size; `pos` is the next entry not yet tried. Probing steps through it to
  // the first empty slot by one addition a try, no division, reading a bitmap
  // of taken slots (8 KiB for 65 537: it stays in L1, the table does not).
  std::vector<uint64_t> taken((size + 63) / 64);
  auto probe = [&](Permutation& p) {
    uint32_t slot;
    do {
      slot = p.pos;
      p.pos += p.skip;
      if (p.pos >= size) p.pos -= size;
    } while (taken[slot >> 6] >> (slot & 63) & 1);
    taken[slot >> 6] |= uint64_t{1} << (slot & 63);
    return slot;
  };
  // A probe costs size/empty tries, so the last slots are most of the work
  // (a whole table takes about size·ln(size) tries). With few left, a turn
  // finds the same slot by ranking every empty slot by its place in the
  // permutation after `pos`, (slot - pos) / skip mod size, and taking the
  // first.
  std::vector<uint32_t> empty;
  auto rank = [&](Permutation& p) {
    if (empty.empty()) {
      for (uint32_t s = 0; s < size; ++s)
        if (table[s] == kMaglevEmpty) empty.push_back(s);
    }
    if (p.inverse_skip == 0) p.inverse_skip = inverse_mod_prime(p.skip, size);
    size_t best = 0;
    uint64_t best_place = UINT64_MAX;
    for (size_t i = 0; i < empty.size(); ++i) {
      uint64_t ahead = empty[i] >= p.pos ? empty[i] - p.pos : empty[i] + size - p.pos;
      uint64_t place = ahead * p.inverse_skip % size;
      if (place < best_place) best_place = place, best = i;
    }
    uint32_t slot = empty[best];
    empty[best] = empty.back();
    empty.pop_back();
    p.pos = static_cast<uint32_t>((uint64_t{slot} + p.skip) % size);
    return slot;
  };

  // Each round every backend earns its weight in credit; one slot costs
  // max_weight. A backend of weight w thus fills w/max_weight slots a round,
  // and its share of the table is its share of the total weight.
  uint32_t filled = 0;
  while (true) {
    for (auto& p : perms) {
      p.credit += p.weight;
      if (p.credit < max_weight) continue;
      p.credit -= max_weight;
      table[size - filled > rank_below ? probe(p) : rank(p)] = p.index;
      if (++filled == size) return;
    }
  }
}

}  // namespace onramp::dp
