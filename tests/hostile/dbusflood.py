#!/usr/bin/env python3
"""Floods a D-Bus service with method calls from one connection, with only the standard
library (a minimal D-Bus client: EXTERNAL auth, Hello, pipelined calls without arguments).

    dbusflood.py ADDRESS N [--no-reply] [DEST PATH IFACE METHOD]

ADDRESS is a "unix:path=..." bus address. Prints one line: calls sent, error replies whose name
contains AccessDenied, other replies, seconds. Run it as another uid (setpriv) to be refused.
Calls wait for their replies in batches of 100 (the bus allows 128 pending replies per
connection); with --no-reply they are sent flagged NO_REPLY_EXPECTED, as fast as the bus takes
them, and one last call waits for its reply (counted alone)."""
import os
import socket
import struct
import sys
import time

DEFAULT = ("io.github.atkafka.Daemon1", "/io/github/atkafka/Daemon1",
           "io.github.atkafka.Daemon1", "Pause")
BATCH = 100  # the bus allows 128 pending replies per connection by default


def pad(buf, n=8):
    return buf + b"\0" * (-len(buf) % n)


def field(code, sig, value):
    raw = value.encode()
    if sig == "g":
        body = bytes([len(raw)]) + raw + b"\0"
    else:
        body = struct.pack("<I", len(raw)) + raw + b"\0"
    return pad(bytes([code, 1]) + sig.encode() + b"\0" + body)


def call(serial, dest, path, iface, member, flags=0):
    fields = (field(1, "o", path) + field(2, "s", iface) + field(3, "s", member)
              + field(6, "s", dest))
    # the array length counts up to the end of the last field, not the padding after it
    last = field(6, "s", dest)
    unpadded = len(fields) - len(last) + len(last.rstrip(b"\0")) + 1
    head = struct.pack("<cBBBII", b"l", 1, flags, 1, 0, serial) + struct.pack("<I", unpadded)
    return pad(head + fields[:unpadded])


def read_messages(sock, buf):
    """Returns (messages, rest): complete messages as (type, raw bytes)."""
    out = []
    while len(buf) >= 16:
        body_len, _serial, fields_len = struct.unpack_from("<III", buf, 4)
        head_len = 16 + fields_len + (-(16 + fields_len) % 8)
        total = head_len + body_len
        if len(buf) < total:
            break
        out.append((buf[1], buf[:total]))
        buf = buf[total:]
    return out, buf


def main():
    args = [a for a in sys.argv[1:] if a != "--no-reply"]
    no_reply = len(args) < len(sys.argv) - 1
    address, n = args[0], int(args[1])
    dest, path, iface, member = args[2:6] if len(args) >= 6 else DEFAULT
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(address.split("path=", 1)[1].split(",")[0])
    sock.sendall(b"\0AUTH EXTERNAL " + str(os.getuid()).encode().hex().encode() + b"\r\n")
    if not sock.recv(4096).startswith(b"OK"):
        raise SystemExit("auth refused")
    sock.sendall(b"BEGIN\r\n")
    sock.sendall(call(1, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                      "org.freedesktop.DBus", "Hello"))
    buf = b""
    replies = 0
    while replies < 1:
        msgs, buf = read_messages(sock, buf + sock.recv(65536))
        replies += sum(1 for t, _ in msgs if t in (2, 3))
    start = time.monotonic()
    serial, denied, other, sent = 2, 0, 0, 0
    if no_reply:
        while sent < n:
            batch = min(1000, n - sent)
            sock.sendall(b"".join(call(serial + i, dest, path, iface, member, flags=1)
                                  for i in range(batch)))
            serial += batch
            sent += batch
        n = sent + 1  # and one that waits
    while sent < n:
        batch = min(BATCH, n - sent)
        sock.sendall(b"".join(call(serial + i, dest, path, iface, member) for i in range(batch)))
        serial += batch
        sent += batch
        got = 0
        while got < batch:
            msgs, buf = read_messages(sock, buf + sock.recv(1 << 20))
            for kind, raw in msgs:
                if kind == 3 and b"AccessDenied" in raw:
                    denied += 1
                    got += 1
                elif kind in (2, 3):
                    other += 1
                    got += 1
                    if other <= 3:
                        print("other reply:", raw[16:200], file=sys.stderr)
    print(f"sent {sent} denied {denied} other {other} seconds {time.monotonic() - start:.1f}",
          flush=True)


if __name__ == "__main__":
    main()
