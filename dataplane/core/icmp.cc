#include "dataplane/core/icmp.h"

#include <algorithm>
#include <cstring>

#include "dataplane/core/net_headers.h"

namespace onramp::dp {

void make_echo_reply(PacketBuf& pkt, const ParsedPacket& parsed, const MacAddress& port_mac) {
  uint8_t* frame = pkt.data;
  std::memcpy(frame, frame + 6, 6);
  std::memcpy(frame + 6, port_mac.data(), 6);
  uint8_t* ip = frame + parsed.l3_offset;
  uint8_t* icmp = frame + parsed.l4_offset;
  uint16_t old_word = load_be16(icmp);
  if (parsed.family == 4) {
    uint8_t tmp[4];
    std::memcpy(tmp, ip + 12, 4);
    std::memcpy(ip + 12, ip + 16, 4);
    std::memcpy(ip + 16, tmp, 4);
    ip[8] = 64;
    store_be16(ip + 10, 0);
    store_be16(ip + 10, checksum_fold(checksum_partial(ip, (ip[0] & 0x0f) * 4u)));
    icmp[0] = kIcmpEchoReply;
  } else {
    uint8_t tmp[16];
    std::memcpy(tmp, ip + 8, 16);
    std::memcpy(ip + 8, ip + 24, 16);
    std::memcpy(ip + 24, tmp, 16);
    ip[7] = 64;
    icmp[0] = kIcmpv6EchoReply;
  }
  // Swapping addresses leaves the pseudo-header sum as it was; only the type
  // byte changed.
  store_be16(icmp + 2, checksum_adjust(load_be16(icmp + 2), old_word, load_be16(icmp)));
  pkt.len = parsed.l3_offset + parsed.ip_len;
}

bool quoted_flow(const PacketBuf& pkt, const ParsedPacket& parsed, ParsedPacket& flow) {
  uint32_t start = parsed.l4_offset + kIcmpHeaderLen;
  uint32_t end = parsed.l3_offset + parsed.ip_len;
  if (start >= end) return false;
  ParsedPacket quoted;
  if (!parse_quoted_ip(pkt.data + start, end - start, parsed.family, quoted)) return false;
  flow = parsed;
  flow.src = quoted.dst;
  flow.dst = quoted.src;
  flow.src_port = quoted.dst_port;
  flow.dst_port = quoted.src_port;
  flow.l4_proto = quoted.l4_proto;
  return true;
}

}  // namespace onramp::dp
