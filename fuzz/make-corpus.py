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
# Files are named by their SHA-256, so reruns are idempotent. STAMP, if given, is touched
# at the end (for build systems that want a file output).
# SPDX-License-Identifier: MIT

import base64
import glob
import hashlib
import json
import os
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


def main():
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__ or "usage: make-corpus.py VECTORS_DIR OUT_DIR KIND [STAMP]")
    vectors, out, kind = sys.argv[1:4]
    sources = {
        "frame": frames,
        "car": lambda v: list(capture_cars(v)) + list(small_cars(v)),
        "record": records,
    }
    if kind not in sources:
        sys.exit("unknown kind %r (frame, car, record)" % kind)
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
