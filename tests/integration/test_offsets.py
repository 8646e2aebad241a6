"""ListOffsets (earliest / latest / by timestamp) and where consumers start."""

import time

import pytest
from confluent_kafka import OFFSET_END, KafkaError, TopicPartition

import helpers as h


@pytest.fixture(scope="module")
def ts_topic(module_broker):
    """Partition 0: 10 records with CreateTime T+1000, T+2000, ..., T+10000,
    produced as ONE batch (offsets 0..9). Partition 1: empty."""
    b = module_broker
    topic = h.unique("ts")
    h.create_topic(b.bootstrap, topic, 2)
    t = h.base_ts()
    records = [h.Rec(b"k%d" % i, b"v%d" % i, None, t + 1000 * (i + 1)) for i in range(10)]
    # one batch: everything is queued before the (long) linger expires, flush sends it
    p = h.make_producer(b.bootstrap, {"linger.ms": 2000})
    d = h.produce_all(p, topic, records, partition=0)
    assert [d.reports[i] for i in range(10)] == [(None, 0, i) for i in range(10)]
    return topic, t, records


def test_watermarks(module_broker_alive, ts_topic):
    topic, _, _ = ts_topic
    c = h.make_consumer(module_broker_alive.bootstrap)
    try:
        assert c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False) == (0, 10)
        assert c.get_watermark_offsets(TopicPartition(topic, 1), timeout=10, cached=False) == (0, 0)
    finally:
        c.close()


def _offsets_for_times(bootstrap, topic, partition, timestamps):
    c = h.make_consumer(bootstrap)
    try:
        res = c.offsets_for_times([TopicPartition(topic, partition, ts) for ts in timestamps],
                                  timeout=10)
        out = []
        for tp in res:
            assert tp.error is None, tp.error
            out.append(tp.offset)
        return out
    finally:
        c.close()


def test_offsets_for_times(module_broker_alive, ts_topic):
    topic, t, _ = ts_topic
    b = module_broker_alive
    # exact hits, in-between values, before everything
    assert _offsets_for_times(b.bootstrap, topic, 0, [t + 2500]) == [2]
    assert _offsets_for_times(b.bootstrap, topic, 0, [t + 3000]) == [2]
    assert _offsets_for_times(b.bootstrap, topic, 0, [t + 3001]) == [3]
    assert _offsets_for_times(b.bootstrap, topic, 0, [t + 1000]) == [0]
    assert _offsets_for_times(b.bootstrap, topic, 0, [t]) == [0]
    assert _offsets_for_times(b.bootstrap, topic, 0, [0]) == [0]
    assert _offsets_for_times(b.bootstrap, topic, 0, [t + 10000]) == [9]
    # after the last record: no such offset (-1, i.e. the end)
    assert _offsets_for_times(b.bootstrap, topic, 0, [t + 10001]) == [-1]
    # empty partition
    assert _offsets_for_times(b.bootstrap, topic, 1, [t]) == [-1]


def test_list_offsets_kafka_python(module_broker_alive, ts_topic):
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    topic, t, _ = ts_topic
    c = KafkaConsumer(bootstrap_servers=module_broker_alive.bootstrap, group_id=None,
                      enable_auto_commit=False)
    try:
        tp0, tp1 = KTP(topic, 0), KTP(topic, 1)
        assert c.beginning_offsets([tp0, tp1]) == {tp0: 0, tp1: 0}
        assert c.end_offsets([tp0, tp1]) == {tp0: 10, tp1: 0}
        res = c.offsets_for_times({tp0: t + 2500})
        assert res[tp0].offset == 2 and res[tp0].timestamp == t + 3000
        res = c.offsets_for_times({tp0: t + 99999, tp1: t})
        assert res[tp0] is None and res[tp1] is None
    finally:
        c.close()


def test_consume_from_timestamp(module_broker_alive, ts_topic):
    topic, t, records = ts_topic
    b = module_broker_alive
    [start] = _offsets_for_times(b.bootstrap, topic, 0, [t + 6500])
    assert start == 6
    got = h.consume(b.bootstrap, topic, {0: 4}, start=start)
    assert [(m.offset, m.key, m.value, m.timestamp) for m in got[0]] == [
        (i, r.key, r.value, r.timestamp) for i, r in enumerate(records) if i >= 6]


@pytest.mark.parametrize("start", [0, 1, 5, 9])
def test_assign_offset_inside_batch(module_broker_alive, ts_topic, start):
    """The 10 records are one batch; starting inside it yields exactly offset >= start."""
    topic, _, records = ts_topic
    got = h.consume(module_broker_alive.bootstrap, topic, {0: 10 - start}, start=start)
    assert [(m.offset, m.key, m.value) for m in got[0]] == [
        (i, r.key, r.value) for i, r in enumerate(records) if i >= start]


def test_assign_offset_at_end(module_broker_alive, ts_topic):
    topic, _, _ = ts_topic
    got = h.consume(module_broker_alive.bootstrap, topic, {0: 0}, start=10)
    assert got == {0: []}


def _wait_eof_at(c, offset, timeout=20.0):
    """Poll until the consumer reports end-of-partition at `offset`; nothing else may come."""
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        for m in c.consume(num_messages=100, timeout=0.2):
            assert m.error() is not None, f"unexpected record at offset {m.offset()}: {m.value()}"
            assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
            seen.append(m.offset())
            if m.offset() == offset:
                return
    raise AssertionError(f"no end-of-partition at offset {offset} within {timeout}s (saw {seen})")


def test_offset_end_then_produce(broker):
    topic = h.unique("end")
    h.create_topic(broker.bootstrap, topic, 1)
    p = h.make_producer(broker.bootstrap)
    old = [h.Rec(None, b"old-%d" % i, None, None) for i in range(25)]
    assert h.produce_all(p, topic, old, partition=0).errors() == {}
    c = h.make_consumer(broker.bootstrap)
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_END)])
        # wait until the logical offset is resolved (ListOffsets latest) and the fetcher
        # reports the end of the partition at 25
        _wait_eof_at(c, 25)
        new = [h.Rec(None, b"new-%d" % i, None, None) for i in range(7)]
        d = h.produce_all(p, topic, new, partition=0)
        assert [d.reports[i] for i in range(7)] == [(None, 0, 25 + i) for i in range(7)]
        got = h.consume(broker.bootstrap, topic, {0: 7}, consumer=c, start=OFFSET_END)
    finally:
        c.close()
    assert [(m.offset, m.value) for m in got[0]] == [(25 + i, b"new-%d" % i) for i in range(7)]


def test_fetch_out_of_range_reset_error(module_broker_alive, ts_topic):
    topic, _, _ = ts_topic
    c = h.make_consumer(module_broker_alive.bootstrap, {"auto.offset.reset": "error"})
    try:
        c.assign([TopicPartition(topic, 0, 1000)])
        deadline = time.monotonic() + 20
        errors = []
        while time.monotonic() < deadline:
            for m in c.consume(num_messages=10, timeout=0.2):
                assert m.error() is not None, f"got a record at offset {m.offset()}"
                errors.append(m.error())
            if any(e.code() == KafkaError._AUTO_OFFSET_RESET for e in errors):
                break
        assert any(e.code() == KafkaError._AUTO_OFFSET_RESET for e in errors), errors
    finally:
        c.close()


def test_fetch_out_of_range_reset_earliest(module_broker_alive, ts_topic):
    topic, _, records = ts_topic
    got = h.consume(module_broker_alive.bootstrap, topic, {0: 10}, start=1000,
                    conf={"auto.offset.reset": "earliest"})
    assert [(m.offset, m.value) for m in got[0]] == [(i, r.value) for i, r in enumerate(records)]


def test_fetch_out_of_range_reset_latest(broker):
    topic = h.unique("oor-latest")
    h.create_topic(broker.bootstrap, topic, 1)
    p = h.make_producer(broker.bootstrap)
    assert h.produce_all(p, topic, [h.Rec(None, b"a%d" % i, None, None) for i in range(5)],
                         partition=0).errors() == {}
    c = h.make_consumer(broker.bootstrap, {"auto.offset.reset": "latest"})
    try:
        c.assign([TopicPartition(topic, 0, 500)])
        # out of range -> reset to the end (5), where the fetcher reports EOF
        _wait_eof_at(c, 5)
        d = h.produce_all(p, topic, [h.Rec(None, b"b", None, None)], partition=0)
        assert d.reports[0] == (None, 0, 5)
        got = h.consume(broker.bootstrap, topic, {0: 1}, consumer=c, start=5)
    finally:
        c.close()
    assert [(m.offset, m.value) for m in got[0]] == [(5, b"b")]


def test_max_timestamp_is_the_record_not_the_batch(module_broker_alive):
    """ListOffsets -3 (KIP-734) names the first record carrying the largest
    timestamp, even inside one batch whose timestamps are out of order."""
    from confluent_kafka.admin import AdminClient, OffsetSpec
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTP
    from kafka.admin import OffsetSpec as KOffsetSpec
    b = module_broker_alive
    topic = h.unique("maxts")
    h.create_topic(b.bootstrap, topic, 1)
    t = h.base_ts()
    stamps = [t + 5, t + 9, t + 1, t + 9, t + 3]   # largest first seen at offset 1
    records = [h.Rec(b"k%d" % i, b"v%d" % i, None, ts) for i, ts in enumerate(stamps)]
    d = h.produce_all(h.make_producer(b.bootstrap, {"linger.ms": 2000}), topic, records, partition=0)
    assert [d.reports[i] for i in range(5)] == [(None, 0, i) for i in range(5)]

    a = AdminClient({"bootstrap.servers": b.bootstrap})
    res = a.list_offsets({TopicPartition(topic, 0): OffsetSpec.max_timestamp()}, request_timeout=10)
    info = res[TopicPartition(topic, 0)].result(timeout=20)
    assert (info.offset, info.timestamp) == (1, t + 9)

    ka = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        tp = KTP(topic, 0)
        got = ka.list_partition_offsets({tp: KOffsetSpec.MAX_TIMESTAMP})[tp]
    finally:
        ka.close()
    assert (got.offset, got.timestamp) == (1, t + 9)
