#!/usr/bin/env python3
"""scripts/dev-ca keeps what it made: a second run for a new PoP, without the
first run's --san options, keeps the controller's certificate and its names
(hardening finding: it re-issued the certificate without its SANs, so every
agent failed after the controller's next restart); a new --san adds a name and
keeps the old ones."""

import argparse
import subprocess
import sys
import tempfile

from harness import Failure, check, run


def sans(cert):
    out = run(["openssl", "x509", "-in", cert, "-noout", "-ext", "subjectAltName"]).stdout
    return {n.strip() for n in out.splitlines()[-1].split(",")}


def fingerprint(cert):
    return run(["openssl", "x509", "-in", cert, "-noout", "-fingerprint", "-sha256"]).stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--dev-ca", required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cert = f"{d}/controller.pem"
        run([args.dev_ca, d, "--san", "ctl.example.net", "--san", "192.0.2.7", "FRA1"])
        first = fingerprint(cert)
        check({"DNS:ctl.example.net", "IP Address:192.0.2.7", "DNS:localhost"} <= sans(cert),
              f"first run's names: {sans(cert)}")
        run([args.dev_ca, d, "SIN1"])
        check(fingerprint(cert) == first, "a run for a new PoP re-issued the controller certificate")
        check("DNS:ctl.example.net" in sans(cert), f"names after adding SIN1: {sans(cert)}")
        check(subprocess.run(["test", "-s", f"{d}/SIN1.pem"]).returncode == 0, "SIN1.pem made")
        run([args.dev_ca, d, "--san", "ctl2.example.net"])
        check(fingerprint(cert) != first, "a new name did not re-issue the certificate")
        check({"DNS:ctl.example.net", "DNS:ctl2.example.net", "IP Address:192.0.2.7"} <= sans(cert),
              f"names after adding ctl2: {sans(cert)}")
        run(["openssl", "verify", "-CAfile", f"{d}/ca.pem", cert])
    print("1 passed, 0 failed")


if __name__ == "__main__":
    try:
        main()
    except Failure as e:
        print(f"FAIL {e}")
        sys.exit(1)
