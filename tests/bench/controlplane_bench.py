#!/usr/bin/python3
"""Config change -> ACK from N PoPs: onramp-controller with N simulated PoPs.

Two ways to simulate the PoPs (--agents):

sim (default): one `sim-agents` process (tests/bench/sim_agents.cc) holds N
PoP sessions, each with its own PoP id and TCP connection, and ACKs every
TableUpdate the moment it arrives. It also drives the changes: each sets one
endpoint's weight through the admin gRPC API (it changes every PoP's table)
and is timed on one monotonic clock from just before the admin call to the
moment the last PoP's ACK is written to its stream ("last_ms", the headline
figure), with the steps on the way (admin call returned, first PoP reached,
each PoP's ACK, and the controller showing every ACK in ListPops).

real: N onramp-agent processes, their dataplanes the sockets of one
fake-dataplane process (tests/bench/fake_dataplane.cc); each change is
`onrampctl endpoint update`, timed until `onrampctl pop list` shows every PoP
on the new version. It includes two onrampctl start-ups per change and, at
200 PoPs, the scheduling of 200 agent processes on this machine.

  controlplane_bench.py --build DIR [--pops 10,50,200] [--changes 100]
                        [--debounce-ms 20] [--agents sim|real] [--json FILE]
                        [--replicas R --etcd ETCD --etcdctl ETCDCTL]
                        [--write-seconds S]

With --replicas R (sim only), R controller replicas run on one 3-member
etcd cluster started on loopback (tests/lib/etcd_cluster.py, etcd's
defaults: fsync on every commit); the simulated PoPs spread over the
replicas round robin and changes go through each replica in turn, so most
changes reach most PoPs through another replica's watch. --write-seconds S
then has two writers per replica change endpoint weights for S seconds:
admin writes per second sustained. Every PoP connects from 127.0.0.1, so
the controllers run with --max-connections-per-peer 5000.

The controller runs with --debounce-ms (default here 20, the controller's own
default is 100): every figure includes it.
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from etcd_cluster import EtcdCluster
from harness import Processes, free_port, run, stop, wait_for


# Every simulated PoP connects from 127.0.0.1: one peer to the connection
# guard, whose default limit (32) would close most sessions.
PER_PEER = "5000"


def pop_id(i):
    return "".join(chr(65 + (i // d) % 26) for d in (676, 26, 1)) + "1"


class Bed:
    def __init__(self, build, work, n, debounce_ms):
        self.build, self.work, self.n = build, work, n
        self.admin = f"127.0.0.1:{free_port()}"
        self.pop_addr = f"127.0.0.1:{free_port()}"
        self.ctl_bin = os.path.join(build, "controlplane/cli/onrampctl")
        self.procs = []
        self.socks = [os.path.join(work, f"dp{i}.sock") for i in range(n)]
        fake = os.path.join(build, "tests/bench/fake-dataplane")
        self.spawn([fake, *self.socks], "fake-dataplane")
        self.spawn([os.path.join(build, "controlplane/controller/onramp-controller"),
                    "--admin-listen", self.admin, "--pop-listen", self.pop_addr, "--plaintext",
                    "--init", "--db", os.path.join(work, "controller.db"), "--debounce-ms",
                    str(debounce_ms)], "controller")
        wait_for("the controller", lambda: self.ctl("pop", "list")[0] == 0, timeout=60.0)
        for i in range(n):
            p = pop_id(i)
            self.spawn([os.path.join(build, "controlplane/agent/onramp-agent"), "--controller",
                        self.pop_addr, "--plaintext", "--pop", p, "--tunnel-source-v4",
                        f"192.0.{2 + i // 250}.{1 + i % 250}", "--next-hop-mac",
                        "02:00:00:00:00:fe", "--dataplane-socket", self.socks[i], "--state-dir",
                        os.path.join(work, f"state-{p}"), "--status-interval-ms", "1000"],
                       f"agent-{p}")
        wait_for(f"{n} PoPs to connect", lambda: self.connected() == n, timeout=120)

    def spawn(self, cmd, name):
        log = open(os.path.join(self.work, name + ".log"), "w")
        self.procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))

    def stop(self):
        for p in reversed(self.procs):
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def ctl(self, *args, fmt=None):
        cmd = [self.ctl_bin, "--controller", self.admin, "--plaintext", "--timeout", "10"]
        if fmt:
            cmd += ["-o", fmt]
        r = subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout, r.stderr

    def must(self, *args):
        rc, out, err = self.ctl(*args)
        if rc != 0:
            raise RuntimeError(f"onrampctl {' '.join(args)}: {err.strip()}")
        return out

    def pops(self):
        rc, out, _ = self.ctl("pop", "list", fmt="json")
        j = json.loads(out or "{}") if rc == 0 else {}
        return j.get("pops", []), int(j.get("config_version", 0))

    def connected(self):
        return sum(p.get("state") == "POP_CONNECTED" for p in self.pops()[0])

    def converged(self):
        pops, version = self.pops()
        return version and len(pops) == self.n and all(
            p.get("state") == "POP_CONNECTED" and int(p.get("applied_version", 0)) == version
            for p in pops)


def start_controller(build, work, debounce_ms):
    """Returns (process, admin address, PoP address, log file)."""
    admin, pop = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    log = open(os.path.join(work, "controller.log"), "w")
    proc = subprocess.Popen([os.path.join(build, "controlplane/controller/onramp-controller"),
                             "--admin-listen", admin, "--pop-listen", pop, "--plaintext",
                             "--init", "--db", os.path.join(work, "controller.db"), "--debounce-ms",
                             str(debounce_ms), "--max-connections-per-peer", PER_PEER],
                            stdout=log, stderr=subprocess.STDOUT)
    return proc, admin, pop, log


def start_replicas(build, procs, cluster, replicas, debounce_ms):
    """R controllers on the etcd cluster, each given every member. Returns
    their admin and PoP addresses."""
    url = cluster.url("/onramp/bench/")
    run([os.path.join(build, "controlplane/controller/onramp-controller"), "--store", url,
         "--init-only"], timeout=60)
    admins, pops = [], []
    for r in range(replicas):
        admin, pop = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
        procs.start(f"controller-{r}", [
            os.path.join(build, "controlplane/controller/onramp-controller"), "--admin-listen",
            admin, "--pop-listen", pop, "--plaintext", "--store", url, "--debounce-ms",
            str(debounce_ms), "--max-connections-per-peer", PER_PEER])
        admins.append(admin)
        pops.append(pop)
    return admins, pops


def measure_sim(build, n, changes, debounce_ms, gap_ms, replicas=1, etcd=None, write_seconds=0):
    work = tempfile.mkdtemp(prefix=f"onramp-cp-sim-{n}-")
    proc = log = None
    procs = Processes(work)
    try:
        if replicas > 1:
            cluster = EtcdCluster(procs, *etcd)
            cluster.start()
            admins, pops = start_replicas(build, procs, cluster, replicas, debounce_ms)
            admin, pop = ",".join(admins), ",".join(pops)
        else:
            proc, admin, pop, log = start_controller(build, work, debounce_ms)
        out = os.path.join(work, "sim.json")
        # sim-agents waits for the controller to listen (wait_for_ready).
        r = subprocess.run([os.path.join(build, "tests/bench/sim-agents"), "--controller", pop,
                            "--admin", admin, "--pops", str(n), "--changes", str(changes),
                            "--gap-ms", str(gap_ms), "--write-seconds", str(write_seconds),
                            "--json", out],
                           capture_output=True, text=True,
                           timeout=60 + changes * 30 + write_seconds * 2)
        if r.returncode != 0:
            if log:
                log.flush()
            tail = ""
            for name in sorted(os.listdir(work)):
                if name.startswith("controller"):
                    with open(os.path.join(work, name), errors="replace") as f:
                        tail += f"--- {name}\n" + f.read()[-2000:]
            raise RuntimeError(f"sim-agents ({n} PoPs) exited {r.returncode}: "
                               f"{r.stderr.strip()}\ncontroller logs:\n{tail}")
        with open(out) as f:
            res = json.load(f)
        last = res["last_ms"]
        res.update({"agents": "sim", "debounce_ms": debounce_ms,
                    "median_ms": round(last["median"], 1), "p99_ms": round(last["p99"], 1),
                    "max_ms": round(last["max"], 1)})
        return res
    finally:
        if proc:
            stop(proc)
        for name in list(procs.procs):
            if name.startswith("controller"):
                procs.kill(name, signal.SIGTERM)
        procs.kill_all()
        if log:
            log.close()
        shutil.rmtree(work, ignore_errors=True)


def measure(build, n, changes, debounce_ms):
    work = tempfile.mkdtemp(prefix=f"onramp-cp-bench-{n}-")
    bed = None
    try:
        bed = Bed(build, work, n, debounce_ms)
        bed.must("accelerator", "create", "web", "--vip", "203.0.113.10")
        bed.must("listener", "create", "http", "--accelerator", "web", "--protocol", "tcp",
                 "--ports", "80")
        bed.must("endpoint-group", "create", "eu", "--accelerator", "web", "--listener", "http",
                 "--region", "eu-central")
        for addr in ("198.51.100.1", "198.51.100.2"):
            bed.must("endpoint", "add", addr, "--accelerator", "web", "--listener", "http",
                     "--endpoint-group", "eu")
        wait_for("the first table at every PoP", bed.converged, timeout=120)
        times = []
        for i in range(changes):
            t0 = time.monotonic()
            bed.must("endpoint", "update", "198.51.100.2", "--accelerator", "web", "--listener",
                     "http", "--endpoint-group", "eu", "--weight", str(60 if i % 2 == 0 else 200))
            wait_for("the change at every PoP", bed.converged, timeout=60, interval=0.002)
            times.append((time.monotonic() - t0) * 1000)
        times.sort()
        return {"pops": n, "changes": changes, "debounce_ms": debounce_ms, "agents": "real",
                "median_ms": round(statistics.median(times), 1),
                "p99_ms": round(times[min(len(times) - 1, int(0.99 * len(times)))], 1),
                "max_ms": round(times[-1], 1)}
    finally:
        if bed:
            bed.stop()
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--pops", default="10,50,200")
    ap.add_argument("--changes", type=int, default=100)
    ap.add_argument("--debounce-ms", type=int, default=100)
    ap.add_argument("--agents", choices=("sim", "real"), default="sim")
    ap.add_argument("--gap-ms", type=int, default=200,
                    help="sim: pause before each change, longer than the debounce: isolated operator changes, not a burst")
    ap.add_argument("--json")
    ap.add_argument("--replicas", type=int, default=1,
                    help="sim: controller replicas on a 3-member etcd cluster "
                    "(needs --etcd, --etcdctl)")
    ap.add_argument("--etcd", help="etcd binary, for --replicas")
    ap.add_argument("--etcdctl", help="etcdctl binary, for --replicas")
    ap.add_argument("--write-seconds", type=int, default=0,
                    help="sim: then change endpoint weights for this long, two writers per replica")
    args = ap.parse_args()
    if args.replicas > 1 and not (args.etcd and args.etcdctl and args.agents == "sim"):
        ap.error("--replicas needs --etcd, --etcdctl and --agents sim")
    results = []
    for n in (int(x) for x in args.pops.split(",")):
        if args.agents == "sim":
            r = measure_sim(args.build, n, args.changes, args.debounce_ms, args.gap_ms,
                            args.replicas, (args.etcd, args.etcdctl), args.write_seconds)
        else:
            r = measure(args.build, n, args.changes, args.debounce_ms)
        print(f"{n:4} PoPs ({r['agents']}): change -> ACK from all: median {r['median_ms']} ms, "
              f"p99 {r['p99_ms']} ms, max {r['max_ms']} ms ({r['changes']} changes, debounce "
              f"{r['debounce_ms']} ms)", flush=True)
        if r["agents"] == "sim":
            print("       " + ", ".join(
                f"{k[:-3]} {r[k]['median']:.1f}/{r[k]['p99']:.1f}"
                for k in ("admin_ms", "first_ms", "each_ms", "last_ms", "recorded_ms")) +
                " ms (median/p99)" + (f", {r['replicas']} replicas on etcd"
                                      if r.get("replicas", 1) > 1 else ""), flush=True)
            if "writes" in r:
                w = r["writes"]
                print(f"       admin writes sustained: {w['per_s']} per s ({w['ok']} "
                      f"acknowledged, {w['conflicts']} conflicts, {w['failed']} failed in "
                      f"{w['seconds']} s)", flush=True)
        results.append(r)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
