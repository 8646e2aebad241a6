"""Produce / consume round trips: codecs, acks, headers, tombstones, timestamps,
cross-client compatibility, key routing and size limits."""

import os
import time

import pytest
from confluent_kafka import KafkaError

import helpers as h

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
ACKS = ["0", "1", "all"]


def _roundtrip(bootstrap, n, codec, acks, partitions=4, seed=7):
    topic = h.unique(f"rt-{codec}-{acks}")
    h.create_topic(bootstrap, topic, partitions)
    records = h.make_records(n, seed=seed)
    p = h.make_producer(bootstrap, {"compression.type": codec, "acks": acks, "linger.ms": 20,
                                    "batch.num.messages": 2000})
    d = h.produce_all(p, topic, records)
    assert d.errors() == {}, f"delivery errors: {list(d.errors().items())[:5]}"
    with_offsets = acks != "0"
    if with_offsets:
        # offsets assigned by the broker are dense per partition, starting at 0
        per_part = {}
        for _, part, off in d.reports.values():
            per_part.setdefault(part, []).append(off)
        for part, offs in per_part.items():
            assert sorted(offs) == list(range(len(offs))), f"partition {part}: non-dense offsets"
    # (with acks=0 the broker sends no response, so the reports carry no usable offset)
    expected = h.expected_by_partition(records, d, with_offsets=with_offsets)
    assert len(expected) == partitions, "records should spread over every partition"
    got = h.consume(bootstrap, topic, {q: len(expected.get(q, [])) for q in range(partitions)},
                    timeout=120)
    h.assert_matches(got, expected, check_offsets=with_offsets)
    for q in range(partitions):
        assert h.watermarks(bootstrap, topic, q) == (0, len(expected[q]))
    return topic


@pytest.mark.timeout(300)
def test_roundtrip_100k(broker):
    _roundtrip(broker.bootstrap, 100_000, "none", "all")


@pytest.mark.parametrize("acks", ACKS)
@pytest.mark.parametrize("codec", CODECS)
def test_roundtrip_codec_acks(broker, codec, acks):
    _roundtrip(broker.bootstrap, 5_000, codec, acks)


@pytest.mark.timeout(300)
def test_roundtrip_100k_compressed(broker):
    _roundtrip(broker.bootstrap, 100_000, "zstd", "1", seed=11)


# --------------------------------------------------------------------------
# cross-client
# --------------------------------------------------------------------------


def _kafka_python_compatible(records):
    """kafka-python refuses null header values and records with neither key nor value."""
    out = []
    for r in records:
        if r.headers:
            r = r._replace(headers=[(k, v if v is not None else b"") for k, v in r.headers])
        if r.key is None and r.value is None:
            r = r._replace(key=b"k")
        out.append(r)
    return out


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_kafka_python_produce_confluent_consume(module_broker_alive, codec):
    b = module_broker_alive
    topic = h.unique(f"kp2ck-{codec}")
    h.create_topic(b.bootstrap, topic, 3)
    records = _kafka_python_compatible(h.make_records(2_000, seed=3))
    prod = h.kp_producer(b.bootstrap, compression_type=codec)
    try:
        acked = h.kp_produce_all(prod, topic, records)
    finally:
        prod.close()
    expected = {}
    for i, (part, off) in enumerate(acked):
        expected.setdefault(part, []).append((off, i, records[i]))
    for lst in expected.values():
        lst.sort(key=lambda x: x[0])
        assert [x[0] for x in lst] == list(range(len(lst)))
    got = h.consume(b.bootstrap, topic, {q: len(expected.get(q, [])) for q in range(3)})
    h.assert_matches(got, expected)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_confluent_produce_kafka_python_consume(module_broker_alive, codec):
    b = module_broker_alive
    topic = h.unique(f"ck2kp-{codec}")
    h.create_topic(b.bootstrap, topic, 3)
    records = h.make_records(2_000, seed=5)
    p = h.make_producer(b.bootstrap, {"compression.type": codec, "linger.ms": 20})
    d = h.produce_all(p, topic, records)
    assert d.errors() == {}
    expected = h.expected_by_partition(records, d)
    got = h.kp_consume(b.bootstrap, topic, {q: len(expected.get(q, [])) for q in range(3)})
    h.assert_matches(got, expected)


def test_kafka_python_roundtrip_uncompressed(module_broker_alive):
    b = module_broker_alive
    topic = h.unique("kp-kp")
    h.create_topic(b.bootstrap, topic, 2)
    t0 = h.base_ts()
    # keys: some None; values: some None (tombstones) but never both (kafka-python refuses)
    records = [h.Rec(b"k%d" % (i % 7) if i % 5 else None,
                     None if (i % 9 == 0 and i % 5) else b"v%d" % i,
                     [("i", b"%d" % i), ("i", b"")], t0 + i) for i in range(1_000)]
    prod = h.kp_producer(b.bootstrap)
    try:
        acked = h.kp_produce_all(prod, topic, records)
    finally:
        prod.close()
    expected = {}
    for i, (part, off) in enumerate(acked):
        expected.setdefault(part, []).append((off, i, records[i]))
    for lst in expected.values():
        lst.sort(key=lambda x: x[0])
    got = h.kp_consume(b.bootstrap, topic, {q: len(expected.get(q, [])) for q in range(2)})
    h.assert_matches(got, expected)


# --------------------------------------------------------------------------
# routing and limits
# --------------------------------------------------------------------------


def test_same_key_same_partition(module_broker_alive):
    b = module_broker_alive
    topic = h.unique("keys")
    h.create_topic(b.bootstrap, topic, 6)
    keys = [b"user-%d" % i for i in range(60)]
    records = []
    deliveries = []
    # three producer instances, each producing every key several times
    for round_ in range(3):
        recs = [h.Rec(k, b"%s/%d/%d" % (k, round_, j), None, None) for j in range(3) for k in keys]
        p = h.make_producer(b.bootstrap)
        d = h.produce_all(p, topic, recs)
        assert d.errors() == {}
        records += recs
        deliveries += [d.reports[i] for i in range(len(recs))]
    part_of = {}
    for r, (_, part, _) in zip(records, deliveries):
        part_of.setdefault(r.key, set()).add(part)
    assert all(len(s) == 1 for s in part_of.values()), part_of
    assert len({next(iter(s)) for s in part_of.values()}) > 1, "all keys in one partition?"
    # and the records really are stored in the partition the producer was told
    counts = {q: 0 for q in range(6)}
    for _, part, _ in deliveries:
        counts[part] += 1
    got = h.consume(b.bootstrap, topic, counts)
    for q, msgs in got.items():
        for m in msgs:
            assert part_of[m.key] == {q}, f"{m.key!r} read from partition {q}"
        # per key, production order is preserved
        by_key = {}
        for m in msgs:
            by_key.setdefault(m.key, []).append(m.value)
        for k, vals in by_key.items():
            assert vals == [r.value for r in records if r.key == k]


def test_message_too_large(broker):
    """Broker default message.max.bytes (1048588): a 2 MiB record batch is rejected with
    MESSAGE_TOO_LARGE, a ~900 KB one is accepted and reads back intact."""
    topic = h.unique("big")
    h.create_topic(broker.bootstrap, topic, 1)
    p = h.make_producer(broker.bootstrap, {"message.max.bytes": 3 * 1024 * 1024,
                                           "compression.type": "none", "linger.ms": 0})
    big = os.urandom(2 * 1024 * 1024)
    d = h.Deliveries()
    p.produce(topic, big, key=b"big", partition=0, on_delivery=d.cb(0))
    assert p.flush(30) == 0
    err = d.reports[0][0]
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    assert h.watermarks(broker.bootstrap, topic, 0) == (0, 0)

    ok = os.urandom(900_000)
    d2 = h.Deliveries()
    p.produce(topic, ok, key=b"ok", partition=0, on_delivery=d2.cb(0))
    assert p.flush(30) == 0
    assert d2.reports[0] == (None, 0, 0)
    got = h.consume(broker.bootstrap, topic, {0: 1})
    assert [(m.offset, m.key, m.value) for m in got[0]] == [(0, b"ok", ok)]


def test_message_max_bytes_setting(start_broker):
    """--set message.max.bytes lowers the limit."""
    b = start_broker({"message.max.bytes": 10_000})
    topic = h.unique("small-limit")
    h.create_topic(b.bootstrap, topic, 1)
    p = h.make_producer(b.bootstrap, {"compression.type": "none", "linger.ms": 0})
    d = h.Deliveries()
    p.produce(topic, os.urandom(20_000), partition=0, on_delivery=d.cb(0))
    p.flush(30)
    p.produce(topic, b"x" * 5_000, partition=0, on_delivery=d.cb(1))
    p.flush(30)
    assert d.reports[0][0] is not None and d.reports[0][0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    assert d.reports[1] == (None, 0, 0)


def test_explicit_partition_and_empty_topic_partitions(module_broker_alive):
    b = module_broker_alive
    topic = h.unique("explicit")
    h.create_topic(b.bootstrap, topic, 5)
    p = h.make_producer(b.bootstrap)
    t0 = h.base_ts()
    records = [h.Rec(b"k", b"only-p3-%d" % i, None, t0 + i) for i in range(20)]
    d = h.produce_all(p, topic, records, partition=3)
    assert sorted(d.reports.values()) == [(None, 3, i) for i in range(20)]
    got = h.consume(b.bootstrap, topic, {0: 0, 1: 0, 2: 0, 3: 20, 4: 0})
    assert [m.value for m in got[3]] == [r.value for r in records]
    assert all(got[q] == [] for q in (0, 1, 2, 4))


def test_log_append_time_topic(module_broker_alive):
    """A topic created with message.timestamp.type=LogAppendTime stamps records
    with the broker's clock."""
    b = module_broker_alive
    topic = h.unique("lat")
    h.create_topic(b.bootstrap, topic, 1, config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    p = h.make_producer(b.bootstrap)
    d = h.produce_all(p, topic, [h.Rec(None, b"v%d" % i, None, 1_000_000 + i) for i in range(5)],
                      partition=0)
    after = int(time.time() * 1000)
    assert d.errors() == {}
    got = h.consume(b.bootstrap, topic, {0: 5})
    for m in got[0]:
        assert m.ts_type == h.LOG_APPEND_TIME
        assert before - 1000 <= m.timestamp <= after + 1000


def test_fetch_size_limits_still_make_progress(module_broker_alive):
    """Batches larger than max.partition.fetch.bytes / fetch.max.bytes are still returned
    (one at a time), so the consumer always makes progress (KIP-74)."""
    b = module_broker_alive
    topic = h.unique("fetchlimits")
    h.create_topic(b.bootstrap, topic, 2)
    p = h.make_producer(b.bootstrap, {"linger.ms": 0, "compression.type": "none"})
    recs = [h.Rec(b"k%d" % i, os.urandom(5000), None, None) for i in range(40)]
    d = h.produce_all(p, topic, recs, partitions=[i % 2 for i in range(40)])
    assert d.errors() == {}
    expected = h.expected_by_partition(recs, d)
    got = h.consume(b.bootstrap, topic, {0: 20, 1: 20},
                    conf={"max.partition.fetch.bytes": 1024, "fetch.max.bytes": 2048,
                          "message.max.bytes": 1000})
    h.assert_matches(got, expected)
