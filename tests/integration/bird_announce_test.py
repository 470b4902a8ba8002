#!/usr/bin/python3
"""Anycast announcement through BIRD, with real processes.

Two network namespaces joined by a veth: a PoP (onramp-controller,
onramp-dataplane on af_packet, onramp-agent with --bird-config and
--bird-socket, and BIRD) and an upstream peer (BIRD alone). The two BIRDs
hold an eBGP session with short timers; the PoP's BIRD exports the agent's
onramp_* static protocols.

Steps, each asserted:
  1. an accelerator with VIP 203.0.113.200 and one endpoint: the peer's
     routing table gains 203.0.113.200/32, and `onrampctl pop list` shows the
     PoP's BGP as announced;
  2. the dataplane is killed: the peer loses the route within a few seconds,
     and the PoP shows withdrawn;
  3. the dataplane is started again: the agent re-applies the last good
     table and the peer regains the route;
  4. the only endpoint is drained (weight 0): the route goes, and comes back
     with the weight;
  5. the agent is killed: the route stays (static stability).

usage: bird_announce_test.py --build-dir DIR
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

from harness import (Processes, SKIP, check, log, missing_binaries, not_root, programs,
                    run, run_test, wait_for)

VIP = "203.0.113.200"
POP_ADDR, PEER_ADDR = "192.0.2.1", "192.0.2.2"
POP_AS, PEER_AS = 64500, 64501

POP_BIRD = """
router id {pop};
log "{work}/bird-pop.messages" all;
protocol device {{ scan time 10; }}
include "{include}";
protocol bgp upstream {{
  local {pop} as {pop_as};
  neighbor {peer} as {peer_as};
  hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 2;
  ipv4 {{ import none; export where proto ~ "onramp_*"; }};
}}
"""

PEER_BIRD = """
router id {peer};
log "{work}/bird-peer.messages" all;
protocol device {{ scan time 10; }}
protocol bgp pop {{
  local {peer} as {peer_as};
  neighbor {pop} as {pop_as};
  hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 2;
  ipv4 {{ import all; export none; }};
}}
"""


class Bed(Processes):
    def __init__(self, build, work):
        super().__init__(work)
        self.build = build
        tag = os.getpid()
        self.pop_ns = f"onramp-bgp-pop-{tag}"
        self.peer_ns = f"onramp-bgp-peer-{tag}"
        # Loopback inside the PoP namespace: the controller is plaintext.
        self.admin = "127.0.0.1:17441"
        self.pop_listen = "127.0.0.1:17442"
        self.include = os.path.join(work, "onramp-bird.conf")
        self.pop_sock = os.path.join(work, "bird-pop.ctl")
        self.peer_sock = os.path.join(work, "bird-peer.ctl")
        self.dp_sock = os.path.join(work, "dataplane.sock")
        self.bin = programs(build, "controller", "agent", "ctl", "dataplane")

    def net_up(self):
        for ns in (self.pop_ns, self.peer_ns):
            subprocess.run(["ip", "netns", "add", ns], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        subprocess.run(["ip", "link", "add", "bgp-pop", "netns", self.pop_ns, "type", "veth",
                        "peer", "name", "bgp-peer", "netns", self.peer_ns], check=True)
        for ns, dev, addr in ((self.pop_ns, "bgp-pop", POP_ADDR),
                              (self.peer_ns, "bgp-peer", PEER_ADDR)):
            subprocess.run(["ip", "-n", ns, "addr", "add", f"{addr}/30", "dev", dev], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
        # The dataplane's own port: a veth pair inside the PoP namespace.
        subprocess.run(["ip", "-n", self.pop_ns, "link", "add", "dp-out", "type", "veth", "peer",
                        "name", "dp-in"], check=True)
        for dev in ("dp-out", "dp-in"):
            subprocess.run(["ip", "-n", self.pop_ns, "link", "set", dev, "up"], check=True)

    def net_down(self):
        for ns in (self.pop_ns, self.peer_ns):
            subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)

    def teardown(self):
        for name in list(self.procs):
            self.kill(name, signal.SIGTERM if name.startswith("bird") else signal.SIGKILL)
        self.net_down()

    def start_birds(self):
        fill = dict(pop=POP_ADDR, peer=PEER_ADDR, pop_as=POP_AS, peer_as=PEER_AS, work=self.work,
                    include=self.include)
        # BIRD refuses to start on a missing include: the agent rewrites it.
        with open(self.include, "w") as f:
            f.write("# written by onramp-agent\n")
        for name, text, ns, sock in (("bird-pop", POP_BIRD, self.pop_ns, self.pop_sock),
                                     ("bird-peer", PEER_BIRD, self.peer_ns, self.peer_sock)):
            conf = os.path.join(self.work, f"{name}.conf")
            with open(conf, "w") as f:
                f.write(text.format(**fill))
            pid = os.path.join(self.work, f"{name}.pid")
            self.start(name, ["bird", "-f", "-c", conf, "-s", sock, "-P", pid], ns)
            wait_for(f"{name} to answer", lambda sock=sock: self.birdc(sock, "show status")[0] == 0)

    def birdc(self, sock, *args):
        r = subprocess.run(["birdc", "-s", sock, *" ".join(args).split()], capture_output=True,
                           text=True, timeout=10)
        return r.returncode, r.stdout + r.stderr

    def peer_has_route(self):
        rc, out = self.birdc(self.peer_sock, "show route", f"{VIP}/32")
        if "Network not found" in out:
            return False
        check(rc == 0, f"birdc: {out}")
        return f"{VIP}/32" in out

    def start_controller(self):
        self.start("controller", [self.bin["controller"], "--admin-listen", self.admin,
                                  "--pop-listen", self.pop_listen, "--plaintext", "--init", "--db",
                                  os.path.join(self.work, "controller.db"), "--debounce-ms", "20"],
                   self.pop_ns)
        wait_for("the controller", lambda: self.ctl("pop", "list", check_rc=False)[0] == 0)

    def start_dataplane(self):
        self.start("dataplane", [
            self.bin["dataplane"], "--no-pci", "--no-huge", "-m", "256", "--no-shconf",
            "--no-telemetry", f"--file-prefix=onramp-bgp-{os.getpid()}", "-l", "0",
            "--log-level=warning", "--vdev=net_af_packet0,iface=dp-in", "--",
            "--api-socket", self.dp_sock, "--flows-per-lcore", "4096"], self.pop_ns)
        wait_for("the dataplane API", lambda: self.dp_health() is not None)

    def dp_health(self):
        r = subprocess.run([self.bin["ctl"], "dataplane", "health", "--socket", self.dp_sock, "-o",
                            "json"], capture_output=True, text=True, timeout=10)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def start_agent(self):
        self.start("agent", [
            self.bin["agent"], "--controller", self.pop_listen, "--plaintext", "--pop", "FRA1",
            "--tunnel-source-v4", "192.0.2.5", "--next-hop-mac", "02:00:00:00:01:fe",
            "--dataplane-socket", self.dp_sock, "--state-dir", os.path.join(self.work, "state"),
            "--status-interval-ms", "200", "--bird-config", self.include, "--bird-socket",
            self.pop_sock], self.pop_ns)

    def ctl(self, *args, check_rc=True, fmt=None):
        cmd = ["ip", "netns", "exec", self.pop_ns, self.bin["ctl"], "--controller", self.admin,
               "--plaintext", "--timeout", "5"]
        r = run(cmd + (["-o", fmt] if fmt else []) + list(args), check=check_rc, timeout=30)
        return r.returncode, r.stdout, r.stderr

    def pop(self):
        j = json.loads(self.ctl("pop", "list", fmt="json")[1] or "{}")
        for p in j.get("pops", []):
            if p.get("id") == "FRA1":
                return p
        return None

    def bgp_announced(self):
        p = self.pop()
        return bool(p and p.get("bgp_announced", p.get("bgpAnnounced", False)))


def steps(bed):
    bed.net_up()
    bed.start_birds()
    wait_for("the BGP session to be established",
             lambda: "Established" in bed.birdc(bed.peer_sock, "show protocols", "pop")[1],
             timeout=30)
    check(not bed.peer_has_route(), "the peer has the VIP before anything announced it")
    log("0. BIRD at the PoP and at the peer: BGP session established, no VIP route")

    bed.start_controller()
    bed.start_dataplane()
    bed.start_agent()
    wait_for("FRA1 to connect", lambda: (bed.pop() or {}).get("state") == "POP_CONNECTED")
    bed.ctl("accelerator", "create", "web", "--vip", VIP)
    bed.ctl("listener", "create", "http", "--accelerator", "web", "--protocol", "tcp", "--ports",
            "80")
    bed.ctl("endpoint-group", "create", "eu", "--accelerator", "web", "--listener", "http",
            "--region", "eu-central")
    bed.ctl("endpoint", "add", "198.51.100.1", "--accelerator", "web", "--listener", "http",
            "--endpoint-group", "eu")
    t0 = time.monotonic()
    wait_for("the peer to gain the VIP route", bed.peer_has_route)
    log(f"1. VIP configured: the peer has {VIP}/32 after {time.monotonic() - t0:.1f} s")
    log(bed.birdc(bed.peer_sock, "show route", f"{VIP}/32")[1])
    wait_for("pop list to show BGP announced", bed.bgp_announced)
    listing = bed.ctl("pop", "list")[1]
    check("announced" in listing, f"pop list: {listing}")
    log(listing)

    t0 = time.monotonic()
    bed.kill("dataplane")
    wait_for("the peer to lose the VIP route", lambda: not bed.peer_has_route(), timeout=5)
    log(f"2. dataplane killed: the peer lost the route {time.monotonic() - t0:.1f} s after kill -9")
    wait_for("pop list to show BGP withdrawn", lambda: not bed.bgp_announced())

    t0 = time.monotonic()
    bed.start_dataplane()
    wait_for("the peer to regain the VIP route", bed.peer_has_route, timeout=10)
    log(f"3. dataplane restarted: the peer regained the route {time.monotonic() - t0:.1f} s after "
        "the start")
    wait_for("pop list to show BGP announced again", bed.bgp_announced)

    # Draining the only endpoint leaves nothing to serve the VIP: withdrawn.
    def weight(w):
        bed.ctl("endpoint", "update", "198.51.100.1", "--accelerator", "web", "--listener",
                "http", "--endpoint-group", "eu", "--weight", str(w))
    weight(0)
    wait_for("the peer to lose the route of a drained VIP", lambda: not bed.peer_has_route(),
             timeout=5)
    weight(128)
    wait_for("the peer to regain the route", bed.peer_has_route, timeout=5)
    log("4. the only endpoint drained (weight 0): withdrawn; weight back: announced again")

    bed.kill("agent")
    time.sleep(2.0)
    check(bed.peer_has_route(), "the route went away with the agent")
    log("5. agent killed: the VIP stays announced (static stability)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    args = ap.parse_args()
    if not_root("needs root for network namespaces and BIRD"):
        return SKIP
    if not shutil.which("bird") or not shutil.which("birdc"):
        print("SKIP: bird and birdc (Debian bird2) are not installed")
        return SKIP
    bed = Bed(os.path.abspath(args.build_dir), tempfile.mkdtemp(prefix="onramp-bgp-"))
    if missing_binaries(bed.bin.values()):
        return 1
    return run_test("bird-announce", bed.work, lambda: steps(bed), bed.teardown,
                    suffixes=(".log", ".messages"))


if __name__ == "__main__":
    sys.exit(main())
