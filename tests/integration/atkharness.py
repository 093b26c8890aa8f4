"""Shared pieces of the integration tests: waiting with deadlines, temporary directories
removed at exit, the replay relay, the daemon as a subprocess and its Prometheus metrics.
The expected Kafka messages, built from the oracle renderings (frames.jsonl), are in
atkoracle.py and exported from here too."""
import atexit
import os
import random
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

from atkoracle import (Expected, Oracle, canonical, check_order_per_key,  # noqa: F401
                       compare_with_oracle, expected_for_frame, message_ident, unwrap)

AT_KAFKA = os.environ["ATK_AT_KAFKA"]
BUILD_DIR = os.environ["ATK_BUILD_DIR"]
VECTORS = os.environ["ATK_VECTORS_DIR"]
REPLAY = os.path.join(BUILD_DIR, "tools", "at-kafka-replay")
BOOTSTRAP = os.environ.get("ATK_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


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


def file_mode_values(path, *extra):
    """What `at-kafka --input FILE --stdout` gives for a file: a list of JSON lines. For files
    a test makes itself, which have no oracle rendering; never as the expectation for a
    capture that has one (use atkoracle)."""
    r = subprocess.run([AT_KAFKA, "--input", path, "--stdout", *extra], capture_output=True,
                       text=True, check=True)
    return json_lines(r.stdout)


_HELD = []  # sockets of refusing_port(), open until exit


def refusing_port():
    """A port on 127.0.0.1 where nothing listens, for a peer that must be unreachable: a
    socket bound to port 0 that never listens, held until exit (so no one else takes it)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    _HELD.append(s)
    return s.getsockname()[1]


def unused_port_pair():
    """For a server that cannot bind port 0 (a Kafka broker restarted on the same port): the
    lower of two consecutive ports nothing listens on now, below the kernel's ephemeral range
    (so no port-0 bind or outgoing connection gets them meanwhile). The caller checks that
    its server holds the port afterwards."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    rng = random.Random()
    for _ in range(100):
        taken = set(listening_ports())
        port = rng.randrange(max(1024, low - 12000), low - 2)
        if port not in taken and port + 1 not in taken:
            return port
    raise AssertionError("no unused port pair")
