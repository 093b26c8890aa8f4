"""Shared pieces of the integration tests: waiting with deadlines, temporary directories
removed at exit, the replay relay, the daemon as a subprocess, its Prometheus metrics, and
the expected Kafka messages built from the oracle renderings (frames.jsonl)."""
import atexit
import calendar
import collections
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

AT_KAFKA = os.environ["ATK_AT_KAFKA"]
BUILD_DIR = os.environ["ATK_BUILD_DIR"]
VECTORS = os.environ["ATK_VECTORS_DIR"]
REPLAY = os.path.join(BUILD_DIR, "tools", "at-kafka-replay")
BOOTSTRAP = os.environ.get("ATK_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
STARTED_AT = time.time()


def vector(relative):
    return os.path.join(VECTORS, relative)


def wait_until(condition, timeout, what, interval=0.05):
    """Polls condition() until it returns a true value or the deadline passes; on a timeout
    the error carries the output of the children still running (children_report())."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                                 + children_report())
        time.sleep(interval)


_CHILDREN = []  # Daemon and Replay objects, newest last


def children_report(tail=2500):
    """The end of the output of every at-kafka and replay started by this process that is
    still running or ended by itself (not stopped by the test): what a failure needs."""
    parts = []
    for child in _CHILDREN[-8:]:
        status = child.proc.poll()
        if status is None or not child.stopped_by_test:
            state = "running" if status is None else f"exited with status {status}"
            parts.append(f"\n--- {child.name} (pid {child.proc.pid}, {state}), last output:\n"
                         f"{child.text()[-tail:]}")
    return "".join(parts)


# ---- temporary directories: gone after the run, whatever happened ----------------------

_TEMP_DIRS = []


def temp_dir(prefix):
    """A new directory under $TMPDIR, removed when this test process exits (also on SIGTERM,
    which meson sends on a timeout)."""
    path = tempfile.mkdtemp(prefix=prefix)
    _TEMP_DIRS.append(path)
    return path


@atexit.register
def _remove_temp_dirs():
    for path in _TEMP_DIRS:
        shutil.rmtree(path, ignore_errors=True)


def _exit_on_sigterm(signum, frame):
    sys.exit(128 + signum)  # runs the atexit handlers


signal.signal(signal.SIGTERM, _exit_on_sigterm)


def read_text(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""


def _listening():
    """{socket inode: port} of every listening TCP socket on this machine, from /proc."""
    out = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                fields = line.split()
                if fields[3] == "0A":  # LISTEN
                    out[fields[9]] = int(fields[1].rsplit(":", 1)[1], 16)
    return out


def listening_ports(pid=None):
    """The TCP ports process pid (every process: None) listens on, from /proc: for peers
    that bind port 0 and do not say which port they got."""
    table = _listening()
    if pid is None:
        return sorted(set(table.values()))
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return sorted({port for inode, port in table.items() if inode in inodes})


def stop_process(proc, timeout=10):
    """SIGTERM, then SIGKILL if it is still there after timeout seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Gate:
    """A TCP port (bound to port 0 on 127.0.0.1) that refuses service until opened: while
    closed it accepts and at once closes each connection, as a relay that is down would;
    open(url) forwards every later connection to url's port. For tests that start at-kafka
    before its relay exists, without guessing a free port for the relay."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"ws://127.0.0.1:{self.sock.getsockname()[1]}"
        self.target = None
        self.refused = 0
        self.closing = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def open(self, url):
        self.target = int(url.rsplit(":", 1)[1])

    def _accept(self):
        while not self.closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self.target is None:
                self.refused += 1
                conn.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target), timeout=10)
            except OSError:
                conn.close()
                continue
            upstream.settimeout(None)
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(10)


class Replay:
    """at-kafka-replay serving a frame file on 127.0.0.1 (port 0: it prints the one it got)."""

    def __init__(self, path, *extra):
        self.dir = temp_dir("atk-replay-")
        self.log_path = os.path.join(self.dir, "replay.log")
        self.name, self.stopped_by_test = "at-kafka-replay", False
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen([REPLAY, "--port", "0", *extra, path],
                                         stdout=subprocess.PIPE, stderr=log, text=True)
        _CHILDREN.append(self)
        line = self.proc.stdout.readline()
        m = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.stop()
            raise AssertionError(f"replay did not start (status {self.proc.returncode}): "
                                 f"{line!r}\n{self.stderr()}")
        self.url = f"ws://127.0.0.1:{m.group(1)}"

    def stderr(self):
        """What the replay logged (also after it stopped)."""
        return read_text(self.log_path)

    text = stderr

    def stop(self):
        self.stopped_by_test = True
        stop_process(self.proc)
        self.proc.stdout.close()


class Daemon:
    """at-kafka as a subprocess: its metrics server on 127.0.0.1 port 0 (the port it got is
    read from its log), its own state directory unless given one."""

    def __init__(self, relay_url, topic, *extra, state_dir=None, env=None, bootstrap=BOOTSTRAP,
                 bus="none", prefix=()):
        """bus: the --bus value; prefix: a command that execs at-kafka, given as its argv
        before the daemon's own (e.g. a shell wrapper setting per-process variables)."""
        self.state_dir = state_dir or temp_dir("atk-state-")
        self.log_path = os.path.join(temp_dir("atk-daemon-"), "daemon.log")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ATKAFKA_")}
        full_env["G_MESSAGES_DEBUG"] = ""
        full_env.update(env or {})
        self.args = [AT_KAFKA, "--relay-host", relay_url, "--bootstrap-servers", bootstrap,
                     "--output-topic", topic, "--metrics-listen-address", "127.0.0.1:0",
                     "--state-directory", self.state_dir, "--bus", bus,
                     "--topic-partitions", "8", *extra]
        self._metrics_port = None
        self.name, self.stopped_by_test = "at-kafka", False
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([*prefix, *self.args], stdout=log,
                                         stderr=subprocess.STDOUT, env=full_env)
        _CHILDREN.append(self)

    def output(self):
        """Everything the daemon logged so far (also after it exited)."""
        return read_text(self.log_path)

    text = output

    @property
    def metrics_port(self):
        """The port the metrics server got; waits for the daemon to say it."""
        if self._metrics_port is None:
            def said():
                m = re.search(r"Serving /metrics and /healthz on 127\.0\.0\.1:(\d+)",
                              self.output())
                if m:
                    return int(m.group(1))
                if not self.alive():
                    raise AssertionError(f"at-kafka exited ({self.proc.returncode}) before "
                                         f"serving metrics:\n{self.output()[-3000:]}")
                return None
            self._metrics_port = wait_until(said, 60, "the metrics server's port")
        return self._metrics_port

    def metrics(self):
        """{(name, ((label, value), …)): float}; raises if the endpoint does not answer."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=10) as r:
                text = r.read().decode()
        except OSError as e:
            raise AssertionError(f"{url}: {e}\n{self.output()[-3000:]}") from e
        return parse_prometheus(text)

    def metric(self, name, **labels):
        """Sum of the samples of name whose labels include the given ones; raises if the
        daemon exports no such sample."""
        total, found = 0.0, False
        for (n, sample_labels), value in self.metrics().items():
            if n == name and all(dict(sample_labels).get(k) == v for k, v in labels.items()):
                total += value
                found = True
        if not found:
            raise AssertionError(f"at-kafka exports no {name}{labels or ''}")
        return total

    def sample(self, name, **labels):
        """Like metric(), but None while the daemon exports no such sample: for waiting on
        a series that appears with its first event (handled_events, cursor_seq, …)."""
        try:
            return self.metric(name, **labels)
        except AssertionError as e:
            if str(e).startswith("at-kafka exports no "):
                return None
            raise

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status."""
        self.stopped_by_test = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self):
        self.stopped_by_test = True
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_prometheus(text):
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise AssertionError(f"bad metrics line: {line!r}")
        labels = tuple(sorted(LABEL.findall(m.group(3) or "")))
        samples[(m.group(1), labels)] = float(m.group(4))
    return samples


def json_lines(text):
    """Splits output into records at '\\n' only: str.splitlines() would also split inside
    JSON strings holding raw U+2028, U+0085 or \\x1c, which JSON need not escape."""
    return [line for line in text.split("\n") if line]


# ---- the expected messages, from the oracle renderings ---------------------------------
#
# frames.jsonl beside each capture was rendered by the official TypeScript libraries
# (tests/vectors/README.md). What each frame becomes in Kafka is written here from
# README.md's "Output" section, independently of at-kafka, as tests/test-transformer.c does
# in C: one message per commit op (key the DID, headers seq/type/action/collection) and one
# per #identity, #account, #sync and #info.

SNOWFLAKE_EPOCH_MS = 1420070400000
ACTIONS = {"create": "operation#create", "update": "operation#update",
           "delete": "operation#delete"}


def canonical(value):
    """One string per JSON value: keys sorted; 1 and 1.0 stay different."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def time_ms(text):
    """An RFC 3339 time (as the relay sends it) in Unix milliseconds."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?"
                     r"(Z|[+-]\d\d:\d\d)", text)
    assert m, text
    seconds = calendar.timegm(tuple(int(g) for g in m.groups()[:6]))
    millis = int(((m.group(7) or "") + "000")[:3])
    if m.group(8) != "Z":
        sign = 1 if m.group(8)[0] == "+" else -1
        seconds -= sign * (int(m.group(8)[1:3]) * 3600 + int(m.group(8)[4:6]) * 60)
    return seconds * 1000 + millis


class Expected:
    """One message at-kafka should produce: key, headers and the standard value."""

    def __init__(self, key, kind, action_name, value, seq=None, time=None, op_index=0,
                 collection=None):
        self.key, self.kind, self.action_name, self.value = key, kind, action_name, value
        self.seq, self.time, self.op_index, self.collection = seq, time, op_index, collection
        self.headers = {"type": kind, "action": action_name}
        if seq is not None:
            self.headers["seq"] = str(seq)
        if collection is not None:
            self.headers["collection"] = collection
        self.ident = canonical([key, self.headers, value])

    def action_id(self):
        """The Osprey snowflake: event time in ms since 2015 above bit 22, the low 14 bits
        of the seq in bits 8-21, the op's index in the commit in bits 0-7; None when the
        event has no time or seq (then the id depends on the clock)."""
        if self.time is None or self.seq is None:
            return None
        return ((time_ms(self.time) - SNOWFLAKE_EPOCH_MS) << 22) | ((self.seq & 0x3fff) << 8) \
            | self.op_index

    def __repr__(self):
        return f"<{self.key} {self.headers}>"


def _event(did, timestamp, kind, inner):
    return {"did": did, "timestamp": timestamp, "eventMetadata": None, kind: inner}


def expected_for_frame(frame, seq_shift=0):
    """The messages one oracle line (header, body, records) becomes; seq_shift is added to
    the seq, as at-kafka-replay --loop does for each repetition."""
    header, body = frame["header"], frame["body"]
    if header.get("op") != 1:
        return []  # an error frame
    kind = header["t"].lstrip("#")
    seq = body["seq"] + seq_shift if "seq" in body else None
    if kind == "commit":
        did, when = body["repo"], body["time"]
        out = []
        for i, op in enumerate(body["ops"]):
            path = op["path"]
            collection, rkey = path.split("/", 1)
            operation = {"action": op["action"], "collection": collection, "rkey": rkey,
                         "uri": f"at://{did}/{path}", "path": path}
            if op["action"] == "delete":
                operation.update(cid="", record=None)
            else:
                operation.update(cid=op["cid"]["$link"], record=frame["records"][path])
            out.append(Expected(did, "commit", ACTIONS[op["action"]],
                                _event(did, when, "operation", operation), seq, when, i,
                                collection))
        return out
    if kind == "info":
        inner = {"name": body["name"]}
        if "message" in body:
            inner["message"] = body["message"]
        return [Expected("<unknown>", "info", "info", _event("", "", "info", inner))]
    did, when = body["did"], body["time"]
    if kind == "account":
        inner = {"active": body["active"], "seq": seq}
        if "status" in body:
            inner["status"] = body["status"]
    elif kind == "identity":
        inner = {"seq": seq, "handle": body.get("handle", "")}
    elif kind == "sync":
        inner = {"seq": seq, "rev": body["rev"]}
    else:
        raise AssertionError(f"unknown frame type {kind}")
    return [Expected(did, kind, kind, _event(did, when, kind, inner), seq, when)]


class Oracle:
    """The oracle rendering of a capture (the .jsonl beside a .bin)."""

    def __init__(self, relative):
        """relative: a frame file under the vectors directory, .bin or .jsonl."""
        path = vector(re.sub(r"\.bin$", ".jsonl", relative))
        with open(path, encoding="utf-8") as f:
            self.frames = [json.loads(line) for line in f if line.strip()]
        seqs = [fr["body"]["seq"] for fr in self.frames if "seq" in fr["body"]]
        self.first_seq, self.last_seq = min(seqs), max(seqs)
        self.span = self.last_seq - self.first_seq + 1

    def messages(self, loops=1, upto_seq=None, skip_seqs=()):
        """What at-kafka should put into Kafka for `at-kafka-replay --loop loops` (the file
        `loops` times, seqs shifted by one span per repetition), in stream order; only frames
        up to upto_seq, and none of skip_seqs."""
        out = []
        for k in range(loops):
            for frame in self.frames:
                for e in expected_for_frame(frame, k * self.span):
                    if upto_seq is not None and e.seq is not None and e.seq > upto_seq:
                        return out
                    if e.seq not in skip_seqs:
                        out.append(e)
        return out

    def frame_count(self):
        return len(self.frames)


SEND_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def unwrap(value):
    """("standard"|"osprey", the standard event) of a parsed Kafka value."""
    if set(value) == {"data", "send_time"}:
        return "osprey", value["data"]["data"]
    if "did" in value and "data" not in value:
        return "standard", value
    raise AssertionError(f"neither format: {canonical(value)[:300]}")


def message_ident(message):
    """(format, the message's identity as Expected.ident builds it) of a Kafka message."""
    fmt, event = unwrap(json.loads(message["value"]))
    return fmt, canonical([message["key"], message["headers"], event])


def check_osprey_envelope(value, e):
    """Every field of the Osprey wrapping but send_time is what the oracle says; send_time
    is a time in seconds between this test's start and now."""
    problems = []
    data = value["data"]
    want = {"action_name": e.action_name, "data": e.value, "secret_data": {},
            "encoding": "UTF8", "timestamp": e.time}
    for k, v in want.items():
        if k == "timestamp" and v is None:
            continue  # no event time: at-kafka uses the clock
        if data.get(k) != v:
            problems.append(f"{k}: {data.get(k)!r} != {v!r}")
    if set(data) != set(want) | {"action_id"}:
        problems.append(f"fields {sorted(data)}")
    action_id = data.get("action_id")
    if not isinstance(action_id, int) or action_id <= 0:
        problems.append(f"action_id {action_id!r}")
    elif e.action_id() is not None and action_id != e.action_id():
        problems.append(f"action_id {action_id} != {e.action_id()}")
    send_time = value["send_time"]
    if not SEND_TIME.fullmatch(send_time):
        problems.append(f"send_time {send_time!r}")
    else:
        t = calendar.timegm(time.strptime(send_time, "%Y-%m-%dT%H:%M:%SZ"))
        if not int(STARTED_AT) - 1 <= t <= time.time() + 1:
            problems.append(f"send_time {send_time} outside this test run")
    return problems


def compare_with_oracle(messages, expected, duplicates=False):
    """Compares Kafka messages (kafkautil.consume_all) with Expected ones, value for value:
    key, headers, the standard event (unwrapped from Osprey's envelope, whose other fields
    are checked too, send_time within this run). Every expected message must be there,
    nothing else, and each once unless duplicates=True. Returns (copies: Counter of idents,
    formats: {ident: {format}}); raises AssertionError naming what differs."""
    by_ident = {}
    for e in expected:
        by_ident.setdefault(e.ident, e)
    got = collections.Counter()
    formats = collections.defaultdict(set)
    unexpected, bad_envelopes = [], []
    for m in messages:
        fmt, ident = message_ident(m)
        if ident not in by_ident:
            unexpected.append(m)
            continue
        got[ident] += 1
        formats[ident].add(fmt)
        if fmt == "osprey":
            problems = check_osprey_envelope(json.loads(m["value"]), by_ident[ident])
            if problems:
                bad_envelopes.append((m["headers"], problems))
    want = collections.Counter(e.ident for e in expected)
    missing = [by_ident[i] for i in want if got[i] < want[i]]
    extra = {i: n for i, n in got.items() if n > want[i]}
    report = []
    if missing:
        report.append(f"{len(missing)} expected messages missing, e.g. {missing[:3]}"
                      f"\n  want e.g. {missing[0].ident[:600]}")
    if unexpected:
        report.append(f"{len(unexpected)} messages the oracle does not give, e.g. key "
                      f"{unexpected[0]['key']} headers {unexpected[0]['headers']}\n  value "
                      f"{unexpected[0]['value'][:600]}")
    if bad_envelopes:
        report.append(f"{len(bad_envelopes)} Osprey envelopes differ, e.g. {bad_envelopes[:2]}")
    if extra and not duplicates:
        report.append(f"{sum(extra.values()) - len(extra)} duplicates, e.g. "
                      f"{[by_ident[i] for i in list(extra)[:3]]}")
    if report:
        raise AssertionError("Kafka vs the oracle (" + f"{len(messages)} messages, "
                             f"{len(expected)} expected):\n" + "\n".join(report))
    return got, formats


def check_order_per_key(messages, expected):
    """Each key's messages, in Kafka's order (one partition per key), are exactly its
    expected messages in stream order, ops of one commit included."""
    want = collections.defaultdict(list)
    for e in expected:
        want[e.key].append(e.ident)
    got = collections.defaultdict(list)
    partitions = collections.defaultdict(set)
    for m in sorted(messages, key=lambda m: (m["partition"], m["offset"])):
        got[m["key"]].append(message_ident(m)[1])
        partitions[m["key"]].add(m["partition"])
    spread = {k: sorted(p) for k, p in partitions.items() if len(p) > 1}
    if spread:
        raise AssertionError(f"keys spread over partitions: {list(spread.items())[:3]}")
    wrong = [k for k in want if got.get(k) != want[k]]
    if wrong or set(got) != set(want):
        raise AssertionError(f"per-key order differs for {len(wrong)} keys, e.g. {wrong[:3]}")
