// The hash behind flow keys, Maglev permutations and GUE entropy. It must give
// the same value on every PoP and every CPU, so a flow that BGP moves to another
// PoP picks the same endpoint there: plain 64-bit multiply/xor-shift arithmetic,
// no CPU-specific instructions, little-endian loads made explicit.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>

namespace onramp::dp {

constexpr uint64_t hash_mix(uint64_t x) {
  // The finaliser of SplitMix64 (Steele, Lea, Flood 2014): full avalanche.
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

inline uint64_t load_le64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof v);  // one load; the byte order is made explicit below
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

// The two 64-bit halves of a * b, xor-ed: one multiply that spreads every
// input bit over the whole result, high bits into low ones too. For hashes
// that stay inside one process (FlowTable::index_hash), not the portable one
// above.
constexpr uint64_t mul_fold(uint64_t a, uint64_t b) {
  const unsigned __int128 p = static_cast<unsigned __int128>(a) * b;
  return static_cast<uint64_t>(p) ^ static_cast<uint64_t>(p >> 64);
}

// Hashes `len` bytes; len must be a multiple of 8 (flow keys and addresses are).
inline uint64_t hash_words(const uint8_t* p, size_t len, uint64_t seed) {
  uint64_t h = seed ^ (len * 0x9e3779b97f4a7c15ULL);
  for (size_t i = 0; i < len; i += 8) h = hash_mix(h ^ load_le64(p + i)) + 0x9e3779b97f4a7c15ULL;
  return hash_mix(h);
}

}  // namespace onramp::dp
