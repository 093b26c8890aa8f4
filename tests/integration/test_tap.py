#!/usr/bin/env python3
"""Tap mode end to end: the real Tap (indigo's cmd/tap, --outbox-only, its database seeded
with tests/tap/session.jsonl) → at-kafka --tap-host → a real broker. What reaches Kafka is
checked against tests/tap/session-expected.jsonl (written from the reference's rules, not
by our code); acks go out only once Kafka has the event's messages, so a kill -9 before
delivery loses nothing: Tap delivers the unacked events again."""
import collections
import json
import os
import shutil
import signal
import subprocess
import tempfile
import unittest
import urllib.request

import kafkautil
from atkharness import Daemon, free_port, wait_until

SOURCE_DIR = os.environ["ATK_SOURCE_DIR"]
TAP_DIR = os.path.join(SOURCE_DIR, "tests", "tap")
SESSION = os.path.join(TAP_DIR, "session.jsonl")
EXPECTED = os.path.join(TAP_DIR, "session-expected.jsonl")
SEED = os.path.join(TAP_DIR, "seed-tap-db.py")
# make-expected.py's fixed clock: events without a usable time carry the production time.
FIXED_NOW = "2026-11-27T21:50:00.500Z"
NO_RELAY = "ws://127.0.0.1:9"  # the harness wants one; Tap mode does not use it


def find_tap():
    """$ATK_TAP, else tap on PATH, else $GOPATH/bin (`go env GOPATH`) or ~/go/bin."""
    if os.environ.get("ATK_TAP"):
        return os.environ["ATK_TAP"]
    found = shutil.which("tap")
    if found:
        return found
    try:
        gopath = subprocess.run(["go", "env", "GOPATH"], capture_output=True, text=True,
                                check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        gopath = os.path.expanduser("~/go")
    path = os.path.join(gopath, "bin", "tap")
    if not os.access(path, os.X_OK):
        raise AssertionError("Tap is not installed: see tests/tap/README.md (or set ATK_TAP)")
    return path


class Tap:
    """A real Tap whose outbox holds the session, as its own pipeline would have left it."""

    def __init__(self, disable_acks=False):
        self.bin = find_tap()
        self.dir = tempfile.mkdtemp(prefix="atk-tap-")
        self.db = os.path.join(self.dir, "tap.db")
        self.port = free_port()
        self.url = f"ws://127.0.0.1:{self.port}"
        self.disable_acks = disable_acks
        self.proc = None
        self.start()  # creates its schema
        self.stop()
        subprocess.run(["python3", SEED, self.db, SESSION], check=True)
        self.start()

    def healthy(self):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def start(self):
        args = [self.bin, "run", "--outbox-only", "--db-url", f"sqlite://{self.db}", "--bind",
                f"127.0.0.1:{self.port}", "--retry-timeout", "1s", "--log-level", "warn"]
        if self.disable_acks:
            args.append("--disable-acks")
        self.proc = subprocess.Popen(args, cwd=self.dir, stdout=subprocess.DEVNULL)
        wait_until(self.healthy, 30, "Tap's /health")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def kind_of(value):
    """What one message is about: the operation's uri, or identity/account."""
    if value.get("operation"):
        return value["operation"]["uri"]
    return next(k for k in ("identity", "account") if k in value)


def expected_messages(skip_collections=()):
    """{(tap id, kind): (key, value)} from session-expected.jsonl."""
    out = {}
    with open(EXPECTED, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                e = json.loads(line)
                if e["collection"] in skip_collections:
                    continue
                out[(e["id"], kind_of(e["value"]))] = (e["key"], e["value"])
    return out


def kafka_messages(topic):
    """[((tap id, kind), key, value)] of every message in topic, duplicates included."""
    out = []
    for m in kafkautil.consume_all(topic):
        value = json.loads(m["value"])
        out.append(((int(m["headers"]["seq"]), kind_of(value)), m["key"], value))
    return out


class TapTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker()

    def new_tap(self, **kw):
        tap = Tap(**kw)
        self.addCleanup(tap.close)
        return tap

    def daemon(self, tap, topic, *extra):
        d = Daemon(NO_RELAY, topic, "--tap-host", tap.url, *extra)
        self.addCleanup(d.kill)
        return d

    def assert_session_in_kafka(self, topic, expected):
        """Every expected message is in topic with the expected key and value (the fixed
        clock's timestamps excepted); returns how many extra copies there were."""
        kafkautil.wait_for_topic(topic)
        got = wait_until(lambda: (lambda ms: ms if {i for i, _, _ in ms} >= set(expected)
                                  else None)(kafka_messages(topic)),
                         60, f"{len(expected)} messages in {topic}", interval=0.5)
        copies = collections.Counter(i for i, _, _ in got)
        self.assertEqual(set(copies), set(expected))
        for ident, key, value in got:
            want_key, want = expected[ident]
            self.assertEqual(key, want_key, ident)
            if want["timestamp"] == FIXED_NOW:
                self.assertRegex(value["timestamp"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
                value = {**value, "timestamp": FIXED_NOW}
            self.assertEqual(value, want, ident)
        return sum(copies.values()) - len(copies)

    def test_session_delivered_and_acked(self):
        tap = self.new_tap()
        topic = kafkautil.unique_topic("atk-tap")
        daemon = self.daemon(tap, topic)
        extra = self.assert_session_in_kafka(topic, expected_messages())
        # Tap holds each repo's live event back until what came before is acked: all nine
        # arriving is itself a sign of acks; the counter says each event was acked.
        wait_until(lambda: daemon.metric("atkafka_acks_sent", status="ok") >= 9, 30, "9 acks")
        wait_until(lambda: daemon.metric("atkafka_tap_events_pending") == 0, 30,
                   "nothing pending")
        self.assertEqual(daemon.metric("atkafka_produced_events", status="error"), 0)
        print(f"  session: 11 messages, {extra} redelivered copies", flush=True)
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])

    def test_filtered_event_is_acked(self):
        """An event the collection filter drops produces nothing and is acked at once."""
        tap = self.new_tap()
        topic = kafkautil.unique_topic("atk-tap")
        daemon = self.daemon(tap, topic, "--ignored-collections", "com.example.thing")
        self.assert_session_in_kafka(topic, expected_messages({"com.example.thing"}))
        wait_until(lambda: daemon.metric("atkafka_acks_sent", status="ok") >= 9, 30, "9 acks")
        self.assertGreaterEqual(daemon.metric("atkafka_filtered_ops_total"), 1)
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])

    def test_kill_before_delivery_loses_nothing(self):
        """at-kafka receives events but Kafka has not acknowledged them (the producer holds
        its batch for 20 s): no ack goes out. kill -9, restart: Tap delivers them again and
        every event ends up in Kafka."""
        tap = self.new_tap()
        topic = kafkautil.unique_topic("atk-tap")
        first = self.daemon(tap, topic, "-X", "linger.ms=20000")
        wait_until(lambda: first.metric("atkafka_kafka_in_flight_messages") >= 2, 30,
                   f"messages in flight\n{first.output()}")
        received = first.metric("atkafka_frames_received_total")
        self.assertEqual(first.metric("atkafka_acks_sent", status="ok"), 0)
        self.assertEqual(first.metric("atkafka_produced_events", status="ok"), 0)
        first.proc.send_signal(signal.SIGKILL)
        first.kill()
        self.assertEqual(kafkautil.count(topic), 0)

        second = self.daemon(tap, topic)
        extra = self.assert_session_in_kafka(topic, expected_messages())
        wait_until(lambda: second.metric("atkafka_acks_sent", status="ok") >= 9, 30, "9 acks")
        print(f"  kill -9 with {received:.0f} events received and unacked: "
              f"0 lost, {extra} duplicates", flush=True)
        self.assertEqual(second.stop(), 0, second.output()[-3000:])

    def test_disable_acks(self):
        """Tap in fire-and-forget mode and --disable-acks: everything arrives, no ack sent."""
        tap = self.new_tap(disable_acks=True)
        topic = kafkautil.unique_topic("atk-tap")
        daemon = self.daemon(tap, topic, "--disable-acks")
        extra = self.assert_session_in_kafka(topic, expected_messages())
        self.assertEqual(extra, 0)
        self.assertEqual(daemon.metric("atkafka_acks_sent", status="ok"), 0)
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])

    def test_transactions_refused(self):
        r = subprocess.run([os.environ["ATK_AT_KAFKA"], "--tap-host", "ws://127.0.0.1:9",
                            "--bootstrap-servers", "127.0.0.1:9092", "--output-topic", "t",
                            "--transactional-id", "x", "--bus", "none"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--transactional-id", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
