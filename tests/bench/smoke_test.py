#!/usr/bin/python3
"""bench-smoke: the benchmark harness works end to end, on tiny captures.

Runs `scripts/bench --smoke` against the build and checks the JSON it
writes: W1..W4 each with mpps, cycles_per_packet, testpmd_mpps and ratio,
all numbers above zero, and W1, W3 and W4 with the share of new flows
their capture was built for (W3's depends on the flow table's hash and
layout); the table-swap, restart, build and flow-state figures present
(swaps losing no packet), and the control-plane figure for 2 and 4
simulated PoPs (sim-agents) with every step of its breakdown; then
`scripts/bench-ab --smoke` alternates two builds (this one twice) and must
report each run and both medians, and refuse a build directory without a
dataplane. It asserts nothing about speed: that is what the full `scripts/bench` run and
docs/performance.md are for.

usage: smoke_test.py --build BUILD_DIR
Without root or without dpdk-testpmd only the control-plane section runs
(it needs neither); the DPDK sections are reported as skipped.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

SRC = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WORKLOAD_KEYS = ("mpps", "cycles_per_packet", "testpmd_mpps", "ratio")
CP_STEPS = ("admin_ms", "first_ms", "last_ms", "each_ms", "recorded_ms")


def controlplane_problems(res):
    """What is wrong with the control-plane figures of a --smoke run."""
    cp = res.get("controlplane")
    if not isinstance(cp, list) or [r.get("pops") for r in cp] != [2, 4]:
        return [f"controlplane: want figures for 2 and 4 PoPs, got {cp!r}"]
    problems = []
    for r in cp:
        n = r["pops"]
        if r.get("agents") != "sim" or r.get("changes") != 3:
            problems.append(f"controlplane {n}: not 3 changes through sim-agents: {r}")
        for step in CP_STEPS:
            f = r.get(step, {})
            if not all(isinstance(f.get(k), (int, float)) and f[k] > 0
                       for k in ("median", "p99", "max")):
                problems.append(f"controlplane {n}: {step} = {f!r}, want numbers > 0")
            elif not f["median"] <= f["p99"] <= f["max"]:
                problems.append(f"controlplane {n}: {step} out of order: {f!r}")
        if not problems:
            # Each change: admin call and first PoP before the last ACK, the
            # controller's record after it.
            if not (r["first_ms"]["max"] <= r["last_ms"]["max"] <= r["recorded_ms"]["max"]):
                problems.append(f"controlplane {n}: steps out of order: {r}")
            if r["median_ms"] != round(r["last_ms"]["median"], 1):
                problems.append(f"controlplane {n}: median_ms is not last_ms's median: {r}")
    return problems


def restart_problems(res):
    """What is wrong with the restart figures: a dataplane started with a
    table forwarded its first packet, with one build thread, with auto and
    with the Maglev cache of the run before."""
    restart = res.get("restart", {})
    problems = []
    for key in ("threads_1", "threads_auto", "maglev_cache"):
        v = restart.get(key, {}).get("start_to_first_tx_ms_p50")
        if not isinstance(v, (int, float)) or not v > 0:
            problems.append(f"restart.{key}.start_to_first_tx_ms_p50 = {v!r}, want a number > 0")
    return problems


def bench_ab_problems(build, work):
    """What is wrong with scripts/bench-ab: one pair of this build against
    itself must give a run and a median each; a missing build is refused."""
    ab = os.path.join(SRC, "scripts", "bench-ab")
    out = os.path.join(work, "ab.json")
    r = subprocess.run([ab, "--smoke", "--pairs", "1", "--json", out, build, build],
                       capture_output=True, text=True, timeout=120)
    print(r.stdout[-2000:])
    if r.returncode != 0:
        return [f"scripts/bench-ab exited {r.returncode}: {r.stderr[-2000:]}"]
    with open(out) as f:
        res = json.load(f)
    problems = []
    for name in ("A", "B"):
        s = res.get(name, {})
        runs = s.get("runs", [])
        if len(runs) != 1 or not all(r.get("cycles_per_packet", 0) > 0 for r in runs):
            problems.append(f"bench-ab {name}: want one run with cycles > 0, got {runs!r}")
        if not s.get("cycles_per_packet_median", 0) > 0 or not s.get("ratio_median", 0) > 0:
            problems.append(f"bench-ab {name}: medians missing: {s!r}")
    if not isinstance(res.get("b_minus_a_cycles"), (int, float)):
        problems.append(f"bench-ab: no B - A figure: {res!r}")
    r = subprocess.run([ab, os.path.join(work, "no-such-build"), build], capture_output=True,
                       text=True, timeout=30)
    if r.returncode != 2 or "not found" not in r.stderr:
        problems.append(f"bench-ab took a build without a dataplane: exit {r.returncode}, "
                        f"{r.stderr[-500:]!r}")
    return problems


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    dpdk = True
    if os.geteuid() != 0:
        print("SKIP (DPDK sections): needs root; running the control-plane section only")
        dpdk = False
    elif not shutil.which("dpdk-testpmd"):
        print("SKIP (DPDK sections): dpdk-testpmd not installed (apt-get install dpdk); "
              "running the control-plane section only")
        dpdk = False
    sections = "throughput,swaps,restart,build,flow_state,controlplane" if dpdk else "controlplane"
    with tempfile.TemporaryDirectory(prefix="onramp-bench-smoke-") as work:
        out = os.path.join(work, "bench.json")
        r = subprocess.run([os.path.join(SRC, "scripts", "bench"), "--smoke", "--build", args.build,
                            "--work", os.path.join(work, "captures"), "--sections", sections,
                            "--json", out], capture_output=True, text=True, timeout=240)
        print(r.stdout[-4000:])
        if r.returncode != 0:
            print("FAIL: scripts/bench exited", r.returncode, r.stderr[-4000:])
            return 1
        with open(out) as f:
            res = json.load(f)
        ab_problems = bench_ab_problems(args.build, work) if dpdk else []
    problems = controlplane_problems(res) + ab_problems
    if not dpdk:
        for p in problems:
            print("FAIL:", p)
        return 1 if problems else 0
    for name in ("W1", "W2", "W3", "W4"):
        w = res.get(name)
        if not isinstance(w, dict):
            problems.append(f"{name} missing")
            continue
        for key in WORKLOAD_KEYS:
            v = w.get(key)
            if not isinstance(v, (int, float)) or not v > 0:
                problems.append(f"{name}.{key} = {v!r}, want a number > 0")
        # The capture does what it was built for (W3 depends on the flow
        # table's hash and layout, which tests/pcap/model.py models). Not
        # W2 here: its tiny pass lasts under a millisecond, so every entry
        # has the same expiry and the table evicts without regard to age.
        share, designed = w.get("new_flow_share"), w.get("designed_new_share")
        if name != "W2" and w.get("new_share_as_designed") is not True:
            problems.append(f"{name}: {share!r} of packets were new flows, "
                            f"the capture was built for {designed!r}")
    swaps = res.get("swaps", {})
    if not swaps.get("swaps", 0) > 0 or swaps.get("packets_during_swaps", 0) <= 0:
        problems.append(f"swaps did not run under traffic: {swaps}")
    elif swaps.get("packets_lost") != 0 or swaps.get("flows_moved") != 0:
        problems.append(f"table swaps lost packets or moved flows: {swaps}")
    problems += restart_problems(res)
    if "build" in res and not all(v > 0 for v in res["build"]["ms"].values()):
        problems.append(f"build figures: {res['build']}")
    fs = res.get("flow_state", {})
    if not fs.get("bytes_per_flow_measured", 0) > 0:
        problems.append(f"flow state: {fs}")
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
