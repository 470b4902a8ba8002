#include "dataplane/core/parser.h"

#include "dataplane/core/net_headers.h"

namespace onramp::dp {
namespace {

constexpr int kMaxVlanTags = 2;
constexpr int kMaxIpv6ExtHeaders = 8;

bool is_ipv6_ext_header(uint8_t next) {
  switch (next) {
    case 0:   // hop-by-hop options
    case 43:  // routing
    case 44:  // fragment
    case 51:  // authentication header
    case 60:  // destination options
      return true;
    default:
      return false;
  }
}

// Walks IPv6 extension headers from `off`; stops at the upper-layer header.
// `end` bounds the walk (end of the IP packet).
bool walk_ipv6_ext(const uint8_t* data, uint32_t end, uint32_t& off, uint8_t& next,
                   ParsedPacket& out, DropReason& reason) {
  for (int i = 0; is_ipv6_ext_header(next); ++i) {
    if (i == kMaxIpv6ExtHeaders) {
      reason = DropReason::too_many_ipv6_ext;
      return false;
    }
    if (off + 8 > end) {
      reason = DropReason::truncated_ipv6_ext;
      return false;
    }
    const uint8_t* h = data + off;
    uint32_t hlen;
    if (next == 44) {
      hlen = 8;
      uint16_t frag = load_be16(h + 2);
      // Offset != 0 or more-fragments set: not a whole packet. An atomic
      // fragment (both zero, RFC 6946) is one.
      if ((frag & 0xfff9) != 0 && !out.fragment) {
        out.fragment = true;
        out.frag_offset = frag & 0xfff8;
        out.frag_more = frag & 1;
        out.frag_id = load_be32(h + 4);
        out.frag_data_offset = static_cast<uint16_t>(off + 8);
      }
    } else if (next == 51) {
      hlen = (uint32_t{h[1]} + 2) * 4;
    } else {
      hlen = (uint32_t{h[1]} + 1) * 8;
    }
    if (off + hlen > end) {
      reason = DropReason::truncated_ipv6_ext;
      return false;
    }
    next = h[0];
    off += hlen;
    // A later fragment's data is not headers: stop at it. A first
    // fragment's headers go on to the transport header.
    if (out.fragment && out.frag_offset != 0) return true;
  }
  return true;
}

// Reads ports / ICMP type from the transport header at `off`, bounded by `end`.
bool parse_l4(const uint8_t* data, uint32_t end, uint32_t off, ParsedPacket& out,
              DropReason& reason) {
  const uint8_t* l4 = data + off;
  uint32_t avail = end - off;
  switch (out.l4_proto) {
    case kProtoTcp:
      if (avail < kTcpHeaderLen) {
        reason = DropReason::truncated_l4;
        return false;
      }
      if ((l4[12] >> 4) < 5 || (l4[12] >> 4) * 4u > avail) {
        reason = DropReason::bad_tcp_offset;
        return false;
      }
      out.src_port = load_be16(l4);
      out.dst_port = load_be16(l4 + 2);
      return true;
    case kProtoUdp:
      if (avail < kUdpHeaderLen) {
        reason = DropReason::truncated_l4;
        return false;
      }
      out.src_port = load_be16(l4);
      out.dst_port = load_be16(l4 + 2);
      return true;
    case kProtoIcmp:
    case kProtoIcmpv6:
      if (avail < kIcmpHeaderLen) {
        reason = DropReason::truncated_l4;
        return false;
      }
      out.icmp_type = l4[0];
      out.icmp_code = l4[1];
      return true;
    default:
      return true;  // other protocols: classified by address alone
  }
}

// Parses an IP header at data[off..end). `strict_length`: the IP length field
// must fit the buffer (false for a quoted header, which may be cut short).
bool parse_ip(const uint8_t* data, uint32_t end, uint32_t off, uint8_t family, ParsedPacket& out,
              DropReason& reason, bool strict_length) {
  out.family = family;
  out.l3_offset = static_cast<uint16_t>(off);
  const uint8_t* ip = data + off;
  uint32_t avail = end - off;
  uint32_t l4_off;
  uint32_t ip_end;
  if (family == 4) {
    if (avail < kIpv4HeaderLen) {
      reason = DropReason::truncated_ipv4;
      return false;
    }
    if ((ip[0] >> 4) != 4) {
      reason = DropReason::bad_ip_version;
      return false;
    }
    uint32_t ihl = (ip[0] & 0x0f) * 4u;
    if (ihl < kIpv4HeaderLen) {
      reason = DropReason::bad_ipv4_ihl;
      return false;
    }
    if (ihl > avail) {
      reason = DropReason::truncated_ipv4;
      return false;
    }
    uint32_t total = load_be16(ip + 2);
    if (total < ihl || (strict_length && total > avail)) {
      reason = DropReason::bad_ip_length;
      return false;
    }
    ip_end = off + (total < avail ? total : avail);
    out.ip_len = static_cast<uint16_t>(total);
    out.src = IpAddress::from_v4(ip + 12);
    out.dst = IpAddress::from_v4(ip + 16);
    out.l4_proto = ip[9];
    uint16_t frag = load_be16(ip + 6);
    out.fragment = (frag & 0x3fff) != 0;  // MF set or offset != 0
    out.frag_offset = static_cast<uint16_t>((frag & 0x1fff) * 8);
    out.frag_more = frag & 0x2000;
    out.frag_id = load_be16(ip + 4);
    out.frag_data_offset = static_cast<uint16_t>(off + ihl);
    l4_off = off + ihl;
  } else {
    if (avail < kIpv6HeaderLen) {
      reason = DropReason::truncated_ipv6;
      return false;
    }
    if ((ip[0] >> 4) != 6) {
      reason = DropReason::bad_ip_version;
      return false;
    }
    uint32_t total = kIpv6HeaderLen + load_be16(ip + 4);
    // A zero payload length with a hop-by-hop header would be a jumbogram;
    // frames never carry those, so the length check rejects it.
    if (strict_length && total > avail) {
      reason = DropReason::bad_ip_length;
      return false;
    }
    ip_end = off + (total < avail ? total : avail);
    out.ip_len = static_cast<uint16_t>(total);
    out.src = IpAddress::from_v6(ip + 8);
    out.dst = IpAddress::from_v6(ip + 24);
    uint8_t next = ip[6];
    l4_off = off + kIpv6HeaderLen;
    out.fragment = false;
    if (!walk_ipv6_ext(data, ip_end, l4_off, next, out, reason)) return false;
    out.l4_proto = next;
  }
  out.l4_offset = static_cast<uint16_t>(l4_off);
  out.frag_l4 = false;
  if (out.fragment) {
    if (out.frag_offset != 0 || !strict_length) return true;
    // A first fragment: its ports when its transport header is whole (a
    // tiny first fragment, RFC 1858, is the caller's to refuse).
    DropReason ignored;
    out.frag_l4 = parse_l4(data, ip_end, l4_off, out, ignored);
    return true;
  }
  if (strict_length) return parse_l4(data, ip_end, l4_off, out, reason);
  // A quoted header carries at least the first 8 bytes of the transport
  // header: enough for the ports, not for a whole TCP header.
  if (ip_end - l4_off < 8) return false;
  out.src_port = load_be16(data + l4_off);
  out.dst_port = load_be16(data + l4_off + 2);
  return true;
}

}  // namespace

bool parse_packet(const uint8_t* data, uint32_t len, ParsedPacket& out, DropReason& reason) {
  if (len < kEthHeaderLen) {
    reason = DropReason::truncated_ethernet;
    return false;
  }
  if (len > 0xffff) len = 0xffff;  // offsets are 16-bit; no frame is larger
  uint32_t type_off = 12;
  uint16_t ethertype = load_be16(data + type_off);
  out.vlan_tags = 0;
  while (ethertype == kEtherTypeVlan || ethertype == kEtherTypeQinQ) {
    if (out.vlan_tags == kMaxVlanTags) {
      reason = DropReason::too_many_vlan_tags;
      return false;
    }
    type_off += kVlanTagLen;
    if (type_off + 2 > len) {
      reason = DropReason::truncated_vlan;
      return false;
    }
    ethertype = load_be16(data + type_off);
    ++out.vlan_tags;
  }
  out.l2_ethertype_offset = static_cast<uint16_t>(type_off);
  uint8_t family;
  if (ethertype == kEtherTypeIpv4) {
    family = 4;
  } else if (ethertype == kEtherTypeIpv6) {
    family = 6;
  } else {
    reason = DropReason::non_ip;
    return false;
  }
  return parse_ip(data, len, type_off + 2, family, out, reason, true);
}

bool parse_quoted_ip(const uint8_t* data, uint32_t len, uint8_t family, ParsedPacket& out) {
  DropReason ignored;
  if (!parse_ip(data, len, 0, family, out, ignored, false)) return false;
  // Only TCP/UDP flows are ours; the quote must hold their ports.
  if (out.fragment || (out.l4_proto != kProtoTcp && out.l4_proto != kProtoUdp)) return false;
  return true;
}

}  // namespace onramp::dp
