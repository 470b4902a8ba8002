#!/usr/bin/env python3
"""Configuration as code with real processes: two onramp-controllers on
loopback (no root, no namespaces) and onrampctl apply, diff and export.

  1. A configuration made with imperative commands, exported, applied to an
     empty controller: the second controller exports the same text.
  2. apply twice: the second says "no changes" and changes nothing; diff
     exits 0 then, and 1 (with the fields and values) once the file differs.
  3. Fields a file leaves out keep what the controller has.
  4. --prune deletes what the file's accelerators no longer hold, children
     first, and nothing of an accelerator the file does not name.
  5. A conflict: a file kept from `get -o yaml` (it carries resource_version)
     applied after someone else changed the resource: exit 9, nothing
     written.
  6. JSON (export -o json) and list output (`list -o yaml`) read back, from
     stdin too."""
import argparse
import os
import subprocess
import sys
import tempfile

from harness import (check, free_port, log, missing_binaries, programs, run_test, stop,
                     wait_for)


class Controllers:
    def __init__(self, build, work):
        self.work = work
        self.bin = programs(build, "controller", "ctl")
        self.procs = {}
        self.addr = {}

    def start(self, name):
        addr = f"127.0.0.1:{free_port()}"
        out = open(os.path.join(self.work, f"{name}.log"), "a")
        self.procs[name] = subprocess.Popen(
            [self.bin["controller"], "--admin-listen", addr, "--pop-listen",
             f"127.0.0.1:{free_port()}", "--plaintext", "--init", "--db",
             os.path.join(self.work, f"{name}.db")],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.addr[name] = addr
        wait_for(f"controller {name}",
                 lambda: self.ctl(name, "accelerator", "list", rc=None).returncode == 0)

    def ctl(self, name, *args, rc=0, stdin=None):
        """onrampctl against controller `name`; checks the exit code unless rc
        is None."""
        r = subprocess.run([self.bin["ctl"], "--controller", self.addr[name], "--plaintext",
                            "--timeout", "5", *args], input=stdin, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
        if rc is not None:
            check(r.returncode == rc, f"onrampctl {' '.join(args)}: expected exit {rc}", r)
        return r

    def file(self, name, text):
        path = os.path.join(self.work, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def teardown(self):
        for p in self.procs.values():
            if p.poll() is None:
                stop(p)


def configure(c):
    """A configuration as an operator types it today."""
    web = ["--accelerator", "web"]
    https = web + ["--listener", "https"]
    for cmd in (
        ["accelerator", "create", "web", "--vip", "203.0.113.10", "--vip", "2001:db8::10"],
        ["accelerator", "create", "api", "--vip", "203.0.113.20", "--disabled"],
        ["listener", "create", "https", *web, "--protocol", "tcp", "--ports", "443,8443-8450",
         "--affinity", "source_ip", "--tcp-idle-timeout", "900"],
        ["listener", "create", "dns", *web, "--protocol", "udp", "--ports", "53"],
        ["listener", "create", "http", "--accelerator", "api", "--protocol", "tcp", "--ports",
         "80"],
        ["endpoint-group", "create", "fra", *https, "--region", "eu-central", "--traffic-dial",
         "50", "--health-check", "http", "--health-path", "/healthz", "--health-status",
         "200-204", "--health-interval-ms", "2000"],
        ["endpoint-group", "create", "sin", *https, "--region", "ap-southeast"],
        ["endpoint-group", "create", "eu", *web, "--listener", "dns", "--region", "eu-central"],
        ["endpoint-group", "create", "us", "--accelerator", "api", "--listener", "http",
         "--region", "us-east"],
        ["endpoint", "add", "198.51.100.11", *https, "--endpoint-group", "fra"],
        ["endpoint", "add", "2001:DB8::21", *https, "--endpoint-group", "fra", "--weight", "0",
         "--mode", "gue"],
        ["endpoint", "add", "198.51.100.31", *https, "--endpoint-group", "sin", "--weight", "64"],
        ["endpoint", "add", "198.51.100.41", *web, "--listener", "dns", "--endpoint-group", "eu"],
        ["endpoint", "add", "198.51.100.51", "--accelerator", "api", "--listener", "http",
         "--endpoint-group", "us"],
    ):
        c.ctl("a", *cmd)


def steps(c):
    c.start("a")
    c.start("b")
    configure(c)

    # 1. export -> apply on an empty controller -> the same configuration.
    exported = c.ctl("a", "export").stdout
    check("kind: EndpointGroup" in exported and "resource_version" not in exported
          and "create_time_ms" not in exported, f"export prints output-only fields:\n{exported}")
    check(c.ctl("a", "export").stdout == exported, "export is not stable")
    path = c.file("onramp.yaml", exported)
    r = c.ctl("b", "diff", "-f", path, rc=1)
    check("+ create endpoint web/https/fra/2001:db8::21" in r.stdout, "diff before apply", r)
    r = c.ctl("b", "apply", "-f", path)
    check(r.stdout.endswith("applied: 14 created, 0 updated, 0 deleted\n"), "first apply", r)
    lines = r.stdout.splitlines()
    check(lines.index("created accelerator web") < lines.index("created listener web/https") <
          lines.index("created endpoint group web/https/fra") <
          lines.index("created endpoint web/https/fra/198.51.100.11"), "parents first", r)
    check(c.ctl("b", "export").stdout == exported, "export -> apply -> export differs")
    log("1. export, apply on an empty controller, export again: the same text")

    # 2. Idempotent; diff's exit codes.
    r = c.ctl("b", "apply", "-f", path)
    check(r.stdout == "no changes\n", "second apply changed something", r)
    version = c.ctl("b", "pop", "list", "-o", "jsonpath={.config_version}").stdout
    c.ctl("b", "apply", "-f", path)
    check(c.ctl("b", "pop", "list", "-o", "jsonpath={.config_version}").stdout == version,
          "an apply without changes bumped the configuration version")
    check(c.ctl("b", "diff", "-f", path).stdout == "no changes\n", "diff of the same file")
    edited = exported.replace("traffic_dial_percent: 50", "traffic_dial_percent: 20").replace(
        "interval_ms: 2000", "interval_ms: 3000")
    check(edited != exported, "the edit changed nothing")
    path = c.file("onramp.yaml", edited)
    r = c.ctl("b", "diff", "-f", path, rc=1)
    check(r.stdout == "~ update endpoint group web/https/fra: health_check.interval_ms 2000 -> "
          "3000; traffic_dial_percent 50 -> 20\n0 to create, 1 to update, 0 to delete\n",
          "diff of an edit", r)
    r = c.ctl("b", "apply", "-f", path)
    check(r.stdout == "updated endpoint group web/https/fra (health_check.interval_ms, "
          "traffic_dial_percent)\napplied: 0 created, 1 updated, 0 deleted\n", "apply", r)
    check(c.ctl("b", "apply", "-f", path).stdout == "no changes\n", "apply after the edit")
    log("2. apply twice: no changes the second time; diff exits 0, then 1 with the fields")

    # 3. A file that gives some fields leaves the others as they are.
    partial = c.file("partial.yaml", "kind: EndpointGroup\naccelerator: web\nlistener: https\n"
                     "name: sin\nregion: ap-south\n---\nkind: Endpoint\naccelerator: web\n"
                     "listener: https\nendpoint_group: fra\naddress: 2001:db8:0::21\nweight: 5\n")
    r = c.ctl("b", "apply", "-f", partial)
    check("updated endpoint group web/https/sin (region)" in r.stdout and
          "updated endpoint web/https/fra/2001:db8::21 (weight)" in r.stdout, "partial apply", r)
    g = c.ctl("b", "endpoint-group", "get", "sin", "--accelerator", "web", "--listener", "https",
              "-o", "jsonpath={.region} {.health_check.protocol}").stdout.strip()
    check(g == "ap-south HEALTH_CHECK_TCP", f"partial apply: {g}")
    e = c.ctl("b", "endpoint", "get", "2001:db8::21", "--accelerator", "web", "--listener",
              "https", "--endpoint-group", "fra", "-o", "jsonpath={.weight} {.mode}").stdout.strip()
    check(e == "5 ENCAP_GUE", f"partial apply: {e}")
    log("3. fields a file leaves out keep what the controller has")

    # 4. --prune: only inside the file's accelerators, children first.
    c.ctl("b", "apply", "-f", path)  # back to the whole file
    web_only = c.ctl("b", "export", "--accelerator", "web").stdout
    check("accelerator: api" not in web_only and "name: api" not in web_only, "export --accelerator")
    docs = web_only.split("---\n")
    kept = [d for d in docs if "endpoint_group: sin" not in d and "name: sin\n" not in d]
    check(len(kept) == len(docs) - 2, "the file without group sin")
    pruned = c.file("pruned.yaml", "---\n".join(kept))
    check(c.ctl("b", "diff", "-f", pruned).stdout == "no changes\n", "diff without --prune")
    r = c.ctl("b", "diff", "-f", pruned, "--prune", rc=1)
    check(r.stdout == "- delete endpoint web/https/sin/198.51.100.31\n"
          "- delete endpoint group web/https/sin\n0 to create, 0 to update, 2 to delete\n",
          "diff --prune", r)
    r = c.ctl("b", "apply", "-f", pruned, "--prune")
    check(r.stdout.endswith("applied: 0 created, 0 updated, 2 deleted\n"), "apply --prune", r)
    check(c.ctl("b", "apply", "-f", pruned, "--prune").stdout == "no changes\n",
          "second apply --prune")
    check("name: us" in c.ctl("b", "export", "--accelerator", "api").stdout,
          "--prune touched an accelerator the file does not name")
    log("4. --prune deletes what the file's accelerators no longer hold, nothing else")

    # 5. Conflict: the file was read before someone else's change.
    kept = c.ctl("b", "endpoint-group", "get", "fra", "--accelerator", "web", "--listener",
                 "https", "-o", "yaml").stdout
    check("resource_version:" in kept, "get -o yaml has no resource_version")
    c.ctl("b", "endpoint-group", "update", "fra", "--accelerator", "web", "--listener", "https",
          "--traffic-dial", "70")
    stale = c.file("stale.yaml", kept.replace("region: eu-central", "region: eu-west"))
    r = c.ctl("b", "apply", "-f", stale, rc=9)
    check("changed since it was read" in r.stderr and "endpoint group web/https/fra" in r.stderr,
          "conflict message", r)
    g = c.ctl("b", "endpoint-group", "get", "fra", "--accelerator", "web", "--listener", "https",
              "-o", "jsonpath={.region} {.traffic_dial_percent}").stdout.strip()
    check(g == "eu-central 70", f"a conflicting apply wrote something: {g}")
    log("5. a file based on an older resource_version: exit 9, nothing written")

    # 6. JSON and list output, from stdin.
    c.ctl("b", "apply", "-f", path)
    as_json = c.ctl("a", "export", "-o", "json").stdout
    check(as_json.lstrip().startswith("[") and '"kind": "Endpoint"' in as_json, "export -o json")
    as_json = as_json.replace('"traffic_dial_percent": 50', '"traffic_dial_percent": 20')
    r = c.ctl("b", "apply", "-f", "-", stdin=as_json.replace('"interval_ms": 2000',
                                                             '"interval_ms": 3000'))
    check(r.stdout == "no changes\n", "apply of export -o json", r)
    listed = c.ctl("b", "endpoint", "list", "--accelerator", "web", "-o", "yaml").stdout
    r = c.ctl("b", "diff", "-f", "-", stdin=listed)
    check(r.stdout == "no changes\n", "diff of list -o yaml", r)
    bad = c.ctl("b", "apply", "-f", "-", stdin="kind: Listner\nname: x\n", rc=4)
    check('did you mean "Listener"' in bad.stderr, "a misspelt kind", bad)
    log("6. export -o json and list -o yaml read back from stdin")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    args = ap.parse_args()
    c = Controllers(os.path.abspath(args.build_dir), tempfile.mkdtemp(prefix="onramp-cac-"))
    if missing_binaries(c.bin.values()):
        return 1
    return run_test("configuration as code", c.work, lambda: steps(c), c.teardown)


if __name__ == "__main__":
    sys.exit(main())
