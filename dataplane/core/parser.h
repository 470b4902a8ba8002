// Parses one frame's Ethernet, 802.1Q, IPv4/IPv6 (options, extension headers)
// and TCP/UDP/ICMP headers into offsets and the fields classification needs.
// It reads only inside [data, data + len) and never writes; any input either
// parses or yields a drop reason.
#pragma once

#include <cstdint>

#include "dataplane/core/drop_reason.h"
#include "dataplane/core/ip_address.h"

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
  bool fragment = false;  // a non-first or incomplete fragment: no L4 view
};

// Returns true and fills `out`, or returns false and sets `reason`.
bool parse_packet(const uint8_t* data, uint32_t len, ParsedPacket& out, DropReason& reason);

// Parses the IP header quoted inside an ICMP error (RFC 792 / RFC 4443): an IP
// header and at least 8 bytes of its payload, possibly cut short after that.
// Fills src, dst, l4_proto and ports; offsets are relative to `data`.
bool parse_quoted_ip(const uint8_t* data, uint32_t len, uint8_t family, ParsedPacket& out);

}  // namespace onramp::dp
