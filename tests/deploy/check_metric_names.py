#!/usr/bin/env python3
"""Every metric the alerting rules and the Grafana dashboard under deploy/
use is one the code exports, and docs/observability.md describes every
metric the code exports: a renamed metric fails here, not in production.

The exported names are the "onramp_..." string literals of the files that
build the metric families; a histogram's name also stands for its _bucket,
_sum and _count series. PromQL words that are not onramp metrics (functions,
labels, Prometheus' own `up`) are ignored."""
import argparse
import json
import os
import re
import sys
import tempfile

import yaml

NAME = re.compile(r"\bonramp_[a-z0-9_]+\b")
LITERAL = re.compile(r'"(onramp_[a-z0-9_]+)"')
SUFFIXES = ("_bucket", "_sum", "_count")


def exported(sources):
    names = set()
    for path in sources:
        with open(path, encoding="utf-8") as f:
            names.update(LITERAL.findall(f.read()))
    return names


def known(name, names):
    if name in names:
        return True
    return any(name.endswith(s) and name[: -len(s)] in names for s in SUFFIXES)


def rule_exprs(path):
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    for group in doc["groups"]:
        for rule in group["rules"]:
            yield f"{path}: rule {rule.get('alert') or rule.get('record')}", rule["expr"]


def dashboard_exprs(path):
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    for panel in doc["panels"]:
        for target in panel.get("targets", []):
            yield f"{path}: panel {panel['title']!r}", target["expr"]
    for var in doc.get("templating", {}).get("list", []):
        q = var.get("query")
        if isinstance(q, dict):
            yield f"{path}: variable {var['name']}", q.get("query", "")


def check(rules, dashboards, docs, sources):
    names = exported(sources)
    problems = []
    if not names:
        problems.append("no metric names found in " + ", ".join(sources))
    for path in rules:
        for where, expr in rule_exprs(path):
            problems += [f"{where}: {n} is not exported" for n in NAME.findall(expr)
                         if not known(n, names)]
    for path in dashboards:
        for where, expr in dashboard_exprs(path):
            problems += [f"{where}: {n} is not exported" for n in NAME.findall(expr)
                         if not known(n, names)]
    for path in docs:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        documented = set(re.findall(r"`(onramp_[a-z0-9_]+)`", text))
        problems += [f"{path}: {n} is exported but not documented" for n in sorted(names - documented)]
        problems += [f"{path}: {n} is documented but not exported" for n in sorted(documented)
                     if not known(n, names)]
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rules", action="append", default=[])
    ap.add_argument("--dashboard", action="append", default=[])
    ap.add_argument("--docs", action="append", default=[])
    ap.add_argument("--source", action="append", default=[], required=True)
    args = ap.parse_args()
    problems = check(args.rules, args.dashboard, args.docs, args.source)
    # The check itself must catch a drifted name: a rule on a metric nobody
    # exports.
    with tempfile.TemporaryDirectory() as tmp:
        drifted = os.path.join(tmp, "drifted.yml")
        with open(drifted, "w", encoding="utf-8") as f:
            f.write("groups:\n- name: x\n  rules:\n  - alert: X\n"
                    "    expr: rate(onramp_new_flow_total[5m]) > 0\n")
        if not check([drifted], [], [], args.source):
            problems.append("self-test: a rule on onramp_new_flow_total was not caught")
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        sys.exit(1)
    print(f"metric names: {len(exported(args.source))} exported, rules, dashboard and docs agree")


if __name__ == "__main__":
    main()
