// Parses one frame's Ethernet, 802.1Q, IPv4/IPv6 (options, extension headers)
// and TCP/UDP/ICMP headers into offsets and the fields classification needs.
// It reads only inside [data, data + len) and never writes; any input either
// parses or yields a drop reason.
#pragma once

#include <cstdint>

#include "common/ip_address.h"
#include "dataplane/core/drop_reason.h"
#include "dataplane/core/net_headers.h"

namespace onramp::dp {

struct ParsedPacket {
  IpAddress src;
  IpAddress dst;
  uint16_t l3_offset = 0;             // first byte of the IP header (after L2 and VLAN tags)
  uint16_t l4_offset = 0;             // first byte after the IP header and its extensions
  uint16_t ip_len = 0;                // IP header + payload per the IP length field
  uint16_t src_port = 0;              // host order; ICMP: 0
  uint16_t dst_port = 0;              // host order; ICMP: 0
  uint16_t l2_ethertype_offset = 12;  // where the innermost EtherType sits
  uint8_t family = 0;                 // 4 or 6
  uint8_t l4_proto = 0;               // TCP, UDP, ICMP, ICMPv6 or anything else (not parsed)
  uint8_t icmp_type = 0;
  uint8_t icmp_code = 0;
  uint8_t vlan_tags = 0;
  // A fragment (IPv4 MF or offset set; IPv6 fragment header other than an
  // atomic one): not a whole packet. A first fragment (frag_offset 0) whose
  // transport header is whole has its ports parsed (frag_l4); a later one
  // has no L4 view, and for IPv6 its l4_proto is the next header after the
  // fragment header, whatever that is.
  bool fragment = false;
  bool frag_more = false;         // more fragments follow (IPv4 MF, IPv6 M)
  bool frag_l4 = false;           // first fragment with its whole TCP/UDP/ICMP header
  uint16_t frag_offset = 0;       // bytes from the datagram's fragmentable part
  uint16_t frag_data_offset = 0;  // first byte of the fragment's data (after the
                                  // IPv4 header / IPv6 fragment header)
  uint32_t frag_id = 0;           // IPv4 identification / IPv6 fragment id
};

// Returns true and fills `out`, or returns false and sets `reason`.
bool parse_packet(const uint8_t* data, uint32_t len, ParsedPacket& out, DropReason& reason);

// parse_packet for the frames a PoP sees most, inline: untagged IPv4 without
// options or IPv6 without extension headers, not fragmented, carrying a
// whole TCP or UDP header. It fills `out` exactly as parse_packet would and
// hands every other frame to it.
[[gnu::always_inline]] inline bool parse_packet_fast(const uint8_t* data, uint32_t len,
                                                     ParsedPacket& out, DropReason& reason) {
  constexpr uint32_t kL3 = kEthHeaderLen;
  if (len >= kL3 + kIpv4HeaderLen + kUdpHeaderLen && len <= 0xffff) {
    const uint16_t ethertype = load_be16(data + 12);
    const uint8_t* ip = data + kL3;
    uint32_t l4_off = 0;
    uint32_t total = 0;
    uint8_t proto = 0;
    if (ethertype == kEtherTypeIpv4 && ip[0] == 0x45 && (load_be16(ip + 6) & 0x3fff) == 0) {
      total = load_be16(ip + 2);
      proto = ip[9];
      l4_off = kL3 + kIpv4HeaderLen;
      if (total < kIpv4HeaderLen) l4_off = 0;
    } else if (ethertype == kEtherTypeIpv6 && (ip[0] >> 4) == 6 &&
               len >= kL3 + kIpv6HeaderLen + kUdpHeaderLen) {
      total = kIpv6HeaderLen + load_be16(ip + 4);
      proto = ip[6];
      l4_off = kL3 + kIpv6HeaderLen;
    }
    const uint32_t l4_len = kL3 + total - l4_off;
    const uint8_t* l4 = data + l4_off;
    if (l4_off && kL3 + total <= len &&
        ((proto == kProtoUdp && l4_len >= kUdpHeaderLen) ||
         (proto == kProtoTcp && l4_len >= kTcpHeaderLen && (l4[12] >> 4) >= 5 &&
          (l4[12] >> 4) * 4u <= l4_len))) {
      out.vlan_tags = 0;
      out.l2_ethertype_offset = 12;
      out.l3_offset = kL3;
      out.l4_offset = static_cast<uint16_t>(l4_off);
      out.ip_len = static_cast<uint16_t>(total);
      out.l4_proto = proto;
      out.fragment = false;
      out.src_port = load_be16(l4);
      out.dst_port = load_be16(l4 + 2);
      if (ethertype == kEtherTypeIpv4) {
        out.family = 4;
        out.src = IpAddress::from_v4(ip + 12);
        out.dst = IpAddress::from_v4(ip + 16);
      } else {
        out.family = 6;
        out.src = IpAddress::from_v6(ip + 8);
        out.dst = IpAddress::from_v6(ip + 24);
      }
      return true;
    }
  }
  return parse_packet(data, len, out, reason);
}

// Parses the IP header quoted inside an ICMP error (RFC 792 / RFC 4443): an IP
// header and at least 8 bytes of its payload, possibly cut short after that.
// Fills src, dst, l4_proto and ports; offsets are relative to `data`.
bool parse_quoted_ip(const uint8_t* data, uint32_t len, uint8_t family, ParsedPacket& out);

}  // namespace onramp::dp
