"""The steps of the relay bed's story (testbed.py --relay), shared by the
demo's relaying chapter (which prints them) and the e2e-relay test (which
asserts them): which path FRA1 takes to ap-southeast, connect times through
the VIP, and the fall back to direct when the relay PoP dies or the backbone to it is
cut or slows down.
"""
import json
import re
import statistics
import subprocess
import time

import story
from harness import Failure
from testbed import ACCELERATOR, ALL_POPS, VIPS, backbone_ms, client_addr, one_way_ms

AP = "ap-southeast"


def matrix_measured(bed):
    """(from, to) -> PopPath as JSON once every PoP of the bed has an RTT to
    every other (onrampctl pop matrix), else False."""
    paths = {(p["from"], p["to"]): p for p in bed.ctl_json("pop", "matrix").get("paths", [])}
    want = [(a, b) for a in bed.bed_pops for b in bed.bed_pops if a != b]
    return all(float(paths.get(k, {}).get("rtt_ms", -1)) > 0 for k in want) and paths


def group_route(bed, pop, group=AP, listener="web"):
    """The controller's GroupRoute of one group at one PoP, as JSON."""
    for g in story.routes(bed, pop, listener).get("groups", []):
        if g.get("endpoint_group") == group:
            return g
    raise Failure(f"{pop} has no route for {listener}/{group}")


def via(bed, pop, group=AP):
    """The relay PoP the group is reached through, "" when direct."""
    return group_route(bed, pop, group).get("via", "")


def set_relay(bed, on):
    bed.ctl("accelerator", "update", ACCELERATOR, "--relay", "on" if on else "off")


def dial_to_ap(bed):
    """The web listener's eu-central group dialled to 0: the European
    client's new flows through FRA1 go to ap-southeast, the relayed region."""
    bed.ctl("endpoint-group", "update", "eu-central", "--accelerator", ACCELERATOR,
            "--listener", "web", "--traffic-dial", "0")


def expected_saving_ms():
    """What relaying FRA1's flows to ap-southeast through SIN1 saves of a
    TCP connect, by the bed's matrix: the SYN's one way (the SYN-ACK comes
    back straight from the endpoint to the client either way, DSR)."""
    direct = one_way_ms("FRA1", AP, relay=True)
    relayed = backbone_ms("FRA1", "SIN1") + one_way_ms("SIN1", AP, relay=True)
    return direct - relayed


def connects(bed, client, family, count, gap_ms=30):
    """count TCP connects through the VIP's HTTP port from a client
    namespace (traffic.py connects): a list of {"t", "ms"} or {"t", "error"}."""
    r = bed.exec(client, [*story.TRAFFIC, "connects", VIPS[family], str(story.HTTP), str(count),
                          str(gap_ms)], timeout=count * 6 + 30)
    return [json.loads(l) for l in r.stdout.splitlines() if l.strip()]


def connect_loop(bed, client, family, count, gap_ms=20):
    """connects, started in the background; connect_loop_result reads it."""
    return subprocess.Popen(["ip", "netns", "exec", bed.ns(client), *story.TRAFFIC, "connects",
                             VIPS[family], str(story.HTTP), str(count), str(gap_ms)],
                            stdout=subprocess.PIPE, text=True)


def connect_loop_result(proc, timeout=120):
    out, _ = proc.communicate(timeout=timeout)
    return [json.loads(l) for l in out.splitlines() if l.strip()]


def median_ms(results):
    """The median connect time of connects' results, None when one failed."""
    if not results or any("error" in c for c in results):
        return None
    return statistics.median(c["ms"] for c in results)


def dp_trace(bed, pop, port, family=4):
    """A PoP's dataplane's own trace (its table in force) of a new TCP flow
    from the European client's port `port` to the VIP's HTTP port."""
    addr = client_addr("client", family)
    client = f"{addr}:{port}" if family == 4 else f"[{addr}]:{port}"
    return bed.dp(pop, "trace", "--client", client, "--vip", VIPS[family], "--port",
                  str(story.HTTP), "--protocol", "tcp", check=False) or {}


def relayed_in_trace(t, relay=None):
    """Whether a dataplane trace relays the flow: through any PoP, or
    through the PoP named (either tunnel address: an IPv4 flow may go to an
    IPv6 endpoint in GUE, and then to the relay's IPv6 address)."""
    steps = [s for s in t.get("explanation", []) if "relayed over the backbone" in s]
    if relay is None:
        return bool(steps)
    addrs = "|".join(re.escape(ALL_POPS[relay][k]) for k in ("addr", "addr6"))
    at = re.compile(rf"via PoP ({addrs})(?![0-9a-fA-F.])")
    return any(at.search(s) for s in steps)


def until_direct(bed, t0, ingress="FRA1", limit_s=5.0, port=20001, relay=None):
    """The seconds from t0 until the ingress's dataplane traces a new flow
    without the relay (any relay, or the one named), each trace a new
    client port below the ephemeral range, so no real flow answers it from
    the flow table; None when it still relays after limit_s."""
    while time.monotonic() - t0 < limit_s:
        t = dp_trace(bed, ingress, port)
        port += 1
        if t and not relayed_in_trace(t, relay):
            return time.monotonic() - t0
    return None


def kill_relay(bed, relay="SIN1", ingress="FRA1", limit_s=5.0):
    """kill -9 of the relay PoP's dataplane and agent, then the seconds
    until the ingress's dataplane traces a new flow without the relay;
    (t0 of the kill, seconds or None)."""
    t0 = time.monotonic()
    bed.kill(f"dataplane-{relay}")
    bed.kill(f"agent-{relay}")
    return t0, until_direct(bed, t0, ingress, limit_s)


def cut_backbone(bed, relay="SIN1", ingress="FRA1", limit_s=5.0):
    """The backbone between the ingress and the relay cut (every frame
    dropped, both ways; both PoPs stay up and connected), then the seconds
    until the ingress's dataplane traces a new flow without the relay;
    (t0 of the cut, seconds or None). The emulator takes the cut within
    100 ms of t0, and the figure includes that."""
    t0 = time.monotonic()
    bed.cut_backbone(ingress, relay)
    return t0, until_direct(bed, t0, ingress, limit_s, port=21001)


def slow_backbone(bed, one_way_ms, relay="SIN1", ingress="FRA1", limit_s=20.0):
    """The backbone between the ingress and the relay slowed to one_way_ms
    each way, then the seconds until the ingress's dataplane traces a new
    flow not through that relay (direct, or through a better one);
    (t0, seconds or None)."""
    t0 = time.monotonic()
    bed.set_backbone(ingress, relay, one_way_ms)
    return t0, until_direct(bed, t0, ingress, limit_s, port=22001, relay=relay)
