#!/usr/bin/env python3
"""The live pipeline: a real WebSocket relay (at-kafka-replay) → at-kafka → a real Kafka broker.
What lands in Kafka must equal, value for value (all but Osprey's send_time), the messages
built from the capture's oracle rendering (frames.jsonl, made by the official TypeScript
libraries), not anything at-kafka itself computes."""
import json
import os
import unittest

import kafkautil
from atkharness import (Daemon, Oracle, Replay, check_order_per_key, compare_with_oracle,
                        vector, wait_until)


class Pipeline(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker(timeout=90)

    def replay_through_daemon(self, path, *daemon_args):
        expected = Oracle(path).messages()
        topic = kafkautil.unique_topic("pipeline")
        replay = Replay(vector(path))
        self.addCleanup(replay.stop)
        daemon = Daemon(replay.url, topic, *daemon_args)
        self.addCleanup(daemon.kill)

        kafkautil.wait_for_count(topic, len(expected), timeout=90, exact=True)
        wait_until(lambda: daemon.metric("atkafka_produced_events", status="ok") == len(expected),
                   30, "produced_events{status=ok} to reach the message count")
        self.assertEqual(daemon.metric("atkafka_handled_events"), len(expected))
        self.assertEqual(daemon.metric("atkafka_produced_events", status="error"), 0)
        self.assertEqual(daemon.metric("atkafka_kafka_in_flight_messages"), 0)
        messages = kafkautil.consume_all(topic)
        status = daemon.stop()
        self.assertEqual(status, 0, daemon.output())
        return expected, messages, daemon

    def check_same_as_oracle(self, expected, messages, osprey):
        self.assertEqual(len(messages), len(expected))
        _, formats = compare_with_oracle(messages, expected)
        want = "osprey" if osprey else "standard"
        self.assertEqual({f for fs in formats.values() for f in fs}, {want})
        check_order_per_key(messages, expected)
        partitions = {m["partition"] for m in messages}
        self.assertGreater(len(partitions), 1, "keys should spread over several partitions")

    def check_cursor_saved(self, daemon, expected):
        with open(os.path.join(daemon.state_dir, "cursor")) as f:
            self.assertEqual(int(f.read()), max(e.seq for e in expected))

    def test_relay_capture_standard(self):
        expected, messages, daemon = self.replay_through_daemon("relay-capture/frames.bin")
        self.check_same_as_oracle(expected, messages, osprey=False)
        self.check_cursor_saved(daemon, expected)

    def test_relay_capture_osprey(self):
        expected, messages, _ = self.replay_through_daemon("relay-capture/frames.bin",
                                                           "--osprey-compatible")
        self.check_same_as_oracle(expected, messages, osprey=True)
        ids = [json.loads(m["value"])["data"]["action_id"] for m in messages]
        self.assertEqual(len(set(ids)), len(ids), "action_id must be unique")

    def test_pds_capture_standard(self):
        expected, messages, daemon = self.replay_through_daemon("pds-capture/frames.bin")
        self.check_same_as_oracle(expected, messages, osprey=False)
        self.check_cursor_saved(daemon, expected)
        types = {m["headers"]["type"] for m in messages}
        self.assertEqual(types, {"commit", "identity", "account", "sync"})

    def test_pds_capture_osprey(self):
        expected, messages, _ = self.replay_through_daemon("pds-capture/frames.bin",
                                                           "--osprey-compatible")
        self.check_same_as_oracle(expected, messages, osprey=True)


class StartWithoutPeers(unittest.TestCase):
    """An unreachable broker or relay at start is retried, not fatal."""

    def test_unreachable_broker(self):
        replay = Replay(vector("pds-capture/frames.bin"))
        self.addCleanup(replay.stop)
        daemon = Daemon(replay.url, "never-created", bootstrap="127.0.0.1:1")
        self.addCleanup(daemon.kill)
        daemon.metrics()  # waits for the metrics server, raises if it does not answer
        # Several seconds of failing to reach the broker: still up, nothing read from the
        # relay (there is no topic to produce to), and a clean stop.
        wait_until(lambda: "127.0.0.1:1 failed" in daemon.output(), 20,
                   "a failed connect to the broker")
        self.assertTrue(daemon.alive())
        self.assertEqual(daemon.metric("atkafka_frames_received_total"), 0)
        self.assertEqual(daemon.stop(), 0, daemon.output())

    def test_unreachable_relay(self):
        topic = kafkautil.unique_topic("norelay")
        daemon = Daemon("ws://127.0.0.1:9", topic)
        self.addCleanup(daemon.kill)
        wait_until(lambda: daemon.metric("atkafka_relay_reconnects_total") >= 2, 30,
                   "reconnect attempts")
        self.assertTrue(daemon.alive())
        self.assertEqual(daemon.metric("atkafka_relay_connected"), 0)
        self.assertEqual(daemon.stop(), 0, daemon.output())


if __name__ == "__main__":
    unittest.main(verbosity=2)
