"""Consumer groups with real clients: assignment, rebalancing on join, leave
and SIGKILL, static membership, cooperative-sticky, committed offsets across
broker restarts, independent groups, and the admin views of groups."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from helpers import create_topic, unique

MEMBER = str(Path(__file__).with_name("group_member.py"))
SESSION_MS = 6000


def wait_until(cond, timeout, what, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return time.monotonic()
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Member:
    """A group member in its own process (tests/integration/group_member.py)."""

    def __init__(self, bootstrap, group, topic, workdir: Path, name, instance=None, assignor="range",
                 session_ms=SESSION_MS):
        self.name = name
        self.out = workdir / f"{name}.jsonl"
        self.args = [sys.executable, MEMBER, bootstrap, group, topic, str(self.out),
                     "--assignor", assignor, "--session-ms", str(session_ms)]
        if instance:
            self.args += ["--instance", instance]
        self.cooperative = assignor == "cooperative-sticky"
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL)

    def events(self):
        if not self.out.exists():
            return []
        evs = []
        for line in self.out.read_text().splitlines():
            try:
                evs.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut by SIGKILL
        return evs

    def assignment(self):
        current = set()
        for ev in self.events():
            if ev["ev"] == "start":
                current = set()
            elif ev["ev"] == "assign":
                current = current | set(ev["parts"]) if self.cooperative else set(ev["parts"])
            elif ev["ev"] == "revoke":
                current = current - set(ev["parts"]) if self.cooperative else set()
            elif ev["ev"] == "closed":
                current = set()
        return current

    def values(self):
        return [ev["v"] for ev in self.events() if ev["ev"] == "rec"]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=10)

    def alive(self):
        return self.proc.poll() is None


@pytest.fixture
def members():
    started: list[Member] = []
    yield started
    for m in started:
        if m.alive():
            m.kill()


def produce(bootstrap, topic, values, key_prefix="k"):
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    errors = []
    for i, v in enumerate(values):
        p.produce(topic, key=f"{key_prefix}{i}", value=v, on_delivery=lambda e, m: e and errors.append(e))
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(30) == 0
    assert not errors, errors


def split_ok(ms, partitions):
    """Every partition assigned to exactly one of the live members `ms`."""
    seen = []
    for m in ms:
        seen.extend(m.assignment())
    return sorted(seen) == list(range(partitions))


def consumed_all(ms, expected):
    got = set()
    for m in ms:
        got.update(m.values())
    return expected <= got


@pytest.fixture
def gbroker(start_broker):
    # No initial rebalance delay: members join one by one in these tests.
    return start_broker({"group.initial.rebalance.delay.ms": 0})


def test_three_members_share_six_partitions_and_read_everything(gbroker, members, tmp_path):
    topic, group = unique("g6"), unique("grp")
    create_topic(gbroker.bootstrap, topic, 6)
    values = [f"v{i}" for i in range(1200)]
    produce(gbroker.bootstrap, topic, values)
    for i in range(3):
        members.append(Member(gbroker.bootstrap, group, topic, tmp_path, f"m{i}"))
    wait_until(lambda: split_ok(members, 6) and all(len(m.assignment()) == 2 for m in members), 30,
               "3 members with 2 partitions each")
    wait_until(lambda: consumed_all(members, set(values)), 30, "every record consumed")


def test_join_leave_and_kill_move_partitions_without_losing_records(gbroker, members, tmp_path):
    topic, group = unique("gr"), unique("grp")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 6)
    produced = []
    stop = threading.Event()

    def producer():
        p = Producer({"bootstrap.servers": bs, "linger.ms": 1})
        i = 0
        while not stop.is_set():
            v = f"r{i}"
            p.produce(topic, key=f"k{i}", value=v)
            produced.append(v)
            i += 1
            p.poll(0)
            time.sleep(0.005)
        assert p.flush(30) == 0

    t = threading.Thread(target=producer)
    t.start()
    try:
        a = Member(bs, group, topic, tmp_path, "a")
        b = Member(bs, group, topic, tmp_path, "b")
        members.extend([a, b])
        wait_until(lambda: split_ok([a, b], 6) and len(a.assignment()) == 3, 30, "a and b share 6 partitions")

        c = Member(bs, group, topic, tmp_path, "c")
        members.append(c)
        t0 = time.monotonic()
        wait_until(lambda: split_ok([a, b, c], 6) and len(c.assignment()) == 2, 30, "c gets its share after joining")
        print(f"rebalance after a join: {time.monotonic() - t0:.2f}s")

        t0 = time.monotonic()
        b.stop()  # clean close: LeaveGroup, immediate rebalance
        took = wait_until(lambda: split_ok([a, c], 6), 20, "b's partitions move after it leaves") - t0
        print(f"rebalance after a leave: {took:.2f}s")
        assert took < SESSION_MS / 1000, "a clean leave must not wait for the session timeout"

        t0 = time.monotonic()
        c.kill()  # no LeaveGroup: the session must expire
        took = wait_until(lambda: a.assignment() == set(range(6)), SESSION_MS / 1000 + 15,
                          "the killed member's partitions move to a") - t0
        print(f"rebalance after a kill: {took:.2f}s")
        assert took >= SESSION_MS / 1000 - 1.0, "partitions moved before the session expired"
    finally:
        stop.set()
        t.join()
    expected = set(produced)
    wait_until(lambda: consumed_all(members, expected), 30, "every produced record consumed by someone")


def test_static_member_restart_gets_its_partitions_back_without_rebalance(gbroker, members, tmp_path):
    topic, group = unique("gs"), unique("grp")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 4)
    a = Member(bs, group, topic, tmp_path, "a", instance="inst-a", session_ms=15000)
    b = Member(bs, group, topic, tmp_path, "b", instance="inst-b", session_ms=15000)
    members.extend([a, b])
    wait_until(lambda: split_ok([a, b], 4) and len(a.assignment()) == 2, 40, "a and b stable")
    before_a, before_b = a.assignment(), b.assignment()
    b_events_before = len([e for e in b.events() if e["ev"] in ("assign", "revoke")])
    a.kill()
    time.sleep(1)
    a.start()  # same instance id, well within the session timeout
    wait_until(lambda: a.assignment() == before_a, 20, "a gets its old partitions back")
    time.sleep(3)
    b_events_after = len([e for e in b.events() if e["ev"] in ("assign", "revoke")])
    assert b.assignment() == before_b
    assert b_events_after == b_events_before, "b saw a rebalance although a is a static member"


def test_cooperative_sticky_moves_only_what_it_must(gbroker, members, tmp_path):
    topic, group = unique("gc"), unique("grp")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 6)
    a = Member(bs, group, topic, tmp_path, "a", assignor="cooperative-sticky")
    b = Member(bs, group, topic, tmp_path, "b", assignor="cooperative-sticky")
    members.extend([a, b])
    wait_until(lambda: split_ok([a, b], 6) and len(a.assignment()) == 3, 30, "a and b share 6 partitions")
    kept_a, kept_b = a.assignment(), b.assignment()
    seen_before_c = {m.name: len(m.events()) for m in (a, b)}
    c = Member(bs, group, topic, tmp_path, "c", assignor="cooperative-sticky")
    members.append(c)
    wait_until(lambda: split_ok([a, b, c], 6) and len(c.assignment()) == 2, 30, "c gets 2 partitions")
    # incremental: a and b only lost partitions, never had theirs all revoked and re-assigned
    assert a.assignment() <= kept_a and b.assignment() <= kept_b
    for m in (a, b):
        revokes = [set(e["parts"]) for e in m.events()[seen_before_c[m.name]:] if e["ev"] == "revoke"]
        assert sum(len(r) for r in revokes) == 1, f"{m.name} gave up more than one partition to c: {revokes}"


def test_two_groups_read_the_same_topic_independently(gbroker, members, tmp_path):
    topic = unique("g2")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 3)
    values = [f"x{i}" for i in range(500)]
    produce(bs, topic, values)
    g1 = Member(bs, unique("one"), topic, tmp_path, "one")
    g2 = Member(bs, unique("two"), topic, tmp_path, "two")
    members.extend([g1, g2])
    wait_until(lambda: set(values) <= set(g1.values()) and set(values) <= set(g2.values()), 30,
               "both groups read every record")
    assert g1.assignment() == g2.assignment() == {0, 1, 2}


def consume_in_group(bs, topic, group, n, reset="earliest", commit=True, timeout=30):
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "auto.offset.reset": reset,
                  "enable.auto.commit": False, "session.timeout.ms": SESSION_MS})
    c.subscribe([topic])
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is None:
            continue
        if m.error():
            c.close()
            raise KafkaException(m.error())
        got.append((m.partition(), m.offset(), m.value().decode()))
        if commit:
            c.commit(message=m, asynchronous=False)
    c.close()
    return got


@pytest.mark.parametrize("stop", ["sigterm", "sigkill"])
def test_committed_offsets_survive_broker_restart(gbroker, stop):
    topic, group = unique("go"), unique("grp")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 2)
    values = [f"o{i}" for i in range(400)]
    produce(bs, topic, values)
    first = consume_in_group(bs, topic, group, 150)
    assert len(first) == 150
    committed_before = {p: o + 1 for p, o, _ in first}  # last consumed offset + 1 per partition
    if stop == "sigterm":
        assert gbroker.stop() == 0
    else:
        gbroker.kill()
    gbroker.start()
    c = Consumer({"bootstrap.servers": bs, "group.id": group})
    committed = {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, p) for p in range(2)], timeout=10)}
    c.close()
    for p, off in committed_before.items():
        assert committed[p] == off, f"partition {p}: committed {committed[p]}, expected {off}"
    rest = consume_in_group(bs, topic, group, 400 - 150)
    for p, o, _ in rest:
        assert o >= committed_before.get(p, 0), "a record before the committed offset came again"
    assert sorted(v for *_, v in first + rest) == sorted(values), "resumed exactly after the last commit"


def test_auto_offset_reset_earliest_latest_none(gbroker):
    topic = unique("gz")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 1)
    produce(bs, topic, [f"old{i}" for i in range(10)])
    assert len(consume_in_group(bs, topic, unique("e"), 10, reset="earliest")) == 10

    # latest: only records produced after the member is positioned
    group = unique("l")
    c = Consumer({"bootstrap.servers": bs, "group.id": group, "auto.offset.reset": "latest",
                  "enable.auto.commit": False})
    c.subscribe([topic])
    deadline = time.monotonic() + 20
    while not c.assignment() and time.monotonic() < deadline:
        c.poll(0.2)
    positioned = False
    while not positioned and time.monotonic() < deadline:
        c.poll(0.2)
        positioned = c.position([TopicPartition(topic, 0)])[0].offset >= 0
    produce(bs, topic, ["new0", "new1"])
    got = []
    while len(got) < 2 and time.monotonic() < deadline + 10:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    assert got == ["new0", "new1"]

    # none: no committed offset is an error for the application
    c = Consumer({"bootstrap.servers": bs, "group.id": unique("n"), "auto.offset.reset": "error"})
    c.subscribe([topic])
    err = None
    deadline = time.monotonic() + 20
    while err is None and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and m.error():
            err = m.error()
    c.close()
    assert err is not None and err.code() == KafkaError._AUTO_OFFSET_RESET


def test_admin_lists_describes_and_deletes_groups(gbroker, members, tmp_path):
    topic, group = unique("ga"), unique("grp")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 4)
    produce(bs, topic, [f"a{i}" for i in range(100)])
    m = Member(bs, group, topic, tmp_path, "m")
    members.append(m)
    wait_until(lambda: len(m.values()) == 100, 30, "member consumed everything")
    a = AdminClient({"bootstrap.servers": bs})
    listed = {g.group_id: g for g in a.list_consumer_groups().result(10).valid}
    assert group in listed and listed[group].state.name == "STABLE"
    desc = a.describe_consumer_groups([group])[group].result(10)
    assert desc.state.name == "STABLE" and desc.partition_assignor == "range"
    assert len(desc.members) == 1
    assert sorted(tp.partition for tp in desc.members[0].assignment.topic_partitions) == [0, 1, 2, 3]

    # a group with members cannot be deleted
    with pytest.raises(KafkaException) as e:
        a.delete_consumer_groups([group])[group].result(10)
    assert e.value.args[0].code() == KafkaError.NON_EMPTY_GROUP

    offsets = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(10)
    committed = {tp.partition: tp.offset for tp in offsets.topic_partitions}
    lows_highs = {}
    c = Consumer({"bootstrap.servers": bs, "group.id": "watermarks"})
    for p in range(4):
        lows_highs[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
    c.close()
    assert sum(high - committed[p] for p, (_, high) in lows_highs.items()) == 0, "lag is zero after consuming all"

    m.stop()
    wait_until(lambda: a.describe_consumer_groups([group])[group].result(10).state.name == "EMPTY", 15, "group empty")
    a.delete_consumer_groups([group])[group].result(10)
    listed = {g.group_id for g in a.list_consumer_groups().result(10).valid}
    assert group not in listed
    with pytest.raises(KafkaException) as e:
        a.delete_consumer_groups([group])[group].result(10)
    assert e.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND


def test_kafka_python_group_consumer_and_admin(gbroker):
    from kafka import KafkaAdminClient, KafkaConsumer

    topic, group = unique("gk"), unique("grp")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 2)
    produce(bs, topic, [f"p{i}" for i in range(200)])
    c = KafkaConsumer(topic, bootstrap_servers=bs, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=5000)
    got = []
    for msg in c:
        got.append(msg.value.decode())
        if len(got) == 120:
            break
    c.commit()
    c.close()
    assert len(got) == 120
    admin = KafkaAdminClient(bootstrap_servers=bs)
    groups = {g["group_id"] for g in admin.list_groups()}
    assert group in groups
    offsets = admin.list_group_offsets(group)[group]
    assert sum(o.offset for o in offsets.values()) == 120
    # a second consumer in the group continues after the commit
    c = KafkaConsumer(topic, bootstrap_servers=bs, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False, consumer_timeout_ms=5000)
    rest = [msg.value.decode() for msg in c]
    c.close()
    assert sorted(got + rest) == sorted(f"p{i}" for i in range(200))
    admin.delete_groups([group])
    assert group not in {g["group_id"] for g in admin.list_groups()}
    admin.close()


def test_offset_delete(gbroker):
    topic, group = unique("gd"), unique("grp")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 2)
    produce(bs, topic, [f"d{i}" for i in range(20)])
    consume_in_group(bs, topic, group, 20)
    from kafka import KafkaAdminClient
    from kafka import TopicPartition as KTP

    kadmin = KafkaAdminClient(bootstrap_servers=bs)
    result = kadmin.delete_group_offsets(group, [KTP(topic, 0)])
    kadmin.close()
    assert list(result.values()) and all(not getattr(e, "errno", 0) for e in result.values()), result
    a = AdminClient({"bootstrap.servers": bs})
    offsets = a.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group)])[group].result(10)
    left = {tp.partition for tp in offsets.topic_partitions if tp.offset >= 0}
    assert left == {1}


def test_kcat_balanced_consumer(gbroker):
    topic, group = unique("gkc"), unique("grp")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 3)
    values = [f"kc{i}" for i in range(50)]
    produce(bs, topic, values)
    out = subprocess.run(["kcat", "-b", bs, "-G", group, "-c", "50", "-f", "%s\\n",
                          "-X", "auto.offset.reset=earliest", topic],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert sorted(out.stdout.split()) == sorted(values)
    # the group committed its progress: a second run from the same group reads nothing old
    produce(bs, topic, ["after"], key_prefix="z")
    out = subprocess.run(["kcat", "-b", bs, "-G", group, "-c", "1", "-f", "%s\\n", topic],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["after"]


def test_clients_cannot_write_to_internal_topics(gbroker):
    bs = gbroker.bootstrap
    topic = unique("gi")
    create_topic(bs, topic, 1)
    produce(bs, topic, ["one"])
    assert len(consume_in_group(bs, topic, unique("grp"), 1)) == 1  # the group creates __consumer_offsets
    errors = []
    p = Producer({"bootstrap.servers": bs, "message.timeout.ms": 10000})
    p.produce("__consumer_offsets", key=b"garbage", value=b"garbage", partition=0,
              on_delivery=lambda e, m: errors.append(e))
    p.flush(15)
    assert errors and errors[0] is not None and errors[0].code() == KafkaError.TOPIC_EXCEPTION, errors
