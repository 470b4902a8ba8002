#!/usr/bin/python3
"""Traffic tools the test bed runs inside its namespaces.

  traffic.py udp-flows VIP PORT SECONDS RATE
      sends one datagram a flow (a new socket, so a new source port) RATE
      times a second for SECONDS: every datagram is a new flow for the PoP;
      prints "started" before the first
  traffic.py sniff PORT
      prints "ready" once it listens, then, one a line, the CLOCK_MONOTONIC
      time and source of every UDP datagram to PORT that reaches this
      namespace's e0 (after onramp-decap: the client's own packet), until
      SIGTERM
  traffic.py hold VIP PORT SECONDS [SOURCE_PORT]
      one long-lived TCP connection to the endpoint's line echo (from
      SOURCE_PORT when given, else one the kernel picks): sends a line
      every 100 ms for SECONDS, or until SIGUSR1, and prints each answer's
      endpoint and the gaps longer than a second; exits 1 when the
      connection breaks or the endpoint changes

  traffic.py upload VIP PORT BYTES
      one HTTP POST of BYTES bytes through the VIP; prints what the endpoint
      saw (its name, region, the client address, the bytes and their
      SHA-256) beside what was sent
  traffic.py download VIP PORT BYTES
      one HTTP GET of BYTES bytes from the endpoint; prints the SHA-256 of
      what arrived beside the one expected
  traffic.py udp-size VIP PORT SIZE [ATTEMPTS]
      one datagram of SIZE bytes (the kernel fragments what exceeds the
      link's MTU), sent again while unanswered up to ATTEMPTS times (1);
      prints the endpoint's answer, what was sent and what went wrong
  traffic.py udp-count VIP PORT FLOWS SIZE
      FLOWS datagrams of SIZE bytes, each from a socket of its own on a
      source port no earlier flow used (a new flow each), each waiting for
      its answer; prints how many each endpoint answered

  traffic.py connects VIP PORT COUNT GAP_MS
      COUNT TCP connects one after the other, GAP_MS apart, each a new
      flow (a new socket, a port the kernel picks) closed once connected;
      prints one line a connect: its start (CLOCK_MONOTONIC, s) and its
      connect time in ms, or the error (5 s to connect, SYN retries left
      to the kernel)

Every command takes an IPv4 or an IPv6 VIP. CLOCK_MONOTONIC is one clock for
every namespace, so times compare across them.
"""
import hashlib
import http.client
import json
import random
import signal
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def answer_fields(text):
    """'endpoint=eu1 region=eu-central bytes=3 ...' -> dict."""
    return dict(kv.split("=", 1) for kv in text.split() if "=" in kv)


def upload(vip, port, size):
    data = random.Random(size).randbytes(size)
    t = time.monotonic()
    c = http.client.HTTPConnection(vip, port, timeout=30)
    c.request("POST", "/upload", body=data, headers={"Content-Type": "application/octet-stream"})
    r = c.getresponse()
    seen = answer_fields(r.read().decode())
    print(json.dumps({"status": r.status, "seconds": round(time.monotonic() - t, 3),
                      "sent_bytes": size, "sent_sha256": hashlib.sha256(data).hexdigest(),
                      **seen}), flush=True)


def download(vip, port, size):
    seed = random.randrange(1 << 30)
    t = time.monotonic()
    c = http.client.HTTPConnection(vip, port, timeout=30)
    c.request("GET", f"/bytes?n={size}&seed={seed}")
    r = c.getresponse()
    data = r.read()
    # The endpoint server's payload(): the same generator, the same seed.
    want = random.Random(seed).randbytes(size)
    print(json.dumps({"status": r.status, "seconds": round(time.monotonic() - t, 3),
                      "endpoint": r.getheader("X-Endpoint"), "region": r.getheader("X-Region"),
                      "client": r.getheader("X-Client"), "bytes": len(data),
                      "sha256": hashlib.sha256(data).hexdigest(),
                      "expected_sha256": hashlib.sha256(want).hexdigest()}), flush=True)


def udp_size(vip, port, size, attempts):
    """Sends the datagram up to `attempts` times, as a resolver would: an
    IPv6 datagram fragmented for a link MTU larger than the path's is
    answered by a packet-too-big, which a connected socket reports as
    EMSGSIZE; the kernel has then learnt the path MTU for the retry.
    From a source port below the ephemeral range, as udp_count: an e2e run
    on the IPv6 VIP saw a 1400-byte datagram from an ephemeral port go to
    the region the previous step had failed over to, as a packet of that
    step's flow from the same port, still in the PoP's flow table."""
    data = random.Random(size).randbytes(size)
    seen, errors = {}, []
    with socket.socket(family(vip), socket.SOCK_DGRAM) as s:
        s.settimeout(3)
        s.bind(("::" if family(vip) == socket.AF_INET6 else "0.0.0.0", unused_port()))
        s.connect((vip, port))
        for _ in range(attempts):
            s.send(data)
            try:
                seen = answer_fields(s.recv(2048).decode())
                break
            except socket.timeout:
                errors.append("no answer in 3 s")
            except OSError as e:
                errors.append(e.strerror)
    print(json.dumps({"sent_bytes": size, "sent_sha256": hashlib.sha256(data).hexdigest(),
                      "attempts": len(errors) + bool(seen), "errors": errors, **seen}),
          flush=True)


def unused_port(count=1):
    """The first of `count` source ports below the kernel's ephemeral range
    (32768 and up), from a random start: an ephemeral port an earlier step
    used may still have its flow in a PoP's flow table, which would carry a
    datagram to that flow's endpoint as a packet of an old flow, not a new
    one."""
    return random.randrange(10000, 32768 - count)


def udp_count(vip, port, flows, size):
    by_endpoint, unanswered = {}, 0
    first = unused_port(flows)  # in a run
    for i in range(flows):
        with socket.socket(family(vip), socket.SOCK_DGRAM) as s:
            s.settimeout(3)
            s.bind(("::" if family(vip) == socket.AF_INET6 else "0.0.0.0", first + i))
            s.connect((vip, port))
            s.send(random.Random(i).randbytes(size))
            try:
                name = answer_fields(s.recv(2048).decode()).get("endpoint", "?")
                by_endpoint[name] = by_endpoint.get(name, 0) + 1
            except OSError:
                unanswered += 1
    print(json.dumps({"sent": flows, "size": size, "by_endpoint": by_endpoint,
                      "unanswered": unanswered}), flush=True)


def udp_flows(vip, port, seconds, rate):
    print("started", flush=True)
    end = time.monotonic() + seconds
    gap = 1.0 / rate
    sent = 0
    t = time.monotonic()
    while t < end:
        with socket.socket(family(vip), socket.SOCK_DGRAM) as s:
            s.sendto(b"flow", (vip, port))
        sent += 1
        t += gap
        time.sleep(max(0.0, t - time.monotonic()))
    print(json.dumps({"sent": sent}), flush=True)


def sniff(port):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind(("e0", 0))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("ready", flush=True)
    while True:
        frame = s.recv(2048)
        now = time.monotonic()
        if len(frame) >= 42 and frame[12:14] == b"\x08\x00" and frame[23] == 17:
            l4 = 14 + (frame[14] & 0x0F) * 4
            source = socket.inet_ntoa(frame[26:30])
        elif len(frame) >= 62 and frame[12:14] == b"\x86\xdd" and frame[20] == 17:
            l4 = 54  # no extension headers: the flows' datagrams are small
            source = socket.inet_ntop(socket.AF_INET6, frame[22:38])
        else:
            continue
        if len(frame) >= l4 + 4 and struct.unpack_from("!H", frame, l4 + 2)[0] == port:
            print(f"{now:.6f} {source}", flush=True)


def hold(vip, port, seconds, source_port=0):
    s = socket.socket(family(vip), socket.SOCK_STREAM)
    # The port may still be in TIME_WAIT from an earlier connection to the VIP.
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", source_port))
    s.settimeout(15)
    s.connect((vip, port))
    f = s.makefile("rwb")
    end = [time.monotonic() + seconds]

    def finish(*_):
        end[0] = time.monotonic()

    signal.signal(signal.SIGUSR1, finish)
    first, last_ok, n = None, time.monotonic(), 0
    while time.monotonic() < end[0]:
        f.write(f"line {n}\n".encode())
        f.flush()
        try:
            answer = f.readline().decode()
        except OSError as e:
            print(json.dumps({"error": f"connection broken: {e}", "lines": n}), flush=True)
            sys.exit(1)
        if not answer:
            print(json.dumps({"error": "connection closed", "lines": n}), flush=True)
            sys.exit(1)
        endpoint = answer.split()[0]
        now = time.monotonic()
        if first is None:
            first = endpoint
            print(json.dumps({"endpoint": endpoint, "port": s.getsockname()[1]}), flush=True)
        if endpoint != first:
            print(json.dumps({"error": f"moved from {first} to {endpoint}", "lines": n}),
                  flush=True)
            sys.exit(1)
        if now - last_ok > 1.0:
            print(json.dumps({"gap_s": round(now - last_ok, 3), "line": n}), flush=True)
        last_ok = now
        n += 1
        time.sleep(0.1)
    print(json.dumps({"done": True, "endpoint": first, "lines": n}), flush=True)


def connects(vip, port, count, gap_ms):
    for _ in range(count):
        t = time.monotonic()
        with socket.socket(family(vip), socket.SOCK_STREAM) as s:
            s.settimeout(5)
            try:
                s.connect((vip, port))
                print(json.dumps({"t": round(t, 6),
                                  "ms": round((time.monotonic() - t) * 1000.0, 3)}), flush=True)
            except OSError as e:
                print(json.dumps({"t": round(t, 6), "error": str(e)}), flush=True)
        time.sleep(gap_ms / 1000.0)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "udp-flows":
        udp_flows(a[0], int(a[1]), float(a[2]), float(a[3]))
    elif cmd == "upload":
        upload(a[0], int(a[1]), int(a[2]))
    elif cmd == "download":
        download(a[0], int(a[1]), int(a[2]))
    elif cmd == "udp-size":
        udp_size(a[0], int(a[1]), int(a[2]), int(a[3]) if len(a) > 3 else 1)
    elif cmd == "udp-count":
        udp_count(a[0], int(a[1]), int(a[2]), int(a[3]))
    elif cmd == "sniff":
        sniff(int(a[0]))
    elif cmd == "connects":
        connects(a[0], int(a[1]), int(a[2]), float(a[3]))
    elif cmd == "hold":
        hold(a[0], int(a[1]), float(a[2]), int(a[3]) if len(a) > 3 else 0)
    else:
        sys.exit(__doc__)
