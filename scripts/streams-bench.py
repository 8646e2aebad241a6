#!/usr/bin/env python3
"""Throughput of vltava-streams' example applications against a real broker (a
benchmark, not a test): the stateless one (filter-map: filter + map_values) and
the stateful one (wordcount: flat_map_values, a repartition topic, a logged
persistent store), under at_least_once and exactly_once_v2.

Starts `vltava server` on a fresh data dir, produces RECORDS lines to a topic of
PARTITIONS partitions, then per case starts the example (a fresh application id)
and reads its output with read_committed until it is complete: every input line
for filter-map, the final count of every word for wordcount. Prints, per case,
input records per second from the application's start to its last output record
(the start includes joining the group and creating internal topics).

    .venv/bin/python scripts/streams-bench.py [--bin target/release/vltava]
        [--examples target/release/examples] [--records 200000] [--partitions 4]
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

from confluent_kafka import Consumer, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=str(REPO / "target" / "release" / "vltava"))
    ap.add_argument("--examples", default=str(REPO / "target" / "release" / "examples"))
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--words-per-line", type=int, default=8)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="streams-bench-"))
    port_file = work / "broker.port"
    broker = subprocess.Popen([args.bin, "server", "--data-dir", str(work / "data"), "--listen", "127.0.0.1:0",
                               "--port-file", str(port_file), "--set", "admin.listeners=http://127.0.0.1:0",
                               "--set", "schema.registry.listeners=http://127.0.0.1:0"],
                              stdout=open(work / "broker.log", "wb"), stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while not (port_file.exists() and port_file.read_text().strip()):
            if time.monotonic() > deadline or broker.poll() is not None:
                raise SystemExit(f"the broker did not start; see {work / 'broker.log'}")
            time.sleep(0.1)
        bootstrap = f"127.0.0.1:{port_file.read_text().strip()}"
        admin = AdminClient({"bootstrap.servers": bootstrap})
        topics = ["lines"] + [f"out-{c}" for c in ("fm-alos", "fm-eos", "wc-alos", "wc-eos")]
        for f in admin.create_topics([NewTopic(t, args.partitions, 1) for t in topics]).values():
            f.result(30)
        rnd = random.Random(1)
        vocab = [f"w{i}" for i in range(2000)]
        expected = collections.Counter()
        p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20, "enable.idempotence": True})
        for i in range(args.records):
            words = rnd.choices(vocab, k=args.words_per_line)
            expected.update(words)
            while True:
                try:
                    p.produce("lines", key=str(i).encode(), value=" ".join(words).encode())
                    break
                except BufferError:   # the local queue is full: wait for deliveries
                    p.poll(0.1)
            if i % 10000 == 0:
                p.poll(0)
        p.flush(120)
        print(f"{args.records} lines of {args.words_per_line} words, {args.partitions} partitions")
        print(f"{'case':<28} {'seconds':>8} {'input records/s':>16} {'output records':>15}")
        for example, guarantee, out in [("filter-map", "at_least_once", "out-fm-alos"),
                                        ("filter-map", "exactly_once_v2", "out-fm-eos"),
                                        ("wordcount", "at_least_once", "out-wc-alos"),
                                        ("wordcount", "exactly_once_v2", "out-wc-eos")]:
            app_id = f"bench-{out}"
            log = open(work / f"{app_id}.log", "wb")
            start = time.monotonic()
            app = subprocess.Popen([str(Path(args.examples) / example), "--brokers", bootstrap,
                                    "--application-id", app_id, "--processing-guarantee", guarantee,
                                    "--state-dir", str(work / "state" / app_id), "--input", "lines", "--output", out]
                                   + (["--value-format", "long"] if example == "wordcount" else []),
                                   stdout=log, stderr=subprocess.STDOUT)
            c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{out}", "enable.auto.commit": False,
                          "isolation.level": "read_committed"})
            c.assign([TopicPartition(out, q, 0) for q in range(args.partitions)])
            n, last, latest = 0, start, {}
            want = dict(expected)
            while True:
                if app.poll() is not None:
                    raise SystemExit(f"{example} exited; see {work / (app_id + '.log')}")
                if time.monotonic() - start > 900:
                    raise SystemExit(f"{example} ({guarantee}) did not finish in 900 s")
                msgs = c.consume(10000, timeout=0.5)
                for m in msgs:
                    if m.error():
                        continue
                    n += 1
                    last = time.monotonic()
                    if example == "wordcount":
                        latest[m.key().decode()] = struct.unpack(">q", m.value())[0]
                if example == "filter-map" and n >= args.records:
                    break
                if example == "wordcount" and msgs and latest == want:
                    break
            secs = last - start
            print(f"{example + ' ' + guarantee:<28} {secs:>8.2f} {args.records / secs:>16,.0f} {n:>15,}")
            c.close()
            app.terminate()
            app.wait(60)
    finally:
        broker.terminate()
        broker.wait(30)


if __name__ == "__main__":
    main()
