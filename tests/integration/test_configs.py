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


def produce(bs, topic, records, conf=None):
    c = {"bootstrap.servers": bs, "linger.ms": 5}
    c.update(conf or {})
    p = Producer(c)
    errors = []
    for key, value in records:
        p.produce(topic, key=key, value=value, on_delivery=lambda e, m: e and errors.append(e))
        p.poll(0)
    assert p.flush(30) == 0
    return errors


def read_all(bs, topic, partition=0, start=0, reset="earliest", timeout=20):
    c = Consumer({"bootstrap.servers": bs, "group.id": unique("r"), "enable.partition.eof": True,
                  "auto.offset.reset": reset, "enable.auto.commit": False})
    c.assign([TopicPartition(topic, partition, start)])
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
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
        assert produce(bs, t, [(None, b"x" * 100) for _ in range(300)], {"linger.ms": 0, "batch.size": 1000}) == []
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
    deadline = time.monotonic() + 15
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
    deadline = time.monotonic() + 10
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

    for i in range(n):
        p.produce(t, key=f"key-{i % keys}", value=f"value-{i}", on_delivery=on_delivery)
        if i % 10000 == 0:
            p.poll(0)
    assert p.flush(60) == 0
    assert errors == [], errors[:3]
    seg_dir = Path(b.data_dir) / f"{t}-0"
    size_before = sum(f.stat().st_size for f in seg_dir.glob("*.log"))
    # wait until the cleaner has been over (nearly) everything but the active segment
    def cleaned_up_to():
        return max([int(x) for x in re.findall(r"compacted .*up_to=(\d+)", b.log())] or [0])

    deadline = time.monotonic() + 30
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
    errors = produce(bs, t, [(None, b"no key")])
    assert errors and errors[0].code() == KafkaError.INVALID_RECORD


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
    produce(bs, t, [(None, b"into the new partition")], {"partitioner": "random"})
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
    errors = produce(bs, t, [(None, b"z" * 5000)])
    assert errors and errors[0].code() == KafkaError.MSG_SIZE_TOO_LARGE
    before = int(time.time() * 1000)
    assert not produce(bs, t, [(None, b"small")])
    m = read_all(bs, t)[0]
    ts_type, ts = m.timestamp()
    assert ts_type == TIMESTAMP_LOG_APPEND_TIME and before - 1000 <= ts <= int(time.time() * 1000) + 1000


@pytest.mark.parametrize("codec,attr", [("zstd", 4), ("uncompressed", 0)])
def test_topic_compression_type_recompresses(broker, codec, attr):
    bs = broker.bootstrap
    t = unique("cz")
    create(bs, t, compression_type=codec)
    values = [f"record-{i}".encode() * 5 for i in range(200)]
    assert not produce(bs, t, [(None, v) for v in values], {"compression.type": "gzip"})
    got = read_all(bs, t)
    assert [m.value() for m in got] == values
    seg = sorted((Path(broker.data_dir) / f"{t}-0").glob("*.log"))[0].read_bytes()
    # attributes of the first stored batch (big-endian int16 at byte 21)
    assert int.from_bytes(seg[21:23], "big") & 0x7 == attr
