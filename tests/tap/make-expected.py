#!/usr/bin/env python3
"""Writes session-expected.jsonl: what at-kafka must produce (standard shape) for each event
of session.jsonl, derived from reference.md's output rules by hand, not by our C code.
Times are written out by hand (see the comments); "now" is the tests' fixed clock,
2026-11-27T21:50:00.500Z. Run once; the output is committed and reviewed."""
import json
import sys

NOW = ("2026-11-27T21:50:00.500Z", 1795816200500)
# Tap sends no time: createdAt of posts/likes/reposts when it parses, else the TID rkey,
# else now. The TIDs were minted from these times (tests/tap/README.md).
TIMES = {
    1: ("2024-10-07T12:00:00.123Z", 1728302400123),  # post createdAt, as sent
    2: ("2024-10-07T12:05:30.250Z", 1728302730250),  # like createdAt, as sent
    3: NOW,                                           # profile: rkey "self"
    4: ("2024-10-07T12:00:00.123Z", 1728302400123),  # delete: TID 3l5wb3dzgm227 (…123456 µs)
    5: NOW,                                           # identity: no time at all
    6: ("2025-01-02T03:04:05.678Z", 1735787045678),  # TID 3leq3p6auxk25
    7: ("2025-01-02T03:04:05.678Z", 1735787045678),  # follow: createdAt not used, TID
    8: NOW,
    9: ("2025-01-02T03:04:05.678Z", 1735787045678),  # repost: bad createdAt, TID
}

out = []
for line in open(sys.argv[1] if len(sys.argv) > 1 else "session.jsonl"):
    evt = json.loads(line)
    n, ts = evt["id"], TIMES[evt["id"]]
    if evt["type"] == "record":
        r = evt["record"]
        path = r["collection"] + "/" + r["rkey"]
        delete = r["action"] == "delete"
        value = {"did": r["did"], "timestamp": ts[0], "operation": {
            "action": r["action"], "collection": r["collection"], "rkey": r["rkey"],
            "uri": "at://" + r["did"] + "/" + path, "cid": "" if delete else r["cid"],
            "path": path, "record": None if delete else r["record"]},
            "eventMetadata": None}
        out.append({"id": n, "key": r["did"], "action_name": "operation#" + r["action"],
                    "collection": r["collection"], "event_time_ms": ts[1], "value": value})
    else:
        i = evt["identity"]
        out.append({"id": n, "key": i["did"], "action_name": "identity", "collection": None,
                    "event_time_ms": ts[1], "value": {"did": i["did"], "timestamp": ts[0],
                    "identity": {"seq": n, "handle": i["handle"]}, "eventMetadata": None}})
        out.append({"id": n, "key": i["did"], "action_name": "account", "collection": None,
                    "event_time_ms": ts[1], "value": {"did": i["did"], "timestamp": ts[0],
                    "account": {"active": i["is_active"], "seq": n, "status": i["status"]},
                    "eventMetadata": None}})
with open("session-expected.jsonl", "w") as f:
    for o in out:
        f.write(json.dumps(o, ensure_ascii=False, separators=(",", ":")) + "\n")
