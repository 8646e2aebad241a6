"""Durability across restarts: graceful (SIGTERM) and crash (SIGKILL), acks=1 and
acks=all, and what log.flush.on.acks.all changes (the broker's fsyncs, counted with
strace)."""

import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import NewTopic

import helpers as h
import kafka_wire as w


def test_sigterm_restart_keeps_every_acknowledged_record(broker):
    topic = h.unique("durable")
    h.create_topic(broker.bootstrap, topic, 3)
    records = h.make_records(20_000, seed=21)
    p = h.make_producer(broker.bootstrap, {"acks": "all", "compression.type": "lz4"})
    d = h.produce_all(p, topic, records)
    assert d.errors() == {}
    expected = h.expected_by_partition(records, d)
    assert sum(len(v) for v in expected.values()) == 20_000
    del p

    assert broker.stop() == 0, f"SIGTERM exit code {broker.proc.returncode}\n{broker.log_tail()}"
    broker.start()

    h.wait_for_topic(broker.bootstrap, topic, 3)
    got = h.consume(broker.bootstrap, topic, {q: len(expected.get(q, [])) for q in range(3)},
                    timeout=120)
    h.assert_matches(got, expected)
    for q in range(3):
        assert h.watermarks(broker.bootstrap, topic, q) == (0, len(expected.get(q, [])))


def test_sigkill_mid_stream_keeps_acknowledged_records(broker):
    topic = h.unique("crash")
    h.create_topic(broker.bootstrap, topic, 2)
    acked = {}        # (partition, offset) -> value, from successful delivery reports
    failed = []
    stop = threading.Event()
    sent = [0]

    duplicates = []

    def on_delivery(err, msg):
        if err is None:
            key = (msg.partition(), msg.offset())
            if key in acked:
                duplicates.append((key, acked[key], msg.value()))
            acked[key] = msg.value()
        else:
            failed.append(err)

    p = h.make_producer(broker.bootstrap, {"acks": "all", "linger.ms": 2,
                                           "message.timeout.ms": 5000, "retries": 0})

    def produce_loop():
        i = 0
        while not stop.is_set():
            v = b"crash-value-%08d" % i
            try:
                p.produce(topic, v, partition=i % 2, on_delivery=on_delivery)
            except BufferError:
                pass
            else:
                i += 1
            if i % 100 == 0:
                p.poll(0)
                time.sleep(0.001)
        sent[0] = i

    t = h.Worker(produce_loop, name="producer")
    t.start()
    # the crash comes in the middle of the stream: after 100 acknowledgements
    h.wait_until(lambda: len(acked) > 100 or not t.is_alive(), 60, "100 acknowledged records")
    broker.kill()
    stop.set()
    t.join(60)
    # deliver every report we can get, then drop whatever is still queued: only what the
    # client was told is acknowledged counts
    p.flush(8)
    p.purge()
    p.flush(2)
    del p
    n_acked = len(acked)
    assert not duplicates, f"offsets acknowledged twice: {duplicates[:5]}"
    assert n_acked > 100, f"only {n_acked} records acknowledged before the kill"

    broker.start()
    h.wait_for_topic(broker.bootstrap, topic, 2)
    hw = {q: h.watermarks(broker.bootstrap, topic, q) for q in range(2)}
    for q in range(2):
        lo, hi = hw[q]
        assert lo == 0
        max_acked = max((off for (part, off) in acked if part == q), default=-1)
        assert hi >= max_acked + 1, (
            f"partition {q}: high watermark {hi} after the crash, but offset {max_acked} "
            "had been acknowledged")
    got = h.consume(broker.bootstrap, topic, {q: hw[q][1] for q in range(2)}, timeout=120)
    stored = {(q, m.offset): m.value for q, msgs in got.items() for m in msgs}
    for q, msgs in got.items():
        assert [m.offset for m in msgs] == list(range(len(msgs))), f"partition {q} not dense"
    missing = {k: v for k, v in acked.items() if stored.get(k) != v}
    assert not missing, (f"{len(missing)} of {n_acked} acknowledged records lost or changed, "
                         f"e.g. {sorted(missing.items())[:5]} -> "
                         f"{[stored.get(k) for k in sorted(missing)[:5]]}")

    # the log stays appendable: new records land right after the recovered end
    p2 = h.make_producer(broker.bootstrap)
    more = [h.Rec(None, b"after-crash-%d" % i, None, None) for i in range(10)]
    d = h.produce_all(p2, topic, more, partitions=[i % 2 for i in range(10)])
    for i in range(10):
        q = i % 2
        assert d.reports[i] == (None, q, hw[q][1] + i // 2), d.reports[i]
    got2 = h.consume(broker.bootstrap, topic, {0: 5, 1: 5}, start={0: hw[0][1], 1: hw[1][1]})
    for q in range(2):
        assert [(m.offset, m.value) for m in got2[q]] == [
            (hw[q][1] + j, b"after-crash-%d" % (2 * j + q)) for j in range(5)]


def test_sigkill_idle_then_restart(broker):
    """A crash while idle (no write in flight) loses nothing and needs no clean marker."""
    topic = h.unique("idlecrash")
    h.create_topic(broker.bootstrap, topic, 1)
    records = h.make_records(3_000, seed=5)
    p = h.make_producer(broker.bootstrap, {"compression.type": "zstd"})
    d = h.produce_all(p, topic, records, partition=0)
    assert d.errors() == {}
    expected = h.expected_by_partition(records, d)
    broker.kill()
    broker.start()
    got = h.consume(broker.bootstrap, topic, {0: 3_000})
    h.assert_matches(got, expected)
    # and crash again right after restart, before anything else happened
    broker.kill()
    broker.start()
    got = h.consume(broker.bootstrap, topic, {0: 3_000})
    h.assert_matches(got, expected)


def test_topics_survive_restart(broker):
    names = {h.unique("keep1"): 1, h.unique("keep3"): 3, h.unique("keep5"): 5}
    doomed = h.unique("doomed")
    for n, parts in names.items():
        h.create_topic(broker.bootstrap, n, parts)
    h.create_topic(broker.bootstrap, doomed, 2)
    p = h.make_producer(broker.bootstrap)
    assert h.produce_all(p, doomed, [h.Rec(None, b"x", None, None)] * 10).errors() == {}
    a = h.admin(broker.bootstrap)
    assert h.raise_kafka(a.delete_topics([doomed], request_timeout=30)[doomed]) is None
    h.wait_topic_gone(broker.bootstrap, doomed)
    del a, p

    for how in ("sigterm", "sigkill"):
        if how == "sigterm":
            assert broker.stop() == 0
        else:
            broker.kill()
        broker.start()
        for n, parts in names.items():
            h.wait_for_topic(broker.bootstrap, n, parts)
        topics = h.all_topics(broker.bootstrap)
        assert {n: topics.get(n) for n in names} == names, f"after {how}: {topics}"
        assert doomed not in topics, f"deleted topic came back after {how}"

    # the deleted name is free again, and empty
    h.create_topic(broker.bootstrap, doomed, 1)
    assert h.watermarks(broker.bootstrap, doomed, 0) == (0, 0)


def test_sigterm_answers_a_parked_fetch_and_exits_0(broker):
    """An open client connection (a fetch parked for 4 minutes) does not hold the stop up:
    on SIGTERM the fetch is answered (not cut off) and the broker exits 0."""
    topic = h.unique("stop")
    h.create_topic(broker.bootstrap, topic, 1)
    with w.connect(broker.port, timeout=60) as s:
        s.sendall(w.frame(w.fetch_request_v4(7, topic, 0, 0, max_wait_ms=240_000)))
        time.sleep(0.5)   # parked
        broker.proc.send_signal(signal.SIGTERM)
        corr, res = w.parse_fetch_v4(w.recv_frame(s))   # answered, long before 240 s
        assert corr == 7 and res[(topic, 0)]["records"] == b"", res
        closed, _ = w.wait_closed(s, 60)
        assert closed, "the connection stayed open after the broker stopped"
    code = broker.stop()   # waits for the exit (30 s deadline)
    assert code == 0, f"exit code {code} on SIGTERM\n{broker.log_tail()}"


def test_create_after_restart_continues_ids(broker):
    """Topics created after a restart work alongside recovered ones."""
    old = h.unique("old")
    h.create_topic(broker.bootstrap, old, 2)
    broker.stop()
    broker.start()
    new = h.unique("new")
    a = h.admin(broker.bootstrap)
    fs = a.create_topics([NewTopic(new, 2, 1), NewTopic(old, 2, 1)], request_timeout=30)
    assert h.raise_kafka(fs[new]) is None
    assert h.raise_kafka(fs[old]).code() == KafkaError.TOPIC_ALREADY_EXISTS
    p = h.make_producer(broker.bootstrap)
    d = h.produce_all(p, new, [h.Rec(None, b"n", None, None), h.Rec(None, b"m", None, None)],
                      partitions=[0, 1])
    d2 = h.produce_all(p, old, [h.Rec(None, b"o", None, None)], partition=1)
    assert sorted(d.reports.values()) == [(None, 0, 0), (None, 1, 0)]
    assert d2.reports[0] == (None, 1, 0)


def test_acks_1_records_survive_sigkill(broker):
    """acks=1: acknowledged once in the segment file (the page cache), which a crash of
    the process does not lose."""
    topic = h.unique("acks1")
    h.create_topic(broker.bootstrap, topic, 2)
    records = h.make_records(5_000, seed=11)
    p = h.make_producer(broker.bootstrap, {"acks": "1", "linger.ms": 2})
    d = h.produce_all(p, topic, records)
    assert d.errors() == {}
    expected = h.expected_by_partition(records, d)
    del p
    broker.kill()
    broker.start()
    h.wait_for_topic(broker.bootstrap, topic, 2)
    got = h.consume(broker.bootstrap, topic, {q: len(expected.get(q, [])) for q in range(2)})
    h.assert_matches(got, expected)


class FsyncTrace:
    """strace attached to every thread of a process, recording fsync and fdatasync with the
    path of each file descriptor."""

    def __init__(self, pid: int, out: Path):
        strace = shutil.which("strace")
        assert strace, "strace not found (scripts/test-all.sh installs it)"
        self.pid, self.out = pid, out
        self.proc = subprocess.Popen([strace, "-f", "-qq", "-y", "-e", "trace=fsync,fdatasync",
                                      "-p", str(pid), "-o", str(out)],
                                     stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)

        def attached():
            assert self.proc.poll() is None, f"strace exited: {self.proc.stderr.read()!r}"
            tasks = os.listdir(f"/proc/{pid}/task")
            return all(_tracer(pid, t) for t in tasks)
        h.wait_until(attached, 30, "strace attached to every thread of the broker")

    def stop(self) -> list[str]:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(timeout=30)
        return self.out.read_text().splitlines()


def _tracer(pid, tid) -> bool:
    try:
        with open(f"/proc/{pid}/task/{tid}/status") as f:
            return any(line.startswith("TracerPid:") and line.split()[1] != "0" for line in f)
    except FileNotFoundError:
        return True   # the thread ended


@pytest.mark.parametrize("flush", [True, False])
def test_log_flush_on_acks_all(start_broker, tmp_path, flush):
    """log.flush.on.acks.all=true (the default) fsyncs a partition's segment before an
    acks=all write is acknowledged; false acknowledges it from the page cache (no fsync of
    the segment at all meanwhile). Either way every acknowledged record is there."""
    b = start_broker({"log.flush.on.acks.all": flush})
    topic = h.unique("flush")
    h.create_topic(b.bootstrap, topic, 1)
    p = h.make_producer(b.bootstrap, {"acks": "all", "linger.ms": 0})
    assert h.produce_all(p, topic, [h.Rec(None, b"warm", None, None)], partition=0).errors() == {}
    trace = FsyncTrace(b.pid, tmp_path / "strace.out")
    try:
        for i in range(20):   # one request each: 20 acks=all appends
            d = h.produce_all(p, topic, [h.Rec(None, b"r%d" % i, None, None)], partition=0)
            assert d.reports[0] == (None, 0, 1 + i)
    finally:
        lines = trace.stop()
    seg = re.compile(rf"f(data)?sync\(\d+<[^>]*/{re.escape(topic)}-0/\d+\.log>\) = 0")
    syncs = [ln for ln in lines if seg.search(ln)]
    if flush:
        assert syncs, f"no fsync of {topic}-0's segment for 20 acks=all writes:\n" + "\n".join(lines)
    else:
        assert syncs == [], f"log.flush.on.acks.all=false, yet the segment was fsynced: {syncs}"
    got = h.consume(b.bootstrap, topic, {0: 21})
    assert [m.value for m in got[0]] == [b"warm"] + [b"r%d" % i for i in range(20)]
