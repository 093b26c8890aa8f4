#!/usr/bin/env python3
"""The wss:// path (issue 9's open risk): the production relay is wss://, and the WebSocket
client makes its own opening handshake over a GSocketClient with TLS (glib-networking).

A CA and a server certificate for 127.0.0.1 are made at test time with openssl; the hostile
relay (tests/hostile/relay.py --tls-cert) serves the relay capture over TLS on loopback. The
daemon trusts the CA through --tls-ca-file (the system's trust store is left alone)."""
import os
import subprocess
import sys
import time
import unittest

import kafkautil
from atkharness import Daemon, stop_process, temp_dir, wait_until

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_hostile_net import HostileRelay, cpu_seconds  # noqa: E402

AT_KAFKA = os.environ["ATK_AT_KAFKA"]


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_certificates(directory):
    """A CA (ca.pem) and a certificate it signed for IP 127.0.0.1 (server.pem, server.key)."""
    ca, ca_key = os.path.join(directory, "ca.pem"), os.path.join(directory, "ca.key")
    cert, key = os.path.join(directory, "server.pem"), os.path.join(directory, "server.key")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"]
    openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-subj", "/CN=at-kafka test CA",
            "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    openssl("req", "-x509", *ec, "-CA", ca, "-CAkey", ca_key, "-keyout", key, "-out", cert,
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-addext", "basicConstraints=CA:FALSE",
            "-addext", "extendedKeyUsage=serverAuth")
    return ca, cert, key


class TlsRelayTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker()
        cls.dir = temp_dir("atk-tls-")
        cls.ca, cls.cert, cls.key = make_certificates(cls.dir)

    def relay(self, *extra):
        relay = HostileRelay("frames", "--tls-cert", self.cert, "--tls-key", self.key, *extra)
        self.addCleanup(relay.stop)
        self.assertTrue(relay.url.startswith("wss://127.0.0.1:"), relay.url)
        return relay

    def daemon(self, relay_url, *extra):
        topic = kafkautil.unique_topic("tls")
        daemon = Daemon(relay_url, topic, *extra)
        self.addCleanup(daemon.kill)
        self.addCleanup(lambda: sys.stderr.write(daemon.output()[-3000:])
                        if self._outcome.result.failures or self._outcome.result.errors
                        else None)
        return daemon, topic

    def tls_failures(self, relay):
        return sum(1 for _, line in list(relay.lines) if line.startswith("TLS-FAILED"))

    def test_events_arrive_through_wss(self):
        """The daemon trusting the test CA reads the relay over TLS and Kafka gets the events."""
        relay = self.relay("--rate", "400")
        daemon, topic = self.daemon(relay.url, "--tls-ca-file", self.ca)
        wait_until(lambda: daemon.metric("atkafka_produced_events", status="ok") >= 300, 90,
                   "300 messages acknowledged")
        self.assertTrue(daemon.alive())
        # the relay loops for ever: stop the daemon so that the topic has an end to read to
        acked = daemon.metric("atkafka_produced_events", status="ok")
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])
        messages = kafkautil.consume_all(topic)
        self.assertGreaterEqual(len(messages), acked)
        self.assertTrue(all(m["value"] and m["value"].startswith("{") for m in messages))
        self.assertTrue(relay.saw("CONNECT 1"), "the relay saw no WebSocket upgrade")
        self.assertEqual(self.tls_failures(relay), 0)
        self.assertIn("wss://127.0.0.1", daemon.output())

    def test_untrusted_certificate_backs_off(self):
        """Without the CA the certificate is untrusted: each attempt fails its TLS handshake,
        is logged as a connect error naming the certificate, and is retried with backoff: no
        crash, no spin, nothing produced."""
        relay = self.relay()
        daemon, topic = self.daemon(relay.url)
        wait_until(lambda: self.tls_failures(relay) >= 3, 60, "three refused TLS handshakes")
        start, cpu_start = time.monotonic(), cpu_seconds(daemon.proc.pid)
        before = self.tls_failures(relay)
        wait_until(lambda: time.monotonic() - start >= 8, 20, "8 s")
        attempts = self.tls_failures(relay) - before
        cpu = cpu_seconds(daemon.proc.pid) - cpu_start
        self.assertTrue(daemon.alive(), daemon.output()[-3000:])
        # backoff from 250 ms doubling to 30 s: a handful of attempts in 8 s, not hundreds
        self.assertLessEqual(attempts, 12, f"{attempts} TLS attempts in 8 s")
        self.assertLess(cpu, 2.0, f"{cpu:.2f} CPU-s in 8 s of refused handshakes")
        self.assertFalse(relay.saw("CONNECT"), "a WebSocket upgrade went through untrusted TLS")
        log = daemon.output()
        failures = [line for line in log.splitlines() if "connect failed" in line]
        self.assertGreaterEqual(len(failures), 3, log[-3000:])
        self.assertTrue(all("certificate" in line.lower() for line in failures), failures)
        self.assertEqual(daemon.metric("atkafka_produced_events", status="ok"), 0)
        self.assertEqual(kafkautil.count(topic), 0)

    def test_bad_ca_file_is_a_config_error(self):
        """A --tls-ca-file that cannot be read refuses the start, naming the option."""
        missing = os.path.join(self.dir, "missing.pem")
        proc = subprocess.run([AT_KAFKA, "--relay-host", "wss://127.0.0.1:1",
                               "--bootstrap-servers", kafkautil.bootstrap(),
                               "--output-topic", kafkautil.unique_topic("tls"),
                               "--metrics-listen-address", "", "--bus", "none",
                               "--state-directory", temp_dir("atk-state-"),
                               "--tls-ca-file", missing],
                              capture_output=True, text=True, timeout=60)
        self.assertEqual(proc.returncode, 2, proc.stderr)
        self.assertIn(f"--tls-ca-file {missing}", proc.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
