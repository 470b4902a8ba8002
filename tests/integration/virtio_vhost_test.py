#!/usr/bin/python3
"""The virtio VM path: onramp-dataplane on a virtio_user port against
dpdk-testpmd's vhost-user port (net_vhost), as a dataplane in a VM sees its
host's vhost backend. testpmd forwards a capture of TCP and UDP flows from a
pcap port into the vhost port (io mode), the dataplane encapsulates them and
sends them back, and testpmd writes what comes back to another pcap; every
VIP packet must come back once, encapsulated to its listener's endpoint.

No root, no namespaces, no hugepages (--no-huge memory is memfd-backed,
which vhost-user can map). Exit status 77: skipped (no dpdk-testpmd or no
scapy), with the reason printed first.

usage: virtio_vhost_test.py --dataplane PATH
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

from harness import SKIP, Failure, check, log

TUNNEL_SOURCE = "192.0.2.1"
NEXT_HOP_MAC = "02:00:00:00:00:fe"
CLIENT = "198.51.100.77"
VIP = "203.0.113.10"
WEB_ENDPOINTS = ["198.51.100.1", "198.51.100.2", "198.51.100.3"]
DNS_ENDPOINT = "198.51.100.9"
TCP_FLOWS = 24
UDP_FLOWS = 8

TABLE = f"""
pop: "VIRTIO1"
tunnel_source {{ ipv4: "{TUNNEL_SOURCE}" }}
next_hop_mac: "{NEXT_HOP_MAC}"
listeners {{ name: "web" vips: "{VIP}" protocol: TCP port_ranges {{ first: 80 }}
""" + "".join(f'  endpoints {{ address: "{e}" weight: 100 }}\n' for e in WEB_ENDPOINTS) + f"""}}
listeners {{ name: "dns" vips: "{VIP}" protocol: UDP port_ranges {{ first: 53 }}
  endpoints {{ address: "{DNS_ENDPOINT}" weight: 100 }} }}
"""


def flows():
    """A SYN, then an ACK, of each TCP flow; one datagram of each UDP flow;
    and one packet that is not for a VIP."""
    from scapy.all import IP, TCP, UDP, Ether, Raw

    eth = Ether(src="02:00:00:00:00:0c", dst="02:00:00:00:00:0b")
    pkts = []
    for i in range(TCP_FLOWS):
        for flags in ("S", "A"):
            pkts.append(eth / IP(src=CLIENT, dst=VIP) / TCP(sport=30000 + i, dport=80, flags=flags))
    for i in range(UDP_FLOWS):
        pkts.append(eth / IP(src=CLIENT, dst=VIP) / UDP(sport=31000 + i, dport=53)
                    / Raw(b"onramp-virtio-%d" % i))
    return pkts, eth / IP(src=CLIENT, dst="203.0.113.99") / TCP(sport=32000, dport=80)


def eal(prefix, lcores, mem):
    return ["-l", lcores, "--no-huge", "-m", str(mem), "--no-shconf", "--no-pci",
            "--no-telemetry", f"--file-prefix={prefix}-{os.getpid()}", "--log-level=warning"]


def wait_for(what, pred, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise Failure(f"{what} within {timeout} s")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataplane", required=True)
    args = ap.parse_args()
    testpmd = shutil.which("dpdk-testpmd")
    if not testpmd:
        print("SKIP: no dpdk-testpmd (apt-get install dpdk)", flush=True)
        return SKIP
    try:
        from scapy.all import IP, TCP, UDP, raw, rdpcap, wrpcap
    except ImportError:
        print(f"SKIP: scapy is not importable by {sys.executable}", flush=True)
        return SKIP
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    with tempfile.TemporaryDirectory(prefix="onramp-virtio-") as work:
        sock = os.path.join(work, "vhost.sock")
        in_pcap = os.path.join(work, "in.pcap")
        out_pcap = os.path.join(work, "from-dataplane.pcap")
        table = os.path.join(work, "table.textproto")
        stats_path = os.path.join(work, "stats.json")
        with open(table, "w") as f:
            f.write(TABLE)
        vip_pkts, other = flows()
        wrpcap(in_pcap, vip_pkts + [other])

        tp_log = open(os.path.join(work, "testpmd.log"), "w")
        dp_log_path = os.path.join(work, "dataplane.log")
        dp_log = open(dp_log_path, "w")
        tp = dp = None
        try:
            # testpmd: the vhost-user server (it creates the socket). io mode
            # forwards pcap port 0 <-> vhost port 1; --no-flush-rx keeps it
            # from emptying the pcap port when forwarding starts;
            # --total-num-mbufs leaves memory for the dataplane.
            tp_cmd = [testpmd, *eal("onramp-virtio-testpmd", "0,1", 256),
                      f"--vdev=net_pcap0,rx_pcap={in_pcap},tx_pcap={out_pcap}",
                      f"--vdev=net_vhost0,iface={sock},queues=1", "--", "-i",
                      "--forward-mode=io", "--total-num-mbufs=8192", "--no-flush-rx"]
            log("$ " + " ".join(tp_cmd))
            tp = subprocess.Popen(tp_cmd, stdin=subprocess.PIPE, stdout=tp_log,
                                  stderr=subprocess.STDOUT, text=True)
            wait_for("testpmd created its vhost-user socket", lambda: os.path.exists(sock), 20)

            # The dataplane: the VM side, virtio_user on that socket; it exits
            # 2 s after the last packet.
            dp_cmd = [args.dataplane, *eal("onramp-virtio-dp", "0", 256),
                      f"--vdev=virtio_user0,path={sock},queues=1", "--", "--table", table,
                      "--flows-per-lcore", "65536", "--stats-json", stats_path,
                      "--exit-on-idle-ms", "2000"]
            log("$ " + " ".join(dp_cmd))
            dp = subprocess.Popen(dp_cmd, stdout=dp_log, stderr=subprocess.STDOUT)

            def dp_output():
                with open(dp_log_path) as f:
                    return f.read()

            def dp_up():
                if dp.poll() is not None:
                    raise Failure(f"dataplane exited with {dp.returncode}:\n{dp_output()}")
                return 'msg="port started" id=0 ' in dp_output()

            wait_for("the dataplane's virtio_user port started", dp_up, 20)
            tp.stdin.write("start\n")
            tp.stdin.flush()
            try:
                dp.wait(30)
            except subprocess.TimeoutExpired:
                raise Failure("the dataplane did not go idle and exit in 30 s")
            log(dp_output())
            check(dp.returncode == 0, f"dataplane exit status {dp.returncode}")
            # Stop the dataplane before testpmd (docs/deployment.md, (f)).
            tp.stdin.write("stop\nquit\n")
            tp.stdin.flush()
            tp.wait(20)

            with open(stats_path) as f:
                stats = json.load(f)
            n = len(vip_pkts)
            check(int(stats["rx_packets"]) == n + 1, f"rx_packets {stats['rx_packets']}, want {n + 1}")
            check(int(stats["forwarded"]) == n, f"forwarded {stats['forwarded']}, want {n}")
            check(int(stats["drops"]["non_vip"]) == 1, f"drops {stats['drops']}")
            check(int(stats["new_flows"]) == TCP_FLOWS + UDP_FLOWS,
                  f"new_flows {stats['new_flows']}, want {TCP_FLOWS + UDP_FLOWS}")

            back = [p for p in rdpcap(out_pcap) if IP in p and p[IP].proto == 4]
            check(len(back) == n, f"{len(back)} encapsulated packets came back, want {n}")
            by_inner = {}
            for p in back:
                by_inner.setdefault(raw(p[IP].payload), []).append(p)
            endpoint_of_flow = {}
            for s in vip_pkts:
                got = by_inner.get(raw(s[IP]))
                check(got, f"no encapsulated packet carries {s.summary()} unchanged")
                outer = got[0][IP]
                check(outer.src == TUNNEL_SOURCE, f"outer source {outer.src}")
                if UDP in s:
                    check(outer.dst == DNS_ENDPOINT, f"{s.summary()} went to {outer.dst}")
                else:
                    check(outer.dst in WEB_ENDPOINTS, f"{s.summary()} went to {outer.dst}")
                    # Both packets of a flow go to one endpoint.
                    first = endpoint_of_flow.setdefault(s[TCP].sport, outer.dst)
                    check(first == outer.dst, f"flow {s[TCP].sport} split: {first}, {outer.dst}")
            used = set(endpoint_of_flow.values())
            check(len(used) == len(WEB_ENDPOINTS), f"{TCP_FLOWS} flows used only {sorted(used)}")
            log(f"PASS virtio-vhost: {n} packets of {TCP_FLOWS + UDP_FLOWS} flows through "
                f"testpmd's vhost-user port and back, encapsulated to their endpoints")
            return 0
        except Failure as e:
            log(f"FAIL: {e}")
            for name in ("testpmd.log", "dataplane.log"):
                with open(os.path.join(work, name)) as f:
                    log(f"--- {name}\n" + f.read()[-3000:])
            return 1
        finally:
            for proc in (dp, tp):
                if proc and proc.poll() is None:
                    proc.kill()
                    proc.wait()
            tp_log.close()
            dp_log.close()


if __name__ == "__main__":
    sys.exit(main())
