"""A data disk that fills up, on a real file system: a tmpfs of 24 MiB mounted on the
broker's data dir (the test runs as root, as CI does).

What must hold (issue 12): producing stops with KAFKA_STORAGE_ERROR while
`log.dir.min.free.bytes` is still free, so the metadata log, checkpoints and offset
commits keep working; every acknowledged record stays readable, before and after a
restart on the full disk; and produce resumes by itself once space is freed
(here by DeleteRecords), without a restart. A second log directory (JBOD) on another
file system keeps taking writes meanwhile.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from confluent_kafka import KafkaError, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

import kafka_wire as w
from conftest import Broker, _report_logs
from helpers import admin, consume, unique, wait_until, watermarks

DISK_BYTES = 24 << 20
MIN_FREE = 6 << 20
VALUE = 4 << 10
KAFKA_STORAGE_ERROR = KafkaError.KAFKA_STORAGE_ERROR

_corr = iter(range(1, 1 << 30))


@pytest.fixture
def full_disk_broker(tmp_path, request):
    """A broker whose first log dir is a 24 MiB tmpfs, keeping 6 MiB free, and whose
    second one (`second`) is on the test's file system."""
    second = tmp_path / "second"
    b = Broker(tmp_path / "broker", {"log.dirs": f"{tmp_path / 'broker' / 'data'},{second}",
                                     "log.dir.min.free.bytes": MIN_FREE,
                                     "log.segment.delete.delay.ms": 0,
                                     "log.retention.check.interval.ms": 500})
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={DISK_BYTES}", "tmpfs",
                              str(b.data_dir)], capture_output=True, text=True)
    assert mounted.returncode == 0, f"cannot mount a tmpfs (run as root): {mounted.stderr}"
    try:
        yield b.start()
    finally:
        _report_logs(request, [b])
        b.kill()
        subprocess.run(["umount", "-l", str(b.data_dir)], check=False)


def free_bytes(path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def raw_produce_at(port: int, topic: str, value: bytes) -> tuple[int, int]:
    """One acks=all Produce straight to the broker (no client retries): its error code
    and base offset."""
    req = w.produce_request(next(_corr), topic, 0, w.record_batch([(None, value)]),
                            api_version=7, acks=-1, timeout_ms=10000)
    _, parts, _ = w.parse_produce_response(w.request(port, req, timeout=30), 7)
    return parts[(topic, 0)]["error_code"], parts[(topic, 0)]["base_offset"]


def raw_produce(port: int, topic: str, value: bytes) -> int:
    return raw_produce_at(port, topic, value)[0]


def fill(bootstrap: str, port: int, topic: str):
    """Produces 4 KiB records (acks=all, no retries) until the broker refuses them, in
    batches, then one at a time until a single record is refused too.
    Returns ({offset: value} acknowledged, [error codes of the refused])."""
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all", "retries": 0,
                  "enable.idempotence": False, "linger.ms": 5})
    acked: dict[int, bytes] = {}
    refused: list[int] = []

    def report(err, msg):
        if err is None:
            acked[msg.offset()] = msg.value()
        else:
            refused.append(err.code())

    n = 0
    while not refused:
        assert n < 20_000, f"{n} records of 4 KiB on a 24 MiB disk and nothing refused"
        for _ in range(100):
            p.produce(topic, (b"%08d" % n).ljust(VALUE, b"."), partition=0, on_delivery=report)
            n += 1
        assert p.flush(60) == 0, "deliveries outstanding after 60 s"
    for _ in range(MIN_FREE // VALUE):
        value = (b"%08d" % n).ljust(VALUE, b".")
        n += 1
        error, offset = raw_produce_at(port, topic, value)
        if error:
            refused.append(error)
            # the guard refuses on its running estimate of the free space and measures
            # the file system again every 100 ms while refusing: the disk is full once
            # a refusal holds after such a measurement too
            time.sleep(0.3)
            error, offset = raw_produce_at(port, topic, value)
            if error:
                refused.append(error)
                return acked, refused
        acked[offset] = value
    raise AssertionError("single records still accepted after the batches were refused")


def assert_readable(bootstrap: str, topic: str, acked: dict[int, bytes]):
    got = consume(bootstrap, topic, {0: len(acked)})[0]
    assert {g.offset: g.value for g in got} == acked


def test_full_disk_refuses_produce_keeps_every_acked_record_and_resumes(full_disk_broker):
    b = full_disk_broker
    topic = unique("full")
    a = admin(b.bootstrap)
    a.create_topics([NewTopic(topic, 1, 1, config={"segment.bytes": str(1 << 20)})])[topic].result(30)
    # the next topic goes to the second directory (it hosts fewer partitions)
    elsewhere = unique("elsewhere")
    a.create_topics([NewTopic(elsewhere, 1, 1)])[elsewhere].result(30)
    assert (b.data_dir / f"{topic}-0").is_dir()
    assert (b.data_dir.parent.parent / "second" / f"{elsewhere}-0").is_dir()

    acked, refused = fill(b.bootstrap, b.port, topic)
    assert len(acked) * VALUE > 10 << 20, f"only {len(acked)} records acknowledged"
    assert set(refused) == {KAFKA_STORAGE_ERROR}, refused
    assert sorted(acked) == list(range(len(acked))), "acknowledged records with gaps"
    assert free_bytes(b.data_dir) > MIN_FREE // 2, "the minimum free space was not kept"
    assert "free space below log.dir.min.free.bytes" in b.log()
    assert "taking the log directory offline" not in b.log()
    # a record as large as the one refused (a smaller one may fit the few bytes fill
    # left above the minimum)
    assert raw_produce(b.port, topic, b"still-full".ljust(VALUE, b".")) == KAFKA_STORAGE_ERROR
    assert raw_produce(b.port, elsewhere, b"the other directory has room") == 0
    assert_readable(b.bootstrap, topic, acked)
    # the rest of the broker works: a group commits its offsets on the same disk
    c = consume_and_commit(b.bootstrap, topic, unique("g"))
    assert c == len(acked)

    # restart on the full disk: it starts, serves every acknowledged record, and still
    # keeps the minimum free. What a clean shutdown released (trimmed index files, ...)
    # may take a few records first; then produce is refused again.
    b.stop()
    b.start()
    assert "cannot write or read the metadata log" not in b.log()
    assert_readable(b.bootstrap, topic, acked)
    after_restart = 0
    while True:
        error, offset = raw_produce_at(b.port, topic, (b"restart-%06d" % after_restart).ljust(VALUE, b"."))
        if error:
            assert error == KAFKA_STORAGE_ERROR, error
            time.sleep(0.3)  # refused after a fresh measurement too (see fill)
            error, offset = raw_produce_at(b.port, topic, b"full-after-restart".ljust(VALUE, b"."))
            if error:
                assert error == KAFKA_STORAGE_ERROR, error
                break
        assert offset == len(acked) + after_restart, "acknowledged records with gaps"
        after_restart += 1
        assert after_restart * VALUE < MIN_FREE // 4, \
            f"{after_restart} records of 4 KiB accepted on the full disk after a restart"

    # space returns (the records are deleted): produce resumes without a restart
    high = watermarks(b.bootstrap, topic, 0)[1]
    assert high == len(acked) + after_restart
    a = admin(b.bootstrap)
    done = a.delete_records([TopicPartition(topic, 0, high)])
    list(done.values())[0].result(30)
    wait_until(lambda: free_bytes(b.data_dir) > MIN_FREE + (4 << 20), 60,
               "the deleted segments to free their space")
    wait_until(lambda: raw_produce(b.port, topic, b"space-is-back") == 0, 60,
               "produce to be accepted again")
    got = consume(b.bootstrap, topic, {0: 1}, start=high)[0]
    assert got[0].offset == high and got[0].value == b"space-is-back"
    assert "free space is back: accepting produce again" in b.log()


def consume_and_commit(bootstrap: str, topic: str, group: str) -> int:
    """Reads the partition in a group and commits synchronously; how many records."""
    from helpers import make_consumer

    c = make_consumer(bootstrap, {"group.id": group, "enable.auto.commit": False})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        high = watermarks(bootstrap, topic, 0)[1]
        got = consume(bootstrap, topic, {0: high}, consumer=c)[0]
        committed = c.commit(offsets=[TopicPartition(topic, 0, high)], asynchronous=False)
        assert committed[0].error is None and committed[0].offset == high, committed
        return len(got)
    finally:
        c.close()
