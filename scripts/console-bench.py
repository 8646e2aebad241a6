#!/usr/bin/env python3
"""Times the web console's pages and API routes with many partitions (a benchmark,
not a test; issue 16 asks for pages under 100 ms with 10,000 partitions).

Starts the real binary on a fresh data dir, creates TOPICS topics of PARTITIONS
partitions (100 x 100 = 10,000 by default) with confluent_kafka's AdminClient,
produces a few records to each, registers a schema, then GETs every route in
ROUTES REPS times over one kept-alive connection and prints the median and p95
in milliseconds per route (and its HTTP status: a route another section has not
built yet answers 404).

    .venv/bin/python scripts/console-bench.py [--bin target/release/vltava]
        [--topics 100] [--partitions 100] [--reps 20] [--only /brokers]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

# every console page and API route the bench knows; NAME is the first topic,
# GROUP the bench's consumer group, SUBJECT its schema subject
ROUTES = [
    "/", "/api/v1/cluster", "/api/v1/cluster/throughput",
    "/topics", "/api/v1/topics",
    "/topics/NAME", "/api/v1/topics/NAME",
    "/topics/NAME/messages?partition=0&offset=0", "/api/v1/topics/NAME/messages?partition=0&offset=0",
    "/groups", "/api/v1/groups",
    "/groups/GROUP", "/api/v1/groups/GROUP",
    "/brokers", "/api/v1/brokers",
    "/brokers/1", "/api/v1/brokers/1",
    "/catalog", "/api/v1/catalog", "/catalog/NAME", "/api/v1/catalog/NAME",
    "/topics/NAME/messages", "/api/v1/topics/NAME/messages",
    "/schemas", "/api/v1/schemas",
    "/schemas/SUBJECT", "/api/v1/schemas/SUBJECT",
    "/acls", "/api/v1/acls", "/users", "/api/v1/users", "/quotas", "/api/v1/quotas",
]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("VLTAVA_BIN", str(REPO / "target" / "release" / "vltava")))
    ap.add_argument("--topics", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=100)
    ap.add_argument("--reps", type=int, default=20)
    ap.add_argument("--only", action="append",
                    help="time only this route and those under it, e.g. /brokers (repeatable)")
    ap.add_argument("--keep", action="store_true", help="keep the data dir")
    args = ap.parse_args()
    os.environ["VLTAVA_BIN"] = args.bin

    from confluent_kafka import Consumer, Producer
    from confluent_kafka.admin import AdminClient, NewTopic
    from conftest import Broker

    workdir = Path(tempfile.mkdtemp(prefix="vltava-console-bench-"))
    broker = Broker(workdir)
    broker.start()
    try:
        bootstrap = broker.bootstrap
        admin = AdminClient({"bootstrap.servers": bootstrap, "allow.auto.create.topics": False})
        names = [f"bench-{i:04d}" for i in range(args.topics)]
        t0 = time.monotonic()
        for i in range(0, len(names), 10):
            batch = [NewTopic(n, num_partitions=args.partitions, replication_factor=1) for n in names[i:i + 10]]
            for name, f in admin.create_topics(batch, request_timeout=300).items():
                f.result(300)
        print(f"created {len(names)} topics x {args.partitions} partitions "
              f"= {len(names) * args.partitions} in {time.monotonic() - t0:.1f} s", flush=True)

        producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 20})
        for name in names:
            for p in range(min(args.partitions, 3)):
                producer.produce(name, key=b"k", value=json.dumps({"topic": name, "p": p}).encode(), partition=p)
        assert producer.flush(120) == 0, "records not delivered"
        # the clients go before the broker does (they would log its absence)
        del producer, admin
        group = "bench-group"
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "auto.offset.reset": "earliest",
                             "enable.auto.commit": False})
        consumer.subscribe([names[0]])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and consumer.poll(1.0) is None:
            pass
        consumer.commit(asynchronous=False)
        consumer.close()
        subject = f"{names[0]}-value"
        try:
            from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
            schema = {"type": "record", "name": "Bench", "fields": [{"name": "topic", "type": "string"},
                                                                    {"name": "p", "type": "int"}]}
            SchemaRegistryClient({"url": broker.registry_url}).register_schema(
                subject, Schema(json.dumps(schema), "AVRO"))
        except Exception as e:  # noqa: BLE001 - the bench goes on without a schema
            print(f"(no schema registered: {e})")
        # two throughput samples (every 5 s) so the chart has a point
        time.sleep(11)

        host, port = broker.admin_url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        print(f"\n{'route':<58} {'status':>6} {'median ms':>10} {'p95 ms':>8} {'bytes':>9}")
        slow = []
        for route in ROUTES:
            path = route.replace("NAME", names[0]).replace("GROUP", group).replace("SUBJECT", subject)
            if args.only and not any(route == o or (o != "/" and route.startswith(o + "/")) for o in args.only):
                continue
            times, status, size = [], 0, 0
            for _ in range(args.reps):
                start = time.perf_counter()
                accept = "application/json" if "/api/" in path else "text/html"
                conn.request("GET", path, headers={"Accept": accept})
                r = conn.getresponse()
                body = r.read()
                times.append((time.perf_counter() - start) * 1000)
                status, size = r.status, len(body)
            times.sort()
            median = statistics.median(times)
            p95 = times[min(len(times) - 1, int(round(0.95 * (len(times) - 1))))]
            print(f"{path:<58} {status:>6} {median:>10.1f} {p95:>8.1f} {size:>9}", flush=True)
            if status == 200 and median >= 100:
                slow.append(path)
        print(f"\n{len(names) * args.partitions} partitions; {args.reps} GETs per route; "
              f"{'slow (median >= 100 ms): ' + ', '.join(slow) if slow else 'every 200 route under 100 ms'}")
    finally:
        broker.kill()
        if not args.keep:
            import shutil
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"data dir kept: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
