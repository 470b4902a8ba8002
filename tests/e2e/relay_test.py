#!/usr/bin/python3
"""End to end, in the relay bed (tests/testbed/testbed.py --relay): three
PoPs, a backbone, and relaying over it (docs/routing.md, "Relaying over the
backbone"), asserted with real TCP over IPv4 and IPv6.

  1. the PoP x PoP matrix measures the backbone; the controller relays
     (FRA1, ap-southeast) through SIN1 and not through IAD1 (better than
     direct, not by the margin), and `onrampctl routes --pop FRA1` says why;
  2. the status page, in headless Chromium, shows the PoP x PoP matrix and
     FRA1's path to ap-southeast via SIN1;
  3. through the relay the endpoint sees the client's own address, both
     families, and the relay hop is counted at both PoPs;
  4. a client's TCP connect time through the VIP, relaying on and then off
     (medians of N connects), differs by what the matrix says the relay
     saves, within a margin;
  5. a long-lived TCP connection survives relay on -> off -> on and keeps
     its endpoint;
  6. the backbone FRA1 <-> SIN1 slows from 20 to 120 ms one way, both PoPs
     up: FRA1 stops relaying through SIN1 after the margin's rounds (to
     IAD1 or direct; measured, bounded loosely), and relays through SIN1
     again once the backbone is fast again;
  7. the backbone FRA1 <-> SIN1 cut (every frame between the two dropped,
     both PoPs up and connected): FRA1's dataplane forwards direct within
     1 s of the cut, new connections in a loop keep succeeding (a SYN sent
     into the cut path is sent again by the client, counted), `pop matrix`
     and the status page show FRA1 -> SIN1 down, and after the backbone
     is restored FRA1 relays through SIN1 again;
  8. SIN1's dataplane and agent killed (-9): FRA1's dataplane forwards
     direct again within 1 s (from the kill to the first trace of a new
     flow without the relay), while new connections in a loop keep
     succeeding.

The eu-central group of the web listener is dialled to 0 first, so the
European client's new flows through FRA1 go to ap-southeast, the region
the relay serves.

usage: relay_test.py --build-dir DIR [--connects N] [--json FILE] [--prefix P]
                     [--steps 1,7]
"""
import argparse
import json
import os
import sys
import time

import bed_run
import story
from harness import check, log, wait_for
from relay_story import (AP, connect_loop, connect_loop_result, connects, cut_backbone,
                         dial_to_ap, dp_trace, expected_saving_ms, group_route, kill_relay,
                         matrix_measured, median_ms, relayed_in_trace, set_relay, slow_backbone,
                         via)
from testbed import ALL_POPS, STATUS, Testbed, backbone_ms, client_addr

FAMILIES = (4, 6)
# The bound: a relay's death, or its path's, falls back to direct
# within 1 s.
FALLBACK_BOUND_S = 1.0
# A backbone that slows is left after the margin's rounds (docs/routing.md
# "When the path degrades"); this bound only catches a relay never left.
SLOW_BOUND_S = 15.0


def step_choice(bed):
    paths = wait_for("the PoP x PoP matrix measured", lambda: matrix_measured(bed), timeout=30)
    log("  PoP x PoP matrix:\n" + bed.ctl("pop", "matrix").stdout.rstrip())
    for (a, b), p in sorted(paths.items()):
        rtt, floor = float(p["rtt_ms"]), 2 * backbone_ms(a, b)
        # The emulator holds each frame for its delay, never less; what is
        # added on top is the bed's own scheduling.
        check(floor - 1 <= rtt <= floor + 40,
              f"{a} -> {b} measured {rtt:.1f} ms over a {floor} ms backbone")

    wait_for("FRA1 relaying ap-southeast through SIN1", lambda: via(bed, "FRA1") == "SIN1",
             timeout=40)
    g = group_route(bed, "FRA1")
    log(f"  FRA1 -> ap-southeast: {g.get('path_reason')}")
    check(g.get("relay_candidate") == "SIN1", f"the best candidate should be SIN1: {g}")
    check(float(g["via_rtt_ms"]) < float(g["direct_rtt_ms"]),
          f"via SIN1 should beat direct: {g}")
    text = bed.ctl("routes", "--pop", "FRA1").stdout
    check("via SIN1" in text, f"`routes --pop FRA1` does not explain the relay:\n{text}")
    log("  onrampctl routes --pop FRA1:\n" + text.rstrip())
    # IAD1 is better than direct but not by the margin; the rest stay direct.
    for pop in ALL_POPS:
        for group in ("eu-central", AP):
            v = via(bed, pop, group)
            check(v != "IAD1", f"{pop} relays {group} through IAD1: {group_route(bed, pop, group)}")
    check(via(bed, "FRA1", "eu-central") == "", "FRA1 should reach eu-central directly")
    return {"matrix_ms": {f"{a}->{b}": float(p["rtt_ms"]) for (a, b), p in paths.items()},
            "fra1_ap": {k: g.get(k) for k in ("direct_rtt_ms", "to_relay_ms",
                                                "relay_to_group_ms", "via_rtt_ms", "path_reason")}}


def browse(bed, build_dir, shot_name, *args):
    """status_page_browser.py in the router's namespace, with the PoPs and
    ARGS; its last JSON line, and its exit code. None when Chromium is not
    installed."""
    for tool in ("/usr/bin/chromium", "/usr/bin/chromedriver"):
        if not os.path.exists(tool):
            log(f"  SKIP: {tool} is missing (scripts/install-deps installs it)")
            return None, None
    shot = os.path.join(os.path.abspath(build_dir), "meson-logs", shot_name)
    os.makedirs(os.path.dirname(shot), exist_ok=True)
    helper = os.path.join(os.path.dirname(os.path.abspath(__file__)), "status_page_browser.py")
    r = bed.exec("rtr", ["/usr/bin/python3", helper, "--url", f"http://{STATUS}/", "--pops",
                         ",".join(ALL_POPS), *args, "--screenshot", shot, "--timeout", "15"],
                 check=False, timeout=90, env=dict(os.environ, HOME=bed.path(".")))
    got = json.loads((r.stdout.strip().splitlines() or ["{}"])[-1])
    if r.returncode != 0:
        got["stderr"] = r.stderr[-500:]
    return got, shot


def step_status_page(bed, build_dir):
    got, shot = browse(bed, build_dir, "e2e-relay-status-page.png", "--matrix")
    if got is None:
        return None
    check("matrix" in got, f"the status page did not show the PoP x PoP matrix: {got}")
    log(f"  the page's PoP x PoP matrix (ms): {got['matrix']}; screenshot: {shot}")
    for pair, rtt in got["matrix"].items():
        a, b = pair.split()
        check(rtt >= 2 * backbone_ms(a, b) - 1, f"the page shows {pair} at {rtt} ms")
    path = got.get("paths", {}).get(f"FRA1 web {AP}")
    check(path == "SIN1", f"the page's path of FRA1's web/{AP} is {path!r}, not via SIN1")
    return got["matrix"]


def relayed_counters(bed):
    s = {pop: bed.dp(pop, "stats") or {} for pop in ("FRA1", "SIN1")}
    return int(s["FRA1"].get("relayed_out", 0)), int(s["SIN1"].get("relayed_in", 0))


def step_client_address(bed):
    out0, in0 = relayed_counters(bed)
    for family in FAMILIES:
        a = story.ask(bed, "client", "tcp", family)
        log(f"  client IPv{family} through FRA1 and SIN1: {a['endpoint']} ({a['region']}) saw "
            f"{a['client']}")
        check(a["region"] == AP, f"answered by {a}, not ap-southeast")
        check(a["client_ip"] == client_addr("client", family),
              f"the endpoint saw {a['client_ip']}, not the client's address")
    out1, in1 = relayed_counters(bed)
    log(f"  relayed packets: FRA1 out +{out1 - out0}, SIN1 in +{in1 - in0}")
    check(out1 > out0 and in1 > in0, "the requests did not cross the relay hop")


def connect_median(bed, family, count):
    got = connects(bed, "client", family, count)
    m = median_ms(got)
    check(m is not None, f"connects through the VIP failed: {[c for c in got if 'error' in c]}")
    return m


def step_connect_times(bed, count):
    on = {f: connect_median(bed, f, count) for f in FAMILIES}
    set_relay(bed, False)
    wait_for("FRA1 direct to ap-southeast", lambda: via(bed, "FRA1") == "", timeout=20)
    wait_for("the change applied everywhere", bed.converged, timeout=20)
    off = {f: connect_median(bed, f, count) for f in FAMILIES}
    set_relay(bed, True)
    wait_for("FRA1 relaying through SIN1 again", lambda: via(bed, "FRA1") == "SIN1", timeout=40)
    wait_for("the change applied everywhere", bed.converged, timeout=20)
    saving = expected_saving_ms()
    for f in FAMILIES:
        log(f"  TCP connect through the VIP, IPv{f}, median of {count}: {on[f]:.1f} ms relayed, "
            f"{off[f]:.1f} ms direct (the matrix says the relay saves {saving} ms)")
        # Half the saving the matrix gives: the bed's scheduling noise is a
        # few ms, the saving tens.
        check(off[f] - on[f] >= saving / 2,
              f"IPv{f}: relaying saved {off[f] - on[f]:.1f} ms of a connect, not about {saving}")
    return {"relayed_ms": on, "direct_ms": off, "expected_saving_ms": saving}


def step_long_lived(bed):
    holds = {f: story.Hold(bed, "client", family=f) for f in FAMILIES}
    for f, h in holds.items():
        log(f"  long-lived IPv{f} connection held by {h.endpoint}")
        check(h.endpoint in ("ap1", "ap2"), f"IPv{f}: held by {h.endpoint}, not ap-southeast")
    time.sleep(1)
    set_relay(bed, False)
    wait_for("FRA1 direct", lambda: via(bed, "FRA1") == "", timeout=20)
    wait_for("the change applied everywhere", bed.converged, timeout=20)
    time.sleep(2)
    check(all(h.alive() for h in holds.values()), "a connection broke when relaying went off")
    log("  relaying off: both connections alive")
    set_relay(bed, True)
    wait_for("FRA1 relaying again", lambda: via(bed, "FRA1") == "SIN1", timeout=40)
    wait_for("the change applied everywhere", bed.converged, timeout=20)
    time.sleep(2)
    log("  relaying on again: both connections alive")
    for f, h in holds.items():
        rc, lines = h.finish()
        log(f"  IPv{f} connection: {lines[-1] if lines else 'no output'}")
        check(rc == 0, f"the IPv{f} connection did not survive the path switches: {lines}")


def connect_loop_figures(out, t0, what):
    """Logs and checks the connect loops' results around an event at t0:
    none failed, enough came after it; the connects that needed a SYN sent
    again (over 1 s) are counted, not refused."""
    figures = {}
    for f, got in out.items():
        failed = [c for c in got if "error" in c]
        after = [c for c in got if c["t"] >= t0 - 0.2]
        slow = [c for c in after if c.get("ms", 0) > 1000]
        log(f"  IPv{f}: {len(got)} connects in a loop, {len(after)} from the {what} on, "
            f"{len(failed)} failed, {len(slow)} needed a SYN retry (longest "
            f"{max((c.get('ms', 0) for c in got), default=0):.0f} ms)")
        check(not failed, f"IPv{f}: new connections failed around the {what}: {failed}")
        check(len(after) >= 5, f"IPv{f}: too few connects after the {what} to say anything")
        figures[f"connects_v{f}"] = {"total": len(got), f"after_{what}": len(after),
                                     "syn_retried": len(slow)}
    return figures


def relay_back(bed, t):
    wait_for("FRA1 relaying through SIN1 again", lambda: via(bed, "FRA1") == "SIN1", timeout=40)
    back_s = time.monotonic() - t
    wait_for("the change applied everywhere", bed.converged, timeout=20)
    return back_s


def step_backbone_slows(bed):
    check(relayed_in_trace(dp_trace(bed, "FRA1", 20000)),
          "FRA1's dataplane does not relay a new flow before the backbone slows")
    t0, left_s = slow_backbone(bed, 120, limit_s=SLOW_BOUND_S)
    check(left_s is not None,
          f"FRA1 still relays through SIN1 {SLOW_BOUND_S:.0f} s after its backbone slowed to "
          "120 ms")
    log(f"  backbone FRA1 <-> SIN1 20 -> 120 ms one way: FRA1's dataplane traces new flows "
        f"not via SIN1 {left_s:.2f} s later")
    log(f"  FRA1 -> ap-southeast now: {group_route(bed, 'FRA1').get('path_reason')}")
    t = time.monotonic()
    bed.set_backbone("FRA1", "SIN1", 20)
    back_s = relay_back(bed, t)
    log(f"  backbone fast again: FRA1 relays through SIN1 {back_s:.1f} s later")
    return {"left_s": left_s, "back_s": back_s}


def step_backbone_cut(bed, build_dir):
    check(relayed_in_trace(dp_trace(bed, "FRA1", 20000)),
          "FRA1's dataplane does not relay a new flow before the cut")
    loops = {f: connect_loop(bed, "client", f, 40) for f in FAMILIES}
    time.sleep(1.5)
    t0, fallback_s = cut_backbone(bed, limit_s=10.0)
    out = {f: connect_loop_result(p) for f, p in loops.items()}
    check(fallback_s is not None, "FRA1 still relays new flows through SIN1 10 s after the cut")
    log(f"  backbone FRA1 <-> SIN1 cut: FRA1's dataplane traces new flows direct "
        f"{fallback_s * 1000:.0f} ms after the cut")
    g = group_route(bed, "FRA1")
    log(f"  FRA1 -> ap-southeast now: {g.get('path_reason')}")
    check(g.get("via", "") == "", f"FRA1 should route ap-southeast directly: {g}")
    # Operators see why: pop matrix and the status page show the path down.
    paths = json.loads(bed.ctl("pop", "matrix", "-o", "json").stdout or "{}").get("paths", [])
    held = [p for p in paths if p["from"] == "FRA1" and p["to"] == "SIN1" and p.get("down")]
    check(held, f"pop matrix does not show FRA1 -> SIN1 down during the cut: {paths}")
    got, _ = browse(bed, build_dir, "e2e-relay-status-page-cut.png", "--down", "FRA1,SIN1")
    if got is not None:
        check("down" in got, f"the status page does not show FRA1 -> SIN1 down: {got}")
        log(f"  pop matrix and the status page show FRA1 -> SIN1 down: {got['down']!r}")
    figures = {"fallback_s": fallback_s, **connect_loop_figures(out, t0, "cut")}
    check(fallback_s < FALLBACK_BOUND_S,
          f"FRA1 fell back to direct {fallback_s:.2f} s after the backbone was cut")
    t = time.monotonic()
    bed.cut_backbone("FRA1", "SIN1", on=False)
    figures["back_s"] = relay_back(bed, t)
    log(f"  backbone restored: FRA1 relays through SIN1 {figures['back_s']:.1f} s later")
    return figures


def step_relay_dies(bed):
    # Client ports below the ephemeral range: no flow of the loops has them.
    check(relayed_in_trace(dp_trace(bed, "FRA1", 20000)),
          "FRA1's dataplane does not relay a new flow before the kill")
    loops = {f: connect_loop(bed, "client", f, 40) for f in FAMILIES}
    time.sleep(1.5)
    t0, fallback_s = kill_relay(bed)
    out = {f: connect_loop_result(p) for f, p in loops.items()}
    check(fallback_s is not None, "FRA1 still relays new flows through SIN1 5 s after its death")
    log(f"  SIN1 killed: FRA1's dataplane traces new flows direct {fallback_s * 1000:.0f} ms "
        "after the kill")
    g = group_route(bed, "FRA1")
    log(f"  FRA1 -> ap-southeast now: {g.get('path_reason')}")
    check(g.get("via", "") == "", f"FRA1 should route ap-southeast directly: {g}")
    figures = {"fallback_s": fallback_s, **connect_loop_figures(out, t0, "kill")}
    check(fallback_s < FALLBACK_BOUND_S,
          f"FRA1 fell back to direct {fallback_s:.2f} s after the relay died")
    return figures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--connects", type=int, default=15, help="connects for each median")
    ap.add_argument("--json")
    ap.add_argument("--prefix", help="the bed's name prefix (default: orb and the pid)")
    ap.add_argument("--steps", help="only these steps, comma-separated (1 always runs)")
    args = ap.parse_args()
    skip = bed_run.cannot_run()
    if skip is not None:
        return skip
    bed = Testbed(args.build_dir, prefix=args.prefix or f"orb{os.getpid() % 1000}", relay=True)
    figures = {}
    steps = [
        ("1", "the backbone measured, the relay chosen and explained",
         lambda: figures.__setitem__("choice", step_choice(bed))),
        ("2", "the status page shows the PoP x PoP matrix",
         lambda: figures.__setitem__("status_page_matrix_ms",
                                     step_status_page(bed, args.build_dir))),
        ("3", "the endpoint sees the client's address through the relay",
         lambda: step_client_address(bed)),
        ("4", "TCP connect times with and without the relay",
         lambda: figures.__setitem__("connect", step_connect_times(bed, args.connects))),
        ("5", "a long-lived connection across relay on -> off -> on",
         lambda: step_long_lived(bed)),
        ("6", "the backbone to the relay slows: left after the rounds, and back",
         lambda: figures.__setitem__("backbone_slows", step_backbone_slows(bed))),
        ("7", "the backbone to the relay is cut: direct within 1 s, no new flow lost",
         lambda: figures.__setitem__("backbone_cut", step_backbone_cut(bed, args.build_dir))),
        ("8", "the relay PoP dies: direct within 1 s, no new flow lost",
         lambda: figures.__setitem__("relay_dies", step_relay_dies(bed))),
    ]
    wanted = {"1", *args.steps.split(",")} if args.steps else None

    def body():
        # The European client's web flows go to ap-southeast: the relayed region.
        dial_to_ap(bed)
        wait_for("FRA1 routing web to ap-southeast",
                 lambda: story.shares(bed, "FRA1").get(AP) == 100.0, timeout=30)
        wait_for("the change applied everywhere", bed.converged, timeout=20)
        bed_run.run_steps(steps, wanted)

    return bed_run.run_on_bed(bed, "relay bed up", body, figures, args.json)


if __name__ == "__main__":
    sys.exit(main())
