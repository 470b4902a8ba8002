#!/usr/bin/env python3
"""onrampctl against a real onramp-dataplane serving its local API.

The dataplane runs with DPDK net_pcap on an idle capture and no hugepages;
onrampctl's `dataplane health | apply | stats | trace` must work on its
socket, and a bad table must come back as exit code 4 naming the field.
Needs root (the dataplane does); exits 77 (skip) without it.
"""

import argparse
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import time

from harness import SKIP, Failure, check, not_root, run, stop


class Ctl:
    def __init__(self, binary, socket):
        self.binary = binary
        self.socket = socket

    def __call__(self, *args, stdin=None, env=None, socket=True):
        cmd = [self.binary, "dataplane", *args]
        if socket:
            cmd += ["--socket", self.socket]
        return run(cmd, check=False, input=stdin, timeout=30, env=env)


def idle_pcap(path):
    # A pcap file header and no packet: the dataplane's port stays idle.
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))


def start_dataplane(binary, workdir, table, socket, name="dataplane"):
    rx = os.path.join(workdir, "idle.pcap")
    idle_pcap(rx)
    cmd = [binary, "--no-pci", "--no-huge", "-m", "512", "--no-shconf", "--no-telemetry",
           f"--file-prefix=onrampctl-{name}-{os.getpid()}", "-l", "0", "--log-level=error",
           f"--vdev=net_pcap0,rx_pcap={rx},tx_pcap={os.path.join(workdir, name + '-tx.pcap')}",
           "--", "--table", table, "--api-socket", socket, "--flows-per-lcore", "4096"]
    log = open(os.path.join(workdir, name + ".log"), "w")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    return proc, log


def refused_start(binary, workdir, table, socket, name):
    """Starts a dataplane that must refuse `socket`; returns what it logged."""
    proc, log = start_dataplane(binary, workdir, table, socket, name)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        stop(proc, timeout=20)
        raise Failure(f"{name}: a second dataplane on {socket} kept running")
    finally:
        log.close()
    with open(os.path.join(workdir, name + ".log")) as f:
        text = f.read()
    check(proc.returncode != 0, f"{name}: exit {proc.returncode}, expected a failure:\n{text}")
    return text


def wait_ready(ctl, proc, workdir):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            with open(os.path.join(workdir, "dataplane.log")) as f:
                raise Failure(f"onramp-dataplane exited with {proc.returncode}:\n{f.read()}")
        if os.path.exists(ctl.socket) and ctl("health").returncode == 0:
            return
        time.sleep(0.1)
    raise Failure("onramp-dataplane did not serve its API within 30 s")


def with_version(text, version):
    return re.sub(r"(?m)^version: \d+$", f"version: {version}", text)


def steps(args, workdir):
    socket = os.path.join(workdir, "api", "dp.sock")
    ctl = Ctl(args.onrampctl, socket)
    with open(args.table) as f:
        table = f.read()
    proc, log = start_dataplane(args.dataplane, workdir, args.table, socket)
    try:
        wait_ready(ctl, proc, workdir)

        r = ctl("health")
        check(r.returncode == 0, "dataplane health", r)
        check(re.search(r"(?m)^pop:\s+FRA1$", r.stdout), "health names the PoP", r)
        check(re.search(r"(?m)^table_version:\s+1$", r.stdout), "health: table version 1", r)
        check("203.0.113.10" in r.stdout, "health lists the VIPs", r)
        r = ctl("health", "-o", "json")
        health = json.loads(r.stdout)
        check(health["table_version"] == "1" and health["pop"] == "FRA1", "health JSON", r)
        check("2001:db8:10::10" in health["vips"], "health JSON VIPs", r)
        r = ctl("health", "-o", "yaml")
        check(re.search(r"(?m)^table_version: 1$", r.stdout), "health YAML", r)
        check(re.search(r"(?m)^  - 203\.0\.113\.10$", r.stdout), "health YAML VIPs", r)

        # A new version from a file, then one from stdin.
        v2 = os.path.join(workdir, "v2.textproto")
        with open(v2, "w") as f:
            f.write(with_version(table, 2).replace(
                'address: "198.51.100.12" weight: 128', 'address: "198.51.100.12" weight: 0'))
        r = ctl("apply", v2)
        check(r.returncode == 0, "apply v2", r)
        check(re.search(r"(?m)^version:\s+2$", r.stdout), "apply prints the version", r)
        check(re.search(r"(?m)^build_us:\s+\d+$", r.stdout), "apply prints build_us", r)
        check(re.search(r"(?m)^publish_us:\s+\d+$", r.stdout), "apply prints publish_us", r)
        r = ctl("apply", "-", "-o", "json", stdin=with_version(table, 3))
        check(r.returncode == 0, "apply v3 from stdin", r)
        check(json.loads(r.stdout)["version"] == "3", "apply JSON", r)
        r = ctl("health")
        check(re.search(r"(?m)^table_version:\s+3$", r.stdout), "health after apply: version 3", r)

        r = ctl("stats")
        check(r.returncode == 0, "dataplane stats", r)
        check(re.search(r"(?m)^tables_applied:\s+3$", r.stdout), "stats: 3 tables applied", r)
        check(re.search(r"(?m)^web\s+\*", r.stdout), "stats: listener web", r)
        check("198.51.100.11" in r.stdout, "stats: endpoints", r)
        stats = json.loads(ctl("stats", "-o", "json").stdout)
        check(stats["table_version"] == "3" and stats["pop"] == "FRA1", "stats JSON")
        check("non_vip" in stats["drops"], "stats JSON: every drop reason")

        r = ctl("trace", "--client", "198.51.100.200:40000", "--vip", "203.0.113.10",
                "--port", "80", "--protocol", "tcp")
        check(r.returncode == 0, "trace", r)
        check(re.search(r"(?m)^listener:\s+web$", r.stdout), "trace: listener web", r)
        m = re.search(r"(?m)^endpoint:\s+(\S+)$", r.stdout)
        check(m and m.group(1) in ("198.51.100.11", "2001:db8:ae::21"),
              "trace: a healthy endpoint with weight > 0", r)
        check("explanation:\n  1. " in r.stdout, "trace explains", r)
        r = ctl("trace", "--client", "[2001:db8::5]:5353", "--vip", "203.0.113.10", "--port",
                "53", "--protocol", "udp", "-o", "json")
        check(r.returncode == 0 and json.loads(r.stdout)["listener"] == "dns", "trace v6 client",
              r)
        r = ctl("trace", "--client", "198.51.100.200", "--vip", "203.0.113.10", "--port", "8080",
                "--protocol", "tcp")
        check(r.returncode == 0 and re.search(r"(?m)^listener:\s+-$", r.stdout),
              "trace: no listener on 8080", r)

        # Bad tables: refused with exit 4, the field named, the table in force kept.
        bad = os.path.join(workdir, "bad.textproto")
        with open(bad, "w") as f:
            f.write(with_version(table, 4).replace("198.51.100.12", "198.51.100.300"))
        r = ctl("apply", bad)
        check(r.returncode == 4, "a bad table: exit 4", r)
        check(re.search(r"^onrampctl: .*bad\.textproto: listeners\[0\]\.endpoints\[1\]\.address: "
                        r"\"198\.51\.100\.300\" is not an IPv4 or IPv6 address", r.stderr),
              "a bad table: the field named", r)
        r = ctl("apply", "--no-validate", bad)
        check(r.returncode == 4, "a bad table refused by the dataplane: exit 4", r)
        check(r.stderr.startswith("onrampctl: table.listeners[0].endpoints[1].address"),
              "the dataplane names the field", r)
        overlap = os.path.join(workdir, "overlap.textproto")
        with open(overlap, "w") as f:
            f.write(with_version(table, 5).replace("port_ranges { first: 53 }",
                                                   "port_ranges { first: 53 }\n"
                                                   "  protocol: TCP_UDP", 1)
                    .replace("protocol: UDP\n", "", 1)
                    .replace("port_ranges { first: 53 }", "port_ranges { first: 80 }", 1))
        r = ctl("apply", "--no-validate", overlap)
        check(r.returncode == 4 and "overlaps" in r.stderr, "overlapping ports refused", r)
        r = ctl("health")
        check(re.search(r"(?m)^table_version:\s+3$", r.stdout), "still version 3", r)

        # The environment names the socket; a wrong socket is "unavailable".
        env = dict(os.environ, ONRAMP_DATAPLANE_SOCKET=socket)
        r = ctl("health", env=env, socket=False)
        check(r.returncode == 0, "ONRAMP_DATAPLANE_SOCKET", r)
        missing = os.path.join(workdir, "missing.sock")
        r = run([args.onrampctl, "dataplane", "health", "--socket", missing, "--timeout", "2"],
                check=False, timeout=30)
        check(r.returncode == 5, "no dataplane: exit 5", r)
        check(r.stderr.startswith(f"onrampctl: dataplane {missing}: "), "names the socket", r)

        # Hardening findings: the socket is 0600, as documented (it was 0700);
        # a second dataplane with the same --api-socket took the live socket
        # over and deleted it on exit; a regular file at the path was deleted.
        mode = os.stat(socket).st_mode & 0o777
        check(mode == 0o600, f"the API socket is {oct(mode)}, not 0600")
        said = refused_start(args.dataplane, workdir, args.table, socket, "second")
        check("another process serves this socket" in said, f"second dataplane says: {said}")
        r = ctl("health")
        check(r.returncode == 0, "the first dataplane still answers after the second gave up", r)
        plain = os.path.join(workdir, "api", "notes.txt")
        with open(plain, "w") as f:
            f.write("keep me\n")
        said = refused_start(args.dataplane, workdir, args.table, plain, "on-a-file")
        check("exists and is not a socket; not removed" in said, f"on a file: {said}")
        with open(plain) as f:
            check(f.read() == "keep me\n", "the regular file at --api-socket is intact")
    finally:
        stop(proc, timeout=20)
        log.close()


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--onrampctl", required=True)
    p.add_argument("--dataplane", required=True)
    p.add_argument("--table", required=True)
    args = p.parse_args()
    if not_root("onramp-dataplane needs root"):
        return SKIP
    with tempfile.TemporaryDirectory(prefix="onrampctl-") as workdir:
        try:
            steps(args, workdir)
        except Failure as e:
            print(f"FAIL: {e}")
            log = os.path.join(workdir, "dataplane.log")
            if os.path.exists(log):
                with open(log) as f:
                    print("dataplane log:\n" + f.read())
            return 1
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
