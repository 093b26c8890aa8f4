#!/usr/bin/env python3
"""A hostile Tap service (issue 9, item 11): events that cannot be used but whose id can be
read are acked (else Tap sends them again for ever); the rest are counted and logged.

"Readable id" here: the top-level object's "id" member, digits only, in 0..2^64-1 (Tap's
ids are unsigned 64-bit; one above 2^63-1 cannot become a message seq, but it is still
Tap's id and is acked), whatever else is wrong with the event. The Tap here is a minimal
WebSocket server speaking Tap's /channel protocol, scripted by the test."""
import base64
import hashlib
import json
import socket
import struct
import threading
import unittest

import kafkautil
from atkharness import Daemon, wait_until

NO_RELAY = "ws://127.0.0.1:9"  # the harness wants one; Tap mode does not use it
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HostileTap:
    """Serves the given text messages to each client on /channel and records its acks."""

    def __init__(self, events):
        self.events = events
        self.acks = []
        self.lock = threading.Lock()
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.url = "ws://127.0.0.1:%d" % self.sock.getsockname()[1]
        self.clients = []
        threading.Thread(target=self.accept_loop, daemon=True).start()

    def close(self):
        self.sock.close()
        for c in self.clients:
            try:
                c.close()
            except OSError:
                pass

    def accepted(self):
        with self.lock:
            return list(self.acks)

    def accept_loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.clients.append(conn)
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    @staticmethod
    def recv_exact(conn, n):
        data = b""
        while len(data) < n:
            chunk = conn.recv(n - len(data))
            if not chunk:
                raise EOFError
            data += chunk
        return data

    @staticmethod
    def send_frame(conn, opcode, payload):
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
        conn.sendall(head + payload)

    def serve(self, conn):
        try:
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                request += chunk
            key = ""
            for line in request.decode("latin-1").split("\r\n"):
                if line.lower().startswith("sec-websocket-key:"):
                    key = line.split(":", 1)[1].strip()
            accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            conn.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                          "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n"
                          % accept).encode())
            for event in self.events:
                self.send_frame(conn, 0x1, event)
            while True:
                b0, b1 = self.recv_exact(conn, 2)
                n = b1 & 0x7F
                if n == 126:
                    n = struct.unpack("!H", self.recv_exact(conn, 2))[0]
                elif n == 127:
                    n = struct.unpack("!Q", self.recv_exact(conn, 8))[0]
                mask = self.recv_exact(conn, 4) if b1 & 0x80 else b"\0\0\0\0"
                payload = bytes(c ^ mask[i % 4] for i, c in enumerate(self.recv_exact(conn, n)))
                opcode = b0 & 0x0F
                if opcode == 0x8:
                    self.send_frame(conn, 0x8, payload[:2])
                    return
                if opcode == 0x9:
                    self.send_frame(conn, 0xA, payload)
                elif opcode == 0x1:
                    message = json.loads(payload)
                    if message.get("type") == "ack":
                        with self.lock:
                            self.acks.append(message["id"])
        except (EOFError, OSError):
            return
        finally:
            conn.close()


def identity(ident, did="did:plc:hostiletap"):
    return ('{"id":%s,"type":"identity","identity":{"did":%s,"handle":"h.test",'
            '"is_active":true,"status":"active"}}' % (ident, json.dumps(did)))


POISON = {
    # id → the event: each fails to transform, each id can be read
    101: '{"id":101,"type":"record","record":{"did":"did:plc:x","collection":"a.b.c",'
         '"rkey":"k","action":"create","cid":"c","record":{"x":' + "[" * 20000 + "]" * 20000
         + "}}}",
    102: identity(102, "did:plc:nul\u0000inside"),
    103: identity(103) + '} trailing garbage {"id":7',
    2 ** 63: identity(2 ** 63),
    2 ** 64 - 1: identity(2 ** 64 - 1),
    104: '{"type":"identity","id":104,"identity":{"did":"d","handle":"\\ud800"}}',
}
UNREADABLE = [
    identity(-4),
    identity('"105"'),
    identity(2 ** 64),
    identity("1.5"),
    "not json at all",
    "[" * 50000,
]
GOOD = 200


class HostileTapTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker()

    def test_poison_events_acked_the_rest_counted(self):
        events = [text.encode() for text in POISON.values()]
        events += [text.encode() for text in UNREADABLE]
        events.append(identity(GOOD).encode())
        tap = HostileTap(events)
        self.addCleanup(tap.close)
        topic = kafkautil.unique_topic("hostile-tap")
        daemon = Daemon(NO_RELAY, topic, "--tap-host", tap.url)
        self.addCleanup(daemon.kill)

        # Events are handled in order and a failed one is acked at once: once the good
        # event (acked only after Kafka took its two messages) is acked, all are done.
        wait_until(lambda: GOOD in tap.accepted(), 60,
                   "the good event's ack (%s)" % daemon.output()[-2000:])
        self.assertEqual(sorted(tap.accepted()), sorted(list(POISON) + [GOOD]))
        self.assertEqual(daemon.metric("atkafka_decode_errors_total"),
                         len(POISON) + len(UNREADABLE))
        self.assertEqual(kafkautil.count(topic), 2)
        self.assertTrue(daemon.alive())
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])
        out = daemon.output()
        self.assertIn("skipped and acked", out)


if __name__ == "__main__":
    unittest.main(verbosity=2)
