#!/usr/bin/env python3
"""The real at-kafka on D-Bus and under a fake systemd.

D-Bus: a private dbus-daemon (its own config in a temp dir, open to every uid so that
the refusal of another user can be shown) and at-kafka with --bus session pointed at it,
replaying the capture, looped without end at a fixed rate, into a real Kafka broker: the
stream lasts as long as a test needs it, however slow the machine. A test ends the stream
by stopping the replay; what reached Kafka must then be exactly the oracle's messages
(frames.jsonl) up to the last seq delivered, value for value. busctl and gdbus are the
clients, as an operator would use them.

systemd: at-kafka with NOTIFY_SOCKET at a datagram socket this test binds, with the
watchdog enabled, checked for READY=1, STATUS=, WATCHDOG=1 and STOPPING=1."""
import collections
import json
import os
import re
import socket
import struct
import subprocess
import tempfile
import time
import unittest

import kafkautil
from atkharness import (Daemon, Gate, Oracle, Replay, compare_with_oracle, stop_process,
                        temp_dir, unwrap, vector, wait_until)

NAME = "io.github.atkafka.Daemon1"
PATH = "/io/github/atkafka/Daemon1"
IFACE = "io.github.atkafka.Daemon1"
NOBODY = 65534
CAPTURE = "relay-capture/frames.bin"
ORACLE = Oracle(CAPTURE)
RATE = 100  # frames/s, for as long as the test runs

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <!-- Any uid may connect and send: refusals must come from at-kafka itself. -->
    <allow user="*"/>
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


class PrivateBus:
    """A dbus-daemon of our own, listening on a socket in a temp dir. CONFIG and setpriv()
    are what a subclass changes (test_dbus_system: the system bus's policy, named users)."""

    CONFIG = BUS_CONFIG

    def __init__(self, **fields):
        self.dir = temp_dir("atk-bus-")
        os.chmod(self.dir, 0o755)  # other uids must reach the socket
        config = os.path.join(self.dir, "bus.conf")
        with open(config, "w") as f:
            f.write(self.CONFIG.format(socket=os.path.join(self.dir, "bus"), **fields))
        self.log = open(os.path.join(self.dir, "bus.log"), "wb")
        self.proc = subprocess.Popen(["dbus-daemon", "--config-file", config, "--nofork",
                                      "--print-address=1"], stdout=subprocess.PIPE,
                                     stderr=self.log, text=True)
        line = self.proc.stdout.readline().strip()
        if not line.startswith("unix:"):
            self.stop()
            raise AssertionError(f"dbus-daemon did not start: {line!r}")
        self.address = line

    def stop(self):
        stop_process(self.proc)
        self.proc.stdout.close()
        self.log.close()

    def run(self, tool, *args, uid=None, check=True):
        """Runs busctl or gdbus against this bus, as root or as another uid."""
        if tool == "busctl":
            argv = ["busctl", f"--address={self.address}", *args]
        else:
            argv = ["gdbus", args[0], "--address", self.address, *args[1:]]
        if uid is not None:
            argv = [*self.setpriv(uid), *argv]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=20,
                           stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise AssertionError(f"{argv} failed ({r.returncode}): {r.stderr}")
        return r

    def setpriv(self, uid):
        """The command prefix that runs a client as uid, without supplementary groups."""
        return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]

    def get_all(self, uid=None):
        """One consistent snapshot of every property: {name: value}."""
        r = self.run("busctl", "--json=short", "call", NAME, PATH,
                     "org.freedesktop.DBus.Properties", "GetAll", "s", IFACE, uid=uid)
        props = json.loads(r.stdout)["data"][0]
        return {k: v["data"] for k, v in props.items()}

    def get(self, prop, uid=None):
        r = self.run("busctl", "--json=short", "get-property", NAME, PATH, IFACE, prop, uid=uid)
        return json.loads(r.stdout)["data"]

    def call(self, method, uid=None, check=True):
        return self.run("busctl", "call", NAME, PATH, IFACE, method, uid=uid, check=check)

    def set_osprey(self, value, uid=None, check=True):
        return self.run("busctl", "set-property", NAME, PATH, IFACE, "OspreyCompatible", "b",
                        "true" if value else "false", uid=uid, check=check)

    def monitor(self, testcase):
        """gdbus monitor on the daemon's object, writing the signals it sees to a file;
        returns a function giving the text so far. Stopped at the test's cleanup."""
        out = tempfile.NamedTemporaryFile(prefix="atk-monitor-", suffix=".log")
        proc = subprocess.Popen(["gdbus", "monitor", "--address", self.address, "--dest", NAME,
                                 "--object-path", PATH], stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)

        def stop():
            proc.terminate()
            proc.wait(10)
            out.close()

        def text():
            with open(out.name, encoding="utf-8", errors="replace") as f:
                return f.read()

        testcase.addCleanup(stop)
        wait_until(lambda: "does not have an owner" in text(), 10, "gdbus monitor to start")
        return text

    def owned(self):
        r = self.run("busctl", "--json=short", "call", "org.freedesktop.DBus",
                     "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner", "s", NAME)
        return json.loads(r.stdout)["data"][0]


# ---- what the replay should put into Kafka --------------------------------------------

def classify(message):
    """("standard"|"osprey", seq) of a Kafka message."""
    fmt, _ = unwrap(json.loads(message["value"]))
    return fmt, int(message["headers"]["seq"])


class DbusTestCase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker(timeout=90)
        cls.bus = PrivateBus()

    @classmethod
    def tearDownClass(cls):
        cls.bus.stop()

    def start(self):
        """An endless, paced replay and at-kafka on the private bus; returns (daemon, topic,
        replay)."""
        replay = Replay(vector(CAPTURE), "--loop", "0", "--rate", str(RATE))
        self.addCleanup(replay.stop)
        topic = kafkautil.unique_topic("dbus")
        daemon = Daemon(replay.url, topic, bus="session",
                        env={"DBUS_SESSION_BUS_ADDRESS": self.bus.address})
        self.addCleanup(daemon.kill)
        wait_until(lambda: not daemon.alive() or self.bus.owned(), 20, f"{NAME} on the bus")
        self.assertTrue(daemon.alive(), daemon.output())
        return daemon, topic, replay

    def finish(self, daemon, topic, replay):
        """Ends the stream, waits until Kafka has everything, stops the daemon; checks that
        Kafka holds exactly the oracle's messages up to the last seq delivered, each once
        and value for value; returns the messages."""
        replay.stop()
        wait_until(lambda: self.bus.get_all()["State"] != "connected", 20, "the stream's end")
        wait_until(lambda: self.bus.get_all()["KafkaInFlight"] == 0, 30, "nothing in flight")
        self.assertEqual(daemon.stop(), 0, daemon.output())
        wait_until(lambda: not self.bus.owned(), 10, f"{NAME} released")
        messages = kafkautil.consume_all(topic)
        last = max(int(m["headers"]["seq"]) for m in messages)
        loops = (last - ORACLE.first_seq) // ORACLE.span + 1
        expected = ORACLE.messages(loops, upto_seq=last)
        compare_with_oracle(messages, expected)
        self.assertEqual(len(messages), len(expected))
        return messages


class Properties(DbusTestCase):
    def test_introspect_and_reconnect(self):
        daemon, topic, replay = self.start()
        out = self.bus.run("busctl", "introspect", NAME, PATH).stdout
        self.assertIn(IFACE, out)
        for member in ("Pause", "Resume", "Reconnect", "Cursor", "LastSeq", "EventsProduced",
                       "State", "Paused"):
            self.assertRegex(out, rf"(?m)^\.{member}\s")
        self.assertRegex(out, r"(?m)^\.OspreyCompatible\s+property\s+b\s+\S+\s+.*writable")
        self.assertRegex(out, r"(?m)^\.Cursor\s+property\s+x\s")
        # Reconnect mid-stream: a new connection that resumes where the old one stopped.
        wait_until(lambda: daemon.metric("atkafka_frames_received_total") >= 100, 20,
                   "frames flowing")
        self.assertEqual(daemon.metric("atkafka_relay_reconnects_total"), 0)
        self.bus.call("Reconnect")
        wait_until(lambda: daemon.metric("atkafka_relay_reconnects_total") == 1, 10,
                   "a reconnect")
        frames = daemon.metric("atkafka_frames_received_total")
        wait_until(lambda: daemon.metric("atkafka_frames_received_total") > frames, 20,
                   "frames after the reconnect")
        # finish(): every message once, so the new connection resumed where the old stopped.
        self.finish(daemon, topic, replay)

    def test_counters_advance_during_replay(self):
        signals = self.bus.monitor(self)
        started = time.monotonic()
        daemon, topic, replay = self.start()
        first_seq = ORACLE.first_seq
        snapshots = []

        def cursor_moved_three_times():
            snapshots.append(self.bus.get_all())
            return len({s["Cursor"] for s in snapshots if s["Cursor"] >= 0}) >= 4

        wait_until(cursor_moved_three_times, 20, "Cursor to take 4 values", interval=0.3)
        for before, after in zip(snapshots, snapshots[1:]):
            self.assertLessEqual(before["Cursor"], after["Cursor"])
            self.assertLessEqual(before["LastSeq"], after["LastSeq"])
            self.assertLessEqual(before["EventsProduced"], after["EventsProduced"])
        for s in snapshots:
            if s["Cursor"] >= 0:
                self.assertGreaterEqual(s["Cursor"], first_seq)
                self.assertLessEqual(s["Cursor"], s["LastSeq"])
            self.assertLessEqual(s["EventsProduced"], s["EventsHandled"])
            self.assertEqual(s["RelayHost"], daemon.args[daemon.args.index("--relay-host") + 1])
        moving = [s for s in snapshots if s["Cursor"] >= 0]
        self.assertGreater(moving[-1]["LastSeq"], moving[0]["LastSeq"])
        self.assertGreater(moving[-1]["EventsProduced"], moving[0]["EventsProduced"])
        self.assertEqual(snapshots[-1]["State"], "connected")
        self.assertFalse(snapshots[-1]["Paused"])

        self.finish(daemon, topic, replay)
        # Clients that listen rather than poll see the same: PropertiesChanged signals with
        # an advancing Cursor, at most about once a second (the stats refresh).
        elapsed = time.monotonic() - started
        changes = [line for line in signals().splitlines() if "PropertiesChanged" in line]
        cursors = [int(c) for c in re.findall(r"'Cursor': <int64 (\d+)>", "\n".join(changes))]
        self.assertGreaterEqual(len(cursors), 3, changes)
        self.assertEqual(cursors, sorted(cursors))
        self.assertEqual(len(set(cursors)), len(cursors), "a Cursor change that did not change")
        self.assertLessEqual(len(changes), elapsed + 2, changes)


class OspreySwitch(DbusTestCase):
    def test_switch_mid_stream(self):
        daemon, topic, replay = self.start()
        first_seq, span = ORACLE.first_seq, ORACLE.span
        self.assertFalse(self.bus.get("OspreyCompatible"))
        # Switch mid-stream: half a pass in.
        wait_until(lambda: self.bus.get("LastSeq") >= first_seq + span // 2, 30,
                   "half a pass received")
        before = self.bus.get("LastSeq")  # received, hence transformed, before the set
        self.bus.set_osprey(True)
        self.assertTrue(self.bus.get("OspreyCompatible"))
        # The value read now may still come from a refresh before the set; the next
        # refresh (once a second) gives a LastSeq received after it.
        stale = self.bus.get("LastSeq")

        def refreshed():
            value = self.bus.get("LastSeq")
            return value if value > stale else None

        after = wait_until(refreshed, 10, "a stats refresh after the set")
        # and some Osprey messages after that
        wait_until(lambda: self.bus.get("LastSeq") > after + 10, 20, "frames after the set")

        messages = self.finish(daemon, topic, replay)
        by_format = collections.defaultdict(set)
        formats_of_seq = collections.defaultdict(set)
        for m in messages:
            fmt, seq = classify(m)
            by_format[fmt].add(seq)
            formats_of_seq[seq].add(fmt)
        self.assertTrue(by_format["standard"] and by_format["osprey"],
                        {fmt: len(seqs) for fmt, seqs in by_format.items()})
        mixed = [seq for seq, fmts in formats_of_seq.items() if len(fmts) > 1]
        self.assertLessEqual(len(mixed), 1, f"seqs with both formats: {mixed}")
        last_standard = max(by_format["standard"])
        first_osprey = min(by_format["osprey"])
        self.assertLessEqual(last_standard, first_osprey,
                             "a standard message after an Osprey one (by seq)")
        # Received before the set: standard; received after a refresh that followed it: Osprey.
        self.assertEqual([s for s in by_format["osprey"] if s <= before], [])
        self.assertEqual([s for s in by_format["standard"] if s > after], [])
        # Per partition, in Kafka's order: standard first, then Osprey only.
        per_partition = collections.defaultdict(list)
        for m in sorted(messages, key=lambda m: (m["partition"], m["offset"])):
            per_partition[m["partition"]].append(classify(m)[0])
        for partition, fmts in per_partition.items():
            switched = fmts.index("osprey") if "osprey" in fmts else len(fmts)
            self.assertNotIn("standard", fmts[switched:], f"partition {partition}")
        # Osprey ids stay unique across the loop's rewritten seqs.
        ids = [json.loads(m["value"])["data"]["action_id"] for m in messages
               if classify(m)[0] == "osprey"]
        self.assertEqual(len(ids), len(set(ids)))


class PauseAndPermissions(DbusTestCase):
    def test_pause_resume_and_refusal(self):
        daemon, topic, replay = self.start()
        # Properties follow the stats refresh (once a second): wait for one while connected.
        wait_until(lambda: self.bus.get("State") == "connected", 20, "State connected")

        # Another uid: reading works, changing anything does not.
        snapshot = self.bus.get_all(uid=NOBODY)
        self.assertEqual(snapshot["State"], "connected")
        self.assertGreater(snapshot["LastSeq"], 0)
        self.assertFalse(self.bus.get("Paused", uid=NOBODY))
        r = self.bus.call("Pause", uid=NOBODY, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Access denied", r.stderr)
        r = self.bus.run("gdbus", "call", "--dest", NAME, "--object-path", PATH, "--method",
                         f"{IFACE}.Pause", uid=NOBODY, check=False)
        self.assertNotEqual(r.returncode, 0)
        # The daemon's own check answered (the bus lets everything through).
        self.assertIn("org.freedesktop.DBus.Error.AccessDenied", r.stderr)
        self.assertIn(f"uid {NOBODY} is not allowed", r.stderr)
        r = self.bus.set_osprey(True, uid=NOBODY, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Access denied", r.stderr)
        self.assertFalse(self.bus.get("OspreyCompatible"))
        frames = daemon.metric("atkafka_frames_received_total")
        wait_until(lambda: daemon.metric("atkafka_frames_received_total") > frames, 10,
                   "frames still flowing after the refused Pause")
        self.assertEqual(self.bus.get("State"), "connected")

        # Root: Pause works.
        self.bus.call("Pause")
        snapshot = self.bus.get_all()
        self.assertTrue(snapshot["Paused"])
        self.assertEqual(snapshot["State"], "stopped")
        # The frames already handed over drain; then nothing more arrives for 1.5 s.
        wait_until(lambda: self.bus.get_all()["KafkaInFlight"] == 0, 10, "in-flight drained")
        frames = daemon.metric("atkafka_frames_received_total")
        held_until = time.monotonic() + 1.5
        while time.monotonic() < held_until:
            self.assertEqual(daemon.metric("atkafka_frames_received_total"), frames,
                             "frames received while paused")
            time.sleep(0.1)
        paused = self.bus.get_all()
        self.assertTrue(paused["Paused"])
        self.assertEqual(paused["State"], "stopped")
        self.assertEqual(paused["EventsProduced"], paused["EventsHandled"])
        # Nobody may not resume it either.
        r = self.bus.call("Resume", uid=NOBODY, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertTrue(self.bus.get("Paused"))

        self.bus.call("Resume")
        wait_until(lambda: self.bus.get("State") == "connected", 15, "reconnected")
        self.assertFalse(self.bus.get("Paused"))
        wait_until(lambda: daemon.metric("atkafka_frames_received_total") > frames, 15,
                   "frames after Resume")
        self.finish(daemon, topic, replay)


# ---- sd_notify -------------------------------------------------------------------------

SO_TIMESTAMPNS = 35  # <asm-generic/socket.h>; the socket module does not name it


class NotifySocket:
    """The datagram socket systemd would listen on; keeps every line with its sender pid and
    the time the kernel queued it (SO_TIMESTAMPNS: when at-kafka sent it, not when this test
    got round to reading it)."""

    def __init__(self):
        self.dir = temp_dir("atk-notify-")
        self.path = os.path.join(self.dir, "notify")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.setblocking(False)
        self.lines = []  # (time sent, sender pid, line)

    def drain(self):
        while True:
            try:
                data, ancdata, _, _ = self.sock.recvmsg(
                    4096, socket.CMSG_SPACE(12) + socket.CMSG_SPACE(16))
            except BlockingIOError:
                return self.lines
            pid = sent = None
            for level, kind, payload in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                    pid = struct.unpack("iII", payload[:12])[0]
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", payload[:16])
                    sent = sec + nsec / 1e9
            assert sent is not None, "no SO_TIMESTAMPNS on a notify message"
            self.lines += [(sent, pid, line) for line in data.decode().split("\n") if line]

    def matching(self, pattern):
        return [(t, line) for t, _, line in self.drain() if re.fullmatch(pattern, line)]

    def close(self):
        self.sock.close()


class SystemdNotify(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker(timeout=90)

    def test_notify_lifecycle(self):
        notify = NotifySocket()
        self.addCleanup(notify.close)
        # The relay's address exists before the relay: a gate that drops connections
        # until the replay behind it is started.
        gate = Gate()
        self.addCleanup(gate.close)
        topic = kafkautil.unique_topic("notify")
        # sd_watchdog_enabled() wants WATCHDOG_PID to be at-kafka's own pid: the shell
        # sets it to its pid, then execs at-kafka in its place.
        wrapper = ["sh", "-c", 'WATCHDOG_PID=$$ exec "$0" "$@"']
        daemon = Daemon(gate.url, topic, bus="none", prefix=wrapper,
                        env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "1000000"})
        self.addCleanup(daemon.kill)

        # No relay yet: alive and pinging the watchdog, but not ready.
        wait_until(lambda: len(notify.matching("WATCHDOG=1")) >= 3, 30, "watchdog pings")
        wait_until(lambda: gate.refused >= 1, 30, "a connection attempt to the relay")
        self.assertTrue(daemon.alive(), daemon.output())
        self.assertEqual(notify.matching("READY=1"), [], "READY=1 before any delivery")
        self.assertEqual(daemon.metric("atkafka_produced_events", status="ok"), 0)
        self.assertEqual(notify.matching("READY=1"), [], "READY=1 before any delivery")
        self.assertTrue(notify.matching(r"STATUS=Starting.*"))

        replay = Replay(vector(CAPTURE), "--loop", "0", "--rate", str(RATE))
        self.addCleanup(replay.stop)
        gate.open(replay.url)
        wait_until(lambda: notify.matching("READY=1"), 60, "READY=1")
        self.assertGreaterEqual(daemon.metric("atkafka_produced_events", status="ok"), 1)
        ready_at = notify.matching("READY=1")[0][0]
        # A periodic STATUS= with a cursor after READY (the timer runs every 5 s).
        status = r"STATUS=connected, cursor (\d+), \d+ events/s"
        wait_until(lambda: [s for s in notify.matching(status) if s[0] > ready_at + 0.5], 30,
                   "a periodic STATUS= with the cursor")
        cursors = [int(re.fullmatch(status, line).group(1)) for _, line in notify.matching(status)]
        self.assertEqual(cursors, sorted(cursors))
        self.assertGreaterEqual(cursors[0], ORACLE.first_seq)
        self.assertLessEqual(cursors[-1], daemon.metric("atkafka_last_seq"))

        self.assertEqual(daemon.stop(), 0, daemon.output())
        lines = notify.drain()
        self.assertEqual(len(notify.matching("READY=1")), 1)
        stopping = notify.matching("STOPPING=1")
        self.assertEqual(len(stopping), 1, [line for _, _, line in lines])
        # Watchdog, by the times the pings were sent: from the start to STOPPING=1 a ping
        # at half of WATCHDOG_USEC, never a gap as long as WATCHDOG_USEC (systemd would kill
        # the service), never two within a quarter of it (a timer does not fire early);
        # none after STOPPING=1.
        pings = [t for t, line in notify.matching("WATCHDOG=1")]
        gaps = [b - a for a, b in zip(pings, pings[1:])]
        self.assertLess(max(gaps), 1.0, gaps)
        self.assertGreaterEqual(min(gaps), 0.25, gaps)
        self.assertLess(stopping[0][0] - pings[-1], 1.0)
        self.assertTrue(all(t <= stopping[0][0] for t in pings))
        # Everything came from at-kafka itself (NotifyAccess=main).
        self.assertEqual({pid for _, pid, _ in lines}, {daemon.proc.pid})


if __name__ == "__main__":
    unittest.main(verbosity=2)
