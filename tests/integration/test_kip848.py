"""KIP-848 consumer groups (group.protocol=consumer) with confluent-kafka 2.16:
server-side assignment shared by three members, a SIGKILLed member's partitions
moved to the others while they consume, regex subscriptions picking up topics
created later (full-match semantics), the uniform and range assignors, static
membership, commits checked against member epochs, the group and its offsets
across a broker restart, ListGroups/ConsumerGroupDescribe, and raw-protocol
errors (unknown member, fenced epoch, invalid regex, unsupported assignor).

The broker runs with short consumer group session and heartbeat settings so
that expiry and reconciliation take seconds."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

from confluent_kafka import Consumer, ConsumerGroupState, ConsumerGroupType, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import kafka_wire as w
from conftest import vltava_bin
from helpers import create_topic, unique, wait_until

MEMBER = str(Path(__file__).with_name("kip848_member.py"))
WAIT_S = 60  # a deadline, not a verdict
COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, NOT_COORDINATOR = 14, 15, 16
FAST = {
    "group.consumer.min.session.timeout.ms": 3000,
    "group.consumer.session.timeout.ms": 4000,
    "group.consumer.min.heartbeat.interval.ms": 300,
    "group.consumer.heartbeat.interval.ms": 300,
}

UNKNOWN_MEMBER_ID = 25
INCONSISTENT_GROUP_PROTOCOL = 23
INVALID_REQUEST = 42
FENCED_MEMBER_EPOCH = 110
UNSUPPORTED_ASSIGNOR = 112
STALE_MEMBER_EPOCH = 113
GROUP_ID_NOT_FOUND = 69
INVALID_REGULAR_EXPRESSION = 128


def produce(bootstrap, topic, partitions, per_partition, tag="v"):
    p = Producer({"bootstrap.servers": bootstrap})
    for part in range(partitions):
        for i in range(per_partition):
            p.produce(topic, f"{tag}-{part}-{i}".encode(), partition=part)
    assert p.flush(30) == 0


class Member:
    """A consumer in its own process (kip848_member.py)."""

    def __init__(self, bootstrap, group, topic, workdir: Path, name, instance=None, assignor=None):
        self.out = workdir / f"{name}.jsonl"
        args = [sys.executable, MEMBER, bootstrap, group, topic, str(self.out)]
        if instance:
            args += ["--instance", instance]
        if assignor:
            args += ["--assignor", assignor]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def events(self):
        if not self.out.exists():
            return []
        lines = self.out.read_text().splitlines()
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError:
                pass  # a line cut by SIGKILL
        return out

    def owned(self):
        parts = set()
        for ev in self.events():
            if ev["ev"] == "assign":
                parts |= set(ev["parts"])
            elif ev["ev"] == "revoke":
                parts -= set(ev["parts"])
        return parts

    def records(self):
        return [(e["p"], e["o"]) for e in self.events() if e["ev"] == "rec"]

    def committed(self):
        return {(e["p"], e["o"]) for e in self.events() if e["ev"] == "commit_ok"}

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(60) == 0


def describe(bootstrap, group):
    a = AdminClient({"bootstrap.servers": bootstrap})
    return a.describe_consumer_groups([group])[group].result(30)


def test_three_members_share_six_partitions_and_a_killed_members_move(start_broker, tmp_path):
    b = start_broker(FAST)
    topic, group = unique("k848"), unique("g848")
    create_topic(b.bootstrap, topic, 6)
    produce(b.bootstrap, topic, 6, 50, "a")
    members = [Member(b.bootstrap, group, topic, tmp_path, f"m{i}") for i in range(3)]
    try:
        def shared():
            owned = [m.owned() for m in members]
            flat = [p for o in owned for p in o]
            return len(flat) == 6 and set(flat) == set(range(6)) and all(len(o) == 2 for o in owned) and owned
        owned = wait_until(shared, WAIT_S, "three members owning two partitions each")
        d = describe(b.bootstrap, group)
        assert d.type == ConsumerGroupType.CONSUMER and d.state == ConsumerGroupState.STABLE, (d.type, d.state)
        assert len(d.members) == 3
        assert sorted(p.partition for m in d.members for p in m.assignment.topic_partitions) == list(range(6))
        wait_until(lambda: sum(len(m.records()) for m in members) >= 300, WAIT_S, "the first 300 records")
        victim, rest = members[2], members[:2]
        victim.kill()
        # the others take over the victim's partitions once its session expires
        wait_until(lambda: rest[0].owned() | rest[1].owned() == set(range(6))
                   and not rest[0].owned() & rest[1].owned(), WAIT_S, "the survivors owning all partitions")
        produce(b.bootstrap, topic, 6, 50, "b")
        wait_until(lambda: len({r for m in members for r in m.records()}) >= 600, WAIT_S, "all 600 records")
        got = [r for m in members for r in m.records()]
        dupes = {r for r in got if got.count(r) > 1}
        # a record comes twice only if its first delivery was not committed (the victim's
        # last records, or a commit refused while its partition moved)
        first = {}
        for i, m in enumerate(members):
            for e in m.events():
                if e["ev"] == "rec" and ((e["p"], e["o"]) not in first or e["t"] < first[(e["p"], e["o"])][0]):
                    first[(e["p"], e["o"])] = (e["t"], i)
        assert all(r not in members[first[r][1]].committed() for r in dupes), dupes
        assert sorted(set(got)) == sorted((p, o) for p in range(6) for o in range(100))
        for m in rest:
            assert not [e for e in m.events() if e["ev"] == "error"], m.events()[-5:]
    finally:
        for m in members:
            if m.proc.poll() is None:
                m.stop()


def test_regex_subscription_is_a_full_match_and_picks_up_new_topics(start_broker):
    b = start_broker(FAST)
    base = unique("rx")
    create_topic(b.bootstrap, base, 1)          # matches ^base(-a)?
    create_topic(b.bootstrap, base + "-b", 1)   # does not: full match
    produce(b.bootstrap, base, 1, 5)
    produce(b.bootstrap, base + "-b", 1, 5)
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": unique("grx"), "group.protocol": "consumer",
                  "auto.offset.reset": "earliest", "topic.metadata.refresh.interval.ms": 500})
    try:
        c.subscribe([f"^{base}(-a)?"])
        seen = set()

        def got(topics):
            msg = c.poll(0.2)
            if msg is not None and not msg.error():
                seen.add(msg.topic())
            return topics <= seen
        wait_until(lambda: got({base}), WAIT_S, "records of the matching topic")
        create_topic(b.bootstrap, base + "-a", 2)
        produce(b.bootstrap, base + "-a", 2, 5)
        wait_until(lambda: got({base, base + "-a"}), WAIT_S, "records of the topic created later")
        assert base + "-b" not in seen
        assignment = {(tp.topic, tp.partition) for tp in c.assignment()}
        assert assignment == {(base, 0), (base + "-a", 0), (base + "-a", 1)}, assignment
    finally:
        c.close()


def _consumers(bootstrap, group, topic, n, **conf):
    cs = []
    for _ in range(n):
        c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "group.protocol": "consumer",
                      "auto.offset.reset": "earliest", **conf})
        c.subscribe([topic])
        cs.append(c)
    return cs


def _settle(cs, total, what):
    def settled():
        for c in cs:
            c.poll(0.05)
        asg = [sorted(tp.partition for tp in c.assignment()) for c in cs]
        flat = sorted(p for a in asg for p in a)
        return flat == list(range(total)) and max(map(len, asg)) - min(map(len, asg)) <= 1 and asg
    return wait_until(settled, WAIT_S, what)


def test_uniform_is_the_default_and_range_can_be_chosen(start_broker):
    b = start_broker(FAST)
    topic = unique("asg")
    create_topic(b.bootstrap, topic, 4)
    g1, g2 = unique("guni"), unique("grange")
    uni = _consumers(b.bootstrap, g1, topic, 2)
    rng = _consumers(b.bootstrap, g2, topic, 2, **{"group.remote.assignor": "range"})
    try:
        _settle(uni, 4, "uniform assignment")
        asg = _settle(rng, 4, "range assignment")
        assert sorted(asg) == [[0, 1], [2, 3]], asg
        assert describe(b.bootstrap, g1).partition_assignor == "uniform"
        assert describe(b.bootstrap, g2).partition_assignor == "range"
        # the CLI shows the type, the epochs and each member's assignment
        out = subprocess.run([vltava_bin(), "group", "describe", g2, "--json", "-b", b.bootstrap],
                             capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        d = json.loads(out.stdout)
        assert d["type"] == "consumer" and d["assignor"] == "range" and d["state"] == "Stable", d
        assert sorted(m["assignment"][topic] for m in d["members"]) == [[0, 1], [2, 3]], d
        assert all(m["member_epoch"] == d["assignment_epoch"] for m in d["members"]), d
        out = subprocess.run([vltava_bin(), "group", "list", "--json", "-b", b.bootstrap],
                             capture_output=True, text=True, timeout=60)
        listed = {g["group"]: g for g in json.loads(out.stdout)}
        assert listed[g2]["type"] == "consumer" and listed[g2]["members"] == 2, listed
        assert listed[g2]["state"] == "Stable", listed
    finally:
        for c in uni + rng:
            c.close()


def test_static_member_comes_back_to_its_partitions_without_a_rebalance(start_broker):
    b = start_broker({**FAST, "group.consumer.session.timeout.ms": 30000})
    topic, group = unique("st"), unique("gst")
    create_topic(b.bootstrap, topic, 4)
    conf = {"group.instance.id": "i1"}
    a, other = _consumers(b.bootstrap, group, topic, 1, **conf) + _consumers(b.bootstrap, group, topic, 1)
    try:
        asg = _settle([a, other], 4, "two members")
        d = describe(b.bootstrap, group)
        epochs = sorted(m.member_epoch for m in d.members) if hasattr(d.members[0], "member_epoch") else None
        a.close()   # a static member leaves temporarily (epoch -2): nothing moves
        a2 = _consumers(b.bootstrap, group, topic, 1, **conf)[0]
        try:
            again = _settle([a2, other], 4, "the static member back")
            assert again[0] == asg[0], (asg, again)
            d2 = describe(b.bootstrap, group)
            assert len(d2.members) == 2 and [m.group_instance_id for m in d2.members].count("i1") == 1
            if epochs is not None:
                assert sorted(m.member_epoch for m in d2.members) == epochs, "no new group epoch"
        finally:
            a2.close()
    finally:
        other.close()


# ---------------------------------------------------------------------------
# raw protocol: ConsumerGroupHeartbeat v0/v1, OffsetCommit v9
# ---------------------------------------------------------------------------

API_CONSUMER_GROUP_HEARTBEAT = 68


def heartbeat_request(corr, version, group, member_id, epoch, topics=None, regex=None, assignor=None,
                      owned=None, instance=None, rebalance_timeout_ms=30000):
    body = w.compact_string(group) + w.compact_string(member_id) + w.int32(epoch)
    body += w.compact_string(instance) + w.compact_string(None) + w.int32(rebalance_timeout_ms)
    body += w.compact_array(None if topics is None else [w.compact_string(t) for t in topics])
    if version >= 1:
        body += w.compact_string(regex)
    body += w.compact_string(assignor)
    body += w.compact_array(None if owned is None else [
        tid.bytes + w.compact_array([w.int32(p) for p in parts]) + b"\x00" for tid, parts in owned.items()])
    body += b"\x00"
    return w.request_header_v2(API_CONSUMER_GROUP_HEARTBEAT, version, corr) + body


def parse_heartbeat(payload):
    r, out = w._flexible_head(payload)
    out["member_id"] = r.compact_string()
    out["member_epoch"] = r.int32()
    out["heartbeat_interval_ms"] = r.int32()
    out["assignment"] = None
    if r.int8() >= 0:
        asg = {}
        for _ in range(r.uvarint() - 1):
            tid = uuid.UUID(bytes=r.raw(16))
            asg[tid] = [r.int32() for _ in range(r.uvarint() - 1)]
            r.tagged_fields()
        r.tagged_fields()
        out["assignment"] = asg
    r.tagged_fields()
    return out


def offset_commit_v9(corr, group, epoch, member_id, topic, offsets):
    parts = [w.int32(p) + w.int64(o) + w.int32(-1) + w.compact_string(None) + b"\x00" for p, o in offsets]
    body = w.compact_string(group) + w.int32(epoch) + w.compact_string(member_id) + w.compact_string(None)
    body += w.compact_array([w.compact_string(topic) + w.compact_array(parts) + b"\x00"]) + b"\x00"
    return w.request_header_v2(w.API_OFFSET_COMMIT, 9, corr) + body


def parse_offset_commit_v9(payload):
    r = w.Reader(payload)
    r.int32()
    r.tagged_fields()
    r.int32()
    errors = {}
    for _ in range(r.uvarint() - 1):
        t = r.compact_string()
        for _ in range(r.uvarint() - 1):
            p = r.int32()
            errors[(t, p)] = r.int16()
            r.tagged_fields()
        r.tagged_fields()
    return errors


def coordinator_ready(b, group):
    """FindCoordinator until the group's coordinator answers (creates __consumer_offsets)."""
    with w.connect(b.port) as s:
        wait_until(lambda: w.parse_find_coordinator_v1(
            w.roundtrip(s, w.find_coordinator_request_v1(1, group, 0)))["error_code"] == 0, WAIT_S, "coordinator")


def hb(s, corr, version, group, member_id, epoch, **kw):
    return parse_heartbeat(w.roundtrip(s, heartbeat_request(corr, version, group, member_id, epoch, **kw)))


def test_raw_heartbeats_epochs_and_errors(start_broker):
    b = start_broker(FAST)
    topic, group = unique("raw"), unique("graw")
    create_topic(b.bootstrap, topic, 3)
    coordinator_ready(b, group)
    me = str(uuid.uuid4())
    with w.connect(b.port) as s:
        # bad input first: nothing is created
        assert hb(s, 2, 1, group, me, 0, topics=[topic], owned={}, regex="(")["error_code"] == INVALID_REGULAR_EXPRESSION
        assert hb(s, 3, 1, group, me, 0, topics=[topic], owned={}, assignor="sticky")["error_code"] == UNSUPPORTED_ASSIGNOR
        assert hb(s, 4, 1, group, me, 0, topics=None, owned={})["error_code"] == INVALID_REQUEST
        assert hb(s, 5, 1, group, me, 3, topics=None)["error_code"] == GROUP_ID_NOT_FOUND
        # v0: the broker names the member; v1: the client does
        r0 = hb(s, 6, 0, group, "", 0, topics=[topic], owned={})
        assert r0["error_code"] == 0 and r0["member_id"] and r0["member_epoch"] == 1, r0
        assert sum(map(len, r0["assignment"].values())) == 3
        r1 = hb(s, 7, 1, group, me, 0, topics=[topic], owned={})
        assert r1["error_code"] == 0 and r1["member_id"] == me and r1["member_epoch"] == 2, r1
        assert r1["heartbeat_interval_ms"] == 300
        assert hb(s, 8, 1, group, "nobody", 1)["error_code"] == UNKNOWN_MEMBER_ID
        # a classic member cannot join a consumer group that has members
        j = w.parse_join_group(w.roundtrip(s, w.join_group_request(80, 5, group, "", 6000, 30000)), 5)
        assert j["error_code"] == INCONSISTENT_GROUP_PROTOCOL, j
        assert hb(s, 9, 1, group, me, 7)["error_code"] == FENCED_MEMBER_EPOCH
        # commits carry the member epoch
        assert parse_offset_commit_v9(w.roundtrip(s, offset_commit_v9(10, group, 1, me, topic, [(0, 5)]))) == \
            {(topic, 0): STALE_MEMBER_EPOCH}
        assert parse_offset_commit_v9(w.roundtrip(s, offset_commit_v9(11, group, 2, "nobody", topic, [(0, 5)]))) == \
            {(topic, 0): UNKNOWN_MEMBER_ID}
        assert parse_offset_commit_v9(w.roundtrip(s, offset_commit_v9(12, group, 2, me, topic, [(0, 5)]))) == \
            {(topic, 0): 0}
        # the first member leaves: the second gets everything once it heartbeats
        first = r0["member_id"]
        assert hb(s, 13, 0, group, first, -1)["member_epoch"] == -1
        r = wait_until(lambda: (x := hb(s, 14, 1, group, me, 2, owned={})) and x["error_code"] == 0
                       and sum(map(len, (x["assignment"] or {}).values())) == 3 and x, WAIT_S, "all partitions")
        assert r["member_epoch"] == 3
        assert hb(s, 15, 1, group, first, -1)["error_code"] == UNKNOWN_MEMBER_ID
    # the broker's views
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    listed = {g.group_id: g for g in a.list_consumer_groups().result(30).valid}
    assert listed[group].type == ConsumerGroupType.CONSUMER, listed[group].type
    only_classic = a.list_consumer_groups(types={ConsumerGroupType.CLASSIC}).result(30).valid
    assert group not in {g.group_id for g in only_classic}
    committed = a.list_consumer_group_offsets(
        [__import__("confluent_kafka").ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])])
    assert committed[group].result(30).topic_partitions[0].offset == 5
    # OffsetDelete: the member subscribes to the topic, so its offsets stay
    from kafka.admin import KafkaAdminClient
    from kafka.errors import GroupSubscribedToTopicError
    from kafka.structs import TopicPartition as KpTopicPartition
    kp = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        res = kp.delete_group_offsets(group, [KpTopicPartition(topic, 0)])
        assert res[KpTopicPartition(topic, 0)] is GroupSubscribedToTopicError, res
    finally:
        kp.close()


def test_a_commit_sent_before_an_epoch_bump_keeps_the_partitions_the_member_kept(start_broker):
    """KIP-1251: a member's revocation bumps its epoch; a commit it sent with the
    older epoch (before the heartbeat response arrived) is accepted for the
    partitions it was assigned at or before that epoch, and refused for the
    others (STALE_MEMBER_EPOCH per partition)."""
    b = start_broker({**FAST, "group.consumer.session.timeout.ms": 60000})  # members outlive the restart
    topic, group = unique("kip1251"), unique("gkip1251")
    create_topic(b.bootstrap, topic, 4)
    coordinator_ready(b, group)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    with w.connect(b.port) as s:
        r = hb(s, 2, 1, group, first, 0, topics=[topic], owned={})
        assert r["error_code"] == 0 and r["member_epoch"] == 1, r
        owned = r["assignment"]
        assert sum(map(len, owned.values())) == 4
        assert hb(s, 3, 1, group, second, 0, topics=[topic], owned={})["member_epoch"] == 2
        # first is told to give up two partitions, still at epoch 1
        r = hb(s, 4, 1, group, first, 1, owned=owned)
        assert r["error_code"] == 0 and r["member_epoch"] == 1, r
        kept = r["assignment"]
        kept_parts = sorted(p for parts in kept.values() for p in parts)
        given_up = sorted(set(range(4)) - set(kept_parts))
        assert len(kept_parts) == 2, r
        # it reports them revoked: epoch 2
        r = hb(s, 5, 1, group, first, 1, owned=kept)
        assert r["error_code"] == 0 and r["member_epoch"] == 2, r
        # the second member now gets the two, at epoch 2
        r = wait_until(lambda: (x := hb(s, 6, 1, group, second, 2, owned={})) and x["error_code"] == 0
                       and sum(map(len, (x["assignment"] or {}).values())) == 2 and x, WAIT_S, "released partitions")
        # first's commit with epoch 1: its kept partitions yes, the others no
        offsets = [(p, 10 + p) for p in range(4)]
        got = parse_offset_commit_v9(w.roundtrip(s, offset_commit_v9(7, group, 1, first, topic, offsets)))
        want = {(topic, p): 0 for p in kept_parts} | {(topic, p): STALE_MEMBER_EPOCH for p in given_up}
        assert got == want
        # the second member's partitions were assigned at epoch 2: epoch 1 commits none
        got = parse_offset_commit_v9(w.roundtrip(s, offset_commit_v9(8, group, 1, second, topic, offsets)))
        assert got == {(topic, p): STALE_MEMBER_EPOCH for p in range(4)}
        # an epoch newer than the member's is refused whole
        got = parse_offset_commit_v9(w.roundtrip(s, offset_commit_v9(9, group, 3, first, topic, offsets)))
        assert got == {(topic, p): STALE_MEMBER_EPOCH for p in range(4)}
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    res = a.list_consumer_group_offsets([__import__("confluent_kafka").ConsumerGroupTopicPartitions(
        group, [TopicPartition(topic, p) for p in range(4)])])[group].result(30)
    committed = {tp.partition: tp.offset for tp in res.topic_partitions}
    assert committed == {p: (10 + p if p in kept_parts else -1001) for p in range(4)}, committed
    # the assignment epochs are kept in __consumer_offsets: the same after a restart
    b.restart()
    with w.connect(b.port) as s:
        coordinator_ready(b, group)
        got = wait_until(lambda: (x := parse_offset_commit_v9(w.roundtrip(
            s, offset_commit_v9(10, group, 1, first, topic, offsets)))) and
            all(e != 14 and e != 15 and e != 16 for e in x.values()) and x, WAIT_S, "coordinator loaded")
        assert got == want


def test_group_and_offsets_survive_a_restart(start_broker):
    b = start_broker({**FAST, "group.consumer.session.timeout.ms": 60000})
    topic, group = unique("rs"), unique("grs")
    create_topic(b.bootstrap, topic, 2)
    coordinator_ready(b, group)
    me = str(uuid.uuid4())
    with w.connect(b.port) as s:
        r = hb(s, 1, 1, group, me, 0, topics=[topic], owned={}, assignor="range")
        assert r["error_code"] == 0 and r["member_epoch"] == 1
        assert parse_offset_commit_v9(w.roundtrip(s, offset_commit_v9(2, group, 1, me, topic, [(1, 9)]))) == \
            {(topic, 1): 0}
    b.stop()
    b.start()
    coordinator_ready(b, group)
    d = describe(b.bootstrap, group)
    assert d.type == ConsumerGroupType.CONSUMER and [m.member_id for m in d.members] == [me]
    assert d.partition_assignor == "range"
    with w.connect(b.port) as s:
        owned = {tid: set(parts) for tid, parts in r["assignment"].items()}
        r = hb(s, 3, 1, group, me, 1, owned=owned)
        assert r["error_code"] == 0 and r["member_epoch"] == 1, r
    a = AdminClient({"bootstrap.servers": b.bootstrap})
    import confluent_kafka
    res = a.list_consumer_group_offsets([confluent_kafka.ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 1)])])
    assert res[group].result(30).topic_partitions[0].offset == 9
    # a group with members is not deleted; once empty it is, offsets and all
    try:
        a.delete_consumer_groups([group])[group].result(30)
        raise AssertionError("a non-empty group was deleted")
    except confluent_kafka.KafkaException as e:
        assert e.args[0].code() == confluent_kafka.KafkaError.NON_EMPTY_GROUP, e
    with w.connect(b.port) as s:
        assert hb(s, 4, 1, group, me, -1)["error_code"] == 0
    assert describe(b.bootstrap, group).state == ConsumerGroupState.EMPTY
    a.delete_consumer_groups([group])[group].result(30)
    assert group not in {g.group_id for g in a.list_consumer_groups().result(30).valid}
    b.stop()
    b.start()
    coordinator_ready(b, group)
    assert group not in {g.group_id for g in a.list_consumer_groups().result(30).valid}, "deleted for good"


NODE_CONSUMER = Path(__file__).resolve().parents[1] / "node" / "kip848-consumer.mjs"


def test_platformatic_and_librdkafka_members_share_a_group(start_broker):
    """@platformatic/kafka's KIP-848 consumer (heartbeat v0/v1, null regex) and a
    librdkafka member in one group: disjoint, complete assignments, every record once."""
    b = start_broker(FAST)
    topic, group = unique("mixed"), unique("gmixed")
    create_topic(b.bootstrap, topic, 4)
    produce(b.bootstrap, topic, 4, 20)
    node = subprocess.Popen(["node", str(NODE_CONSUMER), b.bootstrap, group, topic], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=NODE_CONSUMER.parent)
    events = []
    import threading
    reader = threading.Thread(target=lambda: events.extend(json.loads(l) for l in node.stdout), daemon=True)
    reader.start()
    c = _consumers(b.bootstrap, group, topic, 1)[0]
    got = set()
    try:
        def node_assigned():
            return next((e["assigned"] for e in reversed(list(events)) if "assigned" in e), [])

        def both():
            msg = c.poll(0.1)
            if msg is not None and not msg.error():
                got.add((msg.partition(), msg.offset()))
            mine = {tp.partition for tp in c.assignment()}
            theirs = {p for _, p in node_assigned()}
            return mine and theirs and not mine & theirs and mine | theirs == set(range(4))
        wait_until(both, WAIT_S, "both members owning disjoint partitions")

        def all_records():
            msg = c.poll(0.1)
            if msg is not None and not msg.error():
                got.add((msg.partition(), msg.offset()))
            theirs = {(e["record"][1], e["record"][2]) for e in list(events) if "record" in e}
            return len(got | theirs) == 80
        wait_until(all_records, WAIT_S, "all 80 records between the two")
        assert not [e for e in events if "error" in e], events
        d = describe(b.bootstrap, group)
        assert len(d.members) == 2 and d.state == ConsumerGroupState.STABLE
    finally:
        c.close()
        node.stdin.close()
        node.wait(30)


def test_java_client_preview_heartbeat_v0(start_broker):
    """kafka-clients 3.9's KIP-848 preview (ConsumerGroupHeartbeat v0, no regex field)."""
    from helpers import java_ok_lines, run_java
    b = start_broker(FAST)
    topic, group = unique("java848"), unique("gjava848")
    create_topic(b.bootstrap, topic, 4)
    res = run_java("Kip848Preview", b.bootstrap, topic, group, 4, 200, timeout=180)
    assert java_ok_lines(res, "Kip848Preview") == ["OK 200"]
    d = describe(b.bootstrap, group)
    assert d.type == ConsumerGroupType.CONSUMER


def test_consumer_group_moves_with_its_coordinator(tmp_path):
    """3 nodes: a KIP-848 member joins and commits at the coordinator; the coordinator is
    SIGKILLed; the node that takes over __consumer_offsets' partition knows the member,
    its epoch, its assignment and the committed offset."""
    import cluster as cl
    # entering the block starts the cluster (a second start() would lay out and spawn
    # another set of nodes, leaving the first one's processes running after the test)
    with cl.Cluster(tmp_path / "c", n=3, settings={**FAST, "group.consumer.session.timeout.ms": 60000}) as c:
        topic, group = unique("moving"), unique("gmoving")
        c.create_topic(topic, partitions=2, replication_factor=3)
        c.find_coordinator(group)   # creates __consumer_offsets
        gp = cl.group_partition(group)
        c.wait_isr("__consumer_offsets", gp, 3, timeout=WAIT_S)
        me = str(uuid.uuid4())
        joined = {}

        def join():
            # The metadata can name the partition's leader a moment before that node has
            # taken the leadership and loaded its groups: it answers NOT_COORDINATOR (or
            # COORDINATOR_LOAD_IN_PROGRESS) meanwhile, and a client finds the coordinator
            # again and retries, as here. The member has not joined then (epoch 0 again).
            coord = c.find_coordinator(group)
            node = c.node(coord)
            with w.connect(node.client_port, node.host) as s:
                r = hb(s, 1, 1, group, me, 0, topics=[topic], owned={})
                if r["error_code"] in (COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE,
                                       NOT_COORDINATOR):
                    return False
                assert r["error_code"] == 0 and r["member_epoch"] == 1, r
                assert parse_offset_commit_v9(w.roundtrip(s, offset_commit_v9(2, group, 1, me, topic, [(0, 7)]))) == \
                    {(topic, 0): 0}
            joined.update(coord=coord, r=r)
            return True
        wait_until(join, WAIT_S, "the coordinator to take the member")
        coord, r = joined["coord"], joined["r"]
        owned = {tid: set(parts) for tid, parts in r["assignment"].items()}
        c.kill(coord)
        c.wait_leader_not("__consumer_offsets", gp, coord, timeout=WAIT_S)
        new = c.find_coordinator(group)
        assert new != coord
        node = c.node(new)

        def answered():
            with w.connect(node.client_port, node.host) as s:
                x = hb(s, 3, 1, group, me, 1, owned=owned)
            return x["error_code"] == 0 and x
        r2 = wait_until(answered, WAIT_S, "the new coordinator to know the member")
        assert r2["member_epoch"] == 1, r2
        import confluent_kafka
        a = AdminClient({"bootstrap.servers": c.bootstrap})
        res = a.list_consumer_group_offsets([confluent_kafka.ConsumerGroupTopicPartitions(group, [TopicPartition(topic, 0)])])
        assert res[group].result(30).topic_partitions[0].offset == 7


def test_an_empty_group_changes_protocol_and_keeps_its_offsets(start_broker):
    """A classic group drained, then joined with group.protocol=consumer: it becomes a
    consumer group and resumes from the classic commits; drained again, a classic member
    takes it back from the consumer group's commits."""
    b = start_broker(FAST)
    topic, group = unique("swap"), unique("gswap")
    create_topic(b.bootstrap, topic, 2)
    produce(b.bootstrap, topic, 2, 10, "one")

    def run(protocol, want):
        conf = {"bootstrap.servers": b.bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                "enable.auto.commit": False}
        if protocol == "consumer":
            conf["group.protocol"] = "consumer"
        else:
            conf.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
        c = Consumer(conf)
        c.subscribe([topic])
        got = []
        try:
            def enough():
                msg = c.poll(0.2)
                if msg is not None and not msg.error():
                    got.append(msg.value().decode())
                    c.commit(message=msg, asynchronous=False)
                return len(got) >= want
            wait_until(enough, WAIT_S, f"{want} records with the {protocol} protocol")
        finally:
            c.close()
        return got

    first = run("classic", 20)
    assert sorted(first) == sorted(f"one-{p}-{i}" for p in range(2) for i in range(10))
    produce(b.bootstrap, topic, 2, 5, "two")
    second = run("consumer", 10)
    assert sorted(second) == sorted(f"two-{p}-{i}" for p in range(2) for i in range(5)), second
    assert describe(b.bootstrap, group).type == ConsumerGroupType.CONSUMER
    produce(b.bootstrap, topic, 2, 5, "three")
    third = run("classic", 10)
    assert sorted(third) == sorted(f"three-{p}-{i}" for p in range(2) for i in range(5)), third
    assert describe(b.bootstrap, group).type == ConsumerGroupType.CLASSIC


def test_group_consumer_max_size(start_broker):
    b = start_broker({**FAST, "group.consumer.max.size": 1})
    topic, group = unique("max"), unique("gmax")
    create_topic(b.bootstrap, topic, 1)
    coordinator_ready(b, group)
    with w.connect(b.port) as s:
        first = hb(s, 1, 1, group, str(uuid.uuid4()), 0, topics=[topic], owned={})
        assert first["error_code"] == 0
        assert hb(s, 2, 1, group, str(uuid.uuid4()), 0, topics=[topic], owned={})["error_code"] == 81  # GROUP_MAX_SIZE_REACHED
        again = hb(s, 3, 1, group, first["member_id"], first["member_epoch"])
        assert again["error_code"] == 0, "a member already in stays"
