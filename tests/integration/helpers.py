"""Client-side helpers shared by the integration tests (confluent-kafka and
kafka-python). These consumers always use manual partition assignment and never
commit, so the data-path tests do not depend on consumer-group support."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import threading
import time
import uuid
from collections import namedtuple
from pathlib import Path

from confluent_kafka import (OFFSET_BEGINNING, TIMESTAMP_CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME,
                             Consumer, KafkaError, KafkaException, Producer, TopicPartition)
from confluent_kafka.admin import AdminClient, NewTopic

# A record to produce. headers: list of (str, bytes|None) or None.
Rec = namedtuple("Rec", "key value headers timestamp")
# A record as read back, normalized across clients.
Got = namedtuple("Got", "partition offset key value headers ts_type timestamp")

CREATE_TIME = "CreateTime"
LOG_APPEND_TIME = "LogAppendTime"


def base_ts() -> int:
    """A CreateTime base an hour in the past: recent enough that no retention policy
    (7 days by default) can delete it, old enough to differ from the broker clock."""
    return int(time.time() * 1000) - 3_600_000


def unique(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def wait_until(cond, timeout: float, what: str, interval: float = 0.1):
    """Polls cond() until it returns something truthy (returned) or `timeout` seconds
    pass (AssertionError naming `what` and the last value). A deadline, not a verdict:
    make it generous."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = cond()
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 30.0) -> tuple[int, str]:
    """(status, body) of a GET, error statuses included."""
    import urllib.error
    import urllib.request
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Worker(threading.Thread):
    """A thread whose exception is not lost: join() re-raises it in the test (pytest does
    not fail a test for an exception in another thread)."""

    def __init__(self, fn, *args, name: str | None = None):
        super().__init__(daemon=True, name=name)
        self._fn, self._fn_args = fn, args
        self.error: BaseException | None = None
        self.result = None

    def run(self):
        try:
            self.result = self._fn(*self._fn_args)
        except BaseException as e:  # noqa: BLE001 - re-raised by join()
            self.error = e

    def join(self, timeout: float | None = None):
        super().join(timeout)
        if self.is_alive():
            raise AssertionError(f"thread {self.name} still running after {timeout}s")
        if self.error is not None:
            raise AssertionError(f"thread {self.name} failed: {self.error!r}") from self.error
        return self.result


# --------------------------------------------------------------------------
# confluent-kafka
# --------------------------------------------------------------------------


def admin(bootstrap: str, **conf) -> AdminClient:
    # An AdminClient is a producer-type librdkafka handle, whose metadata requests
    # would ask the broker to auto-create the topics they name: turn that off.
    c = {"bootstrap.servers": bootstrap, "allow.auto.create.topics": False}
    c.update(conf)
    return AdminClient(c)


def create_topic(bootstrap: str, name: str, partitions: int = 1, replication_factor: int = 1,
                 config: dict | None = None, timeout: float = 30.0) -> None:
    a = admin(bootstrap)
    fs = a.create_topics([NewTopic(name, num_partitions=partitions,
                                   replication_factor=replication_factor, config=config or {})],
                         request_timeout=timeout)
    fs[name].result(timeout)
    wait_for_topic(bootstrap, name, partitions)


def topic_partitions(bootstrap: str, name: str, timeout: float = 10.0):
    """Returns {partition_id: PartitionMetadata} from a Metadata request, or None if absent."""
    a = admin(bootstrap)
    md = a.list_topics(topic=name, timeout=timeout)
    t = md.topics.get(name)
    if t is None or t.error is not None:
        return None
    return dict(t.partitions)


def all_topics(bootstrap: str, timeout: float = 10.0) -> dict:
    """{topic: partition count} for every topic the broker lists."""
    md = admin(bootstrap).list_topics(timeout=timeout)
    return {name: len(t.partitions) for name, t in md.topics.items() if t.error is None}


def wait_for_topic(bootstrap: str, name: str, partitions: int, timeout: float = 15.0) -> dict:
    deadline = time.monotonic() + timeout
    last = None
    while True:
        parts = topic_partitions(bootstrap, name)
        last = parts
        if parts is not None and len(parts) == partitions and all(
                p.leader == 1 and p.error is None for p in parts.values()):
            return parts
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {name} not visible with {partitions} partitions "
                                 f"(led by broker 1) within {timeout}s; last metadata: {last}")
        time.sleep(0.1)


def wait_topic_gone(bootstrap: str, name: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if name not in all_topics(bootstrap):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"topic {name} still listed {timeout}s after deletion")
        time.sleep(0.1)


def make_producer(bootstrap: str, conf: dict | None = None) -> Producer:
    c = {
        "bootstrap.servers": bootstrap,
        "enable.idempotence": False,
        "acks": "all",
        "linger.ms": 5,
        "message.timeout.ms": 30000,
        "queue.buffering.max.messages": 1000000,
        "queue.buffering.max.kbytes": 1048576,
    }
    c.update(conf or {})
    return Producer(c)


class Deliveries:
    """Collects delivery reports; index i is the report of the i-th produced record."""

    def __init__(self):
        self.reports: dict[int, tuple] = {}

    def cb(self, i: int):
        def _cb(err, msg):
            self.reports[i] = (err, msg.partition(), msg.offset())
        return _cb

    def errors(self):
        return {i: r[0] for i, r in self.reports.items() if r[0] is not None}


def produce_all(producer: Producer, topic: str, records, partition: int | None = None,
                timeout: float = 120.0, partitions=None) -> Deliveries:
    """Produce every record (optionally to a fixed partition / per-record partitions),
    flush, and return the delivery reports. Fails if any report is missing."""
    d = Deliveries()
    n = 0
    for i, r in enumerate(records):
        kw = {"on_delivery": d.cb(i)}
        if r.key is not None:
            kw["key"] = r.key
        if r.value is not None:
            kw["value"] = r.value
        if r.headers is not None:
            kw["headers"] = r.headers
        if r.timestamp is not None:
            kw["timestamp"] = r.timestamp
        p = partitions[i] if partitions is not None else partition
        if p is not None:
            kw["partition"] = p
        while True:
            try:
                producer.produce(topic, **kw)
                break
            except BufferError:
                producer.poll(0.05)
        n += 1
        if n % 1000 == 0:
            producer.poll(0)
    remaining = producer.flush(timeout)
    assert remaining == 0, f"{remaining} messages still queued after flush({timeout})"
    assert len(d.reports) == n, f"got {len(d.reports)} delivery reports for {n} messages"
    return d


def expected_by_partition(records, deliveries: Deliveries, with_offsets: bool = True):
    """Group produced records by the partition of their delivery report, ordered by the
    acknowledged offset (or by production order when offsets are unknown, as with acks=0)."""
    out: dict[int, list] = {}
    for i, r in enumerate(records):
        err, p, off = deliveries.reports[i]
        assert err is None, f"record {i} failed delivery: {err}"
        out.setdefault(p, []).append((off if with_offsets else i, i, r))
    res = {}
    for p, lst in out.items():
        lst.sort(key=lambda x: x[0])
        res[p] = lst
    return res


def _norm_headers(h):
    if not h:
        return ()
    return tuple((k, v) for k, v in h)


def got_from_confluent(msg) -> Got:
    ts_type, ts = msg.timestamp()
    tname = {TIMESTAMP_CREATE_TIME: CREATE_TIME, TIMESTAMP_LOG_APPEND_TIME: LOG_APPEND_TIME}.get(
        ts_type, f"type{ts_type}")
    return Got(msg.partition(), msg.offset(), msg.key(), msg.value(),
               _norm_headers(msg.headers()), tname, ts)


def make_consumer(bootstrap: str, conf: dict | None = None) -> Consumer:
    c = {
        "bootstrap.servers": bootstrap,
        # group.id is mandatory for the client object, but no group API is used:
        # partitions are assigned manually and nothing is committed.
        "group.id": unique("manual-assign"),
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "error",
    }
    c.update(conf or {})
    return Consumer(c)


def consume(bootstrap: str, topic: str, expected, start=OFFSET_BEGINNING, timeout: float = 60.0,
            conf: dict | None = None, consumer: Consumer | None = None):
    """Read `topic` with confluent-kafka until each partition reached EOF after the
    expected number of records.

    expected: {partition: count} or (partitions_list, total_count).
    start:    an offset for every partition, or {partition: offset}; ignored when an
              already assigned `consumer` is passed (it is used as it is, and not closed).
    Returns {partition: [Got, ...]}. Any consumer error other than EOF fails.
    """
    if isinstance(expected, dict):
        parts = sorted(expected)
        per_part = dict(expected)
        total = None
    else:
        parts, total = sorted(expected[0]), expected[1]
        per_part = None
    starts = start if isinstance(start, dict) else {p: start for p in parts}
    own = consumer is None
    c = consumer or make_consumer(bootstrap, conf)
    try:
        if own:
            c.assign([TopicPartition(topic, p, starts[p]) for p in parts])
        got: dict[int, list] = {p: [] for p in parts}
        eof: dict[int, int] = {}
        deadline = time.monotonic() + timeout

        def done():
            for p in parts:
                nxt = got[p][-1].offset + 1 if got[p] else None
                if p not in eof or (nxt is not None and eof[p] < nxt):
                    return False
            if per_part is not None:
                return all(len(got[p]) >= per_part[p] for p in parts)
            return sum(len(v) for v in got.values()) >= total

        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timeout after {timeout}s consuming {topic}: got "
                    f"{ {p: len(v) for p, v in got.items()} } records, expected "
                    f"{per_part if per_part is not None else total}; eof={eof}")
            for m in c.consume(num_messages=2000, timeout=0.2):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        eof[m.partition()] = m.offset()
                        continue
                    raise AssertionError(f"consumer error on {m.topic()} [{m.partition()}]: {err}")
                got[m.partition()].append(got_from_confluent(m))
                eof.pop(m.partition(), None)
        return got
    finally:
        if own:
            c.close()


def assert_matches(got: dict, expected: dict, check_offsets: bool = True,
                   ts_type: str = CREATE_TIME) -> None:
    """Compare consumed records with expected_by_partition() output, byte for byte."""
    assert sorted(p for p in got if got[p]) == sorted(expected), (
        f"partitions with data differ: got {sorted(p for p in got if got[p])}, "
        f"expected {sorted(expected)}")
    for p, exp in expected.items():
        g = got[p]
        assert len(g) == len(exp), f"partition {p}: {len(g)} records read, {len(exp)} expected"
        for j, ((off, i, r), m) in enumerate(zip(exp, g)):
            where = f"partition {p} position {j} (record #{i}, offset {m.offset})"
            assert m.offset == g[0].offset + j, f"{where}: offsets not dense"
            if check_offsets:
                assert m.offset == off, f"{where}: acknowledged at offset {off}"
            assert m.key == r.key, f"{where}: key {m.key!r} != {r.key!r}"
            assert m.value == r.value, f"{where}: value {m.value!r:.80} != {r.value!r:.80}"
            assert m.headers == _norm_headers(r.headers), (
                f"{where}: headers {m.headers!r} != {_norm_headers(r.headers)!r}")
            if r.timestamp is not None:
                assert (m.ts_type, m.timestamp) == (ts_type, r.timestamp), (
                    f"{where}: timestamp {(m.ts_type, m.timestamp)} != {(ts_type, r.timestamp)}")


def watermarks(bootstrap: str, topic: str, partition: int, timeout: float = 10.0):
    c = make_consumer(bootstrap)
    try:
        return c.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout,
                                       cached=False)
    finally:
        c.close()


def make_records(n: int, seed: int = 1, ts0: int | None = None, value_size: int = 120):
    """Deterministic varied records: None/empty/binary keys, tombstones, empty values,
    duplicate header keys, null and binary header values, explicit CreateTime stamps."""
    rnd = random.Random(seed)
    if ts0 is None:
        ts0 = base_ts()
    out = []
    for i in range(n):
        km = i % 10
        if km == 0:
            key = None
        elif km == 1:
            key = b""
        elif km == 2:
            key = bytes([0, 255, i % 256, 10, 13]) + b"bin"
        else:
            key = b"key-%d" % (i % 997)
        vm = i % 13
        if vm == 0:
            value = None  # tombstone
        elif vm == 1:
            value = b""
        elif vm == 2:
            value = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(1, value_size)))
        else:
            value = (b"value-%d-" % i) * (1 + rnd.randrange(value_size // 10))
        hm = i % 4
        if hm == 0:
            headers = None
        elif hm == 1:
            headers = [("h", b"%d" % i)]
        elif hm == 2:
            headers = [("dup", b"first"), ("dup", b"second"), ("bin", bytes([0, 1, 255, i % 256])),
                       ("dup", b"")]
        else:
            headers = [("null-value", None), ("\u043a\u043b\u044e\u0447", "\u0437\u043d\u0430\u0447".encode()),
                       ("h", b"%d" % i)]
        ts = ts0 + i
        out.append(Rec(key, value, headers, ts))
    return out


# --------------------------------------------------------------------------
# kafka-python
# --------------------------------------------------------------------------


def kp_producer(bootstrap: str, **kw):
    from kafka import KafkaProducer
    conf = dict(bootstrap_servers=bootstrap, enable_idempotence=False, acks="all",
                linger_ms=5, request_timeout_ms=30000)
    conf.update(kw)
    return KafkaProducer(**conf)


def kp_produce_all(producer, topic: str, records, partition: int | None = None,
                   timeout: float = 120.0):
    """Returns [(partition, offset)] per record, in input order."""
    futs = []
    for r in records:
        futs.append(producer.send(topic, value=r.value, key=r.key,
                                  headers=list(r.headers) if r.headers is not None else None,
                                  partition=partition, timestamp_ms=r.timestamp))
    producer.flush(timeout=timeout)
    out = []
    for f in futs:
        md = f.get(timeout=timeout)
        out.append((md.partition, md.offset))
    return out


def kp_consume(bootstrap: str, topic: str, expected: dict, timeout: float = 60.0, **kw):
    """Read {partition: count} records from offset 0 with kafka-python (group_id=None)."""
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP
    conf = dict(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                auto_offset_reset="none", fetch_max_wait_ms=200)
    conf.update(kw)
    c = KafkaConsumer(**conf)
    try:
        tps = [KTP(topic, p) for p in sorted(expected)]
        c.assign(tps)
        for tp in tps:
            c.seek(tp, 0)
        got = {p: [] for p in expected}
        deadline = time.monotonic() + timeout
        while any(len(got[p]) < n for p, n in expected.items()):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"kafka-python: timeout consuming {topic}: got "
                    f"{ {p: len(v) for p, v in got.items()} }, expected {expected}")
            for tp, msgs in c.poll(timeout_ms=200, max_records=5000).items():
                for m in msgs:
                    tname = CREATE_TIME if m.timestamp_type == 0 else LOG_APPEND_TIME
                    got[tp.partition].append(Got(tp.partition, m.offset, m.key, m.value,
                                                 _norm_headers(m.headers), tname, m.timestamp))
        # make sure nothing beyond the expected records is there
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            for tp, msgs in c.poll(timeout_ms=100).items():
                for m in msgs:
                    tname = CREATE_TIME if m.timestamp_type == 0 else LOG_APPEND_TIME
                    got[tp.partition].append(Got(tp.partition, m.offset, m.key, m.value,
                                                 _norm_headers(m.headers), tname, m.timestamp))
        return got
    finally:
        c.close()


def raise_kafka(fut, timeout=30.0):
    """Run a confluent admin future, returning the KafkaError (or None on success)."""
    try:
        fut.result(timeout)
        return None
    except KafkaException as e:
        return e.args[0]


RDKAFKA_DEBUG = os.environ.get("VLTAVA_RDKAFKA_DEBUG", "")


def with_debug(conf: dict) -> dict:
    """`conf` plus librdkafka's `debug` when VLTAVA_RDKAFKA_DEBUG is set
    (e.g. "eos,protocol,msg")."""
    return dict(conf, debug=RDKAFKA_DEBUG) if RDKAFKA_DEBUG else conf


# --------------------------------------------------------------------------
# the Java client (tests/java, compiled by scripts/test-all.sh)
# --------------------------------------------------------------------------

_REPO = Path(__file__).resolve().parents[2]
JAVA_LIBS = _REPO / ".cache" / "java-libs"
JAVA_BUILD = _REPO / "tests" / "java" / "build"
# jackson: the OAUTHBEARER login modules parse JSON with it
JAVA_JARS = ["kafka-clients", "slf4j-api", "lz4-java", "snappy-java", "zstd-jni",
             "jackson-databind", "jackson-core", "jackson-annotations"]


def run_java(main_class: str, *args, timeout: float, props: dict | None = None):
    """Runs tests/java/<main_class>.java (compiled) with the Java client jars; returns the
    CompletedProcess (text). Fails the test if a prerequisite is missing."""
    missing = [j for j in JAVA_JARS if not (JAVA_LIBS / f"{j}.jar").is_file()]
    assert not missing, (f"Java client jars missing from {JAVA_LIBS}: {missing}. "
                         "Run ./scripts/test-all.sh (it downloads and unpacks them).")
    assert (JAVA_BUILD / f"{main_class}.class").is_file(), (
        f"{JAVA_BUILD}/{main_class}.class missing: compile tests/java/{main_class}.java "
        "(./scripts/test-all.sh does it)")
    java = shutil.which("java")
    assert java, "java not found on PATH"
    cp = os.pathsep.join([str(JAVA_BUILD)] + [str(JAVA_LIBS / f"{j}.jar") for j in JAVA_JARS])
    cmd = [java, "-Xmx512m", "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC"]
    cmd += [f"-D{k}={v}" for k, v in (props or {}).items()]
    cmd += ["-cp", cp, main_class, *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def java_ok_lines(res, main_class: str) -> list[str]:
    """The "OK ..." lines of a Java run, after checking it exited 0."""
    out = res.stdout
    assert res.returncode == 0, (f"{main_class} exited {res.returncode}\nstdout:\n{out[-4000:]}\n"
                                 f"stderr:\n{res.stderr[-6000:]}")
    return [line for line in out.splitlines() if line.startswith("OK ")]


def ck_round_trip(conf: dict, topic: str, n: int = 300) -> None:
    """confluent-kafka: create the topic (admin), produce n with acks=all, read them all
    in a consumer group and commit."""
    admin = AdminClient(dict(conf))
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)
    p = Producer({**conf, "acks": "all", "linger.ms": 5})
    failed = []
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=f"v{i}".encode(),
                  on_delivery=lambda err, _m: err and failed.append(err))
    assert p.flush(60) == 0, "records still queued after 60 s"
    assert not failed, failed[:3]
    c = Consumer({**conf, "group.id": f"{topic}-g", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    try:
        c.subscribe([topic])
        seen = set()
        deadline = time.monotonic() + 60
        while len(seen) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                seen.add(m.value())
        assert len(seen) == n, f"read {len(seen)} of {n}"
        c.commit(asynchronous=False)
        committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=30)
        assert sum(tp.offset for tp in committed) == n, committed
    finally:
        c.close()


def kp_round_trip(conf: dict, topic: str, port: int, n: int = 300) -> None:
    """kafka-python with `conf` (KafkaAdminClient/Producer/Consumer keyword arguments):
    create the topic and check that the cluster is the broker at `port` (admin),
    produce n with acks=all, read them all in a consumer group and commit."""
    from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
    from kafka.admin import NewTopic as KNewTopic

    admin = KafkaAdminClient(**conf)
    try:
        admin.create_topics([KNewTopic(topic, num_partitions=2, replication_factor=1)])
        cluster = admin.describe_cluster()
        assert [br["port"] for br in cluster["brokers"]] == [port], cluster
    finally:
        admin.close()
    producer = KafkaProducer(acks="all", **conf)
    futures = [producer.send(topic, key=str(i).encode(), value=f"v{i}".encode()) for i in range(n)]
    producer.flush(60)
    assert all(f.get(30).offset >= 0 for f in futures)
    producer.close()
    consumer = KafkaConsumer(topic, group_id=f"{topic}-g", auto_offset_reset="earliest",
                             enable_auto_commit=False, **conf)
    try:
        seen = set()
        deadline = time.monotonic() + 60
        while len(seen) < n and time.monotonic() < deadline:
            for msgs in consumer.poll(timeout_ms=500).values():
                seen.update(m.value for m in msgs)
        assert len(seen) == n, f"{topic}: read {len(seen)} of {n}"
        consumer.commit()
    finally:
        consumer.close()


def kcat(*args: str, stdin: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(["kcat", *args], input=stdin, capture_output=True, text=True, timeout=timeout)


def kcat_round_trip(opts: list, topic: str, n: int = 300) -> dict:
    """kcat with `opts` (-b and -X): produce n lines with acks=all, read them all in a
    consumer group (balanced consumer). Returns the `-L -J` metadata."""
    import json
    lines = [f"line-{i}" for i in range(n)]
    res = kcat(*opts, "-P", "-t", topic, "-X", "acks=all", stdin="\n".join(lines) + "\n")
    assert res.returncode == 0, res.stderr
    res = kcat(*opts, "-L", "-J", "-t", topic)
    assert res.returncode == 0, res.stderr
    metadata = json.loads(res.stdout)
    got: list[str] = []
    deadline = time.monotonic() + 90
    while len(got) < n and time.monotonic() < deadline:
        res = kcat(*opts, "-G", f"{topic}-g", "-o", "beginning", "-e", topic, timeout=60)
        got += [line for line in res.stdout.splitlines() if line.startswith("line-")]
    assert sorted(got) == sorted(lines), f"{len(got)} of {n}, stderr: {res.stderr[-2000:]}"
    return metadata
