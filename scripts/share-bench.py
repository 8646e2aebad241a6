#!/usr/bin/env python3
"""Share-group consumption rate: 1, 2 and 4 confluent-kafka ShareConsumers (one process
each, implicit acknowledgement) reading one partition of a queue, records/s until every
record is consumed. One run per consumer count, each with a fresh share group that
starts at the earliest offset (group config `share.auto.offset.reset`).

    .venv/bin/python scripts/share-bench.py --bootstrap 127.0.0.1:19192 --records 200000

Prints one JSON line per consumer count."""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "integration"))
import kafka_wire as w  # noqa: E402

from confluent_kafka import Producer, ShareConsumer  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402


def set_group_configs(host: str, port: int, group: str, configs: dict) -> None:
    """IncrementalAlterConfigs v0 on the GROUP resource (type 32)."""
    entries = [w.string(k) + w.int8(0) + w.string(str(v)) for k, v in configs.items()]
    body = (w.request_header_v1(44, 0, 1) + w.array([w.int8(32) + w.string(group) + w.array(entries)])
            + w.int8(0))
    r = w.Reader(w.request(port, body, host=host))
    r.int32(), r.int32(), r.int32()
    code = r.int16()
    if code:
        raise SystemExit(f"group config refused: error {code}")


def consumer(bootstrap: str, group: str, topic: str, total: int, counter, stop) -> None:
    c = ShareConsumer({"bootstrap.servers": bootstrap, "group.id": group})
    c.subscribe([topic])
    while not stop.is_set():
        n = sum(1 for m in c.poll(0.2) if m.error() is None)
        if n:
            with counter.get_lock():
                counter.value += n
                if counter.value >= total:
                    stop.set()
    c.commit_sync()
    c.close()


def run(bootstrap: str, topic: str, total: int, consumers: int) -> dict:
    host, port = bootstrap.rsplit(":", 1)
    group = f"share-bench-{uuid.uuid4().hex[:8]}"
    set_group_configs(host, int(port), group, {"share.auto.offset.reset": "earliest"})
    counter, stop = mp.Value("q", 0), mp.Event()
    procs = [mp.Process(target=consumer, args=(bootstrap, group, topic, total, counter, stop))
             for _ in range(consumers)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    deadline = t0 + 600
    while not stop.is_set() and time.monotonic() < deadline:
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    stop.set()
    for p in procs:
        p.join(60)
    return {"consumers": consumers, "records": counter.value, "seconds": round(elapsed, 2),
            "records_per_s": round(counter.value / elapsed)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--record-size", type=int, default=100)
    ap.add_argument("--counts", default="1,2,4")
    args = ap.parse_args()
    topic = f"share-bench-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": args.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result()
    p = Producer({"bootstrap.servers": args.bootstrap, "linger.ms": 5, "batch.size": 1_000_000,
                  "queue.buffering.max.messages": 2_000_000})
    value = b"x" * args.record_size
    for _ in range(args.records):
        while True:
            try:
                p.produce(topic, value=value, partition=0)
                break
            except BufferError:
                p.poll(0.1)
    assert p.flush(120) == 0
    for n in (int(c) for c in args.counts.split(",")):
        print(json.dumps(run(args.bootstrap, topic, args.records, n)), flush=True)


if __name__ == "__main__":
    main()
