"""The official Java client (kafka-clients 3.9.x) against the broker, through
tests/java/*.java (compiled by scripts/test-all.sh): RoundTrip (all codecs, the
client's defaults), TxnRoundTrip (transactions) and GroupRoundTrip (a consumer
group of two members). test_cluster.py runs them against a 3-node cluster."""

import pytest

import helpers as h

CODECS = ["none", "gzip", "snappy", "lz4", "zstd"]
N = 3000


@pytest.mark.timeout(300)
def test_java_client_roundtrip(broker):
    res = h.run_java("RoundTrip", broker.bootstrap, N, *CODECS, timeout=270)
    ok_lines = h.java_ok_lines(res, "RoundTrip")
    assert ok_lines == [f"OK {c} {N}" for c in CODECS] + [f"OK {N * len(CODECS)}"], res.stdout
    assert broker.is_running()


@pytest.mark.timeout(180)
def test_java_client_transactions(broker):
    """tests/java/TxnRoundTrip.java: one committed transaction of 1,000 records and one
    aborted of 500; read_committed reads exactly the 1,000, read_uncommitted all 1,500."""
    res = h.run_java("TxnRoundTrip", broker.bootstrap, 1000, 500, timeout=170)
    assert h.java_ok_lines(res, "TxnRoundTrip") == ["OK 1000"], res.stdout
    assert broker.is_running()


@pytest.mark.timeout(300)
def test_java_client_consumer_group(start_broker):
    """tests/java/GroupRoundTrip.java: two KafkaConsumers in one group split 4 partitions,
    read 2,000 records exactly once with synchronous commits (committed offsets = log
    ends, DescribeGroups: Stable, 2 members, range); one leaves, the other takes over
    every partition and reads only the 2,000 records produced after."""
    b = start_broker({"group.initial.rebalance.delay.ms": 0})
    topic = h.unique("java-group")
    h.create_topic(b.bootstrap, topic, 4)
    res = h.run_java("GroupRoundTrip", b.bootstrap, topic, 4, 2000, timeout=270)
    assert h.java_ok_lines(res, "GroupRoundTrip") == ["OK 4000"], res.stdout
    assert b.is_running()


@pytest.mark.timeout(180)
def test_java_admin_parity(start_broker, tmp_path):
    """tests/java/AdminParity.java: describeTopics through DescribeTopicPartitions (two
    partitions a response, so five pages for 9 partitions), a missing topic, describeCluster
    with authorized operations, describeLogDirs, describeMetadataQuorum, describeFeatures
    (metadata.version 27, transaction.version 2 and group.version 1 finalized, group.version
    supported up to 1) and updateFeatures (a no-op accepted, transaction.version 3 refused), and log.retention.ms set
    as the cluster-wide default ("") then for this broker, seen by a topic with each source;
    client quotas altered and described (a user+client-id entity, the default client id);
    on a broker with two log directories, alterReplicaLogDirs moves a replica to the other
    one and describeReplicaLogDirs shows it there."""
    first, second = tmp_path / "disk-a", tmp_path / "disk-b"
    broker = start_broker({"log.dirs": f"{first},{second}"})
    prefix = h.unique("jadm")
    res = h.run_java("AdminParity", broker.bootstrap, prefix, second, timeout=170)
    lines = h.java_ok_lines(res, "AdminParity")
    assert lines == [
        "OK describeTopics", "OK describeTopics missing", "OK describeCluster",
        "OK describeLogDirs", "OK describeMetadataQuorum", "OK features",
        "OK dynamic broker configs", "OK client quotas", "OK alterReplicaLogDirs"], res.stdout
    assert (second / f"{prefix}-c-0").is_dir() and not (first / f"{prefix}-c-0").exists()
