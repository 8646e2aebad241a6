"""Fetch long-polling: an append wakes a waiting fetch, a fetch without enough bytes
waits its max wait, and an idle consumer does not make the broker spin.

No verdict here depends on how fast the machine is: a parked fetch waits
LONG_WAIT_MS (4 minutes), so a record that reaches the consumer within the generous
DELIVERY_S deadline was delivered by the append's wake-up, and a fetch that must wait
is checked to return no earlier than its max wait (a lower bound no load can break)."""

import json
import select
import time

import pytest
from confluent_kafka import KafkaError, TopicPartition

import helpers as h
import kafka_wire as w

LONG_WAIT_MS = 240_000   # far longer than any deadline below; the broker caps it at 5 min
DELIVERY_S = 60.0        # a generous deadline for a woken fetch's record to arrive
SLACK_S = 0.05           # timer granularity when checking that a fetch waited


def _warm_producer(bootstrap, topic):
    p = h.make_producer(bootstrap, {"linger.ms": 0})
    d = h.produce_all(p, topic, [h.Rec(None, b"warm-up", None, None)], partition=0)
    assert d.reports[0] == (None, 0, 0)
    return p


def _nothing_readable(c, seconds):
    """Polls a confluent consumer for `seconds`: nothing may be delivered (EOF is fine)."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for m in c.consume(num_messages=10, timeout=0.1):
            assert m.error() is not None and m.error().code() == KafkaError._PARTITION_EOF, \
                "nothing should be readable yet"


def _next_record(c, deadline_s, what):
    deadline = time.monotonic() + deadline_s
    while True:
        assert time.monotonic() < deadline, (
            f"{what} not delivered within {deadline_s}s although its fetch waits "
            f"{LONG_WAIT_MS // 1000}s: the append did not wake the parked fetch")
        for m in c.consume(num_messages=10, timeout=0.1):
            if m.error() is None:
                return m
            assert m.error().code() == KafkaError._PARTITION_EOF, m.error()


@pytest.mark.timeout(300)
def test_append_wakes_waiting_fetch_confluent(broker):
    topic = h.unique("lp")
    h.create_topic(broker.bootstrap, topic, 1)
    p = _warm_producer(broker.bootstrap, topic)
    c = h.make_consumer(broker.bootstrap, {"fetch.wait.max.ms": LONG_WAIT_MS, "fetch.min.bytes": 1})
    try:
        c.assign([TopicPartition(topic, 0, 1)])
        _nothing_readable(c, 1.5)   # the consumer connects and parks a fetch at the log end
        for i in range(3):
            d = h.Deliveries()
            p.produce(topic, b"wake-%d" % i, partition=0, on_delivery=d.cb(0))
            assert p.flush(30) == 0 and d.reports[0] == (None, 0, 1 + i)
            m = _next_record(c, DELIVERY_S, f"record #{i}")
            assert (m.offset(), m.value()) == (1 + i, b"wake-%d" % i)
            _nothing_readable(c, 0.5)   # the next fetch parks
    finally:
        c.close()


@pytest.mark.timeout(300)
def test_append_wakes_waiting_fetch_kafka_python(broker):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    topic = h.unique("lpkp")
    h.create_topic(broker.bootstrap, topic, 1)
    p = _warm_producer(broker.bootstrap, topic)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                      fetch_max_wait_ms=LONG_WAIT_MS, fetch_min_bytes=1, auto_offset_reset="none",
                      request_timeout_ms=LONG_WAIT_MS + 60_000)
    try:
        tp = KTP(topic, 0)
        c.assign([tp])
        c.seek(tp, 1)
        assert c.poll(timeout_ms=1500) == {}
        for i in range(2):
            d = h.Deliveries()
            p.produce(topic, b"kp-wake-%d" % i, partition=0, on_delivery=d.cb(0))
            assert p.flush(30) == 0 and d.reports[0] == (None, 0, 1 + i)
            deadline = time.monotonic() + DELIVERY_S
            recs = []
            while not recs:
                assert time.monotonic() < deadline, (
                    f"record #{i} not delivered within {DELIVERY_S}s although the fetch waits "
                    f"{LONG_WAIT_MS // 1000}s: the append did not wake the parked fetch")
                recs = c.poll(timeout_ms=100).get(tp, [])
            assert [(r.offset, r.value) for r in recs] == [(1 + i, b"kp-wake-%d" % i)]
            assert c.poll(timeout_ms=500) == {}
    finally:
        c.close()


def test_empty_fetch_waits_its_max_wait(broker):
    """Nothing to read: the fetch is answered, empty, and no earlier than max_wait_ms."""
    topic = h.unique("lpwait")
    h.create_topic(broker.bootstrap, topic, 1)
    with w.connect(broker.port, timeout=DELIVERY_S) as s:
        for corr, wait_ms in ((1, 1000), (2, 2500)):
            t0 = time.monotonic()
            _, res = w.parse_fetch_v4(w.roundtrip(s, w.fetch_request_v4(corr, topic, 0, 0, wait_ms)))
            waited = time.monotonic() - t0
            part = res[(topic, 0)]
            assert (part["error_code"], part["high_watermark"], part["records"]) == (0, 0, b""), part
            assert waited >= wait_ms / 1000 - SLACK_S, (
                f"an empty fetch with max_wait_ms={wait_ms} was answered after {waited:.3f}s")


def test_idle_fetch_does_not_spin(broker):
    topic = h.unique("idle")
    h.create_topic(broker.bootstrap, topic, 1)
    stats = []
    c = h.make_consumer(broker.bootstrap, {
        "fetch.wait.max.ms": 500, "fetch.min.bytes": 1,
        "statistics.interval.ms": 1000, "stats_cb": lambda s: stats.append(json.loads(s))})
    try:
        c.assign([TopicPartition(topic, 0, 0)])

        def poll_for(seconds):
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                for m in c.consume(num_messages=10, timeout=0.1):
                    assert m.error() is not None and m.error().code() == KafkaError._PARTITION_EOF

        poll_for(2.0)
        fetches_before = _fetch_requests(stats)
        cpu0, t0 = broker.cpu_seconds(), time.monotonic()
        poll_for(5.0)
        cpu1, t1 = broker.cpu_seconds(), time.monotonic()
        poll_for(1.1)  # one more statistics tick covering the window
        fetches = _fetch_requests(stats) - fetches_before
        window = time.monotonic() - t0
    finally:
        c.close()
    cpu = cpu1 - cpu0
    # CPU time, not wall-clock time: a busy machine gives the broker less, not more
    assert cpu < 0.5, f"broker used {cpu:.2f}s CPU in {t1 - t0:.1f}s of idle long-polling"
    # each fetch waits 500 ms, so at most window / 0.5 of them fit in the window however
    # slow the machine (doubled: the statistics snapshots may be late); a broker that
    # ignores max_wait_ms answers thousands
    assert 1 <= fetches <= 2 * window / 0.5 + 10, (
        f"{fetches} Fetch requests in {window:.1f}s with fetch.wait.max.ms=500")


def _fetch_requests(stats):
    assert stats, "no librdkafka statistics received"
    last = stats[-1]
    return sum(bk.get("req", {}).get("Fetch", 0) for bk in last["brokers"].values())


def test_idle_connections_do_not_spin(broker):
    """Many idle client connections cost no CPU."""
    from kafka_wire import api_versions_request_v0, connect, roundtrip
    socks = []
    try:
        for i in range(50):
            s = connect(broker.port)
            roundtrip(s, api_versions_request_v0(i))
            socks.append(s)
        cpu0 = broker.cpu_seconds()
        time.sleep(3.0)
        cpu = broker.cpu_seconds() - cpu0
        assert cpu < 0.3, f"broker used {cpu:.2f}s CPU in 3 s with 50 idle connections"
    finally:
        for s in socks:
            s.close()
    assert broker.is_running()


@pytest.mark.timeout(300)
def test_many_waiting_fetches_all_woken(broker):
    """Consumers parked on different partitions (one thread each) are each woken by the
    append to their partition."""
    topic = h.unique("lpmulti")
    h.create_topic(broker.bootstrap, topic, 4)
    p = h.make_producer(broker.bootstrap, {"linger.ms": 0})
    consumers = {q: h.make_consumer(broker.bootstrap, {"fetch.wait.max.ms": LONG_WAIT_MS})
                 for q in range(4)}
    parked = {q: False for q in range(4)}

    def run(q):
        c = consumers[q]
        c.assign([TopicPartition(topic, q, 0)])
        _nothing_readable(c, 1.5)
        parked[q] = True
        m = _next_record(c, DELIVERY_S + 30, f"the record of partition {q}")
        assert (m.partition(), m.offset(), m.value()) == (q, 0, b"p%d" % q)
        _nothing_readable(c, 0.5)   # and nothing else

    threads = [h.Worker(run, q, name=f"consumer-{q}") for q in range(4)]
    try:
        for t in threads:
            t.start()
        h.wait_until(lambda: all(parked.values()), DELIVERY_S, "every consumer parked")
        d = h.produce_all(p, topic, [h.Rec(None, b"p%d" % q, None, None) for q in range(4)],
                          partitions=[0, 1, 2, 3])
        assert d.errors() == {}
        for t in threads:
            t.join(timeout=DELIVERY_S + 60)
    finally:
        for c in consumers.values():
            c.close()


def _readable(sock) -> bool:
    return bool(select.select([sock], [], [], 0)[0])


def test_fetch_min_bytes_is_honoured(broker):
    """A fetch with min_bytes=5000 is not answered for a 20-byte append (it waits its
    whole max wait), but is answered once enough bytes arrive."""
    topic = h.unique("minbytes")
    h.create_topic(broker.bootstrap, topic, 1)
    p = _warm_producer(broker.bootstrap, topic)
    with w.connect(broker.port, timeout=DELIVERY_S) as s:
        t0 = time.monotonic()
        s.sendall(w.frame(w.fetch_request_v4(1, topic, 0, 1, max_wait_ms=3000, min_bytes=5000)))
        d = h.produce_all(p, topic, [h.Rec(None, b"small", None, None)], partition=0)
        assert d.reports[0] == (None, 0, 1)
        _, res = w.parse_fetch_v4(w.recv_frame(s))
        waited = time.monotonic() - t0
        assert [(o, v) for o, _, v in w.decode_records(res[(topic, 0)]["records"])] == [(1, b"small")]
        assert waited >= 3.0 - SLACK_S, (
            f"a 5-byte record satisfied min_bytes=5000 after {waited:.3f}s (max wait 3 s): "
            "min_bytes is ignored")

        s.sendall(w.frame(w.fetch_request_v4(2, topic, 0, 2, max_wait_ms=LONG_WAIT_MS,
                                             min_bytes=5000)))
        time.sleep(0.5)
        assert not _readable(s), "a fetch with min_bytes=5000 was answered with nothing new"
        big = [h.Rec(None, bytes([i]) * 1000, None, None) for i in range(10)]
        d = h.produce_all(p, topic, big, partition=0)
        assert d.errors() == {}
        _, res = w.parse_fetch_v4(w.recv_frame(s))   # within DELIVERY_S (the socket timeout)
        got = [(o, v) for o, _, v in w.decode_records(res[(topic, 0)]["records"])]
        assert sum(len(v) for _, v in got) >= 5000, got
        assert got == [(2 + i, big[i].value) for i in range(len(got))], "not the big records"
