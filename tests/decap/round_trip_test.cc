// The PoP's encapsulation and the endpoint's decapsulation together: client
// frames go through the real packet core (PacketProcessor, as
// onramp-dataplane runs it) towards IPIP and GUE endpoints over IPv4 and
// IPv6, and the output goes through the decap program (BPF_PROG_TEST_RUN).
// What reaches the endpoint's stack must be the client's IP packet, byte for
// byte, behind the PoP's L2 header with the inner EtherType. Needs root
// (loading BPF); exits 77 otherwise.
#include <linux/bpf.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

#include "dataplane/core/processor.h"
#include "dataplane/decap/decap_program.h"
#include "tests/decap/program_fixture.h"
#include "tests/unit/packet_builder.h"

namespace {

using namespace onramp;
using test::Bytes;
using test::cat;
using test::ether;
using test::ip;

constexpr MacAddress kPortMac = {0x02, 0x70, 0x63, 0x61, 0x70, 0x00};
constexpr uint32_t kHeadroom = 128;

struct Case {
  const char* name;
  const char* client;
  const char* vip;
  const char* endpoint;
  ForwardingMode mode;
  uint16_t gue_port;  // 0: the table's (6080)
  bool vlan;
  int counter;  // -1: the program must leave the frame alone (not_encapsulated)
};

const Case kCases[] = {
    {"4in4 IPIP", "192.0.2.10", "203.0.113.10", "198.51.100.7", ForwardingMode::ipip, 0, false,
     ONRAMP_DECAP_decap_ipip_v4},
    {"6in4 IPIP", "2001:db8:c::10", "2001:db8:10::10", "198.51.100.7", ForwardingMode::ipip, 0,
     false, ONRAMP_DECAP_decap_ipip_v4},
    {"4in6 IPIP", "192.0.2.10", "203.0.113.10", "2001:db8:100::7", ForwardingMode::ipip, 0, false,
     ONRAMP_DECAP_decap_ipip_v6},
    {"6in6 IPIP, VLAN", "2001:db8:c::10", "2001:db8:10::10", "2001:db8:100::7",
     ForwardingMode::ipip, 0, true, ONRAMP_DECAP_decap_ipip_v6},
    {"4in4 GUE", "192.0.2.10", "203.0.113.10", "198.51.100.7", ForwardingMode::gue, 0, false,
     ONRAMP_DECAP_decap_gue_v4},
    {"6in4 GUE, VLAN", "2001:db8:c::10", "2001:db8:10::10", "198.51.100.7", ForwardingMode::gue, 0,
     true, ONRAMP_DECAP_decap_gue_v4},
    {"4in6 GUE", "192.0.2.10", "203.0.113.10", "2001:db8:100::7", ForwardingMode::gue, 0, false,
     ONRAMP_DECAP_decap_gue_v6},
    {"6in6 GUE", "2001:db8:c::10", "2001:db8:10::10", "2001:db8:100::7", ForwardingMode::gue, 0,
     false, ONRAMP_DECAP_decap_gue_v6},
    {"GUE to a port the endpoint was not told about", "192.0.2.10", "203.0.113.10", "198.51.100.7",
     ForwardingMode::gue, 7000, false, -1},
};

Bytes client_frame(const Case& c, bool vlan) {
  const bool v6 = std::strchr(c.client, ':') != nullptr;
  const Bytes l4 = test::tcp(40000, 80);
  std::initializer_list<uint16_t> tags = {42};
  std::initializer_list<uint16_t> none = {};
  return v6 ? cat(ether(0x86dd, vlan ? tags : none), test::ipv6(c.client, c.vip, 6, l4))
            : cat(ether(0x0800, vlan ? tags : none), test::ipv4(c.client, c.vip, 6, l4));
}

}  // namespace

int main() {
  std::unique_ptr<decap::DecapProgram> program = onramp::decap::test::load_program_or_exit();
  std::vector<decap::Prefix> allow = {*decap::parse_prefix("198.51.100.0/24"),
                                      *decap::parse_prefix("2001:db8:100::/64")};
  if (Status s = program->configure(allow, {kDefaultGuePort}); !s.ok()) {
    std::printf("FAIL: %s\n", s.message().c_str());
    return 1;
  }
  // The endpoint host: every case's endpoint address is its own.
  std::vector<IpAddress> local;
  for (const Case& c : kCases) local.push_back(ip(c.endpoint));
  if (Status s = program->set_local_addresses(local); !s.ok()) {
    std::printf("FAIL: %s\n", s.message().c_str());
    return 1;
  }

  int failures = 0;
  for (const Case& c : kCases) {
    // The PoP: one listener, one endpoint, tunnel sources in the allowed prefixes.
    TableSpec spec{
        .version = 1,
        .pop = "FRA1",
        .tunnel_source_v4 = ip("198.51.100.1"),
        .tunnel_source_v6 = ip("2001:db8:100::1"),
        .next_hop_mac = {0x02, 0, 0, 0, 0, 0xfe},
        .listeners = {ListenerSpec{
            .name = "web",
            .vips = {ip("203.0.113.10"), ip("2001:db8:10::10")},
            .protocol = Protocol::tcp_udp,
            .port_ranges = {{80, 80}},
            .endpoints = {{.address = ip(c.endpoint), .mode = c.mode, .gue_port = c.gue_port}}}},
    };
    Status valid = validate_table_spec(spec);
    auto table = valid.ok() ? dp::ForwardingTable::build(spec, 1)
                            : Result<std::unique_ptr<dp::ForwardingTable>>(valid);
    if (!table.ok()) {
      std::printf("FAIL %s: table: %s\n", c.name, table.error().c_str());
      ++failures;
      continue;
    }
    dp::PacketProcessor proc(0, 1024);
    const Bytes in = client_frame(c, c.vlan);
    std::vector<uint8_t> storage(kHeadroom + in.size());
    std::copy(in.begin(), in.end(), storage.begin() + kHeadroom);
    dp::PacketBuf pkt{storage.data() + kHeadroom, static_cast<uint32_t>(in.size()), kHeadroom};
    dp::Action action;
    proc.process_burst(**table, &pkt, &action, 1, kPortMac, 0);
    if (action != dp::Action::forward) {
      std::printf("FAIL %s: the PoP did not forward the client's frame\n", c.name);
      ++failures;
      continue;
    }
    const Bytes tunnel(pkt.data, pkt.data + pkt.len);

    // The endpoint.
    const decap::test::ProgramRun r =
        decap::test::run_program(*program, program->prog_fd(), tunnel);
    if (!r.error.empty()) {
      std::printf("FAIL %s: %s\n", c.name, r.error.c_str());
      ++failures;
      continue;
    }

    const size_t l2 = c.vlan ? 18 : 14;
    Bytes expected = tunnel;  // untouched, unless decapsulated:
    if (c.counter >= 0) {
      expected.assign(tunnel.begin(), tunnel.begin() + static_cast<long>(l2));
      expected[l2 - 2] = in[l2 - 2];  // the client's EtherType: the inner family
      expected[l2 - 1] = in[l2 - 1];
      expected.insert(expected.end(), in.begin() + static_cast<long>(l2), in.end());
    }
    const int counter = c.counter >= 0 ? c.counter : ONRAMP_DECAP_not_encapsulated;
    std::string problems;
    if (r.verdict != XDP_PASS) problems += " verdict " + std::to_string(r.verdict) + ";";
    if (r.out != expected) problems += " the frame after decap is not the expected one;";
    problems += decap::test::counter_problems(r.moved, {{counter, 1}});
    if (!decap::test::report(c.name, problems)) ++failures;
  }
  std::printf("%d of %zu cases failed\n", failures, std::size(kCases));
  return failures ? 1 : 0;
}
