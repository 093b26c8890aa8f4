#!/usr/bin/env python3
"""Hostile peers on the network side (issue 9): a hostile relay (tests/hostile/relay.py) and
abusive HTTP clients on the metrics port, against the real daemon and a real broker.

Each test names the item of issue 9 it covers; each failed on the code before the fix."""
import os
import re
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request

import kafkautil
from atkharness import Daemon, stop_process, wait_until

SOURCE_DIR = os.environ["ATK_SOURCE_DIR"]
HOSTILE_DIR = os.path.join(SOURCE_DIR, "tests", "hostile")
sys.path.insert(0, HOSTILE_DIR)
import httpabuse  # noqa: E402


class HostileRelay:
    """tests/hostile/relay.py in a mode; counts the connections it saw."""

    def __init__(self, mode, *extra):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, os.path.join(HOSTILE_DIR, "relay.py"),
                                      "--mode", mode, *extra], stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith(("ws://", "wss://")):
            self.stop()
            raise AssertionError(f"relay did not start: {line!r}")
        self.url = line
        self.lines = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.strip()))

    def connections(self, since=0.0):
        return sum(1 for t, line in list(self.lines) if line.startswith("CONNECT") and t >= since)

    def saw(self, prefix):
        return any(line.startswith(prefix) for _, line in list(self.lines))

    def stop(self):
        stop_process(self.proc)
        self.log.close()


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise AssertionError(f"no {field}")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def produced(daemon):
    """Messages Kafka acknowledged so far (the topic keeps growing: counting it with kcat
    would chase its end)."""
    return daemon.metric("atkafka_produced_events", status="ok")


def wait_produced(daemon, n, timeout=90):
    wait_until(lambda: produced(daemon) >= n, timeout, f"{n} messages acknowledged", 0.2)


def scrape_seconds(daemon, timeout=5):
    """How long one GET /metrics takes (raises if it fails)."""
    start = time.monotonic()
    with urllib.request.urlopen(f"http://127.0.0.1:{daemon.metrics_port}/metrics",
                                timeout=timeout) as r:
        r.read()
    return time.monotonic() - start


class HostileNetTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker()

    def relay(self, mode, *extra):
        relay = HostileRelay(mode, *extra)
        self.addCleanup(relay.stop)
        return relay

    def daemon(self, relay_url, *extra, **kw):
        topic = kafkautil.unique_topic("hostile")
        daemon = Daemon(relay_url, topic, *extra, **kw)
        self.addCleanup(daemon.kill)
        self.addCleanup(lambda: sys.stderr.write(daemon.output()[-3000:])
                        if self._outcome.result.failures or self._outcome.result.errors
                        else None)
        return daemon, topic

    # ---- item 7: reconnect storm -------------------------------------------------------

    def test_error_frame_on_every_connection_backs_off(self):
        """A relay answering every connection with ConsumerTooSlow: the daemon reconnects
        (the relay asked for it), but with a growing delay. Before: ~1,600 a second."""
        relay = self.relay("too-slow")
        daemon, _ = self.daemon(relay.url)
        wait_until(lambda: relay.connections() >= 3, 30, "three connections")
        start = time.monotonic()
        wait_until(lambda: time.monotonic() - start >= 8 or relay.connections(start) > 24, 20,
                   "eight seconds or too many connections")
        seen = relay.connections(start)
        elapsed = time.monotonic() - start
        self.assertLessEqual(seen, 24, f"{seen} connections in {elapsed:.1f} s")
        self.assertTrue(daemon.alive())
        self.assertIn("ConsumerTooSlow", daemon.output())

    # ---- a producer queue smaller than one commit --------------------------------------

    def test_queue_smaller_than_a_commit(self):
        """queue.buffering.max.messages=1 and commits of 3 operations (the PDS capture):
        before, the second operation of a commit found librdkafka's queue full, the daemon
        rewound, and the replayed commit met the same full queue: no progress, for ever.
        Now the sink holds what the queue refuses and produces it in order as reports make
        room: no rewind, every message, per key in seq order."""
        frames = os.path.join(SOURCE_DIR, "tests", "vectors", "pds-capture", "frames.bin")
        relay = self.relay("frames", "--file", frames, "--rate", "200")
        # the relay is faster than a one-message queue: held messages count in flight, so
        # the in-flight bound closes the relay connection until they are in
        daemon, topic = self.daemon(relay.url, "-X", "queue.buffering.max.messages=1",
                                    "--max-in-flight-messages", "100")
        wait_produced(daemon, 300, timeout=60)
        self.assertEqual(daemon.metric("atkafka_produced_events", status="error"), 0)
        acked = produced(daemon)
        # the relay loops for ever: stop the daemon so that the topic has an end to read to
        daemon.kill()
        self.assertNotIn("producing again", daemon.output())
        self.assertNotIn("Cannot produce the cursor", daemon.output())
        self.assertIn("Kafka caught up", daemon.output())
        messages = kafkautil.consume_all(topic)
        self.assertGreaterEqual(len(messages), acked)
        last = {}
        for m in messages:
            seq, key = int(m["headers"]["seq"]), (m["partition"], m["key"])
            self.assertGreaterEqual(seq, last.get(key, 0), f"{key}: seq {seq} after {last}")
            last[key] = seq

    # ---- item 6: --max-frame-bytes and fragmented messages -------------------------------

    def test_fragmented_message_bounded(self):
        """200 MiB in 64 KiB continuation frames against --max-frame-bytes 1 MiB: the
        connection ends as for one big frame, long before the message is assembled. Before:
        libsoup assembled all of it (VmHWM > 200 MB), then the daemon skipped it."""
        relay = self.relay("fragmented", "--total", str(200 << 20))
        daemon, _ = self.daemon(relay.url, "--max-frame-bytes", str(1 << 20))
        wait_until(lambda: "exceeded max_frame_bytes" in daemon.output(), 60,
                   "the connection to end over the size")
        self.assertIn("(1048576); the connection was closed with 1009", daemon.output())
        self.assertLess(status_kib(daemon.proc.pid, "VmHWM"), 64 * 1024)
        self.assertFalse(relay.saw("FRAGMENTED"), "the whole message went through")
        self.assertTrue(daemon.alive())

    # ---- item 9: ping flood ---------------------------------------------------------------

    def test_ping_flood(self):
        """A relay flooding pings and never reading, with a good frame every 2,048 pings:
        /metrics keeps answering within a second, memory stays flat, pings beyond 20 a second
        are ignored (no pong work, no pong queue) and the good frames reach Kafka. Before:
        /metrics stalled for seconds and RSS grew by tens of MB."""
        relay = self.relay("ping-flood", "--with-frames", "--every", "2048")
        daemon, topic = self.daemon(relay.url)
        wait_until(lambda: daemon.metrics(), 30, "the metrics endpoint")
        rss_before = status_kib(daemon.proc.pid, "VmRSS")
        start = time.monotonic()
        slowest = 0.0
        while time.monotonic() - start < 15:
            slowest = max(slowest, scrape_seconds(daemon))
            time.sleep(0.2)
        self.assertLess(slowest, 1.0, "a scrape during the flood took too long")
        self.assertLess(status_kib(daemon.proc.pid, "VmRSS") - rss_before, 16 * 1024)
        self.assertIn("control frames a second: ignoring the excess", daemon.output())
        wait_produced(daemon, 20)
        self.assertTrue(daemon.alive())

    def test_peer_that_does_not_read_is_dropped(self):
        """The same flood from a relay whose receive buffer is 4 KiB: the pongs we still owe
        cannot leave, and the connection ends instead of queueing them. Before: the pong queue
        grew without a bound."""
        relay = self.relay("ping-flood", "--rcvbuf", "4096")
        daemon, _ = self.daemon(relay.url)
        wait_until(lambda: "the peer does not read" in daemon.output(), 90,
                   "the connection to be dropped")
        self.assertTrue(daemon.alive())

    # ---- items 4 and 5: abusive HTTP clients -----------------------------------------------

    def test_http_abuse(self):
        """Under the default soft limit of 1,024 descriptors: 2,000 connections that send
        nothing or half a head, a 1 GiB POST and a 1 MiB head. The daemon closes the idle ones,
        refuses the others before reading them, keeps answering /metrics meanwhile (within a
        second once they are gone), keeps producing, and does not spin on accept(). Before:
        nothing was closed, the POST body was buffered whole, and accept() failed in a busy
        loop."""
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))
        relay = self.relay("frames", "--rate", "200")
        daemon, topic = self.daemon(relay.url, prefix=["prlimit", "--nofile=1024:1024", "--"])
        wait_produced(daemon, 100)
        rss_before = status_kib(daemon.proc.pid, "VmRSS")

        socks = httpabuse.hold(daemon.metrics_port, 1000)
        socks += httpabuse.hold(daemon.metrics_port, 1000, b"GET /metr")
        self.addCleanup(lambda: [s.close() for s in socks])
        # Served while the flood is held, not once the sweep closes it (HEAD_TIMEOUT_S, 5 s):
        # the first scrape waits behind up to 2,000 queued accepts, which on a loaded 2-core
        # machine took 1.008 s once (CI); 2.5 s still tells the two apart.
        slowest = max(scrape_seconds(daemon) for _ in range(5))
        self.assertLess(slowest, 2.5, "a scrape during the flood waited for the idle sweep")
        status, sent = httpabuse.big_body(daemon.metrics_port, 1 << 30)
        self.assertTrue(status.startswith("HTTP/1.1 413"), status)
        self.assertLess(sent, 64 << 20)
        self.assertTrue(httpabuse.big_head(daemon.metrics_port, 1 << 20)
                        .startswith("HTTP/1.1 431"))
        closed = httpabuse.closed_by_server(socks, 30)
        self.assertEqual(closed, len(socks), "idle connections left open")

        self.assertLess(scrape_seconds(daemon), 1.0)
        rss_after = status_kib(daemon.proc.pid, "VmRSS")
        self.assertLess(rss_after - rss_before, 16 * 1024, "RSS grew by more than 16 MiB")
        accept_lines = daemon.output().count("Cannot accept") + daemon.output().count("fail:")
        self.assertLess(accept_lines, 10, "accept failures flood the log")
        wait_produced(daemon, produced(daemon) + 200)
        self.assertTrue(daemon.alive())

    def test_unit_sets_limit_nofile(self):
        """The unit raises the descriptor limit well above the metrics endpoint's share (its
        cap and its reserve of 256). Before: the default soft limit of 1,024."""
        unit = os.path.join(os.environ["ATK_BUILD_DIR"], "data", "at-kafka.service")
        with open(unit) as f:
            values = [line.split("=", 1)[1].strip() for line in f
                      if line.startswith("LimitNOFILE=")]
        self.assertEqual(len(values), 1, "one LimitNOFILE= line")
        self.assertGreaterEqual(int(values[0].split(":")[0]), 4096)

    # ---- item 13: log flooding ---------------------------------------------------------

    def check_capped(self, mode_args, what):
        relay = self.relay("error", "--message-bytes", str(5 << 20), *mode_args)
        daemon, topic = self.daemon(relay.url, "--max-frame-bytes", str(8 << 20))
        wait_until(lambda: what in daemon.output(), 60, f"the {what!r} line")
        # the frames after it still go through
        wait_produced(daemon, 50)
        longest = max(len(line) for line in daemon.output().split("\n"))
        self.assertLess(longest, 2048, "a log line longer than 2 KiB")
        self.assertIn(f"({5 << 20} bytes)", daemon.output())

    def test_error_frame_message_capped(self):
        self.check_capped(["--error-name", "SomethingWrong"], "Relay error frame SomethingWrong")

    def test_info_frame_message_capped(self):
        self.check_capped(["--info", "--error-name", "Chatty"], "Relay info Chatty")


if __name__ == "__main__":
    unittest.main(verbosity=2)
