"""Well-formed requests for the APIs the clients above use only indirectly:
DescribeCluster and OffsetForLeaderEpoch, encoded by hand."""

import time

import pytest

import helpers as h
import kafka_wire as w

UNKNOWN_TOPIC_OR_PARTITION = 3
FENCED_LEADER_EPOCH = 74
UNKNOWN_LEADER_EPOCH = 75


def test_describe_cluster(module_broker_alive):
    b = module_broker_alive
    with w.connect(b.port) as s:
        r = w.parse_describe_cluster_v0(w.roundtrip(s, w.describe_cluster_request_v0(9)))
    assert r["correlation_id"] == 9
    assert r["remaining"] == 0
    assert r["error_code"] == 0, r
    assert r["controller_id"] == 1
    assert [(x["broker_id"], x["host"], x["port"]) for x in r["brokers"]] == [
        (1, "127.0.0.1", b.port)]
    # the same cluster id as in Metadata
    md = h.admin(b.bootstrap).list_topics(timeout=10)
    assert r["cluster_id"] and r["cluster_id"] == md.cluster_id
    assert md.controller_id == 1


def test_cluster_id_stable_across_restart(start_broker):
    b = start_broker()
    first = h.admin(b.bootstrap).list_topics(timeout=10).cluster_id
    assert first
    assert b.stop() == 0
    b.start()
    assert h.admin(b.bootstrap).list_topics(timeout=10).cluster_id == first


def _leader_epoch(bootstrap, topic, partition):
    from kafka import KafkaAdminClient
    a = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        [t] = a.describe_topics([topic])
        [p] = [p for p in t["partitions"] if p["partition_index"] == partition]
        return p["leader_epoch"]
    finally:
        a.close()


def test_offset_for_leader_epoch(module_broker_alive):
    b = module_broker_alive
    topic = h.unique("ofle")
    h.create_topic(b.bootstrap, topic, 2)
    p = h.make_producer(b.bootstrap)
    assert h.produce_all(p, topic, [h.Rec(None, b"v%d" % i, None, None) for i in range(7)],
                         partition=0).errors() == {}
    epoch = _leader_epoch(b.bootstrap, topic, 0)
    assert epoch >= 0
    cases = [(0, -1, epoch), (1, epoch, epoch)]
    with w.connect(b.port) as s:
        corr, res = w.parse_offset_for_leader_epoch_v3(
            w.roundtrip(s, w.offset_for_leader_epoch_request_v3(21, topic, cases)))
        assert corr == 21
        assert res[(topic, 0)] == (0, epoch, 7), res
        assert res[(topic, 1)] == (0, epoch, 0), res

        _, res = w.parse_offset_for_leader_epoch_v3(
            w.roundtrip(s, w.offset_for_leader_epoch_request_v3(22, topic, [(0, epoch + 1, epoch)])))
        assert res[(topic, 0)][0] == UNKNOWN_LEADER_EPOCH, res

        if epoch > 0:
            _, res = w.parse_offset_for_leader_epoch_v3(w.roundtrip(
                s, w.offset_for_leader_epoch_request_v3(23, topic, [(0, epoch - 1, epoch)])))
            assert res[(topic, 0)][0] == FENCED_LEADER_EPOCH, res

        _, res = w.parse_offset_for_leader_epoch_v3(
            w.roundtrip(s, w.offset_for_leader_epoch_request_v3(24, topic, [(9, -1, epoch)])))
        assert res[(topic, 9)][0] == UNKNOWN_TOPIC_OR_PARTITION, res

        ghost = h.unique("ghost")
        _, res = w.parse_offset_for_leader_epoch_v3(
            w.roundtrip(s, w.offset_for_leader_epoch_request_v3(25, ghost, [(0, -1, 0)])))
        assert res[(ghost, 0)][0] == UNKNOWN_TOPIC_OR_PARTITION, res


def test_metadata_v1_raw(module_broker_alive):
    """Metadata v1 (as old clients send it), decoded by hand."""
    b = module_broker_alive
    topic = h.unique("mdv1")
    h.create_topic(b.bootstrap, topic, 3)
    with w.connect(b.port) as s:
        r = w.Reader(w.roundtrip(s, w.metadata_request_v1(5, [topic])))
    assert r.int32() == 5
    brokers = [(r.int32(), r.string(), r.int32(), r.string()) for _ in range(r.int32())]
    assert brokers == [(1, "127.0.0.1", b.port, None)]
    assert r.int32() == 1  # controller id
    topics = {}
    for _ in range(r.int32()):
        err, name, internal = r.int16(), r.string(), r.int8()
        parts = []
        for _ in range(r.int32()):
            perr, idx, leader = r.int16(), r.int32(), r.int32()
            replicas = [r.int32() for _ in range(r.int32())]
            isr = [r.int32() for _ in range(r.int32())]
            parts.append((perr, idx, leader, replicas, isr))
        topics[name] = (err, internal, sorted(parts, key=lambda p: p[1]))
    assert r.remaining() == 0
    assert topics == {topic: (0, 0, [(0, i, 1, [1], [1]) for i in range(3)])}


# -- classic groups: a JoinGroup's rebalance timeout ------------------------

NONE = 0
UNKNOWN_MEMBER_ID = 25
MEMBER_ID_REQUIRED = 79
COORDINATOR_RETRIABLE = {14, 15, 16}  # load in progress, not available, not coordinator


def _join_until_answered(s, corr, version, group, member_id, session_ms, rebalance_ms, deadline):
    """JoinGroup, retried while the coordinator is still loading."""
    while True:
        r = w.parse_join_group(w.roundtrip(s, w.join_group_request(
            corr, version, group, member_id, session_ms, rebalance_ms)), version)
        assert r["correlation_id"] == corr
        if r["error_code"] not in COORDINATOR_RETRIABLE or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


def _group_sequence(b, topic, version, rebalance_ms):
    """JoinGroup (with the MEMBER_ID_REQUIRED round from v4), SyncGroup,
    OffsetCommit and LeaveGroup of one member, on one connection. Returns
    each answer's error code."""
    group = h.unique("rt")
    sync_v, commit_v, leave_v = (0, 2, 0) if version == 0 else (3, 7, 3)
    deadline = time.monotonic() + 60
    with w.connect(b.port, timeout=60) as s:
        # FindCoordinator first: it creates __consumer_offsets, as clients do
        while True:
            fc = w.parse_find_coordinator_v1(w.roundtrip(s, w.find_coordinator_request_v1(0, group, 0)))
            if fc["error_code"] == NONE or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert (fc["error_code"], fc["port"]) == (NONE, b.port), fc
        member = ""
        j = _join_until_answered(s, 1, version, group, member, 10000, rebalance_ms, deadline)
        if version >= 4:
            assert j["error_code"] == MEMBER_ID_REQUIRED, j
            member = j["member_id"]
            j = _join_until_answered(s, 2, version, group, member, 10000, rebalance_ms, deadline)
        assert j["error_code"] == NONE, j
        member, generation = j["member_id"], j["generation_id"]
        assert j["leader"] == member and generation >= 1, j
        sy = w.parse_sync_group(w.roundtrip(s, w.sync_group_request(
            3, sync_v, group, generation, member, [(member, b"assignment")])), sync_v)
        oc = w.parse_offset_commit(w.roundtrip(s, w.offset_commit_request(
            4, commit_v, group, generation, member, [(topic, 0, 5)])), commit_v)
        lv = w.parse_leave_group(w.roundtrip(s, w.leave_group_request(5, leave_v, group, member)), leave_v)
    assert set(oc["errors"]) == {(topic, 0)}, oc
    leave_error = lv["error_code"]
    if leave_v >= 3:
        assert leave_error == NONE, lv  # v3+: the error is per member
        [m] = lv["members"]
        assert m["member_id"] == member, lv
        leave_error = m["error_code"]
    return [j["error_code"], sy["error_code"], oc["errors"][(topic, 0)], leave_error]


@pytest.mark.parametrize("version,rebalance_ms,expected", [
    # Kafka's sync deadline is the group's rebalance timeout (the largest of
    # its members'): at 0 or below the member is removed as the join phase
    # ends, before its SyncGroup can arrive (GroupMetadataManager
    # schedulePendingSync / expirePendingSync).
    (5, 0, [NONE, UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID]),
    (5, -1, [NONE, UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID, UNKNOWN_MEMBER_ID]),
    (5, 10000, [NONE, NONE, NONE, NONE]),
    # v0 has no rebalance timeout: Kafka uses the session timeout.
    (0, None, [NONE, NONE, NONE, NONE]),
])
def test_join_group_rebalance_timeout_answers(module_broker_alive, version, rebalance_ms, expected):
    b = module_broker_alive
    topic = h.unique("rt")
    h.create_topic(b.bootstrap, topic, 1)
    assert _group_sequence(b, topic, version, rebalance_ms) == expected
