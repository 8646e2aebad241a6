"""Share group state (KIP-932) in `__share_group_state`, through the share
coordinator's RPCs over the raw protocol (share_wire.py): initialize, write,
read, summary and delete; leader-epoch and state-epoch fencing; NOT_COORDINATOR
on a node that does not lead the key's partition; the state surviving a broker
SIGKILL and restart, and, on a 3-node cluster, the SIGKILL of the leader of the
state partition. Then the share group admin APIs (Describe/Alter/Delete
ShareGroupOffsets, DeleteGroups) over the raw protocol: no Python client has
them."""

from __future__ import annotations

import pytest

import cluster as cl
import helpers as h
import share_wire as sw

WAIT_S = 60.0
SESSION_S = 3.0


def state_partition(group: str, tid: bytes, partition: int, partitions: int = 50) -> int:
    return cl.group_partition(f"{group}:{sw.uuid_text(tid)}:{partition}", partitions)


def settled(fn, what: str, timeout: float = WAIT_S):
    """fn() until it answers something other than a coordinator-moving error."""
    moving = (sw.NOT_COORDINATOR, sw.COORDINATOR_LOAD_IN_PROGRESS, sw.COORDINATOR_NOT_AVAILABLE)

    def attempt():
        try:
            r = fn()
        except (OSError, ValueError):
            return None
        return None if r["error"] in moving else r
    return h.wait_until(attempt, timeout, what)


def test_initialize_write_read_summary_delete(module_broker_alive):
    b = module_broker_alive
    topic = h.unique("sst")
    h.create_topic(b.bootstrap, topic, 2)
    tid = sw.topic_id(b.bootstrap, topic)
    group = h.unique("sg")

    found = sw.find_share_coordinator(b.port, group, tid, 1)
    assert (found["error"], found["port"]) == (0, b.port), found

    # never initialized: Kafka's uninitialized start offset, no error
    r = settled(lambda: sw.read(b.port, group, tid, 1, 0), "the state topic's partitions loaded")
    assert (r["error"], r["start_offset"], r["batches"]) == (0, -1, []), r
    assert sw.summary(b.port, group, tid, 1)["start_offset"] == -1

    assert sw.initialize(b.port, group, tid, 1, 1, 5)["error"] == 0
    r = sw.read(b.port, group, tid, 1, 3)
    assert (r["error"], r["state_epoch"], r["start_offset"], r["batches"]) == (0, 1, 5, []), r

    batches = [(5, 7, sw.ACKNOWLEDGED, 1), (8, 8, sw.AVAILABLE, 2), (9, 10, sw.ARCHIVED, 5)]
    assert sw.write(b.port, group, tid, 1, 1, 3, 5, batches)["error"] == 0
    r = sw.read(b.port, group, tid, 1, 3)
    assert (r["start_offset"], r["batches"]) == (5, batches), r
    # a write moves the start offset and overrides the ranges it names
    assert sw.write(b.port, group, tid, 1, 1, 3, 8, [(8, 8, sw.ACKNOWLEDGED, 2)])["error"] == 0
    r = sw.read(b.port, group, tid, 1, 3)
    assert (r["start_offset"], r["batches"]) == (8, [(8, 8, sw.ACKNOWLEDGED, 2), (9, 10, sw.ARCHIVED, 5)]), r
    s = sw.summary(b.port, group, tid, 1)
    assert (s["error"], s["state_epoch"], s["leader_epoch"], s["start_offset"]) == (0, 1, 3, 8), s
    # the other partition of the topic is another share partition
    assert sw.read(b.port, group, tid, 0, 3)["start_offset"] == -1

    assert sw.delete(b.port, group, tid, 1)["error"] == 0
    r = sw.read(b.port, group, tid, 1, 3)
    assert (r["error"], r["start_offset"], r["batches"]) == (0, -1, []), r
    # deleting what does not exist is fine; writing it fences the writer (its state is gone)
    assert sw.delete(b.port, group, tid, 1)["error"] == 0
    assert sw.write(b.port, group, tid, 1, 1, 3, 9, [])["error"] == sw.FENCED_STATE_EPOCH


def test_fencing_and_bad_keys(module_broker_alive):
    b = module_broker_alive
    topic = h.unique("ssf")
    h.create_topic(b.bootstrap, topic, 1)
    tid = sw.topic_id(b.bootstrap, topic)
    group = h.unique("sg")
    assert settled(lambda: sw.find_share_coordinator(b.port, group, tid, 0), "found")["error"] == 0
    assert settled(lambda: sw.initialize(b.port, group, tid, 0, 2, 0), "initialized")["error"] == 0
    assert sw.read(b.port, group, tid, 0, 5)["error"] == 0        # leader epoch 5 recorded

    assert sw.write(b.port, group, tid, 0, 2, 4, 1, [])["error"] == sw.FENCED_LEADER_EPOCH
    assert sw.read(b.port, group, tid, 0, 4)["error"] == sw.FENCED_LEADER_EPOCH
    assert sw.write(b.port, group, tid, 0, 1, 5, 1, [])["error"] == sw.FENCED_STATE_EPOCH
    assert sw.initialize(b.port, group, tid, 0, 1, 0)["error"] == sw.FENCED_STATE_EPOCH
    assert sw.write(b.port, group, tid, 0, 2, 6, 1, [(1, 1, sw.ACKNOWLEDGED, 1)])["error"] == 0
    assert sw.write(b.port, group, tid, 0, 2, 5, 2, [])["error"] == sw.FENCED_LEADER_EPOCH

    # a new state epoch (AlterShareGroupOffsets) fences the old one's writers
    assert sw.initialize(b.port, group, tid, 0, 3, 100)["error"] == 0
    assert sw.write(b.port, group, tid, 0, 2, 6, 101, [])["error"] == sw.FENCED_STATE_EPOCH
    r = sw.read(b.port, group, tid, 0, 6)
    assert (r["state_epoch"], r["start_offset"], r["batches"]) == (3, 100, []), r

    unknown = bytes(range(16))
    assert sw.initialize(b.port, group, unknown, 0, 1, 0)["error"] == sw.UNKNOWN_TOPIC_OR_PARTITION
    assert sw.write(b.port, group, tid, 0, 3, 6, 0, [(5, 4, sw.ACKNOWLEDGED, 1)])["error"] == sw.INVALID_REQUEST
    bad = sw.call(b.port, sw.API_FIND_COORDINATOR,
                  sw.int8(2) + sw.compact_array([sw.compact_string("no-topic-id:0")]) + sw.T, version=6)
    bad.int32()
    bad.uvarint()
    bad.compact_string()
    bad.int32(), bad.compact_string(), bad.int32()
    assert bad.int16() == sw.INVALID_REQUEST


def test_state_survives_sigkill_and_restart(broker):
    topic = h.unique("ssk")
    h.create_topic(broker.bootstrap, topic, 1)
    tid = sw.topic_id(broker.bootstrap, topic)
    group = h.unique("sg")
    # FindCoordinator creates __share_group_state, as the persister's lookup does
    assert settled(lambda: sw.find_share_coordinator(broker.port, group, tid, 0), "found")["error"] == 0
    assert settled(lambda: sw.initialize(broker.port, group, tid, 0, 1, 0), "initialized")["error"] == 0
    other = h.unique("gone")
    assert sw.initialize(broker.port, other, tid, 0, 1, 0)["error"] == 0
    assert sw.delete(broker.port, other, tid, 0)["error"] == 0
    for i in range(20):
        ack = [(i * 5, i * 5 + 3, sw.ACKNOWLEDGED, 1), (i * 5 + 4, i * 5 + 4, sw.AVAILABLE, 1)]
        assert sw.write(broker.port, group, tid, 0, 1, 2, 0, ack)["error"] == 0
    before = sw.read(broker.port, group, tid, 0, 2)
    assert len(before["batches"]) == 40, before

    broker.kill()
    broker.start()
    after = settled(lambda: sw.read(broker.port, group, tid, 0, 2), "the state back after the restart")
    assert {k: after[k] for k in ("state_epoch", "start_offset", "batches")} == \
        {k: before[k] for k in ("state_epoch", "start_offset", "batches")}
    assert sw.read(broker.port, group, tid, 0, 1)["error"] == sw.FENCED_LEADER_EPOCH
    assert sw.read(broker.port, other, tid, 0, 2)["start_offset"] == -1, "a deleted state came back"


@pytest.fixture
def cluster(tmp_path, request):
    c = cl.Cluster(tmp_path / "cluster", n=3)
    c.start()
    yield c
    failed = getattr(getattr(request.node, "rep_call", None), "failed", False)
    if failed:
        print(c.log_tails(n=150))
    c.close()


@pytest.mark.timeout(240)
def test_cluster_state_survives_the_state_leader_kill(cluster):
    c = cluster
    topic = h.unique("ssc")
    c.create_topic(topic, partitions=1, replication_factor=3)
    tid = sw.topic_id(c.bootstrap, topic)
    group = h.unique("sg")
    first = c.nodes[c.healthy()[0]]
    found = settled(lambda: sw.find_share_coordinator(first.client_port, group, tid, 0),
                    "a share coordinator")
    coord = found["node_id"]
    sp = state_partition(group, tid, 0)
    c.wait_isr("__share_group_state", sp, 3, timeout=WAIT_S)
    assert c.leader_of("__share_group_state", sp) == coord
    port = c.node(coord).client_port

    other = next(i for i in c.healthy() if i != coord)
    r = sw.read(c.node(other).client_port, group, tid, 0, 0)
    assert r["error"] == sw.NOT_COORDINATOR, r

    assert settled(lambda: sw.initialize(port, group, tid, 0, 1, 0), "initialized")["error"] == 0
    assert sw.read(port, group, tid, 0, 4)["error"] == 0
    batches = [(0, 9, sw.ACKNOWLEDGED, 1), (10, 12, sw.AVAILABLE, 1), (13, 13, sw.ARCHIVED, 5)]
    assert sw.write(port, group, tid, 0, 1, 4, 0, batches)["error"] == 0
    before = sw.read(port, group, tid, 0, 4)

    c.kill(coord)
    new = c.wait_leader_not("__share_group_state", sp, coord, timeout=SESSION_S + WAIT_S)
    new_port = c.node(new).client_port
    assert settled(lambda: sw.find_share_coordinator(new_port, group, tid, 0), "the new coordinator")[
        "node_id"] == new
    after = settled(lambda: sw.read(new_port, group, tid, 0, 4), "the state on the new coordinator")
    assert (after["state_epoch"], after["start_offset"], after["batches"]) == \
        (before["state_epoch"], before["start_offset"], before["batches"])
    # the old leader epoch is still fenced there
    assert sw.write(new_port, group, tid, 0, 1, 3, 0, [])["error"] == sw.FENCED_LEADER_EPOCH
    assert sw.write(new_port, group, tid, 0, 1, 4, 10, [(10, 12, sw.ACKNOWLEDGED, 1)])["error"] == 0

    c.start_node(coord)
    # whoever leads it now, the state holds the last write
    def current():
        leader = c.leader_of("__share_group_state", sp)
        if leader < 0:
            return {"error": sw.NOT_COORDINATOR}
        return sw.read(c.node(leader).client_port, group, tid, 0, 4)
    r = settled(current, "the state after the old coordinator came back")
    assert (r["start_offset"], r["batches"]) == (10, [(10, 12, sw.ACKNOWLEDGED, 1), (13, 13, sw.ARCHIVED, 5)])


# -- share group admin APIs ---------------------------------------------------------


def _group_coordinator_ready(b, group: str):
    """FindCoordinator (group) until __consumer_offsets is led here, as clients ask first."""
    import kafka_wire as w

    def found():
        fc = w.parse_find_coordinator_v1(w.request(b.port, w.find_coordinator_request_v1(1, group, 0)))
        return fc if fc["error_code"] == 0 else None
    h.wait_until(found, WAIT_S, "the group coordinator")


def test_describe_alter_delete_share_group_offsets(module_broker_alive):
    b = module_broker_alive
    topic = h.unique("sso")
    h.create_topic(b.bootstrap, topic, 3)
    tid = sw.topic_id(b.bootstrap, topic)
    group = h.unique("sg")
    _group_coordinator_ready(b, group)
    for p in (0, 1):
        settled(lambda: sw.find_share_coordinator(b.port, group, tid, p), "share coordinator")
        assert settled(lambda: sw.initialize(b.port, group, tid, p, 1, 10 * (p + 1)), "init")["error"] == 0
    assert sw.read(b.port, group, tid, 0, 7)["error"] == 0
    assert sw.write(b.port, group, tid, 0, 1, 7, 12, [(12, 14, sw.ACKNOWLEDGED, 1)])["error"] == 0

    d = settled(lambda: sw.describe_offsets(b.port, group, {topic: [0, 1, 2], "no-such-topic": [0]}),
                "describe")
    assert d["error"] == 0, d
    got = {k: (v["start_offset"], v["leader_epoch"], v["error"]) for k, v in d["partitions"].items()}
    assert got == {(topic, 0): (12, 7, 0), (topic, 1): (20, 0, 0), (topic, 2): (-1, 0, 0),
                   ("no-such-topic", 0): (-1, 0, 0)}, got
    # without topics: every partition with a state
    d = sw.describe_offsets(b.port, group, None)
    assert {k: v["start_offset"] for k, v in d["partitions"].items()} == {(topic, 0): 12, (topic, 1): 20}

    # alter: a new state epoch at the given offsets, the old delivery states gone
    a = sw.alter_offsets(b.port, group, {(topic, 0): 3, (topic, 2): 5, ("no-such-topic", 0): 1})
    assert a["error"] == 0, a
    assert a["partitions"] == {(topic, 0): 0, (topic, 2): 0, ("no-such-topic", 0): sw.UNKNOWN_TOPIC_OR_PARTITION}, a
    r = sw.read(b.port, group, tid, 0, 7)
    assert (r["state_epoch"], r["start_offset"], r["batches"]) == (2, 3, []), r
    assert sw.read(b.port, group, tid, 2, 0)["start_offset"] == 5
    # the share partition's leader, still at the old state epoch, is fenced
    assert sw.write(b.port, group, tid, 0, 1, 7, 15, [])["error"] == sw.FENCED_STATE_EPOCH
    d = sw.describe_offsets(b.port, group, {topic: [0, 1, 2]})
    assert {k: v["start_offset"] for k, v in d["partitions"].items()} == \
        {(topic, 0): 3, (topic, 1): 20, (topic, 2): 5}

    # delete: every partition of the topic loses its state
    dl = sw.delete_offsets(b.port, group, [topic, "no-such-topic"])
    assert dl["error"] == 0 and dl["topics"] == {topic: 0, "no-such-topic": sw.UNKNOWN_TOPIC_OR_PARTITION}, dl
    for p in range(3):
        assert sw.read(b.port, group, tid, p, 7)["start_offset"] == -1
    assert sw.describe_offsets(b.port, group, None)["partitions"] == {}


def test_share_group_offsets_refuse_a_classic_group(module_broker_alive):
    import kafka_wire as w
    b = module_broker_alive
    topic = h.unique("ssx")
    h.create_topic(b.bootstrap, topic, 1)
    group = h.unique("classic")
    _group_coordinator_ready(b, group)
    oc = w.parse_offset_commit(w.request(b.port, w.offset_commit_request(1, 2, group, -1, "", [(topic, 0, 4)])), 2)
    assert oc["errors"] == {(topic, 0): 0}, oc
    assert sw.describe_offsets(b.port, group, {topic: [0]})["error"] == sw.GROUP_ID_NOT_FOUND
    assert sw.alter_offsets(b.port, group, {(topic, 0): 1})["error"] == sw.GROUP_ID_NOT_FOUND
    assert sw.delete_offsets(b.port, group, [topic])["error"] == sw.GROUP_ID_NOT_FOUND
    # the classic group is deleted by DeleteGroups as before
    assert sw.delete_groups(b.port, [group]) == {group: 0}


def test_cli_group_describe_shows_share_partition_states(module_broker_alive):
    import json
    import subprocess
    from conftest import vltava_bin
    b = module_broker_alive
    topic = h.unique("ssv")
    h.create_topic(b.bootstrap, topic, 2)
    p = h.make_producer(b.bootstrap)
    for i in range(20):
        p.produce(topic, b"v%d" % i, partition=0)
    assert p.flush(30) == 0
    tid = sw.topic_id(b.bootstrap, topic)
    group = h.unique("sg")
    _group_coordinator_ready(b, group)
    settled(lambda: sw.find_share_coordinator(b.port, group, tid, 0), "share coordinator")
    assert settled(lambda: sw.initialize(b.port, group, tid, 0, 1, 0), "init")["error"] == 0
    batches = [(0, 4, sw.ACKNOWLEDGED, 1), (5, 6, sw.ARCHIVED, 5), (7, 9, sw.AVAILABLE, 1)]
    assert sw.write(b.port, group, tid, 0, 1, 0, 0, batches)["error"] == 0

    def describe(*extra):
        out = subprocess.run([vltava_bin(), "group", "describe", group, "--brokers", b.bootstrap, *extra],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout
    d = json.loads(describe("--json"))
    assert (d["type"], d["members"], d["counts_error"]) == ("share", [], None), d
    assert d["partitions"] == [{"topic": topic, "partition": 0, "start_offset": 0, "in_flight": 3,
                                "acknowledged": 5, "archived": 2, "high_watermark": 20, "lag": 13}], d
    text = describe()
    assert "START-OFFSET" in text and "IN-FLIGHT" in text and "ACKNOWLEDGED" in text, text
    row = next(line.split() for line in text.splitlines() if line.startswith(topic))
    assert row == [topic, "0", "0", "3", "5", "2", "20", "13"], text


@pytest.mark.timeout(240)
def test_cluster_admin_reaches_remote_share_coordinators_across_a_kill(cluster):
    """The group coordinator's persister reaches the share coordinators of other nodes
    over the inter-broker client, and keeps retrying while one of them is killed."""
    c = cluster
    topic = h.unique("ssr")
    c.create_topic(topic, partitions=6, replication_factor=3)
    tid = sw.topic_id(c.bootstrap, topic)
    group = h.unique("sg")
    coord = c.find_coordinator(group)
    gport = c.node(coord).client_port
    settled(lambda: sw.find_share_coordinator(gport, group, tid, 0), "the state topic")
    sps = {p: state_partition(group, tid, p) for p in range(6)}
    for sp in set(sps.values()):
        c.wait_isr("__share_group_state", sp, 3, timeout=WAIT_S)
    leaders = {p: c.leader_of("__share_group_state", sps[p]) for p in range(6)}
    assert set(leaders.values()) - {coord}, f"every state partition led by the group coordinator: {leaders}"

    a = settled(lambda: sw.alter_offsets(gport, group, {(topic, p): 100 + p for p in range(6)}), "altered")
    assert a["error"] == 0 and set(a["partitions"].values()) == {0}, a
    for p in range(6):
        r = sw.read(c.node(leaders[p]).client_port, group, tid, p, 0)
        assert (r["error"], r["state_epoch"], r["start_offset"]) == (0, 1, 100 + p), (p, r)

    victim = next(leaders[p] for p in range(6) if leaders[p] != coord)
    c.kill(victim)
    # at once: the persister retries while the victim's partitions move and load
    d = sw.describe_offsets(gport, group, {topic: list(range(6))})
    assert d["error"] == 0, d
    assert {k: (v["start_offset"], v["error"]) for k, v in d["partitions"].items()} == \
        {(topic, p): (100 + p, 0) for p in range(6)}, d
    a = sw.alter_offsets(gport, group, {(topic, p): 200 for p in range(6)})
    assert a["error"] == 0 and set(a["partitions"].values()) == {0}, a
    d = sw.describe_offsets(gport, group, None)
    assert {k: v["start_offset"] for k, v in d["partitions"].items()} == {(topic, p): 200 for p in range(6)}


def test_share_state_rpcs_need_cluster_action(start_broker):
    """Without CLUSTER_ACTION (the anonymous principal is no super user here, no ACL
    grants it) every share-state RPC and FindCoordinator key type 2 is refused."""
    b = start_broker({"authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
                      "super.users": "User:admin"})
    tid, group = bytes(range(16)), "g"
    denied = sw.CLUSTER_AUTHORIZATION_FAILED
    assert sw.find_share_coordinator(b.port, group, tid, 0)["error"] == denied
    assert sw.initialize(b.port, group, tid, 0, 1, 0)["error"] == denied
    assert sw.read(b.port, group, tid, 0, 0)["error"] == denied
    assert sw.write(b.port, group, tid, 0, 1, 0, 0, [])["error"] == denied
    assert sw.summary(b.port, group, tid, 0)["error"] == denied
    assert sw.delete(b.port, group, tid, 0)["error"] == denied
    assert sw.describe_offsets(b.port, group, {"t": [0]})["error"] == 30  # GROUP_AUTHORIZATION_FAILED


# -- end to end with confluent-kafka's ShareConsumer (share-fetch's share partitions) --


def _acked_then_crash_setup(bootstrap_broker, topic: str, group: str, n: int, n_acked: int):
    """A consumer (explicit acknowledgement) takes all n records and accepts the
    first n_acked; returns it (still holding the rest)."""
    from test_share_groups import poll_until, share_consumer
    c = share_consumer(bootstrap_broker, group, share_acknowledgement_mode="explicit", max_poll_records=n)
    c.subscribe([topic])
    got = poll_until(c, lambda got: len(got) >= n, f"{n} records")
    assert sorted(m.offset() for m in got) == list(range(n))
    for m in got:
        if m.offset() < n_acked:
            c.acknowledge(m)
    c.commit_sync()
    return c


def _only_unacknowledged_come_back(b, topic: str, group: str):
    """A new consumer of the group gets exactly offsets 60-99 (the unacknowledged
    ones) and acknowledges them; nothing more comes."""
    from test_share_groups import poll_until, share_consumer
    fresh = share_consumer(b, group, share_acknowledgement_mode="explicit")
    try:
        fresh.subscribe([topic])
        again = poll_until(fresh, lambda got: len(got) >= 40, "the 40 unacknowledged records", timeout=90)
        offsets = sorted(m.offset() for m in again)
        assert offsets == list(range(60, 100)), f"redelivered {offsets}"
        for m in again:
            fresh.acknowledge(m)
        fresh.commit_sync()
        assert not [m for m in fresh.poll(3.0) if m.error() is None], "more records after all were acknowledged"
    finally:
        fresh.close()


def test_share_consumer_acknowledgements_survive_sigkill(broker):
    from test_share_groups import new_queue, produce
    topic, group = new_queue(broker)
    produce(broker, topic, 100)
    held = _acked_then_crash_setup(broker, topic, group, 100, 60)
    broker.kill()
    broker.start()
    try:
        _only_unacknowledged_come_back(broker, topic, group)
        d = settled(lambda: sw.describe_offsets(broker.port, group, {topic: [0]}), "describe")
        assert d["partitions"][(topic, 0)]["start_offset"] == 100, d
    finally:
        held.close()


def _group_avoiding(c, topic: str, tid: bytes, avoid: set) -> tuple[str, int]:
    """A group id whose share coordinator (for topic partition 0) is none of `avoid`,
    nor its group coordinator; returns (group, share coordinator)."""
    import kafka_wire as w
    probe = h.unique("probe")
    first = c.node(c.healthy()[0]).client_port
    settled(lambda: sw.find_share_coordinator(first, probe, tid, 0), "the state topic")
    w.request(first, w.find_coordinator_request_v1(1, probe, 0))
    state_leaders = c.wait_until(lambda: c._agreed("__share_group_state"), WAIT_S, "state leaders")
    c.wait_until(lambda: c._agreed("__consumer_offsets"), WAIT_S, "offsets leaders")
    offsets_leaders = c.leaders("__consumer_offsets")
    for _ in range(500):
        group = h.unique("sg")
        s = state_leaders[state_partition(group, tid, 0)].leader
        g = offsets_leaders[cl.group_partition(group)]
        if s not in avoid and s != g and s >= 0:
            return group, s
    raise AssertionError("no group id with a share coordinator apart")


@pytest.mark.timeout(300)
def test_cluster_share_consumer_acknowledgements_survive_the_coordinator_kill(cluster):
    from test_share_groups import set_group_configs
    import helpers
    c = cluster
    topic = h.unique("q")
    c.create_topic(topic, partitions=1, replication_factor=3)
    tid = sw.topic_id(c.bootstrap, topic)
    leader = c.wait_leader(topic, 0)
    group, share_coord = _group_avoiding(c, topic, tid, {leader})
    sp = state_partition(group, tid, 0)
    c.wait_isr("__share_group_state", sp, 3, timeout=WAIT_S)

    class B:  # what test_share_groups' helpers need of a broker
        bootstrap = c.bootstrap
        port = c.node(c.find_coordinator(group)).client_port
    set_group_configs(B.port, group, {"share.auto.offset.reset": "earliest"})
    p = helpers.make_producer(c.bootstrap, {"acks": "all"})
    for i in range(100):
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0)
    assert p.flush(30) == 0

    held = _acked_then_crash_setup(B, topic, group, 100, 60)
    c.kill(share_coord)
    new_coord = c.wait_leader_not("__share_group_state", sp, share_coord, timeout=SESSION_S + WAIT_S)
    # the new coordinator has every acknowledgement (leader epoch -1: a look, no fencing)
    st = settled(lambda: sw.read(c.node(new_coord).client_port, group, tid, 0, -1), "the state moved")
    done = set(range(st["start_offset"])) | {o for f, l, s, _ in st["batches"] if s in (sw.ACKNOWLEDGED, sw.ARCHIVED)
                                              for o in range(f, l + 1)}
    assert done == set(range(60)), st
    # the holder leaves: its 40 records go back, written through the new coordinator
    held.close()
    _only_unacknowledged_come_back(B, topic, group)
    # the state on the new coordinator: everything acknowledged
    d = settled(lambda: sw.describe_offsets(B.port, group, {topic: [0]}), "describe")
    assert d["partitions"][(topic, 0)]["start_offset"] == 100, d


def test_admin_on_a_live_share_group(module_broker_alive):
    """Altering or deleting the offsets of a share group with members is refused
    (NON_EMPTY_GROUP), as is deleting it; `vltava group describe` shows its member;
    once empty, DeleteGroups removes its states and the group."""
    import json
    import subprocess
    from conftest import vltava_bin
    from test_share_groups import new_queue, poll_until, produce, share_consumer
    b = module_broker_alive
    topic, group = new_queue(b)
    produce(b, topic, 10)
    tid = sw.topic_id(b.bootstrap, topic)
    c = share_consumer(b, group, share_acknowledgement_mode="explicit", client_id="member-1")
    try:
        c.subscribe([topic])
        got = poll_until(c, lambda got: len(got) >= 10, "10 records")
        for m in got:
            if m.offset() < 5:
                c.acknowledge(m)
        c.commit_sync()
        assert sw.alter_offsets(b.port, group, {(topic, 0): 0})["error"] == sw.NON_EMPTY_GROUP
        assert sw.delete_offsets(b.port, group, [topic])["error"] == sw.NON_EMPTY_GROUP
        assert sw.delete_groups(b.port, [group]) == {group: sw.NON_EMPTY_GROUP}
        d = sw.describe_offsets(b.port, group, None)
        assert {k: v["start_offset"] for k, v in d["partitions"].items()} == {(topic, 0): 5}, d
        out = subprocess.run([vltava_bin(), "group", "describe", group, "--json", "--brokers", b.bootstrap],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        desc = json.loads(out.stdout)
        assert [m["client_id"] for m in desc["members"]] == ["member-1"], desc
        assert desc["members"][0]["assignment"] == {topic: [0]}, desc
        [row] = desc["partitions"]
        assert (row["start_offset"], row["acknowledged"], row["high_watermark"]) == (5, 0, 10), row
    finally:
        c.close()
    h.wait_until(lambda: sw.delete_groups(b.port, [group]) == {group: 0}, WAIT_S, "the group deleted once empty")
    assert sw.read(b.port, group, tid, 0, -1)["start_offset"] == -1, "the share partition state survived"
    assert sw.describe_offsets(b.port, group, {topic: [0]})["partitions"][(topic, 0)]["start_offset"] == -1
