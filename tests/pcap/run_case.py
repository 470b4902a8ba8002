#!/usr/bin/python3
"""Runs pcap replay cases through onramp-dataplane.

  run_case.py --list
  run_case.py --binary build/dataplane/onramp-dataplane ipv4_4in4 [more names]
  run_case.py --binary ... --all
  run_case.py --binary ... --keep /tmp/case ipv4_4in4   # keep table, pcaps, stats

Exits 0 when every named case passes, 1 otherwise (meson test: one case each).
Needs scapy: run it with Debian's /usr/bin/python3 (python3-scapy).
"""

import argparse
import os
import sys
import time

import cases
import pcap_replay


def run_one(binary, case, keep):
    start = time.monotonic()
    workdir = None
    if keep:
        workdir = os.path.join(keep, case.name)
        os.makedirs(workdir, exist_ok=True)
    result = pcap_replay.run_case(binary, case, workdir)
    problems = pcap_replay.case_problems(result)
    took = time.monotonic() - start
    s = result.stats or {}
    summary = (f"{len(result.input)} in, {len(result.output)} out, forwarded "
               f"{s.get('forwarded', '-')}, echo {s.get('echo_replies', '-')}, dropped "
               f"{s.get('dropped', '-')}, exit {result.runs[0].rc}, {took:.1f}s")
    if problems:
        print(f"FAIL {case.name}: {case.description}")
        print(f"  {summary}")
        for p in problems:
            print(f"  {p}")
        if workdir:
            print(f"  files kept in {workdir}")
        return False
    print(f"PASS {case.name} ({summary})")
    return True


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", help="path to onramp-dataplane")
    ap.add_argument("--list", action="store_true", help="print the case names")
    ap.add_argument("--describe", action="store_true", help="print names and descriptions")
    ap.add_argument("--all", action="store_true", help="run every case")
    ap.add_argument("--keep", metavar="DIR", help="keep each case's files under DIR/NAME")
    ap.add_argument("names", nargs="*")
    args = ap.parse_args()

    if args.list:
        for c in cases.CASES:
            print(c.name)
        return 0
    if args.describe:
        for c in cases.CASES:
            print(f"{c.name}: {c.description}")
        return 0
    if not args.binary:
        ap.error("--binary is required")
    names = [c.name for c in cases.CASES] if args.all else args.names
    if not names:
        ap.error("name a case, or --all")
    unknown = [n for n in names if n not in cases.BY_NAME]
    if unknown:
        ap.error(f"unknown case(s): {', '.join(unknown)}; see --list")
    binary = os.path.abspath(args.binary)
    failed = [n for n in names if not run_one(binary, cases.BY_NAME[n], args.keep)]
    if len(names) > 1:
        print(f"{len(names) - len(failed)} of {len(names)} cases passed"
              + (f"; failed: {' '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
