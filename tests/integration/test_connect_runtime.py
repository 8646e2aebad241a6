"""vltava connect's task runtime, end to end: a real broker, real `vltava connect` workers, the
file connectors; read back with confluent-kafka. Source offsets resume a task where it stopped,
exactly-once sources (KIP-618) survive a SIGKILL without duplicates, and errors.tolerance sends
bad records to a dead-letter queue with Connect's context headers."""

from __future__ import annotations

import threading
import time

from confluent_kafka import Consumer

import helpers as h
from connect import start_worker  # noqa: F401 - the worker fixture

STRING = "org.apache.kafka.connect.storage.StringConverter"
JSON = "org.apache.kafka.connect.json.JsonConverter"


def read_all(bootstrap: str, topic: str, want: int, committed: bool = True, timeout: float = 90.0) -> list:
    """Every record of `topic` until `want` were read (read_committed by default); the records."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": h.unique("rd"), "auto.offset.reset": "earliest",
                  "enable.auto.commit": False,
                  "isolation.level": "read_committed" if committed else "read_uncommitted"})
    c.subscribe([topic])
    out = []
    deadline = time.monotonic() + timeout
    try:
        while len(out) < want and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None or m.error():
                continue
            out.append(m)
        # a little more: anything past `want` is a duplicate the test must see
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            m = c.poll(0.2)
            if m is not None and not m.error():
                out.append(m)
    finally:
        c.close()
    return out


def high_watermark(bootstrap: str, topic: str) -> int:
    """Partition 0's end offset; 0 while the topic does not exist yet."""
    try:
        return h.watermarks(bootstrap, topic, 0)[1]
    except Exception:  # noqa: BLE001 - the source creates the topic with its first record
        return 0


def source_config(path, topic: str, **extra) -> dict:
    return {"connector.class": "FileStreamSource", "file": str(path), "topic": topic, "tasks.max": "1",
            "key.converter": STRING, "value.converter": STRING, **extra}


def test_a_source_resumes_from_its_committed_offset_after_a_clean_restart(broker, start_worker, tmp_path):
    """SIGTERM commits the offsets of what Kafka acknowledged; the next worker starts there."""
    topic, name = h.unique("lines"), h.unique("src")
    src = tmp_path / "in.txt"
    src.write_text("".join(f"line-{i}\n" for i in range(1000)))
    w = start_worker(broker)
    w.create(name, source_config(src, topic))
    w.wait_running(name)
    assert len(read_all(broker.bootstrap, topic, 1000)) == 1000
    assert w.stop() == 0

    with src.open("a") as f:
        f.write("".join(f"line-{i}\n" for i in range(1000, 1500)))
    w2 = start_worker(broker)
    w2.wait_running(name)
    got = [m.value().decode() for m in read_all(broker.bootstrap, topic, 1500)]
    assert got == [f"line-{i}" for i in range(1500)], (len(got), got[995:1005])
    status, body = w2.get(f"/connectors/{name}/offsets")
    assert status == 200, body
    h.wait_until(lambda: w2.get(f"/connectors/{name}/offsets")[1]["offsets"][0]["offset"]["position"]
                 == src.stat().st_size, 60, "the source's committed position at the end of the file")


def test_an_exactly_once_source_writes_each_line_once_across_a_sigkill(broker, start_worker, tmp_path):
    """exactly.once.source.support=enabled: records and their offsets commit in one transaction, so
    a worker killed mid-stream leaves no duplicate in read_committed, and the next one resumes."""
    topic, name, total = h.unique("eos"), h.unique("eos-src"), 20000
    src = tmp_path / "in.txt"
    src.write_text("")
    props = {"exactly.once.source.support": "enabled"}
    w = start_worker(broker, props=props)
    w.create(name, source_config(src, topic))
    w.wait_running(name)

    errors: list = []

    def write_lines():
        try:
            with src.open("a") as f:
                for start in range(0, total, 200):
                    f.write("".join(f"line-{i}\n" for i in range(start, start + 200)))
                    f.flush()
                    time.sleep(0.02)
        except Exception as e:  # noqa: BLE001 - re-raised by the test
            errors.append(e)

    writer = threading.Thread(target=write_lines)
    writer.start()
    try:
        # kill the worker once a part (not all) is committed
        h.wait_until(lambda: high_watermark(broker.bootstrap, topic) > 3000, 90, "3000 records written")
        w.kill()
    finally:
        writer.join()
    assert not errors, errors
    w2 = start_worker(broker, props=props)
    w2.wait_running(name)
    got = [m.value().decode() for m in read_all(broker.bootstrap, topic, total, timeout=120)]
    assert len(got) == total, (len(got), len(set(got)))
    assert got == [f"line-{i}" for i in range(total)]


def test_bad_records_go_to_the_dead_letter_queue_with_context_headers(broker, start_worker, tmp_path):
    """errors.tolerance=all: a record the converter cannot read is skipped and written, as it came,
    to the dead-letter queue with __connect.errors.* headers; good records reach the sink."""
    topic, dlq, name = h.unique("in"), h.unique("dlq"), h.unique("sink")
    h.create_topic(broker.bootstrap, topic)
    out = tmp_path / "out.txt"
    w = start_worker(broker)
    w.create(name, {"connector.class": "FileStreamSink", "file": str(out), "topics": topic,
                    "key.converter": STRING, "value.converter": JSON,
                    "value.converter.schemas.enable": "false",
                    "errors.tolerance": "all", "errors.deadletterqueue.topic.name": dlq,
                    "errors.deadletterqueue.topic.replication.factor": "1",
                    "errors.deadletterqueue.context.headers.enable": "true", "errors.log.enable": "true"})
    w.wait_running(name)
    p = h.make_producer(broker.bootstrap)
    values = [b'{"n":1}', b"not json", b'{"n":2}', b"{broken", b'{"n":3}']
    for v in values:
        p.produce(topic, value=v, headers=[("origin", b"test")])
    assert p.flush(30) == 0
    h.wait_until(lambda: out.exists() and len(out.read_text().splitlines()) == 3, 60, "3 good records in the file")
    dead = read_all(broker.bootstrap, dlq, 2)
    assert [m.value() for m in dead] == [b"not json", b"{broken"]
    headers = dict(dead[0].headers())
    assert headers["origin"] == b"test"
    assert headers["__connect.errors.topic"] == topic.encode()
    assert headers["__connect.errors.offset"] == b"1"
    assert headers["__connect.errors.stage"] == b"VALUE_CONVERTER"
    assert headers["__connect.errors.connector.name"] == name.encode()
    assert b"json" in headers["__connect.errors.exception.message"].lower() or headers["__connect.errors.exception.message"]


def test_without_tolerance_a_bad_record_fails_the_task_with_a_trace(broker, start_worker, tmp_path):
    topic, name = h.unique("in"), h.unique("sink")
    h.create_topic(broker.bootstrap, topic)
    w = start_worker(broker)
    w.create(name, {"connector.class": "FileStreamSink", "file": str(tmp_path / "out.txt"), "topics": topic,
                    "value.converter": JSON, "value.converter.schemas.enable": "false"})
    w.wait_running(name)
    p = h.make_producer(broker.bootstrap)
    p.produce(topic, value=b"not json")
    assert p.flush(30) == 0
    t = w.wait_task_state(name, 0, "FAILED")
    assert "Tolerance exceeded" in t["trace"], t


def test_a_paused_sink_takes_nothing_until_resumed(broker, start_worker, tmp_path):
    topic, name = h.unique("in"), h.unique("sink")
    h.create_topic(broker.bootstrap, topic)
    out = tmp_path / "out.txt"
    w = start_worker(broker)
    w.create(name, {"connector.class": "FileStreamSink", "file": str(out), "topics": topic,
                    "value.converter": STRING})
    w.wait_running(name)
    assert w.put(f"/connectors/{name}/pause")[0] == 202
    w.wait_task_state(name, 0, "PAUSED")
    p = h.make_producer(broker.bootstrap)
    for i in range(10):
        p.produce(topic, value=f"v{i}".encode())
    assert p.flush(30) == 0
    # paused: what was produced stays in Kafka (checked after the records are surely fetchable)
    h.wait_until(lambda: h.watermarks(broker.bootstrap, topic, 0)[1] == 10, 30, "10 records in the topic")
    time.sleep(2)   # not a verdict: gives a wrongly running task time to write, which the assert catches
    assert not out.exists() or out.read_text() == ""
    assert w.put(f"/connectors/{name}/resume")[0] == 202
    h.wait_until(lambda: out.exists() and out.read_text().splitlines() == [f"v{i}" for i in range(10)], 60,
                 "the 10 records in the file after the resume")
