#!/usr/bin/env python3
# Writes a libFuzzer seed corpus cut from the test vectors.
#
#   make-corpus.py VECTORS_DIR OUT_DIR KIND [STAMP]
#
# KIND is one of:
#   frame   every WebSocket message of the captured .bin frame files
#   car     the CAR of every captured #commit/#sync, plus the small repository CARs
#   record  every DAG-CBOR block of those CARs, the single-record .cbor files, the
#           data-model fixtures' CBOR and the records/cases.jsonl records (deep nesting,
#           CIDv0 links)
#   tap     every Tap event of the Tap session fixture (tests/tap/session.jsonl)
#   cursor  cursor records ({"seq":N,"updated":…}) as at-kafka writes them, and near misses
#   did     DID documents (first line: the DID they must name), PLC audit timestamps
#   audit   PLC audit logs; handles' /.well-known/atproto-did bodies and TXT records
#   profile app.bsky.actor.getProfile answers
#   cid     every CID string ("$link") of the captured frames' oracle (.jsonl)
# Files are named by their SHA-256, so reruns are idempotent. STAMP, if given, is touched
# at the end (for build systems that want a file output).
# SPDX-License-Identifier: MIT

import base64
import glob
import hashlib
import json
import os
import re
import struct
import sys

CAPTURES = ["relay-capture", "pds-capture", "records"]
MAX_SEED = 64 * 1024


def b64(text):
    return base64.b64decode(text + "=" * (-len(text) % 4))


def frames(vectors):
    for d in CAPTURES:
        for path in sorted(glob.glob(os.path.join(vectors, d, "*.bin"))):
            with open(path, "rb") as f:
                data = f.read()
            pos = 0
            while pos + 4 <= len(data):
                (n,) = struct.unpack_from("<I", data, pos)
                yield data[pos + 4 : pos + 4 + n]
                pos += 4 + n


def capture_cars(vectors):
    for d in CAPTURES:
        for path in sorted(glob.glob(os.path.join(vectors, d, "*.jsonl"))):
            with open(path) as f:
                for line in f:
                    blocks = json.loads(line).get("body", {}).get("blocks")
                    if isinstance(blocks, dict) and "$bytes" in blocks:
                        yield b64(blocks["$bytes"])


def small_cars(vectors):
    for path in sorted(glob.glob(os.path.join(vectors, "indigo", "testing-testdata", "*.car"))):
        with open(path, "rb") as f:
            data = f.read()
        if len(data) <= MAX_SEED:
            yield data


def varint(data, pos):
    value = shift = 0
    while True:
        b = data[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def car_blocks(car):
    """Yields the data of each dag-cbor block (CIDv1, codec 0x71, sha2-256)."""
    header_len, pos = varint(car, 0)
    pos += header_len
    while pos < len(car):
        n, pos = varint(car, pos)
        block = car[pos : pos + n]
        pos += n
        # 01 71 12 20 <32-byte digest>
        if block[:4] == b"\x01\x71\x12\x20":
            yield block[36:]


def records(vectors):
    for car in list(capture_cars(vectors)) + list(small_cars(vectors)):
        yield from car_blocks(car)
    for path in sorted(glob.glob(os.path.join(vectors, "indigo", "testing-testdata", "*.cbor"))):
        with open(path, "rb") as f:
            yield f.read()
    with open(os.path.join(vectors, "interop", "data-model", "data-model-fixtures.json")) as f:
        for case in json.load(f):
            yield b64(case["cbor_base64"])
    with open(os.path.join(vectors, "records", "cases.jsonl")) as f:
        for line in f:
            if line.strip():
                yield bytes.fromhex(json.loads(line)["cbor"])


HERE = os.path.dirname(os.path.abspath(__file__))


def tap_events(vectors):
    with open(os.path.join(HERE, "..", "tests", "tap", "session.jsonl"), "rb") as f:
        for line in f:
            if line.strip():
                yield line.rstrip(b"\n")


def cursor_records(vectors):
    for seq in (0, 1, 42, 26404131, 2**53, 2**63 - 2):
        yield b'{"seq":%d,"updated":"2024-01-01T12:00:00.000Z"}' % seq
    yield b'{"updated":"2024-01-01T12:00:00.000Z","seq" : 7 }'
    yield b'{"seq":"7"}'
    yield b"null"


def did_documents(vectors):
    did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
    doc = {
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"],
        "id": did,
        "alsoKnownAs": ["at://alice.example.com"],
        "verificationMethod": [{"id": did + "#atproto", "type": "Multikey", "controller": did,
                                "publicKeyMultibase": "zQ3shXjHeiBuRCKmM36cuYnm7YEMzhGnCmCyW92sRJ9pribSF"}],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                     "serviceEndpoint": "https://PDS.Example.com:2583/"}],
    }
    yield (did + "\n" + json.dumps(doc)).encode()
    web = dict(doc, id="did:web:example.com", service=[{"id": "did:web:example.com#atproto_pds",
                                                         "serviceEndpoint": "http://[::1]:8080"}])
    yield ("did:web:example.com\n" + json.dumps(web)).encode()
    yield b"2023-05-01T10:00:00.000Z"
    yield b"2023-05-01T10:00:00+02:00"


def ozone_pages(vectors):
    """A real queryEvents reply (tests/vectors/ozone/), each of its events alone, cursor files."""
    with open(os.path.join(vectors, "ozone", "query-events-page.json"), "rb") as f:
        page = f.read()
    yield page
    for event in json.loads(page)["events"]:
        yield json.dumps(event, separators=(",", ":")).encode()
    yield b'{"events":[]}'
    yield b"did:plc:labeler 2026-11-30T10:07:55.097Z 42\n"


def audit_logs(vectors):
    did = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
    op = {"sig": "x", "prev": None, "type": "plc_operation",
          "services": {"atproto_pds": {"type": "AtprotoPersonalDataServer",
                                       "endpoint": "https://pds.example.com"}},
          "alsoKnownAs": ["at://alice.example.com"], "rotationKeys": ["did:key:zQ3sh"],
          "verificationMethods": {"atproto": "did:key:zQ3sh"}}
    entry = {"did": did, "operation": op, "cid": "bafyreib2rxk3rh6kzwq", "nullified": False,
             "createdAt": "2023-05-01T10:00:00.000Z"}
    yield json.dumps([entry]).encode()
    yield json.dumps([entry, dict(entry, createdAt="2024-01-02T03:04:05.678901+02:00",
                                  nullified=True)]).encode()
    yield json.dumps([dict(entry, createdAt="not a time")]).encode()
    yield b"[]"
    # the same bytes also go through the handle answers' readers
    yield ("did=" + did).encode()
    yield (" " + did + "\n").encode()


def profiles(vectors):
    yield json.dumps({"did": "did:plc:ewvi7nxzyoun6zhxrhs64oiz", "handle": "alice.example.com",
                      "displayName": "Alice \u2028 <b>&", "followersCount": 12,
                      "labels": [], "viewer": {"muted": False},
                      "associated": {"lists": 0, "chat": {"allowIncoming": "following"}},
                      "createdAt": "2023-05-01T10:00:00.000Z"}).encode()
    yield b'{"error":"InvalidRequest","message":"Profile not found"}'


def cid_strings(vectors):
    seen = set()
    for d in CAPTURES:
        for path in sorted(glob.glob(os.path.join(vectors, d, "*.jsonl"))):
            with open(path) as f:
                for m in re.finditer(r'"\$link": ?"(b[a-z2-7]+)"', f.read()):
                    if m.group(1) not in seen and len(seen) < 200:
                        seen.add(m.group(1))
                        yield m.group(1).encode()


def ws_frames(vectors):
    """WebSocket streams a server sends (first byte: the fuzz target's settings)."""
    def frame(opcode, payload, fin=True):
        n = len(payload)
        head = bytes([(0x80 if fin else 0) | opcode])
        if n < 126:
            head += bytes([n])
        elif n < 65536:
            head += bytes([126]) + struct.pack(">H", n)
        else:
            head += bytes([127]) + struct.pack(">Q", n)
        return head + payload
    some = list(frames(vectors))[:8]
    for i, f in enumerate(some):
        yield bytes([i % 5]) + frame(2, f) + frame(9, b"hi") + frame(2, f)
    if some:
        f = some[0]
        yield bytes([3]) + frame(2, f[:10], False) + frame(9, b"") + frame(0, f[10:])
        yield bytes([2]) + frame(1, b"ab", False) + frame(0, b"cd") + frame(8, b"\x03\xe8bye")
        yield bytes([2]) + b"".join(frame(9, b"x") for _ in range(120))


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__ or "usage: make-corpus.py VECTORS_DIR OUT_DIR KIND [STAMP]")
    vectors, out, kind = sys.argv[1:4]
    sources = {
        "frame": frames,
        "car": lambda v: list(capture_cars(v)) + list(small_cars(v)),
        "record": records,
        "tap": tap_events,
        "cursor": cursor_records,
        "did": did_documents,
        "cid": cid_strings,
        "ozone": ozone_pages,
        "audit": audit_logs,
        "profile": profiles,
        "wsframe": ws_frames,
    }
    if kind not in sources:
        sys.exit("unknown kind %r (%s)" % (kind, ", ".join(sources)))
    os.makedirs(out, exist_ok=True)
    count = 0
    for seed in sources[kind](vectors):
        if not seed or len(seed) > MAX_SEED:
            continue
        name = os.path.join(out, hashlib.sha256(seed).hexdigest()[:16])
        if not os.path.exists(name):
            with open(name, "wb") as f:
                f.write(seed)
        count += 1
    if count == 0:
        sys.exit("no seeds found under %s" % vectors)
    if len(sys.argv) == 5:
        with open(sys.argv[4], "w") as f:
            f.write("%d seeds\n" % count)


if __name__ == "__main__":
    main()
