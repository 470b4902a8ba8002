#!/usr/bin/python3
"""Steady traffic from one test-bed client while the chaos suite breaks
things: what a user of the VIP would see. Runs inside a client's namespace
until SIGTERM, then prints one JSON line with what it saw.

  requests   HTTP GETs to VIP:80 in a loop, each on a new connection; one
             that gets no answer within REQUEST_TIMEOUT_S (an error, a reset,
             a timeout) is a failed request
  udp        one UDP flow to VIP:5300, a datagram "seq=N" every UDP_GAP_S;
             the endpoint's answer carries N back, so a datagram with no
             answer is a lost one (the last second before SIGTERM is left
             out: its answers may still be on the way)
  hold       one long-lived TCP connection to VIP:7000 (the endpoint's line
             echo), a line every 100 ms: does it survive, on its endpoint

Times are CLOCK_MONOTONIC, one clock for every namespace, so the suite
compares them with the moment it injected a fault.

usage: load.py VIP
"""
import http.client
import json
import signal
import socket
import sys
import threading
import time

HTTP, ECHO, UDP = 80, 7000, 5300
REQUEST_TIMEOUT_S = 5.0
REQUEST_GAP_S = 0.1
UDP_GAP_S = 0.02
HOLD_GAP_S = 0.1
HOLD_TIMEOUT_S = 15.0
IN_FLIGHT_S = 1.0

stop = threading.Event()


def requests(vip, out):
    while not stop.is_set():
        t0 = time.monotonic()
        try:
            c = http.client.HTTPConnection(vip, HTTP, timeout=REQUEST_TIMEOUT_S)
            c.request("GET", "/")
            body = c.getresponse().read().decode()
            c.close()
            if "endpoint=" not in body:
                raise OSError(f"not an endpoint's answer: {body[:80]!r}")
            out["ok"] += 1
        except (OSError, http.client.HTTPException) as e:
            out["failed"].append([round(t0, 3), f"{type(e).__name__}: {e}"[:120]])
        t1 = time.monotonic()
        out["slowest_s"] = max(out["slowest_s"], round(t1 - t0, 3))
        time.sleep(max(0.0, REQUEST_GAP_S - (t1 - t0)))


def udp_stream(vip, out):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((vip, UDP))
    s.settimeout(0.2)
    sent = {}  # seq -> send time
    answered = set()

    def receive():
        while not (stop.is_set() and time.monotonic() > out["_stopped"] + IN_FLIGHT_S):
            try:
                data = s.recv(512)
            except socket.timeout:
                continue
            except OSError:  # ICMP unreachable on a connected socket
                continue
            if data.startswith(b"seq="):
                answered.add(int(data.split()[0][4:]))

    rx = threading.Thread(target=receive)
    rx.start()
    seq, t = 0, time.monotonic()
    while not stop.is_set():
        try:
            s.send(f"seq={seq} chaos".encode())
        except OSError:
            pass  # counted as lost: it has no answer
        sent[seq] = time.monotonic()
        seq += 1
        t += UDP_GAP_S
        time.sleep(max(0.0, t - time.monotonic()))
    out["_stopped"] = time.monotonic()
    rx.join()
    counted = [n for n, ts in sent.items() if ts < out["_stopped"] - IN_FLIGHT_S]
    lost = [n for n in counted if n not in answered]
    out["sent"] = len(counted)
    out["lost"] = len(lost)
    if lost:
        out["lost_from"] = round(sent[lost[0]], 3)
        out["lost_to"] = round(sent[lost[-1]], 3)
        # Runs of consecutive lost datagrams: [first send time, last, count].
        spans = []
        for n in lost:
            if spans and n == spans[-1][3] + 1:
                spans[-1][1], spans[-1][2], spans[-1][3] = round(sent[n], 3), spans[-1][2] + 1, n
            else:
                spans.append([round(sent[n], 3), round(sent[n], 3), 1, n])
        out["lost_spans"] = [s[:3] for s in spans]


def hold(vip, out):
    try:
        s = socket.create_connection((vip, ECHO), timeout=HOLD_TIMEOUT_S)
        f = s.makefile("rwb")
        n, last = 0, time.monotonic()
        while not stop.is_set():
            f.write(f"line {n}\n".encode())
            f.flush()
            answer = f.readline().decode()
            if not answer:
                raise OSError("closed by the far end")
            endpoint = answer.split()[0]
            out.setdefault("endpoint", endpoint)
            if endpoint != out["endpoint"]:
                raise OSError(f"moved from {out['endpoint']} to {endpoint}")
            now = time.monotonic()
            out["max_gap_s"] = max(out.get("max_gap_s", 0), round(now - last, 3))
            last = now
            n += 1
            stop.wait(HOLD_GAP_S)
        out["survived"] = True
        out["lines"] = n
        s.close()
    except OSError as e:
        out["survived"] = False
        out["error"] = f"{type(e).__name__}: {e}"[:120]
        out["broke_at"] = round(time.monotonic(), 3)


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    vip = sys.argv[1]
    results = {"requests": {"ok": 0, "failed": [], "slowest_s": 0.0},
               "udp": {"_stopped": float("inf")}, "hold": {}}
    threads = [threading.Thread(target=requests, args=(vip, results["requests"])),
               threading.Thread(target=udp_stream, args=(vip, results["udp"])),
               threading.Thread(target=hold, args=(vip, results["hold"]))]
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    for t in threads:
        t.start()
    print(json.dumps({"started": round(time.monotonic(), 3)}), flush=True)
    while not stop.is_set():
        stop.wait(0.5)
    for t in threads:
        t.join()
    results["udp"].pop("_stopped", None)
    print(json.dumps(results), flush=True)


if __name__ == "__main__":
    main()
