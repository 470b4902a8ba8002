"""Replays a capture through onramp-dataplane with DPDK net_pcap and checks
the result against a case.

Shared by run_case.py (the meson tests) and pcap2case.py (turns a capture into
a new case). A case is data (see cases.py); this file knows how to replay it
and what must hold afterwards. The helpers every Python test shares (Failure,
wait_for, run, ...) are in tests/lib/harness.py; a replay needs none of them.
"""

import dataclasses
import json
import os
import subprocess
import tempfile
from typing import Callable, Optional

from scapy.layers.l2 import Ether
from scapy.utils import RawPcapReader, RawPcapWriter, hexdump

LINKTYPE_ETHERNET = 1
DEFAULT_ARGS = ["--flows-per-lcore", "4096"]
RUN_TIMEOUT_S = 60


@dataclasses.dataclass
class Case:
    """One pcap test: input, table, and what must come out.

    input / expected: frames as scapy packets, bytes, or hex strings (or a
      function returning them, for big generated captures).
    expected: the golden frames in transmit order, compared byte for byte;
      None when the case only checks a verdict.
    drops: drop counts by reason; every reason not named must stay 0.
    counters: other stats JSON values by dotted path ("flows_live",
      "listeners.0.endpoints.1.new_flows") that must match exactly.
    check: invariants: a function of the Result that returns a list of
      problems (empty when the case holds).
    runs: replay the same capture this many times; every run must produce
      the same output and the same flow list.
    exit_code / stderr_has: for tables the binary must refuse.
    """

    name: str
    description: str
    table: str
    input: list
    expected: Optional[list] = None
    drops: dict = dataclasses.field(default_factory=dict)
    counters: dict = dataclasses.field(default_factory=dict)
    check: Optional[Callable] = None
    args: list = dataclasses.field(default_factory=list)
    runs: int = 1
    exit_code: int = 0
    stderr_has: list = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Run:
    rc: int
    stdout: str
    stderr: str
    output: list  # transmitted frames, bytes
    stats: Optional[dict]


@dataclasses.dataclass
class Result:
    case: Case
    input: list  # frames as bytes
    runs: list  # one Run per replay

    @property
    def output(self):
        return self.runs[0].output

    @property
    def stats(self):
        return self.runs[0].stats

    @property
    def flows(self):
        return (self.stats or {}).get("flows", [])


def frame_bytes(frame):
    if isinstance(frame, (bytes, bytearray)):
        return bytes(frame)
    if isinstance(frame, str):
        return bytes.fromhex(frame)
    return bytes(frame)


def write_pcap(path, frames):
    writer = RawPcapWriter(path, linktype=LINKTYPE_ETHERNET, sync=True)
    writer._write_header(None)
    for i, frame in enumerate(frames):
        # Timestamps 1 ms apart; net_pcap replays as fast as it can anyway.
        writer.write_packet(frame, sec=1700000000 + i // 1000, usec=(i % 1000) * 1000)
    writer.close()


def read_pcap(path):
    if not os.path.exists(path) or os.path.getsize(path) == 0:
        return []
    reader = RawPcapReader(path)
    try:
        return [bytes(data) for data, _meta in reader]
    finally:
        reader.close()


def run_binary(binary, table_text, frames, extra_args=(), workdir=None, keep=False):
    """Replays `frames` (bytes) through the binary once; returns a Run."""
    tmp = None
    if workdir is None:
        tmp = tempfile.TemporaryDirectory(prefix="onramp-pcap-")
        workdir = tmp.name
    try:
        table = os.path.join(workdir, "table.textproto")
        in_pcap = os.path.join(workdir, "in.pcap")
        out_pcap = os.path.join(workdir, "out.pcap")
        stats_json = os.path.join(workdir, "stats.json")
        for path in (out_pcap, stats_json):
            if os.path.exists(path):
                os.unlink(path)
        with open(table, "w") as f:
            f.write(table_text)
        write_pcap(in_pcap, frames)
        cmd = [
            binary, "--no-pci", "--no-huge", "-m", "512", "--no-shconf", "-l", "0",
            "--log-level=warning", f"--vdev=net_pcap0,rx_pcap={in_pcap},tx_pcap={out_pcap}",
            "--", "--table", table, "--exit-on-idle-ms", "200", "--stats-json", stats_json,
            "--print-flows", *DEFAULT_ARGS, *extra_args,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                              cwd=workdir)
        stats = None
        if os.path.exists(stats_json):
            with open(stats_json) as f:
                stats = json.load(f)
        return Run(proc.returncode, proc.stdout, proc.stderr, read_pcap(out_pcap), stats)
    finally:
        if tmp is not None and not keep:
            tmp.cleanup()


def case_frames(frames):
    """Frames of a case as bytes; `frames` may be a function that builds them
    (big generated captures are built only when their case runs)."""
    if callable(frames):
        frames = frames()
    return [frame_bytes(f) for f in frames]


def run_case(binary, case, workdir=None):
    frames = case_frames(case.input)
    runs = []
    for i in range(case.runs):
        wd = None
        if workdir is not None:
            wd = os.path.join(workdir, f"run{i}")
            os.makedirs(wd, exist_ok=True)
        runs.append(run_binary(binary, case.table, frames, case.args, workdir=wd))
    return Result(case, frames, runs)


# ---------------------------------------------------------------------------
# Checking


def lookup(stats, path):
    value = stats
    for part in path.split("."):
        if isinstance(value, list):
            value = value[int(part)]
        else:
            value = value[part]
    return value


def counter(value):
    """A counter of the stats JSON as a number: the proto JSON mapping writes
    64-bit integers as strings ("12"), 32-bit ones as numbers."""
    return int(value)


def frame_diff(expected, got):
    """Human-readable difference between two frames: fields, then bytes."""
    lines = [f"    expected {len(expected)} bytes, got {len(got)} bytes"]
    first = next((i for i in range(min(len(expected), len(got))) if expected[i] != got[i]),
                 min(len(expected), len(got)))
    lines.append(f"    first differing byte at offset {first} (0x{first:x})")
    lines.extend("    " + l for l in field_diff(Ether(expected), Ether(got)))
    lines.append("    expected:")
    lines.extend("      " + l for l in hexdump(expected, dump=True).splitlines())
    lines.append("    got:")
    lines.extend("      " + l for l in hexdump(got, dump=True).splitlines())
    return lines


def field_diff(exp, got):
    out = []
    while exp and got:
        if type(exp) is not type(got):
            out.append(f"layer: expected {exp.name}, got {got.name}")
            break
        for f in exp.fields_desc:
            ev, gv = exp.getfieldval(f.name), got.getfieldval(f.name)
            if f.name == "load" or ev == gv:
                continue
            out.append(f"{exp.name}.{f.name}: expected {f.i2repr(exp, ev)}, "
                       f"got {f.i2repr(got, gv)}")
        exp, got = exp.payload, got.payload
        if not exp or not got:
            break
    return out


def case_problems(result):
    """Every problem with `result`, as lines; empty means the case passed."""
    case = result.case
    problems = []
    run = result.runs[0]
    if run.rc != case.exit_code:
        problems.append(f"exit code: expected {case.exit_code}, got {run.rc}")
        problems.extend("  stderr: " + l for l in run.stderr.strip().splitlines()[-5:])
    for text in case.stderr_has:
        if text not in run.stderr:
            problems.append(f"stderr does not contain {text!r}; stderr was:")
            problems.extend("  " + l for l in run.stderr.strip().splitlines()[-5:])
    if case.exit_code != 0:
        if run.output:
            problems.append(f"a refused table must send nothing; sent {len(run.output)} frames")
        if case.check:
            problems.extend(case.check(result) or [])
        return problems
    if run.stats is None:
        return problems + ["no stats JSON was written"]
    s = run.stats
    rx, rx_bytes = counter(s["rx_packets"]), counter(s["rx_bytes"])
    forwarded, echo_replies = counter(s["forwarded"]), counter(s["echo_replies"])
    # Answered at the PoP: echo replies and ICMP errors for packets too big
    # for their tunnel. Split packets count once in forwarded; their further
    # fragments are extra frames.
    answered = echo_replies + counter(s.get("icmp_too_big_sent", 0))
    extra = counter(s.get("fragments_sent", 0))
    dropped = counter(s["dropped"])
    drops = {reason: counter(n) for reason, n in s["drops"].items()}

    # Accounting: every received packet is forwarded, answered or dropped.
    if rx != len(result.input):
        problems.append(f"rx_packets: expected {len(result.input)}, got {rx}")
    if rx_bytes != sum(len(f) for f in result.input):
        problems.append(f"rx_bytes: expected {sum(len(f) for f in result.input)}, "
                        f"got {rx_bytes}")
    if forwarded + answered + dropped != rx:
        problems.append(f"forwarded {forwarded} + answered {answered} + "
                        f"dropped {dropped} != rx_packets {rx}")
    if sum(drops.values()) != dropped:
        problems.append(f"drops add up to {sum(drops.values())}, dropped is {dropped}")
    if len(run.output) != forwarded + answered + extra:
        problems.append(f"{len(run.output)} frames sent, but forwarded + answered + "
                        f"fragments_sent = {forwarded + answered + extra}")
    tx = sum(counter(p["tx_packets"]) for p in s.get("ports", []))
    if tx != len(run.output):
        problems.append(f"ports tx counter {tx} != {len(run.output)} frames in the output pcap")

    for reason in sorted(set(drops) | set(case.drops)):
        want = case.drops.get(reason, 0)
        got = drops.get(reason)
        if got != want:
            problems.append(f"drops.{reason}: expected {want}, got {got}")
    for path, want in case.counters.items():
        try:
            got = lookup(s, path)
            if isinstance(want, int) and not isinstance(want, bool):
                got = counter(got)
        except (KeyError, IndexError, ValueError):
            got = "<missing>"
        if got != want:
            problems.append(f"{path}: expected {want!r}, got {got!r}")

    if case.expected is not None:
        expected = case_frames(case.expected)
        if len(expected) != len(run.output):
            problems.append(f"output: expected {len(expected)} frames, got {len(run.output)}")
        for i, (e, g) in enumerate(zip(expected, run.output)):
            if e != g:
                problems.append(f"output frame {i} differs from the golden frame:")
                problems.extend(frame_diff(e, g))

    for i, other in enumerate(result.runs[1:], start=1):
        if other.rc != run.rc:
            problems.append(f"run {i}: exit code {other.rc}, run 0: {run.rc}")
        if other.output != run.output:
            n = sum(1 for a, b in zip(run.output, other.output) if a != b)
            problems.append(f"run {i}: output differs from run 0 ({len(other.output)} vs "
                            f"{len(run.output)} frames, {n} differing)")
        if (other.stats or {}).get("flows") != s.get("flows"):
            problems.append(f"run {i}: flow list differs from run 0")

    if case.check:
        problems.extend(case.check(result) or [])
    return problems


# ---------------------------------------------------------------------------
# Reading forwarded frames back, for verdict checks


@dataclasses.dataclass
class Forwarded:
    endpoint: str
    gue: bool
    sport: Optional[int]  # GUE source port
    flow_label: Optional[int]  # outer IPv6
    client: str
    client_port: Optional[int]
    vip: str
    vip_port: Optional[int]
    proto: int

    @property
    def flow(self):
        return (self.client, self.client_port, self.vip, self.vip_port, self.proto)


def decap(frame):
    """Parses a frame the dataplane forwarded; None if it is not a tunnel packet."""
    from scapy.layers.inet import IP, TCP, UDP
    from scapy.layers.inet6 import IPv6

    eth = Ether(frame)
    layer = eth.payload
    while layer.name in ("802.1Q", "802_1AD"):
        layer = layer.payload
    if isinstance(layer, IP):
        outer_proto, label = layer.proto, None
    elif isinstance(layer, IPv6):
        outer_proto, label = layer.nh, layer.fl
    else:
        return None
    body = bytes(layer.payload)
    sport = None
    gue = outer_proto == 17
    if gue:
        sport = int.from_bytes(body[0:2], "big")
        body = body[8:]
        outer_proto = 4 if body[0] >> 4 == 4 else 41
    inner = IP(body) if outer_proto == 4 else IPv6(body) if outer_proto == 41 else None
    if inner is None:
        return None
    l4 = inner.payload
    while l4 and not isinstance(l4, (TCP, UDP)) and l4.name not in ("ICMP", "Raw"):
        l4 = l4.payload
    ports = (l4.sport, l4.dport) if isinstance(l4, (TCP, UDP)) else (None, None)
    proto = 6 if isinstance(l4, TCP) else 17 if isinstance(l4, UDP) else -1
    return Forwarded(layer.dst, gue, sport, label, inner.src, ports[0], inner.dst, ports[1], proto)
