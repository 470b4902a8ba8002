#!/usr/bin/python3
"""Issue 13 item 3 with real processes, no root: two onramp-controller
replicas on loopback, one onramp-agent given both (--controller A,B) and a
stand-in dataplane (fake-dataplane: it takes any table and reports its
version; it forwards nothing, so "keeps its table" is what is checked).

With --etcd ETCD the replicas share one store, as in production: an etcd
member that the test starts on loopback (its own data directory, stopped by
PID), both controllers on --store etcd://.../onramp/test. Without it they do
not share a store: B runs on a copy of A's SQLite file taken while A was
stopped, so both have the same store identity and configuration.

Steps, each asserted:
  1. A configured (4 listeners), stopped, its file copied for B, both started;
  2. the agent, given A then B, runs A's table; on etcd, a listener made
     through B reaches it through A (A watches the store);
  3. kill -9 of A: the agent has a session to B within 2 s, and its
     dataplane kept the table throughout (never empty, never version 0);
     onrampctl given A and B reads and writes through B;
  4. kill -9 of B with A back: the agent moves back to A.

usage: controller_failover_test.py --build-dir DIR [--etcd ETCD]
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

from harness import (check, free_port, kill_group, log, missing_binaries, programs, run,
                     run_test, stop, wait_for)


class Bed:
    def __init__(self, build, work, etcd=None):
        self.work = work
        self.etcd = etcd
        self.etcd_url = None
        self.bin = programs(build, "controller", "agent", "ctl")
        self.bin["fake_dataplane"] = os.path.join(build, "tests/bench/fake-dataplane")
        self.procs = {}
        self.admin = {r: f"127.0.0.1:{free_port()}" for r in "AB"}
        self.pop_addr = {r: f"127.0.0.1:{free_port()}" for r in "AB"}
        self.db = {r: os.path.join(work, f"{r}.db") for r in "AB"}
        self.sock = os.path.join(work, "fra1.sock")
        self.state = os.path.join(work, "state")
        self.table = os.path.join(self.state, "last_good_table.textproto")

    def start(self, name, cmd):
        out = open(os.path.join(self.work, f"{name}.log"), "a")
        self.procs[name] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)

    def kill(self, name, sig=signal.SIGKILL):
        kill_group(self.procs.pop(name, None), sig)

    def start_etcd(self):
        client, peer = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
        self.start("etcd", [
            self.etcd, "--name", "t", "--data-dir", os.path.join(self.work, "etcd"),
            "--listen-client-urls", client, "--advertise-client-urls", client,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"t={peer}", "--log-level", "warn"])
        self.etcd_url = f"etcd://{client[len('http://'):]}/onramp/test"

    def start_controller(self, replica, *extra):
        store = (["--store", self.etcd_url] if self.etcd_url else ["--db", self.db[replica]])
        self.start(replica, [
            self.bin["controller"], "--admin-listen", self.admin[replica], "--pop-listen",
            self.pop_addr[replica], "--plaintext", *store, "--debounce-ms", "20", *extra])
        wait_for(f"controller {replica}",
                 lambda: self.ctl(replica, "pop", "list", check_rc=False).returncode == 0)

    def start_dataplane(self):
        self.start("dataplane", [self.bin["fake_dataplane"], self.sock])
        wait_for("the fake dataplane", lambda: os.path.exists(self.sock))

    def start_agent(self):
        self.start("agent", [
            self.bin["agent"], "--controller", f"{self.pop_addr['A']},{self.pop_addr['B']}",
            "--plaintext", "--pop", "FRA1", "--iata", "FRA", "--city", "Frankfurt", "--country",
            "DE", "--lat", "50.03", "--lon", "8.57", "--tunnel-source-v4", "192.0.2.11",
            "--next-hop-mac", "02:00:00:00:01:fe", "--dataplane-socket", self.sock,
            "--state-dir", self.state, "--status-interval-ms", "100", "--no-probes"])

    def ctl(self, replica, *args, check_rc=True):
        return run([self.bin["ctl"], "--controller", self.admin[replica], "--plaintext",
                    "--timeout", "5", *args], check=check_rc, timeout=30)

    def pop(self, replica):
        r = self.ctl(replica, "pop", "list", "-o", "json", check_rc=False)
        if r.returncode != 0:
            return {}
        pops = json.loads(r.stdout or "{}").get("pops", [])
        return pops[0] if pops else {}

    def dataplane_version(self):
        r = run([self.bin["ctl"], "dataplane", "health", "--socket", self.sock, "-o", "json"],
                check=False, timeout=10)
        return int(json.loads(r.stdout or "{}").get("table_version", 0)) if r.returncode == 0 else -1

    def listeners_on_disk(self):
        with open(self.table) as f:
            return f.read().count("listeners {")

    def teardown(self):
        for name in list(self.procs):
            self.kill(name)


def in_sync(bed, replica):
    p = bed.pop(replica)
    applied, sent = int(p.get("applied_version", 0)), int(p.get("sent_version", 0))
    # Its hosts are listed by the replica that holds its session.
    connected = bool(p.get("hosts"))
    return applied if connected and applied and applied == sent else 0


def steps(bed):
    # 1. One store for both replicas.
    if bed.etcd:
        bed.start_etcd()
        wait_for("etcd", lambda: run([bed.bin["controller"], "--store", bed.etcd_url,
                                      "--init-only"], check=False, timeout=30).returncode == 0)
    bed.start_controller("A", "--init")
    bed.ctl("A", "accelerator", "create", "web", "--vip", "203.0.113.10")
    for i in range(4):
        name = f"l{i}"
        bed.ctl("A", "listener", "create", name, "--accelerator", "web", "--protocol", "tcp",
                "--ports", str(8000 + i))
        bed.ctl("A", "endpoint-group", "create", "eu", "--accelerator", "web", "--listener",
                name, "--region", "eu-central")
        bed.ctl("A", "endpoint", "add", f"198.51.100.{i + 1}", "--accelerator", "web",
                "--listener", name, "--endpoint-group", "eu")
    if bed.etcd:
        bed.start_controller("B")
        log("1. replicas A and B on one etcd store, 4 listeners")
    else:
        stop(bed.procs.pop("A"))
        shutil.copyfile(bed.db["A"], bed.db["B"])
        bed.start_controller("A")
        bed.start_controller("B")
        log("1. replicas A and B on copies of one store, 4 listeners")

    # 2. The agent on A.
    bed.start_dataplane()
    bed.start_agent()
    version = wait_for("FRA1 to apply A's table", lambda: in_sync(bed, "A"))
    wait_for("the last good table on disk", lambda: bed.listeners_on_disk() == 4)
    check(not bed.pop("B").get("hosts"), "FRA1 is not on B yet")
    log(f"2. FRA1 runs A's version {version}")
    listeners = 4
    if bed.etcd:
        # A change made through B reaches FRA1, which is on A (A's watch).
        made = time.monotonic()
        bed.ctl("B", "listener", "create", "l4", "--accelerator", "web", "--protocol", "tcp",
                "--ports", "8004")
        bed.ctl("B", "endpoint-group", "create", "eu", "--accelerator", "web", "--listener",
                "l4", "--region", "eu-central")
        bed.ctl("B", "endpoint", "add", "198.51.100.5", "--accelerator", "web", "--listener",
                "l4", "--endpoint-group", "eu")
        wait_for("FRA1 (on A) to run B's change", lambda: bed.listeners_on_disk() == 5,
                 timeout=5)
        listeners = 5
        version = wait_for("FRA1 in sync with A", lambda: in_sync(bed, "A"))
        log(f"2b. a listener made through B reached FRA1 through A "
            f"{(time.monotonic() - made) * 1000:.0f} ms after the first call (version {version})")

    # 3. A dies without a word; B must have FRA1 within 2 s.
    killed = time.monotonic()
    bed.kill("A")
    moved = None
    lowest = version
    while time.monotonic() - killed < 5:
        lowest = min(lowest, bed.dataplane_version())
        if bed.pop("B").get("hosts"):
            moved = time.monotonic() - killed
            break
        time.sleep(0.02)
    check(moved is not None and moved < 2.0, f"FRA1 on B within 2 s (took {moved})")
    wait_for("FRA1 in sync with B", lambda: in_sync(bed, "B"))
    lowest = min(lowest, bed.dataplane_version())
    check(lowest > 0, f"the dataplane kept a table throughout (lowest version seen {lowest})")
    check(bed.listeners_on_disk() == listeners,
          f"the last good table kept its {listeners} listeners")
    log(f"3. kill -9 of A: FRA1 on B after {moved * 1000:.0f} ms, table kept "
        f"(version {bed.dataplane_version()})")

    # onrampctl given both replicas: reads and writes reach B, A being dead.
    both = [bed.bin["ctl"], "--controller", f"{bed.admin['A']},{bed.admin['B']}", "--plaintext",
            "--timeout", "5"]
    listed = run(both + ["pop", "list", "-o", "json"], timeout=30).stdout
    check("FRA1" in listed, f"onrampctl --controller A,B reads from B: {listed}")
    run(both + ["accelerator", "create", "api", "--vip", "203.0.113.20"], timeout=30)
    check("api" in bed.ctl("B", "accelerator", "list").stdout,
          "onrampctl --controller A,B wrote to B")
    log("3b. onrampctl --controller A,B: reads and a create went to B")

    # 4. And back: A returns, B dies.
    bed.start_controller("A")
    bed.kill("B")
    wait_for("FRA1 back on A", lambda: in_sync(bed, "A"), timeout=5)
    log("4. kill -9 of B: FRA1 back on A")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--etcd", help="etcd binary: the replicas share a store in it")
    args = ap.parse_args()
    bed = Bed(os.path.abspath(args.build_dir), tempfile.mkdtemp(prefix="onramp-failover-"),
              args.etcd)
    if missing_binaries(bed.bin.values()):
        return 1
    title = "agent failover between controller replicas" + (" on etcd" if args.etcd else "")
    return run_test(title, bed.work, lambda: steps(bed), bed.teardown)


if __name__ == "__main__":
    sys.exit(main())
