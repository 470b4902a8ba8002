#!/usr/bin/python3
"""bench-smoke: the benchmark harness works end to end, on tiny captures.

Runs `scripts/bench --smoke` against the build and checks the JSON it
writes: W1..W4 each with mpps, cycles_per_packet, testpmd_mpps and ratio,
all numbers above zero, and the table-swap, build and flow-state figures
present (swaps losing no packet). It asserts nothing about speed: that is
what the full `scripts/bench` run and docs/performance.md are for.

usage: smoke_test.py --build BUILD_DIR
Exit 77 (meson: skipped) without root or without dpdk-testpmd.
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


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("SKIP: needs root (DPDK)")
        return 77
    if not shutil.which("dpdk-testpmd"):
        print("SKIP: dpdk-testpmd not installed (apt-get install dpdk)")
        return 77
    with tempfile.TemporaryDirectory(prefix="onramp-bench-smoke-") as work:
        out = os.path.join(work, "bench.json")
        r = subprocess.run([os.path.join(SRC, "scripts", "bench"), "--smoke", "--build", args.build,
                            "--work", os.path.join(work, "captures"), "--json", out],
                           capture_output=True, text=True, timeout=240)
        print(r.stdout[-4000:])
        if r.returncode != 0:
            print("FAIL: scripts/bench exited", r.returncode, r.stderr[-4000:])
            return 1
        with open(out) as f:
            res = json.load(f)
    problems = []
    for name in ("W1", "W2", "W3", "W4"):
        w = res.get(name)
        if not isinstance(w, dict):
            problems.append(f"{name} missing")
            continue
        for key in WORKLOAD_KEYS:
            v = w.get(key)
            if not isinstance(v, (int, float)) or not v > 0:
                problems.append(f"{name}.{key} = {v!r}, want a number > 0")
    swaps = res.get("swaps", {})
    if not swaps.get("swaps", 0) > 0 or swaps.get("packets_during_swaps", 0) <= 0:
        problems.append(f"swaps did not run under traffic: {swaps}")
    elif swaps.get("packets_lost") != 0 or swaps.get("flows_moved") != 0:
        problems.append(f"table swaps lost packets or moved flows: {swaps}")
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
