// Per-lcore flow table: remembers which endpoint each flow went to, so a flow
// stays put when weights or endpoint sets change. Owned by exactly one lcore;
// no locks. Memory is fixed at creation; when both of a flow's buckets are
// full the entry closest to expiry is evicted (because endpoint choice is
// consistent hashing, an evicted flow usually lands on the same endpoint
// again).
//
// Layout: one cache line per bucket, 4 ways (as VPP's load balancer does in
// lbhash.h): each way holds 47 bits of the flow's 64-bit index hash
// (index_hash: the table's own, not the flow hash of Maglev), one flag (an
// established TCP flow, see FlowValue), its expiry time and its endpoint, 16
// bytes. A flow is found by its hash alone, so a hit reads one line and no
// key. Two flows would share an entry only if their hashes agreed in those
// 47 bits and in the bucket index (all 64 bits for a table of 2^17 buckets
// or more; odds of 2^-57 or less for a given pair, about 2^-44 for a new
// flow against the 8 ways of its buckets); the second flow would then take
// the first one's endpoint. Each flow has two buckets (two-choice hashing):
// it goes into the first while that has room, and is looked for in the
// first, then the second, which lets the table fill to over 90 % before
// flows push each other out.
//
// The flow keys themselves are kept only when asked for (keep_keys), for
// listing flows (--print-flows, tests): 40 more bytes per flow, written when
// a flow is placed and never read on the fast path.
//
// A burst looks flows up in steps, so the lines arrive while other packets
// are worked on: prefetch(hash) the first bucket, peek(hash) once that has
// arrived (which fetches the second when the flow is not in the first),
// lookup(hash). Every `hash` a FlowTable takes is the key's index_hash.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "common/ip_address.h"
#include "dataplane/core/hash.h"

namespace onramp::dp {

enum class FlowKind : uint8_t { five_tuple = 1, source_ip = 2 };

// 40 bytes; hashed as five 8-byte words.
struct FlowKey {
  IpAddress client;
  IpAddress vip;             // zero for source_ip keys
  uint16_t client_port = 0;  // source_ip: low half of the listener id
  uint16_t vip_port = 0;     // source_ip: high half of the listener id
  uint8_t proto = 0;
  FlowKind kind = FlowKind::five_tuple;
  uint16_t zero = 0;

  friend bool operator==(const FlowKey&, const FlowKey&) = default;

  // Sets client_port through zero with one store, so the flow hash's 8-byte
  // loads of the key are forwarded from a store of the same size (four
  // narrow stores followed by a wide load stall the pipeline).
  void set_tail(uint16_t cport, uint16_t vport, uint8_t proto_, FlowKind kind_) {
    uint64_t tail = uint64_t{cport} | uint64_t{vport} << 16 | uint64_t{proto_} << 32 |
                    uint64_t{static_cast<uint8_t>(kind_)} << 40;
    std::memcpy(reinterpret_cast<uint8_t*>(this) + 32, &tail, sizeof tail);
  }
};
static_assert(sizeof(FlowKey) == 40);
// The key's bytes are what is hashed, and the hash must agree between PoPs:
// the layout above is that of a little-endian host (x86-64, arm64).
static_assert(std::endian::native == std::endian::little, "flow keys assume little-endian");
static_assert(offsetof(FlowKey, client_port) == 32 && offsetof(FlowKey, zero) == 38);

// Where the flow goes. endpoint_index is a hint into the current table's
// listener; endpoint_id (a hash of the endpoint's address) is the identity that
// survives table swaps. established: a TCP flow that has sent a packet
// without SYN since its last SYN (past its handshake); such a flow drains
// from an endpoint that turns unhealthy rather than moving at once
// (PacketProcessor::finish, docs/dataplane.md).
struct FlowValue {
  uint32_t endpoint_id = 0;
  uint16_t endpoint_index = 0;
  bool established = false;
  bool operator==(const FlowValue&) const = default;
};

struct FlowTableStats {
  uint64_t inserts = 0;
  uint64_t evictions = 0;  // live entries pushed out by full buckets
  uint64_t expired = 0;    // idle entries found and replaced
};

class FlowTable {
 public:
  static constexpr uint32_t kWays = 4;
  static constexpr uint32_t kNone = ~0u;                        // lookup: no such flow
  static constexpr uint64_t kFlowSeed = 0x666c6f772d6b6579ULL;  // "flow-key"

  // Capacity is rounded up to a power of two, at least kWays.
  explicit FlowTable(uint32_t capacity, bool keep_keys = false);
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  // hash_words over the key's five words, unrolled (the loop is not).
  static uint64_t hash_key(const FlowKey& key) {
    const auto* p = reinterpret_cast<const uint8_t*>(&key);
    constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
    uint64_t h = kFlowSeed ^ (sizeof key * kGolden);
    h = hash_mix(h ^ load_le64(p)) + kGolden;
    h = hash_mix(h ^ load_le64(p + 8)) + kGolden;
    h = hash_mix(h ^ load_le64(p + 16)) + kGolden;
    h = hash_mix(h ^ load_le64(p + 24)) + kGolden;
    h = hash_mix(h ^ load_le64(p + 32)) + kGolden;
    return hash_mix(h);
  }
  // hash_key for a key whose client is an IPv4 address: its first word is
  // the zero top of an IPv4-mapped address, so the first round is a
  // constant, and the chain of dependent multiplies is one round shorter.
  // Equal to hash_key for every such key (FlowTable.HashKeyV4IsHashKey).
  static uint64_t hash_key_v4(const FlowKey& key) {
    const auto* p = reinterpret_cast<const uint8_t*>(&key);
    constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
    constexpr uint64_t kAfterZeroWord = hash_mix(kFlowSeed ^ (sizeof key * kGolden)) + kGolden;
    uint64_t h = kAfterZeroWord;
    h = hash_mix(h ^ load_le64(p + 8)) + kGolden;
    h = hash_mix(h ^ load_le64(p + 16)) + kGolden;
    h = hash_mix(h ^ load_le64(p + 24)) + kGolden;
    h = hash_mix(h ^ load_le64(p + 32)) + kGolden;
    return hash_mix(h);
  }

  // Where a flow's entry sits in this table. This hash never leaves the
  // lcore, so unlike the flow hash above (Maglev, tunnel entropy, flow log
  // samples: the same on every PoP) it may be any good function: one
  // multiply per 64 bits of key, all independent of each other, and one to
  // mix their sum. Its chain is about a quarter of the flow hash's, so a
  // bucket's prefetch leaves sooner, and a hit on an endpoint whose tunnel
  // carries no entropy (IPIP over IPv4) never computes the flow hash at all.
  static uint64_t index_hash(const FlowKey& key) {
    if (key.client.is_v4()) return index_hash_v4(key);
    const auto* p = reinterpret_cast<const uint8_t*>(&key);
    const uint64_t sum = index_word(load_le64(p), 0) + index_word(load_le64(p + 8), 1) +
                         index_word(load_le64(p + 16), 2) + index_word(load_le64(p + 24), 3) +
                         index_word(load_le64(p + 32), 4);
    return index_word(sum, 5);
  }
  // index_hash of a key whose client is an IPv4 address, and whose VIP is
  // then an IPv4 address or none: the two addresses make one word, the
  // ports, protocol and kind another.
  static uint64_t index_hash_v4(const FlowKey& key) {
    const auto* p = reinterpret_cast<const uint8_t*>(&key);
    uint32_t client, vip;
    std::memcpy(&client, p + 12, 4);
    std::memcpy(&vip, p + 28, 4);
    const uint64_t addresses = uint64_t{client} | uint64_t{vip} << 32;
    return index_word(index_word(addresses, 1) + index_word(load_le64(p + 32), 4), 5);
  }
  // index_hash where the caller knows whether the client is IPv4.
  static uint64_t index_hash(const FlowKey& key, bool v4) {
    return v4 ? index_hash_v4(key) : index_hash(key);
  }

  // Step one: fetch the flow's first bucket into the cache.
  void prefetch(uint64_t hash) const { __builtin_prefetch(&buckets_[first(hash)]); }
  // Step two, once the first bucket has arrived: the flow's slot if it is
  // there (live or not), else kNone, having fetched the second bucket.
  uint32_t peek(uint64_t hash) const {
    const uint32_t b = first(hash);
    const uint32_t w = find_in(b, hash);
    if (w != kWays) return b * kWays + w;
    __builtin_prefetch(&buckets_[second(hash)]);
    return kNone;
  }

  // The slot of the live entry for this flow hash, or kNone. A hit pushes
  // the entry's expiry to now + idle_ms (or close: see refresh); an expired
  // entry is removed. `hint`: what peek returned for it, if anything came
  // in between (the way is checked again before it is believed).
  uint32_t lookup(uint64_t hash, uint32_t now_ms, uint32_t idle_ms, uint32_t hint = kNone) {
    if (hint != kNone) {
      const Bucket& b = buckets_[hint / kWays];
      const uint32_t w = hint % kWays;
      if (b.sig[w] == signature(hash) && (b.check[w] & kCheckMask) == check_bits(hash))
        return found(hint, now_ms, idle_ms);
    }
    uint32_t b = first(hash);
    uint32_t w = find_in(b, hash);
    if (w == kWays) {
      b = second(hash);
      w = find_in(b, hash);
      if (w == kWays) return kNone;
    }
    return found(b * kWays + w, now_ms, idle_ms);
  }
  FlowValue value(uint32_t slot) const {
    const Bucket& b = buckets_[slot / kWays];
    return FlowValue{b.endpoint_id[slot % kWays], b.endpoint_index[slot % kWays],
                     (b.check[slot % kWays] & kEstablished) != 0};
  }
  // Stores `now` over `was` (what value(slot) returned) only when they
  // differ: a hit that changes nothing leaves its bucket's line clean, so
  // the line is not written back to memory.
  void update_value(uint32_t slot, const FlowValue& was, const FlowValue& now) {
    if (!(was == now)) set_value(slot, now);
  }
  void set_value(uint32_t slot, FlowValue v) {
    Bucket& b = buckets_[slot / kWays];
    const uint32_t w = slot % kWays;
    b.endpoint_id[w] = v.endpoint_id;
    b.endpoint_index[w] = v.endpoint_index;
    b.check[w] = static_cast<uint16_t>((b.check[w] & kCheckMask) | (v.established ? 1 : 0));
  }

  // Where insert put a flow; whether it pushed a live flow out, and the
  // endpoint the slot's previous flow had (flow logs end that flow).
  struct Placed {
    uint32_t slot;
    bool evicted;
    uint32_t previous_endpoint_id;
  };
  // Adds the flow; the caller has just missed in lookup. `key` is kept
  // only with keep_keys.
  Placed insert(const FlowKey& key, uint64_t hash, FlowValue value, uint32_t now_ms,
                uint32_t idle_ms);

  // Whether `slot` holds a flow live at now_ms (control side, flow logs).
  bool live_slot(uint32_t slot, uint32_t now_ms) const {
    const Bucket& b = buckets_[slot / kWays];
    return b.sig[slot % kWays] != 0 && alive(b.expire[slot % kWays], now_ms);
  }
  uint32_t capacity() const { return (mask_ + 1) * kWays; }
  bool keeps_keys() const { return keys_ != nullptr; }
  // Entries not yet expired at now_ms (a scan; for stats, not per packet).
  uint64_t live(uint32_t now_ms) const;
  const FlowTableStats& stats() const { return stats_; }
  // Memory a flow slot takes, with or without its key kept.
  static constexpr size_t bytes_per_flow(bool with_keys = false);

  // Calls f(key, value) for every entry live at now_ms (control side only;
  // needs keep_keys).
  template <class F>
  void for_each_live(uint32_t now_ms, F&& f) const {
    if (!keys_) return;
    for (uint32_t b = 0; b <= mask_; ++b)
      for (uint32_t w = 0; w < kWays; ++w)
        if (buckets_[b].sig[w] != 0 && alive(buckets_[b].expire[w], now_ms))
          f(keys_[b * kWays + w], value(b * kWays + w));
  }

 private:
  // index_hash's terms: 64 bits of the key, xor-ed with a key of their place
  // and multiplied by an odd constant of their place (digits of pi; mixers of
  // SplitMix64 and MurmurHash3), so equal words in two places differ.
  static constexpr uint64_t kIndexXor[6] = {0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL,
                                            0xa4093822299f31d0ULL, 0x082efa98ec4e6c89ULL,
                                            0x452821e638d01377ULL, 0xbe5466cf34e90c6cULL};
  static constexpr uint64_t kIndexMul[6] = {0x9e3779b97f4a7c15ULL, 0xbf58476d1ce4e5b9ULL,
                                            0x94d049bb133111ebULL, 0xd6e8feb86659fd93ULL,
                                            0xff51afd7ed558ccdULL, 0xc4ceb9fe1a85ec53ULL};
  static constexpr uint64_t index_word(uint64_t word, int i) {
    return mul_fold(word ^ kIndexXor[i], kIndexMul[i]);
  }

  struct alignas(64) Bucket {
    uint32_t sig[kWays];     // high 32 bits of the hash, never 0; 0 = empty
    uint32_t expire[kWays];  // ms, wraps; live while expire - now > 0
    uint32_t endpoint_id[kWays];
    uint16_t endpoint_index[kWays];
    // 15 more bits of the hash (kCheckMask), and the flow's established
    // flag (kEstablished).
    uint16_t check[kWays];
  };
  static_assert(sizeof(Bucket) == 64);
  static constexpr uint16_t kEstablished = 1;
  static constexpr uint16_t kCheckMask = static_cast<uint16_t>(~kEstablished);

  static uint32_t signature(uint64_t hash) {
    auto sig = static_cast<uint32_t>(hash >> 32);
    return sig ? sig : 1;
  }
  static uint16_t check_bits(uint64_t hash) {
    return static_cast<uint16_t>(hash >> 16) & kCheckMask;
  }
  uint32_t first(uint64_t hash) const { return static_cast<uint32_t>(hash) & mask_; }
  // The second bucket depends on the signature only, as in a cuckoo table;
  // it differs from the first whenever there are two buckets or more.
  uint32_t second(uint64_t hash) const {
    return (first(hash) ^ ((signature(hash) * 0x9e3779b1u) | 1u)) & mask_;
  }
  // The way of bucket b holding this hash (live or not), or kWays.
  // Branch-free with SSE2: which way holds a flow is a coin toss for the
  // branch predictor, and a loop that stops at it mispredicts often.
  uint32_t find_in(uint32_t b, uint64_t hash) const {
    const Bucket& k = buckets_[b];
    const uint32_t sig = signature(hash);
    const uint16_t check = check_bits(hash);
#ifdef __SSE2__
    const __m128i sigs = _mm_load_si128(reinterpret_cast<const __m128i*>(k.sig));
    const __m128i sig_eq = _mm_cmpeq_epi32(sigs, _mm_set1_epi32(static_cast<int32_t>(sig)));
    const __m128i checks = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(k.check));
    const __m128i check_eq =
        _mm_cmpeq_epi16(_mm_and_si128(checks, _mm_set1_epi16(static_cast<int16_t>(kCheckMask))),
                        _mm_set1_epi16(static_cast<int16_t>(check)));
    // Ways 0..3 as the low four 16-bit lanes of both, two mask bits each.
    const uint32_t both = static_cast<uint32_t>(
        _mm_movemask_epi8(_mm_and_si128(_mm_packs_epi32(sig_eq, sig_eq), check_eq)) & 0xff);
    return both ? static_cast<uint32_t>(std::countr_zero(both)) / 2 : kWays;
#else
    for (uint32_t w = 0; w < kWays; ++w)
      if (k.sig[w] == sig && (k.check[w] & kCheckMask) == check) return w;
    return kWays;
#endif
  }
  static bool alive(uint32_t expire, uint32_t now) {
    return static_cast<int32_t>(expire - now) > 0;
  }
  // lookup's end: the entry at `slot` holds the flow.
  uint32_t found(uint32_t slot, uint32_t now_ms, uint32_t idle_ms) {
    Bucket& bucket = buckets_[slot / kWays];
    const uint32_t w = slot % kWays;
    if (!alive(bucket.expire[w], now_ms)) {
      bucket.sig[w] = 0;
      ++stats_.expired;
      return kNone;
    }
    // Refresh the expiry only when it has fallen behind by more than a
    // sixty-fourth of the idle timeout (at most a second): a flow then
    // expires between idle_ms less that and idle_ms after its last packet,
    // and the bucket's line is not written, and so not written back to
    // memory, on every packet of a busy flow.
    const uint32_t slack = idle_ms / 64 < 1000 ? idle_ms / 64 : 1000;
    if (bucket.expire[w] - now_ms < idle_ms - slack) bucket.expire[w] = now_ms + idle_ms;
    return slot;
  }

  uint32_t mask_;  // bucket count - 1
  Bucket* buckets_;
  FlowKey* keys_ = nullptr;  // kWays per bucket, with keep_keys
  FlowTableStats stats_;
};

constexpr size_t FlowTable::bytes_per_flow(bool with_keys) {
  return sizeof(Bucket) / kWays + (with_keys ? sizeof(FlowKey) : 0);
}

}  // namespace onramp::dp
