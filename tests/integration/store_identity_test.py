#!/usr/bin/python3
"""Issue 12 findings 2 and 4 with real processes: onramp-controller,
onramp-agent and a stand-in dataplane (fake-dataplane: it takes any table
and reports its version), all on loopback, no root.

Steps, each asserted:
  1. finding 2: a controller on a missing or empty --db without --init exits
     non-zero naming --init, and creates nothing; with --init it starts;
  2. the agent runs a table of four listeners from store A;
  3. finding 4: its last good table cut in half (the header kept) is not
     applied at the agent's restart; the controller, told the agent cannot
     vouch for the content, re-sends, and the file is whole again;
  4. finding 2: a controller on a fresh store B is refused by the agent
     (NACK naming the other store); the PoP keeps store A's table and
     `pop list` says why;
  5. `onrampctl pop adopt FRA1`: the agent takes store B's table.

usage: store_identity_test.py --build-dir DIR
"""
import argparse
import json
import os
import sys
import tempfile

from harness import (Processes, check, free_port, log, missing_binaries, programs, run,
                     run_test, wait_for)


class Bed(Processes):
    def __init__(self, build, work):
        super().__init__(work)
        self.bin = programs(build, "controller", "agent", "ctl")
        self.bin["fake_dataplane"] = os.path.join(build, "tests/bench/fake-dataplane")
        self.admin = f"127.0.0.1:{free_port()}"
        self.pop_addr = f"127.0.0.1:{free_port()}"
        self.sock = os.path.join(work, "fra1.sock")
        self.state = os.path.join(work, "state")
        self.table = os.path.join(self.state, "last_good_table.textproto")

    def controller_cmd(self, db, *extra):
        return [self.bin["controller"], "--admin-listen", self.admin, "--pop-listen",
                self.pop_addr, "--plaintext", "--db", db, "--debounce-ms", "20", *extra]

    def start_controller(self, db):
        self.start("controller", self.controller_cmd(db, "--init"))
        wait_for("the controller", lambda: self.ctl("pop", "list", check_rc=False).returncode == 0)

    def start_dataplane(self):
        if os.path.exists(self.sock):
            os.unlink(self.sock)
        self.start("dataplane", [self.bin["fake_dataplane"], self.sock])
        wait_for("the fake dataplane", lambda: os.path.exists(self.sock))

    def start_agent(self):
        self.start("agent", [
            self.bin["agent"], "--controller", self.pop_addr, "--plaintext", "--pop", "FRA1",
            "--iata", "FRA", "--city", "Frankfurt", "--country", "DE", "--lat", "50.03",
            "--lon", "8.57", "--tunnel-source-v4", "192.0.2.11", "--next-hop-mac",
            "02:00:00:00:01:fe", "--dataplane-socket", self.sock, "--state-dir", self.state,
            "--status-interval-ms", "200", "--no-probes"])

    def ctl(self, *args, check_rc=True):
        return run([self.bin["ctl"], "--controller", self.admin, "--plaintext", "--timeout", "5",
                    *args], check=check_rc, timeout=30)

    def pop(self):
        pops = json.loads(self.ctl("pop", "list", "-o", "json").stdout or "{}").get("pops", [])
        return pops[0] if pops else {}

    def listeners_on_disk(self):
        with open(self.table) as f:
            return f.read().count("listeners {")

    def agent_log(self):
        return self.output("agent")

    def teardown(self):
        self.kill_all()


def in_sync(bed):
    p = bed.pop()
    applied, sent = int(p.get("applied_version", 0)), int(p.get("sent_version", 0))
    nacked = int(p.get("nacked_version", 0))
    return applied if applied and applied == sent and not nacked else 0


def steps(bed):
    # 1. No store, no start; --init creates one.
    for db, why in ((os.path.join(bed.work, "typo", "a.db"), "does not exist"),
                    (os.path.join(bed.work, "empty.db"), "the file is empty")):
        if why == "the file is empty":
            open(db, "w").close()
        r = run(bed.controller_cmd(db), check=False, merge_stderr=True, timeout=30)
        check(r.returncode != 0 and "start once with --init" in r.stdout and why in r.stdout,
              f"finding 2: a controller on {db} without --init", r)
    check(not os.path.exists(os.path.join(bed.work, "typo")), "no folder created without --init")
    log("1. finding 2: a missing or empty --db is refused without --init")

    store_a = os.path.join(bed.work, "a.db")
    bed.start_controller(store_a)
    bed.start_dataplane()
    bed.start_agent()
    bed.ctl("accelerator", "create", "web", "--vip", "203.0.113.10")
    for i in range(4):
        name = f"l{i}"
        bed.ctl("listener", "create", name, "--accelerator", "web", "--protocol", "tcp",
                "--ports", str(8000 + i))
        bed.ctl("endpoint-group", "create", "eu", "--accelerator", "web", "--listener", name,
                "--region", "eu-central")
        bed.ctl("endpoint", "add", f"198.51.100.{i + 1}", "--accelerator", "web", "--listener",
                name, "--endpoint-group", "eu")
    version = wait_for("FRA1 to apply store A's table", lambda: in_sync(bed))
    wait_for("the last good table on disk", lambda: bed.listeners_on_disk() == 4)
    log(f"2. FRA1 runs store A's version {version}, 4 listeners")

    # 3. Finding 4: the last good table cut after two listeners, the
    # dataplane still running the version it claims.
    bed.kill("agent")
    with open(bed.table) as f:
        text = f.read()
    cut = text.find("listeners {", text.find("listeners {", text.find("listeners {") + 1) + 1)
    with open(bed.table, "w") as f:
        f.write(text[:cut])
    check(bed.listeners_on_disk() == 2, "the file cut after two listeners")
    bed.start_agent()
    wait_for("the agent to refuse the cut file",
             lambda: "fails its check: not applied" in bed.agent_log())
    wait_for("the controller to re-send the whole table", lambda: bed.listeners_on_disk() == 4)
    wait_for("FRA1 in sync again", lambda: in_sync(bed))
    log("3. finding 4: the cut last good table was refused and the controller re-sent it")

    # 4. Finding 2: a controller on a fresh store B.
    bed.kill("controller")
    bed.start_controller(os.path.join(bed.work, "b.db"))
    nack = wait_for("FRA1 to refuse store B's table",
                    lambda: bed.pop().get("nack_error", ""))
    check("another store" in nack and "onrampctl pop adopt" in nack, f"the NACK: {nack}")
    listed = bed.ctl("pop", "list").stdout
    check("FRA1 refused version" in listed and "another store" in listed, f"pop list: {listed}")
    check(bed.listeners_on_disk() == 4, "FRA1 keeps store A's table")
    log(f"4. finding 2: FRA1 refuses store B's table and keeps its own: {nack[:100]}...")

    # 5. The operator confirms.
    adopted = bed.ctl("pop", "adopt", "FRA1").stdout
    check("adopt" in adopted, f"pop adopt: {adopted}")
    wait_for("FRA1 to take store B's table", lambda: in_sync(bed))
    wait_for("store B's empty table on disk", lambda: bed.listeners_on_disk() == 0)
    check(not bed.pop().get("adopt_pending"), "adopt cleared by the ACK")
    log("5. after pop adopt FRA1 runs store B's table")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    args = ap.parse_args()
    bed = Bed(os.path.abspath(args.build_dir), tempfile.mkdtemp(prefix="onramp-store-id-"))
    if missing_binaries(bed.bin.values()):
        return 1
    return run_test("store identity and table digests", bed.work, lambda: steps(bed),
                    bed.teardown)


if __name__ == "__main__":
    sys.exit(main())
