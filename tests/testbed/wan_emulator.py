#!/usr/bin/python3
"""A user-space WAN delay emulator for the test bed (this kernel has no netem).

It bridges pairs of interfaces at layer 2 with raw packet sockets and holds
each frame for a one-way delay chosen by the far end's address: frames from
side A to side B are delayed by their IP source, frames from B to A by their
IP destination. So one link between the core router and a region can give
FRA1 a short path to the region and SIN1 a long one, as the real Internet
would.

The configuration is a JSON file, read again whenever it changes, so a test
can change the latency matrix while traffic flows:

  {"links": [{"a": "w-eu-r", "b": "w-eu-b",
              "delays_ms": {"198.51.100.2/32": 2, "198.51.100.18/32": 40},
              "default_ms": 0}]}

IPv6 prefixes ("2001:db8:100:1::2/128") work alike. Frames that are not IP
(ARP), neighbour discovery and addresses that match no prefix take
`default_ms`. A link with "blackhole": true drops every frame, both ways (a
cut WAN link, for the chaos suite). "drops": a list of prefixes drops only
the frames whose far end (as for the delay) is in one of them, both ways:
the backbone between two PoPs cut while each keeps its other paths.
Counters (frames and bytes per link and direction, frames refused by the
kernel, frames dropped by a blackhole or a drop) are printed on SIGUSR1 and
at exit.

usage: wan_emulator.py CONFIG.json
"""
import heapq
import ipaddress
import json
import os
import select
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
RELOAD_CHECK_S = 0.1


def raw_socket(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    s.setblocking(False)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    return s


def ip_addresses(frame):
    """(source, destination) of an untagged or single-tagged IP frame, else None."""
    off, ethertype = 14, struct.unpack_from("!H", frame, 12)[0] if len(frame) >= 14 else 0
    if ethertype == 0x8100 and len(frame) >= 18:
        off, ethertype = 18, struct.unpack_from("!H", frame, 16)[0]
    if ethertype == 0x0800 and len(frame) >= off + 20:
        return (ipaddress.IPv4Address(frame[off + 12:off + 16]),
                ipaddress.IPv4Address(frame[off + 16:off + 20]))
    if ethertype == 0x86DD and len(frame) >= off + 40:
        return (ipaddress.IPv6Address(frame[off + 8:off + 24]),
                ipaddress.IPv6Address(frame[off + 24:off + 40]))
    return None


class Link:
    def __init__(self, spec):
        self.a, self.b = spec["a"], spec["b"]
        self.sock = {self.a: raw_socket(self.a), self.b: raw_socket(self.b)}
        self.counters = {(self.a, self.b): [0, 0], (self.b, self.a): [0, 0]}
        self.refused = 0
        self.blackholed = 0
        self.configure(spec)

    def configure(self, spec):
        # Longest prefix first, so a /32 overrides its /24.
        self.delays = sorted(((ipaddress.ip_network(p), float(ms) / 1000.0)
                              for p, ms in spec.get("delays_ms", {}).items()),
                             key=lambda e: -e[0].prefixlen)
        self.default = float(spec.get("default_ms", 0)) / 1000.0
        self.blackhole = bool(spec.get("blackhole", False))
        self.drops = [ipaddress.ip_network(p) for p in spec.get("drops", [])]

    def delay(self, frame, from_a):
        """The frame's delay in seconds, or None when it is dropped."""
        addrs = ip_addresses(frame)
        if addrs is None:
            return self.default
        far = addrs[0] if from_a else addrs[1]
        if any(far.version == net.version and far in net for net in self.drops):
            return None
        for net, d in self.delays:
            if far.version == net.version and far in net:
                return d
        return self.default


class Emulator:
    def __init__(self, path):
        self.path = path
        self.mtime = 0.0
        self.links = []
        self.queue = []  # (deadline, sequence, link, out iface, frame)
        self.seq = 0
        self.load(first=True)
        self.by_fd = {}
        for link in self.links:
            for iface, s in link.sock.items():
                self.by_fd[s.fileno()] = (link, iface)

    def load(self, first=False):
        try:
            mtime = os.stat(self.path).st_mtime
            if mtime == self.mtime:
                return
            with open(self.path) as f:
                cfg = json.load(f)
        except (OSError, ValueError) as e:
            if first:
                sys.exit(f"wan_emulator: cannot read {self.path}: {e}")
            print(f"wan_emulator: keeping the last configuration: {e}", flush=True)
            return
        self.mtime = mtime
        if first:
            self.links = [Link(spec) for spec in cfg["links"]]
        else:
            by_pair = {(l.a, l.b): l for l in self.links}
            for spec in cfg["links"]:
                link = by_pair.get((spec["a"], spec["b"]))
                if link:
                    link.configure(spec)
            print("wan_emulator: configuration reloaded", flush=True)

    def receive(self, fd, now):
        link, iface = self.by_fd[fd]
        s = link.sock[iface]
        from_a = iface == link.a
        out = link.b if from_a else link.a
        for _ in range(64):
            try:
                frame, addr = s.recvfrom(65535)
            except BlockingIOError:
                return
            if addr[2] == PACKET_OUTGOING:
                continue  # our own transmissions, seen again on the way out
            delay = None if link.blackhole else link.delay(frame, from_a)
            if delay is None:
                link.blackholed += 1
                continue
            c = link.counters[(iface, out)]
            c[0] += 1
            c[1] += len(frame)
            heapq.heappush(self.queue, (now + delay, self.seq, link, out, frame))
            self.seq += 1

    def transmit(self, now):
        while self.queue and self.queue[0][0] <= now:
            _, _, link, out, frame = heapq.heappop(self.queue)
            try:
                link.sock[out].send(frame)
            except OSError:
                link.refused += 1

    def report(self, *_):
        for link in self.links:
            for (src, dst), (frames, octets) in link.counters.items():
                print(f"wan_emulator: {src} -> {dst}: {frames} frames, {octets} bytes", flush=True)
            if link.refused:
                print(f"wan_emulator: {link.a}/{link.b}: {link.refused} frames refused", flush=True)
            if link.blackholed:
                print(f"wan_emulator: {link.a}/{link.b}: {link.blackholed} frames dropped "
                      "(blackhole or drops)", flush=True)

    def run(self):
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
        signal.signal(signal.SIGINT, lambda *_: stop.append(1))
        signal.signal(signal.SIGUSR1, self.report)
        poller = select.poll()
        for fd in self.by_fd:
            poller.register(fd, select.POLLIN)
        next_reload = time.monotonic() + RELOAD_CHECK_S
        print("wan_emulator: running", flush=True)
        while not stop:
            now = time.monotonic()
            wait = RELOAD_CHECK_S
            if self.queue:
                wait = min(wait, max(0.0, self.queue[0][0] - now))
            try:
                events = poller.poll(wait * 1000.0)
            except InterruptedError:
                continue
            now = time.monotonic()
            for fd, _ in events:
                self.receive(fd, now)
            self.transmit(time.monotonic())
            if now >= next_reload:
                self.load()
                next_reload = now + RELOAD_CHECK_S
        self.report()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    Emulator(sys.argv[1]).run()
