#!/usr/bin/env python3
"""Rebalance time after a member leaves: KIP-848 (group.protocol=consumer, the
broker's uniform assignor) against the classic protocol (cooperative-sticky and
eager range), in one run against one broker.

Each round starts a new group of MEMBERS confluent-kafka consumers (one thread
each, polling every 20 ms) on a topic of PARTITIONS partitions, waits until the
group is settled (every partition owned by exactly one member), then closes one
member (a clean leave) and measures the time until the others own every
partition again (disjoint and complete, read from each consumer's assignment()),
and how many partitions the survivors had revoked meanwhile (on_revoke/on_lost:
eager revokes all of them, stopping their consumption).
Heartbeats are 500 ms on both sides (classic: heartbeat.interval.ms; KIP-848:
group.consumer.heartbeat.interval.ms on the broker it starts).

Usage: .venv/bin/python scripts/rebalance-time.py [--rounds 5] [--members 3] [--partitions 12]
Starts target/release/vltava on a free port with a temporary data dir."""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Consumer
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[1]
HEARTBEAT_MS = 500


class Member(threading.Thread):
    def __init__(self, conf, topic):
        super().__init__(daemon=True)
        self.c = Consumer(conf)
        self.c.subscribe([topic], on_revoke=self.revoked, on_lost=self.revoked)
        self.owned = frozenset()
        self.watch = None   # set when the measurement begins; partitions revoked since
        self.lost = set()
        self.stop = threading.Event()
        self.closed = threading.Event()

    def revoked(self, _consumer, partitions):
        if self.watch is not None:
            self.lost |= {tp.partition for tp in partitions}

    def run(self):
        while not self.stop.is_set():
            self.c.poll(0.02)
            self.owned = frozenset(tp.partition for tp in self.c.assignment())
        self.c.close()
        self.closed.set()


def settled(members, partitions):
    owned = [m.owned for m in members]
    return sum(map(len, owned)) == partitions and frozenset().union(*owned) == frozenset(range(partitions))


def wait(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return time.monotonic()
        time.sleep(0.005)
    raise SystemExit(f"timed out waiting for {what}")


def round_(bootstrap, topic, kind, n, partitions, k):
    conf = {"bootstrap.servers": bootstrap, "group.id": f"rb-{kind}-{k}-{time.time_ns()}",
            "auto.offset.reset": "earliest", "enable.auto.commit": False}
    if kind == "kip848":
        conf["group.protocol"] = "consumer"
    else:
        conf.update({"heartbeat.interval.ms": HEARTBEAT_MS, "session.timeout.ms": 10000,
                     "partition.assignment.strategy": "cooperative-sticky" if kind == "cooperative" else "range"})
    members = [Member(conf, topic) for _ in range(n)]
    for m in members:
        m.start()
    wait(lambda: settled(members, partitions), 120, f"{kind}: the group to settle")
    time.sleep(1.0)  # let the last epochs/generations settle everywhere
    leaving, rest = members[-1], members[:-1]
    for m in rest:
        m.watch = m.owned
    t0 = time.monotonic()
    leaving.stop.set()
    t1 = wait(lambda: leaving.closed.is_set() and settled(rest, partitions), 120, f"{kind}: the survivors")
    paused = sum(len(m.lost) for m in rest)
    for m in rest:
        m.stop.set()
    for m in rest:
        m.closed.wait(30)
    return (t1 - t0) * 1000, paused


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--partitions", type=int, default=12)
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = tempfile.mkdtemp(prefix="rebalance-time-")
    broker = subprocess.Popen(
        [str(REPO / "target" / "release" / "vltava"), "server", "--data-dir", data, "--listen", f"127.0.0.1:{port}",
         "--set", "admin.listeners=http://127.0.0.1:0",
         "--set", f"group.consumer.min.heartbeat.interval.ms={HEARTBEAT_MS}",
         "--set", f"group.consumer.heartbeat.interval.ms={HEARTBEAT_MS}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    bootstrap = f"127.0.0.1:{port}"
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topic = "rebalance-time"
        deadline = time.monotonic() + 60
        while True:
            try:
                admin.create_topics([NewTopic(topic, args.partitions, 1)])[topic].result(10)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        print(f"{args.members} members, {args.partitions} partitions, one member leaves; "
              f"{args.rounds} rounds each (ms from close() to the others owning every partition)")
        for kind in ("kip848", "cooperative", "eager"):
            runs = [round_(bootstrap, topic, kind, args.members, args.partitions, k) for k in range(args.rounds)]
            times = [t for t, _ in runs]
            paused = max(p for _, p in runs)
            print(f"{kind:12s} median {statistics.median(times):7.0f}  min {min(times):7.0f}  max {max(times):7.0f}  "
                  f"all {[round(t) for t in times]}  survivors' partitions revoked meanwhile: {paused}", flush=True)
    finally:
        broker.terminate()
        broker.wait(30)
        subprocess.run(["rm", "-rf", data])


if __name__ == "__main__":
    sys.exit(main())
