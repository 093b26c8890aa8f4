"""Shared pieces of the integration tests: waiting with deadlines, the replay relay, the
daemon as a subprocess, and reading its Prometheus metrics."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

AT_KAFKA = os.environ["ATK_AT_KAFKA"]
BUILD_DIR = os.environ["ATK_BUILD_DIR"]
VECTORS = os.environ["ATK_VECTORS_DIR"]
REPLAY = os.path.join(BUILD_DIR, "tools", "at-kafka-replay")
BOOTSTRAP = os.environ.get("ATK_BOOTSTRAP_SERVERS", "127.0.0.1:9092")


def vector(relative):
    return os.path.join(VECTORS, relative)


def wait_until(condition, timeout, what, interval=0.05):
    """Polls condition() until it returns a true value or the deadline passes."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Replay:
    """at-kafka-replay serving a frame file on 127.0.0.1."""

    def __init__(self, path, *extra):
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([REPLAY, "--port", "0", *extra, path],
                                     stdout=subprocess.PIPE, stderr=self.log, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.stop()
            raise AssertionError(f"replay did not start: {line!r} {self.stderr()}")
        self.url = f"ws://127.0.0.1:{m.group(1)}"

    def stderr(self):
        self.log.seek(0)
        return self.log.read().decode(errors="replace")

    def stop(self):
        stop_process(self.proc)
        self.proc.stdout.close()
        self.log.close()


def stop_process(proc, timeout=10):
    """SIGTERM, then SIGKILL if it is still there after timeout seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Daemon:
    """at-kafka as a subprocess with its own metrics port and state directory."""

    def __init__(self, relay_url, topic, *extra, state_dir=None, env=None, bootstrap=BOOTSTRAP,
                 bus="none", prefix=()):
        """bus: the --bus value; prefix: a command that execs at-kafka, given as its argv
        before the daemon's own (e.g. a shell wrapper setting per-process variables)."""
        self.metrics_port = free_port()
        self.state_dir = state_dir or tempfile.mkdtemp(prefix="atk-state-")
        self.log_path = os.path.join(self.state_dir, "daemon.log")
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("ATKAFKA_")}
        full_env["G_MESSAGES_DEBUG"] = ""
        full_env.update(env or {})
        self.args = [AT_KAFKA, "--relay-host", relay_url, "--bootstrap-servers", bootstrap,
                     "--output-topic", topic, "--metrics-listen-address",
                     f"127.0.0.1:{self.metrics_port}", "--state-directory", self.state_dir,
                     "--bus", bus, "--topic-partitions", "8", *extra]
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([*prefix, *self.args], stdout=self.log,
                                     stderr=subprocess.STDOUT, env=full_env)

    def output(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def metrics(self):
        """{(name, ((label, value), …)): float}; {} while the endpoint is not up."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                        timeout=5) as r:
                text = r.read().decode()
        except OSError:
            return {}
        return parse_prometheus(text)

    def metric(self, name, **labels):
        """Sum of the samples of name whose labels include the given ones."""
        total = 0.0
        for (n, sample_labels), value in self.metrics().items():
            if n == name and all(dict(sample_labels).get(k) == v for k, v in labels.items()):
                total += value
        return total

    def alive(self):
        return self.proc.poll() is None

    def stop(self, timeout=30):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


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
    """What `at-kafka --input FILE --stdout` gives for a file: a list of JSON lines."""
    r = subprocess.run([AT_KAFKA, "--input", path, "--stdout", *extra], capture_output=True,
                       text=True, check=True)
    return json_lines(r.stdout)

