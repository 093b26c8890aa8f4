"""Osprey's Kafka input, as its stock worker runs it (roostorg/osprey 1.1.0:
osprey_worker/src/osprey/worker/sinks/input_stream_chooser.py and sink/input_stream.py).
Run by test_osprey.py with the interpreter of a virtualenv holding only kafka-python 1.4.7
and python-dateutil (Osprey's pins), no codec libraries.

    osprey_consumer.py BOOTSTRAP TOPIC GROUP_ID TIMEOUT_S

Consumer settings are Osprey's: group_id, RoundRobinPartitionAssignor, no api_version,
kafka-python's defaults otherwise (auto_offset_reset='latest', auto-commit on). Each record
is parsed exactly as KafkaInputStream does; an exception is counted and consumption goes
on, as Osprey logs it and goes on. Writes one JSON line per record to stdout:
{"partition","offset","action_id","action_name","timestamp","data"} or {"error": "…"} (the
first ten);
"READY" once partitions are assigned and their positions resolved (so the test produces
only after that, like a worker started before at-kafka); {"errors_total": N} and "END" at
the deadline or on SIGALRM."""
import json
import platform
import signal
import sys

from dateutil import parser
from kafka import KafkaConsumer
from kafka.coordinator.assignors.roundrobin import RoundRobinPartitionAssignor


class Deadline(BaseException):
    """Not an Exception: kafka-python's own `except Exception` blocks must not swallow it."""


def on_alarm(signum, frame):
    raise Deadline()


def emit(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def handle(record):
    """KafkaInputStream._gen's body, with the Action's fields written out."""
    data = json.loads(record.value)
    timestamp = parser.parse(data["send_time"])
    action_data = data["data"]
    emit({
        "partition": record.partition,
        "offset": record.offset,
        "action_id": int(action_data["action_id"]),
        "action_name": action_data["action_name"],
        "data": action_data["data"],
        "timestamp": timestamp.isoformat(),
        "utcoffset": timestamp.utcoffset().total_seconds(),
    })


def main():
    bootstrap, topic, group_id, timeout = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(timeout)
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=bootstrap.split(","),
        client_id=platform.node(),
        group_id=group_id,
        partition_assignment_strategy=(RoundRobinPartitionAssignor,),
    )
    errors = 0
    try:
        # Join the group and resolve the 'latest' positions before anything is produced.
        while not consumer.assignment():
            for records in consumer.poll(timeout_ms=200).values():
                for record in records:
                    handle(record)
        for tp in consumer.assignment():
            consumer.position(tp)
        emit("READY")
        while True:
            try:
                record = next(consumer)
                handle(record)
            except Exception as e:  # as KafkaInputStream: log and go on
                errors += 1
                if errors <= 10:
                    emit({"error": f"{type(e).__name__}: {e}"})
    except Deadline:
        emit({"errors_total": errors})
        emit("END")
    finally:
        signal.alarm(0)
        consumer.close()  # commits, as auto-commit does on close


if __name__ == "__main__":
    main()
