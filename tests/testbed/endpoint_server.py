#!/usr/bin/python3
"""The small server every test-bed endpoint runs: it answers with its own name
and region and the client address it sees, so a test can tell which endpoint
served it and that the client's address survived the PoP's encapsulation.

  TCP 80    HTTP/1.1: GET /health -> 200 "ok"; any other GET -> 200 and one
            line "endpoint=eu1 region=eu-central client=192.0.2.10:40123"
  TCP 7000  line echo for long-lived connections: each line comes back
            prefixed "eu1 " (so a client sees which endpoint holds it)
  UDP 5300  "ping" -> "pong" (the health check); anything else -> the same
            one line as HTTP, led by the datagram's "seq=N" when it starts
            with one (the chaos suite's numbered stream)

It binds the wildcard address, so it serves the VIP (on the loopback, reached
through onramp-decap) and its own address (probes) alike.

usage: endpoint_server.py NAME REGION
"""
import http.server
import socket
import socketserver
import struct
import sys
import threading

HTTP_PORT, ECHO_PORT, UDP_PORT = 80, 7000, 5300
IP_PKTINFO = 8  # struct in_pktinfo {int ifindex; in_addr spec_dst, addr}


def describe(name, region, client):
    return f"endpoint={name} region={region} client={client[0]}:{client[1]}\n"


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    name, region = sys.argv[1], sys.argv[2]

    class Http(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            body = b"ok\n" if self.path == "/health" else describe(
                name, region, self.client_address).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    class Echo(socketserver.StreamRequestHandler):
        def handle(self):
            for line in self.rfile:
                self.wfile.write(f"{name} ".encode() + line)

    class Server(socketserver.ThreadingTCPServer):
        allow_reuse_address = True
        daemon_threads = True

    servers = [Server(("0.0.0.0", HTTP_PORT), Http), Server(("0.0.0.0", ECHO_PORT), Echo)]
    for s in servers:
        threading.Thread(target=s.serve_forever, daemon=True).start()

    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # Reply from the address the datagram was sent to (the VIP for clients,
    # our own for probes), not from whatever the route would pick.
    udp.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
    udp.bind(("0.0.0.0", UDP_PORT))
    print(f"{name} ({region}) serving", flush=True)
    while True:
        data, ancillary, _, client = udp.recvmsg(2048, socket.CMSG_SPACE(12))
        reply = b"pong" if data == b"ping" else describe(name, region, client).encode()
        if data.startswith(b"seq="):
            reply = data.split()[0] + b" " + reply
        source = [(socket.IPPROTO_IP, IP_PKTINFO, struct.pack("=i4s4s", 0, d[4:8], bytes(4)))
                  for lvl, t, d in ancillary if lvl == socket.IPPROTO_IP and t == IP_PKTINFO]
        udp.sendmsg([reply], source, 0, client)


if __name__ == "__main__":
    main()
