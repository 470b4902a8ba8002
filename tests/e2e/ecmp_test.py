#!/usr/bin/python3
"""A PoP of two servers behind its router's ECMP (tests/testbed --ecmp,
docs/testbed.md "A PoP of two servers"): FRA1's hosts fra1-a and fra1-b,
each with its dataplane, agent and BIRD, both announcing the VIPs; the
router's kernel spreads flows over them by their L4 hash.

  1. `pop list` shows FRA1 with both hosts, and both dataplanes run the same
     table version;
  2. flows from the client spread over both servers: both dataplanes
     forwarded some, and every answer came from the nearest region;
  3. fra1-b's dataplane, agent and BIRD are killed (-9) under eight
     long-lived TCP connections (some of which, checked by fra1-b's
     counters, the router sends to fra1-b) and a loop of requests:
     the connections survive (ECMP moves them to fra1-a, which sends them to
     the same endpoints), requests fail at most while the router reacts,
     and `pop list` shows FRA1 with one host;
  4. fra1-b comes back (both hosts, the multipath route, one table), then
     hangs: its BIRD and agent stopped (SIGSTOP) and its dataplane killed,
     so that the router notices only when the BGP hold time (3 s) runs out;
     the same checks as 3.

usage: ecmp_test.py --build-dir DIR [--json FILE]
"""
import argparse
import os
import signal
import sys
import threading
import time

import bed_run
import story
from harness import check, log, wait_for
from testbed import ECMP_SERVER, VIPS, Testbed

# Long-lived connections per family. The router's kernel hashes a client's
# packets by the hash its socket gave them (veth keeps it), which is random
# per connection: with 8 connections, all on one server is a 1-in-128 chance.
HOLDS_PER_FAMILY = 4
# What a hung server's step stops (and the end of the test lets go on).
HUNG = ("bird", "agent")


def forwarded(stats):
    return int((stats or {}).get("forwarded", 0))


def request_loop(bed, stop, results):
    """New HTTP requests from the client, one after the other, until `stop`:
    (start, end, ok) each."""
    while not stop.is_set():
        t = time.monotonic()
        r = bed.exec("client", ["curl", "-s", "-m", "1", f"http://{VIPS[4]}:{story.HTTP}/"],
                     check=False)
        results.append((t, time.monotonic(), r.returncode == 0 and "endpoint=" in r.stdout))


def run_test(bed, figures):
    log("step 1: FRA1 with two hosts, one table")
    check(bed.hosts("FRA1") == ["fra1-a", "fra1-b"], f"pop list: {bed.hosts('FRA1')}")
    log("  " + bed.ctl("pop", "list").stdout.replace("\n", "\n  "))
    va = int(bed.dp("FRA1", "stats")["table_version"])
    vb = int(bed.ecmp_dp("stats")["table_version"])
    check(va == vb, f"fra1-a runs table {va}, fra1-b {vb}")

    log("step 2: flows spread over both servers")
    before = (forwarded(bed.dp("FRA1", "stats")), forwarded(bed.ecmp_dp("stats")))
    regions = story.served_by(bed, "client", n=30)
    after = (forwarded(bed.dp("FRA1", "stats")), forwarded(bed.ecmp_dp("stats")))
    spread = {"fra1-a": after[0] - before[0], "fra1-b": after[1] - before[1]}
    log(f"  30 requests: answered by {dict(regions)}; packets forwarded {spread}")
    check(set(regions) == {"eu-central"}, f"answers from {dict(regions)}")
    check(all(v > 0 for v in spread.values()), f"one server forwarded nothing: {spread}")
    figures["spread_packets"] = spread

    log("step 3: fra1-b killed under long-lived connections and a request loop")
    figures["killed"] = server_dies(bed, kill)
    wait_for("FRA1 with one host", lambda: bed.hosts("FRA1") == ["fra1-a"], timeout=15)
    log("  " + bed.ctl("pop", "list").stdout.replace("\n", "\n  "))

    log("step 4: fra1-b back, then hung: its BGP sessions end by the hold time")
    for kind in ("dataplane", "bird", "agent"):
        bed.restart(f"{kind}-{ECMP_SERVER['ns']}")
    wait_for("FRA1's two hosts again", lambda: bed.hosts("FRA1") == ["fra1-a", "fra1-b"],
             timeout=30)
    wait_for("the multipath route again", bed.ecmp_routes, timeout=30)
    wait_for("both hosts on one table", bed.converged, timeout=30)
    # Requests until fra1-b's new dataplane has forwarded some and every one
    # is answered (a failed request counts as not yet).
    wait_for("fra1-b's dataplane forwarding requests",
             lambda: sum(story.served_by(bed, "client", n=4).values()) == 4 and
             forwarded(bed.ecmp_dp("stats")) > 0, timeout=30)
    figures["hung"] = server_dies(bed, hang)


def kill(bed):
    """kill -9 of the server's dataplane, agent and BIRD: its kernel closes
    BIRD's sessions, the router reacts at once."""
    for kind in ("dataplane", "agent", "bird"):
        bed.kill(f"{kind}-{ECMP_SERVER['ns']}")


def hang(bed):
    """The server stops answering without closing anything: its BIRD and
    agent stopped (SIGSTOP, first, so that the agent cannot withdraw the
    VIPs), its dataplane killed; the router keeps the route until the BGP
    hold time (3 s in the bed) has passed."""
    for kind in HUNG:
        bed.send_signal(f"{kind}-{ECMP_SERVER['ns']}", signal.SIGSTOP)
    bed.kill(f"dataplane-{ECMP_SERVER['ns']}")


def server_dies(bed, how):
    """fra1-b dies by `how` under long-lived connections the router hashed
    to it and a request loop; returns the figures."""
    holds = [story.Hold(bed, "client", family=family)
             for family in (4, 6) for _ in range(HOLDS_PER_FAMILY)]
    # Some go through fra1-b: their lines (10 a second each, and the ACKs of
    # the answers) are all the traffic now, and one connection makes ~20
    # packets a second.
    n0, a0 = forwarded(bed.ecmp_dp("stats")), forwarded(bed.dp("FRA1", "stats"))
    time.sleep(1)
    n1, a1 = forwarded(bed.ecmp_dp("stats")), forwarded(bed.dp("FRA1", "stats"))
    log("  connections: " + ", ".join(f"port {h.port} -> {h.endpoint}" for h in holds) +
        f"; packets forwarded in 1 s: fra1-b {n1 - n0}, fra1-a {a1 - a0}")
    check(n1 - n0 >= 10,
          f"no connection goes through fra1-b: it forwarded {n1 - n0} packets in 1 s")
    stop, results = threading.Event(), []
    loop = threading.Thread(target=request_loop, args=(bed, stop, results))
    loop.start()
    try:
        time.sleep(3)
        t_kill = time.monotonic()
        how(bed)
        wait_for("the router's route without fra1-b",
                 lambda: ECMP_SERVER["addr"] not in bed.exec(
                     "rtr", ["ip", "route", "show", VIPS[4]], check=False).stdout, timeout=15)
        t_route = time.monotonic() - t_kill
        time.sleep(4)
    finally:
        stop.set()
        loop.join()
    failed = [(s - t_kill, e - t_kill) for s, e, ok in results if not ok]
    after_kill = [r for r in results if r[0] >= t_kill]
    gap = max((e for s, e in failed), default=0.0)
    log(f"  route via fra1-b gone {t_route * 1000:.0f} ms after the kill; requests after the "
        f"kill: {len(after_kill)}, failed: {len(failed)}, last failure ended "
        f"{gap * 1000:.0f} ms after the kill")
    check(all(s >= -1.0 for s, e in failed), f"requests failed before the kill: {failed}")
    # The router's reaction (at most the BGP hold time, 3 s in the bed),
    # then no failure but a request sent before it (1 s timeout).
    check(t_route <= 4.5, f"the router took {t_route:.1f} s to drop fra1-b's route")
    check(gap <= t_route + 1.5, f"requests failed until {gap:.1f} s after the kill, "
          f"{gap - t_route:.1f} s after the router dropped fra1-b's route")
    for h in holds:
        rc, lines = h.finish()
        gaps = [l["gap_s"] for l in lines if "gap_s" in l]
        log(f"  connection from port {h.port}: {lines[-1] if lines else 'no output'}"
            f"{f', gaps {gaps} s' if gaps else ''}")
        check(rc == 0, f"the connection from port {h.port} did not survive: {lines}")
    return dict(route_gone_s=round(t_route, 3), requests_after_kill=len(after_kill),
                requests_failed=len(failed), failure_gap_s=round(gap, 3),
                connections_survived=len(holds))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--json")
    args = ap.parse_args()
    skip = bed_run.cannot_run()
    if skip is not None:
        return skip
    bed = Testbed(args.build_dir, prefix=f"oq{os.getpid() % 1000}", ecmp=True)
    figures = {}

    def wake_the_hung():
        for kind in HUNG:
            if bed.alive(f"{kind}-{ECMP_SERVER['ns']}"):
                bed.send_signal(f"{kind}-{ECMP_SERVER['ns']}", signal.SIGCONT)

    return bed_run.run_on_bed(bed, "test bed up (--ecmp)", lambda: run_test(bed, figures), figures,
                              args.json, logs=("agent-FRA1", "agent-fra1b"), cleanup=wake_the_hung)


if __name__ == "__main__":
    sys.exit(main())
