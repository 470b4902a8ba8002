// What the packet core hands to the exception path (ARP, ND, the PoP's own
// addresses, anything not for a VIP) and what it still drops or forwards,
// and where the tunnel packets' destination MAC comes from when the next
// hop is learned.
#include <gtest/gtest.h>

#include "dataplane/core/next_hop.h"
#include "dataplane/core/processor.h"
#include "tests/unit/processor_harness.h"

namespace onramp::test {
namespace {

constexpr MacAddress kTableMac = {0x02, 0, 0, 0, 0, 0xfe};
constexpr MacAddress kLearnedMac = {0x02, 0x11, 0x22, 0x33, 0x44, 0x55};

std::unique_ptr<ForwardingTable> table_with(MacAddress next_hop) {
  TableSpec spec{
      .version = 1,
      .pop = "FRA1",
      .tunnel_source_v4 = ip("192.0.2.1"),
      .next_hop_mac = next_hop,
      .listeners = {ListenerSpec{.name = "web",
                                 .vips = {ip("203.0.113.10"), ip("2001:db8:10::10")},
                                 .protocol = Protocol::tcp,
                                 .port_ranges = {{80, 80}},
                                 .endpoints = {{.address = ip("198.51.100.7")}}}},
  };
  return build_table(spec);
}

Bytes arp_request() { return cat(ether(0x0806), Bytes(28, 0)); }
Bytes bgp_open() {  // to the PoP's own address, port 179
  return cat(ether(0x0800), ipv4("192.0.2.254", "192.0.2.1", 6, tcp(40000, 179)));
}
Bytes neighbour_solicitation() {
  Bytes ns = {135, 0, 0, 0, 0, 0, 0, 0};
  Bytes target = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  ns.insert(ns.end(), target.begin(), target.end());
  return cat(ether(0x86dd), ipv6("fe80::1", "ff02::1:ff00:1", 58, ns));
}
Bytes syn_to_vip() {
  return cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 6, tcp(40000, 80)));
}

TEST(ExceptionPath, TakesWhatIsNotForAVipUntouched) {
  auto table = table_with(kTableMac);
  PacketProcessor proc(0, 1024);
  proc.set_exception_path(true);
  for (const Bytes& f : {arp_request(), bgp_open(), neighbour_solicitation()}) {
    Ran o = run_frame(proc, *table, f);
    EXPECT_EQ(o.action, Action::exception);
    EXPECT_EQ(o.out, f) << "handed to the kernel as it came";
  }
  EXPECT_EQ(proc.stats().to_exception.load(), 3u);
  EXPECT_EQ(drops(proc, DropReason::non_ip), 0u);
  EXPECT_EQ(drops(proc, DropReason::non_vip), 0u);
}

TEST(ExceptionPath, MalformedAndVipTrafficStayTheFastPaths) {
  auto table = table_with(kTableMac);
  PacketProcessor with(0, 1024), without(0, 1024);
  with.set_exception_path(true);
  // Cut short: an attack or a broken frame, never the kernel's business.
  Bytes truncated = bgp_open();
  truncated.resize(14 + 10);
  EXPECT_EQ(run_frame(with, *table, truncated).action, Action::drop);
  EXPECT_EQ(drops(with, DropReason::truncated_ipv4), 1u);
  // A VIP's port without a listener is dropped, as before.
  Bytes no_listener = cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 6, tcp(40000, 443)));
  EXPECT_EQ(run_frame(with, *table, no_listener).action, Action::drop);
  EXPECT_EQ(drops(with, DropReason::no_listener), 1u);
  // What is forwarded is forwarded byte for byte as without the path.
  Ran a = run_frame(with, *table, syn_to_vip());
  Ran b = run_frame(without, *table, syn_to_vip());
  EXPECT_EQ(a.action, Action::forward);
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(with.stats().to_exception.load(), 0u);
}

TEST(ExceptionPath, OffByDefaultDropsAsBefore) {
  auto table = table_with(kTableMac);
  PacketProcessor proc(0, 1024);
  EXPECT_EQ(run_frame(proc, *table, arp_request()).action, Action::drop);
  EXPECT_EQ(run_frame(proc, *table, bgp_open()).action, Action::drop);
  EXPECT_EQ(drops(proc, DropReason::non_ip), 1u);
  EXPECT_EQ(drops(proc, DropReason::non_vip), 1u);
  EXPECT_EQ(proc.stats().to_exception.load(), 0u);
}

TEST(ExceptionPath, RingRefusalIsADropAndTheBooksBalance) {
  auto table = table_with(kTableMac);
  PacketProcessor proc(0, 1024);
  proc.set_exception_path(true);
  run_frame(proc, *table, arp_request());
  run_frame(proc, *table, arp_request());
  proc.count_exception_refused(1);
  EXPECT_EQ(proc.stats().to_exception.load(), 1u);
  EXPECT_EQ(drops(proc, DropReason::exception_ring_full), 1u);
  EXPECT_EQ(proc.stats().rx_packets.load(),
            proc.stats().to_exception.load() + proc.stats().dropped());
}

TEST(NextHop, UnresolvedDropsThenTheLearnedMacIsUsed) {
  auto table = table_with(MacAddress{});
  PacketProcessor proc(0, 1024);
  dp::LearnedNextHop learned;
  proc.set_learned_next_hop(&learned);
  EXPECT_EQ(run_frame(proc, *table, syn_to_vip()).action, Action::drop);
  EXPECT_EQ(drops(proc, DropReason::next_hop_unresolved), 1u);
  learned.set(kLearnedMac);
  Ran o = run_frame(proc, *table, syn_to_vip());
  ASSERT_EQ(o.action, Action::forward);
  EXPECT_EQ(Bytes(o.out.begin(), o.out.begin() + 6), Bytes(kLearnedMac.begin(), kLearnedMac.end()));
  // A change (a new router) is followed from the next burst on.
  constexpr MacAddress kNewMac = {0x02, 0x99, 0, 0, 0, 0x01};
  learned.set(kNewMac);
  o = run_frame(proc, *table, syn_to_vip());
  EXPECT_EQ(Bytes(o.out.begin(), o.out.begin() + 6), Bytes(kNewMac.begin(), kNewMac.end()));
  learned.clear();
  EXPECT_EQ(run_frame(proc, *table, syn_to_vip()).action, Action::drop);
  EXPECT_EQ(drops(proc, DropReason::next_hop_unresolved), 2u);
}

TEST(NextHop, TheTablesMacWinsOverTheLearnedOne) {
  auto table = table_with(kTableMac);
  PacketProcessor proc(0, 1024);
  dp::LearnedNextHop learned;  // unresolved: no matter
  proc.set_learned_next_hop(&learned);
  Ran o = run_frame(proc, *table, syn_to_vip());
  ASSERT_EQ(o.action, Action::forward);
  EXPECT_EQ(Bytes(o.out.begin(), o.out.begin() + 6), Bytes(kTableMac.begin(), kTableMac.end()));
  learned.set(kLearnedMac);
  o = run_frame(proc, *table, syn_to_vip());
  EXPECT_EQ(Bytes(o.out.begin(), o.out.begin() + 6), Bytes(kTableMac.begin(), kTableMac.end()));
}

}  // namespace
}  // namespace onramp::test
