#!/usr/bin/env python3
"""Osprey's stock Kafka input (kafka-python 1.4.7 and python-dateutil 2.8.0, Osprey's pins,
no codec libraries; its consumer settings and its parsing: osprey_consumer.py) reading
what at-kafka produces with --osprey-compatible, on the real broker.

The virtualenv is made once in the build directory ($ATK_BUILD_DIR/osprey-venv) with
`python3 -m venv` (Debian: python3-venv) and pip from PyPI."""
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import unittest

import kafkautil
from atkharness import (BOOTSTRAP, BUILD_DIR, Daemon, Replay, file_mode_values, refusing_port,
                        vector, wait_until)

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(BUILD_DIR, "osprey-venv")
PINS = ["kafka-python==1.4.7", "python-dateutil==2.8.0"]
WARNING = "stock worker (kafka-python 1.4.7, no codec libraries) cannot read"
OSPREY_SHORT = {"app.bsky.feed.post": "post", "app.bsky.feed.like": "like",
                "app.bsky.feed.repost": "repost", "app.bsky.graph.follow": "follow",
                "app.bsky.actor.profile": "profile"}


def venv_python():
    """The virtualenv's interpreter, made on first use (the marker file is written last, so
    a half-made one is made again)."""
    python = os.path.join(VENV, "bin", "python")
    marker = os.path.join(VENV, "pins.txt")
    if os.path.exists(marker) and open(marker).read().split() == PINS:
        return python
    subprocess.run(["rm", "-rf", VENV], check=True)
    subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
    subprocess.run([os.path.join(VENV, "bin", "pip"), "install", "--quiet",
                    "--disable-pip-version-check", *PINS], check=True, timeout=600)
    with open(marker, "w") as f:
        f.write("\n".join(PINS) + "\n")
    return python


class OspreyConsumer:
    """osprey_consumer.py under the virtualenv, its output lines on a queue."""

    def __init__(self, topic, timeout=240):
        self.group = f"osprey-{topic}"
        self.proc = subprocess.Popen(
            [venv_python(), os.path.join(HERE, "osprey_consumer.py"), BOOTSTRAP, topic,
             self.group, str(timeout)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.lines = queue.Queue()
        self.records, self.errors, self.errors_total = [], [], None
        self.stderr = []
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines),
                         daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(self.proc.stderr),
                         daemon=True).start()

    @staticmethod
    def _read(stream, q):
        for line in stream:
            q.put(json.loads(line))
        q.put(None)

    def _drain(self, until, timeout):
        deadline = time.monotonic() + timeout
        while not until():
            try:
                item = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                item = "timeout"
            if item == "timeout" or item is None:
                raise AssertionError(f"osprey consumer: {'timed out' if item else 'exited'}"
                                     f" ({len(self.records)} records, errors {self.errors});"
                                     f" stderr: {''.join(self.stderr)[-2000:]}")
            if item in ("READY", "END"):
                self.state = item
            elif "errors_total" in item:
                self.errors_total = item["errors_total"]
            elif "error" in item:
                self.errors.append(item["error"])
            else:
                self.records.append(item)

    def wait_ready(self, timeout=90):
        self.state = None
        self._drain(lambda: self.state == "READY", timeout)

    def wait_records(self, n, timeout=90):
        self._drain(lambda: len(self.records) >= n, timeout)

    def wait_error(self, timeout=90):
        self._drain(lambda: self.errors, timeout)

    def finish(self):
        """Ends it as at its deadline (commits on close); returns the total error count."""
        self.proc.send_signal(signal.SIGALRM)
        self._drain(lambda: self.state == "END", 60)
        self.proc.wait(60)
        return self.errors_total

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def without_send_time(value):
    value = json.loads(value)
    value.pop("send_time")
    return value


class Osprey(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker(timeout=90)
        venv_python()

    def create_topic(self, topic):
        """What the README says to do before the worker starts: at-kafka creates the topic
        (here with a relay that is not there, so nothing is produced yet)."""
        daemon = Daemon(f"ws://127.0.0.1:{refusing_port()}", topic, "--osprey-compatible")
        self.addCleanup(daemon.kill)
        kafkautil.wait_for_topic(topic, timeout=60)
        self.assertEqual(daemon.stop(), 0, daemon.output())

    def consumer_for(self, topic):
        self.create_topic(topic)
        consumer = OspreyConsumer(topic)
        self.addCleanup(consumer.kill)
        consumer.wait_ready()
        return consumer

    def produce(self, topic, path, *args):
        """Replays a capture through at-kafka into topic; returns file mode's values and the
        daemon's log."""
        expected = file_mode_values(path, *args)
        replay = Replay(path)
        self.addCleanup(replay.stop)
        daemon = Daemon(replay.url, topic, *args)
        self.addCleanup(daemon.kill)
        wait_until(lambda: daemon.metric("atkafka_produced_events", status="ok") == len(expected),
                   90, f"{len(expected)} messages produced from {path}")
        self.assertEqual(daemon.stop(), 0, daemon.output())
        return expected, daemon.output()

    def check_parsed(self, consumer, expected):
        """Every message consumed and parsed as Osprey does, nothing else, ids unique int64s."""
        self.assertEqual(consumer.errors, [])
        self.assertEqual(len(consumer.records), len(expected))
        ids = [r["action_id"] for r in consumer.records]
        self.assertEqual(len(set(ids)), len(ids), "action_ids must be unique")
        for i in ids:
            self.assertIsInstance(i, int)
            self.assertTrue(0 < i < 2**63, i)
        for r in consumer.records:
            # dateutil gave an aware UTC datetime from send_time
            self.assertEqual(r["utcoffset"], 0, r["timestamp"])
        # Other than send_time, only the Jetstream payload's time_us (the wall clock) differs
        # from file mode's output; test_jetstream… checks it.
        def canonical(name, data):
            data = {k: v for k, v in data.items() if k != "time_us"}
            return json.dumps({"action_name": name, "data": data}, sort_keys=True)

        got = sorted(canonical(r["action_name"], r["data"]) for r in consumer.records)
        want = sorted(canonical(v["data"]["action_name"], v["data"]["data"])
                      for v in map(without_send_time, expected))
        self.assertEqual(got, want)

    def test_default_osprey_flags_fully_consumed(self):
        """relay-capture and pds-capture with nothing but --osprey-compatible: the stock
        client reads every message (at-kafka's old lz4 default gave it none)."""
        topic = kafkautil.unique_topic("osprey")
        consumer = self.consumer_for(topic)
        expected, log1 = self.produce(topic, vector("relay-capture/frames.bin"),
                                      "--osprey-compatible")
        more, log2 = self.produce(topic, vector("pds-capture/frames.bin"), "--osprey-compatible")
        expected += more
        self.assertGreater(len(expected), 180)
        consumer.wait_records(len(expected))
        self.assertEqual(consumer.finish(), 0)
        self.check_parsed(consumer, expected)
        self.assertNotIn(WARNING, log1 + log2)

    def test_zstd_warns_and_stock_osprey_cannot_read(self):
        """An explicit codec stock Osprey cannot read: one warning at start naming the
        consequence; and the consumer indeed fails on it (so the test above could fail)."""
        path = vector("relay-capture/frames.bin")
        _, log = self.produce(kafkautil.unique_topic("osprey-zstd"), path,
                              "--osprey-compatible", "--compression", "zstd")
        self.assertEqual(log.count(WARNING), 1, log)
        self.assertIn("Compression zstd", log)
        self.assertIn("silently loses", log)
        _, log = self.produce(kafkautil.unique_topic("osprey-none"), path,
                              "--osprey-compatible", "--compression", "none")
        self.assertNotIn(WARNING, log)
        _, log = self.produce(kafkautil.unique_topic("plain-zstd"), path, "--compression", "zstd")
        self.assertNotIn(WARNING, log)
        # lz4 (the old default): the stock client raises instead of reading.
        topic = kafkautil.unique_topic("osprey-lz4")
        consumer = self.consumer_for(topic)
        expected, log = self.produce(topic, path, "--osprey-compatible", "--compression", "lz4")
        self.assertEqual(log.count(WARNING), 1, log)
        consumer.wait_error()
        self.assertIn("lz4", consumer.errors[0])
        consumer.finish()
        self.assertLess(len(consumer.records), len(expected))

    def test_jetstream_payload_matches_production_jetstream(self):
        """--payload-format=jetstream in the Osprey envelope: read by the stock client, each
        event equal to production Jetstream's rendering (time_us aside: ours is when
        at-kafka saw the event), action_names as Osprey's Jetstream plugin gives them."""
        with open(vector("relay-capture/jetstream_v1.jsonl")) as f:
            oracle = [json.loads(line) for line in f if line.strip()]
        for event in oracle:
            del event["time_us"]
        topic = kafkautil.unique_topic("osprey-jetstream")
        consumer = self.consumer_for(topic)
        start_us = time.time_ns() // 1000
        expected, log = self.produce(topic, vector("relay-capture/frames.bin"),
                                     "--osprey-compatible", "--payload-format", "jetstream")
        end_us = time.time_ns() // 1000
        consumer.wait_records(len(expected))
        self.assertEqual(consumer.finish(), 0)
        self.assertEqual(len(consumer.records), len(oracle))
        self.check_parsed(consumer, expected)
        events = []
        for r in consumer.records:
            event = dict(r["data"])
            self.assertTrue(start_us <= event.pop("time_us") <= end_us)
            events.append(event)
            if event["kind"] == "commit":
                c = event["commit"]
                short = OSPREY_SHORT.get(c["collection"], c["collection"])
                self.assertEqual(r["action_name"], f"{c['operation']}_{short}")
            else:
                self.assertEqual(r["action_name"], event["kind"])
        canon = lambda evs: sorted(json.dumps(e, sort_keys=True) for e in evs)
        self.assertEqual(canon(events), canon(oracle))


if __name__ == "__main__":
    unittest.main(verbosity=2)
