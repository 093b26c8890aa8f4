#!/usr/bin/env python3
"""tools/run-local as a new user meets it: on a machine with no session bus it starts one,
and the commands its first lines print (metrics, /healthz, D-Bus status and the Osprey toggle)
work exactly as printed; README shows the same commands. With no relay reachable, each failed
connection is logged once and the shutdown line says there is no cursor yet."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import kafkautil  # noqa: E402
from atkharness import Replay, stop_process, unused_port_pair, vector, wait_until  # noqa: E402

SOURCE_DIR = os.environ["ATK_SOURCE_DIR"]
RUN_LOCAL = os.path.join(SOURCE_DIR, "tools", "run-local")
CAPTURE = vector("relay-capture/frames.bin")
LAST_SEQ = 31527015471  # the capture's last seq (tests/vectors/README.md)


class RunLocal:
    """tools/run-local as a subprocess (it execs at-kafka), its output collected by a thread."""

    def __init__(self, test, *args, env=None):
        self.tmp = tempfile.TemporaryDirectory(prefix="atk-run-local-")
        test.addCleanup(self.tmp.cleanup)
        self.run_dir = os.path.join(self.tmp.name, "run")
        # A fresh machine: no session bus in the environment, no XDG_RUNTIME_DIR.
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("ATKAFKA_")
                    and k not in ("DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR")}
        self.env.update(ATKAFKA_BOOTSTRAP_SERVERS=kafkautil.bootstrap(),
                        ATKAFKA_STATE_DIRECTORY=os.path.join(self.tmp.name, "state"),
                        ATK_RUN_LOCAL_DIR=self.run_dir, G_MESSAGES_DEBUG="")
        self.env.update(env or {})
        self.lines = []
        self.proc = subprocess.Popen([RUN_LOCAL, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=self.env, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        test.addCleanup(self.cleanup)

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def output(self):
        return "\n".join(self.lines)

    def banner(self):
        """The lines up to and including "  stop: …" once they are all there."""
        def complete():
            for i, line in enumerate(self.lines):
                if line.startswith("  stop:"):
                    return self.lines[:i + 1]
            if self.proc.poll() is not None:
                raise AssertionError(f"run-local exited ({self.proc.returncode}):\n{self.output()}")
            return None
        return wait_until(complete, 120, "run-local's banner")

    def interrupt(self):
        """Ctrl-C: at-kafka (run-local exec'd into it) shuts down; returns its status."""
        self.proc.send_signal(signal.SIGINT)
        status = self.proc.wait(60)
        self.reader.join(10)
        return status

    def cleanup(self):
        stop_process(self.proc)
        self.reader.join(10)
        self.proc.stdout.close()
        # The session bus run-local started outlives at-kafka (it is reused by the next run).
        try:
            with open(os.path.join(self.run_dir, "bus.pid")) as f:
                pid = int(f.read())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if f.read().split(b"\0")[0] == b"dbus-daemon":
                    os.kill(pid, signal.SIGTERM)
        except (FileNotFoundError, ProcessLookupError, ValueError):
            pass


def run_printed(command, env, timeout=20):
    """Runs a command line exactly as printed, in bash; returns its stdout (fails if it fails)."""
    r = subprocess.run(["bash", "-c", command], env=env, capture_output=True, text=True,
                       timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"`{command}` failed ({r.returncode}): {r.stderr}")
    return r.stdout


def when_it_works(command, env, timeout=60):
    """The output of a printed command once it succeeds (the daemon takes its bus name and
    opens its metrics port a moment after the banner)."""
    def attempt():
        try:
            return run_printed(command, env) or True
        except AssertionError:
            return None
    wait_until(attempt, timeout, f"`{command}` to succeed")
    return run_printed(command, env)


def printed(banner, prefix):
    """The command on the banner line whose label is prefix ("metrics:", "health:", …)."""
    for line in banner:
        if line.strip().startswith(prefix):
            return line.strip()[len(prefix):].strip()
    raise AssertionError(f"no {prefix!r} line in the banner:\n" + "\n".join(banner))


class RunLocalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker(timeout=90)
        with open(os.path.join(SOURCE_DIR, "README.md")) as f:
            cls.readme = f.read()

    def test_quick_start_commands_work_as_printed(self):
        replay = Replay(CAPTURE)
        self.addCleanup(replay.stop)
        metrics_port = unused_port_pair()
        run = RunLocal(self, "--relay-host", replay.url,
                       "--output-topic", kafkautil.unique_topic("run-local"),
                       "--metrics-listen-address", f"127.0.0.1:{metrics_port}",
                       "--topic-partitions", "1")
        banner = run.banner()
        text = "\n".join(banner)

        # Where things are, on the first lines.
        self.assertEqual(printed(banner, "metrics:"),
                         f"curl -s http://127.0.0.1:{metrics_port}/metrics")
        self.assertEqual(printed(banner, "health:"),
                         f"curl -si http://127.0.0.1:{metrics_port}/healthz")
        self.assertIn("a session bus run-local started (pid ", text)
        export = [line.strip() for line in banner if "export DBUS_SESSION_BUS_ADDRESS=" in line]
        busctl = [line.strip() for line in banner if line.strip().startswith("busctl ")]
        self.assertEqual(export, [f"export DBUS_SESSION_BUS_ADDRESS=$(cat {run.run_dir}/bus-address)"])
        self.assertEqual(len(busctl), 2, text)
        get_property, set_property = busctl

        # A user's shell: no bus in the environment until the printed export.
        shell_env = {k: v for k, v in run.env.items() if k != "DBUS_SESSION_BUS_ADDRESS"}

        def bus(command):
            return run_printed(f"{export[0]}\n{command}", shell_env)

        def properties():
            out = bus(get_property).split("\n")
            self.assertEqual(len([line for line in out if line]), 4, out)
            return out

        when_it_works(f"{export[0]}\n{get_property}", shell_env)

        # The whole capture goes through; the status query follows it.
        wait_until(lambda: properties()[1] == f"x {LAST_SEQ}", 120,
                   "Cursor (via the printed busctl command) at the capture's last seq")
        state, cursor, produced, osprey = properties()[:4]
        self.assertEqual(state, 's "connected"')
        self.assertRegex(produced, r"^t [1-9]\d*$")
        self.assertEqual(osprey, "b false")

        metrics = run_printed(printed(banner, "metrics:"), shell_env)
        self.assertIn(f"atkafka_cursor_seq {LAST_SEQ}", metrics)
        self.assertIn("atkafka_osprey_compatible 0", metrics)
        health = when_it_works(printed(banner, "health:"), shell_env)
        self.assertRegex(health.split("\n")[0], r"^HTTP/1\.1 200 ")

        # The Osprey toggle, as printed.
        self.assertEqual(bus(set_property), "")
        self.assertEqual(properties()[3], "b true")
        self.assertIn("atkafka_osprey_compatible 1",
                      run_printed(printed(banner, "metrics:"), shell_env))

        self.assertEqual(run.interrupt(), 0, run.output())
        self.assertIn(f"Stopped at cursor {LAST_SEQ}", run.output())

        # README shows the same commands (with the default port and run directory).
        for command in busctl + [
                "export DBUS_SESSION_BUS_ADDRESS=$(cat .run-local/bus-address)",
                printed(banner, "metrics:").replace(str(metrics_port), "2112"),
                printed(banner, "health:").replace(str(metrics_port), "2112")]:
            self.assertTrue(command in self.readme, f"README does not show `{command}`")

    def test_no_relay(self):
        """The quick start with no network: every connection attempt fails. An existing
        session bus is used rather than a new one."""
        accepted = []
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen()
        self.addCleanup(server.close)

        def refuse():  # accept and close: the WebSocket handshake fails every time
            while True:
                try:
                    conn, _ = server.accept()
                except OSError:
                    return
                accepted.append(1)
                conn.close()

        threading.Thread(target=refuse, daemon=True).start()

        session = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile",
                                    "--address=unix:tmpdir=/tmp", "--print-address=1"],
                                   stdout=subprocess.PIPE, text=True)
        self.addCleanup(session.stdout.close)
        self.addCleanup(stop_process, session)
        address = session.stdout.readline().strip()
        self.assertTrue(address.startswith("unix:"), address)

        run = RunLocal(self, "--relay-host", f"ws://127.0.0.1:{server.getsockname()[1]}",
                       "--output-topic", kafkautil.unique_topic("run-local-norelay"),
                       "--metrics-listen-address", f"127.0.0.1:{unused_port_pair()}",
                       "--topic-partitions", "1",
                       env={"DBUS_SESSION_BUS_ADDRESS": address})
        banner = run.banner()
        text = "\n".join(banner)
        self.assertIn(f"on your session bus, {address}", text)
        self.assertFalse(os.path.exists(os.path.join(run.run_dir, "bus.pid")),
                         "run-local started a bus although one was there")
        get_property = [line.strip() for line in banner if line.strip().startswith("busctl ")][0]
        state = when_it_works(get_property, {**run.env, "DBUS_SESSION_BUS_ADDRESS": address})
        self.assertRegex(state.split("\n")[0], r'^s "(stopped|connecting|backoff)"$')

        wait_until(lambda: len(accepted) >= 4, 60, "four connection attempts")
        self.assertEqual(run.interrupt(), 0, run.output())
        failures = [line for line in run.lines if "connect failed" in line]
        # Each attempt that reached the relay failed and was logged once; the last one may
        # have been abandoned by the shutdown before it failed.
        self.assertIn(len(failures), (len(accepted) - 1, len(accepted)),
                      f"{len(accepted)} attempts:\n" + "\n".join(failures))
        self.assertIn("Stopped (no cursor yet)", run.output())
        self.assertNotIn("cursor -1", run.output())


if __name__ == "__main__":
    unittest.main(verbosity=2)
