#!/usr/bin/python3
"""The exception path and neighbour learning with the real onramp-dataplane:
a veth pair between a router namespace and a PoP namespace whose kernel has
NO address on its end of the veth (arp off): the dataplane owns it (net_pcap)
and the PoP's address lives on the exception interface (net_tap), so
everything the kernel says or hears on the link crosses the dataplane.

Checks: the router resolves the PoP's address by ARP through the dataplane; a
ping to the PoP's address is answered; a TCP connection to a port on it works;
the next hop's MAC is learned from the kernel (no next_hop_mac in the table);
a change of the router's MAC announced by a gratuitous ARP is followed in
under a second, and the tunnel packets then go to the new MAC.

Its namespaces are named ox-<pid> and oxr-<pid>; it removes them however it
ends. Exit status 77 (skip) without root, /dev/net/tun or ethtool.

usage: exception_test.py --dataplane PATH --ctl PATH
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from harness import SKIP, log, run

POP_ADDR = "10.99.0.2"
ROUTER_ADDR = "10.99.0.1"
ROUTER_MAC = "02:00:00:00:00:01"
ROUTER_NEW_MAC = "02:00:00:00:00:99"
POP_PORT_MAC = "02:00:00:00:00:0b"
VIP = "203.0.113.10"
ENDPOINT = "198.51.100.1"
TCP_PORT = 7000

TABLE = f"""
pop: "OX1"
tunnel_source {{ ipv4: "192.0.2.1" }}
listeners {{ name: "web" vips: "{VIP}" protocol: TCP port_ranges {{ first: 80 }}
  endpoints {{ address: "{ENDPOINT}" weight: 100 }} }}
"""

# Run inside a namespace with `python3 -c`: each prints one line of JSON.
PING = r"""
import json, os, socket, struct, sys, time
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(0.5)
ident = os.getpid() & 0xffff
got = 0
for seq in range(3):
    body = struct.pack('!BBHHH', 8, 0, 0, ident, seq) + b'onramp-exception'
    body = body[:2] + struct.pack('!H', csum(body)) + body[4:]
    s.sendto(body, (sys.argv[1], 0))
    end = time.time() + 1
    while time.time() < end:
        try:
            data, _ = s.recvfrom(2048)
        except socket.timeout:
            break
        icmp = data[(data[0] & 15) * 4:]
        if icmp[0] == 0 and struct.unpack('!HH', icmp[4:8]) == (ident, seq):
            got += 1
            break
print(json.dumps({"replies": got}))
"""

LISTEN = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(); s.settimeout(20)
print('listening', flush=True)
c, _ = s.accept(); c.sendall(b'hello from the pop'); c.close()
"""

CONNECT = r"""
import json, socket, sys
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print(json.dumps({"said": s.recv(100).decode()}))
"""

GARP = r"""
import socket, struct, sys
ifname, mac, ip = sys.argv[1], bytes.fromhex(sys.argv[2].replace(':', '')), socket.inet_aton(sys.argv[3])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
arp = struct.pack('!HHBBH', 1, 0x0800, 6, 4, 1) + mac + ip + bytes(6) + ip
s.send(b'\xff' * 6 + mac + b'\x08\x06' + arp)
"""

# Captures IPIP frames on an interface while SYNs go to the VIP; prints the
# destination MACs of the tunnel packets seen.
CAPTURE_TUNNEL = r"""
import json, socket, sys, time
ifname, vip = sys.argv[1], sys.argv[2]
cap = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
cap.bind((ifname, 0)); cap.settimeout(0.2)
macs = []
for i in range(5):
    c = socket.socket(); c.setblocking(False)
    try: c.connect((vip, 80))
    except BlockingIOError: pass
    end = time.time() + 0.5
    while time.time() < end:
        try: frame, addr = cap.recvfrom(4096)
        except socket.timeout: continue
        if addr[2] == socket.PACKET_OUTGOING: continue
        if frame[12:14] == b'\x08\x00' and frame[14 + 9] == 4:
            macs.append(':'.join('%02x' % b for b in frame[:6]))
    c.close()
    if macs: break
print(json.dumps({"macs": macs}))
"""


class Skip(Exception):
    pass


class Bed:
    def __init__(self, dataplane, ctl, workdir):
        n = os.getpid()
        self.pop, self.rtr = f"ox-{n}", f"oxr-{n}"
        self.ctl = ctl
        self.workdir = workdir
        self.socket = os.path.join(workdir, "dp.sock")
        self.created = []
        self.dp = None
        self.dp_log = os.path.join(workdir, "dataplane.log")
        for ns in (self.pop, self.rtr):
            r = run(["ip", "netns", "add", ns], check=False, merge_stderr=True)
            if r.returncode != 0:
                raise Skip(f"cannot create network namespaces here: {r.stdout.strip()}")
            self.created.append(ns)
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            # IPv4 only: nothing but the test's traffic (and ARP) on the link.
            run(["ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                 "net.ipv6.conf.default.disable_ipv6=1"])
        run(["ip", "-n", self.pop, "link", "add", "p0", "address", POP_PORT_MAC, "type", "veth",
             "peer", "name", "r0", "address", ROUTER_MAC, "netns", self.rtr])
        for ns, i in ((self.pop, "p0"), (self.rtr, "r0")):
            # Frames cross a raw socket (net_pcap): no partial checksums.
            run(["ip", "netns", "exec", ns, "ethtool", "-K", i, "tx", "off", "tso", "off", "gso",
                 "off", "gro", "off"], check=False)
            run(["ip", "-n", ns, "link", "set", i, "up"])
        # The PoP's kernel cannot use p0: no address, no ARP.
        run(["ip", "-n", self.pop, "link", "set", "p0", "arp", "off"])
        run(["ip", "-n", self.rtr, "addr", "add", f"{ROUTER_ADDR}/24", "dev", "r0"])
        run(["ip", "-n", self.rtr, "route", "add", f"{VIP}/32", "via", POP_ADDR])
        table = os.path.join(workdir, "table.textproto")
        with open(table, "w") as f:
            f.write(TABLE)
        cmd = ["ip", "netns", "exec", self.pop, dataplane, "--no-pci", "--no-huge", "-m", "256",
               "--no-shconf", "--no-telemetry", f"--file-prefix=ox-{n}", "-l", "0,1",
               "--log-level=warning",
               "--vdev=net_pcap0,rx_iface_in=p0,tx_iface=p0,tx_iface=p0,phy_mac=1", "--",
               "--table", table, "--api-socket", self.socket,
               "--exception-vdev", "net_tap0,iface=onramp0"]
        log("$ " + " ".join(cmd))
        self.dp_out = open(self.dp_log, "w")
        self.dp = subprocess.Popen(cmd, stdout=self.dp_out, stderr=subprocess.STDOUT)
        self.wait(lambda: "exception path started" in self.dp_output(), "the exception path")
        self.wait(lambda: os.path.exists(self.socket), "the dataplane's socket")
        # The PoP's address and its route live on the exception interface.
        run(["ip", "netns", "exec", self.pop, "ethtool", "-K", "onramp0", "tx", "off", "tso",
             "off", "gso", "off"], check=False)
        run(["ip", "-n", self.pop, "link", "set", "onramp0", "up"])
        run(["ip", "-n", self.pop, "addr", "add", f"{POP_ADDR}/24", "dev", "onramp0"])
        run(["ip", "-n", self.pop, "route", "add", "default", "via", ROUTER_ADDR])

    def dp_output(self):
        with open(self.dp_log) as f:
            return f.read()

    def wait(self, cond, what, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if cond():
                return
            if self.dp and self.dp.poll() is not None:
                raise AssertionError(f"dataplane exited ({self.dp.returncode}) waiting for "
                                     f"{what}:\n{self.dp_output()}")
            time.sleep(0.05)
        raise AssertionError(f"no {what} after {timeout} s:\n{self.dp_output()}")

    def py(self, ns, code, *args, timeout=20):
        r = run(["ip", "netns", "exec", ns, sys.executable, "-c", code, *args], timeout=timeout)
        return json.loads(r.stdout.strip().splitlines()[-1])

    def stats(self):
        r = run([self.ctl, "dataplane", "stats", "--socket", self.socket, "-o", "json"])
        return json.loads(r.stdout)

    def remove(self):
        if self.dp and self.dp.poll() is None:
            self.dp.send_signal(signal.SIGTERM)
            try:
                self.dp.wait(10)
            except subprocess.TimeoutExpired:
                self.dp.kill()
                self.dp.wait()
        for ns in reversed(self.created):
            run(["ip", "netns", "del", ns], check=False)
        self.created = []


def test(bed):
    s = bed.stats()
    log(f"next hop at start: {s.get('next_hop')}")
    # The kernel was nudged to resolve its gateway: ARP out through the
    # dataplane, the router's reply back in through it.
    bed.wait(lambda: bed.stats().get("next_hop", {}).get("source") == "learned",
             "learned next hop", timeout=5)
    nh = bed.stats()["next_hop"]
    assert nh["mac"] == ROUTER_MAC and nh["address"] == ROUTER_ADDR, nh

    ping = bed.py(bed.rtr, PING, POP_ADDR)
    assert ping["replies"] >= 2, f"ping to the PoP's address: {ping}"
    neigh = run(["ip", "-n", bed.rtr, "neigh", "show", POP_ADDR]).stdout
    log(f"router's neighbour entry: {neigh.strip()}")
    assert "lladdr" in neigh, "the router did not resolve the PoP's address by ARP"

    listener = subprocess.Popen(["ip", "netns", "exec", bed.pop, sys.executable, "-c", LISTEN,
                                 POP_ADDR, str(TCP_PORT)], stdout=subprocess.PIPE, text=True)
    try:
        assert listener.stdout.readline().strip() == "listening"
        said = bed.py(bed.rtr, CONNECT, POP_ADDR, str(TCP_PORT))
        assert said["said"] == "hello from the pop", said
    finally:
        listener.kill()
        listener.wait()

    tunnel = bed.py(bed.rtr, CAPTURE_TUNNEL, "r0", VIP)
    assert tunnel["macs"] and set(tunnel["macs"]) == {ROUTER_MAC}, tunnel

    # The gateway's MAC changes (a new router, a VRRP failover) and is announced.
    run(["ip", "-n", bed.rtr, "link", "set", "r0", "address", ROUTER_NEW_MAC])
    start = time.monotonic()
    bed.py(bed.rtr, GARP + "\nimport json; print(json.dumps({}))", "r0", ROUTER_NEW_MAC,
           ROUTER_ADDR)
    bed.wait(lambda: bed.stats()["next_hop"].get("mac") == ROUTER_NEW_MAC, "new MAC", timeout=3)
    followed = time.monotonic() - start
    log(f"the new MAC was in force {followed * 1000:.0f} ms after the gratuitous ARP")
    assert followed < 1.0, f"new MAC followed in {followed:.2f} s"
    tunnel = bed.py(bed.rtr, CAPTURE_TUNNEL, "r0", VIP)
    assert tunnel["macs"] and set(tunnel["macs"]) == {ROUTER_NEW_MAC}, tunnel

    s = bed.stats()
    log("counters: " + json.dumps({k: s[k] for k in (
        "rx_packets", "forwarded", "to_exception", "to_kernel", "from_kernel", "dropped",
        "next_hop")}))
    assert int(s["to_kernel"]) > 0 and int(s["from_kernel"]) > 0, s
    assert int(s["drops"]["exception_ring_full"]) == 0, s
    assert int(s["rx_packets"]) == (int(s["forwarded"]) + int(s["echo_replies"]) +
                                    int(s["icmp_too_big_sent"]) + int(s["to_exception"]) +
                                    int(s["dropped"])), "the books do not balance"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dataplane", required=True)
    ap.add_argument("--ctl", required=True)
    args = ap.parse_args()
    try:
        if os.geteuid() != 0:
            raise Skip("needs root (network namespaces, a tap device)")
        if not os.path.exists("/dev/net/tun"):
            raise Skip("no /dev/net/tun: net_tap cannot run")
        if not shutil.which("ethtool"):
            raise Skip("no ethtool")
    except Skip as e:
        print(f"SKIP: {e}", flush=True)
        return SKIP
    workdir = tempfile.mkdtemp(prefix="onramp-exception-")
    bed = None
    try:
        bed = Bed(args.dataplane, args.ctl, workdir)
        test(bed)
        print("PASS exception path", flush=True)
        return 0
    except Skip as e:
        print(f"SKIP: {e}", flush=True)
        return SKIP
    except Exception:
        if bed:
            print("--- dataplane log ---\n" + bed.dp_output(), flush=True)
        raise
    finally:
        if bed:
            bed.remove()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
