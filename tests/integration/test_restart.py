"""Durability across restarts: graceful (SIGTERM) and crash (SIGKILL)."""

import threading
import time

from confluent_kafka import KafkaError
from confluent_kafka.admin import NewTopic

import helpers as h


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

    t = threading.Thread(target=produce_loop, daemon=True)
    t.start()
    time.sleep(1.0)
    broker.kill()
    stop.set()
    t.join(10)
    # deliver every report we can get, then drop whatever is still queued: only what the
    # client was told is acknowledged counts
    p.flush(8)
    p.purge()
    p.flush(2)
    del p
    n_acked = len(acked)
    assert not duplicates, f"offsets acknowledged twice: {duplicates[:5]}"
    assert n_acked > 100, f"only {n_acked} records acknowledged in ~1 s before the kill"

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


def test_sigterm_exit_code_and_prompt_stop(broker):
    topic = h.unique("stop")
    h.create_topic(broker.bootstrap, topic, 1)
    # an open client connection (parked long-poll fetch) must not delay shutdown
    c = h.make_consumer(broker.bootstrap, {"fetch.wait.max.ms": 10000})
    from confluent_kafka import TopicPartition
    c.assign([TopicPartition(topic, 0, 0)])
    c.consume(num_messages=1, timeout=1.0)
    t0 = time.monotonic()
    code = broker.stop(timeout=20)
    took = time.monotonic() - t0
    c.close()
    assert code == 0, f"exit code {code} on SIGTERM\n{broker.log_tail()}"
    assert took < 10, f"graceful stop took {took:.1f}s"


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
