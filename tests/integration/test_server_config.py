"""Broker config keys from Kafka's server.properties: Kafka 4.1's default
file starts vltava with every key known, delete.topic.enable=false refuses
DeleteTopics as Kafka does, and values asking for what vltava lacks stop the
start with a message naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from conftest import BrokerStartError, free_port
from helpers import unique, wait_for_topic

KAFKA_41_SERVER_PROPERTIES = Path(__file__).parent / "fixtures" / "kafka-4.1-server.properties"
UNKNOWN_KEY_WARNING = "unknown config key ignored"


def kafka_defaults(start_broker, **extra):
    """vltava started with Kafka 4.1's default server.properties. Only what
    must differ on a shared test machine is overridden: the ports (the file's
    9092/9093) and the data directory (the file's /tmp/kraft-combined-logs)."""
    port, cport = free_port(), free_port()
    sets = {
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "controller.quorum.bootstrap.servers": f"localhost:{cport}",
    }
    sets.update(extra)
    return start_broker(sets, config_file=KAFKA_41_SERVER_PROPERTIES, port=port)


def test_kafka_41_default_server_properties_starts_with_every_key_known(start_broker):
    b = kafka_defaults(start_broker)
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    t = unique("kdef")
    a.create_topics([NewTopic(t, 1, 1)])[t].result(15)
    wait_for_topic(b.bootstrap, t, 1)
    log = b.log()
    assert "--config" in log and str(KAFKA_41_SERVER_PROPERTIES) in log, "started with the file"
    assert "vltava broker started" in log
    assert UNKNOWN_KEY_WARNING not in log, log


def test_an_unknown_key_is_logged(start_broker):
    # the other side of the test above: the warning it looks for does appear
    b = kafka_defaults(start_broker, **{"zookeeper.connect": "localhost:2181"})
    log = b.log()
    assert UNKNOWN_KEY_WARNING in log and "zookeeper.connect" in log, log


def test_delete_topic_enable_false_refuses_delete_topics(start_broker):
    b = kafka_defaults(start_broker, **{"delete.topic.enable": "false"})
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    t = unique("keep")
    a.create_topics([NewTopic(t, 1, 1)])[t].result(15)
    wait_for_topic(b.bootstrap, t, 1)
    with pytest.raises(KafkaException) as e:
        a.delete_topics([t], operation_timeout=10)[t].result(15)
    err = e.value.args[0]
    assert err.code() == KafkaError.TOPIC_DELETION_DISABLED, err
    assert err.code() == 73
    assert t in a.list_topics(timeout=10).topics, "the topic is still there"


@pytest.mark.parametrize("sets,expected", [
    ({"listeners": "PLAINTEXT://127.0.0.1:{port},SSL://127.0.0.1:{other}"}, "listener SSL uses SSL"),
    ({"listeners": "CLIENT://127.0.0.1:{port}", "listener.security.protocol.map": "CLIENT:SASL_SSL"},
     "listener CLIENT uses SASL_SSL"),
    ({"security.inter.broker.protocol": "SSL"}, "security.inter.broker.protocol"),
    ({"authorizer.class.name": "kafka.security.authorizer.AclAuthorizer"}, "authorizer.class.name"),
    ({"remote.log.storage.system.enable": "true"}, "tiered storage"),
])
def test_values_asking_for_what_vltava_lacks_refuse_to_start(start_broker, sets, expected):
    port, other = free_port(), free_port()
    sets = {k: v.format(port=port, other=other) for k, v in sets.items()}
    with pytest.raises(BrokerStartError) as e:
        start_broker(sets, port=port)
    assert "exited with code 1" in str(e.value), e.value
    assert expected in str(e.value), e.value
