// libFuzzer target: fragment trains. The input is a list of 5-byte records,
// each one IPv4 or IPv6 fragment to a VIP (family, more-fragments, protocol,
// id, offset, length, and how far the clock moves: trains time out), run
// through the whole processor, and the same fragment through a bare
// FragmentTable. Checks one verdict per packet, outputs inside their buffer,
// and the train invariants: ranges sorted, disjoint, bounded in number, and
// inside 65535 bytes.
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "dataplane/core/fragment_table.h"
#include "dataplane/core/net_headers.h"
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
        .listeners = {ListenerSpec{
            .name = "any",
            .vips = {ip("203.0.113.10"), ip("2001:db8:10::10")},
            .protocol = Protocol::tcp_udp,
            .port_ranges = {{1, 1024}},
            .endpoints = {{.address = ip("198.51.100.1")},
                          {.address = ip("2001:db8:100::2"), .mode = ForwardingMode::gue},
                          {.address = ip("198.51.100.3")}}}},
        .maglev_size = 1021,
        .mtu = 1280,
    };
    if (!validate_table_spec(spec).ok()) std::abort();
    auto built = dp::ForwardingTable::build(spec, 1);
    if (!built.ok()) std::abort();
    return std::move(*built);
  }();
  return *t;
}

// One fragment frame from a record.
std::vector<uint8_t> build_frame(const uint8_t* r) {
  const bool v6 = r[0] & 1, more = r[0] & 2, tcp = r[0] & 4;
  const uint16_t offset = static_cast<uint16_t>(((r[2] << 8 | r[3]) & 0x1fff) * 8);
  const uint32_t data_len = r[4] * 6u;  // not always a multiple of 8
  const uint8_t proto = tcp ? dp::kProtoTcp : dp::kProtoUdp;
  std::vector<uint8_t> payload(data_len, 0x5a);
  if (offset == 0 && data_len >= 20) {  // a transport header: ports 4000 -> 53
    dp::store_be16(&payload[0], 4000);
    dp::store_be16(&payload[2], 53);
    if (tcp) payload[12] = 0x50;
  }
  std::vector<uint8_t> f = {2, 0x70, 0x63, 0x61, 0x70, 0, 2, 0, 0, 0, 0, 1};
  const uint8_t client = static_cast<uint8_t>(r[0] >> 7);  // two clients
  if (!v6) {
    f.insert(f.end(), {0x08, 0x00, 0x45, 0});
    f.resize(14 + 20);
    dp::store_be16(&f[16], static_cast<uint16_t>(20 + data_len));
    dp::store_be16(&f[18], r[1]);
    dp::store_be16(&f[20], static_cast<uint16_t>((more ? 0x2000 : 0) | offset / 8));
    f[22] = 64;
    f[23] = proto;
    const uint8_t src[4] = {192, 0, 2, client}, dst[4] = {203, 0, 113, 10};
    std::copy(src, src + 4, &f[26]);
    std::copy(dst, dst + 4, &f[30]);
  } else {
    f.insert(f.end(), {0x86, 0xdd, 0x60, 0});
    f.resize(14 + 40 + 8);
    dp::store_be16(&f[18], static_cast<uint16_t>(8 + data_len));
    f[20] = 44;
    f[21] = 64;
    const IpAddress s = ip("2001:db8:c::1"), d = ip("2001:db8:10::10");
    std::copy(s.v6(), s.v6() + 16, &f[22]);
    f[37] = client;
    std::copy(d.v6(), d.v6() + 16, &f[38]);
    f[54] = proto;
    dp::store_be16(&f[56], static_cast<uint16_t>(offset | (more ? 1 : 0)));
    dp::store_be32(&f[58], r[1]);
  }
  f.insert(f.end(), payload.begin(), payload.end());
  return f;
}

void check_train(const dp::FragmentTrain& t) {
  if (t.n_ranges > dp::FragmentTrain::kMaxRanges) std::abort();
  for (int i = 0; i < t.n_ranges; ++i) {
    if (t.begin[i] >= t.end[i] || t.end[i] > 0xffff) std::abort();
    if (i && t.begin[i] <= t.end[i - 1]) std::abort();  // sorted, disjoint, not touching
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static dp::PacketProcessor proc(0, 256);
  static dp::FragmentTable direct;
  static uint32_t now = 0;
  constexpr uint32_t kHeadroom = 64;
  for (size_t i = 0; i + 5 <= size && i < 5 * 64; i += 5) {
    const uint8_t* r = data + i;
    now += (r[0] >> 3 & 0x0f) * 700;  // up to 10.5 s a step: trains time out
    std::vector<uint8_t> f = build_frame(r);
    std::vector<uint8_t> buf(kHeadroom + f.size());
    std::copy(f.begin(), f.end(), buf.begin() + kHeadroom);
    dp::PacketBuf pkt{buf.data() + kHeadroom, static_cast<uint32_t>(f.size()), kHeadroom};
    const auto& s = proc.stats();
    const uint64_t before = s.forwarded + s.echo_replies + s.icmp_too_big_sent + s.dropped();
    dp::Action action;
    proc.process_burst(table(), &pkt, &action, 1, {2, 0x70, 0x63, 0x61, 0x70, 0}, now);
    if (s.forwarded + s.echo_replies + s.icmp_too_big_sent + s.dropped() != before + 1)
      std::abort();
    if (pkt.data < buf.data() || pkt.data + pkt.len > buf.data() + buf.size()) std::abort();

    // The same fragment through a bare table.
    dp::ParsedPacket p;
    dp::DropReason reason;
    if (!dp::parse_packet(f.data(), static_cast<uint32_t>(f.size()), p, reason) || !p.fragment)
      continue;
    if (p.frag_offset + dp::FragmentTable::data_len(p) > 0xffff) continue;
    dp::FragmentTrain* t = direct.find(p, now);
    if (!t && p.frag_offset == 0) t = &direct.insert(p, now);
    if (!t) continue;
    const bool added = direct.add(*t, p, now, reason);
    if (!added && reason != dp::DropReason::fragment_overlap &&
        reason != dp::DropReason::fragment_scattered)
      std::abort();
    check_train(*t);
  }
  return 0;
}
