// The packet pipeline on plain buffers: encapsulation bytes, echo replies,
// ICMP errors following their flow, drain and health semantics across table
// swaps, and drop counting.
#include "dataplane/core/processor.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "dataplane/core/net_headers.h"
#include "dataplane/core/next_hop.h"
#include "dataplane/core/trace.h"
#include "tests/unit/processor_harness.h"

namespace onramp::test {
namespace {

using onramp::EndpointSpec;
using onramp::ListenerSpec;
using onramp::TableSpec;

TableSpec make_spec(std::vector<EndpointSpec> endpoints, Affinity affinity = Affinity::none) {
  return TableSpec{
      .version = 1,
      .pop = "FRA1",
      .tunnel_source_v4 = ip("192.0.2.1"),
      .tunnel_source_v6 = ip("2001:db8::1"),
      .next_hop_mac = {0x02, 0, 0, 0, 0, 0xfe},
      .listeners = {ListenerSpec{.name = "web",
                                 .vips = {ip("203.0.113.10"), ip("2001:db8:10::10")},
                                 .protocol = Protocol::tcp_udp,
                                 .port_ranges = {{80, 80}, {8000, 8099}},
                                 .affinity = affinity,
                                 .endpoints = std::move(endpoints)}},
  };
}

Bytes syn(const char* client, uint16_t port, const char* vip = "203.0.113.10",
          uint16_t dport = 80) {
  if (std::string(client).find(':') != std::string::npos)
    return cat(ether(0x86dd), ipv6(client, vip, 6, tcp(port, dport)));
  return cat(ether(0x0800), ipv4(client, vip, 6, tcp(port, dport)));
}

TEST(Processor, Ipv4InIpv4BytesAreExact) {
  auto table = build_table(make_spec({{.address = ip("198.51.100.7")}}));
  PacketProcessor proc(0, 1024);
  Bytes in = syn("192.0.2.10", 40000);
  auto r = run_frame(proc, *table, in);
  ASSERT_EQ(r.action, Action::forward);
  Bytes inner(in.begin() + 14, in.end());
  Bytes want = {0x02, 0, 0, 0, 0, 0xfe, 0x02, 0x70, 0x63, 0x61, 0x70, 0x00, 0x08, 0x00};
  // Outer IPv4 built independently: DF copied from the inner header, TTL 64,
  // protocol 4, from the tunnel source to the endpoint.
  Bytes outer = {0x45, 0x00, 0,    static_cast<uint8_t>(20 + inner.size()),
                 0,    0,    0x40, 0,
                 64,   4,    0,    0,
                 192,  0,    2,    1,
                 198,  51,   100,  7};
  uint16_t c = inet_checksum(outer.data(), 20);
  outer[10] = static_cast<uint8_t>(c >> 8);
  outer[11] = static_cast<uint8_t>(c);
  EXPECT_EQ(r.out, cat(cat(want, outer), inner));
  EXPECT_EQ(proc.stats().new_flows.load(), 1u);
  EXPECT_EQ(table->listener_totals(0).packets, 1u);
  EXPECT_EQ(table->endpoint_totals(table->listener(0).endpoints[0]).new_flows, 1u);
}

TEST(Processor, VlanTagIsKeptAndPaddingTrimmed) {
  auto table = build_table(make_spec({{.address = ip("198.51.100.7")}}));
  PacketProcessor proc(0, 1024);
  Bytes in = cat(ether(0x0800, {42}), ipv4("192.0.2.10", "203.0.113.10", 17, udp(5000, 80, 0)));
  in.resize(64, 0);
  auto r = run_frame(proc, *table, in);
  ASSERT_EQ(r.action, Action::forward);
  EXPECT_EQ(r.out[12], 0x81);
  EXPECT_EQ(r.out[15], 42);
  EXPECT_EQ(r.out[16], 0x08);
  EXPECT_EQ(r.out.size(), 18u + 20 + 28);
}

TEST(Processor, GueOverIpv6HasAValidUdpChecksum) {
  auto table =
      build_table(make_spec({{.address = ip("2001:db8:100::7"), .mode = ForwardingMode::gue}}));
  PacketProcessor proc(0, 1024);
  auto r = run_frame(proc, *table, syn("192.0.2.10", 40000));
  ASSERT_EQ(r.action, Action::forward);
  ASSERT_EQ(r.out[12], 0x86);
  const uint8_t* ip6 = &r.out[14];
  EXPECT_EQ(ip6[6], 17);
  const uint8_t* udph = ip6 + 40;
  uint16_t udp_len = static_cast<uint16_t>(udph[4] << 8 | udph[5]);
  EXPECT_EQ(udp_len, 8u + 40);
  EXPECT_EQ(udph[2] << 8 | udph[3], kDefaultGuePort);
  EXPECT_GE(udph[0], 0x80);  // source port in 32768..65535
  // Verify: pseudo-header + datagram sums to 0xffff (checksum 0 after fold).
  uint32_t sum = 0;
  for (int i = 8; i < 40; i += 2) sum += ip6[i] << 8 | ip6[i + 1];
  sum += udp_len + 17;
  EXPECT_EQ(inet_checksum(udph, udp_len, sum), 0);
  EXPECT_EQ(udph[8] >> 4, 4);  // GUE variant 1: the inner IPv4 header directly
}

TEST(Processor, EchoRequestIsAnswered) {
  auto table = build_table(make_spec({{.address = ip("198.51.100.7")}}));
  PacketProcessor proc(0, 1024);
  Bytes icmp = {8, 0, 0, 0, 0x12, 0x34, 0, 1, 'h', 'i'};
  uint16_t c = inet_checksum(icmp.data(), icmp.size());
  icmp[2] = static_cast<uint8_t>(c >> 8);
  icmp[3] = static_cast<uint8_t>(c);
  auto r = run_frame(proc, *table, cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 1, icmp)));
  ASSERT_EQ(r.action, Action::reply);
  EXPECT_EQ(Bytes(r.out.begin(), r.out.begin() + 6), (Bytes{0x02, 0, 0, 0, 0, 0x01}));
  EXPECT_EQ(IpAddress::from_v4(&r.out[26]), ip("203.0.113.10"));
  EXPECT_EQ(IpAddress::from_v4(&r.out[30]), ip("192.0.2.10"));
  EXPECT_EQ(inet_checksum(&r.out[14], 20), 0);
  EXPECT_EQ(r.out[34], 0);
  EXPECT_EQ(inet_checksum(&r.out[34], icmp.size()), 0);
  EXPECT_EQ(proc.stats().echo_replies.load(), 1u);
}

TEST(Processor, FragNeededFollowsItsFlow) {
  std::vector<EndpointSpec> eps;
  for (int i = 1; i <= 8; ++i)
    eps.push_back({.address = ip(("198.51.100." + std::to_string(i)).c_str())});
  auto table = build_table(make_spec(eps));
  PacketProcessor proc(0, 1024);
  for (uint16_t port = 1000; port < 1040; ++port) {
    auto fwd = run_frame(proc, *table, syn("192.0.2.10", port));
    ASSERT_EQ(fwd.action, Action::forward);
    // A router tells the VIP (source of the endpoint's DSR reply) that the
    // reply was too big; the quote is VIP:80 -> client:port.
    Bytes quoted = ipv4("203.0.113.10", "192.0.2.10", 6, tcp(80, port));
    quoted.resize(28);
    Bytes icmp = cat(Bytes{3, 4, 0, 0, 0, 0, 0x05, 0xdc}, quoted);
    PacketProcessor fresh(0, 1024);  // no flow state: the hash alone decides
    auto err = run_frame(fresh, *table,
                         cat(ether(0x0800), ipv4("198.51.100.254", "203.0.113.10", 1, icmp)));
    ASSERT_EQ(err.action, Action::forward);
    EXPECT_EQ(outer_dst(err.out), outer_dst(fwd.out)) << "port " << port;
    EXPECT_EQ(fresh.stats().icmp_errors_forwarded.load(), 1u);
    EXPECT_EQ(fresh.stats().new_flows.load(), 0u);  // errors create no flow
  }
}

TEST(Processor, DrainKeepsFlowsUnhealthyMovesThemRemovalMovesThem) {
  std::vector<EndpointSpec> eps = {{.address = ip("198.51.100.1")},
                                   {.address = ip("198.51.100.2")},
                                   {.address = ip("198.51.100.3")}};
  auto t1 = build_table(make_spec(eps));
  PacketProcessor proc(0, 4096);
  std::map<uint16_t, std::string> first;
  for (uint16_t p = 1; p <= 300; ++p) first[p] = endpoint_of(proc, *t1, syn("192.0.2.10", p));
  std::set<std::string> used;
  for (auto& [p, e] : first) used.insert(e);
  ASSERT_EQ(used.size(), 3u);

  // Drain .1: its flows stay, no new flow goes there.
  eps[0].weight = 0;
  auto t2 = build_table(make_spec(eps));
  for (auto& [p, e] : first) EXPECT_EQ(endpoint_of(proc, *t2, syn("192.0.2.10", p)), e);
  for (uint16_t p = 1000; p < 1300; ++p)
    EXPECT_NE(endpoint_of(proc, *t2, syn("192.0.2.10", p)), "198.51.100.1");
  EXPECT_EQ(proc.stats().flows_moved.load(), 0u);

  // .2 goes unhealthy: its flows, never past their SYN, move at once;
  // others stay.
  eps[1].healthy = false;
  auto t3 = build_table(make_spec(eps));
  uint64_t moved = 0;
  for (auto& [p, e] : first) {
    std::string now = endpoint_of(proc, *t3, syn("192.0.2.10", p));
    if (e == "198.51.100.2") {
      EXPECT_EQ(now, "198.51.100.3");
      ++moved;
    } else {
      EXPECT_EQ(now, e);
    }
  }
  EXPECT_EQ(proc.stats().flows_moved.load(), moved);

  // Remove .1 from the table (a new index layout): its flows move, the
  // flows that moved to .3 stay there.
  auto t4 = build_table(make_spec(
      {{.address = ip("198.51.100.3")}, {.address = ip("198.51.100.2"), .healthy = false}}));
  for (auto& [p, e] : first)
    EXPECT_EQ(endpoint_of(proc, *t4, syn("192.0.2.10", p)), "198.51.100.3");
}

// Draining established TCP flows from an unhealthy endpoint (issue 11, the
// chaos suite's cut WAN link): three endpoints, flows placed by their SYN
// and established by an ACK at t = 0; at `turned` the second endpoint turns
// unhealthy in a table built next to the first.
struct DrainBed {
  std::vector<EndpointSpec> eps = {{.address = ip("198.51.100.1")},
                                   {.address = ip("198.51.100.2")},
                                   {.address = ip("198.51.100.3")}};
  std::unique_ptr<ForwardingTable> before;
  std::unique_ptr<ForwardingTable> after;
  PacketProcessor proc{0, 4096};
  std::map<uint16_t, std::string> first;  // client port -> endpoint

  static constexpr const char* kSick = "198.51.100.2";
  static constexpr uint32_t kTurned = 1000;

  explicit DrainBed(uint32_t drain_s = kDefaultUnhealthyDrainS, uint8_t proto = 6) {
    for (auto& e : eps) e.unhealthy_drain_s = drain_s;
    before = build_at(nullptr, 0);
    for (uint16_t p = 1; p <= 300; ++p) {
      first[p] = endpoint_of(proc, *before, proto == 6 ? syn("192.0.2.10", p) : udp4(p));
      if (proto == 6) {
        EXPECT_EQ(endpoint_of(proc, *before, ack(p)), first[p]);
      }
    }
    eps[1].healthy = false;
    after = build_at(before.get(), kTurned);
  }
  std::unique_ptr<ForwardingTable> build_at(const ForwardingTable* previous, uint32_t now) {
    auto t = ForwardingTable::build(make_spec(eps), 1, previous, 1, now);
    EXPECT_TRUE(t.ok()) << t.error();
    return t.ok() ? std::move(*t) : nullptr;
  }
  static Bytes ack(uint16_t port) {
    return cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 6, tcp(port, 80, 0x10)));
  }
  static Bytes udp4(uint16_t port) {
    return cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 17, udp(port, 80)));
  }
  size_t on_sick() const {
    size_t n = 0;
    for (const auto& [p, e] : first) n += e == kSick;
    return n;
  }
};

TEST(Processor, DrainKeepsEstablishedTcpOnAnUnhealthyEndpoint) {
  DrainBed bed;
  ASSERT_GT(bed.on_sick(), 0u);
  // 29 s after it turned unhealthy, every established flow is where it was.
  for (auto& [p, e] : bed.first)
    EXPECT_EQ(endpoint_of(bed.proc, *bed.after, DrainBed::ack(p), 30000 - 1), e);
  EXPECT_EQ(bed.proc.stats().flows_moved.load(), 0u);
  EXPECT_EQ(bed.proc.stats().drained_packets.load(), bed.on_sick());
  // New connections avoid it all the same.
  for (uint16_t p = 1000; p < 1300; ++p)
    EXPECT_NE(endpoint_of(bed.proc, *bed.after, syn("192.0.2.10", p), 2000), DrainBed::kSick);
}

TEST(Processor, DrainEndsAfterTheInterval) {
  DrainBed bed;
  // A later table that still lists it unhealthy does not restart the drain.
  auto again = bed.build_at(bed.after.get(), 20000);
  const uint32_t end = DrainBed::kTurned + 30000;
  for (auto& [p, e] : bed.first)
    EXPECT_EQ(endpoint_of(bed.proc, *again, DrainBed::ack(p), end - 1), e);
  for (auto& [p, e] : bed.first) {
    std::string now = endpoint_of(bed.proc, *again, DrainBed::ack(p), end);
    if (e == DrainBed::kSick) {
      EXPECT_NE(now, DrainBed::kSick);
    } else {
      EXPECT_EQ(now, e);
    }
  }
  EXPECT_EQ(bed.proc.stats().flows_moved.load(), bed.on_sick());
  // Healthy again, then unhealthy: a new drain from the new verdict.
  bed.eps[1].healthy = true;
  auto healthy = bed.build_at(again.get(), end + 1000);
  bed.eps[1].healthy = false;
  auto sick = bed.build_at(healthy.get(), end + 2000);
  EXPECT_EQ(sick->listener(0).endpoints[1].unhealthy_since_ms, end + 2000);
  EXPECT_EQ(again->listener(0).endpoints[1].unhealthy_since_ms, DrainBed::kTurned);
}

TEST(Processor, ASynOnADrainedFlowReChooses) {
  DrainBed bed;
  for (auto& [p, e] : bed.first) {
    if (e != DrainBed::kSick) continue;
    // A client retrying its connect is not pinned to the unhealthy endpoint;
    // the handshake's ACK then follows the SYN to the new endpoint.
    std::string moved = endpoint_of(bed.proc, *bed.after, syn("192.0.2.10", p), 2000);
    EXPECT_NE(moved, DrainBed::kSick);
    EXPECT_EQ(endpoint_of(bed.proc, *bed.after, DrainBed::ack(p), 2001), moved);
  }
  EXPECT_EQ(bed.proc.stats().flows_moved.load(), bed.on_sick());
  EXPECT_EQ(bed.proc.stats().drained_packets.load(), 0u);
}

TEST(Processor, AFlowPastItsSynWhenTheEndpointTurnsUnhealthyDrains) {
  // The SYN went to the endpoint before it turned unhealthy; the
  // handshake's ACK, the flow's first packet without SYN, stays with it.
  DrainBed bed;
  PacketProcessor proc(0, 4096);
  for (auto& [p, e] : bed.first) ASSERT_EQ(endpoint_of(proc, *bed.before, syn("192.0.2.10", p)), e);
  for (auto& [p, e] : bed.first)
    EXPECT_EQ(endpoint_of(proc, *bed.after, DrainBed::ack(p), 2000), e);
  EXPECT_EQ(proc.stats().flows_moved.load(), 0u);
}

TEST(Processor, UdpFlowsStillMove) {
  DrainBed bed(kDefaultUnhealthyDrainS, 17);
  ASSERT_GT(bed.on_sick(), 0u);
  for (auto& [p, e] : bed.first) {
    std::string now = endpoint_of(bed.proc, *bed.after, DrainBed::udp4(p), 2000);
    if (e == DrainBed::kSick) {
      EXPECT_NE(now, DrainBed::kSick);
    } else {
      EXPECT_EQ(now, e);
    }
  }
  EXPECT_EQ(bed.proc.stats().flows_moved.load(), bed.on_sick());
  EXPECT_EQ(bed.proc.stats().drained_packets.load(), 0u);
}

TEST(Processor, ZeroDrainMovesAtOnce) {
  DrainBed bed(0);
  ASSERT_GT(bed.on_sick(), 0u);
  // Even a packet whose clock reads before the table was built.
  for (auto& [p, e] : bed.first) {
    std::string now = endpoint_of(bed.proc, *bed.after, DrainBed::ack(p), 0);
    if (e == DrainBed::kSick) {
      EXPECT_NE(now, DrainBed::kSick);
    } else {
      EXPECT_EQ(now, e);
    }
  }
  EXPECT_EQ(bed.proc.stats().flows_moved.load(), bed.on_sick());
}

TEST(Processor, AnEndpointRemovedFromTheTableLosesItsEstablishedFlowsAtOnce) {
  DrainBed bed;
  bed.eps.erase(bed.eps.begin() + 1);
  auto removed = bed.build_at(bed.after.get(), 2000);
  for (auto& [p, e] : bed.first) {
    std::string now = endpoint_of(bed.proc, *removed, DrainBed::ack(p), 2001);
    if (e == DrainBed::kSick) {
      EXPECT_NE(now, DrainBed::kSick);
    } else {
      EXPECT_EQ(now, e);
    }
  }
  EXPECT_EQ(bed.proc.stats().flows_moved.load(), bed.on_sick());
}

TEST(Processor, AFlowFirstSeenPastItsHandshakeIsEstablished) {
  // A connection this PoP never saw start (BGP moved its client here, or
  // the dataplane restarted) drains like any other.
  DrainBed bed;
  PacketProcessor proc(0, 4096);
  for (auto& [p, e] : bed.first) ASSERT_EQ(endpoint_of(proc, *bed.before, DrainBed::ack(p)), e);
  for (auto& [p, e] : bed.first)
    EXPECT_EQ(endpoint_of(proc, *bed.after, DrainBed::ack(p), 2000), e);
  EXPECT_EQ(proc.stats().drained_packets.load(), bed.on_sick());
}

TEST(Processor, SourceIpAffinityPinsAClient) {
  std::vector<EndpointSpec> eps;
  for (int i = 1; i <= 16; ++i)
    eps.push_back({.address = ip(("198.51.100." + std::to_string(i)).c_str())});
  auto table = build_table(make_spec(eps, Affinity::source_ip));
  PacketProcessor proc(0, 4096);
  std::set<std::string> clients_endpoints;
  for (int c = 11; c <= 30; ++c) {  // not the tunnel source, 192.0.2.1
    std::string client = "192.0.2." + std::to_string(c);
    std::set<std::string> seen;
    for (uint16_t p = 1; p <= 30; ++p)
      seen.insert(endpoint_of(proc, *table, syn(client.c_str(), p)));
    EXPECT_EQ(seen.size(), 1u) << client;
    clients_endpoints.insert(*seen.begin());
  }
  EXPECT_GT(clients_endpoints.size(), 4u);  // different clients spread out
  EXPECT_EQ(proc.stats().new_flows.load(), 20u);
}

// Source-IP affinity while the client's endpoint drains: a new
// connection goes where the client will go, and does not take the client's
// established connections with it (they share one entry otherwise); once
// the drain is over, those move too.
TEST(Processor, ANewConnectionOfADrainingClientLeavesItsOthersWhereTheyAre) {
  std::vector<EndpointSpec> eps;
  for (int i = 1; i <= 4; ++i)
    eps.push_back({.address = ip(("198.51.100." + std::to_string(i)).c_str())});
  const auto ack = [](uint16_t port) {
    return cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 6, tcp(port, 80, 0x10)));
  };
  auto before = build_table(make_spec(eps, Affinity::source_ip));
  PacketProcessor proc(0, 4096);
  const std::string home = endpoint_of(proc, *before, syn("192.0.2.10", 1000));
  ASSERT_EQ(endpoint_of(proc, *before, ack(1000)), home);
  for (auto& e : eps) e.healthy = e.address.to_string() != home;  // 30 s drain by default
  auto t = ForwardingTable::build(make_spec(eps, Affinity::source_ip), 1, before.get(), 1, 1000);
  ASSERT_TRUE(t.ok()) << t.error();
  ForwardingTable& after = **t;

  const std::string next = endpoint_of(proc, after, syn("192.0.2.10", 2000), 2000);
  EXPECT_NE(next, home);
  EXPECT_EQ(endpoint_of(proc, after, ack(1000), 2001), home);  // still draining there
  EXPECT_EQ(endpoint_of(proc, after, ack(2000), 2002), next);
  EXPECT_EQ(endpoint_of(proc, after, syn("192.0.2.10", 2000), 2003), next);  // a retry
  EXPECT_EQ(endpoint_of(proc, after, syn("192.0.2.10", 3000), 2004), next);  // the client's
  EXPECT_EQ(endpoint_of(proc, after, ack(1000), 2005), home);
  EXPECT_EQ(proc.stats().drained_packets.load(), 2u);
  EXPECT_EQ(proc.stats().flows_moved.load(), 0u);
  // The drain is over: the client, and with it its first connection, moves.
  EXPECT_EQ(endpoint_of(proc, after, ack(1000), 1000 + 30000 + 1), next);
  EXPECT_EQ(endpoint_of(proc, after, ack(2000), 1000 + 30000 + 2), next);
  EXPECT_EQ(proc.stats().flows_moved.load(), 1u);
}

TEST(Processor, DropsAreCountedByReason) {
  auto table = build_table(make_spec({{.address = ip("198.51.100.7"), .weight = 0}}));
  PacketProcessor proc(0, 1024);
  EXPECT_EQ(run_frame(proc, *table, syn("192.0.2.10", 1, "203.0.113.99")).action, Action::drop);
  EXPECT_EQ(drops(proc, DropReason::non_vip), 1u);
  run_frame(proc, *table, syn("192.0.2.10", 1, "203.0.113.10", 81));
  EXPECT_EQ(drops(proc, DropReason::no_listener), 1u);
  run_frame(proc, *table, syn("192.0.2.10", 1));
  EXPECT_EQ(drops(proc, DropReason::no_endpoint), 1u);  // only endpoint drained
  run_frame(
      proc, *table,
      cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 1, Bytes{13, 0, 0, 0, 0, 0, 0, 0})));
  EXPECT_EQ(drops(proc, DropReason::icmp_unsupported), 1u);
  run_frame(proc, *table, cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 47, Bytes(8, 0))));
  EXPECT_EQ(drops(proc, DropReason::no_listener), 2u);  // GRE to a VIP
  EXPECT_EQ(proc.stats().dropped(), 5u);
  EXPECT_EQ(proc.stats().forwarded.load(), 0u);
}

TEST(Processor, TooBigAndNoHeadroom) {
  TableSpec spec = make_spec({{.address = ip("198.51.100.7")}});
  spec.mtu = 1280;
  auto table = build_table(spec);
  PacketProcessor proc(0, 1024);
  Bytes big = cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 17, udp(1, 80, 1260 - 28)));
  EXPECT_EQ(run_frame(proc, *table, big).action, Action::forward);  // 1260 + 20 = 1280
  // Without DF and without buffers lent for fragments (pmtu_test.cc has
  // the ICMP error and the fragments).
  big = cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 17, udp(1, 80, 1261 - 28), {}, 0));
  EXPECT_EQ(run_frame(proc, *table, big).action, Action::drop);
  EXPECT_EQ(drops(proc, DropReason::too_big), 1u);

  Bytes frame = syn("192.0.2.10", 5);
  dp::PacketBuf pkt{frame.data(), static_cast<uint32_t>(frame.size()), 0};
  Action a;
  proc.process_burst(*table, &pkt, &a, 1, kPortMac, 0);
  EXPECT_EQ(a, Action::drop);
  EXPECT_EQ(drops(proc, DropReason::no_headroom), 1u);
}

TEST(Processor, AFullBurstMixesVerdicts) {
  auto table =
      build_table(make_spec({{.address = ip("198.51.100.7")}, {.address = ip("2001:db8:100::8")}}));
  PacketProcessor proc(0, 1024);
  std::vector<std::vector<uint8_t>> storage;
  std::vector<dp::PacketBuf> pkts;
  for (int i = 0; i < PacketProcessor::kMaxBurst; ++i) {
    Bytes f = i % 3 == 0 ? syn("192.0.2.10", static_cast<uint16_t>(i), "203.0.113.99")
                         : syn("2001:db8:c::1", static_cast<uint16_t>(i), "2001:db8:10::10");
    storage.emplace_back(kHeadroom + f.size());
    std::copy(f.begin(), f.end(), storage.back().begin() + kHeadroom);
  }
  for (auto& s : storage)
    pkts.push_back({s.data() + kHeadroom, static_cast<uint32_t>(s.size() - kHeadroom), kHeadroom});
  Action actions[PacketProcessor::kMaxBurst];
  proc.process_burst(*table, pkts.data(), actions, PacketProcessor::kMaxBurst, kPortMac, 0);
  for (int i = 0; i < PacketProcessor::kMaxBurst; ++i)
    EXPECT_EQ(actions[i], i % 3 == 0 ? Action::drop : Action::forward) << i;
  EXPECT_EQ(proc.stats().forwarded.load() + proc.stats().dropped(), 64u);
}

}  // namespace
}  // namespace onramp::test

namespace onramp::test {
namespace {

TEST(Processor, TxRefusalKeepsTheBooksBalanced) {
  auto table = build_table(make_spec({{.address = ip("198.51.100.7")}}));
  PacketProcessor proc(0, 1024);
  run_frame(proc, *table, syn("192.0.2.10", 1));
  Bytes echo = {8, 0, 0xf7, 0xff, 0, 0, 0, 0};
  run_frame(proc, *table, cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 1, echo)));
  proc.count_tx_refused(Action::forward);
  proc.count_tx_refused(Action::reply);
  EXPECT_EQ(proc.stats().forwarded.load(), 0u);
  EXPECT_EQ(proc.stats().echo_replies.load(), 0u);
  EXPECT_EQ(drops(proc, DropReason::tx_full), 2u);
  EXPECT_EQ(proc.stats().rx_packets.load(), proc.stats().dropped());
}

}  // namespace
}  // namespace onramp::test

// Relaying over the backbone: the ingress (FRA1, tunnel 192.0.2.1) wraps the
// packet it builds for the endpoint in GUE to the relay (SIN1, tunnel
// 192.0.2.9); the relay sends the inner packet on as its own.
namespace onramp::test {
namespace {

constexpr const char* kRelayV4 = "192.0.2.9";
constexpr const char* kRelayV6 = "2001:db8::9";

// The ingress's table: its endpoints reached over the relay of their family.
TableSpec ingress_spec(std::vector<EndpointSpec> endpoints) {
  for (EndpointSpec& e : endpoints) e.relay = ip(e.address.is_v4() ? kRelayV4 : kRelayV6);
  return make_spec(std::move(endpoints));
}

// The relay's table: the same endpoints, direct, and the ingress as a peer.
TableSpec relay_spec(std::vector<EndpointSpec> endpoints) {
  TableSpec spec = make_spec(std::move(endpoints));
  spec.pop = "SIN1";
  spec.tunnel_source_v4 = ip(kRelayV4);
  spec.tunnel_source_v6 = ip(kRelayV6);
  spec.relay_peers = {ip("192.0.2.1"), ip("2001:db8::1")};
  return spec;
}

uint16_t be16(const Bytes& b, size_t at) { return static_cast<uint16_t>(b[at] << 8 | b[at + 1]); }

// UDP checksum over IPv6 verifies (sums to 0 with the pseudo-header).
uint16_t udp6_check(const uint8_t* ip6) {
  const uint8_t* udph = ip6 + 40;
  const uint16_t len = static_cast<uint16_t>(udph[4] << 8 | udph[5]);
  uint32_t sum = 0;
  for (int i = 8; i < 40; i += 2) sum += ip6[i] << 8 | ip6[i + 1];
  sum += len + 17u;
  return inet_checksum(udph, len, sum);
}

TEST(Relay, IngressWrapsTheEndpointsPacketForTheRelay) {
  const std::vector<EndpointSpec> eps = {{.address = ip("198.51.100.7")}};
  auto direct = build_table(make_spec(eps));
  auto relayed = build_table(ingress_spec(eps));
  PacketProcessor p1(0, 1024), p2(0, 1024);
  Bytes in = syn("192.0.2.10", 40000);
  auto d = run_frame(p1, *direct, in);
  auto r = run_frame(p2, *relayed, in);
  ASSERT_EQ(r.action, Action::forward);
  ASSERT_EQ(r.out.size(), d.out.size() + 28);
  // L2 as for the endpoint; then IPv4 + UDP to the relay; then, byte for
  // byte, the packet the PoP sends the endpoint when it is direct.
  EXPECT_EQ(Bytes(r.out.begin(), r.out.begin() + 14), Bytes(d.out.begin(), d.out.begin() + 14));
  EXPECT_EQ(Bytes(r.out.begin() + 14 + 28, r.out.end()), Bytes(d.out.begin() + 14, d.out.end()));
  const uint8_t* o = &r.out[14];
  EXPECT_EQ(o[0], 0x45);
  EXPECT_EQ(be16(r.out, 14 + 2), d.out.size() - 14 + 28);
  EXPECT_EQ(o[6], 0x40);  // DF, as the endpoint's packet
  EXPECT_EQ(o[8], 64);
  EXPECT_EQ(o[9], 17);
  EXPECT_EQ(IpAddress::from_v4(o + 12), ip("192.0.2.1"));
  EXPECT_EQ(IpAddress::from_v4(o + 16), ip(kRelayV4));
  EXPECT_EQ(inet_checksum(o, 20), 0);
  EXPECT_GE(o[20], 0x80);  // source port from the flow hash
  EXPECT_EQ(be16(r.out, 14 + 22), kDefaultGuePort);
  EXPECT_EQ(be16(r.out, 14 + 24), d.out.size() - 14 + 8);
  EXPECT_EQ(be16(r.out, 14 + 26), 0);
  EXPECT_EQ(p2.stats().relayed_out.load(), 1u);
  EXPECT_EQ(p2.stats().forwarded.load(), 1u);
  EXPECT_EQ(p1.stats().relayed_out.load(), 0u);
}

// Both layers write the frame's Ethernet header with one function
// (encap.h, write_l2): tags kept once, at the front, MACs and EtherType set.
TEST(Relay, IngressKeepsVlanTagsOnceInFrontOfBothLayers) {
  const std::vector<EndpointSpec> eps = {{.address = ip("198.51.100.7")}};
  auto direct = build_table(make_spec(eps));
  auto relayed = build_table(ingress_spec(eps));
  for (const std::initializer_list<uint16_t> tags :
       {std::initializer_list<uint16_t>{42}, std::initializer_list<uint16_t>{10, 20}}) {
    PacketProcessor p1(0, 1024), p2(0, 1024);
    Bytes in = cat(ether(0x0800, tags), ipv4("192.0.2.10", "203.0.113.10", 6, tcp(40000, 80)));
    auto d = run_frame(p1, *direct, in);
    auto r = run_frame(p2, *relayed, in);
    ASSERT_EQ(d.action, Action::forward);
    ASSERT_EQ(r.action, Action::forward);
    const size_t l2 = 14 + 4 * tags.size();
    ASSERT_EQ(r.out.size(), d.out.size() + 28);
    EXPECT_EQ(Bytes(r.out.begin(), r.out.begin() + l2), Bytes(d.out.begin(), d.out.begin() + l2));
    EXPECT_EQ(Bytes(r.out.begin() + l2 + 28, r.out.end()), Bytes(d.out.begin() + l2, d.out.end()));
    EXPECT_EQ(be16(r.out, 12), 0x8100);
    EXPECT_EQ(be16(r.out, l2 - 2), 0x0800);
    EXPECT_EQ(r.out[l2], 0x45);
    EXPECT_EQ(r.out[l2 + 9], 17);
    EXPECT_EQ(inet_checksum(&r.out[l2], 20), 0);
  }
}

TEST(Relay, IngressOverIpv6WithGueHasValidChecksumsAndTheRelayPort) {
  TableSpec spec = ingress_spec({{.address = ip("2001:db8:100::7"), .mode = ForwardingMode::gue}});
  spec.relay_port = 6090;
  auto table = build_table(spec);
  PacketProcessor proc(0, 1024);
  auto r = run_frame(proc, *table, syn("2001:db8:c::1", 40000, "2001:db8:10::10"));
  ASSERT_EQ(r.action, Action::forward);
  const uint8_t* o = &r.out[14];
  EXPECT_EQ(o[6], 17);
  EXPECT_EQ(IpAddress::from_v6(o + 24), ip(kRelayV6));
  EXPECT_EQ(be16(r.out, 14 + 42), 6090);
  EXPECT_EQ(udp6_check(o), 0);
  const uint8_t* tunnel = o + 48;  // the endpoint's GUE packet
  EXPECT_EQ(tunnel[0] >> 4, 6);
  EXPECT_EQ(IpAddress::from_v6(tunnel + 24), ip("2001:db8:100::7"));
  EXPECT_EQ(udp6_check(tunnel), 0);
}

TEST(Relay, TheIngressStillChoosesTheEndpoint) {
  std::vector<EndpointSpec> eps;
  for (int i = 1; i <= 8; ++i)
    eps.push_back({.address = ip(("198.51.100." + std::to_string(i)).c_str())});
  auto direct = build_table(make_spec(eps));
  auto relayed = build_table(ingress_spec(eps));
  PacketProcessor p1(0, 1024), p2(0, 1024);
  for (uint16_t port = 2000; port < 2100; ++port) {
    auto d = run_frame(p1, *direct, syn("192.0.2.10", port));
    auto r = run_frame(p2, *relayed, syn("192.0.2.10", port));
    // The relay's header off.
    Bytes tunnel =
        cat(Bytes(r.out.begin(), r.out.begin() + 14), Bytes(r.out.begin() + 42, r.out.end()));
    EXPECT_EQ(outer_dst(tunnel), outer_dst(d.out)) << port;
  }
}

TEST(Relay, InnerMtuSubtractsBothHeaders) {
  TableSpec spec = ingress_spec({{.address = ip("198.51.100.7")}});
  spec.mtu = 1280;
  auto table = build_table(spec);
  PacketProcessor proc(0, 1024);
  // 20 (IPIP) + 28 (relay IPv4 + UDP): 1232 fit.
  Bytes fits = cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 17, udp(1, 80, 1232 - 28)));
  auto r = run_frame(proc, *table, fits);
  ASSERT_EQ(r.action, Action::forward);
  EXPECT_EQ(r.out.size(), 14u + 1280);
  Bytes big = cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 17, udp(1, 80, 1233 - 28)));
  auto e = run_frame(proc, *table, big);
  ASSERT_EQ(e.action, Action::icmp_error);
  EXPECT_EQ(e.out[14 + 20], 3);               // frag-needed
  EXPECT_EQ(be16(e.out, 14 + 20 + 6), 1232);  // the MTU announced
  EXPECT_EQ(proc.stats().relayed_out.load(), 1u);
}

// What the ingress sends the relay for a client packet.
Bytes relayed_frame(const std::vector<EndpointSpec>& eps, const Bytes& client_frame) {
  auto table = build_table(ingress_spec(eps));
  PacketProcessor proc(0, 1024);
  auto r = run_frame(proc, *table, client_frame);
  EXPECT_EQ(r.action, Action::forward);
  return r.out;
}

TEST(Relay, RelayResourcesTheInnerPacketAndSendsItOn) {
  const std::vector<EndpointSpec> eps = {{.address = ip("198.51.100.7")}};
  Bytes in = relayed_frame(eps, syn("192.0.2.10", 40000));
  auto table = build_table(relay_spec(eps));
  PacketProcessor proc(0, 1024);
  auto r = run_frame(proc, *table, in);
  ASSERT_EQ(r.action, Action::forward);
  ASSERT_EQ(r.out.size(), in.size() - 28);
  Bytes want_l2 = {0x02, 0, 0, 0, 0, 0xfe, 0x02, 0x70, 0x63, 0x61, 0x70, 0x00, 0x08, 0x00};
  EXPECT_EQ(Bytes(r.out.begin(), r.out.begin() + 14), want_l2);
  const uint8_t* o = &r.out[14];
  EXPECT_EQ(IpAddress::from_v4(o + 12), ip(kRelayV4));  // the relay's own source
  EXPECT_EQ(IpAddress::from_v4(o + 16), ip("198.51.100.7"));
  EXPECT_EQ(o[8], 63);
  EXPECT_EQ(o[9], 4);
  EXPECT_EQ(inet_checksum(o, 20), 0);
  // The client's packet itself is untouched.
  EXPECT_EQ(Bytes(r.out.begin() + 34, r.out.end()), Bytes(in.begin() + 14 + 48, in.end()));
  EXPECT_EQ(proc.stats().relayed_in.load(), 1u);
  EXPECT_EQ(proc.stats().forwarded.load(), 1u);
  EXPECT_EQ(proc.stats().new_flows.load(), 0u);  // nothing per flow
  EXPECT_EQ(proc.flows().stats().inserts, 0u);
}

// A PoP that learns its next hop (no next_hop_mac in the table, an
// exception path): both relay hops send to the learned MAC, and the relay
// drops while it is unresolved, as the ingress does.
TEST(Relay, BothHopsUseTheLearnedNextHop) {
  constexpr MacAddress kLearned = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};
  const std::vector<EndpointSpec> eps = {{.address = ip("198.51.100.7")}};
  dp::LearnedNextHop learned;
  learned.set(kLearned);
  TableSpec ingress = ingress_spec(eps);
  ingress.next_hop_mac = MacAddress{};
  auto ingress_table = build_table(ingress);
  PacketProcessor ingress_proc(0, 1024);
  ingress_proc.set_learned_next_hop(&learned);
  auto sent = run_frame(ingress_proc, *ingress_table, syn("192.0.2.10", 40000));
  ASSERT_EQ(sent.action, Action::forward);
  EXPECT_EQ(Bytes(sent.out.begin(), sent.out.begin() + 6), Bytes(kLearned.begin(), kLearned.end()));

  TableSpec relay = relay_spec(eps);
  relay.next_hop_mac = MacAddress{};
  auto relay_table = build_table(relay);
  PacketProcessor relay_proc(0, 1024);
  dp::LearnedNextHop unresolved;
  relay_proc.set_learned_next_hop(&unresolved);
  EXPECT_EQ(run_frame(relay_proc, *relay_table, sent.out).action, Action::drop);
  EXPECT_EQ(drops(relay_proc, DropReason::next_hop_unresolved), 1u);
  relay_proc.set_learned_next_hop(&learned);
  auto r = run_frame(relay_proc, *relay_table, sent.out);
  ASSERT_EQ(r.action, Action::forward);
  EXPECT_EQ(Bytes(r.out.begin(), r.out.begin() + 6), Bytes(kLearned.begin(), kLearned.end()));
  EXPECT_EQ(relay_proc.stats().relayed_in.load(), 1u);
}

TEST(Relay, RelayOverIpv6KeepsTheGueChecksumValid) {
  const std::vector<EndpointSpec> eps = {
      {.address = ip("2001:db8:100::7"), .mode = ForwardingMode::gue}};
  Bytes in = relayed_frame(eps, syn("2001:db8:c::1", 40000, "2001:db8:10::10"));
  auto table = build_table(relay_spec(eps));
  PacketProcessor proc(0, 1024);
  auto r = run_frame(proc, *table, in);
  ASSERT_EQ(r.action, Action::forward);
  const uint8_t* o = &r.out[14];
  EXPECT_EQ(IpAddress::from_v6(o + 8), ip(kRelayV6));
  EXPECT_EQ(o[7], 63);
  EXPECT_EQ(udp6_check(o), 0);
}

TEST(Relay, RelayRefusesWhatIsNotARelayedPacketOfAPeer) {
  const std::vector<EndpointSpec> eps = {{.address = ip("198.51.100.7")}};
  const Bytes good = relayed_frame(eps, syn("192.0.2.10", 40000));
  auto table = build_table(relay_spec(eps));
  PacketProcessor proc(0, 1024);
  auto refused = [&](Bytes frame, DropReason why) {
    const uint64_t before = drops(proc, why);
    EXPECT_EQ(run_frame(proc, *table, frame).action, Action::drop) << dp::drop_reason_name(why);
    EXPECT_EQ(drops(proc, why), before + 1) << dp::drop_reason_name(why);
  };
  constexpr size_t kInner = 14 + 28;  // the endpoint's packet
  Bytes b = good;
  b[14 + 12 + 3] = 2;  // outer source 192.0.2.2: not a peer
  refused(b, DropReason::relay_unknown_peer);
  b = good;
  b[kInner] = 0x00;  // GUE payload that is no IP packet
  refused(b, DropReason::relay_malformed);
  b = good;
  b[kInner + 9] = 47;  // GRE inside
  refused(b, DropReason::relay_malformed);
  b = good;
  b[14 + 25] -= 1;  // UDP length short of the datagram
  refused(b, DropReason::relay_malformed);
  b = good;
  b[kInner + 12 + 3] = 3;  // inner source 192.0.2.3: not the peer that sent it
  refused(b, DropReason::relay_source_mismatch);
  b = good;
  b[kInner + 16] = 192, b[kInner + 17] = 0, b[kInner + 18] = 2, b[kInner + 19] = 1;
  refused(b, DropReason::relay_nested);  // to the peer itself
  b = good;
  b[kInner + 19] = 8;  // 198.51.100.8: no endpoint of SIN1
  refused(b, DropReason::relay_not_endpoint);
  b = good;
  b[kInner + 8] = 1;  // TTL 1
  refused(b, DropReason::relay_ttl_exceeded);
  // Not on the relay port: not relay traffic at all.
  b = good;
  b[14 + 23] = 0x81;
  refused(b, DropReason::non_vip);
  EXPECT_EQ(proc.stats().forwarded.load(), 0u);
  EXPECT_EQ(run_frame(proc, *table, good).action, Action::forward);
}

TEST(Relay, VlanTagsSurviveBothHops) {
  const std::vector<EndpointSpec> eps = {{.address = ip("198.51.100.7")}};
  Bytes client = cat(ether(0x0800, {42}), ipv4("192.0.2.10", "203.0.113.10", 6, tcp(1, 80)));
  Bytes relayed = relayed_frame(eps, client);
  ASSERT_EQ(relayed.size(), client.size() + 48);
  EXPECT_EQ(relayed[15], 42);
  auto table = build_table(relay_spec(eps));
  PacketProcessor proc(0, 1024);
  auto r = run_frame(proc, *table, relayed);
  ASSERT_EQ(r.action, Action::forward);
  ASSERT_EQ(r.out.size(), client.size() + 20);
  EXPECT_EQ(r.out[12], 0x81);
  EXPECT_EQ(r.out[15], 42);
  EXPECT_EQ(be16(r.out, 16), 0x0800);
  EXPECT_EQ(IpAddress::from_v4(&r.out[18 + 12]), ip(kRelayV4));
  EXPECT_EQ(inet_checksum(&r.out[18], 20), 0);
  EXPECT_EQ(Bytes(r.out.begin() + 38, r.out.end()), Bytes(client.begin() + 18, client.end()));
}

TEST(Relay, AGueEndpointOnAnotherPortIsNotARelayTarget) {
  const std::vector<EndpointSpec> eps = {
      {.address = ip("198.51.100.7"), .mode = ForwardingMode::gue, .gue_port = 7000}};
  Bytes in = relayed_frame(eps, syn("192.0.2.10", 40000));
  std::vector<EndpointSpec> at_relay = eps;
  at_relay[0].gue_port = 7001;
  auto table = build_table(relay_spec(at_relay));
  PacketProcessor proc(0, 1024);
  EXPECT_EQ(run_frame(proc, *table, in).action, Action::drop);
  EXPECT_EQ(drops(proc, DropReason::relay_not_endpoint), 1u);
  auto same = build_table(relay_spec(eps));
  EXPECT_EQ(run_frame(proc, *same, in).action, Action::forward);
}

TEST(Relay, TraceNamesTheRelay) {
  auto table = build_table(ingress_spec({{.address = ip("198.51.100.7")}}));
  dp::FlowTrace t = dp::trace_flow(*table, FlowQuery{.client = ip("192.0.2.10"),
                                                     .client_port = 40000,
                                                     .vip = ip("203.0.113.10"),
                                                     .port = 80,
                                                     .l4_proto = 6});
  ASSERT_FALSE(t.steps.empty());
  EXPECT_NE(t.steps.back().find("via PoP 192.0.2.9"), std::string::npos) << t.steps.back();
  EXPECT_NE(t.steps.back().find("1452 bytes fit"), std::string::npos) << t.steps.back();
}

// A hit on an endpoint whose tunnel carries no entropy skips the flow hash
// (PacketProcessor::flow_hash), which is right only if no byte of that
// tunnel packet depends on it: every kind of endpoint, direct and relayed,
// encapsulates one packet under two hashes, and the outputs differ exactly
// for the endpoints uses_flow_hash names.
TEST(Encap, FlowHashIsReadExactlyWhereSaid) {
  const std::vector<EndpointSpec> eps = {
      {.address = ip("198.51.100.7")},
      {.address = ip("198.51.100.8"), .mode = ForwardingMode::gue},
      {.address = ip("2001:db8:e::7")},
      {.address = ip("2001:db8:e::8"), .mode = ForwardingMode::gue}};
  const dp::TunnelL2 l2({0x02, 0, 0, 0, 0, 0xfe}, kPortMac);
  int direct_ipip_v4 = 0;
  for (const TableSpec& spec : {make_spec(eps), ingress_spec(eps)}) {
    auto table = build_table(spec);
    ASSERT_TRUE(table);
    for (const dp::Endpoint& e : table->listener(0).endpoints) {
      Bytes out[2];
      for (int k = 0; k < 2; ++k) {
        const Bytes frame = syn("192.0.2.10", 40000);
        std::vector<uint8_t> storage(kHeadroom + frame.size());
        std::copy(frame.begin(), frame.end(), storage.begin() + kHeadroom);
        dp::PacketBuf pkt{storage.data() + kHeadroom, static_cast<uint32_t>(frame.size()),
                          kHeadroom};
        dp::ParsedPacket p;
        DropReason reason;
        ASSERT_TRUE(dp::parse_packet(pkt.data, pkt.len, p, reason));
        ASSERT_TRUE(dp::encapsulate(pkt, p, e, *table, l2,
                                    k ? 0xfedcba9876543210ULL : 0x0123456789abcdefULL, reason));
        out[k] = Bytes(pkt.data, pkt.data + pkt.len);
      }
      EXPECT_EQ(out[0] != out[1], dp::uses_flow_hash(e))
          << e.address.to_string() << (e.relayed ? " relayed" : " direct");
      direct_ipip_v4 += !dp::uses_flow_hash(e);
    }
  }
  EXPECT_EQ(direct_ipip_v4, 1);  // the case the fast path saves on is there
}

}  // namespace
}  // namespace onramp::test
