#!/usr/bin/env python3
"""A real DNS server (UDP, dnslib) on a loopback address, port 53, for the handle-resolution
tests, and a way to run a program with it as its only name server: a private mount namespace
(unshare -m) whose /etc/resolv.conf names it. The program under test is unchanged: glibc's
resolver (GResolver, getaddrinfo) asks this server as it would ask any other. Needs root (port
53, mount).

The zone is a JSON file, read again for every query (tests write it with write_zone()):
  {"txt": {"_atproto.alice.test": ["did=did:plc:..."]},
   "a": ["test", "example.org"],          # names under these answer A 127.0.0.1
   "drop": ["_atproto.slow.example.org"]}  # queries never answered (a timeout)
Any other name is NXDOMAIN.

As a wrapper (meson runs the C tests this way):
  loopdns.py -- PROGRAM ARGS...   runs PROGRAM in the namespace, ATK_TEST_DNS_ZONE = the zone
"""
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading

try:
    import dnslib  # noqa: F401
except ImportError:  # Debian's python3-dnslib (tools/install-deps), from another python3
    sys.path.append("/usr/lib/python3/dist-packages")
from dnslib import A, QTYPE, RCODE, RR, TXT, DNSRecord  # noqa: E402

MOUNT = 'mount --bind "$0" /etc/resolv.conf && exec "$@"'


def write_zone(path, zone):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(zone, f)
    os.replace(tmp, path)


class LoopDns:
    def __init__(self, zone=None):
        self.dir = tempfile.mkdtemp(prefix="atk-loopdns-")
        self.zone_path = os.path.join(self.dir, "zone.json")
        write_zone(self.zone_path, zone or {})
        self.sock = None
        for _ in range(20):
            self.address = f"127.53.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                sock.bind((self.address, 53))
            except OSError:
                sock.close()
                continue
            self.sock = sock
            break
        if self.sock is None:
            raise AssertionError("no free loopback address for the test DNS server")
        self.resolv_conf = os.path.join(self.dir, "resolv.conf")
        with open(self.resolv_conf, "w") as f:
            # One try, 3 s: a dropped query ends within the tests' own deadlines.
            f.write(f"nameserver {self.address}\noptions timeout:3 attempts:1\n")
        self.queries = 0
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def set_zone(self, zone):
        write_zone(self.zone_path, zone)

    def prefix(self):
        """argv that runs the rest of the command line with this server as name server."""
        return ["unshare", "-m", "sh", "-c", MOUNT, self.resolv_conf]

    def _answer(self, data):
        try:
            with open(self.zone_path) as f:
                zone = json.load(f)
        except (OSError, ValueError):
            zone = {}
        request = DNSRecord.parse(data)
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        if name in zone.get("drop", []):
            return None
        txt = zone.get("txt", {})
        under_a = any(name == s or name.endswith("." + s) for s in zone.get("a", []))
        if name in txt:
            if request.q.qtype == QTYPE.TXT:
                for value in txt[name]:
                    reply.add_answer(RR(request.q.qname, QTYPE.TXT, rdata=TXT(value), ttl=1))
        elif under_a:
            if request.q.qtype == QTYPE.A:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A("127.0.0.1"), ttl=1))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply.pack()

    def _serve(self):
        while True:
            try:
                data, peer = self.sock.recvfrom(4096)
            except OSError:
                return
            if self.stopped:
                return
            self.queries += 1
            try:
                answer = self._answer(data)
            except Exception as e:  # a test server: report, keep serving
                print(f"loopdns: {e}", file=sys.stderr)
                continue
            if answer is not None:
                self.sock.sendto(answer, peer)

    def stop(self):
        self.stopped = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def main():
    if len(sys.argv) < 3 or sys.argv[1] != "--":
        sys.exit("usage: loopdns.py -- PROGRAM ARGS...")
    dns = LoopDns()
    env = {**os.environ, "ATK_TEST_DNS_ZONE": dns.zone_path}
    try:
        status = subprocess.call(dns.prefix() + sys.argv[2:], env=env)
    finally:
        dns.stop()
    sys.exit(status)


if __name__ == "__main__":
    main()
