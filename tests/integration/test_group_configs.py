"""Group configs (issue 13): the broker's `group.consumer.*` / `group.share.*` settings with
Kafka's names and bounds, and a group's own overrides (Kafka's GROUP config resource, type 32)
through IncrementalAlterConfigs/DescribeConfigs, `vltava group alter-config|describe-config`,
kept in the metadata log."""

from __future__ import annotations

import json
import subprocess

import pytest

import helpers as h
from conftest import BrokerStartError, vltava_bin



def cli(b, *args, check=True):
    res = subprocess.run([vltava_bin(), "--brokers", b.bootstrap, "group", *map(str, args)],
                         capture_output=True, text=True, timeout=60)
    if check:
        assert res.returncode == 0, (res.stdout, res.stderr)
    return res


def group_configs(b, group: str) -> dict:
    out = json.loads(cli(b, "describe-config", group, "--json").stdout)
    return {c["name"]: (c["value"], c["group_override"]) for c in out["configs"]}


def test_group_overrides_are_set_described_kept_and_removed(start_broker):
    b = start_broker({"group.share.min.record.lock.duration.ms": "1000",
                      "group.share.record.lock.duration.ms": "20000"})
    g = h.unique("g")
    before = group_configs(b, g)
    assert before["share.record.lock.duration.ms"] == ("20000", False)   # the broker's value
    assert before["consumer.session.timeout.ms"] == ("45000", False)
    assert before["share.auto.offset.reset"] == ("latest", False)
    assert before["errors.deadletterqueue.topic.name"] == ("", False)
    cli(b, "alter-config", g, "--set", "share.record.lock.duration.ms=5000",
        "--set", "share.auto.offset.reset=earliest", "--set", "errors.deadletterqueue.topic.name=dlq.orders",
        "--set", "share.isolation.level=read_committed")
    after = group_configs(b, g)
    assert after["share.record.lock.duration.ms"] == ("5000", True)
    assert after["share.auto.offset.reset"] == ("earliest", True)
    assert after["errors.deadletterqueue.topic.name"] == ("dlq.orders", True)
    assert after["share.isolation.level"] == ("read_committed", True)
    assert after["consumer.session.timeout.ms"] == ("45000", False)
    b.restart()      # in the metadata log
    assert group_configs(b, g) == after
    cli(b, "alter-config", g, "--delete", "share.record.lock.duration.ms")
    assert group_configs(b, g)["share.record.lock.duration.ms"] == ("20000", False)


@pytest.mark.parametrize("kv, reason", [
    ("consumer.session.timeout.ms=1000", "between 45000 and 60000"),
    ("share.record.lock.duration.ms=999999", "between"),
    ("share.delivery.count.limit=1", "between 2 and 10"),
    ("share.auto.offset.reset=sometimes", "latest, earliest or by_duration"),
    ("share.auto.offset.reset=by_duration:1h", "ISO-8601"),
    ("share.isolation.level=dirty", "read_committed"),
    ("errors.deadletterqueue.topic.name=orders-dead", "dlq."),
    ("errors.deadletterqueue.topic.name=dlq.bad/name", "illegal"),
    ("no.such.key=1", "Unknown group config name"),
])
def test_bad_group_configs_are_refused_with_invalid_config(module_broker, kv, reason):
    g = h.unique("g")
    res = cli(module_broker, "alter-config", g, "--set", kv, check=False)
    assert res.returncode != 0 and "INVALID_CONFIG" in res.stderr and reason in res.stderr, res.stderr
    assert all(not override for _, override in group_configs(module_broker, g).values())


def test_confluent_admin_alters_and_describes_group_configs(module_broker):
    """A real admin client: librdkafka's ConfigResource type GROUP is sent as resource type 32."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, ResourceType
    a = h.admin(module_broker.bootstrap)
    g = h.unique("g")
    res = ConfigResource(ResourceType.GROUP, g, incremental_configs=[
        ConfigEntry("share.delivery.count.limit", "3", incremental_operation=AlterConfigOpType.SET)])
    a.incremental_alter_configs([res])[res].result(30)
    described = ConfigResource(ResourceType.GROUP, g)
    got = a.describe_configs([described])[described].result(30)
    assert got["share.delivery.count.limit"].value == "3"
    assert got["share.heartbeat.interval.ms"].value == "5000"


@pytest.mark.parametrize("sets, key", [
    ({"group.consumer.session.timeout.ms": "1000"}, "group.consumer.session.timeout.ms"),
    ({"group.share.delivery.count.limit": "11"}, "group.share.delivery.count.limit"),
    ({"group.consumer.assignors": "sticky"}, "group.consumer.assignors"),
    ({"group.coordinator.rebalance.protocols": "consumer"}, "group.coordinator.rebalance.protocols"),
    ({"group.consumer.heartbeat.interval.ms": "50000", "group.consumer.max.heartbeat.interval.ms": "50000",
      "group.consumer.min.session.timeout.ms": "1000", "group.consumer.session.timeout.ms": "30000"},
     "group.consumer.heartbeat.interval.ms"),
])
def test_broker_group_settings_out_of_bounds_refuse_to_start(start_broker, sets, key):
    with pytest.raises(BrokerStartError) as e:
        start_broker(sets)
    assert key in str(e.value)
