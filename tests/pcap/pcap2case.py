#!/usr/bin/python3
"""Turns a capture into a new pcap case for cases.py.

  pcap2case.py --binary build/dataplane/onramp-dataplane --table table.textproto \\
      --name my_case --description "what it proves" capture.pcap > new_case.py

Replays the capture through onramp-dataplane once, then prints a case record:
the input frames as hex, the frames the binary sent as the golden output, and
the counters it reported (every non-zero drop reason, forwarded, echo replies,
ICMP errors forwarded, new flows, live flows). Paste it into cases.py.

The golden output is what the binary did, not what it should do: read the
printed frame summaries and check each one against the forwarding rules before
committing (docs/pcap-tests.md), or replace it with golden.encap(...) /
golden.echo_reply(...) expressions built from the rules.
"""

import argparse
import importlib
import os
import pprint
import sys

from scapy.layers.l2 import Ether
from scapy.utils import PcapReader

import pcap_replay

# Every scapy layer, so the frame summaries printed with a case dissect fully.
importlib.import_module("scapy.all")

COUNTERS = ["forwarded", "echo_replies", "icmp_errors_forwarded", "icmp_too_big_sent",
            "fragmented", "fragments_sent", "fragments_forwarded", "new_flows", "flows_live",
            "flow_evictions"]
MAX_FRAMES = 2000


def read_frames(path):
    frames = []
    with PcapReader(path) as reader:
        for pkt in reader:
            if not isinstance(pkt, Ether):
                sys.exit(f"pcap2case: {path}: frame {len(frames)} is not Ethernet "
                         f"({type(pkt).__name__}); net_pcap replays Ethernet only")
            frames.append(bytes(pkt))
    return frames


def quote_table(text):
    if '"""' in text or "\\" in text:
        return repr(text)
    return '"""\\\n' + text + ('' if text.endswith("\n") else "\n") + '"""'


def hex_lines(frames, indent):
    out = []
    for frame in frames:
        out.append(f"{indent}# {Ether(frame).summary()}")
        h = frame.hex()
        chunks = [h[i:i + 64] for i in range(0, len(h), 64)] or [""]
        if len(chunks) == 1:
            out.append(f'{indent}"{chunks[0]}",')
        else:
            out.append(f"{indent}(")
            out.extend(f'{indent}    "{c}"' for c in chunks)
            out.append(f"{indent}),")
    return out


def case_record(name, description, table_text, table_var, frames, run):
    stats = run.stats
    drops = {k: n for k, n in ((k, pcap_replay.counter(v)) for k, v in stats["drops"].items())
             if n}
    counters = {path: pcap_replay.counter(pcap_replay.lookup(stats, path)) for path in COUNTERS}
    lines = ["case(", f"    name={name!r},", f"    description={description!r},"]
    lines.append(f"    table={table_var}," if table_var else f"    table={quote_table(table_text)},")
    lines.append("    input=[")
    lines.extend(hex_lines(frames, " " * 8))
    lines.append("    ],")
    lines.append("    # Observed output of the binary: check every frame against the rules.")
    lines.append("    expected=[")
    lines.extend(hex_lines(run.output, " " * 8))
    lines.append("    ],")
    lines.append(f"    drops={pprint.pformat(drops, width=86)},")
    lines.append("    counters=" + pprint.pformat(counters, width=82).replace("\n", "\n" + " " * 13)
                 + ",")
    lines.append(")")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--binary", required=True, help="path to onramp-dataplane")
    ap.add_argument("--table", required=True, help="forwarding table, protobuf text format")
    ap.add_argument("--table-var", metavar="NAME",
                    help="refer to this table variable of cases.py (e.g. BASE_TABLE) instead "
                    "of inlining the table; the file given with --table must hold the same text")
    ap.add_argument("--name", required=True, help="case name (unique, snake_case)")
    ap.add_argument("--description", default="TODO: what this case proves")
    ap.add_argument("pcap", help="input capture (pcap or pcapng, Ethernet)")
    args = ap.parse_args()

    frames = read_frames(args.pcap)
    if not frames:
        sys.exit(f"pcap2case: {args.pcap} holds no frames")
    if len(frames) > MAX_FRAMES:
        sys.exit(f"pcap2case: {len(frames)} frames; keep a case under {MAX_FRAMES} "
                 "(cut the capture with editcap -r)")
    with open(args.table) as f:
        table_text = f.read()
    run = pcap_replay.run_binary(os.path.abspath(args.binary), table_text, frames)
    if run.rc != 0 or run.stats is None:
        sys.stderr.write(run.stderr)
        sys.exit(f"pcap2case: onramp-dataplane exited {run.rc}; no case written")
    print(case_record(args.name, args.description, table_text, args.table_var, frames, run))
    s = run.stats
    sys.stderr.write(f"pcap2case: {len(frames)} in, {len(run.output)} out; forwarded "
                     f"{s['forwarded']}, echo replies {s['echo_replies']}, dropped "
                     f"{s['dropped']}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
