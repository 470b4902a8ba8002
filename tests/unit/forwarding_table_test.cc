// The compiled forwarding table: port-range lookup agrees with a plain scan,
// and a table built next to the one in force (sharing its unchanged Maglev
// tables) is the table a build from scratch gives.
#include "dataplane/core/forwarding_table.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <string>

#include "tests/unit/packet_builder.h"

namespace onramp::test {
namespace {

using dp::ForwardingTable;
using onramp::EndpointSpec;
using onramp::ListenerSpec;
using onramp::TableSpec;

IpAddress v4(uint32_t n) {
  uint8_t b[4] = {static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                  static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  return IpAddress::from_v4(b);
}

TableSpec spec_with(int listeners, int endpoints, uint32_t maglev_size = 1021) {
  TableSpec spec{.version = 1, .tunnel_source_v4 = ip("192.0.2.1"), .maglev_size = maglev_size};
  for (int i = 0; i < listeners; ++i) {
    ListenerSpec l{.name = "l" + std::to_string(i),
                   .vips = {v4(0xCB007100 + static_cast<uint32_t>(i % 3))},
                   .port_ranges = {{static_cast<uint16_t>(1000 + 10 * (i / 3)),
                                    static_cast<uint16_t>(1004 + 10 * (i / 3))}}};
    for (int j = 0; j < endpoints; ++j)
      l.endpoints.push_back(
          EndpointSpec{.address = v4(0x0A000000 + static_cast<uint32_t>(i * 256 + j)),
                       .weight = 10 + static_cast<uint32_t>(j) * 7});
    spec.listeners.push_back(l);
  }
  return spec;
}

std::unique_ptr<ForwardingTable> build(const TableSpec& spec, const ForwardingTable* previous) {
  EXPECT_EQ(validate_table_spec(spec).message(), "");
  auto t = ForwardingTable::build(spec, 2, previous);
  EXPECT_TRUE(t.ok()) << t.error();
  return t.ok() ? std::move(*t) : nullptr;
}

// Hardening findings: maglev_table_size 1048573 x 400 listeners took 940 MB
// and ended in std::bad_alloc; 5000 endpoints were accepted in a 1021-slot
// table, where most got no slot. Both are refused before anything is built.
TEST(ForwardingTable, MemoryAndSlotBoundsAreRefusedBeforeAllocation) {
  TableSpec big = spec_with(400, 1, kMaxMaglevSize);
  EXPECT_EQ(validate_table_spec(big).message(),
            "maglev_table_size: 400 listeners x 1048573 slots need 799 MiB of Maglev tables; at "
            "most 512 MiB are built (a smaller maglev_table_size, or fewer listeners per PoP)");
  EXPECT_TRUE(validate_table_spec(spec_with(200, 1, kMaxMaglevSize)).ok());

  auto crowded = [](int endpoints) {
    TableSpec spec = spec_with(1, endpoints, 1021);
    for (EndpointSpec& e : spec.listeners[0].endpoints) e.weight = 128;
    return spec;
  };
  EXPECT_EQ(validate_table_spec(crowded(103)).message(),
            "listeners[0].endpoints: 103 endpoints need a maglev_table_size of at least 1030 (10 "
            "slots each); it is 1021");
  EXPECT_TRUE(validate_table_spec(crowded(102)).ok());
}

TEST(ForwardingTable, FindListenerAgreesWithAScanOfTheRanges) {
  const TableSpec spec = spec_with(60, 2);
  auto t = build(spec, nullptr);
  for (const dp::Vip& vip : t->vips())
    for (uint32_t port = 0; port < 1700; ++port) {
      int want = -1;
      for (const dp::PortRangeEntry& r : vip.tcp)
        if (r.first <= port && port <= r.last) want = r.listener;
      ASSERT_EQ(ForwardingTable::find_listener(vip, 6, static_cast<uint16_t>(port)), want)
          << "port " << port;
      ASSERT_EQ(ForwardingTable::find_listener(vip, 17, static_cast<uint16_t>(port)), -1);
    }
}

TEST(ForwardingTable, BuildingNextToThePreviousTableGivesTheSameTable) {
  const TableSpec before = spec_with(6, 5);
  auto current = build(before, nullptr);
  TableSpec after = before;
  after.listeners[1].endpoints[2].weight = 200;                                 // weights changed
  after.listeners[2].endpoints[0].healthy = false;                              // health changed
  std::swap(after.listeners[3].endpoints[0], after.listeners[3].endpoints[4]);  // order
  after.listeners[4].endpoints.pop_back();                                      // an endpoint gone
  after.listeners[5].name = "renamed";  // no previous listener
  auto borrowed = build(after, current.get());
  auto scratch = build(after, nullptr);
  ASSERT_EQ(borrowed->listeners().size(), scratch->listeners().size());
  for (size_t i = 0; i < scratch->listeners().size(); ++i)
    EXPECT_TRUE(std::equal(borrowed->listener(i).maglev.begin(), borrowed->listener(i).maglev.end(),
                           scratch->listener(i).maglev.begin(), scratch->listener(i).maglev.end()))
        << "listener " << i;
  // Listener 0 kept its inputs and so its table; the changed ones did not.
  EXPECT_TRUE(std::equal(borrowed->listener(0).maglev.begin(), borrowed->listener(0).maglev.end(),
                         current->listener(0).maglev.begin()));
  EXPECT_FALSE(std::equal(borrowed->listener(1).maglev.begin(), borrowed->listener(1).maglev.end(),
                          current->listener(1).maglev.begin()));
}

std::vector<uint16_t> slots_of(const dp::Listener& l) { return {l.maglev.begin(), l.maglev.end()}; }

TEST(ForwardingTable, UnchangedMaglevTablesAreSharedAndOutliveTheTableThatBuiltThem) {
  const TableSpec before = spec_with(6, 5);
  auto current = build(before, nullptr);
  TableSpec after = before;
  after.listeners[1].endpoints[2].weight = 200;
  auto next = build(after, current.get());
  for (size_t i : {0, 2, 3, 4, 5})
    EXPECT_EQ(next->listener(i).maglev.data(), current->listener(i).maglev.data()) << i;
  EXPECT_NE(next->listener(1).maglev.data(), current->listener(1).maglev.data());
  // The table in force goes (after a swap); the next one still has them all.
  current.reset();
  auto scratch = build(after, nullptr);
  for (size_t i = 0; i < 6; ++i)
    EXPECT_EQ(slots_of(next->listener(i)), slots_of(scratch->listener(i))) << "listener " << i;
  // And so does the one after it, sharing from two blocks.
  TableSpec third = after;
  third.listeners[5].endpoints[0].healthy = false;
  auto last = build(third, next.get());
  EXPECT_EQ(last->listener(1).maglev.data(), next->listener(1).maglev.data());
  EXPECT_EQ(last->listener(0).maglev.data(), next->listener(0).maglev.data());
  next.reset();
  auto scratch3 = build(third, nullptr);
  for (size_t i = 0; i < 6; ++i)
    EXPECT_EQ(slots_of(last->listener(i)), slots_of(scratch3->listener(i))) << "listener " << i;
}

TEST(ForwardingTable, ABlockLessThanHalfInUseIsCopiedFromNotShared) {
  const TableSpec before = spec_with(6, 5);
  auto current = build(before, nullptr);
  TableSpec after = before;
  for (int i = 0; i < 4; ++i) after.listeners[i].endpoints[0].weight = 3;
  auto next = build(after, current.get());
  // Two of the six tables in current's block are still wanted: copied.
  for (size_t i : {4, 5}) {
    EXPECT_NE(next->listener(i).maglev.data(), current->listener(i).maglev.data()) << i;
    EXPECT_EQ(slots_of(next->listener(i)), slots_of(current->listener(i))) << i;
  }
}

// Restart recovery: a first table built on several threads, and listeners
// with the same endpoint set sharing one build, give every listener the
// Maglev table a one-thread build gives it, and that table is the one
// build_maglev gives for its endpoints alone.
TEST(ForwardingTable, ParallelBuildAndSharedEndpointSetsGiveTheSameTables) {
  TableSpec spec = spec_with(24, 9);
  // Listeners 10..13 repeat listener 3's endpoints (one build, four copies);
  // 14 has them in another order, and 15 with one weight changed: both
  // are tables of their own.
  for (int i = 10; i < 14; ++i) spec.listeners[i].endpoints = spec.listeners[3].endpoints;
  spec.listeners[14].endpoints = spec.listeners[3].endpoints;
  std::reverse(spec.listeners[14].endpoints.begin(), spec.listeners[14].endpoints.end());
  spec.listeners[15].endpoints = spec.listeners[3].endpoints;
  spec.listeners[15].endpoints[2].weight += 1;
  spec.listeners[16].endpoints[1].healthy = false;
  for (int i = 17; i < 20; ++i) spec.listeners[i].endpoints = spec.listeners[3].endpoints;
  spec.listeners[18].endpoints[0].healthy = false;
  ASSERT_EQ(validate_table_spec(spec).message(), "");
  auto one = ForwardingTable::build(spec, 1, nullptr, 1);
  ASSERT_TRUE(one.ok()) << one.error();
  for (unsigned threads : {0u, 2u, 3u, 8u, 64u}) {
    auto many = ForwardingTable::build(spec, 1, nullptr, threads);
    ASSERT_TRUE(many.ok()) << many.error();
    for (size_t i = 0; i < spec.listeners.size(); ++i) {
      EXPECT_EQ(slots_of((*many)->listener(i)), slots_of((*one)->listener(i)))
          << threads << " threads, listener " << i;
      std::vector<dp::MaglevBackend> backends;
      for (const EndpointSpec& e : spec.listeners[i].endpoints)
        backends.push_back({.address = e.address, .weight = e.healthy ? e.weight : 0});
      EXPECT_EQ(slots_of((*many)->listener(i)), dp::build_maglev(backends, spec.maglev_size))
          << threads << " threads, listener " << i;
    }
  }
  // Copies, not one table shared: every listener's slots are its own.
  EXPECT_NE((*one)->listener(10).maglev.data(), (*one)->listener(3).maglev.data());
}

}  // namespace
}  // namespace onramp::test
