"""Raw-protocol helpers for KIP-932's share coordinator RPCs and share group
admin APIs (no Python client has them): Initialize/Read/Write/Delete
ShareGroupState, ReadShareGroupStateSummary, FindCoordinator v6 and
Describe/Alter/DeleteShareGroupOffsets, all flexible v0 (FindCoordinator v6).
Built on kafka_wire's encoders and Reader."""

from __future__ import annotations

import base64
import itertools

from kafka_wire import (EMPTY_TAGGED_FIELDS, Reader, compact_array, compact_string, connect, int8,
                        int16, int32, int64, request_header_v2, roundtrip)

API_FIND_COORDINATOR = 10
API_DELETE_GROUPS = 42
API_INITIALIZE = 83
API_READ = 84
API_WRITE = 85
API_DELETE = 86
API_SUMMARY = 87
API_DESCRIBE_OFFSETS = 90
API_ALTER_OFFSETS = 91
API_DELETE_OFFSETS = 92

AVAILABLE, ACKNOWLEDGED, ARCHIVED = 0, 2, 4

NONE = 0
NOT_COORDINATOR = 16
COORDINATOR_LOAD_IN_PROGRESS = 14
COORDINATOR_NOT_AVAILABLE = 15
INVALID_REQUEST = 42
FENCED_LEADER_EPOCH = 74
FENCED_STATE_EPOCH = 124
CLUSTER_AUTHORIZATION_FAILED = 31
GROUP_ID_NOT_FOUND = 69
NON_EMPTY_GROUP = 68
UNKNOWN_TOPIC_OR_PARTITION = 3

_ids = itertools.count(1)
T = EMPTY_TAGGED_FIELDS


def uuid_bytes(kafka_uuid: str) -> bytes:
    """Kafka's text form of a uuid (URL-safe base64, no padding) as 16 bytes."""
    return base64.urlsafe_b64decode(kafka_uuid + "=" * (-len(kafka_uuid) % 4))


def uuid_text(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def topic_id(bootstrap: str, topic: str) -> bytes:
    from confluent_kafka import TopicCollection
    from confluent_kafka.admin import AdminClient
    a = AdminClient({"bootstrap.servers": bootstrap})
    desc = a.describe_topics(TopicCollection([topic]))[topic].result(30)
    return uuid_bytes(str(desc.topic_id))


def call(port: int, api_key: int, body: bytes, version: int = 0) -> Reader:
    """One request on a fresh connection; returns a Reader past the v1 response header."""
    cid = next(_ids)
    with connect(port, timeout=60.0) as s:
        payload = roundtrip(s, request_header_v2(api_key, version, cid) + body)
    r = Reader(payload)
    assert r.int32() == cid
    r.tagged_fields()
    return r


def _topics(group: str, items, partition) -> bytes:
    """items: [(topic_id, [partition fields...])] with `partition` encoding one entry."""
    return compact_string(group) + compact_array(
        [tid + compact_array([partition(p) + T for p in parts]) + T for tid, parts in items]) + T


def _batches(batches) -> bytes:
    return compact_array([int64(f) + int64(l) + int8(s) + int16(c) + T for f, l, s, c in batches])


def _results(r: Reader, partition) -> dict:
    """{(topic_id, partition): fields} of a results array."""
    out = {}
    for _ in range(r.uvarint() - 1):
        tid = r.raw(16)
        for _ in range(r.uvarint() - 1):
            p = r.int32()
            out[(tid, p)] = partition(r)
            r.tagged_fields()
        r.tagged_fields()
    r.tagged_fields()
    return out


def _error(r: Reader) -> dict:
    return {"error": r.int16(), "message": r.compact_string()}


def initialize(port: int, group: str, tid: bytes, partition: int, state_epoch: int,
               start_offset: int) -> dict:
    body = _topics(group, [(tid, [(partition, state_epoch, start_offset)])],
                   lambda p: int32(p[0]) + int32(p[1]) + int64(p[2]))
    return _results(call(port, API_INITIALIZE, body), _error)[(tid, partition)]


def read(port: int, group: str, tid: bytes, partition: int, leader_epoch: int) -> dict:
    body = _topics(group, [(tid, [(partition, leader_epoch)])], lambda p: int32(p[0]) + int32(p[1]))

    def part(r):
        out = _error(r)
        out["state_epoch"] = r.int32()
        out["start_offset"] = r.int64()
        batches = []
        for _ in range(r.uvarint() - 1):
            batches.append((r.int64(), r.int64(), r.int8(), r.int16()))
            r.tagged_fields()
        out["batches"] = batches
        return out
    return _results(call(port, API_READ, body), part)[(tid, partition)]


def write(port: int, group: str, tid: bytes, partition: int, state_epoch: int, leader_epoch: int,
          start_offset: int, batches) -> dict:
    body = _topics(group, [(tid, [partition])],
                   lambda p: int32(p) + int32(state_epoch) + int32(leader_epoch) + int64(start_offset)
                   + _batches(batches))
    return _results(call(port, API_WRITE, body), _error)[(tid, partition)]


def delete(port: int, group: str, tid: bytes, partition: int) -> dict:
    body = _topics(group, [(tid, [partition])], int32)
    return _results(call(port, API_DELETE, body), _error)[(tid, partition)]


def summary(port: int, group: str, tid: bytes, partition: int) -> dict:
    body = _topics(group, [(tid, [partition])], lambda p: int32(p) + int32(-1))

    def part(r):
        out = _error(r)
        out["state_epoch"] = r.int32()
        out["leader_epoch"] = r.int32()
        out["start_offset"] = r.int64()
        return out
    return _results(call(port, API_SUMMARY, body), part)[(tid, partition)]


def find_share_coordinator(port: int, group: str, tid: bytes, partition: int) -> dict:
    """FindCoordinator v6, key type 2 (share), key group:topicId:partition."""
    key = f"{group}:{uuid_text(tid)}:{partition}"
    r = call(port, API_FIND_COORDINATOR, int8(2) + compact_array([compact_string(key)]) + T, version=6)
    r.int32()  # throttle
    out = []
    for _ in range(r.uvarint() - 1):
        c = {"key": r.compact_string(), "node_id": r.int32(), "host": r.compact_string(),
             "port": r.int32(), "error": r.int16(), "message": r.compact_string()}
        r.tagged_fields()
        out.append(c)
    assert len(out) == 1, out
    return out[0]


# -- admin APIs -----------------------------------------------------------------


def describe_offsets(port: int, group: str, topics: dict | None) -> dict:
    """DescribeShareGroupOffsets v0: topics {name: [partitions]} or None for all.
    Returns {"error": .., "partitions": {(topic, p): {...}}}."""
    ts = None if topics is None else [compact_string(t) + compact_array([int32(p) for p in ps]) + T
                                      for t, ps in topics.items()]
    body = compact_array([compact_string(group) + compact_array(ts) + T]) + T
    r = call(port, API_DESCRIBE_OFFSETS, body)
    r.int32()
    groups = {}
    for _ in range(r.uvarint() - 1):
        gid = r.compact_string()
        parts = {}
        for _ in range(r.uvarint() - 1):
            name = r.compact_string()
            r.raw(16)
            for _ in range(r.uvarint() - 1):
                p = r.int32()
                parts[(name, p)] = {"start_offset": r.int64(), "leader_epoch": r.int32(),
                                    "error": r.int16(), "message": r.compact_string()}
                r.tagged_fields()
            r.tagged_fields()
        groups[gid] = {"partitions": parts, "error": r.int16(), "message": r.compact_string()}
        r.tagged_fields()
    return groups[group]


def alter_offsets(port: int, group: str, offsets: dict) -> dict:
    """AlterShareGroupOffsets v0: offsets {(topic, p): start}. Returns
    {"error": .., "partitions": {(topic, p): error}}."""
    by_topic: dict = {}
    for (t, p), o in offsets.items():
        by_topic.setdefault(t, []).append((p, o))
    ts = [compact_string(t) + compact_array([int32(p) + int64(o) + T for p, o in ps]) + T
          for t, ps in by_topic.items()]
    r = call(port, API_ALTER_OFFSETS, compact_string(group) + compact_array(ts) + T)
    r.int32()
    out = {"error": r.int16(), "message": r.compact_string(), "partitions": {}}
    for _ in range(r.uvarint() - 1):
        name = r.compact_string()
        r.raw(16)
        for _ in range(r.uvarint() - 1):
            p = r.int32()
            out["partitions"][(name, p)] = r.int16()
            r.compact_string()
            r.tagged_fields()
        r.tagged_fields()
    return out


def delete_offsets(port: int, group: str, topics: list[str]) -> dict:
    """DeleteShareGroupOffsets v0. Returns {"error": .., "topics": {name: error}}."""
    r = call(port, API_DELETE_OFFSETS,
             compact_string(group) + compact_array([compact_string(t) + T for t in topics]) + T)
    r.int32()
    out = {"error": r.int16(), "message": r.compact_string(), "topics": {}}
    for _ in range(r.uvarint() - 1):
        name = r.compact_string()
        r.raw(16)
        out["topics"][name] = r.int16()
        r.compact_string()
        r.tagged_fields()
    return out


def delete_groups(port: int, groups: list[str]) -> dict:
    """DeleteGroups v2: {group: error}."""
    r = call(port, API_DELETE_GROUPS, compact_array([compact_string(g) for g in groups]) + T, version=2)
    r.int32()
    out = {}
    for _ in range(r.uvarint() - 1):
        g = r.compact_string()
        out[g] = r.int16()
        r.tagged_fields()
    return out
