// The AF_XDP steering program's map contents across table swaps
// (dataplane/xdp/steering.h), against fake maps; and the EAL arguments that
// give net_af_xdp ports the program.
#include <gtest/gtest.h>

#include <map>

#include "dataplane/xdp/steering.h"

namespace onramp::dp {
namespace {

IpAddress ip(const char* text) { return *IpAddress::parse(text); }

// A port's maps, as a set, with a record of every call; an address in
// `refuse` makes insert and erase fail.
struct FakeMaps final : SteeringMaps {
  SteeringSet entries;
  std::vector<std::string> calls;
  SteeringSet refuse;
  Status insert(const SteeredDestination& d) override {
    calls.push_back("+" + d.to_string());
    if (refuse.contains(d)) return error("map full");
    entries.insert(d);
    return ok_status();
  }
  Status erase(const SteeredDestination& d) override {
    calls.push_back("-" + d.to_string());
    if (refuse.contains(d)) return error("no permission");
    entries.erase(d);
    return ok_status();
  }
};

TableSpec table(std::vector<std::vector<const char*>> listener_vips) {
  TableSpec spec{.tunnel_source_v4 = ip("192.0.2.1"), .tunnel_source_v6 = ip("2001:db8::1")};
  int n = 0;
  for (const auto& vips : listener_vips) {
    ListenerSpec l{.name = "l" + std::to_string(n++)};
    for (const char* v : vips) l.vips.push_back(ip(v));
    spec.listeners.push_back(l);
  }
  return spec;
}

SteeringSet vips(std::vector<const char*> addrs) {
  SteeringSet s;
  for (const char* a : addrs) s.insert({.address = ip(a)});
  return s;
}

TEST(SteeringSet, EveryVipOnceBothFamilies) {
  auto spec = table({{"203.0.113.10", "2001:db8:1::10"}, {"203.0.113.10", "203.0.113.11"}});
  EXPECT_EQ(steering_set(spec), vips({"203.0.113.10", "203.0.113.11", "2001:db8:1::10"}));
}

TEST(SteeringSet, ARelaySteersUdpToItsTunnelAddressesOnTheRelayPort) {
  auto spec = table({{"203.0.113.10"}});
  EXPECT_EQ(steering_set(spec), vips({"203.0.113.10"})) << "no relay_peers: not a relay";
  spec.relay_peers = {ip("198.51.100.18")};
  spec.relay_port = 6081;
  SteeringSet want = vips({"203.0.113.10"});
  want.insert({.address = ip("192.0.2.1"), .udp_port = 6081});
  want.insert({.address = ip("2001:db8::1"), .udp_port = 6081});
  EXPECT_EQ(steering_set(spec), want);
  spec.relay_port = 0;  // the table's gue_port
  want.clear();
  want = vips({"203.0.113.10"});
  want.insert({.address = ip("192.0.2.1"), .udp_port = spec.gue_port});
  want.insert({.address = ip("2001:db8::1"), .udp_port = spec.gue_port});
  EXPECT_EQ(steering_set(spec), want);
  EXPECT_EQ((SteeredDestination{.address = ip("2001:db8::1"), .udp_port = 6081}.to_string()),
            "[2001:db8::1]:6081/udp");
}

struct SwapTest : ::testing::Test {
  FakeMaps* a = new FakeMaps;
  FakeMaps* b = new FakeMaps;
  VipSteering steering{[this] {
    std::vector<std::unique_ptr<SteeringMaps>> v;
    v.emplace_back(a);
    v.emplace_back(b);
    return v;
  }()};
};

TEST_F(SwapTest, NewVipsBeforeTheSwapRemovedOnesAfter) {
  steering.before_swap(vips({"203.0.113.10", "203.0.113.11"}));
  EXPECT_EQ(a->entries, vips({"203.0.113.10", "203.0.113.11"}));
  EXPECT_EQ(b->entries, a->entries);

  // The next table drops .10 and adds .12. While it is being published,
  // both are steered: the old table still forwards .10, the new one .12.
  const SteeringSet next = vips({"203.0.113.11", "203.0.113.12"});
  a->calls.clear();
  steering.before_swap(next);
  EXPECT_EQ(a->entries, vips({"203.0.113.10", "203.0.113.11", "203.0.113.12"}));
  EXPECT_EQ(a->calls, std::vector<std::string>{"+203.0.113.12"});
  steering.after_swap(next);
  EXPECT_EQ(a->entries, next);
  EXPECT_EQ(b->entries, next);
  EXPECT_EQ(a->calls, (std::vector<std::string>{"+203.0.113.12", "-203.0.113.10"}));

  const SteeringCounters c = steering.counters();
  EXPECT_EQ(c.ports, 2u);
  EXPECT_EQ(c.destinations, 2u);
  EXPECT_EQ(c.map_updates, 2u * 4);  // 2 + 1 + 1 per port
  EXPECT_EQ(c.map_errors, 0u);
}

TEST_F(SwapTest, TheSameTableAgainTouchesNothing) {
  steering.before_swap(vips({"203.0.113.10"}));
  steering.after_swap(vips({"203.0.113.10"}));
  a->calls.clear();
  steering.before_swap(vips({"203.0.113.10"}));
  steering.after_swap(vips({"203.0.113.10"}));
  EXPECT_TRUE(a->calls.empty());
}

TEST_F(SwapTest, RefusedUpdatesAreCountedAndRetriedAtTheNextSwap) {
  const SteeredDestination v11{.address = ip("203.0.113.11")};
  b->refuse.insert(v11);
  steering.before_swap(vips({"203.0.113.10", "203.0.113.11"}));
  EXPECT_EQ(steering.counters().map_errors, 1u);
  EXPECT_EQ(steering.counters().destinations, 1u);  // .11 is not on every port
  b->refuse.clear();
  steering.before_swap(vips({"203.0.113.10", "203.0.113.11"}));
  EXPECT_EQ(b->entries, vips({"203.0.113.10", "203.0.113.11"}));
  EXPECT_EQ(steering.counters().destinations, 2u);

  // An erase refused stays installed and is tried again.
  a->refuse.insert(v11);
  steering.after_swap(vips({"203.0.113.10"}));
  EXPECT_EQ(steering.counters().map_errors, 2u);
  EXPECT_EQ(steering.counters().destinations, 2u);
  a->refuse.clear();
  steering.after_swap(vips({"203.0.113.10"}));
  EXPECT_EQ(a->entries, vips({"203.0.113.10"}));
  EXPECT_EQ(steering.counters().destinations, 1u);
}

TEST(WithXdpProgram, AddsTheProgramToAfXdpVdevsWithoutOne) {
  bool changed = false;
  auto out = with_xdp_program(
      {"onramp-dataplane", "-l", "0", "--vdev=net_af_xdp0,iface=eth1", "--vdev",
       "net_af_xdp1,iface=eth2,queue_count=2", "--vdev", "net_af_xdp2,iface=eth3,xdp_prog=/mine.o",
       "--vdev=net_pcap0,iface=x", "--vdev=net_tap0"},
      "/usr/lib/onramp/onramp-steer.bpf.o", &changed);
  EXPECT_TRUE(changed);
  EXPECT_EQ(out[3], "--vdev=net_af_xdp0,iface=eth1,xdp_prog=/usr/lib/onramp/onramp-steer.bpf.o");
  EXPECT_EQ(out[5],
            "net_af_xdp1,iface=eth2,queue_count=2,xdp_prog=/usr/lib/onramp/onramp-steer.bpf.o");
  EXPECT_EQ(out[7], "net_af_xdp2,iface=eth3,xdp_prog=/mine.o");
  EXPECT_EQ(out[8], "--vdev=net_pcap0,iface=x");
  EXPECT_EQ(out[9], "--vdev=net_tap0");
}

TEST(WithXdpProgram, NoAfXdpPortOrNoProgramChangesNothing) {
  bool changed = true;
  std::vector<std::string> args{"onramp-dataplane", "--vdev=net_af_packet0,iface=eth1"};
  EXPECT_EQ(with_xdp_program(args, "/p.o", &changed), args);
  EXPECT_FALSE(changed);
  args.push_back("--vdev=net_af_xdp0,iface=eth2");
  EXPECT_EQ(with_xdp_program(args, "", &changed), args);
  EXPECT_FALSE(changed);
}

}  // namespace
}  // namespace onramp::dp
