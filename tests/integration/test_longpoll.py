"""Fetch long-polling: an append wakes a waiting fetch, and an idle consumer
does not make the broker spin."""

import json
import threading
import time

from confluent_kafka import KafkaError, TopicPartition

import helpers as h


def _warm_producer(bootstrap, topic):
    p = h.make_producer(bootstrap, {"linger.ms": 0})
    d = h.produce_all(p, topic, [h.Rec(None, b"warm-up", None, None)], partition=0)
    assert d.reports[0] == (None, 0, 0)
    return p


def test_append_wakes_waiting_fetch_confluent(broker):
    topic = h.unique("lp")
    h.create_topic(broker.bootstrap, topic, 1)
    p = _warm_producer(broker.bootstrap, topic)
    c = h.make_consumer(broker.bootstrap, {"fetch.wait.max.ms": 5000, "fetch.min.bytes": 1})
    try:
        c.assign([TopicPartition(topic, 0, 1)])
        # let the consumer connect and park a fetch at the end of the log
        end = time.monotonic() + 1.5
        while time.monotonic() < end:
            for m in c.consume(num_messages=10, timeout=0.1):
                assert m.error() is not None and m.error().code() == KafkaError._PARTITION_EOF, \
                    "nothing should be readable yet"
        for i in range(3):
            if i:
                time.sleep(1.0)  # the next fetch is now waiting (up to 5 s) in the broker
            t0 = time.monotonic()
            d = h.Deliveries()
            p.produce(topic, b"wake-%d" % i, partition=0, on_delivery=d.cb(0))
            assert p.flush(10) == 0 and d.reports[0] == (None, 0, 1 + i)
            got = None
            while got is None:
                elapsed = time.monotonic() - t0
                assert elapsed < 4.5, "record not delivered to the waiting consumer"
                for m in c.consume(num_messages=10, timeout=0.05):
                    if m.error() is None:
                        got = (m.offset(), m.value(), time.monotonic() - t0)
                        break
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
            assert got[:2] == (1 + i, b"wake-%d" % i)
            assert got[2] < 2.5, (
                f"record #{i} reached the consumer {got[2]:.2f}s after it was produced: the "
                "append did not wake the parked fetch (fetch.wait.max.ms=5000)")
    finally:
        c.close()


def test_append_wakes_waiting_fetch_kafka_python(broker):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    topic = h.unique("lpkp")
    h.create_topic(broker.bootstrap, topic, 1)
    p = _warm_producer(broker.bootstrap, topic)
    c = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None, enable_auto_commit=False,
                      fetch_max_wait_ms=5000, fetch_min_bytes=1, auto_offset_reset="none",
                      request_timeout_ms=30000)
    try:
        tp = KTP(topic, 0)
        c.assign([tp])
        c.seek(tp, 1)
        assert c.poll(timeout_ms=1500) == {}
        for i in range(2):
            if i:
                time.sleep(1.0)
            t0 = time.monotonic()
            d = h.Deliveries()
            p.produce(topic, b"kp-wake-%d" % i, partition=0, on_delivery=d.cb(0))
            assert p.flush(10) == 0 and d.reports[0] == (None, 0, 1 + i)
            recs = []
            while not recs:
                assert time.monotonic() - t0 < 4.5, "record not delivered to the waiting consumer"
                recs = c.poll(timeout_ms=100).get(tp, [])
            elapsed = time.monotonic() - t0
            assert [(r.offset, r.value) for r in recs] == [(1 + i, b"kp-wake-%d" % i)]
            assert elapsed < 2.5, (f"record #{i} arrived {elapsed:.2f}s after produce with "
                                   "fetch_max_wait_ms=5000: the append did not wake the fetch")
    finally:
        c.close()


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
    finally:
        c.close()
    cpu = cpu1 - cpu0
    assert cpu < 0.5, f"broker used {cpu:.2f}s CPU in {t1 - t0:.1f}s of idle long-polling"
    # ~5 s / 500 ms = ~10 fetch requests (+ the stats ticks' slack); a broker that
    # ignores max_wait_ms answers thousands, one that over-waits far fewer
    assert 5 <= fetches <= 25, f"{fetches} Fetch requests in ~6 s with fetch.wait.max.ms=500"


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


def test_many_waiting_fetches_all_woken(broker):
    """Several consumers parked on different partitions are each woken by appends."""
    topic = h.unique("lpmulti")
    h.create_topic(broker.bootstrap, topic, 4)
    p = h.make_producer(broker.bootstrap, {"linger.ms": 0})
    consumers = []
    results = {}
    ready = threading.Barrier(5)

    def run(part):
        c = h.make_consumer(broker.bootstrap, {"fetch.wait.max.ms": 5000})
        consumers.append(c)
        c.assign([TopicPartition(topic, part, 0)])
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end:
            for m in c.consume(num_messages=10, timeout=0.1):
                assert m.error() is not None
        ready.wait(timeout=20)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=10, timeout=0.05):
                if m.error() is None:
                    results[part] = (m.value(), time.monotonic())
                    return

    threads = [threading.Thread(target=run, args=(q,), daemon=True) for q in range(4)]
    for t in threads:
        t.start()
    ready.wait(timeout=20)
    time.sleep(0.5)
    t0 = time.monotonic()
    d = h.produce_all(p, topic, [h.Rec(None, b"p%d" % q, None, None) for q in range(4)],
                      partitions=[0, 1, 2, 3])
    assert d.errors() == {}
    for t in threads:
        t.join(timeout=15)
    for c in consumers:
        c.close()
    assert sorted(results) == [0, 1, 2, 3], f"only partitions {sorted(results)} got their record"
    for q, (value, t) in results.items():
        assert value == b"p%d" % q
        assert t - t0 < 2.5, f"partition {q} woken {t - t0:.2f}s after produce"


def test_fetch_min_bytes_is_honoured(broker):
    """A parked fetch with fetch.min.bytes=5000 is not answered for a 20-byte append (it
    waits for fetch.wait.max.ms), but is answered at once when enough bytes arrive."""
    topic = h.unique("minbytes")
    h.create_topic(broker.bootstrap, topic, 1)
    p = _warm_producer(broker.bootstrap, topic)
    c = h.make_consumer(broker.bootstrap, {"fetch.wait.max.ms": 3000, "fetch.min.bytes": 5000})
    try:
        c.assign([TopicPartition(topic, 0, 1)])
        # the first fetch parks for the full 3 s, then reports EOF at offset 1
        deadline = time.monotonic() + 10
        while True:
            ms = c.consume(num_messages=10, timeout=0.1)
            if any(m.error() and m.error().code() == KafkaError._PARTITION_EOF for m in ms):
                break
            assert all(m.error() for m in ms), "nothing should be readable yet"
            assert time.monotonic() < deadline, "no EOF within 10 s"
        time.sleep(0.3)  # the next fetch is parked now, with ~2.7 s left
        t0 = time.monotonic()
        d = h.produce_all(p, topic, [h.Rec(None, b"small", None, None)], partition=0)
        assert d.reports[0] == (None, 0, 1)
        got = None
        while got is None:
            assert time.monotonic() - t0 < 8, "small record never delivered"
            for m in c.consume(num_messages=10, timeout=0.05):
                if m.error() is None:
                    got = (m.offset(), m.value(), time.monotonic() - t0)
        assert got[:2] == (1, b"small")
        assert got[2] > 1.5, (f"a 5-byte record satisfied fetch.min.bytes=5000 after "
                              f"{got[2]:.2f}s: min_bytes is ignored")

        time.sleep(0.3)
        t1 = time.monotonic()
        big = [h.Rec(None, bytes([i]) * 1000, None, None) for i in range(10)]
        d = h.produce_all(p, topic, big, partition=0)
        assert d.errors() == {}
        n = 0
        while n < 10:
            assert time.monotonic() - t1 < 8, "big records never delivered"
            for m in c.consume(num_messages=20, timeout=0.05):
                if m.error() is None:
                    assert m.offset() == 2 + n and m.value() == big[n].value
                    n += 1
        elapsed = time.monotonic() - t1
        assert elapsed < 1.5, (f"10 KB appended to a fetch parked with fetch.min.bytes=5000 "
                               f"took {elapsed:.2f}s to arrive: the append did not complete it")
    finally:
        c.close()
