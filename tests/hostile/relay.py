#!/usr/bin/env python3
"""A scriptable hostile relay for tests: a WebSocket server from the standard library only.

    relay.py --mode MODE [options]

prints "ws://127.0.0.1:PORT" on its first stdout line, then one line per event a test may
wait for ("CONNECT n", "SENT n", "CLOSED n"), flushed at once. Modes:

  frames      serves a frame file ([u32 LE length][frame] records; default the relay capture)
              looped forever with ever-increasing seqs, honouring ?cursor=; --rate frames a
              second (0: flat out), --burst N frames at once every --burst-every seconds on
              top; --ping-rate pings a second interleaved (0: none)
  too-slow    answers every connection with a ConsumerTooSlow error frame and keeps it open
  error       sends one error frame (--error-name, a message of --message-bytes bytes), or an
              #info frame with --info, then the frames of the file like `frames`
  fragmented  sends one binary message of --total bytes in --fragment-bytes continuation
              frames, then the frames of the file
  ping-flood  floods ping frames as fast as the socket takes them and never reads; with
              --with-frames, the frames of the file go out in between (one per --every pings);
              --rcvbuf shrinks the relay's receive buffer so that unread pongs fill it fast

With --tls-cert FILE --tls-key FILE the relay serves wss:// (it prints "wss://127.0.0.1:PORT"),
and says "ACCEPT n" for every TCP connection and "TLS-FAILED n REASON" for every TLS handshake
that fails (e.g. the client does not trust the certificate).

Frames are DAG-CBOR as the relay sends them; the seq of a frame of the file is rewritten by
replacing the integer after the body's "seq" key (CBOR is self-delimiting, so the length of
the encoding may change)."""
import argparse
import asyncio
import base64
import hashlib
import os
import socket
import ssl
import struct
import sys
import time
import urllib.parse

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
DEFAULT_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "vectors",
                            "relay-capture", "frames.bin")


def say(line):
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


# ---- CBOR, just enough for frames ----------------------------------------------------------

def cbor_head(major, value):
    if value < 24:
        return bytes([major << 5 | value])
    for info, fmt in ((24, ">B"), (25, ">H"), (26, ">I"), (27, ">Q")):
        if value < 1 << (8 * struct.calcsize(fmt)):
            return bytes([major << 5 | info]) + struct.pack(fmt, value)
    raise ValueError(value)


def cbor(value):
    if isinstance(value, bool):
        return b"\xf5" if value else b"\xf4"
    if isinstance(value, int):
        return cbor_head(0, value) if value >= 0 else cbor_head(1, -1 - value)
    if isinstance(value, bytes):
        return cbor_head(2, len(value)) + value
    if isinstance(value, str):
        raw = value.encode()
        return cbor_head(3, len(raw)) + raw
    if isinstance(value, list):
        return cbor_head(4, len(value)) + b"".join(cbor(v) for v in value)
    if isinstance(value, dict):
        items = sorted(value.items(), key=lambda kv: (len(kv[0].encode()), kv[0].encode()))
        return cbor_head(5, len(items)) + b"".join(cbor(k) + cbor(v) for k, v in items)
    raise TypeError(type(value))


def error_frame(name, message):
    return cbor({"op": -1}) + cbor({"error": name, "message": message})


def info_frame(name, message):
    return cbor({"op": 1, "t": "#info"}) + cbor({"name": name, "message": message})


def cbor_uint_at(data, pos):
    """(value, end) of the unsigned integer encoded at pos."""
    info = data[pos] & 0x1F
    if data[pos] >> 5 != 0:
        raise ValueError("not an unsigned integer")
    if info < 24:
        return info, pos + 1
    size = {24: 1, 25: 2, 26: 4, 27: 8}[info]
    return int.from_bytes(data[pos + 1:pos + 1 + size], "big"), pos + 1 + size


class FrameFile:
    def __init__(self, path):
        data = open(path, "rb").read()
        self.frames = []  # (prefix, seq, suffix) or (frame, None, None)
        off = 0
        while off < len(data):
            (length,) = struct.unpack_from("<I", data, off)
            frame = data[off + 4:off + 4 + length]
            off += 4 + length
            at = frame.find(b"\x63seq")
            if at < 0:
                self.frames.append((frame, None, None))
                continue
            seq, end = cbor_uint_at(frame, at + 4)
            self.frames.append((frame[:at + 4], seq, frame[end:]))
        seqs = [s for _, s, _ in self.frames if s is not None]
        self.first = min(seqs)
        self.span = max(seqs) - self.first + 1

    def frame(self, index):
        """The index-th frame of the endless loop, and its seq (or None)."""
        k, i = divmod(index, len(self.frames))
        prefix, seq, suffix = self.frames[i]
        if seq is None:
            return prefix, None
        seq += k * self.span
        return prefix + cbor_head(0, seq) + suffix, seq

    def index_after(self, cursor):
        """The loop index of the first frame whose seq is above cursor."""
        if cursor is None:
            return 0
        k, _ = divmod(max(0, cursor - self.first + 1), self.span)
        index = k * len(self.frames)
        while True:
            _, seq = self.frame(index)
            if seq is not None and seq > cursor:
                return index
            index += 1


# ---- WebSocket ---------------------------------------------------------------------------

def ws_frame(opcode, payload, fin=True):
    head = bytes([(0x80 if fin else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([n])
    elif n < 1 << 16:
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([127]) + struct.pack(">Q", n)
    return head + payload


class Relay:
    def __init__(self, args):
        self.args = args
        self.file = FrameFile(args.file)
        self.connections = 0
        self.sent = 0

    async def handshake(self, reader, writer):
        request = await reader.readuntil(b"\r\n\r\n")
        lines = request.decode("latin-1").split("\r\n")
        target = lines[0].split(" ")[1]
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                headers[k.strip().lower()] = v.strip()
        key = headers.get("sec-websocket-key", "").encode()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
        writer.write(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n" % accept).encode())
        await writer.drain()
        query = urllib.parse.parse_qs(urllib.parse.urlparse(target).query)
        return int(query["cursor"][0]) if "cursor" in query else None

    async def serve(self, reader, writer):
        self.connections += 1
        n = self.connections
        if self.args.tls_context is not None:
            say(f"ACCEPT {n}")
            try:
                await writer.start_tls(self.args.tls_context, ssl_handshake_timeout=10)
            except (ssl.SSLError, ConnectionError, OSError, asyncio.TimeoutError) as e:
                say(f"TLS-FAILED {n} {getattr(e, 'reason', None) or type(e).__name__}")
                writer.transport.abort()
                return
        try:
            cursor = await self.handshake(reader, writer)
            say(f"CONNECT {n} cursor={cursor}")
            await getattr(self, "mode_" + self.args.mode.replace("-", "_"))(reader, writer,
                                                                            cursor)
        except (ConnectionError, asyncio.IncompleteReadError, OSError):
            pass
        finally:
            say(f"CLOSED {n}")
            writer.transport.abort()

    async def send(self, writer, data):
        writer.write(ws_frame(2, data))
        await writer.drain()

    async def frames(self, reader, writer, cursor, pings_every=0):
        index = self.file.index_after(cursor)
        rate = self.args.rate
        start = time.monotonic()
        sent_here = 0
        next_burst = start + self.args.burst_every if self.args.burst else None
        while True:
            frame, _ = self.file.frame(index)
            index += 1
            writer.write(ws_frame(2, frame))
            sent_here += 1
            self.sent += 1
            if self.sent % 1000 == 0:
                say(f"SENT {self.sent}")
            now = time.monotonic()
            if next_burst is not None and now >= next_burst:
                for _ in range(self.args.burst):
                    frame, _ = self.file.frame(index)
                    index += 1
                    writer.write(ws_frame(2, frame))
                    self.sent += 1
                next_burst = now + self.args.burst_every
                start, sent_here = now, 0
            await writer.drain()
            if rate > 0:
                delay = start + sent_here / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif sent_here % 64 == 0:
                await asyncio.sleep(0)

    async def mode_frames(self, reader, writer, cursor):
        if self.args.ping_rate > 0:
            asyncio.ensure_future(self.pinger(writer, self.args.ping_rate))
        await self.frames(reader, writer, cursor)

    async def pinger(self, writer, rate):
        while not writer.is_closing():
            writer.write(ws_frame(9, b"p" * 16))
            await asyncio.sleep(1 / rate)

    async def mode_too_slow(self, reader, writer, cursor):
        await self.send(writer, error_frame("ConsumerTooSlow", "you are too slow"))
        await reader.read()  # until the client goes

    async def mode_error(self, reader, writer, cursor):
        message = "x" * self.args.message_bytes
        if self.args.info:
            await self.send(writer, info_frame(self.args.error_name, message))
        else:
            await self.send(writer, error_frame(self.args.error_name, message))
        await self.frames(reader, writer, cursor)

    async def mode_fragmented(self, reader, writer, cursor):
        total, step = self.args.total, self.args.fragment_bytes
        chunk = b"\xa2" * step
        sent = 0
        while sent < total:
            size = min(step, total - sent)
            last = sent + size >= total
            writer.write(ws_frame(2 if sent == 0 else 0, chunk[:size], fin=last))
            sent += size
            await writer.drain()
        say(f"FRAGMENTED {sent}")
        await self.frames(reader, writer, cursor)

    async def mode_ping_flood(self, reader, writer, cursor):
        writer.transport.pause_reading()  # never read: what the client sends piles up
        ping = ws_frame(9, b"x" * 125)
        index = self.file.index_after(cursor)
        n = 0
        while True:
            writer.write(ping * 64)
            n += 64
            if self.args.with_frames and n % self.args.every < 64:
                frame, _ = self.file.frame(index)
                index += 1
                writer.write(ws_frame(2, frame))
                self.sent += 1
            await writer.drain()


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", required=True,
                        choices=["frames", "too-slow", "error", "fragmented", "ping-flood"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--file", default=DEFAULT_FILE)
    parser.add_argument("--rate", type=float, default=0)
    parser.add_argument("--burst", type=int, default=0)
    parser.add_argument("--burst-every", type=float, default=5)
    parser.add_argument("--ping-rate", type=float, default=0)
    parser.add_argument("--error-name", default="SomethingWrong")
    parser.add_argument("--info", action="store_true")
    parser.add_argument("--message-bytes", type=int, default=5 << 20)
    parser.add_argument("--total", type=int, default=64 << 20)
    parser.add_argument("--fragment-bytes", type=int, default=64 << 10)
    parser.add_argument("--with-frames", action="store_true")
    parser.add_argument("--every", type=int, default=4096)
    parser.add_argument("--rcvbuf", type=int, default=0,
                        help="receive buffer of the relay's sockets (a small one fills fast)")
    parser.add_argument("--tls-cert", help="serve wss:// with this certificate chain (PEM)")
    parser.add_argument("--tls-key", help="the private key of --tls-cert (PEM)")
    args = parser.parse_args()
    args.tls_context = None
    if args.tls_cert:
        args.tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        args.tls_context.load_cert_chain(args.tls_cert, args.tls_key)
    relay = Relay(args)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if args.rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, args.rcvbuf)
    sock.bind(("127.0.0.1", args.port))
    server = await asyncio.start_server(relay.serve, sock=sock, limit=1 << 16)
    say("%s://127.0.0.1:%d" % ("wss" if args.tls_context else "ws",
                               server.sockets[0].getsockname()[1]))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
