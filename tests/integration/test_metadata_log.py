"""The metadata log is never cut silently, and no start deletes data it is unsure about.

A corrupt byte in the middle of `__cluster_metadata-0/raft.log` used to truncate the log
there; the start that followed then deleted the data of every topic created after the
corruption, as directories no topic owned. Now the node refuses to start (naming the file
and the byte), deletes nothing, and starts on the truncated log only when the operator
says so (`--truncate-corrupt-metadata-log`). Partition directories the confirmed
metadata does not assign to the node are renamed `*-stray` and deleted after
`log.segment.delete.delay.ms`, as in Kafka; so is a directory of a deleted topic whose name a new
topic took while the node was away (`partition.metadata` names another topic id).
"""

from __future__ import annotations

import re

import pytest

from conftest import BrokerStartError
from helpers import (all_topics, assert_matches, consume, create_topic, expected_by_partition,
                     make_producer, make_records, produce_all, unique, wait_until)


def _fill(b, topics, n=200):
    acked = {}
    for i, t in enumerate(topics):
        create_topic(b.bootstrap, t)
        records = make_records(n, seed=100 + i, value_size=40)
        d = produce_all(make_producer(b.bootstrap), t, records, partition=0)
        assert not d.errors()
        acked[t] = (records, d)
    return acked


def _check(b, topic, acked):
    records, d = acked[topic]
    got = consume(b.bootstrap, topic, {0: len(records)})
    assert_matches(got, expected_by_partition(records, d))


def _segment_bytes(data_dir, topic):
    return sum(p.stat().st_size for p in (data_dir / f"{topic}-0").glob("*.log"))


def test_corrupt_metadata_log_refuses_to_start_and_deletes_nothing(start_broker):
    b = start_broker()
    topics = [unique(f"meta{i}") for i in range(8)]
    acked = _fill(b, topics)
    assert b.stop() == 0
    sizes = {t: _segment_bytes(b.data_dir, t) for t in topics}
    log = b.data_dir / "__cluster_metadata-0" / "00000000000000000000.log"
    data = bytearray(log.read_bytes())
    # one byte flipped in the records of the batch in the middle of the log
    batches = []
    pos = 0
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos + 8:pos + 12], "big")
        batches.append(pos)
        pos += 12 + length
    middle = batches[len(batches) // 2] + 61 + 2
    data[middle] ^= 0x01
    log.write_bytes(bytes(data))

    with pytest.raises(BrokerStartError) as refused:
        b.start()
    text = str(refused.value)
    assert "__cluster_metadata-0" in text and "corrupt at byte" in text, text
    assert "--truncate-corrupt-metadata-log" in text
    byte = int(re.search(r"corrupt at byte (\d+)", text).group(1))
    assert 0 < byte <= middle
    assert b.proc.returncode not in (None, 0)
    assert "exited with code" in text
    # nothing was deleted or cut
    assert log.read_bytes() == bytes(data)
    for t in topics:
        assert _segment_bytes(b.data_dir, t) == sizes[t], f"data of {t} changed"

    # the operator's explicit choice: keep the entries before the corruption
    b.args = ["--truncate-corrupt-metadata-log"]
    b.start()
    b.args = []
    known = set(all_topics(b.bootstrap))
    kept = [t for t in topics if t in known]
    lost = [t for t in topics if t not in known]
    assert kept and lost, f"kept {kept}, lost {lost}"
    assert kept == topics[:len(kept)], "the log is kept up to the corruption"
    for t in kept:
        _check(b, t, acked)
    # the forgotten topics' data is moved aside, not deleted
    for t in lost:
        assert not (b.data_dir / f"{t}-0").exists()
        strays = list(b.data_dir.glob(f"{t}-0.*-stray"))
        assert len(strays) == 1, f"no stray directory for {t}: {sorted(p.name for p in b.data_dir.iterdir())}"
        assert sum(p.stat().st_size for p in strays[0].glob("*.log")) == sizes[t]


def test_stray_directories_are_deleted_after_the_delay(start_broker):
    b = start_broker(log_segment_delete_delay_ms=3000)
    keep, gone = unique("keep"), unique("gone")
    acked = _fill(b, [keep], n=20)
    assert b.stop() == 0
    # a partition directory no topic owns, and a directory named like a partition of
    # `keep` but holding another topic's id
    orphan = b.data_dir / f"{gone}-0"
    orphan.mkdir()
    (orphan / "00000000000000000000.log").write_bytes(b"")
    recreated = b.data_dir / f"{keep}-1"
    recreated.mkdir()
    (recreated / "partition.metadata").write_text("version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA\n")

    b.start()
    wait_until(lambda: not orphan.exists(), 30, "the orphan directory to be moved aside")
    assert not recreated.exists()
    assert "moved a stray partition directory aside" in b.log()
    _check(b, keep, acked)
    # then, after log.segment.delete.delay.ms, deleted
    wait_until(lambda: not list(b.data_dir.glob("*-stray")), 60, "stray directories to be deleted")
    assert "deleted stray partition directory" in b.log()
    _check(b, keep, acked)


def _set_retention_many(bootstrap, topic, n):
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource
    from helpers import admin
    a = admin(bootstrap)
    for i in range(n):
        res = ConfigResource(ConfigResource.Type.TOPIC, topic, incremental_configs=[
            ConfigEntry("retention.ms", str(3_600_000 + i),
                        incremental_operation=AlterConfigOpType.SET)])
        for f in a.incremental_alter_configs([res]).values():
            f.result(30)


def _retention(bootstrap, topic):
    from confluent_kafka.admin import ConfigResource
    from helpers import admin
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    a = admin(bootstrap)  # must outlive the future
    configs = a.describe_configs([res])[res].result(30)
    return configs["retention.ms"].value


def test_snapshots_bound_the_metadata_log_and_a_start_reads_what_follows(start_broker):
    b = start_broker({"metadata.log.max.record.bytes.between.snapshots": 4096,
                      "metadata.log.segment.bytes": 8192})
    topic = unique("snap")
    acked = _fill(b, [topic], n=20)
    _set_retention_many(b.bootstrap, topic, 300)
    meta = b.data_dir / "__cluster_metadata-0"
    wait_until(lambda: len(list(meta.glob("*.checkpoint"))) >= 1, 30, "a metadata snapshot")
    assert "wrote a metadata snapshot" in b.log()
    assert len(list(meta.glob("*.checkpoint"))) <= 2, "older snapshots are deleted"
    segments = sorted(meta.glob("*.log"))
    assert int(segments[0].stem) > 0, f"segments below the snapshot are deleted: {[s.name for s in segments]}"
    assert _retention(b.bootstrap, topic) == str(3_600_000 + 299)

    # both after a clean stop and after SIGKILL, the image is the snapshot
    # plus the entries after it
    assert b.stop() == 0
    b.start()
    assert _retention(b.bootstrap, topic) == str(3_600_000 + 299)
    _check(b, topic, acked)
    _set_retention_many(b.bootstrap, topic, 5)
    b.kill()
    b.start()
    assert _retention(b.bootstrap, topic) == str(3_600_000 + 4)
    _check(b, topic, acked)
