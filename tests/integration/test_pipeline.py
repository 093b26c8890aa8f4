#!/usr/bin/env python3
"""The live pipeline: a real WebSocket relay (at-kafka-replay) → at-kafka → a real Kafka broker.
What lands in Kafka must equal what `at-kafka --input FILE --stdout` gives for the same file."""
import collections
import json
import os
import unittest

import kafkautil
from atkharness import Daemon, Replay, file_mode_values, vector, wait_until


def without_send_time(value):
    value = json.loads(value)
    value.pop("send_time", None)
    return value


def did_of(value):
    value = json.loads(value)
    return value["data"]["data"]["did"] if "send_time" in value else value["did"]


def canonical(values):
    return sorted(json.dumps(without_send_time(v), sort_keys=True) for v in values)


class Pipeline(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker(timeout=90)

    def replay_through_daemon(self, path, *daemon_args):
        expected = file_mode_values(path, *daemon_args)
        topic = kafkautil.unique_topic("pipeline")
        replay = Replay(path)
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

    def check_same_as_file_mode(self, expected, messages):
        self.assertEqual(len(messages), len(expected))
        self.assertEqual(canonical(m["value"] for m in messages), canonical(expected))
        for m in messages:
            self.assertEqual(m["key"], did_of(m["value"]))
            self.assertTrue(m["key"].startswith("did:"), m["key"])

    def check_order_per_did(self, messages, expected=None):
        """Each DID on one partition, its seqs increasing, and (given the file-mode output)
        its messages in exactly the file's order, ops of one commit included."""
        if expected is not None:
            want = collections.defaultdict(list)
            for v in expected:
                want[did_of(v)].append(json.dumps(without_send_time(v), sort_keys=True))
            got = collections.defaultdict(list)
            for m in sorted(messages, key=lambda m: (m["partition"], m["offset"])):
                got[m["key"]].append(json.dumps(without_send_time(m["value"]), sort_keys=True))
            self.assertEqual(dict(got), dict(want))
        partitions_of = collections.defaultdict(set)
        seqs_of = collections.defaultdict(list)
        for m in sorted(messages, key=lambda m: (m["partition"], m["offset"])):
            partitions_of[m["key"]].add(m["partition"])
            seqs_of[m["key"]].append(int(m["headers"]["seq"]))
        for did, seqs in seqs_of.items():
            self.assertEqual(len(partitions_of[did]), 1, f"{did} spread over partitions")
            self.assertEqual(seqs, sorted(seqs), f"{did}: seqs out of order {seqs}")
        self.assertGreater(len(set().union(*partitions_of.values())), 1,
                           "keys should spread over several partitions")

    def check_cursor_saved(self, daemon, messages):
        last_seq = max(int(m["headers"]["seq"]) for m in messages)
        with open(os.path.join(daemon.state_dir, "cursor")) as f:
            self.assertIn(str(last_seq), f.read())

    def test_relay_capture_standard(self):
        expected, messages, daemon = self.replay_through_daemon(vector("relay-capture/frames.bin"))
        self.check_same_as_file_mode(expected, messages)
        self.check_order_per_did(messages, expected)
        self.check_cursor_saved(daemon, messages)
        for m in messages:
            self.assertIn(m["headers"]["type"], ("commit", "identity", "account"))

    def test_relay_capture_osprey(self):
        expected, messages, _ = self.replay_through_daemon(vector("relay-capture/frames.bin"),
                                                           "--osprey-compatible")
        self.check_same_as_file_mode(expected, messages)
        ids = [json.loads(m["value"])["data"]["action_id"] for m in messages]
        self.assertEqual(len(set(ids)), len(ids), "action_id must be unique")

    def test_pds_capture_standard(self):
        expected, messages, _ = self.replay_through_daemon(vector("pds-capture/frames.bin"))
        self.check_same_as_file_mode(expected, messages)
        self.check_order_per_did(messages, expected)
        types = {m["headers"]["type"] for m in messages}
        self.assertEqual(types, {"commit", "identity", "account", "sync"})

    def test_pds_capture_osprey(self):
        expected, messages, _ = self.replay_through_daemon(vector("pds-capture/frames.bin"),
                                                           "--osprey-compatible")
        self.check_same_as_file_mode(expected, messages)
        names = {json.loads(m["value"])["data"]["action_name"] for m in messages}
        self.assertTrue({"identity", "account", "sync", "operation#create"} <= names, names)


class StartWithoutPeers(unittest.TestCase):
    """An unreachable broker or relay at start is retried, not fatal."""

    def test_unreachable_broker(self):
        replay = Replay(vector("pds-capture/frames.bin"))
        self.addCleanup(replay.stop)
        daemon = Daemon(replay.url, "never-created", bootstrap="127.0.0.1:1")
        self.addCleanup(daemon.kill)
        wait_until(lambda: daemon.metrics(), 20, "the metrics endpoint")
        # Several seconds of failing to reach the broker: still up, nothing read from the
        # relay (there is no topic to produce to), and a clean stop.
        wait_until(lambda: "127.0.0.1:1" in daemon.output(), 20, "a log line about the broker")
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
