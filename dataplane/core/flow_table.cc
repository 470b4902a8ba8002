#include "dataplane/core/flow_table.h"

#include <sys/mman.h>

#include <bit>
#include <cstdlib>
#include <cstring>
#include <new>

#include "dataplane/core/hash.h"

namespace onramp::dp {
namespace {

constexpr uint64_t kFlowSeed = 0x666c6f772d6b6579ULL;  // "flow-key"

void* alloc_zeroed(size_t bytes) {
  bytes = (bytes + 4095) & ~size_t{4095};
  void* p = std::aligned_alloc(4096, bytes);
  if (!p) throw std::bad_alloc();
  // Large tables live on huge pages where the kernel allows: fewer TLB misses.
  if (bytes >= (2u << 20)) madvise(p, bytes, MADV_HUGEPAGE);
  std::memset(p, 0, bytes);
  return p;
}

}  // namespace

FlowTable::FlowTable(uint32_t capacity) {
  uint32_t buckets = std::bit_ceil(capacity < kWays ? 1u : (capacity + kWays - 1) / kWays);
  mask_ = buckets - 1;
  buckets_ = static_cast<Bucket*>(alloc_zeroed(sizeof(Bucket) * buckets));
  entries_ = static_cast<Entry*>(alloc_zeroed(sizeof(Entry) * buckets * kWays));
}

FlowTable::~FlowTable() {
  std::free(buckets_);
  std::free(entries_);
}

uint64_t FlowTable::hash_key(const FlowKey& key) {
  return hash_words(reinterpret_cast<const uint8_t*>(&key), sizeof key, kFlowSeed);
}

void FlowTable::prefetch(uint64_t hash) const { __builtin_prefetch(&buckets_[hash & mask_]); }

FlowValue* FlowTable::lookup(const FlowKey& key, uint64_t hash, uint32_t now_ms, uint32_t idle_ms) {
  uint32_t b = static_cast<uint32_t>(hash) & mask_;
  Bucket& bucket = buckets_[b];
  uint32_t sig = signature(hash);
  for (uint32_t w = 0; w < kWays; ++w) {
    if (bucket.sig[w] != sig) continue;
    Entry& e = entries_[b * kWays + w];
    if (!(e.key == key)) continue;
    if (!alive(bucket.expire[w], now_ms)) {
      bucket.sig[w] = 0;
      ++stats_.expired;
      return nullptr;
    }
    bucket.expire[w] = now_ms + idle_ms;
    return &e.value;
  }
  return nullptr;
}

void FlowTable::insert(const FlowKey& key, uint64_t hash, FlowValue value, uint32_t now_ms,
                       uint32_t idle_ms) {
  uint32_t b = static_cast<uint32_t>(hash) & mask_;
  Bucket& bucket = buckets_[b];
  // Prefer an empty way, then an expired one, then the one closest to expiry.
  uint32_t victim = kWays;
  uint32_t soonest = 0;
  bool victim_live = false;
  for (uint32_t w = 0; w < kWays; ++w) {
    if (bucket.sig[w] == 0) {
      victim = w;
      victim_live = false;
      break;
    }
    if (!alive(bucket.expire[w], now_ms)) {
      if (victim == kWays || victim_live) {
        victim = w;
        victim_live = false;
      }
      continue;
    }
    uint32_t left = bucket.expire[w] - now_ms;
    if (victim == kWays || (victim_live && left < soonest)) {
      victim = w;
      soonest = left;
      victim_live = true;
    }
  }
  if (victim_live) {
    ++stats_.evictions;
  } else if (bucket.sig[victim] != 0) {
    ++stats_.expired;
  }
  bucket.sig[victim] = signature(hash);
  bucket.expire[victim] = now_ms + idle_ms;
  entries_[b * kWays + victim] = Entry{key, value};
  ++stats_.inserts;
}

uint64_t FlowTable::live(uint32_t now_ms) const {
  uint64_t n = 0;
  for_each_live(now_ms, [&](const FlowKey&, const FlowValue&) { ++n; });
  return n;
}

}  // namespace onramp::dp
