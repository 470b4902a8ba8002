// The decapsulation program itself, run by the kernel on fixture frames
// (BPF_PROG_TEST_RUN): each case is an input frame, the verdict, the exact
// output frame and the one counter it must bump. Covers what the veth test
// cannot send easily: VLAN tags, outer IPv4 options, frame padding, every
// malformed shape. Needs root (loading BPF); exits 77 otherwise.
#include <arpa/inet.h>
#include <linux/bpf.h>

#include <cstdio>
#include <string>
#include <vector>

#include "dataplane/decap/decap_program.h"
#include "tests/decap/program_fixture.h"

namespace {

using onramp::decap::DecapProgram;
using namespace onramp::decap::test;
using Bytes = std::vector<uint8_t>;

constexpr uint16_t kIpv4 = 0x0800, kIpv6 = 0x86dd, kArp = 0x0806;
constexpr uint16_t kDot1q = 0x8100, kDot1ad = 0x88a8;
constexpr uint8_t kIpip = 4, kIpv6Proto = 41, kUdp = 17, kTcp = 6;
constexpr uint16_t kGuePort = 6080;

const char* const kPopV4 = "198.51.100.1";
const char* const kPopV6 = "2001:db8:100::1";
const char* const kEndpointV4 = "198.51.100.20";
const char* const kEndpointV6 = "2001:db8:100::20";

void put16(Bytes& b, uint16_t v) {
  b.push_back(static_cast<uint8_t>(v >> 8));
  b.push_back(static_cast<uint8_t>(v));
}

Bytes operator+(Bytes a, const Bytes& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

Bytes addr(const char* text) {
  Bytes b(16);
  if (inet_pton(AF_INET, text, b.data()) == 1) {
    b.resize(4);
    return b;
  }
  if (inet_pton(AF_INET6, text, b.data()) != 1) std::abort();
  return b;
}

// Ethernet with zero, one or two VLAN tags (outer TPID first).
Bytes eth(uint16_t type, std::vector<uint16_t> tpids = {}) {
  Bytes b = {0x02, 0, 0, 0, 0, 0x20, 0x02, 0, 0, 0, 0, 0x01};
  uint16_t vid = 100;
  for (uint16_t tpid : tpids) {
    put16(b, tpid);
    put16(b, vid++);
  }
  put16(b, type);
  return b;
}

struct Ipv4Shape {
  unsigned option_words = 0;  // IPv4 options, 4 bytes each
  uint16_t frag = 0;          // flags and offset field
  int total = -1;             // total length field; -1: the real one
};

Bytes ipv4(const char* src, const char* dst, uint8_t proto, const Bytes& payload,
           Ipv4Shape shape = {}) {
  const unsigned hlen = 20 + 4 * shape.option_words;
  Bytes b = {static_cast<uint8_t>(0x40 | hlen / 4), 0};
  put16(b, shape.total >= 0 ? static_cast<uint16_t>(shape.total)
                            : static_cast<uint16_t>(hlen + payload.size()));
  put16(b, 0x1234);
  put16(b, shape.frag);
  b.push_back(64);
  b.push_back(proto);
  put16(b, 0);
  b = b + addr(src) + addr(dst);
  for (unsigned i = 0; i < shape.option_words; ++i) b = b + Bytes{1, 1, 1, 1};  // NOPs
  uint32_t sum = 0;
  for (unsigned i = 0; i < hlen; i += 2) sum += b[i] << 8 | b[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  b[10] = static_cast<uint8_t>(~sum >> 8);
  b[11] = static_cast<uint8_t>(~sum);
  return b + payload;
}

Bytes ipv6(const char* src, const char* dst, uint8_t next, const Bytes& payload) {
  Bytes b = {0x60, 0, 0, 0};
  put16(b, static_cast<uint16_t>(payload.size()));
  b.push_back(next);
  b.push_back(64);
  return b + addr(src) + addr(dst) + payload;
}

Bytes udp(uint16_t sport, uint16_t dport, const Bytes& payload, int len = -1) {
  Bytes b;
  put16(b, sport);
  put16(b, dport);
  put16(b, len >= 0 ? static_cast<uint16_t>(len) : static_cast<uint16_t>(8 + payload.size()));
  put16(b, 0);
  return b + payload;
}

Bytes tcp_syn(uint16_t sport) {
  Bytes b;
  put16(b, sport);
  put16(b, 80);
  b = b + Bytes{0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0};
  return b;
}

// What clients send to the VIPs.
Bytes inner4(uint16_t sport = 40000) {
  return ipv4("192.0.2.10", "203.0.113.200", kTcp, tcp_syn(sport));
}
Bytes inner6(uint16_t sport = 40000) {
  return ipv6("2001:db8:c::10", "2001:db8:200::200", kTcp, tcp_syn(sport));
}

struct Case {
  std::string name;
  Bytes input;
  uint32_t verdict;
  Bytes output;  // the frame after the program; empty: the input, untouched
  int counter;   // the one counter that moves, by one
};

std::vector<Case> cases() {
  const Bytes in4 = inner4(), in6 = inner6();
  const Bytes padding(16, 0);
  std::vector<Case> c;
  auto add = [&](std::string name, Bytes input, uint32_t verdict, Bytes output, int counter) {
    c.push_back({std::move(name), std::move(input), verdict, std::move(output), counter});
  };
  // Decapsulated: the L2 header stays, its (last) EtherType names the inner family.
  add("4in4", eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kIpip, in4), XDP_PASS, eth(kIpv4) + in4,
      ONRAMP_DECAP_decap_ipip_v4);
  add("6in4", eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kIpv6Proto, in6), XDP_PASS, eth(kIpv6) + in6,
      ONRAMP_DECAP_decap_ipip_v4);
  add("4in4, outer IPv4 options",
      eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kIpip, in4, {.option_words = 3}), XDP_PASS,
      eth(kIpv4) + in4, ONRAMP_DECAP_decap_ipip_v4);
  add("4in4, allowed source at the end of the prefix",
      eth(kIpv4) + ipv4("198.51.100.255", kEndpointV4, kIpip, in4), XDP_PASS, eth(kIpv4) + in4,
      ONRAMP_DECAP_decap_ipip_v4);
  add("4in4 in an Ethernet frame padded past the IP packet",
      eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kIpip, in4) + padding, XDP_PASS,
      eth(kIpv4) + in4 + padding, ONRAMP_DECAP_decap_ipip_v4);
  add("4in4, one 802.1Q tag", eth(kIpv4, {kDot1q}) + ipv4(kPopV4, kEndpointV4, kIpip, in4),
      XDP_PASS, eth(kIpv4, {kDot1q}) + in4, ONRAMP_DECAP_decap_ipip_v4);
  add("6in4, 802.1ad + 802.1Q tags",
      eth(kIpv4, {kDot1ad, kDot1q}) + ipv4(kPopV4, kEndpointV4, kIpv6Proto, in6), XDP_PASS,
      eth(kIpv6, {kDot1ad, kDot1q}) + in6, ONRAMP_DECAP_decap_ipip_v4);
  add("4in6", eth(kIpv6) + ipv6(kPopV6, kEndpointV6, kIpip, in4), XDP_PASS, eth(kIpv4) + in4,
      ONRAMP_DECAP_decap_ipip_v6);
  add("6in6, one 802.1Q tag", eth(kIpv6, {kDot1q}) + ipv6(kPopV6, kEndpointV6, kIpv6Proto, in6),
      XDP_PASS, eth(kIpv6, {kDot1q}) + in6, ONRAMP_DECAP_decap_ipip_v6);
  add("GUE over IPv4, inner IPv4",
      eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kUdp, udp(50000, kGuePort, in4)), XDP_PASS,
      eth(kIpv4) + in4, ONRAMP_DECAP_decap_gue_v4);
  add("GUE over IPv4, inner IPv6",
      eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kUdp, udp(50000, kGuePort, in6)), XDP_PASS,
      eth(kIpv6) + in6, ONRAMP_DECAP_decap_gue_v4);
  add("GUE over IPv4 to the second configured port",
      eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kUdp, udp(50000, 7000, in4)), XDP_PASS,
      eth(kIpv4) + in4, ONRAMP_DECAP_decap_gue_v4);
  add("GUE over IPv6, two tags",
      eth(kIpv6, {kDot1ad, kDot1q}) + ipv6(kPopV6, kEndpointV6, kUdp, udp(50000, kGuePort, in4)),
      XDP_PASS, eth(kIpv4, {kDot1ad, kDot1q}) + in4, ONRAMP_DECAP_decap_gue_v6);

  // Not from an allowed PoP: untouched.
  add("4in4 from outside the allow list",
      eth(kIpv4) + ipv4("198.51.101.1", kEndpointV4, kIpip, in4), XDP_PASS, {},
      ONRAMP_DECAP_not_allowed);
  add("GUE from outside the allow list",
      eth(kIpv4) + ipv4("192.0.2.99", kEndpointV4, kUdp, udp(50000, kGuePort, in4)), XDP_PASS, {},
      ONRAMP_DECAP_not_allowed);
  add("6in6 from outside the allow list",
      eth(kIpv6) + ipv6("2001:db8:101::1", kEndpointV6, kIpv6Proto, in6), XDP_PASS, {},
      ONRAMP_DECAP_not_allowed);

  // Hardening finding: the outer destination was never checked. A tunnel
  // packet from a PoP to an address that is not this host's (passing
  // through, a broadcast, another host) is left alone.
  add("4in4 from a PoP to another host", eth(kIpv4) + ipv4(kPopV4, "198.51.100.99", kIpip, in4),
      XDP_PASS, {}, ONRAMP_DECAP_not_local);
  add("GUE over IPv4 from a PoP to a broadcast address",
      eth(kIpv4) + ipv4(kPopV4, "255.255.255.255", kUdp, udp(50000, kGuePort, in4)), XDP_PASS, {},
      ONRAMP_DECAP_not_local);
  add("6in6 from a PoP to another host",
      eth(kIpv6) + ipv6(kPopV6, "2001:db8:100::99", kIpv6Proto, in6), XDP_PASS, {},
      ONRAMP_DECAP_not_local);

  // Not tunnel packets: untouched.
  add("plain TCP to the VIP", eth(kIpv4) + in4, XDP_PASS, {}, ONRAMP_DECAP_not_encapsulated);
  add("UDP from the PoP to a port that is not GUE",
      eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kUdp, udp(50000, 6081, in4)), XDP_PASS, {},
      ONRAMP_DECAP_not_encapsulated);
  add("ARP", eth(kArp) + Bytes(28, 0), XDP_PASS, {}, ONRAMP_DECAP_not_encapsulated);
  add("IPv4 header cut short", eth(kIpv4) + Bytes{0x45, 0, 0, 40}, XDP_PASS, {},
      ONRAMP_DECAP_not_encapsulated);
  add("three VLAN tags (more than the program walks)",
      eth(kIpv4, {kDot1ad, kDot1q, kDot1q}) + ipv4(kPopV4, kEndpointV4, kIpip, in4), XDP_PASS, {},
      ONRAMP_DECAP_not_encapsulated);

  // Fragments of tunnel packets: no reassembly here, untouched.
  add("first fragment of a 4in4 packet",
      eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kIpip, in4, {.frag = 0x2000}), XDP_PASS, {},
      ONRAMP_DECAP_outer_fragment);
  add("last fragment of a 4in4 packet",
      eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kIpip, in4, {.frag = 0x0010}), XDP_PASS, {},
      ONRAMP_DECAP_outer_fragment);

  // Malformed tunnel packets from an allowed PoP: dropped.
  const Bytes cut(in4.begin(), in4.begin() + 12);
  add("4in4, inner header cut short", eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kIpip, cut), XDP_DROP,
      {}, ONRAMP_DECAP_malformed);
  add("IPIP protocol 4 carrying IPv6", eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kIpip, in6), XDP_DROP,
      {}, ONRAMP_DECAP_malformed);
  add("IPIP protocol 41 carrying IPv4", eth(kIpv6) + ipv6(kPopV6, kEndpointV6, kIpv6Proto, in4),
      XDP_DROP, {}, ONRAMP_DECAP_malformed);
  add("outer total length past the frame",
      eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kIpip, in4, {.total = 600}), XDP_DROP, {},
      ONRAMP_DECAP_malformed);
  add("outer total length shorter than the inner packet",
      eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kIpip, in4, {.total = 50}), XDP_DROP, {},
      ONRAMP_DECAP_malformed);
  add("GUE, UDP length past the IP packet",
      eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kUdp, udp(50000, kGuePort, in4, 500)), XDP_DROP, {},
      ONRAMP_DECAP_malformed);
  add("GUE, UDP length below its header",
      eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kUdp, udp(50000, kGuePort, in4, 4)), XDP_DROP, {},
      ONRAMP_DECAP_malformed);
  add("GUE variant 0 header (version nibble 0)",
      eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kUdp, udp(50000, kGuePort, Bytes{0, 4, 0, 0} + in4)),
      XDP_DROP, {}, ONRAMP_DECAP_malformed);
  add("GUE with nothing inside",
      eth(kIpv4) + ipv4(kPopV4, kEndpointV4, kUdp, udp(50000, kGuePort, {})) + Bytes(8, 0),
      XDP_DROP, {}, ONRAMP_DECAP_malformed);
  Bytes cut6 = eth(kIpv6) + ipv6(kPopV6, kEndpointV6, kIpv6Proto, in6);
  cut6.resize(cut6.size() - 10);
  add("6in6, IPv6 payload length past the frame", cut6, XDP_DROP, {}, ONRAMP_DECAP_malformed);
  return c;
}

}  // namespace

int main() {
  std::unique_ptr<DecapProgram> program = load_program_or_exit();
  auto v4 = onramp::decap::parse_prefix("198.51.100.0/24");
  auto v6 = onramp::decap::parse_prefix("2001:db8:100::/64");
  if (!v4.ok() || !v6.ok()) return 1;
  if (onramp::Status s = program->configure({*v4, *v6}, {kGuePort, 7000}); !s.ok()) {
    std::printf("FAIL: %s\n", s.message().c_str());
    return 1;
  }
  // This "host" has the endpoint's addresses only.
  if (onramp::Status s = program->set_local_addresses(
          {*onramp::IpAddress::parse(kEndpointV4), *onramp::IpAddress::parse(kEndpointV6)});
      !s.ok()) {
    std::printf("FAIL: %s\n", s.message().c_str());
    return 1;
  }

  int failures = 0;
  const auto all = cases();
  for (const Case& c : all) {
    const ProgramRun r = run_program(*program, program->prog_fd(), c.input);
    std::string problems = r.error.empty() ? "" : " " + r.error + ";";
    if (r.error.empty()) {
      if (r.verdict != c.verdict)
        problems += " verdict " + std::to_string(r.verdict) + ", expected " +
                    std::to_string(c.verdict) + ";";
      const Bytes& expected = c.output.empty() ? c.input : c.output;
      if (c.verdict == XDP_PASS && r.out != expected)
        problems += "\n    output   " + hex(r.out) + "\n    expected " + hex(expected) + "\n   ";
      problems += counter_problems(r.moved, {{c.counter, 1}});
    }
    if (!report(c.name, problems)) ++failures;
  }
  std::printf("%d of %zu cases failed\n", failures, all.size());
  return failures ? 1 : 0;
}
