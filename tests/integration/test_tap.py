#!/usr/bin/env python3
"""Tap mode end to end: the real Tap (indigo's cmd/tap, --outbox-only, its database seeded
with tests/tap/session.jsonl) → at-kafka --tap-host → a real broker. What reaches Kafka is
checked against tests/tap/session-expected.jsonl (written from the reference's rules, not
by our code); acks go out only once Kafka has the event's messages, so a kill -9 before
delivery loses nothing: Tap delivers the unacked events again. test_live_tap_from_pds runs
the real Tap in full mode instead: a real PDS's firehose as its relay, the local PLC
directory (tests/plc/run-plc.mjs) for identities, backfill through getRepo."""
import collections
import json
import os
import shutil
import signal
import subprocess
import unittest
import urllib.request

import kafkautil
from atkharness import Daemon, listening_ports, parse_prometheus, temp_dir, wait_until
from test_metadata import Plc, xrpc

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


def tap_ports(proc, count=1):
    """The ports Tap (started with port 0) listens on, once it listens on count of them."""
    def listening():
        if proc.poll() is not None:
            raise AssertionError(f"Tap exited with status {proc.returncode}")
        ports = listening_ports(proc.pid)
        return ports if len(ports) >= count else None
    return wait_until(listening, 60, f"Tap listening on {count} port(s)")


class Tap:
    """A real Tap whose outbox holds the session, as its own pipeline would have left it."""

    def __init__(self, disable_acks=False):
        self.bin = find_tap()
        self.dir = temp_dir("atk-tap-")
        self.db = os.path.join(self.dir, "tap.db")
        self.port = None
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
        """Starts Tap on port 0 (a new port each start); the port is the one it listens on."""
        args = [self.bin, "run", "--outbox-only", "--db-url", f"sqlite://{self.db}", "--bind",
                "127.0.0.1:0", "--retry-timeout", "1s", "--log-level", "warn"]
        if self.disable_acks:
            args.append("--disable-acks")
        self.proc = subprocess.Popen(args, cwd=self.dir, stdout=subprocess.DEVNULL)
        self.port = tap_ports(self.proc)[0]
        self.url = f"ws://127.0.0.1:{self.port}"
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


class LiveTap:
    """A real Tap in its full mode: the firehose of one PDS as its relay, the local PLC
    directory for identities, backfill through the PDS's com.atproto.sync.getRepo."""

    def __init__(self, relay_url, plc_url):
        self.bin = find_tap()
        self.dir = temp_dir("atk-tap-live-")
        self.log = open(os.path.join(self.dir, "tap.log"), "wb")
        self.proc = subprocess.Popen(
            [self.bin, "run", "--db-url", f"sqlite://{self.dir}/tap.db", "--bind",
             "127.0.0.1:0", "--relay-url", relay_url, "--plc-url", plc_url,
             "--retry-timeout", "1s", "--metrics-listen", "127.0.0.1:0",
             "--log-level", "info"],
            cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT)
        # Both servers on port 0: the one answering /health is the API, the other metrics.
        ports = tap_ports(self.proc, 2)

        def api_port():
            for port in ports:
                self.port = port
                if self.get("health"):
                    return port
            return None
        self.port = wait_until(api_port, 30, "Tap's /health")
        self.metrics_port = next(p for p in ports if p != self.port)
        self.url = f"ws://127.0.0.1:{self.port}"

    def get(self, path):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/{path}", timeout=5) as r:
                return json.loads(r.read())
        except OSError:
            return None

    def add_repos(self, dids):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/repos/add", data=json.dumps({"dids": dids}).encode(),
            headers={"content-type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=10):  # raises unless 2xx
            pass

    def metric(self, name):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=5) as r:
            samples = parse_prometheus(r.read().decode())
        return sum(v for (n, _), v in samples.items() if n == name)

    def outbox(self):
        """Events Tap still holds (deleted in batches, at the latest 10 s after their ack)."""
        return self.get("stats/outbox-buffer")["outbox_buffer"]

    def output(self):
        with open(os.path.join(self.dir, "tap.log"), "rb") as f:
            return f.read().decode(errors="replace")

    def close(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
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


def create_record(plc, account, collection, record):
    """Creates a record through account's PDS; returns what the test expects of it."""
    base = plc.pds_of(account)["url"]
    if account not in plc.tokens:
        session = xrpc(base, "com.atproto.server.createSession",
                       {"identifier": plc.account(account)["handle"], "password": "password"})
        plc.tokens[account] = session["accessJwt"]
    did = plc.account(account)["did"]
    record = {"$type": collection, **record}
    out = xrpc(base, "com.atproto.repo.createRecord",
               {"repo": did, "collection": collection, "record": record}, plc.tokens[account])
    rkey = out["uri"].rsplit("/", 1)[1]
    return {"uri": out["uri"], "did": did, "collection": collection, "rkey": rkey,
            "cid": out["cid"], "record": record}


def record_messages(topic):
    """{record uri: [(key, seq header, value)]} of the operation messages in topic."""
    out = collections.defaultdict(list)
    for m in kafkautil.consume_all(topic):
        value = json.loads(m["value"])
        if value.get("operation"):
            out[value["operation"]["uri"]].append((m["key"], m["headers"].get("seq"), value))
    return out


class TapTest(unittest.TestCase):
    maxDiff = None
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

    def assert_records_in_kafka(self, topic, created, timeout=30):
        """Each created record is in topic, in the standard shape, as the PDS made it."""
        kafkautil.wait_for_topic(topic)
        got = wait_until(lambda: (lambda ms: ms if all(c["uri"] in ms for c in created)
                                  else None)(record_messages(topic)),
                         timeout, f"{len(created)} records in {topic}", interval=0.5)
        for c in created:
            for key, seq, value in got[c["uri"]]:
                self.assertEqual(key, c["did"])
                self.assertRegex(seq or "", r"^[1-9][0-9]*$")
                self.assertEqual(value, {
                    "did": c["did"], "timestamp": c["record"]["createdAt"],
                    "operation": {"action": "create", "collection": c["collection"],
                                  "rkey": c["rkey"], "uri": c["uri"], "cid": c["cid"],
                                  "path": f"{c['collection']}/{c['rkey']}",
                                  "record": c["record"]},
                    "eventMetadata": None})
        return got

    def test_live_tap_from_pds(self):
        """The real Tap in full mode on a real PDS and PLC directory: records made before
        the repos were added come by backfill (getRepo), later ones live off the PDS's
        firehose. Acks follow delivery (Tap's outbox drains); a kill -9 of at-kafka while
        Kafka has not confirmed anything loses nothing."""
        plc = Plc()
        self.addCleanup(plc.stop)
        alice, carol = 0, 1  # both on run-plc.mjs's first PDS
        pds = plc.pds_of(alice)
        self.assertEqual(pds, plc.pds_of(carol))
        post, like = "app.bsky.feed.post", "app.bsky.feed.like"

        def make_post(account, text, minute):
            return create_record(plc, account, post, {
                "text": text, "createdAt": f"2026-01-01T00:{minute:02d}:00.000Z"})

        def make_like(account, target, minute):
            return create_record(plc, account, like, {
                "subject": {"uri": target["uri"], "cid": target["cid"]},
                "createdAt": f"2026-01-01T00:{minute:02d}:30.000Z"})

        old = [make_post(alice, "alice before Tap ✨", 1), make_post(carol, "carol before Tap", 2)]
        old.append(make_like(carol, old[0], 3))
        tap = LiveTap(pds["url"], plc.ready["plc"])
        self.addCleanup(tap.close)
        topic = kafkautil.unique_topic("atk-tap-live")
        first = self.daemon(tap, topic)
        tap.add_repos([plc.account(alice)["did"], plc.account(carol)["did"]])
        self.assert_records_in_kafka(topic, old)
        wait_until(lambda: first.metric("atkafka_tap_events_pending") == 0
                   and tap.metric("tap_events_acked_total") >= len(old), 30,
                   f"backfill acked\n{tap.output()[-3000:]}")
        live = [make_post(alice, "alice live 1", 4), make_like(alice, old[1], 5)]
        self.assert_records_in_kafka(topic, live)
        wait_until(lambda: first.metric("atkafka_tap_events_pending") == 0, 30, "live acked")
        # Live, not a second backfill: Tap took these from the PDS's own firehose.
        self.assertGreaterEqual(tap.metric("tap_firehose_events_processed_total"), len(live))
        self.assertEqual(first.metric("atkafka_produced_events", status="error"), 0)
        self.assertEqual(first.stop(), 0, first.output()[-3000:])
        in_kafka = kafkautil.count(topic)
        acked = tap.metric("tap_events_acked_total")
        self.assertGreaterEqual(acked, len(old) + len(live))

        # Kafka holds back every message for 20 s: at-kafka receives, sends no ack.
        second = self.daemon(tap, topic, "-X", "linger.ms=20000")
        wait_until(lambda: second.metric("atkafka_relay_connected") == 1, 30,
                   f"at-kafka connected to Tap\n{second.output()}")
        held = [make_post(alice, "alice while unacked", 6), make_post(carol, "carol too", 7),
                make_like(carol, live[0], 8)]  # a second like of one subject deletes the first
        wait_until(lambda: second.metric("atkafka_kafka_in_flight_messages") >= 2, 30,
                   f"messages in flight\n{second.output()}")
        self.assertEqual(second.metric("atkafka_acks_sent", status="ok"), 0)
        self.assertEqual(tap.metric("tap_events_acked_total"), acked)
        self.assertGreater(tap.outbox(), 0)
        second.proc.send_signal(signal.SIGKILL)
        second.kill()
        self.assertEqual(kafkautil.count(topic), in_kafka)

        third = self.daemon(tap, topic)
        got = self.assert_records_in_kafka(topic, old + live + held)
        wait_until(lambda: tap.outbox() == 0, 30, "Tap's outbox drained")
        self.assertEqual(third.metric("atkafka_tap_events_pending"), 0)
        self.assertEqual(third.metric("atkafka_produced_events", status="error"), 0)
        extra = sum(len(v) for v in got.values()) - len(got)
        print(f"  live Tap: {len(got)} records ({len(old)} backfilled), {extra} duplicates; "
              f"{tap.metric('tap_events_acked_total'):.0f} acks at Tap", flush=True)
        self.assertEqual(third.stop(), 0, third.output()[-3000:])

    def test_transactions_refused(self):
        r = subprocess.run([os.environ["ATK_AT_KAFKA"], "--tap-host", "ws://127.0.0.1:9",
                            "--bootstrap-servers", "127.0.0.1:9092", "--output-topic", "t",
                            "--transactional-id", "x", "--bus", "none"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("--transactional-id", r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
