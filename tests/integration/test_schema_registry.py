"""The schema registry served by `vltava server` (schema.registry.listeners), driven by
confluent-kafka's SchemaRegistryClient with its Avro, JSON Schema and Protobuf
serializers and by raw HTTP: registering and evolving schemas, the same schema keeping
its id, soft and permanent deletes with ids staying reserved, lookups, references,
compatibility checks (409 with the reasons), /config, /mode (READONLY, IMPORT),
/contexts, Confluent's error bodies and codes, HTTP basic with the SASL users, the
state after a restart, and in a 3-node cluster the writer's node killed: writes go on
through a survivor and no id is used twice.

Tests that refuse an incompatible or malformed schema need the real formats
(crates/schema avro.rs/json.rs/protobuf.rs); with the interface stubs every schema
parses and is compatible."""

from __future__ import annotations

import base64
import json
import signal
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.schema_registry.error import SchemaRegistryError
from confluent_kafka.schema_registry.json_schema import JSONDeserializer, JSONSerializer
from confluent_kafka.schema_registry.protobuf import ProtobufDeserializer, ProtobufSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

import cluster as cl
from conftest import free_port
from helpers import create_topic, unique, wait_until

WAIT_S = 60  # a deadline, not a verdict
CT = "application/vnd.schemaregistry.v1+json"

USER_V1 = json.dumps({
    "type": "record", "name": "User", "namespace": "com.example",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"}],
})
# BACKWARD-compatible with v1: a new field with a default
USER_V2 = json.dumps({
    "type": "record", "name": "User", "namespace": "com.example",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"},
               {"name": "email", "type": ["null", "string"], "default": None}],
})
# not BACKWARD-compatible with v2: a new field without a default
USER_BAD = json.dumps({
    "type": "record", "name": "User", "namespace": "com.example",
    "fields": [{"name": "name", "type": "string"}, {"name": "age", "type": "int"},
               {"name": "email", "type": ["null", "string"], "default": None},
               {"name": "country", "type": "string"}],
})


def avro_record(name: str, *fields: str) -> str:
    return json.dumps({"type": "record", "name": name, "namespace": "com.example",
                       "fields": [{"name": f, "type": "string"} for f in fields]})


# ------------------------------------------------------------------ raw HTTP


def http(method: str, url: str, body=None, headers: dict | None = None, raw: bytes | None = None):
    """(status, decoded JSON body or text, headers) of one request; never raises on 4xx/5xx."""
    data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Content-Type", CT)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            status, text, hdrs = resp.status, resp.read().decode(), resp.headers
    except urllib.error.HTTPError as e:
        status, text, hdrs = e.code, e.read().decode(), e.headers
    try:
        return status, json.loads(text), hdrs
    except ValueError:
        return status, text, hdrs


class Registry:
    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def __call__(self, method: str, path: str, body=None, **kw):
        status, out, _ = http(method, self.url + path, body, **kw)
        return status, out

    def ok(self, method: str, path: str, body=None, **kw):
        status, out = self(method, path, body, **kw)
        assert status == 200, f"{method} {path} -> {status} {out}"
        return out

    def error(self, method: str, path: str, body=None, *, status: int, code: int, **kw):
        got_status, out = self(method, path, body, **kw)
        assert (got_status, out.get("error_code") if isinstance(out, dict) else out) == (status, code), \
            f"{method} {path} -> {got_status} {out}, expected {status}/{code}"
        assert isinstance(out.get("message"), str) and out["message"], out
        return out["message"]

    def register(self, subject: str, schema: str, schema_type: str | None = None, **extra) -> int:
        body = {"schema": schema, **extra}
        if schema_type:
            body["schemaType"] = schema_type
        return self.ok("POST", f"/subjects/{subject}/versions", body)["id"]


@pytest.fixture
def registry(broker) -> Registry:
    return Registry(broker.registry_url)


def client(url: str, **conf) -> SchemaRegistryClient:
    return SchemaRegistryClient({"url": url, **conf})


def consume_all(bootstrap: str, topic: str, n: int) -> list:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": unique("g"), "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    got = []
    try:
        wait_until(lambda: (got.extend(m for m in c.consume(n, 1.0) if not m.error()) or len(got) >= n),
                   WAIT_S, f"{n} records of {topic}")
    finally:
        c.close()
    return got


def produce(bootstrap: str, topic: str, values: list[bytes]) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for v in values:
        p.produce(topic, value=v)
    assert p.flush(30) == 0


def wire_id(payload: bytes) -> int:
    assert payload[0] == 0, "Confluent's wire format starts with magic byte 0"
    return int.from_bytes(payload[1:5], "big")


# ------------------------------------------------------------------ serializers


def test_avro_serializer_round_trip_through_a_topic(broker):
    topic = unique("avro")
    create_topic(broker.bootstrap, topic)
    sr = client(broker.registry_url)
    ser = AvroSerializer(sr, USER_V1)
    ctx = SerializationContext(topic, MessageField.VALUE)
    records = [{"name": f"n{i}", "age": i} for i in range(5)]
    produce(broker.bootstrap, topic, [ser(r, ctx) for r in records])
    # the serializer registered the schema under TopicNameStrategy's subject
    assert f"{topic}-value" in sr.get_subjects()
    latest = sr.get_latest_version(f"{topic}-value")
    assert latest.version == 1
    # a fresh client (no cache) reads them back through the registry
    de = AvroDeserializer(client(broker.registry_url))
    msgs = consume_all(broker.bootstrap, topic, 5)
    assert {wire_id(m.value()) for m in msgs} == {latest.schema_id}
    assert [de(m.value(), ctx) for m in msgs] == records
    # evolve: v2 adds a field with a default; old records read with the new reader
    ser2 = AvroSerializer(sr, USER_V2)
    produce(broker.bootstrap, topic, [ser2({"name": "x", "age": 1, "email": "x@y"}, ctx)])
    assert sr.get_versions(f"{topic}-value") == [1, 2]
    msgs = consume_all(broker.bootstrap, topic, 6)
    assert de(msgs[5].value(), ctx) == {"name": "x", "age": 1, "email": "x@y"}
    # (a fresh client: the first one caches the latest version)
    assert wire_id(msgs[5].value()) == client(broker.registry_url).get_latest_version(f"{topic}-value").schema_id \
        != latest.schema_id


def test_json_serializer_round_trip(broker):
    topic = unique("json")
    create_topic(broker.bootstrap, topic)
    schema = json.dumps({
        "$schema": "http://json-schema.org/draft-07/schema#", "title": "Order", "type": "object",
        "properties": {"id": {"type": "integer"}, "item": {"type": "string"}},
        "required": ["id"],
    })
    sr = client(broker.registry_url)
    ctx = SerializationContext(topic, MessageField.VALUE)
    ser = JSONSerializer(schema, sr)
    orders = [{"id": i, "item": f"thing-{i}"} for i in range(3)]
    produce(broker.bootstrap, topic, [ser(o, ctx) for o in orders])
    registered = sr.get_latest_version(f"{topic}-value")
    assert registered.schema.schema_type == "JSON"
    status, out, _ = http("GET", f"{broker.registry_url}/schemas/ids/{registered.schema_id}")
    assert status == 200 and out["schemaType"] == "JSON"
    de = JSONDeserializer(schema)
    assert [de(m.value(), ctx) for m in consume_all(broker.bootstrap, topic, 3)] == orders


def protobuf_message_class():
    """A message class built at run time (no protoc here): package vltava.test,
    message Reading { string sensor = 1; double value = 2; }."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
    fdp = descriptor_pb2.FileDescriptorProto(name=f"reading_{unique('p').replace('-', '_')}.proto",
                                             package="vltava.test", syntax="proto3")
    msg = fdp.message_type.add(name="Reading")
    msg.field.add(name="sensor", number=1, type=descriptor_pb2.FieldDescriptorProto.TYPE_STRING,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    msg.field.add(name="value", number=2, type=descriptor_pb2.FieldDescriptorProto.TYPE_DOUBLE,
                  label=descriptor_pb2.FieldDescriptorProto.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("vltava.test.Reading"))


def test_protobuf_serializer_round_trip(broker):
    topic = unique("proto")
    create_topic(broker.bootstrap, topic)
    Reading = protobuf_message_class()
    sr = client(broker.registry_url)
    ctx = SerializationContext(topic, MessageField.VALUE)
    ser = ProtobufSerializer(Reading, sr, {"use.deprecated.format": False})
    readings = [Reading(sensor=f"s{i}", value=i / 2) for i in range(3)]
    produce(broker.bootstrap, topic, [ser(r, ctx) for r in readings])
    registered = sr.get_latest_version(f"{topic}-value")
    assert registered.schema.schema_type == "PROTOBUF"
    de = ProtobufDeserializer(Reading, {"use.deprecated.format": False})
    got = [de(m.value(), ctx) for m in consume_all(broker.bootstrap, topic, 3)]
    assert [(r.sensor, r.value) for r in got] == [(r.sensor, r.value) for r in readings]


def test_protobuf_text_is_served_serialized_when_asked(registry):
    """A .proto registered as text (as Java clients do) comes back as the base64 of
    its FileDescriptorProto with ?format=serialized, which confluent-kafka's Python
    client asks for; without it, the text as stored."""
    import base64
    from google.protobuf import descriptor_pb2
    subject = unique("proto-text")
    text = 'syntax = "proto3";\npackage shop;\nmessage Order { int64 id = 1; string item = 2; }\n'
    sid = registry.ok("POST", f"/subjects/{subject}/versions", {"schema": text, "schemaType": "PROTOBUF"})["id"]
    assert "message Order" in registry.ok("GET", f"/schemas/ids/{sid}")["schema"]
    sr = client(registry.url)
    for got in (sr.get_schema(sid, fmt="serialized"), sr.get_version(subject, 1, fmt="serialized").schema):
        fdp = descriptor_pb2.FileDescriptorProto.FromString(base64.b64decode(got.schema_str))
        assert fdp.package == "shop" and [m.name for m in fdp.message_type] == ["Order"], fdp
        assert [(f.name, f.number) for f in fdp.message_type[0].field] == [("id", 1), ("item", 2)]
    # an Avro schema ignores the format
    avro = unique("avro-fmt")
    aid = registry.ok("POST", f"/subjects/{avro}/versions", {"schema": '"string"'})["id"]
    assert registry.ok("GET", f"/schemas/ids/{aid}?format=serialized")["schema"] == '"string"'


# ------------------------------------------------------------------ subjects and ids


def test_same_schema_same_id_versions_and_ids_endpoints(registry):
    s1, s2 = unique("s"), unique("s")
    id1 = registry.register(s1, USER_V1)
    assert registry.register(s1, USER_V1) == id1, "registering again returns the same id"
    assert registry.ok("GET", f"/subjects/{s1}/versions") == [1]
    id2 = registry.register(s1, USER_V2)
    assert id2 != id1
    assert registry.ok("GET", f"/subjects/{s1}/versions") == [1, 2]
    # the same schema under another subject keeps its id
    assert registry.register(s2, USER_V1) == id1
    v = registry.ok("GET", f"/subjects/{s1}/versions/latest")
    assert (v["subject"], v["version"], v["id"]) == (s1, 2, id2)
    assert json.loads(v["schema"]) == json.loads(USER_V2)
    assert "schemaType" not in v, "AVRO is the default type: absent, as Confluent answers"
    assert registry.ok("GET", f"/subjects/{s1}/versions/1")["id"] == id1
    assert registry.ok("GET", f"/subjects/{s1}/versions/1/schema") == json.loads(USER_V1)  # the raw schema
    assert json.loads(registry.ok("GET", f"/schemas/ids/{id1}")["schema"]) == json.loads(USER_V1)
    assert registry.ok("GET", f"/schemas/ids/{id1}/schema") == json.loads(USER_V1)
    assert sorted(registry.ok("GET", f"/schemas/ids/{id1}/subjects")) == sorted([s1, s2])
    assert sorted(registry.ok("GET", f"/schemas/ids/{id1}/versions"), key=lambda x: x["subject"]) == \
        sorted([{"subject": s1, "version": 1}, {"subject": s2, "version": 1}], key=lambda x: x["subject"])
    assert {s1, s2} <= set(registry.ok("GET", "/subjects"))
    # lookup under a subject
    found = registry.ok("POST", f"/subjects/{s1}", {"schema": USER_V2})
    assert (found["subject"], found["version"], found["id"]) == (s1, 2, id2)
    registry.error("POST", f"/subjects/{s2}", {"schema": USER_V2}, status=404, code=40403)
    registry.error("POST", f"/subjects/{unique('none')}", {"schema": USER_V1}, status=404, code=40401)
    # the client library agrees
    sr = client(registry.url)
    assert sr.register_schema(s1, Schema(USER_V1, "AVRO")) == id1
    assert sr.lookup_schema(s1, Schema(USER_V1, "AVRO")).version == 1


def test_schemas_list_types_root_and_contexts(registry):
    a, b = unique("lst"), f":.ctx1:{unique('c')}"
    registry.register(a, avro_record("A", "x"))
    registry.register(b, avro_record("B", "y"))
    assert registry.ok("GET", "/") == {}
    assert sorted(registry.ok("GET", "/schemas/types")) == ["AVRO", "JSON", "PROTOBUF"]
    listed = registry.ok("GET", f"/schemas?subjectPrefix={a}")
    assert [(x["subject"], x["version"]) for x in listed] == [(a, 1)]
    assert registry.ok("GET", f"/subjects?subjectPrefix={a}") == [a]
    assert registry.ok("GET", "/contexts") == [".", ".ctx1"]
    status, _, headers = http("GET", registry.url + "/subjects")
    assert status == 200 and headers["Content-Type"] == CT
    # application/json is accepted as well
    status, out, _ = http("POST", f"{registry.url}/subjects/{a}/versions", {"schema": avro_record("A", "x")},
                          headers={"Content-Type": "application/json"})
    assert status == 200 and isinstance(out["id"], int)


def test_error_codes_and_bodies(registry):
    s = unique("err")
    registry.register(s, USER_V1)
    message = registry.error("GET", "/subjects/nope-x/versions", status=404, code=40401)
    assert message == "Subject 'nope-x' not found."
    registry.error("GET", f"/subjects/{s}/versions/7", status=404, code=40402)
    registry.error("GET", "/schemas/ids/987654", status=404, code=40403)
    registry.error("GET", f"/subjects/{s}/versions/abc", status=422, code=42202)
    registry.error("GET", f"/subjects/{s}/versions/0", status=422, code=42202)
    registry.error("POST", f"/subjects/{s}/versions", {"schema": USER_V1, "schemaType": "XML"}, status=422, code=42201)
    registry.error("POST", f"/subjects/{s}/versions", {"schema": ""}, status=422, code=42201)
    status, out, _ = http("POST", f"{registry.url}/subjects/{s}/versions", raw=b'{"schema": ')
    assert status == 400 and out["error_code"] == 400 and out["message"], out
    status, out, _ = http("GET", registry.url + "/no/such/path")
    assert status == 404 and out["error_code"] == 404
    # the client raises with Confluent's codes
    with pytest.raises(SchemaRegistryError) as e:
        client(registry.url).get_latest_version("missing-subject")
    assert (e.value.http_status_code, e.value.error_code) == (404, 40401)


def test_soft_and_permanent_deletes_keep_ids_reserved(registry):
    s = unique("del")
    id1 = registry.register(s, USER_V1)
    id2 = registry.register(s, USER_V2)
    # permanent before soft: refused
    registry.error("DELETE", f"/subjects/{s}/versions/1?permanent=true", status=404, code=40407)
    assert registry.ok("DELETE", f"/subjects/{s}/versions/1") == 1
    registry.error("DELETE", f"/subjects/{s}/versions/1", status=404, code=40406)
    assert registry.ok("GET", f"/subjects/{s}/versions") == [2]
    assert registry.ok("GET", f"/subjects/{s}/versions?deleted=true") == [1, 2]
    registry.error("GET", f"/subjects/{s}/versions/1", status=404, code=40402)
    assert registry.ok("GET", f"/subjects/{s}/versions/1?deleted=true")["id"] == id1
    assert registry.ok("GET", f"/schemas/ids/{id1}")["schema"], "a soft-deleted version keeps its id's schema"
    # hard delete: the version is gone, its id is not given to another schema
    assert registry.ok("DELETE", f"/subjects/{s}/versions/1?permanent=true") == 1
    assert registry.ok("GET", f"/subjects/{s}/versions?deleted=true") == [2]
    registry.error("GET", f"/schemas/ids/{id1}", status=404, code=40403)
    id3 = registry.register(unique("other"), avro_record("Fresh", "f"))
    assert id3 > max(id1, id2), "a new schema never takes a deleted schema's id"
    # the same schema registered again gets its old id back, as a new version
    assert registry.register(s, USER_V1) == id1
    assert registry.ok("GET", f"/subjects/{s}/versions") == [2, 3]
    # subject deletes: permanent only after soft
    registry.error("DELETE", f"/subjects/{s}?permanent=true", status=404, code=40405)
    assert registry.ok("DELETE", f"/subjects/{s}") == [2, 3]
    assert s not in registry.ok("GET", "/subjects")
    assert s in registry.ok("GET", "/subjects?deleted=true")
    registry.error("GET", f"/subjects/{s}/versions", status=404, code=40401)
    registry.error("DELETE", f"/subjects/{s}", status=404, code=40404)
    assert registry.ok("DELETE", f"/subjects/{s}?permanent=true") == [2, 3]
    assert s not in registry.ok("GET", "/subjects?deleted=true")
    registry.error("DELETE", f"/subjects/{s}", status=404, code=40401)
    # a subject deleted for good starts over at version 1, with the same ids
    assert registry.register(s, USER_V2) == id2
    assert registry.ok("GET", f"/subjects/{s}/versions") == [1]


def test_references(registry):
    base, user = unique("addr"), unique("person")
    address = avro_record("Address", "street", "city")
    address_id = registry.register(base, address)
    person = json.dumps({"type": "record", "name": "Person", "namespace": "com.example",
                         "fields": [{"name": "name", "type": "string"},
                                    {"name": "home", "type": "com.example.Address"}]})
    refs = [{"name": "com.example.Address", "subject": base, "version": 1}]
    person_id = registry.register(user, person, references=refs)
    assert person_id != address_id
    got = registry.ok("GET", f"/schemas/ids/{person_id}")
    assert got["references"] == refs
    assert registry.ok("GET", f"/subjects/{base}/versions/1/referencedby") == [person_id]
    # a referenced version cannot be deleted
    registry.error("DELETE", f"/subjects/{base}/versions/1", status=422, code=42206)
    registry.error("DELETE", f"/subjects/{base}", status=422, code=42206)
    # a reference to nothing is an invalid schema
    registry.error("POST", f"/subjects/{unique('x')}/versions",
                   {"schema": person, "references": [{"name": "com.example.Address", "subject": "nope", "version": 1}]},
                   status=422, code=42201)


def test_config_endpoints(registry):
    s = unique("cfg")
    assert registry.ok("GET", "/config") == {"compatibilityLevel": "BACKWARD"}
    assert registry.ok("PUT", "/config", {"compatibility": "FULL"}) == {"compatibility": "FULL"}
    assert registry.ok("GET", "/config") == {"compatibilityLevel": "FULL"}
    registry.error("PUT", "/config", {"compatibility": "SIDEWAYS"}, status=422, code=42203)
    registry.error("GET", f"/config/{s}", status=404, code=40408)
    assert registry.ok("GET", f"/config/{s}?defaultToGlobal=true") == {"compatibilityLevel": "FULL"}
    assert registry.ok("PUT", f"/config/{s}", {"compatibility": "NONE"}) == {"compatibility": "NONE"}
    assert registry.ok("GET", f"/config/{s}") == {"compatibilityLevel": "NONE"}
    # the client library's calls
    sr = client(registry.url)
    assert sr.get_compatibility(s) == "NONE"
    sr.set_compatibility(s, "FORWARD_TRANSITIVE")
    assert sr.get_compatibility(s) == "FORWARD_TRANSITIVE"
    assert registry.ok("DELETE", f"/config/{s}") == {"compatibilityLevel": "FORWARD_TRANSITIVE"}
    registry.error("GET", f"/config/{s}", status=404, code=40408)
    assert registry.ok("DELETE", "/config") == {"compatibilityLevel": "FULL"}
    assert registry.ok("GET", "/config") == {"compatibilityLevel": "BACKWARD"}


def test_mode_readonly_and_import(registry):
    s, other = unique("mode"), unique("mode")
    registry.register(s, USER_V1)
    assert registry.ok("GET", "/mode") == {"mode": "READWRITE"}
    registry.error("GET", f"/mode/{s}", status=404, code=40409)
    assert registry.ok("GET", f"/mode/{s}?defaultToGlobal=true") == {"mode": "READWRITE"}
    assert registry.ok("PUT", f"/mode/{s}", {"mode": "READONLY"}) == {"mode": "READONLY"}
    registry.error("POST", f"/subjects/{s}/versions", {"schema": USER_V2}, status=422, code=42205)
    registry.error("DELETE", f"/subjects/{s}/versions/1", status=422, code=42205)
    registry.register(other, USER_V2)  # other subjects still take writes
    assert registry.ok("DELETE", f"/mode/{s}") == {"mode": "READONLY"}
    assert registry.register(s, USER_V2) > 0
    registry.error("PUT", "/mode", {"mode": "SOMETIMES"}, status=422, code=42204)
    # IMPORT only into an empty registry unless forced
    registry.error("PUT", "/mode", {"mode": "IMPORT"}, status=422, code=42205)
    assert registry.ok("PUT", "/mode?force=true", {"mode": "IMPORT"}) == {"mode": "IMPORT"}
    imported = unique("imp")
    schema = avro_record("Imported", "a")
    assert registry.ok("POST", f"/subjects/{imported}/versions", {"schema": schema, "id": 1000, "version": 5}) == {"id": 1000}
    got = registry.ok("GET", f"/subjects/{imported}/versions/5")
    assert (got["id"], got["version"]) == (1000, 5)
    # an id taken by another schema cannot be overwritten
    registry.error("POST", f"/subjects/{imported}/versions", {"schema": avro_record("Else", "b"), "id": 1000, "version": 6},
                   status=422, code=42207)
    assert registry.ok("PUT", "/mode", {"mode": "READWRITE"}) == {"mode": "READWRITE"}
    # ids given outside IMPORT are refused; new ids go on after the imported one
    registry.error("POST", f"/subjects/{imported}/versions", {"schema": avro_record("Imported2", "c"), "id": 2000},
                   status=422, code=42205)
    assert registry.register(unique("after"), avro_record("After", "z")) > 1000


def test_readonly_global_mode_refuses_every_write(registry):
    s = unique("ro")
    registry.register(s, USER_V1)
    registry.ok("PUT", "/mode", {"mode": "READONLY"})
    registry.error("POST", f"/subjects/{unique('new')}/versions", {"schema": USER_V1}, status=422, code=42205)
    registry.error("DELETE", f"/subjects/{s}", status=422, code=42205)
    assert registry.ok("GET", f"/subjects/{s}/versions") == [1], "reads go on"
    registry.ok("PUT", "/mode", {"mode": "READWRITE"})
    assert registry.ok("DELETE", f"/subjects/{s}") == [1]


def test_compatibility_endpoint_and_incompatible_registration(registry):
    """Needs the real Avro rules (crates/schema/src/avro.rs)."""
    s = unique("compat")
    registry.register(s, USER_V1)
    registry.register(s, USER_V2)
    assert registry.ok("POST", f"/compatibility/subjects/{s}/versions/latest", {"schema": USER_V2}) == {"is_compatible": True}
    out = registry.ok("POST", f"/compatibility/subjects/{s}/versions/latest?verbose=true", {"schema": USER_BAD})
    assert out["is_compatible"] is False and out["messages"], out
    assert registry.ok("POST", f"/compatibility/subjects/{s}/versions/1", {"schema": USER_V2})["is_compatible"] is True
    registry.error("POST", f"/compatibility/subjects/{s}/versions/9", {"schema": USER_V2}, status=404, code=40402)
    registry.error("POST", f"/compatibility/subjects/{unique('none')}/versions/1", {"schema": USER_V2},
                   status=404, code=40401)
    # registering it is refused with the reasons
    status, out = registry("POST", f"/subjects/{s}/versions", {"schema": USER_BAD})
    assert status == 409 and out["error_code"] == 409, out
    assert "incompatible" in out["message"] and "country" in out["message"], out
    assert registry.ok("GET", f"/subjects/{s}/versions") == [1, 2]
    # with the subject at NONE it registers
    registry.ok("PUT", f"/config/{s}", {"compatibility": "NONE"})
    assert registry.register(s, USER_BAD) > 0
    # FORWARD: removing a field without default from the reader's view is fine, adding a required one is not
    f = unique("fwd")
    registry.ok("PUT", f"/config/{f}", {"compatibility": "FORWARD"})
    registry.register(f, avro_record("F", "a", "b"))
    status, out = registry("POST", f"/subjects/{f}/versions", {"schema": avro_record("F", "a")})
    assert status == 409, (status, out)
    sr = client(registry.url)
    with pytest.raises(SchemaRegistryError) as e:
        sr.register_schema(f, Schema(avro_record("F", "a"), "AVRO"))
    assert e.value.http_status_code == 409


def test_invalid_schemas_are_422(registry):
    """Needs the real parsers (crates/schema)."""
    s = unique("bad")
    registry.error("POST", f"/subjects/{s}/versions", {"schema": '{"type": "record", "name": "X"}'}, status=422, code=42201)
    registry.error("POST", f"/subjects/{s}/versions", {"schema": "not json at all"}, status=422, code=42201)
    registry.error("POST", f"/subjects/{s}/versions", {"schema": '{"type": 12}', "schemaType": "JSON"},
                   status=422, code=42201)
    registry.error("POST", f"/subjects/{s}/versions", {"schema": "message {", "schemaType": "PROTOBUF"},
                   status=422, code=42201)
    registry.error("GET", f"/subjects/{s}/versions", status=404, code=40401)


def test_normalize_and_lookup_ignore_formatting(registry):
    """Needs the real canonical and normalized forms (crates/schema)."""
    s = unique("norm")
    pretty = json.dumps(json.loads(USER_V1), indent=2)
    sid = registry.ok("POST", f"/subjects/{s}/versions?normalize=true", {"schema": USER_V1})["id"]
    assert registry.ok("POST", f"/subjects/{s}/versions?normalize=true", {"schema": pretty})["id"] == sid
    assert registry.ok("GET", f"/subjects/{s}/versions") == [1]
    assert registry.ok("POST", f"/subjects/{s}?normalize=true", {"schema": pretty})["id"] == sid


# ------------------------------------------------------------------ durability


def test_state_after_restart(broker):
    r = Registry(broker.registry_url)
    s = unique("rst")
    id1 = r.register(s, USER_V1)
    id2 = r.register(s, USER_V2)
    r.ok("PUT", f"/config/{s}", {"compatibility": "FULL"})
    r.ok("DELETE", f"/subjects/{s}/versions/1")
    broker.stop()
    broker.start()
    r = Registry(broker.registry_url)
    wait_until(lambda: r("GET", f"/schemas/ids/{id2}")[0] == 200, WAIT_S, "the registry's state back after the restart")
    assert r.ok("GET", f"/subjects/{s}/versions") == [2]
    assert r.ok("GET", f"/subjects/{s}/versions?deleted=true") == [1, 2]
    assert r.ok("GET", f"/config/{s}") == {"compatibilityLevel": "FULL"}
    assert r.ok("GET", f"/schemas/ids/{id1}")["schema"]
    assert r.register(unique("new"), avro_record("AfterRestart", "q")) > id2


def test_basic_auth_with_sasl_users(start_broker):
    sasl_port = free_port()
    jaas = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
            'user_alice="alice-secret";')
    b = start_broker({
        "listeners": f"PLAINTEXT://127.0.0.1:{free_port()},SASL_PLAINTEXT://127.0.0.1:{sasl_port}",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
        "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256",
        "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
        "schema.registry.authentication": "basic",
    })
    url = b.registry_url
    status, out, headers = http("GET", url + "/subjects")
    assert (status, out["error_code"]) == (401, 401) and headers["WWW-Authenticate"].startswith("Basic")
    bad = "Basic " + base64.b64encode(b"alice:wrong").decode()
    assert http("GET", url + "/subjects", headers={"Authorization": bad})[0] == 401
    good = "Basic " + base64.b64encode(b"alice:alice-secret").decode()
    assert http("GET", url + "/subjects", headers={"Authorization": good})[:2] == (200, [])
    # a SCRAM user created through the Kafka API logs in too
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    upsert = UserScramCredentialUpsertion("carol", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096),
                                          b"carol-secret")
    for f in a.alter_user_scram_credentials([upsert]).values():
        f.result(30)
    carol = "Basic " + base64.b64encode(b"carol:carol-secret").decode()
    wait_until(lambda: http("GET", url + "/subjects", headers={"Authorization": carol})[0] == 200, WAIT_S,
               "carol's SCRAM credential in the registry")
    sr = client(url, **{"basic.auth.user.info": "alice:alice-secret"})
    s = unique("auth")
    assert sr.register_schema(s, Schema(USER_V1, "AVRO")) > 0
    with pytest.raises(SchemaRegistryError) as e:
        client(url, **{"basic.auth.user.info": "alice:nope"}).get_subjects()
    assert e.value.http_status_code == 401


# ------------------------------------------------------------------ cluster


def test_three_nodes_writer_killed_ids_stay_unique(tmp_path):
    ports = {i: free_port() for i in (1, 2, 3)}
    node_settings = {i: {"schema.registry.listeners": f"http://127.0.0.1:{p}"} for i, p in ports.items()}
    with cl.Cluster(tmp_path / "c", n=3, node_settings=node_settings) as c:
        regs = {i: Registry(f"http://127.0.0.1:{p}") for i, p in ports.items()}
        ids: dict[str, int] = {}
        # every node takes writes (the writer's own, or forwarded to it)
        for i, r in regs.items():
            for k in range(2):
                s = f"node{i}-{k}"
                ids[s] = wait_until(lambda: _try_register(r, s, avro_record(f"N{i}x{k}", "a")), WAIT_S,
                                    f"registering {s} through node {i}")
        assert len(set(ids.values())) == len(ids), f"ids reused: {ids}"
        # any node answers reads once it has applied the writes
        for r in regs.values():
            for s, sid in ids.items():
                wait_until(lambda: r("GET", f"/subjects/{s}/versions/latest")[1].get("id") == sid, WAIT_S,
                           f"{s} on {r.url}")
        writer = c.leader_of("_schemas", 0)
        assert writer in regs
        c.kill(writer, signal.SIGKILL)
        survivors = [i for i in regs if i != writer]
        for n, i in enumerate(survivors):
            s = f"after-{n}"
            ids[s] = wait_until(lambda: _try_register(regs[i], s, avro_record(f"After{n}", "b")), WAIT_S,
                                f"registering {s} through survivor {i} after the writer {writer} died")
        assert len(set(ids.values())) == len(ids), f"an id was used twice after the failover: {ids}"
        for i in survivors:
            for s, sid in ids.items():
                wait_until(lambda: regs[i]("GET", f"/subjects/{s}/versions/latest")[1].get("id") == sid, WAIT_S,
                           f"{s} on node {i}")
        # the killed node comes back with the whole state
        c.start_node(writer)
        for s, sid in ids.items():
            wait_until(lambda: regs[writer]("GET", f"/subjects/{s}/versions/latest")[1].get("id") == sid, WAIT_S,
                       f"{s} on the restarted node {writer}")


def _try_register(r: Registry, subject: str, schema: str):
    """The id, or None while the registry has no writer (50003, 500s, a dead node)."""
    try:
        status, out = r("POST", f"/subjects/{subject}/versions", {"schema": schema})
    except OSError:
        return None
    if status == 200:
        return out["id"]
    assert status >= 500, f"registering {subject}: {status} {out}"
    return None


def test_node_without_a_replica_reads_from_the_leader(tmp_path):
    """Four nodes: `_schemas` has three replicas, the fourth node follows it with fetches
    from the leader (and forwards its writes)."""
    ports = {i: free_port() for i in (1, 2, 3, 4)}
    node_settings = {i: {"schema.registry.listeners": f"http://127.0.0.1:{p}"} for i, p in ports.items()}
    with cl.Cluster(tmp_path / "c", n=4, node_settings=node_settings) as c:
        regs = {i: Registry(f"http://127.0.0.1:{p}") for i, p in ports.items()}
        first = wait_until(lambda: _try_register(regs[1], "first", avro_record("First", "a")), WAIT_S,
                           "the first registration")
        replicas = wait_until(lambda: c.replicas_of("_schemas", 0) or None, WAIT_S, "_schemas' replicas")
        assert len(replicas) == 3, replicas
        (outsider,) = [i for i in regs if i not in replicas]
        sid = wait_until(lambda: _try_register(regs[outsider], "second", avro_record("Second", "b")), WAIT_S,
                         f"registering through node {outsider}, which holds no replica")
        assert sid != first
        for s, want in (("first", first), ("second", sid)):
            wait_until(lambda: regs[outsider]("GET", f"/subjects/{s}/versions/latest")[1].get("id") == want, WAIT_S,
                       f"{s} read on node {outsider}")
