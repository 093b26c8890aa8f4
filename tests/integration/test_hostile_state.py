#!/usr/bin/env python3
"""Hostile relays and bad cursor state (issue 9: items 1, 2, 3, 8, 12), against the real
daemon, a real WebSocket relay (at-kafka-replay serving frames crafted here) and the real
broker:

- a seq outside 0..2^53 is a bad frame: counted, skipped, never the cursor;
- a tombstone for our key in <topic>.cursor means "no cursor stored";
- a broker that refuses whole batches (topic max.message.bytes) loses nothing;
- a seq jump beyond --max-seq-jump is a bad frame; replayed frames are counted;
- a corrupt cursor store, or two stores far apart, refuse the start unless --cursor."""
import json
import os
import struct
import subprocess
import tempfile
import unittest

import kafkautil
from atkharness import Daemon, Replay, file_mode_values, temp_dir, vector, wait_until

TEST_TOPIC = os.environ["ATK_TEST_TOPIC"]
MAX_SEQ = 2 ** 53


# ---- frames: just enough DAG-CBOR for headers and bodies --------------------------------

def cbor_head(major, value):
    if value < 24:
        return bytes([major << 5 | value])
    for width, code in ((1, 24), (2, 25), (4, 26), (8, 27)):
        if value < 1 << (8 * width):
            return bytes([major << 5 | code]) + value.to_bytes(width, "big")
    raise ValueError(value)


def cbor(value):
    if isinstance(value, bool):
        return b"\xf5" if value else b"\xf4"
    if value is None:
        return b"\xf6"
    if isinstance(value, int):
        return cbor_head(0, value) if value >= 0 else cbor_head(1, -1 - value)
    if isinstance(value, str):
        data = value.encode()
        return cbor_head(3, len(data)) + data
    if isinstance(value, dict):
        # DAG-CBOR: keys sorted by length, then bytewise
        keys = sorted(value, key=lambda k: (len(k.encode()), k.encode()))
        return cbor_head(5, len(keys)) + b"".join(cbor(k) + cbor(value[k]) for k in keys)
    raise TypeError(value)


def identity(seq, n=None):
    n = seq if n is None else n
    return cbor({"op": 1, "t": "#identity"}) + cbor(
        {"did": "did:plc:hostile%018d" % (n % 10 ** 18), "seq": seq,
         "time": "2024-05-01T12:00:00.000Z", "handle": "h%d.test" % (n % 10 ** 9)})


def unknown(seq):
    return cbor({"op": 1, "t": "#weird"}) + cbor({"seq": seq})


def error_frame(name, message):
    return cbor({"op": -1}) + cbor({"error": name, "message": message})


def frame_file(frames):
    f = tempfile.NamedTemporaryFile(prefix="atk-hostile-", suffix=".bin", delete=False)
    for frame in frames:
        f.write(struct.pack("<I", len(frame)) + frame)
    f.close()
    return f.name


# ---- Kafka and state helpers ------------------------------------------------------------

def create_topic(topic, partitions, *settings):
    subprocess.run([TEST_TOPIC, kafkautil.bootstrap(), topic, str(partitions), *settings],
                   check=True, timeout=60)


def put_cursor_record(topic, value):
    """Produces value (None: a tombstone) for key topic to topic.cursor."""
    line = "%s\t%s\n" % (topic, "" if value is None else value)
    subprocess.run(["kcat", "-P", "-b", kafkautil.bootstrap(), "-t", topic + ".cursor", "-K",
                    "\t", "-Z", "-p", "0"], input=line, text=True, check=True, timeout=60)


def kafka_cursor(topic):
    records = [m for m in kafkautil.consume_all(topic + ".cursor") if m["key"] == topic]
    if not records or records[-1]["value"] is None:
        return None
    return json.loads(records[-1]["value"])["seq"]


def file_cursor(state_dir):
    try:
        with open(os.path.join(state_dir, "cursor")) as f:
            return int(f.read())
    except FileNotFoundError:
        return None


class HostileState(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker(timeout=90)

    def serve(self, frames, *extra):
        path = frame_file(frames)
        self.addCleanup(os.unlink, path)
        replay = Replay(path, *extra)
        self.addCleanup(replay.stop)
        return replay

    def start(self, replay, topic, *extra, state_dir=None):
        daemon = Daemon(replay.url, topic, *extra, state_dir=state_dir)
        self.addCleanup(daemon.kill)
        return daemon

    def wait_cursor(self, daemon, topic, seq):
        wait_until(lambda: file_cursor(daemon.state_dir) == seq, 30,
                   "the state file to hold %d (%s)" % (seq, daemon.output()[-2000:]))
        wait_until(lambda: kafka_cursor(topic) == seq, 30, "the Kafka cursor to be %d" % seq)

    def assert_refuses(self, daemon, *words):
        wait_until(lambda: not daemon.alive(), 60, "the daemon to refuse the start")
        status = daemon.stop()
        self.assertNotEqual(status, 0)
        out = daemon.output()
        for word in words:
            self.assertIn(word, out)

    # ---- item 1 ----

    def test_seq_outside_range_is_a_bad_frame(self):
        """FutureCursor, then frames whose seq is -5 or 2^53+1: skipped as bad frames, the
        daemon goes on and the cursor only takes the good seqs (on 122caf8 the -5 became the
        cursor: an assertion, then SIGSEGV at the next save)."""
        topic = kafkautil.unique_topic("hostile-seq")
        frames = [error_frame("FutureCursor", "Cursor in the future."), unknown(-5)]
        frames += [identity(s) for s in range(1, 11)]
        frames += [unknown(MAX_SEQ + 1), identity(MAX_SEQ + 7)]
        frames += [identity(s) for s in range(11, 21)]
        replay = self.serve(frames)
        daemon = self.start(replay, topic, "--cursor-save-interval", "50")
        kafkautil.wait_for_count(topic, 20, timeout=60, exact=True)
        self.wait_cursor(daemon, topic, 20)
        wait_until(lambda: daemon.metric("atkafka_decode_errors_total", kind="bad_frame") == 3,
                   30, "three bad frames counted")
        self.assertTrue(daemon.alive(), daemon.output())
        self.assertEqual(daemon.metric("atkafka_last_seq"), 20)
        self.assertEqual(daemon.stop(), 0, daemon.output())
        self.assertEqual(file_cursor(daemon.state_dir), 20)
        self.assertIn("is outside 0..2^53", daemon.output())

    # ---- item 8 ----

    def seq_jump_frames(self):
        frames = [identity(s) for s in range(1, 51)]
        frames.append(identity(50 + 20_000_000))
        frames += [identity(s) for s in range(51, 151)]
        frames += [identity(s, n=10_000 + s) for s in range(100, 110)]  # replayed seqs
        return frames

    def test_seq_jump_is_a_bad_frame(self):
        """One frame 2*10^7 past the last seq: a bad frame, not the new cursor; the frames
        after it all reach Kafka (on 122caf8 the next 99 were dropped without a word), and
        frames with seqs taken already are counted and logged."""
        topic = kafkautil.unique_topic("hostile-jump")
        replay = self.serve(self.seq_jump_frames())
        daemon = self.start(replay, topic, "--cursor-save-interval", "50")
        kafkautil.wait_for_count(topic, 150, timeout=60, exact=True)
        self.wait_cursor(daemon, topic, 150)
        wait_until(lambda: daemon.metric("atkafka_seen_frames_total") == 10, 30,
                   "ten replayed frames counted")
        self.assertEqual(daemon.metric("atkafka_decode_errors_total", kind="bad_frame"), 1)
        self.assertEqual(daemon.stop(), 0, daemon.output())
        out = daemon.output()
        self.assertIn("more than --max-seq-jump 10000000", out)
        self.assertIn("was taken already", out)
        self.assertEqual(sorted(int(m["headers"]["seq"]) for m in kafkautil.consume_all(topic)),
                         list(range(1, 151)))

    def test_seq_jump_bound_can_be_lifted(self):
        """--max-seq-jump 0: the jump is taken, and what follows is dropped as seen (and
        counted, not silently)."""
        topic = kafkautil.unique_topic("hostile-nojump")
        replay = self.serve(self.seq_jump_frames())
        daemon = self.start(replay, topic, "--cursor-save-interval", "50", "--max-seq-jump", "0")
        kafkautil.wait_for_count(topic, 51, timeout=60)
        wait_until(lambda: daemon.metric("atkafka_seen_frames_total") == 110, 30,
                   "110 frames counted as seen")
        self.assertEqual(kafkautil.count(topic), 51)
        # no bad frame: the series is absent (it appears with its first count) or 0
        self.assertIn(daemon.sample("atkafka_decode_errors_total", kind="bad_frame"), (None, 0))
        self.assertEqual(daemon.stop(), 0, daemon.output())

    # ---- item 2 ----

    def test_cursor_tombstone_means_no_cursor(self):
        """A tombstone for our key (after a real cursor record): nothing is stored, start at
        the live tip (on 122caf8: SIGSEGV at every start, no log line)."""
        topic = kafkautil.unique_topic("hostile-tomb")
        create_topic(topic + ".cursor", 1, "cleanup.policy=compact")
        put_cursor_record(topic, '{"seq":5}')
        put_cursor_record(topic, None)
        replay = self.serve([identity(s) for s in range(1, 11)])
        daemon = self.start(replay, topic, "--cursor-save-interval", "50")
        kafkautil.wait_for_count(topic, 10, timeout=60, exact=True)
        self.wait_cursor(daemon, topic, 10)
        self.assertIn("No stored cursor", daemon.output())
        self.assertEqual(daemon.stop(), 0, daemon.output())

    # ---- item 12 ----

    def test_corrupt_kafka_cursor_refuses_start(self):
        """A record for our key that is not a cursor: the daemon refuses to start and says
        which store and how to reset it (on 122caf8: "No stored cursor", started at the live
        tip); --cursor overrides it and the next save repairs the store."""
        topic = kafkautil.unique_topic("hostile-corrupt")
        create_topic(topic + ".cursor", 1, "cleanup.policy=compact")
        put_cursor_record(topic, '{"seq":12}')
        put_cursor_record(topic, "not a cursor")
        replay = self.serve([identity(s) for s in range(1, 11)])
        daemon = self.start(replay, topic)
        self.assert_refuses(daemon, topic + ".cursor", "corrupt", "tombstone", "--cursor")
        self.assertEqual(kafkautil.count(topic), 0)

        daemon = self.start(replay, topic, "--cursor", "4", "--cursor-save-interval", "50")
        kafkautil.wait_for_count(topic, 6, timeout=60, exact=True)
        self.wait_cursor(daemon, topic, 10)
        self.assertEqual(daemon.stop(), 0, daemon.output())

    def test_corrupt_state_file_refuses_start(self):
        """The same for the state file (this held before: keep it)."""
        topic = kafkautil.unique_topic("hostile-file")
        state_dir = temp_dir("atk-state-")
        with open(os.path.join(state_dir, "cursor"), "w") as f:
            f.write("-5\n")
        replay = self.serve([identity(s) for s in range(1, 11)])
        daemon = self.start(replay, topic, state_dir=state_dir)
        self.assert_refuses(daemon, os.path.join(state_dir, "cursor"), "--cursor")

    def test_stores_far_apart_refuse_start(self):
        """State file 1500, Kafka 9e12: neither wins (on 122caf8 Kafka's bogus cursor won and
        overwrote the file); with --cursor the daemon starts."""
        topic = kafkautil.unique_topic("hostile-apart")
        create_topic(topic + ".cursor", 1, "cleanup.policy=compact")
        put_cursor_record(topic, '{"seq":9000000000000}')
        state_dir = temp_dir("atk-state-")
        with open(os.path.join(state_dir, "cursor"), "w") as f:
            f.write("1500\n")
        replay = self.serve([identity(s) for s in range(1501, 1701)])
        daemon = self.start(replay, topic, state_dir=state_dir)
        self.assert_refuses(daemon, "disagree", "1500", "9000000000000", topic + ".cursor",
                            "--cursor")
        self.assertEqual(file_cursor(state_dir), 1500)

        daemon = self.start(replay, topic, "--cursor", "1500", "--cursor-save-interval", "50",
                            state_dir=state_dir)
        kafkautil.wait_for_count(topic, 200, timeout=60, exact=True)
        self.wait_cursor(daemon, topic, 1700)
        self.assertEqual(daemon.stop(), 0, daemon.output())

    def test_stores_close_together_take_the_higher(self):
        """Within --max-seq-jump the higher of the two stores wins, as before."""
        topic = kafkautil.unique_topic("hostile-close")
        create_topic(topic + ".cursor", 1, "cleanup.policy=compact")
        put_cursor_record(topic, '{"seq":1600}')
        state_dir = temp_dir("atk-state-")
        with open(os.path.join(state_dir, "cursor"), "w") as f:
            f.write("1500\n")
        replay = self.serve([identity(s) for s in range(1501, 1701)])
        daemon = self.start(replay, topic, "--cursor-save-interval", "50", state_dir=state_dir)
        kafkautil.wait_for_count(topic, 100, timeout=60, exact=True)
        self.wait_cursor(daemon, topic, 1700)
        self.assertEqual(daemon.stop(), 0, daemon.output())
        self.assertEqual(sorted(int(m["headers"]["seq"]) for m in kafkautil.consume_all(topic)),
                         list(range(1601, 1701)))

    # ---- item 3 ----

    def test_batches_over_topic_limit_lose_nothing(self):
        """Topic max.message.bytes=100000, one partition, 3,000 frames of relay-capture flat
        out: every message lands (on 122caf8 the broker refused whole batches and every
        message in them was settled as "too large": 0 in Kafka, the cursor past them)."""
        topic = kafkautil.unique_topic("hostile-batch")
        create_topic(topic, 1, "max.message.bytes=100000")
        path = vector("relay-capture/frames.bin")
        per_loop = len(file_mode_values(path))
        replay = Replay(path, "--loop", "20")
        self.addCleanup(replay.stop)
        # A longer linger (an ordinary throughput setting) fills batches up to batch.size
        # (1 MB by default), well over the topic's limit even compressed.
        daemon = self.start(replay, topic, "--cursor-save-interval", "200", "-X",
                            "linger.ms=1000")
        total = per_loop * 20

        def settled():
            ok = daemon.metric("atkafka_produced_events", status="ok")
            error = daemon.metric("atkafka_produced_events", status="error")
            return ok + error >= total or error > 0
        wait_until(settled, 240, "every message settled")
        self.assertEqual(daemon.metric("atkafka_produced_events", status="error"), 0)
        kafkautil.wait_for_count(topic, total, timeout=60, exact=True)
        self.assertEqual(daemon.stop(), 0, daemon.output())

    def test_limit_just_above_largest_message_loses_nothing(self):
        """A topic limit just above the largest single message (relay-capture's largest
        value is 1,362 bytes; key, headers and batch framing add about 200): every message
        lands, many batches of few messages each."""
        topic = kafkautil.unique_topic("hostile-tight")
        create_topic(topic, 1, "max.message.bytes=2000")
        path = vector("relay-capture/frames.bin")
        values = file_mode_values(path)
        self.assertLess(max(len(v.encode()) for v in values), 1400)
        replay = Replay(path, "--loop", "3")
        self.addCleanup(replay.stop)
        daemon = self.start(replay, topic, "-X", "linger.ms=1000")
        total = len(values) * 3
        wait_until(lambda: daemon.metric("atkafka_produced_events", status="ok")
                   + daemon.metric("atkafka_produced_events", status="error") >= total, 120,
                   "every message settled")
        self.assertEqual(daemon.metric("atkafka_produced_events", status="error"), 0)
        kafkautil.wait_for_count(topic, total, timeout=60, exact=True)
        self.assertEqual(daemon.stop(), 0, daemon.output())
        self.assertIn("producing with batch.size", daemon.output())


if __name__ == "__main__":
    unittest.main(verbosity=2)
