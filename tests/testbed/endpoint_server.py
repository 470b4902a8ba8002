#!/usr/bin/python3
"""The small server every test-bed endpoint runs: it answers with its own name
and region and the client address it sees, so a test can tell which endpoint
served it and that the client's address survived the PoP's encapsulation.

  TCP 80    HTTP/1.1: GET /health -> 200 "ok";
            GET /bytes?n=N&seed=S -> N bytes of payload(N, S) (below);
            POST (any path) -> the line below with "bytes=N sha256=HEX" of
            the body it received;
            any other GET -> 200 and one line
            "endpoint=eu1 region=eu-central client=192.0.2.10:40123"
  TCP 7000  line echo for long-lived connections: each line comes back
            prefixed "eu1 " (so a client sees which endpoint holds it)
  UDP 5300  "ping" -> "pong" (the health check); anything else -> the same
            one line as HTTP with "bytes=N sha256=HEX" of the datagram
            received (up to 64 KiB, so fragmented datagrams are checked whole),
            led by the datagram's "seq=N" when it starts with one (the chaos
            suite's numbered stream)

Every answer to a client also carries the endpoint's name, region and the
client address in the headers X-Endpoint, X-Region and X-Client.

It serves IPv4 and IPv6 alike (one socket for each family, bound to the
wildcard address), so it serves the VIPs (on the loopback, reached through
onramp-decap) and its own addresses (probes).

usage: endpoint_server.py NAME REGION
"""
import hashlib
import http.server
import random
import socket
import socketserver
import struct
import sys
import threading
import urllib.parse

HTTP_PORT, ECHO_PORT, UDP_PORT = 80, 7000, 5300
IP_PKTINFO = 8  # struct in_pktinfo {int ifindex; in_addr spec_dst, addr}
MAX_DATAGRAM = 65535
CHUNK = 64 << 10


def payload(n, seed):
    """The bytes a download of n bytes with this seed carries (traffic.py
    computes the same to check what arrived)."""
    return random.Random(seed).randbytes(n)


def describe(name, region, client, data=None):
    line = f"endpoint={name} region={region} client={client[0]}:{client[1]}"
    if data is not None:
        line += f" bytes={len(data)} sha256={hashlib.sha256(data).hexdigest()}"
    return line + "\n"


def serve_udp(sock, name, region, family):
    # Reply from the address the datagram was sent to (the VIP for clients,
    # our own for probes), not from whatever the route would pick.
    if family == socket.AF_INET:
        sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        level, kind = socket.IPPROTO_IP, IP_PKTINFO
    else:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
        level, kind = socket.IPPROTO_IPV6, socket.IPV6_PKTINFO
    while True:
        data, ancillary, _, client = sock.recvmsg(MAX_DATAGRAM, socket.CMSG_SPACE(20))
        reply = b"pong" if data == b"ping" else describe(name, region, client, data).encode()
        if data.startswith(b"seq="):
            reply = data.split()[0] + b" " + reply
        source = []
        for lvl, t, d in ancillary:
            if lvl == level and t == kind:
                if family == socket.AF_INET:
                    source.append((level, kind, struct.pack("=i4s4s", 0, d[4:8], bytes(4))))
                else:
                    source.append((level, kind, d[:16] + bytes(4)))
        sock.sendmsg([reply], source, 0, client)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    name, region = sys.argv[1], sys.argv[2]

    class Http(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self, body):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Endpoint", name)
            self.send_header("X-Region", region)
            self.send_header("X-Client", f"{self.client_address[0]}:{self.client_address[1]}")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            url = urllib.parse.urlsplit(self.path)
            if url.path == "/health":
                return self.answer(b"ok\n")
            if url.path == "/bytes":
                q = urllib.parse.parse_qs(url.query)
                n = min(int(q.get("n", ["0"])[0]), 64 << 20)
                return self.answer(payload(n, int(q.get("seed", ["0"])[0])))
            self.answer(describe(name, region, self.client_address).encode())

        def do_POST(self):
            left = int(self.headers.get("Content-Length", "0"))
            body = bytearray()
            while left > 0:
                chunk = self.rfile.read(min(left, CHUNK))
                if not chunk:
                    break
                body += chunk
                left -= len(chunk)
            self.answer(describe(name, region, self.client_address, bytes(body)).encode())

        def log_message(self, *_):
            pass

    class Echo(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                self.wfile.write(f"{name} ".encode() + line)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    class Server6(Server):
        address_family = socket.AF_INET6

        def server_bind(self):
            self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            super().server_bind()

    servers = [Server(("0.0.0.0", HTTP_PORT), Http), Server(("0.0.0.0", ECHO_PORT), Echo),
               Server6(("::", HTTP_PORT), Http), Server6(("::", ECHO_PORT), Echo)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()

    udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    udp6.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    udp6.bind(("::", UDP_PORT))
    threading.Thread(target=serve_udp, args=(udp6, name, region, socket.AF_INET6),
                     daemon=True).start()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", UDP_PORT))
    print(f"{name} ({region}) serving", flush=True)
    serve_udp(udp, name, region, socket.AF_INET)


if __name__ == "__main__":
    main()
