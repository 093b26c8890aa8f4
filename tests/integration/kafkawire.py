"""Just enough of Kafka's wire protocol for what kcat cannot do: create a topic with
configs (CreateTopics v2) and read the headers of the record batches of a partition (Fetch v4,
the oldest version Kafka 4 still serves), which carry the producer id and epoch of whoever
appended them. No decompression: which records a batch holds follows from its offsets."""
import socket
import struct

import kafkautil


def _str(s):
    b = s.encode()
    return struct.pack(">h", len(b)) + b


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def take(self, fmt):
        values = struct.unpack_from(fmt, self.data, self.pos)
        self.pos += struct.calcsize(fmt)
        return values if len(values) > 1 else values[0]

    def string(self):
        n = self.take(">h")
        if n < 0:
            return None
        s = self.data[self.pos:self.pos + n].decode()
        self.pos += n
        return s

    def bytes(self):
        n = self.take(">i")
        if n < 0:
            return b""
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b


def _call(api_key, version, body, timeout=30):
    host, port = kafkautil.bootstrap().split(",")[0].rsplit(":", 1)
    header = struct.pack(">hhi", api_key, version, 1) + _str("atk-test")
    request = header + body
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(request)) + request)
        size = b""
        while len(size) < 4:
            chunk = s.recv(4 - len(size))
            if not chunk:
                raise AssertionError("the broker closed the connection")
            size += chunk
        n, data = struct.unpack(">i", size)[0], bytearray()
        while len(data) < n:
            chunk = s.recv(n - len(data))
            if not chunk:
                raise AssertionError("the broker closed the connection")
            data += chunk
    r = _Reader(bytes(data))
    r.take(">i")  # correlation id
    return r


def create_topic(topic, partitions, configs):
    """Creates topic (replication 1) with the given {name: value} configs."""
    body = struct.pack(">i", 1) + _str(topic) + struct.pack(">ihi", partitions, 1, 0)
    body += struct.pack(">i", len(configs))
    for name, value in configs.items():
        body += _str(name) + _str(value)
    body += struct.pack(">ib", 30000, 0)
    r = _call(19, 2, body)
    r.take(">i")  # throttle
    for _ in range(r.take(">i")):
        name, error, message = r.string(), r.take(">h"), r.string()
        if error != 0:
            raise AssertionError(f"CreateTopics {name}: error {error} {message}")


def batches(topic, partition):
    """Every record batch of the partition: dicts with base (first offset), last (last
    offset), pid, epoch, transactional, control."""
    out, offset = [], 0
    while True:
        body = struct.pack(">iiiib", -1, 100, 1, 4 << 20, 0)  # read_uncommitted
        body += struct.pack(">i", 1) + _str(topic) + struct.pack(">i", 1)
        body += struct.pack(">iqi", partition, offset, 4 << 20)
        r = _call(1, 4, body)
        r.take(">i")  # throttle
        records, high = b"", 0
        for _ in range(r.take(">i")):
            r.string()
            for _ in range(r.take(">i")):
                r.take(">i")
                error, high, _stable = r.take(">hqq")
                if error != 0:
                    raise AssertionError(f"Fetch {topic}/{partition}: error {error}")
                aborted = r.take(">i")
                for _ in range(max(aborted, 0)):
                    r.take(">qq")
                records = r.bytes()
        pos, got = 0, False
        while pos + 61 <= len(records):
            base, length = struct.unpack_from(">qi", records, pos)
            if pos + 12 + length > len(records):
                break
            attributes, last_delta = struct.unpack_from(">hi", records, pos + 21)
            pid, epoch = struct.unpack_from(">qh", records, pos + 43)
            out.append({"base": base, "last": base + last_delta, "pid": pid, "epoch": epoch,
                        "transactional": bool(attributes & 0x10),
                        "control": bool(attributes & 0x20)})
            offset, got = base + last_delta + 1, True
            pos += 12 + length
        if offset >= high or not got:
            return out
