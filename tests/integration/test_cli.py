#!/usr/bin/env python3
"""The command line: bad configuration fails at start with one clear line; the file mode
(--input FILE --stdout) runs the vector files; flags win over ATKAFKA_* variables."""
import json
import os
import pathlib
import socket
import subprocess
import tempfile
import unittest

from atkharness import Oracle, canonical, expected_for_frame, json_lines

AT_KAFKA = os.environ["ATK_AT_KAFKA"]
VECTORS = os.environ["ATK_VECTORS_DIR"]


def run(args, env=None, timeout=30):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ATKAFKA_")}
    full_env.update(env or {})
    return subprocess.run([AT_KAFKA] + args, capture_output=True, text=True, env=full_env,
                          timeout=timeout)


class BadConfiguration(unittest.TestCase):
    def assert_config_error(self, args, needle, env=None):
        r = run(args, env)
        self.assertEqual(r.returncode, 2, f"{args}: {r.stderr}")
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, f"want one line, got: {r.stderr!r}")
        self.assertIn(needle, lines[0])
        self.assertTrue(lines[0].startswith("at-kafka: "), lines[0])

    def test_missing_topic(self):
        self.assert_config_error(["--bootstrap-servers", "127.0.0.1:9092"], "--output-topic")

    def test_missing_bootstrap(self):
        self.assert_config_error(["--output-topic", "t"], "--bootstrap-servers")

    def test_unparsable_bootstrap(self):
        for bad in ["localhost", "host:notaport", "a:1,b", ":9092", "host:70000"]:
            with self.subTest(bad=bad):
                self.assert_config_error(["--bootstrap-servers", bad, "--output-topic", "t"],
                                         "--bootstrap-servers")

    def test_bad_relay_url(self):
        for bad in ["ftp://relay.example", "not a url", "wss://", "wss://host/?x=1"]:
            with self.subTest(bad=bad):
                self.assert_config_error(["--bootstrap-servers", "127.0.0.1:9092",
                                          "--output-topic", "t", "--relay-host", bad],
                                         "--relay-host")

    def test_bad_values(self):
        base = ["--bootstrap-servers", "127.0.0.1:9092", "--output-topic", "t"]
        cases = [
            (["--osprey-compatible=maybe"], "--osprey-compatible"),
            (["--topic-partitions", "0"], "--topic-partitions"),
            (["--topic-partitions", "12x"], "--topic-partitions"),
            (["--compression", "brotli"], "--compression"),
            (["--cursor", "-5"], "--cursor"),
            (["--bus", "maybe"], "--bus"),
            (["--kafka-property", "novalue"], "--kafka-property"),
            (["--watched-collections", "app.bsky.*", "--ignored-collections", "x.y"],
             "--watched-collections"),
            (["--watched-collections", "app bsky"], "--watched-collections"),
            (["--output-topic", "bad topic!"], "--output-topic"),
            (["--no-such-flag"], "no-such-flag"),
            (["stray"], "stray"),
        ]
        for extra, needle in cases:
            with self.subTest(extra=extra):
                self.assert_config_error(base + extra, needle)

    def test_bad_environment_values(self):
        base = ["--bootstrap-servers", "127.0.0.1:9092", "--output-topic", "t"]
        self.assert_config_error(base, "--osprey-compatible", {"ATKAFKA_OSPREY_COMPATIBLE": "yes please"})
        self.assert_config_error(base, "--relay-host", {"ATKAFKA_RELAY_HOST": "gopher://x"})
        self.assert_config_error([], "--output-topic", {"ATKAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"})

    def test_service_and_tap_options(self):
        base = ["--bootstrap-servers", "127.0.0.1:9092", "--output-topic", "t"]
        cases = [
            (["--watched-services", "pds.example.com"], "--plc-host"),
            (["--event-metadata"], "--plc-host"),
            (["--plc-host", "ftp://plc.example"], "--plc-host"),
            (["--plc-host", "https://plc.example", "--api-host", "nope"], "--api-host"),
            (["--plc-host", "https://plc.example", "--watched-services", "a.example",
              "--ignored-services", "b.example"], "--watched-services"),
            (["--plc-host", "https://plc.example", "--watched-services", "bad host!"],
             "--watched-services"),
            (["--plc-host", "https://plc.example", "--event-metadata=perhaps"], "--event-metadata"),
            (["--tap-host", "gopher://tap.example"], "--tap-host"),
            (["--disable-acks=sometimes"], "--disable-acks"),
        ]
        for extra, needle in cases:
            with self.subTest(extra=extra):
                self.assert_config_error(base + extra, needle)
        self.assert_config_error(base, "--plc-host", {"ATKAFKA_EVENT_METADATA": "true"})

    def test_invalid_kafka_property_is_refused(self):
        r = run(["--bootstrap-servers", "127.0.0.1:9092", "--output-topic", "t",
                 "--kafka-property", "no.such.property=1", "--metrics-listen-address", ""])
        self.assertEqual(r.returncode, 2, r.stderr)
        self.assertIn("no.such.property", r.stderr)

    def test_metrics_port_in_use(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            port = s.getsockname()[1]
            r = run(["--bootstrap-servers", "127.0.0.1:9092", "--output-topic", "t",
                     "--metrics-listen-address", f"127.0.0.1:{port}", "--bus", "none"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn(str(port), r.stderr.strip().splitlines()[-1])

    def test_version_and_help(self):
        r = run(["--version"])
        self.assertEqual(r.returncode, 0)
        self.assertRegex(r.stdout, r"^at-kafka \d+\.\d+\.\d+")
        r = run(["--help"])
        self.assertEqual(r.returncode, 0)
        for option in ["--relay-host", "--bootstrap-servers", "--output-topic",
                       "--osprey-compatible", "--watched-collections", "--cursor"]:
            self.assertIn(option, r.stdout)

    def test_german_translation(self):
        env = {"LC_ALL": "C.UTF-8", "LANGUAGE": "de",
               "ATK_LOCALEDIR": os.path.join(os.environ["ATK_BUILD_DIR"], "po")}
        r = run(["--help"], env)
        self.assertEqual(r.returncode, 0)
        self.assertIn("Den Firehose des AT Protocol abonnieren", r.stdout)
        self.assertIn("--output-topic", r.stdout)
        r = run(["--bootstrap-servers", "127.0.0.1:9092", "--output-topic", "t",
                 "--topic-partitions", "0"], env)
        self.assertEqual(r.returncode, 2)
        self.assertIn("ganze Zahl von 1 bis 100000 erwartet", r.stderr)


class FileMode(unittest.TestCase):
    def run_file(self, path, *extra):
        return run(["--input", path, "--stdout", *extra])

    def test_relay_capture(self):
        r = self.run_file(os.path.join(VECTORS, "relay-capture/frames.bin"))
        self.assertEqual(r.returncode, 0, r.stderr)
        lines = json_lines(r.stdout)
        manifest = json.loads(pathlib.Path(VECTORS, "relay-capture/manifest.json").read_text())
        want = manifest["creates"] + manifest["updates"] + manifest["deletes"] \
            + manifest["identity"] + manifest["account"]
        self.assertEqual(len(lines), want)
        values = [json.loads(line) for line in lines]
        actions = [v["operation"]["action"] for v in values if "operation" in v]
        self.assertEqual(actions.count("create"), manifest["creates"])
        self.assertEqual(actions.count("update"), manifest["updates"])
        self.assertEqual(actions.count("delete"), manifest["deletes"])
        self.assertIn(f"frames={manifest['frames']} messages={want} ", r.stderr)

    def test_osprey_flag_and_env(self):
        path = os.path.join(VECTORS, "pds-capture/frames.bin")
        for args, env, osprey in [
            (["--osprey-compatible"], None, True),
            ([], {"ATKAFKA_OSPREY_COMPATIBLE": "true"}, True),
            ([], {"ATKAFKA_OSPREY_COMPATIBLE": "1"}, True),
            (["--osprey-compatible=false"], {"ATKAFKA_OSPREY_COMPATIBLE": "true"}, False),
            ([], None, False),
        ]:
            with self.subTest(args=args, env=env):
                r = run(["--input", path, "--stdout"] + args, env)
                self.assertEqual(r.returncode, 0, r.stderr)
                first = json.loads(json_lines(r.stdout)[0])
                self.assertEqual("send_time" in first, osprey)

    def test_watched_collections_env(self):
        path = os.path.join(VECTORS, "relay-capture/frames.bin")
        like = "app.bsky.feed.like"
        r = run(["--input", path, "--stdout"], {"ATKAFKA_WATCHED_COLLECTIONS": like})
        self.assertEqual(r.returncode, 0, r.stderr)
        # Exactly the oracle's likes (every one of them) and the non-commit events, in order.
        want = [e for e in Oracle("relay-capture/frames.bin").messages()
                if e.kind != "commit" or e.collection == like]
        self.assertEqual(len([e for e in want if e.kind == "commit"]), 105)
        got = [canonical(json.loads(line)) for line in json_lines(r.stdout)]
        self.assertEqual(got, [canonical(e.value) for e in want])
        self.assertIn(f"messages={len(want)} ", r.stderr)

    def test_missing_file(self):
        r = self.run_file("/nonexistent/frames.bin")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("/nonexistent/frames.bin", r.stderr)

    def test_truncated_file(self):
        data = pathlib.Path(VECTORS, "relay-capture/frames.bin").read_bytes()
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            f.write(data[: len(data) - 100])  # ends inside the last frame
            f.flush()
            r = self.run_file(f.name)
        self.assertNotEqual(r.returncode, 0)
        # Every whole frame before the cut is still written, exactly as the oracle says.
        self.assertIn("frames=149 ", r.stderr)
        want = [e for frame in Oracle("relay-capture/frames.bin").frames[:149]
                for e in expected_for_frame(frame)]
        self.assertEqual([canonical(json.loads(line)) for line in json_lines(r.stdout)],
                         [canonical(e.value) for e in want])

    def test_garbage_frame_between_good_ones(self):
        src = pathlib.Path(VECTORS, "pds-capture/frames.bin").read_bytes()
        garbage = b"\xa2\x61\x74\xff\x00garbage"
        with tempfile.NamedTemporaryFile(suffix=".bin") as f:
            f.write(len(garbage).to_bytes(4, "little") + garbage + src)
            f.flush()
            bad = self.run_file(f.name)
        good = self.run_file(os.path.join(VECTORS, "pds-capture/frames.bin"))
        self.assertEqual(bad.returncode, 0, bad.stderr)
        self.assertEqual(good.returncode, 0, good.stderr)
        want = [canonical(e.value) for e in Oracle("pds-capture/frames.bin").messages()]
        self.assertEqual(len(want), 34)
        self.assertEqual([canonical(json.loads(line)) for line in json_lines(good.stdout)], want)
        self.assertEqual(bad.stdout, good.stdout)
        self.assertIn("errors=1", bad.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
