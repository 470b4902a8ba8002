"""A reference model of the dataplane's flow hash and weighted Maglev table.

Written in Python from the rules in docs/design.md ("Fast path") and the comments of
dataplane/core/{hash.h,flow_table.h,maglev.h}, not generated from the binary.
The pcap cases use it two ways: the hash-dependent golden values pinned in
cases.py (GUE source ports, IPv6 flow labels, which endpoint a flow lands on)
were computed with it, and the `maglev_matches_model` case checks hundreds of
flows of the real binary against it. If the C++ hash or Maglev build changes,
those cases fail; that is the point (a flow must pick the same endpoint on
every PoP and every release that agrees on the endpoint set).
"""

import functools
import ipaddress
import struct

_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15

FLOW_SEED = 0x666C6F772D6B6579  # "flow-key"
OFFSET_SEED = 0x6F6E72616D702D6F  # "onramp-o"
SKIP_SEED = 0x6F6E72616D702D73  # "onramp-s"
LISTENER_SEED = 0x6C697374656E6572  # "listener"

PROTO_TCP = 6
PROTO_UDP = 17


def _mix(x):
    # SplitMix64 finaliser.
    x ^= x >> 30
    x = (x * 0xBF58476D1CE4E5B9) & _M64
    x ^= x >> 27
    x = (x * 0x94D049BB133111EB) & _M64
    x ^= x >> 31
    return x


def hash_words(data, seed):
    """64-bit hash of `data` (length a multiple of 8), little-endian words."""
    assert len(data) % 8 == 0
    h = seed ^ ((len(data) * _GOLDEN) & _M64)
    for i in range(0, len(data), 8):
        h = (_mix(h ^ int.from_bytes(data[i:i + 8], "little")) + _GOLDEN) & _M64
    return _mix(h)


def addr16(text):
    """The dataplane's 16-byte address form: IPv4 as ::ffff:a.b.c.d."""
    a = ipaddress.ip_address(text)
    if a.version == 4:
        return b"\0" * 10 + b"\xff\xff" + a.packed
    return a.packed


def listener_id(name):
    raw = name.encode()
    raw += b"\0" * (-len(raw) % 8)
    return hash_words(raw, LISTENER_SEED) & 0xFFFFFFFF


# FlowTable::index_hash's constants (dataplane/core/flow_table.h).
_INDEX_XOR = (0x243F6A8885A308D3, 0x13198A2E03707344, 0xA4093822299F31D0,
              0x082EFA98EC4E6C89, 0x452821E638D01377, 0xBE5466CF34E90C6C)
_INDEX_MUL = (0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB,
              0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53)


def _index_word(word, i):
    p = (word ^ _INDEX_XOR[i]) * _INDEX_MUL[i]
    return (p & _M64) ^ (p >> 64)


def index_hash(key):
    """Where a flow sits in a PoP's flow table: FlowTable::index_hash of a
    40-byte flow key (the bytes flow_hash and source_ip_hash hash). It is
    not the flow hash: it never leaves the dataplane, and only a workload
    built around the table's layout needs it."""
    assert len(key) == 40
    words = [int.from_bytes(key[i:i + 8], "little") for i in range(0, 40, 8)]
    if key[:12] == b"\0" * 10 + b"\xff\xff":  # an IPv4 client: two words
        addresses = int.from_bytes(key[12:16], "little") | int.from_bytes(key[28:32], "little") << 32
        total = _index_word(addresses, 1) + _index_word(words[4], 4)
    else:
        total = sum(_index_word(w, i) for i, w in enumerate(words))
    return _index_word(total & _M64, 5)


def flow_hash(client, client_port, vip, vip_port, proto):
    """Hash of a 5-tuple flow key (affinity NONE)."""
    key = addr16(client) + addr16(vip) + struct.pack("<HHBBH", client_port, vip_port, proto, 1, 0)
    return hash_words(key, FLOW_SEED)


def source_ip_hash(client, listener_name):
    """Hash of a SOURCE_IP flow key: client address and listener, no ports or protocol."""
    lid = listener_id(listener_name)
    key = addr16(client) + b"\0" * 16 + struct.pack("<HHBBH", lid & 0xFFFF, lid >> 16, 0, 2, 0)
    return hash_words(key, FLOW_SEED)


@functools.lru_cache(maxsize=None)
def maglev_table(endpoints, size=65537):
    """Weighted Maglev lookup table.

    endpoints: tuple of (address, weight, healthy) in table order. Returns a
    list of endpoint indexes (None where no endpoint can take a flow).
    """
    table = [None] * size
    perms = []
    for index, (address, weight, healthy) in enumerate(endpoints):
        weight = weight if healthy else 0
        if weight == 0:
            continue
        raw = addr16(address)
        perms.append({
            "offset": hash_words(raw, OFFSET_SEED) % size,
            "skip": hash_words(raw, SKIP_SEED) % (size - 1) + 1,
            "next": 0,
            "credit": 0,
            "index": index,
            "weight": weight,
            "key": raw,
        })
    if not perms:
        return table
    # Turns go by address order, never by position in the table.
    perms.sort(key=lambda p: p["key"])
    max_weight = max(p["weight"] for p in perms)
    filled = 0
    while True:
        for p in perms:
            p["credit"] += p["weight"]
            if p["credit"] < max_weight:
                continue
            p["credit"] -= max_weight
            while True:
                slot = (p["offset"] + p["next"] * p["skip"]) % size
                p["next"] += 1
                if table[slot] is None:
                    break
            table[slot] = p["index"]
            filled += 1
            if filled == size:
                return table


def pick(endpoints, h, size=65537):
    """Index of the endpoint Maglev picks for flow hash `h`, or None."""
    table = maglev_table(tuple(endpoints), size)
    return table[h % size]


def gue_source_port(h):
    return 0x8000 | (h >> 49)


def flow_label(h):
    return (h >> 12) & 0xFFFFF
