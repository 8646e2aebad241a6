"""Storage faults injected into the real broker.

tests/faults/faultfs.c is preloaded (LD_PRELOAD) into `vltava server`; writing rules
into its control file makes chosen fsync / pwrite / write calls on chosen paths fail
with EIO or ENOSPC (see that file). What must hold, as in Kafka's LogDirFailureChannel:

* a failed fsync or write takes the log directory offline until restart: its
  partitions answer KAFKA_STORAGE_ERROR, nothing more is acknowledged from it (even
  though the next fsync would succeed: after a failed fsync the kernel may have
  dropped the dirty pages), the controller fences the broker so its leaderships move,
  and the next start recovers the logs (no clean-shutdown marker);
* a node that cannot write its metadata (Raft) log stops with a clear message and a
  non-zero exit status instead of serving a frozen image;
* no acknowledged record is ever lost.

Each case runs on a single node and, where leadership can move, on a 3-node cluster.
"""

from __future__ import annotations

import signal
import time

import pytest
from confluent_kafka.admin import NewTopic

import cluster as cl
import kafka_wire as w
from helpers import (admin, assert_matches, consume, create_topic, expected_by_partition,
                     make_producer, make_records, produce_all, unique, wait_until, watermarks)

KAFKA_STORAGE_ERROR = 56
EXIT_METADATA_LOG_FAILED = 74
OFFLINE_MARK = "taking the log directory offline"

_corr = iter(range(1, 1 << 30))


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


@pytest.fixture
def faulty_broker(start_broker, faultfs, tmp_path):
    """start(**sets) -> (broker, control file): a broker with the fault injector
    preloaded; write rules into the control file to arm it."""
    def _start(**sets):
        control = tmp_path / f"faults-{unique('b')}"
        control.write_text("")
        b = start_broker(sets, env={"LD_PRELOAD": str(faultfs), "VLTAVA_FAULTS": str(control)})
        return b, control
    return _start


def raw_produce(port: int, topic: str, values, acks: int = -1, partition: int = 0,
                host: str = "127.0.0.1") -> int:
    """One Produce v7 request straight to the broker; its partition error code."""
    batch = w.record_batch([(None, v) for v in values])
    req = w.produce_request(next(_corr), topic, partition, batch, api_version=7, acks=acks,
                            timeout_ms=10000)
    _, parts, _ = w.parse_produce_response(w.request(port, req, host=host, timeout=30), 7)
    return parts[(topic, partition)]["error_code"]


def raw_list_offsets(port: int, topic: str, partition: int = 0) -> int:
    req = w.list_offsets_request_v2(next(_corr), topic, [(partition, -1)])
    _, parts = w.parse_list_offsets_v2(w.request(port, req))
    return parts[(topic, partition)][0]


def leader(port: int, topic: str, partition: int = 0) -> int:
    md = cl.parse_metadata_v7(w.request(port, cl.metadata_request_v7(next(_corr), [topic])))
    return md["topics"][topic]["partitions"][partition].leader


def read_all(bootstrap: str, topic: str):
    """Every record of partition 0, up to the high watermark."""
    high = watermarks(bootstrap, topic, 0)[1]
    return consume(bootstrap, topic, {0: high})[0]


def assert_prefix(got, records, deliveries):
    """The acknowledged records are the first ones of the log, byte for byte."""
    expected = expected_by_partition(records, deliveries)
    assert_matches({0: got[:len(records)]}, expected)


# --------------------------------------------------------------------------
# single node
# --------------------------------------------------------------------------


def test_failed_fsync_takes_the_log_dir_offline_and_acknowledges_nothing_after(faulty_broker):
    b, control = faulty_broker()
    topic = unique("fsync")
    create_topic(b.bootstrap, topic)
    before = make_records(50, seed=3)
    acked = produce_all(make_producer(b.bootstrap), topic, before, partition=0)
    assert not acked.errors()

    # one fsync of the partition fails; every later one would succeed
    control.write_text(f"fsync EIO /{topic}-0/ 1\n")
    assert raw_produce(b.port, topic, [b"fsync-fails"]) == KAFKA_STORAGE_ERROR
    assert raw_produce(b.port, topic, [b"after-1"], acks=-1) == KAFKA_STORAGE_ERROR
    assert raw_produce(b.port, topic, [b"after-2"], acks=1) == KAFKA_STORAGE_ERROR
    assert raw_list_offsets(b.port, topic) == KAFKA_STORAGE_ERROR
    # the controller fences the broker: the partition has no leader any more
    wait_until(lambda: leader(b.port, topic) == -1, 30, "the partition to lose its leader")
    # a client retrying for a while never gets an acknowledgement
    later = produce_all(make_producer(b.bootstrap, {"message.timeout.ms": 5000}), topic,
                        make_records(20, seed=4), partition=0, timeout=60)
    assert len(later.errors()) == 20, f"acknowledged after the fsync failure: {later.reports}"
    assert b.is_running(), "a failed data directory must not stop the broker"
    assert "faultfs: fsync" in b.log() and OFFLINE_MARK in b.log()

    # restart without faults: the logs are recovered and every acknowledged record is there
    control.write_text("")
    b.stop()
    b.start()
    assert "no clean shutdown marker" in b.log()
    got = read_all(b.bootstrap, topic)
    assert len(got) in (50, 51), f"{len(got)} records after recovery"
    assert_prefix(got, before, acked)
    again = produce_all(make_producer(b.bootstrap), topic, make_records(10, seed=5), partition=0)
    assert not again.errors()
    assert len(read_all(b.bootstrap, topic)) == len(got) + 10


def test_torn_write_is_cut_at_the_next_start(faulty_broker):
    b, control = faulty_broker()
    topic = unique("torn")
    create_topic(b.bootstrap, topic)
    before = make_records(40, seed=6)
    acked = produce_all(make_producer(b.bootstrap, {"acks": 1}), topic, before, partition=0)
    assert not acked.errors()
    # half of the next write reaches the file, and cutting it off fails too
    control.write_text(f"pwrite-torn EIO /{topic}-0/ 1\nftruncate EIO /{topic}-0/ 1\n")
    assert raw_produce(b.port, topic, [b"x" * 5000], acks=1) == KAFKA_STORAGE_ERROR
    assert "faultfs: pwrite-torn" in b.log() and "faultfs: ftruncate" in b.log()
    assert raw_produce(b.port, topic, [b"y"], acks=1) == KAFKA_STORAGE_ERROR
    segment = next((b.data_dir / f"{topic}-0").glob("*.log"))
    torn_size = segment.stat().st_size

    control.write_text("")
    b.stop()
    b.start()
    assert "truncating torn or invalid tail" in b.log()
    assert segment.stat().st_size < torn_size
    got = read_all(b.bootstrap, topic)
    assert len(got) == 40
    assert_prefix(got, before, acked)
    # the log is appendable again, offsets dense
    d = produce_all(make_producer(b.bootstrap), topic, make_records(5, seed=7), partition=0)
    assert sorted(r[2] for r in d.reports.values()) == [40, 41, 42, 43, 44]


def test_metadata_log_write_failure_stops_the_node(faulty_broker):
    b, control = faulty_broker()
    topic = unique("kept")
    create_topic(b.bootstrap, topic)
    records = make_records(30, seed=8)
    acked = produce_all(make_producer(b.bootstrap), topic, records, partition=0)
    assert not acked.errors()

    control.write_text("pwrite ENOSPC __cluster_metadata-0\n")
    a = admin(b.bootstrap)
    a.create_topics([NewTopic(unique("refused"), 1, 1)], request_timeout=5)
    code = wait_until(lambda: b.proc.poll(), 30, "the node to stop")
    assert code == EXIT_METADATA_LOG_FAILED, f"exit code {code}\n{b.log_tail()}"
    assert "cannot write or read the metadata log" in b.log()
    assert "No space left on device" in b.log()

    control.write_text("")
    b.start()
    got = read_all(b.bootstrap, topic)
    assert_matches({0: got}, expected_by_partition(records, acked))


# --------------------------------------------------------------------------
# several log directories (JBOD): one fails, the others go on
# --------------------------------------------------------------------------


def test_one_failed_log_dir_of_two_takes_only_its_partitions_offline(faulty_broker, tmp_path):
    """log.dirs with two directories: partitions are spread over both; an fsync EIO in
    one takes only its partitions offline (KAFKA_STORAGE_ERROR, then no leader), while
    the other directory's partitions keep taking writes and serving reads, and the
    broker stays unfenced. After a restart without the fault every acknowledged record
    of both directories is there."""
    dirs = [tmp_path / "disk-a", tmp_path / "disk-b"]
    b, control = faulty_broker(**{"log.dirs": ",".join(map(str, dirs))})
    topic = unique("jbod")
    create_topic(b.bootstrap, topic, partitions=4)
    where = {p: next(i for i, d in enumerate(dirs) if (d / f"{topic}-{p}").is_dir()) for p in range(4)}
    assert sorted(where.values()) == [0, 0, 1, 1], f"placement {where}"
    on_b = [p for p in range(4) if where[p] == 1]
    on_a = [p for p in range(4) if where[p] == 0]
    before = make_records(40, seed=11)
    acked = produce_all(make_producer(b.bootstrap), topic, before, partitions=[i % 4 for i in range(40)])
    assert not acked.errors()

    control.write_text(f"fsync EIO /disk-b/{topic}-\n")
    assert raw_produce(b.port, topic, [b"on-b"], partition=on_b[0]) == KAFKA_STORAGE_ERROR
    assert "taking the log directory offline" in b.log()
    # the other directory goes on, and the broker is not fenced
    for p in on_a:
        assert raw_produce(b.port, topic, [b"on-a"], partition=p) == 0
    wait_until(lambda: all(leader(b.port, topic, p) == -1 for p in on_b), 30,
               "the failed directory's partitions to lose their leader")
    assert all(leader(b.port, topic, p) == 1 for p in on_a)
    from kafka.admin import KafkaAdminClient
    k = KafkaAdminClient(bootstrap_servers=b.bootstrap)
    try:
        [answer] = k.describe_log_dirs()
        by_dir = {d["log_dir"]: d for d in answer["log_dirs"]}
    finally:
        k.close()
    assert by_dir[str(dirs[1].resolve())]["error_code"] == KAFKA_STORAGE_ERROR, by_dir
    ok = by_dir[str(dirs[0].resolve())]
    assert ok["error_code"] == 0
    assert {p["partition_index"] for t in ok["topics"] if t["name"] == topic for p in t["partitions"]} == set(on_a)
    assert b.is_running()

    control.write_text("")
    b.stop()
    b.start()
    high = {p: watermarks(b.bootstrap, topic, p)[1] for p in range(4)}
    got = consume(b.bootstrap, topic, high)
    expected = expected_by_partition(before, acked)
    for p in range(4):
        assert_matches({p: got[p][:len(expected[p])]}, {p: expected[p]})
    assert all(leader(b.port, topic, p) == 1 for p in range(4))
    assert raw_produce(b.port, topic, [b"again"], partition=on_b[0]) == 0


# --------------------------------------------------------------------------
# three nodes: leadership moves away from the failed directory
# --------------------------------------------------------------------------


@pytest.fixture
def faulty_cluster(tmp_path, faultfs, request):
    c = cl.Cluster(tmp_path / "cluster", n=3, faultfs=faultfs)
    for i in (1, 2, 3):
        # the control file exists (empty) before the nodes start
        (tmp_path / "cluster" / f"node{i}").mkdir(parents=True, exist_ok=True)
        (tmp_path / "cluster" / f"node{i}" / "faults").write_text("")
    c.start()
    yield c
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        print(c.log_tails(n=150))
    c.close()


@pytest.mark.timeout(300)
@pytest.mark.parametrize("fault", ["fsync", "pwrite"])
def test_cluster_disk_failure_moves_leadership_and_loses_nothing(faulty_cluster, fault):
    c = faulty_cluster
    topic = unique(f"c{fault}")
    c.create_topic(topic, partitions=1, replication_factor=3)
    victim = c.leader_of(topic, 0)
    conf = {"enable.idempotence": True, "message.timeout.ms": 120000, "linger.ms": 20}
    first = make_records(200, seed=9)
    acked1 = produce_all(make_producer(c.bootstrap, conf), topic, first, partition=0)
    assert not acked1.errors()

    c.node(victim).inject(f"{fault} EIO /{topic}-0/ 1")
    second = make_records(300, seed=10)
    acked2 = produce_all(make_producer(c.bootstrap, conf), topic, second, partition=0,
                         timeout=180)
    assert not acked2.errors(), f"delivery errors: {acked2.errors()}"
    new = c.wait_leader_not(topic, 0, victim, timeout=30)
    assert victim not in c.isr_of(topic, 0)
    assert f"faultfs: {fault}" in c.node(victim).log() and OFFLINE_MARK in c.node(victim).log()
    assert c.node(victim).is_running()
    print(f"node {victim}'s log dir failed ({fault}); node {new} leads")

    # exactly the acknowledged records, each once (idempotent retries deduplicated)
    got = consume(c.bootstrap, topic, {0: 500})[0]
    assert len(got) == 500, f"{len(got)} records"
    assert_matches({0: got[:200]}, expected_by_partition(first, acked1))
    assert_matches({0: got[200:]}, expected_by_partition(second, acked2))

    # restarted without the fault, the node recovers and rejoins the ISR
    c.node(victim).inject()
    c.kill(victim, signal.SIGTERM)
    c.start_node(victim)
    c.wait_isr(topic, 0, 3, timeout=60)
    c.wait_replicas_identical(topic, [0], timeout=30)


@pytest.mark.timeout(300)
def test_cluster_one_failed_log_dir_moves_only_its_partitions(tmp_path, faultfs, request):
    """3 nodes with two log directories each: EIO on fsync in one directory of a leader
    moves the leadership of that directory's partitions only. The node stays in the
    cluster, keeps leading and replicating its other directory's partitions, and an
    idempotent acks=all producer sees no error."""
    root = tmp_path / "cluster"
    dirs = {i: f"{root / f'node{i}' / 'data'},{root / f'node{i}' / 'data-b'}" for i in (1, 2, 3)}
    c = cl.Cluster(root, n=3, faultfs=faultfs, node_settings={i: {"log.dirs": d} for i, d in dirs.items()})
    for i in (1, 2, 3):
        (root / f"node{i}").mkdir(parents=True, exist_ok=True)
        (root / f"node{i}" / "faults").write_text("")
    c.start()
    try:
        topic = unique("cjbod")
        c.create_topic(topic, partitions=6, replication_factor=3)
        c.wait_isr(topic, None, 3)
        victim = c.leader_of(topic, 0)
        base = root / f"node{victim}"
        failing = "data-b" if (base / "data-b" / f"{topic}-0").is_dir() else "data"
        in_failing = {p for p in range(6) if (base / failing / f"{topic}-{p}").is_dir()}
        healthy = set(range(6)) - in_failing
        assert in_failing and healthy, f"node {victim}: {in_failing} in {failing}, {healthy} elsewhere"

        conf = {"enable.idempotence": True, "message.timeout.ms": 120000, "linger.ms": 20}
        c.node(victim).inject(f"fsync EIO /{failing}/{topic}- 1")
        records = make_records(600, seed=12)
        acked = produce_all(make_producer(c.bootstrap, conf), topic, records,
                            partitions=[i % 6 for i in range(600)], timeout=180)
        assert not acked.errors(), f"delivery errors: {acked.errors()}"
        c.wait_leader_not(topic, 0, victim, timeout=30)
        st = c.wait_isr(topic, sorted(healthy)[0], 3, timeout=60)
        assert victim in st[sorted(healthy)[0]].isr
        assert all(victim not in c.isr_of(topic, p) for p in in_failing)
        assert c.node(victim).is_running()
        listed = {b["broker_id"] for b in c.node_describe_cluster(victim)["brokers"]}
        assert victim in listed, f"node {victim} left the cluster: {listed}"
        got = consume(c.bootstrap, topic, {p: 100 for p in range(6)})
        expected = expected_by_partition(records, acked)
        assert_matches(got, expected)
    except BaseException:
        print(c.log_tails(n=150))
        raise
    finally:
        c.close()


@pytest.mark.timeout(300)
def test_cluster_controller_that_cannot_write_its_metadata_log_stops(faulty_cluster):
    c = faulty_cluster
    controller = c.wait_controller()
    c.node(controller).inject("pwrite ENOSPC __cluster_metadata-0")
    topic = unique("afterctl")
    # the proposal reaches the log of the controller, which stops; another takes over
    deadline = time.monotonic() + 60
    while True:
        a = c.admin()
        try:
            a.create_topics([NewTopic(topic, 1, 2)], request_timeout=10)[topic].result(15)
            break
        except Exception as e:  # noqa: BLE001 - retried until the new controller answers
            if "already exists" in str(e):
                break
            assert time.monotonic() < deadline, f"topic never created: {e}\n{c.log_tails()}"
            time.sleep(0.5)
    code = wait_until(lambda: c.node(controller).proc.poll(), 60, "the controller to stop")
    assert code == EXIT_METADATA_LOG_FAILED, c.log_tails([controller])
    assert "cannot write or read the metadata log" in c.node(controller).log()
    c.node(controller).exit_codes.append(code)
    others = [i for i in c.ids if i != controller]
    new = c.wait_controller(not_in=(controller,))
    assert new in others
    c.wait_until(lambda: (st := c._agreed(topic, others)) is not None and 0 in st, 30,
                 f"topic {topic} on the remaining nodes")

    c.node(controller).inject()
    c.start_node(controller)
    c.wait_until(lambda: (st := c._agreed(topic)) is not None and 0 in st, 60,
                 f"topic {topic} on every node")


@pytest.mark.timeout(300)
def test_cluster_voter_that_lost_its_metadata_catches_up_from_a_snapshot(tmp_path):
    """A voter whose metadata directory is gone restarts empty; the leader has
    compacted the entries it misses, so it sends its snapshot."""
    settings = {"metadata.log.max.record.bytes.between.snapshots": 4096,
                "metadata.log.segment.bytes": 8192}
    with cl.Cluster(tmp_path / "cluster", n=3, settings=settings) as c:
        controller = c.wait_controller()
        victim = next(i for i in c.ids if i != controller)
        first = unique("before")
        c.create_topic(first, partitions=1, replication_factor=3)
        # enough entries for snapshots and deleted segments on every voter
        topics = [unique("many") for _ in range(40)]
        for t in topics:
            c.create_topic(t, partitions=1, replication_factor=1, wait_isr=False)
        c.stop(victim)
        import shutil
        shutil.rmtree(c.node(victim).data_dir / "__cluster_metadata-0")
        c.start_node(victim)
        c.wait_until(lambda: all(t in c.node_metadata(victim, None)["topics"] for t in topics + [first]),
                     60, "the wiped voter to know every topic again")
        assert "installed a metadata snapshot from the leader" in c.node(victim).log()
        c.wait_isr(first, 0, 3, timeout=60)
        # and the quorum still works with it
        last = unique("after")
        c.create_topic(last, partitions=1, replication_factor=3)
