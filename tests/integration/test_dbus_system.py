#!/usr/bin/env python3
"""README's promise for the system bus (issue 18, item 9): members of the "at-kafka" group may
pause, resume, reconnect at-kafka and switch the Osprey envelope; other users may only read.

A private dbus-daemon of type "system" runs the default policy of Debian's system bus plus
at-kafka's own file from data/ (io.github.atkafka.Daemon1.conf); at-kafka runs as root with
--bus system on it. Two users are created for the test (root is needed for useradd): one in
the "at-kafka" group (created too if missing), one not; the clients are real busctl and gdbus
processes run as those users with setpriv. The users are removed at the end; the group
stays."""
import grp
import json
import os
import pwd
import subprocess
import sys
import unittest

import kafkautil
from atkharness import Daemon, Replay, vector, wait_until

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_dbus_live import IFACE, NAME, PATH, PrivateBus  # noqa: E402

SOURCE_DIR = os.environ["ATK_SOURCE_DIR"]
POLICY = os.path.join(SOURCE_DIR, "data", "io.github.atkafka.Daemon1.conf")
GROUP = "at-kafka"

# Debian's /usr/share/dbus-1/system.conf, default context: deny method calls and owning
# names unless a policy file allows them. Then at-kafka's own file.
SYSTEM_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>{policy}</include>
</busconfig>
"""


class SystemBus(PrivateBus):
    """PrivateBus with the system bus's policy; clients run as a named user with that user's
    groups (the bus and at-kafka both look the groups up by uid)."""

    CONFIG = SYSTEM_BUS_CONFIG

    def setpriv(self, uid):
        if isinstance(uid, int):
            return super().setpriv(uid)
        user = pwd.getpwnam(uid)
        return ["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups"]


def run_admin(*argv):
    subprocess.run(argv, check=True, capture_output=True, timeout=60)


class SystemBusPolicy(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise AssertionError("test_dbus_system creates users: run it as root")
        kafkautil.wait_for_broker(timeout=90)
        suffix = str(os.getpid())
        # The group stays after the test (what the package's sysusers.d file creates anyway):
        # removing it could pull it from under another run of this test.
        try:
            grp.getgrnam(GROUP)
        except KeyError:
            subprocess.run(["groupadd", "--system", GROUP], capture_output=True, timeout=60)
            grp.getgrnam(GROUP)  # ours, or a concurrent run's
        cls.member, cls.outsider = f"atk-member-{suffix}", f"atk-outsider-{suffix}"
        run_admin("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                  "--groups", GROUP, cls.member)
        run_admin("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                  cls.outsider)
        cls.bus = SystemBus(policy=POLICY)

    @classmethod
    def tearDownClass(cls):
        cls.bus.stop()
        for user in (cls.member, cls.outsider):
            subprocess.run(["userdel", user], capture_output=True, timeout=60)

    def start(self):
        replay = Replay(vector("relay-capture/frames.bin"), "--loop", "0", "--rate", "50")
        self.addCleanup(replay.stop)
        daemon = Daemon(replay.url, kafkautil.unique_topic("sysbus"), bus="system",
                        env={"DBUS_SYSTEM_BUS_ADDRESS": self.bus.address})
        self.addCleanup(daemon.kill)
        wait_until(lambda: not daemon.alive() or self.bus.owned(), 30, f"{NAME} on the bus")
        self.assertTrue(daemon.alive(), daemon.output())
        wait_until(lambda: self.bus.get("State") == "connected", 30, "State connected")
        return daemon

    def test_group_member_may_control(self):
        daemon = self.start()
        member = self.member
        self.bus.call("Pause", uid=member)
        wait_until(lambda: self.bus.get("Paused", uid=self.outsider), 10, "Paused")
        self.bus.set_osprey(True, uid=member)
        self.assertTrue(self.bus.get("OspreyCompatible", uid=member))
        self.bus.run("gdbus", "call", "--dest", NAME, "--object-path", PATH, "--method",
                     f"{IFACE}.Resume", uid=member)
        wait_until(lambda: not self.bus.get("Paused"), 10, "not Paused")
        self.bus.call("Reconnect", uid=member)
        self.bus.set_osprey(False, uid=member)
        self.assertFalse(self.bus.get("OspreyCompatible"))
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])

    def test_others_may_only_read(self):
        daemon = self.start()
        outsider = self.outsider
        snapshot = self.bus.get_all(uid=outsider)
        self.assertEqual(snapshot["State"], "connected")
        self.assertFalse(snapshot["Paused"])
        r = self.bus.call("Pause", uid=outsider, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Access denied", r.stderr)
        # the bus's policy refused it, before at-kafka's own check
        r = self.bus.run("gdbus", "call", "--dest", NAME, "--object-path", PATH, "--method",
                         f"{IFACE}.Pause", uid=outsider, check=False)
        self.assertIn("org.freedesktop.DBus.Error.AccessDenied", r.stderr)
        self.assertIn("Rejected send message", r.stderr)
        r = self.bus.set_osprey(True, uid=outsider, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Access denied", r.stderr)
        r = self.bus.call("Reconnect", uid=outsider, check=False)
        self.assertNotEqual(r.returncode, 0)
        self.assertFalse(self.bus.get("Paused"))
        self.assertFalse(self.bus.get("OspreyCompatible"))
        # root may, as README says
        self.bus.call("Pause")
        wait_until(lambda: self.bus.get("Paused", uid=outsider), 10, "Paused by root")
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
