#!/usr/bin/env python3
"""tools/kafka-local treats a broker as its own only when it is the JVM it started for its state
directory, holding both its ports: a port held by anything else (another checkout's broker, any
other program) makes `start` refuse and name the holder, without starting a JVM, and `stop` and
`status` leave that holder alone."""
import os
import socket
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
import kafkautil  # noqa: E402

KAFKA_LOCAL = os.path.join(os.environ["ATK_SOURCE_DIR"], "tools", "kafka-local")


def reserved_port():
    """A socket bound to a free port but not listening: nothing can listen there while it is
    open, and to `ss -l` the port is free. Close it when done."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    return s


class KafkaLocal(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="atk-kafka-local-")
        self.addCleanup(self.tmp.cleanup)
        self.state = os.path.join(self.tmp.name, "state")

    def kafka_local(self, command, port, controller_port):
        env = {k: v for k, v in os.environ.items() if not k.startswith("ATK_KAFKA_")}
        env.update(ATK_KAFKA_PORT=str(port), ATK_KAFKA_CONTROLLER_PORT=str(controller_port),
                   ATK_KAFKA_DIR=self.state)
        return subprocess.run([KAFKA_LOCAL, command], env=env, capture_output=True, text=True,
                              timeout=120)

    def assert_no_broker_started(self):
        self.assertFalse(os.path.exists(os.path.join(self.state, "kafka.pid")),
                         "kafka-local started a broker")
        self.assertFalse(os.path.exists(os.path.join(self.state, "kafka.log")),
                         "kafka-local started a broker")

    def test_controller_port_held_by_another_program(self):
        with reserved_port() as plain, socket.socket() as holder:
            holder.bind(("127.0.0.1", 0))
            holder.listen()
            port, controller_port = plain.getsockname()[1], holder.getsockname()[1]

            r = self.kafka_local("start", port, controller_port)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn(f"port {controller_port} is held by pid {os.getpid()}: ", r.stderr)
            self.assertNotIn(f"port {port} is held", r.stderr)
            self.assert_no_broker_started()

            r = self.kafka_local("status", port, controller_port)
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertIn(f"port {controller_port} is held by pid {os.getpid()}: ", r.stderr)

    def test_port_held_by_another_broker(self):
        """The broker the tests use answers on its port: it is not ours, whatever it says."""
        kafkautil.wait_for_broker(timeout=90)
        port = int(kafkautil.bootstrap().split(",")[0].rsplit(":", 1)[1])
        with reserved_port() as controller:
            controller_port = controller.getsockname()[1]

            r = self.kafka_local("start", port, controller_port)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertRegex(r.stderr, rf"port {port} is held by pid \d+: java … kafka\.Kafka \S+")
            self.assertIn("cannot start a broker for " + self.state, r.stderr)
            self.assert_no_broker_started()

            r = self.kafka_local("status", port, controller_port)
            self.assertEqual(r.returncode, 3, r.stderr)
            self.assertRegex(r.stderr, rf"port {port} is held by pid \d+")

            r = self.kafka_local("stop", port, controller_port)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("not running", r.stderr)
        kafkautil.metadata(timeout=10)  # still there, still answering


if __name__ == "__main__":
    unittest.main(verbosity=2)
