#!/usr/bin/env python3
"""README promises that had no test, each checked on the real binary (issue 18, item 9):

- `--transactional-id` cannot be combined with `--plc-host` or `--tap-host` (refused at start);
- the Kafka settings README names (message.timeout.ms=0, idempotence, acks=all, murmur2) are
  the ones librdkafka really runs with (its own dump of the effective configuration);
- `GET /healthz` answers 503 until the topic is usable, then 200;
- an explicit `--cursor` wins over both stores, which are overwritten at the first save;
- `atkafka_metadata_backlog` counts the events waiting for DID lookups;
- SIGTERM while Kafka is down: the flush is bounded (10 s), the cursor saved covers only
  what Kafka acknowledged.

Expectations come from README and the capture's oracle (frames.jsonl), not from the daemon."""
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import kafkautil
from atkharness import (AT_KAFKA, Daemon, Replay, refusing_port, unused_port_pair, vector,
                        wait_until)

CAPTURE = vector("relay-capture/frames.bin")
ORACLE = vector("relay-capture/frames.jsonl")
SOURCE_DIR = os.environ["ATK_SOURCE_DIR"]
KAFKA_LOCAL = os.path.join(SOURCE_DIR, "tools", "kafka-local")


def oracle_frames():
    """[(seq, frame)] of the capture's oracle."""
    with open(ORACLE) as f:
        return [(frame["body"]["seq"], frame) for frame in
                (json.loads(line) for line in f if line.strip())]


def oracle_messages():
    """[(seq, n_messages)] of the capture, from the oracle: a commit gives one message per
    op, any other event one."""
    return [(seq, len(frame["body"]["ops"]) if frame["header"]["t"] == "#commit" else 1)
            for seq, frame in ORACLE_FRAMES]


ORACLE_FRAMES = oracle_frames()
FRAMES = oracle_messages()
FIRST_SEQ = FRAMES[0][0]
LAST_SEQ = FRAMES[-1][0]
TOTAL = sum(n for _, n in FRAMES)


def state_cursor(state_dir):
    try:
        with open(os.path.join(state_dir, "cursor")) as f:
            return int(f.read())
    except FileNotFoundError:
        return None


def kafka_cursors(topic, servers=None):
    """Every cursor record in <topic>.cursor, oldest first: [(key, seq)]."""
    proc = subprocess.run(["kcat", "-C", "-b", servers or kafkautil.bootstrap(), "-t",
                           topic + ".cursor", "-o", "beginning", "-e", "-q", "-J"],
                          capture_output=True, text=True, timeout=60)
    out = []
    for line in proc.stdout.split("\n"):
        if line.strip():
            m = json.loads(line)
            out.append((m.get("key"), json.loads(m["payload"])["seq"]))
    return out


def http_status(port, path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def run_briefly(*args, timeout=30):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ATKAFKA_")}
    return subprocess.run([AT_KAFKA, *args], capture_output=True, text=True, timeout=timeout,
                          env=env)


class Promises(unittest.TestCase):
    # ---- refused at start --------------------------------------------------------------

    def test_transactional_id_refused_with_plc_or_tap(self):
        for flag, value in (("--plc-host", "http://127.0.0.1:1"),
                            ("--tap-host", "ws://127.0.0.1:1")):
            r = run_briefly("--bootstrap-servers", "127.0.0.1:1", "--output-topic", "t",
                            "--bus", "none", "--metrics-listen-address=",
                            "--transactional-id", "txn", flag, value)
            self.assertEqual(r.returncode, 2, r.stderr)
            lines = [line for line in r.stderr.split("\n") if line.strip()]
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn("--transactional-id", lines[0])
            self.assertIn(flag, lines[0])

    # ---- the Kafka settings README promises --------------------------------------------

    def effective_conf(self, *extra):
        """librdkafka's own dump of the producer's configuration (debug=conf): the output
        topic's properties and the client's, as {name: value}."""
        topic = "promises-conf"
        proc = subprocess.Popen([AT_KAFKA, "--bootstrap-servers", "127.0.0.1:1",
                                 "--output-topic", topic, "--bus", "none",
                                 "--metrics-listen-address=", "--cursor", "live", "-X",
                                 "debug=conf", *extra, "-v"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.addCleanup(lambda: proc.poll() is None and (proc.kill(), proc.wait()))
        client, topic_conf, section = {}, {}, None
        deadline = time.monotonic() + 60
        for line in proc.stdout:
            if "Client configuration:" in line:
                section = client
            elif f'Topic "{topic}" configuration' in line:
                section = topic_conf
            elif "configuration" in line and "CONF" in line:
                section = None
            else:
                m = re.search(r"CONF: \[[^\]]*\]:   (\S+) = (.*)$", line)
                if m and section is not None:
                    section[m.group(1)] = m.group(2).strip()
            if topic_conf and section is None or time.monotonic() > deadline:
                break
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        proc.stdout.close()
        return client, topic_conf

    def test_effective_kafka_settings(self):
        client, topic_conf = self.effective_conf()
        self.assertEqual(topic_conf.get("message.timeout.ms"), "0", topic_conf)
        self.assertEqual(topic_conf.get("request.required.acks"), "-1", topic_conf)
        self.assertEqual(topic_conf.get("partitioner"), "murmur2_random", topic_conf)
        self.assertEqual(client.get("enable.idempotence"), "true", client)
        self.assertEqual(topic_conf.get("compression.codec", client.get("compression.codec")),
                         "lz4")
        # the dump is read for real: a user's -X shows up in it
        _, topic_conf = self.effective_conf("-X", "message.timeout.ms=4000")
        self.assertEqual(topic_conf.get("message.timeout.ms"), "4000", topic_conf)

    # ---- /healthz ---------------------------------------------------------------------

    def test_healthz(self):
        kafkautil.wait_for_broker(timeout=90)
        # no broker: /metrics answers, /healthz says 503
        replay = Replay(CAPTURE)
        self.addCleanup(replay.stop)
        topic = kafkautil.unique_topic("promises-healthz")
        dead = Daemon(replay.url, topic, "--cursor", "live",
                      bootstrap=f"127.0.0.1:{refusing_port()}")
        self.addCleanup(dead.kill)
        wait_until(lambda: http_status(dead.metrics_port, "/metrics") == 200, 30, "/metrics")
        self.assertEqual(http_status(dead.metrics_port, "/healthz"), 503)
        dead.kill()
        # a real broker: 200 once the topic exists, and it does exist
        live = Daemon(replay.url, topic, "--cursor", "live")
        self.addCleanup(live.kill)
        wait_until(lambda: http_status(live.metrics_port, "/healthz") == 200, 60, "/healthz 200")
        self.assertIsNotNone(kafkautil.partition_count(topic))
        self.assertEqual(live.stop(), 0)

    # ---- --cursor over both stores ---------------------------------------------------

    def test_explicit_cursor_overrides_both_stores(self):
        kafkautil.wait_for_broker(timeout=90)
        replay = Replay(CAPTURE)
        self.addCleanup(replay.stop)
        topic = kafkautil.unique_topic("promises-cursor")
        state_dir = tempfile.mkdtemp(prefix="atk-promises-")
        self.addCleanup(shutil.rmtree, state_dir, True)

        # A first run fills the topic and both stores.
        first = Daemon(replay.url, topic, "--cursor", str(FIRST_SEQ - 1),
                       "--cursor-save-interval", "100", state_dir=state_dir)
        self.addCleanup(first.kill)
        kafkautil.wait_for_count(topic, TOTAL, timeout=120, exact=True)
        wait_until(lambda: state_cursor(state_dir) == LAST_SEQ, 30, "the first run's cursor")
        self.assertEqual(first.stop(), 0, first.output()[-2000:])
        wait_until(lambda: (topic, LAST_SEQ) in kafka_cursors(topic), 30, "Kafka's cursor")

        # Both stores now claim far more than the relay has.
        planted = LAST_SEQ + 10**9
        with open(os.path.join(state_dir, "cursor"), "w") as f:
            f.write(f"{planted}\n")
        subprocess.run(["kcat", "-P", "-b", kafkautil.bootstrap(), "-t", topic + ".cursor",
                        "-p", "0", "-K", "\t"],
                       input=f'{topic}\t{{"seq":{planted + 5},"updated":"2024-01-01T00:00:00.000Z"}}\n',
                       text=True, check=True, timeout=60)

        # --cursor wins: everything after it is produced again…
        start = FIRST_SEQ + 20
        again = sum(n for seq, n in FRAMES if seq > start)
        second = Daemon(replay.url, topic, "--cursor", str(start), "--cursor-save-interval",
                        "100", state_dir=state_dir)
        self.addCleanup(second.kill)
        kafkautil.wait_for_count(topic, TOTAL + again, timeout=120, exact=True)
        # …and both stores are overwritten at the first save
        wait_until(lambda: state_cursor(state_dir) == LAST_SEQ, 30, "the state file's cursor")
        wait_until(lambda: kafka_cursors(topic)[-1] == (topic, LAST_SEQ), 30, "Kafka's cursor")
        self.assertEqual(second.stop(), 0, second.output()[-2000:])
        seqs = [int(m["headers"]["seq"]) for m in kafkautil.consume_all(topic)
                if m["key"] != "<unknown>"]
        self.assertEqual(sum(1 for s in seqs if s <= start),
                         sum(n for seq, n in FRAMES if seq <= start))

    # ---- atkafka_metadata_backlog ------------------------------------------------------

    def test_metadata_backlog(self):
        kafkautil.wait_for_broker(timeout=90)
        release = threading.Event()

        class Silent(http.server.BaseHTTPRequestHandler):
            """A PLC directory that does not answer (until the test ends)."""

            def do_GET(self):
                release.wait(60)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Silent)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        self.addCleanup(release.set)

        replay = Replay(CAPTURE)
        self.addCleanup(replay.stop)
        topic = kafkautil.unique_topic("promises-backlog")
        daemon = Daemon(replay.url, topic, "--cursor", str(FIRST_SEQ - 1), "--plc-host",
                        f"http://127.0.0.1:{server.server_address[1]}", "--event-metadata")
        self.addCleanup(daemon.kill)
        # every event waits for its account's lookup: the backlog is what is held back
        peak = wait_until(lambda: daemon.sample("atkafka_metadata_backlog"), 60,
                          "a metadata backlog")
        self.assertGreaterEqual(peak, 1)
        self.assertLessEqual(peak, TOTAL)
        self.assertEqual(kafkautil.count(topic), 0)
        # after the 5 s lookup timeout they go on without metadata: nothing lost
        kafkautil.wait_for_count(topic, TOTAL, timeout=120, exact=True)
        wait_until(lambda: daemon.sample("atkafka_metadata_backlog") == 0, 30,
                   "the backlog to drain")
        self.assertGreaterEqual(daemon.metric("atkafka_metadata_events", result="degraded"), 1)
        self.assertEqual(daemon.stop(), 0)

    # ---- SIGTERM while Kafka is down --------------------------------------------------

    def kafka_local(self, env, *args):
        """Runs tools/kafka-local; returns what it said on stderr (it is also passed on)."""
        proc = subprocess.run([KAFKA_LOCAL, *args], env=env, timeout=400,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        print(proc.stderr, end="", file=sys.stderr, flush=True)
        if proc.returncode != 0:
            raise AssertionError(f"kafka-local {' '.join(args)} failed ({proc.returncode}): "
                                 f"{proc.stderr}")
        return proc.stderr

    def loss_report(self, topic, servers, want, saved, acked, delivered, broker_killed,
                    kafka_dir, out):
        """Says which of the three a loss was: the broker's (it was SIGKILLed, and its log
        recovery cut acknowledged records off), the daemon's (the broker stopped cleanly, yet
        records at or below the saved cursor are missing), or the test's (missing seqs
        spread over no particular partition, e.g. an expectation that is off)."""
        proc = subprocess.run(["kcat", "-C", "-b", servers, "-t", topic, "-o", "beginning",
                               "-e", "-J", "-q"], capture_output=True, text=True, timeout=120)
        messages = [json.loads(line) for line in proc.stdout.split("\n") if line.strip()]
        for m in messages:
            m["headers"] = kafkautil._headers(m.get("headers"))
        kcat_said = proc.stderr.strip()[-1500:]
        meta = subprocess.run(["kcat", "-L", "-b", servers, "-t", topic, "-J"],
                              capture_output=True, text=True, timeout=60)
        try:
            leaderless = [p["partition"] for t in json.loads(meta.stdout)["topics"]
                          for p in t["partitions"] if p.get("leader", -1) < 0 or "error" in p]
        except (ValueError, KeyError):
            leaderless = f"(no metadata: {meta.stderr.strip()[-300:]})"
        got = {int(m["headers"]["seq"]) for m in messages if "seq" in m["headers"]}
        lost = sorted(want - got)
        # the partition of a missing seq: where its repo's other events went (one key, one
        # partition), from any loop of the replay
        repo_of = {seq: f["body"].get("repo", f["body"].get("did")) for seq, f in ORACLE_FRAMES}
        span = LAST_SEQ - FIRST_SEQ + 1
        partition_of_key = {m["key"]: m["partition"] for m in messages}
        per_partition = {}
        for seq in lost:
            key = repo_of.get(FIRST_SEQ + (seq - FIRST_SEQ) % span)
            per_partition.setdefault(partition_of_key.get(key, "?"), []).append(seq)
        # per partition: messages read, first and end offset, highest seq, offset gaps
        ends = {}
        for m in messages:
            if "seq" in m["headers"]:
                ends.setdefault(m["partition"], []).append((m["offset"], int(m["headers"]["seq"])))
        for p, rows in ends.items():
            offsets = sorted(o for o, _ in rows)
            gaps = [(a + 1, b - 1) for a, b in zip(offsets, offsets[1:]) if b > a + 1]
            ends[p] = (f"{len(rows)} read, offsets {offsets[0]}..{offsets[-1]}, highest seq "
                       f"{max(s for _, s in rows)}" + (f", offset gaps {gaps[:5]}" if gaps else ""))
        # what the restarted broker said about those partitions (log loaded: end offset and
        # high watermark; recovery, truncation) and about the shutdown itself
        names = tuple(f"{topic}-{p} " for p in per_partition) + tuple(
            f"{topic}-{p}," for p in per_partition) + tuple(f"{topic}-{p}]" for p in per_partition)
        recovery = []
        for name in ("kafka.log.1", "kafka.log"):
            try:
                with open(os.path.join(kafka_dir, name), errors="replace") as f:
                    recovery += [f"{name}: {line.rstrip()[:400]}" for line in f
                                 if any(n in line for n in names)
                                 or re.search(r"clean shutdown|[Uu]nclean|Recover", line)
                                 and topic not in line]
            except FileNotFoundError:
                pass
        # librdkafka's troubles with those partitions (refused, retried, sequence errors)
        # and the daemon's own warnings
        troubles, shown = [], {}
        for line in out.split("\n"):
            p = next((p for p in per_partition if f"{topic} [{p}]" in line), None)
            if "WARNING" in line or p is not None and re.search(
                    r"MSGSET|PRODUCE|DRAIN|ERRSEQ|DUPLICATE|OUT_OF_ORDER|[Ss]equence|error", line):
                shown[p] = shown.get(p, 0) + 1
                if shown[p] <= 25:
                    troubles.append(line[:300])
        keep = os.environ.get("ATK_PROMISES_KEEP")
        if keep:
            dest = tempfile.mkdtemp(prefix="promises-fail-", dir=keep)
            for name in ("kafka.log.1", "kafka.log"):
                if os.path.exists(os.path.join(kafka_dir, name)):
                    shutil.copy(os.path.join(kafka_dir, name), dest)
            with open(os.path.join(dest, "daemon.log"), "w") as f:
                f.write(out)
        # Seen in every loss so far (3 of 10 runs, all with a clean broker stop): the missing
        # seqs were the first messages of their partition, in the first loop, while later
        # ones sit from offset 0 on — acknowledged to the daemon, never stored.
        lowest = {}
        for m in messages:
            if "seq" in m["headers"]:
                seq = int(m["headers"]["seq"])
                lowest[m["partition"]] = min(lowest.get(m["partition"], seq), seq)
        at_start = all(isinstance(p, int) and p in lowest and max(seqs) < lowest[p]
                       for p, seqs in per_partition.items())
        verdict = ("the broker's: kafka-local SIGKILLed it after 60 s, its log recovery lost "
                   "acknowledged records" if broker_killed else
                   "not the broker's stop (it stopped cleanly): the producer's (the daemon's "
                   "or librdkafka's, see its account below) or the test's")
        if at_start and not broker_killed:
            verdict += ("; the missing seqs are the first messages of their partitions: "
                        "lost at the new partition's first produce (librdkafka reported "
                        "them delivered; see its account of the partition's first batches)")
        return (f"{len(lost)} event(s) at or below the saved cursor {saved} are not in Kafka; "
                f"likely {verdict}.\n"
                f"missing by partition: " + "; ".join(
                    f"p{p}: {len(s)} ({s[:8]}{'…' if len(s) > 8 else ''})"
                    for p, s in sorted(per_partition.items(), key=str)) + "\n"
                f"partitions: {sorted(ends.items())}\n"
                f"partitions without a leader now: {leaderless}; kcat -C exit "
                f"{proc.returncode}, said: {kcat_said}\n"
                f"daemon before the stop: cursor {acked}, produced ok/error {delivered}\n"
                f"broker log:\n" + "\n".join(recovery[-40:]) + "\n"
                f"librdkafka on those partitions, and the daemon's warnings:\n"
                + "\n".join(troubles) + "\n"
                f"the daemon said last:\n"
                + "\n".join(line for line in out.split("\n")[-40:] if "-DEBUG" not in line))

    def test_sigterm_while_kafka_is_down(self):
        port = unused_port_pair()
        env = dict(os.environ, ATK_KAFKA_PORT=str(port), ATK_KAFKA_CONTROLLER_PORT=str(port + 1),
                   ATK_KAFKA_DIR=tempfile.mkdtemp(prefix="atk-promises-kafka-"),
                   ATK_KAFKA_HEAP="256m", ATK_KAFKA_START_TIMEOUT="300")
        servers = f"127.0.0.1:{port}"
        self.addCleanup(shutil.rmtree, env["ATK_KAFKA_DIR"], True)
        self.addCleanup(self.kafka_local, env, "stop")
        self.kafka_local(env, "start", "--fresh")

        replay = Replay(CAPTURE, "--loop", "1000", "--rate", "200")
        self.addCleanup(replay.stop)
        topic = kafkautil.unique_topic("promises-sigterm")
        # librdkafka's account of each produce request (debug=msg,eos: batches, retries,
        # idempotence sequences) goes to the daemon's log: a loss report quotes it
        daemon = Daemon(replay.url, topic, "--cursor", str(FIRST_SEQ - 1), "-X",
                        "debug=msg,eos", bootstrap=servers,
                        env={"G_MESSAGES_DEBUG": "at-kafka-sink"})
        self.addCleanup(daemon.kill)
        # a cursor saved past the start: deliveries alone are not enough (partitions are
        # acknowledged independently, so the first frame may still be open)
        wait_until(lambda: (state_cursor(daemon.state_dir) or 0) >= FIRST_SEQ + 5, 120,
                   "a saved cursor before the outage")
        broker_killed = "still running after" in self.kafka_local(env, "stop")
        # messages pile up in librdkafka while the broker is away
        wait_until(lambda: daemon.metric("atkafka_kafka_in_flight_messages") >= 20, 60,
                   "messages in flight")
        acked = daemon.metric("atkafka_cursor_seq")
        delivered = (daemon.metric("atkafka_produced_events", status="ok"),
                     daemon.metric("atkafka_produced_events", status="error"))
        t0 = time.monotonic()
        status = daemon.stop(timeout=60)
        elapsed = time.monotonic() - t0
        out = daemon.output()
        said = "\n".join(line for line in out.split("\n") if "-DEBUG" not in line)[-2000:]
        print(f"  SIGTERM with Kafka down: exit {status} after {elapsed:.1f} s", flush=True)
        # README: flush Kafka for up to 10 s, save the cursor. The flush really waits (the
        # messages cannot go anywhere), and not much longer than its bound (plus the last
        # cursor record's 2 s and a loaded machine's slack).
        self.assertGreaterEqual(elapsed, 9.5, said)
        self.assertLess(elapsed, 25, said)
        self.assertIn("not delivered", out)
        # main.c: exit 1 when messages were left undelivered (README says "exit 0" for a
        # normal stop; a stop that could not flush is not one)
        self.assertEqual(status, 1, said)
        saved = state_cursor(daemon.state_dir)
        self.assertIsNotNone(saved)
        self.assertGreaterEqual(saved, acked)
        m = re.findall(r"Stopped at cursor (-?\d+)", out)
        self.assertTrue(m, said)
        self.assertEqual(int(m[-1]), saved)
        # nothing past what Kafka acknowledged: with the broker back, every event up to the
        # saved cursor is in the topic (the replay shifts seqs by one span per loop)
        self.kafka_local(env, "start")
        span = LAST_SEQ - FIRST_SEQ + 1
        want = {seq + k * span for k in range(1000) for seq, n in FRAMES
                if n > 0 and seq + k * span <= saved}
        self.assertGreater(len(want), 0, f"saved cursor {saved}")

        def missing():
            """The wanted seqs not in Kafka, or None while kcat cannot read the topic
            through (a partition not led yet after the restart)."""
            try:
                messages = kafkautil.consume_all(topic, servers, timeout=30)
            except (AssertionError, subprocess.TimeoutExpired):
                return None
            return want - {int(m["headers"]["seq"]) for m in messages if "seq" in m["headers"]}

        # a restarted broker serves each partition once its leader is back: read until
        # nothing is missing, or fail with what is (and whose it likely is)
        try:
            wait_until(lambda: missing() == set(), 120, "every acknowledged event in Kafka")
        except AssertionError:
            self.fail(self.loss_report(topic, servers, want, saved, acked, delivered,
                                       broker_killed, env["ATK_KAFKA_DIR"], out))

if __name__ == "__main__":
    unittest.main(verbosity=2)
