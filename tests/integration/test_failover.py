#!/usr/bin/env python3
"""Several instances, one leader (--group-id): three real at-kafka processes on one topic and
group, the real broker and the paced replay relay. The leader is killed with SIGKILL at random
moments (its supervisor, here the test, starts it again), frozen with SIGSTOP (a zombie that
wakes up after a standby took over) and asked to Resign over D-Bus; every time a standby must
take over. Kafka's contents are checked value for value against the capture's oracle: nothing
lost in either mode; with transactions (read_committed) nothing twice; at-least-once
duplicates bounded by the cursor's save interval per failover, none after a Resign. Prints the
failover times (the old leader's last message → the new leader's first, from Kafka's record
timestamps) and what an idle standby costs. Both modes run at once to fit CI's time."""
import bisect
import collections
import concurrent.futures
import json
import math
import os
import random
import re
import signal
import subprocess
import threading
import time
import unittest

import kafkautil
from atkharness import Daemon, Oracle, Replay, compare_with_oracle, temp_dir, vector, wait_until
from test_dbus_live import PrivateBus

CAPTURE = vector("relay-capture/frames.bin")
ORACLE = Oracle("relay-capture/frames.bin")
FIRST_SEQ, SPAN = ORACLE.first_seq, ORACLE.span
SEED = int(os.environ.get("ATK_FAILOVER_SEED", random.randrange(1 << 30)))
print(f"test_failover: random seed {SEED} (set ATK_FAILOVER_SEED to repeat)", flush=True)

RATE = 100              # frames/s while a leader is connected
LOOPS = 10              # passes over the capture: ~15 s of stream, outlasting the failovers
KILLS = 3
SAVE_INTERVAL_S = 1.0   # 10x --cursor-save-interval's default (0.1 s): kill moments and a loose duplicates bound
SESSION_TIMEOUT_S = 6.0  # the group's default session timeout (README)
TICK = os.sysconf("SC_CLK_TCK")
STORY = re.compile(r"(?i)lead|elected|resum|commit|abort|fenc|fatal|rewind|again|stopped|group|"
                   r"transaction|cursor|connected")
# What a new leader logs once it knows where it resumes (at-least-once; transactions).
RESUMED = re.compile(r"Leading: (?:resuming after group seq (\d+)|no cursor)"
                     r"|Resuming after committed seq (\d+)|No committed cursor")
LOCK = threading.Lock()


def say(text):
    with LOCK:
        print(text, flush=True)


def consume(topic, read_committed):
    """Every message of topic with its record timestamp (ms)."""
    proc = subprocess.run(["kcat", "-C", "-b", kafkautil.bootstrap(), "-t", topic, "-X",
                           "isolation.level=" + ("read_committed" if read_committed
                                                 else "read_uncommitted"),
                           "-o", "beginning", "-e", "-J", "-q"],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"kcat failed: {proc.stderr}")
    out = []
    for line in proc.stdout.split("\n"):
        if line.strip():
            m = json.loads(line)
            flat = m.get("headers") or []
            out.append({"partition": m["partition"], "offset": m["offset"], "key": m.get("key"),
                        "value": m.get("payload"), "ts": m["ts"],
                        "headers": {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)}})
    return out


def kafka_cursor(topic, committed=True):
    """The last cursor record in <topic>.cursor. committed: as read_committed sees it, which
    waits for the end of any open transaction on the partition (a reader that must not wait
    while a leader commits every few hundred ms passes False)."""
    isolation = "read_committed" if committed else "read_uncommitted"
    proc = subprocess.run(["kcat", "-C", "-b", kafkautil.bootstrap(), "-t", topic + ".cursor",
                           "-X", f"isolation.level={isolation}", "-o", "beginning", "-e", "-q",
                           "-f", "%s\\n"], capture_output=True, text=True, timeout=60)
    seqs = [json.loads(line)["seq"] for line in proc.stdout.split("\n") if line.strip()]
    return seqs[-1] if seqs else None


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Member:
    """One slot of the group: its state directory, its own D-Bus (the bus name is one per
    bus) and the at-kafka process running in it now."""

    def __init__(self, test, url, topic, extra):
        self.test, self.url, self.topic, self.extra = test, url, topic, extra
        self.bus = PrivateBus()
        test.addCleanup(self.bus.stop)
        self.state_dir = temp_dir("atk-failover-")
        self.frozen = False
        self.past = []
        self.start()

    def story(self):
        """What each of its processes said about leading, transactions and the cursor."""
        out = []
        for d in self.past + [self.daemon]:
            out.append(f"--- pid {d.proc.pid} (status {d.proc.poll()})")
            out += [line for line in d.output().split("\n") if STORY.search(line)]
        return "\n".join(out)

    def start(self):
        if hasattr(self, "daemon"):
            self.past.append(self.daemon)
        self.daemon = Daemon(self.url, self.topic, "--group-id", self.topic + "-group",
                             *self.extra, state_dir=self.state_dir, bus="session",
                             env={"DBUS_SESSION_BUS_ADDRESS": self.bus.address})
        self.test.addCleanup(self.daemon.kill)
        self.test.addCleanup(self.thaw)

    def thaw(self):
        if self.frozen and self.daemon.alive():
            os.kill(self.daemon.proc.pid, signal.SIGCONT)
        self.frozen = False

    def leads(self):
        """1/0 as its metrics say; None while it is dead, frozen or not serving yet."""
        if self.frozen or not self.daemon.alive():
            return None
        if not re.search(r"Serving /metrics", self.daemon.output()):
            return None
        try:
            return self.daemon.sample("atkafka_leader")
        except (AssertionError, OSError):
            return None  # exiting (a resigned or fenced instance); else the wait times out

    def standing_by(self):
        return (self.leads() == 0
                and self.daemon.sample("atkafka_relay_state", state="standby") == 1)


class Failover(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker(timeout=90)

    def wait_for_leader(self, members, old=None, timeout=30):
        """The one member that leads (not old); every other live one must be standing by."""
        def one():
            leads = [m for m in members if m.leads() == 1]
            if len(leads) == 1 and leads[0] is not old:
                return leads[0]
            return None
        leader = wait_until(one, timeout, "a new leader" if old else "a leader")
        return leader

    def scenario(self, transactional):
        members = []
        try:
            return self.run_scenario(transactional, members)
        except AssertionError as e:
            raise AssertionError(f"{e}\n" + "\n".join(f"=== member {i}\n{m.story()}"
                                                      for i, m in enumerate(members))) from None

    def run_scenario(self, transactional, members):
        rng = random.Random(SEED + transactional)
        mode = "exactly-once" if transactional else "at-least-once"
        topic = kafkautil.unique_topic("failover-txn" if transactional else "failover")
        replay = Replay(CAPTURE, "--loop", str(LOOPS), "--rate", str(RATE))
        self.addCleanup(replay.stop)
        extra = ("--transactional-id", topic + "-id") if transactional else ()
        members += [Member(self, replay.url, topic, extra) for _ in range(3)]
        last_seq = FIRST_SEQ + LOOPS * SPAN - 1
        actions = ["kill"] * KILLS + ["stop", "resign"]
        rng.shuffle(actions)
        events = []        # (action, t0 in ms)
        resumes = []       # (action, the seq the next leader resumed after)
        standby_cpu = [0.0, 0.0]  # CPU seconds, wall seconds of members standing by throughout

        leader = self.wait_for_leader(members, timeout=60)
        standby = next(m for m in members if m is not leader)
        wait_until(standby.standing_by, 30, "a standby")
        self.assertEqual(standby.bus.get("State"), "standby")
        refused = standby.bus.call("Resign", check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("Not the leader", refused.stderr)
        for action in actions:
            base = leader.daemon.metric("atkafka_produced_events", status="ok")
            wait_until(lambda: leader.daemon.metric("atkafka_produced_events", status="ok")
                       > base, 30, f"{mode}: the leader producing")
            standbys = [(m, m.daemon.proc.pid, cpu_seconds(m.daemon.proc.pid), time.time())
                        for m in members if m is not leader and m.standing_by()]
            led_before = {id(m): len(RESUMED.findall(m.daemon.output())) for m in members}
            time.sleep(rng.uniform(0.0, 1.2 * SAVE_INTERVAL_S))
            t0 = time.time()
            if action == "kill":
                leader.daemon.kill()
            elif action == "stop":
                os.kill(leader.daemon.proc.pid, signal.SIGSTOP)
                leader.frozen = True
            else:
                leader.bus.call("Resign")
            old, leader = leader, self.wait_for_leader(members, old=leader)
            taken = time.time() - t0
            events.append((action, int(t0 * 1000)))
            for m, pid, cpu, since in standbys:
                if m is not leader and m.daemon.proc.pid == pid and m.daemon.alive():
                    standby_cpu[0] += cpu_seconds(pid) - cpu
                    standby_cpu[1] += time.time() - since
            # this leadership's resume point (a member may have led before)
            found = wait_until(lambda: RESUMED.findall(leader.daemon.output())[
                led_before.get(id(leader), 0):], 30, "the resume point")
            resumes.append((action, int(found[0][0] or found[0][1] or FIRST_SEQ - 1)))
            say(f"  {mode}: {action}: a standby leads {taken:.1f} s later, resuming after "
                f"seq {resumes[-1][1]}")

            # The aftermath: a supervisor restarts what exited; a zombie wakes up.
            if action == "stop":
                old.thaw()
                if transactional:
                    # its producer is fenced: it stops (status 1) and is started again
                    wait_until(lambda: not old.daemon.alive(), 30, "the zombie to stop")
                    self.assertEqual(old.daemon.proc.returncode, 1, old.daemon.output()[-3000:])
                    old.start()
                else:
                    wait_until(old.standing_by, 30, "the zombie to stand by")
                    self.assertRegex(old.daemon.output(), r"Not the leader any more")
            elif action == "resign":
                # It stopped reading, Kafka acknowledged (with transactions: committed)
                # everything and its cursor covers it: the next leader resumes exactly there.
                if transactional:
                    wait_until(lambda: not old.daemon.alive(), 30, "the resigned leader to stop")
                    self.assertEqual(old.daemon.proc.returncode, 0, old.daemon.output()[-3000:])
                    handed_over = int(re.findall(r"Stopped at cursor (\d+)",
                                                 old.daemon.output())[-1])
                    old.start()
                else:
                    wait_until(old.standing_by, 30, "the resigned leader to stand by")
                    handed_over = old.daemon.metric("atkafka_cursor_seq")
                self.assertEqual(resumes[-1][1], handed_over, "the resume point after Resign")
            else:
                old.start()

        wait_until(lambda: kafka_cursor(topic) == last_seq, 90, f"{mode}: the last seq's cursor")
        # One election per failover and none besides: no instance lost the leadership but
        # the ones the test acted on.
        said = "\n".join(d.output() for m in members for d in m.past + [m.daemon])
        self.assertEqual(said.count("Elected leader of the group"), 1 + len(actions))
        self.assertEqual(said.count("Not the leader any more"),  # a transactional Resign exits
                         sum(1 for a in actions if a == "stop" or a == "resign" and not transactional))
        self.assertEqual(sum(1 for m in members if m.leads() == 1), 1)
        for m in members:
            self.assertEqual(m.daemon.stop(), 0, m.daemon.output()[-3000:])
        messages = consume(topic, read_committed=transactional)
        want = ORACLE.messages(LOOPS)
        got, _ = compare_with_oracle(messages, want, duplicates=not transactional)

        # Failover time: the old leader's last record → the new leader's first, the longest
        # silence in Kafka's record timestamps from just before the action on (the stream
        # is paced at RATE frames/s: it is never silent otherwise). Aborted transactions
        # count here: they are what a leader produced, even if a later kill undid them.
        stamps = sorted(m["ts"] for m in (consume(topic, read_committed=False)
                                          if transactional else messages))
        times = []
        ends = [t0 for _, t0 in events[1:]] + [t0 + 30000 for _, t0 in events[-1:]]
        for (action, t0), end in zip(events, ends):
            window = [t for t in stamps if t0 - 2000 <= t <= min(end, t0 + 30000)]
            self.assertGreater(len(window), 1, f"{action} at {t0}: no records around it")
            times.append((action, max(b - a for a, b in zip(window, window[1:])) / 1000))
        dups = sum(n - 1 for n in got.values())
        say(f"  {mode}: {len(messages)} messages, 0 lost, {dups} duplicates; failover "
            + ", ".join(f"{a} {s:.1f} s" for a, s in times))
        if standby_cpu[1] > 0:
            say(f"  {mode}: idle standby CPU {100 * standby_cpu[0] / standby_cpu[1]:.2f}% of a "
                f"core over {standby_cpu[1]:.0f} s")
            self.assertLess(standby_cpu[0] / standby_cpu[1], 0.05)
        for action, seconds in times:
            # the default session timeout, a rebalance, the cursor and the relay's handshake
            self.assertLess(seconds, 3 * SESSION_TIMEOUT_S, f"{action}: failover {seconds} s")
        if transactional:
            self.assertEqual(len(messages), len(want))
            return times
        # At-least-once: a duplicate only comes after a resume point, at most about a save
        # interval's worth per failover (as test_no_loss bounds a crash), none after Resign.
        ident_of = {e.ident: e for e in want}
        points = sorted({seq for _, seq in resumes})
        per_point = collections.Counter()
        for ident, n in got.items():
            if n > 1:
                seq = ident_of[ident].seq
                j = bisect.bisect_left(points, seq) - 1
                self.assertGreaterEqual(j, 0, f"a duplicate before any failover: {ident_of[ident]}")
                per_point[points[j]] += n - 1
        bound = math.ceil(2 * SAVE_INTERVAL_S * RATE * len(ORACLE.messages())
                          / ORACLE.frame_count())
        failovers_from = collections.Counter(seq for action, seq in resumes if action != "resign")
        for seq, dups in per_point.items():
            self.assertLessEqual(dups, bound * failovers_from[seq], f"after seq {seq}")
        return times

    def test_failover_both_modes(self):
        started = time.time()
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            runs = [pool.submit(self.scenario, t) for t in (False, True)]
            errors = [run.exception() for run in runs]
        say(f"  both modes in {time.time() - started:.0f} s")
        for error in errors:
            if error is not None:
                raise error


if __name__ == "__main__":
    unittest.main(verbosity=2)
