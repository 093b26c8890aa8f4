#!/usr/bin/env python3
"""Records the official PDS accepts come out of at-kafka as the PDS itself renders them.

A real PLC directory and PDS (tests/plc/run-plc.mjs), the real at-kafka subscribed to the
PDS's own com.atproto.sync.subscribeRepos, a real broker. Records are written through
createRecord (a CIDv0 link; arrays and maps nested 64 to 1,000 levels; the deepest array
the PDS accepts) and each operation in Kafka is compared with what the PDS's getRecord
serves for it (the TypeScript libraries' rendering), or, where getRecord itself gives up,
with the JSON the PDS accepted."""
import json
import os
import sys
import unittest
import urllib.error
import urllib.parse
import urllib.request

import kafkautil
from atkharness import Daemon, Replay, json_lines, vector, wait_until
from test_metadata import ALICE, Plc, operations

# Deep records go through Python's json module, which counts nesting against this limit.
sys.setrecursionlimit(50000)

COLLECTION = "com.example.fidelity"
CIDV0 = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"


def request(base, method, body=None, token=None, query=None):
    """An XRPC call: POST with a raw JSON text body, or GET with query parameters.
    Returns (status, parsed answer or None)."""
    url = f"{base}/xrpc/{method}"
    if query is not None:
        url += "?" + urllib.parse.urlencode(query)
    headers = {"content-type": "application/json"} if body is not None else {}
    if token:
        headers["authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, data=body.encode() if body is not None else None,
                                 headers=headers, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, None


def nested(kind, levels):
    """JSON text of a record nested `levels` arrays or maps deep, its own map included
    (built as text: json.dumps would recurse once per level), keys in DAG-CBOR order."""
    inner = levels - 1
    value = ("[" * inner + '"leaf"' + "]" * inner if kind == "array"
             else '{"a":' * inner + '"leaf"' + "}" * inner)
    return '{"v":%s,"$type":"%s"}' % (value, COLLECTION)


def canonical(value):
    """Compact JSON text keeping member order: two renderings compare as text."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class RecordsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker()
        cls.plc = Plc()
        cls.base = cls.plc.pds_of(ALICE)["url"]
        account = cls.plc.account(ALICE)
        status, session = request(cls.base, "com.atproto.server.createSession", json.dumps(
            {"identifier": account["handle"], "password": "password"}))
        assert status == 200, status
        cls.token = session["accessJwt"]
        cls.did = account["did"]

    @classmethod
    def tearDownClass(cls):
        cls.plc.stop()

    def create(self, record_text):
        """createRecord without lexicon validation; (status, answer)."""
        body = '{"repo":"%s","collection":"%s","validate":false,"record":%s}' % (
            self.did, COLLECTION, record_text)
        return request(self.base, "com.atproto.repo.createRecord", body, self.token)

    def get_record(self, uri):
        status, answer = request(self.base, "com.atproto.repo.getRecord", query={
            "repo": self.did, "collection": COLLECTION, "rkey": uri.rsplit("/", 1)[1]})
        return answer if status == 200 else None

    def test_records_rendered_as_the_pds_renders_them(self):
        topic = kafkautil.unique_topic("atk-records")
        daemon = Daemon(self.base, topic, "--cursor", "live")
        self.addCleanup(daemon.kill)
        wait_until(lambda: daemon.metric("atkafka_relay_connected") == 1, 60,
                   f"at-kafka connected to the PDS\n{daemon.output()}")

        texts = {"cidv0": '{"$type":"%s","link":{"$link":"%s"}}' % (COLLECTION, CIDV0)}
        for levels in (64, 128, 256, 1000):
            texts[f"arrays-{levels}"] = nested("array", levels)
            texts[f"maps-{levels}"] = nested("map", levels)
        created = {}
        for name, text in texts.items():
            status, answer = self.create(text)
            self.assertEqual(status, 200, f"the PDS refused {name}")
            created[answer["uri"]] = (name, text, answer["cid"])

        # The deepest array nesting the PDS accepts here: its JavaScript stack decides,
        # somewhere between 2,000 and 6,000 levels.
        deepest = None
        for levels in (6000, 5000, 4000, 3000, 2000):
            status, answer = self.create(nested("array", levels))
            if status == 200:
                deepest = (levels, answer["uri"])
                created[answer["uri"]] = (f"arrays-{levels}", nested("array", levels),
                                          answer["cid"])
                break
        self.assertIsNotNone(deepest, "the PDS accepted no record nested 2,000 levels deep")

        ops = wait_until(lambda: (lambda o: o if all(u in o for u in created) else None)(
            operations(topic)), 90, f"{len(created)} records in {topic}", interval=0.5)
        for uri, (name, text, cid) in created.items():
            operation = ops[uri]["operation"]
            self.assertEqual(operation["cid"], cid, name)
            self.assertNotIn("recordError", operation, name)
            served = self.get_record(uri)
            if served is not None:
                self.assertEqual(served["cid"], cid, name)
                want = canonical(served["value"])
            else:
                # getRecord gives up (stack overflow) before the firehose does: compare with
                # what the PDS accepted (written in canonical key order). Only the deepest
                # record may get here.
                self.assertEqual(uri, deepest[1], f"getRecord failed for {name}")
                want = canonical(json.loads(text))
            self.assertEqual(canonical(operation["record"]), want, name)

        self.assertIsNone(daemon.sample("atkafka_decode_errors_total"),
                         daemon.output()[-3000:])
        self.assertEqual(daemon.stop(), 0, daemon.output()[-3000:])
        print(f"deepest array nesting the PDS accepted: {deepest[0]}", file=sys.stderr)


class UnrenderableTest(unittest.TestCase):
    """Commit frames with a CID mismatch, a truncated record, invalid DAG-CBOR and a missing
    block (tests/vectors/records, see tests/plc/make-record-vectors.mjs) through a real
    WebSocket relay, at-kafka and the broker: by default each such operation still reaches
    Kafka with "record":null and its recordError, counted by kind and logged; with
    --skip-unrenderable-records (or its variable) they are skipped, as the reference does."""

    FRAMES = vector("records/frames.bin")
    KINDS = {"cid_mismatch": 1, "truncated": 1, "bad_cbor": 1, "missing_block": 1}

    @classmethod
    def setUpClass(cls):
        kafkautil.wait_for_broker()
        with open(vector("records/frames.jsonl")) as f:
            cls.oracle = [json.loads(line) for line in json_lines(f.read())]
        cls.n_ops = sum(len(frame["ops"]) for frame in cls.oracle)
        cls.errors = {f"at://did:plc:fidelitytestaaaaaaaaaaaa/{op['path']}": op["recordError"]
                      for frame in cls.oracle for op in frame["ops"] if op["recordError"]}
        assert sorted(cls.errors.values()) == sorted(cls.KINDS), cls.errors

    def run_daemon(self, *extra, env=None):
        topic = kafkautil.unique_topic("atk-unrenderable")
        replay = Replay(self.FRAMES)
        self.addCleanup(replay.stop)
        daemon = Daemon(replay.url, topic, *extra, env=env)
        self.addCleanup(daemon.kill)
        wait_until(lambda: daemon.sample("atkafka_last_seq") == self.oracle[-1]["seq"], 60,
                   f"the last frame handled\n{daemon.output()}")
        wait_until(lambda: daemon.metric("atkafka_kafka_in_flight_messages") == 0
                   and (daemon.sample("atkafka_produced_events", status="ok") or 0) > 0, 60,
                   "every message delivered")
        return daemon, topic

    def check_kinds(self, daemon):
        for kind, n in self.KINDS.items():
            self.assertEqual(daemon.metric("atkafka_decode_errors_total", kind=kind), n, kind)
        self.assertEqual(daemon.metric("atkafka_decode_errors_total"), sum(self.KINDS.values()))

    def test_produced_with_record_error(self):
        daemon, topic = self.run_daemon()
        self.check_kinds(daemon)
        values = [json.loads(m["value"]) for m in kafkautil.consume_all(topic)]
        self.assertEqual(len(values), self.n_ops)
        got = {v["operation"]["uri"]: v["operation"] for v in values}
        for uri, kind in self.errors.items():
            self.assertIsNone(got[uri]["record"], uri)
            self.assertEqual(got[uri]["recordError"], kind, uri)
            self.assertEqual(got[uri]["action"], "create", uri)
        self.assertTrue(all("recordError" not in op for uri, op in got.items()
                            if uri not in self.errors))
        self.assertEqual(daemon.stop(), 0)
        # Logged at message level (the daemon does not print debug here), rate-limited.
        self.assertIn("not rendered (produced with recordError)", daemon.output())

    def test_skip_option(self):
        for extra, env in ((("--skip-unrenderable-records",), None),
                           ((), {"ATKAFKA_SKIP_UNRENDERABLE_RECORDS": "true"})):
            with self.subTest(extra=extra, env=env):
                daemon, topic = self.run_daemon(*extra, env=env)
                self.check_kinds(daemon)
                values = [json.loads(m["value"]) for m in kafkautil.consume_all(topic)]
                self.assertEqual(len(values), self.n_ops - len(self.errors))
                self.assertFalse(any(v["operation"]["uri"] in self.errors for v in values))
                self.assertEqual(daemon.stop(), 0)
                self.assertIn("not rendered (operations skipped)", daemon.output())


if __name__ == "__main__":
    unittest.main(verbosity=2)
