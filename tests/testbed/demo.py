#!/usr/bin/python3
"""The two-PoP demo: brings the test bed up and tells the story, printing as
it goes; the test bed comes down at the end (also on Ctrl-C).

With --relay, the relaying chapter on the relay bed instead (testbed.py
--relay: three PoPs and a backbone): the PoP x PoP matrix, FRA1's choice to
reach ap-southeast through SIN1 and why, TCP connect times through the VIP
with and without the relay, and the fall back to direct when SIN1 dies.

usage: demo.py --build DIR [--keep] [--relay]
"""
import argparse
import os
import sys
import time

import relay_story
import story
from harness import Failure, wait_for
from testbed import BACKBONE_MS, POPS, RELAY_MS, VIPS, Testbed, client_addr

T0 = time.monotonic()


def say(msg=""):
    print(msg, flush=True)


def title(n, text):
    say()
    say(f"[{time.monotonic() - T0:5.1f} s] {n}. {text}")


def show_answer(client, proto="tcp", family=4):
    """Asks once through the VIP of that family (HTTP over TCP, or a UDP
    datagram) and says who answered and which client address it saw."""
    a = story.ask(BED, client, proto, family)
    pop = story.ENTERS[client] if client != "client" else story.bgp_route(BED, family) or "?"
    addr = client_addr(client, family)
    real = "its real address" if a["client_ip"] == addr else "NOT its address"
    what = "HTTP" if proto == "tcp" else "UDP"
    say(f"   {client} ({addr}) -> {what} to VIP {VIPS[family]} via {pop}: answered by "
        f"{a['endpoint']} in {a['region']}, which saw {a['client']} ({real})")


def indent(text, by="   "):
    return "\n".join(by + line for line in text.rstrip().splitlines())


def run_story(bed):
    title(1, "PoPs and the latency matrix they measured")
    wait_for("RTTs from both PoPs", lambda: story.matrix_measured(bed), timeout=30)
    for pop, region in (("FRA1", "eu-central"), ("SIN1", "ap-southeast")):
        wait_for(f"{pop} on {region}", lambda: story.shares(bed, pop).get(region) == 100.0,
                 timeout=30)
    say(indent(bed.ctl("pop", "list").stdout))
    m = story.latency_matrix(bed)
    regions = sorted({r for row in m.values() for r in row})
    say("   smoothed RTT, ms   " + "".join(f"{r:>14}" for r in regions))
    for pop in POPS:
        say(f"   {pop:18} " + "".join(f"{m[pop].get(r, -1):14.1f}" for r in regions))

    title(2, "clients reach the VIP; the nearest region answers")
    show_answer("client")
    show_answer("client2")
    show_answer("client", "udp")
    show_answer("client", family=6)
    show_answer("client2", "udp", family=6)
    say("   onrampctl routes --pop FRA1:")
    say(indent(bed.ctl("routes", "--pop", "FRA1").stdout, "     "))

    title(3, "eu-central's endpoints stop (kill -9 of both servers)")
    r = story.measure_failover(bed, ["eu1", "eu2"], clients=("client",))
    say(f"   failover: FRA1 sent its last new flow to eu-central "
        f"{r['FRA1']['failover_s'] * 1000:.0f} ms after the kill "
        f"(probes every 200 ms, 3 failures to mark an endpoint down)")
    show_answer("client")
    say(indent(bed.ctl("health", "--pop", "FRA1", "--listener", "web").stdout))

    title(4, "eu-central's endpoints come back")
    t = time.monotonic()
    story.start_servers(bed, ["eu1", "eu2"])
    wait_for("traffic back to eu-central",
             lambda: story.ask(bed, "client")["region"] == "eu-central", timeout=30, interval=0.05)
    say(f"   new requests back on eu-central {time.monotonic() - t:.1f} s after the restart "
        f"(3 good probes, then the push)")
    show_answer("client")

    title(5, "the European client's anycast route moves from FRA1 to SIN1")
    say("   the router's BIRD before:")
    say(indent(story.bird_view(bed), "     "))
    story.move_client(bed, "SIN1")
    say("   router: BGP session with FRA1 down; the router's BIRD now:")
    say(indent(story.bird_view(bed), "     "))
    show_answer("client")
    story.move_client(bed, "FRA1")
    say("   BGP session with FRA1 up again: the route is back on FRA1")

    title(6, "FRA1's dataplane dies: its agent withdraws the VIP")
    bed.stop("dataplane-FRA1", sig=9)
    t = time.monotonic()
    wait_for("FRA1 withdrawn", lambda: story.bgp_route(bed) == "SIN1", timeout=15)
    say(f"   the router moved the VIP to SIN1 {time.monotonic() - t:.1f} s after the kill")
    show_answer("client")
    bed.start_dataplane("FRA1")
    wait_for("FRA1 announced again", lambda: story.bgp_route(bed) == "FRA1", timeout=30)
    say("   FRA1's dataplane restarted: the agent re-applied its table and announced the VIP")
    say()
    say(f"[{time.monotonic() - T0:5.1f} s] done; the test bed comes down. To explore one: "
        "scripts/testbed up, then scripts/testbed ctl routes --pop SIN1 (docs/testbed.md)")


def run_relay(bed):
    title(1, "three PoPs; each probes the others over the backbone (mesh echo, UDP 7445)")
    wait_for("the PoP x PoP matrix", lambda: relay_story.matrix_measured(bed), timeout=30)
    say(indent(bed.ctl("pop", "matrix").stdout))

    title(2, "FRA1 reaches ap-southeast through SIN1 (after 3 rounds of hysteresis)")
    wait_for("FRA1 relaying through SIN1", lambda: relay_story.via(bed, "FRA1") == "SIN1",
             timeout=40)
    say("   IAD1 would be better than direct too, but not by the margin (max(10 ms, 20 %)); "
        "SIN1 reaches eu-central through FRA1 alike")
    say("   onrampctl routes --pop FRA1:")
    say(indent(bed.ctl("routes", "--pop", "FRA1").stdout, "     "))

    title(3, "TCP connect time through the VIP to ap-southeast, relayed and direct")
    relay_story.dial_to_ap(bed)
    wait_for("FRA1 routing web to ap-southeast",
             lambda: story.shares(bed, "FRA1").get("ap-southeast") == 100.0, timeout=30)
    say("   (web's eu-central group dialled to 0: the European client's flows go to "
        "ap-southeast)")
    n = 10
    on = relay_story.median_ms(relay_story.connects(bed, "client", 4, n))
    relay_story.set_relay(bed, False)
    wait_for("FRA1 direct", lambda: relay_story.via(bed, "FRA1") == "", timeout=20)
    wait_for("the change applied everywhere", bed.converged, timeout=20)
    off = relay_story.median_ms(relay_story.connects(bed, "client", 4, n))
    say(f"   median of {n} connects from the European client: {on:.1f} ms via SIN1, "
        f"{off:.1f} ms direct (accelerator update demo --relay off); the matrix says the "
        f"relay saves {relay_story.expected_saving_ms()} ms of the SYN's way")
    relay_story.set_relay(bed, True)
    wait_for("FRA1 relaying again", lambda: relay_story.via(bed, "FRA1") == "SIN1", timeout=40)
    wait_for("the change applied everywhere", bed.converged, timeout=20)
    say("   --relay on again: FRA1 relays through SIN1 after its rounds")

    title(4, "SIN1 dies (kill -9 of its dataplane and agent) while the client connects in a loop")
    loop = relay_story.connect_loop(bed, "client", 4, 30)
    time.sleep(1)
    _, fallback = relay_story.kill_relay(bed)
    got = relay_story.connect_loop_result(loop)
    failed = sum(1 for c in got if "error" in c)
    slow = sum(1 for c in got if c.get("ms", 0) > 1000)
    say("   FRA1's dataplane forwards new flows direct "
        + (f"{fallback * 1000:.0f} ms after the kill" if fallback is not None
           else "NOT within 5 s") + f"; {len(got)} connects in a loop: {failed} failed, "
        f"{slow} needed a SYN retry")
    say(f"   FRA1 -> ap-southeast now: {relay_story.group_route(bed, 'FRA1').get('path_reason')}")
    say()
    say(f"[{time.monotonic() - T0:5.1f} s] done; the relay bed comes down. To explore one: "
        "scripts/testbed up --relay (docs/testbed.md, The relay bed)")


BED = None


def main():
    global BED
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", required=True)
    ap.add_argument("--keep", action="store_true", help="leave the test bed up at the end")
    ap.add_argument("--relay", action="store_true",
                    help="the relaying chapter, on the relay bed (three PoPs and a backbone)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("demo: needs root (network namespaces)")
    BED = Testbed(args.build, prefix="odr" if args.relay else "od", relay=args.relay)
    BED.down()  # whatever an interrupted demo left
    if args.relay:
        say("== onramp demo, relaying: three PoPs (FRA1, SIN1, IAD1), a backbone between them, "
            "two regions ==")
        say("   one-way WAN delays, ms: " + "; ".join(
            f"{who} {d['eu-central']} to eu-central, {d['ap-southeast']} to ap-southeast"
            for who, d in RELAY_MS.items()))
        say("   backbone, one way: " + ", ".join(f"{a}-{b} {ms} ms"
                                                 for (a, b), ms in BACKBONE_MS.items()))
    else:
        say("== onramp demo: one anycast accelerator (IPv4 and IPv6 VIPs), two PoPs (FRA1, SIN1), "
            "two regions ==")
        say("   client (Europe) and client2 (Asia) -> VIP 203.0.113.200 or 2001:db8:200::200 -> "
            "PoP -> endpoint;")
        say("   WAN delays: 2 ms one way to the near region, 30 ms to the far one")
    try:
        pops = len(BED.bed_pops)
        title(0, f"test bed up: controller, {pops} PoPs (dataplane + agent + BIRD), 4 endpoints")
        BED.up()
        if args.relay:
            run_relay(BED)
        else:
            run_story(BED)
    except Failure as e:
        say(f"demo failed: {e} (logs: {BED.state})")
        return 1
    except KeyboardInterrupt:
        return 130
    finally:
        if not args.keep:
            BED.down()
    return 0


if __name__ == "__main__":
    sys.exit(main())
