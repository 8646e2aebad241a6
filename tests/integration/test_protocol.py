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


def test_offset_for_leader_epoch(broker):
    b = broker
    topic = h.unique("ofle")
    h.create_topic(b.bootstrap, topic, 2)
    p = h.make_producer(b.bootstrap)
    assert h.produce_all(p, topic, [h.Rec(None, b"v%d" % i, None, None) for i in range(7)],
                         partition=0).errors() == {}
    first = _leader_epoch(b.bootstrap, topic, 0)
    # a restart starts a new leader epoch: the 7 records belong to an older one
    assert b.stop() == 0
    b.start()
    h.wait_for_topic(b.bootstrap, topic, 2)
    epoch = _leader_epoch(b.bootstrap, topic, 0)
    assert epoch > first >= 0, f"leader epoch {first} before the restart, {epoch} after"
    cases = [(0, -1, epoch), (1, epoch, epoch)]
    with w.connect(b.port) as s:
        corr, res = w.parse_offset_for_leader_epoch_v3(
            w.roundtrip(s, w.offset_for_leader_epoch_request_v3(21, topic, cases)))
        assert corr == 21
        # The end offset of the current epoch is the log end. (Kafka also answers with the
        # current epoch here, since a new leader records its epoch's start at once; vltava
        # answers with the last epoch that has records: see the report on issue 19.)
        assert res[(topic, 0)][0] == 0 and res[(topic, 0)][2] == 7, res
        assert res[(topic, 1)] == (0, epoch, 0), res

        # the epoch the records were written in ends where the next one starts
        _, res = w.parse_offset_for_leader_epoch_v3(
            w.roundtrip(s, w.offset_for_leader_epoch_request_v3(26, topic, [(0, epoch, first)])))
        assert res[(topic, 0)] == (0, first, 7), res

        _, res = w.parse_offset_for_leader_epoch_v3(
            w.roundtrip(s, w.offset_for_leader_epoch_request_v3(22, topic, [(0, epoch + 1, epoch)])))
        assert res[(topic, 0)][0] == UNKNOWN_LEADER_EPOCH, res

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


# --------------------------------------------------------------------------
# the Compatibility table of README.md, against ApiVersions
# --------------------------------------------------------------------------

API_KEYS = {
    "Produce": 0, "Fetch": 1, "ListOffsets": 2, "Metadata": 3, "OffsetCommit": 8,
    "OffsetFetch": 9, "FindCoordinator": 10, "JoinGroup": 11, "Heartbeat": 12,
    "LeaveGroup": 13, "SyncGroup": 14, "DescribeGroups": 15, "ListGroups": 16,
    "ApiVersions": 18, "CreateTopics": 19, "DeleteTopics": 20, "DeleteRecords": 21,
    "InitProducerId": 22, "OffsetForLeaderEpoch": 23, "AddPartitionsToTxn": 24,
    "AddOffsetsToTxn": 25, "EndTxn": 26, "WriteTxnMarkers": 27, "TxnOffsetCommit": 28,
    "DescribeConfigs": 32, "AlterConfigs": 33, "CreatePartitions": 37, "DeleteGroups": 42,
    "ElectLeaders": 43, "IncrementalAlterConfigs": 44, "AlterPartitionReassignments": 45,
    "ListPartitionReassignments": 46, "OffsetDelete": 47, "DescribeCluster": 60,
    "DescribeProducers": 61, "DescribeTransactions": 65, "ListTransactions": 66,
    "DescribeLogDirs": 35, "DescribeQuorum": 55, "DescribeTopicPartitions": 75,
    "UpdateFeatures": 57, "UnregisterBroker": 64, "ListConfigResources": 74,
    "AlterReplicaLogDirs": 34, "DescribeClientQuotas": 48, "AlterClientQuotas": 49,
    "DescribeAcls": 29, "CreateAcls": 30, "DeleteAcls": 31,
    "AddRaftVoter": 80, "RemoveRaftVoter": 81, "UpdateRaftVoter": 82,
    "GetTelemetrySubscriptions": 71, "PushTelemetry": 72,
    "CreateDelegationToken": 38, "RenewDelegationToken": 39, "ExpireDelegationToken": 40,
    "DescribeDelegationToken": 41,
    "SaslHandshake": 17, "SaslAuthenticate": 36,
    "DescribeUserScramCredentials": 50, "AlterUserScramCredentials": 51,
    "ConsumerGroupHeartbeat": 68, "ConsumerGroupDescribe": 69,
    "ShareGroupHeartbeat": 76, "ShareGroupDescribe": 77, "ShareFetch": 78, "ShareAcknowledge": 79,
    "InitializeShareGroupState": 83, "ReadShareGroupState": 84, "WriteShareGroupState": 85,
    "DeleteShareGroupState": 86, "ReadShareGroupStateSummary": 87,
    "DescribeShareGroupOffsets": 90, "AlterShareGroupOffsets": 91, "DeleteShareGroupOffsets": 92,
}


def readme_api_versions() -> dict[int, tuple[int, int]]:
    """{api key: (min, max)} as README.md's Compatibility table advertises them."""
    import re
    from conftest import REPO_ROOT
    text = (REPO_ROOT / "README.md").read_text()
    section = text.split("## Compatibility", 1)[1].split("\n## ", 1)[0]
    out = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 2 or cells[0] in ("API", "---") or set(cells[0]) <= {"-", " "}:
            continue
        names = [re.sub(r"\s*\(.*\)", "", n).strip() for n in cells[0].split(",")]
        versions = cells[1]
        advertised = re.search(r"advertised from (\d+)", versions)
        ranges = re.sub(r"\s*\(.*\)", "", versions).split(",")
        assert len(ranges) == len(names), f"README row {line!r}: {len(names)} APIs, {ranges}"
        for name, rng in zip(names, ranges):
            lo, _, hi = rng.strip().partition("-")
            lo, hi = int(lo), int(hi or lo)
            if advertised:
                lo = int(advertised.group(1))
            assert name in API_KEYS, f"README names an API this test does not know: {name}"
            out[API_KEYS[name]] = (lo, hi)
    return out


def test_api_versions_are_exactly_the_readme_table(module_broker_alive):
    b = module_broker_alive
    want = readme_api_versions()
    assert len(want) == len(API_KEYS), sorted(set(API_KEYS.values()) - set(want))
    with w.connect(b.port) as s:
        corr, err, apis, _t, _tags, rest = w.parse_api_versions_v3(
            w.roundtrip(s, w.api_versions_request_v3(31)))
        _, err0, apis0, rest0 = w.parse_api_versions_v0(w.roundtrip(s, w.api_versions_request_v0(32)))
    assert (corr, err, rest, err0, rest0) == (31, 0, 0, 0, 0)
    assert apis == apis0
    name = {v: k for k, v in API_KEYS.items()}
    diff = {name.get(k, k): (apis.get(k), want.get(k)) for k in set(apis) | set(want)
            if apis.get(k) != want.get(k)}
    assert not diff, f"ApiVersions (broker, README): {diff}"


# --------------------------------------------------------------------------
# old formats: Produce v0-v2 and magic v0/v1 batches
# --------------------------------------------------------------------------

UNSUPPORTED_VERSION = 35


def test_produce_v0_to_v2_close_the_connection(module_broker_alive):
    """Produce v0-v2 are advertised (as Kafka 4 does) but refused: the connection closes,
    nothing is written, the broker serves on."""
    b = module_broker_alive
    topic = h.unique("oldproduce")
    h.create_topic(b.bootstrap, topic, 1)
    for version, magic in ((0, 0), (1, 1), (2, 1)):
        records = w.message_set_legacy([(b"k", b"v%d" % version)], magic)
        with w.connect(b.port) as s:
            s.sendall(w.frame(w.produce_request_legacy(70 + version, version, topic, 0, records)))
            closed, data = w.wait_closed(s, 30.0)
            assert closed and data == b"", f"Produce v{version}: connection still open, got {data!r}"
    assert h.watermarks(b.bootstrap, topic, 0) == (0, 0)
    with w.connect(b.port) as s:   # a new connection still works
        _, err, apis, _ = w.parse_api_versions_v0(w.roundtrip(s, w.api_versions_request_v0(79)))
        assert err == 0 and apis[w.API_PRODUCE] == (0, 12)


def test_kafka_python_as_an_old_client_is_refused(module_broker_alive):
    """kafka-python told the broker is 0.10 sends Produce v2 with magic v1 messages: it is
    refused (the connection closes) and nothing is written."""
    from kafka import KafkaProducer
    from kafka.errors import KafkaError as KPError
    b = module_broker_alive
    topic = h.unique("oldclient")
    h.create_topic(b.bootstrap, topic, 1)
    p = KafkaProducer(bootstrap_servers=b.bootstrap, api_version=(0, 10, 1), retries=0,
                      request_timeout_ms=10_000, max_block_ms=10_000, acks=1)
    try:
        fut = p.send(topic, value=b"from 2016", partition=0)
        with pytest.raises(KPError):
            fut.get(timeout=60)
    finally:
        p.close(timeout=10)
    assert h.watermarks(b.bootstrap, topic, 0) == (0, 0)


@pytest.mark.parametrize("magic", [0, 1])
@pytest.mark.parametrize("version", [3, 7])
def test_magic_v0_v1_batches_get_unsupported_version(module_broker_alive, magic, version):
    """Old message formats inside a current Produce request: UNSUPPORTED_VERSION for the
    partition, nothing written, the connection serves on."""
    b = module_broker_alive
    topic = h.unique(f"magic{magic}")
    h.create_topic(b.bootstrap, topic, 1)
    records = w.message_set_legacy([(b"k0", b"v0"), (None, b"v1")], magic)
    with w.connect(b.port) as s:
        corr, res, _ = w.parse_produce_response(
            w.roundtrip(s, w.produce_request(81, topic, 0, records, api_version=version)), version)
        assert corr == 81
        assert res[(topic, 0)]["error_code"] == UNSUPPORTED_VERSION, res
        good = w.record_batch([(b"k", b"v2 batch")])
        _, res, _ = w.parse_produce_response(
            w.roundtrip(s, w.produce_request(82, topic, 0, good, api_version=version)), version)
        assert res[(topic, 0)]["error_code"] == 0 and res[(topic, 0)]["base_offset"] == 0, res
    assert h.watermarks(b.bootstrap, topic, 0) == (0, 1)


# Kafka 4.1's maximum versions of the APIs issue 12 covers (a combined broker+controller).
KAFKA_41_ISSUE_12 = {
    0: 12, 1: 17, 2: 10, 3: 13, 10: 6, 15: 6, 24: 5, 25: 4, 26: 5, 28: 5, 34: 2, 35: 4,
    55: 2, 57: 2, 60: 2, 64: 0, 74: 1, 75: 0, 80: 0, 81: 0, 82: 0,
}
# What is still short of it, and what vltava advertises there (None: not at all):
# nothing: every API and version of it is there.
ISSUE_12_GAPS = {}


def test_api_versions_against_kafka_41_for_issue_12(module_broker_alive):
    with w.connect(module_broker_alive.port) as s:
        _corr, err, apis, _t, _tags, _rest = w.parse_api_versions_v3(
            w.roundtrip(s, w.api_versions_request_v3(41)))
    assert err == 0
    got = {key: (apis[key][1] if key in apis else None) for key in KAFKA_41_ISSUE_12}
    want = {key: ISSUE_12_GAPS.get(key, kafka) for key, kafka in KAFKA_41_ISSUE_12.items()}
    assert got == want, {k: (got[k], want[k]) for k in got if got[k] != want[k]}
