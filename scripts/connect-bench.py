#!/usr/bin/env python3
"""Records/s through vltava connect: FileStreamSource -> topic -> JdbcSink (PostgreSQL)
(a benchmark, not a test; issue 17 asks for the figure).

Starts the real broker, Debian's PostgreSQL (tests/integration/pg.py) and one
`vltava connect` worker, writes LINES lines to a file (each a Connect JSON envelope
of a struct {id, line}), creates the JdbcSink (auto.create, insert mode), then the
FileStreamSource (StringConverter: the lines go to the topic as they are; the sink's
JsonConverter with schemas.enable=true reads them as structs), and times from the
source's creation until the table holds LINES rows. Prints one line with the figure.

    VLTAVA_BIN=target/release/vltava .venv/bin/python scripts/connect-bench.py [--lines 200000]
        [--partitions 1] [--tasks 1] [--batch-size 3000] [--payload 100] [--sink-only] [--progress]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))

TIMEOUT_S = 1800.0   # the whole run's deadline


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", default=os.environ.get("VLTAVA_BIN", str(REPO / "target" / "release" / "vltava")))
    ap.add_argument("--lines", type=int, default=200_000)
    ap.add_argument("--partitions", type=int, default=1)
    ap.add_argument("--tasks", type=int, default=1, help="the sink's tasks.max")
    ap.add_argument("--batch-size", type=int, default=3000, help="the sink's batch.size")
    ap.add_argument("--payload", type=int, default=100, help="characters of each line's text field")
    ap.add_argument("--keep", action="store_true", help="keep the work dir")
    ap.add_argument("--sink-only", action="store_true",
                    help="produce the lines to the topic first (confluent-kafka), then time the JdbcSink alone")
    ap.add_argument("--progress", action="store_true", help="print the topic's end offset and the table's rows every 5 s")
    args = ap.parse_args()
    os.environ["VLTAVA_BIN"] = args.bin

    import helpers as h
    from conftest import Broker
    from connect import Worker
    from pg import Postgres

    workdir = Path(tempfile.mkdtemp(prefix="vltava-connect-bench-"))
    broker = Broker(workdir / "broker")
    pg = Postgres(workdir / "pg")
    worker = None
    try:
        broker.start()
        pg.start()
        worker = Worker(workdir / "worker", broker.bootstrap, "connect-bench")
        worker.start()
        topic, table = "bench-lines", "bench_lines"
        h.create_topic(broker.bootstrap, topic, args.partitions)
        schema = {"type": "struct", "name": "Line", "optional": False,
                  "fields": [{"field": "id", "type": "int64", "optional": False},
                             {"field": "line", "type": "string", "optional": False}]}
        text = "x" * args.payload
        path = workdir / "lines.jsonl"
        with open(path, "w") as f:
            for i in range(args.lines):
                f.write(json.dumps({"schema": schema, "payload": {"id": i, "line": text}}, separators=(",", ":")))
                f.write("\n")
        json_conv = "org.apache.kafka.connect.json.JsonConverter"
        sink = {
            "connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector", "tasks.max": args.tasks,
            "topics": topic, "connection.url": pg.jdbc_url, "connection.user": "postgres",
            "table.name.format": table, "auto.create": "true", "insert.mode": "insert",
            "batch.size": args.batch_size, "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": json_conv, "value.converter.schemas.enable": "true"}
        if args.sink_only:
            producer = h.make_producer(broker.bootstrap, {"linger.ms": 50})
            with open(path, "rb") as f:
                for i, line in enumerate(f):
                    producer.produce(topic, value=line.rstrip(b"\n"), partition=i % args.partitions)
                    if i % 10_000 == 0:
                        producer.poll(0)
            assert producer.flush(300) == 0, "lines not delivered"
            t0 = time.monotonic()
            worker.create("bench-sink", sink)
            what = "topic -> PostgreSQL"
        else:
            worker.create("bench-sink", sink)
            worker.wait_running("bench-sink", tasks=args.tasks)
            t0 = time.monotonic()
            worker.create("bench-source", {
                "connector.class": "org.apache.kafka.connect.file.FileStreamSourceConnector", "tasks.max": 1,
                "file": str(path), "topic": topic,
                "value.converter": "org.apache.kafka.connect.storage.StringConverter"})
            what = "file -> topic -> PostgreSQL"
        deadline = t0 + TIMEOUT_S
        count = 0
        next_report = t0 + 5
        while count < args.lines:
            if args.progress and time.monotonic() >= next_report:
                next_report += 5
                produced = sum(h.watermarks(broker.bootstrap, topic, p)[1] for p in range(args.partitions))
                print(f"  {time.monotonic() - t0:6.1f} s: topic {produced}, table {count}", flush=True)
            if time.monotonic() > deadline:
                print(f"connect-bench: timed out with {count} of {args.lines} rows", file=sys.stderr)
                print(worker.log_tail(), file=sys.stderr)
                return 1
            time.sleep(0.2)
            count = pg.count(table)
        elapsed = time.monotonic() - t0
        print(f"connect-bench: {args.lines} records {what} ({args.partitions} partition(s), "
              f"JdbcSink insert, {args.tasks} task(s), batch.size {args.batch_size}) in {elapsed:.2f} s = "
              f"{args.lines / elapsed:,.0f} records/s", flush=True)
        return 0
    finally:
        if worker is not None:
            worker.kill()
        pg.cleanup()
        broker.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"work dir kept: {workdir}")


if __name__ == "__main__":
    sys.exit(main())
