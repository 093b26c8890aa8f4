#!/usr/bin/env python3
"""Abusive HTTP clients for the metrics endpoint, as a module and a command.

    httpabuse.py PORT half-open N          N connections that send nothing, held open
    httpabuse.py PORT slow-head N          N connections that send half a head, then nothing
    httpabuse.py PORT big-body BYTES       POST /metrics with a body of BYTES bytes
    httpabuse.py PORT big-head BYTES       GET /metrics with BYTES bytes of headers
    httpabuse.py PORT churn SECONDS        all of the above, over and over, for SECONDS

Each prints one summary line; the functions return the same figures."""
import socket
import sys
import time

HOST = "127.0.0.1"


def connect(port, timeout=10):
    s = socket.create_connection((HOST, port), timeout=timeout)
    return s


def hold(port, n, first_bytes=b""):
    """n connections; each sends first_bytes. Returns the sockets (caller closes them)."""
    socks = []
    for _ in range(n):
        try:
            s = connect(port)
        except OSError:
            break
        if first_bytes:
            try:
                s.sendall(first_bytes)
            except OSError:
                pass
        socks.append(s)
    return socks


def closed_by_server(socks, timeout):
    """How many of socks the server closed within timeout seconds (each waits its share)."""
    deadline = time.monotonic() + timeout
    closed = 0
    for s in socks:
        s.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if s.recv(1) == b"":
                closed += 1
        except ConnectionResetError:
            closed += 1
        except OSError:
            pass
    return closed


def big_body(port, total, chunk=1 << 16):
    """POST with a Content-Length of total and as much of the body as the server takes.
    Returns (status line or "", bytes of body sent)."""
    s = connect(port)
    head = ("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % total).encode()
    sent = 0
    block = b"\0" * chunk
    try:
        s.sendall(head)
        while sent < total:
            sent += s.send(block[:min(chunk, total - sent)])
    except OSError:
        pass
    status = ""
    try:
        s.settimeout(10)
        status = s.recv(256).decode(errors="replace").split("\r\n")[0]
    except OSError:
        pass
    s.close()
    return status, sent


def big_head(port, size):
    s = connect(port)
    line = b"X-Filler: " + b"a" * 90 + b"\r\n"
    try:
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        sent = 0
        while sent < size:
            s.sendall(line)
            sent += len(line)
        s.sendall(b"\r\n")
    except OSError:
        pass
    status = ""
    try:
        s.settimeout(10)
        status = s.recv(256).decode(errors="replace").split("\r\n")[0]
    except OSError:
        pass
    s.close()
    return status


def churn(port, seconds, stop=None):
    """Every abuse in turn until seconds pass (or stop() is true). Returns counts."""
    end = time.monotonic() + seconds
    rounds = 0
    while time.monotonic() < end and not (stop and stop()):
        socks = hold(port, 200) + hold(port, 100, b"GET /metr")
        big_body(port, 64 << 20)
        big_head(port, 256 << 10)
        time.sleep(1)
        for s in socks:
            s.close()
        rounds += 1
    return rounds


def main():
    port, what, arg = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    if what in ("half-open", "slow-head"):
        socks = hold(port, arg, b"GET /metr" if what == "slow-head" else b"")
        start = time.monotonic()
        closed = closed_by_server(socks, 60)
        print(f"{what}: {len(socks)} connected, {closed} closed by the server within "
              f"{time.monotonic() - start:.1f} s")
    elif what == "big-body":
        print("big-body: %r after %d bytes" % big_body(port, arg))
    elif what == "big-head":
        print("big-head: %r" % big_head(port, arg))
    elif what == "churn":
        print(f"churn: {churn(port, arg)} rounds")
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
