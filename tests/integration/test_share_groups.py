"""Share groups (KIP-932, queues) with confluent-kafka's ShareConsumer (librdkafka 2.16),
plus vltava's dead-letter topics and redelivery backoff, and bad input over the raw
protocol (ShareGroupHeartbeat/ShareFetch/ShareAcknowledge v1).

Group settings are set per group with IncrementalAlterConfigs on GROUP resources
(resource type 32), as Kafka's `kafka-configs --entity-type groups` does."""

from __future__ import annotations

import time
import uuid

from confluent_kafka import AcknowledgeType, Consumer, Producer, ShareConsumer

import helpers as h
import kafka_wire as w

API_INCREMENTAL_ALTER_CONFIGS = 44
API_SHARE_GROUP_HEARTBEAT = 76
API_SHARE_GROUP_DESCRIBE = 77
API_SHARE_FETCH = 78
API_SHARE_ACKNOWLEDGE = 79
RESOURCE_GROUP = 32

GROUP_ID_NOT_FOUND = 69
INVALID_RECORD_STATE = 121
SHARE_SESSION_NOT_FOUND = 122
INVALID_SHARE_SESSION_EPOCH = 123
GROUP_MAX_SIZE_REACHED = 81
UNKNOWN_MEMBER_ID = 25
SHARE_SESSION_LIMIT_REACHED = 133


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def set_group_configs(port: int, group: str, configs: dict) -> None:

    """IncrementalAlterConfigs v0, SET on the GROUP resource `group`."""
    entries = [w.string(k) + w.int8(0) + w.string(str(v)) for k, v in configs.items()]
    body = (w.request_header_v1(API_INCREMENTAL_ALTER_CONFIGS, 0, 7)
            + w.array([w.int8(RESOURCE_GROUP) + w.string(group) + w.array(entries)]) + w.int8(0))
    r = w.Reader(w.request(port, body))
    r.int32()  # correlation id
    r.int32()  # throttle
    n = r.int32()
    assert n == 1
    code, message = r.int16(), r.string()
    assert code == 0, f"setting {configs} on group {group}: error {code} {message}"


def share_consumer(b, group: str, **conf) -> ShareConsumer:
    c = {"bootstrap.servers": b.bootstrap, "group.id": group}
    c.update({k.replace("_", "."): v for k, v in conf.items()})
    return ShareConsumer(c)


def produce(b, topic: str, n: int, start: int = 0, headers=None) -> None:
    p = h.make_producer(b.bootstrap)
    for i in range(start, start + n):
        p.produce(topic, key=b"k%d" % i, value=b"v%d" % i, partition=0, headers=headers)
    assert p.flush(30) == 0


def poll_until(consumer: ShareConsumer, want, what: str, timeout: float = 60.0,
               on_message=None) -> list:
    """Polls until want(messages so far) holds; returns the messages (no errors)."""
    got = []
    deadline = time.monotonic() + timeout
    while not want(got):
        assert time.monotonic() < deadline, f"timed out waiting for {what}; got {[m.offset() for m in got]}"
        for m in consumer.poll(0.5):
            assert m.error() is None, m.error()
            got.append(m)
            if on_message:
                on_message(m)
    return got


def new_queue(b, partitions: int = 1, **configs):
    topic, group = h.unique("q"), h.unique("sg")
    h.create_topic(b.bootstrap, topic, partitions)
    set_group_configs(b.port, group, {"share.auto.offset.reset": "earliest", **configs})
    return topic, group


# --------------------------------------------------------------------------
# queue semantics through the real client
# --------------------------------------------------------------------------

def test_two_consumers_on_one_partition_get_disjoint_records_and_together_all(broker):
    topic, group = new_queue(broker)
    produce(broker, topic, 200)
    a = share_consumer(broker, group, share_acknowledgement_mode="explicit", max_poll_records=20)
    b = share_consumer(broker, group, max_poll_records=20)
    try:
        a.subscribe([topic])
        b.subscribe([topic])
        # a holds its first records unacknowledged: b can only get others
        held = poll_until(a, lambda got: got, "a's first records")
        held_offsets = {m.offset() for m in held}
        seen_by_b: list[int] = []
        poll_until(b, lambda got: len(got) >= 200 - len(held_offsets), "b taking the rest",
                   on_message=lambda m: seen_by_b.append(m.offset()))
        assert not held_offsets & set(seen_by_b), "a record was delivered to both consumers"
        assert len(seen_by_b) == len(set(seen_by_b))
        assert held_offsets | set(seen_by_b) == set(range(200))
        for m in held:
            a.acknowledge(m)
        a.commit_sync()
    finally:
        a.close()
        b.close()


def test_implicit_acknowledgement_consumes_once(broker):
    topic, group = new_queue(broker)
    produce(broker, topic, 50)
    c = share_consumer(broker, group)
    c.subscribe([topic])
    got = poll_until(c, lambda got: len(got) >= 50, "50 records")
    assert sorted(m.offset() for m in got) == list(range(50))
    assert {m.delivery_count() for m in got} == {1}
    # implicit mode accepts a poll's records at the next poll or commit; close() alone
    # would release them (librdkafka 2.16 sends no acknowledgements at close)
    c.commit_sync()
    c.close()
    # a new member of the group gets only what came after
    produce(broker, topic, 10, start=50)
    c = share_consumer(broker, group)
    c.subscribe([topic])
    got = poll_until(c, lambda got: len(got) >= 10, "the 10 new records")
    assert sorted(m.offset() for m in got) == list(range(50, 60))
    c.close()


def test_release_redelivers_reject_does_not(broker):
    topic, group = new_queue(broker)
    produce(broker, topic, 10)
    c = share_consumer(broker, group, share_acknowledgement_mode="explicit")
    c.subscribe([topic])
    first = poll_until(c, lambda got: len(got) >= 10, "10 records")
    for m in first:
        if m.offset() == 1:
            c.acknowledge(m, AcknowledgeType.REJECT)
        elif m.offset() % 2:
            c.acknowledge(m, AcknowledgeType.RELEASE)
        else:
            c.acknowledge(m, AcknowledgeType.ACCEPT)
    c.commit_sync()
    again = poll_until(c, lambda got: len(got) >= 4, "the released records")
    assert sorted(m.offset() for m in again) == [3, 5, 7, 9]
    assert {m.delivery_count() for m in again} == {2}
    for m in again:
        c.acknowledge(m, AcknowledgeType.ACCEPT)
    c.commit_sync()
    # nothing else comes back: the next record delivered is a new one
    produce(broker, topic, 1, start=10)
    later = poll_until(c, lambda got: got, "the next record")
    assert [m.offset() for m in later] == [10]
    c.acknowledge(later[0])
    c.close()


def test_an_unacknowledged_record_returns_after_the_lock_duration(start_broker):
    b = start_broker({"group.share.min.record.lock.duration.ms": 1000})
    topic, group = new_queue(b, **{"share.record.lock.duration.ms": 2000})
    produce(b, topic, 5)
    holder = share_consumer(b, group, share_acknowledgement_mode="explicit")
    other = share_consumer(b, group)
    try:
        holder.subscribe([topic])
        held = poll_until(holder, lambda got: len(got) >= 5, "5 records")
        t0 = time.monotonic()
        other.subscribe([topic])
        back = poll_until(other, lambda got: len(got) >= 5, "the records after their locks expired")
        assert time.monotonic() - t0 >= 1.5
        assert sorted(m.offset() for m in back) == [m.offset() for m in held]
        assert {m.delivery_count() for m in back} == {2}
    finally:
        other.close()
        holder.close()


def dlq_messages(b, topic: str, n: int) -> list:
    c = Consumer({"bootstrap.servers": b.bootstrap, "group.id": h.unique("dlqreader"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False})
    c.subscribe([topic])
    out = []
    deadline = time.monotonic() + 60
    while len(out) < n:
        assert time.monotonic() < deadline, f"dead-letter topic has {len(out)} of {n}"
        m = c.poll(0.5)
        if m is not None and m.error() is None:
            out.append(m)
    c.close()
    return out


def test_delivery_limit_and_rejects_go_to_the_dead_letter_topic(broker):
    dlq = "dlq." + h.unique("dead")
    topic, group = new_queue(broker, **{"share.delivery.count.limit": 2,
                                        "errors.deadletterqueue.topic.name": dlq})
    produce(broker, topic, 3, headers=[("origin", b"test")])
    c = share_consumer(broker, group, share_acknowledgement_mode="explicit")
    c.subscribe([topic])
    first = poll_until(c, lambda got: len(got) >= 3, "3 records")
    kinds = {0: AcknowledgeType.ACCEPT, 1: AcknowledgeType.REJECT, 2: AcknowledgeType.RELEASE}
    for m in first:
        c.acknowledge(m, kinds[m.offset()])
    c.commit_sync()
    again = poll_until(c, lambda got: got, "the released record")
    assert [(m.offset(), m.delivery_count()) for m in again] == [(2, 2)]
    c.acknowledge(again[0], AcknowledgeType.RELEASE)  # the second delivery was the last
    c.commit_sync()
    c.close()
    got = sorted(dlq_messages(broker, dlq, 2), key=lambda m: dict(m.headers())["__dlq.source.offset"])
    for m, offset, reason, count in ((got[0], 1, b"rejected", b"1"), (got[1], 2, b"delivery_limit", b"2")):
        hd = dict(m.headers())
        assert (m.key(), m.value()) == (b"k%d" % offset, b"v%d" % offset)
        assert hd["origin"] == b"test"
        assert hd["__dlq.source.topic"] == topic.encode()
        assert hd["__dlq.source.partition"] == b"0"
        assert hd["__dlq.source.offset"] == str(offset).encode()
        assert hd["__dlq.group"] == group.encode()
        assert hd["__dlq.delivery.count"] == count
        assert hd["__dlq.reason"] == reason


def test_released_records_wait_for_the_redelivery_backoff(broker):
    topic, group = new_queue(broker, **{"share.redelivery.backoff.ms": 3000})
    produce(broker, topic, 1)
    c = share_consumer(broker, group, share_acknowledgement_mode="explicit")
    c.subscribe([topic])
    first = poll_until(c, lambda got: got, "the record")
    c.acknowledge(first[0], AcknowledgeType.RELEASE)
    c.commit_sync()
    t0 = time.monotonic()
    again = poll_until(c, lambda got: got, "the released record")
    assert time.monotonic() - t0 >= 2.5, "redelivered before the backoff"
    assert (again[0].offset(), again[0].delivery_count()) == (0, 2)
    c.acknowledge(again[0])
    c.close()


def test_read_committed_skips_aborted_and_open_transactions(broker):
    topic, group = new_queue(broker, **{"share.isolation.level": "read_committed"})
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": h.unique("tx")})
    p.init_transactions(30)
    for i, commit in enumerate((True, False, True)):
        p.begin_transaction()
        for j in range(5):
            p.produce(topic, value=b"t%d-%d" % (i, j), partition=0)
        (p.commit_transaction if commit else p.abort_transaction)(30)
    p.begin_transaction()
    p.produce(topic, value=b"open", partition=0)
    p.flush(30)
    c = share_consumer(broker, group)
    c.subscribe([topic])
    got = poll_until(c, lambda got: len(got) >= 10, "the committed records")
    assert sorted(m.value() for m in got) == sorted(b"t%d-%d" % (i, j) for i in (0, 2) for j in range(5))
    p.commit_transaction(30)
    late = poll_until(c, lambda got: got, "the record of the transaction committed last")
    assert [m.value() for m in late] == [b"open"]
    c.close()


# --------------------------------------------------------------------------
# the raw protocol
# --------------------------------------------------------------------------

def heartbeat_request(corr: int, group: str, member: str, epoch: int, topics) -> bytes:
    subs = None if topics is None else [w.compact_string(t) for t in topics]
    return (w.request_header_v2(API_SHARE_GROUP_HEARTBEAT, 1, corr) + w.compact_string(group)
            + w.compact_string(member) + w.int32(epoch) + w.compact_string(None)
            + w.compact_array(subs) + w.EMPTY_TAGGED_FIELDS)


def parse_heartbeat(payload: bytes) -> dict:
    r, out = w._flexible_head(payload)
    out["member_id"] = r.compact_string()
    out["member_epoch"] = r.int32()
    out["heartbeat_interval_ms"] = r.int32()
    assignment = []
    if r.int8() == 1:
        for _ in range(r.uvarint() - 1):
            tid = uuid.UUID(bytes=r.raw(16))
            parts = [r.int32() for _ in range(r.uvarint() - 1)]
            r.tagged_fields()
            assignment.append((tid, parts))
        r.tagged_fields()
    out["assignment"] = assignment
    return out


def share_fetch_request(corr: int, group: str, member: str, epoch: int, topic_id: uuid.UUID,
                        partition: int, acks=(), max_wait_ms: int = 0) -> bytes:
    batches = [w.int64(f) + w.int64(l) + w.compact_array([w.int8(t)]) + w.EMPTY_TAGGED_FIELDS
               for f, l, t in acks]
    part = w.int32(partition) + w.compact_array(batches) + w.EMPTY_TAGGED_FIELDS
    topic = topic_id.bytes + w.compact_array([part]) + w.EMPTY_TAGGED_FIELDS
    return (w.request_header_v2(API_SHARE_FETCH, 1, corr) + w.compact_string(group)
            + w.compact_string(member) + w.int32(epoch) + w.int32(max_wait_ms) + w.int32(1)
            + w.int32(1 << 20) + w.int32(100) + w.int32(100) + w.compact_array([topic])
            + w.compact_array([]) + w.EMPTY_TAGGED_FIELDS)


def parse_share_fetch(payload: bytes) -> dict:
    r, out = w._flexible_head(payload)
    out["lock_ms"] = r.int32()
    parts = {}
    for _ in range(r.uvarint() - 1):
        r.raw(16)
        for _ in range(r.uvarint() - 1):
            p = {"partition": r.int32(), "error": r.int16()}
            r.compact_string()
            p["ack_error"] = r.int16()
            r.compact_string()
            r.int32(), r.int32(), r.tagged_fields()  # current leader
            p["records"] = r.compact_bytes()
            acquired = []
            for _ in range(r.uvarint() - 1):
                acquired.append((r.int64(), r.int64(), r.int16()))
                r.tagged_fields()
            p["acquired"] = acquired
            r.tagged_fields()
            parts[p["partition"]] = p
        r.tagged_fields()
    out["partitions"] = parts
    return out


def share_acknowledge_request(corr: int, group: str, member: str, epoch: int, topic_id: uuid.UUID,
                              partition: int, acks) -> bytes:
    batches = [w.int64(f) + w.int64(l) + w.compact_array([w.int8(t)]) + w.EMPTY_TAGGED_FIELDS
               for f, l, t in acks]
    part = w.int32(partition) + w.compact_array(batches) + w.EMPTY_TAGGED_FIELDS
    topic = topic_id.bytes + w.compact_array([part]) + w.EMPTY_TAGGED_FIELDS
    return (w.request_header_v2(API_SHARE_ACKNOWLEDGE, 1, corr) + w.compact_string(group)
            + w.compact_string(member) + w.int32(epoch) + w.compact_array([topic]) + w.EMPTY_TAGGED_FIELDS)


def parse_share_acknowledge(payload: bytes) -> dict:
    r, out = w._flexible_head(payload)
    parts = {}
    for _ in range(r.uvarint() - 1):
        r.raw(16)
        for _ in range(r.uvarint() - 1):
            index, code = r.int32(), r.int16()
            r.compact_string()
            r.int32(), r.int32(), r.tagged_fields()
            r.tagged_fields()
            parts[index] = code
        r.tagged_fields()
    out["partitions"] = parts
    return out


def describe_request(corr: int, groups) -> bytes:
    return (w.request_header_v2(API_SHARE_GROUP_DESCRIBE, 1, corr)
            + w.compact_array([w.compact_string(g) for g in groups]) + w.int8(0) + w.EMPTY_TAGGED_FIELDS)


def parse_describe(payload: bytes) -> list[dict]:
    """The groups' heads and member ids."""
    r = w.Reader(payload)
    r.int32(), r.tagged_fields(), r.int32()
    out = []
    for _ in range(r.uvarint() - 1):
        g = {"error": r.int16()}
        r.compact_string()
        g["group"] = r.compact_string()
        g["state"] = r.compact_string()
        g["epoch"] = r.int32()
        g["assignment_epoch"] = r.int32()
        r.compact_string()  # assignor
        members = []
        for _ in range(r.uvarint() - 1):
            member = r.compact_string()
            r.compact_string(), r.int32(), r.compact_string(), r.compact_string()  # rack, epoch, client id, host
            for _ in range(r.uvarint() - 1):
                r.compact_string()  # subscribed topics
            for _ in range(r.uvarint() - 1):  # assignment
                r.raw(16), r.compact_string()
                for _ in range(r.uvarint() - 1):
                    r.int32()
                r.tagged_fields()
            r.tagged_fields()  # assignment
            r.tagged_fields()  # member
            members.append(member)
        g["members"] = members
        r.int32()  # authorized operations
        r.tagged_fields()
        out.append(g)
    return out


COORDINATOR_RETRIABLE = (14, 15, 16)  # load in progress, not available, not coordinator


def heartbeat(b, group: str, member: str, epoch: int, topics) -> dict:
    """A ShareGroupHeartbeat, after FindCoordinator (which creates __consumer_offsets),
    retried while the coordinator loads."""
    w.request(b.port, w.find_coordinator_request_v1(1, group, key_type=0))

    def attempt():
        hb = parse_heartbeat(w.request(b.port, heartbeat_request(2, group, member, epoch, topics)))
        return None if hb["error_code"] in COORDINATOR_RETRIABLE else hb
    return h.wait_until(attempt, 60, "the group coordinator")


def join(b, group: str, topic: str, member: str):
    hb = heartbeat(b, group, member, 0, [topic])
    assert hb["error_code"] == 0, hb
    assert hb["member_epoch"] > 0 and hb["assignment"], hb
    return hb


def test_raw_session_epochs_and_acknowledging_what_is_not_acquired(broker):
    topic, group = new_queue(broker)
    produce(broker, topic, 5)
    member = str(uuid.uuid4())
    hb = join(broker, group, topic, member)
    tid = hb["assignment"][0][0]
    with w.connect(broker.port) as s:
        # no session yet
        out = parse_share_fetch(w.roundtrip(s, share_fetch_request(2, group, member, 1, tid, 0)))
        assert out["error_code"] == SHARE_SESSION_NOT_FOUND
        out = parse_share_fetch(w.roundtrip(s, share_fetch_request(3, group, member, 0, tid, 0, max_wait_ms=5000)))
        assert out["error_code"] == 0 and out["lock_ms"] > 0
        assert out["partitions"][0]["acquired"] == [(0, 4, 1)]
        assert w.decode_records(out["partitions"][0]["records"])
        # the wrong epoch
        out = parse_share_fetch(w.roundtrip(s, share_fetch_request(4, group, member, 5, tid, 0)))
        assert out["error_code"] == INVALID_SHARE_SESSION_EPOCH
        # another member may not acknowledge these records; nor may anyone offsets not acquired
        other = str(uuid.uuid4())
        join(broker, group, topic, other)
        parse_share_fetch(w.roundtrip(s, share_fetch_request(5, group, other, 0, tid, 0)))
        out = parse_share_acknowledge(w.roundtrip(s, share_acknowledge_request(6, group, other, 1, tid, 0,
                                                                                [(0, 0, 1)])))
        assert out["error_code"] == 0 and out["partitions"] == {0: INVALID_RECORD_STATE}
        out = parse_share_acknowledge(w.roundtrip(s, share_acknowledge_request(7, group, member, 1, tid, 0,
                                                                                [(3, 9, 1)])))
        assert out["partitions"] == {0: INVALID_RECORD_STATE}
        out = parse_share_acknowledge(w.roundtrip(s, share_acknowledge_request(8, group, member, 2, tid, 0,
                                                                                [(0, 4, 1)])))
        assert out["partitions"] == {0: 0}
        # closing the session
        out = parse_share_acknowledge(w.roundtrip(s, share_acknowledge_request(9, group, member, -1, tid, 0, [])))
        assert out["error_code"] == 0
        out = parse_share_acknowledge(w.roundtrip(s, share_acknowledge_request(10, group, member, 3, tid, 0, [])))
        assert out["error_code"] == SHARE_SESSION_NOT_FOUND


def test_a_classic_group_id_is_not_a_share_group_and_share_groups_survive_a_restart(broker):
    topic = h.unique("q")
    h.create_topic(broker.bootstrap, topic, 1)
    classic = h.unique("classic")
    c = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": classic, "auto.offset.reset": "earliest"})
    c.subscribe([topic])
    def assigned():
        c.poll(0.2)
        return c.assignment()
    h.wait_until(assigned, 60, "the classic group formed")
    hb = heartbeat(broker, classic, str(uuid.uuid4()), 0, [topic])
    assert hb["error_code"] == GROUP_ID_NOT_FOUND
    c.close()
    share = h.unique("sg")
    member = str(uuid.uuid4())
    join(broker, share, topic, member)
    hb = heartbeat(broker, share, member, -1, None)
    assert (hb["error_code"], hb["member_epoch"]) == (0, -1)
    before = parse_describe(w.request(broker.port, describe_request(3, [share])))[0]
    assert before["error"] == 0 and before["state"] == "Empty"
    broker.restart()
    after = h.wait_until(
        lambda: (lambda g: g if g["error"] == 0 else None)(
            parse_describe(w.request(broker.port, describe_request(4, [share])))[0]),
        60, "the share group loaded after the restart")
    assert after["epoch"] == before["epoch"] and after["state"] == "Empty"


# --------------------------------------------------------------------------
# a cluster: the dead-letter partition led by another broker
# --------------------------------------------------------------------------

def test_dead_letters_reach_a_dead_letter_partition_led_elsewhere(tmp_path):
    import cluster as cl
    c = cl.Cluster(tmp_path / "cluster", n=2).start()
    try:
        topic, group, dlq = h.unique("q"), h.unique("sg"), "dlq." + h.unique("dead")
        c.create_topic(dlq, 1, replication_factor=1)
        c.create_topic(topic, 4, replication_factor=1)
        c.wait_until(lambda: c.leader_of(dlq, 0) in c.broker_ids, 60, "the dead-letter partition's leader")
        dlq_node = c.leader_of(dlq, 0)
        # a source partition led by the other node

        def led_elsewhere():
            leaders = [c.leader_of(topic, p) for p in range(4)]
            others = [p for p, leader in enumerate(leaders) if leader not in (dlq_node, -1)]
            return [others[0]] if -1 not in leaders and others else None
        [source] = c.wait_until(led_elsewhere, 60, "a source partition led by the other broker")
        node = c.node(c.leader_of(topic, source))
        set_group_configs(node.client_port, group, {"share.auto.offset.reset": "earliest",
                                             "errors.deadletterqueue.topic.name": dlq})
        p = Producer({"bootstrap.servers": c.bootstrap})
        p.produce(topic, key=b"k", value=b"rejected", partition=source)
        assert p.flush(30) == 0
        consumer = ShareConsumer({"bootstrap.servers": c.bootstrap, "group.id": group,
                                  "share.acknowledgement.mode": "explicit"})
        consumer.subscribe([topic])
        got = poll_until(consumer, lambda got: got, "the record")
        consumer.acknowledge(got[0], AcknowledgeType.REJECT)
        assert all(e is None for e in consumer.commit_sync().values())
        consumer.close()
        reader = Consumer({"bootstrap.servers": c.bootstrap, "group.id": h.unique("dlqreader"),
                           "auto.offset.reset": "earliest"})
        reader.subscribe([dlq])
        deadline = time.monotonic() + 60
        while True:
            assert time.monotonic() < deadline, "no dead letter"
            m = reader.poll(0.5)
            if m is not None and m.error() is None:
                break
        reader.close()
        assert m.value() == b"rejected" and dict(m.headers())["__dlq.reason"] == b"rejected"
    finally:
        c.close()



def test_group_size_and_share_session_limits(start_broker):
    b = start_broker({"group.share.max.size": 1, "group.share.max.share.sessions": 1})
    topic, group = new_queue(b)
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    hb = join(b, group, topic, first)
    assert heartbeat(b, group, second, 0, [topic])["error_code"] == GROUP_MAX_SIZE_REACHED
    tid = hb["assignment"][0][0]
    with w.connect(b.port) as s:
        out = parse_share_fetch(w.roundtrip(s, share_fetch_request(1, group, first, 0, tid, 0)))
        assert out["error_code"] == 0
        # the one session is taken (by a live member: it is not idle)
        out = parse_share_fetch(w.roundtrip(s, share_fetch_request(2, h.unique("other"), second, 0, tid, 0)))
        assert out["error_code"] == SHARE_SESSION_LIMIT_REACHED
        # closing it makes room
        out = parse_share_fetch(w.roundtrip(s, share_fetch_request(3, group, first, -1, tid, 0)))
        assert out["error_code"] == 0
        out = parse_share_fetch(w.roundtrip(s, share_fetch_request(4, h.unique("other"), second, 0, tid, 0)))
        assert out["error_code"] == 0
    # ShareGroupDescribe names the member and its assignment epoch
    g = parse_describe(w.request(b.port, describe_request(5, [group])))[0]
    assert (g["error"], g["state"]) == (0, "Stable") and g["epoch"] >= 1


def test_a_member_that_stops_heartbeating_leaves_after_the_session_timeout(start_broker):
    b = start_broker({"group.share.min.session.timeout.ms": 1000,
                      "group.share.min.heartbeat.interval.ms": 200})
    topic, group = new_queue(b, **{"share.session.timeout.ms": 2000, "share.heartbeat.interval.ms": 200})
    gone, stays = str(uuid.uuid4()), str(uuid.uuid4())
    join(b, group, topic, gone)
    hb = join(b, group, topic, stays)
    assert hb["heartbeat_interval_ms"] == 200
    g = parse_describe(w.request(b.port, describe_request(1, [group])))[0]
    assert sorted(g["members"]) == sorted([gone, stays])
    t0 = time.monotonic()
    epoch = hb["member_epoch"]

    def alone():
        nonlocal epoch
        answer = heartbeat(b, group, stays, epoch, None)
        assert answer["error_code"] == 0, answer
        epoch = answer["member_epoch"]
        members = parse_describe(w.request(b.port, describe_request(2, [group])))[0]["members"]
        return members == [stays]
    h.wait_until(alone, 60, "the silent member removed", interval=0.2)
    assert time.monotonic() - t0 >= 1.5
    # the silent member is gone: it must rejoin
    assert heartbeat(b, group, gone, hb["member_epoch"], None)["error_code"] == UNKNOWN_MEMBER_ID


def test_a_replaced_share_session_gives_its_records_back(broker):
    """librdkafka opens a new session (epoch 0) after an error and fails the acknowledgements
    it had in flight: the records the old session held are delivered again at once."""
    topic, group = new_queue(broker)
    produce(broker, topic, 3)
    member = str(uuid.uuid4())
    tid = join(broker, group, topic, member)["assignment"][0][0]
    with w.connect(broker.port) as s:
        out = parse_share_fetch(w.roundtrip(s, share_fetch_request(1, group, member, 0, tid, 0, max_wait_ms=5000)))
        assert out["partitions"][0]["acquired"] == [(0, 2, 1)]
        out = parse_share_fetch(w.roundtrip(s, share_fetch_request(2, group, member, 0, tid, 0, max_wait_ms=5000)))
        assert out["partitions"][0]["acquired"] == [(0, 2, 2)]
