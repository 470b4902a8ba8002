// Fragment tracking: trains keyed by (src, dst, protocol, id), their byte
// ranges (overlaps refused, holes bounded, completion), their timeout and
// eviction; and in the processor, later fragments following their first
// fragment's endpoint.
#include "dataplane/core/fragment_table.h"

#include <gtest/gtest.h>

#include <memory>

#include "dataplane/core/processor.h"
#include "tests/unit/packet_builder.h"

namespace onramp::test {
namespace {

using dp::Action;
using dp::DropReason;
using dp::FragmentTable;
using dp::FragmentTrain;
using dp::ParsedPacket;

// A parsed fragment: `len` bytes of data at `offset`.
ParsedPacket frag(uint32_t id, uint16_t offset, uint16_t len, bool more,
                  const char* src = "192.0.2.1", uint8_t proto = 17) {
  ParsedPacket p;
  p.src = ip(src);
  p.dst = ip(std::string(src).find(':') == std::string::npos ? "203.0.113.10" : "2001:db8::10");
  p.family = p.src.is_v4() ? 4 : 6;
  p.l4_proto = proto;
  p.fragment = true;
  p.frag_id = id;
  p.frag_offset = offset;
  p.frag_more = more;
  p.l3_offset = 14;
  p.frag_data_offset = 34;
  p.ip_len = static_cast<uint16_t>(20 + len);
  return p;
}

TEST(FragmentTable, AnInOrderTrainCompletesAndFreesItsSlot) {
  FragmentTable t;
  DropReason r;
  FragmentTrain& train = t.insert(frag(1, 0, 1400, true), 0);
  ASSERT_TRUE(t.add(train, frag(1, 0, 1400, true), 0, r));
  ASSERT_NE(t.find(frag(1, 1400, 1400, true), 10), nullptr);
  ASSERT_TRUE(t.add(train, frag(1, 1400, 1400, true), 10, r));
  ASSERT_TRUE(t.add(train, frag(1, 2800, 200, false), 20, r));
  EXPECT_EQ(t.find(frag(1, 2800, 200, false), 30), nullptr);  // whole: gone
  EXPECT_EQ(t.stats().completed, 1u);
  EXPECT_EQ(t.stats().trains, 1u);
}

TEST(FragmentTable, TheKeyIsSourceDestinationProtocolAndId) {
  FragmentTable t;
  t.insert(frag(7, 0, 8, true), 0);
  EXPECT_NE(t.find(frag(7, 8, 8, true), 0), nullptr);
  EXPECT_EQ(t.find(frag(8, 8, 8, true), 0), nullptr);
  EXPECT_EQ(t.find(frag(7, 8, 8, true, "192.0.2.2"), 0), nullptr);
  EXPECT_EQ(t.find(frag(7, 8, 8, true, "192.0.2.1", 6), 0), nullptr);
  // IPv6 (RFC 8200 §4.5): no protocol in the key; a later fragment's next
  // header need not be the transport's.
  t.insert(frag(9, 0, 8, true, "2001:db8::1", 17), 0);
  EXPECT_NE(t.find(frag(9, 8, 8, true, "2001:db8::1", 60), 0), nullptr);
}

TEST(FragmentTable, OverlapsPoisonTheTrain) {
  FragmentTable t;
  DropReason r;
  FragmentTrain& train = t.insert(frag(1, 0, 1400, true), 0);
  ASSERT_TRUE(t.add(train, frag(1, 0, 1400, true), 0, r));
  EXPECT_FALSE(t.add(train, frag(1, 8, 16, true), 0, r));  // RFC 1858
  EXPECT_EQ(r, DropReason::fragment_overlap);
  EXPECT_FALSE(t.add(train, frag(1, 1400, 100, false), 0, r));  // the rest too
  EXPECT_EQ(r, DropReason::fragment_overlap);
}

TEST(FragmentTable, OverlapsAcrossAHoleAndLengthsThatDisagree) {
  FragmentTable t;
  DropReason r;
  FragmentTrain& a = t.insert(frag(1, 0, 8, true), 0);
  ASSERT_TRUE(t.add(a, frag(1, 0, 8, true), 0, r));
  ASSERT_TRUE(t.add(a, frag(1, 16, 8, true), 0, r));
  EXPECT_FALSE(t.add(a, frag(1, 8, 16, true), 0, r));  // fills the hole and runs over
  FragmentTrain& b = t.insert(frag(2, 0, 8, true), 0);
  ASSERT_TRUE(t.add(b, frag(2, 0, 8, true), 0, r));
  ASSERT_TRUE(t.add(b, frag(2, 64, 8, false), 0, r));   // total 72
  EXPECT_FALSE(t.add(b, frag(2, 64, 16, true), 0, r));  // beyond the end
  FragmentTrain& c = t.insert(frag(3, 0, 8, true), 0);
  ASSERT_TRUE(t.add(c, frag(3, 0, 8, true), 0, r));
  ASSERT_TRUE(t.add(c, frag(3, 64, 8, true), 0, r));
  EXPECT_FALSE(t.add(c, frag(3, 16, 8, false), 0, r));  // a last before seen bytes
}

TEST(FragmentTable, HolesAreBoundedAndMerge) {
  FragmentTable t;
  DropReason r;
  FragmentTrain& train = t.insert(frag(1, 0, 8, true), 0);
  for (uint16_t off : {0, 32, 64, 96}) ASSERT_TRUE(t.add(train, frag(1, off, 8, true), 0, r));
  EXPECT_EQ(train.n_ranges, 4);
  EXPECT_FALSE(t.add(train, frag(1, 128, 8, true), 0, r));
  EXPECT_EQ(r, DropReason::fragment_scattered);
  // Filling holes merges ranges, out of order included.
  for (uint16_t off : {8, 16, 24, 72, 80, 88, 40, 48, 56})
    ASSERT_TRUE(t.add(train, frag(1, off, 8, true), 0, r)) << off;
  EXPECT_EQ(train.n_ranges, 1);
  ASSERT_TRUE(t.add(train, frag(1, 104, 8, false), 0, r));
  EXPECT_FALSE(train.live);
}

TEST(FragmentTable, TrainsTimeOutAndAreEvicted) {
  FragmentTable t;
  DropReason r;
  FragmentTrain& train = t.insert(frag(1, 0, 8, true), 1000);
  ASSERT_TRUE(t.add(train, frag(1, 0, 8, true), 1000, r));
  EXPECT_NE(t.find(frag(1, 8, 8, true), 1000 + FragmentTable::kTimeoutMs - 1), nullptr);
  ASSERT_TRUE(t.add(train, frag(1, 8, 8, true), 1000 + FragmentTable::kTimeoutMs - 1, r));
  // Each fragment extends the life; past it, the train is gone.
  EXPECT_NE(t.find(frag(1, 16, 8, true), 1000 + 2 * FragmentTable::kTimeoutMs - 2), nullptr);
  EXPECT_EQ(t.find(frag(1, 16, 8, true), 1000 + 2 * FragmentTable::kTimeoutMs), nullptr);
  EXPECT_EQ(t.stats().timed_out, 1u);
  // Memory is bounded: more trains than slots evict live ones.
  for (uint32_t id = 100; id < 100 + 2 * FragmentTable::kSlots; ++id)
    t.insert(frag(id, 0, 8, true), 0);
  EXPECT_GE(t.stats().evicted, FragmentTable::kSlots - 1);
}

TEST(FragmentTable, TheClockMayWrap) {
  FragmentTable t;
  t.insert(frag(1, 0, 8, true), 0xffffff00u);
  EXPECT_NE(t.find(frag(1, 8, 8, true), 0x100), nullptr);  // 512 ms later
}

// Through the processor: a later fragment follows its first across
// endpoints, and after the train's timeout it has nowhere to go.
TEST(FragmentTable, LaterFragmentsFollowTheirFirstInTheProcessor) {
  TableSpec spec{
      .version = 1,
      .pop = "FRA1",
      .tunnel_source_v4 = ip("192.0.2.1"),
      .next_hop_mac = {0x02, 0, 0, 0, 0, 0xfe},
      .listeners = {ListenerSpec{.name = "dns",
                                 .vips = {ip("203.0.113.10")},
                                 .protocol = Protocol::udp,
                                 .port_ranges = {{53, 53}},
                                 .endpoints = {{.address = ip("198.51.100.1")},
                                               {.address = ip("198.51.100.2")},
                                               {.address = ip("198.51.100.3")},
                                               {.address = ip("198.51.100.4")}}}},
  };
  auto built = dp::ForwardingTable::build(spec, 1);
  ASSERT_TRUE(built.ok()) << built.error();
  dp::PacketProcessor proc(0, 1024);
  auto send = [&](const Bytes& frame, uint32_t now) {
    std::vector<uint8_t> storage(128 + frame.size());
    std::copy(frame.begin(), frame.end(), storage.begin() + 128);
    dp::PacketBuf pkt{storage.data() + 128, static_cast<uint32_t>(frame.size()), 128};
    Action a;
    proc.process_burst(**built, &pkt, &a, 1, {2, 0x70, 0x63, 0x61, 0x70, 0}, now);
    if (a != Action::forward) return std::string("-");
    return IpAddress::from_v4(pkt.data + 14 + 16).to_string();
  };
  for (uint16_t port = 1000; port < 1016; ++port) {
    const auto id = static_cast<uint16_t>(port);
    const std::string whole =
        send(cat(ether(0x0800), ipv4("192.0.2.9", "203.0.113.10", 17, udp(port, 53))), 0);
    Bytes first = ipv4("192.0.2.9", "203.0.113.10", 17, udp(port, 53, 16), {}, 0x2000);
    first[4] = static_cast<uint8_t>(id >> 8);
    first[5] = static_cast<uint8_t>(id);
    Bytes later = ipv4("192.0.2.9", "203.0.113.10", 17, Bytes(8, 'x'), {}, 0x0003);
    later[4] = first[4];
    later[5] = first[5];
    EXPECT_EQ(send(cat(ether(0x0800), first), 10), whole) << port;
    EXPECT_EQ(send(cat(ether(0x0800), later), 20), whole) << port;
  }
  EXPECT_EQ(proc.fragment_trains().stats().completed, 16u);
  // A train left incomplete times out; its next fragment is dropped.
  Bytes first = ipv4("192.0.2.9", "203.0.113.10", 17, udp(2000, 53, 16), {}, 0x2000);
  Bytes later = ipv4("192.0.2.9", "203.0.113.10", 17, Bytes(8, 'x'), {}, 0x2003);
  EXPECT_NE(send(cat(ether(0x0800), first), 100), "-");
  EXPECT_EQ(send(cat(ether(0x0800), later), 100 + FragmentTable::kTimeoutMs), "-");
  EXPECT_EQ(proc.stats().drops[static_cast<int>(DropReason::fragment_no_first)].load(), 1u);
  EXPECT_EQ(proc.fragment_trains().stats().timed_out, 1u);
}

}  // namespace
}  // namespace onramp::test
