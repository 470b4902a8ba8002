#!/usr/bin/python3
"""onramp-decap on a veth pair between two network namespaces this test
creates: "pop" sends what a PoP sends (scapy), "endpoint" runs onramp-decap on
its veth, a TCP listener and a UDP server, with the VIPs on its loopback and
its default routes back through the veth (direct server return).

Cases, each asserted, then the counters against the expected numbers:
  1. IPIP (4in4) TCP SYN from client 192.0.2.10 to VIP:80 -> the SYN-ACK
     leaves the endpoint from the VIP to 192.0.2.10 (client address preserved);
  2. the same over GUE (UDP to port 6080, the inner packet right after);
  3. a UDP datagram over IPIP to a server on VIP:5300: the server sees
     192.0.2.10 and its answer leaves from the VIP;
  4. tunnel packets (IPIP and GUE) from a source outside the allow list: not
     delivered (no SYN-ACK), counted in not_allowed;
  5. malformed tunnel packets from the allowed PoP (inner header cut short,
     inner version against the IPIP protocol, GUE length past the packet,
     frame shorter than the outer header says) and an outer fragment: counted,
     onramp-decap still runs and still decapsulates;
  6. IPv6: 4in6 and 6in6 IPIP and GUE over IPv6 -> SYN-ACKs from the VIPs;
  7. `onramp-decap --stats` and the line printed at SIGINT show the numbers;
     SIGINT detaches the program;
  8. a second instance on the interface is refused; after a SIGKILL the
     program stays attached and the next start replaces it;
  11. port overrides (onramp-decap --port-override VIP:443=8443/tcp and
     VIP:5353=5301/udp): a client in its own namespace runs curl against
     VIP:443 over IPv4 and IPv6; the PoP namespace tunnels what it sends
     (IPIP over IPv4, GUE over IPv6: a relay stands in for the dataplane,
     which never touches the ports) and forwards the direct replies; the
     endpoint's HTTP server listens on 8443 only, curl gets the page, the
     server sees the client's address, and every reply on the wire comes
     from VIP:443 with a checksum the client's kernel verified (transmit
     checksum offload is off on the endpoint). A UDP datagram to VIP:5353
     reaches the server on 5301 and its answer leaves from VIP:5353 with a
     valid checksum. SIGTERM detaches the TC egress program too.

usage: decap_test.py --decap PATH [--mode auto|native|generic]
"""
import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from harness import SKIP, Failure, check, log, run, wait_for

POP_V4, EP_V4 = "198.51.100.1", "198.51.100.20"
POP_V6, EP_V6 = "2001:db8:100::1", "2001:db8:100::20"
ALLOW = ["198.51.100.0/24", "2001:db8:100::/64"]
CLIENT_V4, CLIENT_V6 = "192.0.2.10", "2001:db8:c::10"
VIP_V4, VIP_V6 = "203.0.113.200", "2001:db8:200::200"
STRANGER = "192.0.2.99"  # an outer source outside the allow list
GUE_PORT = 6080
TCP_PORT, UDP_PORT = 80, 5300
# Port overrides: clients connect to the listener port, the application on
# the endpoint listens on the endpoint port.
HTTPS_LISTENER, HTTP_ENDPOINT = 443, 8443
# (An endpoint port is only reached through its override: its replies all
# leave from the listener port.)
UDP_LISTENER, UDP_ENDPOINT = 5353, 5301
OVERRIDES = [f"{VIP_V4}:{HTTPS_LISTENER}={HTTP_ENDPOINT}/tcp",
             f"[{VIP_V6}]:{HTTPS_LISTENER}={HTTP_ENDPOINT}/tcp",
             f"{VIP_V4}:{UDP_LISTENER}={UDP_ENDPOINT}/udp"]
# The client's side of the port-override case: its own namespace behind the
# PoP namespace.
CLIENT_GW_V4, CLIENT_GW_V6 = "192.0.2.1", "2001:db8:c::1"
PAGE = "onramp port override page\n"
CLONE_NEWNET = 0x40000000

# The endpoint's servers: a dual-stack TCP listener (the kernel answers SYNs
# without an accept) and UDP servers (the second for the port override)
# bound to the VIP, so their answers leave from the VIP, that log the source
# address of every datagram.
SERVERS = r"""
import select, socket, sys
log = open(sys.argv[1], "a", buffering=1)
tcp = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("::", %d))
tcp.listen(64)
udps = []
for port in (%d, %d):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind((%r, port))
    udps.append(udp)
log.write("ready\n")
while True:
    for udp in select.select(udps, [], [])[0]:
        data, addr = udp.recvfrom(2048)
        log.write("%%s %%d %%s\n" %% (addr[0], addr[1], data.decode(errors="replace")))
        udp.sendto(b"seen " + addr[0].encode(), addr)
""" % (TCP_PORT, UDP_PORT, UDP_ENDPOINT, VIP_V4)

# The PoP's part for the curl case, in the pop namespace: frames from the
# client to a VIP are sent on to the endpoint in a tunnel, as the dataplane
# does (it leaves the ports alone): IPv4 in IPIP over IPv4, IPv6 in GUE over
# IPv6. argv: client-side interface, endpoint-side interface, endpoint MAC,
# PoP MAC.
RELAY = r"""
import socket, struct, sys
VIP4, VIP6 = socket.inet_aton(%r), socket.inet_pton(socket.AF_INET6, %r)
POP4, EP4 = socket.inet_aton(%r), socket.inet_aton(%r)
POP6, EP6 = (socket.inet_pton(socket.AF_INET6, a) for a in (%r, %r))
GUE = %d
def checksum(b):
    s = sum(struct.unpack("!%%dH" %% (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
rx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
rx.bind((sys.argv[1], 0))
tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
tx.bind((sys.argv[2], 0))
l2 = bytes.fromhex(sys.argv[3].replace(":", "")) + bytes.fromhex(sys.argv[4].replace(":", ""))
print("ready", flush=True)
while True:
    frame, addr = rx.recvfrom(65535)
    if addr[2] == socket.PACKET_OUTGOING:
        continue
    ip = frame[14:]
    if frame[12:14] == b"\x08\x00" and ip[16:20] == VIP4:
        ip = ip[:struct.unpack("!H", ip[2:4])[0]]
        outer = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(ip), 0, 0x4000, 64, 4, 0, POP4, EP4)
        outer = outer[:10] + struct.pack("!H", checksum(outer)) + outer[12:]
        tx.send(l2 + b"\x08\x00" + outer + ip)
    elif frame[12:14] == b"\x86\xdd" and ip[24:40] == VIP6:
        ip = ip[:40 + struct.unpack("!H", ip[4:6])[0]]
        udp = struct.pack("!HHHH", 50000, GUE, 8 + len(ip), 0)
        outer = struct.pack("!IHBB16s16s", 0x60000000, len(udp) + len(ip), 17, 64, POP6, EP6)
        tx.send(l2 + b"\x86\xdd" + outer + udp + ip)
""" % (VIP_V4, VIP_V6, POP_V4, EP_V4, POP_V6, EP_V6, GUE_PORT)


class Skip(Exception):
    pass


def parse_counters(line):
    fields = dict(f.split("=", 1) for f in line.split())
    return {k: int(v) for k, v in fields.items() if k != "interface"}


class Bed:
    def __init__(self, decap, mode, work):
        self.decap = decap
        self.mode = mode
        self.work = work
        tag = os.getpid()
        self.pop, self.ep = f"odecap-pop-{tag}", f"odecap-ep-{tag}"
        self.client = f"odecap-cl-{tag}"
        self.procs = {}
        self.sniffed = []

    # --- namespaces ----------------------------------------------------------
    def up(self):
        r = run(["ip", "netns", "add", self.pop], check=False, merge_stderr=True)
        if r.returncode != 0:
            raise Skip(f"cannot create network namespaces here: {r.stdout.strip()}")
        run(["ip", "netns", "add", self.ep])
        run(["ip", "link", "add", "p0", "netns", self.pop, "type", "veth", "peer", "name", "e0",
            "netns", self.ep])
        P, E = ["ip", "-n", self.pop], ["ip", "-n", self.ep]
        run([*P, "addr", "add", f"{POP_V4}/24", "dev", "p0"])
        run([*P, "addr", "add", f"{POP_V6}/64", "dev", "p0", "nodad"])
        run([*E, "addr", "add", f"{EP_V4}/24", "dev", "e0"])
        run([*E, "addr", "add", f"{EP_V6}/64", "dev", "e0", "nodad"])
        run([*E, "addr", "add", f"{VIP_V4}/32", "dev", "lo"])
        run([*E, "addr", "add", f"{VIP_V6}/128", "dev", "lo"])
        for ns, ifs in ((P, ["lo", "p0"]), (E, ["lo", "e0"])):
            for i in ifs:
                run([*ns, "link", "set", i, "up"])
        run([*E, "route", "add", "default", "via", POP_V4])
        run([*E, "-6", "route", "add", "default", "via", POP_V6])
        self.pop_mac = self.mac(self.pop, "p0")
        self.ep_mac = self.mac(self.ep, "e0")

    def mac(self, ns, dev):
        return json.loads(run(["ip", "-j", "-n", ns, "link", "show", dev]).stdout)[0]["address"]

    def down(self):
        for name in list(self.procs):
            self.stop(name, signal.SIGKILL)
        for ns in (self.pop, self.ep, self.client):
            run(["ip", "netns", "del", ns], check=False)

    # --- processes -------------------------------------------------------------
    def start(self, name, cmd, ns=None):
        out = open(os.path.join(self.work, f"{name}.out"), "w")
        err = open(os.path.join(self.work, f"{name}.err"), "w")
        self.procs[name] = subprocess.Popen(["ip", "netns", "exec", ns or self.ep, *cmd],
                                            stdout=out, stderr=err, start_new_session=True)

    def stop(self, name, sig=signal.SIGINT):
        p = self.procs.pop(name)
        if p.poll() is None:
            os.killpg(p.pid, sig)
        return p.wait(timeout=10)

    def read(self, name, stream):
        with open(os.path.join(self.work, f"{name}.{stream}")) as f:
            return f.read()

    def start_decap(self, overrides=True):
        cmd = [self.decap, "--interface", "e0", "--mode", self.mode, "--stats-interval-s", "0"]
        for a in ALLOW:
            cmd += ["--allow", a]
        for o in OVERRIDES if overrides else []:
            cmd += ["--port-override", o]
        self.start("decap", cmd)
        # the last step
        attached = f'msg="attached the {"reply" if overrides else "XDP"} program" interface=e0 '
        wait_for("onramp-decap to attach", lambda: attached in self.read("decap", "err")
                 or self.procs["decap"].poll() is not None, timeout=5.0)
        check(self.procs["decap"].poll() is None,
              f"onramp-decap exited: {self.read('decap', 'err').strip()}")
        log(self.read("decap", "err").strip())

    def start_servers(self):
        self.server_log = os.path.join(self.work, "servers.log")
        self.start("servers", ["/usr/bin/python3", "-c", SERVERS, self.server_log])
        wait_for("the servers", lambda: os.path.exists(self.server_log)
                 and "ready" in open(self.server_log).read(), timeout=5.0)

    def stats(self):
        r = run(["ip", "netns", "exec", self.ep, self.decap, "--interface", "e0", "--stats"])
        return parse_counters(r.stdout.strip().splitlines()[-1])

    # --- the PoP side (this process, moved into the pop namespace) ----------
    def enter_pop(self):
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{self.pop}", os.O_RDONLY)
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise Failure(f"setns into {self.pop}: {os.strerror(ctypes.get_errno())}")
        os.close(fd)
        from scapy.all import AsyncSniffer, conf
        conf.verb = 0
        self.sniffer = AsyncSniffer(iface="p0", store=False, prn=self.sniffed.append)
        self.sniffer.start()
        time.sleep(0.5)  # the sniffer's socket is open before anything is sent

    def send(self, frame):
        from scapy.all import sendp
        sendp(frame, iface="p0")

    def ether(self, v6=False):
        from scapy.all import Ether
        return Ether(src=self.pop_mac, dst=self.ep_mac, type=0x86DD if v6 else 0x0800)

    def wait_sniffed(self, what, match, timeout=3.0):
        return wait_for(what, lambda: next((p for p in list(self.sniffed) if match(p)), None),
                        timeout)

    def none_sniffed(self, match, seconds=1.5):
        time.sleep(seconds)
        return not any(match(p) for p in list(self.sniffed))


def syn_ack_from(vip, client, sport, v6=False):
    from scapy.all import IP, IPv6, TCP
    L3 = IPv6 if v6 else IP

    def match(p):
        return (L3 in p and TCP in p and p[L3].src == vip and p[L3].dst == client
                and p[TCP].sport == TCP_PORT and p[TCP].dport == sport
                and (int(p[TCP].flags) & 0x12) == 0x12)
    return match


def run_cases(bed):
    from scapy.all import IP, IPv6, TCP, UDP, Raw
    expected = dict(decap_ipip_v4=0, decap_ipip_v6=0, decap_gue_v4=0, decap_gue_v6=0,
                    not_allowed=0, outer_fragment=0, malformed=0)
    before = bed.stats()
    outer = IP(src=POP_V4, dst=EP_V4)
    outer6 = IPv6(src=POP_V6, dst=EP_V6)

    def syn(sport, v6=False):
        if v6:
            return IPv6(src=CLIENT_V6, dst=VIP_V6) / TCP(sport=sport, dport=TCP_PORT, flags="S")
        return IP(src=CLIENT_V4, dst=VIP_V4) / TCP(sport=sport, dport=TCP_PORT, flags="S")

    log("1. IPIP TCP SYN -> SYN-ACK from the VIP to the client")
    bed.send(bed.ether() / outer / syn(40001))
    bed.wait_sniffed("the SYN-ACK of the IPIP SYN", syn_ack_from(VIP_V4, CLIENT_V4, 40001))
    expected["decap_ipip_v4"] += 1

    log("2. GUE TCP SYN -> SYN-ACK from the VIP to the client")
    bed.send(bed.ether() / outer / UDP(sport=51234, dport=GUE_PORT) / syn(40002))
    bed.wait_sniffed("the SYN-ACK of the GUE SYN", syn_ack_from(VIP_V4, CLIENT_V4, 40002))
    expected["decap_gue_v4"] += 1

    log("3. IPIP UDP datagram -> the server sees the client's address")
    bed.send(bed.ether() / outer / IP(src=CLIENT_V4, dst=VIP_V4) /
             UDP(sport=40003, dport=UDP_PORT) / Raw(b"hello-ipip"))
    line = wait_for("the UDP server to log the datagram",
                    lambda: next((l for l in open(bed.server_log).read().splitlines()
                                  if l.endswith("hello-ipip")), None), timeout=5.0)
    check(line.split()[0] == CLIENT_V4 and line.split()[1] == "40003",
          f"the UDP server saw {line!r}, not {CLIENT_V4} 40003")
    bed.wait_sniffed("the UDP answer from the VIP", lambda p: UDP in p and IP in p
                     and p[IP].src == VIP_V4 and p[IP].dst == CLIENT_V4
                     and p[UDP].sport == UDP_PORT and p[UDP].dport == 40003)
    expected["decap_ipip_v4"] += 1

    log("4. tunnel packets from a source outside the allow list: not delivered")
    stranger = IP(src=STRANGER, dst=EP_V4)
    bed.send(bed.ether() / stranger / syn(40004))
    bed.send(bed.ether() / stranger / UDP(sport=51235, dport=GUE_PORT) / syn(40005))
    check(bed.none_sniffed(lambda p: TCP in p and p[TCP].dport in (40004, 40005)),
          "a SYN-ACK answered a tunnel packet from a source outside the allow list")
    expected["not_allowed"] += 2

    log("5. malformed tunnel packets and an outer fragment: counted, nothing breaks")
    inner = bytes(syn(40006))
    # the outer header announces 10 bytes: an inner IPv4 header cut short
    bed.send(bed.ether() / IP(src=POP_V4, dst=EP_V4, proto=4) / Raw(inner[:10]))
    # IPIP protocol 4 (IPv4 inside) carrying an IPv6 packet
    bed.send(bed.ether() / IP(src=POP_V4, dst=EP_V4, proto=4) / syn(40007, v6=True))
    # GUE whose UDP length runs past the IP packet
    bed.send(bed.ether() / outer / UDP(sport=51236, dport=GUE_PORT, len=400) / Raw(inner))
    # a frame shorter than its outer header's total length
    bed.send(bed.ether() / Raw(bytes(IP(src=POP_V4, dst=EP_V4, proto=4, len=600) /
                                     Raw(inner))))
    expected["malformed"] += 4
    bed.send(bed.ether() / IP(src=POP_V4, dst=EP_V4, proto=4, flags="MF") / Raw(inner))
    expected["outer_fragment"] += 1
    check(bed.none_sniffed(lambda p: TCP in p and p[TCP].dport in (40006, 40007), 1.0),
          "a malformed tunnel packet was answered")
    check(bed.procs["decap"].poll() is None, "onramp-decap died on malformed packets")
    bed.send(bed.ether() / outer / syn(40008))
    bed.wait_sniffed("the SYN-ACK after the malformed packets",
                     syn_ack_from(VIP_V4, CLIENT_V4, 40008))
    expected["decap_ipip_v4"] += 1

    log("6. IPv6: 4in6, 6in6 and GUE over IPv6")
    bed.send(bed.ether(v6=True) / outer6 / syn(40009))
    bed.wait_sniffed("the SYN-ACK of the 4in6 SYN", syn_ack_from(VIP_V4, CLIENT_V4, 40009))
    bed.send(bed.ether(v6=True) / outer6 / syn(40010, v6=True))
    bed.wait_sniffed("the SYN-ACK of the 6in6 SYN",
                     syn_ack_from(VIP_V6, CLIENT_V6, 40010, v6=True))
    expected["decap_ipip_v6"] += 2
    bed.send(bed.ether(v6=True) / outer6 / UDP(sport=51237, dport=GUE_PORT) /
             syn(40011, v6=True))
    bed.wait_sniffed("the SYN-ACK of the GUE-over-IPv6 SYN",
                     syn_ack_from(VIP_V6, CLIENT_V6, 40011, v6=True))
    expected["decap_gue_v6"] += 1

    log("7. the counters")
    after = bed.stats()
    for name, want in expected.items():
        got = after[name] - before[name]
        check(got == want, f"counter {name}: {got} since the start, expected {want} "
              f"(all: {after})")
    # ARP/ND and the client-less replies are not tunnel packets
    check(after["not_encapsulated"] > before["not_encapsulated"],
          "not_encapsulated did not count the ARP/ND traffic")
    log(f"   {after}")
    return after


def restart_cases(bed):
    """A second instance is refused; one killed with SIGKILL leaves its program
    attached (still decapsulating), and the next start replaces it."""
    from scapy.all import IP, TCP
    log("9. a second instance on the same interface is refused")
    bed.start_decap()
    r = run(["ip", "netns", "exec", bed.ep, bed.decap, "--interface", "e0", "--allow",
            ALLOW[0]], check=False, merge_stderr=True)
    check(r.returncode == 1 and "already runs on e0" in r.stdout,
          f"a second onramp-decap: exit {r.returncode}, {r.stdout.strip()!r}")
    log("10. SIGKILL leaves the program attached; the next start replaces it")
    bed.stop("decap", signal.SIGKILL)
    link = run(["ip", "-n", bed.ep, "link", "show", "e0"]).stdout
    check("onramp_decap" in link, f"no program left after SIGKILL: {link}")
    bed.start_decap()
    check("replaced program id" in bed.read("decap", "err")
          and "in one step" in bed.read("decap", "err"),
          f"the leftover was not replaced: {bed.read('decap', 'err')}")
    check("replaced reply program id" in bed.read("decap", "err"),
          f"the leftover reply program was not replaced: {bed.read('decap', 'err')}")
    bed.send(bed.ether() / IP(src=POP_V4, dst=EP_V4) /
             IP(src=CLIENT_V4, dst=VIP_V4) / TCP(sport=40020, dport=TCP_PORT, flags="S"))
    bed.wait_sniffed("the SYN-ACK after the restart", syn_ack_from(VIP_V4, CLIENT_V4, 40020))
    check(bed.stats()["decap_ipip_v4"] == 1, "the new instance did not count from zero")
    rc = bed.stop("decap", signal.SIGTERM)
    check(rc == 0, f"onramp-decap exited {rc} on SIGTERM: {bed.read('decap', 'err')}")
    link = run(["ip", "-n", bed.ep, "link", "show", "e0"]).stdout
    check("xdp" not in link, f"the XDP program is still attached after SIGTERM: {link}")
    # The clsact qdisc the killed instance made is not this one's to remove.
    check_no_reply_program(bed, "SIGTERM", qdisc=False)
    log("10b. a reply program left by a killed instance goes when the next runs without "
        "port overrides (it would go on rewriting)")
    bed.start_decap()
    bed.stop("decap", signal.SIGKILL)
    bed.start_decap(overrides=False)
    check("removed reply program id" in bed.read("decap", "err"),
          f"the leftover reply program was not removed: {bed.read('decap', 'err')}")
    check_no_reply_program(bed, "a start without port overrides", qdisc=False)
    rc = bed.stop("decap", signal.SIGTERM)
    check(rc == 0, f"onramp-decap exited {rc} on SIGTERM: {bed.read('decap', 'err')}")


def check_no_reply_program(bed, after, qdisc=True):
    filters = run(["tc", "-n", bed.ep, "filter", "show", "dev", "e0", "egress"],
                  check=False, merge_stderr=True).stdout
    check("onramp_reply" not in filters,
          f"the TC egress program is still attached after {after}: {filters}")
    if not qdisc:
        return
    qdiscs = run(["tc", "-n", bed.ep, "qdisc", "show", "dev", "e0"]).stdout
    check("clsact" not in qdiscs, f"the clsact qdisc onramp-decap added is left: {qdiscs}")


def valid_l4_checksum(p):
    """Recomputes the TCP/UDP checksum of a sniffed packet (scapy)."""
    from scapy.all import IP, IPv6, TCP, UDP
    L3 = IPv6 if IPv6 in p else IP
    L4 = TCP if TCP in p else UDP
    copy = p[L3].copy()
    sent = copy[L4].chksum
    del copy[L4].chksum
    return L3(bytes(copy))[L4].chksum == sent


def port_override_cases(bed):
    """Case 11: curl through the port override, then UDP."""
    from scapy.all import IP, IPv6, TCP, UDP, Raw
    log("11. port overrides: curl VIP:443 from a client, the server listens on 8443 only")
    before = bed.stats()
    # The client: its own namespace, its gateway in the PoP namespace. The
    # PoP forwards the endpoint's direct replies to it and drops (blackhole,
    # no ICMP) what is for the VIPs: the relay tunnels that instead.
    run(["ip", "netns", "add", bed.client])
    run(["ip", "link", "add", "c0", "netns", bed.client, "type", "veth", "peer", "name", "c1",
         "netns", bed.pop])
    C, P, E = ["ip", "-n", bed.client], ["ip", "-n", bed.pop], ["ip", "-n", bed.ep]
    run([*C, "addr", "add", f"{CLIENT_V4}/24", "dev", "c0"])
    run([*C, "addr", "add", f"{CLIENT_V6}/64", "dev", "c0", "nodad"])
    run([*P, "addr", "add", f"{CLIENT_GW_V4}/24", "dev", "c1"])
    run([*P, "addr", "add", f"{CLIENT_GW_V6}/64", "dev", "c1", "nodad"])
    # The tunnel adds up to 48 bytes on the PoP-endpoint link (MTU 1500).
    run([*C, "link", "set", "c0", "mtu", "1400"])
    for ns, dev in ((C, "lo"), (C, "c0"), (P, "c1")):
        run([*ns, "link", "set", dev, "up"])
    run([*C, "route", "add", "default", "via", CLIENT_GW_V4])
    run([*C, "-6", "route", "add", "default", "via", CLIENT_GW_V6])
    run([*P, "route", "add", "blackhole", f"{VIP_V4}/32"])
    run([*P, "-6", "route", "add", "blackhole", f"{VIP_V6}/128"])
    run(["ip", "netns", "exec", bed.pop, "sysctl", "-qw", "net.ipv4.ip_forward=1",
         "net.ipv6.conf.all.forwarding=1", "net.ipv4.conf.all.rp_filter=0",
         "net.ipv4.conf.p0.rp_filter=0"])
    # Full checksums on the wire, as from a NIC: the client's kernel then
    # verifies what the reply program wrote, the relay reads whole sums.
    run(["ip", "netns", "exec", bed.client, "ethtool", "-K", "c0", "tx", "off"])
    run(["ip", "netns", "exec", bed.ep, "ethtool", "-K", "e0", "tx", "off"])
    bed.start("relay", ["/usr/bin/python3", "-c", RELAY, "c1", "p0", bed.ep_mac, bed.pop_mac],
              ns=bed.pop)
    wait_for("the relay", lambda: "ready" in bed.read("relay", "out")
             or bed.procs["relay"].poll() is not None, timeout=5.0)
    check(bed.procs["relay"].poll() is None, f"the relay exited: {bed.read('relay', 'err')}")

    site = os.path.join(bed.work, "site")
    os.mkdir(site)
    with open(os.path.join(site, "index.html"), "w") as f:
        f.write(PAGE)
    bed.start("http", ["/usr/bin/python3", "-m", "http.server", str(HTTP_ENDPOINT), "--bind", "::",
                       "--directory", site])
    listening = lambda: run(["ip", "netns", "exec", bed.ep, "ss", "-Htln"]).stdout
    wait_for("the HTTP server", lambda: f":{HTTP_ENDPOINT} " in listening(), timeout=5.0)
    check(f":{HTTPS_LISTENER} " not in listening(),
          f"something listens on {HTTPS_LISTENER} on the endpoint: {listening()}")

    for vip, flag in ((VIP_V4, "-4"), (f"[{VIP_V6}]", "-6")):
        url = f"http://{vip}:{HTTPS_LISTENER}/index.html"
        r = run(["ip", "netns", "exec", bed.client, "curl", "-sS", flag, "-m", "5", url],
                check=False, merge_stderr=True)
        check(r.returncode == 0 and r.stdout == PAGE,
              f"curl {url}: exit {r.returncode}, {r.stdout!r}")
        log(f"   curl {url}: {r.stdout.strip()!r}")
    served = bed.read("http", "err")
    for client in (CLIENT_V4, CLIENT_V6):
        check(f"{client} - - " in served or f"::ffff:{client} - - " in served,
              f"the HTTP server did not see {client}: {served!r}")

    def tcp_from(vip, sport, v6):
        L3 = IPv6 if v6 else IP
        return lambda p: (L3 in p and TCP in p and p[L3].src == vip and p[TCP].sport == sport)
    for vip, v6 in ((VIP_V4, False), (VIP_V6, True)):
        seen = [p for p in list(bed.sniffed) if tcp_from(vip, HTTPS_LISTENER, v6)(p)]
        check(seen, f"no reply from {vip}:{HTTPS_LISTENER} on the wire")
        check(all(valid_l4_checksum(p) for p in seen),
              f"a reply from {vip}:{HTTPS_LISTENER} has a bad checksum")
        check(not any(tcp_from(vip, HTTP_ENDPOINT, v6)(p) for p in list(bed.sniffed)),
              f"a reply left from {vip}:{HTTP_ENDPOINT}, the endpoint port")

    log("   UDP to VIP:5353 reaches the server on 5301, its answer leaves from 5353")
    bed.send(bed.ether() / IP(src=POP_V4, dst=EP_V4) / IP(src=CLIENT_V4, dst=VIP_V4) /
             UDP(sport=40030, dport=UDP_LISTENER) / Raw(b"hello-override"))
    line = wait_for("the UDP server to log the overridden datagram",
                    lambda: next((l for l in open(bed.server_log).read().splitlines()
                                  if l.endswith("hello-override")), None), timeout=5.0)
    check(line.split()[:2] == [CLIENT_V4, "40030"], f"the UDP server saw {line!r}")
    answer = bed.wait_sniffed("the UDP answer from VIP:5353", lambda p: UDP in p and IP in p
                              and p[IP].src == VIP_V4 and p[UDP].dport == 40030)
    check(answer[UDP].sport == UDP_LISTENER,
          f"the UDP answer left from port {answer[UDP].sport}, not {UDP_LISTENER}")
    check(valid_l4_checksum(answer), "the UDP answer's checksum does not verify")

    after = bed.stats()
    moved_in = after["port_rewritten_in"] - before["port_rewritten_in"]
    moved_out = after["port_rewritten_out"] - before["port_rewritten_out"]
    # Each curl: at least SYN, ACK, request; SYN-ACK, response. Plus the UDP pair.
    check(moved_in >= 2 * 3 + 1 and moved_out >= 2 * 2 + 1,
          f"port_rewritten_in moved by {moved_in}, port_rewritten_out by {moved_out}")
    log(f"   port_rewritten_in +{moved_in}, port_rewritten_out +{moved_out}")
    bed.stop("http", signal.SIGTERM)
    bed.stop("relay", signal.SIGTERM)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--decap", required=True)
    ap.add_argument("--mode", default="auto", choices=["auto", "native", "generic"])
    args = ap.parse_args()
    bed = None
    try:
        if os.geteuid() != 0:
            raise Skip(f"needs root (network namespaces, veth, XDP); running as uid "
                       f"{os.geteuid()}")
        try:
            import scapy.all  # noqa: F401
        except ImportError:
            raise Skip(f"scapy is not importable by {sys.executable} "
                       "(apt-get install python3-scapy)")
        if not os.access(args.decap, os.X_OK):
            raise Failure(f"{args.decap} is not an executable: build first")
        with tempfile.TemporaryDirectory(prefix="onramp-decap-test-") as work:
            bed = Bed(os.path.abspath(args.decap), args.mode, work)
            try:
                bed.up()
                bed.start_servers()
                bed.start_decap()
                if bed.mode == "generic":
                    check(" mode=generic " in bed.read("decap", "err"), "not in generic mode")
                bed.enter_pop()
                counters = run_cases(bed)
                port_override_cases(bed)
                counters = bed.stats()
                log("8. SIGINT: the exit line, then the program is detached")
                rc = bed.stop("decap")
                check(rc == 0, f"onramp-decap exited {rc}: {bed.read('decap', 'err')}")
                lines = bed.read("decap", "out").strip().splitlines()
                check(lines, "onramp-decap printed no counters on exit")
                final = parse_counters(lines[-1])
                for name in ("decap_ipip_v4", "decap_gue_v4", "decap_ipip_v6", "decap_gue_v6",
                             "not_allowed", "malformed", "outer_fragment", "port_rewritten_in",
                             "port_rewritten_out"):
                    check(final[name] == counters[name],
                          f"exit line {name}={final[name]}, --stats said {counters[name]}")
                link = run(["ip", "-n", bed.ep, "link", "show", "e0"]).stdout
                check("xdp" not in link, f"the XDP program is still attached: {link}")
                check_no_reply_program(bed, "SIGINT")
                restart_cases(bed)
            finally:
                bed.down()
    except Skip as e:
        log(f"SKIP: {e}")
        return SKIP
    except Failure as e:
        log(f"FAIL: {e}")
        return 1
    log("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
