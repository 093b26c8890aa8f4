#!/usr/bin/env python3
"""Several instances, one leader (--group-id): three real at-kafka processes on one topic and
group, the real broker and the paced replay relay (--live-tip: a client without a cursor
starts at the newest frame sent, as at a live relay). The first leader is frozen and killed
before its first own cursor: the group's cursor is only its anchor then, and nothing may be
lost from the first event it read. Then the leader is killed with SIGKILL at random moments
(its supervisor, here the test, starts it again), frozen with SIGSTOP (a zombie that wakes up
after a standby took over), cut off from the broker while it keeps running (iptables drops
what processes of its group id send to the broker's port, then lets it through again) and
asked to Resign over D-Bus; every time a standby must take over. Kafka's contents are checked
value for value against the capture's oracle: nothing lost in either mode; with transactions
(read_committed) nothing twice; at-least-once duplicates bounded by the cursor's save
interval per failover, none after a Resign. Duplicates are attributed to the failover that
ended the term of their earlier copy's producer (producer id and epoch of the batches), not
to whatever failover comes before their seq. Prints the failover times (the old leader's last
message → the new leader's first, in the broker's append times: the topic has
LogAppendTime), the time during which two producers had records appended (with
transactions no record of a deposed leader may be visible after the new leader's first) and
what an idle standby costs. Beside them, a rolling restart: three transactional instances
each resign once, in turn, and come back; nothing is lost or produced twice. Both modes and
the rolling restart run at once to fit CI's time."""
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
import sys
import threading
import time
import unittest
import urllib.request

import kafkautil
import kafkawire
from atkharness import Daemon, Oracle, Replay, compare_with_oracle, temp_dir, vector, wait_until
from atkoracle import message_ident
from test_dbus_live import PrivateBus

CAPTURE = vector("relay-capture/frames.bin")
ORACLE = Oracle("relay-capture/frames.bin")
FIRST_SEQ, SPAN = ORACLE.first_seq, ORACLE.span
SEED = int(os.environ.get("ATK_FAILOVER_SEED", random.randrange(1 << 30)))
print(f"test_failover: random seed {SEED} (set ATK_FAILOVER_SEED to repeat)", flush=True)

RATE = 100              # frames/s while a leader is connected
LOOPS = 10              # passes over the capture: ~15 s of stream, outlasting the failovers
KILLS = 3
ROLLING_LOOPS = 5       # the rolling restart's stream: ~7.5 s
SAVE_INTERVAL_S = 1.0   # 10x --cursor-save-interval's default (0.1 s): kill moments and a loose duplicates bound
SESSION_TIMEOUT_S = 6.0  # the group's default session timeout (README)
TICK = os.sysconf("SC_CLK_TCK")
# Freezes process argv[2] as soon as its log (argv[1]) says it anchored the group's cursor.
FREEZE_AT_ANCHOR = """
import os, signal, sys, time
while b"Anchored the group's cursor" not in open(sys.argv[1], "rb").read():
    time.sleep(0.002)
os.kill(int(sys.argv[2]), signal.SIGSTOP)
print(time.time(), flush=True)
"""
FIRST_SAVE_INTERVAL_MS = 600000  # the first leader: no cursor of its own before it is killed
STORY = re.compile(r"(?i)lead|elected|resum|commit|abort|fenc|fatal|rewind|again|stopped|group|"
                   r"transaction|cursor|connected|anchor")
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


def kafka_cursors(topic, committed=True):
    """The cursor records in <topic>.cursor. committed: as read_committed sees them, which
    waits for the end of any open transaction on the partition (a reader that must not wait
    while a leader commits every few hundred ms passes False)."""
    isolation = "read_committed" if committed else "read_uncommitted"
    proc = subprocess.run(["kcat", "-C", "-b", kafkautil.bootstrap(), "-t", topic + ".cursor",
                           "-X", f"isolation.level={isolation}", "-o", "beginning", "-e", "-q",
                           "-f", "%s\\n"], capture_output=True, text=True, timeout=60)
    return [json.loads(line)["seq"] for line in proc.stdout.split("\n") if line.strip()]


def kafka_cursor(topic, committed=True):
    """The last cursor record in <topic>.cursor (None: none)."""
    seqs = kafka_cursors(topic, committed)
    return seqs[-1] if seqs else None


def producers(topic, messages, transactional):
    """Who appended each message, by (partition, offset), from the batches: the producer
    id (an idempotent producer's epoch moves when it drops messages), with transactions the
    producer id and epoch (one id for the group; each instance's init bumps the epoch)."""
    who, partitions = {}, {m["partition"] for m in messages}
    for p in partitions:
        for b in kafkawire.batches(topic, p):
            if not b["control"]:
                for offset in range(b["base"], b["last"] + 1):
                    who[(p, offset)] = (b["pid"], b["epoch"] if transactional else 0)
    return [who[(m["partition"], m["offset"])] for m in messages]


class Firewall:
    """Drops what processes of one group id send to the broker's port (iptables' owner
    match on the socket's group): their broker connections stay open and go silent, as
    with a network partition; everything else (the relay, metrics, D-Bus) still works."""

    def __init__(self, test, gid):
        self.port = port = kafkautil.bootstrap().split(",")[0].rsplit(":", 1)[1]
        self.rule = ["OUTPUT", "-o", "lo", "-p", "tcp", "--dport", port, "-m", "owner",
                     "--gid-owner", str(gid), "-j", "DROP"]
        self.on = False
        test.addCleanup(self.restore)

    def cut(self):
        subprocess.run(["iptables", "-I", *self.rule], check=True, timeout=30)
        self.on = True

    def restore(self):
        if self.on:
            subprocess.run(["iptables", "-D", *self.rule], check=True, timeout=30)
        self.on = False

    def unsent(self, pid):
        """Bytes process pid wrote to its broker connections that TCP has not delivered
        (it retransmits them, with its backoff, once the packets pass again)."""
        out = subprocess.run(["ss", "-tnpH", "state", "connected", f"( dport = :{self.port} )"],
                             capture_output=True, text=True, check=True, timeout=30).stdout
        return sum(int(line.split()[2]) for line in out.split("\n")
                   if f"pid={pid}," in line and len(line.split()) > 2)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


class Member:
    """One slot of the group: its state directory, its own D-Bus (the bus name is one per
    bus) and the at-kafka process running in it now."""

    def __init__(self, test, url, topic, extra, gid, first_extra=()):
        self.test, self.url, self.topic, self.extra = test, url, topic, extra
        self.bus = PrivateBus()
        test.addCleanup(self.bus.stop)
        self.state_dir = temp_dir("atk-failover-")
        self.frozen = False
        self.past = []
        # its own group id: the firewall can cut this member's broker connections alone
        self.gid = gid
        self.firewall = Firewall(test, gid)
        self.start(first_extra)

    def story(self):
        """What each of its processes said about leading, transactions and the cursor."""
        out = []
        for d in self.past + [self.daemon]:
            out.append(f"--- pid {d.proc.pid} (status {d.proc.poll()})")
            out += [line for line in d.output().split("\n") if STORY.search(line)]
        return "\n".join(out)

    def start(self, first_extra=()):
        if hasattr(self, "daemon"):
            self.past.append(self.daemon)
        self.daemon = Daemon(self.url, self.topic, "--group-id", self.topic + "-group",
                             *self.extra, *first_extra, state_dir=self.state_dir, bus="session",
                             env={"DBUS_SESSION_BUS_ADDRESS": self.bus.address},
                             prefix=("setpriv", f"--regid={self.gid}", "--clear-groups"))
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
        """transactional None: the rolling restart."""
        members = []
        try:
            if transactional is None:
                return self.rolling_restart(members)
            return self.run_scenario(transactional, members)
        except AssertionError as e:
            raise AssertionError(f"{e}\n" + "\n".join(f"=== member {i}\n{m.story()}"
                                                      for i, m in enumerate(members))) from None

    def first_leader(self, members, mode, transactional, topic, make):
        """Member 0 alone, with (at-least-once) no cursor saves of its own: once it took its
        first frame it is frozen, members 1 and 2 start, and it is killed while
        frozen: the group holds no cursor of its but (with the fix) the anchor, and the
        relay went on sending to the frozen process meanwhile. Returns when it was frozen
        and the cursors it committed itself (with transactions it may have, once)."""
        first = members[0]
        # A process of its own freezes it the moment it logs its anchor (with transactions
        # its first own commit comes within 0.5 s; this thread shares the interpreter with
        # the other scenarios); the metrics say it took a frame too, with or without one.
        watcher = subprocess.Popen([sys.executable, "-c", FREEZE_AT_ANCHOR,
                                    first.daemon.log_path, str(first.daemon.proc.pid)],
                                   stdout=subprocess.PIPE, text=True)
        self.addCleanup(watcher.kill)
        def reading():
            # (a short timeout: the watcher may freeze it while it answers)
            if watcher.poll() is not None:
                return True
            if "Leading:" not in first.daemon.output():
                return False
            try:
                url = f"http://127.0.0.1:{first.daemon.metrics_port}/metrics"
                with urllib.request.urlopen(url, timeout=0.5) as r:
                    text = r.read().decode()
            except OSError:
                return False
            return re.search(r"^atkafka_frames_received_total [1-9]", text, re.M) is not None
        wait_until(reading, 60, f"{mode}: the first leader's first frame", interval=0.01)
        os.kill(first.daemon.proc.pid, signal.SIGSTOP)
        t0 = time.time()
        watcher.kill()
        froze_at = watcher.communicate()[0].strip()
        t0 = float(froze_at) if froze_at else t0  # the watcher froze it (earlier)
        first.frozen = True
        own = [seq for seq in kafka_cursors(topic, committed=False) if seq >= FIRST_SEQ]
        if transactional:
            say(f"  {mode}: first leader frozen "
                + (f"after its first commit ({own[0]})" if own else "before its first commit"))
        else:
            self.assertEqual(own, [], "the first leader saved a cursor of its own")
        members += [make(i) for i in (1, 2)]
        for m in members[1:]:
            m.daemon.metrics_port  # started (the relay fills the frozen leader's socket)
        first.daemon.kill()
        first.frozen = False
        return t0, own

    def run_scenario(self, transactional, members):
        rng = random.Random(SEED + transactional)
        mode = "exactly-once" if transactional else "at-least-once"
        topic = kafkautil.unique_topic("failover-txn" if transactional else "failover")
        # The broker's time of append, not the producer's: a zombie's late records count
        # when they land.
        kafkawire.create_topic(topic, 8, {"message.timestamp.type": "LogAppendTime"})
        # --live-tip: a client without a cursor starts at the newest frame sent, as at a
        # real relay (what a group without a cursor would lose shows)
        replay = Replay(CAPTURE, "--loop", str(LOOPS), "--rate", str(RATE), "--live-tip")
        self.addCleanup(replay.stop)
        extra = ("--transactional-id", topic + "-id") if transactional else ()
        gid = 40000 + (os.getpid() % 2000) * 12 + 4 * transactional  # 3 each, the rolling 8

        def make(i, first_extra=()):
            return Member(self, replay.url, topic, extra, gid + i, first_extra)
        members.append(make(0, () if transactional
                            else ("--cursor-save-interval", str(FIRST_SAVE_INTERVAL_MS))))
        last_seq = FIRST_SEQ + LOOPS * SPAN - 1
        actions = ["kill"] * KILLS + ["stop", "cut", "resign"]
        rng.shuffle(actions)
        actions = ["first"] + actions
        events = []        # (action, t0 in ms)
        resumes = []       # (action, the seq the next leader resumed after)
        cut_stops = []     # seconds from a cut to the cut-off leader standing by
        standby_cpu = [0.0, 0.0]  # CPU seconds, wall seconds of members standing by throughout

        t0, own = self.first_leader(members, mode, transactional, topic, make)
        old = members[0]
        for action in actions:
            if action != "first":
                base = leader.daemon.metric("atkafka_produced_events", status="ok")
                wait_until(lambda: leader.daemon.metric("atkafka_produced_events", status="ok")
                           > base, 30, f"{mode}: the leader producing")
                standbys = [(m, m.daemon.proc.pid, cpu_seconds(m.daemon.proc.pid), time.time())
                            for m in members if m is not leader and m.standing_by()]
                time.sleep(rng.uniform(0.0, 1.2 * SAVE_INTERVAL_S))
                said_before = len(leader.daemon.output())
                t0 = time.time()
            else:
                standbys = []
            led_before = {id(m): len(RESUMED.findall(m.daemon.output())) for m in members}
            if action == "kill":
                leader.daemon.kill()
            elif action == "stop":
                os.kill(leader.daemon.proc.pid, signal.SIGSTOP)
                leader.frozen = True
            elif action == "cut":
                leader.firewall.cut()
            elif action == "resign":
                leader.bus.call("Resign")
            if action != "first":
                old = leader
            leader = self.wait_for_leader(members, old=old)
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
            if action == "first":
                old.start()
                # the seq before the first it took (its anchor), or where it committed to
                self.assertIn(resumes[-1][1], own or [FIRST_SEQ - 1], "the resume point after "
                              "the first leader")
                leader = self.wait_for_leader(members)
            elif action == "stop":
                old.thaw()
                if transactional:
                    # its producer is fenced: it stops (status 1) and is started again
                    wait_until(lambda: not old.daemon.alive(), 30, "the zombie to stop")
                    self.assertEqual(old.daemon.proc.returncode, 1, old.daemon.output()[-3000:])
                    old.start()
                else:
                    wait_until(old.standing_by, 30, "the zombie to stand by")
                    self.assertRegex(old.daemon.output(), r"Not the leader any more")
            elif action == "cut":
                # Still cut off, it gave the leadership up on its own (its group session
                # timed out) and stopped reading the relay; then its network comes back.
                deposed = wait_until(lambda: "Not the leader any more" in
                                     old.daemon.output()[said_before:] and time.time(),
                                     30, "the cut-off leader to stand down")
                cut_stops.append(deposed - t0)
                if not transactional:
                    wait_until(old.standing_by, 30, "the cut-off leader to stand by")
                old.firewall.restore()
                if not transactional:
                    # what it sent before the cut lands now (the duplicates count it)
                    wait_until(lambda: old.firewall.unsent(old.daemon.proc.pid) == 0, 30,
                               "the cut-off leader's late bytes to reach the broker")
                if transactional:
                    wait_until(lambda: not old.daemon.alive(), 30, "the cut-off leader to stop")
                    self.assertEqual(old.daemon.proc.returncode, 1, old.daemon.output()[-3000:])
                    old.start()
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
                         sum(1 for a in actions if a in ("stop", "cut")
                             or a == "resign" and not transactional))
        self.assertEqual(sum(1 for m in members if m.leads() == 1), 1)
        for m in members:
            self.assertEqual(m.daemon.stop(), 0, m.daemon.output()[-3000:])
        messages = consume(topic, read_committed=transactional)
        want = ORACLE.messages(LOOPS)
        got, _ = compare_with_oracle(messages, want, duplicates=not transactional)
        # Nothing lost from the first event the first leader took, because it anchored the
        # group's cursor before producing (the seq before its first).
        self.assertIn(f"Anchored the group's cursor at seq {FIRST_SEQ - 1} ",
                      members[0].past[0].output())

        # Who appended what: (producer id, epoch) per record; terms of leadership in order.
        produced = consume(topic, read_committed=False) if transactional else messages
        for m, who in zip(produced, producers(topic, produced, transactional)):
            m["who"] = who
        produced.sort(key=lambda m: (m["ts"], m["partition"], m["offset"]))
        stamps = [m["ts"] for m in produced]
        # (producer, its first record). The new leader wrote most of what came after an
        # action (late records of a deposed one, landing when its network is back or from
        # a frozen one's sockets, are a few), and is not the old. The first leader may have
        # appended nothing, or a few records only as it was frozen.
        def after(k):
            end = events[k + 1][1] if k + 1 < len(events) else stamps[-1] + 1
            return produced[bisect.bisect_left(stamps, events[k][1]):
                            bisect.bisect_left(stamps, end)]
        second = collections.Counter(m["who"] for m in after(0)).most_common(1)[0][0]
        terms = [(produced[0]["who"], produced[0]["ts"]) if produced[0]["who"] != second
                 else (None, 0)]
        for k, (action, t0) in enumerate(events):
            counts = collections.Counter(m["who"] for m in after(k) if m["who"] != terms[-1][0])
            self.assertTrue(counts, f"{action}: no record of a new leader")
            new_who = counts.most_common(1)[0][0]
            terms.append((new_who, next(m["ts"] for m in after(k) if m["who"] == new_who)))

        def term_of(m):
            """The term a record belongs to: its producer's latest that began before it."""
            mine = [j for j, (who, start) in enumerate(terms) if who == m["who"]]
            later = [j for j in mine if terms[j][1] <= m["ts"]]
            if not mine:
                raise AssertionError(f"a record of a producer that never led: {m['who']} at "
                                     f"{m['ts']}; terms {terms}, actions {events}")
            return (later or mine)[-1]

        # Failover time: the old leader's last record → the new leader's first, the longest
        # silence in Kafka's append times from just before the action on (the stream is
        # paced at RATE frames/s: it is never silent otherwise). Aborted transactions count
        # here: they are what a leader produced, even if a later kill undid them.
        # Two producers: from the new leader's first record to the old one's last.
        times, overlaps = [], []
        ends = [t0 for _, t0 in events[1:]] + [t0 + 30000 for _, t0 in events[-1:]]
        visible = {(m["partition"], m["offset"]) for m in messages}
        for k, ((action, t0), end) in enumerate(zip(events, ends)):
            window = [t for t in stamps if t0 - 2000 <= t <= min(end, t0 + 30000)]
            self.assertGreater(len(window), 1, f"{action} at {t0}: no records around it")
            (old_who, _), (new_who, new_start) = terms[k], terms[k + 1]
            if old_who is None:  # a first leader that appended nothing: from its freeze on
                times.append((action, (new_start - t0) / 1000))
            else:
                times.append((action, max(b - a for a, b in zip(window, window[1:])) / 1000))
            olds = [m for m in produced if m["who"] == old_who and term_of(m) == k]
            overlaps.append((action, max(0, olds[-1]["ts"] - new_start) / 1000 if olds else 0))
            if transactional:
                # read_committed shows nothing of the deposed leader after the new one's first
                # (the new leader's own records may all be aborted: a later one's count)
                new_first = min((m["ts"] for m in produced if term_of(m) > k
                                 and (m["partition"], m["offset"]) in visible), default=None)
                late = [m for m in olds if new_first is not None and m["ts"] >= new_first
                        and (m["partition"], m["offset"]) in visible]
                self.assertEqual(late, [], f"{action}: the deposed leader's records committed "
                                 "after the new leader's first")
        say(f"  {mode}: failover " + ", ".join(f"{a} {s:.1f} s" for a, s in times))
        say(f"  {mode}: two producers appending (" + ("all records, aborted ones too; "
                                                     "read_committed: none" if transactional
                                                     else "at-least-once") + ") "
            + ", ".join(f"{a} {s:.2f} s" for a, s in overlaps))
        say(f"  {mode}: a cut-off leader stood down {', '.join(f'{s:.1f}' for s in cut_stops)} s "
            "after the cut")
        for seconds in cut_stops:
            # the session timeout, then a rebalance that may wait for a member's rejoin
            self.assertLess(seconds, 3 * SESSION_TIMEOUT_S, "the cut-off leader stood down late")
        if standby_cpu[1] > 0:
            say(f"  {mode}: idle standby CPU {100 * standby_cpu[0] / standby_cpu[1]:.2f}% of a "
                f"core over {standby_cpu[1]:.0f} s")
            self.assertLess(standby_cpu[0] / standby_cpu[1], 0.05)
        for action, seconds in times:
            # the default session timeout, a rebalance, the cursor and the relay's handshake
            self.assertLess(seconds, 3 * SESSION_TIMEOUT_S, f"{action}: failover {seconds} s")
        dups = sum(n - 1 for n in got.values())
        if transactional:
            self.assertEqual(len(messages), len(want))
            say(f"  {mode}: {len(messages)} messages, 0 lost, 0 duplicates")
            return times
        # At-least-once: a duplicate belongs to the failover that ended the term of its
        # earlier copy's producer (a zombie's late copy is its own failover's, whatever seq
        # it has; what the first leader took is produced again over the next terms): at most
        # about a save interval's worth per kill, freeze or cut, none after Resign; after
        # the first leader at most what it had taken.
        copies = collections.defaultdict(list)
        for m in produced:
            copies[message_ident(m)[1]].append(m)
        per_action, examples = collections.Counter(), collections.defaultdict(list)
        for ident, ms in copies.items():
            for a, b in zip(ms, ms[1:]):
                # the copy of the earlier term was not covered by the group's cursor when
                # that term ended: the action that ended it made the duplicate
                k = min(term_of(a), term_of(b))
                self.assertLess(k, len(events), f"a duplicate without a failover: {ident[:200]}")
                per_action[k] += 1
                examples[k].append(" / ".join(f"seq {m['headers'].get('seq')} by {m['who']} "
                                              f"(term {term_of(m)}) at {m['ts']}" for m in (a, b)))
        self.assertEqual(sum(per_action.values()), dups)
        bound = math.ceil(2 * SAVE_INTERVAL_S * RATE * len(ORACLE.messages())
                          / ORACLE.frame_count())
        first_bound = sum(1 for m in produced if term_of(m) == 0)  # what it appended
        say(f"  {mode}: {len(messages)} messages, 0 lost, {dups} duplicates: "
            + ", ".join(f"{events[k][0]} {n}" for k, n in sorted(per_action.items())))
        for k, n in per_action.items():
            action = events[k][0]
            limit = {"resign": 0, "first": first_bound}.get(action, bound)
            self.assertLessEqual(n, limit, f"duplicates after {action} #{k}: e.g. "
                                 + "; ".join(examples[k][:4]) + f"\nterms {terms}\nactions {events}")
        return times

    def rolling_restart(self, members):
        """Transactions: each of three instances resigns once, in turn, and is started again
        (an upgrade): a resigned instance comes back only after the next leader was elected
        without it, so the leadership visits all three. Nothing lost, nothing twice."""
        mode = "rolling restart"
        topic = kafkautil.unique_topic("failover-rolling")
        replay = Replay(CAPTURE, "--loop", str(ROLLING_LOOPS), "--rate", str(RATE),
                        "--live-tip")
        self.addCleanup(replay.stop)
        extra = ("--transactional-id", topic + "-id")
        gid = 40000 + (os.getpid() % 2000) * 12 + 8
        members += [Member(self, replay.url, topic, extra, gid) for _ in range(3)]
        leader = self.wait_for_leader(members, timeout=60)
        resigned, waiting, taken = [], [], []
        while len(resigned) < 3:
            self.assertNotIn(leader, resigned, "a leader that had resigned already")
            base = leader.daemon.metric("atkafka_produced_events", status="ok")
            wait_until(lambda: leader.daemon.metric("atkafka_produced_events", status="ok")
                       > base, 30, f"{mode}: the leader producing")
            led_before = {id(m): len(RESUMED.findall(m.daemon.output())) for m in members}
            t0 = time.time()
            leader.bus.call("Resign")
            old, leader = leader, self.wait_for_leader(members, old=leader)
            taken.append(time.time() - t0)
            resigned.append(old)
            wait_until(lambda: not old.daemon.alive(), 30, "the resigned leader to stop")
            self.assertEqual(old.daemon.proc.returncode, 0, old.daemon.output()[-3000:])
            handed_over = int(re.findall(r"Stopped at cursor (\d+)", old.daemon.output())[-1])
            found = wait_until(lambda: RESUMED.findall(leader.daemon.output())[
                led_before.get(id(leader), 0):], 30, "the resume point")
            self.assertEqual(int(found[0][0] or found[0][1]), handed_over,
                             "the resume point after Resign")
            # the one resigned before comes back now (the one just resigned, after the
            # next election): the leadership goes to an instance that has not led yet
            for m in waiting:
                m.start()
            waiting = [old] if len(resigned) < 3 else []
            if len(resigned) == 3:
                old.start()
        last_seq = FIRST_SEQ + ROLLING_LOOPS * SPAN - 1
        wait_until(lambda: kafka_cursor(topic) == last_seq, 90, f"{mode}: the last seq's cursor")
        for m in members:
            self.assertEqual(m.daemon.stop(), 0, m.daemon.output()[-3000:])
        messages = consume(topic, read_committed=True)
        want = ORACLE.messages(ROLLING_LOOPS)
        compare_with_oracle(messages, want, duplicates=False)
        self.assertEqual(len(messages), len(want))
        say(f"  {mode}: 3 instances resigned in turn, a standby leading "
            + ", ".join(f"{t:.1f}" for t in taken) + f" s later; {len(messages)} messages, "
            "0 lost, 0 duplicates (read_committed)")

    def test_failover_both_modes(self):
        started = time.time()
        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            runs = [pool.submit(self.scenario, t) for t in (False, True)]
            runs.append(pool.submit(self.scenario, None))
            errors = [run.exception() for run in runs]
        say(f"  both modes and the rolling restart in {time.time() - started:.0f} s")
        for error in errors:
            if error is not None:
                raise error


if __name__ == "__main__":
    unittest.main(verbosity=2)
