"""Replicated cluster mode: 3 nodes (KRaft combined mode) started by cluster.py.

The first tests check the harness itself without a broker (the checker's analysis on
synthetic data, Metadata v7 and segment parsing, network-namespace isolation with plain
TCP servers). The cluster tests then cover: formation, leader SIGKILL under idempotent
acks=all production (scripts/cluster-checker.py's workload, in-process), controlled
shutdown, min.insync.replicas, controller failover during CreateTopics, consumer groups
across a coordinator kill, a network partition of a leader (netns mode, root only), a
short random-kill soak, transactions spanning all three brokers across a SIGKILL of their
coordinator, preferred leader election (ElectLeaders), partition reassignment
(AlterPartitionReassignments / ListPartitionReassignments through kafka-python's admin),
and `vltava cluster info` / `topic describe` / `log-dirs describe` /
`cluster describe-quorum` against the cluster.

Environment: VLTAVA_SOAK_SECONDS (30), VLTAVA_SOAK_FAULTS (kill), VLTAVA_SOAK_SEED (19).
On failure every node's log tail is printed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import (OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Producer,
                             TopicPartition)
from confluent_kafka.admin import NewTopic

import cluster as cl
import kafka_wire as w
from conftest import REPO_ROOT
from helpers import Worker, java_ok_lines, run_java, unique, wait_until


def _load_checker():
    name = "cluster_checker"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "scripts" / "cluster-checker.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


checker = _load_checker()

SESSION_S = 3.0   # broker.session.timeout.ms of cluster.DEFAULT_SETTINGS
LAG_S = 5.0       # replica.lag.time.max.ms
WAIT_S = 60.0     # a generous deadline for what the cluster does by itself
SOAK_SEED = 19    # the soak's default schedule (VLTAVA_SOAK_SEED picks another)


# --------------------------------------------------------------------------
# fixtures
# --------------------------------------------------------------------------


@pytest.fixture
def start_cluster(tmp_path, request):
    """Factory: start_cluster(n=3, settings={...}, node_settings={id: {...}}, netns=False).
    Every cluster is torn down at the end; node logs are printed if the test failed."""
    clusters: list[cl.Cluster] = []

    def _start(n: int = 3, settings: dict | None = None, netns: bool = False, **kw) -> cl.Cluster:
        c = cl.Cluster(tmp_path / f"cluster{len(clusters)}", n=n, settings=settings,
                       netns=netns, **kw)
        clusters.append(c)
        return c.start()

    yield _start
    failed = any(getattr(getattr(request.node, f"rep_{when}", None), "failed", False)
                 for when in ("setup", "call"))
    for c in clusters:
        if failed:
            print(f"\n===== {c!r}\n{c.log_tails(n=150)}")
        c.close()


@pytest.fixture
def cluster(start_cluster) -> cl.Cluster:
    return start_cluster()


def _report(res: dict) -> str:
    slim = {k: v for k, v in res.items() if k not in ("read_back", "high_watermarks")}
    return json.dumps(slim, indent=1, default=str)[:6000]


def _assert_checker_clean(res: dict, allow_delivery_errors: bool = True) -> None:
    print(checker.counts_line(res))
    assert res["acknowledged"] > 0, f"nothing was acknowledged\n{_report(res)}"
    for k in ("lost", "duplicated", "reordered", "offset_mismatch"):
        assert res[k] == 0, f"checker: {k}={res[k]}\n{_report(res)}"
    assert not res["read_back"]["incomplete"], f"could not read everything back\n{_report(res)}"
    assert not res["workload"]["fatal"], f"fatal producer errors\n{_report(res)}"
    assert not res["workload"]["writer_exceptions"], _report(res)
    if not allow_delivery_errors:
        assert res["workload"]["delivery_errors"] == {}, f"delivery errors\n{_report(res)}"
    assert res["ok"], _report(res)


def _sleep_until(t: float) -> None:
    d = t - time.monotonic()
    if d > 0:
        time.sleep(d)


# --------------------------------------------------------------------------
# the harness itself (no broker needed)
# --------------------------------------------------------------------------


def test_checker_analysis_clean_and_interleaved():
    acked = [(0, 0, "w0-0"), (1, 0, "w0-1"), (0, 1, "w1-0"), (0, 2, "w0-2"), (1, 1, "w1-1"),
             (0, 3, "w1-2")]
    read = list(reversed(acked)) + [(1, 2, "w0-3"), (1, 3, "junk")]  # an unacked write, a foreign
    res = checker.analyze(acked, read)
    assert res["ok"], res
    assert (res["acknowledged"], res["read"], res["lost"], res["duplicated"], res["reordered"],
            res["offset_mismatch"], res["unacked_read"], res["foreign"]) == (6, 7, 0, 0, 0, 0, 1, 1)


def test_checker_analysis_finds_loss_duplicates_reordering_and_moved_offsets():
    acked = [(0, 0, "w0-0"), (0, 1, "w0-1"), (0, 2, "w0-2"), (0, 3, "w0-3"), (1, 0, "w1-0"),
             (1, 1, "w1-1")]
    read = [(0, 0, "w0-0"), (0, 1, "w0-2"), (0, 2, "w0-1"),   # reordered (and moved offsets)
            (0, 3, "w0-3"), (0, 4, "w0-3"),                  # duplicated
            (1, 0, "w1-0")]                                   # w1-1 lost
    res = checker.analyze(acked, read)
    assert not res["ok"]
    assert res["lost"] == 1 and res["samples"]["lost"] == [[1, 1, "w1-1"]]
    assert res["duplicated"] == 1 and res["duplicate_records"] == 1
    assert res["reordered"] == 1
    assert res["samples"]["reordered"][0]["seq"] == 1
    assert res["offset_mismatch"] == 2   # w0-1 and w0-2 were acknowledged at other offsets


def test_checker_analysis_unknown_offsets_and_same_offset_twice():
    # an acknowledgement without offset (e.g. DUPLICATE_SEQUENCE_NUMBER) is fine if the value
    # is in the acknowledged partition
    assert checker.analyze([(0, -1, "w0-0")], [(0, 7, "w0-0")])["ok"]
    res = checker.analyze([(0, -1, "w0-0")], [(1, 7, "w0-0")])
    assert res["offset_mismatch"] == 1 and not res["ok"]
    # the read-back returned one offset twice (consumer re-fetch): not a duplicate in the log,
    # but reported
    res = checker.analyze([(0, 0, "w0-0")], [(0, 0, "w0-0"), (0, 0, "w0-0")])
    assert res["duplicated"] == 0 and res["same_offset_twice"] == 1 and not res["ok"]
    # a value acknowledged twice
    res = checker.analyze([(0, 0, "w0-0"), (0, 1, "w0-0")], [(0, 0, "w0-0")])
    assert res["acked_twice"] == 1 and not res["ok"]
    assert checker.parse_value("w12-345") == (12, 345) and checker.parse_value("x") is None


def test_checker_failover_times():
    acks = {0: [(10.0, 9.9), (10.2, 9.95), (13.5, 10.6), (13.6, 13.0)],
            1: [(10.1, 10.05), (14.0, 12.0)], 2: [(9.0, 8.0)]}
    ev = [{"t": 10.1, "action": "kill", "node": 2, "partitions": [0, 1], "rel": 3.0},
          {"t": 10.1, "action": "kill", "node": 3, "partitions": [2], "rel": 3.0},
          {"t": 10.1, "action": "pause", "node": 1, "partitions": []}]
    fo = checker.failover_times(ev, acks)
    assert len(fo) == 2
    # partition 0: the ack at 10.2 was sent before the kill; 13.5 is the first of a later send
    assert fo[0]["partitions"] == {0: 3.4, 1: 3.9} and fo[0]["max_s"] == 3.9
    assert fo[1]["partitions"] == {2: None} and fo[1]["max_s"] is None
    assert checker.failover_times([{"t": 1.0, "action": "kill", "node": 1, "partitions": [0]}],
                                  {0: [0.5, 2.5]})[0]["max_s"] == 1.5


def test_metadata_v7_parser_and_group_partition():
    body = (w.int32(9) + w.int32(0)
            + w.array([w.int32(1) + w.string("h1") + w.int32(9092) + w.string(None),
                       w.int32(2) + w.string("h2") + w.int32(9093) + w.string("r")])
            + w.string("cid") + w.int32(2)
            + w.array([w.int16(0) + w.string("t") + w.int8(0)
                       + w.array([w.int16(0) + w.int32(0) + w.int32(2) + w.int32(5)
                                  + w.array([w.int32(2), w.int32(1)]) + w.array([w.int32(2)])
                                  + w.array([])])]))
    md = cl.parse_metadata_v7(body)
    assert md["brokers"] == {1: ("h1", 9092), 2: ("h2", 9093)}
    assert md["cluster_id"] == "cid" and md["controller_id"] == 2
    assert md["topics"]["t"]["partitions"][0] == cl.PartState(0, 2, 5, [2, 1], [2], [])
    req = cl.metadata_request_v7(3, ["t"])
    assert req[:4] == w.int16(3) + w.int16(7) and req.endswith(w.int8(0))
    assert cl.java_hash("hello") == 99162322 and cl.java_hash("") == 0
    assert cl.java_hash("polygenelubricants") == -(1 << 31)   # Integer.MIN_VALUE
    assert cl.group_partition("polygenelubricants") == 0
    assert cl.group_partition("hello") == 99162322 % 50


def test_segment_parser_and_replica_comparison(tmp_path):
    def seg(d: Path, base: int, batches):
        d.mkdir(parents=True, exist_ok=True)
        data = b"".join(batches)
        (d / f"{base:020d}.log").write_bytes(data + b"\0" * 64)   # zero-filled tail
    b0 = w.record_batch([(None, b"a"), (None, b"b")], base_offset=0, base_timestamp=1000)
    b2 = w.record_batch([(None, b"c")], base_offset=2, base_timestamp=1000)
    b2x = w.record_batch([(None, b"X")], base_offset=2, base_timestamp=1000)
    b3 = w.record_batch([(None, b"d")], base_offset=3, base_timestamp=1000)
    seg(tmp_path / "r1", 0, [b0, b2])
    seg(tmp_path / "r1", 3, [b3])
    seg(tmp_path / "r2", 0, [b0, b2, b3[:30]])       # torn tail
    seg(tmp_path / "r3", 0, [b0, b2x])
    r1, r2, r3 = (cl.log_batches(tmp_path / r) for r in ("r1", "r2", "r3"))
    assert [(b, last) for b, last, _ in r1] == [(0, 1), (2, 2), (3, 3)]
    assert [(b, last) for b, last, _ in r2] == [(0, 1), (2, 2)]
    assert cl.compare_batches(r1, r2) is None           # r2 lags: a prefix
    assert cl.compare_batches(r1, r3) == 1              # r3 diverges at its second batch


def test_cluster_layout_writes_kraft_properties(tmp_path):
    c = cl.Cluster(tmp_path, n=3, settings={"log.segment.bytes": 1048576},
                   node_settings={2: {"replica.lag.time.max.ms": 7000}})
    c._layout()   # no process started
    props = {}
    for i, node in c.nodes.items():
        node.write_config()
        lines = [ln for ln in node.config_path.read_text().splitlines() if not ln.startswith("#")]
        props[i] = dict(ln.split("=", 1) for ln in lines)
    voters = ",".join(f"{i}@127.0.0.1:{c.node(i).controller_port}" for i in (1, 2, 3))
    for i, p in props.items():
        n = c.node(i)
        assert p["node.id"] == str(i)
        assert p["process.roles"] == "broker,controller"
        assert p["listeners"] == (f"PLAINTEXT://127.0.0.1:{n.client_port},"
                                  f"CONTROLLER://127.0.0.1:{n.controller_port}")
        assert p["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{n.client_port}"
        assert p["controller.listener.names"] == "CONTROLLER"
        assert p["controller.quorum.voters"] == voters
        assert p["log.dirs"] == str(n.data_dir)
        assert (p["broker.session.timeout.ms"], p["broker.heartbeat.interval.ms"]) == ("3000", "500")
        assert p["offsets.topic.replication.factor"] == "3"
        assert p["transaction.state.log.replication.factor"] == "3"
        assert p["log.segment.bytes"] == "1048576"
        assert p["replica.lag.time.max.ms"] == ("7000" if i == 2 else "5000")
    ports = [c.node(i).client_port for i in c.ids] + [c.node(i).controller_port for i in c.ids]
    assert len(set(ports)) == 6
    assert c.bootstrap == ",".join(f"127.0.0.1:{c.node(i).client_port}" for i in (1, 2, 3))


PROBE_SERVER = r"""
import socket, sys, threading
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 7000)); s.listen(16)
def h(c):
    while True:
        d = c.recv(100)
        if not d: break
        c.sendall(d)
while True:
    c, _ = s.accept(); threading.Thread(target=h, args=(c,), daemon=True).start()
"""

PROBE_CLIENT = r"""
import socket, sys
try:
    c = socket.create_connection((sys.argv[1], 7000), timeout=1.0); c.sendall(b"hi")
    print("ok" if c.recv(10) == b"hi" else "bad")
except Exception as e:
    print("cut")
"""


def test_netns_isolation_cuts_nodes_but_not_the_client():
    ok, why = cl.netns_available()
    if not ok:
        pytest.skip(f"netns mode not available: {why}")
    net = cl.NetnsNetwork(3)
    servers = []
    try:
        net.setup()
        for i in (1, 2, 3):
            servers.append(subprocess.Popen(net.wrap(i, [sys.executable, "-c", PROBE_SERVER,
                                                         net.node_ip(i)])))

        def reach(src, dst):
            cmd = [sys.executable, "-c", PROBE_CLIENT, net.node_ip(dst)]
            if src:
                cmd = net.wrap(src, cmd)
            return subprocess.run(cmd, capture_output=True, text=True, timeout=20).stdout.strip()

        def matrix():
            return {(s, d): reach(s, d) for s in (0, 1, 2, 3) for d in (1, 2, 3) if s != d}

        # every probe server up (a deadline: they start in the background)
        wait_until(lambda: set(matrix().values()) == {"ok"}, WAIT_S, "every node reachable")
        for i in (2, 3):
            net.cut(1, i)
        m = matrix()
        assert {k: v for k, v in m.items() if v != "ok"} == {
            (1, 2): "cut", (1, 3): "cut", (2, 1): "cut", (3, 1): "cut"}, m
        net.heal()
        assert set(matrix().values()) == {"ok"}
    finally:
        for s in servers:
            s.kill()
            s.wait()
        net.teardown()
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert net.token not in names


# --------------------------------------------------------------------------
# (a) formation
# --------------------------------------------------------------------------


def test_three_nodes_form_one_cluster(cluster):
    c = cluster
    brokers = {i: (c.node(i).host, c.node(i).client_port) for i in c.ids}
    for i in c.ids:
        assert c.node_metadata(i)["brokers"] == brokers, f"node {i}'s Metadata"
    ids = {i: c.node_describe_cluster(i)["cluster_id"] for i in c.ids}
    assert len(set(ids.values())) == 1 and None not in ids.values(), f"cluster ids {ids}"
    dc = c.describe_cluster()
    assert sorted(n.id for n in dc.nodes) == c.ids
    assert dc.cluster_id == ids[1]
    assert dc.controller is not None and dc.controller.id in c.ids
    md = c.admin().list_topics(timeout=10)
    assert sorted(md.brokers) == c.ids and md.cluster_id == ids[1]

    topic = unique("rf3")
    c.create_topic(topic, partitions=6, replication_factor=3)
    st = c.wait_isr(topic, None, 3)
    assert sorted(st) == list(range(6))
    for p, s in st.items():
        assert sorted(s.replicas) == [1, 2, 3], f"partition {p}: replicas {s.replicas}"
        assert sorted(s.isr) == [1, 2, 3], f"partition {p}: isr {s.isr}"
    leaders = {s.leader for s in st.values()}
    assert len(leaders) >= 2, f"all 6 partitions led by {leaders}"
    t = c.admin().list_topics(topic=topic, timeout=10).topics[topic]
    for p, pm in t.partitions.items():
        assert (pm.leader, sorted(pm.replicas), sorted(pm.isrs)) == (st[p].leader, [1, 2, 3],
                                                                     [1, 2, 3])

    # data goes through and every replica ends up with the same batches
    prod = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True,
                     "linger.ms": 5})
    errs = []
    for i in range(600):
        prod.produce(topic, value=b"v%d" % i, partition=i % 6,
                     on_delivery=lambda e, m: errs.append(e) if e else None)
    assert prod.flush(30) == 0 and not errs, errs
    hw = checker.high_watermarks(c.bootstrap, topic, 6)
    assert hw == {p: 100 for p in range(6)}, hw
    got = _read_topic(c, topic, range(6), "read_uncommitted", 600, timeout=60)
    by_part = {}
    for p, off, v in sorted(got):
        by_part.setdefault(p, []).append((off, v))
    assert by_part == {p: [(j, f"v{p + 6 * j}") for j in range(100)] for p in range(6)}, (
        f"read back {len(got)} records, not the 600 produced in order")
    c.wait_replicas_identical(topic, range(6), timeout=30)


# --------------------------------------------------------------------------
# (b) leader SIGKILL during idempotent acks=all production
# --------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_leader_kill_during_production_loses_nothing_and_node_rejoins(cluster):
    c = cluster
    topic = unique("kill")
    c.create_topic(topic, partitions=6, replication_factor=3)
    wl = checker.Workload(c.bootstrap, topic, 6, writers=2, rate=250).start()
    assert wl.wait_acks(50, WAIT_S), f"no acknowledgements: {wl.summary()}"
    assert wl.wait_acks(wl.acked_count() + 200, WAIT_S), f"no steady production: {wl.summary()}"

    victim = c.leader_of(topic, 0)
    isr_before = c.isr_of(topic, 0)
    led = c.partitions_led_by(topic, victim)
    acked_before = wl.acked_count()
    t_kill = time.monotonic()
    c.kill(victim)
    new = c.wait_leader_not(topic, 0, victim, timeout=SESSION_S + WAIT_S)
    elected_s = time.monotonic() - t_kill
    print(f"partition 0: node {victim} killed, node {new} leads after {elected_s:.2f}s")
    assert new in isr_before, f"new leader {new} was not in the ISR {isr_before}"
    for p in led:
        c.wait_leader_not(topic, p, victim, timeout=WAIT_S)
    assert wl.wait_acks(acked_before + 100, WAIT_S), f"no progress after the kill: {wl.summary()}"
    wl.stop()

    c.start_node(victim)
    c.wait_isr(topic, None, 3, timeout=60)
    res = checker.verify(c.bootstrap, wl)
    fo = checker.failover_times([{"t": t_kill, "action": "kill", "node": victim,
                                  "partitions": led}], wl.ack_times())
    print(f"client failover (kill -> first ack of a later record): {fo}")
    _assert_checker_clean(res)
    assert fo[0]["max_s"] is not None, f"a partition of node {victim} never took writes again: {fo}"
    c.wait_replicas_identical(topic, range(6), timeout=30)


# --------------------------------------------------------------------------
# (c) controlled shutdown
# --------------------------------------------------------------------------


LONG_SESSION_MS = 120_000   # a silent broker is fenced only after every deadline here


@pytest.mark.timeout(240)
def test_controlled_shutdown_moves_leadership_before_exit(start_cluster):
    # A session timeout longer than any deadline here: leadership that moves before it
    # was handed over by the controlled shutdown, not taken after fencing a silent broker.
    c = start_cluster(settings={"broker.session.timeout.ms": LONG_SESSION_MS})
    topic = unique("term")
    c.create_topic(topic, partitions=6, replication_factor=3)
    wl = checker.Workload(c.bootstrap, topic, 6, writers=2, rate=250).start()
    assert wl.wait_acks(50, WAIT_S), f"no acknowledgements: {wl.summary()}"

    victim = c.leader_of(topic, 0)
    led = c.partitions_led_by(topic, victim)
    others = [i for i in c.ids if i != victim]
    t_term = time.monotonic()
    c.stop(victim)                               # SIGTERM, exit code 0
    t_exit = time.monotonic()
    for p in led:
        c.wait_leader_not(topic, p, victim, timeout=WAIT_S, nodes=others)
    print(f"node {victim}: SIGTERM -> exit {t_exit - t_term:.2f}s, leadership of {led} seen "
          f"moved {time.monotonic() - t_exit:.2f}s after the exit")
    assert wl.wait_acks(wl.acked_count() + 200, WAIT_S), (
        f"no production against the remaining two nodes: {wl.summary()}")
    wl.stop()
    res = checker.verify(c.bootstrap, wl)
    _assert_checker_clean(res, allow_delivery_errors=False)

    c.start_node(victim)
    c.wait_isr(topic, None, 3, timeout=WAIT_S)


@pytest.mark.timeout(240)
def test_without_controlled_shutdown_leadership_waits_for_the_session_timeout(start_cluster):
    """controlled.shutdown.enable=false: SIGTERM stops the broker at once, still leading;
    its partitions move only when the controller fences it after
    broker.session.timeout.ms."""
    session_s = 15.0
    c = start_cluster(settings={"controlled.shutdown.enable": False,
                                "broker.session.timeout.ms": int(session_s * 1000)})
    topic = unique("noctl")
    c.create_topic(topic, partitions=6, replication_factor=3)
    ctl = c.wait_controller()
    victim = next(i for i in c.ids if i != ctl and c.partitions_led_by(topic, i))
    led = c.partitions_led_by(topic, victim)
    others = [i for i in c.ids if i != victim]
    t_term = time.monotonic()
    c.stop(victim)                               # SIGTERM, exit code 0
    views = c.views(topic, others)
    checked = time.monotonic() - t_term
    # a precondition: the view was taken well within the session timeout
    assert checked < session_s - 3, f"SIGTERM, exit and a metadata check took {checked:.1f}s"
    for i, v in views.items():
        assert not isinstance(v, Exception), f"node {i} did not answer Metadata: {v!r}"
        assert all(v[p].leader == victim for p in led), (
            f"node {i}: partitions {led} moved away from {victim} {checked:.1f}s after its "
            f"SIGTERM although controlled shutdown is off: {v}")
    assert "controlled shutdown" not in c.node(victim).log(), c.node(victim).log_tail(20)
    for p in led:
        c.wait_leader_not(topic, p, victim, timeout=session_s + WAIT_S, nodes=others)
    _produce_to(c, topic, led[0], [f"after-{i}" for i in range(20)])
    c.start_node(victim)
    c.wait_isr(topic, None, 3, timeout=WAIT_S)


# --------------------------------------------------------------------------
# (d) min.insync.replicas
# --------------------------------------------------------------------------


@pytest.mark.timeout(150)
def test_min_insync_replicas_refuses_acks_all_with_too_small_isr(cluster):
    c = cluster
    topic = unique("minisr")
    c.create_topic(topic, partitions=1, replication_factor=3, config={"min.insync.replicas": "3"})
    leader = c.leader_of(topic, 0)
    r = c.produce_raw(leader, topic, 0, ["before"], acks=-1)
    assert r["error_code"] == 0, r
    follower = next(i for i in c.replicas_of(topic, 0) if i != leader)
    c.kill(follower)
    st = c.wait_isr(topic, 0, 2, timeout=SESSION_S + LAG_S + 10)
    leader = st[0].leader
    assert follower not in st[0].isr

    r = c.produce_raw(leader, topic, 0, ["refused"], acks=-1, timeout_ms=5000)
    assert r["error_code"] == cl.NOT_ENOUGH_REPLICAS, f"raw acks=all Produce to leader {leader}: {r}"

    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": False,
                  "retries": 0, "message.timeout.ms": 15000, "log_level": 2})
    reports = []
    p.produce(topic, value=b"refused-too", partition=0, on_delivery=lambda e, m: reports.append(e))
    assert p.flush(30) == 0
    assert len(reports) == 1 and reports[0] is not None, f"acks=all accepted with ISR 2 < 3: {reports}"
    assert reports[0].code() in (KafkaError.NOT_ENOUGH_REPLICAS,
                                 KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND), reports[0]

    # min.insync.replicas does not apply to acks=1 (as in Kafka)
    r = c.produce_raw(leader, topic, 0, ["acks1"], acks=1)
    assert r["error_code"] == 0, f"acks=1 refused: {r}"

    c.start_node(follower)
    c.wait_isr(topic, 0, 3, timeout=60)
    r = c.produce_raw(c.wait_leaders_serving(topic)[0], topic, 0, ["after"], acks=-1)
    assert r["error_code"] == 0, r


# --------------------------------------------------------------------------
# (e) controller failover while creating topics
# --------------------------------------------------------------------------


@pytest.mark.timeout(180)
def test_topics_created_across_controller_failover(cluster):
    c = cluster
    ctl = c.wait_controller(timeout=30)
    assert c.controller_id() == ctl, "DescribeCluster and Metadata name different controllers"
    c.kill(ctl)
    t_kill = time.monotonic()
    admin = c.admin()
    names = [unique("ctlfo") for _ in range(8)]
    errors: dict[str, int] = {}
    took = {}
    deadline = t_kill + 90
    for name in names:
        while True:
            fs = admin.create_topics([NewTopic(name, num_partitions=3, replication_factor=2)],
                                     request_timeout=10)
            try:
                fs[name].result(20)
                break
            except KafkaException as e:
                err = e.args[0]
                if err.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    break   # an earlier attempt did it
                errors[err.name()] = errors.get(err.name(), 0) + 1
                # librdkafka sends CreateTopics to the controller its metadata names and
                # refreshes that only every topic.metadata.refresh.interval.ms (5 min): a
                # retrying client starts over with fresh metadata.
                admin = c.admin()
            assert time.monotonic() < deadline, (
                f"could not create {name} within 90s of killing controller {ctl}; errors {errors}")
            time.sleep(0.3)
        took[name] = round(time.monotonic() - t_kill, 2)
    print(f"controller {ctl} killed; topics created at {took}; errors meanwhile {errors}")

    new_ctl = c.wait_controller(timeout=SESSION_S + 15, not_in={ctl})
    assert c.controller_id() == new_ctl != ctl

    def all_led():
        for name in names:
            st = c._agreed(name)
            if st is None or sorted(st) != [0, 1, 2]:
                return False
            if any(s.leader in (-1, ctl) for s in st.values()):
                return False
        return True
    c.wait_until(all_led, 30, "every new topic listed with live leaders by every live node")

    c.start_node(ctl)
    c.wait_until(lambda: set(names) <= set(c.node_metadata(ctl, None)["topics"]), 30,
                 f"restarted node {ctl} to list every topic")
    for name in names:
        c.wait_isr(name, None, 2, timeout=30)


# --------------------------------------------------------------------------
# (f) consumer group across a coordinator kill
# --------------------------------------------------------------------------


def _group_consumer(c: cl.Cluster, group: str) -> Consumer:
    return Consumer({"bootstrap.servers": c.bootstrap, "group.id": group,
                     "enable.auto.commit": False, "auto.offset.reset": "earliest",
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 500,
                     "log_level": 2})


def _consume_n(cons: Consumer, n: int, timeout: float) -> list:
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        assert time.monotonic() < deadline, f"consumed {len(got)} of {n} within {timeout}s"
        m = cons.poll(0.5)
        if m is None:
            continue
        if m.error():
            if m.error().fatal():
                raise AssertionError(f"fatal consumer error {m.error()}")
            continue
        got.append((m.partition(), m.offset(), m.value().decode()))
    return got


def _committed(cons: Consumer, tps, timeout: float = 10) -> dict:
    """{partition: committed offset}, 0 for a partition without a commit (nothing was
    consumed from it: the group would start it at the earliest offset)."""
    return {tp.partition: max(tp.offset, 0) for tp in cons.committed(tps, timeout=timeout)}


@pytest.mark.timeout(180)
def test_consumer_group_survives_coordinator_kill(cluster):
    c = cluster
    topic = unique("grp")
    c.create_topic(topic, partitions=3, replication_factor=3)
    prod = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True,
                     "linger.ms": 5})
    values = [f"v{i}" for i in range(300)]
    for i, v in enumerate(values):
        prod.produce(topic, value=v.encode(), partition=i % 3)
    assert prod.flush(30) == 0

    group = unique("group")
    coord = c.find_coordinator(group)
    gp = cl.group_partition(group)
    c.wait_isr("__consumer_offsets", gp, 3, timeout=30)
    assert c.leader_of("__consumer_offsets", gp) == coord, (
        f"coordinator {coord} is not the leader of __consumer_offsets[{gp}]")

    cons = _group_consumer(c, group)
    cons.subscribe([topic])
    first = _consume_n(cons, 150, 60)
    cons.commit(asynchronous=False)
    tps = [TopicPartition(topic, p) for p in range(3)]
    committed1 = _committed(cons, tps)
    cons.close()
    per_part = {p: sum(1 for q, _, _ in first if q == p) for p in range(3)}
    assert committed1 == per_part, f"committed {committed1}, consumed {per_part}"

    c.kill(coord)
    c.wait_leader_not("__consumer_offsets", gp, coord, timeout=SESSION_S + 7)
    new_coord = c.find_coordinator(group)
    assert new_coord != coord

    cons = _group_consumer(c, group)
    try:
        def same_committed():
            return _committed(cons, tps, timeout=5) == committed1 or None
        c.wait_until(same_committed, 30, f"committed offsets {committed1} on the new coordinator")
        cons.subscribe([topic])
        second = _consume_n(cons, 150, 60)
        cons.commit(asynchronous=False)
        committed2 = _committed(cons, tps)
    finally:
        cons.close()
    first_off = {}
    for p, off, _ in second:
        first_off.setdefault(p, off)
    assert all(first_off.get(p, committed1[p]) == committed1[p] for p in range(3)), (
        f"resumed at {first_off}, committed {committed1}")
    got = [v for _, _, v in first] + [v for _, _, v in second]
    assert sorted(got) == sorted(values), "records missing or read twice across the failover"
    assert committed2 == {p: 100 for p in range(3)}, committed2


# --------------------------------------------------------------------------
# (g) network partition of a leader (netns mode)
# --------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_partitioned_leader_cannot_ack_and_catches_up_after_heal(start_cluster):
    ok, why = cl.netns_available()
    if not ok:
        pytest.skip(f"netns mode not available: {why}")
    c = start_cluster(netns=True)
    topic = unique("part")
    c.create_topic(topic, partitions=6, replication_factor=3)
    wl = checker.Workload(c.bootstrap, topic, 6, writers=2, rate=200).start()
    assert wl.wait_acks(100, WAIT_S), f"no acknowledgements: {wl.summary()}"

    iso = c.leader_of(topic, 0)
    majority = [i for i in c.ids if i != iso]
    c.isolate(iso)
    t_iso = time.monotonic()

    # A write sent straight to the isolated leader is never acknowledged: its followers
    # cannot fetch it, and it cannot shrink the ISR without the controller quorum. The
    # probe waits past replica.lag.time.max.ms.
    th = Worker(lambda: c.produce_raw(
        iso, topic, 0, [f"isolated-probe-{uuid.uuid4().hex}"], acks=-1, timeout_ms=int(
            (LAG_S + 4) * 1000), socket_timeout=LAG_S + 12), name="probe")
    th.start()

    new = c.wait_leader_not(topic, 0, iso, timeout=SESSION_S + WAIT_S, nodes=majority)
    t_new = time.monotonic()
    print(f"node {iso} isolated; majority {majority} elected {new} after {t_new - t_iso:.2f}s")
    probe = th.join(LAG_S + WAIT_S)
    assert probe.get("error_code") != 0, f"the isolated leader acknowledged an acks=all write: {probe}"
    print(f"probe to the isolated leader: {probe}")
    probe2 = c.produce_raw(iso, topic, 0, [f"isolated-probe-{uuid.uuid4().hex}"], acks=-1,
                           timeout_ms=3000, socket_timeout=10)
    assert probe2.get("error_code") != 0, f"the isolated leader acknowledged: {probe2}"

    # the clients follow the new leader although the old one still answers them (with
    # stale metadata): partition 0 acknowledges records produced after the election
    def acked_on_new_leader():
        return any(sent >= t_new for _, sent in wl.ack_times().get(0, []))
    c.wait_until(acked_on_new_leader, 40, f"an acknowledgement from the new leader {new} of "
                 f"partition 0 ({wl.summary()})", interval=0.25)
    fo = checker.failover_times([{"t": t_iso, "action": "isolate", "node": iso,
                                  "partitions": [0]}], wl.ack_times())
    print(f"partition 0 took new writes {fo[0]['max_s']}s after the isolation")

    c.heal()
    c.wait_ready(timeout=60)
    c.wait_isr(topic, None, 3, timeout=60)
    wl.stop()
    res = checker.verify(c.bootstrap, wl)
    _assert_checker_clean(res)
    assert res["other_records"] == 0, (
        f"{res['other_records']} records not written by the workload are in {topic}: the "
        "isolated leader's unacknowledged probes survived")
    # the old leader truncated what it had appended alone and holds the same log as the others
    c.wait_replicas_identical(topic, range(6), timeout=30)


# --------------------------------------------------------------------------
# (h) a short soak with random kills
# --------------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_short_soak_with_random_kills(cluster):
    duration = float(os.environ.get("VLTAVA_SOAK_SECONDS", "30"))
    faults = [f for f in os.environ.get("VLTAVA_SOAK_FAULTS", "kill").split(",") if f]
    # a fixed default: every run injects the same schedule (VLTAVA_SOAK_SEED varies it)
    seed = int(os.environ.get("VLTAVA_SOAK_SEED", str(SOAK_SEED)))
    print(f"soak seed {seed} (VLTAVA_SOAK_SEED={seed} reproduces the schedule)")
    report = checker.run_soak(cluster, duration=duration, seed=seed, faults=faults,
                              gap=(2.0, 4.0), recovery_timeout=60)
    text = json.dumps({k: v for k, v in report.items() if k != "counts"}, indent=1, default=str)
    print(text[:8000])
    print(checker.counts_line(report["counts"]))
    assert report["schedule"], "no fault was injected"
    assert report["ok"], f"soak failed (seed {seed}): {report['violations']}\n" \
        f"{checker.counts_line(report['counts'])}\n{text[:4000]}"


# --------------------------------------------------------------------------
# (i) transactions across brokers, and across a transaction coordinator kill
# --------------------------------------------------------------------------


def _read_topic(c: cl.Cluster, topic: str, partitions, isolation: str, expect: int,
                timeout: float = 30.0, settle: float = 1.5) -> list[tuple[int, int, str]]:
    """(partition, offset, value) of every record a fresh `isolation` consumer reads from the
    beginning: until `expect` records came and then `settle` seconds more without the count
    changing (extra records would show), or until `timeout` (the caller compares)."""
    cons = Consumer({"bootstrap.servers": c.bootstrap, "group.id": unique("reader"),
                     "enable.auto.commit": False, "isolation.level": isolation,
                     "auto.offset.reset": "earliest", "log_level": 2})
    got = []
    try:
        cons.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        deadline = time.monotonic() + timeout
        quiet_until = None
        while time.monotonic() < deadline:
            n = len(got)
            for m in cons.consume(num_messages=1000, timeout=0.2):
                if m.error() is None:
                    got.append((m.partition(), m.offset(), m.value().decode()))
            if len(got) >= expect:
                if quiet_until is None or len(got) != n:
                    quiet_until = time.monotonic() + settle
                elif time.monotonic() > quiet_until:
                    break
    finally:
        cons.close()
    return got


def _txn(p: Producer, topic: str, name: str, offsets: list, gmd, commit: bool) -> list[str]:
    """One transaction: 5 records to each of the topic's 6 partitions and the group's
    `offsets`, committed or aborted. Returns the values written."""
    p.begin_transaction()
    values = []
    for q in range(6):
        for j in range(5):
            v = f"{name}-p{q}-{j}"
            p.produce(topic, value=v.encode(), partition=q)
            values.append(v)
    p.send_offsets_to_transaction(offsets, gmd, 30)
    if commit:
        p.commit_transaction(30)
    else:
        assert p.flush(30) == 0   # the records reach the partitions before the abort
        p.abort_transaction(30)
    return values


@pytest.mark.timeout(150)
def test_transactions_across_brokers_and_coordinator_kill(cluster):
    c = cluster
    out, src = unique("txout"), unique("txsrc")
    c.create_topic(out, partitions=6, replication_factor=3)
    c.create_topic(src, partitions=3, replication_factor=3)
    leaders = c.leaders(out)
    assert set(leaders.values()) == set(c.ids), f"{out} not led by every node: {leaders}"

    # the input the group "consumes": 50 records per partition of src
    prod = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(150):
        prod.produce(src, value=f"in-{i}".encode(), partition=i % 3)
    assert prod.flush(30) == 0
    group = unique("txgroup")
    member = _group_consumer(c, group)
    member.subscribe([src])
    _consume_n(member, 150, WAIT_S)      # a real member: generation and member id
    src_tps = [TopicPartition(src, q) for q in range(3)]

    tid = unique("txid")
    tp_state = cl.group_partition(tid, 50)
    t0 = time.monotonic()
    p1 = Producer({"bootstrap.servers": c.bootstrap, "transactional.id": tid, "linger.ms": 5,
                   "transaction.timeout.ms": 60000, "log_level": 2})
    p1.init_transactions(30)
    coord = c.find_coordinator(tid, key_type=1)
    c.wait_isr("__transaction_state", tp_state, 3)
    assert c.leader_of("__transaction_state", tp_state) == coord, (
        f"coordinator {coord} of {tid!r} is not the leader of __transaction_state[{tp_state}]")
    print(f"transaction coordinator of {tid!r}: node {coord} (__transaction_state[{tp_state}]); "
          f"{out} leaders {leaders}")

    gmd = member.consumer_group_metadata()
    committed_vals, aborted_vals = [], []
    for k in range(3):
        committed_vals += _txn(p1, out, f"c{k}", [TopicPartition(src, q, 10 * (k + 1))
                                                  for q in range(3)], gmd, commit=True)
    aborted_vals += _txn(p1, out, "a3", [TopicPartition(src, q, 40) for q in range(3)], gmd,
                         commit=False)
    print(f"3 committed + 1 aborted transactions in {time.monotonic() - t0:.2f}s")

    got = _read_topic(c, out, range(6), "read_committed", len(committed_vals))
    assert sorted(v for _, _, v in got) == sorted(committed_vals), (
        f"read_committed read {len(got)} records, expected the {len(committed_vals)} committed; "
        f"aborted seen: {sorted(set(v for _, _, v in got) & set(aborted_vals))[:10]}; missing: "
        f"{sorted(set(committed_vals) - set(v for _, _, v in got))[:10]}")
    got_all = _read_topic(c, out, range(6), "read_uncommitted",
                          len(committed_vals) + len(aborted_vals))
    assert sorted(v for _, _, v in got_all) == sorted(committed_vals + aborted_vals), \
        "read_uncommitted does not hold every record written (the aborted ones included)"
    assert _committed(member, src_tps) == {0: 30, 1: 30, 2: 30}, \
        "group offsets: the aborted transaction's offsets (40) applied, or the committed lost"
    member.close()   # the group is now empty, its offsets at 30

    # a transaction left open: its records are written (acks=all), the commit never comes
    p1.begin_transaction()
    open_vals = [f"open-p{q}" for q in range(6)]
    for q, v in enumerate(open_vals):
        p1.produce(out, value=v.encode(), partition=q)
    assert p1.flush(30) == 0

    c.kill(coord)
    t_kill = time.monotonic()
    c.wait_leader_not("__transaction_state", tp_state, coord, timeout=SESSION_S + 7)
    new_coord = c.find_coordinator(tid, key_type=1)
    assert new_coord != coord and new_coord == c.leader_of("__transaction_state", tp_state)

    p2 = Producer({"bootstrap.servers": c.bootstrap, "transactional.id": tid, "linger.ms": 5,
                   "transaction.timeout.ms": 60000, "log_level": 2})
    p2.init_transactions(30)   # fences p1 and aborts its open transaction
    print(f"coordinator {coord} killed; node {new_coord} took over; init_transactions done "
          f"{time.monotonic() - t_kill:.2f}s after the kill")

    # the group resumes where the committed transactions left it
    member = _group_consumer(c, group)
    try:
        member.subscribe([src])
        rest = _consume_n(member, 60, 40)
        first = {}
        for q, off, _ in sorted(rest, key=lambda r: (r[0], r[1])):
            first.setdefault(q, off)
        assert first == {0: 30, 1: 30, 2: 30}, f"the group resumed at {first}, committed was 30"
        committed_vals += _txn(p2, out, "c5", [TopicPartition(src, q, 50) for q in range(3)],
                               member.consumer_group_metadata(), commit=True)
        assert _committed(member, src_tps) == {0: 50, 1: 50, 2: 50}
    finally:
        member.close()

    got = _read_topic(c, out, range(6), "read_committed", len(committed_vals))
    seen = [v for _, _, v in got]
    assert sorted(seen) == sorted(committed_vals), (
        f"read_committed after the failover: {len(seen)} records, expected {len(committed_vals)}; "
        f"open/aborted seen: {sorted(set(seen) & set(open_vals + aborted_vals))}; missing: "
        f"{sorted(set(committed_vals) - set(seen))[:10]}")
    got_all = _read_topic(c, out, range(6), "read_uncommitted",
                          len(committed_vals) + len(aborted_vals) + len(open_vals))
    assert set(open_vals) <= {v for _, _, v in got_all}, "the open transaction's records vanished"

    # the old coordinator comes back, catches up (markers included) and leads its partitions
    # again: read_committed through it reads the same
    c.start_node(coord)
    c.wait_isr(out, None, 3, timeout=SESSION_S + LAG_S + 20)
    codes = _elect_preferred(c.admin(), [TopicPartition(out, q) for q in range(6)])
    assert set(codes.values()) <= {0, KafkaError.ELECTION_NOT_NEEDED}, codes
    c.wait_until(lambda: c.leaders(out) == leaders, 15, f"{out} led as before the kill: {leaders}")
    got = _read_topic(c, out, range(6), "read_committed", len(committed_vals))
    assert sorted(v for _, _, v in got) == sorted(committed_vals), (
        f"read_committed with node {coord} leading again: {len(got)} records, expected "
        f"{len(committed_vals)}; open/aborted seen: "
        f"{sorted({v for _, _, v in got} & set(open_vals + aborted_vals))}")
    del p1


# --------------------------------------------------------------------------
# (j) preferred leader election
# --------------------------------------------------------------------------


def _elect_preferred(admin, tps) -> dict:
    """{partition: error code (0: elected)} of an ElectLeaders (preferred) request."""
    from confluent_kafka import ElectionType
    # no request_timeout=: confluent-kafka 2.16 raises SystemError on any keyword argument here
    res = admin.elect_leaders(ElectionType.PREFERRED, tps).result(30)
    def code(e):
        if e is None:
            return 0
        return (e if isinstance(e, KafkaError) else e.args[0]).code()
    return {tp.partition: code(e) for tp, e in res.items()}


@pytest.mark.timeout(150)
def test_preferred_leader_election_after_restart(start_cluster):
    c = start_cluster(settings={"auto.leader.rebalance.enable": False})
    topic = unique("pref")
    c.create_topic(topic, partitions=6, replication_factor=3)
    st = c.wait_isr(topic, None, 3)
    assert all(s.leader == s.replicas[0] for s in st.values()), f"new partitions: {st}"
    victim = st[0].replicas[0]
    pref = sorted(p for p, s in st.items() if s.replicas[0] == victim)
    others = sorted(set(st) - set(pref))
    prod = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True,
                     "linger.ms": 5})

    def produce(tag: str) -> None:
        for i in range(60):
            prod.produce(topic, value=f"{tag}-{i}".encode(), partition=i % 6)
        assert prod.flush(30) == 0

    produce("before")
    c.kill(victim)
    for p in pref:
        c.wait_leader_not(topic, p, victim, timeout=SESSION_S + 7)
    produce("down")    # the restarted node has to catch up on these
    admin = c.admin()
    codes = _elect_preferred(admin, [TopicPartition(topic, p) for p in pref])
    assert codes == {p: KafkaError.PREFERRED_LEADER_NOT_AVAILABLE for p in pref}, (
        f"preferred election with the preferred replica {victim} down: {codes}")

    c.start_node(victim)
    st = c.wait_isr(topic, None, 3, timeout=SESSION_S + LAG_S + 20)
    moved = {p: st[p].leader for p in pref}
    assert victim not in moved.values(), (
        f"leadership went back to {victim} by itself with auto.leader.rebalance.enable=false: {moved}")
    epochs = {p: st[p].epoch for p in pref}

    admin = c.admin()
    codes = _elect_preferred(admin, [TopicPartition(topic, p) for p in pref])
    assert codes == {p: 0 for p in pref}, f"ElectLeaders (preferred) for {pref}: {codes}"

    def preferred_lead():
        s = c._agreed(topic)
        return s if s and all(s[p].leader == s[p].replicas[0] for p in range(6)) else None
    st = c.wait_until(preferred_lead, 15, f"every partition of {topic} led by replicas[0]")
    assert all(st[p].leader == victim and st[p].epoch > epochs[p] for p in pref), st
    assert sorted(c.leaders(topic)) == list(range(6))

    codes = _elect_preferred(admin, [TopicPartition(topic, p) for p in range(6)])
    assert codes == {p: KafkaError.ELECTION_NOT_NEEDED for p in range(6)}, (
        f"second election (every preferred replica leads): {codes}")

    # clients follow the new leaders: everything produced is there, in order
    produce("after")
    got = _read_topic(c, topic, range(6), "read_uncommitted", 180)
    by_part = {}
    for p, _, v in sorted(got):
        by_part.setdefault(p, []).append(v)
    for p in range(6):
        want = [f"{tag}-{i}" for tag in ("before", "down", "after") for i in range(p, 60, 6)]
        assert by_part.get(p) == want, f"partition {p}: {by_part.get(p)}"
    print(f"node {victim} preferred for {pref} (others {others}) leads them again after the "
          f"election")


# --------------------------------------------------------------------------
# (k) partition reassignment
# --------------------------------------------------------------------------


def _kafka_python_admin(bootstrap: str):
    from kafka.admin import KafkaAdminClient
    return KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=20000,
                            client_id=unique("reassign"))


def _produce_to(c: cl.Cluster, topic: str, partition: int, values) -> None:
    prod = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "enable.idempotence": True,
                     "linger.ms": 5})
    errs = []
    for v in values:
        prod.produce(topic, value=v.encode(), partition=partition,
                     on_delivery=lambda e, m: errs.append(e) if e else None)
    assert prod.flush(30) == 0 and not errs, errs


@pytest.mark.timeout(180)
def test_partition_reassignment_moves_replicas_and_removes_the_old_one(cluster):
    from kafka import TopicPartition as KTP
    c = cluster
    topic = unique("move")
    c.create_topic(topic, partitions=3, replication_factor=2)
    st = c.wait_isr(topic, None, 2)
    ctl = c.wait_controller()

    # 1. all nodes up: [a, b] -> [b, c] for a partition led by a (the leader leaves)
    p1 = 0
    a, b = st[p1].replicas
    new = next(i for i in c.ids if i not in (a, b))
    assert st[p1].leader == a, st[p1]
    before = [f"p1-before-{i}" for i in range(200)]
    _produce_to(c, topic, p1, before)

    admin = _kafka_python_admin(c.bootstrap)
    try:
        res = admin.alter_partition_reassignments({KTP(topic, p1): [b, new]})
        assert res == {KTP(topic, p1): None}, f"AlterPartitionReassignments: {res}"
        listed = admin.list_partition_reassignments([KTP(topic, p1)])
        print(f"{topic}[{p1}] {[a, b]} -> {[b, new]}; listed at once: {listed}")
        # listed while pending, or not listed because it is already complete (the new
        # replica had little to copy): each case has its own check, and part 2 below
        # checks the pending listing on every run
        if listed:
            r = listed[KTP(topic, p1)]
            assert sorted(r["replicas"]) == sorted([a, b, new]) and r["removing_replicas"] == [a], r
        else:
            st_now = c.partition_state(topic, p1)
            assert st_now is not None and sorted(st_now.replicas) == sorted([b, new]), (
                f"{topic}[{p1}]: the reassignment is not listed, yet not complete: {st_now}")
    finally:
        admin.close()

    def moved(p, target):
        def cond():
            s = c._agreed(topic)
            if s is None or s[p].replicas != target or sorted(s[p].isr) != sorted(target) \
                    or s[p].leader not in target:
                return None
            return s
        return cond
    st = c.wait_until(moved(p1, [b, new]), 30, f"{topic}[{p1}] on replicas {[b, new]}")
    print(f"{topic}[{p1}] after the move: {st[p1]}")
    c.wait_until(lambda: not c.node(a).partition_dir(topic, p1).exists(), 20,
                 f"node {a} to delete {c.node(a).partition_dir(topic, p1)}")
    after = [f"p1-after-{i}" for i in range(200)]
    _produce_to(c, topic, p1, after)
    got = [v for _, _, v in sorted(_read_topic(c, topic, [p1], "read_uncommitted", 400))]
    assert got == before + after, f"{topic}[{p1}]: read {len(got)} records, expected 400"
    c.wait_replicas_identical(topic, [p1], timeout=30)

    # 2. the node to add is down: the reassignment is pending (and listed) until it is back
    p2, (x, y) = next((p, s.replicas) for p, s in st.items()
                      if p != p1 and next(i for i in c.ids if i not in s.replicas) != ctl)
    z = next(i for i in c.ids if i not in (x, y))
    before2 = [f"p2-before-{i}" for i in range(200)]
    _produce_to(c, topic, p2, before2)
    c.kill(z)
    live = [i for i in c.ids if i != z]
    c.wait_until(lambda: all(set(c.node_metadata(i)["brokers"]) == set(live) for i in live),
                 SESSION_S + 10, f"node {z} fenced")
    admin = _kafka_python_admin(c.bootstrap_of(live))
    try:
        res = admin.alter_partition_reassignments({KTP(topic, p2): [y, z]})
        assert res == {KTP(topic, p2): None}, f"AlterPartitionReassignments: {res}"
        during = [f"p2-during-{i}" for i in range(200)]
        _produce_to(c, topic, p2, during)   # ISR [x, y]: acks=all still completes
        for _ in range(2):   # it stays pending
            listed = admin.list_partition_reassignments([KTP(topic, p2)])
            r = listed.get(KTP(topic, p2))
            assert r is not None, f"reassignment of {topic}[{p2}] to {[y, z]} not listed: {listed}"
            assert sorted(r["replicas"]) == sorted([x, y, z]), r
            assert (r["adding_replicas"], r["removing_replicas"]) == ([z], [x]), r
            time.sleep(1)
        everything = admin.list_partition_reassignments()
        assert set(everything) == {KTP(topic, p2)}, f"listing every reassignment: {everything}"
        s = c.partition_state(topic, p2)
        assert sorted(s.replicas) == sorted([x, y, z]) and sorted(s.isr) == sorted([x, y]), s
    finally:
        admin.close()

    c.start_node(z)
    st = c.wait_until(moved(p2, [y, z]), 40, f"{topic}[{p2}] on replicas {[y, z]}")
    c.wait_until(lambda: not c.node(x).partition_dir(topic, p2).exists(), 20,
                 f"node {x} to delete {c.node(x).partition_dir(topic, p2)}")
    admin = _kafka_python_admin(c.bootstrap)
    try:
        listed = admin.list_partition_reassignments()
        assert listed == {}, f"reassignments still listed after completion: {listed}"
    finally:
        admin.close()
    after2 = [f"p2-after-{i}" for i in range(200)]
    _produce_to(c, topic, p2, after2)
    got = [v for _, _, v in sorted(_read_topic(c, topic, [p2], "read_uncommitted", 600))]
    assert got == before2 + during + after2, f"{topic}[{p2}]: read {len(got)} records"
    c.wait_replicas_identical(topic, [p2], timeout=30)
    # the third partition did not move
    p3 = next(p for p in range(3) if p not in (p1, p2))
    assert c.partition_state(topic, p3).replicas == st[p3].replicas


# --------------------------------------------------------------------------
# (l) the command line against the cluster
# --------------------------------------------------------------------------


def _cli(*args, brokers: str) -> subprocess.CompletedProcess:
    cmd = [cl.vltava_bin(), "--brokers", brokers, *map(str, args)]
    env = {k: v for k, v in os.environ.items() if k != "VLTAVA_BROKERS"}
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env)
    assert p.returncode == 0, f"{' '.join(cmd)} exited {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


def _cli_cluster_info(c: cl.Cluster, brokers: list[int], controller: int, cluster_id: str):
    j = json.loads(_cli("cluster", "info", "--json", brokers=c.bootstrap).stdout)
    assert j["cluster_id"] == cluster_id and j["controller_id"] == controller, j
    assert [(b["id"], b["host"], b["port"], b["controller"]) for b in j["brokers"]] == [
        (i, c.node(i).host, c.node(i).client_port, i == controller) for i in brokers], j
    text = _cli("cluster", "info", brokers=c.bootstrap).stdout
    fields = dict(ln.split(":", 1) for ln in text.splitlines()[:4])
    topics = len(c.node_metadata(brokers[0], None)["topics"])
    assert j["topics"] == topics, (j, topics)
    assert {k: v.strip() for k, v in fields.items()} == {
        "cluster id": cluster_id, "controller": str(controller), "topics": str(topics),
        "brokers": str(len(brokers))}, text
    rows = [ln.split() for ln in text.splitlines()[6:] if ln.strip()]
    assert rows == [[str(i), c.node(i).bootstrap] + (["yes"] if i == controller else [])
                    for i in brokers], text


def _cli_topic_describe(c: cl.Cluster, topic: str, st: dict, hw: dict):
    j = json.loads(_cli("topic", "describe", topic, "--json", brokers=c.bootstrap).stdout)
    assert j["name"] == topic and j["replication_factor"] == 3, j
    parts = {r["partition"]: r for r in j["partitions"]}
    assert sorted(parts) == sorted(st), j
    for p, s in st.items():
        r = parts[p]
        assert (r["leader"], r["replicas"], sorted(r["isr"])) == (s.leader, s.replicas,
                                                                  sorted(s.isr)), (p, r, s)
        assert r["high_watermark"] == hw[p] and r["log_start_offset"] == 0, (p, r)
    text = _cli("topic", "describe", topic, brokers=c.bootstrap).stdout
    lines = text.splitlines()
    head = lines.index(next(ln for ln in lines if ln.split()[:1] == ["PARTITION"]))
    rows = {}
    for ln in lines[head + 1:]:
        if ln.strip():
            f = ln.split()
            rows[int(f[0])] = (int(f[1]), [int(x) for x in f[2].split(",")],
                               sorted(int(x) for x in f[3].split(",")), int(f[5]))
    assert rows == {p: (s.leader, s.replicas, sorted(s.isr), hw[p]) for p, s in st.items()}, text


@pytest.mark.timeout(120)
def test_cli_cluster_info_and_topic_describe(cluster):
    c = cluster
    topic = unique("cli")
    c.create_topic(topic, partitions=6, replication_factor=3)
    prod = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 5})
    for i in range(60):
        prod.produce(topic, value=b"v%d" % i, partition=i % 6)
    assert prod.flush(30) == 0
    hw = {p: 10 for p in range(6)}
    # the CLI's consumer may look up a coordinator, which creates __consumer_offsets: create it
    # first, so that the topic count does not change between two commands
    c.find_coordinator(unique("g"))
    c.wait_isr("__consumer_offsets", None, 3)
    ctl = c.wait_controller()
    cid = c.node_describe_cluster(1)["cluster_id"]
    st = c.wait_isr(topic, None, 3)
    _cli_cluster_info(c, [1, 2, 3], ctl, cid)
    _cli_topic_describe(c, topic, st, hw)

    # a broker down: two brokers listed, its leaderships moved, the ISRs without it
    victim = next(i for i in c.ids if i != ctl and c.partitions_led_by(topic, i))
    c.kill(victim)
    live = [i for i in c.ids if i != victim]
    st = c.wait_isr(topic, None, 2, timeout=SESSION_S + LAG_S + 10)
    c.wait_until(lambda: all(set(c.node_metadata(i)["brokers"]) == set(live) for i in live),
                 10, f"node {victim} out of the brokers list")
    assert all(victim not in s.isr and s.leader != victim for s in st.values()), st
    assert c.wait_controller() == ctl
    _cli_cluster_info(c, live, ctl, cid)
    _cli_topic_describe(c, topic, st, hw)


def _segment_bytes(partition_dir: Path) -> int:
    return sum(p.stat().st_size for p in partition_dir.glob("*.log"))


@pytest.mark.timeout(180)
def test_cli_log_dirs_and_describe_quorum(cluster):
    """`log-dirs describe` asks each of the three brokers itself; `describe-quorum` shows
    the leader's view of three voters; with a broker down, `topic describe` says so for its
    replicas and still succeeds."""
    c = cluster
    topic = unique("cli-dirs")
    c.create_topic(topic, partitions=1, replication_factor=3)
    _produce_to(c, topic, 0, [f"value-{i}" for i in range(100)])
    c.wait_isr(topic, None, 3)
    ctl = c.wait_controller()

    report = json.loads(_cli("log-dirs", "describe", "--topic", topic, "--json", brokers=c.bootstrap).stdout)
    assert [(b["broker"], b["address"], b["error"]) for b in report["brokers"]] == [
        (i, c.node(i).bootstrap, None) for i in c.ids], report
    for b in report["brokers"]:
        [d] = b["log_dirs"]
        [p] = d["partitions"]
        on_disk = _segment_bytes(c.node(b["broker"]).partition_dir(topic, 0))
        assert (p["topic"], p["partition"], p["size_bytes"], p["offset_lag"]) == (topic, 0, on_disk, 0), b
        assert on_disk > 0

    # asked of a follower, which forwards the request to the quorum leader
    follower = next(i for i in c.ids if i != ctl)

    def leader_view():
        q = json.loads(_cli("cluster", "describe-quorum", "--json", brokers=c.node(follower).bootstrap).stdout)
        return q if all(v["log_end_offset"] is not None for v in q["voters"]) else None
    q = wait_until(leader_view, WAIT_S, "every voter's log end in describe-quorum")
    assert q["leader_id"] == ctl and q["answered_by"] == c.node(follower).bootstrap, q
    assert sorted(v["id"] for v in q["voters"]) == [1, 2, 3], q
    text = _cli("cluster", "describe-quorum", brokers=c.bootstrap).stdout
    assert sorted(ln.split()[1] for ln in text.splitlines() if ln.startswith("voter")) == ["1", "2", "3"], text

    victim = next(i for i in c.ids if i != ctl)
    c.kill(victim)
    d = json.loads(_cli("topic", "describe", topic, "--json", brokers=c.bootstrap).stdout)
    sizes = {r["broker"]: r for r in d["partitions"][0]["replica_sizes"]}
    assert sorted(sizes) == [1, 2, 3], d
    assert sizes[victim]["size_bytes"] is None and sizes[victim]["error"], d
    assert f"broker {victim}:" in d["size_error"], d
    for i in c.ids:
        if i != victim:
            assert sizes[i] == {"broker": i, "size_bytes": _segment_bytes(c.node(i).partition_dir(topic, 0)),
                                "error": None}, d
    text = _cli("topic", "describe", topic, brokers=c.bootstrap).stdout
    size_line = next(ln for ln in text.splitlines() if ln.startswith("size on disk:"))
    assert f"unknown on broker {victim}:" in size_line and f"{victim}=?" in text, text


def test_follower_behind_the_leaders_log_start_resets_and_rejoins(start_cluster):
    """A follower away while retention deleted everything it would fetch next
    starts its log over at the leader's log start offset and rejoins the ISR."""
    c = start_cluster(settings={"log.retention.check.interval.ms": 300})
    topic = unique("reset")
    c.create_topic(topic, partitions=1, replication_factor=3,
                   config={"segment.bytes": "4096", "retention.bytes": "8192"})
    leader = c.wait_leader(topic, 0)
    away = next(i for i in c.ids if i != leader)
    c.wait_isr(topic, 0, 3)
    p = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "linger.ms": 0, "batch.size": 1000})
    for i in range(100):
        p.produce(topic, value=f"before-{i:04d}".encode() + b"x" * 100, partition=0)
    assert p.flush(30) == 0
    c.kill(away)
    c.wait_leader(topic, 0)
    for i in range(600):
        p.produce(topic, value=f"after-{i:04d}".encode() + b"x" * 100, partition=0)
    assert p.flush(60) == 0

    def leader_start() -> int:
        cons = Consumer({"bootstrap.servers": c.bootstrap_of(c.running()), "group.id": "x"})
        try:
            lo, _ = cons.get_watermark_offsets(TopicPartition(topic, 0), timeout=10, cached=False)
        finally:
            cons.close()
        return lo

    # retention on the leader deletes past everything the away replica has (100 records)
    c.wait_until(lambda: leader_start() > 100, 30, "leader log start beyond the away replica's end")
    start = leader_start()
    c.restart(away)
    c.wait_isr(topic, 0, 3, timeout=60)
    log = c.node(away).log()
    assert "log reset to start at the leader's log start offset" in log, c.node(away).log_tail(40)
    # the reset replica holds the leader's records from (at most) its log start to the end
    away_dir = c.node(away).partition_dir(topic, 0)
    bases = sorted(int(f.stem) for f in away_dir.glob("*.log"))
    assert bases and bases[0] >= start, (bases, start)
    c.wait_until(lambda: c.check_replicas(topic, 0, c.replicas_of(topic, 0))["ends"].get(away) == 700, 30,
                 "the reset replica reaches the log end")


# --------------------------------------------------------------------------
# (m) automatic preferred leader rebalance
# --------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_auto_leader_rebalance_gives_leadership_back(start_cluster):
    """auto.leader.rebalance.enable (checked every second here): once a restarted node is
    back in the ISR, the partitions it is the preferred replica of are led by it again,
    with no ElectLeaders request."""
    c = start_cluster(settings={"auto.leader.rebalance.enable": True,
                                "leader.imbalance.check.interval.seconds": 1})
    topic = unique("autoreb")
    c.create_topic(topic, partitions=6, replication_factor=3)
    st = c.wait_isr(topic, None, 3)
    assert all(s.leader == s.replicas[0] for s in st.values()), f"new partitions: {st}"
    victim = st[0].replicas[0]
    pref = sorted(p for p, s in st.items() if s.replicas[0] == victim)
    c.kill(victim)
    for p in pref:
        c.wait_leader_not(topic, p, victim, timeout=SESSION_S + WAIT_S)
    epochs = {p: c.partition_state(topic, p).epoch for p in pref}
    _produce_to(c, topic, pref[0], [f"while-away-{i}" for i in range(50)])

    c.start_node(victim)

    def preferred_lead():
        s = c._agreed(topic)
        return s if s and all(s[p].leader == s[p].replicas[0] and len(s[p].isr) == 3
                              for p in range(6)) else None
    st = c.wait_until(preferred_lead, WAIT_S + 30,
                      f"partitions {pref} led by their preferred replica {victim} again")
    assert all(st[p].leader == victim and st[p].epoch > epochs[p] for p in pref), st
    _produce_to(c, topic, pref[0], [f"back-{i}" for i in range(50)])
    got = [v for _, _, v in sorted(_read_topic(c, topic, [pref[0]], "read_uncommitted", 100))]
    assert got == [f"while-away-{i}" for i in range(50)] + [f"back-{i}" for i in range(50)]


# --------------------------------------------------------------------------
# (n) a controller-only node
# --------------------------------------------------------------------------


@pytest.mark.timeout(240)
def test_controller_only_node_votes_but_serves_no_clients(start_cluster):
    """process.roles=controller: node 3 votes in the metadata quorum but is no broker: no
    client listener, not in Metadata, no replicas. With node 1 down, nodes 2 and 3 are
    still a majority of the voters: topics can be created and node 2 leads everything."""
    c = start_cluster(controllers_only={3}, settings={
        "offsets.topic.replication.factor": 2, "transaction.state.log.replication.factor": 2,
        "default.replication.factor": 2})
    assert "controller-only node started" in c.node(3).log(), c.node(3).log_tail(20)
    for i in (1, 2):
        md = c.node_metadata(i)
        assert sorted(md["brokers"]) == [1, 2], f"node {i}'s Metadata"
        # clients send admin requests to the controller they are given: never node 3, even
        # when it is the active controller (it has no client listener)
        assert md["controller_id"] in (1, 2), f"node {i} names controller {md['controller_id']}"
    assert sorted(n.id for n in c.describe_cluster().nodes) == [1, 2]
    import socket
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((c.node(3).host, c.node(3).client_port), timeout=10).close()

    topic = unique("ctlonly")
    c.create_topic(topic, partitions=4, replication_factor=2)
    st = c.wait_isr(topic, None, 2)
    assert all(sorted(s.replicas) == [1, 2] for s in st.values()), st
    admin = c.admin()   # kept alive until its futures are done
    fs = admin.create_topics([NewTopic(unique("rf3"), 1, 3)], request_timeout=30)
    with pytest.raises(KafkaException) as e:
        next(iter(fs.values())).result(60)
    assert e.value.args[0].code() == KafkaError.INVALID_REPLICATION_FACTOR, e.value
    _produce_to(c, topic, 0, [f"before-{i}" for i in range(20)])

    # node 3's vote makes the majority once node 1 is gone
    c.kill(1)
    for p in range(4):
        c.wait_until(lambda p=p: c.leader_of(topic, p) == 2, SESSION_S + WAIT_S,
                     f"{topic}[{p}] led by node 2")
    later = unique("ctlonly-later")
    deadline = time.monotonic() + WAIT_S
    while True:
        admin = c.admin()
        fs = admin.create_topics([NewTopic(later, 2, 1)], request_timeout=20)
        try:
            fs[later].result(30)
            break
        except KafkaException as err:
            assert time.monotonic() < deadline, (
                f"no topic created by the quorum of nodes 2 and 3: {err}\n{c.log_tails()}")
            time.sleep(0.5)
    c.wait_until(lambda: sorted(c.views(later, [2])[2]) == [0, 1], WAIT_S, f"{later} on node 2")
    assert c.node_metadata(2)["controller_id"] == 2   # the only broker left
    _produce_to(c, topic, 0, [f"after-{i}" for i in range(20)])
    got = [v for _, _, v in sorted(_read_topic(c, topic, [0], "read_uncommitted", 40))]
    assert got == [f"before-{i}" for i in range(20)] + [f"after-{i}" for i in range(20)]


# --------------------------------------------------------------------------
# (o) the Java client against the cluster
# --------------------------------------------------------------------------


@pytest.mark.timeout(420)
def test_java_client_against_the_cluster(cluster):
    """tests/java/RoundTrip.java (idempotent acks=all producer, every codec) on topics of
    replication factor 3, and GroupRoundTrip.java (a consumer group of two, its coordinator
    one of the nodes) on a replicated topic."""
    c = cluster
    res = run_java("RoundTrip", c.bootstrap, 1000, "none", "lz4", "zstd", timeout=200,
                   props={"rf": 3})
    assert java_ok_lines(res, "RoundTrip") == ["OK none 1000", "OK lz4 1000", "OK zstd 1000",
                                                "OK 3000"], res.stdout
    topic = unique("java-group")
    c.create_topic(topic, partitions=6, replication_factor=3)
    res = run_java("GroupRoundTrip", c.bootstrap, topic, 6, 1200, timeout=200)
    assert java_ok_lines(res, "GroupRoundTrip") == ["OK 2400"], res.stdout
    c.wait_replicas_identical(topic, range(6), timeout=WAIT_S)


def test_a_dynamic_broker_config_applies_on_that_broker_only(cluster):
    """IncrementalAlterConfigs on BROKER "<id>" (librdkafka sends it to that broker) is
    stored in the metadata log and applied by that node alone: its partitions refuse a
    5000-byte record under message.max.bytes=2000, the others' still take it."""
    from confluent_kafka.admin import AlterConfigOpType, ConfigEntry, ConfigResource

    c = cluster
    topic = unique("dyncl")
    c.create_topic(topic, partitions=6, replication_factor=3)
    st = c.wait_isr(topic, None, 3)
    target = st[0].leader
    r = ConfigResource(ConfigResource.Type.BROKER, str(target), incremental_configs=[
        ConfigEntry("message.max.bytes", "2000", incremental_operation=AlterConfigOpType.SET)])
    a = c.admin()
    a.incremental_alter_configs([r])[r].result(30)
    prod = Producer({"bootstrap.servers": c.bootstrap, "acks": "all", "retries": 0,
                     "enable.idempotence": False})
    outcome = {}
    for p in range(6):
        prod.produce(topic, value=b"x" * 5000, partition=p,
                     on_delivery=lambda e, m, p=p: outcome.__setitem__(p, e))
    assert prod.flush(30) == 0
    refused = {p for p, e in outcome.items() if e is not None}
    led_by_target = {p for p, s in st.items() if s.leader == target}
    assert refused == led_by_target, (refused, led_by_target, outcome)
    assert all(outcome[p].code() == KafkaError.MSG_SIZE_TOO_LARGE for p in refused)


def test_unregister_broker_removes_a_dead_node_and_a_live_one_registers_again(cluster):
    """UnregisterBroker (kafka-cluster.sh unregister): a killed node is fenced (its
    leaderships move) and leaves the cluster's broker list; an unknown id gets
    BROKER_ID_NOT_REGISTERED; once the node starts again it registers itself again."""
    c = cluster
    topic = unique("unreg")
    c.create_topic(topic, partitions=3, replication_factor=3)
    c.wait_isr(topic, None, 3)
    gone = c.leader_of(topic, 0)
    asker = next(i for i in c.ids if i != gone)
    c.kill(gone)

    def unregister(node_id):
        return w.parse_unregister_broker_v0(
            c.node_request(asker, w.unregister_broker_request_v0(4242, node_id), timeout=30))

    answer = unregister(gone)
    assert (answer["error_code"], answer["remaining"]) == (0, 0), answer
    listed = c.node_describe_cluster(asker)["brokers"]
    assert gone not in {b["broker_id"] for b in listed}, listed
    c.wait_leader_not(topic, 0, gone)
    assert unregister(77)["error_code"] == 102, "BROKER_ID_NOT_REGISTERED"

    c.start_node(gone)
    wait_until(lambda: gone in {b["broker_id"] for b in c.node_describe_cluster(asker)["brokers"]}, 60,
               f"node {gone} to register again")
    c.wait_isr(topic, None, 3, timeout=60)
