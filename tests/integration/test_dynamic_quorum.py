"""The dynamic controller quorum (KIP-853) on a running cluster: a fourth controller,
started with controller.quorum.bootstrap.servers, joins the 3-node quorum as an observer
and is made a voter with `vltava cluster add-controller`; then the quorum leader is removed
with `vltava cluster remove-controller`, all while a confluent-kafka acks=all producer
writes. Every acknowledged record is read back; DescribeQuorum (the CLI and kafka-python's
admin) shows the new voters; the added voter restarts as a voter; with the removed node
stopped and one more original voter
killed, the quorum (two of its three voters) still elects a leader and creates topics,
which it could not if the removed node still counted or the new one did not."""

from __future__ import annotations

import json
import socket
import struct
import subprocess
import threading
import time

import pytest
from confluent_kafka import Producer
from kafka import KafkaAdminClient

import cluster as cl
import kafka_wire as w
from conftest import free_port
from helpers import Worker, unique, wait_until
from test_cluster import _read_topic, start_cluster  # noqa: F401 - the fixture

WAIT_S = 60.0


def _vltava(c: cl.Cluster, *args, timeout: float = 10.0) -> subprocess.CompletedProcess:
    cmd = [cl.vltava_bin(), "--brokers", c.bootstrap_of(c.healthy()), "--timeout", str(timeout),
           *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout + 30)


def _quorum(c: cl.Cluster) -> dict | None:
    """describe-quorum's answer, None when it failed (a node stopping meanwhile)."""
    p = _vltava(c, "cluster", "describe-quorum", "--json")
    return json.loads(p.stdout) if p.returncode == 0 else None


def _add_node(c: cl.Cluster, node_id: int) -> cl.Node:
    """A broker+controller that joins the quorum: bootstrap servers, no voters."""
    node = cl.Node(c, node_id, c.workdir / f"node{node_id}", "127.0.0.1", free_port(), free_port())
    s = {k: (v.format(n=3) if isinstance(v, str) else v) for k, v in cl.DEFAULT_SETTINGS.items()}
    s.update({
        "node.id": node_id,
        "listeners": f"PLAINTEXT://{node.host}:{node.client_port},CONTROLLER://{node.host}:{node.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{node.host}:{node.client_port}",
        "controller.quorum.bootstrap.servers": ",".join(
            f"{c.node(i).host}:{c.node(i).controller_port}" for i in c.ids),
        "log.dirs": str(node.data_dir),
    })
    node.settings = s
    c.nodes[node_id] = node
    node.spawn()
    return node


API_UPDATE_RAFT_VOTER = 82
VOTER_NOT_FOUND = 127


def _update_raft_voter(c: cl.Cluster, via: int, voter_id: int, host: str, port: int) -> int:
    """UpdateRaftVoter v0 (no client here speaks it) sent to node `via`; its error code."""
    listener = w.compact_string("CONTROLLER") + w.compact_string(host) + struct.pack(">H", port) \
        + w.EMPTY_TAGGED_FIELDS
    body = (w.compact_string(None) + w.int32(-1) + w.int32(voter_id) + bytes(16)
            + w.compact_array([listener])
            + w.int16(0) + w.int16(1) + w.EMPTY_TAGGED_FIELDS   # kraft.version range
            + w.EMPTY_TAGGED_FIELDS)
    payload = w.request_header_v2(API_UPDATE_RAFT_VOTER, 0, 82) + body
    with w.connect(c.node(via).client_port, c.node(via).host, timeout=30) as s:
        answer = w.roundtrip(s, payload)
    corr, tags, _throttle, error = struct.unpack(">iBih", answer[:11])
    assert (corr, tags) == (82, 0), answer
    return error


def _endpoints(c: cl.Cluster) -> dict:
    """{node id: (host, port)} of DescribeQuorum's nodes, through kafka-python."""
    a = KafkaAdminClient(bootstrap_servers=c.bootstrap_of(c.healthy()), request_timeout_ms=20000)
    try:
        nodes = a.describe_metadata_quorum()["nodes"]
    finally:
        a.close()
    return {n["node_id"]: (n["listeners"][0]["host"], n["listeners"][0]["port"]) for n in nodes}


class ProducerLoop:
    """An acks=all idempotent producer writing numbered values until stopped; what was
    acknowledged is kept as (partition, offset, value)."""

    def __init__(self, c: cl.Cluster, topic: str):
        self.c, self.topic = c, topic
        self.acked: list[tuple[int, int, str]] = []
        self.errors: list[str] = []
        self.stop = threading.Event()
        self.worker = Worker(self._run, name="producer")

    def _run(self):
        p = Producer({"bootstrap.servers": self.c.bootstrap, "acks": "all", "enable.idempotence": True,
                      "linger.ms": 5, "message.timeout.ms": 120000})

        def done(err, msg):
            if err is not None:
                self.errors.append(str(err))
            else:
                self.acked.append((msg.partition(), msg.offset(), msg.value().decode()))
        n = 0
        while not self.stop.is_set():
            p.produce(self.topic, value=f"v-{n}".encode(), on_delivery=done)
            n += 1
            p.poll(0.005)
        assert p.flush(150) == 0, "records still in flight after 150 s"

    def acked_count(self) -> int:
        return len(self.acked)


@pytest.mark.timeout(600)
def test_controller_added_and_removed_while_a_producer_runs(start_cluster):  # noqa: F811
    c = start_cluster()
    topic = unique("kip853")
    c.create_topic(topic, partitions=3, replication_factor=3)
    producer = ProducerLoop(c, topic)
    producer.worker.start()
    wait_until(lambda: producer.acked_count() > 200, WAIT_S, "the producer under way")

    # node 4 joins as an observer: DescribeQuorum lists it, the voters are unchanged
    _add_node(c, 4)
    c.wait_ready(expect={1, 2, 3, 4})
    q = wait_until(lambda: (q := _quorum(c)) and [o["id"] for o in q["observers"]] == [4] and q,
                   WAIT_S, "node 4 an observer of the quorum")
    assert sorted(v["id"] for v in q["voters"]) == [1, 2, 3], q

    # made a voter once caught up (a change already in flight answers REQUEST_TIMED_OUT:
    # the tool is run again)
    def added():
        p = _vltava(c, "cluster", "add-controller", "--config", c.node(4).config_path, timeout=30)
        assert p.returncode == 0 or "REQUEST_TIMED_OUT" in p.stderr, p.stderr
        return p if p.returncode == 0 else None
    p = wait_until(added, WAIT_S * 2, "add-controller to succeed")
    assert "controller 4 (127.0.0.1:" in p.stdout, p.stdout
    again = _vltava(c, "cluster", "add-controller", "--config", c.node(4).config_path, timeout=30)
    assert again.returncode != 0 and "DUPLICATE_VOTER" in again.stderr, again.stderr
    q = wait_until(lambda: (q := _quorum(c)) and sorted(v["id"] for v in q["voters"]) == [1, 2, 3, 4] and q,
                   WAIT_S, "node 4 a voter")
    wait_until(lambda: (q := _quorum(c)) and all(v["log_end_offset"] is not None for v in q["voters"]),
               WAIT_S, "every voter's log end known to the leader")
    before = producer.acked_count()
    wait_until(lambda: producer.acked_count() > before + 100, WAIT_S, "the producer going on")

    # the quorum leader (an original controller) is removed: it hands the leadership over
    victim = q["leader_id"]
    assert victim in (1, 2, 3), q
    missing = _vltava(c, "cluster", "remove-controller", "--controller-id", 9)
    assert missing.returncode != 0 and "VOTER_NOT_FOUND" in missing.stderr, missing.stderr
    negative = _vltava(c, "cluster", "remove-controller", "--controller-id=-1")
    assert negative.returncode != 0 and "INVALID_REQUEST" in negative.stderr, negative.stderr
    p = _vltava(c, "cluster", "remove-controller", "--controller-id", victim, timeout=30)
    assert p.returncode == 0, p.stderr
    voters = sorted({1, 2, 3, 4} - {victim})
    q = wait_until(lambda: (q := _quorum(c)) and sorted(v["id"] for v in q["voters"]) == voters
                   and q["leader_id"] in voters and q, WAIT_S, f"voters {voters} with a leader among them")
    # kafka-python's admin agrees (asked until the leader change reached the node it asks)
    a = KafkaAdminClient(bootstrap_servers=c.bootstrap_of(c.healthy()), request_timeout_ms=20000)
    try:
        def described():
            [part] = a.describe_metadata_quorum()["topics"][0]["partitions"]
            ok = sorted(v["replica_id"] for v in part["current_voters"]) == voters and part["leader_id"] in voters
            return part if ok else None
        wait_until(described, WAIT_S, f"kafka-python's describe_metadata_quorum: voters {voters}")
    finally:
        a.close()
    before = producer.acked_count()
    wait_until(lambda: producer.acked_count() > before + 100, WAIT_S, "the producer going on after the removal")

    # the added voter restarts from its own log (its config names no voters): a voter again
    c.restart(4)
    wait_until(lambda: (q := _quorum(c)) and sorted(v["id"] for v in q["voters"]) == voters
               and q["leader_id"] in voters
               and all(v["log_end_offset"] is not None for v in q["voters"] if v["id"] != victim),
               WAIT_S, "node 4 back among the voters after its restart")
    before = producer.acked_count()
    wait_until(lambda: producer.acked_count() > before + 100, WAIT_S, "the producer going on after the restart")

    # the removed node stops; the producer keeps writing through its leaderships moving
    c.stop(victim)
    c.wait_ready(expect=set(c.ids) - {victim})
    before = producer.acked_count()
    wait_until(lambda: producer.acked_count() > before + 100, WAIT_S, "the producer going on without the node")
    producer.stop.set()
    producer.worker.join(200)

    # voters {a, b, 4}: with one more original voter gone, two of three still elect a
    # leader and create topics (with the removed node still a voter, two of four would not)
    other = next(i for i in voters if i != 4)
    c.kill(other)
    live = [i for i in voters if i != other]
    c.wait_ready(expect=set(live))
    q = wait_until(lambda: (q := _quorum(c)) and q["leader_id"] in live and q, WAIT_S,
                   f"a quorum leader among {live}")
    later = unique("kip853-later")
    c.create_topic(later, partitions=2, replication_factor=2)
    c.wait_isr(later, None, 2)

    acked = producer.acked
    assert len(acked) > 300, len(acked)
    read = _read_topic(c, topic, [0, 1, 2], "read_committed", len(acked), timeout=90)
    missing_records = set(acked) - set(read)
    assert not missing_records, f"{len(missing_records)} acknowledged records lost: {sorted(missing_records)[:10]}"
    print(f"acked {len(acked)} records, read {len(read)}, delivery errors {len(producer.errors)}")


@pytest.mark.timeout(300)
def test_a_removed_follower_becomes_an_observer_and_keeps_serving(start_cluster):  # noqa: F811
    """RemoveRaftVoter of a follower: the leader stops sending it the log as soon as the
    removal applies, so the node may not learn of it; it then asks to join and is added back
    as an observer. As a broker it keeps up with the metadata (a topic created afterwards is
    in its own Metadata), and it does not disrupt the two remaining voters' leader."""
    c = start_cluster()
    q = wait_until(lambda: (q := _quorum(c)) and q["leader_id"] in c.ids and q, WAIT_S, "a quorum leader")
    leader = q["leader_id"]
    # join requests the leader refuses (a negative id, no endpoint) change nothing;
    # malformed join and members frames close the connection
    ctl = (c.node(leader).host, c.node(leader).controller_port)
    with socket.create_connection(ctl, timeout=10) as s:
        for payload in (b'\x03{"node_id": -5, "endpoint": "h:1"}', b'\x03{"node_id": 9, "endpoint": ""}'):
            s.sendall(struct.pack(">I", len(payload)) + payload)
    for payload in (b"\x03not json", b"\x04[[1]]", b"\x09"):
        with socket.create_connection(ctl, timeout=10) as s:
            s.sendall(struct.pack(">I", len(payload)) + payload)
            assert s.recv(1) == b"", payload
    time.sleep(1)
    # a controller that never joins is not added: REQUEST_TIMED_OUT, nothing written
    p = _vltava(c, "cluster", "add-controller", "--controller-id", 7, "--controller-endpoint", "127.0.0.1:9",
                timeout=4)
    assert p.returncode != 0 and "REQUEST_TIMED_OUT" in p.stderr and "did not join" in p.stderr, p.stderr
    q = _quorum(c)
    assert q is not None and q["observers"] == [] and len(q["voters"]) == 3, q
    follower = next(i for i in c.ids if i != leader)
    p = _vltava(c, "cluster", "remove-controller", "--controller-id", follower, timeout=30)
    assert p.returncode == 0, p.stderr
    rest = sorted(set(c.ids) - {follower})
    wait_until(lambda: (q := _quorum(c)) and sorted(v["id"] for v in q["voters"]) == rest
               and [o["id"] for o in q["observers"]] == [follower], WAIT_S,
               f"voters {rest}, node {follower} an observer")
    topic = unique("after-removal")
    c.create_topic(topic, partitions=2, replication_factor=3)
    wait_until(lambda: sorted(c.views(topic, [follower])[follower]) == [0, 1], WAIT_S,
               f"{topic} in node {follower}'s own Metadata")
    # the remaining voters keep their leader: the removed node campaigns for nothing
    time.sleep(3)
    q = _quorum(c)
    assert q is not None and q["leader_id"] == leader, q

    # UpdateRaftVoter (sent to the removed node, which forwards it): the other voter's
    # endpoint becomes another name of the same listener, DescribeQuorum shows it, and the
    # quorum still commits through it; an observer or an unknown node is VOTER_NOT_FOUND
    other = next(i for i in rest if i != leader)
    node = c.node(other)
    assert _update_raft_voter(c, follower, 9, node.host, node.controller_port) == VOTER_NOT_FOUND
    assert _update_raft_voter(c, leader, follower, "localhost", c.node(follower).controller_port) \
        == VOTER_NOT_FOUND
    assert _update_raft_voter(c, follower, other, "localhost", node.controller_port) == 0
    wait_until(lambda: _endpoints(c).get(other) == ("localhost", node.controller_port), WAIT_S,
               f"node {other}'s new endpoint in DescribeQuorum")
    later = unique("after-update")
    c.create_topic(later, partitions=1, replication_factor=3)
