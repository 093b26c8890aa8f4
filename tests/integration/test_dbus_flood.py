#!/usr/bin/env python3
"""A flood of denied D-Bus calls (issue 9, item 14): 50,000 calls from uid 65534 (sent as fast
as the bus takes them, flagged as wanting no reply, then one that waits) to a daemon
that is producing from a relay into a real broker. The caller is looked up once, without
blocking the main loop: /metrics answers within a second throughout, memory comes back to its
baseline afterwards, and production goes on. Before: one blocking GetConnectionUnixUser per
call on the main thread, /metrics stalled for seconds and RSS grew by ~90 MB for good."""
import os
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

import kafkautil
from atkharness import Daemon, wait_until
from test_dbus_live import NOBODY, PrivateBus
from test_hostile_net import HostileRelay, produced, status_kib, wait_produced

HOSTILE_DIR = os.path.join(os.environ["ATK_SOURCE_DIR"], "tests", "hostile")
CALLS = 50000


class DbusFloodTest(unittest.TestCase):
    def test_denied_call_flood(self):
        kafkautil.wait_for_broker()
        bus = PrivateBus()
        self.addCleanup(bus.stop)
        relay = HostileRelay("frames", "--rate", "100")
        self.addCleanup(relay.stop)
        topic = kafkautil.unique_topic("dbusflood")
        daemon = Daemon(relay.url, topic, bus="session",
                        env={"DBUS_SESSION_BUS_ADDRESS": bus.address})
        self.addCleanup(daemon.kill)
        wait_produced(daemon, 100)
        wait_until(lambda: bus.owned(), 10, "the bus name")
        baseline = status_kib(daemon.proc.pid, "VmRSS")

        slowest = [0.0]
        done = threading.Event()

        def scrape():
            while not done.is_set():
                start = time.monotonic()
                try:
                    with urllib.request.urlopen(
                            f"http://127.0.0.1:{daemon.metrics_port}/metrics", timeout=10) as r:
                        r.read()
                    slowest[0] = max(slowest[0], time.monotonic() - start)
                except OSError:
                    slowest[0] = max(slowest[0], 99.0)
                time.sleep(0.1)

        scraper = threading.Thread(target=scrape)
        scraper.start()
        try:
            flood = subprocess.run(
                ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
                 sys.executable, os.path.join(HOSTILE_DIR, "dbusflood.py"), bus.address,
                 str(CALLS), "--no-reply"], capture_output=True, text=True, timeout=600)
        finally:
            done.set()
            scraper.join()
        self.assertEqual(flood.returncode, 0, flood.stderr)
        print(f"flood: {flood.stdout.strip()}; slowest scrape {slowest[0]:.3f} s; RSS "
              f"{baseline} KiB before, {status_kib(daemon.proc.pid, 'VmRSS')} KiB after",
              flush=True)
        # the calls that wanted no reply were refused as well: the last one, which waited, was
        self.assertIn(f"sent {CALLS + 1} denied 1 other 0", flood.stdout, flood.stderr)
        self.assertLess(slowest[0], 1.0, "a scrape during the flood took too long")
        wait_until(lambda: status_kib(daemon.proc.pid, "VmRSS") < baseline + 4096, 30,
                   "RSS back to its baseline")
        # still producing, and still answering its own user
        wait_produced(daemon, produced(daemon) + 100)
        self.assertEqual(bus.get("State"), "connected")


if __name__ == "__main__":
    unittest.main(verbosity=2)
