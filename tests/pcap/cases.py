"""The pcap replay cases: each one input capture, one forwarding table, and the
golden output (byte for byte) or a verdict (invariants and counters).

Golden frames are built with scapy from the forwarding rules (golden.py), never
copied from the binary's output. Values that depend on the flow hash (GUE
source port, IPv6 flow label, which of several endpoints a flow lands on) are
pinned below as literals; they were computed with the reference model in
model.py and must not change between releases, since every PoP has to agree
on them.

To add a case from a capture: tests/pcap/pcap2case.py (see docs/pcap-tests.md).
"""

import ipaddress

from scapy.layers.inet import ICMP, IP, TCP, UDP, IPOption_NOP, IPOption_Router_Alert
from scapy.layers.inet6 import (ICMPv6DestUnreach, ICMPv6EchoReply, ICMPv6EchoRequest,
                                ICMPv6PacketTooBig, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment,
                                IPv6ExtHdrHopByHop, IPv6ExtHdrRouting)
from scapy.layers.l2 import ARP, Dot1AD, Dot1Q, Ether
from scapy.packet import Raw

import model
from golden import (PORT_MAC, ROUTER_MAC, echo_reply, encap, ipv4_fragments, relay_hop, relay_wrap,
                    too_big_reply)
from pcap_replay import Case, counter, decap

# ---------------------------------------------------------------------------
# Input builders


def eth(**kw):
    return Ether(src=ROUTER_MAC, dst=PORT_MAC, **kw)


def tcp4(src, dst, sport, dport, flags="S", payload=b"", tcp=None, **ip):
    return eth() / IP(src=src, dst=dst, **ip) / TCP(sport=sport, dport=dport, flags=flags,
                                                    seq=0x1000, window=64240,
                                                    **(tcp or {})) / payload


def tcp6(src, dst, sport, dport, flags="S", payload=b"", tcp=None, **ip):
    return eth() / IPv6(src=src, dst=dst, **ip) / TCP(sport=sport, dport=dport, flags=flags,
                                                      seq=0x1000, window=64240,
                                                      **(tcp or {})) / payload


def udp4(src, dst, sport, dport, payload=b"query", **ip):
    return eth() / IP(src=src, dst=dst, **ip) / UDP(sport=sport, dport=dport) / payload


def udp6(src, dst, sport, dport, payload=b"query", **ip):
    return eth() / IPv6(src=src, dst=dst, **ip) / UDP(sport=sport, dport=dport) / payload


def raw_eth(ethertype, payload):
    """A frame with an arbitrary EtherType and bytes after it."""
    return bytes(Ether(src=ROUTER_MAC, dst=PORT_MAC, type=ethertype)) + bytes(payload)


def pad_to(frame, size):
    """Ethernet padding after the IP packet, as a NIC delivers short frames."""
    raw = bytes(frame)
    return raw + b"\0" * (size - len(raw))


def ip_len(frame):
    """Length of the IP packet in a frame (what listener/endpoint bytes count)."""
    f = Ether(bytes(frame))
    ip = f[IP] if IP in f else f[IPv6]
    return ip.len if isinstance(ip, IP) else 40 + ip.plen


def norm(address):
    return str(ipaddress.ip_address(address))


# ---------------------------------------------------------------------------
# Tables

BASE_TABLE = """\
pop: "TST1"
tunnel_source { ipv4: "192.0.2.1" ipv6: "2001:db8::1" }
next_hop_mac: "02:00:00:00:00:fe"
listeners {
  name: "web4" vips: "203.0.113.10" protocol: TCP
  port_ranges { first: 80 } port_ranges { first: 8000 last: 8099 }
  endpoints { address: "198.51.100.10" weight: 100 label: "eu-central" }
}
listeners {
  name: "web6" vips: "2001:db8:10::10" protocol: TCP
  port_ranges { first: 443 }
  endpoints { address: "2001:db8:100::10" weight: 100 }
}
listeners {
  name: "v4-to-v6" vips: "203.0.113.20" protocol: TCP
  port_ranges { first: 443 }
  endpoints { address: "2001:db8:100::20" weight: 100 }
}
listeners {
  name: "v6-to-v4" vips: "2001:db8:10::20" protocol: TCP
  port_ranges { first: 443 }
  endpoints { address: "198.51.100.20" weight: 100 }
}
listeners {
  name: "dns" vips: "203.0.113.30" vips: "2001:db8:10::30" protocol: UDP
  port_ranges { first: 53 }
  endpoints { address: "198.51.100.30" weight: 100 }
}
listeners {
  name: "gue4" vips: "203.0.113.40" protocol: TCP_UDP
  port_ranges { first: 4000 last: 4099 }
  endpoints { address: "198.51.100.40" weight: 100 mode: ENCAP_GUE }
}
listeners {
  name: "gue6" vips: "2001:db8:10::40" vips: "203.0.113.41" protocol: TCP_UDP
  port_ranges { first: 4000 last: 4099 }
  endpoints { address: "2001:db8:100::40" weight: 100 mode: ENCAP_GUE gue_port: 7000 }
}
"""

VIP_WEB4 = "203.0.113.10"
VIP_WEB6 = "2001:db8:10::10"
VIP_V4_TO_V6 = "203.0.113.20"
VIP_V6_TO_V4 = "2001:db8:10::20"
VIP_DNS4 = "203.0.113.30"
VIP_DNS6 = "2001:db8:10::30"
VIP_GUE4 = "203.0.113.40"
VIP_GUE6 = "2001:db8:10::40"
VIP_GUE6_V4 = "203.0.113.41"
EP_WEB4 = "198.51.100.10"
EP_WEB6 = "2001:db8:100::10"
EP_V4_TO_V6 = "2001:db8:100::20"
EP_V6_TO_V4 = "198.51.100.20"
EP_DNS = "198.51.100.30"
EP_GUE4 = "198.51.100.40"
EP_GUE6 = "2001:db8:100::40"

CLIENT4 = "198.18.0.1"
CLIENT6 = "2001:db8:c::1"

# Pinned hash-dependent values (model.py): flow -> GUE source port / flow label.
LABEL_6IN6 = 0x8A7E6  # 2001:db8:c::1:50000 -> 2001:db8:10::10:443 tcp
LABEL_4IN6 = 0x650D6  # 198.18.0.1:40001 -> 203.0.113.20:443 tcp
SPORT_GUE4_TCP = 46119  # 198.18.0.1:40002 -> 203.0.113.40:4000 tcp
SPORT_GUE4_UDP = 39791  # 198.18.0.1:40003 -> 203.0.113.40:4099 udp
SPORT_GUE6_TCP, LABEL_GUE6_TCP = 46920, 0x93C1E  # 2001:db8:c::1:50001 -> [2001:db8:10::40]:4000 tcp
SPORT_GUE46_UDP, LABEL_GUE46_UDP = 36032, 0x7163C  # 198.18.0.2:40004 -> 203.0.113.41:4001 udp


def table_with(**fields):
    """BASE_TABLE with extra top-level fields (mtu: 1280, ...)."""
    return BASE_TABLE + "".join(f"{k}: {v}\n" for k, v in fields.items())


def listener_block(name, vips, protocol, ranges, endpoints, affinity="NONE"):
    """A listener in text format from Python data (the model reads the same data).

    endpoints: (address, weight, healthy[, "GUE"]) tuples.
    """
    lines = [f'listeners {{\n  name: "{name}" protocol: {protocol} affinity: {affinity}']
    lines += [f'  vips: "{v}"' for v in vips]
    for first, last in ranges:
        lines.append(f"  port_ranges {{ first: {first} last: {last} }}")
    for ep in endpoints:
        mode = " mode: ENCAP_GUE" if len(ep) > 3 and ep[3] == "GUE" else ""
        down = " unhealthy: true" if not ep[2] else ""
        lines.append(f'  endpoints {{ address: "{ep[0]}" weight: {ep[1]}{mode}{down} }}')
    return "\n".join(lines) + "\n}\n"


HEADER = """\
pop: "TST1"
tunnel_source { ipv4: "192.0.2.1" ipv6: "2001:db8::1" }
next_hop_mac: "02:00:00:00:00:fe"
"""

# ---------------------------------------------------------------------------
# Verdict helpers: invariants over decapsulated output


def decap_all(result, problems):
    out = []
    for i, frame in enumerate(result.output):
        d = decap(frame)
        if d is None:
            problems.append(f"output frame {i} is not an IPIP/GUE tunnel packet")
        else:
            out.append(d)
    return out


def consistent(endpoints, min_used, key="flow", expect_flows=None, flows_listed=True):
    """Every flow (or client, key="client") reaches one endpoint with one outer
    header throughout the capture; only `endpoints` are chosen; at least
    `min_used` of them are."""
    allowed = {norm(e) for e in endpoints}

    def check(result):
        problems = []
        seen = {}
        for d in decap_all(result, problems):
            if norm(d.endpoint) not in allowed:
                problems.append(f"flow {d.flow} went to {d.endpoint}, not an endpoint of the "
                                f"listener ({sorted(allowed)})")
            k = d.client if key == "client" else d.flow
            outer = (norm(d.endpoint), d.sport, d.flow_label) if key == "flow" else norm(d.endpoint)
            if seen.setdefault(k, outer) != outer:
                problems.append(f"{key} {k}: {seen[k]} then {outer}")
        used = {v[0] if isinstance(v, tuple) else v for v in seen.values()}
        if len(used) < min_used:
            problems.append(f"only {len(used)} endpoints used ({sorted(used)}), "
                            f"expected at least {min_used}")
        if expect_flows is not None and len(seen) != expect_flows:
            problems.append(f"{len(seen)} distinct {key}s in the output, expected {expect_flows}")
        if flows_listed and key == "flow":
            # The flow table (--print-flows) must name the endpoint the packets went to.
            listed = {(norm(f["client"]), f["client_port"], norm(f["vip"]), f["vip_port"],
                       6 if f["proto"] == "tcp" else 17): norm(f["endpoint"])
                      for f in result.flows}
            for k, outer in seen.items():
                nk = (norm(k[0]), k[1], norm(k[2]), k[3], k[4])
                if listed.get(nk) != outer[0]:
                    problems.append(f"flow {k}: flow table says {listed.get(nk)}, "
                                    f"packets went to {outer[0]}")
        return problems

    return check


def never_to(endpoint, min_used):
    def check(result):
        problems = []
        used = set()
        for d in decap_all(result, problems):
            used.add(norm(d.endpoint))
            if norm(d.endpoint) == norm(endpoint):
                problems.append(f"flow {d.flow} was sent to {endpoint}")
        if len(used) < min_used:
            problems.append(f"only {sorted(used)} used, expected at least {min_used} endpoints")
        return problems

    return check


def all_of(*checks):
    def check(result):
        problems = []
        for c in checks:
            problems.extend(c(result) or [])
        return problems

    return check


# ---------------------------------------------------------------------------
# Cases

CASES = []


def case(**kw):
    CASES.append(Case(**kw))


# --- Encapsulation: one endpoint per listener, so whole frames are golden ----

_web4_syn = tcp4(CLIENT4, VIP_WEB4, 40000, 80, tos=0x28, flags="S")
_web4_syn[IP].flags = "DF"
_web4_ack = tcp4(CLIENT4, VIP_WEB4, 40000, 80, flags="A", payload=b"GET / HTTP/1.1\r\n\r\n",
                 id=7, ttl=57)
_web4_range = tcp4("198.18.0.9", VIP_WEB4, 51000, 8050, flags="S", tos=0x04)
case(
    name="ipv4_4in4",
    description="TCP to an IPv4 VIP, IPv4 endpoint: IPIP 4in4 with TOS copied, DF copied "
    "from the inner header (set and clear), id 0, TTL 64, next-hop and port MACs",
    table=BASE_TABLE,
    input=[_web4_syn, _web4_ack, _web4_range],
    expected=[encap(_web4_syn, EP_WEB4), encap(_web4_ack, EP_WEB4),
              encap(_web4_range, EP_WEB4)],
    counters={
        "forwarded": 3, "new_flows": 2, "flows_live": 2,
        "listeners.0.packets": 3,
        "listeners.0.bytes": sum(ip_len(f) for f in (_web4_syn, _web4_ack, _web4_range)),
        "listeners.0.new_flows": 2,
        "listeners.0.endpoints.0.packets": 3, "listeners.0.endpoints.0.new_flows": 2,
        "listeners.0.endpoints.0.label": "eu-central",
    },
)

_padded_syn = pad_to(tcp4("198.18.0.7", VIP_WEB4, 40100, 80), 60)
_padded_echo = pad_to(eth() / IP(src="198.18.0.7", dst=VIP_WEB4) / ICMP(id=9, seq=1), 60)
case(
    name="ethernet_padding_trimmed",
    description="60-byte frames whose IP packet is shorter: the Ethernet padding is not "
    "carried into the tunnel packet nor into the echo reply",
    table=BASE_TABLE,
    input=[_padded_syn, _padded_echo],
    expected=[encap(_padded_syn, EP_WEB4), echo_reply(_padded_echo)],
    counters={"forwarded": 1, "echo_replies": 1, "rx_bytes": 120},
)

_web6_syn = tcp6(CLIENT6, VIP_WEB6, 50000, 443, tc=0xB8, fl=0x12345)
case(
    name="ipv6_6in6",
    description="TCP to an IPv6 VIP, IPv6 endpoint: 6in6 with traffic class copied, flow "
    "label from the flow hash (pinned), next header 41, hop limit 64",
    table=BASE_TABLE,
    input=[_web6_syn],
    expected=[encap(_web6_syn, EP_WEB6, flow_label=LABEL_6IN6)],
    counters={"forwarded": 1, "new_flows": 1, "listeners.1.packets": 1,
              "listeners.1.bytes": ip_len(_web6_syn)},
)

_v4_to_v6 = tcp4(CLIENT4, VIP_V4_TO_V6, 40001, 443, tos=0x10, flags="S")
_v4_to_v6[IP].flags = "DF"
case(
    name="ipv4_in_ipv6",
    description="IPv4 client and VIP, IPv6 endpoint: 4in6 (next header 4), TOS becomes "
    "the traffic class, flow label pinned",
    table=BASE_TABLE,
    input=[_v4_to_v6],
    expected=[encap(_v4_to_v6, EP_V4_TO_V6, flow_label=LABEL_4IN6)],
    counters={"forwarded": 1, "listeners.2.endpoints.0.packets": 1},
)

_v6_to_v4 = tcp6("2001:db8:c::5", VIP_V6_TO_V4, 50005, 443, tc=0x20, payload=b"x" * 33)
case(
    name="ipv6_in_ipv4",
    description="IPv6 client and VIP, IPv4 endpoint: 6in4 (protocol 41), DF set because "
    "the inner packet is IPv6, traffic class becomes the TOS",
    table=BASE_TABLE,
    input=[_v6_to_v4],
    expected=[encap(_v6_to_v4, EP_V6_TO_V4)],
    counters={"forwarded": 1, "listeners.3.endpoints.0.packets": 1},
)

_dns4 = udp4("198.18.0.3", VIP_DNS4, 5353, 53, payload=b"\x12\x34" + b"q" * 27)
_dns6 = udp6("2001:db8:c::3", VIP_DNS6, 5353, 53, payload=b"\x56\x78" + b"r" * 30)
_dns4_zero_csum = udp4("198.18.0.4", VIP_DNS4, 5354, 53)
_dns4_zero_csum[UDP].chksum = 0
case(
    name="udp_forwarded",
    description="UDP to a UDP listener on an IPv4 and an IPv6 VIP (4in4 and 6in4); a UDP "
    "datagram without checksum is forwarded untouched",
    table=BASE_TABLE,
    input=[_dns4, _dns6, _dns4_zero_csum],
    expected=[encap(_dns4, EP_DNS), encap(_dns6, EP_DNS), encap(_dns4_zero_csum, EP_DNS)],
    counters={"forwarded": 3, "new_flows": 3, "listeners.4.packets": 3},
)

_gue4_tcp = tcp4(CLIENT4, VIP_GUE4, 40002, 4000, flags="S")
_gue4_udp = udp4(CLIENT4, VIP_GUE4, 40003, 4099, payload=b"datagram")
case(
    name="gue_ipv4_outer",
    description="ENCAP_GUE to an IPv4 endpoint: IPv4/UDP (source port: hash >> 49 with the "
    "top bit set, pinned; destination the table's GUE port 6080; checksum 0) then the inner packet; "
    "TCP and UDP on a TCP_UDP listener",
    table=BASE_TABLE,
    input=[_gue4_tcp, _gue4_udp],
    expected=[encap(_gue4_tcp, EP_GUE4, gue=True, sport=SPORT_GUE4_TCP),
              encap(_gue4_udp, EP_GUE4, gue=True, sport=SPORT_GUE4_UDP)],
    counters={"forwarded": 2, "listeners.5.packets": 2},
)

_gue6_tcp = tcp6(CLIENT6, VIP_GUE6, 50001, 4000, flags="S", tc=0x04)
# Odd-length inner packet: the UDP checksum must pad the last byte.
_gue46_udp = udp4("198.18.0.2", VIP_GUE6_V4, 40004, 4001, payload=b"odd-length!")
case(
    name="gue_ipv6_outer",
    description="ENCAP_GUE to an IPv6 endpoint with its own gue_port 7000: IPv6/UDP with "
    "a computed UDP checksum (odd-length payload), flow label and source port pinned; "
    "6-in-GUE6 and 4-in-GUE6",
    table=BASE_TABLE,
    input=[_gue6_tcp, _gue46_udp],
    expected=[
        encap(_gue6_tcp, EP_GUE6, gue=True, gue_port=7000, sport=SPORT_GUE6_TCP,
              flow_label=LABEL_GUE6_TCP),
        encap(_gue46_udp, EP_GUE6, gue=True, gue_port=7000, sport=SPORT_GUE46_UDP,
              flow_label=LABEL_GUE46_UDP),
    ],
    counters={"forwarded": 2, "listeners.6.packets": 2},
)

# --- Classification -----------------------------------------------------------

case(
    name="unknown_vip",
    description="Packets to addresses that are not VIPs (another address, the tunnel "
    "source, an IPv6 neighbour of a VIP, an echo request) are dropped as non_vip",
    table=BASE_TABLE,
    input=[
        tcp4(CLIENT4, "203.0.113.99", 40000, 80),
        udp4(CLIENT4, "192.0.2.1", 40000, 6080),
        tcp6(CLIENT6, "2001:db8:10::11", 50000, 443),
        eth() / IP(src=CLIENT4, dst="203.0.113.11") / ICMP(),
    ],
    expected=[],
    drops={"non_vip": 4},
)

_loop_client = tcp4(CLIENT4, VIP_WEB4, 40000, 80)

case(
    name="loop_own_tunnel_source",
    description="The PoP's own encapsulated traffic routed back to a VIP (a GUE packet from "
    "the tunnel source to a TCP_UDP listener's port, IPv4 and IPv6) is dropped as "
    "own_tunnel_source, never encapsulated again (hardening review, finding 5)",
    table=BASE_TABLE,
    input=[
        udp4("192.0.2.1", VIP_GUE4, 40000, 4000,
             payload=bytes(IP(src=CLIENT4, dst=VIP_GUE4) / UDP(sport=1, dport=4000))),
        tcp6("2001:db8::1", VIP_WEB6, 50000, 443),
        _loop_client,  # a client's packet beside them still goes
    ],
    expected=[encap(_loop_client, EP_WEB4)],
    drops={"own_tunnel_source": 2},
)

case(
    name="wrong_port",
    description="A VIP's unlisted ports (79, 81, 7999, 8100; 444 on IPv6) are dropped as "
    "no_listener",
    table=BASE_TABLE,
    input=[tcp4(CLIENT4, VIP_WEB4, 40000, p) for p in (79, 81, 7999, 8100)]
    + [tcp6(CLIENT6, VIP_WEB6, 50000, 444)],
    expected=[],
    drops={"no_listener": 5},
    counters={"new_flows": 0, "flows_live": 0},
)

case(
    name="wrong_protocol",
    description="UDP to a TCP-only listener, TCP to a UDP-only listener, and GRE / SCTP "
    "to a VIP: no_listener",
    table=BASE_TABLE,
    input=[
        udp4(CLIENT4, VIP_WEB4, 40000, 80),
        udp6(CLIENT6, VIP_WEB6, 50000, 443),
        tcp4(CLIENT4, VIP_DNS4, 40000, 53),
        eth() / IP(src=CLIENT4, dst=VIP_WEB4, proto=47) / Raw(b"\x00\x00\x08\x00" + b"g" * 20),
        eth() / IP(src=CLIENT4, dst=VIP_WEB4, proto=132) / Raw(b"\x00\x50\x00\x50" + b"s" * 28),
    ],
    expected=[],
    drops={"no_listener": 5},
)

PORTS_TABLE = HEADER + """\
listeners {
  name: "low" vips: "203.0.113.60" protocol: TCP
  port_ranges { first: 1000 last: 1999 } port_ranges { first: 5000 } port_ranges { first: 65535 }
  endpoints { address: "198.51.100.60" weight: 10 }
}
listeners {
  name: "high" vips: "203.0.113.60" protocol: TCP
  port_ranges { first: 2000 last: 2999 }
  endpoints { address: "198.51.100.61" weight: 10 }
}
"""
_ports_in = {p: tcp4(CLIENT4, "203.0.113.60", 40000 + (p % 1000), p)
             for p in (999, 1000, 1999, 2000, 2999, 3000, 4999, 5000, 5001, 65535)}
case(
    name="port_range_edges",
    description="Port ranges are inclusive: first and last of each range match, first-1 "
    "and last+1 do not; a single-port range (last 0) and port 65535; two listeners "
    "splitting one VIP's ports by range",
    table=PORTS_TABLE,
    input=list(_ports_in.values()),
    expected=[encap(_ports_in[p], "198.51.100.60") if p in (1000, 1999, 5000, 65535)
              else encap(_ports_in[p], "198.51.100.61")
              for p in (1000, 1999, 2000, 2999, 5000, 65535)],
    drops={"no_listener": 4},
    counters={"listeners.0.packets": 4, "listeners.1.packets": 2},
)

# --- L2 -----------------------------------------------------------------------

_vlan4 = Ether(src=ROUTER_MAC, dst=PORT_MAC) / Dot1Q(vlan=100, prio=5) / IP(
    src=CLIENT4, dst=VIP_WEB4) / TCP(sport=40010, dport=80, flags="S")
_vlan46 = Ether(src=ROUTER_MAC, dst=PORT_MAC) / Dot1Q(vlan=4094, id=1) / IP(
    src=CLIENT4, dst=VIP_V4_TO_V6, tos=0x10, flags="DF") / TCP(sport=40001, dport=443,
                                                              flags="S", seq=0x1000,
                                                              window=64240)
case(
    name="vlan_8021q",
    description="One 802.1Q tag: kept (VLAN id, PCP, DEI) on the tunnel packet, MACs "
    "rewritten; for 4in6 the tag's EtherType becomes IPv6",
    table=BASE_TABLE,
    input=[_vlan4, _vlan46],
    expected=[encap(_vlan4, EP_WEB4), encap(_vlan46, EP_V4_TO_V6, flow_label=LABEL_4IN6)],
    counters={"forwarded": 2},
)

_qinq6 = Ether(src=ROUTER_MAC, dst=PORT_MAC) / Dot1AD(vlan=10) / Dot1Q(vlan=20) / IPv6(
    src="2001:db8:c::7", dst=VIP_V6_TO_V4) / TCP(sport=50007, dport=443, flags="S")
_qq4 = Ether(src=ROUTER_MAC, dst=PORT_MAC, type=0x8100) / Dot1Q(vlan=30, type=0x8100) / Dot1Q(
    vlan=31) / IP(src=CLIENT4, dst=VIP_WEB4) / TCP(sport=40011, dport=80, flags="S")
_three_tags = Ether(src=ROUTER_MAC, dst=PORT_MAC) / Dot1AD(vlan=10) / Dot1Q(vlan=20) / Dot1Q(
    vlan=30) / IP(src=CLIENT4, dst=VIP_WEB4) / TCP(sport=40012, dport=80)
case(
    name="vlan_qinq",
    description="Two tags (802.1ad 0x88a8 + 802.1Q, and 0x8100 + 0x8100) are kept, the "
    "inner tag's EtherType rewritten for 6in4; a third tag is dropped as too_many_vlan_tags",
    table=BASE_TABLE,
    input=[_qinq6, _qq4, _three_tags],
    expected=[encap(_qinq6, EP_V6_TO_V4), encap(_qq4, EP_WEB4)],
    drops={"too_many_vlan_tags": 1},
)

# --- Malformed input ------------------------------------------------------------

_ok_ip = bytes(IP(src=CLIENT4, dst=VIP_WEB4) / TCP(sport=40000, dport=80))
_ok_ip6 = bytes(IPv6(src=CLIENT6, dst=VIP_WEB6) / TCP(sport=50000, dport=443))
case(
    name="malformed_l2_l3",
    description="Truncated Ethernet, truncated VLAN tag, ARP and LLDP, IPv4 and IPv6 "
    "headers cut short, IP version disagreeing with the EtherType, IHL below 5, IP length "
    "beyond the frame or below the header: each dropped with its own reason",
    table=BASE_TABLE,
    input=[
        bytes(eth())[:10],  # truncated_ethernet
        raw_eth(0x8100, b"\x00\x64"),  # truncated_vlan: tag without its EtherType
        bytes(eth() / ARP(psrc=CLIENT4, pdst=VIP_WEB4)),  # non_ip
        raw_eth(0x88CC, b"\x02\x07\x04" + b"\x00" * 40),  # non_ip (LLDP)
        raw_eth(0x0800, _ok_ip[:12]),  # truncated_ipv4
        raw_eth(0x0800, bytes([0x4F]) + _ok_ip[1:]),  # truncated_ipv4: IHL 15 > 40 bytes
        raw_eth(0x86DD, _ok_ip6[:30]),  # truncated_ipv6
        raw_eth(0x0800, _ok_ip6),  # bad_ip_version: IPv6 under the IPv4 EtherType
        raw_eth(0x86DD, _ok_ip + b"\x00" * 20),  # bad_ip_version: IPv4 under IPv6
        raw_eth(0x0800, bytes([0x44]) + _ok_ip[1:]),  # bad_ipv4_ihl
        bytes(eth() / IP(src=CLIENT4, dst=VIP_WEB4, len=200) / TCP(dport=80)),  # bad_ip_length
        bytes(eth() / IP(src=CLIENT4, dst=VIP_WEB4, len=16) / TCP(dport=80)),  # bad_ip_length
        bytes(eth() / IPv6(src=CLIENT6, dst=VIP_WEB6, plen=600) / TCP(dport=443)),
    ],
    expected=[],
    drops={"truncated_ethernet": 1, "truncated_vlan": 1, "non_ip": 2, "truncated_ipv4": 2,
           "truncated_ipv6": 1, "bad_ip_version": 2, "bad_ipv4_ihl": 1, "bad_ip_length": 3},
)

case(
    name="malformed_l4",
    description="TCP, UDP and ICMP headers cut short (truncated_l4), TCP data offset below "
    "5 or beyond the packet (bad_tcp_offset), an IPv6 extension header longer than the "
    "packet (truncated_ipv6_ext), nine extension headers (too_many_ipv6_ext)",
    table=BASE_TABLE,
    input=[
        eth() / IP(src=CLIENT4, dst=VIP_WEB4, proto=6) / Raw(b"\x9c\x40\x00\x50" + b"\0" * 8),
        eth() / IP(src=CLIENT4, dst=VIP_DNS4, proto=17) / Raw(b"\x14\xe9\x00"),
        eth() / IP(src=CLIENT4, dst=VIP_WEB4, proto=1) / Raw(b"\x08\x00\xf7\xff"),
        eth() / IPv6(src=CLIENT6, dst=VIP_WEB6, nh=6) / Raw(b"\xc3\x50\x01\xbb" + b"\0" * 12),
        tcp4(CLIENT4, VIP_WEB4, 40000, 80, tcp={"dataofs": 4}),
        tcp4(CLIENT4, VIP_WEB4, 40000, 80, tcp={"dataofs": 15}, payload=b"p" * 8),
        tcp6(CLIENT6, VIP_WEB6, 50000, 443, tcp={"dataofs": 3}),
        # Destination options claiming 24 bytes where 8 remain.
        eth() / IPv6(src=CLIENT6, dst=VIP_WEB6, nh=60) / Raw(b"\x06\x02" + b"\x01\x04" + b"\0" * 4),
        eth() / IPv6(src=CLIENT6, dst=VIP_WEB6) / (IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() /
                                                   IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() /
                                                   IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() /
                                                   IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() /
                                                   IPv6ExtHdrDestOpt()) / TCP(dport=443),
    ],
    expected=[],
    drops={"truncated_l4": 4, "bad_tcp_offset": 3, "truncated_ipv6_ext": 1,
           "too_many_ipv6_ext": 1},
)

# --- IPv4 options, IPv6 extension headers, fragments ---------------------------

_opt_ra = eth() / IP(src=CLIENT4, dst=VIP_WEB4, flags="DF", options=[IPOption_Router_Alert()]) \
    / TCP(sport=40020, dport=80, flags="S")
_opt_max = eth() / IP(src=CLIENT4, dst=VIP_WEB4, options=[IPOption_NOP()] * 40) \
    / TCP(sport=40021, dport=80, flags="S")
_opt_echo = eth() / IP(src=CLIENT4, dst=VIP_WEB4, options=[IPOption_Router_Alert()]) \
    / ICMP(id=3, seq=4) / b"ping"
case(
    name="ipv4_options",
    description="IPv4 options (router alert, IHL 6; 40 bytes of NOPs, IHL 15) are skipped "
    "to find the ports; the inner packet, options included, is forwarded unchanged; an "
    "echo request with options is answered with them",
    table=BASE_TABLE,
    input=[_opt_ra, _opt_max, _opt_echo],
    expected=[encap(_opt_ra, EP_WEB4), encap(_opt_max, EP_WEB4), echo_reply(_opt_echo)],
    counters={"forwarded": 2, "echo_replies": 1, "new_flows": 2},
)

_ah = bytes([6, 4, 0, 0]) + b"\x00\x00\x10\x00" + b"\x00\x00\x00\x01" + b"\xaa" * 12
_ext_chain = eth() / IPv6(src="2001:db8:c::2", dst=VIP_V6_TO_V4) / IPv6ExtHdrHopByHop() / \
    IPv6ExtHdrRouting() / IPv6ExtHdrDestOpt() / IPv6ExtHdrFragment(offset=0, m=0, id=77) / \
    TCP(sport=50002, dport=443, flags="S")
_ext_eight = eth() / IPv6(src="2001:db8:c::2", dst=VIP_V6_TO_V4) / (
    IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() /
    IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt() / IPv6ExtHdrDestOpt()) / \
    TCP(sport=50003, dport=443, flags="S")
_ext_ah = eth() / IPv6(src="2001:db8:c::2", dst=VIP_V6_TO_V4, nh=51) / Raw(
    _ah + bytes(TCP(sport=50004, dport=443, flags="S")))
_ext_web6 = eth() / IPv6(src="2001:db8:c::2", dst=VIP_WEB6) / IPv6ExtHdrHopByHop() / \
    TCP(sport=50002, dport=443, flags="S")
case(
    name="ipv6_extension_headers",
    description="Hop-by-hop, routing, destination options and an atomic fragment header "
    "(offset 0, M 0) in one chain; eight destination-options headers (the most the parser "
    "walks); an authentication header: all skipped to the TCP ports and forwarded "
    "whole (6in4, and 6in6 with the pinned flow label)",
    table=BASE_TABLE,
    input=[_ext_chain, _ext_eight, _ext_ah, _ext_web6],
    expected=[encap(_ext_chain, EP_V6_TO_V4), encap(_ext_eight, EP_V6_TO_V4),
              encap(_ext_ah, EP_V6_TO_V4), encap(_ext_web6, EP_WEB6, flow_label=0x2A882)],
    counters={"forwarded": 4, "new_flows": 4},
)

_df_only = tcp4(CLIENT4, VIP_WEB4, 40030, 80)
_df_only[IP].flags = "DF"
_f4_first = eth() / IP(src=CLIENT4, dst=VIP_WEB4, flags="MF", id=5) / \
    TCP(sport=40030, dport=80) / (b"a" * 16)
_f4_later = eth() / IP(src=CLIENT4, dst=VIP_WEB4, frag=185, id=5, proto=6) / Raw(b"b" * 4)
_f6_first = eth() / IPv6(src=CLIENT6, dst=VIP_WEB6) / IPv6ExtHdrFragment(m=1, id=9) / \
    TCP(dport=443)
_f6_later = eth() / IPv6(src=CLIENT6, dst=VIP_WEB6) / IPv6ExtHdrFragment(offset=10, id=9, nh=6) / \
    Raw(b"c" * 8)
LABEL_F6 = 0x9F614  # 2001:db8:c::1:20 -> [2001:db8:10::10]:443 tcp
case(
    name="fragments",
    description="IPv4 first fragment (MF, whole TCP header) and a later fragment (offset "
    "1480) of the same datagram; IPv6 first fragment (M set) and a later one (offset 80): "
    "the first picks the flow's endpoint, the later follows it (6in6 with the flow's "
    "label); a fragment to a non-VIP counts as non_vip; DF with offset 0 is a whole packet",
    table=BASE_TABLE,
    input=[_f4_first, _f4_later, _f6_first, _f6_later,
           eth() / IP(src=CLIENT4, dst="203.0.113.99", flags="MF") / TCP(dport=80), _df_only],
    expected=[encap(_f4_first, EP_WEB4), encap(_f4_later, EP_WEB4),
              encap(_f6_first, EP_WEB6, flow_label=LABEL_F6),
              encap(_f6_later, EP_WEB6, flow_label=LABEL_F6), encap(_df_only, EP_WEB4)],
    drops={"non_vip": 1},
    counters={"fragments_forwarded": 4, "fragment_trains": 2, "fragment_trains_completed": 0},
)

FRAG_TABLE = HEADER + """\
listeners {
  name: "frag" vips: "203.0.113.60" vips: "2001:db8:10::60" protocol: UDP
  port_ranges { first: 53 }
  endpoints { address: "198.51.100.61" weight: 100 }
  endpoints { address: "198.51.100.62" weight: 100 }
  endpoints { address: "198.51.100.63" weight: 100 }
  endpoints { address: "198.51.100.64" weight: 100 }
}
"""
VIP_FRAG4 = "203.0.113.60"
VIP_FRAG6 = "2001:db8:10::60"


def udp_fragments(src, dst, sport, dport, payload, ident, size=1400):
    """A UDP datagram as the client's kernel fragments it: the transport header and
    payload in pieces of `size` bytes (a multiple of 8), same id, MF / M on all but
    the last (IPv6: in a fragment header)."""
    v6 = ":" in src
    ip = IPv6(src=src, dst=dst) if v6 else IP(src=src, dst=dst)
    whole = bytes(ip / UDP(sport=sport, dport=dport) / payload)[40 if v6 else 20:]
    frames = []
    for off in range(0, len(whole), size):
        chunk, more = whole[off:off + size], off + size < len(whole)
        if v6:
            frames.append(eth() / IPv6(src=src, dst=dst) / IPv6ExtHdrFragment(
                nh=17, offset=off // 8, m=int(more), id=ident) / Raw(chunk))
        else:
            frames.append(eth() / IP(src=src, dst=dst, id=ident, flags="MF" if more else 0,
                                     frag=off // 8, proto=17) / Raw(chunk))
    return frames


# Pinned Maglev picks (model.py) of FRAG_TABLE's four endpoints.
_fa = udp_fragments("198.18.2.1", VIP_FRAG4, 40100, 53, b"A" * 2992, 0x101)  # -> .62
_fa_whole = udp4("198.18.2.1", VIP_FRAG4, 40100, 53)
_fb = udp_fragments("198.18.2.1", VIP_FRAG4, 40102, 53, b"B" * 2992, 0x102)  # -> .63
_f6 = udp_fragments("2001:db8:c::60", VIP_FRAG6, 50100, 53, b"6" * 2992, 0x60001)  # -> .63
_f6_whole = udp6("2001:db8:c::60", VIP_FRAG6, 50100, 53)
case(
    name="fragments_follow_first",
    description="3000-byte UDP datagrams fragmented by the client (1400-byte pieces, "
    "IPv4 and IPv6 fragment header) to a listener of 4 endpoints: every fragment goes "
    "where a whole datagram of the same flow goes (pinned), two datagrams of one client "
    "with other ports to their own endpoints; three trains completed",
    table=FRAG_TABLE,
    input=[_fa_whole] + _fa + _fb + [_f6_whole] + _f6,
    expected=[encap(f, "198.51.100.62") for f in [_fa_whole] + _fa] +
    [encap(f, "198.51.100.63") for f in _fb + [_f6_whole] + _f6],
    counters={"fragments_forwarded": 9, "fragment_trains": 3, "fragment_trains_completed": 3,
              "new_flows": 3},
)

_oa = udp_fragments("198.18.2.1", VIP_FRAG4, 40100, 53, b"a" * 2992, 0x201)
_ob = udp_fragments("198.18.2.1", VIP_FRAG4, 40100, 53, b"b" * 2992, 0x202)
case(
    name="fragments_out_of_order",
    description="A later fragment before its first is dropped (fragment_no_first: no "
    "ports yet, documented), the rest of its train follows the first; a train whose "
    "last fragment comes before its middle one is forwarded whole and completed",
    table=FRAG_TABLE,
    input=[_oa[1], _oa[0], _oa[2], _ob[0], _ob[2], _ob[1]],
    expected=[encap(f, "198.51.100.62") for f in (_oa[0], _oa[2], _ob[0], _ob[2], _ob[1])],
    drops={"fragment_no_first": 1},
    counters={"fragments_forwarded": 5, "fragment_trains": 2, "fragment_trains_completed": 1},
)


def _frag4(ident, offset, data, more=True, proto=17):
    return eth() / IP(src="198.18.2.1", dst=VIP_FRAG4, id=ident, frag=offset // 8,
                      flags="MF" if more else 0, proto=proto) / Raw(data)


_udp_head = bytes(IP(src="198.18.2.1", dst=VIP_FRAG4) / UDP(sport=40100, dport=53, len=3000))[20:]
_ov_first = _frag4(0x301, 0, _udp_head + b"o" * 1392)
_sc_first = _frag4(0x304, 0, _udp_head + b"s" * 16)
_sc = [_frag4(0x304, off, b"t" * 8) for off in (48, 96, 144)]
case(
    name="fragment_attacks",
    description="Tiny first fragments (8 bytes of a TCP header, IPv4 and IPv6): "
    "fragment_tiny; a fragment overlapping its train's first (offset 8, RFC 1858) and "
    "the train's next fragment after it: fragment_overlap; offset 65528 + 16 bytes: "
    "fragment_oversized; a train with more holes than tracked (4 ranges): "
    "fragment_scattered; a fragmented ICMP echo: fragment",
    table=FRAG_TABLE,
    input=[
        _frag4(0x300, 0, bytes(TCP(sport=40100, dport=53))[:8], proto=6),
        eth() / IPv6(src="2001:db8:c::60", dst=VIP_FRAG6) / IPv6ExtHdrFragment(
            nh=6, m=1, id=0x300) / Raw(bytes(TCP(sport=50100, dport=53))[:8]),
        _ov_first,
        _frag4(0x301, 8, b"x" * 16),
        _frag4(0x301, 1400, b"y" * 1600, more=False),
        _frag4(0x302, 65528, b"z" * 16, more=False),
        _sc_first] + _sc + [
        _frag4(0x304, 192, b"u" * 8),
        eth() / IP(src="198.18.2.1", dst=VIP_FRAG4, flags="MF", id=0x305) / ICMP() / (b"p" * 64),
    ],
    expected=[encap(f, "198.51.100.62") for f in [_ov_first, _sc_first] + _sc],
    drops={"fragment_tiny": 2, "fragment_overlap": 2, "fragment_oversized": 1,
           "fragment_scattered": 1, "fragment": 1},
    counters={"fragments_forwarded": 5, "fragment_trains": 2},
)

# --- ICMP ----------------------------------------------------------------------------

PMTU_TABLE = HEADER + """\
listeners {
  name: "pmtu4" vips: "203.0.113.50" protocol: TCP port_ranges { first: 80 }
  endpoints { address: "198.51.100.51" weight: 100 }
  endpoints { address: "198.51.100.52" weight: 100 }
  endpoints { address: "198.51.100.53" weight: 100 }
  endpoints { address: "198.51.100.54" weight: 100 }
}
listeners {
  name: "pmtu6" vips: "2001:db8:10::50" protocol: TCP port_ranges { first: 443 }
  endpoints { address: "2001:db8:100::51" weight: 100 }
  endpoints { address: "2001:db8:100::52" weight: 100 }
  endpoints { address: "2001:db8:100::53" weight: 100 }
}
"""
ROUTER4 = "192.0.2.200"
ROUTER6 = "2001:db8:ffff::1"


def frag_needed(client, cport, vip="203.0.113.50", vport=80, proto=TCP, mtu=1400, cut=None):
    """ICMP frag-needed from a router, quoting the endpoint's DSR reply VIP -> client.

    cut: quote only that many bytes of a 1500-byte reply (RFC 792 routers quote
    the IP header and 8 bytes: cut=28)."""
    if cut:
        quoted = bytes(IP(src=vip, dst=client, flags="DF", len=1500) /
                       proto(sport=vport, dport=cport))[:cut]
    else:
        quoted = bytes(IP(src=vip, dst=client, flags="DF") / proto(sport=vport, dport=cport))
    return eth() / IP(src=ROUTER4, dst=vip) / ICMP(type=3, code=4, nexthopmtu=mtu) / Raw(quoted)


_pmtu_syn = tcp4("198.18.1.1", "203.0.113.50", 40000, 80)
_pmtu_icmp = frag_needed("198.18.1.1", 40000, cut=28)
_pmtu_noflow = frag_needed("198.18.1.2", 40001)
case(
    name="icmp_frag_needed",
    description="ICMP frag-needed quoting VIP:80 -> client:port (IP header + 8 bytes of a "
    "1500-byte reply) follows the flow: encapsulated whole to the endpoint of client -> VIP "
    "(pinned, 4 endpoints); one for a flow not in the table (whole quote) goes where "
    "Maglev puts that flow and creates no flow; both counted in icmp_errors_forwarded",
    table=PMTU_TABLE,
    input=[_pmtu_syn, _pmtu_icmp, _pmtu_noflow],
    expected=[encap(_pmtu_syn, "198.51.100.53"), encap(_pmtu_icmp, "198.51.100.53"),
              encap(_pmtu_noflow, "198.51.100.52")],
    counters={"forwarded": 3, "icmp_errors_forwarded": 2, "new_flows": 1,
              "flows_live": 1, "listeners.0.packets": 3},
)

case(
    name="icmp_unsupported_and_malformed",
    description="ICMP to a VIP other than echo / frag-needed (host unreachable, time "
    "exceeded, echo reply, timestamp) is icmp_unsupported; a frag-needed whose quote is "
    "cut short, quotes ICMP, quotes a UDP port without listener or a non-VIP source is "
    "icmp_inner_malformed",
    table=PMTU_TABLE,
    input=[
        eth() / IP(src=ROUTER4, dst="203.0.113.50") / ICMP(type=3, code=1) /
        Raw(bytes(IP(src="203.0.113.50", dst="198.18.1.1") / TCP(sport=80, dport=40000))),
        eth() / IP(src=ROUTER4, dst="203.0.113.50") / ICMP(type=11, code=0) /
        Raw(bytes(IP(src="203.0.113.50", dst="198.18.1.1") / TCP(sport=80, dport=40000))),
        eth() / IP(src="198.18.1.1", dst="203.0.113.50") / ICMP(type=0),
        eth() / IP(src="198.18.1.1", dst="203.0.113.50") / ICMP(type=13),
        frag_needed("198.18.1.1", 40000, cut=24),
        eth() / IP(src=ROUTER4, dst="203.0.113.50") / ICMP(type=3, code=4, nexthopmtu=1400) /
        Raw(bytes(IP(src="203.0.113.50", dst="198.18.1.1") / ICMP(type=0))),
        frag_needed("198.18.1.1", 40000, proto=UDP),
        eth() / IP(src=ROUTER4, dst="203.0.113.50") / ICMP(type=3, code=4, nexthopmtu=1400) /
        Raw(bytes(IP(src="203.0.113.99", dst="198.18.1.1") / TCP(sport=80, dport=40000))),
    ],
    expected=[],
    drops={"icmp_unsupported": 4, "icmp_inner_malformed": 4},
    counters={"icmp_errors_forwarded": 0},
)

_ptb_syn = tcp6("2001:db8:c::50", "2001:db8:10::50", 50000, 443)
# As much of the 1500-byte reply as fits a 1280-byte ICMPv6 message (RFC 4443).
_ptb = eth() / IPv6(src=ROUTER6, dst="2001:db8:10::50") / ICMPv6PacketTooBig(mtu=1280) / Raw(
    bytes(IPv6(src="2001:db8:10::50", dst="2001:db8:c::50") /
          TCP(sport=443, dport=50000, flags="A") / (b"d" * 1440))[:1232])
_v6_unreach = eth() / IPv6(src=ROUTER6, dst="2001:db8:10::50") / ICMPv6DestUnreach(code=1) / Raw(
    bytes(IPv6(src="2001:db8:10::50", dst="2001:db8:c::50") / TCP(sport=443, dport=50000)))
_v6_echo_reply = eth() / IPv6(src="2001:db8:c::50", dst="2001:db8:10::50") / ICMPv6EchoReply()
case(
    name="icmpv6_packet_too_big",
    description="ICMPv6 packet-too-big (1280 bytes, quoting the start of a 1500-byte "
    "reply [VIP]:443 -> client) follows the flow to its "
    "endpoint (pinned, 3 endpoints) with the flow's own outer flow label; destination "
    "unreachable and echo reply to a VIP are icmp_unsupported",
    table=PMTU_TABLE,
    input=[_ptb_syn, _ptb, _v6_unreach, _v6_echo_reply],
    expected=[encap(_ptb_syn, "2001:db8:100::52", flow_label=0x21828),
              encap(_ptb, "2001:db8:100::52", flow_label=0x21828)],
    drops={"icmp_unsupported": 2},
    counters={"icmp_errors_forwarded": 1, "new_flows": 1, "listeners.1.packets": 2},
)

_gue6_ptb = eth() / IPv6(src=ROUTER6, dst=VIP_GUE6) / ICMPv6PacketTooBig(mtu=1280) / Raw(
    bytes(IPv6(src=VIP_GUE6, dst=CLIENT6) / TCP(sport=4000, dport=50001, flags="A"))[:48])
case(
    name="icmp_error_follows_gue_flow",
    description="A packet-too-big about a GUE flow is sent in GUE to the flow's endpoint "
    "with the flow's own source port and flow label (the pinned values of gue_ipv6_outer)",
    table=BASE_TABLE,
    input=[_gue6_tcp, _gue6_ptb],
    expected=[
        encap(_gue6_tcp, EP_GUE6, gue=True, gue_port=7000, sport=SPORT_GUE6_TCP,
              flow_label=LABEL_GUE6_TCP),
        encap(_gue6_ptb, EP_GUE6, gue=True, gue_port=7000, sport=SPORT_GUE6_TCP,
              flow_label=LABEL_GUE6_TCP),
    ],
    counters={"icmp_errors_forwarded": 1, "new_flows": 1},
)

_echo4 = eth() / IP(src=CLIENT4, dst=VIP_WEB4, ttl=3, id=0x4242, flags="DF", tos=0x10) / ICMP(
    id=0x1234, seq=1) / (b"0123456789abcdef" * 3 + b"01234567")
_echo4_vlan = Ether(src="02:00:00:00:00:02", dst=PORT_MAC) / Dot1Q(vlan=7) / IP(
    src="198.18.0.77", dst=VIP_GUE4) / ICMP(id=1, seq=2) / b"x"
case(
    name="echo_ipv4",
    description="ICMP echo request to an IPv4 VIP is answered at the PoP: back to the "
    "sender's MAC from the port MAC, addresses swapped, TTL 64, header and ICMP checksums "
    "right, VLAN tag kept; echo to a non-VIP is non_vip",
    table=BASE_TABLE,
    input=[_echo4, _echo4_vlan, eth() / IP(src=CLIENT4, dst="203.0.113.98") / ICMP()],
    expected=[echo_reply(_echo4), echo_reply(_echo4_vlan)],
    drops={"non_vip": 1},
    counters={"echo_replies": 2, "forwarded": 0, "new_flows": 0},
)

_echo6 = eth() / IPv6(src=CLIENT6, dst=VIP_WEB6, hlim=5, tc=0x20, fl=0xABCDE) / \
    ICMPv6EchoRequest(id=0x77, seq=9, data=b"ping6 payload")
_echo6_b = eth() / IPv6(src="2001:db8:c::99", dst=VIP_DNS6) / ICMPv6EchoRequest(id=1, seq=1)
_echo6_hbh = eth() / IPv6(src=CLIENT6, dst=VIP_WEB6) / IPv6ExtHdrHopByHop() / \
    ICMPv6EchoRequest(id=5, seq=6, data=b"hop-by-hop")
case(
    name="echo_ipv6",
    description="ICMPv6 echo request to an IPv6 VIP gets an echo reply: addresses swapped, "
    "hop limit 64, ICMPv6 checksum right, traffic class, flow label and a hop-by-hop "
    "header kept",
    table=BASE_TABLE,
    input=[_echo6, _echo6_b, _echo6_hbh],
    expected=[echo_reply(_echo6), echo_reply(_echo6_b), echo_reply(_echo6_hbh)],
    counters={"echo_replies": 3},
)

# --- Endpoint choice --------------------------------------------------------------

MTU_TABLE = table_with(mtu=1280)


def df(frame):
    """The frame with DF set on its IPv4 header."""
    frame[IP].flags = "DF"
    return frame


_big = {n: tcp4(CLIENT4, VIP_WEB4, 40040, 80, flags="A", payload=b"m" * (n - 40))
        for n in (1260, 1261)}
_big_gue = {n: tcp4(CLIENT4, VIP_GUE4, 40002, 4000, flags="A", payload=b"g" * (n - 40))
            for n in (1252, 1253)}
_big_46 = {n: tcp4(CLIENT4, VIP_V4_TO_V6, 40001, 443, flags="A", payload=b"6" * (n - 40))
           for n in (1240, 1241)}
for _d in (_big, _big_gue, _big_46):
    df(_d[max(_d)])
case(
    name="too_big_mtu",
    description="mtu 1280: a packet whose tunnel packet is exactly 1280 bytes is forwarded "
    "(4in4 +20, GUE4 +28, 4in6 +40); one byte more, with DF, is answered with ICMP "
    "frag-needed announcing the inner MTU that fits (1260, 1252, 1240)",
    table=MTU_TABLE,
    input=[_big[1260], _big[1261], _big_gue[1252], _big_gue[1253], _big_46[1240],
           _big_46[1241]],
    expected=[encap(_big[1260], EP_WEB4), too_big_reply(_big[1261], 1260),
              encap(_big_gue[1252], EP_GUE4, gue=True, sport=SPORT_GUE4_TCP),
              too_big_reply(_big_gue[1253], 1252),
              encap(_big_46[1240], EP_V4_TO_V6, flow_label=LABEL_4IN6),
              too_big_reply(_big_46[1241], 1240)],
    counters={"forwarded": 3, "icmp_too_big_sent": 3},
)

JUMBO_TABLE = table_with(mtu=9000)
_jumbo = {n: tcp4(CLIENT4, VIP_WEB4, 41000 + n % 1000, 80, flags="A", payload=b"J" * (n - 40))
          for n in (2034, 2035, 8980, 8981)}
df(_jumbo[8981])
case(
    name="jumbo_frames",
    description="mtu 9000: IP packets of 2034 and 2035 bytes (frames of 2048 and 2049, "
    "either side of one 2 KiB mbuf) and of 8980 bytes (tunnel packet exactly 9000) are "
    "forwarded; 8981 bytes with DF is answered with frag-needed (MTU 8980, 548 bytes quoted)",
    table=JUMBO_TABLE,
    input=[_jumbo[n] for n in (2034, 2035, 8980, 8981)],
    expected=[encap(_jumbo[n], EP_WEB4) for n in (2034, 2035, 8980)] +
    [too_big_reply(_jumbo[8981], 8980)],
    counters={"icmp_too_big_sent": 1},
    args=["--mbuf-size", "9216"],
)

# --- Path MTU: ICMP errors back, inner fragmentation ----------------------------------

_ptb4_ipip = df(tcp4(CLIENT4, VIP_WEB4, 40050, 80, flags="A", payload=b"a" * 1460))
_ptb4_gue = df(udp4("198.18.0.3", VIP_GUE4, 40051, 4000, payload=b"u" * 1472))
_ptb4_vlan = Ether(src="02:00:00:00:00:02", dst=PORT_MAC) / Dot1Q(vlan=7) / IP(
    src="198.18.0.4", dst=VIP_V4_TO_V6, flags="DF", options=[IPOption_Router_Alert()]) / TCP(
        sport=40052, dport=443, flags="A") / (b"v" * 1356)
_big_icmp_error = eth() / IP(src=ROUTER4, dst=VIP_WEB4, flags="DF") / ICMP(
    type=3, code=4, nexthopmtu=1200) / Raw(bytes(IP(src=VIP_WEB4, dst=CLIENT4) / TCP(
        sport=80, dport=40050) / (b"q" * 1300)))
case(
    name="pmtu_frag_needed_ipv4",
    description="mtu 1280, IPv4 clients, DF set, too big for the tunnel: answered from the "
    "VIP with ICMP frag-needed (type 3 code 4) to the sender's MAC, announcing the inner "
    "MTU (IPIP 4in4 1260, GUE 1252, 4in6 1240), quoting the IP header and payload up to "
    "576 bytes (548 quoted), checksums right, VLAN tag and quoted IP options kept; an "
    "ICMP error itself too big is dropped as too_big, never answered",
    table=MTU_TABLE,
    input=[_ptb4_ipip, _ptb4_gue, _ptb4_vlan, _big_icmp_error],
    expected=[too_big_reply(_ptb4_ipip, 1260), too_big_reply(_ptb4_gue, 1252),
              too_big_reply(_ptb4_vlan, 1240)],
    drops={"too_big": 1},
    counters={"forwarded": 0, "icmp_too_big_sent": 3, "icmp_errors_forwarded": 0},
)

_ptb6_6in6 = tcp6(CLIENT6, VIP_WEB6, 50050, 443, flags="A", payload=b"s" * 1440)
_ptb6_6in6_edge = tcp6(CLIENT6, VIP_WEB6, 50051, 443, flags="A", payload=b"e" * 1181)
_ptb6_gue = udp6("2001:db8:c::3", VIP_GUE6, 50052, 4000, payload=b"w" * 1300)
_ptb6_6in4 = eth() / IPv6(src="2001:db8:c::4", dst=VIP_V6_TO_V4) / IPv6ExtHdrHopByHop() / \
    TCP(sport=50053, dport=443, flags="A") / (b"x" * 1300)
case(
    name="pmtu_packet_too_big_ipv6",
    description="mtu 1280, IPv6 clients, too big for the tunnel: answered from the VIP with "
    "ICMPv6 packet-too-big announcing the inner MTU (6in6 1240, GUE over IPv6 1232, 6in4 "
    "1260), quoting as much of the packet as fits in 1280 bytes (1232), ICMPv6 checksum "
    "right; a 1241-byte packet (one over 6in6) is answered too, quote cut at 1232",
    table=MTU_TABLE,
    input=[_ptb6_6in6, _ptb6_6in6_edge, _ptb6_gue, _ptb6_6in4],
    expected=[too_big_reply(_ptb6_6in6, 1240), too_big_reply(_ptb6_6in6_edge, 1240),
              too_big_reply(_ptb6_gue, 1232), too_big_reply(_ptb6_6in4, 1260)],
    counters={"forwarded": 0, "icmp_too_big_sent": 4},
)

_flood = [df(udp4("198.18.0.9", VIP_DNS4, 40060 + i, 53, payload=b"f" * 1300))
          for i in range(12)]
_other = df(udp4("198.18.0.10", VIP_DNS4, 40070, 53, payload=b"o" * 1300))
case(
    name="pmtu_rate_limit",
    description="12 too-big DF datagrams from one client get the bucket's worth of "
    "frag-needed (10), the other 2 are dropped as too_big_rate_limited; another client "
    "still gets its answer (per-client token buckets)",
    table=MTU_TABLE,
    input=_flood + [_other],
    expected=[too_big_reply(f, 1260) for f in _flood[:10]] + [too_big_reply(_other, 1260)],
    drops={"too_big_rate_limited": 2},
    counters={"icmp_too_big_sent": 11},
)

_dgram = udp4(CLIENT4, VIP_DNS4, 40080, 53, payload=bytes(range(256)) * 11 + b"z" * 156, id=0x4d2)
case(
    name="inner_fragmentation_ipv4",
    description="a 3000-byte UDP datagram without DF, too big for a 4in4 tunnel at mtu "
    "1280: split by the PoP into IPv4 fragments of 1260 bytes at most (1240 + 1240 + 500 "
    "bytes of payload, same id, MF on all but the last), each encapsulated to the flow's "
    "endpoint",
    table=MTU_TABLE,
    input=[_dgram],
    expected=[encap(f, EP_DNS) for f in ipv4_fragments(_dgram, 1260)],
    counters={"forwarded": 1, "fragmented": 1, "fragments_sent": 2, "icmp_too_big_sent": 0,
              "listeners.4.packets": 1},
    args=["--mbuf-size", "9216"],
)

_opt_big = eth() / IP(src=CLIENT4, dst=VIP_GUE4, id=0x77, tos=0x28, options=[
    IPOption_Router_Alert(), IPOption_NOP(), IPOption_NOP(), IPOption_NOP(), IPOption_NOP()]) \
    / TCP(sport=40002, dport=4000, flags="A") / (b"o" * 1452)
case(
    name="inner_fragmentation_gue_options",
    description="a 1500-byte TCP segment without DF, with IPv4 options (router alert, "
    "copied; NOPs, not copied), too big for GUE at mtu 1280: the first fragment keeps "
    "every option (IHL 7), the second only router alert (IHL 6); both in GUE with the "
    "flow's pinned source port",
    table=MTU_TABLE,
    input=[_opt_big],
    expected=[encap(f, EP_GUE4, gue=True, sport=SPORT_GUE4_TCP)
              for f in ipv4_fragments(_opt_big, 1252)],
    counters={"forwarded": 1, "fragmented": 1, "fragments_sent": 1},
)

_frag46 = tcp4(CLIENT4, VIP_V4_TO_V6, 40001, 443, flags="A", payload=b"4" * 1960)
case(
    name="inner_fragmentation_4in6",
    description="a 2000-byte IPv4 packet without DF to an IPv6 endpoint at mtu 1280: "
    "fragments of at most 1240 bytes, each in IPv6 with the flow's pinned flow label",
    table=MTU_TABLE,
    input=[_frag46],
    expected=[encap(f, EP_V4_TO_V6, flow_label=LABEL_4IN6) for f in ipv4_fragments(_frag46, 1240)],
    counters={"forwarded": 1, "fragmented": 1, "fragments_sent": 1},
)
case(
    name="oversized_frame_counted",
    description="with the default 2 KiB packet buffers a 2049-byte frame cannot be held in "
    "one buffer: dropped as oversized_frame and still counted as received",
    table=JUMBO_TABLE,
    input=[_jumbo[n] for n in (2034, 2035, 8980)],
    expected=[encap(_jumbo[2034], EP_WEB4)],
    drops={"oversized_frame": 2},
)

SPREAD_EPS = ["198.51.100.81", "198.51.100.82", "198.51.100.83", "198.51.100.84"]
SPREAD_TABLE = HEADER + listener_block(
    "spread", ["203.0.113.80"], "TCP", [(80, 80)], [(a, 100, True) for a in SPREAD_EPS])


def _spread_in():
    return [tcp4("198.18.2.1", "203.0.113.80", 20000 + i, 80, flags=fl)
            for fl in ("S", "A") for i in range(200)]


case(
    name="affinity_none",
    description="Affinity NONE: 200 connections of one client spread over the listener's "
    "4 endpoints by 5-tuple; both packets of each connection reach the same endpoint",
    table=SPREAD_TABLE,
    input=_spread_in,
    counters={"forwarded": 400, "new_flows": 200, "flows_live": 200},
    check=consistent(SPREAD_EPS, min_used=4, expect_flows=200),
)

STICKY_EPS = [f"198.51.100.{90 + i}" for i in range(6)]
STICKY_TABLE = HEADER + listener_block(
    "sticky", ["203.0.113.90"], "TCP_UDP", [(80, 80)], [(a, 100, True) for a in STICKY_EPS],
    affinity="SOURCE_IP")


def _sticky_in():
    return [(tcp4 if proto == "tcp" else udp4)(f"198.18.3.{c}", "203.0.113.90",
                                                30000 + p * 7 + c, 80)
            for p in range(8) for c in range(1, 31) for proto in ("tcp", "udp")]


case(
    name="affinity_source_ip",
    description="Affinity SOURCE_IP: 30 clients x 8 source ports x TCP and UDP; every "
    "packet of one client reaches one endpoint, one flow entry per client (not per "
    "connection), clients still spread over the endpoints",
    table=STICKY_TABLE,
    input=_sticky_in,
    counters={"forwarded": 480, "new_flows": 30, "flows_live": 30,
              "listeners.0.new_flows": 30},
    check=consistent(STICKY_EPS, min_used=4, key="client", expect_flows=30),
)

_sticky_syn = tcp4("198.18.3.5", "203.0.113.90", 33333, 80)
_sticky_icmp = eth() / IP(src=ROUTER4, dst="203.0.113.90") / ICMP(
    type=3, code=4, nexthopmtu=1400) / Raw(bytes(
        IP(src="203.0.113.90", dst="198.18.3.5", len=1500, flags="DF") /
        TCP(sport=80, dport=44444))[:28])
case(
    name="icmp_frag_needed_source_ip",
    description="On a SOURCE_IP listener a frag-needed about any connection of a client "
    "(another port than its SYN's) goes to that client's endpoint (pinned)",
    table=STICKY_TABLE,
    input=[_sticky_syn, _sticky_icmp],
    expected=[encap(_sticky_syn, "198.51.100.94"), encap(_sticky_icmp, "198.51.100.94")],
    counters={"icmp_errors_forwarded": 1, "new_flows": 1},
)


def _evictions(result):
    s = result.stats
    if counter(s["flow_evictions"]) == 0:
        return [f"no flow was evicted (capacity {s['flow_capacity']}, live {s['flows_live']}); "
                "the case needs a full table"]
    return []


case(
    name="flow_table_full",
    description="A 64-entry flow table and 500 connections x 2 rounds: flows are evicted, "
    "yet every packet of a connection reaches the same endpoint (Maglev picks it again)",
    table=SPREAD_TABLE,
    input=lambda: [tcp4("198.18.2.2", "203.0.113.80", 20000 + i, 80, flags=fl)
                   for fl in ("S", "A") for i in range(500)],
    args=["--flows-per-lcore", "64"],
    counters={"forwarded": 1000, "flow_capacity": 64, "flows_moved": 0},
    check=all_of(consistent(SPREAD_EPS, min_used=4, expect_flows=500, flows_listed=False),
                 _evictions),
)


def _weight_check(result):
    problems = []
    counts = {}
    for d in decap_all(result, problems):
        counts[norm(d.endpoint)] = counts.get(norm(d.endpoint), 0) + 1
    total = sum(counts.values())
    heavy = counts.get("198.51.100.102", 0)
    share = heavy / total if total else 0
    if not 0.72 <= share <= 0.78:
        problems.append(f"weight 3 endpoint got {share:.3f} of {total} flows, expected "
                        f"0.75 +- 0.03 ({counts})")
    if set(counts) - {"198.51.100.101", "198.51.100.102"}:
        problems.append(f"flows went to endpoints outside the listener: {counts}")
    eps = {e["address"]: counter(e["new_flows"])
           for e in result.stats["listeners"][0]["endpoints"]}
    for address, n in counts.items():
        if eps.get(address) != n:
            problems.append(f"{address}: {n} flows in the output, counter says {eps.get(address)}")
    return problems


case(
    name="weight_distribution",
    description="Weights 1:3 over 4000 UDP flows: the weight-3 endpoint takes 75 % +- 3 "
    "points, and per-endpoint new_flows counters agree with the output",
    table=HEADER + listener_block("weighted", ["203.0.113.100"], "UDP", [(443, 443)],
                                  [("198.51.100.101", 1, True), ("198.51.100.102", 3, True)]),
    input=lambda: [udp4(f"198.18.{4 + i // 250}.{1 + i % 250}", "203.0.113.100",
                        1024 + (i * 37) % 60000, 443, payload=b"w") for i in range(4000)],
    args=["--flows-per-lcore", "65536"],
    counters={"forwarded": 4000, "new_flows": 4000, "flow_evictions": 0},
    check=_weight_check,
)

DRAIN_TABLE = HEADER + listener_block(
    "drain", ["203.0.113.70"], "TCP", [(80, 80)],
    [("198.51.100.71", 0, True), ("198.51.100.72", 50, True), ("198.51.100.73", 50, True)]) + \
    listener_block("drained", ["203.0.113.71"], "TCP", [(80, 80)],
                   [("198.51.100.74", 0, True), ("198.51.100.75", 0, True)])
case(
    name="drain_weight_zero",
    description="An endpoint of weight 0 takes no new flows (300 flows go to the other two); "
    "a listener whose endpoints all have weight 0 drops new flows as no_endpoint",
    table=DRAIN_TABLE,
    input=lambda: [tcp4(f"198.18.5.{1 + i % 100}", "203.0.113.70", 10000 + i, 80)
                   for i in range(300)]
    + [tcp4("198.18.5.200", "203.0.113.71", 10000 + i, 80) for i in range(5)],
    drops={"no_endpoint": 5},
    counters={"forwarded": 300, "new_flows": 300, "listeners.0.endpoints.0.new_flows": 0,
              "listeners.0.endpoints.0.packets": 0, "listeners.0.endpoints.0.weight": 0,
              "listeners.1.packets": 0},
    check=never_to("198.51.100.71", min_used=2),
)

UNHEALTHY_TABLE = HEADER + listener_block(
    "mixed-health", ["203.0.113.75"], "UDP", [(53, 53)],
    [("198.51.100.76", 100, False), ("198.51.100.77", 100, True), ("198.51.100.78", 100, True)]) \
    + listener_block("all-down", ["203.0.113.76"], "UDP", [(53, 53)],
                     [("198.51.100.79", 100, False)])
case(
    name="unhealthy_endpoint",
    description="An unhealthy endpoint (weight 100) takes no flow and reports healthy "
    "false; a listener with only unhealthy endpoints drops as no_endpoint",
    table=UNHEALTHY_TABLE,
    input=lambda: [udp4(f"198.18.6.{1 + i % 150}", "203.0.113.75", 2000 + i, 53)
                   for i in range(300)]
    + [udp4("198.18.6.200", "203.0.113.76", 2000, 53)] * 3,
    drops={"no_endpoint": 3},
    counters={"forwarded": 300, "listeners.0.endpoints.0.healthy": False,
              "listeners.0.endpoints.0.new_flows": 0, "listeners.0.endpoints.1.healthy": True,
              "listeners.1.endpoints.0.packets": 0},
    check=never_to("198.51.100.76", min_used=2),
)

# Five endpoints of every kind behind one listener on an IPv4 and an IPv6 VIP.
MIXED_EPS = [("198.51.100.111", 100, True), ("198.51.100.112", 50, True),
             ("198.51.100.113", 100, True, "GUE"), ("2001:db8:100::111", 100, True),
             ("2001:db8:100::112", 200, True, "GUE")]
MIXED_LISTENER = ("mixed", ["203.0.113.110", "2001:db8:10::110"], "TCP_UDP", [(443, 443)])
MIXED_TABLE = HEADER + listener_block(*MIXED_LISTENER, MIXED_EPS) + listener_block(
    "sticky", ["203.0.113.90"], "TCP_UDP", [(80, 80)], [(a, 100, True) for a in STICKY_EPS],
    affinity="SOURCE_IP")


def _mixed_flows(n):
    flows = []
    for i in range(n):
        v6 = i % 3 == 0
        client = f"2001:db8:c::{i + 1:x}" if v6 else f"198.18.{7 + i // 200}.{1 + i % 200}"
        vip = "2001:db8:10::110" if v6 else "203.0.113.110"
        flows.append((client, 1024 + (i * 7919) % 64000, vip, 443, 6 if i % 2 else 17))
    return flows


def _flow_packet(flow, round_):
    client, cport, vip, vport, proto = flow
    payload = bytes([round_]) * (10 + round_)
    if ":" in client:
        return (tcp6 if proto == 6 else udp6)(client, vip, cport, vport, payload=payload)
    return (tcp4 if proto == 6 else udp4)(client, vip, cport, vport, payload=payload)


case(
    name="many_flows_consistent",
    description="400 flows (IPv4/IPv6 clients, TCP/UDP) x 3 rounds over 5 endpoints of "
    "every kind: each flow keeps one endpoint and one outer header (GUE port, flow label) "
    "all capture long, only the listener's endpoints are chosen, the flow table agrees "
    "with the packets, and a second run of the binary sends byte-identical output",
    table=MIXED_TABLE,
    input=lambda: [_flow_packet(f, r) for r in range(3) for f in _mixed_flows(400)],
    runs=2,
    counters={"forwarded": 1200, "new_flows": 400, "flows_live": 400},
    check=consistent([e[0] for e in MIXED_EPS], min_used=5, expect_flows=400),
)


def _model_check(result):
    """Every forwarded packet went where the reference model says, with its GUE
    source port and flow label."""
    problems = []
    mixed = [e[:3] for e in MIXED_EPS]
    sticky = [(a, 100, True) for a in STICKY_EPS]
    for d in decap_all(result, problems):
        if norm(d.vip) == "203.0.113.90":
            h = model.source_ip_hash(d.client, "sticky")
            want = STICKY_EPS[model.pick(sticky, h)]
        else:
            h = model.flow_hash(d.client, d.client_port, d.vip, d.vip_port, d.proto)
            want = MIXED_EPS[model.pick(mixed, h)][0]
        if norm(d.endpoint) != norm(want):
            problems.append(f"flow {d.flow}: went to {d.endpoint}, model says {want}")
        if d.gue and d.sport != model.gue_source_port(h):
            problems.append(f"flow {d.flow}: GUE source port {d.sport}, model says "
                            f"{model.gue_source_port(h)}")
        if d.flow_label is not None and d.flow_label != model.flow_label(h):
            problems.append(f"flow {d.flow}: flow label {d.flow_label:#x}, model says "
                            f"{model.flow_label(h):#x}")
        if len(problems) > 20:
            problems.append("...")
            break
    return problems


case(
    name="maglev_matches_model",
    description="300 5-tuple flows and 60 SOURCE_IP clients, default Maglev size 65537: "
    "endpoint, GUE source port and IPv6 flow label of every packet equal the Python "
    "reference model's (model.py), so every PoP and release picks alike",
    table=MIXED_TABLE,
    input=lambda: [_flow_packet(f, 0) for f in _mixed_flows(300)]
    + [tcp4(f"198.18.9.{c}", "203.0.113.90", 5555, 80) for c in range(1, 61)],
    counters={"forwarded": 360},
    check=_model_check,
)

# --- Tables the binary must refuse ---------------------------------------------------

case(
    name="bad_table_weight",
    description="An endpoint weight of 300 is refused before any packet moves: exit 1, "
    "the message names listeners[0].endpoints[1].weight",
    table=BASE_TABLE.replace(
        'endpoints { address: "198.51.100.10" weight: 100 label: "eu-central" }',
        'endpoints { address: "198.51.100.10" weight: 100 label: "eu-central" }\n'
        '  endpoints { address: "198.51.100.11" weight: 300 }'),
    input=[tcp4(CLIENT4, VIP_WEB4, 40000, 80)],
    exit_code=1,
    stderr_has=["listeners[0].endpoints[1].weight: 300 is outside 0..255"],
)

case(
    name="bad_table_overlap",
    description="Two listeners whose TCP port ranges overlap on one VIP are refused; the "
    "message names both ranges and the VIP",
    table=BASE_TABLE + """\
listeners {
  name: "clash" vips: "203.0.113.10" protocol: TCP_UDP
  port_ranges { first: 8090 last: 8200 }
  endpoints { address: "198.51.100.12" weight: 1 }
}
""",
    input=[tcp4(CLIENT4, VIP_WEB4, 40000, 80)],
    exit_code=1,
    stderr_has=["listeners[7].port_ranges[0]: 8090..8200 overlaps listeners[0].port_ranges[1] "
                "on VIP 203.0.113.10 (TCP)"],
)

case(
    name="bad_table_syntax",
    description="A misspelt field (wieght) is refused by the text-format parser with a "
    "message naming it",
    table=BASE_TABLE.replace('address: "198.51.100.10" weight: 100',
                             'address: "198.51.100.10" wieght: 100'),
    input=[tcp4(CLIENT4, VIP_WEB4, 40000, 80)],
    exit_code=1,
    stderr_has=["wieght"],
)

case(
    name="bad_table_tunnel_source",
    description="An IPv6 endpoint without tunnel_source.ipv6 is refused with a message "
    "naming the endpoint and the missing field",
    table=BASE_TABLE.replace(' ipv6: "2001:db8::1"', ""),
    input=[tcp4(CLIENT4, VIP_WEB4, 40000, 80)],
    exit_code=1,
    stderr_has=["listeners[1].endpoints[0].address: IPv6 endpoint 2001:db8:100::10 needs "
                "tunnel_source.ipv6"],
)

# --- Relaying over the backbone (docs/routing.md) -----------------------------
# TST1 (tunnel 192.0.2.1 / 2001:db8::1) reaches these endpoints over the relay
# PoP TST2 (tunnel 192.0.2.9 / 2001:db8::9); TST2's table lists the same
# endpoints, direct, and TST1 as a relay peer.

RELAY_V4 = "192.0.2.9"
RELAY_V6 = "2001:db8::9"
EP_R4, EP_R4GUE, EP_R4FRAG = "198.51.100.50", "198.51.100.51", "198.51.100.52"
EP_R6, EP_R6GUE = "2001:db8:100::50", "2001:db8:100::51"
VIP_R4, VIP_R4GUE, VIP_R4FRAG = "203.0.113.50", "203.0.113.51", "203.0.113.52"
VIP_R6, VIP_R6GUE = "2001:db8:10::50", "2001:db8:10::51"

RELAY_LISTENERS = """\
listeners {
  name: "r4" vips: "203.0.113.50" protocol: TCP port_ranges { first: 80 }
  endpoints { address: "198.51.100.50" weight: 100 RELAY4 }
}
listeners {
  name: "r4gue" vips: "203.0.113.51" protocol: UDP port_ranges { first: 4000 }
  endpoints { address: "198.51.100.51" weight: 100 mode: ENCAP_GUE RELAY4 }
}
listeners {
  name: "r4frag" vips: "203.0.113.52" protocol: UDP port_ranges { first: 53 }
  endpoints { address: "198.51.100.52" weight: 100 RELAY4 }
}
listeners {
  name: "r6" vips: "2001:db8:10::50" protocol: TCP port_ranges { first: 443 }
  endpoints { address: "2001:db8:100::50" weight: 100 RELAY6 }
}
listeners {
  name: "r6gue" vips: "2001:db8:10::51" protocol: UDP port_ranges { first: 4000 }
  endpoints { address: "2001:db8:100::51" weight: 100 mode: ENCAP_GUE gue_port: 7000 RELAY6 }
}
"""
RELAY_INGRESS_TABLE = HEADER + RELAY_LISTENERS.replace(
    "RELAY4", f'relay: "{RELAY_V4}"').replace("RELAY6", f'relay: "{RELAY_V6}"')
RELAY_HOP_TABLE = f"""\
pop: "TST2"
tunnel_source {{ ipv4: "{RELAY_V4}" ipv6: "{RELAY_V6}" }}
next_hop_mac: "02:00:00:00:00:fe"
relay_peers: "192.0.2.1"
relay_peers: "2001:db8::1"
""" + RELAY_LISTENERS.replace(" RELAY4", "").replace(" RELAY6", "")

# Pinned (model.py): the flow's hash gives both the endpoint's GUE source port
# and flow label and the relay header's.
SPORT_R4, LABEL_R4 = 57542, 0x9CB20  # 198.18.0.1:41000 -> 203.0.113.50:80 tcp
SPORT_R4GUE = 34755  # 198.18.0.1:41001 -> 203.0.113.51:4000 udp
SPORT_R6, LABEL_R6 = 61776, 0x9AB41  # 2001:db8:c::1:51000 -> [2001:db8:10::50]:443 tcp
SPORT_R6GUE, LABEL_R6GUE = 57241, 0x2BBB9  # 2001:db8:c::1:51001 -> [2001:db8:10::51]:4000 udp
SPORT_R4FRAG = 43515  # 198.18.0.2:41003 -> 203.0.113.52:53 udp
SPORT_R6GUE_BIG, LABEL_R6GUE_BIG = 65281, 0x23B11  # 2001:db8:c::2:51002 -> ...:4000 udp

_r4_syn = tcp4(CLIENT4, VIP_R4, 41000, 80, tos=0x28)
_r4_syn[IP].flags = "DF"
_r6_syn = tcp6(CLIENT6, VIP_R6, 51000, 443, tc=0xB8)
_r4_gue = udp4(CLIENT4, VIP_R4GUE, 41001, 4000, payload=b"relayed datagram")
_r6_gue = udp6(CLIENT6, VIP_R6GUE, 51001, 4000, payload=b"odd-length!")

_relayed_r4 = relay_wrap(encap(_r4_syn, EP_R4), RELAY_V4, sport=SPORT_R4)
_relayed_r6 = relay_wrap(encap(_r6_syn, EP_R6, flow_label=LABEL_R6), RELAY_V6, sport=SPORT_R6,
                         flow_label=LABEL_R6)
_relayed_r4_gue = relay_wrap(encap(_r4_gue, EP_R4GUE, gue=True, sport=SPORT_R4GUE), RELAY_V4,
                             sport=SPORT_R4GUE)
_relayed_r6_gue = relay_wrap(
    encap(_r6_gue, EP_R6GUE, gue=True, gue_port=7000, sport=SPORT_R6GUE,
          flow_label=LABEL_R6GUE), RELAY_V6, sport=SPORT_R6GUE, flow_label=LABEL_R6GUE)

case(
    name="relay_ingress_ipip",
    description="Endpoints reached over a relay PoP, IPIP: the packet built for the endpoint "
    "(4in4, 6in6, from this PoP's tunnel address) wrapped in IP/UDP to the relay's port 6080 "
    "(GUE variant 1), TOS and DF copied, source port and IPv6 flow label from the flow hash "
    "(pinned); counted in relayed_out",
    table=RELAY_INGRESS_TABLE,
    input=[_r4_syn, _r6_syn],
    expected=[_relayed_r4, _relayed_r6],
    counters={"forwarded": 2, "relayed_out": 2, "new_flows": 2,
              "listeners.0.endpoints.0.packets": 1, "listeners.3.endpoints.0.packets": 1},
)

case(
    name="relay_ingress_gue",
    description="Endpoints reached over a relay PoP, GUE: the endpoint's GUE packet (its own "
    "port 7000 for the IPv6 one) wrapped in GUE to the relay; over IPv4 no UDP checksum, "
    "over IPv6 both UDP checksums computed (odd-length payload)",
    table=RELAY_INGRESS_TABLE,
    input=[_r4_gue, _r6_gue],
    expected=[_relayed_r4_gue, _relayed_r6_gue],
    counters={"forwarded": 2, "relayed_out": 2},
)

case(
    name="relay_ingress_port",
    description="relay_port 6090: relayed packets go to that UDP port of the relay instead "
    "of the table's GUE port",
    table=RELAY_INGRESS_TABLE + "relay_port: 6090\n",
    input=[_r4_syn],
    expected=[relay_wrap(encap(_r4_syn, EP_R4), RELAY_V4, sport=SPORT_R4, relay_port=6090)],
    counters={"relayed_out": 1},
)

_r4_big = tcp4(CLIENT4, VIP_R4, 41002, 80, flags="A", payload=b"b" * (1233 - 40))
_r4_big[IP].flags = "DF"
_r4_fits = tcp4(CLIENT4, VIP_R4, 41002, 80, flags="A", payload=b"f" * (1232 - 40))
_r4_fits[IP].flags = "DF"
_r4_frag = udp4("198.18.0.2", VIP_R4FRAG, 41003, 53, payload=b"n" * 1400, id=0x4242)
_r6_gue_big = udp6("2001:db8:c::2", VIP_R6GUE, 51002, 4000, payload=b"6" * (1185 - 48))
_r4_frags = ipv4_fragments(_r4_frag, 1232)
assert len(_r4_frags) == 2
SPORT_R4_BIG = 57319  # 198.18.0.1:41002 -> 203.0.113.50:80 tcp
case(
    name="relay_ingress_mtu",
    description="MTU 1280 with a relay: the inner MTU subtracts both layers (IPv4 IPIP: "
    "20 + 28, 1232; IPv6 GUE: 48 + 48, 1184); one byte more is answered with frag-needed / "
    "packet-too-big announcing that, and an IPv4 datagram without DF is split to fit "
    "before both encapsulations",
    table=RELAY_INGRESS_TABLE + "mtu: 1280\n",
    input=[_r4_fits, _r4_big, _r4_frag, _r6_gue_big],
    # A split packet's fragments beyond the first leave after the rest of
    # their burst.
    expected=[relay_wrap(encap(_r4_fits, EP_R4), RELAY_V4, sport=SPORT_R4_BIG),
              too_big_reply(_r4_big, 1232),
              relay_wrap(encap(_r4_frags[0], EP_R4FRAG), RELAY_V4, sport=SPORT_R4FRAG),
              too_big_reply(_r6_gue_big, 1184),
              relay_wrap(encap(_r4_frags[1], EP_R4FRAG), RELAY_V4, sport=SPORT_R4FRAG)],
    counters={"forwarded": 2, "relayed_out": 2, "icmp_too_big_sent": 2, "fragmented": 1,
              "fragments_sent": 1},
)


def _arriving(frame):
    """A frame as the relay receives it: from the router, to its port."""
    f = Ether(frame)
    return bytes(eth(type=f.type)) + bytes(f.payload)


case(
    name="relay_hop",
    description="The relay PoP forwards relayed packets of a peer (IPv4 and IPv6, IPIP and "
    "GUE inside): outer IP/UDP removed, the inner packet's source becomes the relay's own "
    "tunnel address, TTL / hop limit one less, checksums adjusted (an IPv4 GUE checksum of 0 "
    "stays 0), next-hop and port MACs; no flow is created; counted in relayed_in",
    table=RELAY_HOP_TABLE,
    input=[_arriving(f) for f in (_relayed_r4, _relayed_r6, _relayed_r4_gue, _relayed_r6_gue)],
    expected=[relay_hop(_arriving(f), RELAY_V4, RELAY_V6)
              for f in (_relayed_r4, _relayed_r6, _relayed_r4_gue, _relayed_r6_gue)],
    counters={"forwarded": 4, "relayed_in": 4, "new_flows": 0, "flows_live": 0},
)


def _mutated(frame, change):
    """A relayed frame with a field of its inner (endpoint) packet changed by
    `change(inner)`; the relay's outer headers are rebuilt around it."""
    f = Ether(_arriving(frame))
    outer = f.payload
    inner = bytes(outer.payload.payload)
    inner = IP(inner) if isinstance(outer, IP) else IPv6(inner)
    change(inner)
    if isinstance(inner, IP):
        del inner.chksum
    del outer.payload.len
    if isinstance(outer, IP):
        del outer.len, outer.chksum
    else:
        del outer.plen, outer.payload.chksum
    outer.payload.remove_payload()
    outer.payload.add_payload(inner)
    return bytes(f)


def _set(**fields):
    def change(inner):
        for k, v in fields.items():
            setattr(inner, k, v)
    return change


_not_a_peer = Ether(_arriving(_relayed_r4))
_not_a_peer[IP].src = "192.0.2.5"
del _not_a_peer[IP].chksum
_no_ip_inside = bytes(eth() / IP(src="192.0.2.1", dst=RELAY_V4) /
                      UDP(sport=40000, dport=6080, chksum=0) / Raw(b"\x00" * 40))
_gre_inside = _mutated(_relayed_r4, _set(proto=47))
case(
    name="relay_hop_refusals",
    description="What the relay refuses, each counted by its reason: a sender not in "
    "relay_peers, a payload that is no IPIP/GUE packet (zeros, GRE), an inner source other "
    "than the sender, an inner packet to a PoP (a relay of a relay), to an address that is "
    "no endpoint of the relay's table, with TTL / hop limit 1; a relayed packet beside them "
    "still goes",
    table=RELAY_HOP_TABLE,
    input=[
        bytes(_not_a_peer),
        _no_ip_inside,
        _gre_inside,
        _mutated(_relayed_r4, _set(src="192.0.2.3")),
        _mutated(_relayed_r6, _set(src="2001:db8::3")),
        _mutated(_relayed_r4, _set(dst="192.0.2.1")),
        _mutated(_relayed_r4, _set(dst="198.51.100.99")),
        _mutated(_relayed_r6, _set(dst="2001:db8:100::99")),
        _mutated(_relayed_r4, _set(ttl=1)),
        _mutated(_relayed_r6, _set(hlim=1)),
        _arriving(_relayed_r4),
    ],
    expected=[relay_hop(_arriving(_relayed_r4), RELAY_V4, RELAY_V6)],
    drops={"relay_unknown_peer": 1, "relay_malformed": 2, "relay_source_mismatch": 2,
           "relay_nested": 1, "relay_not_endpoint": 2, "relay_ttl_exceeded": 2},
    counters={"relayed_in": 1},
)

case(
    name="relay_hop_not_a_relay",
    description="A PoP without relay_peers is no relay: GUE to its tunnel address on the "
    "relay port is non_vip there, as before relaying existed",
    table=RELAY_HOP_TABLE.replace('relay_peers: "192.0.2.1"\nrelay_peers: "2001:db8::1"\n', ""),
    input=[_arriving(_relayed_r4), _arriving(_relayed_r6_gue)],
    expected=[],
    drops={"non_vip": 2},
)

case(
    name="bad_table_relay",
    description="An endpoint whose relay is of another family is refused with a message "
    "naming the field",
    table=RELAY_INGRESS_TABLE.replace(f'relay: "{RELAY_V6}"', f'relay: "{RELAY_V4}"', 1),
    input=[_r4_syn],
    exit_code=1,
    stderr_has=["listeners[3].endpoints[0].relay: 192.0.2.9 is not of the family of endpoint "
                "2001:db8:100::50"],
)

BY_NAME = {c.name: c for c in CASES}
assert len(BY_NAME) == len(CASES), "case names must be unique"
