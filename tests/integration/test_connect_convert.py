"""Converters and Single Message Transforms of `vltava connect`, end to end: a
FileStreamSource connector on a real worker writes a file's lines to a real vltava
broker through JsonConverter (with and without schemas.enable), the Confluent
Avro / JSON Schema / Protobuf converters against the broker's own schema registry,
and a transform chain (HoistField, InsertField, RegexRouter, Filter under a
predicate); the topics are read back with confluent-kafka and its registry
deserializers."""

from __future__ import annotations

import json

from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.schema_registry.json_schema import JSONDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext

import helpers as h
from connect import start_worker  # noqa: F401

LINES = ["alpha", "beta \u00e9\u00e8", '{"not":"parsed"}', "delta"]


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def file_source(worker, name: str, path, topic: str, **extra) -> None:
    config = {"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
              "tasks.max": "1", "file": str(path), "topic": topic}
    config.update(extra)
    worker.create(name, config)
    worker.wait_running(name, tasks=1)


def values(bootstrap: str, topic: str, n: int, timeout: float = 90.0) -> list:
    got = h.consume(bootstrap, topic, {0: n}, timeout=timeout)[0]
    assert len(got) == n, [g.value for g in got]
    return got


def test_json_converter_with_and_without_schemas(broker, start_worker, tmp_path):
    src = tmp_path / "in.txt"
    write_lines(src, LINES)
    w = start_worker(broker)
    topics = {}
    for enable in ("true", "false"):
        topics[enable] = h.unique(f"convert-json-{enable}")
        h.create_topic(broker.bootstrap, topics[enable])
        file_source(w, f"json-{enable}", src, topics[enable],
                    **{"value.converter": "org.apache.kafka.connect.json.JsonConverter",
                       "value.converter.schemas.enable": enable})
    got = values(broker.bootstrap, topics["true"], len(LINES))
    for g, line in zip(got, LINES):
        # exactly the bytes Connect's JsonConverter writes for a STRING_SCHEMA value
        payload = json.dumps(line, ensure_ascii=False, separators=(",", ":"))
        assert g.value.decode("utf-8") == '{"schema":{"type":"string","optional":false},"payload":' + payload + "}"
        assert g.key is None
    got = values(broker.bootstrap, topics["false"], len(LINES))
    assert [json.loads(g.value) for g in got] == LINES
    assert got[2].value.decode() == json.dumps(LINES[2], separators=(",", ":"))


def test_avro_converter_registers_and_writes_the_confluent_wire_format(broker, start_worker, tmp_path):
    topic = h.unique("convert-avro")
    h.create_topic(broker.bootstrap, topic)
    src = tmp_path / "in.txt"
    write_lines(src, LINES)
    w = start_worker(broker)
    registry = broker.registry_url
    # a struct value: the line hoisted into a record, with a static field added
    file_source(w, "avro", src, topic, **{
        "value.converter": "io.confluent.connect.avro.AvroConverter",
        "value.converter.schema.registry.url": registry,
        "transforms": "hoist,add",
        "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
        "transforms.hoist.field": "line",
        "transforms.add.type": "org.apache.kafka.connect.transforms.InsertField$Value",
        "transforms.add.static.field": "source",
        "transforms.add.static.value": "file",
    })
    got = values(broker.bootstrap, topic, len(LINES))
    client = SchemaRegistryClient({"url": registry})
    latest = client.get_latest_version(f"{topic}-value")
    schema = json.loads(latest.schema.schema_str)
    assert schema["type"] == "record"
    assert schema["name"] == "ConnectDefault" and schema["namespace"] == "io.confluent.connect.avro"
    assert [f["name"] for f in schema["fields"]] == ["line", "source"]
    deser = AvroDeserializer(client)
    ctx = SerializationContext(topic, MessageField.VALUE)
    for g, line in zip(got, LINES):
        assert g.value[0] == 0 and int.from_bytes(g.value[1:5], "big") == latest.schema_id
        assert deser(g.value, ctx) == {"line": line, "source": "file"}


def test_json_schema_and_protobuf_converters(broker, start_worker, tmp_path):
    src = tmp_path / "in.txt"
    write_lines(src, LINES)
    w = start_worker(broker)
    registry = broker.registry_url
    hoist = {"transforms": "hoist",
             "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
             "transforms.hoist.field": "line"}
    jtopic, ptopic = h.unique("convert-jsonschema"), h.unique("convert-protobuf")
    for t in (jtopic, ptopic):
        h.create_topic(broker.bootstrap, t)
    file_source(w, "jsonschema", src, jtopic, **hoist, **{
        "value.converter": "io.confluent.connect.json.JsonSchemaConverter",
        "value.converter.schema.registry.url": registry})
    file_source(w, "protobuf", src, ptopic, **hoist, **{
        "value.converter": "io.confluent.connect.protobuf.ProtobufConverter",
        "value.converter.schema.registry.url": registry})

    client = SchemaRegistryClient({"url": registry})
    got = values(broker.bootstrap, jtopic, len(LINES))
    deser = JSONDeserializer(None, schema_registry_client=client)
    ctx = SerializationContext(jtopic, MessageField.VALUE)
    assert [deser(g.value, ctx) for g in got] == [{"line": line} for line in LINES]
    assert client.get_latest_version(f"{jtopic}-value").schema.schema_type == "JSON"

    got = values(broker.bootstrap, ptopic, len(LINES))
    latest = client.get_latest_version(f"{ptopic}-value")
    assert latest.schema.schema_type == "PROTOBUF"
    assert "message ConnectDefault1" in latest.schema.schema_str
    for g, line in zip(got, LINES):
        # magic 0, the id, message index [0] (one zero byte), then field 1 (tag 0x0a) = the line
        raw = line.encode("utf-8")
        assert g.value == b"\0" + latest.schema_id.to_bytes(4, "big") + b"\0" + b"\x0a" + bytes([len(raw)]) + raw


def test_a_transform_chain_routes_and_filters(broker, start_worker, tmp_path):
    """HoistField + InsertField (static) + RegexRouter renaming the topic, and a Filter
    under TopicNameMatches: the connector whose topic matches drops every record."""
    base = h.unique("chain")
    keep_src, skip_src = tmp_path / "keep.txt", tmp_path / "skip.txt"
    write_lines(keep_src, LINES)
    write_lines(skip_src, LINES)
    for t in (f"{base}-raw-keep", f"{base}-keep", f"{base}-raw-skip", f"{base}-skip"):
        h.create_topic(broker.bootstrap, t)
    w = start_worker(broker)
    chain = {
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "transforms": "hoist,add,route,drop",
        "transforms.hoist.type": "org.apache.kafka.connect.transforms.HoistField$Value",
        "transforms.hoist.field": "line",
        "transforms.add.type": "org.apache.kafka.connect.transforms.InsertField$Value",
        "transforms.add.static.field": "origin",
        "transforms.add.static.value": "vltava",
        "transforms.add.topic.field": "topic",
        "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.route.regex": "(.*)-raw-(.*)",
        "transforms.route.replacement": "$1-$2",
        "transforms.drop.type": "org.apache.kafka.connect.transforms.Filter",
        "transforms.drop.predicate": "isSkip",
        "predicates": "isSkip",
        "predicates.isSkip.type": "org.apache.kafka.connect.transforms.predicates.TopicNameMatches",
        "predicates.isSkip.pattern": ".*-skip",
    }
    file_source(w, "chain-keep", keep_src, f"{base}-raw-keep", **chain)
    got = values(broker.bootstrap, f"{base}-keep", len(LINES))
    assert [json.loads(g.value) for g in got] == [
        {"line": line, "origin": "vltava", "topic": f"{base}-raw-keep"} for line in LINES]

    file_source(w, "chain-skip", skip_src, f"{base}-raw-skip", **chain)
    # the skip connector read its whole file (its committed source offset is at the end) ...
    size = skip_src.stat().st_size

    def offset_at_end():
        status, body = w.get("/connectors/chain-skip/offsets")
        assert status == 200, (status, body)
        return any(o.get("offset", {}).get("position") == size for o in body.get("offsets", []))
    h.wait_until(offset_at_end, 90.0, "chain-skip's source offset at the end of its file")
    # ... and wrote nothing: neither the routed nor the original topic has a record
    for t in (f"{base}-skip", f"{base}-raw-skip"):
        assert h.watermarks(broker.bootstrap, t, 0) == (0, 0), t
    assert h.watermarks(broker.bootstrap, f"{base}-keep", 0)[1] == len(LINES)


def test_key_and_field_transforms_with_schemas(broker, start_worker, tmp_path):
    """ValueToKey + ExtractField$Key make the line the key; Cast, ReplaceField and
    MaskField rework the value's struct and its schema (JsonConverter's envelope)."""
    topic = h.unique("convert-fields")
    h.create_topic(broker.bootstrap, topic)
    src = tmp_path / "in.txt"
    write_lines(src, LINES)
    w = start_worker(broker)
    t = "org.apache.kafka.connect.transforms."
    file_source(w, "fields", src, topic, **{
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "true",
        "transforms": "hoist,addn,key,extract,cast,rename,mask",
        "transforms.hoist.type": t + "HoistField$Value", "transforms.hoist.field": "line",
        "transforms.addn.type": t + "InsertField$Value",
        "transforms.addn.static.field": "n", "transforms.addn.static.value": "5",
        "transforms.key.type": t + "ValueToKey", "transforms.key.fields": "line",
        "transforms.extract.type": t + "ExtractField$Key", "transforms.extract.field": "line",
        "transforms.cast.type": t + "Cast$Value", "transforms.cast.spec": "n:int32",
        "transforms.rename.type": t + "ReplaceField$Value", "transforms.rename.renames": "line:text",
        "transforms.mask.type": t + "MaskField$Value", "transforms.mask.fields": "text",
        "transforms.mask.replacement": "***",
    })
    got = values(broker.bootstrap, topic, len(LINES))
    assert [g.key.decode("utf-8") for g in got] == LINES
    expected = ('{"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"text"},'
                '{"type":"int32","optional":true,"field":"n"}],"optional":false},"payload":{"text":"***","n":5}}')
    assert {g.value.decode() for g in got} == {expected}


def test_bad_transform_configs_get_connects_validation_errors(broker, start_worker):
    w = start_worker(broker)
    config = {"connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector",
              "tasks.max": "1", "file": "/nonexistent", "topic": "t",
              "transforms": "a,b",
              "transforms.a.type": "org.example.NoSuchTransform",
              "transforms.b.type": "org.apache.kafka.connect.transforms.RegexRouter"}
    status, body = w.put("/connector-plugins/FileStreamSourceConnector/config/validate", config)
    assert status == 200, (status, body)
    errors = {c["value"]["name"]: c["value"]["errors"] for c in body["configs"] if c["value"]["errors"]}
    assert errors["transforms.a.type"] == [
        "Invalid value org.example.NoSuchTransform for configuration transforms.a.type: "
        "Class org.example.NoSuchTransform could not be found."]
    assert errors["transforms.b.regex"] == [
        'Missing required configuration "transforms.b.regex" which has no default value.']
    assert body["error_count"] >= 3


def file_sink(worker, name: str, topic: str, path, **extra) -> None:
    config = {"connector.class": "org.apache.kafka.connect.file.FileStreamSinkConnector",
              "tasks.max": "1", "file": str(path), "topics": topic}
    config.update(extra)
    worker.create(name, config)
    worker.wait_running(name, tasks=1)


def wait_file_lines(path, n: int, timeout: float = 90.0) -> list[str]:
    def lines():
        if not path.exists():
            return None
        got = path.read_text(encoding="utf-8").splitlines()
        return got if len(got) >= n else None
    return h.wait_until(lines, timeout, f"{n} lines in {path}")


def test_sinks_read_avro_and_enveloped_json_into_connect_structs(broker, start_worker, tmp_path):
    """The other direction: records produced by confluent-kafka's AvroSerializer and
    JSON envelopes are read by the converters into Structs (the file sink writes
    Struct.toString, which leaves out null fields)."""
    from confluent_kafka.schema_registry.avro import AvroSerializer

    registry = broker.registry_url
    atopic, jtopic = h.unique("convert-avro-in"), h.unique("convert-json-in")
    for t in (atopic, jtopic):
        h.create_topic(broker.bootstrap, t)
    client = SchemaRegistryClient({"url": registry})
    user = json.dumps({"type": "record", "name": "User", "namespace": "com.example", "fields": [
        {"name": "name", "type": "string"},
        {"name": "age", "type": "int"},
        {"name": "email", "type": ["null", "string"], "default": None},
        {"name": "score", "type": "double"}]})
    ser = AvroSerializer(client, user)
    p = h.make_producer(broker.bootstrap)
    users = [{"name": "alice", "age": 30, "email": None, "score": 1.0},
             {"name": "bob", "age": 4, "email": "b@example.com", "score": 2.5}]
    for u in users:
        p.produce(atopic, ser(u, SerializationContext(atopic, MessageField.VALUE)))
    envelope = {"schema": {"type": "struct", "optional": False, "name": "row", "fields": [
        {"type": "int32", "optional": False, "field": "id"},
        {"type": "string", "optional": True, "field": "note"},
        {"type": "array", "items": {"type": "string", "optional": False}, "optional": False, "field": "tags"}]},
        "payload": {"id": 7, "note": None, "tags": ["x", "y"]}}
    p.produce(jtopic, json.dumps(envelope).encode())
    p.produce(jtopic, None)  # a tombstone: null
    assert p.flush(30) == 0

    w = start_worker(broker)
    aout, jout = tmp_path / "avro.txt", tmp_path / "json.txt"
    file_sink(w, "avro-sink", atopic, aout, **{
        "value.converter": "io.confluent.connect.avro.AvroConverter",
        "value.converter.schema.registry.url": registry})
    file_sink(w, "json-sink", jtopic, jout, **{
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "true"})
    assert wait_file_lines(aout, 2) == ["Struct{name=alice,age=30,score=1.0}",
                                        "Struct{name=bob,age=4,email=b@example.com,score=2.5}"]
    assert wait_file_lines(jout, 2) == ["Struct{id=7,tags=[x, y]}", "null"]
