"""Topic configuration, retention, compaction, DeleteRecords and partition
growth, through real admin clients (confluent-kafka and kafka-python)."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from confluent_kafka import (TIMESTAMP_LOG_APPEND_TIME, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource,
                                   NewPartitions, NewTopic)

from helpers import unique

FAST = {"log.retention.check.interval.ms": 500, "log.cleaner.backoff.ms": 500}


_ADMINS: dict[str, AdminClient] = {}


@pytest.fixture(autouse=True)
def _drop_admins():
    yield
    _ADMINS.clear()


def admin(bs):
    # Kept alive: a destroyed AdminClient fails its pending futures.
    if bs not in _ADMINS:
        _ADMINS[bs] = AdminClient({"bootstrap.servers": bs})
    return _ADMINS[bs]


def create(bs, name, partitions=1, **config):
    cfg = {k.replace("_", "."): str(v) for k, v in config.items()}
    admin(bs).create_topics([NewTopic(name, partitions, 1, config=cfg)])[name].result(15)


def describe(bs, name):
    r = ConfigResource("topic", name)
    return admin(bs).describe_configs([r])[r].result(15)


def produce_reports(bs, topic, records, conf=None, timestamps=None, partition=None):
    """Produces (key, value) records (with CreateTime `timestamps` if given) and returns
    one (error, partition, offset) per record, in order."""
    c = {"bootstrap.servers": bs, "linger.ms": 5}
    c.update(conf or {})
    p = Producer(c)
    reports: dict[int, tuple] = {}

    def cb(i):
        return lambda e, m: reports.__setitem__(i, (e, m.partition(), m.offset()))
    for i, (key, value) in enumerate(records):
        kw = {} if timestamps is None else {"timestamp": timestamps[i]}
        if partition is not None:
            kw["partition"] = partition
        p.produce(topic, key=key, value=value, on_delivery=cb(i), **kw)
        p.poll(0)
    assert p.flush(60) == 0
    assert sorted(reports) == list(range(len(records))), "delivery reports missing"
    return [reports[i] for i in range(len(records))]


def produce(bs, topic, records, conf=None, timestamps=None, partition=None):
    """Produces records that must all be acknowledged; returns their (partition, offset)."""
    reports = produce_reports(bs, topic, records, conf, timestamps, partition)
    errors = [(i, e) for i, (e, _, _) in enumerate(reports) if e is not None]
    assert not errors, f"{len(errors)} of {len(records)} records not acknowledged: {errors[:3]}"
    return [(p, o) for _, p, o in reports]


def produce_errors(bs, topic, records, conf=None, timestamps=None):
    """Produces records expected to be refused; returns each one's error (None: accepted)."""
    return [e for e, _, _ in produce_reports(bs, topic, records, conf, timestamps)]


def read_all(bs, topic, partition=0, start=0, reset="earliest", timeout=60):
    """Every record from `start` to the end of the partition (EOF); fails if the end is
    not reached within `timeout`."""
    c = Consumer({"bootstrap.servers": bs, "group.id": unique("r"), "enable.partition.eof": True,
                  "auto.offset.reset": reset, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, partition, start)])
    out = []
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, f"no end of {topic}[{partition}] within {timeout}s"
        m = c.poll(1)
        if m is None:
            continue
        if m.error():
            if m.error().code() == KafkaError._PARTITION_EOF:
                break
            raise KafkaException(m.error())
        out.append(m)
    c.close()
    return out


def test_describe_shows_values_sources_and_synonyms(start_broker):
    b = start_broker({"log.retention.hours": 2})
    t = unique("cfg")
    create(b.bootstrap, t, segment_bytes=123456)
    d = describe(b.bootstrap, t)
    assert d["segment.bytes"].value == "123456"
    assert d["segment.bytes"].source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
    assert d["retention.ms"].value == "7200000", "the broker's log.retention.hours applies"
    assert d["retention.ms"].source == ConfigSource.STATIC_BROKER_CONFIG.value
    assert d["cleanup.policy"].value == "delete"
    assert d["cleanup.policy"].source == ConfigSource.DEFAULT_CONFIG.value
    syn = [(s.name, s.value) for s in d["retention.ms"].synonyms.values()]
    assert ("log.retention.hours", "7200000") in syn and ("log.retention.ms", "604800000") in syn
    for key in ["retention.bytes", "segment.ms", "min.cleanable.dirty.ratio", "max.message.bytes",
                "message.timestamp.type", "compression.type", "min.insync.replicas",
                "unclean.leader.election.enable", "delete.retention.ms", "min.compaction.lag.ms",
                "max.compaction.lag.ms", "segment.index.bytes", "message.timestamp.before.max.ms",
                "message.timestamp.after.max.ms"]:
        assert key in d, key


def test_incremental_and_legacy_alter(broker):
    bs = broker.bootstrap
    t = unique("alt")
    create(bs, t, retention_ms=60000)
    a = admin(bs)
    r = ConfigResource("topic", t, incremental_configs=[
        ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
        ConfigEntry("retention.ms", None, incremental_operation=AlterConfigOpType.DELETE),
        ConfigEntry("max.message.bytes", "2000000", incremental_operation=AlterConfigOpType.SET),
    ])
    a.incremental_alter_configs([r])[r].result(15)
    d = describe(bs, t)
    assert d["cleanup.policy"].value == "delete,compact"
    assert d["retention.ms"].value == "604800000" and d["retention.ms"].source == ConfigSource.DEFAULT_CONFIG.value
    assert d["max.message.bytes"].value == "2000000"
    r = ConfigResource("topic", t, incremental_configs=[
        ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT)])
    a.incremental_alter_configs([r])[r].result(15)
    assert describe(bs, t)["cleanup.policy"].value == "compact"
    # legacy AlterConfigs replaces the whole set of dynamic configs
    r = ConfigResource("topic", t, set_config={"segment.ms": "3600000"})
    a.alter_configs([r])[r].result(15)
    d = describe(bs, t)
    assert d["segment.ms"].value == "3600000"
    assert d["cleanup.policy"].value == "delete" and d["max.message.bytes"].source == ConfigSource.DEFAULT_CONFIG.value


def _watermarks(bs, topic):
    c = Consumer({"bootstrap.servers": bs, "group.id": unique("wm")})
    try:
        return c.get_watermark_offsets(TopicPartition(topic, 0), timeout=10)
    finally:
        c.close()


def _wait_low_watermark_above_zero(bs, topic, timeout=30):
    deadline = time.monotonic() + timeout
    low = 0
    while time.monotonic() < deadline:
        low, _ = _watermarks(bs, topic)
        if low > 0:
            break
        time.sleep(0.3)
    return low


def test_subtract_to_an_empty_list_and_back(start_broker):
    """Kafka 4.1 accepts the empty list for every LIST topic config. An empty
    cleanup.policy is neither delete nor compact: retention deletes nothing
    (and keyless records are accepted). Appending delete brings retention back."""
    b = start_broker(FAST)
    bs = b.bootstrap
    a = admin(bs)
    kept, control = unique("empty"), unique("ctl")
    for t in (kept, control):
        create(bs, t, cleanup_policy="delete", segment_bytes=2048, retention_ms=1000)

    def alter(*entries):
        r = ConfigResource("topic", kept, incremental_configs=list(entries))
        a.incremental_alter_configs([r])[r].result(15)

    alter(ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.SUBTRACT),
          ConfigEntry("leader.replication.throttled.replicas", "0:1", incremental_operation=AlterConfigOpType.APPEND),
          ConfigEntry("follower.replication.throttled.replicas", "*", incremental_operation=AlterConfigOpType.SET))
    d = describe(bs, kept)
    assert (d["cleanup.policy"].value, d["cleanup.policy"].source) == ("", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert d["leader.replication.throttled.replicas"].value == "0:1"
    assert d["follower.replication.throttled.replicas"].value == "*"
    alter(ConfigEntry("leader.replication.throttled.replicas", "0:1", incremental_operation=AlterConfigOpType.SUBTRACT),
          ConfigEntry("follower.replication.throttled.replicas", "*", incremental_operation=AlterConfigOpType.SUBTRACT))
    d = describe(bs, kept)
    assert d["leader.replication.throttled.replicas"].value == ""
    assert d["follower.replication.throttled.replicas"].value == ""

    # kept's records are written first, so they are the older ones: when
    # retention has deleted the control topic's, it has seen kept's too
    for t in (kept, control):
        produce(bs, t, [(None, b"x" * 100) for _ in range(300)], {"linger.ms": 0, "batch.size": 1000})
    assert _wait_low_watermark_above_zero(bs, control) > 0, "retention runs on the control topic"
    assert _watermarks(bs, kept) == (0, 300), "an empty cleanup.policy deletes nothing"
    assert len(list((Path(b.data_dir) / f"{kept}-0").glob("*.log"))) > 5

    alter(ConfigEntry("cleanup.policy", "delete", incremental_operation=AlterConfigOpType.APPEND))
    d = describe(bs, kept)
    assert (d["cleanup.policy"].value, d["cleanup.policy"].source) == ("delete", ConfigSource.DYNAMIC_TOPIC_CONFIG.value)
    assert _wait_low_watermark_above_zero(bs, kept) > 0, "delete is back: retention applies again"


def test_invalid_configs_get_invalid_config_naming_the_key(broker):
    bs = broker.bootstrap
    a = admin(bs)
    t = unique("bad")
    for config, key in [({"retention.ms": "soon"}, "retention.ms"), ({"cleanup.policy": "shred"}, "cleanup.policy"),
                        ({"no.such.thing": "1"}, "no.such.thing")]:
        with pytest.raises(KafkaException) as e:
            a.create_topics([NewTopic(t, 1, 1, config=config)])[t].result(15)
        assert e.value.args[0].code() == KafkaError.INVALID_CONFIG and key in e.value.args[0].str()
    create(bs, t)
    r = ConfigResource("topic", t, incremental_configs=[
        ConfigEntry("segment.bytes", "10", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as e:
        a.incremental_alter_configs([r])[r].result(15)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG and "segment.bytes" in e.value.args[0].str()
    r = ConfigResource("topic", t, incremental_configs=[
        ConfigEntry("retention.ms", "1", incremental_operation=AlterConfigOpType.APPEND)])
    with pytest.raises(KafkaException) as e:
        a.incremental_alter_configs([r])[r].result(15)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG


def test_message_format_version_is_accepted_and_ignored(broker):
    """Kafka 3.x tools still set message.format.version; like Kafka 3.x it is accepted,
    shown, and changes nothing (records stay in format v2)."""
    bs = broker.bootstrap
    a = admin(bs)
    t = unique("mfv")
    create(bs, t, message_format_version="2.8")
    assert describe(bs, t)["message.format.version"].value == "2.8"
    r = ConfigResource("topic", t, incremental_configs=[
        ConfigEntry("message.format.version", "3.0-IV1", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([r])[r].result(15)
    assert describe(bs, t)["message.format.version"].value == "3.0-IV1"
    produce(bs, t, [(b"k", b"v")])
    assert [m.value() for m in read_all(bs, t)] == [b"v"]
    r = ConfigResource("topic", t, incremental_configs=[
        ConfigEntry("message.format.version", "banana", incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as e:
        a.incremental_alter_configs([r])[r].result(15)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG and "message.format.version" in e.value.args[0].str()


def test_kafka_python_admin_configs(broker):
    from kafka import KafkaAdminClient
    from kafka.admin import ConfigResource as KCR
    from kafka.admin import ConfigResourceType

    bs = broker.bootstrap
    t = unique("kpc")
    create(bs, t)
    ka = KafkaAdminClient(bootstrap_servers=bs)
    ka.alter_configs([KCR(ConfigResourceType.TOPIC, t, configs={"retention.ms": "120000"})])
    res = ka.describe_configs([KCR(ConfigResourceType.TOPIC, t)])
    ka.close()
    text = repr(res)
    assert "retention.ms" in text and "120000" in text
    assert describe(bs, t)["retention.ms"].value == "120000"


def test_retention_deletes_old_segments_and_consumers_reset(start_broker):
    b = start_broker(FAST)
    bs = b.bootstrap
    t = unique("ret")
    create(bs, t, segment_bytes=2048, retention_ms=2000)
    produce(bs, t, [(None, b"x" * 100) for _ in range(300)], {"linger.ms": 0, "batch.size": 1000})
    first = read_all(bs, t)
    assert len(first) == 300 and first[0].offset() == 0
    seg_dir = Path(b.data_dir) / f"{t}-0"
    before = len(list(seg_dir.glob("*.log")))
    assert before > 5
    # after retention.ms plus a check interval, only the active segment remains
    deadline = time.monotonic() + 60
    c = Consumer({"bootstrap.servers": bs, "group.id": "wm"})
    low = 0
    while time.monotonic() < deadline:
        low, high = c.get_watermark_offsets(TopicPartition(t, 0), timeout=5)
        if low > 0 and len(list(seg_dir.glob("*.log"))) == 1:
            break
        time.sleep(0.5)
    c.close()
    assert low > 0 and high == 300
    assert len(list(seg_dir.glob("*.log"))) == 1, "only the active segment is left"
    # a consumer positioned below the log start resets per auto.offset.reset
    got = read_all(bs, t, start=0, reset="earliest")
    assert got and got[0].offset() == low and got[-1].offset() == 299


def test_retention_bytes(start_broker):
    b = start_broker(FAST)
    bs = b.bootstrap
    t = unique("retb")
    create(bs, t, segment_bytes=2048, retention_bytes=6000)
    produce(bs, t, [(None, b"y" * 100) for _ in range(300)], {"linger.ms": 0, "batch.size": 1000})
    seg_dir = Path(b.data_dir) / f"{t}-0"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sum(f.stat().st_size for f in seg_dir.glob("*.log")) > 6000 + 2048:
        time.sleep(0.3)
    size = sum(f.stat().st_size for f in seg_dir.glob("*.log"))
    assert 6000 - 2048 <= size <= 6000 + 2048, size


def test_compacted_topic_reads_back_latest_value_per_key(start_broker):
    b = start_broker(FAST)
    bs = b.bootstrap
    t = unique("cmp")
    create(bs, t, cleanup_policy="compact", segment_bytes=65536, min_cleanable_dirty_ratio="0.01")
    n, keys = 100_000, 1000
    # batches must stay below segment.bytes (64 KiB), or the broker refuses
    # them (RECORD_LIST_TOO_LARGE, as Kafka does): bound the producer's batches
    p = Producer({"bootstrap.servers": bs, "linger.ms": 5, "compression.type": "lz4", "batch.size": 32768})
    errors = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(err)

    seg_dir = Path(b.data_dir) / f"{t}-0"

    def log_bytes() -> int:
        total = 0
        for f in seg_dir.glob("*.log"):
            try:
                total += f.stat().st_size
            except FileNotFoundError:  # a segment the cleaner just replaced
                pass
        return total

    # the cleaner may compact while records still arrive: the largest size seen on
    # the way is what compaction is compared with, not the size after the flush
    size_before = 0
    for i in range(n):
        p.produce(t, key=f"key-{i % keys}", value=f"value-{i}", on_delivery=on_delivery)
        if i % 10000 == 0:
            p.poll(0)
        if i % 1000 == 0:
            size_before = max(size_before, log_bytes())
    assert p.flush(60) == 0
    assert errors == [], errors[:3]
    size_before = max(size_before, log_bytes())
    # wait until the cleaner has been over (nearly) everything but the active segment
    def cleaned_up_to():
        return max([int(x) for x in re.findall(r"compacted .*up_to=(\d+)", b.log())] or [0])

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and cleaned_up_to() < n - 20_000:
        time.sleep(0.5)
    assert cleaned_up_to() >= n - 20_000, b.log_tail(20)
    size_after = sum(f.stat().st_size for f in seg_dir.glob("*.log"))
    got = read_all(bs, t, timeout=60)
    latest = {}
    for m in got:
        latest[m.key().decode()] = m.value().decode()
    expected = {f"key-{k}": f"value-{n - keys + k}" for k in range(keys)}
    assert latest == expected
    assert len(got) < n // 2, f"read {len(got)} records: compaction must have dropped most of {n}"
    offsets = [m.offset() for m in got]
    assert offsets == sorted(offsets) and len(set(offsets)) == len(offsets)
    assert size_after < size_before
    # a record without a key is refused on a compacted topic
    errors = produce_errors(bs, t, [(None, b"no key")])
    assert errors[0] is not None and errors[0].code() == KafkaError.INVALID_RECORD, errors


def test_keyless_records_on_a_compacted_topic_are_named(broker):
    """KIP-467: one batch of 100 records of which 10 lack a key, sent to a compacted
    topic. Kafka refuses the batch naming the 10 (record_errors); librdkafka then fails
    those 10 with INVALID_RECORD and the 90 others with _INVALID_DIFFERENT_RECORD (the
    batch failed because of other records), so the application knows which to resend."""
    bs = broker.bootstrap
    t = unique("kip467")
    create(bs, t, cleanup_policy="compact")
    records = [(None if i % 10 == 3 else f"k{i}".encode(), f"v{i}".encode()) for i in range(100)]
    # one batch: everything is queued before the (long) linger expires
    errors = produce_errors(bs, t, records, conf={"linger.ms": 2000})
    names = [e.name() if e is not None else None for e in errors]
    assert [i for i, n in enumerate(names) if n == "INVALID_RECORD"] == list(range(3, 100, 10)), names
    assert [i for i, n in enumerate(names) if n == "_INVALID_DIFFERENT_RECORD"] == \
        [i for i in range(100) if i % 10 != 3], names
    # nothing was written; the 90 keyed records resent alone are accepted
    produce(bs, t, [r for r in records if r[0] is not None])
    got = read_all(bs, t)
    assert [m.value() for m in got] == [v for k, v in records if k is not None]


def test_delete_records_moves_the_log_start(broker):
    bs = broker.bootstrap
    t = unique("dr")
    create(bs, t)
    produce(bs, t, [(None, f"v{i}".encode()) for i in range(100)])
    a = admin(bs)
    res = a.delete_records([TopicPartition(t, 0, 40)])
    for tp, fut in res.items():
        assert fut.result(15).low_watermark == 40
    c = Consumer({"bootstrap.servers": bs, "group.id": "wm"})
    assert c.get_watermark_offsets(TopicPartition(t, 0), timeout=10) == (40, 100)
    c.close()
    got = read_all(bs, t, start=0, reset="earliest")
    assert got[0].offset() == 40 and got[0].value() == b"v40" and len(got) == 60
    with pytest.raises(KafkaException):
        for tp, fut in a.delete_records([TopicPartition(t, 0, 500)]).items():
            fut.result(15)


def test_create_partitions_grows_and_refuses_to_shrink(broker):
    bs = broker.bootstrap
    t = unique("cp")
    create(bs, t, 2)
    a = admin(bs)
    a.create_partitions([NewPartitions(t, 5)])[t].result(15)
    assert len(a.list_topics(t, timeout=10).topics[t].partitions) == 5
    # the new partitions take records, and give them back
    for q in (2, 3, 4):
        assert produce(bs, t, [(None, b"new partition %d" % q)], partition=q) == [(q, 0)]
        assert [m.value() for m in read_all(bs, t, partition=q)] == [b"new partition %d" % q]
    for count in (5, 3):
        with pytest.raises(KafkaException) as e:
            a.create_partitions([NewPartitions(t, count)])[t].result(15)
        assert e.value.args[0].code() == KafkaError.INVALID_PARTITIONS
    broker.restart()
    assert len(admin(bs).list_topics(t, timeout=10).topics[t].partitions) == 5


def test_topic_max_message_bytes_and_log_append_time(broker):
    bs = broker.bootstrap
    t = unique("mm")
    create(bs, t, max_message_bytes=2000, message_timestamp_type="LogAppendTime")
    errors = produce_errors(bs, t, [(None, b"z" * 5000)])
    assert errors[0] is not None and errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE, errors
    before = int(time.time() * 1000)
    assert produce(bs, t, [(None, b"small")]) == [(0, 0)]
    [m] = read_all(bs, t)
    assert m.value() == b"small"
    ts_type, ts = m.timestamp()
    assert ts_type == TIMESTAMP_LOG_APPEND_TIME and before - 1000 <= ts <= int(time.time() * 1000) + 1000


@pytest.mark.parametrize("codec,attr", [("zstd", 4), ("uncompressed", 0)])
def test_topic_compression_type_recompresses(broker, codec, attr):
    bs = broker.bootstrap
    t = unique("cz")
    create(bs, t, compression_type=codec)
    values = [f"record-{i}".encode() * 5 for i in range(200)]
    produce(bs, t, [(None, v) for v in values], {"compression.type": "gzip"})
    got = read_all(bs, t)
    assert [m.value() for m in got] == values
    seg = sorted((Path(broker.data_dir) / f"{t}-0").glob("*.log"))[0].read_bytes()
    # attributes of the first stored batch (big-endian int16 at byte 21)
    assert int.from_bytes(seg[21:23], "big") & 0x7 == attr


# --------------------------------------------------------------------------
# compaction details, timestamps bounds and segment rolls, through clients
# --------------------------------------------------------------------------

HOUR_MS = 3_600_000


def now_ms() -> int:
    return int(time.time() * 1000)


def compactions(broker, topic, partition=0) -> list[int]:
    """The `up_to` of every compaction of topic[partition] the broker logged, in order."""
    pat = rf"compacted topic={re.escape(topic)} partition={partition} segments=\d+ up_to=(\d+)"
    return [int(x) for x in re.findall(pat, broker.log())]


def wait_compacted(broker, topic, up_to, timeout=60):
    """Until the cleaner logged a compaction of topic[0] reaching `up_to`."""
    deadline = time.monotonic() + timeout
    while max(compactions(broker, topic), default=0) < up_to:
        assert time.monotonic() < deadline, (
            f"{topic} not compacted up to {up_to} within {timeout}s: {compactions(broker, topic)}"
            f"\n{broker.log_tail(20)}")
        time.sleep(0.3)
    return compactions(broker, topic)


def roll(bs, topic, segment_ms):
    """Makes the next append start a new segment: the active one is older than segment.ms
    once this much time passed (a lower bound, whatever the load)."""
    time.sleep(segment_ms / 1000 + 0.2)


def by_offset(msgs):
    return [(m.offset(), m.key() and m.key().decode(), m.value() and m.value().decode())
            for m in msgs]


def test_tombstones_expire_after_delete_retention_ms(start_broker):
    """A tombstone stays readable until it is older than delete.retention.ms (by its
    timestamp); then the cleaner drops it with the key's older values."""
    b = start_broker(FAST)
    bs = b.bootstrap
    t = unique("tomb")
    create(bs, t, cleanup_policy="compact", delete_retention_ms=HOUR_MS, segment_ms=1000,
           min_cleanable_dirty_ratio="0.01")
    old, new = now_ms() - 2 * HOUR_MS, now_ms()
    recs = [(b"expired", b"v1"), (b"expired", None), (b"fresh", b"v2"), (b"fresh", None),
            (b"live", b"v3")]
    offs = produce(bs, t, recs, timestamps=[old, old, new, new, new])
    assert [o for _, o in offs] == [0, 1, 2, 3, 4]
    roll(bs, t, 1000)
    assert produce(bs, t, [(b"tail", b"t")]) == [(0, 5)]   # in a new active segment
    wait_compacted(b, t, 5)
    got = by_offset(read_all(bs, t))
    assert got == [(3, "fresh", None), (4, "live", "v3"), (5, "tail", "t")], (
        f"after compaction (a tombstone 2 h old with delete.retention.ms=1 h, one just "
        f"written): {got}")


def test_min_compaction_lag_keeps_young_records(start_broker):
    """min.compaction.lag.ms=1 h: segments holding records younger than that are not
    compacted (they keep every version); the older segments before them are."""
    b = start_broker(FAST)
    bs = b.bootstrap
    t = unique("minlag")
    create(bs, t, cleanup_policy="compact", min_compaction_lag_ms=HOUR_MS, segment_ms=1000,
           min_cleanable_dirty_ratio="0.01")
    keys = [f"k{i}".encode() for i in range(5)]
    old = [(k, f"old-{r}-{k.decode()}".encode()) for r in range(3) for k in keys]
    produce(bs, t, old, timestamps=[now_ms() - 2 * HOUR_MS] * len(old))   # offsets 0..14
    roll(bs, t, 1000)
    young = [(k, f"young-{r}-{k.decode()}".encode()) for r in range(3) for k in keys]
    assert produce(bs, t, young)[0] == (0, 15)                               # offsets 15..29
    roll(bs, t, 1000)
    assert produce(bs, t, [(b"tail", b"t")]) == [(0, 30)]
    ups = wait_compacted(b, t, 15)
    time.sleep(2)   # more cleaner passes, which must leave the young segments alone
    ups = compactions(b, t)
    assert max(ups) == 15, f"compacted up to {ups}: the young segments (15..29) were cleaned"
    got = by_offset(read_all(bs, t))
    want = [(10 + i, k.decode(), f"old-2-{k.decode()}") for i, k in enumerate(keys)]
    want += [(15 + i, k.decode(), v.decode()) for i, (k, v) in enumerate(young)]
    want += [(30, "tail", "t")]
    assert got == want, got


def test_max_compaction_lag_forces_compaction_below_the_dirty_ratio(start_broker):
    """min.cleanable.dirty.ratio=0.99 holds compaction back; records older than
    max.compaction.lag.ms are compacted anyway (a topic without it: not compacted)."""
    b = start_broker(FAST)
    bs = b.bootstrap
    forced, held = unique("maxlag"), unique("nolag")
    for t in (forced, held):
        create(bs, t, cleanup_policy="compact", segment_ms=1000, min_cleanable_dirty_ratio="0.01")
        # a first, large, clean part of unique keys: later dirty data is a small share
        produce(bs, t, [(f"u{i}".encode(), b"x" * 200) for i in range(200)])       # 0..199
    roll(bs, forced, 1000)
    for t in (forced, held):
        # stamped 2 h ago too: the segment it starts holds only old records
        produce(bs, t, [(b"tail0", b"t")], timestamps=[now_ms() - 2 * HOUR_MS])      # 200
        wait_compacted(b, t, 200)
    a = admin(bs)
    for t, extra in ((forced, {"max.compaction.lag.ms": str(HOUR_MS)}), (held, {})):
        r = ConfigResource("topic", t, set_config={
            "cleanup.policy": "compact", "segment.ms": "1000", "min.cleanable.dirty.ratio": "0.99",
            **extra})
        a.alter_configs([r])[r].result(30)
    # a small dirty part (versions of 3 keys) stamped 2 h ago, then a new active segment
    dirty = [(f"d{i % 3}".encode(), f"d-{i}".encode()) for i in range(9)]
    for t in (forced, held):
        assert produce(bs, t, dirty, timestamps=[now_ms() - 2 * HOUR_MS] * 9)[0] == (0, 201)
    roll(bs, forced, 1000)
    for t in (forced, held):
        assert produce(bs, t, [(b"tail1", b"t")]) == [(0, 210)]
    wait_compacted(b, forced, 210)
    time.sleep(2)   # more cleaner passes
    assert max(compactions(b, held)) == 200, (
        f"{held} (dirty ratio below 0.99, no max lag) was compacted: {compactions(b, held)}")
    got = by_offset(read_all(bs, forced))
    assert got[200:] == [(200, "tail0", "t"), (207, "d0", "d-6"), (208, "d1", "d-7"),
                         (209, "d2", "d-8"), (210, "tail1", "t")], got[200:]
    assert len(by_offset(read_all(bs, held))) == 211


def test_compact_delete_policy_compacts_and_deletes_old_segments(start_broker):
    """cleanup.policy=compact,delete: segments past retention.ms are deleted (the log
    start moves) and the rest is compacted."""
    b = start_broker(FAST)
    bs = b.bootstrap
    t = unique("cmpdel")
    create(bs, t, cleanup_policy="compact,delete", retention_ms=HOUR_MS, segment_ms=1000,
           min_cleanable_dirty_ratio="0.01")
    expired = [(f"e{i}".encode(), b"expired") for i in range(5)]
    produce(bs, t, expired, timestamps=[now_ms() - 2 * HOUR_MS] * 5)              # 0..4
    roll(bs, t, 1000)
    kept = [(f"k{i % 2}".encode(), f"k-{i}".encode()) for i in range(6)]
    assert produce(bs, t, kept)[0] == (0, 5)                                     # 5..10
    roll(bs, t, 1000)
    assert produce(bs, t, [(b"tail", b"t")]) == [(0, 11)]
    c = Consumer({"bootstrap.servers": bs, "group.id": "wm"})
    try:
        deadline = time.monotonic() + 60
        while c.get_watermark_offsets(TopicPartition(t, 0), timeout=10, cached=False)[0] != 5:
            assert time.monotonic() < deadline, "the expired segment was not deleted"
            time.sleep(0.3)
    finally:
        c.close()
    wait_compacted(b, t, 11)
    got = by_offset(read_all(bs, t))
    assert got == [(9, "k0", "k-4"), (10, "k1", "k-5"), (11, "tail", "t")], got


@pytest.mark.timeout(240)
def test_produce_and_fetch_go_on_during_compaction(start_broker):
    """While the cleaner compacts the topic again and again, a producer keeps writing
    (every record acknowledged) and a consumer keeps reading: offsets only increase, each
    key's values come in production order, and the end holds the latest value per key."""
    from helpers import Worker
    b = start_broker(FAST)
    bs = b.bootstrap
    t = unique("cmplive")
    create(bs, t, cleanup_policy="compact", segment_bytes=16384, min_cleanable_dirty_ratio="0.01")
    keys = 200
    state = {"produced": 0, "done": False}

    def consume():
        c = Consumer({"bootstrap.servers": bs, "group.id": unique("live"), "enable.auto.commit": False,
                      "enable.partition.eof": True})
        c.assign([TopicPartition(t, 0, 0)])
        last_offset, last_seq, read = -1, {}, 0
        deadline = time.monotonic() + 200
        try:
            while True:
                assert time.monotonic() < deadline, f"consumer: read {read} records, no end"
                m = c.poll(0.5)
                if m is None:
                    continue
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        if state["done"] and m.offset() >= state["produced"]:
                            return read
                        continue
                    raise KafkaException(m.error())
                assert m.offset() > last_offset, f"offset {m.offset()} after {last_offset}"
                last_offset = m.offset()
                k, seq = m.key().decode(), int(m.value().decode().split("-")[1])
                assert seq > last_seq.get(k, -1), f"{k}: value #{seq} after #{last_seq[k]}"
                last_seq[k] = seq
                read += 1
        finally:
            c.close()

    reader = Worker(consume, name="consumer")
    reader.start()
    p = Producer({"bootstrap.servers": bs, "linger.ms": 5, "batch.size": 8192, "acks": "all"})
    failed = []
    i = 0
    start_count = len(compactions(b, t))
    deadline = time.monotonic() + 150
    # produce until the cleaner compacted the topic at least 3 times meanwhile
    while len(compactions(b, t)) < start_count + 3 or i < 20_000:
        assert time.monotonic() < deadline, (
            f"{len(compactions(b, t)) - start_count} compactions while producing {i} records")
        for _ in range(1000):
            p.produce(t, key=f"key-{i % keys}", value=f"v-{i}",
                      on_delivery=lambda e, m: e and failed.append(e))
            i += 1
        p.poll(0)
        assert p.flush(60) == 0
    assert not failed, failed[:3]
    during = len(compactions(b, t)) - start_count
    state["produced"], state["done"] = i, True
    read = reader.join(timeout=200)
    print(f"{i} records produced, {read} read while {during} compactions ran")
    latest = {m.key().decode(): m.value().decode() for m in read_all(bs, t)}
    # the last j < i with j % keys == k
    assert latest == {f"key-{k}": f"v-{k + keys * ((i - 1 - k) // keys)}" for k in range(keys)}


def test_message_timestamp_bounds_refuse_with_invalid_timestamp(broker):
    bs = broker.bootstrap
    t = unique("tsbound")
    create(bs, t, message_timestamp_before_max_ms=HOUR_MS, message_timestamp_after_max_ms=600_000)
    now = now_ms()
    stamps = [now - 2 * HOUR_MS, now + 1_200_000, now - 1_800_000, now + 300_000, now]
    # one request each: a bad timestamp refuses its whole batch
    errors = [produce_errors(bs, t, [(None, b"ts%d" % i)], timestamps=[ts])[0]
              for i, ts in enumerate(stamps)]
    codes = [e and e.code() for e in errors]
    assert codes == [KafkaError.INVALID_TIMESTAMP, KafkaError.INVALID_TIMESTAMP, None, None, None], errors
    got = read_all(bs, t)
    assert [(m.value(), m.timestamp()[1]) for m in got] == [
        (b"ts2", stamps[2]), (b"ts3", stamps[3]), (b"ts4", stamps[4])]


def test_segment_ms_rolls_the_active_segment(broker):
    bs = broker.bootstrap
    rolled, kept = unique("segms"), unique("segdefault")
    create(bs, rolled, segment_ms=1000)
    create(bs, kept)
    for t in (rolled, kept):
        assert produce(bs, t, [(None, b"first")]) == [(0, 0)]
    roll(bs, rolled, 1000)   # now older than segment.ms
    for t in (rolled, kept):
        assert produce(bs, t, [(None, b"second")]) == [(0, 1)]

    def bases(t):
        return sorted(int(f.stem) for f in (Path(broker.data_dir) / f"{t}-0").glob("*.log"))
    assert 1 in bases(rolled), f"no segment starting at offset 1 in {rolled}: {bases(rolled)}"
    assert bases(kept) == [0], f"{kept} (default segment.ms) rolled: {bases(kept)}"
    for t in (rolled, kept):
        assert [m.value() for m in read_all(bs, t)] == [b"first", b"second"]
