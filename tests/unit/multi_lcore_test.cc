// Two PacketProcessors on one table stand for two worker lcores polling two
// RSS queues (docs/dataplane.md, "Several queues"): what is shared (the
// table, so a new flow picks the same endpoint on either) and what is not
// (flow, fragment and rate-limit state, so a packet that lands on the other
// lcore is handled as that lcore alone would).
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "dataplane/core/pmtu.h"
#include "dataplane/core/processor.h"
#include "tests/unit/processor_harness.h"

namespace onramp::test {
namespace {

constexpr unsigned kLcores = 2;

TableSpec spec_with(std::vector<const char*> endpoints, uint16_t mtu = kDefaultMtu) {
  TableSpec spec{.version = 1,
                 .pop = "FRA1",
                 .tunnel_source_v4 = ip("192.0.2.1"),
                 .next_hop_mac = {0x02, 0, 0, 0, 0, 0xfe},
                 .listeners = {ListenerSpec{.name = "web",
                                            .vips = {ip("203.0.113.10")},
                                            .protocol = Protocol::tcp_udp,
                                            .port_ranges = {{53, 53}, {80, 80}}}},
                 .mtu = mtu};
  for (const char* e : endpoints) spec.listeners[0].endpoints.push_back({.address = ip(e)});
  return spec;
}

std::unique_ptr<ForwardingTable> build(const TableSpec& spec,
                                       const ForwardingTable* previous = nullptr) {
  return build_table(spec, kLcores, previous);
}

Bytes tcp_packet(uint16_t sport, uint8_t flags) {
  return cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 6, tcp(sport, 80, flags)));
}

// The endpoint of a new flow is a function of its hash and the table's
// Maglev lookup, both the same on every lcore: whichever queue RSS gives a
// flow, it goes to the same endpoint.
TEST(MultiLcore, ANewFlowPicksTheSameEndpointOnEitherLcore) {
  auto table = build(spec_with({"198.51.100.1", "198.51.100.2", "198.51.100.3"}));
  PacketProcessor a(0, 4096), b(1, 4096);
  for (uint16_t port = 1000; port < 1200; ++port) {
    const std::string on_a = endpoint_of(a, *table, tcp_packet(port, 0x02));
    ASSERT_NE(on_a, "");
    EXPECT_EQ(on_a, endpoint_of(b, *table, tcp_packet(port, 0x02))) << port;
  }
}

// Established flows live in the lcore's own flow table. Across a table
// change that moves Maglev slots, a flow's packets stay on its endpoint on
// the lcore that knows it; the same flow arriving on the other lcore (its
// queue changed: RSS reconfigured, a queue added) is new there and placed
// by the new table.
TEST(MultiLcore, EstablishedFlowsAreKnownOnlyToTheirLcore) {
  auto t1 = build(spec_with({"198.51.100.1", "198.51.100.2"}));
  PacketProcessor a(0, 4096), b(1, 4096);
  std::map<uint16_t, std::string> first;
  for (uint16_t port = 2000; port < 2100; ++port) {
    run_frame(a, *t1, tcp_packet(port, 0x02));
    first[port] = endpoint_of(a, *t1, tcp_packet(port, 0x10));  // ACK: established
  }
  auto t2 = build(spec_with({"198.51.100.1", "198.51.100.2", "198.51.100.3"}), t1.get());
  int moved_on_b = 0;
  for (auto& [port, endpoint] : first) {
    EXPECT_EQ(endpoint_of(a, *t2, tcp_packet(port, 0x10)), endpoint) << port;
    if (endpoint_of(b, *t2, tcp_packet(port, 0x10)) != endpoint) ++moved_on_b;
  }
  // About a third of the flows have a slot of the new endpoint now.
  EXPECT_GT(moved_on_b, 10);
  EXPECT_EQ(a.stats().flows_moved.load(), 0u);
}

// Fragment trains are per lcore: RSS must hash every fragment of a
// datagram, the first one included, on its addresses only (no ports), so
// they all land on one queue. A later fragment that reaches another lcore
// than its first has no train there and is dropped.
TEST(MultiLcore, ALaterFragmentOnAnotherLcoreThanItsFirstIsDropped) {
  auto table = build(spec_with({"198.51.100.1", "198.51.100.2"}));
  PacketProcessor a(0, 4096), b(1, 4096);
  auto first = [](uint16_t id) {
    Bytes f = ipv4("192.0.2.9", "203.0.113.10", 17, udp(5353, 53, 16), {}, 0x2000);
    f[4] = static_cast<uint8_t>(id >> 8), f[5] = static_cast<uint8_t>(id);
    return cat(ether(0x0800), f);
  };
  auto later = [](uint16_t id) {
    Bytes f = ipv4("192.0.2.9", "203.0.113.10", 17, Bytes(8, 'x'), {}, 0x0003);
    f[4] = static_cast<uint8_t>(id >> 8), f[5] = static_cast<uint8_t>(id);
    return cat(ether(0x0800), f);
  };
  // Split across lcores: the later fragment is lost.
  const std::string head = endpoint_of(a, *table, first(7));
  ASSERT_NE(head, "");
  EXPECT_EQ(run_frame(b, *table, later(7)).action, Action::drop);
  EXPECT_EQ(drops(b, DropReason::fragment_no_first), 1u);
  // Together on one lcore: it follows its first.
  EXPECT_EQ(endpoint_of(a, *table, later(7)), head);
  EXPECT_EQ(drops(a, DropReason::fragment_no_first), 0u);
}

// ICMP errors (frag-needed) are built by the lcore that received the packet
// and sent on its own queue, rate-limited by that lcore's buckets: a client
// whose packets land on both lcores gets up to twice the burst.
TEST(MultiLcore, IcmpErrorsAreAnsweredAndRateLimitedPerLcore) {
  auto table = build(spec_with({"198.51.100.7"}, 1280));
  PacketProcessor a(0, 4096), b(1, 4096);
  auto big = [](uint16_t sport) {
    return cat(ether(0x0800), ipv4("198.18.0.1", "203.0.113.10", 17, udp(sport, 53, 1300)));
  };
  for (uint32_t i = 0; i < dp::IcmpRateLimiter::kBurst; ++i)
    EXPECT_EQ(run_frame(a, *table, big(1), 1000).action, Action::icmp_error);
  EXPECT_EQ(run_frame(a, *table, big(1), 1000).action, Action::drop);
  for (uint32_t i = 0; i < dp::IcmpRateLimiter::kBurst; ++i)
    EXPECT_EQ(run_frame(b, *table, big(2), 1000).action, Action::icmp_error);
  EXPECT_EQ(run_frame(b, *table, big(2), 1000).action, Action::drop);
  EXPECT_EQ(a.stats().icmp_too_big_sent.load(), dp::IcmpRateLimiter::kBurst);
  EXPECT_EQ(b.stats().icmp_too_big_sent.load(), dp::IcmpRateLimiter::kBurst);
  EXPECT_EQ(drops(a, DropReason::too_big_rate_limited), 1u);
}

}  // namespace
}  // namespace onramp::test
