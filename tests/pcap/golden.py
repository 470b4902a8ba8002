"""Builds the frames the dataplane should send, field by field, with scapy.

Nothing here reads the binary's output: an expected frame is assembled from the
forwarding rules (docs/design.md "Fast path", the comments in dataplane/core/encap.h
and icmp.h) and the input frame. Lengths and checksums are left to scapy, so a
wrong checksum or length in the dataplane shows up as a byte difference.
Hash-dependent fields (GUE source port, IPv6 flow label) are passed in by the
case, which pins them.
"""

import ipaddress

from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.inet6 import ICMPv6EchoReply, ICMPv6EchoRequest, ICMPv6PacketTooBig, IPv6
from scapy.layers.l2 import Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

# The MAC net_pcap gives port 0: the source of everything the dataplane sends.
PORT_MAC = "02:70:63:61:70:00"
# The upstream router that hands us client traffic (source MAC of input frames).
ROUTER_MAC = "02:00:00:00:00:01"
# next_hop_mac of the test tables.
NEXT_HOP_MAC = "02:00:00:00:00:fe"
TUNNEL_V4 = "192.0.2.1"
TUNNEL_V6 = "2001:db8::1"
GUE_PORT = 6080

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
_VLAN_LAYERS = (Dot1Q, Dot1AD)


def _split_l2(frame):
    """Returns (ether, [vlan tags], ip layer) of a frame."""
    eth = Ether(bytes(frame))
    tags = []
    layer = eth.payload
    while isinstance(layer, _VLAN_LAYERS):
        tags.append(layer)
        layer = layer.payload
    if not isinstance(layer, (IP, IPv6)):
        raise ValueError("golden: frame does not carry IPv4 or IPv6")
    return eth, tags, layer


def _ip_bytes(ip):
    """The IP packet alone: Ethernet padding after it cut off."""
    raw = bytes(ip)
    length = ip.len if isinstance(ip, IP) else 40 + ip.plen
    return raw[:length]


def _l2_header(eth, tags, dst, src, last_type):
    """Ethernet header with the same VLAN tags, new MACs and a new EtherType."""
    headers = [Ether(dst=dst, src=src)] + [
        type(t)(prio=t.prio, id=t.id, vlan=t.vlan) for t in tags
    ]
    types = [eth.type] + [t.type for t in tags]
    types[-1] = last_type
    out = None
    for header, ethertype in zip(headers, types):
        header.type = ethertype
        out = header if out is None else out / header
    return out


def encap(frame, endpoint, *, gue=False, gue_port=GUE_PORT, sport=None, flow_label=None,
          tunnel_v4=TUNNEL_V4, tunnel_v6=TUNNEL_V6, next_hop=NEXT_HOP_MAC):
    """The frame the dataplane sends when it forwards `frame` to `endpoint`.

    sport: GUE UDP source port (pinned by the case) when gue.
    flow_label: outer IPv6 flow label (pinned by the case) for an IPv6 endpoint.
    """
    eth, tags, ip = _split_l2(frame)
    inner = _ip_bytes(ip)
    if isinstance(ip, IP):
        tos, df, inner_proto = ip.tos, bool(ip.flags.DF), 4
    else:
        # An inner IPv6 packet is never fragmented on the path: DF on a v4 outer.
        tos, df, inner_proto = ip.tc, True, 41
    ep_v4 = ipaddress.ip_address(endpoint).version == 4
    next_proto = 17 if gue else inner_proto
    if ep_v4:
        outer = IP(version=4, ihl=5, tos=tos, id=0, flags="DF" if df else 0, frag=0, ttl=64,
                   proto=next_proto, src=tunnel_v4, dst=endpoint)
    else:
        if flow_label is None:
            raise ValueError("golden: an IPv6 outer header needs a pinned flow_label")
        outer = IPv6(tc=tos, fl=flow_label, nh=next_proto, hlim=64, src=tunnel_v6, dst=endpoint)
    if gue:
        if sport is None:
            raise ValueError("golden: GUE needs a pinned source port")
        # IPv4 outer: no UDP checksum. IPv6 outer: scapy computes it (RFC 8200).
        outer = outer / UDP(sport=sport, dport=gue_port, chksum=0 if ep_v4 else None)
    l2 = _l2_header(eth, tags, next_hop, PORT_MAC, ETH_IPV4 if ep_v4 else ETH_IPV6)
    return bytes(l2 / outer / Raw(inner))


def echo_reply(frame):
    """The echo reply the PoP sends back for an echo request to a VIP."""
    eth, tags, ip = _split_l2(frame)
    l2 = _l2_header(eth, tags, eth.src, PORT_MAC, ETH_IPV4 if isinstance(ip, IP) else ETH_IPV6)
    if isinstance(ip, IP):
        req = ip[ICMP]
        reply_ip = IP(version=4, ihl=ip.ihl, tos=ip.tos, len=ip.len, id=ip.id, flags=ip.flags,
                      frag=ip.frag, ttl=64, proto=1, src=ip.dst, dst=ip.src, options=ip.options)
        body = bytes(req.payload)
        icmp_len = ip.len - ip.ihl * 4 - 8
        reply = reply_ip / ICMP(type=0, code=req.code, id=req.id, seq=req.seq) / Raw(
            body[:icmp_len])
    else:
        # Extension headers before the ICMPv6 header stay as they were.
        reply = IPv6(tc=ip.tc, fl=ip.fl, nh=ip.nh, hlim=64, src=ip.dst, dst=ip.src)
        layer = ip.payload
        while not isinstance(layer, ICMPv6EchoRequest):
            header = layer.copy()
            header.remove_payload()
            reply = reply / header
            layer = layer.payload
        reply = reply / ICMPv6EchoReply(code=layer.code, id=layer.id, seq=layer.seq,
                                        data=layer.data)
    return bytes(l2 / reply)


def too_big_reply(frame, mtu):
    """The ICMP error the PoP sends back for `frame`, too big for its tunnel
    (docs/dataplane.md "Path MTU"): frag-needed (type 3 code 4) for IPv4,
    packet-too-big for IPv6, announcing `mtu`, from the VIP the client
    addressed, to the MAC the frame came from, VLAN tags kept, quoting the
    packet's start so that the error stays within 576 bytes (IPv4, RFC 1812)
    or 1280 (IPv6, RFC 4443)."""
    eth, tags, ip = _split_l2(frame)
    inner = _ip_bytes(ip)
    if isinstance(ip, IP):
        l2 = _l2_header(eth, tags, eth.src, PORT_MAC, ETH_IPV4)
        reply = IP(version=4, ihl=5, tos=0, id=0, flags=0, frag=0, ttl=64, proto=1,
                   src=ip.dst, dst=ip.src) / ICMP(type=3, code=4, nexthopmtu=mtu) / Raw(
                       inner[:576 - 28])
    else:
        l2 = _l2_header(eth, tags, eth.src, PORT_MAC, ETH_IPV6)
        reply = IPv6(tc=0, fl=0, nh=58, hlim=64, src=ip.dst, dst=ip.src) / ICMPv6PacketTooBig(
            mtu=mtu) / Raw(inner[:1280 - 48])
    return bytes(l2 / reply)


def ipv4_fragments(frame, max_len):
    """The frames an IPv4 packet without DF becomes when the PoP splits it to
    fit `max_len` bytes of IP packet (RFC 791), before encapsulation: same L2
    header; the first keeps every option, the others only those with the
    copied flag; payloads in multiples of 8 but the last. Encapsulate each
    with encap()."""
    eth, tags, ip = _split_l2(frame)
    raw = _ip_bytes(ip)
    ihl = ip.ihl * 4
    payload = raw[ihl:]
    copied = [o for o in ip.options if o.copy_flag]
    frames = []
    off = 0
    while off < len(payload):
        options = ip.options if off == 0 else copied
        hdr_len = 20 + (len(b"".join(bytes(o) for o in options)) + 3) // 4 * 4
        size = (max_len - hdr_len) // 8 * 8
        chunk = payload[off:off + size]
        last = off + len(chunk) == len(payload)
        frag = IP(version=4, tos=ip.tos, id=ip.id, flags=0 if last else "MF", frag=off // 8,
                  ttl=ip.ttl, proto=ip.proto, src=ip.src, dst=ip.dst, options=options)
        l2 = _l2_header(eth, tags, eth.dst, eth.src, ETH_IPV4)
        frames.append(bytes(l2 / frag / Raw(chunk)))
        off += len(chunk)
    return frames


def relay_wrap(frame, relay, *, sport, flow_label=None, relay_port=GUE_PORT, tunnel_v4=TUNNEL_V4,
               tunnel_v6=TUNNEL_V6):
    """What an ingress PoP sends for an endpoint reached over a relay PoP
    (docs/routing.md "Relaying over the backbone"): `frame`, the packet built
    for the endpoint (encap()), wrapped in IP + UDP from the same tunnel
    source to `relay`:`relay_port`, GUE variant 1 (the packet right after
    the UDP header). TOS/traffic class and DF follow the endpoint's packet;
    sport and, for IPv6, flow_label come from the flow hash (pinned)."""
    eth, tags, ip = _split_l2(frame)
    tunnel = _ip_bytes(ip)
    if isinstance(ip, IP):
        outer = IP(version=4, ihl=5, tos=ip.tos, id=0, flags="DF" if ip.flags.DF else 0, frag=0,
                   ttl=64, proto=17, src=tunnel_v4, dst=relay)
        udp = UDP(sport=sport, dport=relay_port, chksum=0)
    else:
        if flow_label is None:
            raise ValueError("golden: an IPv6 relay header needs a pinned flow_label")
        outer = IPv6(tc=ip.tc, fl=flow_label, nh=17, hlim=64, src=tunnel_v6, dst=relay)
        udp = UDP(sport=sport, dport=relay_port)  # checksum: scapy's (RFC 8200)
    l2 = _l2_header(eth, tags, eth.dst, eth.src, eth.type if not tags else tags[-1].type)
    return bytes(l2 / outer / udp / Raw(tunnel))


def relay_hop(frame, relay_v4, relay_v6):
    """What a relay PoP sends for a relayed `frame` (relay_wrap()): the packet
    for the endpoint alone, its source the relay's own tunnel address, TTL or
    hop limit one less, checksums recomputed (a UDP checksum of 0 over IPv4
    stays 0), to the next hop from the port."""
    eth, tags, ip = _split_l2(frame)
    raw = bytes(ip.payload.payload)  # under the relay's IP and UDP headers
    if isinstance(ip, IP):
        old = IP(raw)
        proto = old.proto
        hdr = IP(version=4, ihl=5, tos=old.tos, id=old.id, flags=old.flags, frag=0,
                 ttl=old.ttl - 1, proto=proto, src=relay_v4, dst=old.dst)
    else:
        old = IPv6(raw)
        proto = old.nh
        hdr = IPv6(tc=old.tc, fl=old.fl, nh=proto, hlim=old.hlim - 1, src=relay_v6, dst=old.dst)
    body = bytes(old.payload)
    if proto == 17:
        # GUE to the endpoint: what follows the UDP header is the client's
        # packet, carried as bytes.
        no_checksum = isinstance(ip, IP) and body[6:8] == b"\0\0"
        pkt = hdr / UDP(sport=int.from_bytes(body[0:2], "big"),
                        dport=int.from_bytes(body[2:4], "big"),
                        chksum=0 if no_checksum else None) / Raw(body[8:])
    else:
        pkt = hdr / Raw(body)
    l2 = _l2_header(eth, tags, NEXT_HOP_MAC, PORT_MAC, eth.type if not tags else tags[-1].type)
    return bytes(l2 / pkt)
