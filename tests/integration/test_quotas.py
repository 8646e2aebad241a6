"""Client quotas (issue 14): `vltava quota alter|describe` (AlterClientQuotas /
DescribeClientQuotas v1 through the CLI's own connection), Kafka's entity rules and
errors, and byte-rate quotas enforced on real clients: a throttled confluent-kafka
producer or consumer settles at its quota (the broker answers with throttle_time_ms and
holds the client's next request back) while another client id is not throttled."""

from __future__ import annotations

import json
import subprocess
import threading
import time

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

import helpers as h
from conftest import vltava_bin

QUOTA = 512 * 1024          # bytes per second
VALUE = b"q" * 16 * 1024


def cli(b, *args, check=True):
    res = subprocess.run([vltava_bin(), "--brokers", b.bootstrap, "quota", *map(str, args)],
                         capture_output=True, text=True, timeout=60)
    if check:
        assert res.returncode == 0, (res.stdout, res.stderr)
    return res


def quotas(b, *entity) -> list:
    return json.loads(cli(b, "describe", *entity, "--json").stdout)["quotas"]


def test_alter_and_describe_client_quotas(broker):
    assert quotas(broker) == []
    cli(broker, "alter", "--client-id", "app", "--producer-byte-rate", 1048576, "--consumer-byte-rate", 2e6)
    cli(broker, "alter", "--user", "alice", "--client-id-default", "--producer-byte-rate", 4096)
    cli(broker, "alter", "--user-default", "--request-percentage", 50)
    cli(broker, "alter", "--ip", "127.0.0.1", "--connection-creation-rate", 10)
    got = {json.dumps(q["entity"], sort_keys=True): q["quotas"] for q in quotas(broker)}
    assert got == {
        '{"client-id": "app"}': {"consumer_byte_rate": 2e6, "producer_byte_rate": 1048576.0},
        '{"client-id": null, "user": "alice"}': {"producer_byte_rate": 4096.0},
        '{"user": null}': {"request_percentage": 50.0},
        '{"ip": "127.0.0.1"}': {"connection_creation_rate": 10.0},
    }, got
    # filters: exact entity, a default entity
    assert quotas(broker, "--client-id", "app") == [
        {"entity": {"client-id": "app"}, "quotas": {"consumer_byte_rate": 2e6, "producer_byte_rate": 1048576.0}}]
    assert quotas(broker, "--user-default") == [{"entity": {"user": None}, "quotas": {"request_percentage": 50.0}}]
    # removing the last key removes the entity; validate-only changes nothing
    cli(broker, "alter", "--client-id", "app", "--delete", "consumer_byte_rate", "--delete", "producer_byte_rate")
    cli(broker, "alter", "--client-id", "other", "--producer-byte-rate", 1, "--validate-only")
    assert not [q for q in quotas(broker) if "client-id" in q["entity"] and len(q["entity"]) == 1]
    # refused as Kafka refuses them: INVALID_REQUEST with the reason
    bad = [
        (["--client-id", "x", "--connection-creation-rate", 1], "Invalid configuration key"),
        (["--ip", "not-an-ip", "--connection-creation-rate", 1], "not a valid IP address"),
        (["--client-id", "x", "--producer-byte-rate", 0], "must be positive"),
        (["--client-id", "x", "--delete", "bogus_key"], "Invalid configuration key"),
    ]
    for args, reason in bad:
        res = cli(broker, "alter", *args, check=False)
        assert res.returncode != 0 and "INVALID_REQUEST" in res.stderr and reason in res.stderr, (args, res.stderr)
    # kept in the metadata log
    broker.restart()
    assert len(quotas(broker)) == 3


WINDOW = 11  # seconds: quota.window.num (11) samples of quota.window.size.seconds (1)


def _rate_in(events, start, end) -> float:
    """Bytes per second of `events` [(time, bytes)] between `start` and `end`."""
    return sum(n for t, n in events if start <= t < end) / (end - start)


def _check_rate(events, t0: float, t1: float, quota: float) -> None:
    """What a quota means the way Kafka measures it: a rate over 11 one-second samples,
    taken over at least 10 seconds, so a client may send 10 seconds' worth at once when its
    oldest sample expires (the first window's burst). Over `t1 - t0` seconds the client gets
    at most its quota for that time plus one such burst (20% slack), and no less than 80%
    of its quota for that time (it is not held below it)."""
    assert events, "nothing delivered"
    duration = t1 - t0
    total = sum(n for t, n in events if t0 <= t < t1)
    assert total <= 1.2 * quota * (duration + WINDOW - 1), ("over the quota", total / duration, quota)
    assert total >= 0.8 * quota * duration, ("held below the quota", total / duration, quota)


def _produce_for(bootstrap: str, topic: str, client_id: str, seconds: float, events: list, errors: list):
    p = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5, "acks": 1,
                  "batch.size": 65536, "queue.buffering.max.kbytes": 4096})

    def done(err, msg):
        if err is not None:
            errors.append(err)
        else:
            events.append((time.monotonic(), len(msg.value())))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            p.produce(topic, VALUE, on_delivery=done)
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    assert p.flush(60) == 0


@pytest.mark.timeout(180)
def test_producer_byte_rate_is_enforced_and_other_clients_are_not_throttled(broker):
    topic = h.unique("quota-p")
    h.create_topic(broker.bootstrap, topic, 1)
    cli(broker, "alter", "--client-id", "slow", "--producer-byte-rate", QUOTA)
    t0 = time.monotonic()
    slow, fast, errors = [], [], []
    workers = [h.Worker(_produce_for, broker.bootstrap, topic, "slow", 16, slow, errors),
               h.Worker(_produce_for, broker.bootstrap, topic, "fast", 6, fast, errors)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert not errors, errors[:3]
    _check_rate(slow, t0, t0 + 16, QUOTA)
    # the other client id got far more through meanwhile
    assert _rate_in(fast, t0 + 1, t0 + 5) > 3 * QUOTA, _rate_in(fast, t0 + 1, t0 + 5)
    status, text = h.http_get(f"{broker.admin_url}/metrics")
    assert status == 200
    assert 'kafka_server_produce_throttle_time{user="ANONYMOUS",client_id="slow"}' in text, text[-2000:]


@pytest.mark.timeout(180)
def test_consumer_byte_rate_is_enforced(broker):
    topic = h.unique("quota-c")
    h.create_topic(broker.bootstrap, topic, 1)
    events, errors = [], []
    _produce_for(broker.bootstrap, topic, "filler", 5, events, errors)
    total = sum(n for _, n in events)
    assert not errors and total > 16 * QUOTA, (total, errors[:3])
    cli(broker, "alter", "--client-id", "reader", "--consumer-byte-rate", QUOTA)
    c = Consumer({"bootstrap.servers": broker.bootstrap, "client.id": "reader", "group.id": h.unique("qg"),
                  "enable.auto.commit": False, "max.partition.fetch.bytes": 262144})
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        got = []
        t0 = time.monotonic()
        while time.monotonic() < t0 + 14:
            for m in c.consume(100, 0.2):
                if m.error():
                    assert m.error().code() == KafkaError._PARTITION_EOF, m.error()
                    continue
                got.append((time.monotonic(), len(m.value())))
    finally:
        c.close()
    _check_rate(got, t0, t0 + 14, QUOTA)


class KpConn:
    """A connection sending kafka-python's message classes with a chosen client id."""

    def __init__(self, port: int, client_id: str):
        import kafka_wire as w
        self.w, self.client_id, self.corr = w, client_id, 0
        self.sock = w.connect(port, timeout=30.0)

    def call(self, request, version: int, response_cls):
        self.corr += 1
        request.with_header(correlation_id=self.corr, client_id=self.client_id)
        self.sock.sendall(request.encode(version=version, header=True, framed=True))
        response = response_cls.decode(self.w.recv_frame(self.sock), version=version, header=True)
        assert response.header.correlation_id == self.corr
        return response


def test_request_percentage_throttles_a_busy_client_only(broker):
    """request_percentage: the time spent handling a client's requests, as a percentage
    of one thread. A client id with a tiny quota sending Metadata requests back to back
    is soon told to back off (throttle_time_ms) and held back; another client id sending
    the same requests is never throttled."""
    from kafka.protocol.metadata.metadata import MetadataRequest, MetadataResponse
    topic = h.unique("rq")
    h.create_topic(broker.bootstrap, topic)
    cli(broker, "alter", "--client-id", "busy", "--request-percentage", 0.01)
    busy, idle = KpConn(broker.port, "busy"), KpConn(broker.port, "idle")
    request = MetadataRequest[8](topics=[MetadataRequest.MetadataRequestTopic(name=topic)],
                                 allow_auto_topic_creation=False, include_cluster_authorized_operations=False,
                                 include_topic_authorized_operations=False)
    try:
        idle_throttles = []

        def throttled():
            idle_throttles.append(idle.call(request, 8, MetadataResponse).throttle_time_ms)
            return busy.call(request, 8, MetadataResponse).throttle_time_ms > 0

        h.wait_until(throttled, 120, "a throttle_time_ms for the busy client id", interval=0)
        assert set(idle_throttles) == {0}, "the client id without a quota is never throttled"
    finally:
        busy.sock.close()
        idle.sock.close()


def test_connection_creation_rate_closes_connections_over_an_ip_quota(broker):
    """connection_creation_rate per IP (KIP-612): connections from an address over its
    rate are closed (after their throttle time) without being served; another address
    (127.0.0.2, also this machine) is not limited, and the broker serves on."""
    import socket
    import kafka_wire as w
    cli(broker, "alter", "--ip", "127.0.0.1", "--connection-creation-rate", 1)

    def answered(source: str) -> bool:
        s = socket.create_connection(("127.0.0.1", broker.port), timeout=30, source_address=(source, 0))
        try:
            s.sendall(w.frame(w.api_versions_request_v0(1)))
            w.recv_frame(s)
            return True
        except (w.ConnectionClosed, ConnectionError):
            return False
        finally:
            s.close()

    refused = h.wait_until(lambda: not answered("127.0.0.1"), 120, "a connection over the IP's rate closed unserved")
    assert refused
    for _ in range(20):
        assert answered("127.0.0.2"), "another address is not limited"
    h.create_topic(broker.bootstrap, h.unique("after-ip-quota"))


def test_controller_mutation_rate_refuses_topics_over_it_in_strict_versions(broker):
    """controller_mutation_rate (KIP-599): partitions created or deleted per second. In
    CreateTopics v6+ (and DeleteTopics v5+, CreatePartitions v3+) a topic is refused with
    THROTTLING_QUOTA_EXCEEDED while the client id is over its rate, and the response says
    how long to back off; the request that crossed it went through whole (a burst); older
    versions are only throttled; other client ids are not limited."""
    from kafka.protocol.admin.topics import CreateTopicsRequest, CreateTopicsResponse
    cli(broker, "alter", "--client-id", "mutator", "--controller-mutation-rate", 1)
    T = CreateTopicsRequest.CreatableTopic

    def create(conn, version, *names, partitions=20):
        req = CreateTopicsRequest[version](topics=[T(name=n, num_partitions=partitions, replication_factor=1,
                                                     assignments=[], configs=[]) for n in names],
                                           timeout_ms=30000, validate_only=False)
        resp = conn.call(req, version, CreateTopicsResponse)
        return resp.throttle_time_ms, {t.name: t.error_code for t in resp.topics}

    mutator, other = KpConn(broker.port, "mutator"), KpConn(broker.port, "other")
    try:
        burst, refused = h.unique("burst"), h.unique("refused")
        throttle, errors = create(mutator, 6, burst)
        assert errors == {burst: 0} and throttle > 0, (throttle, errors)
        throttle, errors = create(mutator, 6, refused)
        assert errors == {refused: 89} and throttle > 0, (throttle, errors)   # THROTTLING_QUOTA_EXCEEDED
        # an older version is not refused, only told to back off
        older = h.unique("older")
        throttle, errors = create(mutator, 5, older, partitions=1)
        assert errors == {older: 0} and throttle > 0, (throttle, errors)
        free = h.unique("free")
        assert create(other, 6, free) == (0, {free: 0})
        names = set(h.all_topics(broker.bootstrap))
        assert {burst, older, free} <= names and refused not in names
    finally:
        mutator.sock.close()
        other.sock.close()
