"""Consumer groups with real clients: assignment (range, roundrobin,
cooperative-sticky), rebalancing on join, leave and SIGKILL, static membership,
group.max.size and the session timeout bounds, committed offsets across broker
restarts, independent groups, and the admin views of groups.

Members run as their own processes (group_member.py): every test checks that each
record was delivered exactly once across the members (a second delivery is allowed
only for a record whose commit did not succeed, e.g. when its member was killed),
that no member reported an error, and that stopped members exited 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient

from helpers import Worker, create_topic, unique

MEMBER = str(Path(__file__).with_name("group_member.py"))
SESSION_MS = 6000
LONG_SESSION_MS = 120_000   # longer than any deadline of these tests
WAIT_S = 60                 # a generous deadline for a group to settle


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
        self.killed = False
        self.expect_errors = False
        self.exit_codes = []
        self.start()

    def start(self):
        self.killed = False
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
        """Every value delivered to this member, in order, duplicates included."""
        return [ev["v"] for ev in self.events() if ev["ev"] == "rec"]

    def deliveries(self):
        """[(value, committed)] in delivery order: committed when the commit of its offset
        succeeded (then no member may get the value again)."""
        evs = self.events()
        out = []
        for i, ev in enumerate(evs):
            if ev["ev"] == "rec":
                nxt = evs[i + 1] if i + 1 < len(evs) else None
                ok = nxt is not None and nxt["ev"] == "commit_ok" and (nxt["p"], nxt["o"]) == (
                    ev["p"], ev["o"])
                out.append((ev["v"], ok))
        return out

    def errors(self):
        return [ev for ev in self.events() if ev["ev"] == "error"]

    def stop(self):
        """SIGTERM: the member leaves the group (LeaveGroup) and exits 0."""
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=60)
        self.exit_codes.append(code)
        assert code == 0, f"member {self.name} exited {code} after SIGTERM"
        assert self.events()[-1]["ev"] == "closed", f"member {self.name} did not close its consumer"

    def kill(self):
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.killed = True

    def alive(self):
        return self.proc.poll() is None


@pytest.fixture
def members():
    """Members started by the test; at the end none may have reported an error or died on
    its own."""
    started: list[Member] = []
    yield started
    problems = []
    for m in started:
        if m.alive():
            m.kill()
        elif not m.killed and m.proc.returncode != 0:
            problems.append(f"member {m.name} exited {m.proc.returncode}")
        if m.errors() and not m.expect_errors:
            problems.append(f"member {m.name} reported errors: {m.errors()[:5]}")
    assert not problems, "; ".join(problems)


def assert_exactly_once(ms, expected):
    """Every expected value was delivered to the members, nothing else was, and no value
    was delivered twice unless its earlier deliveries were never committed."""
    deliveries = {}
    for m in ms:
        for v, committed in m.deliveries():
            deliveries.setdefault(v, []).append((m.name, committed))
    counts = Counter({v: len(d) for v, d in deliveries.items()})
    missing = sorted(set(expected) - set(deliveries))
    extra = sorted(set(deliveries) - set(expected))
    assert not missing, f"{len(missing)} records never delivered, e.g. {missing[:5]}"
    assert not extra, f"records delivered that were not produced: {extra[:5]}"
    twice = {v: d for v, d in deliveries.items() if any(c for _, c in d[:-1])}
    assert not twice, (f"{len(twice)} records delivered again after a successful commit, e.g. "
                       f"{dict(list(twice.items())[:5])} (member, committed)")
    redelivered = sum(n - 1 for n in counts.values() if n > 1)
    print(f"{len(deliveries)} distinct records delivered, {redelivered} redelivered after an "
          "uncommitted delivery")


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
    return set(expected) <= got


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
    wait_until(lambda: split_ok(members, 6) and all(len(m.assignment()) == 2 for m in members), WAIT_S,
               "3 members with 2 partitions each")
    wait_until(lambda: consumed_all(members, values), WAIT_S, "every record consumed")
    assert_exactly_once(members, values)


@pytest.mark.timeout(240)
def test_join_leave_and_kill_move_partitions_without_losing_records(gbroker, members, tmp_path):
    topic, group = unique("gr"), unique("grp")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 6)
    delivered, failed = [], []
    stop = False

    def producer():
        p = Producer({"bootstrap.servers": bs, "linger.ms": 1})

        def report(err, msg):
            (failed if err else delivered).append(err or msg.value().decode())
        i = 0
        while not stop:
            p.produce(topic, key=f"k{i}", value=f"r{i}", on_delivery=report)
            i += 1
            p.poll(0)
            time.sleep(0.005)
        assert p.flush(60) == 0

    t = Worker(producer, name="producer")
    t.start()
    try:
        a = Member(bs, group, topic, tmp_path, "a")
        # b's session outlasts every deadline here: only its LeaveGroup can move its
        # partitions in time
        b = Member(bs, group, topic, tmp_path, "b", session_ms=LONG_SESSION_MS)
        members.extend([a, b])
        wait_until(lambda: split_ok([a, b], 6) and len(a.assignment()) == 3, WAIT_S,
                   "a and b share 6 partitions")

        c = Member(bs, group, topic, tmp_path, "c")
        members.append(c)
        t0 = time.monotonic()
        wait_until(lambda: split_ok([a, b, c], 6) and len(c.assignment()) == 2, WAIT_S,
                   "c gets its share after joining")
        print(f"rebalance after a join: {time.monotonic() - t0:.2f}s")

        t0 = time.monotonic()
        b.stop()  # clean close: LeaveGroup, immediate rebalance
        took = wait_until(lambda: split_ok([a, c], 6), WAIT_S,
                          f"b's partitions to move after it left (its session is "
                          f"{LONG_SESSION_MS // 1000}s: the LeaveGroup was ignored)") - t0
        print(f"rebalance after a leave: {took:.2f}s")

        t0 = time.monotonic()
        c.kill()  # no LeaveGroup: the session must expire
        took = wait_until(lambda: a.assignment() == set(range(6)), SESSION_MS / 1000 + WAIT_S,
                          "the killed member's partitions move to a") - t0
        print(f"rebalance after a kill: {took:.2f}s")
        # a lower bound: the session runs from c's last heartbeat (at most 500 ms before
        # the kill, unless c was starved of CPU for seconds); a broker that dropped c when
        # its connection closed would move the partitions at once
        assert took >= SESSION_MS / 1000 - 3.0, "partitions moved before the session expired"
    finally:
        stop = True
        t.join(timeout=120)
    assert not failed, f"{len(failed)} records not delivered by the producer: {failed[:3]}"
    wait_until(lambda: consumed_all(members, delivered), WAIT_S, "every produced record consumed by someone")
    assert_exactly_once(members, delivered)


def test_static_member_restart_gets_its_partitions_back_without_rebalance(gbroker, members, tmp_path):
    topic, group = unique("gs"), unique("grp")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 4)
    # sessions longer than any deadline here: a's restart never lets its session expire
    a = Member(bs, group, topic, tmp_path, "a", instance="inst-a", session_ms=LONG_SESSION_MS)
    b = Member(bs, group, topic, tmp_path, "b", instance="inst-b", session_ms=LONG_SESSION_MS)
    members.extend([a, b])
    wait_until(lambda: split_ok([a, b], 4) and len(a.assignment()) == 2, WAIT_S, "a and b stable")
    before_a, before_b = a.assignment(), b.assignment()
    b_events_before = len([e for e in b.events() if e["ev"] in ("assign", "revoke")])
    a.kill()
    time.sleep(1)
    a.start()  # same instance id, well within the session timeout
    wait_until(lambda: a.assignment() == before_a, WAIT_S, "a gets its old partitions back")
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
    wait_until(lambda: split_ok([a, b], 6) and len(a.assignment()) == 3, WAIT_S, "a and b share 6 partitions")
    kept_a, kept_b = a.assignment(), b.assignment()
    seen_before_c = {m.name: len(m.events()) for m in (a, b)}
    c = Member(bs, group, topic, tmp_path, "c", assignor="cooperative-sticky")
    members.append(c)
    wait_until(lambda: split_ok([a, b, c], 6) and len(c.assignment()) == 2, WAIT_S, "c gets 2 partitions")
    # incremental: a and b only lost partitions, never had theirs all revoked and re-assigned
    assert a.assignment() <= kept_a and b.assignment() <= kept_b
    for m in (a, b):
        revokes = [set(e["parts"]) for e in m.events()[seen_before_c[m.name]:] if e["ev"] == "revoke"]
        assert sum(len(r) for r in revokes) == 1, f"{m.name} gave up more than one partition to c: {revokes}"
    values = [f"c{i}" for i in range(300)]
    produce(bs, topic, values)
    wait_until(lambda: consumed_all([a, b, c], values), WAIT_S, "every record consumed")
    assert_exactly_once([a, b, c], values)


def test_roundrobin_assignor_interleaves_partitions(gbroker, members, tmp_path):
    """partition.assignment.strategy=roundrobin: the broker picks the protocol both
    members offer, and the leader's round-robin assignment (0,2,4 / 1,3,5; range would
    give 0,1,2 / 3,4,5) reaches both."""
    topic, group = unique("grr"), unique("grp")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 6)
    a = Member(bs, group, topic, tmp_path, "a", assignor="roundrobin")
    b = Member(bs, group, topic, tmp_path, "b", assignor="roundrobin")
    members.extend([a, b])
    wait_until(lambda: split_ok([a, b], 6) and len(a.assignment()) == 3, WAIT_S,
               "a and b share 6 partitions")
    assert sorted([sorted(a.assignment()), sorted(b.assignment())]) == [[0, 2, 4], [1, 3, 5]], (
        a.assignment(), b.assignment())
    admin = AdminClient({"bootstrap.servers": bs})   # kept alive until its future is done
    desc = admin.describe_consumer_groups([group])[group].result(30)
    assert desc.partition_assignor == "roundrobin" and len(desc.members) == 2, desc
    values = [f"rr{i}" for i in range(600)]
    produce(bs, topic, values)
    wait_until(lambda: consumed_all([a, b], values), WAIT_S, "every record consumed")
    assert_exactly_once([a, b], values)


def test_group_max_size_refuses_a_member_beyond_it(start_broker, members, tmp_path):
    """group.max.size=2: a third member's JoinGroup gets GROUP_MAX_SIZE_REACHED; the two
    members keep every partition and read everything."""
    b = start_broker({"group.initial.rebalance.delay.ms": 0, "group.max.size": 2})
    topic, group = unique("gmax"), unique("grp")
    bs = b.bootstrap
    create_topic(bs, topic, 4)
    m1 = Member(bs, group, topic, tmp_path, "m1")
    m2 = Member(bs, group, topic, tmp_path, "m2")
    members.extend([m1, m2])
    wait_until(lambda: split_ok([m1, m2], 4) and len(m1.assignment()) == 2, WAIT_S, "m1 and m2 stable")
    m3 = Member(bs, group, topic, tmp_path, "m3")
    m3.expect_errors = True
    members.append(m3)
    wait_until(lambda: any("GROUP_MAX_SIZE_REACHED" in e["code"] for e in m3.errors()), WAIT_S,
               "m3 to be refused with GROUP_MAX_SIZE_REACHED")
    assert m3.assignment() == set(), m3.events()
    assert not m1.errors() and not m2.errors()
    admin = AdminClient({"bootstrap.servers": bs})   # kept alive until its future is done
    desc = admin.describe_consumer_groups([group])[group].result(30)
    assert len(desc.members) == 2, desc
    values = [f"mx{i}" for i in range(200)]
    produce(bs, topic, values)
    wait_until(lambda: consumed_all([m1, m2], values), WAIT_S, "m1 and m2 read every record")
    assert_exactly_once([m1, m2], values)
    assert m3.values() == [] and split_ok([m1, m2], 4)


@pytest.mark.parametrize("session_ms,broker_max,ok", [
    (5999, None, False),       # below group.min.session.timeout.ms (6000)
    (6000, None, True),        # the bounds are inclusive
    (20000, 20000, True),
    (20001, 20000, False),     # above group.max.session.timeout.ms
], ids=["below-min", "at-min", "at-max", "above-max"])
def test_session_timeout_bounds(start_broker, members, tmp_path, session_ms, broker_max, ok):
    sets = {"group.initial.rebalance.delay.ms": 0}
    if broker_max is not None:
        sets["group.max.session.timeout.ms"] = broker_max
    b = start_broker(sets)
    topic, group = unique("gst"), unique("grp")
    create_topic(b.bootstrap, topic, 2)
    m = Member(b.bootstrap, group, topic, tmp_path, "m", session_ms=session_ms)
    members.append(m)
    if ok:
        wait_until(lambda: m.assignment() == {0, 1}, WAIT_S, f"a member with session.timeout.ms={session_ms}")
        return
    m.expect_errors = True
    wait_until(lambda: any("INVALID_SESSION_TIMEOUT" in e["code"] for e in m.errors()), WAIT_S,
               f"INVALID_SESSION_TIMEOUT for session.timeout.ms={session_ms}")
    assert m.assignment() == set(), m.events()


def test_two_groups_read_the_same_topic_independently(gbroker, members, tmp_path):
    topic = unique("g2")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 3)
    values = [f"x{i}" for i in range(500)]
    produce(bs, topic, values)
    g1 = Member(bs, unique("one"), topic, tmp_path, "one")
    g2 = Member(bs, unique("two"), topic, tmp_path, "two")
    members.extend([g1, g2])
    wait_until(lambda: set(values) <= set(g1.values()) and set(values) <= set(g2.values()), WAIT_S,
               "both groups read every record")
    assert g1.assignment() == g2.assignment() == {0, 1, 2}
    assert_exactly_once([g1], values)
    assert_exactly_once([g2], values)


def consume_in_group(bs, topic, group, n, reset="earliest", commit=True, timeout=WAIT_S):
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
                  "enable.auto.commit": False, "enable.partition.eof": True})
    c.subscribe([topic])
    deadline = time.monotonic() + WAIT_S
    while True:   # positioned at the end: the consumer reports reaching it (offset 10)
        assert time.monotonic() < deadline, "the `latest` consumer never reached the end"
        m = c.poll(0.2)
        if m is None:
            continue
        assert m.error() is not None, f"read {m.value()} before anything new was produced"
        if m.error().code() == KafkaError._PARTITION_EOF:
            assert m.offset() == 10, f"`latest` positioned at {m.offset()}, the end is 10"
            break
    produce(bs, topic, ["new0", "new1"])
    got = []
    deadline = time.monotonic() + WAIT_S
    while len(got) < 2 and time.monotonic() < deadline:
        m = c.poll(0.5)
        if m is not None and not m.error():
            got.append(m.value().decode())
    c.close()
    assert got == ["new0", "new1"]

    # none: no committed offset is an error for the application
    c = Consumer({"bootstrap.servers": bs, "group.id": unique("n"), "auto.offset.reset": "error"})
    c.subscribe([topic])
    err = None
    deadline = time.monotonic() + WAIT_S
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
    wait_until(lambda: len(m.values()) == 100, WAIT_S, "member consumed everything")
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
    wait_until(lambda: a.describe_consumer_groups([group])[group].result(30).state.name == "EMPTY", WAIT_S,
               "group empty")
    a.delete_consumer_groups([group])[group].result(10)
    listed = {g.group_id for g in a.list_consumer_groups().result(10).valid}
    assert group not in listed
    with pytest.raises(KafkaException) as e:
        a.delete_consumer_groups([group])[group].result(10)
    assert e.value.args[0].code() == KafkaError.GROUP_ID_NOT_FOUND


def _kp_read(consumer, n, timeout=WAIT_S):
    """n values from a kafka-python consumer (deadline `timeout`).

    Each poll may wait until the deadline (it returns as soon as records arrive): kafka-python
    3.0.12 wedges when a poll() times out between the SyncGroup request and its response of a
    rebalance it started itself because the topic's metadata arrived after its first join. The
    next poll sees need_rejoin() False, drops the join task and never applies the assignment
    (seen in CI: the broker's log had the group stable with both partitions assigned)."""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        left_ms = int((deadline - time.monotonic()) * 1000)
        assert left_ms > 0, f"kafka-python read {len(got)} of {n} records"
        for msgs in consumer.poll(timeout_ms=left_ms, max_records=n - len(got)).values():
            got.extend(msg.value.decode() for msg in msgs)
    return got


def test_kafka_python_group_consumer_and_admin(gbroker):
    from kafka import KafkaAdminClient, KafkaConsumer

    topic, group = unique("gk"), unique("grp")
    bs = gbroker.bootstrap
    create_topic(bs, topic, 2)
    produce(bs, topic, [f"p{i}" for i in range(200)])
    c = KafkaConsumer(topic, bootstrap_servers=bs, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False)
    got = _kp_read(c, 120)
    c.commit()
    c.close()
    admin = KafkaAdminClient(bootstrap_servers=bs)
    groups = {g["group_id"] for g in admin.list_groups()}
    assert group in groups
    offsets = admin.list_group_offsets(group)[group]
    assert sum(o.offset for o in offsets.values()) == 120
    # a second consumer in the group continues after the commit
    c = KafkaConsumer(topic, bootstrap_servers=bs, group_id=group, auto_offset_reset="earliest",
                      enable_auto_commit=False)
    rest = _kp_read(c, 80)
    extra = [msg.value.decode() for msgs in c.poll(timeout_ms=1000).values() for msg in msgs]
    c.close()
    assert extra == [], f"read past the 200 records: {extra[:5]}"
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
    assert p.flush(30) == 0
    assert errors and errors[0] is not None and errors[0].code() == KafkaError.TOPIC_EXCEPTION, errors
