"""The HTTP sink and the object-store sink connectors of `vltava connect`, end to
end: records produced with confluent-kafka to a real broker, a real worker running
the connector, and the real external system: a local HTTP server with injected
failures (httpsink.py), the local filesystem, and an S3 server (moto, s3.py)."""

from __future__ import annotations

import base64
import io
import json

import pytest
from confluent_kafka import Consumer, TopicPartition

import helpers as h
from connect import start_worker  # noqa: F401
from httpsink import http_server  # noqa: F401
from s3 import s3  # noqa: F401

JSON = "org.apache.kafka.connect.json.JsonConverter"
STRING = "org.apache.kafka.connect.storage.StringConverter"
DEADLINE = 120.0   # a deadline, not a verdict
# a broker, a worker and a connector per test, each with generous deadlines
pytestmark = pytest.mark.timeout(360)
# 2026-03-04T05:00:00Z: record times for time-based partitions
HOUR_5 = 1_772_600_400_000
HOUR_MS = 3_600_000


def produce(bootstrap: str, topic: str, values, partition: int = 0, timestamps=None) -> None:
    p = h.make_producer(bootstrap)
    errors = []
    for i, v in enumerate(values):
        kw = {"partition": partition, "on_delivery": lambda err, msg: err and errors.append(err)}
        if timestamps is not None:
            kw["timestamp"] = timestamps[i]
        p.produce(topic, value=v if isinstance(v, bytes) else json.dumps(v).encode(), **kw)
    assert p.flush(60) == 0
    assert not errors, errors


def committed(bootstrap: str, group: str, topic: str, partitions: int) -> list[int]:
    """The group's committed offsets of the topic's partitions (-1001: none)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        tps = c.committed([TopicPartition(topic, p) for p in range(partitions)], timeout=10)
        return [tp.offset for tp in tps]
    finally:
        c.close()


def sink_config(topic: str, cls: str, **extra) -> dict:
    return {
        "connector.class": cls,
        "tasks.max": "1",
        "topics": topic,
        "key.converter": STRING,
        "value.converter": JSON,
        "value.converter.schemas.enable": "false",
        **extra,
    }


# -- HTTP sink ---------------------------------------------------------------

def test_http_sink_retries_injected_failures_and_delivers_every_record_once(broker, start_worker, http_server):
    n = 57
    topic = h.unique("http")
    h.create_topic(broker.bootstrap, topic, partitions=1)
    produce(broker.bootstrap, topic, [{"id": i, "name": f"n{i}"} for i in range(n)])
    srv = http_server(fail_first=3, fail_status=500)
    w = start_worker(broker)
    name = h.unique("httpsink")
    w.create(name, sink_config(
        topic, "io.confluent.connect.http.HttpSinkConnector",
        **{"http.api.url": srv.url + "ingest", "batch.max.size": "10", "batch.json.as.array": "true",
           "retry.backoff.ms": "100", "max.retries": "10", "auth.type": "BASIC",
           "connection.user": "alice", "connection.password": "s3cret",
           "headers": "X-Test:yes|X-Tenant:t1"}))
    w.wait_running(name)

    def delivered_ids():
        ids = [rec["id"] for r in srv.delivered() for rec in json.loads(r.body)]
        return ids if len(ids) >= n else None
    h.wait_until(delivered_ids, DEADLINE, f"{n} records delivered to the HTTP server")
    # once the group committed every offset, nothing is sent again
    h.wait_until(lambda: committed(broker.bootstrap, f"connect-{name}", topic, 1) == [n], DEADLINE,
                 f"group connect-{name} to commit offset {n}")
    ids = [rec["id"] for r in srv.delivered() for rec in json.loads(r.body)]
    assert ids == list(range(n)), ids          # every record, in order, no duplicates
    failed = srv.failed()
    assert len(failed) == 3
    assert all(f.body == srv.delivered()[0].body for f in failed)   # the same batch retried
    assert all(1 <= len(json.loads(r.body)) <= 10 for r in srv.all())   # batch.max.size
    auth = "Basic " + base64.b64encode(b"alice:s3cret").decode()
    for r in srv.all():
        assert (r.method, r.path) == ("POST", "/ingest")
        assert r.headers["authorization"] == auth
        assert r.headers["x-test"] == "yes" and r.headers["x-tenant"] == "t1"
        assert r.headers["content-type"] == "application/json"
        assert json.loads(r.body)[0]["name"].startswith("n")


def test_http_sink_puts_string_batches_joined_by_the_separator(broker, start_worker, http_server):
    topic = h.unique("httpstr")
    h.create_topic(broker.bootstrap, topic, partitions=1)
    lines = [f"line {i}".encode() for i in range(7)]
    produce(broker.bootstrap, topic, lines)
    srv = http_server()
    w = start_worker(broker)
    name = h.unique("httpsink")
    w.create(name, sink_config(
        topic, "HttpSink",
        **{"value.converter": STRING, "http.api.url": srv.url + "put/here", "request.method": "PUT",
           "batch.max.size": "3", "batch.separator": "\n"}))
    w.wait_running(name)
    h.wait_until(lambda: sum(len(r.body.split(b"\n")) for r in srv.delivered()) >= 7, DEADLINE,
                 "7 lines delivered")
    got = [line for r in srv.delivered() for line in r.body.split(b"\n")]
    assert got == lines
    assert all(r.method == "PUT" and r.path == "/put/here" for r in srv.all())
    assert all(len(r.body.split(b"\n")) <= 3 for r in srv.all())


def test_http_sink_config_errors_are_connects_validation_errors(broker, start_worker):
    w = start_worker(broker)
    status, body = w.put("/connector-plugins/HttpSinkConnector/config/validate",
                         {"connector.class": "io.confluent.connect.http.HttpSinkConnector", "topics": "t",
                          "http.api.url": "http://127.0.0.1:1/", "retry.on.status.codes": "5xx"})
    assert status == 200, body
    errors = {c["value"]["name"]: c["value"]["errors"] for c in body["configs"]}
    assert errors["retry.on.status.codes"], body
    assert body["error_count"] >= 1


# -- object-store sink: local filesystem ----------------------------------------

def local_files(root) -> dict[str, bytes]:
    """Object name -> content of the finished files under root (not staging files)."""
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*")
            if p.is_file() and (p.name.endswith(".json") or p.name.endswith(".parquet"))}


def test_object_store_sink_writes_json_lines_files_rotated_by_flush_size(broker, start_worker, tmp_path):
    topic = h.unique("orders")
    h.create_topic(broker.bootstrap, topic, partitions=2)
    produce(broker.bootstrap, topic, [{"id": i, "p": 0} for i in range(20)], partition=0)
    produce(broker.bootstrap, topic, [{"id": i, "p": 1} for i in range(10)], partition=1)
    root = tmp_path / "store"
    # no periodic flush during the test: files are cut by flush.size alone
    w = start_worker(broker, props={"offset.flush.interval.ms": "600000"})
    name = h.unique("files")
    w.create(name, sink_config(topic, "ObjectStoreSink", **{"store.url": f"file://{root}", "flush.size": "5"}))
    w.wait_running(name)
    expected = {f"topics/{topic}/partition={p}/{topic}+{p}+{start:010d}.json": [{"id": i, "p": p} for i in range(start, start + 5)]
                for p, count in ((0, 20), (1, 10)) for start in range(0, count, 5)}
    h.wait_until(lambda: len(local_files(root)) >= len(expected), DEADLINE, f"{len(expected)} files in {root}")
    files = local_files(root)
    assert sorted(files) == sorted(expected)
    for key, records in expected.items():
        assert files[key].endswith(b"\n")
        assert [json.loads(line) for line in files[key].splitlines()] == records, key


def test_object_store_sink_flush_writes_what_is_buffered_and_commits(broker, start_worker, tmp_path):
    topic = h.unique("partial")
    h.create_topic(broker.bootstrap, topic, partitions=1)
    produce(broker.bootstrap, topic, [{"id": i} for i in range(7)])
    root = tmp_path / "store"
    w = start_worker(broker)   # offset.flush.interval.ms=1000
    name = h.unique("files")
    w.create(name, sink_config(topic, "vltava.connect.ObjectStoreSinkConnector",
                               **{"store.url": f"file://{root}", "flush.size": "1000", "topics.dir": "out"}))
    w.wait_running(name)
    h.wait_until(lambda: committed(broker.bootstrap, f"connect-{name}", topic, 1) == [7], DEADLINE,
                 "the sink to commit offset 7")
    files = local_files(root)
    # however the records were split into puts and flushes: each file starts at its
    # first record's offset and together they hold every record once, in order
    got = []
    for key in sorted(files):
        start = int(key.rsplit("+", 1)[1].split(".")[0])
        assert key == f"out/{topic}/partition=0/{topic}+0+{start:010d}.json"
        lines = [json.loads(line) for line in files[key].splitlines()]
        assert lines[0]["id"] == start
        got.extend(lines)
    assert got == [{"id": i} for i in range(7)]


# -- object-store sink: S3 (moto) ---------------------------------------------

def s3_config(s3, topic: str, **extra) -> dict:
    return sink_config(topic, "io.confluent.connect.s3.S3SinkConnector", **{
        "store.url": s3.endpoint, "s3.bucket.name": s3.bucket, "s3.region": s3.region,
        "aws.access.key.id": s3.access_key, "aws.secret.access.key": s3.secret_key, **extra})


def test_s3_sink_time_based_partitions_on_moto(broker, start_worker, s3):
    topic = h.unique("events")
    h.create_topic(broker.bootstrap, topic, partitions=1)
    times = [HOUR_5 + i * 60_000 for i in range(4)] + [HOUR_5 + HOUR_MS + i * 60_000 for i in range(4)]
    produce(broker.bootstrap, topic, [{"id": i} for i in range(8)], timestamps=times)
    w = start_worker(broker, props={"offset.flush.interval.ms": "600000"})
    name = h.unique("s3")
    w.create(name, s3_config(s3, topic, **{
        "topics.dir": "tb", "flush.size": "4",
        "format.class": "io.confluent.connect.s3.format.json.JsonFormat",
        "partitioner.class": "io.confluent.connect.storage.partitioner.TimeBasedPartitioner",
        "path.format": "'year'=YYYY/'month'=MM/'day'=dd/'hour'=HH", "partition.duration.ms": "3600000",
        "locale": "en-US", "timezone": "UTC", "timestamp.extractor": "Record"}))
    w.wait_running(name)
    prefix = f"tb/{topic}/"
    h.wait_until(lambda: len(s3.keys(prefix)) >= 2, DEADLINE, "2 objects in the bucket")
    assert s3.keys(prefix) == [
        f"{prefix}year=2026/month=03/day=04/hour=05/{topic}+0+0000000000.json",
        f"{prefix}year=2026/month=03/day=04/hour=06/{topic}+0+0000000004.json",
    ]
    assert [json.loads(x) for x in s3.get(s3.keys(prefix)[0]).splitlines()] == [{"id": i} for i in range(4)]
    assert [json.loads(x) for x in s3.get(s3.keys(prefix)[1]).splitlines()] == [{"id": i} for i in range(4, 8)]


def test_s3_sink_parquet_files_read_back_with_pyarrow(broker, start_worker, s3):
    import pyarrow.parquet as pq
    topic = h.unique("rows")
    h.create_topic(broker.bootstrap, topic, partitions=1)
    schema = {"type": "struct", "name": "Row", "optional": False, "fields": [
        {"field": "id", "type": "int64", "optional": False},
        {"field": "name", "type": "string", "optional": True},
        {"field": "price", "type": "double", "optional": False}]}
    rows = [{"id": i, "name": None if i == 3 else f"n{i}", "price": i + 0.25} for i in range(6)]
    produce(broker.bootstrap, topic, [{"schema": schema, "payload": r} for r in rows])
    w = start_worker(broker, props={"offset.flush.interval.ms": "600000"})
    name = h.unique("s3pq")
    w.create(name, s3_config(s3, topic, **{
        "value.converter.schemas.enable": "true", "topics.dir": "pq", "flush.size": "3",
        "format.class": "io.confluent.connect.s3.format.parquet.ParquetFormat"}))
    w.wait_running(name)
    prefix = f"pq/{topic}/partition=0/"
    h.wait_until(lambda: len(s3.keys(prefix)) >= 2, DEADLINE, "2 Parquet objects")
    keys = s3.keys(prefix)
    assert keys == [f"{prefix}{topic}+0+0000000000.snappy.parquet", f"{prefix}{topic}+0+0000000003.snappy.parquet"]
    got = []
    for key in keys:
        data = s3.get(key)
        assert data[:4] == b"PAR1" and data[-4:] == b"PAR1"
        table = pq.read_table(io.BytesIO(data))
        assert table.num_rows == 3
        assert table.schema.field("id").type == "int64"
        got.extend(table.to_pylist())
    assert got == rows


def test_object_store_sink_rewrites_the_same_files_after_a_crash(broker, start_worker, tmp_path):
    """Files are named by their first offset and cut by flush.size: a worker killed
    before committing offsets is replaced by one that reads the records again and
    writes the same objects, with the same records (no duplicate files, no loss)."""
    topic = h.unique("crash")
    h.create_topic(broker.bootstrap, topic, partitions=1)
    produce(broker.bootstrap, topic, [{"id": i} for i in range(20)])
    root = tmp_path / "store"
    group = h.unique("connect")
    # no commit before the kill; the killed worker's sink consumer leaves its group soon
    props = {"offset.flush.interval.ms": "600000", "consumer.session.timeout.ms": "6000",
             "consumer.heartbeat.interval.ms": "1000"}
    w = start_worker(broker, group=group, props=props)
    name = h.unique("files")
    w.create(name, sink_config(topic, "ObjectStoreSink", **{"store.url": f"file://{root}", "flush.size": "5"}))
    w.wait_running(name)
    expected = {f"topics/{topic}/partition=0/{topic}+0+{start:010d}.json":
                b"".join(json.dumps({"id": i}).encode() + b"\n" for i in range(start, start + 5))
                for start in range(0, 20, 5)}
    h.wait_until(lambda: len(local_files(root)) >= 4, DEADLINE, "4 files")
    assert committed(broker.bootstrap, f"connect-{name}", topic, 1) == [-1001]   # nothing committed yet
    w.kill()
    first = {k: v for k, v in local_files(root).items()}
    assert {k: [json.loads(x) for x in v.splitlines()] for k, v in first.items()} == \
        {k: [json.loads(x) for x in v.splitlines()] for k, v in expected.items()}
    mtimes = {k: (root / k).stat().st_mtime_ns for k in first}
    w2 = start_worker(broker, group=group, props=props)
    w2.wait_running(name)
    # the new task reads from the start again and rewrites every file
    h.wait_until(lambda: all((root / k).stat().st_mtime_ns != mtimes[k] for k in first), DEADLINE,
                 "the 4 files rewritten")
    produce(broker.bootstrap, topic, [{"id": i} for i in range(20, 25)])
    h.wait_until(lambda: len(local_files(root)) >= 5, DEADLINE, "a 5th file")
    files = local_files(root)
    assert sorted(files) == sorted(expected) + [f"topics/{topic}/partition=0/{topic}+0+0000000020.json"]
    got = [json.loads(x)["id"] for k in sorted(files) for x in files[k].splitlines()]
    assert got == list(range(25))
