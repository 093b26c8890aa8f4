"""Small helpers for integration tests that talk to a real Kafka broker through kcat.

The broker is the one tools/kafka-local starts; its address comes from
$ATK_BOOTSTRAP_SERVERS (default 127.0.0.1:9092). Everything here waits with deadlines and
raises (AssertionError or TimeoutError) instead of skipping: a missing broker fails a test.

    import kafkautil
    kafkautil.wait_for_broker()
    topic = kafkautil.unique_topic("pipeline")
    ...run the daemon with --output-topic topic...
    kafkautil.wait_for_count(topic, 42, timeout=60)
    for m in kafkautil.consume_all(topic):
        m["partition"], m["offset"], m["key"], m["value"], m["headers"]["seq"]
"""

import json
import os
import shutil
import subprocess
import time
import uuid

DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def _children_report():
    """What the harness's children said, for a timeout's message ("" without the harness)."""
    try:
        from atkharness import children_report
    except (ImportError, KeyError):
        return ""
    return children_report()


def bootstrap():
    """The broker address the tests use."""
    return os.environ.get("ATK_BOOTSTRAP_SERVERS") or DEFAULT_BOOTSTRAP


def _kcat():
    path = shutil.which("kcat") or shutil.which("kafkacat")
    if path is None:
        raise AssertionError("kcat not found: apt-get install kcat")
    return path


def _run(args, timeout):
    return subprocess.run([_kcat()] + args, stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


def metadata(servers=None, topic=None, timeout=10):
    """Cluster metadata as kcat -L -J reports it (a dict), or raises."""
    args = ["-L", "-J", "-b", servers or bootstrap(), "-m", str(max(1, int(timeout)))]
    if topic is not None:
        args += ["-t", topic]
    proc = _run(args, timeout + 5)
    if proc.returncode != 0:
        raise AssertionError("kcat -L failed: %s" % proc.stderr.strip())
    return json.loads(proc.stdout)


def wait_for_broker(servers=None, timeout=90):
    """Waits until the broker answers a metadata request; raises TimeoutError if not."""
    servers = servers or bootstrap()
    deadline = time.monotonic() + timeout
    last = ""
    while True:
        try:
            md = metadata(servers, timeout=5)
            if md.get("brokers"):
                return md
        except (AssertionError, subprocess.TimeoutExpired, ValueError) as e:
            last = str(e)
        if time.monotonic() >= deadline:
            raise TimeoutError("no Kafka broker at %s after %ss (start one with "
                               "tools/kafka-local start): %s" % (servers, timeout, last))
        time.sleep(0.5)


def unique_topic(prefix="atk-it"):
    """A topic name no other test run uses (the broker does not auto-create topics)."""
    return "%s-%d-%s" % (prefix, os.getpid(), uuid.uuid4().hex[:10])


def partition_count(topic, servers=None):
    """Partitions of topic, or None if it does not exist."""
    md = metadata(servers, topic=topic)
    for t in md.get("topics", []):
        if t.get("topic") == topic and not t.get("error"):
            return len(t.get("partitions", []))
    return None


def wait_for_topic(topic, servers=None, timeout=60):
    """Waits until topic exists; returns its partition count."""
    deadline = time.monotonic() + timeout
    while True:
        n = partition_count(topic, servers)
        if n:
            return n
        if time.monotonic() >= deadline:
            raise TimeoutError("topic %s did not appear within %ss" % (topic, timeout))
        time.sleep(0.25)


def _headers(flat):
    # kcat -J writes headers as a flat [name, value, name, value, ...] list.
    if not flat:
        return {}
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)}


def consume_all(topic, servers=None, timeout=60):
    """Every message now in topic, from the beginning of each partition to its end, as a
    list of {partition, offset, key, value, headers} dicts (key/value are str or None;
    headers a dict). Ordered as kcat read them: by offset within each partition."""
    proc = _run(["-C", "-b", servers or bootstrap(), "-t", topic, "-o", "beginning", "-e",
                 "-J", "-q"], timeout)
    if proc.returncode != 0:
        raise AssertionError("kcat -C %s failed (%d): %s"
                             % (topic, proc.returncode, proc.stderr.strip()))
    out = []
    for line in proc.stdout.split("\n"):
        if not line.strip():
            continue
        m = json.loads(line)
        out.append({
            "partition": m["partition"],
            "offset": m["offset"],
            "key": m.get("key"),
            "value": m.get("payload"),
            "headers": _headers(m.get("headers")),
        })
    return out


def count(topic, servers=None, timeout=60):
    """How many messages topic holds now (0 if it does not exist yet). Reads the topic
    through rather than subtracting offsets, so transaction markers are not counted."""
    proc = _run(["-C", "-b", servers or bootstrap(), "-t", topic, "-o", "beginning", "-e",
                 "-q", "-f", "%p\\n"], timeout)
    if proc.returncode != 0:
        if "Unknown topic" in proc.stderr:
            return 0  # not created yet: holds nothing
        raise AssertionError("kcat -C %s failed (%d): %s"
                             % (topic, proc.returncode, proc.stderr.strip()))
    return sum(1 for line in proc.stdout.split("\n") if line.strip())


def wait_for_count(topic, expected, servers=None, timeout=60, exact=False):
    """Waits until topic holds at least `expected` messages (exactly, with exact=True:
    more than expected then fails at once). Returns the count; raises TimeoutError."""
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        remaining = deadline - time.monotonic()
        n = count(topic, servers, timeout=max(10, remaining))
        if exact and n > expected:
            raise AssertionError("topic %s holds %d messages, expected %d%s"
                                 % (topic, n, expected, _children_report()))
        if n >= expected:
            return n
        if time.monotonic() >= deadline:
            raise TimeoutError("topic %s holds %d messages after %ss, expected %d%s"
                               % (topic, n, timeout, expected, _children_report()))
        time.sleep(0.25)
