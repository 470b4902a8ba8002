// libFuzzer target: the whole per-packet pipeline (parse, classify, flow
// table, Maglev, encapsulation, ICMP) on arbitrary frames sent to a fixed
// table whose VIPs the fuzzer can find in its dictionary. Checks that the
// output stays inside the buffer and that every packet is accounted for.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "dataplane/core/processor.h"

namespace dp = onramp::dp;
using namespace onramp;

namespace {

IpAddress ip(const char* s) { return *IpAddress::parse(s); }

dp::ForwardingTable& table() {
  static std::unique_ptr<dp::ForwardingTable> t = [] {
    TableSpec spec{
        .tunnel_source_v4 = ip("192.0.2.1"),
        .tunnel_source_v6 = ip("2001:db8::1"),
        .next_hop_mac = {2, 0, 0, 0, 0, 0xfe},
        .listeners = {ListenerSpec{.name = "tcp",
                                   .vips = {ip("203.0.113.10"), ip("2001:db8:10::10")},
                                   .protocol = Protocol::tcp_udp,
                                   .port_ranges = {{1, 1024}},
                                   .endpoints = {{.address = ip("198.51.100.1")},
                                                 {.address = ip("2001:db8:100::2"),
                                                  .mode = ForwardingMode::gue}}},
                      ListenerSpec{.name = "sticky",
                                   .vips = {ip("203.0.113.10")},
                                   .protocol = Protocol::udp,
                                   .port_ranges = {{2000, 65535}},
                                   .affinity = Affinity::source_ip,
                                   .endpoints = {{.address = ip("198.51.100.3"), .weight = 5}}}},
        .maglev_size = 1021,
    };
    if (!validate_table_spec(spec).ok()) std::abort();
    auto built = dp::ForwardingTable::build(spec, 1);
    if (!built.ok()) std::abort();
    return std::move(*built);
  }();
  return *t;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static dp::PacketProcessor proc(0, 256);
  constexpr uint32_t kHeadroom = 64;
  if (size > 9000) return 0;
  std::vector<uint8_t> buf(kHeadroom + size);
  std::copy(data, data + size, buf.begin() + kHeadroom);
  dp::PacketBuf pkt{buf.data() + kHeadroom, static_cast<uint32_t>(size), kHeadroom};
  dp::Action action;
  uint64_t before = proc.stats().forwarded + proc.stats().echo_replies + proc.stats().dropped();
  static uint32_t now = 0;
  proc.process_burst(table(), &pkt, &action, 1, {2, 0x70, 0x63, 0x61, 0x70, 0}, now += 7);
  uint64_t after = proc.stats().forwarded + proc.stats().echo_replies + proc.stats().dropped();
  if (after != before + 1) std::abort();  // exactly one verdict per packet
  if (pkt.data < buf.data() || pkt.data + pkt.len > buf.data() + buf.size()) std::abort();
  if (action != dp::Action::drop && pkt.len < 14) std::abort();
  return 0;
}
