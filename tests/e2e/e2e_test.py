#!/usr/bin/python3
"""End to end, in the two-PoP test bed (tests/testbed): every step of the
demo's story, asserted with real TCP (curl, a long-lived connection) and UDP,
over IPv4 and IPv6 alike (the bed is dual-stack), and the failover time
measured.

  1. the latency matrix: each PoP measures its near region nearer;
  2. each PoP routes to its nearest region; requests through the VIP are
     answered there, and the endpoint sees the client's own address;
  3. failover: an endpoint dies while both PoPs send it new flows; timed
     from the kill to the last new flow that still reached it, per PoP
     (--rounds times: median and worst);
  4. a region dies: new requests go to the other region; it comes back:
     traffic comes back;
  5. a long-lived TCP connection survives a table change that does not touch
     its endpoint, a dataplane restart (BGP moves the client to SIN1 while
     FRA1's dataplane is down, and back), and the client's move between PoPs
     while both route its listener to the same endpoint group;
  6. BGP: the router's route for the VIP follows FRA1's dataplane health;
  7. the controller and an agent killed: forwarding goes on; both come back;
  8. static stability: the controller killed, then a region dies: FRA1's
     agent fails it over on its own probes within the same bound, traffic
     comes back when the region does; the tables the returning controller
     sends are logged (not asserted yet: docs/routing.md, limits);
  9. MTU and bytes: from each client through its PoP (clients have MTU 1500,
     like the PoPs' links), 1 MiB uploaded and downloaded over TCP and
     1400- and 3000-byte UDP datagrams, every byte checked (SHA-256) where
     it arrives; the PoPs' path-MTU and fragmentation counters show who did
     the work.

usage: e2e_test.py --build-dir DIR [--rounds N] [--json FILE] [--steps 2,9]
       (--steps: only those steps, after the bed comes up; a step may rely
       on the bed as a fresh one leaves it, never on an earlier step)
"""
import argparse
import json
import os
import shutil
import sys
import time

import story
from harness import SKIP, Failure, check, log, not_root, wait_for
from testbed import (ACCELERATOR, POPS, REGIONS, VIPS, Testbed, client_addr,
                     endpoint_addresses)

FAMILIES = (4, 6)

# A functional bound for one failover in this shared 2-core test bed; the
# target (1 s) is what docs/testbed.md reports from the measured figures.
FAILOVER_BOUND_S = 3.0


def dial(bed, listener, group, pct):
    bed.ctl("endpoint-group", "update", group, "--accelerator", ACCELERATOR, "--listener",
            listener, "--traffic-dial", str(pct))


def set_weight(bed, group, address, weight):
    bed.ctl("endpoint", "update", address, "--accelerator", ACCELERATOR, "--listener", "web",
            "--endpoint-group", group, "--weight", str(weight))
    wait_for("the change applied everywhere", bed.converged, timeout=20)
    time.sleep(0.5)


def step_matrix(bed):
    m = wait_for("RTTs from both PoPs to both regions", lambda: story.matrix_measured(bed),
                 timeout=30)
    log(f"  latency matrix (ms): {json.dumps(m)}")
    check(m["FRA1"]["eu-central"] < m["FRA1"]["ap-southeast"],
          f"FRA1 should measure eu-central nearer: {m['FRA1']}")
    check(m["SIN1"]["ap-southeast"] < m["SIN1"]["eu-central"],
          f"SIN1 should measure ap-southeast nearer: {m['SIN1']}")
    return m


def step_nearest(bed):
    for pop, region in (("FRA1", "eu-central"), ("SIN1", "ap-southeast")):
        for listener in ("web", "dns"):
            wait_for(f"{pop} routing {listener} to {region}",
                     lambda: story.shares(bed, pop, listener).get(region) == 100.0, timeout=30)
    for family in FAMILIES:
        for client, region in (("client", "eu-central"), ("client2", "ap-southeast")):
            for proto in ("tcp", "udp"):
                a = story.ask(bed, client, proto, family)
                log(f"  {client} {proto} IPv{family}: {a['endpoint']} ({a['region']}) saw "
                    f"{a['client']}")
                check(a["region"] == region, f"{client} over {proto} answered by {a}")
                check(a["client_ip"] == client_addr(client, family),
                      f"the endpoint saw {a['client_ip']}, not the client's address")


def step_failover(bed, rounds):
    # SIN1 spills half of its UDP flows to eu-central, so the victim gets new
    # flows from both PoPs.
    dial(bed, "dns", "ap-southeast", 50)
    wait_for("SIN1 spilling to eu-central",
             lambda: story.shares(bed, "SIN1", "dns").get("eu-central", 0) > 0, timeout=20)
    times = {story.failover_key(pop, f): [] for pop in POPS for f in FAMILIES}
    for i in range(rounds):
        r = story.measure_failover(bed, ["eu1"], families=FAMILIES)
        log(f"  round {i + 1}: " + ", ".join(
            f"{pop} {v['failover_s'] * 1000:.0f} ms ({v['before']} flows before, "
            f"{v['after']} after)" for pop, v in r.items()))
        for pop, v in r.items():
            check(v["before"] > 0, f"eu1 got no flows from {pop} before the kill: nothing measured")
            check(v["failover_s"] < FAILOVER_BOUND_S,
                  f"{pop} still sent new flows to eu1 {v['failover_s']:.2f} s after its death")
            times[pop].append(v["failover_s"])
        story.start_servers(bed, ["eu1"])
        wait_for("eu1 healthy again from both PoPs",
                 lambda: story.all_healthy(bed, endpoint_addresses("eu1")), timeout=20)
    dial(bed, "dns", "ap-southeast", 100)
    overall = [max(per_key) for per_key in zip(*times.values())]
    figures = {"per_pop_s": times, "any_pop": story.summary(overall)}
    log(f"  failover (kill -> no new flows from any PoP, either family): median "
        f"{figures['any_pop']['median'] * 1000:.0f} ms, worst "
        f"{figures['any_pop']['worst'] * 1000:.0f} ms over {rounds} rounds")
    return figures


def step_region_down(bed):
    r = story.measure_failover(bed, ["eu1", "eu2"], clients=("client",), families=FAMILIES)
    log(f"  eu-central down: FRA1 stopped sending it new flows after "
        f"{r['FRA1']['failover_s'] * 1000:.0f} ms (IPv4 clients), "
        f"{r['FRA1/IPv6']['failover_s'] * 1000:.0f} ms (IPv6)")
    for key, v in r.items():
        check(v["failover_s"] < FAILOVER_BOUND_S,
              f"{key} still sent new flows to eu-central {v['failover_s']:.2f} s after its death")
    for family in FAMILIES:
        for proto in ("tcp", "udp"):
            got = story.served_by(bed, "client", 4, proto, family)
            check(set(got) == {"ap-southeast"},
                  f"with eu-central down {proto} over IPv{family} went to {dict(got)}")
    check(story.shares(bed, "FRA1").get("ap-southeast") == 100.0, "FRA1 should route to ap-southeast")
    story.start_servers(bed, ["eu1", "eu2"])
    wait_for("eu-central healthy again", lambda: story.all_healthy(bed), timeout=20)
    for family in FAMILIES:
        wait_for(f"traffic back to eu-central over IPv{family}",
                 lambda: set(story.served_by(bed, "client", 4, family=family)) == {"eu-central"},
                 timeout=20)
    return max(v["failover_s"] for v in r.values())


def step_long_lived(bed):
    # Both PoPs route the web listener to eu-central: the connection keeps
    # its endpoint whichever PoP it enters by.
    dial(bed, "web", "ap-southeast", 0)
    wait_for("SIN1 routing web to eu-central",
             lambda: story.shares(bed, "SIN1").get("eu-central") == 100.0, timeout=20)
    # A client port whose flow goes to one eu-central endpoint now and would
    # go to the other once that one's weight is 255: after that change only
    # FRA1's flow table keeps the connection where it is.
    # The IPv6 connection's port: one whose flow goes to either address of
    # the same endpoint now and to the other endpoint (either address) after
    # the change.
    eu = REGIONS["eu-central"]["endpoints"]
    (kept_name, kept), (other_name, other) = sorted(eu.items())
    kept_host, other_host = endpoint_addresses(kept_name), endpoint_addresses(other_name)
    # Each group holds both addresses of each endpoint, so only a few ports
    # in a hundred qualify.
    ports = range(41000, 41100)
    before = {(f, p): story.trace(bed, "FRA1", "client", p, family=f)
              for f in FAMILIES for p in ports}
    set_weight(bed, "eu-central", other, 255)
    port = next((p for p in ports if before[4, p] == kept
                 and story.trace(bed, "FRA1", "client", p) == other), None)
    port6 = next((p for p in ports if before[6, p] in kept_host
                  and story.trace(bed, "FRA1", "client", p, family=6) in other_host), None)
    set_weight(bed, "eu-central", other, 128)
    check(port is not None, f"no client port in {ports} moves from {kept} to {other}")
    check(port6 is not None, f"no IPv6 client port in {ports} moves from {kept_name} to "
          f"{other_name}")
    hold = story.Hold(bed, "client", 40, source_port=port)
    check(hold.endpoint == kept_name, f"the connection from port {port} went to {hold.endpoint}")
    log(f"  long-lived connection from port {port} held by {hold.endpoint}")
    hold6 = story.Hold(bed, "client", 40, source_port=port6, family=6)
    check(hold6.endpoint == kept_name,
          f"the IPv6 connection from port {port6} went to {hold6.endpoint}")
    log(f"  long-lived IPv6 connection from port {port6} held by {hold6.endpoint}")
    time.sleep(1)

    # (a) table changes that do not touch its endpoint: an ap-southeast
    # endpoint's weight, then its eu-central sibling's.
    set_weight(bed, "ap-southeast", "203.0.113.75", 200)
    check(hold.alive() and hold6.alive(), "a connection broke after a table change elsewhere")
    set_weight(bed, "eu-central", other, 255)
    check(story.trace(bed, "FRA1", "client", port) == other,
          f"a new flow from port {port} should now go to {other}")
    check(story.trace(bed, "FRA1", "client", port6, family=6) in other_host,
          f"a new IPv6 flow from port {port6} should now go to {other_name}")
    time.sleep(1)
    check(hold.alive(), "the connection broke (or moved) when its sibling's weight changed")
    check(hold6.alive(), "the IPv6 connection broke (or moved) when its sibling's weight changed")
    log(f"  {other} at weight 255, where new flows of both connections' 5-tuples would now "
        "go: both stayed on their endpoint (flow table)")
    set_weight(bed, "eu-central", other, 128)

    # (b) FRA1's dataplane restarts: its agent withdraws the VIP, BGP moves
    # the client to SIN1, and back once FRA1 is healthy again.
    bed.stop("dataplane-FRA1", sig=9)
    wait_for("the VIPs' routes via SIN1 while FRA1 is down",
             lambda: story.bgp_routes(bed) == ("SIN1", "SIN1"), timeout=15)
    log("  FRA1's dataplane killed: BGP moved the client to SIN1 (both families)")
    bed.start_dataplane("FRA1")
    wait_for("the VIPs' routes via FRA1 again",
             lambda: story.bgp_routes(bed) == ("FRA1", "FRA1"), timeout=30)
    log("  FRA1's dataplane back: BGP moved the client back to FRA1")
    time.sleep(1)
    check(hold.alive(), "the connection broke across FRA1's dataplane restart")
    check(hold6.alive(), "the IPv6 connection broke across FRA1's dataplane restart")

    # (c) the client's move from FRA1 to SIN1 and back.
    story.move_client(bed, "SIN1")
    time.sleep(2)
    story.move_client(bed, "FRA1")
    rc, lines = hold.result(timeout=120)
    log(f"  connection: {lines[-1] if lines else 'no output'}")
    check(rc == 0, f"the long-lived connection did not survive: {lines}")
    rc, lines = hold6.result(timeout=120)
    log(f"  IPv6 connection: {lines[-1] if lines else 'no output'}")
    check(rc == 0, f"the long-lived IPv6 connection did not survive: {lines}")
    dial(bed, "web", "ap-southeast", 100)


def step_bgp(bed):
    fra1, sin1 = POPS["FRA1"], POPS["SIN1"]
    for family, key in ((4, "addr"), (6, "addr6")):
        view = story.bird_view(bed, family)
        check(fra1[key] in view, f"the router's BIRD should prefer FRA1:\n{view}")
    bed.stop("dataplane-FRA1", sig=9)
    wait_for("FRA1 withdrawn", lambda: story.bgp_routes(bed) == ("SIN1", "SIN1"), timeout=15)
    for family, key in ((4, "addr"), (6, "addr6")):
        view = story.bird_view(bed, family)
        check(fra1[key] not in view and sin1[key] in view,
              f"with FRA1's dataplane dead the router should only know SIN1:\n{view}")
        a = story.ask(bed, "client", family=family)
        check(a["client_ip"] == client_addr("client", family), f"served through SIN1: {a}")
    bed.start_dataplane("FRA1")
    wait_for("FRA1 announced again", lambda: story.bgp_routes(bed) == ("FRA1", "FRA1"),
             timeout=30)


def step_control_plane_down(bed):
    bed.stop("controller", sig=9)
    for family in FAMILIES:
        for c in ("client", "client2"):
            story.ask(bed, c, family=family)
    bed.stop("agent-FRA1", sig=9)
    for family in FAMILIES:
        story.ask(bed, "client", family=family)
    log("  controller and FRA1's agent killed: both PoPs still forward")
    bed.start_controller()
    bed.start_agent("FRA1")
    wait_for("both PoPs reconnected and in sync", bed.converged, timeout=30)


def agent_log(bed, pop):
    with open(bed.path(f"agent-{pop}.log"), errors="replace") as f:
        return f.read()


def dataplane_versions(bed):
    return {pop: int(bed.dp(pop, "health")["table_version"]) for pop in ("FRA1", "SIN1")}


def step_region_down_without_controller(bed):
    wait_for("both PoPs in sync before", bed.converged, timeout=30)
    seen = {pop: len(agent_log(bed, pop)) for pop in ("FRA1", "SIN1")}
    bed.stop("controller", sig=9)
    for pop in ("FRA1", "SIN1"):
        wait_for(f"{pop}'s agent routing on its own",
                 lambda pop=pop: "the agent routes on its own" in agent_log(bed, pop)[seen[pop]:],
                 timeout=30)
    r = story.measure_failover(bed, ["eu1", "eu2"], clients=("client",), families=FAMILIES)
    log(f"  controller dead, eu-central down: FRA1 stopped sending it new flows after "
        f"{r['FRA1']['failover_s'] * 1000:.0f} ms (IPv4 clients), "
        f"{r['FRA1/IPv6']['failover_s'] * 1000:.0f} ms (IPv6)")
    for key, v in r.items():
        check(v["before"] > 0, f"eu-central got no flows from {key} before the kill")
        check(v["failover_s"] < FAILOVER_BOUND_S,
              f"without the controller {key} still sent new flows to eu-central "
              f"{v['failover_s']:.2f} s after its death")
    for family in FAMILIES:
        for proto in ("tcp", "udp"):
            got = story.served_by(bed, "client", 4, proto, family)
            check(set(got) == {"ap-southeast"},
                  f"controller dead, eu-central down: {proto} over IPv{family} went to "
                  f"{dict(got)}")
    stats = bed.dp("FRA1", "stats")
    web = [l for l in stats.get("listeners", []) if l.get("name") == f"{ACCELERATOR}/web"]
    eu_addresses = {a for n in REGIONS["eu-central"]["endpoints"] for a in endpoint_addresses(n)}
    eu = [e for e in web[0].get("endpoints", []) if e.get("address") in eu_addresses] if web else []
    check(eu and not any(e.get("healthy") for e in eu),
          f"FRA1's dataplane should mark eu-central unhealthy: {eu}")
    story.start_servers(bed, ["eu1", "eu2"])
    # Back as a challenger: it waits out the hysteresis rounds, as with the
    # controller.
    for family in FAMILIES:
        wait_for(f"traffic back to eu-central without the controller, IPv{family}",
                 lambda: set(story.served_by(bed, "client", 4, family=family)) == {"eu-central"},
                 timeout=30)
    versions = dataplane_versions(bed)
    bed.start_controller()
    wait_for("both PoPs reconnected and in sync", bed.converged, timeout=30)
    time.sleep(1.0)
    after = dataplane_versions(bed)
    # Not asserted yet, logged: a restarted controller has lost its routing
    # memory and may send either PoP a table of a new version (existing flows
    # stay on their endpoints; new flows may be shared differently). Open
    # work, docs/routing.md "Static stability", limits.
    log(f"  controller back: table versions {versions} -> {after}"
        + ("" if after == versions else " (a new table: see docs/routing.md, limits)"))
    return max(v["failover_s"] for v in r.values())


MIB = 1 << 20
UDP_SIZES = (1400, 3000)


def traffic_json(bed, client, *args, timeout=60):
    r = bed.exec(client, [*story.TRAFFIC, *args], check=False, timeout=timeout)
    check(r.returncode == 0 and r.stdout.strip(), f"traffic.py {' '.join(args)} from {client}",
          r)
    return json.loads(r.stdout.splitlines()[-1])


PMTU_COUNTERS = ("icmp_too_big_sent", "fragmented", "fragments_sent", "fragments_forwarded")


def pmtu_counters(bed, pop):
    s = bed.dp(pop, "stats") or {}
    return {k: int(s.get(k, 0)) for k in PMTU_COUNTERS}


# The inner MTUs the PoP announces at its MTU of 1500: IPIP over IPv4 and
# IPv6, GUE over IPv4 and IPv6 (docs/dataplane.md, Path MTU).
INNER_MTUS = (1480, 1460, 1472, 1452)


def learnt_mtu(bed, client, vip):
    """The path MTU the client's kernel holds for the VIP (None: none learnt)."""
    out = bed.exec(client, ["ip", "route", "get", vip]).stdout.split()
    return int(out[out.index("mtu") + 1]) if "mtu" in out else None


def step_mtu_bytes(bed):
    """Full-size packets from MTU-1500 clients, through each client's PoP,
    over each family: TCP both ways (1 MiB, path-MTU discovery on the
    upload) and UDP datagrams that fit the link but not always the tunnel
    (1400 bytes plus headers always fits; 3000 is fragmented by the client,
    and over IPv4 split again by the PoP)."""
    figures = {}
    for pop, region in (("FRA1", "eu-central"), ("SIN1", "ap-southeast")):
        for listener in ("web", "dns"):
            wait_for(f"{pop} routing {listener} to {region}",
                     lambda: story.shares(bed, pop, listener).get(region) == 100.0, timeout=30)
    for family in FAMILIES:
        vip = VIPS[family]
        before = {pop: pmtu_counters(bed, pop) for pop in POPS}
        for client, region in (("client", "eu-central"), ("client2", "ap-southeast")):
            pop = story.ENTERS[client]
            addr = client_addr(client, family)
            who = f"{client} via {pop}, IPv{family}"

            def udp(size, why, attempts=1):
                got = traffic_json(bed, client, "udp-size", vip, str(story.UDP), str(size),
                                   str(attempts))
                log(f"  {who}: {size}-byte datagram ({why}) -> {got.get('endpoint')} "
                    f"({got.get('bytes')} bytes, attempt {got['attempts']}"
                    + (f", before: {'; '.join(got['errors'])}" if got["errors"] else "") + ")")
                check(got.get("region") == region, f"{size}-byte datagram, {who}: {got}")
                check(got.get("bytes") == str(size) and got.get("sha256") == got["sent_sha256"],
                      f"the endpoint got other bytes than the {size}-byte datagram, {who}: {got}")
                check(got.get("client", "").rsplit(":", 1)[0] == addr, f"the endpoint saw {got}")

            # A fresh start: the client has learnt no path MTU for the VIP
            # yet, so its kernel fragments a 3000-byte datagram into
            # 1500-byte packets. The PoP splits IPv4 ones again to fit its
            # tunnel; IPv6 ones it answers with packet-too-big (no router
            # fragments IPv6), which the client's socket reports (EMSGSIZE)
            # and its resend fits: as a resolver would, it sends again.
            bed.exec(client, ["ip", f"-{family}", "route", "flush", "cache"])
            udp(1400, "client at MTU 1500")
            udp(3000, "client at MTU 1500", attempts=1 if family == 4 else 3)
            up = traffic_json(bed, client, "upload", vip, str(story.HTTP), str(MIB))
            log(f"  {who}: 1 MiB up to {up.get('endpoint')} in {up['seconds']} s")
            check(up["status"] == 200 and up.get("region") == region,
                  f"upload, {who}, answered by {up}")
            check(up.get("bytes") == str(MIB) and up.get("sha256") == up["sent_sha256"],
                  f"the endpoint got other bytes than sent, {who}: {up}")
            check(up.get("client", "").rsplit(":", 1)[0] == addr, f"the endpoint saw {up}")
            learnt = learnt_mtu(bed, client, vip)
            log(f"  {who}: path MTU learnt for {vip}: {learnt}")
            check(learnt in INNER_MTUS, f"{client} learnt no tunnel's inner MTU for {vip}: "
                  f"{learnt} (the PoP's ICMP should have taught it one of {INNER_MTUS})")
            # The client has learnt a path MTU from the PoP's ICMP: its own
            # fragments now fit the tunnel of the endpoint that taught it
            # (another endpoint's tunnel may be smaller: IPv6 may need one
            # more packet-too-big).
            udp(3000, "client at a learnt path MTU", attempts=1 if family == 4 else 3)
            down = traffic_json(bed, client, "download", vip, str(story.HTTP), str(MIB))
            log(f"  {who}: 1 MiB down from {down.get('endpoint')} in {down['seconds']} s")
            check(down["status"] == 200 and down.get("region") == region,
                  f"download, {who}, answered by {down}")
            check(down["bytes"] == MIB and down["sha256"] == down["expected_sha256"],
                  f"other bytes arrived than the endpoint sent, {who}: {down}")
            figures[f"{client} IPv{family}"] = {"upload_s": up["seconds"],
                                                "download_s": down["seconds"]}
        after = {pop: pmtu_counters(bed, pop) for pop in POPS}
        for pop in POPS:
            d = {k: after[pop][k] - before[pop][k] for k in after[pop]}
            log(f"  {pop}, IPv{family}: {d['icmp_too_big_sent']} ICMP too-big sent, "
                f"{d['fragmented']} packets split into {d['fragmented'] + d['fragments_sent']}, "
                f"{d['fragments_forwarded']} later fragments forwarded")
            check(d["icmp_too_big_sent"] > 0, f"{pop} sent no ICMP too-big: who did PMTU? {d}")
            check(d["fragments_forwarded"] > 0, f"{pop} forwarded no later fragment: {d}")
            if family == 4:
                check(d["fragmented"] > 0, f"{pop} split no packet of the 3000-byte datagram: {d}")
            figures[f"{pop} IPv{family}"] = d
    return figures


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build-dir", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--steps", help="comma-separated step numbers to run (default: all)")
    args = ap.parse_args()
    steps = [
        ("1", "latency matrix", lambda: figures.__setitem__("matrix_ms", step_matrix(bed))),
        ("2", "nearest region, client address preserved", lambda: step_nearest(bed)),
        ("3", f"failover of one endpoint, {args.rounds} rounds",
         lambda: figures.__setitem__("failover", step_failover(bed, args.rounds))),
        ("4", "a region down and back",
         lambda: figures.__setitem__("region_failover_s", step_region_down(bed))),
        ("5", "a long-lived TCP connection through change, restart and move",
         lambda: step_long_lived(bed)),
        ("6", "BGP follows the dataplane's health", lambda: step_bgp(bed)),
        ("7", "controller and agent killed", lambda: step_control_plane_down(bed)),
        ("8", "controller killed, then a region dies",
         lambda: figures.__setitem__("region_failover_without_controller_s",
                                     step_region_down_without_controller(bed))),
        ("9", "MTU 1500 clients: 1 MiB over TCP each way, 1400- and 3000-byte UDP",
         lambda: figures.__setitem__("mtu", step_mtu_bytes(bed))),
    ]
    wanted = args.steps.split(",") if args.steps else [n for n, _, _ in steps]
    unknown = set(wanted) - {n for n, _, _ in steps}
    if unknown:
        ap.error(f"no step {', '.join(sorted(unknown))}")
    if not_root("the test bed needs root (network namespaces)"):
        return SKIP
    for tool in ("bird", "birdc", "ethtool", "curl"):
        if not shutil.which(tool):
            log(f"SKIP: {tool} is not installed (scripts/install-deps installs it)")
            return SKIP
    bed = Testbed(args.build_dir, prefix=f"oe{os.getpid() % 1000}")
    figures = {}
    t_start = time.monotonic()
    try:
        log("step: test bed up")
        bed.up()
        for n, title, fn in steps:
            if n in wanted:
                t = time.monotonic()
                log(f"step {n}: {title}")
                fn()
                log(f"  (step {n}: {time.monotonic() - t:.0f} s)")
    except Failure as e:
        log(f"FAIL: {e}")
        log(f"logs: {bed.state}")
        for name in ("agent-FRA1", "agent-SIN1", "controller"):
            try:
                with open(bed.path(f"{name}.log")) as f:
                    log(f"--- {name} (last lines)\n" + "".join(f.readlines()[-15:]))
            except OSError:
                pass
        return 1
    finally:
        if os.environ.get("ONRAMP_KEEP_TESTBED") != "1":
            bed.down()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(figures, f, indent=1)
    log(f"PASS in {time.monotonic() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
