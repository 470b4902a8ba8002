// Flow table: hits refresh idle timers, idle entries expire, full buckets
// evict the entry closest to expiry, the clock may wrap, two buckets a flow
// keep a half-full table from pushing flows out, and keys are kept only when
// asked for.
#include "dataplane/core/flow_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <vector>

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

constexpr uint32_t kNone = FlowTable::kNone;

bool found(FlowTable& t, const FlowKey& k, uint32_t now, uint32_t idle) {
  return t.lookup(FlowTable::index_hash(k), now, idle) != kNone;
}

// The IPv4 shortcut of the flow hash (its first round a constant) gives the
// hash every PoP computes, for five-tuple and source-IP keys.
TEST(FlowTable, HashKeyV4IsHashKey) {
  uint64_t x = 0x1234567887654321ULL;
  for (int i = 0; i < 10000; ++i) {
    x = x * 6364136223846793005ULL + 1442695040888963407ULL;
    uint8_t client[4], vip[4];
    std::memcpy(client, &x, 4);
    std::memcpy(vip, reinterpret_cast<uint8_t*>(&x) + 4, 4);
    FlowKey k;
    k.client = IpAddress::from_v4(client);
    if (i % 2) {
      k.vip = IpAddress::from_v4(vip);
      k.set_tail(static_cast<uint16_t>(x >> 20), static_cast<uint16_t>(x >> 40),
                 i % 4 == 1 ? 6 : 17, dp::FlowKind::five_tuple);
    } else {
      k.set_tail(static_cast<uint16_t>(x >> 20), static_cast<uint16_t>(x >> 36), 0,
                 dp::FlowKind::source_ip);
    }
    ASSERT_EQ(FlowTable::hash_key_v4(k), FlowTable::hash_key(k)) << i;
  }
}

// The table's own hash reads every bit a key can hold (an IPv4 client's key
// is hashed from its addresses' 32 bits), and keys as structured as real
// traffic (clients counting up through a prefix, several ports each, two
// VIPs, both families, source-IP keys) neither collide nor crowd buckets: a
// collision would give two flows one entry.
TEST(FlowTable, IndexHashReadsEveryBitOfAKey) {
  for (const char* client : {"192.0.2.1", "2001:db8::1"}) {
    FlowKey k;
    k.client = ip(client);
    k.vip = ip(k.client.is_v4() ? "203.0.113.10" : "2001:db8:10::10");
    k.set_tail(40000, 443, 6, dp::FlowKind::five_tuple);
    const uint64_t h = FlowTable::index_hash(k);
    // Address bytes: an IPv4 address's four, an IPv6 address's sixteen.
    const size_t first = k.client.is_v4() ? 12 : 0;
    std::vector<size_t> bytes;
    for (size_t b = first; b < 16; ++b) {
      bytes.push_back(b);       // client
      bytes.push_back(16 + b);  // vip
    }
    for (size_t b = 32; b < 38; ++b) bytes.push_back(b);  // ports, protocol, kind
    for (size_t b : bytes)
      for (int bit = 0; bit < 8; ++bit) {
        FlowKey x = k;
        reinterpret_cast<uint8_t*>(&x)[b] ^= static_cast<uint8_t>(1 << bit);
        EXPECT_NE(FlowTable::index_hash(x), h) << client << " byte " << b << " bit " << bit;
      }
  }
}

TEST(FlowTable, IndexHashSpreadsStructuredKeys) {
  constexpr uint32_t kKeys = 1u << 20;
  constexpr uint32_t kBuckets = 1u << 18;  // four keys a bucket on average
  std::vector<uint64_t> hashes;
  hashes.reserve(kKeys);
  std::vector<uint32_t> load(kBuckets);
  for (uint32_t i = 0; i < kKeys; ++i) {
    FlowKey k;
    const uint32_t client = i / 4;  // four flows a client
    if (i % 8 < 6) {
      const uint8_t c[4] = {198, static_cast<uint8_t>(51 + (client >> 16)),
                            static_cast<uint8_t>(client >> 8), static_cast<uint8_t>(client)};
      k.client = IpAddress::from_v4(c);
      k.vip = ip(i % 2 ? "203.0.113.10" : "203.0.113.11");
    } else {
      k.client = ip("2001:db8::");
      k.client.bytes[12] = static_cast<uint8_t>(client >> 24);
      k.client.bytes[13] = static_cast<uint8_t>(client >> 16);
      k.client.bytes[14] = static_cast<uint8_t>(client >> 8);
      k.client.bytes[15] = static_cast<uint8_t>(client);
      k.vip = ip("2001:db8:ffff::10");
    }
    if (i % 16 == 15) {
      k.vip = IpAddress{};
      k.set_tail(7, 0, 0, dp::FlowKind::source_ip);
    } else {
      k.set_tail(static_cast<uint16_t>(40000 + i % 4), 443, 6, dp::FlowKind::five_tuple);
    }
    const uint64_t h = FlowTable::index_hash(k);
    hashes.push_back(h);
    ++load[h % kBuckets];
  }
  std::sort(hashes.begin(), hashes.end());
  EXPECT_EQ(std::adjacent_find(hashes.begin(), hashes.end()), hashes.end());
  // Poisson with mean 4: a bucket of 20 or more has odds of about 1e-8, so
  // one among 2^18 buckets means the hash clusters.
  EXPECT_LT(*std::max_element(load.begin(), load.end()), 20);
  // Empty buckets: e^-4 of them, 4800 (standard deviation ~70).
  const auto empty = std::count(load.begin(), load.end(), 0);
  EXPECT_GT(empty, 4400);
  EXPECT_LT(empty, 5200);
}

TEST(FlowTable, InsertThenHit) {
  FlowTable t(1024);
  auto k = key(1000);
  uint64_t h = FlowTable::index_hash(k);
  EXPECT_EQ(t.lookup(h, 0, 1000), kNone);
  t.insert(k, h, FlowValue{42, 3}, 0, 1000);
  uint32_t slot = t.lookup(h, 10, 1000);
  ASSERT_NE(slot, kNone);
  EXPECT_EQ(t.value(slot).endpoint_id, 42u);
  EXPECT_EQ(t.value(slot).endpoint_index, 3);
  t.set_value(slot, FlowValue{43, 4});
  EXPECT_EQ(t.value(t.lookup(h, 11, 1000)).endpoint_id, 43u);
  EXPECT_EQ(t.live(10), 1u);
  EXPECT_FALSE(found(t, key(1001), 10, 1000));
}

TEST(FlowTable, TheEstablishedFlagRidesWithTheEntryAndIsNoPartOfItsIdentity) {
  FlowTable t(1024);
  auto k = key(1000);
  uint64_t h = FlowTable::index_hash(k);
  t.insert(k, h, FlowValue{42, 3, true}, 0, 1000);
  uint32_t slot = t.lookup(h, 10, 1000);
  ASSERT_NE(slot, kNone);
  EXPECT_TRUE(t.value(slot).established);
  t.set_value(slot, FlowValue{42, 3, false});
  ASSERT_EQ(t.lookup(h, 11, 1000), slot);
  EXPECT_FALSE(t.value(slot).established);
  EXPECT_EQ(t.value(slot).endpoint_id, 42u);
  t.set_value(slot, FlowValue{43, 4, true});
  ASSERT_EQ(t.lookup(h, 12, 1000, slot), slot);  // through the hint too
  EXPECT_TRUE(t.value(slot).established);
  EXPECT_EQ(t.value(slot).endpoint_index, 4);
  EXPECT_EQ(t.live(12), 1u);
}

// update_value writes what differs in any field and keeps what does not.
TEST(FlowTable, UpdateValueStoresEachChange) {
  FlowTable t(1024);
  auto k = key(1000);
  uint64_t h = FlowTable::index_hash(k);
  t.insert(k, h, FlowValue{42, 3, false}, 0, 1000);
  const uint32_t slot = t.lookup(h, 10, 1000);
  ASSERT_NE(slot, kNone);
  for (const FlowValue& now : {FlowValue{42, 3, false}, FlowValue{42, 3, true},
                               FlowValue{42, 5, true}, FlowValue{7, 5, true}}) {
    t.update_value(slot, t.value(slot), now);
    EXPECT_EQ(t.value(slot), now);
  }
  EXPECT_EQ(t.live(12), 1u);
}

TEST(FlowTable, IdleEntriesExpireAndHitsRefresh) {
  FlowTable t(64);
  auto k = key(1);
  uint64_t h = FlowTable::index_hash(k);
  t.insert(k, h, FlowValue{1, 0}, 1000, 500);
  ASSERT_NE(t.lookup(h, 1400, 500), kNone);  // refreshed: now expires at 1900
  ASSERT_NE(t.lookup(h, 1850, 500), kNone);  // expires at 2350
  EXPECT_EQ(t.live(2349), 1u);
  EXPECT_EQ(t.live(2350), 0u);
  EXPECT_EQ(t.lookup(h, 2400, 500), kNone);
  EXPECT_EQ(t.stats().expired, 1u);
}

TEST(FlowTable, AHitWithinTheSlackDoesNotMoveTheExpiry) {
  // Refreshing on every packet would dirty the bucket's line on every
  // packet; within idle/64 (at most 1 s) of the last refresh it is left.
  FlowTable t(64);
  auto k = key(3);
  uint64_t h = FlowTable::index_hash(k);
  t.insert(k, h, FlowValue{1, 0}, 0, 64000);  // slack 1000 ms
  ASSERT_NE(t.lookup(h, 900, 64000), kNone);  // 900 ms behind: left at 64000
  EXPECT_EQ(t.live(63999), 1u);
  EXPECT_EQ(t.live(64000), 0u);
  ASSERT_NE(t.lookup(h, 1100, 64000), kNone);  // 1100 ms behind: refreshed
  EXPECT_EQ(t.live(65099), 1u);
  EXPECT_EQ(t.live(65100), 0u);
}

TEST(FlowTable, ClockWrapDoesNotExpireLiveEntries) {
  FlowTable t(64);
  auto k = key(2);
  uint64_t h = FlowTable::index_hash(k);
  uint32_t near_wrap = 0xffffff00u;
  t.insert(k, h, FlowValue{1, 0}, near_wrap, 1000);
  EXPECT_NE(t.lookup(h, near_wrap + 900, 1000), kNone);  // wrapped past 0
  EXPECT_EQ(t.lookup(h, near_wrap + 900 + 1001, 1000), kNone);
}

TEST(FlowTable, FullBucketEvictsTheEntryClosestToExpiry) {
  FlowTable t(8);  // two buckets of 4 ways: every key has both as its choices
  ASSERT_EQ(t.capacity(), 8u);
  for (uint16_t i = 0; i < 8; ++i) {
    auto k = key(i);
    // Entry i expires at 100 + i*10 (inserted at i*10 with 100 ms idle);
    // entry 0 is closest to expiry.
    t.insert(k, FlowTable::index_hash(k), FlowValue{i, 0}, i * 10u, 100);
  }
  EXPECT_EQ(t.live(75), 8u);
  auto k9 = key(100);
  t.insert(k9, FlowTable::index_hash(k9), FlowValue{100, 0}, 75, 100);
  EXPECT_EQ(t.stats().evictions, 1u);
  EXPECT_FALSE(found(t, key(0), 76, 100));
  for (uint16_t i = 1; i < 8; ++i) EXPECT_TRUE(found(t, key(i), 76, 100)) << i;
  EXPECT_TRUE(found(t, k9, 76, 100));
}

TEST(FlowTable, ExpiredWaysAreReusedBeforeLiveOnesAreEvicted) {
  FlowTable t(8);
  for (uint16_t i = 0; i < 8; ++i) {
    auto k = key(i);
    t.insert(k, FlowTable::index_hash(k), FlowValue{i, 0}, 0, i == 5 ? 10 : 1000);
  }
  auto k = key(200);
  t.insert(k, FlowTable::index_hash(k), FlowValue{200, 0}, 50, 1000);
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
    t.insert(k, FlowTable::index_hash(k), FlowValue{1, 0}, 0, 60000);
  }
  EXPECT_EQ(t.live(1), 4096u);
  EXPECT_EQ(t.stats().evictions, 100000u - 4096u);
}

TEST(FlowTable, HalfFullItKeepsNearlyEveryFlow) {
  // Each flow may go to either of two buckets: with one bucket of 4 ways a
  // flow, a table half full would push out about 4 % of its flows.
  FlowTable t(65536);
  const uint32_t n = t.capacity() / 2;
  auto flow = [](uint32_t i) {
    FlowKey k = key(static_cast<uint16_t>(i));
    k.client.bytes[13] = static_cast<uint8_t>(i >> 16);
    k.client.bytes[14] = static_cast<uint8_t>(i >> 8);
    return k;
  };
  for (uint32_t i = 0; i < n; ++i)
    t.insert(flow(i), FlowTable::index_hash(flow(i)), FlowValue{i, 0}, 0, 60000);
  uint32_t kept = 0;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t slot = t.lookup(FlowTable::index_hash(flow(i)), 1, 60000);
    if (slot != kNone && t.value(slot).endpoint_id == i) ++kept;
  }
  EXPECT_GE(kept, n - n / 200) << t.stats().evictions << " evictions";
}

TEST(FlowTable, KeysAreKeptOnlyWhenAskedFor) {
  FlowTable with(64, true), without(64);
  for (FlowTable* t : {&with, &without})
    t->insert(key(7), FlowTable::index_hash(key(7)), {}, 0, 1000);
  int listed = 0;
  with.for_each_live(1, [&](const FlowKey& k, const FlowValue&) {
    EXPECT_EQ(k, key(7));
    ++listed;
  });
  without.for_each_live(1, [&](const FlowKey&, const FlowValue&) { ++listed; });
  EXPECT_EQ(listed, 1);
  EXPECT_TRUE(with.keeps_keys());
  EXPECT_FALSE(without.keeps_keys());
}

TEST(FlowTable, StateFitsTheTarget) {
  // docs/design.md "Targets": at most 64 bytes per flow, keys kept or not.
  EXPECT_EQ(FlowTable::bytes_per_flow(), 16u);
  EXPECT_LE(FlowTable::bytes_per_flow(true), 64u);
}

}  // namespace
}  // namespace onramp::test
