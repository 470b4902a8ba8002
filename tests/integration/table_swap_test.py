#!/usr/bin/python3
"""Table swaps under full traffic lose no packet and move no flow.

Replays a capture of many interleaved flows from memory (net_pcap
infinite_rx) through onramp-dataplane on one busy-polling lcore, and applies
table after table through the local API while it forwards: tables that
change weights and add an endpoint but keep every endpoint of the first
table healthy. Then checks, from the dataplane's own counters, that every
packet received was forwarded (none dropped, none lost at TX), that no flow
was re-placed (new flows == distinct flows, flows moved == 0), and that
sampled flows are still on the endpoint the first table gave them.

usage: table_swap_test.py DATAPLANE ONRAMPCTL [--swaps N]
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time

from scapy.all import IP, TCP, Ether, wrpcap

from harness import run

FLOWS = 2000
PACKETS_PER_FLOW = 4


def table(version, extra_endpoint, first_weight):
    endpoints = "".join(
        f'  endpoints {{ address: "198.51.100.{i}" weight: {first_weight if i == 1 else 100} }}\n'
        for i in range(1, 9))
    if extra_endpoint:
        endpoints += '  endpoints { address: "198.51.100.9" weight: 200 }\n'
    return f"""version: {version}
pop: "TST1"
tunnel_source {{ ipv4: "192.0.2.1" }}
next_hop_mac: "02:00:00:00:00:fe"
listeners {{
  name: "web"
  vips: "203.0.113.10"
  protocol: TCP
  port_ranges {{ first: 80 }}
{endpoints}}}
"""


def ctl(onrampctl, sock, *args):
    return run([onrampctl, "dataplane", *args, "--socket", sock], check=False, timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dataplane")
    ap.add_argument("onrampctl")
    ap.add_argument("--swaps", type=int, default=100)
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="onramp-swap-")
    pcap = os.path.join(work, "in.pcap")
    sock = os.path.join(work, "dp.sock")
    stats = os.path.join(work, "stats.json")
    clients = [(f"192.0.2.{10 + f % 200}", 10000 + f) for f in range(FLOWS)]
    frames = []
    for _ in range(PACKETS_PER_FLOW):  # interleaved: every flow stays active
        for src, sport in clients:
            frames.append(Ether(dst="02:70:63:61:70:00") / IP(src=src, dst="203.0.113.10") /
                          TCP(sport=sport, dport=80, flags="A"))
    wrpcap(pcap, frames)
    tables = []
    for v in range(args.swaps + 1):
        path = os.path.join(work, f"t{v}.textproto")
        with open(path, "w") as f:
            f.write(table(v + 1, extra_endpoint=v % 2 == 1, first_weight=100 if v % 2 == 0 else 50))
        tables.append(path)

    dp = subprocess.Popen(
        [args.dataplane, "--no-pci", "--no-huge", "-m", "1024", "--no-shconf", "-l", "0",
         "--log-level=error",
         f"--vdev=net_pcap0,rx_pcap={pcap},tx_pcap=/dev/null,infinite_rx=1", "--",
         "--table", tables[0], "--api-socket", sock, "--idle-sleep-max-us", "0",
         "--flows-per-lcore", "65536", "--stats-json", stats, "--print-flows"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.time() + 20
        while ctl(args.onrampctl, sock, "health").returncode != 0:
            if time.time() > deadline or dp.poll() is not None:
                print("dataplane did not come up:", dp.communicate()[0] if dp.poll() is not None else "")
                return 1
            time.sleep(0.1)
        time.sleep(0.3)  # every flow has been placed under the first table

        # Where sampled flows were placed under the first table.
        sample = clients[::97]
        placed = {}
        for src, sport in sample:
            r = ctl(args.onrampctl, sock, "trace", "--client", f"{src}:{sport}", "--vip",
                    "203.0.113.10", "--port", "80", "--protocol", "tcp", "-o", "json")
            if r.returncode != 0:
                print("trace failed:", r.stdout, r.stderr)
                return 1
            placed[(src, sport)] = json.loads(r.stdout)["endpoint"]

        t0 = time.time()
        for v in range(1, args.swaps + 1):
            r = ctl(args.onrampctl, sock, "apply", tables[v])
            if r.returncode != 0:
                print(f"apply of table {v + 1} failed ({r.returncode}):", r.stdout, r.stderr)
                return 1
        elapsed = time.time() - t0
        time.sleep(0.2)
    finally:
        dp.send_signal(signal.SIGTERM)
        out = dp.communicate(timeout=30)[0]
    if dp.returncode != 0:
        print("dataplane exited", dp.returncode, out)
        return 1
    with open(stats) as f:
        s = json.load(f)

    # The proto's JSON mapping writes 64-bit counters as strings.
    for key in ("tables_applied", "dropped", "forwarded", "rx_packets", "new_flows", "flows_moved"):
        s[key] = int(s[key])
    drops = {k: int(v) for k, v in s["drops"].items()}
    port = {k: int(s["ports"][0][k]) for k in ("rx_packets", "tx_packets")}

    failures = []
    if s["tables_applied"] != args.swaps + 1:
        failures.append(f"tables_applied {s['tables_applied']} != {args.swaps + 1}")
    if s["dropped"] != 0:
        failures.append(f"dropped {s['dropped']}: {[(k, v) for k, v in drops.items() if v]}")
    if s["forwarded"] != s["rx_packets"]:
        failures.append(f"forwarded {s['forwarded']} != received {s['rx_packets']}")
    if port["tx_packets"] != port["rx_packets"]:
        failures.append(f"port tx {port['tx_packets']} != port rx {port['rx_packets']}")
    if s["new_flows"] != FLOWS:
        failures.append(f"new_flows {s['new_flows']} != {FLOWS} distinct flows")
    if s["flows_moved"] != 0:
        failures.append(f"flows_moved {s['flows_moved']} != 0")
    final = {(f["client"], f["client_port"]): f["endpoint"] for f in s["flows"]}
    for key, endpoint in placed.items():
        if final.get(key) != endpoint:
            failures.append(f"flow {key[0]}:{key[1]} placed on {endpoint}, now on {final.get(key)}")
    if s["rx_packets"] < 10 * len(frames):
        failures.append(f"only {s['rx_packets']} packets: the replay did not run under the swaps")

    print(f"{args.swaps} swaps in {elapsed:.2f} s; {s['rx_packets']} packets received over the "
          f"run ({FLOWS} flows): forwarded {s['forwarded']}, dropped {s['dropped']}, "
          f"flows moved {s['flows_moved']}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
