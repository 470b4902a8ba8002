// Path MTU in the packet core: the ICMP frag-needed / packet-too-big it
// sends back (bytes, checksums, quote, MTU field), its per-client rate
// limit, and the inner IPv4 fragments of a packet without DF.
#include "dataplane/core/pmtu.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "dataplane/core/net_headers.h"
#include "dataplane/core/processor.h"
#include "tests/unit/processor_harness.h"

namespace onramp::test {
namespace {

std::unique_ptr<ForwardingTable> build(ForwardingMode mode, const char* endpoint) {
  TableSpec spec{
      .version = 1,
      .pop = "FRA1",
      .tunnel_source_v4 = ip("192.0.2.1"),
      .tunnel_source_v6 = ip("2001:db8::1"),
      .next_hop_mac = {0x02, 0, 0, 0, 0, 0xfe},
      .listeners = {ListenerSpec{.name = "web",
                                 .vips = {ip("203.0.113.10"), ip("2001:db8:10::10")},
                                 .protocol = Protocol::tcp_udp,
                                 .port_ranges = {{80, 80}},
                                 .endpoints = {{.address = ip(endpoint), .mode = mode}}}},
      .mtu = 1280,
  };
  return build_table(spec);
}

// Lends plain vectors for fragments and keeps what was committed.
class VectorLender final : public dp::ExtraPackets {
 public:
  dp::PacketBuf* alloc(uint32_t size) override {
    if (pending_.size() == limit) return nullptr;
    auto s = std::make_unique<Slot>();
    s->storage.resize(kHeadroom + size);
    s->buf = dp::PacketBuf{s->storage.data() + kHeadroom, 0, kHeadroom};
    pending_.push_back(std::move(s));
    return &pending_.back()->buf;
  }
  void commit() override {
    for (auto& s : pending_) sent.emplace_back(s->buf.data, s->buf.data + s->buf.len);
    pending_.clear();
  }
  void rollback() override { pending_.clear(); }

  std::vector<Bytes> sent;
  size_t limit = 1000;

 private:
  struct Slot {
    std::vector<uint8_t> storage;
    dp::PacketBuf buf;
  };
  std::vector<std::unique_ptr<Slot>> pending_;
};

uint16_t be16(const Bytes& b, size_t off) {
  return static_cast<uint16_t>(b[off] << 8 | b[off + 1]);
}

TEST(Pmtu, FragNeededBytesForAnIpv4ClientWithDf) {
  auto table = build(ForwardingMode::ipip, "198.51.100.7");
  PacketProcessor proc(0, 1024);
  const Bytes in = cat(ether(0x0800),
                       ipv4("192.0.2.50", "203.0.113.10", 6, cat(tcp(4000, 80), Bytes(1460, 'x'))));
  Ran r = run_frame(proc, *table, in);
  ASSERT_EQ(r.action, Action::icmp_error);
  EXPECT_EQ(proc.stats().icmp_too_big_sent.load(), 1u);
  EXPECT_EQ(proc.stats().dropped(), 0u);
  ASSERT_EQ(r.out.size(), 14u + 576u);  // the error stays within 576 bytes
  // Back to the MAC it came from, from the port's.
  EXPECT_EQ(Bytes(r.out.begin(), r.out.begin() + 6), Bytes(in.begin() + 6, in.begin() + 12));
  EXPECT_EQ(Bytes(r.out.begin() + 6, r.out.begin() + 12), Bytes(kPortMac.begin(), kPortMac.end()));
  const size_t l3 = 14, icmp = 34;
  EXPECT_EQ(r.out[l3], 0x45);
  EXPECT_EQ(be16(r.out, l3 + 2), 576);
  EXPECT_EQ(r.out[l3 + 9], 1);
  EXPECT_EQ(inet_checksum(&r.out[l3], 20), 0);
  EXPECT_EQ(IpAddress::from_v4(&r.out[l3 + 12]).to_string(), "203.0.113.10");  // the VIP
  EXPECT_EQ(IpAddress::from_v4(&r.out[l3 + 16]).to_string(), "192.0.2.50");
  EXPECT_EQ(r.out[icmp], 3);
  EXPECT_EQ(r.out[icmp + 1], 4);
  EXPECT_EQ(be16(r.out, icmp + 6), 1260);  // 1280 less IPIP's 20
  EXPECT_EQ(inet_checksum(&r.out[icmp], 556), 0);
  // The quote: the original IP packet's first 548 bytes, as received.
  EXPECT_EQ(Bytes(r.out.begin() + icmp + 8, r.out.end()),
            Bytes(in.begin() + 14, in.begin() + 14 + 548));
}

TEST(Pmtu, PacketTooBigForAnIpv6ClientOverGue) {
  auto table = build(ForwardingMode::gue, "2001:db8:100::7");
  PacketProcessor proc(0, 1024);
  const Bytes in =
      cat(ether(0x86dd, {7}), ipv6("2001:db8:c::1", "2001:db8:10::10", 17, udp(5000, 80, 1300)));
  Ran r = run_frame(proc, *table, in);
  ASSERT_EQ(r.action, Action::icmp_error);
  const size_t l3 = 18, icmp = 58;
  ASSERT_EQ(r.out.size(), l3 + 1280);
  EXPECT_EQ(be16(r.out, 12), 0x8100);    // VLAN tag kept
  EXPECT_EQ(be16(r.out, l3 + 4), 1240);  // payload length: 8 + 1232 quoted
  EXPECT_EQ(r.out[l3 + 6], 58);
  EXPECT_EQ(IpAddress::from_v6(&r.out[l3 + 8]).to_string(), "2001:db8:10::10");
  EXPECT_EQ(r.out[icmp], 2);
  EXPECT_EQ(static_cast<uint32_t>(be16(r.out, icmp + 4)) << 16 | be16(r.out, icmp + 6),
            1232u);  // 1280 less 40 + 8 of GUE over IPv6
  // Checksum over the pseudo-header and the message.
  Bytes pseudo(r.out.begin() + l3 + 8, r.out.begin() + l3 + 40);
  pseudo.insert(pseudo.end(), {0, 0, 0x04, 0xd8, 0, 0, 0, 58});
  uint32_t sum = 0;
  for (size_t i = 0; i < pseudo.size(); i += 2) sum += be16(pseudo, i);
  EXPECT_EQ(inet_checksum(&r.out[icmp], 1240, sum), 0);
  EXPECT_EQ(Bytes(r.out.begin() + icmp + 8, r.out.end()),
            Bytes(in.begin() + 18, in.begin() + 18 + 1232));
}

TEST(Pmtu, IcmpErrorsAreRateLimitedPerClient) {
  auto table = build(ForwardingMode::ipip, "198.51.100.7");
  PacketProcessor proc(0, 1024);
  auto big = [](const char* client) {
    return cat(ether(0x0800), ipv4(client, "203.0.113.10", 17, udp(1, 80, 1300)));
  };
  for (uint32_t i = 0; i < dp::IcmpRateLimiter::kBurst; ++i)
    EXPECT_EQ(run_frame(proc, *table, big("198.18.0.1"), 1000).action, Action::icmp_error);
  EXPECT_EQ(run_frame(proc, *table, big("198.18.0.1"), 1050).action, Action::drop);
  EXPECT_EQ(run_frame(proc, *table, big("198.18.0.2"), 1050).action, Action::icmp_error);
  // One token back every 1000 / kPerSecond ms.
  EXPECT_EQ(run_frame(proc, *table, big("198.18.0.1"), 1100).action, Action::icmp_error);
  EXPECT_EQ(run_frame(proc, *table, big("198.18.0.1"), 1100).action, Action::drop);
  EXPECT_EQ(drops(proc, DropReason::too_big_rate_limited), 2u);
  EXPECT_EQ(proc.stats().icmp_too_big_sent.load(), dp::IcmpRateLimiter::kBurst + 2);
}

TEST(Pmtu, RateLimiterSurvivesTheClockWrapping) {
  dp::IcmpRateLimiter limiter;
  const IpAddress a = ip("192.0.2.1");
  for (uint32_t i = 0; i < dp::IcmpRateLimiter::kBurst; ++i)
    EXPECT_TRUE(limiter.allow(a, 0xfffffff0u));
  EXPECT_FALSE(limiter.allow(a, 0xfffffff0u));
  EXPECT_TRUE(limiter.allow(a, 100));  // 116 ms later, across the wrap
}

// Inner fragmentation: the endpoint must be able to put the datagram back.
TEST(Pmtu, AnIpv4PacketWithoutDfIsSplitBeforeEncapsulation) {
  auto table = build(ForwardingMode::ipip, "198.51.100.7");
  PacketProcessor proc(0, 1024);
  VectorLender lender;
  const Bytes ip_packet = ipv4("198.18.0.1", "203.0.113.10", 17, udp(1, 80, 2972), {}, 0);
  const Bytes in = cat(ether(0x0800), ip_packet);
  Ran r = run_frame(proc, *table, in, 0, &lender);
  ASSERT_EQ(r.action, Action::forward);
  ASSERT_EQ(lender.sent.size(), 2u);
  EXPECT_EQ(proc.stats().fragmented.load(), 1u);
  EXPECT_EQ(proc.stats().fragments_sent.load(), 2u);
  std::vector<Bytes> frames = {r.out, lender.sent[0], lender.sent[1]};
  Bytes payload;
  const std::vector<uint16_t> sizes = {1260, 1260, 520};
  for (size_t k = 0; k < frames.size(); ++k) {
    const Bytes& f = frames[k];
    ASSERT_EQ(f.size(), 14u + 20 + sizes[k]);
    EXPECT_EQ(be16(f, 14 + 2), 20 + sizes[k]);  // outer length
    const size_t inner = 14 + 20;
    EXPECT_EQ(be16(f, inner + 2), sizes[k]);
    EXPECT_EQ(be16(f, inner + 4), 0x1234);  // the datagram's id
    EXPECT_EQ(be16(f, inner + 6), (k < 2 ? 0x2000 : 0) | (k * 1240 / 8));
    EXPECT_EQ(inet_checksum(&f[inner], 20), 0);
    payload.insert(payload.end(), f.begin() + inner + 20, f.end());
  }
  EXPECT_EQ(payload, Bytes(ip_packet.begin() + 20, ip_packet.end()));
}

TEST(Pmtu, OnlyCopiedOptionsGoIntoLaterFragments) {
  auto table = build(ForwardingMode::ipip, "198.51.100.7");
  PacketProcessor proc(0, 1024);
  VectorLender lender;
  // Router alert (148: copied), then a timestamp-like option 68 (not copied).
  const Bytes options = {148, 4, 0, 0, 68, 4, 5, 0};
  const Bytes in =
      cat(ether(0x0800), ipv4("198.18.0.1", "203.0.113.10", 17, udp(1, 80, 1400), options, 0));
  Ran r = run_frame(proc, *table, in, 0, &lender);
  ASSERT_EQ(r.action, Action::forward);
  ASSERT_EQ(lender.sent.size(), 1u);
  const Bytes& second = lender.sent[0];
  EXPECT_EQ(r.out[34], 0x47);
  EXPECT_EQ(second[34], 0x46);
  EXPECT_EQ(Bytes(second.begin() + 54, second.begin() + 58), Bytes({148, 4, 0, 0}));
  EXPECT_EQ(inet_checksum(&second[34], 24), 0);
}

TEST(Pmtu, NoBufferForAFragmentDropsTheWholePacket) {
  auto table = build(ForwardingMode::ipip, "198.51.100.7");
  PacketProcessor proc(0, 1024);
  VectorLender lender;
  lender.limit = 1;
  const Bytes in =
      cat(ether(0x0800), ipv4("198.18.0.1", "203.0.113.10", 17, udp(1, 80, 2972), {}, 0));
  EXPECT_EQ(run_frame(proc, *table, in, 0, &lender).action, Action::drop);
  EXPECT_TRUE(lender.sent.empty());
  EXPECT_EQ(drops(proc, DropReason::fragment_no_buffer), 1u);
  EXPECT_EQ(proc.stats().fragments_sent.load(), 0u);
}

}  // namespace
}  // namespace onramp::test
