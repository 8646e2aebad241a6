"""Online migration between the classic and the KIP-848 consumer protocol
(group.consumer.migration.policy), with confluent-kafka members in their own
processes (kip848_member.py --protocol): a classic cooperative-sticky group of two
members upgraded online when one restarts with group.protocol=consumer (the
classic member keeps working inside the consumer group), then fully consumer,
then downgraded online back to classic when the last consumer-protocol member
leaves; no record is lost on the way (duplicates allowed). The group survives a
broker restart in the middle of a migration, and the policy `disabled` refuses
the upgrade with GROUP_ID_NOT_FOUND as Kafka does."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from pathlib import Path

from confluent_kafka import ConsumerGroupType, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

import kafka_wire as w
from helpers import create_topic, unique, wait_until
import test_kip848 as kip848
from test_kip848 import FAST, GROUP_ID_NOT_FOUND, coordinator_ready, hb

WAIT_S = 90  # a deadline, not a verdict
PARTS = 6


class Member(kip848.Member):
    """A member process (kip848_member.py) speaking `protocol`."""

    def __init__(self, bootstrap, group, topic, workdir: Path, name, protocol):
        self.name, self.protocol = name, protocol
        self.out = workdir / f"{name}.jsonl"
        self.proc = subprocess.Popen([sys.executable, kip848.MEMBER, bootstrap, group, topic, str(self.out),
                                      "--protocol", protocol],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def records(self):
        return set(super().records())

    def kill(self):
        if self.proc.poll() is None:
            super().kill()


def group_type(bootstrap, group):
    a = AdminClient({"bootstrap.servers": bootstrap})
    listed = {g.group_id: g for g in a.list_consumer_groups().result(30).valid}
    return listed[group].type if group in listed else None


class Feeder:
    """Produces records to every partition until stopped (records produced during
    the switches must be consumed too)."""

    def __init__(self, bootstrap, topic):
        self.bootstrap, self.topic = bootstrap, topic
        self.done = threading.Event()
        self.errors = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        try:
            p = Producer({"bootstrap.servers": self.bootstrap, "linger.ms": 5})
            i = 0
            while not self.done.is_set():
                for part in range(PARTS):
                    p.produce(self.topic, f"f-{part}-{i}".encode(), partition=part)
                i += 1
                p.poll(0)
                self.done.wait(0.05)
            assert p.flush(30) == 0
        except Exception as e:  # reaches the test through stop()
            self.errors.append(e)

    def stop(self):
        self.done.set()
        self.thread.join(60)
        assert not self.thread.is_alive() and not self.errors, self.errors


def end_offsets(bootstrap, topic):
    from confluent_kafka import Consumer
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "probe-" + uuid.uuid4().hex})
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1] for p in range(PARTS)}
    finally:
        c.close()


def shares_all(members):
    owned = [m.owned() for m in members]
    flat = [p for o in owned for p in o]
    return all(owned) and len(flat) == len(set(flat)) == PARTS


def all_consumed(bootstrap, topic, everyone):
    ends = end_offsets(bootstrap, topic)
    seen = set()
    for m in everyone:
        seen |= m.records()
    missing = [(p, o) for p in range(PARTS) for o in range(ends[p]) if (p, o) not in seen]
    return not missing


def test_classic_group_upgraded_online_and_downgraded_back(start_broker, tmp_path):
    b = start_broker(FAST)
    topic, group = unique("mig"), unique("gmig")
    create_topic(b.bootstrap, topic, PARTS)
    Producer_ = Producer({"bootstrap.servers": b.bootstrap})
    for part in range(PARTS):
        for i in range(20):
            Producer_.produce(topic, f"a-{part}-{i}".encode(), partition=part)
    assert Producer_.flush(30) == 0
    everyone = []

    def start(name, protocol):
        m = Member(b.bootstrap, group, topic, tmp_path, name, protocol)
        everyone.append(m)
        return m

    feeder = None
    try:
        c0, c1 = start("c0", "classic"), start("c1", "classic")
        wait_until(lambda: shares_all([c0, c1]), WAIT_S, "two classic members share the partitions")
        assert group_type(b.bootstrap, group) == ConsumerGroupType.CLASSIC
        feeder = Feeder(b.bootstrap, topic)
        # c1 restarts with the consumer protocol: the classic group must be stable
        # (c0 alone) when its first heartbeat comes
        c1.stop()
        wait_until(lambda: c0.owned() == set(range(PARTS)), WAIT_S, "c0 takes all partitions")
        k1 = start("k1", "consumer")
        wait_until(lambda: group_type(b.bootstrap, group) == ConsumerGroupType.CONSUMER, WAIT_S, "upgraded")
        wait_until(lambda: shares_all([c0, k1]), WAIT_S, "classic c0 and consumer k1 share the partitions")
        admin = AdminClient({"bootstrap.servers": b.bootstrap})
        d = admin.describe_consumer_groups([group])[group].result(30)
        assert d.type == ConsumerGroupType.CONSUMER and len(d.members) == 2, d
        # the classic member goes on consuming and committing inside the consumer group
        seen = len(c0.records())
        wait_until(lambda: len(c0.records()) > seen, WAIT_S, "c0 consumes after the upgrade")
        # c0 restarts with the consumer protocol too
        c0.stop()
        k0 = start("k0", "consumer")
        wait_until(lambda: shares_all([k0, k1]), WAIT_S, "two consumer members share the partitions")
        assert group_type(b.bootstrap, group) == ConsumerGroupType.CONSUMER
        # and back: k1 restarts classic (joins the consumer group as a classic member) ...
        k1.stop()
        c1b = start("c1b", "classic")
        wait_until(lambda: shares_all([k0, c1b]), WAIT_S, "consumer k0 and classic c1b share the partitions")
        assert group_type(b.bootstrap, group) == ConsumerGroupType.CONSUMER
        # ... and when the last consumer-protocol member leaves, the group is classic again
        k0.stop()
        wait_until(lambda: group_type(b.bootstrap, group) == ConsumerGroupType.CLASSIC, WAIT_S, "downgraded")
        wait_until(lambda: c1b.owned() == set(range(PARTS)), WAIT_S, "c1b takes all partitions")
        c0b = start("c0b", "classic")
        wait_until(lambda: shares_all([c0b, c1b]), WAIT_S, "two classic members share the partitions again")
        assert group_type(b.bootstrap, group) == ConsumerGroupType.CLASSIC
        feeder.stop()
        feeder = None
        wait_until(lambda: all_consumed(b.bootstrap, topic, everyone), WAIT_S, "every record consumed")
    finally:
        if feeder:
            feeder.done.set()
        for m in everyone:
            m.kill()


def test_a_migrating_group_survives_a_broker_restart(start_broker, tmp_path):
    b = start_broker({**FAST, "group.consumer.session.timeout.ms": 60000})
    topic, group = unique("migr"), unique("gmigr")
    create_topic(b.bootstrap, topic, PARTS)
    everyone = []
    try:
        c0 = Member(b.bootstrap, group, topic, tmp_path, "c0", "classic")
        everyone.append(c0)
        wait_until(lambda: c0.owned() == set(range(PARTS)), WAIT_S, "c0 owns all partitions")
        k1 = Member(b.bootstrap, group, topic, tmp_path, "k1", "consumer")
        everyone.append(k1)
        wait_until(lambda: shares_all([c0, k1]), WAIT_S, "classic c0 and consumer k1 share the partitions")
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        before = a.describe_consumer_groups([group])[group].result(30)
        assert before.type == ConsumerGroupType.CONSUMER and len(before.members) == 2
        b.stop()
        b.start()
        coordinator_ready(b, group)
        a = AdminClient({"bootstrap.servers": b.bootstrap})
        after = a.describe_consumer_groups([group])[group].result(30)
        assert after.type == ConsumerGroupType.CONSUMER, after
        assert {m.member_id for m in before.members} <= {m.member_id for m in after.members} | set(), after
        # both members are back at work: new records reach them
        Producer_ = Producer({"bootstrap.servers": b.bootstrap})
        for part in range(PARTS):
            Producer_.produce(topic, f"r-{part}".encode(), partition=part)
        assert Producer_.flush(30) == 0
        wait_until(lambda: all_consumed(b.bootstrap, topic, everyone), WAIT_S, "records after the restart")
        wait_until(lambda: shares_all([c0, k1]), WAIT_S, "both members still share the partitions")
    finally:
        for m in everyone:
            m.kill()


def test_upgrade_refused_when_the_policy_is_disabled(start_broker, tmp_path):
    b = start_broker({**FAST, "group.consumer.migration.policy": "disabled"})
    topic, group = unique("mdis"), unique("gmdis")
    create_topic(b.bootstrap, topic, 2)
    c0 = Member(b.bootstrap, group, topic, tmp_path, "c0", "classic")
    try:
        wait_until(lambda: c0.owned() == {0, 1}, WAIT_S, "classic member owns both partitions")
        coordinator_ready(b, group)
        with w.connect(b.port) as s:
            r = hb(s, 1, 1, group, str(uuid.uuid4()), 0, topics=[topic], owned={})
            assert r["error_code"] == GROUP_ID_NOT_FOUND, r
        assert group_type(b.bootstrap, group) == ConsumerGroupType.CLASSIC
        # the classic group goes on
        Producer_ = Producer({"bootstrap.servers": b.bootstrap})
        Producer_.produce(topic, b"x", partition=0)
        assert Producer_.flush(30) == 0
        wait_until(lambda: (0, 0) in c0.records(), WAIT_S, "the classic member consumes")
    finally:
        c0.kill()
