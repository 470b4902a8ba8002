// libFuzzer target: the whole per-packet pipeline (parse, classify, flow
// table, Maglev, encapsulation, ICMP) on arbitrary frames sent to a fixed
// table whose VIPs the fuzzer can find in its dictionary. The table's MTU is
// 1280, so frames of more than about 1300 bytes take the path-MTU paths
// (ICMP error back, inner fragments into lent buffers). Checks that every
// output stays inside its buffer, that every packet is accounted for, that
// fragments are whole tunnel packets, and that every flow log record the
// table's sampled listeners make reaches the ring or is counted as lost. One
// listener's endpoints are relayed, and the table relays for two peers, so
// relayed packets (seeds v4_relay_*, v6_relay_*) take the relay hop.
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
                                                  .mode = ForwardingMode::gue}},
                                   .flow_log_sample_ppm = 1000000},
                      ListenerSpec{.name = "sticky",
                                   .vips = {ip("203.0.113.10")},
                                   .protocol = Protocol::udp,
                                   .port_ranges = {{2000, 65535}},
                                   .affinity = Affinity::source_ip,
                                   .endpoints = {{.address = ip("198.51.100.3"), .weight = 5}},
                                   .flow_log_sample_ppm = 500000},
                      // Reached over a relay PoP: the ingress's second layer.
                      ListenerSpec{
                          .name = "relayed",
                          .vips = {ip("203.0.113.11")},
                          .protocol = Protocol::tcp_udp,
                          .port_ranges = {{1, 65535}},
                          .endpoints = {{.address = ip("198.51.100.4"), .relay = ip("192.0.2.7")},
                                        {.address = ip("198.51.100.5"),
                                         .mode = ForwardingMode::gue,
                                         .relay = ip("192.0.2.7")}}}},
        .maglev_size = 1021,
        .mtu = 1280,
        // The relay hop: GUE from these to 192.0.2.1 / 2001:db8::1 port 6080.
        .relay_peers = {ip("192.0.2.9"), ip("2001:db8::9")},
    };
    if (!validate_table_spec(spec).ok()) std::abort();
    auto built = dp::ForwardingTable::build(spec, 1);
    if (!built.ok()) std::abort();
    return std::move(*built);
  }();
  return *t;
}

// Lends fixed buffers for fragments, each with its own bounds to check.
class Lender final : public dp::ExtraPackets {
 public:
  static constexpr uint32_t kRoom = 64 + 9100;
  dp::PacketBuf* alloc(uint32_t size) override {
    if (n_ == dp::kMaxFragments || size > kRoom - 64) return nullptr;
    Slot& s = slots_[n_++];
    s.buf = dp::PacketBuf{s.bytes + 64, 0, 64};
    return &s.buf;
  }
  void commit() override {
    for (uint32_t i = committed_; i < n_; ++i) {
      const dp::PacketBuf& b = slots_[i].buf;
      if (b.data < slots_[i].bytes || b.data + b.len > slots_[i].bytes + kRoom) std::abort();
      if (b.len < 14 + 20 + 20 || b.len > 14 + 8 + 1280) std::abort();  // encapsulated, fits
    }
    committed_ = n_;
  }
  void rollback() override { n_ = committed_; }
  uint32_t committed() const { return committed_; }
  void reset() { n_ = committed_ = 0; }

 private:
  struct Slot {
    uint8_t bytes[kRoom];
    dp::PacketBuf buf;
  };
  Slot slots_[dp::kMaxFragments];
  uint32_t n_ = 0;
  uint32_t committed_ = 0;
};

uint64_t verdicts(const dp::LcoreStats& s) {
  return s.forwarded + s.echo_replies + s.icmp_too_big_sent + s.dropped();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Flow logs on (a small ring, a short window), so their paths run too.
  static dp::PacketProcessor proc(0, 256, false, 16, 50);
  constexpr uint32_t kHeadroom = 64;
  if (size > 9000) return 0;
  std::vector<uint8_t> buf(kHeadroom + size);
  std::copy(data, data + size, buf.begin() + kHeadroom);
  dp::PacketBuf pkt{buf.data() + kHeadroom, static_cast<uint32_t>(size), kHeadroom};
  dp::Action action;
  static auto lender = std::make_unique<Lender>();
  lender->reset();
  const uint64_t before = verdicts(proc.stats());
  const uint64_t frags_before = proc.stats().fragments_sent;
  static uint32_t now = 0;
  proc.process_burst(table(), &pkt, &action, 1, {2, 0x70, 0x63, 0x61, 0x70, 0}, now += 7,
                     lender.get());
  if (verdicts(proc.stats()) != before + 1) std::abort();  // exactly one verdict per packet
  if (proc.stats().fragments_sent - frags_before != lender->committed()) std::abort();
  if (lender->committed() && action != dp::Action::forward) std::abort();
  if (action == dp::Action::icmp_error && pkt.len > 14 + 8 + 1280) std::abort();
  if (pkt.data < buf.data() || pkt.data + pkt.len > buf.data() + buf.size()) std::abort();
  if (action != dp::Action::drop && pkt.len < 14) std::abort();
  // Every record tried is either on the ring or counted as lost, and a
  // record never counts more than the packets its flow sent.
  proc.sweep_flow_logs(now, 1);
  static uint64_t popped = 0;
  dp::FlowLogRecord records[16];
  for (size_t n; (n = proc.flow_log()->ring().pop(records, 16)) > 0; popped += n)
    for (size_t i = 0; i < n; ++i)
      if (records[i].packets > proc.stats().forwarded) std::abort();
  if (popped != proc.flow_log()->stats().records) std::abort();
  return 0;
}
