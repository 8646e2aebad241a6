"""The admin HTTP listener (issue 14, first part): /health/live, /health/ready and
/metrics in Prometheus' text format with Kafka's metric names (as the JMX exporter's
standard Kafka rules render them), checked after a known workload."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

import pytest
from confluent_kafka import KafkaError, TopicPartition

import helpers as h
from conftest import free_port
from test_cluster import start_cluster  # noqa: F401 - the cluster fixture

LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(broker) -> dict[tuple[str, frozenset], float]:
    """{(name, labels): value} of every sample on /metrics."""
    status, text = get(f"{broker.admin_url}/metrics")
    assert status == 200, (status, text[:500])
    samples = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = LINE.match(line)
        assert m, f"not Prometheus text: {line!r}"
        name, labels, value = m.groups()
        samples[(name, frozenset(LABEL.findall(labels or "")))] = float(value)
    return samples


def value(samples, name: str, **labels) -> float | None:
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())))


def test_health_endpoints(broker):
    assert get(f"{broker.admin_url}/health/live") == (200, "live\n")
    status, body = h.wait_until(lambda: (lambda r: r if r[0] == 200 else None)(get(f"{broker.admin_url}/health/ready")),
                                60, "the broker to be ready")
    assert body == "ready\n"
    assert get(f"{broker.admin_url}/nothing-here")[0] == 404


def test_metrics_after_a_known_workload(broker):
    topic = h.unique("metrics")
    h.create_topic(broker.bootstrap, topic, 2)
    records = h.make_records(300, value_size=100)
    p = h.make_producer(broker.bootstrap)
    h.produce_all(p, topic, records[:200], partition=0)
    h.produce_all(p, topic, records[200:], partition=1)
    group = h.unique("metrics-g")
    c = h.make_consumer(broker.bootstrap, {"group.id": group, "auto.offset.reset": "earliest"})
    try:
        c.subscribe([topic])
        got = 0
        def read():
            nonlocal got
            for m in c.consume(100, 0.5):
                if m.error():
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    continue
                got += 1
            return got >= 300
        h.wait_until(read, 60, "the consumer to read the 300 records")
        c.commit(offsets=[TopicPartition(topic, 0, 200), TopicPartition(topic, 1, 100)], asynchronous=False)
    finally:
        c.close()

    s = h.wait_until(lambda: (lambda s: s if value(s, "kafka_server_brokertopicmetrics_bytesout_total",
                                                    topic=topic) else None)(scrape(broker)),
                     30, "bytes out to be counted")
    assert value(s, "kafka_server_brokertopicmetrics_messagesin_total", topic=topic) == 300
    bytes_in = value(s, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic)
    assert bytes_in > 0
    # the consumer read every batch at least once
    assert value(s, "kafka_server_brokertopicmetrics_bytesout_total", topic=topic) >= bytes_in
    assert value(s, "kafka_network_requestmetrics_requests_total", request="Produce") >= 1
    assert value(s, "kafka_network_requestmetrics_totaltimems_count", request="Produce") >= 1
    assert value(s, "kafka_network_requestmetrics_totaltimems_count", request="Fetch") >= 1
    assert value(s, "kafka_network_requestmetrics_totaltimems_bucket", request="Produce", le="+Inf") >= 1
    assert value(s, "kafka_log_log_logendoffset", topic=topic, partition=0) == 200
    assert value(s, "kafka_log_log_logendoffset", topic=topic, partition=1) == 100
    sizes = [value(s, "kafka_log_log_size", topic=topic, partition=i) for i in (0, 1)]
    # what was appended, as sent (a retried duplicate would be counted in, not stored)
    assert 0 < sizes[0] and 0 < sizes[1], sizes
    assert sum(sizes) <= value(s, "kafka_server_brokertopicmetrics_bytesin_total", topic=topic), sizes
    assert value(s, "kafka_server_replicamanager_partitioncount") >= 2
    assert value(s, "kafka_server_replicamanager_leadercount") >= 2
    assert value(s, "kafka_server_replicamanager_underreplicatedpartitions") == 0
    assert value(s, "kafka_controller_kafkacontroller_activecontrollercount") == 1
    assert value(s, "kafka_controller_kafkacontroller_offlinepartitionscount") == 0
    assert value(s, "kafka_coordinator_group_groupmetadatamanager_numgroups", state="Empty") is not None
    assert value(s, "kafka_server_socket_server_metrics_connection_count", listener="PLAINTEXT") >= 1
    assert value(s, "process_resident_memory_bytes") > 1 << 20
    assert value(s, "process_open_fds") > 10
    # acks=all appends were fsynced, in group commits covering every record
    assert value(s, "kafka_log_logflushstats_logflushrateandtimems_count") >= 1
    assert value(s, "vltava_log_flush_group_commit_records_sum") >= 300

    # the consumer committed everything; 20 more records are its lag
    h.produce_all(p, topic, h.make_records(20, seed=2), partition=0)
    lag = h.wait_until(lambda: value(scrape(broker), "kafka_consumergroup_lag", group=group, topic=topic,
                                     partition=0) == 20, 30, "the group's lag on partition 0 to be 20")
    assert lag
    assert value(scrape(broker), "kafka_consumergroup_lag", group=group, topic=topic, partition=1) == 0


def test_per_partition_series_can_be_switched_off(start_broker):
    b = start_broker({"metrics.per.partition.enable": "false"})
    topic = h.unique("metrics-off")
    h.create_topic(b.bootstrap, topic, 1)
    s = scrape(b)
    assert not [k for k in s if k[0].startswith("kafka_log_log_")], "per-partition series"
    assert value(s, "kafka_server_replicamanager_partitioncount") >= 1


@pytest.mark.timeout(240)
def test_under_replicated_partitions_rise_with_a_dead_follower_and_fall_when_it_returns(start_cluster):
    admin_port = free_port()
    c = start_cluster(3, node_settings={1: {"admin.listeners": f"http://127.0.0.1:{admin_port}"}})
    node1 = type("Node1", (), {"admin_url": f"http://127.0.0.1:{admin_port}"})()
    topic = h.unique("urp")
    c.create_topic(topic, partitions=6, replication_factor=3)

    def urp():
        return value(scrape(node1), "kafka_server_replicamanager_underreplicatedpartitions")

    h.wait_until(lambda: value(scrape(node1), "kafka_server_replicamanager_leadercount") >= 1 and urp() == 0,
                 60, "node 1 to lead fully replicated partitions")
    c.kill(2)
    h.wait_until(lambda: urp() >= 1, 60, "node 1 to report under-replicated partitions")
    c.start_node(2)
    h.wait_until(lambda: urp() == 0, 90, "the partitions to be fully replicated again")
    s = scrape(node1)
    assert value(s, "kafka_server_replicamanager_isrshrinks_total") >= 1
    assert value(s, "kafka_server_replicamanager_isrexpands_total") >= 1
