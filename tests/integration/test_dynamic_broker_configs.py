"""Dynamic broker configs: IncrementalAlterConfigs / AlterConfigs on a BROKER resource
(a broker id here; the cluster-wide default "" is driven by the Java admin in
tests/java/AdminParity.java, since neither Python client can name it), stored in the
metadata log, taking effect at once on topics without their own value, and surviving a
restart; DescribeConfigs of a broker with every Kafka 4.1 key."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaError
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ConfigSource, NewTopic

from helpers import admin, unique, wait_until, watermarks
from test_configs import FAST, produce, produce_errors

BROKER = ConfigResource.Type.BROKER


def alter_broker(a, node: str, *entries: tuple[str, str | None, AlterConfigOpType]):
    r = ConfigResource(BROKER, node, incremental_configs=[
        ConfigEntry(k, v, incremental_operation=op) for k, v, op in entries])
    return a.incremental_alter_configs([r])[r].result(30)


def describe(a, kind, name):
    r = ConfigResource(kind, name)
    return a.describe_configs([r])[r].result(30)


def test_a_broker_override_changes_topics_at_once_and_survives_a_restart(start_broker):
    b = start_broker(FAST)
    a = admin(b.bootstrap)
    plain, own = unique("dyn"), unique("dyn-own")
    created = a.create_topics([NewTopic(plain, 1, 1),
                               NewTopic(own, 1, 1, config={"max.message.bytes": "100000"})])
    for f in created.values():
        f.result(30)
    big = [(None, b"x" * 5000)]
    produce(b.bootstrap, plain, big)

    alter_broker(a, "1", ("message.max.bytes", "2000", AlterConfigOpType.SET))
    entry = describe(a, ConfigResource.Type.TOPIC, plain)["max.message.bytes"]
    assert (entry.value, entry.source) == ("2000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)
    [error] = produce_errors(b.bootstrap, plain, big)
    assert error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE, error
    # a topic's own value still wins
    produce(b.bootstrap, own, big)
    entry = describe(a, BROKER, "1")["message.max.bytes"]
    assert (entry.value, entry.source, entry.is_read_only) == \
        ("2000", ConfigSource.DYNAMIC_BROKER_CONFIG.value, False)

    # stored in the metadata log: still in effect after a restart
    b.stop()
    b.start()
    a = admin(b.bootstrap)
    assert describe(a, ConfigResource.Type.TOPIC, plain)["max.message.bytes"].value == "2000"
    [error] = produce_errors(b.bootstrap, plain, big)
    assert error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE, error

    alter_broker(a, "1", ("message.max.bytes", None, AlterConfigOpType.DELETE))
    entry = describe(a, ConfigResource.Type.TOPIC, plain)["max.message.bytes"]
    assert (entry.value, entry.source) == ("1048588", ConfigSource.DEFAULT_CONFIG.value)
    produce(b.bootstrap, plain, big)


def test_a_dynamic_retention_deletes_old_segments_of_existing_topics(start_broker):
    b = start_broker(FAST)
    a = admin(b.bootstrap)
    t = unique("dynret")
    a.create_topics([NewTopic(t, 1, 1, config={"segment.bytes": "10000"})])[t].result(30)
    produce(b.bootstrap, t, [(None, b"v" * 500) for _ in range(40)], conf={"batch.size": 1000})
    assert watermarks(b.bootstrap, t, 0)[0] == 0
    alter_broker(a, "1", ("log.retention.ms", "1", AlterConfigOpType.SET))
    wait_until(lambda: watermarks(b.bootstrap, t, 0)[0] > 0, 60,
               "retention to delete the old segments after the broker-wide change")


def test_what_cannot_change_is_refused_with_kafkas_errors(broker):
    a = admin(broker.bootstrap)
    cases = [
        (("log.retention.ms", "soon"), KafkaError.INVALID_CONFIG),
        (("log.cleanup.policy", "shred"), KafkaError.INVALID_CONFIG),
        (("node.id", "7"), KafkaError.INVALID_REQUEST),
        (("log.dirs", "/elsewhere"), KafkaError.INVALID_REQUEST),
        (("no.such.broker.key", "1"), KafkaError.INVALID_CONFIG),
    ]
    for (key, value), code in cases:
        with pytest.raises(Exception) as e:
            alter_broker(a, "1", (key, value, AlterConfigOpType.SET))
        assert e.value.args[0].code() == code, (key, e.value)
    # keys Kafka changes dynamically that mean nothing here are accepted and shown
    alter_broker(a, "1", ("num.io.threads", "16", AlterConfigOpType.SET),
                 ("leader.replication.throttled.rate", "1048576", AlterConfigOpType.SET))
    d = describe(a, BROKER, "1")
    assert d["num.io.threads"].value == "16"
    assert d["leader.replication.throttled.rate"].value == "1048576"


def test_describe_a_broker_lists_every_kafka_key_with_what_it_runs(broker):
    a = admin(broker.bootstrap)
    d = describe(a, BROKER, "1")
    assert len(d) >= 300, f"{len(d)} broker configs"
    assert d["advertised.listeners"].value == f"PLAINTEXT://127.0.0.1:{broker.port}"
    assert d["listeners"].value.startswith("PLAINTEXT://127.0.0.1:"), d["listeners"].value
    assert d["log.dirs"].value == str(broker.data_dir)
    assert d["node.id"].value == "1" and d["node.id"].is_read_only
    assert d["num.io.threads"].value == "8" and not d["num.io.threads"].is_read_only
    assert d["log.retention.hours"].value == "168" and not d["log.retention.hours"].is_read_only
    assert d["ssl.keystore.password"].is_sensitive and d["ssl.keystore.password"].value is None
    assert d["group.max.size"].value == "1000"


def test_kafka_python_alters_a_broker_config_it_finds_dynamic(broker):
    """kafka-python checks DescribeConfigs' read_only flags before altering."""
    from kafka.admin import ConfigResource as KResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient

    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        result = k.alter_configs([KResource(ConfigResourceType.BROKER, "1", {"log.retention.hours": "2"})])
        assert result == {"broker": {"1": "OK"}}, result
        with pytest.raises(ValueError):
            k.alter_configs([KResource(ConfigResourceType.BROKER, "1", {"node.id": "2"})])
    finally:
        k.close()
    a = admin(broker.bootstrap)
    t = unique("kpdyn")
    a.create_topics([NewTopic(t, 1, 1)])[t].result(30)
    entry = describe(a, ConfigResource.Type.TOPIC, t)["retention.ms"]
    assert (entry.value, entry.source) == ("7200000", ConfigSource.DYNAMIC_BROKER_CONFIG.value)


def test_broker_loggers_change_log_levels_at_runtime(broker):
    """BROKER_LOGGER (kafka-configs --entity-type broker-loggers) with kafka-python: the
    loggers and their levels; TRACE on the connection logger shows each request in the
    broker's log at once; DELETE puts it back to the root level; unknown loggers and
    levels get INVALID_CONFIG with Kafka's messages."""
    from kafka.admin import ConfigResource as KResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient

    logger = "vltava_broker::connection"
    k = KafkaAdminClient(bootstrap_servers=broker.bootstrap)

    def loggers():
        r = k.describe_configs([KResource(ConfigResourceType.BROKER_LOGGER, "1")], config_filter="all")
        return {name: c["value"] for name, c in r["broker_logger"]["1"].items()}

    def alter(configs):
        r = k.alter_configs([KResource(ConfigResourceType.BROKER_LOGGER, "1", configs)],
                            raise_on_unknown=False)
        return r["broker_logger"]["1"]

    try:
        before = loggers()
        assert before["root"] == "INFO" and before[logger] == "INFO", before
        assert "TRACE vltava_broker::connection" not in broker.log()
        assert alter({logger: "TRACE"}) == "OK"
        assert loggers()[logger] == "TRACE"
        k.list_topics()
        wait_until(lambda: "api_key=Metadata" in broker.log(), 30, "a TRACE line per request")
        assert alter({logger: ("DELETE", None)}) == "OK"
        assert loggers()[logger] == "INFO"
        assert "does not exist" in alter({"kafka.server": "TRACE"})
        assert "not a supported log level" in alter({logger: "LOUD"})
        assert "Error 40" in alter({"kafka.server": "TRACE"}), "INVALID_CONFIG"
    finally:
        k.close()


def test_broker_loggers_start_from_rust_log_and_keep_it(start_broker):
    """RUST_LOG's levels are the loggers' levels shown at start, and changing another
    logger keeps them (the filter is rebuilt from all of them, not from the root alone)."""
    from kafka.admin import ConfigResource as KResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient

    b = start_broker(env={"RUST_LOG": "warn,vltava_broker::connection=trace"})
    k = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        def loggers():
            r = k.describe_configs([KResource(ConfigResourceType.BROKER_LOGGER, "1")], config_filter="all")
            return {name: c["value"] for name, c in r["broker_logger"]["1"].items()}

        got = loggers()
        assert (got["root"], got["vltava_broker::connection"], got["vltava_storage"]) == ("WARN", "TRACE", "WARN"), got
        r = k.alter_configs([KResource(ConfigResourceType.BROKER_LOGGER, "1", {"vltava_storage": "DEBUG"})],
                            raise_on_unknown=False)
        assert r["broker_logger"]["1"] == "OK"
        assert loggers()["vltava_broker::connection"] == "TRACE"
        before = b.log().count("api_key=Metadata")
        k.list_topics()
        wait_until(lambda: b.log().count("api_key=Metadata") > before, 30,
                   "the connection logger still at TRACE after another logger changed")
    finally:
        k.close()
