#!/usr/bin/env python3
"""data/at-kafka-grafana.json against a live daemon: every metric a dashboard query names is one
the daemon exports (with the labels the query selects or groups by), and every metric family the
daemon exports in relay mode is on the dashboard.

The daemon replays a real relay capture plus one frame that cannot be decoded, through a real
broker, so that the families that appear only once something happened (handled events, decode
errors by kind, last seq, cursor, lag) are there too."""
import json
import os
import re
import struct
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import kafkautil  # noqa: E402
from atkharness import Daemon, Replay, parse_prometheus, vector, wait_until  # noqa: E402

DASHBOARD = os.path.join(os.environ["ATK_SOURCE_DIR"], "data", "at-kafka-grafana.json")
CAPTURE = vector("relay-capture/frames.bin")
LAST_SEQ = 31527015471  # the capture's last seq (tests/vectors/README.md)

METRIC = re.compile(r"\b(atkafka_[a-zA-Z0-9_]+)(\{([^}]*)\})?")
MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")
# Labels Prometheus adds to every scraped sample, and the histogram's own.
SCRAPE_LABELS = {"instance", "job"}


def queries(dashboard):
    """(where, expression) for every query of the dashboard: panel targets (rows included)
    and template variables."""
    found = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                found.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard["panels"])
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            found.append((f"variable {var['name']}", query))
    return found


def frame_file_with_a_bad_frame(directory):
    """The relay capture and, after it, one message that is not DAG-CBOR."""
    path = os.path.join(directory, "frames.bin")
    with open(CAPTURE, "rb") as f:
        data = f.read()
    bad = b"\xff\x00 not a frame"
    with open(path, "wb") as f:
        f.write(data + struct.pack("<I", len(bad)) + bad)
    return path


class Dashboard(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(DASHBOARD) as f:
            cls.dashboard = json.load(f)
        kafkautil.wait_for_broker(timeout=90)
        cls.tmp = tempfile.TemporaryDirectory(prefix="atk-dashboard-")
        replay = Replay(frame_file_with_a_bad_frame(cls.tmp.name))
        state = os.path.join(cls.tmp.name, "state")
        os.mkdir(state)
        daemon = Daemon(replay.url, kafkautil.unique_topic("dashboard"), state_dir=state)
        try:
            def scrape():
                samples = daemon.metrics()
                names = {name for name, _ in samples}
                if (samples.get(("atkafka_cursor_seq", ())) == LAST_SEQ
                        and "atkafka_decode_errors_total" in names):
                    return samples
                return None

            cls.samples = wait_until(scrape, 120, "the cursor at the capture's end and a decode error")
            # The daemons of the integration tests run with criticals fatal (tests/meson.build).
            with open(f"/proc/{daemon.proc.pid}/environ", "rb") as f:
                cls.daemon_env = f.read().split(b"\0")
        finally:
            status = daemon.stop()
            replay.stop()
        if status != 0:
            raise AssertionError(f"at-kafka exited with {status}:\n{daemon.output()}")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def labels_of(self, metric):
        """{label: set of values} over the exported samples of metric."""
        labels = {}
        for (name, sample_labels), _ in self.samples.items():
            if name == metric:
                for key, value in sample_labels:
                    labels.setdefault(key, set()).add(value)
        return labels

    def test_structure(self):
        ids = []

        def walk(panels):
            for panel in panels:
                ids.append(panel["id"])
                self.assertIn("gridPos", panel, panel["title"])
                if panel["type"] != "row":
                    self.assertEqual(panel["datasource"]["uid"], "${datasource}", panel["title"])
                    ref_ids = [t["refId"] for t in panel["targets"]]
                    self.assertTrue(ref_ids, f"panel {panel['title']!r} has no query")
                    self.assertEqual(len(ref_ids), len(set(ref_ids)), panel["title"])
                walk(panel.get("panels", []))

        walk(self.dashboard["panels"])
        self.assertEqual(len(ids), len(set(ids)), "panel ids must be unique")
        self.assertEqual(self.dashboard["uid"], "at-kafka")

    def test_every_query_names_exported_metrics(self):
        exported = {name for name, _ in self.samples}
        checked = 0
        for where, expr in queries(self.dashboard):
            metrics = METRIC.findall(expr)
            self.assertTrue(metrics, f"{where}: names no atkafka_ metric: {expr}")
            for metric, _, matchers in metrics:
                self.assertIn(metric, exported, f"{where}: {metric} is not exported")
                labels = self.labels_of(metric)
                for label, op, value in MATCHER.findall(matchers):
                    if label in SCRAPE_LABELS:
                        continue
                    self.assertIn(label, labels, f"{where}: {metric} has no label {label}")
                    if op == "=":
                        self.assertIn(value, labels[label],
                                      f"{where}: no sample {metric}{{{label}=\"{value}\"}}")
                checked += 1
            for group in GROUPING.findall(expr):
                for label in (g.strip() for g in group.split(",") if g.strip()):
                    if label in SCRAPE_LABELS:
                        continue
                    self.assertTrue(any(label in self.labels_of(m) for m, _, _ in metrics),
                                    f"{where}: no metric of {expr} has the label {label}")
        self.assertGreater(checked, 20)

    def test_every_exported_family_is_on_the_dashboard(self):
        named = set()
        for _, expr in queries(self.dashboard):
            named.update(m for m, _, _ in METRIC.findall(expr))
        families = {re.sub(r"_(bucket|sum|count)$", "", name) if name.startswith(
            "atkafka_delivery_latency_seconds") else name for name, _ in self.samples}
        on_dashboard = {re.sub(r"_(bucket|sum|count)$", "", name) if name.startswith(
            "atkafka_delivery_latency_seconds") else name for name in named}
        self.assertEqual(sorted(families - on_dashboard), [])

    def test_daemon_criticals_are_fatal(self):
        self.assertIn(b"G_DEBUG=fatal-criticals", self.daemon_env)

    def test_decode_errors_have_a_kind(self):
        kinds = self.labels_of("atkafka_decode_errors_total").get("kind", set())
        self.assertTrue(kinds, "atkafka_decode_errors_total without a kind label")


if __name__ == "__main__":
    unittest.main(verbosity=2)
