"""Transactions (issue 6) with confluent-kafka's transactional API: commit and
abort visibility for read_committed / read_uncommitted consumers, open
transactions holding back the last stable offset, fencing by a second producer
with the same transactional.id, transaction timeouts, an exactly-once
consume-transform-produce pipeline surviving a SIGKILL of its processor
(tests/integration/eos_processor.py), and ListTransactions /
DescribeTransactions / DescribeProducers.

VLTAVA_EOS_RECORDS sets the number of input records of the exactly-once run
(default 100000, the issue's figure; about 20 s here).
VLTAVA_RDKAFKA_DEBUG (e.g. "eos,protocol,msg") is passed as librdkafka `debug`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)

import helpers as h
import kafka_wire as w

EOS_RECORDS = int(os.environ.get("VLTAVA_EOS_RECORDS", "100000"))
PROCESSOR = str(Path(__file__).with_name("eos_processor.py"))
FENCED_CODES = {KafkaError._FENCED, KafkaError.PRODUCER_FENCED, KafkaError.INVALID_PRODUCER_EPOCH}
TRANSACTIONAL_ID_NOT_FOUND = 105




def txn_producer(bootstrap: str, tid: str, **extra) -> Producer:
    conf = {"bootstrap.servers": bootstrap, "transactional.id": tid, "linger.ms": 5,
            "transaction.timeout.ms": 60000}
    conf.update(extra)
    p = Producer(h.with_debug(conf))
    p.init_transactions(30)
    return p


def produce_values(p: Producer, topic: str, partition: int, values) -> None:
    for v in values:
        while True:
            try:
                p.produce(topic, value=v, key=v[:8], partition=partition)
                break
            except BufferError:
                p.poll(0.05)


def read_all(bootstrap: str, topic: str, partitions, isolation: str, timeout: float = 60.0):
    """Every record of `partitions` from the beginning up to the end a consumer with
    `isolation` may see (high watermark, or last stable offset for read_committed).
    Returns {partition: [(offset, value)]}."""
    c = Consumer(h.with_debug({
        "bootstrap.servers": bootstrap, "group.id": h.unique("txn-read"),
        "enable.auto.commit": False, "enable.partition.eof": True,
        "auto.offset.reset": "error", "isolation.level": isolation,
    }))
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        got = {p: [] for p in partitions}
        at_eof = set()
        deadline = time.monotonic() + timeout
        while at_eof != set(partitions):
            if time.monotonic() > deadline:
                raise AssertionError(f"{isolation} read of {topic}: no end within {timeout}s; "
                                     f"got { {p: len(v) for p, v in got.items()} }, eof {at_eof}")
            for m in c.consume(num_messages=5000, timeout=0.2):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        at_eof.add(m.partition())
                        continue
                    raise AssertionError(f"consumer error on {topic}[{m.partition()}]: {err}")
                got[m.partition()].append((m.offset(), m.value()))
                at_eof.discard(m.partition())
        return got
    finally:
        c.close()


def values_of(got: dict, partition: int):
    return [v for _, v in got[partition]]


def offsets(bootstrap_port: int, topic: str, partition: int):
    """(high watermark, last stable offset) from raw ListOffsets v2 requests."""
    with w.connect(bootstrap_port) as s:
        out = []
        for iso, corr in ((0, 1), (1, 2)):
            resp = w.roundtrip(s, w.list_offsets_request_v2(corr, topic, [(partition, -1)], iso))
            _, parts = w.parse_list_offsets_v2(resp)
            err, _, off = parts[(topic, partition)]
            assert err == 0, f"ListOffsets isolation {iso}: error {err}"
            out.append(off)
    return tuple(out)


def vals(prefix: str, n: int):
    return [b"%s-%04d" % (prefix.encode(), i) for i in range(n)]


# --------------------------------------------------------------------------
# visibility
# --------------------------------------------------------------------------


def test_commit_and_abort_visibility(broker):
    ta, tb = h.unique("txn-a"), h.unique("txn-b")
    h.create_topic(broker.bootstrap, ta, 2)
    h.create_topic(broker.bootstrap, tb, 1)
    p = txn_producer(broker.bootstrap, h.unique("tid"))

    # 1: committed, across two topics and three partitions
    p.begin_transaction()
    produce_values(p, ta, 0, vals("c1-a0", 10))
    produce_values(p, ta, 1, vals("c1-a1", 10))
    produce_values(p, tb, 0, vals("c1-b0", 10))
    p.commit_transaction(30)
    # 2: aborted, after its records reached the log
    p.begin_transaction()
    produce_values(p, ta, 0, vals("x2-a0", 10))
    produce_values(p, tb, 0, vals("x2-b0", 10))
    assert p.flush(30) == 0
    p.abort_transaction(30)
    # 3: committed again
    p.begin_transaction()
    produce_values(p, ta, 1, vals("c3-a1", 10))
    produce_values(p, tb, 0, vals("c3-b0", 10))
    p.commit_transaction(30)

    rc_a = read_all(broker.bootstrap, ta, [0, 1], "read_committed")
    rc_b = read_all(broker.bootstrap, tb, [0], "read_committed")
    assert values_of(rc_a, 0) == vals("c1-a0", 10)
    assert values_of(rc_a, 1) == vals("c1-a1", 10) + vals("c3-a1", 10)
    assert values_of(rc_b, 0) == vals("c1-b0", 10) + vals("c3-b0", 10)
    # each control marker takes one offset
    assert [o for o, _ in rc_a[0]] == list(range(10))
    assert [o for o, _ in rc_a[1]] == list(range(10)) + list(range(11, 21))
    assert [o for o, _ in rc_b[0]] == list(range(10)) + list(range(22, 32))

    ru_a = read_all(broker.bootstrap, ta, [0, 1], "read_uncommitted")
    ru_b = read_all(broker.bootstrap, tb, [0], "read_uncommitted")
    assert values_of(ru_a, 0) == vals("c1-a0", 10) + vals("x2-a0", 10)
    assert values_of(ru_a, 1) == vals("c1-a1", 10) + vals("c3-a1", 10)
    assert values_of(ru_b, 0) == vals("c1-b0", 10) + vals("x2-b0", 10) + vals("c3-b0", 10)
    assert [o for o, _ in ru_a[0]] == list(range(10)) + list(range(11, 21))
    assert [o for o, _ in ru_b[0]] == list(range(10)) + list(range(11, 21)) + list(range(22, 32))

    # high watermark includes the markers; nothing open, so LSO == HW
    assert offsets(broker.port, ta, 0) == (22, 22)
    assert offsets(broker.port, ta, 1) == (22, 22)
    assert offsets(broker.port, tb, 0) == (33, 33)
    assert h.watermarks(broker.bootstrap, tb, 0) == (0, 33)


def test_open_transaction_invisible_until_commit(broker):
    topic = h.unique("txn-open")
    h.create_topic(broker.bootstrap, topic, 1)
    first = txn_producer(broker.bootstrap, h.unique("tid-first"))
    first.begin_transaction()
    produce_values(first, topic, 0, vals("done", 5))
    first.commit_transaction(30)                      # offsets 0..4, marker 5

    p = txn_producer(broker.bootstrap, h.unique("tid-open"))
    p.begin_transaction()
    produce_values(p, topic, 0, vals("open", 10))     # offsets 6..15
    assert p.flush(30) == 0
    assert offsets(broker.port, topic, 0) == (16, 6), "LSO must stop at the open transaction"

    c = Consumer(h.with_debug({"bootstrap.servers": broker.bootstrap, "group.id": h.unique("rc"),
                         "enable.auto.commit": False, "isolation.level": "read_committed",
                         "auto.offset.reset": "error"}))
    try:
        c.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
        seen = []
        end = time.monotonic() + 3.0
        while time.monotonic() < end:
            for m in c.consume(num_messages=100, timeout=0.2):
                assert m.error() is None, m.error()
                seen.append(m.value())
        assert seen == vals("done", 5), f"read_committed saw {seen}"
        # read_uncommitted sees the open records already
        ru = read_all(broker.bootstrap, topic, [0], "read_uncommitted")
        assert values_of(ru, 0) == vals("done", 5) + vals("open", 10)

        p.commit_transaction(30)                      # marker 16
        deadline = time.monotonic() + 30
        while len(seen) < 15 and time.monotonic() < deadline:
            for m in c.consume(num_messages=100, timeout=0.2):
                assert m.error() is None, m.error()
                seen.append(m.value())
        assert seen == vals("done", 5) + vals("open", 10)
    finally:
        c.close()
    assert offsets(broker.port, topic, 0) == (17, 17)


# --------------------------------------------------------------------------
# fencing and timeouts
# --------------------------------------------------------------------------


def test_second_producer_with_same_transactional_id_fences_the_first(broker):
    topic = h.unique("txn-fence")
    h.create_topic(broker.bootstrap, topic, 1)
    tid = h.unique("tid-fence")
    p1 = txn_producer(broker.bootstrap, tid)
    p1.begin_transaction()
    produce_values(p1, topic, 0, vals("zombie", 5))   # offsets 0..4
    assert p1.flush(30) == 0

    p2 = txn_producer(broker.bootstrap, tid)          # aborts p1's transaction: marker 5

    err = None
    try:
        produce_values(p1, topic, 0, [b"zombie-late"])
        p1.commit_transaction(15)
    except KafkaException as e:
        err = e.args[0]
    assert err is not None, "the fenced producer committed its transaction"
    print(f"fenced producer got {err!r} fatal={err.fatal()}")
    assert err.code() in FENCED_CODES, f"expected a fencing error, got {err!r}"

    p2.begin_transaction()
    produce_values(p2, topic, 0, vals("winner", 5))   # offsets 6..10, marker 11
    p2.commit_transaction(30)

    rc = read_all(broker.bootstrap, topic, [0], "read_committed")
    assert values_of(rc, 0) == vals("winner", 5)
    assert [o for o, _ in rc[0]] == list(range(6, 11))
    ru = read_all(broker.bootstrap, topic, [0], "read_uncommitted")
    assert values_of(ru, 0) == vals("zombie", 5) + vals("winner", 5)
    assert offsets(broker.port, topic, 0) == (12, 12)


STALLED_TIMEOUT_MS = 15_000   # long enough to see the LSO held, whatever the load


@pytest.mark.timeout(150)
def test_transaction_left_open_past_its_timeout_is_aborted(start_broker):
    broker = start_broker({"transaction.abort.timed.out.transaction.cleanup.interval.ms": 500})
    topic = h.unique("txn-timeout")
    h.create_topic(broker.bootstrap, topic, 1)
    other = txn_producer(broker.bootstrap, h.unique("tid-other"))
    stalled = txn_producer(broker.bootstrap, h.unique("tid-stalled"),
                           **{"transaction.timeout.ms": STALLED_TIMEOUT_MS})
    t0 = time.monotonic()   # before the transaction starts: its timeout runs from later
    stalled.begin_transaction()
    produce_values(stalled, topic, 0, vals("stalled", 10))   # offsets 0..9
    assert stalled.flush(30) == 0

    other.begin_transaction()
    produce_values(other, topic, 0, vals("later", 10))       # offsets 10..19, marker 20
    other.commit_transaction(30)
    hw, lso = offsets(broker.port, topic, 0)
    held = time.monotonic() - t0
    assert held < STALLED_TIMEOUT_MS / 1000, (
        f"the machine took {held:.1f}s to commit ten records: the LSO check needs a longer "
        "STALLED_TIMEOUT_MS")
    assert (hw, lso) == (21, 0), "the stalled transaction must hold the LSO at 0"

    # the coordinator aborts the stalled transaction (marker 21); the LSO moves on
    deadline = t0 + STALLED_TIMEOUT_MS / 1000 + 60
    while True:
        hw, lso = offsets(broker.port, topic, 0)
        if lso > 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    waited = time.monotonic() - t0
    print(f"LSO advanced {waited:.1f}s after the stalled transaction began")
    assert (hw, lso) == (22, 22), f"after {waited:.1f}s: hw={hw} lso={lso}"
    # a lower bound, which no load can break: not aborted before its timeout
    assert waited >= STALLED_TIMEOUT_MS / 1000, (
        f"aborted after {waited:.1f}s, before its {STALLED_TIMEOUT_MS / 1000:.0f}s timeout")

    rc = read_all(broker.bootstrap, topic, [0], "read_committed")
    assert values_of(rc, 0) == vals("later", 10)
    assert [o for o, _ in rc[0]] == list(range(10, 20))
    ru = read_all(broker.bootstrap, topic, [0], "read_uncommitted")
    assert values_of(ru, 0) == vals("stalled", 10) + vals("later", 10)

    # the stalled producer cannot commit what the coordinator aborted
    err = None
    try:
        stalled.commit_transaction(15)
    except KafkaException as e:
        err = e.args[0]
    print(f"stalled producer's commit: {err!r}")
    assert err is not None, "a transaction aborted by its timeout was committed"
    rc = read_all(broker.bootstrap, topic, [0], "read_committed")
    assert values_of(rc, 0) == vals("later", 10)


# --------------------------------------------------------------------------
# exactly-once consume-transform-produce across a crash of the processor
# --------------------------------------------------------------------------


class Processor:
    def __init__(self, bootstrap, inp, outp, group, tid, workdir: Path, name, hold_after=-1):
        self.events_path = workdir / f"{name}.jsonl"
        self.stderr_path = workdir / f"{name}.stderr"
        args = [sys.executable, PROCESSOR, bootstrap, inp, outp, group, tid,
                str(self.events_path), "--hold-after", str(hold_after)]
        self.stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.stderr,
                                     stderr=self.stderr)

    def events(self):
        if not self.events_path.exists():
            return []
        evs = []
        for line in self.events_path.read_text().splitlines():
            try:
                evs.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return evs

    def last(self, ev):
        for e in reversed(self.events()):
            if e["ev"] == ev:
                return e
        return None

    def describe(self):
        errs = [e for e in self.events() if e["ev"] in ("error", "aborted", "consume_error", "retry")]
        tail = self.stderr_path.read_bytes()[-3000:].decode(errors="replace")
        return (f"exit={self.proc.poll()} committed={self.last('committed')} "
                f"errors={errs[-5:]}\nstderr tail:\n{tail}")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.stderr.close()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.stderr.close()
        return self.proc.returncode


@pytest.fixture
def processors():
    started = []
    yield started
    for pr in started:
        pr.kill()


def _wait(cond, timeout, what, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        if proc is not None and proc.proc.poll() is not None:
            raise AssertionError(f"processor exited while waiting for {what}: {proc.describe()}")
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}"
                         + (f": {proc.describe()}" if proc else ""))


@pytest.mark.timeout(300)
def test_exactly_once_pipeline_survives_processor_sigkill(broker, tmp_path, processors):
    n = EOS_RECORDS
    parts = 3
    inp, outp = h.unique("eos-in"), h.unique("eos-out")
    group, tid = h.unique("eos-group"), h.unique("eos-tid")
    h.create_topic(broker.bootstrap, inp, parts)
    h.create_topic(broker.bootstrap, outp, parts)

    p = h.make_producer(broker.bootstrap, {"enable.idempotence": True})
    inputs = [b"in-%07d" % i for i in range(n)]
    for i, v in enumerate(inputs):
        while True:
            try:
                p.produce(inp, key=v, value=v, partition=i % parts)
                break
            except BufferError:
                p.poll(0.05)
    assert p.flush(60) == 0
    del p
    in_end = {q: h.watermarks(broker.bootstrap, inp, q)[1] for q in range(parts)}
    assert sum(in_end.values()) == n

    first = Processor(broker.bootstrap, inp, outp, group, tid, tmp_path, "proc1",
                      hold_after=n // 4)
    processors.append(first)
    _wait(lambda: first.last("holding") is not None, 120, "the first processor to hold a "
          "transaction open after a quarter of the input", first)
    held = first.last("holding")
    first.kill()
    committed_before = held["total"]
    print(f"SIGKILLed the first processor after {committed_before} records committed, "
          f"with {held['n']} records produced in its open transaction")
    assert committed_before >= n // 4
    # its open transaction's records are in the output log, past the LSO
    out_offsets = {q: offsets(broker.port, outp, q) for q in range(parts)}
    open_parts = [q for q, (hw, lso) in out_offsets.items() if hw > lso]
    print(f"output (high watermark, LSO) per partition after the kill: {out_offsets}")
    assert open_parts, "the killed processor left no open transaction in the output"

    second = Processor(broker.bootstrap, inp, outp, group, tid, tmp_path, "proc2")
    processors.append(second)

    watcher = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group,
                        "enable.auto.commit": False, "isolation.level": "read_committed"})
    tps = [TopicPartition(inp, q) for q in range(parts)]

    def input_done():
        try:
            got = watcher.committed(tps, timeout=10)
        except KafkaException:
            return False
        return {tp.partition: tp.offset for tp in got} == in_end

    try:
        _wait(input_done, 240, "the group's committed input offsets to reach the end", second)
    finally:
        watcher.close()
    assert second.stop() == 0, second.describe()
    assert second.last("closed") is not None, second.describe()

    rc = read_all(broker.bootstrap, outp, list(range(parts)), "read_committed", timeout=120)
    ru = read_all(broker.bootstrap, outp, list(range(parts)), "read_uncommitted", timeout=120)
    out_values = [v for q in range(parts) for v in values_of(rc, q)]
    distinct = set(out_values)
    expected = {v + b":out" for v in inputs}
    missing = len(expected - distinct)
    extra = len(distinct - expected)
    dups = len(out_values) - len(distinct)
    raw = sum(len(ru[q]) for q in range(parts))
    print(f"EOS run: input {n}, output read_committed {len(out_values)} "
          f"({len(distinct)} distinct, {dups} duplicates, {missing} missing, {extra} unexpected); "
          f"read_uncommitted {raw} (aborted records in the log: {raw - len(out_values)}); "
          f"processor 1 committed {committed_before}, processor 2 committed "
          f"{second.last('closed')['total']}")
    assert (len(out_values), dups, missing, extra) == (n, 0, 0, 0)
    for q in range(parts):
        assert values_of(rc, q) == [v + b":out" for v in inputs[q::parts]], (
            f"output partition {q}: not the input partition's order")
    assert raw >= n + held["n"], "the aborted transaction of the killed processor is not in the log"
    if not any(e["ev"] == "aborted" for e in second.events()):
        assert raw == n + held["n"], "records beyond the input and the killed transaction"
    assert second.last("closed")["total"] == n - committed_before, (
        "the second processor did not resume exactly at the first one's committed offsets")


# --------------------------------------------------------------------------
# observability: ListTransactions, DescribeTransactions, DescribeProducers
# --------------------------------------------------------------------------


def _wire(port, req_fn, parse_fn, *args, **kw):
    resp = w.request(port, req_fn(7, *args, **kw))
    out = parse_fn(resp)
    assert out["correlation_id"] == 7
    return out


def test_list_and_describe_transactions(broker):
    topic = h.unique("txn-admin")
    h.create_topic(broker.bootstrap, topic, 3)
    tid_open, tid_done = h.unique("tid-ongoing"), h.unique("tid-committed")

    done = txn_producer(broker.bootstrap, tid_done)
    done.begin_transaction()
    produce_values(done, topic, 2, vals("done", 3))          # p2 offsets 0..2, marker 3
    done.commit_transaction(30)

    ongoing = txn_producer(broker.bootstrap, tid_open, **{"transaction.timeout.ms": 45000})
    ongoing.begin_transaction()
    produce_values(ongoing, topic, 0, vals("open0", 4))      # p0 offsets 0..3
    produce_values(ongoing, topic, 1, vals("open1", 2))      # p1 offsets 0..1
    assert ongoing.flush(30) == 0
    now_ms = int(time.time() * 1000)

    # ListTransactions v0
    lt = _wire(broker.port, w.list_transactions_request_v0, w.parse_list_transactions_v0)
    assert lt["error_code"] == 0 and lt["unknown_state_filters"] == [], lt
    txns = lt["transactions"]
    assert tid_open in txns and tid_done in txns, txns
    pid_open, state_open = txns[tid_open]
    pid_done, state_done = txns[tid_done]
    assert state_open == "Ongoing", txns[tid_open]
    assert state_done == "CompleteCommit", txns[tid_done]
    assert pid_open >= 0 and pid_done >= 0 and pid_open != pid_done

    only = _wire(broker.port, w.list_transactions_request_v0, w.parse_list_transactions_v0,
                 state_filters=["Ongoing"])["transactions"]
    assert tid_open in only and tid_done not in only, only
    only = _wire(broker.port, w.list_transactions_request_v0, w.parse_list_transactions_v0,
                 state_filters=["CompleteCommit"])["transactions"]
    assert tid_done in only and tid_open not in only, only
    only = _wire(broker.port, w.list_transactions_request_v0, w.parse_list_transactions_v0,
                 producer_id_filters=[pid_open])["transactions"]
    assert only == {tid_open: (pid_open, "Ongoing")}, only
    bogus = _wire(broker.port, w.list_transactions_request_v0, w.parse_list_transactions_v0,
                  state_filters=["Bogus"])
    assert bogus["unknown_state_filters"] == ["Bogus"] and bogus["transactions"] == {}, bogus

    # DescribeTransactions v0
    dt = _wire(broker.port, w.describe_transactions_request_v0,
               w.parse_describe_transactions_v0, [tid_open, tid_done, "no-such-tid"])
    t = dt["transactions"]
    assert set(t) == {tid_open, tid_done, "no-such-tid"}, t
    assert t["no-such-tid"]["error_code"] == TRANSACTIONAL_ID_NOT_FOUND, t["no-such-tid"]
    o = t[tid_open]
    assert o["error_code"] == 0 and o["state"] == "Ongoing", o
    assert o["producer_id"] == pid_open and o["producer_epoch"] == 0, o
    assert o["transaction_timeout_ms"] == 45000, o
    assert o["partitions"] == {(topic, 0), (topic, 1)}, o
    assert now_ms - 60_000 < o["transaction_start_time_ms"] <= now_ms + 1000, o
    d = t[tid_done]
    assert d["error_code"] == 0 and d["state"] == "CompleteCommit", d
    assert d["producer_id"] == pid_done and d["partitions"] == set(), d

    # DescribeProducers v0: the open transaction starts at offset 0 of p0 and p1
    dp = _wire(broker.port, w.describe_producers_request_v0, w.parse_describe_producers_v0,
               [(topic, [0, 1, 2])])["partitions"]
    for q, pid, last_seq, txn_start in ((0, pid_open, 3, 0), (1, pid_open, 1, 0),
                                        (2, pid_done, 2, -1)):
        part = dp[(topic, q)]
        assert part["error_code"] == 0, part
        assert [(a["producer_id"], a["producer_epoch"], a["last_sequence"],
                 a["current_txn_start_offset"]) for a in part["active_producers"]] == [
            (pid, 0, last_seq, txn_start)], (q, part)

    # kafka-python's admin client reads the same
    from kafka.admin import KafkaAdminClient
    kadmin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        listing = {x.transactional_id: x for xs in kadmin.list_transactions().values() for x in xs}
        assert listing[tid_open].state.value == "Ongoing", listing[tid_open]
        assert listing[tid_done].state.value == "CompleteCommit", listing[tid_done]
        desc = kadmin.describe_transactions([tid_open])[tid_open]
        assert desc.state.value == "Ongoing" and desc.producer_id == pid_open, desc
        assert {(tp.topic, tp.partition) for tp in desc.topic_partitions} == {(topic, 0), (topic, 1)}
    finally:
        kadmin.close()

    # after the commit
    ongoing.commit_transaction(30)
    lt = _wire(broker.port, w.list_transactions_request_v0, w.parse_list_transactions_v0,
               producer_id_filters=[pid_open])
    assert lt["transactions"] == {tid_open: (pid_open, "CompleteCommit")}, lt
    dp = _wire(broker.port, w.describe_producers_request_v0, w.parse_describe_producers_v0,
               [(topic, [0])])["partitions"]
    assert [(a["producer_id"], a["current_txn_start_offset"])
            for a in dp[(topic, 0)]["active_producers"]] == [(pid_open, -1)], dp
