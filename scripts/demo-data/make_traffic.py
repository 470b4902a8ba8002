#!/usr/bin/python3
"""Writes the demo capture (traffic.pcap): web and DNS clients of the demo
table's VIPs, a ping, a path-MTU error, and some junk that must be dropped.
Run with Debian's /usr/bin/python3 (scapy)."""
import sys

from scapy.all import ICMP, IP, TCP, UDP, ARP, Ether, IPv6, ICMPv6EchoRequest, wrpcap

PORT_MAC = "02:70:63:61:70:00"  # net_pcap port 0
CLIENT_MAC = "02:00:00:00:00:01"


def eth():
    return Ether(src=CLIENT_MAC, dst=PORT_MAC)


packets = []
# Eight web clients, three packets per TCP connection (SYN, ACK, data).
for i in range(8):
    client = f"192.0.2.{100 + i}"
    sport = 40000 + i
    dport = 443 if i % 2 else 80
    for flags, payload in (("S", b""), ("A", b""), ("PA", b"GET / HTTP/1.1\r\n\r\n")):
        packets.append(eth() / IP(src=client, dst="203.0.113.10") / TCP(sport=sport, dport=dport, flags=flags) / payload)
# Two IPv6 web clients.
for i in range(2):
    packets.append(eth() / IPv6(src=f"2001:db8:c::{i + 1}", dst="2001:db8:10::10") / TCP(sport=50000 + i, dport=443, flags="S"))
# DNS: six clients, several queries each from different ports; source-IP
# affinity keeps each client on one resolver.
for c in range(6):
    for q in range(3):
        packets.append(eth() / IP(src=f"192.0.2.{200 + c}", dst="203.0.113.10") / UDP(sport=30000 + 7 * q + c, dport=53) / b"\x12\x34query")
# A ping to the VIP is answered by the PoP itself.
packets.append(eth() / IP(src="192.0.2.100", dst="203.0.113.10") / ICMP(type=8, id=1, seq=1) / b"ping")
packets.append(eth() / IPv6(src="2001:db8:c::1", dst="2001:db8:10::10") / ICMPv6EchoRequest(id=1, seq=1))
# A router on the way back from an endpoint says the reply was too big: it
# follows the flow 192.0.2.100:40000 -> VIP:80 to that flow's endpoint.
packets.append(eth() / IP(src="198.51.100.254", dst="203.0.113.10") / ICMP(type=3, code=4, nexthopmtu=1400)
               / IP(src="203.0.113.10", dst="192.0.2.100") / TCP(sport=80, dport=40000, flags="A"))
# Junk: ARP, traffic for an address that is not a VIP, a closed port, a
# truncated IPv4 header.
packets.append(Ether(src=CLIENT_MAC, dst="ff:ff:ff:ff:ff:ff") / ARP(psrc="192.0.2.100", pdst="192.0.2.1"))
packets.append(eth() / IP(src="192.0.2.100", dst="203.0.113.99") / TCP(dport=80))
packets.append(eth() / IP(src="192.0.2.100", dst="203.0.113.10") / TCP(dport=22))
packets.append(Ether(bytes(eth() / IP(src="192.0.2.100", dst="203.0.113.10") / TCP(dport=80))[:30]))

wrpcap(sys.argv[1] if len(sys.argv) > 1 else "traffic.pcap", packets)
