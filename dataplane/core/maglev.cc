#include "dataplane/core/maglev.h"

#include <algorithm>

#include "dataplane/core/hash.h"

namespace onramp::dp {
namespace {

constexpr uint64_t kOffsetSeed = 0x6f6e72616d702d6fULL;  // "onramp-o"
constexpr uint64_t kSkipSeed = 0x6f6e72616d702d73ULL;    // "onramp-s"

struct Permutation {
  uint32_t offset;
  uint32_t skip;
  uint16_t index;  // into the caller's span
  uint32_t weight;
};

// A backend's place in its permutation while the table fills.
struct Cursor {
  uint32_t pos;  // its next permutation entry not yet tried
  uint32_t skip;
  uint32_t inverse_skip;  // skip^-1 mod size, once ranking needs it
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

// What one build needs besides the table, kept by each thread from one
// build to the next: a thread building many tables allocates nothing after
// its first.
struct Scratch {
  std::vector<Permutation> perms;
  std::vector<Cursor> cursors;
  std::vector<uint64_t> credit;
  std::vector<uint16_t> turns;
  std::vector<uint64_t> taken;
  std::vector<uint32_t> empty;
};

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
  thread_local Scratch scratch;
  const auto size = static_cast<uint32_t>(table.size());
  std::fill(table.begin(), table.end(), kMaglevEmpty);
  std::vector<Permutation>& perms = scratch.perms;
  perms.clear();
  uint32_t max_weight = 0;
  for (size_t i = 0; i < backends.size(); ++i) {
    const auto& b = backends[i];
    if (b.weight == 0) continue;
    uint64_t h1 = hash_words(b.address.bytes.data(), 16, kOffsetSeed);
    uint64_t h2 = hash_words(b.address.bytes.data(), 16, kSkipSeed);
    perms.push_back({.offset = static_cast<uint32_t>(h1 % size),
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
  const size_t n = perms.size();

  // Who takes each turn depends on the weights alone, not on which slots are
  // taken: each round every backend earns its weight in credit, and one slot
  // costs max_weight, so a backend of weight w takes w/max_weight turns a
  // round and its share of the table is its share of the total weight. The
  // whole order is written out first, without a branch on the credit (which
  // no predictor could guess).
  std::vector<uint64_t>& credit = scratch.credit;
  credit.assign(n, 0);
  std::vector<uint16_t>& turns = scratch.turns;
  turns.resize(size + n);  // the last round may run past `size`
  for (uint32_t t = 0; t < size;) {
    for (size_t i = 0; i < n; ++i) {
      uint64_t c = credit[i] + perms[i].weight;
      const bool turn = c >= max_weight;
      credit[i] = c - (turn ? max_weight : 0);
      turns[t] = static_cast<uint16_t>(i);
      t += turn;
    }
  }

  std::vector<Cursor>& cursors = scratch.cursors;
  cursors.resize(n);
  for (size_t i = 0; i < n; ++i)
    cursors[i] = {.pos = perms[i].offset, .skip = perms[i].skip, .inverse_skip = 0};

  // A permutation is offset, offset + skip, offset + 2 skip, ... mod size;
  // a turn takes the first entry from `pos` on whose slot is empty. Probing
  // steps through it by one addition a try, no division, reading a bitmap of
  // taken slots (8 KiB for 65 537: it stays in L1, the table does not).
  std::vector<uint64_t>& taken = scratch.taken;
  taken.assign((size + 63) / 64, 0);
  auto probe = [&](Cursor& c) {
    uint32_t slot;
    do {
      slot = c.pos;
      c.pos += c.skip;
      if (c.pos >= size) c.pos -= size;
    } while (taken[slot >> 6] >> (slot & 63) & 1);
    taken[slot >> 6] |= uint64_t{1} << (slot & 63);
    return slot;
  };
  // A probe costs size/empty tries, so the last slots are most of the work
  // (a whole table takes about size·ln(size) tries). With few left, a turn
  // finds the same slot by ranking every empty slot by its place in the
  // permutation after `pos`, (slot - pos) / skip mod size, and taking the
  // first.
  std::vector<uint32_t>& empty = scratch.empty;
  empty.clear();
  auto rank = [&](Cursor& c) {
    if (empty.empty()) {
      for (uint32_t s = 0; s < size; ++s)
        if (table[s] == kMaglevEmpty) empty.push_back(s);
    }
    if (c.inverse_skip == 0) c.inverse_skip = inverse_mod_prime(c.skip, size);
    size_t best = 0;
    uint64_t best_place = UINT64_MAX;
    for (size_t i = 0; i < empty.size(); ++i) {
      uint64_t ahead = empty[i] >= c.pos ? empty[i] - c.pos : empty[i] + size - c.pos;
      uint64_t place = ahead * c.inverse_skip % size;
      if (place < best_place) best_place = place, best = i;
    }
    uint32_t slot = empty[best];
    empty[best] = empty.back();
    empty.pop_back();
    c.pos = static_cast<uint32_t>((uint64_t{slot} + c.skip) % size);
    return slot;
  };

  const uint32_t probed = size > rank_below ? size - rank_below : 0;
  for (uint32_t t = 0; t < probed; ++t) {
    const uint16_t i = turns[t];
    table[probe(cursors[i])] = perms[i].index;
  }
  for (uint32_t t = probed; t < size; ++t) {
    const uint16_t i = turns[t];
    table[rank(cursors[i])] = perms[i].index;
  }
}

}  // namespace onramp::dp
