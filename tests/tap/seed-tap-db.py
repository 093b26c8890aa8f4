#!/usr/bin/env python3
"""Puts the events of a Tap session (JSON lines in Tap's wire format) into a real Tap's
outbox, as Tap's own firehose/backfill stages would: one outbox_buffers row per event
(id, did, live, data = the exact text Tap sends). Tap must have created its database
first (it migrates on start); run Tap with --outbox-only afterwards and it delivers them.
Usage: seed-tap-db.py TAP_DB SESSION_JSONL"""
import json
import sqlite3
import sys

db = sqlite3.connect(sys.argv[1])
with open(sys.argv[2], encoding="utf-8") as f:
    for line in f:
        line = line.rstrip("\n")
        if not line:
            continue
        evt = json.loads(line)
        body = evt.get("record") or evt.get("identity")
        # Identity events go to the outbox as not live (Tap's AddIdentityEvent).
        live = evt["type"] == "record" and bool(body.get("live"))
        db.execute("INSERT INTO outbox_buffers (id, did, live, data) VALUES (?, ?, ?, ?)",
                   (evt["id"], body["did"], live, line))
db.commit()
db.close()
