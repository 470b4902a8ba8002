#!/usr/bin/python3
"""The two-PoP test bed: network namespaces, real onramp processes, a BIRD
peer and a user-space WAN, on one machine (docs/testbed.md has the picture).

Dual-stack: every address below has an IPv6 twin (2001:db8::/32), the
accelerator has an IPv4 and an IPv6 VIP, BGP runs for both families, and
each endpoint group holds both addresses of each endpoint.

  client   192.0.2.10    Europe: reaches the VIPs through the router's BGP
           2001:db8:c1::10  routes (FRA1 preferred, SIN1 as backup)
  client2  192.0.2.138   Asia: the router sends its VIP traffic to SIN1
           2001:db8:c2::10
  router   the Internet core: BIRD (AS 64500) peering with both PoPs,
           onramp-controller (PoP API on 198.51.100.1/.17:7444, admin and
           status page on its loopback), IP forwarding between everything
  fra1     FRA1: onramp-dataplane (net_pcap on p0), onramp-agent, BIRD
  sin1     SIN1: the same
  wan      the WAN emulator between the router and each region, and the
           regions' bridges
  eu1 eu2  eu-central endpoints (IPIP); ap1 ap2 ap-southeast (GUE): VIP on
           the loopback, onramp-decap on e0, endpoint_server.py

One-way WAN delays (ms): FRA1 and the European client are 2 from
eu-central and 30 from ap-southeast; SIN1 and the Asian client the reverse.

With --ha (at `up`; later commands read it from the bed's state): three
controller replicas A, B, C in the router namespace on a 3-member etcd
cluster there (tests/lib/etcd_cluster.py, members on the router's
loopback), instead of one controller on SQLite; replica A on the ports
above, B and C on the next ones (REPLICAS); every agent and onrampctl given
all three. Components: controller-A..C, etcd-m0..m2.

--bare-metal: each PoP's kernel cannot use p0 (no address, arp off, IPv6
off on it), as with a NIC bound to vfio-pci: the dataplane owns it, the
PoP's addresses live on its exception interface (net_tap onramp0), BIRD,
the agent and its probes reach the router through the dataplane, and the
agent gets no --next-hop-mac (the dataplane learns it).

--af-xdp: each PoP's dataplane runs on net_af_xdp on p0 (one queue) with
onramp's XDP steering program from the build folder (--xdp-program): VIP
traffic goes to the dataplane's socket, everything else (ARP, ND, BGP, the
agent's probes and mesh echo) to the PoP namespace's kernel, which keeps
p0's addresses, as on a cloud VM's shared NIC.

--relay (at `up`; later commands read it from the bed's state): the relay
bed (docs/testbed.md, "The relay bed"). A third PoP, IAD1 (Ashburn), and
the WAN of RELAY_MS: the continents far apart (75 ms one way), SIN1 next to
ap-southeast (1 ms), IAD1 mediocre to both. Each PoP's link to the router
crosses the WAN emulator too, which delays PoP-to-PoP frames (mesh echo and
relayed GUE alike: the backbone cannot tell them apart) by BACKBONE_MS,
half on each PoP's link. FRA1 to ap-southeast is 150 ms direct but 42 ms
via SIN1; via IAD1 it would be 130 ms, better than direct but not by the
margin, so IAD1 must never be chosen. The accelerator relays (relaying on).

--ecmp: FRA1 is a PoP of two servers (docs/testbed.md "A PoP of two
servers"): fra1 (host fra1-a) and fra1b (host fra1-b, 198.51.100.34 on its
own link to the router), each with its dataplane, agent and BIRD; the
router's BIRD merges their equal routes (`merge paths`) into one multipath
route whose next hop its kernel picks by the L4 hash. Components:
dataplane-fra1b, agent-fra1b, bird-fra1b.

usage: testbed.py up|down|status [--build DIR] [--prefix P] [--ha] [--bare-metal|--af-xdp] [--relay|--ecmp]
       testbed.py ctl ARGS...      onrampctl against the test bed's controller
       testbed.py exec NS CMD...   a command inside one of its namespaces
"""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time

from etcd_cluster import EtcdCluster
from harness import Failure, log, programs, run, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

VIP = "203.0.113.200"
VIP6 = "2001:db8:200::200"
VIPS = {4: VIP, 6: VIP6}
ACCELERATOR = "demo"
# Listeners: name -> (protocol, ports, health check flags)
LISTENERS = {
    "web": ("tcp", "80,7000", ["--health-check", "http", "--health-port", "80",
                               "--health-path", "/health"]),
    "dns": ("udp", "5300", ["--health-check", "udp"]),
}
PROBE_FLAGS = ["--health-interval-ms", "200", "--health-timeout-ms", "180",
               "--healthy-threshold", "3", "--unhealthy-threshold", "3"]
POPS = {
    "FRA1": dict(ns="fra1", addr="198.51.100.2", gw="198.51.100.1", rtr_if="r-fra", asn=64511,
                 addr6="2001:db8:100:1::2", gw6="2001:db8:100:1::1",
                 rtr_mac="02:0b:00:00:01:01", mac="02:0b:00:00:01:02", iata="FRA",
                 city="Frankfurt", country="DE", lat="50.03", lon="8.57", local_pref=200, cpu=0),
    "SIN1": dict(ns="sin1", addr="198.51.100.18", gw="198.51.100.17", rtr_if="r-sin", asn=64512,
                 addr6="2001:db8:100:2::2", gw6="2001:db8:100:2::1",
                 rtr_mac="02:0b:00:00:02:01", mac="02:0b:00:00:02:02", iata="SIN",
                 city="Singapore", country="SG", lat="1.36", lon="103.99", local_pref=100, cpu=1),
}
# --relay: the third PoP. Least preferred by the router's BGP, so no client
# enters by it unless the others withdraw.
RELAY_POPS = {
    "IAD1": dict(ns="iad1", addr="198.51.100.34", gw="198.51.100.33", rtr_if="r-iad", asn=64513,
                 addr6="2001:db8:100:3::2", gw6="2001:db8:100:3::1",
                 rtr_mac="02:0b:00:00:03:01", mac="02:0b:00:00:03:02", iata="IAD",
                 city="Ashburn", country="US", lat="38.94", lon="-77.46", local_pref=50, cpu=0),
}
ALL_POPS = {**POPS, **RELAY_POPS}
CLIENTS = {
    "client": dict(addr="192.0.2.10", gw="192.0.2.1", net="192.0.2.0/25", rtr_if="r-c",
                   addr6="2001:db8:c1::10", gw6="2001:db8:c1::1", net6="2001:db8:c1::/64"),
    "client2": dict(addr="192.0.2.138", gw="192.0.2.129", net="192.0.2.128/25", rtr_if="r-c2",
                    addr6="2001:db8:c2::10", gw6="2001:db8:c2::1", net6="2001:db8:c2::/64"),
}
REGIONS = {
    "eu-central": dict(short="eu", gw="203.0.113.1", mode="ipip",
                       endpoints={"eu1": "203.0.113.11", "eu2": "203.0.113.12"},
                       gw6="2001:db8:300:e::1",
                       endpoints6={"eu1": "2001:db8:300:e::11", "eu2": "2001:db8:300:e::12"}),
    "ap-southeast": dict(short="ap", gw="203.0.113.65", mode="gue",
                         endpoints={"ap1": "203.0.113.75", "ap2": "203.0.113.76"},
                         gw6="2001:db8:300:a::1",
                         endpoints6={"ap1": "2001:db8:300:a::75", "ap2": "2001:db8:300:a::76"}),
}
# One-way delay, ms, between each PoP or client and each region.
NEAR_MS, FAR_MS = 2, 30
NEAR = {"FRA1": "eu-central", "client": "eu-central", "SIN1": "ap-southeast",
        "client2": "ap-southeast"}
# --relay: one-way delay, ms, between each PoP or client and each region
# (the Internet), and between PoPs (the backbone, both ways alike).
RELAY_MS = {
    "FRA1": {"eu-central": 2, "ap-southeast": 75},
    "SIN1": {"eu-central": 75, "ap-southeast": 1},
    "IAD1": {"eu-central": 40, "ap-southeast": 25},
    "client": {"eu-central": 2, "ap-southeast": 75},
    "client2": {"eu-central": 75, "ap-southeast": 1},
}
BACKBONE_MS = {("FRA1", "SIN1"): 20, ("FRA1", "IAD1"): 40, ("SIN1", "IAD1"): 50}
# --relay: an HTTP check across a 150 ms path takes two round trips (connect,
# then the request), longer than PROBE_FLAGS' timeout.
RELAY_PROBE_FLAGS = ["--health-interval-ms", "500", "--health-timeout-ms", "400",
                     "--healthy-threshold", "3", "--unhealthy-threshold", "3"]
ADMIN = "127.0.0.1:7443"
POP_PORT = 7444
# /metrics (docs/observability.md): each agent on its PoP's address with
# basic authentication (off loopback it must have some), the controller on
# the router's loopback.
AGENT_METRICS_PORT = 9470
CONTROLLER_METRICS = "127.0.0.1:9471"
METRICS_USER, METRICS_PASSWORD = "prometheus", "testbed-scrape"
# The controller's status page, on the router namespace's loopback.
STATUS = "127.0.0.1:7480"
# --ha: each replica's admin API, PoP port, status page and /metrics (A's
# are the single controller's).
REPLICAS = {
    "A": dict(admin=ADMIN, pop_port=POP_PORT, status=STATUS, metrics=CONTROLLER_METRICS),
    "B": dict(admin="127.0.0.1:7453", pop_port=7454, status="127.0.0.1:7481",
              metrics="127.0.0.1:9472"),
    "C": dict(admin="127.0.0.1:7463", pop_port=7464, status="127.0.0.1:7482",
              metrics="127.0.0.1:9473"),
}
HA_PREFIX = "/onramp/testbed/"
# --ecmp: FRA1's second server. FRA1's own namespace is its first (host
# fra1-a); this one has its own link to the router and its own addresses.
ECMP_HOSTS = {"FRA1": "fra1-a"}
ECMP_SERVER = dict(pop="FRA1", ns="fra1b", host="fra1-b", addr="198.51.100.34",
                   gw="198.51.100.33", rtr_if="r-fra-b", addr6="2001:db8:100:3::2",
                   gw6="2001:db8:100:3::1", rtr_mac="02:0b:00:00:03:01",
                   mac="02:0b:00:00:03:02", cpu=1)


def client_addr(client, family=4):
    return CLIENTS[client]["addr" if family == 4 else "addr6"]


def endpoint_addresses(name):
    """Both addresses (IPv4, IPv6) of one endpoint host."""
    for reg in REGIONS.values():
        if name in reg["endpoints"]:
            return [reg["endpoints"][name], reg["endpoints6"][name]]
    raise KeyError(name)


def delay_keys(who):
    """The WAN emulator's prefixes for a PoP or a client, both families."""
    if who in ALL_POPS:
        return [f"{ALL_POPS[who]['addr']}/32", f"{ALL_POPS[who]['addr6']}/128"]
    return [CLIENTS[who]["net"], CLIENTS[who]["net6"]]


def one_way_ms(who, region, relay=False):
    """The one-way WAN delay between a PoP or client and a region."""
    if relay:
        return RELAY_MS[who][region]
    return NEAR_MS if NEAR[who] == region else FAR_MS


def backbone_ms(a, b):
    """--relay: the one-way backbone delay between two PoPs."""
    return BACKBONE_MS.get((a, b), BACKBONE_MS.get((b, a)))


def delays_for(region, pops=POPS, relay=False):
    """The WAN emulator's delay table for one region's link."""
    out = {}
    for name in (*pops, *CLIENTS):
        for key in delay_keys(name):
            out[key] = one_way_ms(name, region, relay)
    return out


def backbone_delays_for(pop, pops):
    """--relay: the delay table of one PoP's link to the router: half of
    each backbone delay to another PoP (the other half is on that PoP's
    link), keyed by the other PoP's addresses. Nothing else is delayed."""
    out = {}
    for other in pops:
        if other != pop:
            for key in delay_keys(other):
                out[key] = backbone_ms(pop, other) / 2
    return out


class RouterProcesses:
    """The test bed's processes as EtcdCluster drives them (harness.Processes'
    start, kill, alive, pid), all in the router namespace, recorded in the
    bed's pids.json like every other component."""

    def __init__(self, bed):
        self.bed = bed
        self.work = bed.state

    def start(self, name, cmd, netns=None):
        self.bed.start(name, "rtr", cmd)

    def kill(self, name, sig=signal.SIGKILL):
        self.bed.stop(name, sig=sig)

    def alive(self, name):
        return self.bed.alive(name)

    def pid(self, name):
        return self.bed.pids[name]


class Testbed:
    def __init__(self, build, prefix="ot", ha=None, bare_metal=False, af_xdp=False, relay=None,
                 ecmp=None):
        self.build = os.path.abspath(build)
        self.prefix = prefix
        # docs/testbed.md, "Bare metal": the dataplane owns p0, the kernel
        # speaks through the exception interface.
        self.bare_metal = bare_metal
        # docs/testbed.md, "AF_XDP": the dataplane shares p0 with the kernel.
        self.af_xdp = af_xdp
        if bare_metal and af_xdp:
            raise Failure("--bare-metal and --af-xdp are two ways to run the PoP: pick one")
        self.state = f"/run/onramp-testbed-{prefix}"
        self.bin = programs(self.build, "controller", "agent", "ctl", "dataplane", "decap")
        self.pids = self._load_pids()
        # Where the controller keeps its database; a test may point it
        # elsewhere (the chaos suite: a small tmpfs it fills) before up().
        self.controller_db = self.path("controller.db")
        # --ha: given at `up`, remembered in the state for later commands.
        self.ha = os.path.exists(self.path("ha")) if ha is None else ha
        # --relay: likewise. The bed's PoPs: FRA1 and SIN1, and IAD1 with it.
        self.relay = os.path.exists(self.path("relay")) if relay is None else relay
        self.bed_pops = dict(ALL_POPS) if self.relay else dict(POPS)
        # --ecmp: given at `up`, remembered in the state like --ha.
        self.ecmp = os.path.exists(self.path("ecmp")) if ecmp is None else ecmp
        if self.relay and self.ecmp:
            raise Failure("--relay and --ecmp are two beds: pick one")
        self.etcd = None
        if self.ha:
            self.etcd = EtcdCluster(RouterProcesses(self), shutil.which("etcd") or "etcd",
                                    shutil.which("etcdctl") or "etcdctl", netns=self.ns("rtr"))
            # Fixed ports: nothing else listens in the router's namespace.
            for i, m in enumerate(self.etcd.members):
                m.client, m.peer = f"127.0.0.1:{2379 + 2 * i}", f"127.0.0.1:{2380 + 2 * i}"
                m.data_dir = self.path(f"etcd-{m.name}")

    def controllers(self):
        """The names of the controller processes: "controller", or one per
        replica with --ha."""
        return [f"controller-{r}" for r in REPLICAS] if self.ha else ["controller"]

    # --- names ---------------------------------------------------------------
    def ns(self, role):
        return f"{self.prefix}-{role}"

    def path(self, *parts):
        return os.path.join(self.state, *parts)

    def endpoints(self):
        """name -> (region, address) for every endpoint."""
        return {n: (r, a) for r, reg in REGIONS.items() for n, a in reg["endpoints"].items()}

    # --- processes -------------------------------------------------------------
    def _load_pids(self):
        try:
            with open(self.path("pids.json")) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def _save_pids(self):
        with open(self.path("pids.json"), "w") as f:
            json.dump(self.pids, f)

    def start(self, name, role, cmd):
        """Starts `cmd` in namespace `role` in its own session; it outlives us."""
        out = open(self.path(f"{name}.log"), "a")
        p = subprocess.Popen(["ip", "netns", "exec", self.ns(role), *cmd], stdout=out,
                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             start_new_session=True)
        self.pids[name] = p.pid
        self._save_pids()
        return p.pid

    def stop(self, name, sig=signal.SIGTERM, timeout=10.0):
        pid = self.pids.pop(name, None)
        self._save_pids()
        if pid is None:
            return
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.killpg(pid, 0)
            except ProcessLookupError:
                return
            try:
                os.waitpid(pid, os.WNOHANG)  # reap it when it is our child
            except ChildProcessError:
                pass
            time.sleep(0.02)
        try:
            os.killpg(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def alive(self, name):
        pid = self.pids.get(name)
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        try:  # a zombie child is dead
            return os.waitpid(pid, os.WNOHANG) == (0, 0)
        except ChildProcessError:
            return True

    def kill(self, name):
        """kill -9 of a component by its PID (its whole process group)."""
        self.stop(name, sig=signal.SIGKILL)

    def send_signal(self, name, sig):
        """Sends sig (SIGSTOP, SIGCONT...) to a running component; it stays
        recorded."""
        os.killpg(self.pids[name], sig)

    def restart(self, name):
        """Starts again a component that `kill` stopped, by the name
        `status` shows: controller, dataplane-FRA1, agent-SIN1, bird-fra1,
        bird-router, server-eu1, decap-ap2, wan."""
        kind, _, which = name.partition("-")
        if self.ecmp and which == ECMP_SERVER["ns"]:
            self.start_ecmp_component(kind)
            return
        if name == "controller":
            self.start_controller()
        elif kind == "controller":
            self.start_replica(which)
        elif kind == "etcd":
            self.etcd.start_member(which)
        elif kind == "dataplane":
            self.start_dataplane(which)
        elif kind == "agent":
            self.start_agent(which)
        elif kind == "bird":
            if which == "router":
                self.start_bird("router", "rtr", self.bird_config_router())
            else:
                pop = which.upper()
                self.start_bird(which, self.bed_pops[pop]["ns"], self.bird_config_pop(pop))
        elif kind == "server":
            self.start_endpoint(which)
        elif kind == "decap":
            self.start_decap(which)
        elif name == "wan":
            self.start_wan()
        else:
            raise Failure(f"no way to restart {name!r}")

    def exec(self, role, cmd, check=True, timeout=30, **kw):
        return run(["ip", "netns", "exec", self.ns(role), *cmd], check=check, timeout=timeout,
                   **kw)

    # --- network -----------------------------------------------------------------
    def _ip(self, role, *args):
        run(["ip", "-n", self.ns(role), *args])

    def _veth(self, role_a, if_a, role_b, if_b, mtu=1500):
        run(["ip", "link", "add", if_a, "netns", self.ns(role_a), "mtu", str(mtu), "type", "veth",
             "peer", "name", if_b, "netns", self.ns(role_b), "mtu", str(mtu)])
        for role, i in ((role_a, if_a), (role_b, if_b)):
            # Checksum and segmentation offloads off: frames cross raw
            # sockets (the WAN emulator, the dataplane's pcap port), which
            # would pass on partial checksums and 64 KiB segments.
            self.exec(role, ["ethtool", "-K", i, "tx", "off", "tso", "off", "gso", "off", "gro",
                             "off"], check=False)
            self._ip(role, "link", "set", i, "up")

    def _sysctl(self, role, key, value):
        self.exec(role, ["sysctl", "-qw", f"{key}={value}"])

    def net_up(self):
        roles = ["rtr", "wan", *CLIENTS, *(p["ns"] for p in self.bed_pops.values()),
                 *(n for r in REGIONS.values() for n in r["endpoints"])]
        for role in roles:
            run(["ip", "netns", "add", self.ns(role)])
            self._ip(role, "link", "set", "lo", "up")
        for role in ("rtr", "wan", *(n for r in REGIONS.values() for n in r["endpoints"])):
            self._sysctl(role, "net.ipv4.conf.all.rp_filter", 0)
            self._sysctl(role, "net.ipv4.conf.default.rp_filter", 0)
        self._sysctl("rtr", "net.ipv4.ip_forward", 1)
        self._sysctl("rtr", "net.ipv6.conf.all.forwarding", 1)

        for name, c in CLIENTS.items():
            # MTU 1500 like every other link, as real clients have: a full-size
            # packet does not fit the PoP's tunnel, and path-MTU discovery
            # (the PoP's ICMP frag-needed) or the PoP's fragmentation must
            # do the work.
            self._veth(name, "c0", "rtr", c["rtr_if"])
            self._ip(name, "addr", "add", f"{c['addr']}/25", "dev", "c0")
            self._ip(name, "route", "add", "default", "via", c["gw"])
            self._ip("rtr", "addr", "add", f"{c['gw']}/25", "dev", c["rtr_if"])
            self._ip6_link(name, "c0", c["addr6"], "rtr", c["rtr_if"], c["gw6"])
        wan_links = []
        for name, pop in self.bed_pops.items():
            if self.relay:
                # p0 | wan: w-<ns>-p ~emulator~ w-<ns>-r | router: the
                # backbone's delay between PoPs, nothing for the rest.
                self._veth(pop["ns"], "p0", "wan", f"w-{pop['ns']}-p")
                self._veth("rtr", pop["rtr_if"], "wan", f"w-{pop['ns']}-r")
                wan_links.append({"a": f"w-{pop['ns']}-r", "b": f"w-{pop['ns']}-p",
                                  "delays_ms": backbone_delays_for(name, self.bed_pops),
                                  "default_ms": 0})
            else:
                self._veth(pop["ns"], "p0", "rtr", pop["rtr_if"])
            self._ip(pop["ns"], "link", "set", "p0", "address", pop["mac"])
            self._ip("rtr", "link", "set", pop["rtr_if"], "address", pop["rtr_mac"])
            self._ip("rtr", "addr", "add", f"{pop['gw']}/28", "dev", pop["rtr_if"])
            if self.bare_metal:
                # The kernel keeps off p0; the PoP's addresses go on the
                # exception interface once the dataplane has made it.
                self._ip(pop["ns"], "link", "set", "p0", "arp", "off")
                self._sysctl(pop["ns"], "net.ipv6.conf.p0.disable_ipv6", "1")
                self._ip("rtr", "-6", "addr", "add", f"{pop['gw6']}/64", "dev", pop["rtr_if"],
                         "nodad")
                continue
            self._ip(pop["ns"], "addr", "add", f"{pop['addr']}/28", "dev", "p0")
            self._ip(pop["ns"], "route", "add", "default", "via", pop["gw"])
            self._ip6_link(pop["ns"], "p0", pop["addr6"], "rtr", pop["rtr_if"], pop["gw6"])
        # Asia's client reaches the VIP through SIN1 whatever BGP says.
        self._ip("rtr", "route", "add", f"{VIP}/32", "via", POPS["SIN1"]["addr"], "table", "200")
        self._ip("rtr", "rule", "add", "from", CLIENTS["client2"]["net"], "lookup", "200",
                 "pref", "100")
        self._ip("rtr", "-6", "route", "add", f"{VIP6}/128", "via", POPS["SIN1"]["addr6"],
                 "table", "200")
        self._ip("rtr", "-6", "rule", "add", "from", CLIENTS["client2"]["net6"], "lookup", "200",
                 "pref", "100")

        for region, reg in REGIONS.items():
            s = reg["short"]
            # router r-<s> | wan: w-<s>-r ~emulator~ w-<s>-b | w-<s>-bp on bridge br-<s>
            self._veth("rtr", f"r-{s}", "wan", f"w-{s}-r")
            self._ip("rtr", "addr", "add", f"{reg['gw']}/26", "dev", f"r-{s}")
            self._ip("rtr", "-6", "addr", "add", f"{reg['gw6']}/64", "dev", f"r-{s}", "nodad")
            self._veth("wan", f"w-{s}-b", "wan", f"w-{s}-bp")
            self._ip("wan", "link", "add", f"br-{s}", "type", "bridge")
            self._ip("wan", "link", "set", f"br-{s}", "up")
            self._ip("wan", "link", "set", f"w-{s}-bp", "master", f"br-{s}")
            for ep, addr in reg["endpoints"].items():
                self._veth(ep, "e0", "wan", f"w-{ep}")
                self._ip("wan", "link", "set", f"w-{ep}", "master", f"br-{s}")
                self._ip(ep, "addr", "add", f"{addr}/26", "dev", "e0")
                self._ip(ep, "route", "add", "default", "via", reg["gw"])
                self._ip(ep, "addr", "add", f"{VIP}/32", "dev", "lo")
                self._ip(ep, "-6", "addr", "add", f"{reg['endpoints6'][ep]}/64", "dev", "e0",
                         "nodad")
                self._ip(ep, "-6", "route", "add", "default", "via", reg["gw6"])
                # IPv6 needs no arp_ignore: neighbour discovery answers only
                # for addresses on the interface asked.
                self._ip(ep, "-6", "addr", "add", f"{VIP6}/128", "dev", "lo", "nodad")
                # DSR: the VIP lives on the loopback; do not answer ARP for it.
                self._sysctl(ep, "net.ipv4.conf.all.arp_ignore", 1)
                self._sysctl(ep, "net.ipv4.conf.all.arp_announce", 2)
            wan_links.append({"a": f"w-{s}-r", "b": f"w-{s}-b",
                              "delays_ms": delays_for(region, self.bed_pops, self.relay),
                              "default_ms": 0})
        with open(self.path("wan.json"), "w") as f:
            json.dump({"links": wan_links}, f, indent=1)

    def _ip6_link(self, role, iface, addr, peer_role, peer_iface, peer_addr):
        """The IPv6 side of a point-to-point link: a /64, the peer as the
        default route. No DAD: the addresses are ours alone, and BGP and
        the probes should not wait for it."""
        self._ip(role, "-6", "addr", "add", f"{addr}/64", "dev", iface, "nodad")
        self._ip(peer_role, "-6", "addr", "add", f"{peer_addr}/64", "dev", peer_iface, "nodad")
        self._ip(role, "-6", "route", "add", "default", "via", peer_addr)

    def set_delay(self, region, who, one_way_ms):
        """Changes one entry of the latency matrix while traffic flows (the
        emulator reads its file again within 100 ms)."""
        path = self.path("wan.json")
        with open(path) as f:
            cfg = json.load(f)
        for link in cfg["links"]:
            if link["a"] == f"w-{REGIONS[region]['short']}-r":
                for key in delay_keys(who):
                    link["delays_ms"][key] = one_way_ms
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cfg, f, indent=1)
        os.replace(tmp, path)

    def blackhole(self, region, on=True):
        """Cuts (on) or restores the WAN link to a region: the emulator drops
        every frame in both directions (within 100 ms, as set_delay)."""
        path = self.path("wan.json")
        with open(path) as f:
            cfg = json.load(f)
        for link in cfg["links"]:
            if link["a"] == f"w-{REGIONS[region]['short']}-r":
                link["blackhole"] = on
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cfg, f, indent=1)
        os.replace(tmp, path)

    def _backbone_links(self, a, b):
        """--relay: yields (link, other PoP) for each of the two PoPs' links
        to the router in the emulator's file, and writes the file back."""
        path = self.path("wan.json")
        with open(path) as f:
            cfg = json.load(f)
        for link in cfg["links"]:
            for pop, other in ((a, b), (b, a)):
                if link["b"] == f"w-{self.bed_pops[pop]['ns']}-p":
                    yield link, other
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(cfg, f, indent=1)
        os.replace(tmp, path)

    def cut_backbone(self, a, b, on=True):
        """--relay: drops every frame between PoPs a and b (on) or restores
        the path (the emulator reads its file again within 100 ms). Each
        PoP keeps its other paths: the controller, the regions, the third
        PoP."""
        for link, other in self._backbone_links(a, b):
            keys = set(delay_keys(other))
            drops = [k for k in link.get("drops", []) if k not in keys]
            link["drops"] = drops + sorted(keys) if on else drops

    def set_backbone(self, a, b, one_way_ms):
        """--relay: the one-way backbone delay between PoPs a and b, half
        on each PoP's link as when the bed came up."""
        for link, other in self._backbone_links(a, b):
            for key in delay_keys(other):
                link["delays_ms"][key] = one_way_ms / 2

    def start_wan(self):
        # Before the test's own load, and ahead of it: the emulator is one
        # Python process, and starved of CPU (2 shared cores, traffic
        # generators, builds beside) it would hold frames past the probes'
        # timeout and fail whole regions that are up.
        self.start("wan", "wan", ["nice", "-n", "-10", "/usr/bin/python3",
                                  f"{HERE}/wan_emulator.py", self.path("wan.json")])

    # --- control plane ------------------------------------------------------------
    def certs(self):
        sans = []
        for pop in self.bed_pops.values():
            sans += ["--san", pop["gw"]]
        run([f"{ROOT}/scripts/dev-ca", self.path("ca"), *sans, *self.bed_pops])

    def ctl_env(self, replica=None):
        ca = self.path("ca")
        admin = ",".join(r["admin"] for r in REPLICAS.values()) if self.ha else ADMIN
        if replica:
            admin = REPLICAS[replica]["admin"]
        return dict(os.environ, ONRAMP_CONTROLLER=admin, ONRAMP_TLS_CA=f"{ca}/ca.pem",
                    ONRAMP_TLS_CERT=f"{ca}/operator.pem", ONRAMP_TLS_KEY=f"{ca}/operator-key.pem")

    def ctl(self, *args, check=True, fmt=None, replica=None):
        cmd = ["ip", "netns", "exec", self.ns("rtr"), self.bin["ctl"], "--timeout", "5"]
        return run(cmd + (["-o", fmt] if fmt else []) + list(args), check=check, timeout=30,
                   env=self.ctl_env(replica))

    def ctl_json(self, *args, replica=None):
        return json.loads(self.ctl(*args, fmt="json", replica=replica).stdout or "{}")

    def start_replica(self, replica):
        """--ha: one controller replica on the etcd cluster."""
        ca, r = self.path("ca"), REPLICAS[replica]
        self.start(f"controller-{replica}", "rtr", [
            self.bin["controller"], "--store", self.etcd.url(HA_PREFIX),
            "--admin-listen", r["admin"], "--pop-listen", f"0.0.0.0:{r['pop_port']}",
            "--tls-cert", f"{ca}/controller.pem", "--tls-key", f"{ca}/controller-key.pem",
            "--tls-client-ca", f"{ca}/ca.pem", "--status-listen", r["status"],
            "--debounce-ms", "20", "--metrics-listen", r["metrics"]])
        wait_for(f"controller replica {replica}",
                 lambda: self.ctl("pop", "list", check=False, replica=replica).returncode == 0)

    def start_controller(self):
        if self.ha:
            self.etcd.start()
            self.exec("rtr", [self.bin["controller"], "--store", self.etcd.url(HA_PREFIX),
                              "--init-only"])
            for replica in REPLICAS:
                self.start_replica(replica)
            return
        ca = self.path("ca")
        self.start("controller", "rtr", [
            self.bin["controller"], "--init", "--db", self.controller_db,
            "--admin-listen", ADMIN,
            "--pop-listen", f"0.0.0.0:{POP_PORT}", "--tls-cert", f"{ca}/controller.pem",
            "--tls-key", f"{ca}/controller-key.pem", "--tls-client-ca", f"{ca}/ca.pem",
            "--status-listen", STATUS, "--debounce-ms", "20", "--metrics-listen",
            CONTROLLER_METRICS])
        wait_for("the controller", lambda: self.ctl("pop", "list", check=False).returncode == 0)

    def configure(self):
        """The demo accelerator, through onrampctl alone."""
        # Direct paths only in the two-PoP bed: PoP to PoP is the router
        # there, no WAN delay, so a relay would beat every far region and
        # move the story's nearest groups. The relay bed (--relay) has a
        # backbone with delays of its own, and relays.
        self.ctl("accelerator", "create", ACCELERATOR, "--vip", VIP, "--vip", VIP6,
                 "--relay", "on" if self.relay else "off")
        probe_flags = RELAY_PROBE_FLAGS if self.relay else PROBE_FLAGS
        for lname, (proto, ports, health) in LISTENERS.items():
            self.ctl("listener", "create", lname, "--accelerator", ACCELERATOR, "--protocol", proto,
                     "--ports", ports)
            for region, reg in REGIONS.items():
                self.ctl("endpoint-group", "create", region, "--accelerator", ACCELERATOR,
                         "--listener", lname, "--region", region, *health, *probe_flags)
                for addr in (*reg["endpoints"].values(), *reg["endpoints6"].values()):
                    self.ctl("endpoint", "add", addr, "--accelerator", ACCELERATOR, "--listener",
                             lname, "--endpoint-group", region, "--mode", reg["mode"])

    # --- PoPs -------------------------------------------------------------------------
    def dp_socket(self, pop):
        return self.path(f"{pop.lower()}-dataplane.sock")

    def dp(self, pop, *args, check=True):
        r = run([self.bin["ctl"], "dataplane", *args, "--socket", self.dp_socket(pop), "-o",
                 "json"], check=check, timeout=30)
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None

    def start_dataplane(self, pop):
        # net_pcap, not net_af_packet: the af_packet driver's fanout group
        # has the kernel reassemble IPv4 fragments first (and cut those over
        # 2 KiB), so the PoP would never see fragments as a NIC hands them
        # over (docs/testbed.md, MTU and fragments).
        p = self.bed_pops[pop]
        # Bare metal: a second TX queue (tx_iface twice) for the exception path.
        vdev = "net_pcap0,rx_iface_in=p0,tx_iface=p0,phy_mac=1"
        exception = []
        if self.bare_metal:
            vdev = "net_pcap0,rx_iface_in=p0,tx_iface=p0,tx_iface=p0,phy_mac=1"
            exception = ["--exception-vdev", "net_tap0,iface=onramp0"]
        if self.af_xdp:
            vdev = "net_af_xdp0,iface=p0"
            exception = ["--xdp-program", self.xdp_program()]
            # A dataplane killed by SIGKILL leaves its program on p0, and the
            # next one could not attach its own.
            self._ip(p["ns"], "link", "set", "dev", "p0", "xdp", "off")
        self.start(f"dataplane-{pop}", p["ns"], [
            self.bin["dataplane"], "--no-pci", "--no-huge", "-m", "256", "--no-shconf",
            "--no-telemetry", f"--file-prefix={self.prefix}-{pop}", "-l", str(p["cpu"]),
            "--log-level=warning", f"--vdev={vdev}", "--",
            "--api-socket", self.dp_socket(pop), "--flows-per-lcore", "65536", *exception])
        wait_for(f"{pop}'s dataplane", lambda: self.dp(pop, "health", check=False) is not None)
        if self.bare_metal:
            self.exception_interface_up(pop)

    def xdp_program(self):
        """onramp's XDP steering program, as built (dataplane/xdp)."""
        path = os.path.join(self.build, "dataplane", "xdp", "onramp-steer.bpf.o")
        if not os.path.exists(path):
            raise Failure(f"{path} is missing: build first (ninja -C {self.build})")
        return path

    def exception_interface_up(self, pop):
        """The PoP's addresses and routes on the dataplane's exception
        interface (docs/deployment.md, "The exception interface")."""
        p = self.bed_pops[pop]
        self.exec(p["ns"], ["ethtool", "-K", "onramp0", "tx", "off", "tso", "off", "gso", "off"],
                  check=False)
        self._ip(p["ns"], "link", "set", "onramp0", "up")
        self._ip(p["ns"], "addr", "add", f"{p['addr']}/28", "dev", "onramp0")
        self._ip(p["ns"], "-6", "addr", "add", f"{p['addr6']}/64", "dev", "onramp0", "nodad")
        self._ip(p["ns"], "route", "add", "default", "via", p["gw"])
        self._ip(p["ns"], "-6", "route", "add", "default", "via", p["gw6"])

    def bird_config_pop(self, pop):
        return self.bird_config_server(pop, pop.lower(), self.bed_pops[pop], self.bed_pops[pop])

    def bird_config_server(self, title, name, p, pop):
        """BIRD for one server of a PoP: `p` its addresses and gateways,
        `pop` the PoP's (its AS); announces what its agent puts into
        NAME-vips.conf."""
        vips = self.path(f"{name}-vips.conf")
        if not os.path.exists(vips):
            open(vips, "w").close()  # the agent fills it
        return f"""# {title}: announces what onramp-agent puts into {vips}
router id {p['addr']};
log "{self.path(f'bird-{name}.log')}" all;
protocol device {{ scan time 10; }}
include "{vips}";
protocol bgp upstream {{
  local {p['addr']} as {pop['asn']};
  neighbor {p['gw']} as 64500;
  hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 4;
  ipv4 {{ import none; export where proto ~ "onramp_*"; }};
}}
protocol bgp upstream_v6 {{
  local {p['addr6']} as {pop['asn']};
  neighbor {p['gw6']} as 64500;
  hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 4;
  ipv6 {{ import none; export where proto ~ "onramp_*"; }};
}}
"""

    def bird_config_router(self):
        peers = "".join(f"""
protocol bgp {pop.lower()} {{
  local {p['gw']} as 64500;
  neighbor {p['addr']} as {p['asn']};
  hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 4;
  ipv4 {{ import filter {{ bgp_local_pref = {p['local_pref']}; accept; }}; export none; }};
}}
protocol bgp {pop.lower()}_v6 {{
  local {p['gw6']} as 64500;
  neighbor {p['addr6']} as {p['asn']};
  hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 4;
  ipv6 {{ import filter {{ bgp_local_pref = {p['local_pref']}; accept; }}; export none; }};
}}
""" for pop, p in self.bed_pops.items())
        if self.ecmp:
            return self.ecmp_router_config(peers)
        return f"""# The Internet core: learns the VIPs from both PoPs (one session a family),
# prefers FRA1, and installs the best routes into the kernel.
router id 198.51.100.1;
log "{self.path('bird-router.log')}" all;
protocol device {{ scan time 10; }}
protocol kernel {{ ipv4 {{ import none; export all; }}; }}
protocol kernel {{ ipv6 {{ import none; export all; }}; }}
{peers}"""

    def bird_socket(self, who):
        return self.path(f"bird-{who}.ctl")

    def start_bird(self, who, role, config):
        conf = self.path(f"bird-{who}.conf")
        with open(conf, "w") as f:
            f.write(config)
        self.start(f"bird-{who}", role, ["bird", "-f", "-c", conf, "-s", self.bird_socket(who),
                                         "-P", self.path(f"bird-{who}.pid")])
        wait_for(f"BIRD ({who})", lambda: os.path.exists(self.bird_socket(who)))

    def birdc(self, who, *args):
        return run(["birdc", "-s", self.bird_socket(who), *args], check=False, timeout=10).stdout

    def metrics_users(self):
        """The agents' --metrics-basic-auth-file."""
        path = self.path("metrics-users")
        with open(path, "w") as f:
            f.write(f"{METRICS_USER}:{METRICS_PASSWORD}\n")
        return path

    def start_agent(self, pop):
        p = self.bed_pops[pop]
        ca = self.path("ca")
        self.start(f"agent-{pop}", p["ns"], [
            self.bin["agent"], "--controller",
            ",".join(f"{p['gw']}:{r['pop_port']}" for r in REPLICAS.values())
            if self.ha else f"{p['gw']}:{POP_PORT}", "--tls-ca",
            f"{ca}/ca.pem", "--tls-cert", f"{ca}/{pop}.pem", "--tls-key", f"{ca}/{pop}-key.pem",
            "--pop", pop, *(["--host", ECMP_HOSTS[pop]] if self.ecmp and pop in ECMP_HOSTS else []),
            "--iata", p["iata"], "--city", p["city"], "--country", p["country"],
            "--lat", p["lat"], "--lon", p["lon"], "--tunnel-source-v4", p["addr"],
            "--tunnel-source-v6", p["addr6"],
            # Bare metal: no --next-hop-mac, the dataplane learns it.
            *([] if self.bare_metal else ["--next-hop-mac", p["rtr_mac"]]),
            "--dataplane-socket", self.dp_socket(pop),
            "--state-dir", self.path(f"state-{pop}"), "--status-interval-ms", "500",
            "--bird-config", self.path(f"{pop.lower()}-vips.conf"), "--bird-socket",
            self.bird_socket(pop.lower()),
            "--metrics-listen", f"{p['addr']}:{AGENT_METRICS_PORT}",
            "--metrics-basic-auth-file", self.metrics_users()])

    # --- endpoints ---------------------------------------------------------------------
    def start_endpoint(self, name):
        region, _ = self.endpoints()[name]
        self.start(f"server-{name}", name,
                   ["/usr/bin/python3", f"{HERE}/endpoint_server.py", name, region])

    def start_decap(self, name):
        self.start(f"decap-{name}", name, [self.bin["decap"], "--interface", "e0", "--allow",
                                           "198.51.100.0/24", "--allow", "2001:db8:100::/48"])

    # --- the whole bed ------------------------------------------------------------------
    def up(self):
        if os.path.exists(self.path("pids.json")) or run(
                ["ip", "netns", "list"]).stdout.count(f"{self.prefix}-rtr"):
            raise Failure(f"a test bed '{self.prefix}' is up already: testbed.py down first")
        for b in ("controller", "agent", "ctl", "dataplane", "decap"):
            if not os.access(self.bin[b], os.X_OK):
                raise Failure(f"{self.bin[b]} is missing: build first (ninja -C {self.build})")
        for tool in ("bird", "birdc", "ethtool") + (("etcd", "etcdctl") if self.ha else ()):
            if not shutil.which(tool):
                raise Failure(f"{tool} is missing: run scripts/install-deps")
        if self.relay and self.bare_metal:
            raise Failure("--relay and --bare-metal do not go together (yet)")
        shutil.rmtree(self.state, ignore_errors=True)
        os.makedirs(self.state)
        self._save_pids()
        if self.ha:
            open(self.path("ha"), "w").close()
        if self.relay:
            open(self.path("relay"), "w").close()
        if self.ecmp:
            open(self.path("ecmp"), "w").close()
        self.net_up()
        if self.ecmp:
            self.ecmp_net_up()
        self.start_wan()
        for name in self.endpoints():
            self.start_decap(name)
            self.start_endpoint(name)
        self.certs()
        self.start_controller()
        self.configure()
        self.start_bird("router", "rtr", self.bird_config_router())
        for pop, p in self.bed_pops.items():
            self.start_dataplane(pop)
            self.start_bird(pop.lower(), p["ns"], self.bird_config_pop(pop))
            self.start_agent(pop)
        if self.ecmp:
            for kind in ("dataplane", "bird", "agent"):
                self.start_ecmp_component(kind)
            wait_for("FRA1's two hosts connected", lambda: len(self.hosts("FRA1")) == 2,
                     timeout=60)
        wait_for("every PoP on the latest configuration", self.converged, timeout=60)
        wait_for("every PoP announcing the VIP to the router", self.both_announced, timeout=30)
        if self.ecmp:
            wait_for("the router's multipath route over FRA1's two servers", self.ecmp_routes,
                     timeout=30)

    def down(self):
        for name in list(self.pids):
            self.stop(name)
        out = run(["ip", "netns", "list"]).stdout
        for line in out.splitlines():
            ns = line.split()[0] if line.split() else ""
            if ns.startswith(f"{self.prefix}-"):
                run(["ip", "netns", "del", ns], check=False)
        # Everything but the logs, which stay for a post-mortem until the
        # next `up`.
        if os.path.isdir(self.state):
            for entry in os.listdir(self.state):
                if not entry.endswith(".log"):
                    p = self.path(entry)
                    shutil.rmtree(p) if os.path.isdir(p) else os.unlink(p)

    # --- what it shows ---------------------------------------------------------------------
    def pops(self):
        if self.ha:
            return self.pops_of_replicas()
        j = self.ctl_json("pop", "list")
        return {p["id"]: p for p in j.get("pops", [])}, int(j.get("config_version", 0))

    def pops_of_replicas(self):
        """--ha: each PoP as the replica it is connected to shows it (with
        its hosts, its versions), and the newest configuration version among
        the replicas that answer."""
        pops, version = {}, 0
        for replica in REPLICAS:
            if not self.alive(f"controller-{replica}"):
                continue
            r = self.ctl("pop", "list", check=False, fmt="json", replica=replica)
            if r.returncode != 0:
                continue
            j = json.loads(r.stdout or "{}")
            version = max(version, int(j.get("config_version", 0)))
            for p in j.get("pops", []):
                # Every replica lists it connected; the one that holds its
                # session lists its hosts too.
                if p["id"] not in pops or p.get("hosts"):
                    pops[p["id"]] = p
        return pops, version

    def converged(self):
        pops, _ = self.pops()
        return set(pops) == set(self.bed_pops) and all(
            p.get("state") == "POP_CONNECTED" and int(p.get("applied_version", 0)) ==
            int(p.get("sent_version", -1)) > 0 for p in pops.values())

    def both_announced(self):
        for family, vip in VIPS.items():
            addr = "addr" if family == 4 else "addr6"
            learned = self.birdc("router", "show", "route", "for", vip, "all")
            installed = run(["ip", "netns", "exec", self.ns("rtr"), "ip", f"-{family}", "route",
                             "show", vip], check=False).stdout
            if not (all(f"via {p[addr]} " in learned for p in self.bed_pops.values())
                    and f"via {POPS['FRA1'][addr]} " in installed + " "):
                return False
        return True

    def health(self):
        """(pop, address) -> EndpointHealth as JSON, for the web listener."""
        return {(e["pop"], e["address"]): e for e in self.health_entries("web")}

    def health_entries(self, listener=None):
        """EndpointHealth entries as JSON, the accelerator's or one
        listener's. --ha: each PoP's verdicts as the replica it is connected
        to has them (verdicts live in the PoP's session)."""
        args = ("health", "--accelerator", ACCELERATOR) + (
            ("--listener", listener) if listener else ())
        if not self.ha:
            return self.ctl_json(*args).get("endpoints", [])
        out = {}
        for replica in REPLICAS:
            if not self.alive(f"controller-{replica}"):
                continue
            pops = self.ctl("pop", "list", check=False, fmt="json", replica=replica)
            health = self.ctl(*args, check=False, fmt="json", replica=replica)
            if pops.returncode != 0 or health.returncode != 0:
                continue
            here = {p["id"] for p in json.loads(pops.stdout or "{}").get("pops", [])
                    if p.get("hosts")}
            for e in json.loads(health.stdout or "{}").get("endpoints", []):
                if e["pop"] in here:
                    out[(e["pop"], e.get("listener"), e["address"])] = e
        return list(out.values())

    # --- --ecmp: FRA1 of two servers (docs/testbed.md) -------------------------------------
    def ecmp_net_up(self):
        """FRA1's second server: its namespace, its link to the router, the
        WAN delays of FRA1 for its addresses, and the router's kernel
        hashing multipath routes on L4 (both families)."""
        e = ECMP_SERVER
        run(["ip", "netns", "add", self.ns(e["ns"])])
        self._ip(e["ns"], "link", "set", "lo", "up")
        self._veth(e["ns"], "p0", "rtr", e["rtr_if"])
        self._ip(e["ns"], "link", "set", "p0", "address", e["mac"])
        self._ip("rtr", "link", "set", e["rtr_if"], "address", e["rtr_mac"])
        self._ip("rtr", "addr", "add", f"{e['gw']}/28", "dev", e["rtr_if"])
        self._ip(e["ns"], "addr", "add", f"{e['addr']}/28", "dev", "p0")
        self._ip(e["ns"], "route", "add", "default", "via", e["gw"])
        self._ip6_link(e["ns"], "p0", e["addr6"], "rtr", e["rtr_if"], e["gw6"])
        self._sysctl("rtr", "net.ipv4.fib_multipath_hash_policy", 1)
        self._sysctl("rtr", "net.ipv6.fib_multipath_hash_policy", 1)
        path = self.path("wan.json")
        with open(path) as f:
            cfg = json.load(f)
        fra1 = delay_keys("FRA1")
        for link in cfg["links"]:
            for mine, theirs in zip((f"{e['addr']}/32", f"{e['addr6']}/128"), fra1):
                link["delays_ms"][mine] = link["delays_ms"][theirs]
        with open(path, "w") as f:
            json.dump(cfg, f, indent=1)

    def ecmp_router_config(self, peers):
        """The router's BIRD with FRA1's second server as a peer of the same
        AS and preference, and `merge paths` in its kernel protocols."""
        e, fra1 = ECMP_SERVER, POPS["FRA1"]
        peers += f"""
protocol bgp {e['ns']} {{
  local {e['gw']} as 64500;
  neighbor {e['addr']} as {fra1['asn']};
  hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 4;
  ipv4 {{ import filter {{ bgp_local_pref = {fra1['local_pref']}; accept; }}; export none; }};
}}
protocol bgp {e['ns']}_v6 {{
  local {e['gw6']} as 64500;
  neighbor {e['addr6']} as {fra1['asn']};
  hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 4;
  ipv6 {{ import filter {{ bgp_local_pref = {fra1['local_pref']}; accept; }}; export none; }};
}}
"""
        return f"""# The Internet core: learns the VIPs from both PoPs (one session a family),
# FRA1 from each of its two servers; prefers FRA1 and installs its two
# equal routes as one multipath route.
router id 198.51.100.1;
log "{self.path('bird-router.log')}" all;
protocol device {{ scan time 10; }}
protocol kernel {{ ipv4 {{ import none; export all; }}; merge paths on; }}
protocol kernel {{ ipv6 {{ import none; export all; }}; merge paths on; }}
{peers}"""

    def ecmp_socket(self):
        return self.path(f"{ECMP_SERVER['ns']}-dataplane.sock")

    def ecmp_bird_config(self):
        e = ECMP_SERVER
        return self.bird_config_server("FRA1's second server", e["ns"], e, POPS["FRA1"])

    def start_ecmp_component(self, kind):
        """dataplane, bird or agent of FRA1's second server."""
        e, fra1, ca = ECMP_SERVER, POPS["FRA1"], self.path("ca")
        name = f"{kind}-{e['ns']}"
        if kind == "dataplane":
            self.start(name, e["ns"], [
                self.bin["dataplane"], "--no-pci", "--no-huge", "-m", "256", "--no-shconf",
                "--no-telemetry", f"--file-prefix={self.prefix}-{e['ns']}", "-l", str(e["cpu"]),
                "--log-level=warning", "--vdev=net_pcap0,rx_iface_in=p0,tx_iface=p0,phy_mac=1",
                "--", "--api-socket", self.ecmp_socket(), "--flows-per-lcore", "65536"])
            wait_for("FRA1's second dataplane", lambda: self.ecmp_dp("health") is not None)
        elif kind == "bird":
            self.start_bird(e["ns"], e["ns"], self.ecmp_bird_config())
        elif kind == "agent":
            # The same PoP, certificate and controller as FRA1's first
            # server (its controller address is reached through the router);
            # its own host, addresses, next hop and BIRD.
            self.start(name, e["ns"], [
                self.bin["agent"], "--controller", f"{fra1['gw']}:{POP_PORT}",
                "--tls-ca", f"{ca}/ca.pem", "--tls-cert", f"{ca}/FRA1.pem",
                "--tls-key", f"{ca}/FRA1-key.pem", "--pop", "FRA1", "--host", e["host"],
                "--iata", fra1["iata"], "--city", fra1["city"], "--country", fra1["country"],
                "--lat", fra1["lat"], "--lon", fra1["lon"], "--tunnel-source-v4", e["addr"],
                "--tunnel-source-v6", e["addr6"], "--next-hop-mac", e["rtr_mac"],
                "--dataplane-socket", self.ecmp_socket(),
                "--state-dir", self.path(f"state-{e['ns']}"), "--status-interval-ms", "500",
                "--bird-config", self.path(f"{e['ns']}-vips.conf"),
                "--bird-socket", self.bird_socket(e["ns"])])
        else:
            raise Failure(f"no component {kind} of FRA1's second server")

    def ecmp_dp(self, *args):
        """onrampctl dataplane ARGS against FRA1's second server, as JSON."""
        r = run([self.bin["ctl"], "dataplane", *args, "--socket", self.ecmp_socket(), "-o",
                 "json"], check=False, timeout=30)
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else None

    def hosts(self, pop):
        """The connected hosts of a PoP, by name, as pop list shows them."""
        pops, _ = self.pops()
        return [h.get("name", "") for h in pops.get(pop, {}).get("hosts", [])]

    def ecmp_routes(self):
        """Whether the router's kernel route for each VIP has a next hop via
        each of FRA1's servers."""
        for family, vip in VIPS.items():
            key = "addr" if family == 4 else "addr6"
            out = run(["ip", "netns", "exec", self.ns("rtr"), "ip", f"-{family}", "route",
                       "show", vip], check=False).stdout + " "
            if not all(f"via {a} " in out for a in (POPS["FRA1"][key], ECMP_SERVER[key])):
                return False
        return True

    def status(self):
        for name in sorted(self.pids):
            log(f"  {name:22} {'running' if self.alive(name) else 'DEAD'}")


def main():
    ap = argparse.ArgumentParser(usage=__doc__)
    ap.add_argument("command", choices=["up", "down", "status", "ctl", "exec"])
    ap.add_argument("--build", default=os.environ.get("ONRAMP_BUILD_DIR", f"{ROOT}/build"))
    ap.add_argument("--prefix", default="ot")
    ap.add_argument("--ha", action="store_true",
                    help="up: 3 controller replicas on a 3-member etcd cluster")
    ap.add_argument("--bare-metal", action="store_true",
                    help="the dataplane owns p0; the PoP's addresses on its exception interface")
    ap.add_argument("--af-xdp", action="store_true",
                    help="the dataplane on net_af_xdp on p0 with onramp's steering program")
    ap.add_argument("--relay", action="store_true",
                    help="up: the relay bed, a third PoP and a backbone (docs/testbed.md)")
    ap.add_argument("--ecmp", action="store_true",
                    help="up: FRA1 with two servers behind the router's ECMP")
    args, rest = ap.parse_known_args()
    if os.geteuid() != 0:
        sys.exit("testbed: needs root (network namespaces)")
    try:
        bed = Testbed(args.build, args.prefix, ha=True if args.ha else None,
                      bare_metal=args.bare_metal, af_xdp=args.af_xdp,
                      relay=True if args.relay else None, ecmp=True if args.ecmp else None)
        if args.command == "up":
            try:
                bed.up()
            except BaseException:
                log(f"testbed: set-up failed; logs in {bed.state}")
                raise
            log(f"test bed '{args.prefix}' is up; logs in {bed.state}")
        elif args.command == "down":
            bed.down()
        elif args.command == "status":
            bed.status()
        elif args.command == "ctl":
            r = subprocess.run(["ip", "netns", "exec", bed.ns("rtr"), bed.bin["ctl"], *rest],
                               env=bed.ctl_env())
            sys.exit(r.returncode)
        elif args.command == "exec":
            if not rest:
                sys.exit("testbed: exec NS CMD...")
            r = subprocess.run(["ip", "netns", "exec", bed.ns(rest[0]), *rest[1:]])
            sys.exit(r.returncode)
    except Failure as e:
        sys.exit(f"testbed: {e}")


if __name__ == "__main__":
    main()
