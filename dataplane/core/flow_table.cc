#include "dataplane/core/flow_table.h"

#include <bit>
#include <cstdlib>
#include <cstring>

#include "dataplane/core/table_memory.h"

namespace onramp::dp {
namespace {

void* alloc_zeroed(size_t bytes) {
  void* p = alloc_table_memory(bytes);
  std::memset(p, 0, bytes);
  return p;
}

}  // namespace

FlowTable::FlowTable(uint32_t capacity, bool keep_keys) {
  uint32_t buckets = std::bit_ceil(capacity < kWays ? 1u : (capacity + kWays - 1) / kWays);
  mask_ = buckets - 1;
  buckets_ = static_cast<Bucket*>(alloc_zeroed(sizeof(Bucket) * buckets));
  if (keep_keys) keys_ = static_cast<FlowKey*>(alloc_zeroed(sizeof(FlowKey) * buckets * kWays));
}

FlowTable::~FlowTable() {
  std::free(buckets_);
  std::free(keys_);
}

FlowTable::Placed FlowTable::insert(const FlowKey& key, uint64_t hash, FlowValue value,
                                    uint32_t now_ms, uint32_t idle_ms) {
  // A free way in the first bucket, else in the second, else an expired
  // way in either, else the live one closest to expiry in either. The first
  // bucket whenever it has room (rather than the emptier of the two, which
  // fills the table more evenly): a flow there is found with one cache line,
  // one in its second bucket with two, one after the other.
  const uint32_t cand[2] = {first(hash), second(hash)};
  uint32_t victim = kNone;
  bool victim_live = false;
  uint32_t free_way[2] = {kWays, kWays};
  uint32_t n_free[2] = {0, 0};
  for (uint32_t c = 0; c < 2; ++c)
    for (uint32_t w = kWays; w-- > 0;)  // the lowest free way
      if (buckets_[cand[c]].sig[w] == 0) {
        free_way[c] = w;
        ++n_free[c];
      }
  if (n_free[0] || n_free[1]) {
    const uint32_t c = n_free[0] ? 0 : 1;
    victim = cand[c] * kWays + free_way[c];
  }
  for (uint32_t c = 0; c < 2 && victim == kNone; ++c)
    for (uint32_t w = 0; w < kWays; ++w)
      if (!alive(buckets_[cand[c]].expire[w], now_ms)) {
        victim = cand[c] * kWays + w;
        break;
      }
  if (victim == kNone) {
    uint32_t soonest = 0;
    for (uint32_t c = 0; c < 2; ++c)
      for (uint32_t w = 0; w < kWays; ++w) {
        uint32_t left = buckets_[cand[c]].expire[w] - now_ms;
        if (victim == kNone || left < soonest) {
          victim = cand[c] * kWays + w;
          soonest = left;
        }
      }
    victim_live = true;
  }
  Bucket& bucket = buckets_[victim / kWays];
  const uint32_t w = victim % kWays;
  if (victim_live) {
    ++stats_.evictions;
  } else if (bucket.sig[w] != 0) {
    ++stats_.expired;
  }
  const uint32_t previous_endpoint_id = bucket.endpoint_id[w];
  bucket.sig[w] = signature(hash);
  bucket.check[w] = static_cast<uint16_t>(check_bits(hash) | (value.established ? 1 : 0));
  bucket.expire[w] = now_ms + idle_ms;
  bucket.endpoint_id[w] = value.endpoint_id;
  bucket.endpoint_index[w] = value.endpoint_index;
  if (keys_) keys_[victim] = key;
  ++stats_.inserts;
  return {victim, victim_live, previous_endpoint_id};
}

uint64_t FlowTable::live(uint32_t now_ms) const {
  uint64_t n = 0;
  for (uint32_t b = 0; b <= mask_; ++b)
    for (uint32_t w = 0; w < kWays; ++w)
      if (buckets_[b].sig[w] != 0 && alive(buckets_[b].expire[w], now_ms)) ++n;
  return n;
}

}  // namespace onramp::dp
