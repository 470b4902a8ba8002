// Parser edge cases: every way a header can be cut short or lie about its
// length, VLAN tags, IPv4 options, IPv6 extension headers, fragments.
#include "dataplane/core/parser.h"

#include <gtest/gtest.h>

#include <random>

#include "tests/unit/packet_builder.h"

namespace onramp::test {
namespace {

using dp::DropReason;
using dp::ParsedPacket;

struct Outcome {
  bool ok;
  DropReason reason;
  ParsedPacket p;
};

Outcome parse(const Bytes& frame) {
  Outcome o{false, DropReason::count, {}};
  o.ok = dp::parse_packet(frame.data(), static_cast<uint32_t>(frame.size()), o.p, o.reason);
  return o;
}

Bytes v4_tcp(uint16_t dport = 80) {
  return cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 6, tcp(40000, dport)));
}

TEST(Parser, PlainIpv4Tcp) {
  auto o = parse(v4_tcp());
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.p.family, 4);
  EXPECT_EQ(o.p.l3_offset, 14);
  EXPECT_EQ(o.p.l4_offset, 34);
  EXPECT_EQ(o.p.ip_len, 40);
  EXPECT_EQ(o.p.l4_proto, 6);
  EXPECT_EQ(o.p.src_port, 40000);
  EXPECT_EQ(o.p.dst_port, 80);
  EXPECT_EQ(o.p.src, ip("192.0.2.10"));
  EXPECT_EQ(o.p.dst, ip("203.0.113.10"));
  EXPECT_FALSE(o.p.fragment);
}

TEST(Parser, EveryPrefixOfAValidFrameIsRejectedOrShorter) {
  // Cutting a valid frame anywhere must never read past the cut: each prefix
  // either fails with a reason or (past the IP length) still parses.
  Bytes full = v4_tcp();
  for (size_t n = 0; n < full.size(); ++n) {
    Bytes cut(full.begin(), full.begin() + static_cast<long>(n));
    auto o = parse(cut);
    EXPECT_FALSE(o.ok) << "prefix of " << n << " bytes parsed";
  }
}

TEST(Parser, TruncationReasons) {
  EXPECT_EQ(parse(Bytes(13, 0)).reason, DropReason::truncated_ethernet);
  Bytes vlan_cut = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00, 0x00};
  EXPECT_EQ(parse(vlan_cut).reason, DropReason::truncated_vlan);
  Bytes ip_cut = v4_tcp();
  ip_cut.resize(14 + 19);
  EXPECT_EQ(parse(ip_cut).reason, DropReason::truncated_ipv4);
  Bytes v6 = cat(ether(0x86dd), ipv6("2001:db8::1", "2001:db8::2", 6, tcp(1, 2)));
  v6.resize(14 + 39);
  EXPECT_EQ(parse(v6).reason, DropReason::truncated_ipv6);
}

TEST(Parser, BadIhlAndLengths) {
  Bytes f = v4_tcp();
  f[14] = 0x44;  // IHL 4 words = 16 bytes
  EXPECT_EQ(parse(f).reason, DropReason::bad_ipv4_ihl);
  f = v4_tcp();
  f[14] = 0x4f;  // IHL 60 bytes, frame has 40 of IP
  EXPECT_EQ(parse(f).reason, DropReason::truncated_ipv4);
  f = v4_tcp();
  f[16] = 0x05;  // total length 1320 > frame
  EXPECT_EQ(parse(f).reason, DropReason::bad_ip_length);
  f = v4_tcp();
  f[16] = 0;
  f[17] = 12;  // total length below the header
  EXPECT_EQ(parse(f).reason, DropReason::bad_ip_length);
  f = v4_tcp();
  f[14] = 0x65;  // version 6 under an IPv4 EtherType
  EXPECT_EQ(parse(f).reason, DropReason::bad_ip_version);
}

TEST(Parser, EthernetPaddingIsNotPacket) {
  Bytes f = cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 17, udp(5, 53, 0)));
  f.resize(60, 0);  // minimum frame: 14 + 28 + 18 bytes padding
  auto o = parse(f);
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.p.ip_len, 28);
  EXPECT_EQ(o.p.dst_port, 53);
}

TEST(Parser, Ipv4OptionsAreSkipped) {
  Bytes opts = {0x07, 0x07, 0x04, 0, 0, 0, 0};  // record route, padded to 8
  auto o = parse(cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 6, tcp(1234, 443), opts)));
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.p.l4_offset, 14 + 28);
  EXPECT_EQ(o.p.dst_port, 443);
}

TEST(Parser, VlanAndQinQ) {
  auto o = parse(cat(ether(0x0800, {100}), ipv4("192.0.2.1", "203.0.113.10", 6, tcp(1, 80))));
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.p.vlan_tags, 1);
  EXPECT_EQ(o.p.l3_offset, 18);
  EXPECT_EQ(o.p.l2_ethertype_offset, 16);
  o = parse(cat(ether(0x0800, {100, 200}), ipv4("192.0.2.1", "203.0.113.10", 6, tcp(1, 80))));
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.p.l3_offset, 22);
  o = parse(cat(ether(0x0800, {100, 200, 300}), ipv4("192.0.2.1", "203.0.113.10", 6, tcp(1, 80))));
  EXPECT_EQ(o.reason, DropReason::too_many_vlan_tags);
}

TEST(Parser, NonIp) {
  Bytes arp = ether(0x0806);
  arp.resize(42, 0);
  EXPECT_EQ(parse(arp).reason, DropReason::non_ip);
}

TEST(Parser, TcpHeaderChecks) {
  Bytes seg = tcp(1, 80);
  seg[12] = 0x40;  // data offset 16 bytes
  EXPECT_EQ(parse(cat(ether(0x0800), ipv4("192.0.2.1", "203.0.113.10", 6, seg))).reason,
            DropReason::bad_tcp_offset);
  seg = tcp(1, 80);
  seg[12] = 0xf0;  // 60 bytes of header, 20 present
  EXPECT_EQ(parse(cat(ether(0x0800), ipv4("192.0.2.1", "203.0.113.10", 6, seg))).reason,
            DropReason::bad_tcp_offset);
  seg = tcp(1, 80);
  seg.resize(12);
  EXPECT_EQ(parse(cat(ether(0x0800), ipv4("192.0.2.1", "203.0.113.10", 6, seg))).reason,
            DropReason::truncated_l4);
  EXPECT_EQ(parse(cat(ether(0x0800), ipv4("192.0.2.1", "203.0.113.10", 17, Bytes(7, 0)))).reason,
            DropReason::truncated_l4);
}

TEST(Parser, Ipv4Fragments) {
  auto first =
      parse(cat(ether(0x0800), ipv4("192.0.2.1", "203.0.113.10", 17, udp(1, 53), {}, 0x2000)));
  ASSERT_TRUE(first.ok);
  EXPECT_TRUE(first.p.fragment);  // more fragments follow
  EXPECT_TRUE(first.p.frag_more);
  EXPECT_TRUE(first.p.frag_l4);  // a first fragment with its whole UDP header: ports
  EXPECT_EQ(first.p.dst_port, 53);
  EXPECT_EQ(first.p.frag_id, 0x1234u);
  EXPECT_EQ(first.p.frag_data_offset, 14 + 20);
  auto later =
      parse(cat(ether(0x0800), ipv4("192.0.2.1", "203.0.113.10", 17, Bytes(16, 0), {}, 0x0010)));
  ASSERT_TRUE(later.ok);
  EXPECT_TRUE(later.p.fragment);
  EXPECT_EQ(later.p.frag_offset, 0x10 * 8);
  EXPECT_FALSE(later.p.frag_more);
  // A tiny first fragment (RFC 1858) parses, without ports.
  auto tiny =
      parse(cat(ether(0x0800), ipv4("192.0.2.1", "203.0.113.10", 6, Bytes(8, 0), {}, 0x2000)));
  ASSERT_TRUE(tiny.ok);
  EXPECT_FALSE(tiny.p.frag_l4);
  auto df = parse(cat(ether(0x0800), ipv4("192.0.2.1", "203.0.113.10", 17, udp(1, 53))));
  EXPECT_FALSE(df.p.fragment);
}

TEST(Parser, Ipv6ExtensionHeadersAreWalked) {
  Bytes hbh = {17, 0, 1, 4, 0, 0, 0, 0};  // hop-by-hop -> routing? no: -> UDP
  Bytes rest = cat(hbh, udp(5353, 53));
  auto o = parse(cat(ether(0x86dd), ipv6("2001:db8::1", "2001:db8:10::10", 0, rest)));
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.p.l4_proto, 17);
  EXPECT_EQ(o.p.l4_offset, 14 + 40 + 8);
  EXPECT_EQ(o.p.dst_port, 53);

  // hop-by-hop -> destination options (16 bytes) -> routing -> TCP
  Bytes chain = {60, 0, 1, 4, 0, 0, 0, 0};
  Bytes dst = {43, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  Bytes rt = {6, 0, 0, 0, 0, 0, 0, 0};
  o = parse(cat(ether(0x86dd), ipv6("2001:db8::1", "2001:db8:10::10", 0,
                                    cat(cat(cat(chain, dst), rt), tcp(9, 443)))));
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.p.l4_offset, 14 + 40 + 32);
  EXPECT_EQ(o.p.dst_port, 443);
}

TEST(Parser, Ipv6ExtensionErrors) {
  Bytes hbh = {17, 4, 1, 4, 0, 0, 0, 0};  // claims 40 bytes, only 8 + UDP present
  auto o = parse(cat(ether(0x86dd), ipv6("2001:db8::1", "2001:db8::2", 0, hbh)));
  EXPECT_EQ(o.reason, DropReason::truncated_ipv6_ext);
  Bytes many;
  for (int i = 0; i < 9; ++i) many = cat(many, Bytes{60, 0, 1, 4, 0, 0, 0, 0});
  many = cat(many, udp(1, 2));
  o = parse(cat(ether(0x86dd), ipv6("2001:db8::1", "2001:db8::2", 60, many)));
  EXPECT_EQ(o.reason, DropReason::too_many_ipv6_ext);
  Bytes lying = udp(1, 2);
  Bytes f = cat(ether(0x86dd), ipv6("2001:db8::1", "2001:db8::2", 17, lying));
  f[14 + 5] = 200;  // payload length beyond the frame
  EXPECT_EQ(parse(f).reason, DropReason::bad_ip_length);
}

TEST(Parser, Ipv6Fragments) {
  Bytes frag_first = {17, 0, 0x00, 0x01, 0, 0, 0, 1};  // offset 0, M=1
  auto o = parse(
      cat(ether(0x86dd), ipv6("2001:db8::1", "2001:db8::2", 44, cat(frag_first, udp(1, 53)))));
  ASSERT_TRUE(o.ok);
  EXPECT_TRUE(o.p.fragment);
  EXPECT_TRUE(o.p.frag_l4);
  EXPECT_EQ(o.p.dst_port, 53);
  EXPECT_EQ(o.p.frag_id, 1u);
  EXPECT_EQ(o.p.frag_data_offset, 14 + 40 + 8);
  // A first fragment's headers after the fragment header are walked to the
  // transport header; a later fragment's are not (its data is not headers).
  Bytes frag_dst = {60, 0, 0x00, 0x01, 0, 0, 0, 2};
  Bytes dst_opts = {17, 0, 1, 4, 0, 0, 0, 0};
  o = parse(cat(ether(0x86dd),
                ipv6("2001:db8::1", "2001:db8::2", 44, cat(cat(frag_dst, dst_opts), udp(1, 53)))));
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.p.l4_proto, 17);
  EXPECT_EQ(o.p.dst_port, 53);
  Bytes frag_later = {17, 0, 0x00, 0x10, 0, 0, 0, 2};  // offset 16, M=0
  o = parse(
      cat(ether(0x86dd), ipv6("2001:db8::1", "2001:db8::2", 44, cat(frag_later, Bytes(8, 0)))));
  ASSERT_TRUE(o.ok);
  EXPECT_TRUE(o.p.fragment);
  EXPECT_FALSE(o.p.frag_l4);
  EXPECT_EQ(o.p.frag_offset, 16);
  Bytes atomic = {17, 0, 0, 0, 0, 0, 0, 1};  // offset 0, M=0: a whole packet
  o = parse(cat(ether(0x86dd), ipv6("2001:db8::1", "2001:db8::2", 44, cat(atomic, udp(1, 53)))));
  ASSERT_TRUE(o.ok);
  EXPECT_FALSE(o.p.fragment);
  EXPECT_EQ(o.p.dst_port, 53);
}

TEST(Parser, IcmpTypes) {
  Bytes echo = {8, 0, 0, 0, 0, 1, 0, 1};
  auto o = parse(cat(ether(0x0800), ipv4("192.0.2.1", "203.0.113.10", 1, echo)));
  ASSERT_TRUE(o.ok);
  EXPECT_EQ(o.p.icmp_type, 8);
  o = parse(cat(ether(0x0800), ipv4("192.0.2.1", "203.0.113.10", 1, Bytes{8, 0, 0})));
  EXPECT_EQ(o.reason, DropReason::truncated_l4);
}

TEST(Parser, QuotedHeaderMayBeCutAfterPorts) {
  // An ICMP error quotes the IP header and 8 bytes of TCP: enough for ports.
  Bytes quoted = ipv4("203.0.113.10", "192.0.2.1", 6, tcp(443, 50000));
  quoted.resize(28);
  ParsedPacket q;
  ASSERT_TRUE(dp::parse_quoted_ip(quoted.data(), 28, 4, q));
  EXPECT_EQ(q.src_port, 443);
  EXPECT_EQ(q.dst_port, 50000);
  EXPECT_FALSE(dp::parse_quoted_ip(quoted.data(), 24, 4, q));
}

// parse_packet_fast must be parse_packet, only quicker: same verdict, same
// reason, same fields, on valid frames of the kinds it takes and on random
// damage to them (lengths, versions, offsets, fragments, protocols).
TEST(Parser, FastPathAgreesWithTheFullParser) {
  const Bytes bases[] = {
      v4_tcp(),
      cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 17, udp(53, 53, 20))),
      cat(ether(0x86dd), ipv6("2001:db8::1", "2001:db8:10::10", 6, tcp(40000, 443))),
      cat(ether(0x86dd), ipv6("2001:db8::1", "2001:db8:10::10", 17, udp(5000, 53, 0))),
      cat(ether(0x0800), ipv4("192.0.2.10", "203.0.113.10", 1, Bytes(8, 0))),
  };
  std::mt19937 rng(11);
  int compared = 0;
  for (int round = 0; round < 40000; ++round) {
    Bytes f = bases[round % std::size(bases)];
    if (round % 2) f.resize(f.size() + rng() % 8, 0);  // Ethernet padding
    int damage = round < 10 ? 0 : static_cast<int>(rng() % 4);
    for (int d = 0; d < damage; ++d) {
      size_t at = 12 + rng() % std::min<size_t>(f.size() - 12, 50);
      f[at] = static_cast<uint8_t>(rng() % 3 == 0 ? rng() : f[at] ^ (1u << (rng() % 8)));
    }
    if (rng() % 8 == 0) f.resize(rng() % (f.size() + 1));
    ParsedPacket a, b;
    DropReason ra = DropReason::count, rb = DropReason::count;
    bool oka = dp::parse_packet(f.data(), static_cast<uint32_t>(f.size()), a, ra);
    bool okb = dp::parse_packet_fast(f.data(), static_cast<uint32_t>(f.size()), b, rb);
    ASSERT_EQ(oka, okb) << "round " << round;
    if (!oka) {
      ASSERT_EQ(ra, rb) << "round " << round;
      continue;
    }
    ++compared;
    ASSERT_EQ(a.src, b.src);
    ASSERT_EQ(a.dst, b.dst);
    ASSERT_EQ(a.l3_offset, b.l3_offset);
    ASSERT_EQ(a.l4_offset, b.l4_offset);
    ASSERT_EQ(a.ip_len, b.ip_len);
    ASSERT_EQ(a.l2_ethertype_offset, b.l2_ethertype_offset);
    ASSERT_EQ(a.family, b.family);
    ASSERT_EQ(a.l4_proto, b.l4_proto);
    ASSERT_EQ(a.vlan_tags, b.vlan_tags);
    ASSERT_EQ(a.fragment, b.fragment);
    if (!a.fragment && (a.l4_proto == 6 || a.l4_proto == 17)) {
      ASSERT_EQ(a.src_port, b.src_port);
      ASSERT_EQ(a.dst_port, b.dst_port);
    }
  }
  EXPECT_GT(compared, 10000);
}

}  // namespace
}  // namespace onramp::test
