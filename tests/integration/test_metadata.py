#!/usr/bin/env python3
"""Event metadata and service filters end to end: a real PLC directory and two real PDSes
(tests/plc/run-plc.mjs), the real at-kafka subscribed straight to a PDS's own
com.atproto.sync.subscribeRepos, posts made through the PDS's XRPC API, and a real broker.
Handles are verified against a real DNS server on loopback (loopdns.py, the daemon's only name
server) and the PDS's own /.well-known/atproto-did. Checks what reaches Kafka against what
run-plc.mjs reports it created (handles, PDS endpoints), not against the daemon's own output."""
import json
import os
import subprocess
import unittest
import urllib.request

import kafkautil
from atkharness import Daemon, wait_until
from loopdns import LoopDns

SOURCE_DIR = os.environ["ATK_SOURCE_DIR"]
RUN_PLC = os.path.join(SOURCE_DIR, "tests", "plc", "run-plc.mjs")
ALICE, CAROL, BOB = 0, 1, 2  # run-plc.mjs's accounts: alice and carol on PDS 0, bob on PDS 1
# What a commit of an account whose DID cannot be resolved carries (as the reference).
UNRESOLVED = {"didDocument": {"id": ""}, "accountAge": -1, "profile": None}


class Plc:
    """run-plc.mjs as a subprocess: its ready line, and its stdin commands."""

    def __init__(self):
        modules = os.path.join(SOURCE_DIR, "tests", "plc", "node_modules", "@did-plc")
        if not os.path.isdir(modules):
            raise AssertionError(f"{modules} is missing: run `npm ci --prefix tests/plc`")
        self.proc = subprocess.Popen(["node", RUN_PLC], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "LOG_ENABLED": "false"})
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("run-plc.mjs exited before it was ready")
        self.ready = json.loads(line)
        self.tokens = {}

    def account(self, i):
        return self.ready["accounts"][i]

    def pds_of(self, i):
        """The PDS entry ({url, publicUrl, host}) account i lives on."""
        endpoint = self.account(i)["pds"]
        return next(p for p in self.ready["pds"] if p["publicUrl"] == endpoint)

    def command(self, text):
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()
        answer = json.loads(self.proc.stdout.readline())
        if "ok" not in answer:
            raise AssertionError(f"run-plc.mjs: {text} -> {answer}")

    def post(self, i, text):
        """Creates an app.bsky.feed.post for account i on its PDS; returns the record's uri."""
        account, base = self.account(i), self.pds_of(i)["url"]
        if i not in self.tokens:
            session = xrpc(base, "com.atproto.server.createSession",
                           {"identifier": account["handle"], "password": "password"})
            self.tokens[i] = session["accessJwt"]
        record = {"$type": "app.bsky.feed.post", "text": text,
                  "createdAt": "2026-01-01T00:00:00.000Z"}
        out = xrpc(base, "com.atproto.repo.createRecord",
                   {"repo": account["did"], "collection": "app.bsky.feed.post",
                    "record": record}, self.tokens[i])
        return out["uri"]

    def stop(self):
        self.proc.stdin.close()  # its signal to stop
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()


def xrpc(base, method, body, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{base}/xrpc/{method}", data=json.dumps(body).encode(),
                                     headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def operations(topic):
    """{record uri: parsed value} of the operation messages in topic."""
    out = {}
    for message in kafkautil.consume_all(topic):
        value = json.loads(message["value"])
        if value.get("operation"):
            out.setdefault(value["operation"]["uri"], value)
    return out


def wait_for_uris(topic, uris, timeout=60):
    return wait_until(lambda: (lambda ops: ops if all(u in ops for u in uris) else None)(
        operations(topic)), timeout, f"{len(uris)} posts in {topic}", interval=0.5)


class MetadataTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker()
        cls.plc = Plc()
        # Alice's handle has a TXT record; Carol's is answered by PDS 0's well-known.
        cls.dns = LoopDns({"a": ["test"],
                           "txt": {"_atproto.alice.test": [f"did={cls.plc.account(ALICE)['did']}"]}})

    @classmethod
    def tearDownClass(cls):
        cls.dns.stop()
        cls.plc.stop()

    def start_daemon(self, account, *extra):
        """at-kafka on the PDS of `account`, from its live tip, connected."""
        topic = kafkautil.unique_topic("atk-meta")
        well_known = "http:" + self.plc.pds_of(ALICE)["url"].rsplit(":", 1)[1]
        daemon = Daemon(self.plc.pds_of(account)["url"], topic, "--cursor", "live",
                        "--plc-host", self.plc.ready["plc"], *extra, prefix=self.dns.prefix(),
                        env={"ATKAFKA_TEST_HANDLE_WELL_KNOWN": well_known})
        self.addCleanup(daemon.kill)
        wait_until(lambda: daemon.metric("atkafka_relay_connected") == 1, 60,
                   f"at-kafka connected to the PDS\n{daemon.output()}")
        return daemon, topic

    def assert_metadata(self, value, account):
        """eventMetadata as the reference gives it, field by field."""
        want = self.plc.account(account)
        meta = value["eventMetadata"]
        self.assertIsNotNone(meta, value)
        self.assertEqual(list(meta), ["didDocument", "pdsHost", "handle", "didCreatedAt",
                                      "accountAge", "profile"])
        self.assertEqual(meta["handle"], want["handle"])  # verified both ways
        self.assertEqual(meta["pdsHost"], want["pds"])  # the endpoint URL
        doc = meta["didDocument"]
        self.assertEqual(list(doc), ["id", "alsoKnownAs", "verificationMethod", "service"])
        self.assertEqual(doc["id"], want["did"])
        self.assertEqual(doc["alsoKnownAs"], [f"at://{want['handle']}"])
        self.assertEqual(doc["service"], [{"id": "#atproto_pds",
                                           "type": "AtprotoPersonalDataServer",
                                           "serviceEndpoint": want["pds"]}])
        self.assertEqual([(k["id"], k["controller"]) for k in doc["verificationMethod"]],
                         [(want["did"] + "#atproto", want["did"])])
        self.assertTrue(meta["didCreatedAt"].endswith("Z"), meta)
        self.assertTrue(0 <= meta["accountAge"] < 3600, meta)
        self.assertIsNone(meta["profile"])
        self.assertEqual(value["did"], want["did"])

    def test_event_metadata(self):
        daemon, topic = self.start_daemon(ALICE, "--event-metadata")
        uris = {self.plc.post(ALICE, "hello from alice"): ALICE,
                self.plc.post(CAROL, "hello from carol"): CAROL}
        ops = wait_for_uris(topic, uris)
        for uri, account in uris.items():
            self.assert_metadata(ops[uri], account)
            self.assertEqual(ops[uri]["operation"]["record"]["text"],
                             f"hello from {self.plc.account(account)['handle'].split('.')[0]}")
        # The PLC directory of run-plc.mjs has an audit log: the creation time is known.
        self.assertTrue(all(ops[u]["eventMetadata"]["didCreatedAt"] for u in uris))
        self.assertGreaterEqual(daemon.metric("atkafka_metadata_events", result="enriched"), 2)
        self.assertGreater(daemon.metric("atkafka_plc_requests", kind="did_doc", status="ok"), 0)
        # Alice's handle by DNS, Carol's by HTTP (the TXT lookup found nothing first).
        self.assertEqual(daemon.metric("atkafka_handle_requests", kind="dns", status="ok"), 1)
        self.assertEqual(daemon.metric("atkafka_handle_requests", kind="well_known",
                                       status="ok"), 1)
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])

    def test_handle_not_verified(self):
        """A TXT record that names another DID: the handle is "handle.invalid"."""
        self.dns.set_zone({"a": ["test"], "txt": {
            "_atproto.alice.test": ["did=did:plc:aaaaaaaaaaaaaaaaaaaaaaaa"]}})
        self.addCleanup(self.dns.set_zone, {"a": ["test"], "txt": {
            "_atproto.alice.test": [f"did={self.plc.account(ALICE)['did']}"]}})
        daemon, topic = self.start_daemon(ALICE, "--event-metadata")
        uri = self.plc.post(ALICE, "alice, unverified")
        meta = wait_for_uris(topic, [uri])[uri]["eventMetadata"]
        self.assertEqual(meta["handle"], "handle.invalid")
        self.assertEqual(meta["pdsHost"], self.plc.account(ALICE)["pds"])
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])

    def test_service_filter(self):
        """--watched-services localhost: PDS 0's accounts (host localhost) go through, PDS
        1's (pds.b.test) are dropped, and the dropped ones still move the cursor."""
        self.assertEqual(self.plc.pds_of(ALICE)["host"], "localhost")
        self.assertNotEqual(self.plc.pds_of(BOB)["host"], "localhost")
        kept, kept_topic = self.start_daemon(ALICE, "--watched-services", "localhost")
        dropped, dropped_topic = self.start_daemon(BOB, "--watched-services", "localhost")

        uri = self.plc.post(ALICE, "alice, watched")
        ops = wait_for_uris(kept_topic, [uri])
        self.assertIsNone(ops[uri]["eventMetadata"])  # filters alone attach nothing

        self.plc.post(BOB, "bob, not watched")
        wait_until(lambda: dropped.metric("atkafka_metadata_events", result="filtered") >= 1, 30,
                   "bob's post filtered")
        # Settled like a delivered message: the cursor moves past the seq.
        wait_until(lambda: (dropped.sample("atkafka_cursor_seq") or 0) >= dropped.metric(
            "atkafka_last_seq") > 0, 30, "the cursor past bob's filtered post")
        self.assertGreaterEqual(dropped.metric("atkafka_filtered_ops_total"), 1)
        self.assertEqual(dropped.stop(), 0, dropped.output()[-3000:])
        self.assertEqual(kept.stop(), 0, kept.output()[-3000:])
        self.assertEqual(kafkautil.count(dropped_topic), 0)
        self.assertTrue(all(v["did"] != self.plc.account(BOB)["did"]
                            for v in operations(kept_topic).values()))

    def test_rewind_through_the_stage(self):
        """A producer queue of one message is full for most of a burst: the sink holds the
        messages it refuses and produces them in order as the queue drains (before, each
        refusal rewound to the cursor and dropped what waited in the stage). Every post ends
        up in Kafka, with its metadata, in order per account, and nothing rewinds."""
        # linger.ms keeps each message in the queue a while, so the next post's message
        # finds the queue full (posts come tens of ms apart).
        daemon, topic = self.start_daemon(ALICE, "--event-metadata",
                                          "-X", "queue.buffering.max.messages=1",
                                          "-X", "linger.ms=250")
        posts = [(i % 2 and CAROL or ALICE, f"burst {i}") for i in range(12)]
        uris = [self.plc.post(account, text) for account, text in posts]
        ops = wait_for_uris(topic, uris, timeout=240)
        for uri, (account, text) in zip(uris, posts):
            self.assert_metadata(ops[uri], account)
            self.assertEqual(ops[uri]["operation"]["record"]["text"], text)
        rewinds = daemon.output().count("producing again")
        self.assertEqual(rewinds, 0, "a full producer queue rewound")
        messages = [json.loads(m["value"]) for m in kafkautil.consume_all(topic)]
        for account in (ALICE, CAROL):
            did = self.plc.account(account)["did"]
            seen = [v["operation"]["uri"] for v in messages
                    if v.get("operation") and v["did"] == did]
            firsts = list(dict.fromkeys(seen))  # first copies, in partition order
            self.assertEqual(firsts, [u for u, (a, _) in zip(uris, posts) if a == account])
        print(f"  rewinds: {rewinds}, {len(messages)} messages for {len(uris)} posts", flush=True)
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])

    def test_z_plc_stopped(self):
        """The PLC directory goes away mid-run: posts of an account not looked up yet still
        arrive, without metadata; a cached account keeps its metadata. Runs last: it stops
        the shared directory."""
        daemon, topic = self.start_daemon(ALICE, "--event-metadata")
        before = self.plc.post(ALICE, "before the stop")
        ops = wait_for_uris(topic, [before])
        self.assert_metadata(ops[before], ALICE)

        self.plc.command("stop-plc")
        after = [self.plc.post(CAROL, f"carol {i}") for i in range(3)]
        after.append(self.plc.post(ALICE, "alice after the stop"))
        ops = wait_for_uris(topic, after, timeout=90)
        for uri in after[:3]:
            self.assertEqual(ops[uri]["eventMetadata"], UNRESOLVED)
        self.assert_metadata(ops[after[3]], ALICE)
        self.assertGreaterEqual(daemon.metric("atkafka_metadata_events", result="degraded"), 3)
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])


if __name__ == "__main__":
    unittest.main(verbosity=2)
