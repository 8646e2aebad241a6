"""Client metrics (KIP-714, issue 14): subscriptions as CLIENT_METRICS config resources
(`vltava client-metrics create|list|delete`, DescribeConfigs/IncrementalAlterConfigs on
resource type 16), a real client (confluent-kafka, which pushes telemetry when the broker
advertises GetTelemetrySubscriptions and PushTelemetry) whose pushed metrics appear on
/metrics under its client id, and Kafka's refusals of pushes that break the rules, sent
over a socket (no installable client lets a test break them)."""

from __future__ import annotations

import json
import socket
import subprocess
import uuid

from confluent_kafka import Producer

import helpers as h
import kafka_wire as w
from conftest import vltava_bin

API_GET_TELEMETRY_SUBSCRIPTIONS, API_PUSH_TELEMETRY = 71, 72
NONE, INVALID_REQUEST, INVALID_RECORD, THROTTLING_QUOTA_EXCEEDED = 0, 42, 87, 89
UNKNOWN_SUBSCRIPTION_ID, TELEMETRY_TOO_LARGE = 117, 118


def cli(b, *args, check=True):
    res = subprocess.run([vltava_bin(), "--brokers", b.bootstrap, "client-metrics", *map(str, args)],
                         capture_output=True, text=True, timeout=60)
    if check:
        assert res.returncode == 0, (res.stdout, res.stderr)
    return res


def subscriptions(b) -> dict:
    out = json.loads(cli(b, "list", "--json").stdout)["subscriptions"]
    return {s["name"]: s["configs"] for s in out}


def test_subscriptions_are_created_listed_kept_and_deleted(start_broker):
    b = start_broker()
    assert subscriptions(b) == {}
    cli(b, "create", "--name", "all", "--metrics", "*", "--interval", 1000)
    cli(b, "create", "--name", "producers", "--metrics", "org.apache.kafka.producer.",
        "--match", "client_id=orders-.*", "--match", "client_software_name=librdkafka")
    assert subscriptions(b) == {
        "all": {"metrics": "*", "interval.ms": "1000", "match": ""},
        "producers": {"metrics": "org.apache.kafka.producer.", "interval.ms": "300000",
                      "match": "client_id=orders-.*,client_software_name=librdkafka"},
    }
    # Kafka's refusals, with the reason
    for args, reason in [
        (["--name", "x", "--metrics", "*", "--interval", 50], "interval.ms"),
        (["--name", "x", "--match", "client_colour=red"], "selector"),
        (["--name", "x", "--match", "client_id=("], "regex"),
    ]:
        res = cli(b, "create", *args, check=False)
        assert res.returncode != 0 and "INVALID_CONFIG" in res.stderr and reason in res.stderr, (args, res.stderr)
    assert "x" not in subscriptions(b)
    # they live in the metadata log
    b.restart()
    assert set(subscriptions(b)) == {"all", "producers"}
    # and another admin client sees them (kafka-python's ListConfigResources)
    from kafka import KafkaAdminClient
    a = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        listed = a.list_config_resources(["CLIENT_METRICS"])
        assert {k: sorted(v) for k, v in listed.items()} == {"client_metrics": ["all", "producers"]}, listed
    finally:
        a.close()
    cli(b, "delete", "--name", "producers")
    assert set(subscriptions(b)) == {"all"}
    res = cli(b, "delete", "--name", "producers", check=False)
    assert res.returncode != 0 and "no client metrics subscription" in res.stderr


def test_a_subscribed_client_pushes_its_metrics_to_the_metrics_endpoint(start_broker):
    b = start_broker()
    cli(b, "create", "--name", "telemetry-apps", "--metrics", "org.apache.kafka.producer.",
        "--interval", 500, "--match", "client_id=telemetry-.*")
    topic = h.unique("cm")
    h.create_topic(b.bootstrap, topic)
    pushing = Producer({"bootstrap.servers": b.bootstrap, "client.id": "telemetry-app"})
    silent = Producer({"bootstrap.servers": b.bootstrap, "client.id": "unsubscribed-app"})
    try:
        for p in (pushing, silent):
            for i in range(50):
                p.produce(topic, b"v%d" % i)
            assert p.flush(30) == 0

        def pushed():
            for p in (pushing, silent):
                p.poll(0.1)
            _, text = h.http_get(b.admin_url + "/metrics")
            return [line for line in text.splitlines() if 'client_id="telemetry-app"' in line]

        lines = h.wait_until(pushed, 60, "the producer's pushed metrics on /metrics")
        names = {line.split("{", 1)[0] for line in lines}
        assert all(n.startswith("org_apache_kafka_producer_") for n in names), names
        assert "org_apache_kafka_producer_record_queue_time_avg" in names, names
        assert all('principal="User:ANONYMOUS"' in line and 'client_instance_id="' in line for line in lines)
        assert any('node_id="' in line for line in lines), "data point attributes become labels"
        _, text = h.http_get(b.admin_url + "/metrics")
        assert 'client_id="unsubscribed-app"' not in text, "a client no subscription matches pushes nothing"
    finally:
        pushing.flush(5)
        silent.flush(5)


class Telemetry:
    """GetTelemetrySubscriptions v0 and PushTelemetry v0 over one socket."""

    def __init__(self, port: int):
        self.sock = w.connect(port, timeout=30.0)
        self.corr = 0

    def _call(self, api_key: int, body: bytes) -> w.Reader:
        self.corr += 1
        head = w.request_header_v2(api_key, 0, self.corr, "raw-telemetry")
        r = w.Reader(w.roundtrip(self.sock, head + body))
        assert r.int32() == self.corr
        r.tagged_fields()
        return r

    def get(self, instance: uuid.UUID) -> dict:
        r = self._call(API_GET_TELEMETRY_SUBSCRIPTIONS, instance.bytes + w.EMPTY_TAGGED_FIELDS)
        out = {"throttle_time_ms": r.int32(), "error_code": r.int16(), "instance": uuid.UUID(bytes=r.raw(16)),
               "subscription_id": r.int32()}
        out["compression"] = [r.int8() for _ in range(r.uvarint() - 1)]
        out["push_interval_ms"], out["telemetry_max_bytes"] = r.int32(), r.int32()
        out["delta_temporality"] = r.int8() == 1
        out["metrics"] = [r.compact_string() for _ in range(r.uvarint() - 1)]
        return out

    def push(self, instance: uuid.UUID, subscription_id: int, metrics: bytes, terminating: bool = False,
             compression: int = 0) -> int:
        body = (instance.bytes + w.int32(subscription_id) + w.int8(int(terminating)) + w.int8(compression)
                + w.compact_bytes(metrics) + w.EMPTY_TAGGED_FIELDS)
        r = self._call(API_PUSH_TELEMETRY, body)
        r.int32()
        return r.int16()


def test_pushes_that_break_the_rules_are_refused_as_kafka_refuses_them(start_broker):
    b = start_broker({"telemetry.max.bytes": 64})
    cli(b, "create", "--name", "all", "--metrics", "*", "--interval", 3_600_000)
    t = Telemetry(b.port)
    try:
        got = t.get(uuid.UUID(int=0))
        assert got["error_code"] == NONE, got
        inst, sub = got["instance"], got["subscription_id"]
        # Kafka's interval is the shortest of the matched ones and its default
        assert inst.int != 0 and got["metrics"] == ["*"] and got["push_interval_ms"] == 300_000, got
        assert got["telemetry_max_bytes"] == 64 and set(got["compression"]) == {1, 2, 3, 4}, got
        # asked again within the interval
        assert t.get(inst)["error_code"] == THROTTLING_QUOTA_EXCEEDED
        # a stale subscription id: the client must ask again
        assert t.push(inst, sub ^ 1, b"") == UNKNOWN_SUBSCRIPTION_ID
        # the first push after a GetTelemetrySubscriptions is on time; not protobuf: INVALID_RECORD
        other = Telemetry(b.port)
        got2 = other.get(uuid.UUID(int=0))
        assert other.push(got2["instance"], got2["subscription_id"], b"\xff\xfe not OTLP") == INVALID_RECORD
        other.sock.close()
        third = Telemetry(b.port)
        got3 = third.get(uuid.UUID(int=0))
        assert third.push(got3["instance"], got3["subscription_id"], b"\x00" * 65) == TELEMETRY_TOO_LARGE
        # the next push within the interval is throttled, a terminating one is not; none after it
        assert third.push(got3["instance"], got3["subscription_id"], b"") == THROTTLING_QUOTA_EXCEEDED
        assert third.push(got3["instance"], got3["subscription_id"], b"", terminating=True) == NONE
        assert third.push(got3["instance"], got3["subscription_id"], b"") == INVALID_REQUEST
        third.sock.close()
        # the zero instance id cannot push
        assert t.push(uuid.UUID(int=0), sub, b"") == INVALID_REQUEST
        # the broker still serves everyone
        h.create_topic(b.bootstrap, "after-telemetry")
    finally:
        t.sock.close()
        try:
            t.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
