"""DescribeLogDirs, DescribeQuorum and the feature flags (ApiVersions' features,
UpdateFeatures) through kafka-python's admin client (the calls that failed with
IncompatibleBrokerVersion before: issue 12), on one node and on three."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka.admin import KafkaAdminClient
from kafka.protocol.admin import DescribeQuorumRequest

import cluster as cl
from helpers import (assert_matches, consume, create_topic, expected_by_partition, make_producer, make_records,
                     produce_all, unique, wait_until)


def _segment_bytes(partition_dir: Path) -> int:
    return sum(p.stat().st_size for p in partition_dir.glob("*.log"))


def test_describe_log_dirs_reports_every_partition_and_its_size(broker):
    b = broker
    topic, other = unique("dirs"), unique("dirs-other")
    create_topic(b.bootstrap, topic, partitions=2)
    create_topic(b.bootstrap, other, partitions=1)
    d = produce_all(make_producer(b.bootstrap), topic, make_records(300, seed=21), partition=0)
    assert not d.errors()
    a = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        [answer] = a.describe_log_dirs()
        assert answer["broker"] == 1
        [log_dir] = answer["log_dirs"]
        assert log_dir["error_code"] == 0
        assert Path(log_dir["log_dir"]) == b.data_dir.resolve()
        assert 0 < log_dir["usable_bytes"] <= log_dir["total_bytes"]
        sizes = {(t["name"], p["partition_index"]): (p["partition_size"], p["offset_lag"])
                 for t in log_dir["topics"] for p in t["partitions"]}
        for partition in (0, 1):
            on_disk = _segment_bytes(b.data_dir / f"{topic}-{partition}")
            assert sizes[(topic, partition)] == (on_disk, 0)
        assert sizes[(topic, 0)][0] > 0 and sizes[(topic, 1)][0] == 0
        assert (other, 0) in sizes
        # only what was asked for
        [answer] = a.describe_log_dirs(topic_partitions={topic: [1]})
        [log_dir] = answer["log_dirs"]
        assert [(t["name"], [p["partition_index"] for p in t["partitions"]]) for t in log_dir["topics"]] == \
            [(topic, [1])]
    finally:
        a.close()


def test_describe_metadata_quorum_on_one_node(broker):
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        create_topic(broker.bootstrap, unique("q"))
        quorum = a.describe_metadata_quorum()
    finally:
        a.close()
    [topic] = quorum["topics"]
    assert topic["topic_name"] == "__cluster_metadata"
    [p] = topic["partitions"]
    assert p["error"] is None and p["leader_id"] == 1 and p["leader_epoch"] >= 1
    assert p["high_watermark"] > 0
    [voter] = p["current_voters"]
    assert voter["replica_id"] == 1 and voter["log_end_offset"] >= p["high_watermark"]
    assert voter["last_fetch_timestamp"] > 0 and voter["last_caught_up_timestamp"] > 0


@pytest.mark.timeout(240)
def test_describe_metadata_quorum_on_three_nodes(tmp_path):
    with cl.Cluster(tmp_path / "cluster", n=3) as c:
        leader = c.wait_controller()
        c.create_topic(unique("q3"), partitions=1, replication_factor=3)
        a = KafkaAdminClient(bootstrap_servers=c.bootstrap)
        try:
            request = DescribeQuorumRequest(topics=[DescribeQuorumRequest.TopicData(
                topic_name="__cluster_metadata",
                partitions=[DescribeQuorumRequest.TopicData.PartitionData(partition_index=0)])])

            def ask(node_id):
                return a._manager.run(lambda: a._manager.send(request, node_id=node_id))

            def leader_view():
                r = ask(leader)
                p = r.topics[0].partitions[0]
                # the leader knows every voter's log end once they fetched
                return r if all(v.log_end_offset >= 0 for v in p.current_voters) else None
            r = wait_until(leader_view, 60, "the leader's view of every voter")
            p = r.topics[0].partitions[0]
            assert (p.error_code, p.leader_id) == (0, leader)
            assert sorted(v.replica_id for v in p.current_voters) == [1, 2, 3]
            assert all(0 <= p.high_watermark <= v.log_end_offset + 1000 for v in p.current_voters)
            assert all(v.last_fetch_timestamp > 0 for v in p.current_voters)
            ports = {n.node_id: n.listeners[0].port for n in r.nodes}
            assert ports == {i: c.node(i).controller_port for i in c.ids}
            # a follower forwards the request to the leader (as Kafka forwards it to the
            # active controller): every voter's progress, not only its own
            follower = next(i for i in c.ids if i != leader)
            f = ask(follower).topics[0].partitions[0]
            assert (f.leader_id, f.leader_epoch) == (p.leader_id, p.leader_epoch)
            assert sorted(v.replica_id for v in f.current_voters) == [1, 2, 3]
            assert all(v.log_end_offset >= 0 and v.last_fetch_timestamp > 0 for v in f.current_voters), \
                f.current_voters
        finally:
            a.close()


def test_kafka_4_clients_see_a_kafka_4_broker(broker):
    """kafka-python calls a broker 4.0 only when ListOffsets v10 is offered; its
    list_partition_offsets then uses v10, including EARLIEST_LOCAL (-4, v9)."""
    from kafka import KafkaConsumer, TopicPartition
    from kafka.admin import OffsetSpec
    b = broker
    topic = unique("v4")
    create_topic(b.bootstrap, topic)
    assert not produce_all(make_producer(b.bootstrap), topic, make_records(30, seed=22), partition=0).errors()
    c = KafkaConsumer(bootstrap_servers=b.bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        assert c.end_offsets([tp]) == {tp: 30}
        assert c.config["api_version"] >= (4, 0), c.config["api_version"]
    finally:
        c.close()
    a = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        tp = TopicPartition(topic, 0)
        offsets = {spec: a.list_partition_offsets({tp: spec})[tp].offset
                   for spec in (OffsetSpec.EARLIEST, OffsetSpec.EARLIEST_LOCAL, OffsetSpec.LATEST)}
    finally:
        a.close()
    assert offsets == {OffsetSpec.EARLIEST: 0, OffsetSpec.EARLIEST_LOCAL: 0, OffsetSpec.LATEST: 30}


def test_features_describe_and_update(broker):
    """KIP-584: metadata.version is finalized at 27 (4.1-IV1) and transaction.version at 2
    (a new cluster starts with transactions v2, as Kafka 4.x's), group.version and
    share.version at 1 (KIP-848 and KIP-932 groups); the features vltava does not implement
    (streams groups, ...) are supported at level 0 only, so clients keep the older protocols. UpdateFeatures moves transaction.version within 0-2
    (a downgrade only with a downgrade type) through the metadata log, and refuses other
    changes with INVALID_UPDATE_VERSION and Kafka's reason."""
    from kafka.errors import InvalidUpdateVersionError

    def described():
        # kafka-python answers from the ApiVersions of its connection: a new client each time
        fresh = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
        try:
            return fresh.describe_features()
        finally:
            fresh.close()

    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        features = described()
        assert features["metadata.version"]["supported"] == (7, 27)
        assert features["metadata.version"]["finalized"] == (27, 27)
        assert features["metadata.version"]["finalized_epoch"] >= 0
        assert features["transaction.version"]["supported"] == (0, 2)
        assert features["transaction.version"]["finalized"] == (2, 2)
        for name in ("group.version", "share.version"):
            assert features[name]["supported"] == (0, 1), (name, features[name])
            assert features[name]["finalized"] == (1, 1), (name, features[name])
        for name in ("kraft.version", "eligible.leader.replicas.version", "streams.version"):
            assert features[name] == {"supported": (0, 0)}, (name, features[name])
        assert a.update_features({"metadata.version": 27}) == {"metadata.version": "OK"}
        assert a.update_features({"transaction.version": ("SAFE_DOWNGRADE", 0)},
                                 validate_only=True) == {"transaction.version": "OK"}
        assert described()["transaction.version"]["finalized"] == (2, 2), "validate only"
        refused = {
            "transaction.version": (3, "only supports versions 0-2"),
            "group.version": (2, "only supports versions 0-1"),
            "streams.version": (1, "only supports versions 0-0"),
            "metadata.version": (("SAFE_DOWNGRADE", 21), "might delete metadata"),
            "no.such.feature": (1, "does not support the given feature"),
        }
        for name, (level, reason) in refused.items():
            with pytest.raises(InvalidUpdateVersionError) as e:
                a.update_features({name: level})
            assert reason in str(e.value), str(e.value)
        with pytest.raises(InvalidUpdateVersionError) as e:
            a.update_features({"transaction.version": 1})
        assert "without setting the upgrade type" in str(e.value), str(e.value)
        assert described()["transaction.version"]["finalized"] == (2, 2), "nothing changed"
        # a real downgrade and upgrade, kept across a restart
        assert a.update_features({"transaction.version": ("SAFE_DOWNGRADE", 0)}) == {"transaction.version": "OK"}
        assert "finalized" not in described()["transaction.version"]
    finally:
        a.close()
    broker.restart()
    assert "finalized" not in described()["transaction.version"], "level 0 survives a restart"
    a = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        assert a.update_features({"transaction.version": 2}) == {"transaction.version": "OK"}
    finally:
        a.close()
    assert described()["transaction.version"]["finalized"] == (2, 2)


@pytest.mark.timeout(240)
def test_alter_replica_log_dirs_moves_a_replica_while_it_takes_writes(start_broker, tmp_path):
    """AlterReplicaLogDirs with kafka-python: a partition with a few MiB moves to the other
    log directory while an idempotent acks=all producer keeps writing to it; every
    acknowledged record is read back in order, DescribeLogDirs then shows it in the new
    directory, the old one is gone, and a restart opens it there. A directory that is not
    this broker's is LOG_DIR_NOT_FOUND."""
    import threading

    from kafka import TopicPartitionReplica
    from kafka.errors import LogDirNotFoundError, NoError

    from helpers import Worker

    first, second = tmp_path / "disk-a", tmp_path / "disk-b"
    b = start_broker({"log.dirs": f"{first},{second}", "log.segment.bytes": 1 << 20})
    topic = unique("mv")
    create_topic(b.bootstrap, topic, partitions=1)
    here = first if (first / f"{topic}-0").is_dir() else second
    there = second if here == first else first
    before = make_records(3000, seed=31, value_size=1000)
    acked_before = produce_all(make_producer(b.bootstrap), topic, before, partition=0)
    assert not acked_before.errors()

    stop = threading.Event()

    def keep_writing():
        sent = []
        producer = make_producer(b.bootstrap, {"enable.idempotence": True, "acks": "all"})
        n = 0
        while not stop.is_set():
            batch = make_records(50, seed=1000 + n)
            sent.append((batch, produce_all(producer, topic, batch, partition=0, timeout=60)))
            n += 1
        return sent

    writer = Worker(keep_writing, name="writer")
    writer.start()
    a = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        result = a.alter_replica_log_dirs({TopicPartitionReplica(topic, 0, 1): str(there)})
        assert list(result.values()) == [NoError], result
        wait_until(lambda: (there / f"{topic}-0").is_dir() and not (here / f"{topic}-0").exists(), 60,
                   "the replica to move")
        stop.set()
        sent = writer.join(120)
        assert sent, "the writer wrote during the move"
        answer = a.describe_log_dirs()[0]
        where = {d["log_dir"]: [t["name"] for t in d["topics"]] for d in answer["log_dirs"]}
        assert topic in where[str(there.resolve())] and topic not in where[str(here.resolve())], where
        bad = a.alter_replica_log_dirs({TopicPartitionReplica(topic, 0, 1): str(tmp_path / "elsewhere")})
        assert list(bad.values()) == [LogDirNotFoundError], bad
    finally:
        stop.set()
        a.close()

    def check():
        expected = expected_by_partition(before, acked_before)[0]
        for batch, acked in sent:
            assert not acked.errors(), acked.errors()
            expected += expected_by_partition(batch, acked)[0]
        got = consume(b.bootstrap, topic, {0: len(expected)})[0]
        assert_matches({0: got}, {0: expected})

    check()
    b.stop()
    b.start()
    assert (there / f"{topic}-0").is_dir() and not (here / f"{topic}-0").exists()
    check()


def test_a_log_dir_without_its_meta_properties_refuses_the_start(start_broker, tmp_path):
    """Every log directory carries the node's meta.properties (written at the first start).
    A directory that lost it (an unmounted disk: an empty mount point) would otherwise get
    its partitions created again, empty: the start is refused, naming the directory, and
    nothing is touched. Mounted back, every record is there. A new empty disk is accepted
    once it has the node's meta.properties, as `kafka-storage format` would write it."""
    from conftest import BrokerStartError

    first, second = tmp_path / "disk-a", tmp_path / "disk-b"
    b = start_broker({"log.dirs": f"{first},{second}"})
    assert (first / "meta.properties").read_text() == (second / "meta.properties").read_text()
    topic = unique("mnt")
    create_topic(b.bootstrap, topic, partitions=2)
    records = make_records(40, seed=41)
    acked = produce_all(make_producer(b.bootstrap), topic, records, partitions=[i % 2 for i in range(40)])
    assert not acked.errors()
    assert any((second / f"{topic}-{p}").is_dir() for p in (0, 1))
    b.stop()

    # the second disk is not mounted: an empty directory in its place
    second.rename(tmp_path / "disk-b-unmounted")
    second.mkdir()
    with pytest.raises(BrokerStartError):
        b.start(timeout=30)
    assert "has no meta.properties" in b.log() and str(second) in b.log()
    assert list(second.iterdir()) == [], "nothing created in the unmounted directory"

    second.rmdir()
    (tmp_path / "disk-b-unmounted").rename(second)
    b.start()
    got = consume(b.bootstrap, topic, {0: 20, 1: 20})
    assert_matches(got, expected_by_partition(records, acked))

    # a new, empty disk: refused until it has the node's meta.properties
    third = tmp_path / "disk-c"
    third.mkdir()
    b.stop()
    b.sets["log.dirs"] = f"{first},{second},{third}"
    with pytest.raises(BrokerStartError):
        b.start(timeout=30)
    (third / "meta.properties").write_bytes((first / "meta.properties").read_bytes())
    b.start()
    assert b.is_running()
