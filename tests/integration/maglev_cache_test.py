#!/usr/bin/python3
"""A dataplane restarted with --maglev-cache (dataplane/core/maglev_cache.h):
the real binary, on net_pcap, started three times with the same 300-listener
table and 64 SYNs to 64 listeners in its rx_pcap.

  1. no file yet: it says so, fills every table, forwards, and leaves the
     file behind when it exits;
  2. with that file: it reads 300 tables, takes all of them from it, and
     sends every SYN to the same endpoint as start 1 (the same frames out);
  3. with the file damaged: it says why it does not use it, fills the tables
     again, and still sends the same frames.

The build times are printed (not asserted: the machine may be busy);
scripts/bench --sections restart measures them.

usage: maglev_cache_test.py DATAPLANE
"""
import os
import re
import struct
import subprocess
import sys
import tempfile

from harness import Failure, check, log, run_test
import workloads

LISTENERS = 300


def frames_of(path):
    """The frames of a pcap file, without their timestamps."""
    with open(path, "rb") as f:
        data = f.read()
    out, at = [], 24
    while at + 16 <= len(data):
        caplen = struct.unpack("<I", data[at + 8:at + 12])[0]
        out.append(data[at + 16:at + 16 + caplen])
        at += 16 + caplen
    return out


def main():
    dataplane = sys.argv[1]
    work = tempfile.mkdtemp(prefix="onramp-maglev-cache-")
    table = os.path.join(work, "table.textproto")
    with open(table, "w") as f:
        f.write(workloads.restart_table(LISTENERS, "maglev-cache"))
    rx = os.path.join(work, "in.pcap")
    step = LISTENERS // 64
    workloads.write_pcap(rx, [
        workloads.frame(workloads.v4(0x64400001 + i), workloads.restart_listener_vip(i * step),
                        40000 + i, workloads.restart_listener_port(i * step), 6, workloads.TCP_SYN)
        for i in range(64)])
    cache = os.path.join(work, "maglev.cache")

    def start(n):
        tx = os.path.join(work, f"out-{n}.pcap")
        r = subprocess.run(
            [dataplane, "--no-pci", "--no-huge", "-m", "256", "--no-shconf",
             "--file-prefix", f"onramp-mc-{os.getpid()}", "--lcores", "0@0,1@1",
             "--log-level=error", f"--vdev=net_pcap0,rx_pcap={rx},tx_pcap={tx}", "--",
             "--table", table, "--exit-on-idle-ms", "300", "--maglev-cache", cache],
            capture_output=True, text=True, timeout=120)
        said = r.stdout + r.stderr
        with open(os.path.join(work, f"dataplane-{n}.log"), "w") as f:
            f.write(said)
        check(r.returncode == 0, f"start {n}: onramp-dataplane exited {r.returncode}")
        built = re.search(r"forwarding table built.*", said)
        check(built, f"start {n}: no 'forwarding table built' line")
        fields = dict(re.findall(r"(\w+)=(\S+)", built.group(0)))
        out = frames_of(tx)
        log(f"start {n}: build_ms={fields.get('build_ms')} "
            f"maglev_filled={fields.get('maglev_filled')} "
            f"maglev_from_cache={fields.get('maglev_from_cache')}, {len(out)} frames out")
        check(len(out) == 64, f"start {n}: {len(out)} frames out, want 64")
        return said, int(fields["maglev_from_cache"]), int(fields["maglev_filled"]), out

    def steps():
        said, cached, filled, first = start(1)
        check("Maglev cache not used" in said and cached == 0 and filled == LISTENERS,
              f"start 1: no file yet, yet {cached} tables came from it, {filled} were filled")
        check(os.path.getsize(cache) > LISTENERS * 1021 * 2,
              f"start 1 left {os.path.getsize(cache) if os.path.exists(cache) else 0} bytes in "
              "the cache file")
        written = os.stat(cache).st_mtime_ns
        said, cached, filled, second = start(2)
        check(cached == LISTENERS and filled == 0,
              f"start 2: {cached} tables from the file, {filled} filled; want {LISTENERS} and 0")
        check(os.stat(cache).st_mtime_ns == written,
              "start 2 wrote the file again, though every table came from it")
        check(second == first, "start 2 sent other frames than start 1")

        with open(cache, "r+b") as f:
            f.seek(os.path.getsize(cache) // 2)
            b = f.read(1)
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([b[0] ^ 0x40]))
        said, cached, filled, third = start(3)
        check(re.search(r"Maglev cache not used.*checksum", said) and cached == 0,
              "start 3: a damaged file was not refused by its checksum")
        check(third == first, "start 3 sent other frames than start 1")

    return run_test("maglev-cache", work, steps, lambda: None)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        log(f"FAIL: {e}")
        sys.exit(1)
