"""The steps of the two-PoP story, shared by the demo (which prints them) and
the end-to-end suite (which asserts them). Each step returns what it saw.
"""
import collections
import concurrent.futures
import json
import os
import signal
import statistics
import subprocess
import time

from harness import Failure, wait_for
from testbed import POPS, VIPS, client_addr

HERE = os.path.dirname(os.path.abspath(__file__))
TRAFFIC = ["/usr/bin/python3", os.path.join(HERE, "traffic.py")]
HTTP, ECHO, UDP = 80, 7000, 5300
# The longest a Hold lasts when its test never finishes it.
HOLD_MAX_S = 120
# Which PoP each client enters by (client2's route is pinned to SIN1).
ENTERS = {"client": "FRA1", "client2": "SIN1"}


def parse_answer(text):
    """'endpoint=eu1 region=eu-central client=192.0.2.10:40000' -> dict."""
    out = dict(kv.split("=", 1) for kv in text.split() if "=" in kv)
    if "endpoint" not in out:
        raise Failure(f"not an endpoint's answer: {text!r}")
    out["client_ip"] = out.get("client", "").rsplit(":", 1)[0]
    return out


def ask(bed, client, proto="tcp", family=4):
    """One request through the VIP of that family from a client namespace."""
    vip = VIPS[family]
    if proto == "tcp":
        host = vip if family == 4 else f"[{vip}]"
        r = bed.exec(client, ["curl", "-g", "-s", "-m", "3", f"http://{host}:{HTTP}/"],
                     check=False)
        if r.returncode != 0:
            raise Failure(f"curl from {client} to {vip} -> {r.returncode}: {r.stderr.strip()}")
        return parse_answer(r.stdout)
    af = "AF_INET" if family == 4 else "AF_INET6"
    code = (f"import socket; s = socket.socket(socket.{af}, socket.SOCK_DGRAM); "
            f"s.settimeout(3); s.connect(('{vip}', {UDP})); s.send(b'who'); "
            "print(s.recv(200).decode())")
    r = bed.exec(client, ["/usr/bin/python3", "-c", code], check=False)
    if r.returncode != 0:
        raise Failure(f"UDP request from {client} failed: {r.stderr.strip()[-200:]}")
    return parse_answer(r.stdout)


def served_by(bed, client, n=6, proto="tcp", family=4):
    """Regions that answered n requests (each a new connection)."""
    return collections.Counter(ask(bed, client, proto, family)["region"] for _ in range(n))


def routes(bed, pop, listener="web"):
    j = bed.ctl_json("routes", "--pop", pop)
    for l in j.get("listeners", []):
        if l.get("listener") == listener:
            return l
    raise Failure(f"no route for listener {listener} at {pop}: {json.dumps(j)[:300]}")


def trace(bed, pop, client, client_port, port=ECHO, family=4):
    """The endpoint address a new TCP flow from client:client_port to the
    VIP's port (of that family) would get at a PoP now (the controller's
    TraceFlow)."""
    addr = client_addr(client, family)
    source = f"{addr}:{client_port}" if family == 4 else f"[{addr}]:{client_port}"
    return bed.ctl_json("trace", "--pop", pop, "--client", source, "--vip", VIPS[family],
                        "--port", str(port), "--protocol", "tcp").get("endpoint", "")


def traces(bed, pop, client, flows, port=ECHO):
    """trace() for many (family, client_port) flows at once, a few calls in
    flight together (each is an onrampctl process and a round trip to the
    PoP): {(family, client_port): endpoint address}."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        found = pool.map(lambda f: trace(bed, pop, client, f[1], port=port, family=f[0]), flows)
        return dict(zip(flows, found))


def shares(bed, pop, listener="web"):
    """region -> share percent of new flows at a PoP."""
    return {g["region"]: float(g.get("share_percent", 0))
            for g in routes(bed, pop, listener).get("groups", [])}


def latency_matrix(bed):
    """pop -> region -> smoothed RTT, ms, as the controller has it."""
    return {pop: {g["region"]: float(g.get("rtt_ms", -1))
                  for g in routes(bed, pop).get("groups", [])} for pop in POPS}


def matrix_measured(bed):
    m = latency_matrix(bed)
    return all(rtt > 0 for row in m.values() for rtt in row.values()) and m


def health_states(bed):
    """(pop, endpoint address) -> state name."""
    return {(e["pop"], e["listener"], e["address"]): e.get("state", "HEALTH_STATE_UNKNOWN")
            for e in bed.health_entries()}


def all_healthy(bed, addresses=None):
    states = health_states(bed)
    want = [k for k in states if addresses is None or k[2] in addresses]
    return bool(want) and all(states[k] == "HEALTH_STATE_HEALTHY" for k in want)


def kill_servers(bed, names):
    for n in names:
        bed.stop(f"server-{n}", sig=signal.SIGKILL)


def start_servers(bed, names):
    for n in names:
        bed.start_endpoint(n)


def failover_key(pop, family):
    """measure_failover's key for one PoP and one client family."""
    return pop if family == 4 else f"{pop}/IPv6"


def measure_failover(bed, victims, clients=("client", "client2"), before=1.5, after=3.0,
                     rate=200, families=(4,)):
    """Kills the victims' servers while every client opens `rate` new UDP
    flows a second through its PoP, shared between the VIPs of the families
    (the bed's load stays the same with both), and returns,
    per PoP and family (failover_key), the seconds from the kill to the
    last new flow that still reached a victim (0 when none did after the
    kill), and the flows each victim saw before it."""
    sniffers = {}
    for v in victims:
        sniffers[v] = subprocess.Popen(
            ["ip", "netns", "exec", bed.ns(v), *TRAFFIC, "sniff", str(UDP)],
            stdout=subprocess.PIPE, text=True, start_new_session=True)
    # Every sniffer listening before the first flow, and every generator
    # sending for the whole lead-in: on a loaded machine a Python process
    # can take longer to start than the lead-in, and a victim would then
    # seem to have had no flows before the kill.
    for v, s in sniffers.items():
        if s.stdout.readline().strip() != "ready":
            raise Failure(f"the sniffer on {v} did not start")
    gens = [subprocess.Popen(["ip", "netns", "exec", bed.ns(c), *TRAFFIC, "udp-flows",
                              VIPS[f], str(UDP), str(before + after),
                              str(rate / len(families))],
                             stdout=subprocess.PIPE, text=True) for c in clients for f in families]
    for g in gens:  # the lead-in counts from the last generator's start
        g.stdout.readline()
    time.sleep(before)
    t0 = time.monotonic()
    kill_servers(bed, victims)
    for g in gens:
        g.communicate(timeout=before + after + 30)
    time.sleep(0.2)
    arrivals = []  # (time, client address)
    for s in sniffers.values():
        os.killpg(s.pid, signal.SIGTERM)
        out, _ = s.communicate(timeout=10)
        arrivals += [(float(t), src) for t, src in (l.split() for l in out.splitlines())]
    by_pop = {}
    for c in clients:
        for f in families:
            addr = client_addr(c, f)
            seen = [t for t, src in arrivals if src == addr]
            late = [t - t0 for t in seen if t >= t0]
            by_pop[failover_key(ENTERS[c], f)] = {"failover_s": max(late) if late else 0.0,
                                                  "before": len([t for t in seen if t < t0]),
                                                  "after": len(late)}
    return by_pop


def bgp_route(bed, family=4):
    """The PoP the router's BGP-installed route for the VIP points to."""
    out = bed.exec("rtr", ["ip", f"-{family}", "route", "show", VIPS[family]], check=False).stdout
    for pop, p in POPS.items():
        if f"via {p['addr' if family == 4 else 'addr6']} " in out + " ":
            return pop
    return None


def bgp_routes(bed):
    """bgp_route for each family, as one (IPv4, IPv6) pair."""
    return tuple(bgp_route(bed, f) for f in VIPS)


def bird_view(bed, family=4):
    out = bed.birdc("router", "show", "route", "for", VIPS[family])
    return "\n".join(l for l in out.splitlines() if not l.startswith("BIRD "))


def move_client(bed, to_pop):
    """Moves the European client's anycast routes: the router's BGP sessions
    with FRA1 (one a family) go down (to SIN1) or up again (to FRA1)."""
    for session in ("fra1", "fra1_v6"):
        bed.birdc("router", "disable" if to_pop == "SIN1" else "enable", session)
    return wait_for(f"the VIPs' routes via {to_pop}",
                    lambda: bgp_routes(bed) == (to_pop, to_pop), timeout=20)


class Hold:
    """A long-lived TCP connection from a client through the VIP, until
    finish() (once the events it must outlive are over) or HOLD_MAX_S."""

    def __init__(self, bed, client, source_port=0, family=4):
        self.p = subprocess.Popen(["ip", "netns", "exec", bed.ns(client), *TRAFFIC, "hold",
                                   VIPS[family], str(ECHO), str(HOLD_MAX_S), str(source_port)],
                                  stdout=subprocess.PIPE, text=True)
        first = json.loads(self.p.stdout.readline() or "{}")
        if "endpoint" not in first:
            raise Failure(f"the long-lived connection did not start: {first}")
        self.endpoint = first["endpoint"]
        self.port = first["port"]  # the client's side of the connection

    def alive(self):
        return self.p.poll() is None

    def finish(self):
        """Ends the connection now (`ip netns exec` execs the tool, so the
        signal reaches it); returns its exit status and its output lines."""
        if self.alive():
            self.p.send_signal(signal.SIGUSR1)
        out, _ = self.p.communicate(timeout=30)
        return self.p.returncode, [json.loads(l) for l in out.splitlines() if l.strip()]


def summary(values):
    return {"median": statistics.median(values), "worst": max(values), "n": len(values)}
