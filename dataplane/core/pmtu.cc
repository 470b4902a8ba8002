#include "dataplane/core/pmtu.h"

#include <algorithm>
#include <cstring>

#include "dataplane/core/hash.h"
#include "dataplane/core/net_headers.h"

namespace onramp::dp {

bool IcmpRateLimiter::allow(const IpAddress& client, uint32_t now_ms) {
  // Any fixed seed: the table is this lcore's own and never compared.
  const uint64_t key = hash_words(client.bytes.data(), 16, 0x706d7475) | 1;
  Bucket& b = buckets_[key & (kSlots - 1)];
  constexpr uint32_t kFull = kBurst * kMilli;
  if (b.key != key) {
    b = Bucket{key, now_ms, kFull};
  } else {
    // Unsigned difference: right across a wrap of the clock. Capped so the
    // product cannot overflow; a bucket refills in a second anyway.
    const uint32_t elapsed = std::min<uint32_t>(now_ms - b.last_ms, 60'000);
    b.tokens = std::min(kFull, b.tokens + elapsed * kPerSecond);
    b.last_ms = now_ms;
  }
  if (b.tokens < kMilli) return false;
  b.tokens -= kMilli;
  return true;
}

bool make_too_big(PacketBuf& pkt, const ParsedPacket& parsed, uint32_t mtu,
                  const MacAddress& port_mac) {
  const bool v4 = parsed.family == 4;
  const uint32_t ip_len = v4 ? kIpv4HeaderLen : kIpv6HeaderLen;
  const uint32_t added = ip_len + kIcmpHeaderLen;
  const uint32_t l2_len = parsed.l3_offset;
  const uint32_t quote =
      std::min<uint32_t>(parsed.ip_len, (v4 ? kIcmpv4ErrorMax : kIcmpv6ErrorMax) - added);
  if (pkt.headroom < added) return false;
  // New layout: [L2][IP][ICMP][quote = the original IP packet's start]. The
  // original IP packet stays where it is; the L2 header moves `added` bytes
  // forward first, since the new IP header is written over where it was.
  uint8_t* frame = pkt.data - added;
  std::memmove(frame, pkt.data, l2_len);
  std::memcpy(frame, frame + 6, 6);  // back to the MAC it came from
  std::memcpy(frame + 6, port_mac.data(), 6);
  const uint8_t* orig = pkt.data + l2_len;
  uint8_t* ip = frame + l2_len;
  uint8_t* icmp = ip + ip_len;  // `orig` starts where it ends: addresses read intact
  const auto icmp_len = static_cast<uint16_t>(kIcmpHeaderLen + quote);
  if (v4) {
    std::memset(ip, 0, kIpv4HeaderLen);
    ip[0] = 0x45;
    store_be16(ip + 2, static_cast<uint16_t>(kIpv4HeaderLen + icmp_len));
    ip[8] = 64;
    ip[9] = kProtoIcmp;
    std::memcpy(ip + 12, orig + 16, 4);  // from the VIP the client addressed
    std::memcpy(ip + 16, orig + 12, 4);
    store_be16(ip + 10, checksum_fold(checksum_partial(ip, kIpv4HeaderLen)));
    icmp[0] = kIcmpDestUnreachable;
    icmp[1] = kIcmpCodeFragNeeded;
    store_be16(icmp + 2, 0);
    store_be16(icmp + 4, 0);  // unused (RFC 1191 §4)
    store_be16(icmp + 6, static_cast<uint16_t>(mtu));
    store_be16(icmp + 2, checksum_fold(checksum_partial(icmp, icmp_len)));
  } else {
    store_be32(ip, 6u << 28);
    store_be16(ip + 4, icmp_len);
    ip[6] = kProtoIcmpv6;
    ip[7] = 64;
    std::memcpy(ip + 8, orig + 24, 16);
    std::memcpy(ip + 24, orig + 8, 16);
    icmp[0] = kIcmpv6PacketTooBig;
    icmp[1] = 0;
    store_be16(icmp + 2, 0);
    store_be32(icmp + 4, mtu);
    // Pseudo-header (RFC 8200 §8.1): addresses, upper-layer length, next
    // header; then the message.
    uint32_t sum = checksum_partial(ip + 8, 32) + icmp_len + kProtoIcmpv6;
    sum = checksum_partial(icmp, icmp_len, sum);
    store_be16(icmp + 2, checksum_fold(sum));
  }
  pkt.data = frame;
  pkt.headroom -= added;
  pkt.len = l2_len + added + quote;
  return true;
}

namespace {

// The options of `hdr` (IHL `ihl`) that RFC 791 copies into every fragment
// (copied flag, 0x80, set), written to `out`, padded with end-of-options to
// a multiple of 4. Returns their length.
uint32_t copied_options(const uint8_t* hdr, uint32_t ihl, uint8_t* out) {
  uint32_t n = 0;
  for (uint32_t i = kIpv4HeaderLen; i < ihl;) {
    const uint8_t type = hdr[i];
    if (type == 0) break;  // end of options
    if (type == 1) {       // no-op: not copied
      ++i;
      continue;
    }
    if (i + 1 >= ihl || hdr[i + 1] < 2 || i + hdr[i + 1] > ihl) break;  // malformed: stop
    const uint8_t len = hdr[i + 1];
    if (type & 0x80) {
      std::memcpy(out + n, hdr + i, len);
      n += len;
    }
    i += len;
  }
  while (n % 4) out[n++] = 0;
  return n;
}

}  // namespace

int fragment_ipv4(PacketBuf& pkt, ParsedPacket& parsed, uint32_t max_len, ExtraPackets& extra,
                  PacketBuf** frags, ParsedPacket* frag_parsed) {
  const uint32_t l2_len = parsed.l3_offset;
  uint8_t* ip = pkt.data + l2_len;
  const uint32_t ihl = (ip[0] & 0x0f) * 4u;
  const uint32_t total = parsed.ip_len;
  const uint16_t frag_field = load_be16(ip + 6);
  // The packet may itself be a fragment: its pieces keep its offset, and
  // the last keeps its more-fragments flag.
  const uint32_t base = (frag_field & 0x1fff) * 8u;
  const bool last_mf = frag_field & 0x2000;

  uint8_t later_hdr[60];
  std::memcpy(later_hdr, ip, kIpv4HeaderLen);
  const uint32_t later_ihl = kIpv4HeaderLen + copied_options(ip, ihl, later_hdr + kIpv4HeaderLen);
  later_hdr[0] = static_cast<uint8_t>(0x40 | later_ihl / 4);

  const uint32_t first_payload = (max_len - ihl) / 8 * 8;
  const uint32_t later_payload = (max_len - later_ihl) / 8 * 8;
  const uint32_t payload = total - ihl;
  if (first_payload == 0 || later_payload == 0 || first_payload >= payload) return -1;
  const uint32_t rest = payload - first_payload;
  const uint32_t n_extra = (rest + later_payload - 1) / later_payload;
  if (n_extra + 1 > kMaxFragments) return -1;

  // The later fragments first, while the original is whole.
  for (uint32_t k = 0; k < n_extra; ++k) {
    const uint32_t off = first_payload + k * later_payload;
    const uint32_t len = std::min(later_payload, payload - off);
    const bool mf = k + 1 < n_extra || last_mf;
    PacketBuf* f = extra.alloc(l2_len + later_ihl + len);
    if (!f) return -1;
    uint8_t* fip = f->data + l2_len;
    std::memcpy(f->data, pkt.data, l2_len);
    std::memcpy(fip, later_hdr, later_ihl);
    store_be16(fip + 2, static_cast<uint16_t>(later_ihl + len));
    store_be16(fip + 6, static_cast<uint16_t>((mf ? 0x2000 : 0) | (base + off) / 8));
    store_be16(fip + 10, 0);
    store_be16(fip + 10, checksum_fold(checksum_partial(fip, later_ihl)));
    std::memcpy(fip + later_ihl, ip + ihl + off, len);
    f->len = l2_len + later_ihl + len;
    frags[k] = f;
    ParsedPacket& fp = frag_parsed[k];
    fp = parsed;
    fp.ip_len = static_cast<uint16_t>(later_ihl + len);
    fp.l4_offset = static_cast<uint16_t>(l2_len + later_ihl);
    fp.fragment = true;
  }
  // The original becomes the first fragment: its header and payload start.
  store_be16(ip + 2, static_cast<uint16_t>(ihl + first_payload));
  store_be16(ip + 6, static_cast<uint16_t>(0x2000 | base / 8));
  store_be16(ip + 10, 0);
  store_be16(ip + 10, checksum_fold(checksum_partial(ip, ihl)));
  parsed.ip_len = static_cast<uint16_t>(ihl + first_payload);
  parsed.fragment = true;
  pkt.len = l2_len + ihl + first_payload;
  return static_cast<int>(n_extra);
}

}  // namespace onramp::dp
