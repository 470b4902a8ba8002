// Flow table: hits refresh idle timers, idle entries expire, full buckets
// evict the entry closest to expiry, and the clock may wrap.
#include "dataplane/core/flow_table.h"

#include <gtest/gtest.h>

#include "tests/unit/packet_builder.h"

namespace onramp::test {
namespace {

using dp::FlowKey;
using dp::FlowTable;
using dp::FlowValue;

FlowKey key(uint16_t port) {
  FlowKey k;
  k.client = ip("192.0.2.1");
  k.vip = ip("203.0.113.10");
  k.client_port = port;
  k.vip_port = 80;
  k.proto = 6;
  return k;
}

TEST(FlowTable, InsertThenHit) {
  FlowTable t(1024);
  auto k = key(1000);
  uint64_t h = FlowTable::hash_key(k);
  EXPECT_EQ(t.lookup(k, h, 0, 1000), nullptr);
  t.insert(k, h, FlowValue{42, 3, 0}, 0, 1000);
  FlowValue* v = t.lookup(k, h, 10, 1000);
  ASSERT_NE(v, nullptr);
  EXPECT_EQ(v->endpoint_id, 42u);
  EXPECT_EQ(v->endpoint_index, 3);
  EXPECT_EQ(t.live(10), 1u);
  EXPECT_EQ(t.lookup(key(1001), FlowTable::hash_key(key(1001)), 10, 1000), nullptr);
}

TEST(FlowTable, IdleEntriesExpireAndHitsRefresh) {
  FlowTable t(64);
  auto k = key(1);
  uint64_t h = FlowTable::hash_key(k);
  t.insert(k, h, FlowValue{1, 0, 0}, 1000, 500);
  ASSERT_NE(t.lookup(k, h, 1400, 500), nullptr);  // refreshed: now expires at 1900
  ASSERT_NE(t.lookup(k, h, 1850, 500), nullptr);  // expires at 2350
  EXPECT_EQ(t.live(2349), 1u);
  EXPECT_EQ(t.live(2350), 0u);
  EXPECT_EQ(t.lookup(k, h, 2400, 500), nullptr);
  EXPECT_EQ(t.stats().expired, 1u);
}

TEST(FlowTable, ClockWrapDoesNotExpireLiveEntries) {
  FlowTable t(64);
  auto k = key(2);
  uint64_t h = FlowTable::hash_key(k);
  uint32_t near_wrap = 0xffffff00u;
  t.insert(k, h, FlowValue{1, 0, 0}, near_wrap, 1000);
  EXPECT_NE(t.lookup(k, h, near_wrap + 900, 1000), nullptr);  // wrapped past 0
  EXPECT_EQ(t.lookup(k, h, near_wrap + 900 + 1001, 1000), nullptr);
}

TEST(FlowTable, FullBucketEvictsTheEntryClosestToExpiry) {
  FlowTable t(8);  // one bucket of 8 ways: every key shares it
  ASSERT_EQ(t.capacity(), 8u);
  for (uint16_t i = 0; i < 8; ++i) {
    auto k = key(i);
    // Entry i expires at 100 + i*10 (inserted at i*10 with 100 ms idle);
    // entry 0 is closest to expiry.
    t.insert(k, FlowTable::hash_key(k), FlowValue{i, 0, 0}, i * 10u, 100);
  }
  EXPECT_EQ(t.live(75), 8u);
  auto k9 = key(100);
  t.insert(k9, FlowTable::hash_key(k9), FlowValue{100, 0, 0}, 75, 100);
  EXPECT_EQ(t.stats().evictions, 1u);
  EXPECT_EQ(t.lookup(key(0), FlowTable::hash_key(key(0)), 76, 100), nullptr);
  for (uint16_t i = 1; i < 8; ++i)
    EXPECT_NE(t.lookup(key(i), FlowTable::hash_key(key(i)), 76, 100), nullptr) << i;
  EXPECT_NE(t.lookup(k9, FlowTable::hash_key(k9), 76, 100), nullptr);
}

TEST(FlowTable, ExpiredWaysAreReusedBeforeLiveOnesAreEvicted) {
  FlowTable t(8);
  for (uint16_t i = 0; i < 8; ++i) {
    auto k = key(i);
    t.insert(k, FlowTable::hash_key(k), FlowValue{i, 0, 0}, 0, i == 5 ? 10 : 1000);
  }
  auto k = key(200);
  t.insert(k, FlowTable::hash_key(k), FlowValue{200, 0, 0}, 50, 1000);
  EXPECT_EQ(t.stats().evictions, 0u);
  EXPECT_EQ(t.stats().expired, 1u);
  EXPECT_EQ(t.live(51), 8u);
}

TEST(FlowTable, BoundedMemoryUnderAFlood) {
  // A SYN flood of unique tuples fills the table and then only evicts.
  FlowTable t(4096);
  for (uint32_t i = 0; i < 100000; ++i) {
    FlowKey k = key(static_cast<uint16_t>(i));
    k.client.bytes[13] = static_cast<uint8_t>(i >> 16);
    k.client.bytes[14] = static_cast<uint8_t>(i >> 8);
    t.insert(k, FlowTable::hash_key(k), FlowValue{1, 0, 0}, 0, 60000);
  }
  EXPECT_EQ(t.live(1), 4096u);
  EXPECT_EQ(t.stats().evictions, 100000u - 4096u);
}

TEST(FlowTable, StateFitsTheTarget) {
  // DESIGN.md §9: at most 64 bytes per flow.
  EXPECT_LE(FlowTable::bytes_per_flow(), 64u);
}

}  // namespace
}  // namespace onramp::test
