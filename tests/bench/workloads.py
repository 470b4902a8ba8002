#!/usr/bin/python3
"""Generates the benchmark workloads: a capture and a forwarding table each.

  PYTHONPATH=tests/pcap workloads.py --out DIR [--scale full|smoke] [W1 W2 ...]

writes, per workload, DIR/<name>.textproto (the table), one capture per RX
queue (DIR/<name>.pcap, or <name>-q0.pcap, <name>-q1.pcap for two queues),
and DIR/<name>.json: what the bench needs to run it (packets per pass, flows,
the flow table size to give the dataplane, how many packets of a pass create a
flow once the replay is in steady state). Files are written only when missing
or made with other parameters, so a second bench run starts at once.

The frames are built with struct, not scapy: a million packets take seconds.

  W1   established: one TCP listener, 64 IPv4 endpoints (IPIP), 1 M distinct
       flows, one 64-byte frame (60 bytes + FCS) per flow per pass, in random
       order. The first pass creates the flows; every later one finds them.
  W2   new flows: the same table; 2 M distinct TCP SYNs per pass against a
       1 M-flow table, so the table is full and a flow is evicted long before
       its SYN comes round again: every packet misses, inserts and evicts.
  W3   mixed: 1000 listeners (TCP and UDP, 5-tuple and source-IP affinity)
       over 16 VIPs (8 IPv4, 8 IPv6), 10 endpoints each (10 000: IPv4 and
       IPv6, IPIP and GUE), IPv4 and IPv6 clients. 90 % of packets belong to
       established flows, 10 % create a flow (see _w3 for how that holds in a
       replay loop).
  W4   W1 with GUE: W1's capture, every endpoint ENCAP_GUE.
  W1x2 W1 split by flow over two captures, one per RX queue (two lcores).
  W1L1, W1L100, W2L1, W2L100
       W1 and W2 with flow logs on, sampling 1 % and 100 % of flows: the same
       captures, the table's listener with flow_log_sample_ppm set (the bench
       reads the records as an agent would, docs/performance.md "Flow logs").
"""

import argparse
import json
import os
import random
import struct

import model  # tests/pcap: the flow table's index hash, for W3's construction

GENERATOR_VERSION = 3
DST_MAC = bytes.fromhex("027063617000")  # net_pcap's own port MAC
SRC_MAC = bytes.fromhex("020000000001")
TCP_SYN = 0x02
TCP_ACK = 0x10

SCALES = {
    # flows: W1 distinct flows; w2_flows: W2 SYNs per pass against a table of
    # w2_table; w3_buckets: flow-table buckets W3 is built around.
    "full": {"flows": 1 << 20, "w2_flows": 2 << 20, "w2_table": 1 << 20, "w3_buckets": 16384},
    "smoke": {"flows": 2048, "w2_flows": 4096, "w2_table": 2048, "w3_buckets": 256},
}


# ---------------------------------------------------------------- frames


def _csum(data, initial=0):
    if len(data) % 2:
        data += b"\0"
    s = initial + sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


def _l4(proto, src16, dst16, sport, dport, flags, seq, v6):
    """TCP (20 bytes) or UDP (8 bytes, no payload) header with its checksum."""
    if proto == 6:
        hdr = struct.pack("!HHIIBBHHH", sport, dport, seq, 0 if flags == TCP_SYN else 1, 5 << 4,
                          flags, 65535, 0, 0)
    else:
        hdr = struct.pack("!HHHH", sport, dport, 8, 0)
    pseudo = (src16 + dst16 if v6 else src16[12:] + dst16[12:]) + struct.pack("!HH", proto,
                                                                              len(hdr))
    c = 0xFFFF - _csum(hdr, _csum(pseudo))
    if proto == 17 and c == 0:
        c = 0xFFFF
    off = 16 if proto == 6 else 6
    return hdr[:off] + struct.pack("!H", c) + hdr[off + 2:]


def frame(client16, vip16, sport, dport, proto=6, flags=TCP_ACK, seq=1):
    """One Ethernet frame client -> VIP, padded to 60 bytes (64 with FCS)."""
    v6 = client16[:12] != b"\0" * 10 + b"\xff\xff"
    l4 = _l4(proto, client16, vip16, sport, dport, flags, seq, v6)
    if v6:
        ip = struct.pack("!IHBB", 6 << 28, len(l4), proto, 64) + client16 + vip16
        eth = DST_MAC + SRC_MAC + b"\x86\xdd"
    else:
        ip = struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(l4), 0, 0x4000, 64, proto, 0)
        ip += client16[12:] + vip16[12:]
        ip = ip[:10] + struct.pack("!H", 0xFFFF - _csum(ip)) + ip[12:]
        eth = DST_MAC + SRC_MAC + b"\x08\x00"
    f = eth + ip + l4
    return f + b"\0" * (60 - len(f)) if len(f) < 60 else f


def write_pcap(path, frames):
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        parts = []
        for i, fr in enumerate(frames):
            parts.append(struct.pack("<IIII", 1700000000 + i // 1000000, i % 1000000, len(fr),
                                     len(fr)))
            parts.append(fr)
            if len(parts) >= 200000:
                f.write(b"".join(parts))
                parts = []
        f.write(b"".join(parts))
    os.replace(tmp, path)


def v4(n):
    return b"\0" * 10 + b"\xff\xff" + struct.pack("!I", n)


def v6(prefix_hex, n):
    return bytes.fromhex(prefix_hex) + struct.pack("!Q", n)


def text(addr16):
    return model.ipaddress.ip_address(addr16[12:] if addr16[:12] == v4(0)[:12] else addr16).compressed


# ---------------------------------------------------------------- tables

TABLE_HEAD = """# Generated by tests/bench/workloads.py ({name}); do not edit.
version: 1
pop: "BEN1"
tunnel_source {{ ipv4: "192.0.2.1" ipv6: "2001:db8:f1::1" }}
next_hop_mac: "02:00:00:00:00:fe"
"""

W1_VIP = v4(0xCB00710A)  # 203.0.113.10
W1_PORT = 80


def restart_table(listeners, name="restart"):
    """A big table for restarts: `listeners` TCP listeners r<i> of 64 IPv4
    endpoints each, weights 50..199, none sharing its endpoints with another
    (each needs a Maglev fill of its own). Listener i is
    restart_listener_vip(i):restart_listener_port(i)."""
    return TABLE_HEAD.format(name=name) + "".join(
        f'listeners {{ name: "r{i}" vips: "203.0.113.{10 + i % 16}" protocol: TCP '
        f'port_ranges {{ first: {restart_listener_port(i)} }}\n' + "".join(
            f'  endpoints {{ address: "10.{1 + (i * 64 + j) // 65536}.'
            f'{(i * 64 + j) // 256 % 256}.{(i * 64 + j) % 256}" weight: {50 + (i * 64 + j) * 37 % 150} }}\n'
            for j in range(64)) + "}\n" for i in range(listeners))


def restart_listener_vip(i):
    return v4(0xCB007100 + 10 + i % 16)


def restart_listener_port(i):
    return 80 + i // 16


def _single_listener_table(name, mode):
    eps = "".join(f'  endpoints {{ address: "10.1.0.{i}" weight: 100{mode} }}\n'
                  for i in range(1, 65))
    return TABLE_HEAD.format(name=name) + (
        'listeners {\n  name: "web"\n  vips: "203.0.113.10"\n  protocol: TCP\n'
        f"  port_ranges {{ first: {W1_PORT} }}\n{eps}}}\n")


def _w1_frames(flows, flags, seed, client_base=0x64400000):
    order = list(range(flows))
    random.Random(seed).shuffle(order)
    # Client i: 100.64.0.0 + i (a /10 holds 4 M), a port derived from i.
    return [frame(v4(client_base + i), W1_VIP, 1024 + (i * 7919) % 64000, W1_PORT, 6, flags)
            for i in order], order


def _w1(scale, out, name):
    flows = scale["flows"]
    frames, _ = _w1_frames(flows, TCP_ACK, 1)
    write_pcap(os.path.join(out, name + ".pcap"), frames)
    return {"table": _single_listener_table(name, ""), "pcaps": [name + ".pcap"],
            "packets": flows, "flows": flows, "new_per_pass": 0,
            # A quarter full: then no flow is pushed out, and almost all are
            # found in their first bucket (docs/performance.md, "Flow state").
            "flows_per_lcore": flows * 4, "warmup_passes": 2,
            "what": f"established: 1 listener, 64 endpoints, {flows} flows, 64 B frames"}


def _w1x2(scale, out, name):
    flows = scale["flows"]
    frames, order = _w1_frames(flows, TCP_ACK, 1)
    # Split by flow, as RSS would: a flow always reaches the same queue.
    q = [[f for f, i in zip(frames, order) if i % 2 == k] for k in (0, 1)]
    for k in (0, 1):
        write_pcap(os.path.join(out, f"{name}-q{k}.pcap"), q[k])
    return {"table": _single_listener_table(name, ""),
            "pcaps": [f"{name}-q0.pcap", f"{name}-q1.pcap"], "packets": flows, "flows": flows,
            "new_per_pass": 0, "flows_per_lcore": flows * 2, "warmup_passes": 2,
            "what": f"W1 over two queues: {flows} flows split by flow"}


def _w2(scale, out, name):
    flows = scale["w2_flows"]
    frames, _ = _w1_frames(flows, TCP_SYN, 2, client_base=0x64800000)
    write_pcap(os.path.join(out, name + ".pcap"), frames)
    return {"table": _single_listener_table(name, ""), "pcaps": [name + ".pcap"],
            "packets": flows, "flows": flows, "new_per_pass": flows,
            "flows_per_lcore": scale["w2_table"], "warmup_passes": 2,
            "what": f"new flows: {flows} distinct SYNs a pass, flow table of "
                    f"{scale['w2_table']} (full: every SYN evicts)"}


def _w4(scale, out, name):
    flows = scale["flows"]
    return {"table": _single_listener_table(name, " mode: ENCAP_GUE"), "pcaps": ["W1.pcap"],
            "packets": flows, "flows": flows, "new_per_pass": 0,
            "flows_per_lcore": flows * 4, "warmup_passes": 2,
            "what": "W1 with GUE: same capture, every endpoint ENCAP_GUE"}


W3_LISTENERS = 1000
W3_VIPS = [v4(0xCB007101 + i) for i in range(8)] + [v6("20010db801000000", i + 1)
                                                    for i in range(8)]
W3_ROUNDS = 9  # an established flow sends one packet a round
W3_EST_PER_BUCKET = 3  # of the flow table's 4 ways


def _w3_listener(i):
    vip = W3_VIPS[i % 16]
    port = 10000 + i // 16
    proto = 17 if i % 4 == 3 else 6
    affinity = "SOURCE_IP" if i % 10 == 7 else "NONE"
    gue = i % 10 == 9
    return vip, port, proto, affinity, gue


def _w3_table(name):
    parts = [TABLE_HEAD.format(name=name)]
    for i in range(W3_LISTENERS):
        vip, port, proto, affinity, gue = _w3_listener(i)
        eps = []
        for j in range(10):
            n = i * 10 + j
            addr = text(v4(0x0A000000 + n)) if j % 2 == 0 else text(v6("20010db8000e0000", n))
            mode = " mode: ENCAP_GUE" if gue else ""
            eps.append(f'  endpoints {{ address: "{addr}" weight: {50 + (n * 37) % 150}{mode} }}\n')
        # One idle timeout for every flow: the table evicts the entry closest
        # to expiry, and with UDP's shorter default a busy UDP flow would
        # go before an idle TCP one, which _w3's construction does not
        # assume.
        parts.append(
            f'listeners {{\n  name: "l{i}"\n  vips: "{text(vip)}"\n'
            f'  protocol: {"UDP" if proto == 17 else "TCP"}\n  port_ranges {{ first: {port} }}\n'
            f"  affinity: {affinity}\n  udp_idle_timeout_s: 340\n{''.join(eps)}}}\n")
    return "".join(parts)


def _flow_index_hash(client16, sport, vip16, dport, proto, affinity, listener):
    """Where the dataplane's flow table places a flow (model.index_hash), for
    either affinity."""
    if affinity == "SOURCE_IP":
        lid = model.listener_id(f"l{listener}")
        key = client16 + b"\0" * 16 + struct.pack("<HHBBH", lid & 0xFFFF, lid >> 16, 0, 2, 0)
    else:
        key = client16 + vip16 + struct.pack("<HHBBH", sport, dport, proto, 1, 0)
    return model.index_hash(key)


def _flow_buckets(h, mask):
    """A flow's first and second bucket, as dataplane/core/flow_table.h picks them."""
    first = h & mask
    sig = (h >> 32) or 1
    return first, (first ^ (((sig * 0x9E3779B1) & 0xFFFFFFFF) | 1)) & mask


def _w3(scale, out, name):
    """90 % established, 10 % new, in a capture that is replayed in a loop.

    A replayed flow is new only once, unless the flow table forgets it between
    two passes; and a table full enough to forget the new flows would push the
    established ones out too (it evicts the entry closest to expiry, and the
    established flows are the oldest). So W3 is built around the flow table's
    layout (dataplane/core/flow_table.h: buckets of 4 ways, two buckets a
    flow, the first one's index the low bits of the table's own index hash,
    model.index_hash): the table gets
    `w3_buckets` buckets; every bucket of the first seven eighths holds exactly
    3 established flows (their first bucket, which always has room, so they
    stay put); the "new" flows have both their buckets in the last eighth,
    where five times more of them than fit churn through, each evicted long
    before it comes round again. Established flows send one packet in each of
    9 rounds; new flows one a pass, each in one round: 10 % new. The bench
    reports the share it measured (new_flows / packets) next to this design's
    (`designed_new_share`), and bench-smoke fails when they differ, so a
    change to the table's layout or hash that breaks this shows.
    """
    buckets = scale["w3_buckets"]
    mask = buckets - 1
    top = buckets - buckets // 8  # buckets >= top: the new flows' eighth
    rng = random.Random(3)
    count = [0] * top
    est, new = [], []
    n_est = W3_EST_PER_BUCKET * top
    n = 0
    while len(est) < n_est or len(new) < n_est:
        n += 1
        listener = rng.randrange(W3_LISTENERS)
        vip, port, proto, affinity, _ = _w3_listener(listener)
        if vip[:12] == v4(0)[:12]:
            client = v4(0x64400000 + n)  # unique: SOURCE_IP keys hold no port
        else:
            client = v6("20010db8000c0000", n)
        sport = 1024 + rng.randrange(64000)
        first, second = _flow_buckets(
            _flow_index_hash(client, sport, vip, port, proto, affinity, listener), mask)
        flow = (client, vip, sport, port, proto)
        if first < top:
            if count[first] < W3_EST_PER_BUCKET:
                count[first] += 1
                est.append(flow)
        elif second >= top and len(new) < n_est:
            new.append(flow)
    rng.shuffle(est)
    rounds = [[] for _ in range(W3_ROUNDS)]
    for f in new:
        rounds[rng.randrange(W3_ROUNDS)].append(f)
    frames = []
    for r in range(W3_ROUNDS):
        # Established flows in the same order every round; the round's new
        # flows at random places among them.
        keys = sorted(rng.random() for _ in est) + [rng.random() for _ in rounds[r]]
        seq = [(f, False) for f in est] + [(f, True) for f in rounds[r]]
        for (f, is_new), _ in sorted(zip(seq, keys), key=lambda t: t[1]):
            client, vip, sport, port, proto = f
            frames.append(frame(client, vip, sport, port, proto, TCP_SYN if is_new else TCP_ACK))
    write_pcap(os.path.join(out, name + ".pcap"), frames)
    return {"table": _w3_table(name), "pcaps": [name + ".pcap"], "packets": len(frames),
            "flows": len(est) + len(new), "new_per_pass": len(new),
            "flows_per_lcore": buckets * 4, "warmup_passes": 3,
            "what": f"mixed: {W3_LISTENERS} listeners, 16 VIPs, 10000 endpoints, IPv4+IPv6, "
                    f"{len(est)} established flows x {W3_ROUNDS} + {len(new)} new a pass "
                    f"({100 * len(new) / len(frames):.0f} % new)"}


# Flow log variants: (base workload, share of flows logged in millionths).
FLOW_LOG_VARIANTS = {"W1L1": ("W1", 10000), "W1L100": ("W1", 1000000),
                     "W2L1": ("W2", 10000), "W2L100": ("W2", 1000000)}


def _flow_logged(scale, out, name):
    base, ppm = FLOW_LOG_VARIANTS[name]
    scale_name = next(k for k, v in SCALES.items() if v == scale)
    meta = dict(ensure(out, base, scale_name))
    with open(meta["table_path"]) as f:
        table = f.read()
    listener = 'name: "web"\n'
    assert listener in table, "the base table has no web listener"
    table = table.replace(listener, listener + f"  flow_log_sample_ppm: {ppm}\n", 1)
    table = table.replace(f"({base})", f"({name})", 1)
    for k in ("name", "table_path", "stamp", "pcap_paths"):
        meta.pop(k, None)
    meta.update({"table": table, "flow_log_ppm": ppm,
                 "what": meta["what"] + f"; flow logs for {ppm / 10000:g} % of flows"})
    return meta


BUILDERS = {"W1": _w1, "W2": _w2, "W3": _w3, "W4": _w4, "W1x2": _w1x2,
            **{name: _flow_logged for name in FLOW_LOG_VARIANTS}}


def ensure(out, name, scale_name):
    """Writes workload `name` into `out` unless it is there already; returns its meta."""
    scale = SCALES[scale_name]
    meta_path = os.path.join(out, name + ".json")
    stamp = {"generator": GENERATOR_VERSION, "scale": scale_name, **scale}
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("stamp") == stamp and all(
                os.path.exists(os.path.join(out, p)) for p in meta["pcaps"]):
            return meta
    os.makedirs(out, exist_ok=True)
    if name == "W4":
        ensure(out, "W1", scale_name)
    meta = BUILDERS[name](scale, out, name)
    table_path = os.path.join(out, name + ".textproto")
    with open(table_path, "w") as f:
        f.write(meta.pop("table"))
    meta.update({"name": name, "table_path": table_path, "stamp": stamp,
                 "pcap_paths": [os.path.join(out, p) for p in meta["pcaps"]]})
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1)
    return meta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--scale", choices=sorted(SCALES), default="full")
    ap.add_argument("names", nargs="*", default=["W1", "W2", "W3", "W4"])
    args = ap.parse_args()
    for name in args.names:
        if name not in BUILDERS:
            ap.error(f"unknown workload {name}; one of {', '.join(BUILDERS)}")
        meta = ensure(args.out, name, args.scale)
        print(f"{name}: {meta['packets']} packets a pass, {meta['what']}")


if __name__ == "__main__":
    main()
