#!/usr/bin/env python3
"""Ozone mode end to end: a real Ozone (@atproto/ozone from npm, on a private PostgreSQL)
behind a real PDS and PLC directory (tests/ozone/run-ozone.mjs), reports and moderation
actions made through the PDS's XRPC API while at-kafka runs, and a real broker. What reaches
Kafka is checked against what Ozone itself returns for queryEvents (paged with Ozone's own
cursor), not against the daemon's output. The PDS's access tokens live 6 s here, so every
run meets genuinely expired sessions and must refresh them."""
import json
import os
import subprocess
import threading
import unittest

import kafkautil
from atkharness import Daemon, temp_dir, wait_until

SOURCE_DIR = os.environ["ATK_SOURCE_DIR"]
RUN_OZONE = os.path.join(SOURCE_DIR, "tests", "ozone", "run-ozone.mjs")
NO_RELAY = "ws://127.0.0.1:9"  # the harness wants one; Ozone mode does not use it
ACCESS_TTL_S = 6


class Ozone:
    """run-ozone.mjs as a subprocess: its ready line, and its stdin commands."""

    def __init__(self):
        for d in ("ozone", "plc"):
            modules = os.path.join(SOURCE_DIR, "tests", d, "node_modules")
            if not os.path.isdir(modules):
                raise AssertionError(f"{modules} is missing: run `npm ci --prefix tests/{d}`")
        self.proc = subprocess.Popen(["node", RUN_OZONE], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "LOG_ENABLED": "false",
                                          "ATK_OZONE_ACCESS_TTL": f"{ACCESS_TTL_S}s"})
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("run-ozone.mjs exited before it was ready")
        self.ready = json.loads(line)
        self.lock = threading.Lock()

    def command(self, text):
        with self.lock:
            self.proc.stdin.write(text + "\n")
            self.proc.stdin.flush()
            answer = json.loads(self.proc.stdout.readline())
        if "ok" not in answer:
            raise AssertionError(f"run-ozone.mjs: {text} -> {answer}")
        return answer

    def events(self):
        return self.command("events")["events"]

    def stop(self):
        self.proc.stdin.close()  # its signal to stop
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def messages(topic):
    return [(m["key"], json.loads(m["value"])) for m in kafkautil.consume_all(topic)]


class OzoneTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker()
        cls.ozone = Ozone()
        cls.password_file = os.path.join(temp_dir("atk-ozone-pw-"), "password")
        with open(cls.password_file, "w") as f:
            f.write(cls.ozone.ready["moderator"]["password"] + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.ozone.stop()

    def start_daemon(self, topic, *extra, state_dir=None, password_file=None):
        ready = self.ozone.ready
        daemon = Daemon(NO_RELAY, topic, "--topic-partitions", "1",
                        "--ozone-pds-host", ready["pds"],
                        "--ozone-identifier", ready["moderator"]["handle"],
                        "--ozone-password-file", password_file or self.password_file,
                        "--ozone-labeler-did", ready["labeler"],
                        "--ozone-poll-interval", "200", *extra, state_dir=state_dir)
        self.addCleanup(daemon.kill)
        return daemon

    def wait_for_all(self, topic, daemon, timeout=120):
        """Waits until every event Ozone has is in topic; returns (events, messages)."""
        kafkautil.wait_for_topic(topic, timeout=timeout)
        def done():
            want = self.ozone.events()
            got = messages(topic)
            ids = {int(k) for k, _ in got}
            return (want, got) if all(e["id"] in ids for e in want) else None
        return wait_until(done, timeout, f"every Ozone event in {topic}\n"
                                         f"{daemon.output()[-3000:]}", interval=0.5)

    def test_events_once_in_order(self):
        """Events made before and while the daemon runs: each one in Kafka once, as Ozone
        returns it, in Ozone's order, key = its id; polling on adds nothing; the expired
        access tokens were refreshed on the way."""
        self.ozone.command("report 2")
        self.ozone.command("action 3")
        topic = kafkautil.unique_topic("atk-ozone")
        daemon = self.start_daemon(topic)
        wait_until(lambda: daemon.sample("atkafka_handled_events", action_name="ozone"), 60,
                   f"the first Ozone event handled\n{daemon.output()[-3000:]}")
        for _ in range(3):
            self.ozone.command("report 1")
            self.ozone.command("action 2")
        # past the access token's lifetime: the next polls meet ExpiredToken
        wait_until(lambda: daemon.metric("atkafka_ozone_requests", call="refreshSession",
                                         status="ok") >= 1, 60,
                   f"a session refresh\n{daemon.output()[-3000:]}", interval=0.5)
        self.ozone.command("action 2")
        want, got = self.wait_for_all(topic, daemon)
        self.assertEqual(daemon.metric("atkafka_relay_connected"), 1)  # D-Bus State too
        polls = daemon.metric("atkafka_ozone_requests", call="queryEvents", status="ok")
        wait_until(lambda: daemon.metric("atkafka_ozone_requests", call="queryEvents",
                                         status="ok") >= polls + 5, 30, "five more polls")
        got = messages(topic)
        self.assertEqual([int(k) for k, _ in got], [e["id"] for e in want])
        self.assertEqual([v for _, v in got], want)
        self.assertEqual(daemon.metric("atkafka_handled_events", action_name="ozone"), len(want))
        self.assertGreaterEqual(daemon.metric("atkafka_ozone_requests", call="queryEvents",
                                              status="expired"), 1)
        self.assertEqual(daemon.metric("atkafka_ozone_cursor_event_id"), want[-1]["id"])
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])
        with open(os.path.join(daemon.state_dir, "ozone-cursor")) as f:
            place = f.read().split()
        self.assertEqual(place, [self.ozone.ready["labeler"], want[-1]["createdAt"],
                                 str(want[-1]["id"])])

    def test_osprey_envelope(self):
        self.ozone.command("action 1")
        topic = kafkautil.unique_topic("atk-ozone-osprey")
        daemon = self.start_daemon(topic, "--osprey-compatible")
        want, got = self.wait_for_all(topic, daemon)
        by_id = {e["id"]: e for e in want}
        for key, value in got:
            event = by_id[int(key)]
            short = event["event"]["$type"].split("#")[-1]
            self.assertEqual(value["data"]["action_name"], f"ozone#{short}")
            self.assertEqual(value["data"]["data"], event)
            self.assertEqual(value["data"]["timestamp"], event["createdAt"])
            self.assertIsInstance(value["data"]["action_id"], int)
        self.assertEqual(len({v["data"]["action_id"] for _, v in got}), len(got))
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])

    def test_kill9_and_restart(self):
        """kill -9 while actions are being made, restart on the same state directory:
        every event reaches Kafka (repeats allowed only for what was in flight), in order."""
        state = temp_dir("atk-ozone-state-")
        topic = kafkautil.unique_topic("atk-ozone-kill")
        daemon = self.start_daemon(topic, state_dir=state)
        stop_making = threading.Event()
        made = []

        def make():
            while not stop_making.is_set():
                made.extend(self.ozone.command("action 1")["ids"])

        maker = threading.Thread(target=make)
        self.addCleanup(maker.join, 120)
        self.addCleanup(stop_making.set)
        maker.start()
        # a place on disk, and the maker still making actions
        wait_until(lambda: daemon.sample("atkafka_ozone_cursor_event_id") is not None
                   and len(made) >= 2, 120, f"events flowing\n{daemon.output()[-3000:]}")
        daemon.kill()
        kafkautil.wait_for_topic(topic)
        before = len(messages(topic))
        again = self.start_daemon(topic, state_dir=state)
        # a few more actions while the new daemon runs, then stop making them
        count = len(made)
        wait_until(lambda: len(made) >= count + 3, 120, "three more actions")
        stop_making.set()
        maker.join(120)
        want, got = self.wait_for_all(topic, again)
        firsts = list(dict.fromkeys(int(k) for k, _ in got))
        self.assertEqual(firsts, [e["id"] for e in want])
        repeats = len(got) - len(firsts)
        self.assertIn("resuming after event", again.output())
        print(f"  {len(want)} events, {before} in Kafka at the kill, {repeats} repeated",
              flush=True)
        self.assertLess(repeats, 100)
        self.assertEqual(again.stop(), 0, again.output()[-3000:])

    def test_new_host_resumes_from_kafka(self):
        """A second daemon with an empty state directory (a new host) resumes from the place
        the first one left in <topic>.cursor: nothing produced twice, nothing missing."""
        self.ozone.command("action 1")
        topic = kafkautil.unique_topic("atk-ozone-host")
        first = self.start_daemon(topic)
        self.wait_for_all(topic, first)
        self.assertEqual(first.stop(), 0, first.output()[-3000:])
        self.ozone.command("report 1")
        self.ozone.command("action 2")
        second = self.start_daemon(topic)  # its own, new state directory
        want, got = self.wait_for_all(topic, second)
        self.assertIn("from Kafka topic", second.output())
        self.assertIn("resuming after event", second.output())
        self.assertEqual([int(k) for k, _ in got], [e["id"] for e in want])
        self.assertEqual(second.metric("atkafka_ozone_requests", call="getEvent", status="ok"), 1)
        self.assertEqual(second.stop(), 0, second.output()[-3000:])

    def test_z_labeler_down(self):
        """Ozone goes away mid-run: the failed polls are counted and back off, and once it is
        back every event is in Kafka once. Runs last: it restarts the shared Ozone."""
        topic = kafkautil.unique_topic("atk-ozone-down")
        daemon = self.start_daemon(topic)
        self.wait_for_all(topic, daemon)
        self.ozone.command("ozone-down")
        try:
            wait_until(lambda: daemon.metric("atkafka_ozone_requests", call="queryEvents",
                                             status="error") >= 2, 60,
                       f"failed polls\n{daemon.output()[-3000:]}", interval=0.5)
            self.assertEqual(daemon.metric("atkafka_relay_connected"), 0)
        finally:
            self.ozone.command("ozone-up")
        self.ozone.command("report 1")
        self.ozone.command("action 1")
        want, got = self.wait_for_all(topic, daemon)
        self.assertEqual([int(k) for k, _ in got], [e["id"] for e in want])
        self.assertGreaterEqual(daemon.metric("atkafka_relay_reconnects_total"), 2)
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])

    def test_wrong_password(self):
        """Credentials the PDS refuses: one line naming the problem, exit status 2."""
        bad = os.path.join(temp_dir("atk-ozone-bad-"), "password")
        with open(bad, "w") as f:
            f.write("not-the-password\n")
        daemon = self.start_daemon(kafkautil.unique_topic("atk-ozone-bad"), password_file=bad)
        daemon.proc.wait(60)
        lines = [line for line in daemon.output().splitlines() if line.strip()]
        self.assertEqual(daemon.proc.returncode, 2, daemon.output())
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("refused the login of mod.test", lines[0])

    def test_reference_query_repeats(self):
        """The fact behind our paging: the reference's query (createdBefore = the last
        event's createdAt + 1 ms, ascending) returns the same oldest events again."""
        self.ozone.command("report 1")
        answer = self.ozone.command("reference")
        self.assertTrue(answer["first"])
        self.assertEqual(answer["second"], answer["first"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
