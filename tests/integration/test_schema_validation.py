"""Schema validation on the broker (issue 15): topics with Confluent Server's
`confluent.value.schema.validation` / `confluent.key.schema.validation` refuse
records whose key/value does not carry the schema registry's wire header with
a schema id registered under the subject the topic's subject name strategy
names, with INVALID_RECORD and nothing appended. Real confluent-kafka producers
with the registry client's AvroSerializer, against the real `vltava` binary and
its built-in registry; configs through confluent-kafka's and kafka-python's
admin clients; one raw Produce v8 request to read record_errors and
error_message as sent."""

from __future__ import annotations

import json
import struct

import pytest
from confluent_kafka import KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic
from confluent_kafka.schema_registry import (Schema, SchemaRegistryClient, record_subject_name_strategy,
                                             topic_record_subject_name_strategy)
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import kafka_wire
from helpers import admin, make_consumer, make_producer, unique, wait_until, watermarks

TOPIC_NAME_STRATEGY = "io.confluent.kafka.serializers.subject.TopicNameStrategy"
RECORD_NAME_STRATEGY = "io.confluent.kafka.serializers.subject.RecordNameStrategy"

ORDER = json.dumps({
    "type": "record", "name": "Order", "namespace": "shop",
    "fields": [{"name": "id", "type": "long"}, {"name": "item", "type": "string"}],
})
CUSTOMER = json.dumps({
    "type": "record", "name": "Customer", "namespace": "shop",
    "fields": [{"name": "name", "type": "string"}],
})
def stray_record() -> str:
    """An Avro record whose full name no other test uses."""
    name = unique("Stray").replace("-", "_")
    return json.dumps({"type": "record", "name": name, "namespace": "shop",
                       "fields": [{"name": "note", "type": "string"}]})


KEY = json.dumps({"type": "record", "name": "OrderKey", "namespace": "shop",
                  "fields": [{"name": "id", "type": "long"}]})


@pytest.fixture(scope="module")
def cluster(module_broker):
    """(bootstrap, registry client, a kept AdminClient)."""
    b = module_broker
    registry = SchemaRegistryClient({"url": b.registry_url})
    return b.bootstrap, registry, admin(b.bootstrap)


def create(a, topic: str, **configs) -> None:
    cfg = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in configs.items()}
    a.create_topics([NewTopic(topic, 1, 1, config=cfg)])[topic].result(30)


def wire(schema_id: int, payload: bytes = b"\x02\x06abc") -> bytes:
    """Confluent's wire format: magic byte 0, the schema id (big endian), the payload."""
    return b"\0" + struct.pack(">i", schema_id) + payload


def send(bootstrap: str, topic: str, records, conf: dict | None = None) -> list:
    """Produces (key, value) records; returns each one's delivery error (None if written)."""
    p = make_producer(bootstrap, conf)
    errors: list = [None] * len(records)
    done = [False] * len(records)

    def report(i):
        def cb(err, _msg):
            errors[i] = err
            done[i] = True
        return cb

    for i, (k, v) in enumerate(records):
        p.produce(topic, key=k, value=v, partition=0, on_delivery=report(i))
    assert p.flush(60) == 0, "records left undelivered"
    assert all(done), done
    return errors


def end_offset(bootstrap: str, topic: str) -> int:
    return watermarks(bootstrap, topic, 0)[1]


def read_values(bootstrap: str, topic: str, n: int) -> list:
    c = make_consumer(bootstrap)
    c.assign([TopicPartition(topic, 0, 0)])
    got = []
    try:
        def more():
            m = c.poll(1.0)
            if m is not None and not m.error():
                got.append(m)
            return len(got) >= n
        wait_until(more, 60, f"{n} records of {topic}")
    finally:
        c.close()
    return got


def refused(errors) -> bool:
    return all(e is not None and e.code() == KafkaError.INVALID_RECORD for e in errors)


def describe(a, topic: str) -> dict:
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return {k: v for k, v in a.describe_configs([res])[res].result(30).items()}


def test_configs_have_confluent_defaults_and_are_described(cluster):
    bs, _, a = cluster
    t = unique("sv-defaults")
    create(a, t)
    entries = describe(a, t)
    assert entries["confluent.value.schema.validation"].value == "false"
    assert entries["confluent.key.schema.validation"].value == "false"
    assert entries["confluent.value.subject.name.strategy"].value == TOPIC_NAME_STRATEGY
    assert entries["confluent.key.subject.name.strategy"].value == TOPIC_NAME_STRATEGY
    assert entries["vltava.schema.validation.decode"].value == "false"
    assert entries["confluent.value.schema.validation"].is_default
    # set at creation, with short and full strategy names
    t2 = unique("sv-set")
    create(a, t2, **{"confluent.value.schema.validation": True,
                     "confluent.value.subject.name.strategy": "TopicRecordNameStrategy",
                     "confluent.key.subject.name.strategy": RECORD_NAME_STRATEGY})
    entries = describe(a, t2)
    assert entries["confluent.value.schema.validation"].value == "true"
    assert not entries["confluent.value.schema.validation"].is_default
    assert entries["confluent.value.subject.name.strategy"].value == "TopicRecordNameStrategy"
    assert entries["confluent.key.subject.name.strategy"].value == RECORD_NAME_STRATEGY


@pytest.mark.parametrize("key,value", [
    ("confluent.value.subject.name.strategy", "SubjectByMood"),
    ("confluent.key.subject.name.strategy", "io.confluent.kafka.serializers.subject.Nope"),
    ("confluent.value.schema.validation", "yes"),
    ("vltava.schema.validation.decode", "sometimes"),
])
def test_bad_config_values_are_refused_with_invalid_config(cluster, key, value):
    bs, _, a = cluster
    t = unique("sv-bad")
    with pytest.raises(KafkaException) as e:
        create(a, t, **{key: value})
    err = e.value.args[0]
    assert err.code() == KafkaError.INVALID_CONFIG, err
    assert key in err.str() and value in err.str(), err.str()
    # and through IncrementalAlterConfigs on an existing topic
    create(a, t)
    res = ConfigResource(ConfigResource.Type.TOPIC, t, incremental_configs=[
        ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)])
    with pytest.raises(KafkaException) as e:
        a.incremental_alter_configs([res])[res].result(30)
    assert e.value.args[0].code() == KafkaError.INVALID_CONFIG, e.value.args[0]


def test_avro_serializer_records_pass_and_read_back(cluster):
    bs, registry, a = cluster
    t = unique("sv-avro")
    create(a, t, **{"confluent.value.schema.validation": True})
    ser = AvroSerializer(registry, ORDER)
    ctx = SerializationContext(t, MessageField.VALUE)
    orders = [{"id": i, "item": f"item-{i}"} for i in range(20)]
    records = [(None, ser(o, ctx)) for o in orders] + [(b"gone", None)]  # and a tombstone
    assert send(bs, t, records) == [None] * 21
    got = read_values(bs, t, 21)
    de = AvroDeserializer(registry)
    assert [de(m.value(), ctx) for m in got[:20]] == orders
    assert got[20].value() is None


def test_raw_bytes_unknown_ids_and_other_subjects_ids_are_refused(cluster):
    bs, registry, a = cluster
    t = unique("sv-refuse")
    create(a, t, **{"confluent.value.schema.validation": True})
    own = registry.register_schema(f"{t}-value", Schema(ORDER, "AVRO"))
    other = registry.register_schema(unique("elsewhere") + "-value", Schema(CUSTOMER, "AVRO"))
    assert own != other
    unknown = max(own, other) + 100_000
    assert send(bs, t, [(None, wire(own))]) == [None]
    before = end_offset(bs, t)
    for bad in [b"plain text, no header", wire(unknown), wire(other), b"\0\0"]:
        errors = send(bs, t, [(None, bad)])
        assert refused(errors), (bad, errors)
    # nothing was appended: the end offset did not move, and a consumer reads only the good record
    assert end_offset(bs, t) == before == 1
    assert [m.value() for m in read_values(bs, t, 1)] == [wire(own)]
    # valid records still pass afterwards
    assert send(bs, t, [(None, wire(own))]) == [None]
    assert end_offset(bs, t) == 2


def test_a_batch_with_one_bad_record_is_refused_whole_naming_it(cluster):
    """Produce v8 sent by hand: record_errors names the bad record's index and reason,
    error_message is set, and nothing of the batch is written."""
    bs, registry, a = cluster
    t = unique("sv-wire")
    create(a, t, **{"confluent.value.schema.validation": True})
    own = registry.register_schema(f"{t}-value", Schema(ORDER, "AVRO"))
    batch = kafka_wire.record_batch([(None, wire(own)), (None, b"raw"), (None, wire(own)),
                                     (b"tombstone", None), (None, wire(own + 100_000))])
    port = int(bs.rsplit(":", 1)[1])
    sock = kafka_wire.connect(port)
    try:
        payload = kafka_wire.roundtrip(sock, kafka_wire.produce_request(7, t, 0, batch, api_version=8))
    finally:
        sock.close()
    _, parts, _ = kafka_wire.parse_produce_response(payload, api_version=8)
    p = parts[(t, 0)]
    assert p["error_code"] == 87, p  # INVALID_RECORD
    assert [i for i, _ in p["record_errors"]] == [1, 4], p
    assert "magic byte" in p["record_errors"][0][1], p
    assert f"unknown schema id {own + 100_000}" in p["record_errors"][1][1], p
    assert p["error_message"] and "2 of 5 records" in p["error_message"], p
    assert end_offset(bs, t) == 0


def test_topics_without_validation_take_anything(cluster):
    bs, _, a = cluster
    t = unique("sv-off")
    create(a, t)
    assert send(bs, t, [(None, b"raw"), (b"k", b"\x07 not a header")]) == [None, None]
    assert end_offset(bs, t) == 2


def test_key_validation_uses_the_key_subject(cluster):
    bs, registry, a = cluster
    t = unique("sv-key")
    create(a, t, **{"confluent.key.schema.validation": True})
    key_ser = AvroSerializer(registry, KEY)
    value_ser = AvroSerializer(registry, ORDER)
    kctx = SerializationContext(t, MessageField.KEY)
    vctx = SerializationContext(t, MessageField.VALUE)
    key = key_ser({"id": 1}, kctx)
    value_id_framed = value_ser({"id": 1, "item": "x"}, vctx)  # registered under <t>-value
    # a valid key with any value, and a null key, pass
    assert send(bs, t, [(key, b"raw value"), (None, b"raw value")]) == [None, None]
    # raw keys, and keys framed with the value subject's id, are refused
    assert refused(send(bs, t, [(b"raw key", value_id_framed)]))
    assert refused(send(bs, t, [(value_id_framed, value_id_framed)]))
    assert end_offset(bs, t) == 2


def test_record_name_strategy(cluster):
    bs, registry, a = cluster
    t = unique("sv-rns")
    create(a, t, **{"confluent.value.schema.validation": True,
                    "confluent.value.subject.name.strategy": "RecordNameStrategy"})
    ser = AvroSerializer(registry, ORDER, conf={"subject.name.strategy": record_subject_name_strategy})
    ctx = SerializationContext(t, MessageField.VALUE)
    assert send(bs, t, [(None, ser({"id": 1, "item": "a"}, ctx))]) == [None]
    assert registry.get_latest_version("shop.Order").schema_id is not None
    # a schema registered under <topic>-value only, not under its record name
    stray = registry.register_schema(f"{t}-value", Schema(stray_record(), "AVRO"))
    assert refused(send(bs, t, [(None, wire(stray))]))
    assert end_offset(bs, t) == 1


def test_topic_record_name_strategy(cluster):
    bs, registry, a = cluster
    t = unique("sv-trns")
    create(a, t, **{"confluent.value.schema.validation": True,
                    "confluent.value.subject.name.strategy":
                        "io.confluent.kafka.serializers.subject.TopicRecordNameStrategy"})
    ser = AvroSerializer(registry, ORDER, conf={"subject.name.strategy": topic_record_subject_name_strategy})
    ctx = SerializationContext(t, MessageField.VALUE)
    assert send(bs, t, [(None, ser({"id": 2, "item": "b"}, ctx))]) == [None]
    assert registry.get_latest_version(f"{t}-shop.Order") is not None
    # registered under its record name (RecordNameStrategy's subject), not <topic>-<record name>
    text = stray_record()
    stray = registry.register_schema(json.loads(text)["namespace"] + "." + json.loads(text)["name"],
                                     Schema(text, "AVRO"))
    assert refused(send(bs, t, [(None, wire(stray))]))
    assert end_offset(bs, t) == 1


def test_validation_switched_on_and_off_by_alter_configs(cluster):
    """kafka-python's AlterConfigs turns validation on; confluent's IncrementalAlterConfigs off."""
    from kafka.admin import ConfigResource as KpResource
    from kafka.admin import ConfigResourceType, KafkaAdminClient

    bs, _, a = cluster
    t = unique("sv-alter")
    create(a, t)
    assert send(bs, t, [(None, b"raw")]) == [None]
    kp = KafkaAdminClient(bootstrap_servers=bs)
    try:
        kp.alter_configs([KpResource(ConfigResourceType.TOPIC, t,
                                     configs={"confluent.value.schema.validation": "true"})])
    finally:
        kp.close()
    wait_until(lambda: refused(send(bs, t, [(None, b"raw")])), 30, "validation to take effect")
    res = ConfigResource(ConfigResource.Type.TOPIC, t, incremental_configs=[
        ConfigEntry("confluent.value.schema.validation", None, incremental_operation=AlterConfigOpType.DELETE)])
    a.incremental_alter_configs([res])[res].result(30)
    wait_until(lambda: send(bs, t, [(None, b"raw again")]) == [None], 30, "validation to be off")
    assert [m.value() for m in read_values(bs, t, 2)] == [b"raw", b"raw again"]


def test_decode_refuses_a_payload_that_does_not_match_its_schema(cluster):
    bs, registry, a = cluster
    t = unique("sv-decode")
    create(a, t, **{"confluent.value.schema.validation": True, "vltava.schema.validation.decode": True})
    ser = AvroSerializer(registry, ORDER)
    ctx = SerializationContext(t, MessageField.VALUE)
    good = ser({"id": 7, "item": "fine"}, ctx)
    own = struct.unpack(">i", good[1:5])[0]
    assert send(bs, t, [(None, good)]) == [None]
    # the header is right, the Avro body is not: a string length past the end
    assert refused(send(bs, t, [(None, wire(own, b"\x02\x7f"))]))
    # without decode the same record passes (only the header is checked)
    t2 = unique("sv-nodecode")
    create(a, t2, **{"confluent.value.schema.validation": True})
    registry.register_schema(f"{t2}-value", Schema(ORDER, "AVRO"))
    assert send(bs, t2, [(None, wire(own, b"\x02\x7f"))]) == [None]
    assert end_offset(bs, t) == 1


def test_json_schema_serializer_records_pass_with_topic_and_record_name_strategies(cluster):
    from confluent_kafka.schema_registry.json_schema import JSONSerializer

    bs, registry, a = cluster
    title = unique("Shipment").replace("-", "_")
    schema = json.dumps({"$schema": "http://json-schema.org/draft-07/schema#", "title": title, "type": "object",
                         "properties": {"id": {"type": "integer"}}, "required": ["id"]})
    for strategy, conf in [("TopicNameStrategy", {}),
                           ("RecordNameStrategy", {"subject.name.strategy": record_subject_name_strategy})]:
        t = unique("sv-json")
        create(a, t, **{"confluent.value.schema.validation": True,
                        "confluent.value.subject.name.strategy": strategy,
                        "vltava.schema.validation.decode": True})
        ser = JSONSerializer(schema, registry, conf=conf)
        ctx = SerializationContext(t, MessageField.VALUE)
        assert send(bs, t, [(None, ser({"id": 1}, ctx)), (None, ser({"id": 2}, ctx))]) == [None, None], strategy
        good = ser({"id": 3}, ctx)
        # the right header with a body that breaks the schema: refused by the decode
        assert refused(send(bs, t, [(None, good[:5] + b'{"id": "three"}')])), strategy
        assert end_offset(bs, t) == 2, strategy
