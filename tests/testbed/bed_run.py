"""The frame the end-to-end tests share: whether a bed can run here, the
numbered steps with their times, and the bed brought up, kept or brought
down, its logs shown on a failure."""
import json
import os
import shutil
import time

from harness import SKIP, Failure, log, not_root

TOOLS = ("bird", "birdc", "ethtool", "curl")


def cannot_run():
    """SKIP when a bed cannot run here (not root, a tool missing), else None."""
    if not_root("the test bed needs root (network namespaces)"):
        return SKIP
    for tool in TOOLS:
        if not shutil.which(tool):
            log(f"SKIP: {tool} is not installed (scripts/install-deps installs it)")
            return SKIP
    return None


def run_steps(steps, wanted=None, not_here=None):
    """Runs (number, title, fn) steps in order, each timed; only those in
    `wanted` when given; those in `not_here` (number -> why) are skipped and
    say why."""
    for n, title, fn in steps:
        if wanted is not None and n not in wanted:
            continue
        if not_here and n in not_here:
            log(f"step {n}: {title}: SKIP ({not_here[n]})")
            continue
        t = time.monotonic()
        log(f"step {n}: {title}")
        fn()
        log(f"  (step {n}: {time.monotonic() - t:.0f} s)")


def run_on_bed(bed, title, body, figures, json_path=None, logs=("agent-FRA1", "agent-SIN1"),
               cleanup=None):
    """Brings `bed` up and runs body(); on a Failure shows the tail of the
    named logs and the controller's. cleanup() runs whatever happened, then
    the bed comes down (unless ONRAMP_KEEP_TESTBED=1). The figures go to
    `json_path` when given. Returns the exit code."""
    t_start = time.monotonic()
    try:
        log(f"step: {title}")
        bed.up()
        log(f"  (up: {time.monotonic() - t_start:.0f} s)")
        body()
    except Failure as e:
        log(f"FAIL: {e}")
        log(f"logs: {bed.state}")
        for name in (*logs, "controller"):
            try:
                with open(bed.path(f"{name}.log")) as f:
                    log(f"--- {name} (last lines)\n" + "".join(f.readlines()[-15:]))
            except OSError:
                pass
        return 1
    finally:
        if cleanup:
            cleanup()
        if os.environ.get("ONRAMP_KEEP_TESTBED") != "1":
            bed.down()
    figures["total_s"] = round(time.monotonic() - t_start, 1)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(figures, f, indent=1)
    log(f"figures: {json.dumps(figures)}")
    log(f"PASS in {figures['total_s']:.0f} s")
    return 0
