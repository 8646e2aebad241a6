"""Transactions v2 (KIP-890 part 2, `transaction.version` 2), driven at the protocol level:
no client installable here speaks it (librdkafka 2.16, kafka-python 3.0 and the Java client
3.9.1 all use transactions v1, which tests/integration/test_transactions.py covers), so the
requests a Kafka 4.x Java producer sends are built with kafka-python's message classes
(generated from Kafka's schemas) and sent over a socket.

What a v2 producer relies on: Produce v12 needs no AddPartitionsToTxn (the partition leader
adds the partition at the transaction coordinator, another broker's in a cluster),
TxnOffsetCommit v5 needs no AddOffsetsToTxn, and EndTxn v5 bumps the producer epoch in every
end and returns it, so a write left over from an ended transaction is fenced, and a retried
EndTxn is told from a new one.
"""

from __future__ import annotations

import itertools
import socket
import time

import pytest
from confluent_kafka import Consumer, TopicPartition
from kafka.protocol.consumer.group import OffsetFetchRequest, OffsetFetchResponse
from kafka.protocol.producer.produce import ProduceRequest, ProduceResponse
from kafka.protocol.producer.transaction import (AddPartitionsToTxnRequest, AddPartitionsToTxnResponse,
                                                 EndTxnRequest, EndTxnResponse, TxnOffsetCommitRequest,
                                                 TxnOffsetCommitResponse)

import helpers as h
import kafka_wire as w
from test_cluster import start_cluster  # noqa: F401 - the cluster fixture

TRANSACTIONAL = 0x10
NONE, INVALID_PRODUCER_EPOCH, INVALID_TXN_STATE, PRODUCER_FENCED = 0, 47, 48, 90
TRANSACTION_ABORTABLE = 120
_corr = itertools.count(100)


class Conn:
    """One client connection sending kafka-python messages."""

    def __init__(self, port: int):
        self.sock = w.connect(port, timeout=30.0)

    def call(self, request, version: int, response_cls):
        corr = next(_corr)
        request.with_header(correlation_id=corr, client_id="tv2-test")
        self.sock.sendall(request.encode(version=version, header=True, framed=True))
        payload = w.recv_frame(self.sock)
        response = response_cls.decode(payload, version=version, header=True)
        assert response.header.correlation_id == corr
        return response

    def close(self):
        self.sock.close()


# What a client retries InitProducerId on: the coordinator named by FindCoordinator (any
# node's metadata) may not have loaded its __transaction_state partition yet.
RETRIABLE_INIT = {14, 15, 16, 51}  # COORDINATOR_LOAD_IN_PROGRESS, _NOT_AVAILABLE, NOT_COORDINATOR, CONCURRENT_TRANSACTIONS


def init_producer(port: int, tid: str, timeout: float = 60.0, transaction_timeout_ms: int = 60000) -> tuple[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        out = w.parse_init_producer_id_response(
            w.request(port, w.init_producer_id_request(7, tid, transaction_timeout_ms=transaction_timeout_ms)))
        if out["error_code"] not in RETRIABLE_INIT or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert out["error_code"] == NONE, out
    return out["producer_id"], out["producer_epoch"]


def produce_v12(conn: Conn, tid: str, topic: str, partition: int, pid: int, epoch: int, seq: int,
                values: list[bytes]) -> tuple[int, int]:
    """One transactional batch; (error code, base offset)."""
    batch = w.record_batch_v2([(v[:6], v) for v in values], producer_id=pid, producer_epoch=epoch,
                              base_sequence=seq, attributes=TRANSACTIONAL)
    P = ProduceRequest.TopicProduceData
    req = ProduceRequest[12](transactional_id=tid, acks=-1, timeout_ms=30000, topic_data=[
        P(name=topic, partition_data=[P.PartitionProduceData(index=partition, records=batch)])])
    resp = conn.call(req, 12, ProduceResponse)
    p = resp.responses[0].partition_responses[0]
    return p.error_code, p.base_offset


def end_txn_v5(conn: Conn, tid: str, pid: int, epoch: int, commit: bool) -> tuple[int, int, int]:
    resp = conn.call(EndTxnRequest[5](transactional_id=tid, producer_id=pid, producer_epoch=epoch,
                                      committed=commit), 5, EndTxnResponse)
    return resp.error_code, resp.producer_id, resp.producer_epoch


COORDINATOR_NOT_READY = {14, 15, 16}  # loading, not available, not coordinator


def txn_offset_commit_v5(conn: Conn, tid: str, group: str, pid: int, epoch: int, topic: str,
                         offsets: dict[int, int]) -> list[int]:
    """TxnOffsetCommit v5 once the group's coordinator is ready (a client finds it first and
    retries while it loads, as here); the partitions' error codes."""
    def ready():
        found = w.parse_find_coordinator_v1(w.request(conn.sock.getpeername()[1],
                                                      w.find_coordinator_request_v1(7, group, 0)))
        if found["error_code"] != NONE:
            return None
        codes = _txn_offset_commit_v5(conn, tid, group, pid, epoch, topic, offsets)
        return None if set(codes) & COORDINATOR_NOT_READY else codes
    return h.wait_until(ready, 60, f"the coordinator of {group} to take a transactional commit")


def _txn_offset_commit_v5(conn: Conn, tid: str, group: str, pid: int, epoch: int, topic: str,
                          offsets: dict[int, int]) -> list[int]:
    T = TxnOffsetCommitRequest.TxnOffsetCommitRequestTopic
    req = TxnOffsetCommitRequest[5](
        transactional_id=tid, group_id=group, producer_id=pid, producer_epoch=epoch,
        generation_id=-1, member_id="", group_instance_id=None,
        topics=[T(name=topic, partitions=[
            T.TxnOffsetCommitRequestPartition(partition_index=p, committed_offset=o,
                                              committed_leader_epoch=-1, committed_metadata="")
            for p, o in offsets.items()])])
    resp = conn.call(req, 5, TxnOffsetCommitResponse)
    return [p.error_code for t in resp.topics for p in t.partitions]


def verify_in_txn_v4(conn: Conn, tid: str, pid: int, epoch: int, topic: str, partitions) -> dict:
    """AddPartitionsToTxn v4 with verify_only (what a broker asks a coordinator)."""
    T = AddPartitionsToTxnRequest.AddPartitionsToTxnTransaction
    req = AddPartitionsToTxnRequest[4](transactions=[T(
        transactional_id=tid, producer_id=pid, producer_epoch=epoch, verify_only=True,
        topics=[T.AddPartitionsToTxnTopic(name=topic, partitions=list(partitions))])])
    resp = conn.call(req, 4, AddPartitionsToTxnResponse)
    assert resp.error_code == NONE
    (result,) = resp.results_by_transaction
    assert result.transactional_id == tid
    return {p.partition_index: p.partition_error_code
            for t in result.topic_results for p in t.results_by_partition}


def describe_txn(port: int, tid: str) -> dict:
    out = w.parse_describe_transactions_v0(w.request(port, w.describe_transactions_request_v0(7, [tid])))
    return out["transactions"][tid]


def committed_offsets(port: int, group: str, topic: str, partitions) -> dict[int, int]:
    """OffsetFetch v8 with require_stable: waits out pending transactional commits."""
    conn = Conn(port)
    try:
        G = OffsetFetchRequest.OffsetFetchRequestGroup
        req = OffsetFetchRequest[8](groups=[G(group_id=group, topics=[
            G.OffsetFetchRequestTopics(name=topic, partition_indexes=list(partitions))])],
            require_stable=True)
        resp = conn.call(req, 8, OffsetFetchResponse)
        return {p.partition_index: p.committed_offset
                for g in resp.groups for t in g.topics for p in t.partitions}
    finally:
        conn.close()


def read_committed(bootstrap: str, topic: str, partitions, timeout: float = 60.0) -> dict[int, list[bytes]]:
    """Every record a read_committed consumer sees in `partitions`, up to the last stable
    offset of each."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": h.unique("tv2-read"),
                  "isolation.level": "read_committed", "enable.auto.commit": False,
                  "auto.offset.reset": "earliest"})
    try:
        ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        c.assign([TopicPartition(topic, p, 0) for p in partitions])
        got: dict[int, list[bytes]] = {p: [] for p in partitions}
        done = {p for p in partitions if ends[p] == 0}

        def caught_up():
            for msg in c.consume(100, 0.5):
                assert not msg.error(), msg.error()
                got[msg.partition()].append(msg.value())
            for p in partitions:
                pos = c.position([TopicPartition(topic, p)])[0].offset
                if pos >= ends[p]:
                    done.add(p)
            return len(done) == len(partitions)

        h.wait_until(caught_up, timeout, "read_committed consumer to reach the last stable offsets")
        return got
    finally:
        c.close()


def test_produce_v12_and_txn_offset_commit_v5_add_implicitly_and_end_txn_v5_bumps_the_epoch(broker):
    topic, group, tid = h.unique("tv2"), h.unique("tv2-group"), h.unique("tv2-tid")
    h.create_topic(broker.bootstrap, topic, 2)
    pid, epoch = init_producer(broker.port, tid)
    conn = Conn(broker.port)
    try:
        # first transaction: two partitions and the group's offsets, no Add* request at all
        assert produce_v12(conn, tid, topic, 0, pid, epoch, 0, [b"one-a", b"one-b"]) == (NONE, 0)
        assert produce_v12(conn, tid, topic, 1, pid, epoch, 0, [b"one-c"]) == (NONE, 0)
        assert produce_v12(conn, tid, topic, 0, pid, epoch, 2, [b"one-d"]) == (NONE, 2)
        state = describe_txn(broker.port, tid)
        assert state["state"] == "Ongoing" and state["producer_epoch"] == epoch, state
        assert state["partitions"] == {(topic, 0), (topic, 1)}, state
        # the coordinator answers a leader's verification (KIP-890 part 1) from the same state
        assert verify_in_txn_v4(conn, tid, pid, epoch, topic, [0, 1]) == {0: NONE, 1: NONE}
        assert txn_offset_commit_v5(conn, tid, group, pid, epoch, topic, {0: 3}) == [NONE]

        assert end_txn_v5(conn, tid, pid, epoch, commit=True) == (NONE, pid, epoch + 1)
        # a retry of that end (the response was lost) is recognised, not a new end
        assert end_txn_v5(conn, tid, pid, epoch, commit=True) == (NONE, pid, epoch + 1)
        assert end_txn_v5(conn, tid, pid, epoch, commit=False)[0] == INVALID_TXN_STATE
        assert committed_offsets(broker.port, group, topic, [0]) == {0: 3}
        state = describe_txn(broker.port, tid)
        assert state["state"] == "CompleteCommit" and state["producer_epoch"] == epoch + 1, state

        # the bumped epoch is in __transaction_state (Kafka's value v1): after a restart the
        # coordinator still tells the retry of that end from a new one
        conn.close()
        broker.restart()
        conn = Conn(broker.port)
        retried = h.wait_until(
            lambda: (lambda r: r if r[0] not in COORDINATOR_NOT_READY else None)(
                end_txn_v5(conn, tid, pid, epoch, commit=True)),
            60, "the transaction coordinator to load after the restart")
        assert retried == (NONE, pid, epoch + 1)

        # a write left over from the ended transaction (its old epoch) is fenced by the
        # commit markers, which carry the new epoch
        err, _ = produce_v12(conn, tid, topic, 0, pid, epoch, 3, [b"zombie"])
        assert err == INVALID_PRODUCER_EPOCH, err
        # so is the old epoch at the coordinator
        assert verify_in_txn_v4(conn, tid, pid, epoch, topic, [0]) == {0: PRODUCER_FENCED}

        # second transaction at the new epoch, sequences from 0 again: aborted
        epoch += 1
        assert produce_v12(conn, tid, topic, 0, pid, epoch, 0, [b"two-a"]) == (NONE, 4)
        assert verify_in_txn_v4(conn, tid, pid, epoch, topic, [0, 1]) == {0: NONE, 1: TRANSACTION_ABORTABLE}
        assert txn_offset_commit_v5(conn, tid, group, pid, epoch, topic, {0: 99}) == [NONE]
        assert end_txn_v5(conn, tid, pid, epoch, commit=False) == (NONE, pid, epoch + 1)
        epoch += 1

        # v2 aborts even with nothing open (bumping the epoch); commits need a transaction
        assert end_txn_v5(conn, tid, pid, epoch, commit=False) == (NONE, pid, epoch + 1)
        epoch += 1
        assert end_txn_v5(conn, tid, pid, epoch, commit=True)[0] == INVALID_TXN_STATE
        assert end_txn_v5(conn, tid, pid, epoch + 1, commit=False)[0] == PRODUCER_FENCED
    finally:
        conn.close()

    got = read_committed(broker.bootstrap, topic, [0, 1])
    assert got == {0: [b"one-a", b"one-b", b"one-d"], 1: [b"one-c"]}, got
    assert committed_offsets(broker.port, group, topic, [0]) == {0: 3}, "the aborted commit"


def test_transactions_v1_clients_are_unchanged_when_v2_is_finalized(broker):
    """A librdkafka producer (transactions v1: AddPartitionsToTxn v3, EndTxn v4) keeps its
    epoch across transactions on a cluster at transaction.version 2."""
    from confluent_kafka import Producer

    topic, tid = h.unique("tv1"), h.unique("tv1-tid")
    h.create_topic(broker.bootstrap, topic, 1)
    p = Producer({"bootstrap.servers": broker.bootstrap, "transactional.id": tid, "linger.ms": 5})
    p.init_transactions(30)
    epochs = []
    for i, commit in enumerate((True, False, True)):
        p.begin_transaction()
        p.produce(topic, value=f"v{i}".encode(), partition=0)
        p.flush(30)
        (p.commit_transaction if commit else p.abort_transaction)(30)
        epochs.append(describe_txn(broker.port, tid)["producer_epoch"])
    assert len(set(epochs)) == 1, epochs
    assert read_committed(broker.bootstrap, topic, [0]) == {0: [b"v0", b"v2"]}


@pytest.mark.timeout(240)
def test_partition_led_elsewhere_is_added_at_the_remote_coordinator(start_cluster):
    """In a cluster the partition leader that receives a v12 write asks the transaction
    coordinator on another broker (AddPartitionsToTxn v5) before appending; the markers of
    the v5 end reach it with the bumped epoch and fence a late write at the old one."""
    c = start_cluster(3)
    topic, tid = h.unique("tv2c"), h.unique("tv2c-tid")
    c.create_topic(topic, partitions=3, replication_factor=3)
    coordinator = c.find_coordinator(tid, key_type=1)
    leaders = c.wait_until(
        lambda: (lambda v: {p: st.leader for p, st in v.items()}
                 if v and len(v) == 3 and all(st.leader > 0 for st in v.values()) else None)(
            c._agreed(topic)),
        60, "every node to agree on the topic's leaders")
    remote = [p for p, leader in leaders.items() if leader != coordinator]
    assert remote, ("every partition led by the coordinator", leaders, coordinator)
    part = remote[0]
    port = {i: c.node(i).client_port for i in c.ids}

    pid, epoch = init_producer(port[coordinator], tid)
    conn = Conn(port[leaders[part]])
    try:
        assert produce_v12(conn, tid, topic, part, pid, epoch, 0, [b"x1", b"x2"]) == (NONE, 0)
    finally:
        conn.close()
    state = describe_txn(port[coordinator], tid)
    assert state["partitions"] == {(topic, part)}, state
    conn = Conn(port[coordinator])
    try:
        assert end_txn_v5(conn, tid, pid, epoch, commit=True) == (NONE, pid, epoch + 1)
    finally:
        conn.close()
    assert read_committed(c.bootstrap, topic, [part]) == {part: [b"x1", b"x2"]}
    conn = Conn(port[leaders[part]])
    try:
        err, _ = produce_v12(conn, tid, topic, part, pid, epoch, 2, [b"late"])
        assert err == INVALID_PRODUCER_EPOCH, err
    finally:
        conn.close()


def test_v2_transaction_past_its_timeout_is_aborted_and_its_producer_fenced(start_broker):
    """The coordinator aborts a v2 transaction left open past its timeout with the epoch
    bumped twice (the fence, then the v2 end), as Kafka's: the producer, still at its old
    epoch, is told PRODUCER_FENCED by EndTxn and INVALID_PRODUCER_EPOCH by the leader."""
    b = start_broker({"transaction.abort.timed.out.transaction.cleanup.interval.ms": "300"})
    topic, tid = h.unique("tv2t"), h.unique("tv2t-tid")
    h.create_topic(b.bootstrap, topic, 1)
    pid, epoch = init_producer(b.port, tid, transaction_timeout_ms=1000)
    conn = Conn(b.port)
    try:
        assert produce_v12(conn, tid, topic, 0, pid, epoch, 0, [b"left-open"]) == (NONE, 0)
        h.wait_until(lambda: describe_txn(b.port, tid)["state"] == "CompleteAbort", 60,
                     "the timed-out transaction to be aborted")
        assert describe_txn(b.port, tid)["producer_epoch"] == epoch + 2
        assert end_txn_v5(conn, tid, pid, epoch, commit=True)[0] == PRODUCER_FENCED
        err, _ = produce_v12(conn, tid, topic, 0, pid, epoch, 1, [b"late"])
        assert err == INVALID_PRODUCER_EPOCH, err
    finally:
        conn.close()
    assert read_committed(b.bootstrap, topic, [0]) == {0: []}
