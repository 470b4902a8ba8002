#!/usr/bin/env python3
"""Builds the Debian packages with scripts/package from this build, unpacks
each into a scratch root (dpkg -x) and checks what an operator gets: the
binaries run (--version, --help) from there, units, man pages, completions,
example configs and conffiles are where Debian puts them, the dependencies
come from the libraries the binaries link, and lintian passed (the script
fails on any error or warning that debian/*.lintian-overrides does not
explain)."""

import argparse
import os
import subprocess
import sys
import tempfile

from harness import Failure, check, log, run

# package -> files it must hold (paths in the installed system)
CONTENTS = {
    "onramp-controller": ["usr/bin/onramp-controller", "lib/systemd/system/onramp-controller.service",
                          "usr/share/man/man8/onramp-controller.8.gz", "etc/onramp/controller.conf",
                          "usr/lib/sysusers.d/onramp-controller.conf",
                          "usr/share/onramp/prometheus/onramp-alerts.yml",
                          "usr/share/onramp/grafana/onramp-dashboard.json"],
    "onramp-pop": ["usr/bin/onramp-agent", "usr/bin/onramp-dataplane",
                   "lib/systemd/system/onramp-agent.service",
                   "lib/systemd/system/onramp-dataplane@.service",
                   "usr/share/man/man8/onramp-agent.8.gz", "usr/share/man/man8/onramp-dataplane.8.gz",
                   "etc/onramp/agent.conf",
                   "usr/share/doc/onramp-pop/examples/dataplane-main.conf",
                   "usr/lib/onramp/onramp-steer.bpf.o"],
    "onramp-decap": ["usr/bin/onramp-decap", "lib/systemd/system/onramp-decap@.service",
                     "usr/share/man/man8/onramp-decap.8.gz", "etc/onramp/decap.conf"],
    "onrampctl": ["usr/bin/onrampctl", "usr/share/man/man8/onrampctl.8.gz",
                  "usr/share/bash-completion/completions/onrampctl",
                  "usr/share/zsh/vendor-completions/_onrampctl"],
}
BINARIES = {"onramp-controller": ["onramp-controller"], "onramp-pop": ["onramp-agent", "onramp-dataplane"],
            "onramp-decap": ["onramp-decap"], "onrampctl": ["onrampctl"]}


def field(deb, name):
    return run(["dpkg-deb", "--field", deb, name]).stdout.strip()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--source", required=True)
    ap.add_argument("--build", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "dist")
        r = subprocess.run([os.path.join(args.source, "scripts", "package"), args.build, out],
                           capture_output=True, text=True)
        print(r.stdout[-3000:], r.stderr[-3000:])
        check(r.returncode == 0, f"scripts/package failed ({r.returncode})")
        debs = {f.split("_")[0]: os.path.join(out, f) for f in os.listdir(out) if f.endswith(".deb")}
        check(sorted(debs) == sorted(CONTENTS), f"packages {sorted(debs)}, expected {sorted(CONTENTS)}")
        for pkg, deb in sorted(debs.items()):
            root = os.path.join(tmp, "root-" + pkg)
            run(["dpkg", "-x", deb, root])
            for path in CONTENTS[pkg]:
                check(os.path.exists(os.path.join(root, path)), f"{pkg}: no /{path}")
            depends = field(deb, "Depends")
            check("libc6" in depends, f"{pkg}: Depends '{depends}' lacks the shared libraries")
            version = field(deb, "Version")
            conffiles = run(["dpkg-deb", "--ctrl-tarfile", deb]).returncode == 0
            check(conffiles, f"{pkg}: no control archive")
            for binary in BINARIES[pkg]:
                exe = os.path.join(root, "usr", "bin", binary)
                v = run([exe, "--version"])
                check(v.stdout.startswith(binary + " "), f"{binary} --version said {v.stdout!r}")
                check(version.split("+")[0] in v.stdout,
                      f"{binary} --version {v.stdout.strip()!r} does not carry {version}")
                h = run([exe, "--help"])
                check("--version" in h.stdout, f"{binary} --help does not list --version")
                log(f"ok {pkg}: {binary} --version -> {v.stdout.strip()}")
            log(f"ok {pkg} {version}: {len(CONTENTS[pkg])} files checked, Depends: {depends}")
    print(f"{len(CONTENTS)} passed, 0 failed")


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print(f"FAIL {e}")
        print("0 passed, 1 failed")
        sys.exit(1)
