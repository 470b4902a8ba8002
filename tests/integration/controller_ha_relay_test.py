#!/usr/bin/python3
"""Issue 13 item 3, shared measurements, with real processes and no root: a
3-member etcd cluster (tests/lib/etcd_cluster.py) on loopback, controller
replicas A, B and C on it, and two scripted agents (tests/bench/
scripted_agent.cc: probe results given on the command line, every table
printed): ingress PoP FRA1 on A, relay PoP SIN1 on B. SIN1 reaches group
"ap" in 2 ms, FRA1 in 151 ms but SIN1 in 45 ms: FRA1's table relays "ap"
through SIN1, which only the snapshot B shares through etcd tells A.

Steps, each asserted and timed:
  a. FRA1's table relays "ap" through SIN1 (SIN1 on another replica);
  b. kill -9 of B, SIN1's replica: SIN1 moves to C, and FRA1 is sent no
     table without the relay meanwhile, nor after B's lease has ended;
  c. SIN1's agent killed: its session on C ends, C withdraws SIN1's
     snapshot, and FRA1's table drops the relay (bound: 1 s);
  d. SIN1 back on C, FRA1 relaying again; then kill -9 of C and of SIN1's
     agent together: nobody withdraws SIN1, its key goes when C's lease
     ends, and FRA1's table drops the relay within the lease TTL plus
     etcd's lease check and a second (bound: TTL_S + 1.5 s).

usage: controller_ha_relay_test.py --build-dir DIR --etcd ETCD --etcdctl ETCDCTL
"""
import json
import os
import sys
import time

from etcd_cluster import EtcdCluster, etcd_test_main
from harness import Processes, check, free_port, log, programs, run, wait_for

PREFIX = "/onramp/relay/"
REPLICAS = "ABC"
TTL_S = 3
WITHDRAWN_BOUND_S = 1.0
EXPIRED_BOUND_S = TTL_S + 1.5
TUNNEL = {"FRA1": "192.0.2.11", "SIN1": "192.0.2.12"}
AP = "198.51.100.2"


class RelayBed(Processes):
    def __init__(self, build, work, etcd, etcdctl):
        super().__init__(work)
        self.bin = programs(build, "controller", "ctl")
        self.bin["agent"] = os.path.join(build, "tests/bench/scripted-agent")
        self.etcd = EtcdCluster(self, etcd, etcdctl)
        self.admin = {r: f"127.0.0.1:{free_port()}" for r in REPLICAS}
        self.pop_addr = {r: f"127.0.0.1:{free_port()}" for r in REPLICAS}

    def start_controller(self, replica):
        self.start(replica, [
            self.bin["controller"], "--admin-listen", self.admin[replica], "--pop-listen",
            self.pop_addr[replica], "--plaintext", "--store", self.etcd.url(PREFIX),
            "--etcd-timeout-ms", "2000", "--etcd-measurements-ttl-s", str(TTL_S),
            "--debounce-ms", "20"])
        wait_for(f"controller {replica}",
                 lambda: self.ctl(replica, "pop", "list", check_rc=False).returncode == 0)

    def ctl(self, replica, *args, check_rc=True):
        return run([self.bin["ctl"], "--controller", self.admin[replica], "--plaintext",
                    "--timeout", "5", *args], check=check_rc, timeout=30)

    def start_agent(self, pop, replicas, results, peers):
        cmd = [self.bin["agent"], "--controller", ",".join(self.pop_addr[r] for r in replicas),
               "--pop", pop, "--tunnel", TUNNEL[pop]]
        cmd += [f"--result=web/https/{g}/{a}={rtt}" for g, a, rtt in results]
        cmd += [f"--peer={p}={rtt}" for p, rtt in peers]
        self.start(f"agent-{pop}", cmd)

    def events(self, pop):
        out = []
        for line in self.output(f"agent-{pop}").splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def tables(self, pop):
        return [e for e in self.events(pop) if e.get("event") == "table"]

    def relay(self, pop):
        """What `pop`'s latest table relays "ap" through ("" direct; None
        before any table)."""
        t = self.tables(pop)
        return t[-1]["relay"].get(AP, "") if t else None

    def session_on(self, pop):
        s = [e for e in self.events(pop) if e.get("event") == "session"]
        if not s:
            return None
        return next((r for r in REPLICAS if self.pop_addr[r] == s[-1]["controller"]), None)


def start_sin(bed, replicas):
    bed.start_agent("SIN1", replicas, [("eu", "198.51.100.1", 150), ("ap", AP, 2)],
                    [("FRA1", 45)])


def relayed(bed):
    return wait_for("FRA1's table to relay \"ap\" through SIN1",
                    lambda: bed.relay("FRA1") == TUNNEL["SIN1"], timeout=10)


def dropped_within(bed, since):
    """Seconds from `since` until FRA1's table goes direct."""
    wait_for("FRA1's table to drop the relay", lambda: bed.relay("FRA1") == "", timeout=15)
    return time.monotonic() - since


def steps(bed):
    bed.etcd.start()
    run([bed.bin["controller"], "--store", bed.etcd.url(PREFIX), "--init-only"], timeout=30)
    for r in REPLICAS:
        bed.start_controller(r)
    bed.ctl("A", "accelerator", "create", "web", "--vip", "203.0.113.10")
    bed.ctl("A", "listener", "create", "https", "--accelerator", "web", "--protocol", "tcp",
            "--ports", "443")
    for group, region, address in (("eu", "eu-central", "198.51.100.1"),
                                   ("ap", "ap-southeast", AP)):
        bed.ctl("A", "endpoint-group", "create", group, "--accelerator", "web", "--listener",
                "https", "--region", region)
        bed.ctl("A", "endpoint", "add", address, "--accelerator", "web", "--listener", "https",
                "--endpoint-group", group)
    log("0. etcd cluster of 3 members, replicas A, B, C; groups eu and ap")

    # a. FRA1 on A, SIN1 on B.
    start_sin(bed, "BCA")
    wait_for("SIN1 on B", lambda: bed.session_on("SIN1") == "B" and bed.tables("SIN1"))
    bed.start_agent("FRA1", "ABC", [("eu", "198.51.100.1", 2), ("ap", AP, 151)], [("SIN1", 45)])
    started = time.monotonic()
    relayed(bed)
    check(bed.session_on("FRA1") == "A", "FRA1 on A")
    keys = bed.etcd.keys(PREFIX + "measurements/")
    check(any(k.endswith("/SIN1") for k in keys) and any(k.endswith("/FRA1") for k in keys),
          f"etcd holds both PoPs' shared measurements: {keys}")
    log(f"a. FRA1 (on A) relays \"ap\" through SIN1 (on B) {time.monotonic() - started:.2f} s "
        f"after FRA1 connected")

    # b. kill -9 of SIN1's replica.
    before = len(bed.tables("FRA1"))
    killed = time.monotonic()
    bed.kill("B")
    wait_for("SIN1 on another replica", lambda: bed.session_on("SIN1") in ("A", "C"), timeout=5)
    moved = time.monotonic() - killed
    time.sleep(TTL_S + 1.5)  # B's lease has ended by now
    since = bed.tables("FRA1")[before:]
    check(all(t["relay"].get(AP) == TUNNEL["SIN1"] for t in since),
          f"FRA1 was sent no table without the relay after B died: {since}")
    check(bed.relay("FRA1") == TUNNEL["SIN1"], "FRA1 still relays through SIN1")
    log(f"b. kill -9 of B: SIN1 on {bed.session_on('SIN1')} {moved:.2f} s later; FRA1 kept the "
        f"relay through the move and past B's lease ({len(since)} tables sent meanwhile)")

    # c. SIN1 disconnects entirely.
    killed = time.monotonic()
    bed.kill("agent-SIN1")
    took = dropped_within(bed, killed)
    check(took <= WITHDRAWN_BOUND_S,
          f"FRA1 drops the relay within {WITHDRAWN_BOUND_S} s of SIN1's end (took {took:.2f} s)")
    log(f"c. SIN1's agent killed: FRA1's table went direct {took:.2f} s later")

    # d. SIN1 back on C; then C and SIN1 killed together.
    start_sin(bed, "CA")
    wait_for("SIN1 on C", lambda: bed.session_on("SIN1") == "C")
    relayed(bed)
    killed = time.monotonic()
    bed.kill("C")
    bed.kill("agent-SIN1")
    took = dropped_within(bed, killed)
    check(took <= EXPIRED_BOUND_S,
          f"FRA1 drops the relay within the lease TTL {TTL_S} s + 1.5 s (took {took:.2f} s)")
    check(not any(k.endswith("/SIN1") for k in bed.etcd.keys(PREFIX + "measurements/")),
          "SIN1's key is gone from etcd")
    log(f"d. kill -9 of C with SIN1's agent: SIN1's key expired with C's lease and FRA1's table "
        f"went direct {took:.2f} s later (TTL {TTL_S} s)")


def main():
    return etcd_test_main("a PoP relaying through a PoP on another controller replica", RelayBed,
                          steps, "onramp-relay-")

if __name__ == "__main__":
    sys.exit(main())
