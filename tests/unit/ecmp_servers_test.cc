// Two servers of one PoP behind the router's ECMP (docs/routing.md "A PoP of
// several servers"): each builds its own table from the controller's, with
// its own tunnel source and next hop's MAC put in, and keeps its own flow
// table. A flow that ECMP moves to the other server (a server added,
// drained or dead) meets no flow state there: it is placed by a new lookup,
// which is the same Maglev (or affinity) decision as on the first server
// because nothing else of the tables differs.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "dataplane/core/processor.h"
#include "tests/unit/processor_harness.h"

namespace onramp::test {
namespace {

// The controller's table as the agent of server `server` (0 or 1) applies
// it: the per-host fields are its own. `weights`: one per endpoint.
TableSpec server_table(int server, std::vector<std::pair<const char*, uint32_t>> endpoints,
                       Affinity affinity = Affinity::none, uint64_t version = 1) {
  TableSpec spec{.version = version,
                 .pop = "FRA1",
                 .tunnel_source_v4 = ip(server == 0 ? "192.0.2.1" : "192.0.2.2"),
                 .next_hop_mac = {0x02, 0, 0, 0, static_cast<uint8_t>(server), 0xfe},
                 .listeners = {ListenerSpec{.name = "web",
                                            .vips = {ip("203.0.113.10")},
                                            .protocol = Protocol::tcp_udp,
                                            .port_ranges = {{80, 80}},
                                            .affinity = affinity}}};
  for (auto [address, weight] : endpoints)
    spec.listeners[0].endpoints.push_back({.address = ip(address), .weight = weight});
  return spec;
}

std::unique_ptr<ForwardingTable> build(const TableSpec& spec,
                                       const ForwardingTable* previous = nullptr) {
  return build_table(spec, 1, previous);
}

Bytes tcp_packet(const char* client, uint16_t sport, uint8_t flags) {
  return cat(ether(0x0800), ipv4(client, "203.0.113.10", 6, tcp(sport, 80, flags)));
}

const std::vector<std::pair<const char*, uint32_t>> kThree = {
    {"198.51.100.1", 128}, {"198.51.100.2", 128}, {"198.51.100.3", 64}};

// Every packet of every flow goes to one endpoint, whichever server ECMP
// hands it to, packet by packet: same tables, same decision.
TEST(EcmpServers, AFlowsPacketsSplitBetweenTwoServersReachOneEndpoint) {
  for (Affinity affinity : {Affinity::none, Affinity::source_ip}) {
    auto ta = build(server_table(0, kThree, affinity));
    auto tb = build(server_table(1, kThree, affinity));
    PacketProcessor a(0, 4096), b(0, 4096);
    std::map<std::string, int> used;
    for (uint16_t port = 1000; port < 1300; ++port) {
      const char* client = port % 2 ? "192.0.2.10" : "192.0.2.77";
      std::string first = endpoint_of(a, *ta, tcp_packet(client, port, 0x02));  // SYN on server a
      ASSERT_NE(first, "");
      ++used[first];
      // The rest alternate, then stay on b: a server that dies moves every
      // packet after it to the other.
      for (int i = 0; i < 6; ++i) {
        bool on_a = i < 3 && i % 2 == 1;
        std::string e = on_a ? endpoint_of(a, *ta, tcp_packet(client, port, 0x10))
                             : endpoint_of(b, *tb, tcp_packet(client, port, 0x10));
        EXPECT_EQ(e, first) << "port " << port << " packet " << i;
      }
    }
    if (affinity == Affinity::none) {
      EXPECT_EQ(used.size(), 3u) << "flows spread";
    }
  }
}

// The limit: server b decides by the table it runs when the flow arrives.
// A table change between the flow's start on a and its move to b moves it
// only where Maglev moved its slot (minimal disruption: about the share
// the change gave the new endpoint), and an endpoint that drains (weight 0)
// keeps its flows on a only: on b they are new and go elsewhere.
TEST(EcmpServers, AMoveAcrossATableChangeFollowsTheNewTable) {
  auto ta = build(server_table(0, {{"198.51.100.1", 128}, {"198.51.100.2", 128}}));
  PacketProcessor a(0, 4096), b(0, 4096);
  std::map<uint16_t, std::string> first;
  for (uint16_t port = 2000; port < 2300; ++port) {
    run_frame(a, *ta, tcp_packet("192.0.2.10", port, 0x02));
    first[port] = endpoint_of(a, *ta, tcp_packet("192.0.2.10", port, 0x10));
  }
  // An endpoint added: a third of the flows move on b, the rest stay.
  auto tb = build(server_table(1, kThree, Affinity::none, 2));
  int moved = 0;
  for (auto& [port, endpoint] : first) {
    std::string e = endpoint_of(b, *tb, tcp_packet("192.0.2.10", port, 0x10));
    if (e != endpoint) {
      ++moved;
      EXPECT_EQ(e, "198.51.100.3") << "moved to an endpoint the change did not add";
    }
  }
  EXPECT_GT(moved, 30);
  EXPECT_LT(moved, 150);

  // 198.51.100.1 drains: on a its flows stay; on b every one of them moves.
  auto drained =
      build(server_table(1, {{"198.51.100.1", 0}, {"198.51.100.2", 128}}, Affinity::none, 3));
  PacketProcessor b2(0, 4096);
  for (auto& [port, endpoint] : first) {
    EXPECT_EQ(endpoint_of(a, *ta, tcp_packet("192.0.2.10", port, 0x10)), endpoint);
    std::string e = endpoint_of(b2, *drained, tcp_packet("192.0.2.10", port, 0x10));
    EXPECT_EQ(e, "198.51.100.2") << port;
  }
}

}  // namespace
}  // namespace onramp::test
