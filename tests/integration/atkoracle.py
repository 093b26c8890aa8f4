"""The messages at-kafka should put into Kafka, built from the oracle renderings of the
captures (the frames.jsonl beside each frames.bin), and their comparison with what Kafka
holds. Nothing here runs or imports at-kafka's own code."""
import calendar
import collections
import json
import os
import re
import time

VECTORS = os.environ["ATK_VECTORS_DIR"]
STARTED_AT = time.time()


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
        path = os.path.join(VECTORS, re.sub(r"\.bin$", ".jsonl", relative))
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
