#!/usr/bin/env python3
"""Checks the systemd units meson install ships: `systemd-analyze verify`
must accept each one (an instance for templates) with not one warning, every
unit is Type=notify with a watchdog and hardening, and the offline security
score stays at or under the bound given for it. ExecStart is pointed at the
binaries of this build, since verify checks that the command exists."""

import argparse
import os
import re
import subprocess
import sys
import tempfile

# unit -> (instance name for templates, highest accepted exposure score)
UNITS = {
    "onramp-controller.service": (None, 4.0),
    "onramp-agent.service": (None, 4.0),
    "onramp-dataplane@.service": ("main", 7.0),
    "onramp-decap@.service": ("eth0", 5.0),
}
REQUIRED = ["Type=notify", "WatchdogSec=", "NoNewPrivileges=yes", "ProtectSystem=strict",
            "CapabilityBoundingSet=", "Restart="]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--units", required=True, help="folder of the configured units")
    ap.add_argument("--bin", action="append", default=[],
                    help="NAME=PATH: where this build's binary NAME is")
    args = ap.parse_args()
    binaries = dict(b.split("=", 1) for b in args.bin)
    problems = []
    with tempfile.TemporaryDirectory() as tmp:
        for unit, (instance, bound) in UNITS.items():
            text = open(os.path.join(args.units, unit)).read()
            for key in REQUIRED:
                if not re.search(r"^" + re.escape(key), text, re.M):
                    problems.append(f"{unit}: no {key}")
            for name, path in binaries.items():
                text = re.sub(r"ExecStart=\S*/" + re.escape(name) + r"\b", "ExecStart=" + path, text)
            with open(os.path.join(tmp, unit), "w") as f:
                f.write(text)
            target = unit
            if instance:
                target = unit.replace("@.", "@" + instance + ".")
                os.symlink(unit, os.path.join(tmp, target))
            r = subprocess.run(["systemd-analyze", "verify", "--man=no", "./" + target], cwd=tmp,
                               capture_output=True, text=True)
            out = (r.stdout + r.stderr).strip()
            if r.returncode != 0 or out:
                problems.append(f"{target}: systemd-analyze verify says:\n{out}")
            r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "./" + target],
                               cwd=tmp, capture_output=True, text=True)
            m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
            if not m:
                problems.append(f"{target}: no security score:\n{r.stdout}{r.stderr}")
            else:
                score = float(m.group(1))
                print(f"{target}: verified, exposure {score} (bound {bound})")
                if score > bound:
                    problems.append(f"{target}: exposure {score} above {bound}")
    for p in problems:
        print("FAIL " + p)
    print(f"{len(UNITS) - len({p.split(':')[0] for p in problems})} passed, "
          f"{len({p.split(':')[0] for p in problems})} failed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
