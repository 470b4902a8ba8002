// Port overrides in the kernel, on fixture frames (BPF_PROG_TEST_RUN): the
// XDP program rewrites the destination port of decapsulated packets to
// (VIP, listener port), the TC egress program rewrites the source port of
// replies from (VIP, endpoint port). Each case gives the exact output frame,
// built here with checksums computed from scratch, and the counters that
// move; every output's TCP/UDP checksum is verified over the pseudo-header
// as well. Needs root (loading BPF); exits 77 otherwise.
#include <arpa/inet.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <netinet/in.h>

#include <cstdio>
#include <map>
#include <string>

#include "dataplane/decap/decap_program.h"
#include "tests/decap/program_fixture.h"
#include "tests/unit/packet_builder.h"

namespace {

using namespace onramp;
using test::Bytes;
using test::cat;
using test::ether;

const char* const kPopV4 = "198.51.100.1";
const char* const kPopV6 = "2001:db8:100::1";
const char* const kEndpointV4 = "198.51.100.20";
const char* const kEndpointV6 = "2001:db8:100::20";
const char* const kClientV4 = "192.0.2.10";
const char* const kClientV6 = "2001:db8:c::10";
const char* const kVipV4 = "203.0.113.200";
const char* const kVipV6 = "2001:db8:200::200";
constexpr uint16_t kGuePort = 6080;

// What onramp-decap is given on the command line.
const char* const kOverrides[] = {
    "203.0.113.200:443=8443/tcp",  "[2001:db8:200::200]:443=8443/tcp",
    "203.0.113.200:5353=5300/udp", "[2001:db8:200::200]:5353=5300/udp",
    "203.0.113.200:8080=9090",  // TCP and UDP
};

bool is_v6(const char* addr) { return std::strchr(addr, ':') != nullptr; }

// The one's-complement checksum of a TCP or UDP segment over the
// pseudo-header (RFC 793, 768, 8200), written out independently of the
// programs' incremental update.
uint16_t l4_checksum(const char* src, const char* dst, uint8_t proto, const Bytes& segment) {
  Bytes pseudo;
  const IpAddress s = test::ip(src), d = test::ip(dst);
  if (is_v6(src)) {
    pseudo.insert(pseudo.end(), s.v6(), s.v6() + 16);
    pseudo.insert(pseudo.end(), d.v6(), d.v6() + 16);
    test::put16(pseudo, 0);
    test::put16(pseudo, static_cast<uint16_t>(segment.size()));
    test::put16(pseudo, 0);
    test::put16(pseudo, proto);
  } else {
    pseudo.insert(pseudo.end(), s.v4(), s.v4() + 4);
    pseudo.insert(pseudo.end(), d.v4(), d.v4() + 4);
    test::put16(pseudo, proto);
    test::put16(pseudo, static_cast<uint16_t>(segment.size()));
  }
  const Bytes all = cat(pseudo, segment);
  return test::inet_checksum(all.data(), all.size());
}

// A TCP segment (SYN or SYN-ACK with a payload byte) or UDP datagram with
// its checksum filled in; `zero_udp_checksum`: the IPv4 "no checksum" 0.
Bytes segment(const char* src, const char* dst, uint8_t proto, uint16_t sport, uint16_t dport,
              bool zero_udp_checksum = false) {
  Bytes l4 = proto == IPPROTO_TCP ? cat(test::tcp(sport, dport, 0x12), {0x2a})
                                  : test::udp(sport, dport, 5);
  if (zero_udp_checksum) return l4;
  uint16_t c = l4_checksum(src, dst, proto, l4);
  if (proto == IPPROTO_UDP && c == 0) c = 0xffff;
  const size_t at = proto == IPPROTO_TCP ? 16 : 6;
  l4[at] = static_cast<uint8_t>(c >> 8);
  l4[at + 1] = static_cast<uint8_t>(c);
  return l4;
}

// An IP packet carrying segment(...).
Bytes packet(const char* src, const char* dst, uint8_t proto, uint16_t sport, uint16_t dport,
             bool zero_udp_checksum = false) {
  const Bytes l4 = segment(src, dst, proto, sport, dport, zero_udp_checksum);
  return is_v6(src) ? test::ipv6(src, dst, proto, l4) : test::ipv4(src, dst, proto, l4);
}

uint16_t type_of(const Bytes& ip_packet) { return (ip_packet[0] >> 4) == 6 ? 0x86dd : 0x0800; }

enum class Tunnel { ipip, gue };

// What the PoP sends: `inner` in IPIP or GUE over IPv4 (v6_outer false) or IPv6.
Bytes tunnelled(const Bytes& inner, Tunnel tunnel, bool v6_outer) {
  const uint8_t inner_proto = type_of(inner) == 0x86dd ? 41 : 4;
  Bytes payload = inner;
  uint8_t proto = inner_proto;
  if (tunnel == Tunnel::gue) {
    Bytes udp;
    test::put16(udp, 50000);
    test::put16(udp, kGuePort);
    test::put16(udp, static_cast<uint16_t>(8 + inner.size()));
    test::put16(udp, 0);
    payload = cat(udp, inner);
    proto = IPPROTO_UDP;
  }
  return v6_outer ? cat(ether(0x86dd), test::ipv6(kPopV6, kEndpointV6, proto, payload))
                  : cat(ether(0x0800), test::ipv4(kPopV4, kEndpointV4, proto, payload));
}

// Checks the TCP/UDP checksum of the IP packet after the Ethernet header
// (no VLAN tags here); "" if valid, else what is wrong.
std::string checksum_problem(const Bytes& frame) {
  const Bytes ip(frame.begin() + 14, frame.end());
  const bool v6 = (ip[0] >> 4) == 6;
  const size_t l3 = v6 ? 40 : (ip[0] & 0xf) * 4;
  const uint8_t proto = v6 ? ip[6] : ip[9];
  if (proto != IPPROTO_TCP && proto != IPPROTO_UDP) return "";
  const size_t total = v6 ? 40 + (ip[4] << 8 | ip[5]) : (ip[2] << 8 | ip[3]);
  const Bytes l4(ip.begin() + static_cast<long>(l3), ip.begin() + static_cast<long>(total));
  const size_t at = proto == IPPROTO_TCP ? 16 : 6;
  if (proto == IPPROTO_UDP && !v6 && l4[at] == 0 && l4[at + 1] == 0) return "";  // none
  char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
  const int family = v6 ? AF_INET6 : AF_INET;
  inet_ntop(family, &ip[v6 ? 8 : 12], src, sizeof src);
  inet_ntop(family, &ip[v6 ? 24 : 16], dst, sizeof dst);
  // Summed with its checksum field, a valid segment folds to 0xffff
  // (l4_checksum returns the complement: 0).
  if (l4_checksum(src, dst, proto, l4) != 0) return " checksum does not verify;";
  return "";
}

struct Case {
  std::string name;
  bool reply;  // false: the XDP program, on a tunnel frame; true: TC egress
  Bytes input;
  Bytes output;                      // empty: the input, untouched
  std::map<int, uint64_t> counters;  // the counters that move, by how much
};

std::vector<Case> cases() {
  std::vector<Case> c;
  constexpr uint8_t kTcp = IPPROTO_TCP, kUdp = IPPROTO_UDP;
  auto in = [&](std::string name, const Bytes& inner, Tunnel t, bool v6_outer,
                const Bytes& expected_inner, std::map<int, uint64_t> counters) {
    c.push_back({std::move(name), false, tunnelled(inner, t, v6_outer),
                 expected_inner.empty() ? Bytes{} : cat(ether(type_of(inner)), expected_inner),
                 std::move(counters)});
  };
  const int ipip4 = ONRAMP_DECAP_decap_ipip_v4, ipip6 = ONRAMP_DECAP_decap_ipip_v6;
  const int gue4 = ONRAMP_DECAP_decap_gue_v4, gue6 = ONRAMP_DECAP_decap_gue_v6;
  const int rw_in = ONRAMP_DECAP_port_rewritten_in, rw_out = ONRAMP_DECAP_port_rewritten_out;

  // Decapsulated, destination port rewritten, checksum fixed.
  in("4in4 IPIP, TCP to VIP:443 -> 8443", packet(kClientV4, kVipV4, kTcp, 40000, 443), Tunnel::ipip,
     false, packet(kClientV4, kVipV4, kTcp, 40000, 8443), {{ipip4, 1}, {rw_in, 1}});
  in("6in6 IPIP, TCP to [VIP]:443 -> 8443", packet(kClientV6, kVipV6, kTcp, 40000, 443),
     Tunnel::ipip, true, packet(kClientV6, kVipV6, kTcp, 40000, 8443), {{ipip6, 1}, {rw_in, 1}});
  in("6in4 IPIP, UDP to [VIP]:5353 -> 5300", packet(kClientV6, kVipV6, kUdp, 40001, 5353),
     Tunnel::ipip, false, packet(kClientV6, kVipV6, kUdp, 40001, 5300), {{ipip4, 1}, {rw_in, 1}});
  in("GUE over IPv4, TCP to VIP:443 -> 8443", packet(kClientV4, kVipV4, kTcp, 40002, 443),
     Tunnel::gue, false, packet(kClientV4, kVipV4, kTcp, 40002, 8443), {{gue4, 1}, {rw_in, 1}});
  in("GUE over IPv4, UDP to VIP:5353 -> 5300", packet(kClientV4, kVipV4, kUdp, 40003, 5353),
     Tunnel::gue, false, packet(kClientV4, kVipV4, kUdp, 40003, 5300), {{gue4, 1}, {rw_in, 1}});
  in("GUE over IPv6, UDP to [VIP]:5353 -> 5300", packet(kClientV6, kVipV6, kUdp, 40004, 5353),
     Tunnel::gue, true, packet(kClientV6, kVipV6, kUdp, 40004, 5300), {{gue6, 1}, {rw_in, 1}});
  in("GUE over IPv6, TCP to VIP:8080 -> 9090 (no protocol given: TCP)",
     packet(kClientV4, kVipV4, kTcp, 40005, 8080), Tunnel::gue, true,
     packet(kClientV4, kVipV4, kTcp, 40005, 9090), {{gue6, 1}, {rw_in, 1}});
  in("4in4 IPIP, UDP to VIP:8080 -> 9090 (no protocol given: UDP)",
     packet(kClientV4, kVipV4, kUdp, 40006, 8080), Tunnel::ipip, false,
     packet(kClientV4, kVipV4, kUdp, 40006, 9090), {{ipip4, 1}, {rw_in, 1}});
  in("4in4 IPIP, UDP without a checksum: port rewritten, checksum stays 0",
     packet(kClientV4, kVipV4, kUdp, 40007, 5353, true), Tunnel::ipip, false,
     packet(kClientV4, kVipV4, kUdp, 40007, 5300, true), {{ipip4, 1}, {rw_in, 1}});

  // Decapsulated, nothing to rewrite.
  in("4in4 IPIP, TCP to VIP:80 (not overridden)", packet(kClientV4, kVipV4, kTcp, 40010, 80),
     Tunnel::ipip, false, packet(kClientV4, kVipV4, kTcp, 40010, 80), {{ipip4, 1}});
  in("6in6 GUE, UDP to [VIP]:443 (overridden for TCP only)",
     packet(kClientV6, kVipV6, kUdp, 40011, 443), Tunnel::gue, true,
     packet(kClientV6, kVipV6, kUdp, 40011, 443), {{gue6, 1}});
  in("4in4 IPIP, TCP to another address's port 443",
     packet(kClientV4, "203.0.113.201", kTcp, 40012, 443), Tunnel::ipip, false,
     packet(kClientV4, "203.0.113.201", kTcp, 40012, 443), {{ipip4, 1}});
  const Bytes later_fragment =
      test::ipv4(kClientV4, kVipV4, kTcp, segment(kClientV4, kVipV4, kTcp, 40013, 443), {}, 0x0003);
  in("4in4 IPIP, a later fragment (its bytes are not the ports)", later_fragment, Tunnel::ipip,
     false, later_fragment, {{ipip4, 1}});
  // Not from a tunnel: the override is for what the PoP sends only.
  c.push_back({"plain TCP to VIP:443, not encapsulated",
               false,
               cat(ether(0x0800), packet(kClientV4, kVipV4, kTcp, 40014, 443)),
               {},
               {{ONRAMP_DECAP_not_encapsulated, 1}}});

  // Replies leaving the endpoint (TC egress): source port back.
  auto out = [&](std::string name, const Bytes& ip, const Bytes& expected_ip,
                 std::map<int, uint64_t> counters) {
    c.push_back({std::move(name), true, cat(ether(type_of(ip)), ip),
                 expected_ip.empty() ? Bytes{} : cat(ether(type_of(ip)), expected_ip),
                 std::move(counters)});
  };
  out("TCP from VIP:8443 -> 443", packet(kVipV4, kClientV4, kTcp, 8443, 40000),
      packet(kVipV4, kClientV4, kTcp, 443, 40000), {{rw_out, 1}});
  out("TCP from [VIP]:8443 -> 443", packet(kVipV6, kClientV6, kTcp, 8443, 40000),
      packet(kVipV6, kClientV6, kTcp, 443, 40000), {{rw_out, 1}});
  out("UDP from VIP:5300 -> 5353", packet(kVipV4, kClientV4, kUdp, 5300, 40003),
      packet(kVipV4, kClientV4, kUdp, 5353, 40003), {{rw_out, 1}});
  out("UDP from [VIP]:5300 -> 5353", packet(kVipV6, kClientV6, kUdp, 5300, 40004),
      packet(kVipV6, kClientV6, kUdp, 5353, 40004), {{rw_out, 1}});
  out("UDP from VIP:9090 -> 8080", packet(kVipV4, kClientV4, kUdp, 9090, 40006),
      packet(kVipV4, kClientV4, kUdp, 8080, 40006), {{rw_out, 1}});
  out("UDP without a checksum from VIP:5300: port rewritten, checksum stays 0",
      packet(kVipV4, kClientV4, kUdp, 5300, 40007, true),
      packet(kVipV4, kClientV4, kUdp, 5353, 40007, true), {{rw_out, 1}});
  out("TCP from VIP:80 (not overridden)", packet(kVipV4, kClientV4, kTcp, 80, 40010), {}, {});
  out("UDP from VIP:8443 (overridden for TCP only)", packet(kVipV4, kClientV4, kUdp, 8443, 40011),
      {}, {});
  out("TCP from this host's own address, port 8443",
      packet(kEndpointV4, kClientV4, kTcp, 8443, 40012), {}, {});
  out("TCP to VIP:8443 (a destination, not a source)", packet(kClientV4, kVipV4, kTcp, 40013, 8443),
      {}, {});
  c.push_back({"ARP", true, cat(ether(0x0806), Bytes(28, 0)), {}, {}});
  return c;
}

}  // namespace

int main() {
  std::unique_ptr<decap::DecapProgram> program = onramp::decap::test::load_program_or_exit();
  std::vector<decap::PortOverride> overrides;
  for (const char* text : kOverrides) {
    auto parsed = decap::parse_port_override(text);
    if (!parsed.ok()) {
      std::printf("FAIL: %s\n", parsed.error().c_str());
      return 1;
    }
    overrides.insert(overrides.end(), parsed->begin(), parsed->end());
  }
  Status s = program->configure(
      {*decap::parse_prefix("198.51.100.0/24"), *decap::parse_prefix("2001:db8:100::/64")},
      {kGuePort});
  if (s.ok())
    s = program->set_local_addresses(
        {*IpAddress::parse(kEndpointV4), *IpAddress::parse(kEndpointV6)});
  if (s.ok()) s = program->set_port_overrides(overrides);
  if (!s.ok()) {
    std::printf("FAIL: %s\n", s.message().c_str());
    return 1;
  }

  int failures = 0;
  const auto all = cases();
  for (const Case& c : all) {
    const decap::test::ProgramRun r = decap::test::run_program(
        *program, c.reply ? program->reply_prog_fd() : program->prog_fd(), c.input);
    std::string problems = r.error.empty() ? "" : " " + r.error + ";";
    if (r.error.empty()) {
      const uint32_t verdict = c.reply ? TC_ACT_OK : XDP_PASS;
      if (r.verdict != verdict)
        problems +=
            " verdict " + std::to_string(r.verdict) + ", expected " + std::to_string(verdict) + ";";
      const Bytes& expected = c.output.empty() ? c.input : c.output;
      if (r.out != expected)
        problems += "\n    output   " + decap::test::hex(r.out) + "\n    expected " +
                    decap::test::hex(expected) + "\n   ";
      else
        problems += checksum_problem(r.out);
      problems += decap::test::counter_problems(r.moved, c.counters);
    }
    if (!decap::test::report(c.name, problems)) ++failures;
  }
  std::printf("%d of %zu cases failed\n", failures, all.size());
  return failures ? 1 : 0;
}
