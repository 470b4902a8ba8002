// Per-lcore flow table: remembers which endpoint each flow went to, so a flow
// stays put when weights or endpoint sets change. Owned by exactly one lcore;
// no locks. Memory is fixed at creation; when a bucket is full the entry
// closest to expiry is evicted (because endpoint choice is consistent hashing,
// an evicted flow usually lands on the same endpoint again).
//
// Layout: 8-way buckets. One cache line holds a bucket's 8 signatures and 8
// expiry times, so a miss costs one line; a hit costs one more for the entry.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "dataplane/core/ip_address.h"

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
};
static_assert(sizeof(FlowKey) == 40);

// Where the flow goes. endpoint_index is a hint into the current table's
// listener; endpoint_id (a hash of the endpoint's address) is the identity that
// survives table swaps.
struct FlowValue {
  uint32_t endpoint_id = 0;
  uint16_t endpoint_index = 0;
  uint16_t reserved = 0;
};

struct FlowTableStats {
  uint64_t inserts = 0;
  uint64_t evictions = 0;  // live entries pushed out by a full bucket
  uint64_t expired = 0;    // idle entries found and replaced
};

class FlowTable {
 public:
  static constexpr uint32_t kWays = 8;

  // Capacity is rounded up to a power of two, at least kWays.
  explicit FlowTable(uint32_t capacity);
  ~FlowTable();
  FlowTable(const FlowTable&) = delete;
  FlowTable& operator=(const FlowTable&) = delete;

  static uint64_t hash_key(const FlowKey& key);

  void prefetch(uint64_t hash) const;

  // Returns the live entry for `key` and pushes its expiry to now + idle_ms,
  // or nullptr. An expired entry is removed.
  FlowValue* lookup(const FlowKey& key, uint64_t hash, uint32_t now_ms, uint32_t idle_ms);

  // Adds `key`; the caller has just missed in lookup.
  void insert(const FlowKey& key, uint64_t hash, FlowValue value, uint32_t now_ms,
              uint32_t idle_ms);

  uint32_t capacity() const { return (mask_ + 1) * kWays; }
  // Entries not yet expired at now_ms (a scan; for stats, not per packet).
  uint64_t live(uint32_t now_ms) const;
  const FlowTableStats& stats() const { return stats_; }
  static constexpr size_t bytes_per_flow();

  // Calls f(key, value) for every entry live at now_ms (control side only).
  template <class F>
  void for_each_live(uint32_t now_ms, F&& f) const {
    for (uint32_t b = 0; b <= mask_; ++b)
      for (uint32_t w = 0; w < kWays; ++w)
        if (buckets_[b].sig[w] != 0 && alive(buckets_[b].expire[w], now_ms))
          f(entries_[b * kWays + w].key, entries_[b * kWays + w].value);
  }

 private:
  struct alignas(64) Bucket {
    uint32_t sig[kWays];     // 0 = empty
    uint32_t expire[kWays];  // ms, wraps; live while expire - now > 0
  };
  struct Entry {
    FlowKey key;
    FlowValue value;
  };
  static_assert(sizeof(Bucket) == 64);
  static_assert(sizeof(Entry) == 48);

  static uint32_t signature(uint64_t hash) {
    auto sig = static_cast<uint32_t>(hash >> 32);
    return sig ? sig : 1;
  }
  static bool alive(uint32_t expire, uint32_t now) {
    return static_cast<int32_t>(expire - now) > 0;
  }

  uint32_t mask_;  // bucket count - 1
  Bucket* buckets_;
  Entry* entries_;  // kWays per bucket
  FlowTableStats stats_;
};

constexpr size_t FlowTable::bytes_per_flow() { return sizeof(Bucket) / kWays + sizeof(Entry); }

}  // namespace onramp::dp
