"""The PostgreSQL connectors (`io.confluent.connect.jdbc.JdbcSourceConnector` /
`JdbcSinkConnector`) end to end: a real broker, real `vltava connect` workers driven
through their REST API, a real PostgreSQL (tests/integration/pg.py), records produced
and read with confluent-kafka in Connect's JSON envelope (JsonConverter,
schemas.enable=true)."""

from __future__ import annotations

import json
import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition

import helpers as h
from connect import start_worker  # noqa: F401
from pg import postgres  # noqa: F401

SOURCE = "io.confluent.connect.jdbc.JdbcSourceConnector"
SINK = "io.confluent.connect.jdbc.JdbcSinkConnector"
JSON = "org.apache.kafka.connect.json.JsonConverter"
WAIT = 120.0   # a deadline, not a verdict
TIMESTAMP = {"type": "int64", "optional": False, "name": "org.apache.kafka.connect.data.Timestamp", "version": 1}


def ident(prefix: str) -> str:
    """A lowercase name fit for a table and a topic."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def json_converters(key_schemas: bool = True) -> dict:
    return {"key.converter": JSON, "key.converter.schemas.enable": str(key_schemas).lower(),
            "value.converter": JSON, "value.converter.schemas.enable": "true"}


def envelope(fields: list, payload: dict | None, name: str | None = None) -> bytes | None:
    """Connect's JSON envelope of a struct; fields: [(name, type or schema dict, optional)]."""
    if payload is None:
        return None
    schema_fields = []
    for field, ty, optional in fields:
        schema = dict(ty) if isinstance(ty, dict) else {"type": ty}
        schema.update({"field": field, "optional": optional})
        schema_fields.append(schema)
    schema = {"type": "struct", "fields": schema_fields, "optional": False}
    if name:
        schema["name"] = name
    return json.dumps({"schema": schema, "payload": payload}).encode()


def produce(bootstrap: str, topic: str, records: list) -> None:
    """records: [(key bytes or None, value bytes or None)], in order, to partition 0."""
    p = h.make_producer(bootstrap)
    errors = []
    for key, value in records:
        p.produce(topic, key=key, value=value, partition=0,
                  on_delivery=lambda err, _msg: errors.append(err) if err else None)
    assert p.flush(60) == 0, "records not delivered"
    assert not errors, errors


def read_all(bootstrap: str, topic: str) -> list:
    """Every record of a topic up to its end offsets now (a topic written steadily may
    never give a partition-EOF event: read to the high watermark instead)."""
    c = h.make_consumer(bootstrap)
    try:
        ends = {}
        for p in h.topic_partitions(bootstrap, topic):
            _low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=30, cached=False)
            if high > 0:
                ends[p] = high
        if not ends:
            return []
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in ends])
        got, done = [], set()
        deadline = time.monotonic() + WAIT
        while len(done) < len(ends):
            assert time.monotonic() < deadline, f"reading {topic} did not reach its end offsets {ends}"
            for m in c.consume(num_messages=1000, timeout=0.2):
                if m.error() is not None:
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"consumer error: {m.error()}")
                if m.partition() in done:
                    continue
                got.append(m)
                if m.offset() >= ends[m.partition()] - 1:
                    done.add(m.partition())
        return got
    finally:
        c.close()


def payloads(bootstrap: str, topic: str) -> list[dict]:
    """The payloads of a topic's JsonConverter (schemas.enable=true) values."""
    out = []
    for m in read_all(bootstrap, topic):
        doc = json.loads(m.value())
        assert set(doc) == {"schema", "payload"}, doc
        out.append(doc["payload"])
    return out


def committed_source_offsets(bootstrap: str, offsets_topic: str, connector: str) -> list:
    """(partition, offset) pairs the worker committed for a connector, latest per partition."""
    latest: dict[str, dict | None] = {}
    for m in read_all(bootstrap, offsets_topic):
        key = json.loads(m.key())
        if key[0] == connector:
            latest[json.dumps(key[1], sort_keys=True)] = json.loads(m.value()) if m.value() else None
    return [(json.loads(k), v) for k, v in latest.items()]


def source_config(postgres, table: str, **extra) -> dict:
    config = {"connector.class": SOURCE, "tasks.max": "1", "connection.url": postgres.jdbc_url,
              "connection.user": "postgres", "table.whitelist": table, "topic.prefix": "pg-",
              "poll.interval.ms": "200"}
    config.update(json_converters())
    config.update(extra)
    return config


def sink_config(postgres, topic: str, **extra) -> dict:
    config = {"connector.class": SINK, "tasks.max": "1", "topics": topic, "connection.url": postgres.jdbc_url,
              "connection.user": "postgres"}
    config.update(json_converters())
    config.update(extra)
    return config


def wait_rows(postgres, table: str, query: str, expected: list, what: str) -> None:
    """Until `query` gives `expected` (the sink may not have created `table` yet)."""
    h.wait_until(lambda: postgres.count(table) > 0 and postgres.rows(query) == expected, WAIT, what, interval=0.3)


# -- source ------------------------------------------------------------------------

def test_source_incrementing_delivers_rows_once_in_order_across_a_restart(broker, start_worker, postgres):
    table = ident("orders")
    topic = f"pg-{table}"
    postgres.sql(f"CREATE TABLE {table} (id serial PRIMARY KEY, item text NOT NULL, qty int, "
                 f"price numeric(10,2), created timestamptz NOT NULL DEFAULT now())")
    postgres.sql(f"INSERT INTO {table} (item, qty, price) SELECT 'item' || g, g, g * 1.5 FROM generate_series(1, 5) g")
    h.create_topic(broker.bootstrap, topic, 1)
    w = start_worker(broker)
    w.create("pg-source", source_config(postgres, table, mode="incrementing", **{"incrementing.column.name": "id"}))
    w.wait_running("pg-source")
    postgres.sql(f"INSERT INTO {table} (item, qty, price) SELECT 'item' || g, NULL, g * 1.5 "
                 f"FROM generate_series(6, 10) g")
    h.wait_until(lambda: len(payloads(broker.bootstrap, topic)) >= 10, WAIT, "10 rows in the topic", interval=0.5)
    got = payloads(broker.bootstrap, topic)
    assert [r["id"] for r in got] == list(range(1, 11))
    assert got[0]["item"] == "item1" and got[0]["qty"] == 1 and got[5]["qty"] is None
    assert isinstance(got[0]["created"], int), got[0]   # Timestamp: epoch milliseconds
    schema = json.loads(read_all(broker.bootstrap, topic)[0].value())["schema"]
    assert schema["name"] == table
    fields = {f["field"]: f for f in schema["fields"]}
    assert fields["id"]["type"] == "int32" and not fields["id"]["optional"]
    assert fields["qty"]["optional"] and fields["price"]["name"] == "org.apache.kafka.connect.data.Decimal"

    # the worker commits offsets (offset.flush.interval.ms=1000): {"incrementing": 10}
    def committed():
        offs = committed_source_offsets(broker.bootstrap, "connect-test-offsets", "pg-source")
        return offs if any((o or {}).get("incrementing") == 10 for _, o in offs) else None
    offs = h.wait_until(committed, WAIT, "offset incrementing=10 committed", interval=0.5)
    partition = offs[0][0]
    assert partition == {"protocol": "1", "table": f"vltava.public.{table}"}, offs

    # a clean stop, rows meanwhile, a new worker: it resumes after row 10
    assert w.stop() == 0
    postgres.sql(f"INSERT INTO {table} (item) VALUES ('item11'), ('item12')")
    w2 = start_worker(broker)
    w2.wait_running("pg-source")
    postgres.sql(f"INSERT INTO {table} (item) VALUES ('marker')")
    h.wait_until(lambda: any(r["item"] == "marker" for r in payloads(broker.bootstrap, topic)), WAIT,
                 "the marker row in the topic", interval=0.5)
    got = payloads(broker.bootstrap, topic)
    assert [r["id"] for r in got] == list(range(1, 14)), "rows missing or produced twice after a clean commit"


def test_source_timestamp_mode_copies_new_and_changed_rows(broker, start_worker, postgres):
    table = ident("users")
    topic = f"pg-{table}"
    postgres.sql(f"CREATE TABLE {table} (id int PRIMARY KEY, name text, "
                 f"updated_at timestamp NOT NULL DEFAULT clock_timestamp())")
    postgres.sql(f"INSERT INTO {table} (id, name) VALUES (1, 'ann'), (2, 'bob'), (3, 'cid')")
    h.create_topic(broker.bootstrap, topic, 1)
    w = start_worker(broker)
    w.create("pg-ts", source_config(postgres, table, mode="timestamp",
                                    **{"timestamp.column.name": "updated_at", "batch.max.rows": "2"}))
    w.wait_running("pg-ts")
    h.wait_until(lambda: len(payloads(broker.bootstrap, topic)) >= 3, WAIT, "3 rows", interval=0.5)
    postgres.sql(f"UPDATE {table} SET name = 'bobby', updated_at = clock_timestamp() WHERE id = 2")
    postgres.sql(f"INSERT INTO {table} (id, name) VALUES (4, 'dee')")
    h.wait_until(lambda: len(payloads(broker.bootstrap, topic)) >= 5, WAIT, "5 rows", interval=0.5)
    got = payloads(broker.bootstrap, topic)
    assert [(r["id"], r["name"]) for r in got] == [(1, "ann"), (2, "bob"), (3, "cid"), (2, "bobby"), (4, "dee")]
    stamps = [r["updated_at"] for r in got]
    assert stamps == sorted(stamps)

    def committed():
        offs = committed_source_offsets(broker.bootstrap, "connect-test-offsets", "pg-ts")
        return offs if any((o or {}).get("timestamp") == stamps[-1] for _, o in offs) else None
    offs = h.wait_until(committed, WAIT, "the last row's timestamp committed", interval=0.5)
    assert set(offs[0][1]) == {"timestamp", "timestamp_nanos"}, offs


def test_source_splits_tables_over_tasks_and_bulk_mode_copies_whole_tables(broker, start_worker, postgres):
    tables = [ident("colors"), ident("sizes")]
    for t in tables:
        postgres.sql(f"CREATE TABLE {t} (code text PRIMARY KEY, rank smallint NOT NULL, ok boolean)")
        postgres.sql(f"INSERT INTO {t} VALUES ('a', 1, true), ('b', 2, NULL), ('c', 3, false)")
        h.create_topic(broker.bootstrap, f"pg-{t}", 1)
    w = start_worker(broker)
    w.create("pg-bulk", source_config(postgres, ",".join(tables), mode="bulk", **{"tasks.max": "2",
                                                                                   "poll.interval.ms": "300"}))
    w.wait_running("pg-bulk", tasks=2)
    status, tasks = w.get("/connectors/pg-bulk/tasks")
    assert status == 200 and sorted(t["config"]["tables"] for t in tasks) == sorted(tables), tasks
    for t in tables:
        h.wait_until(lambda: len(payloads(broker.bootstrap, f"pg-{t}")) >= 6, WAIT, f"two copies of {t}",
                     interval=0.5)
        got = payloads(broker.bootstrap, f"pg-{t}")
        one = [{"code": "a", "rank": 1, "ok": True}, {"code": "b", "rank": 2, "ok": None},
               {"code": "c", "rank": 3, "ok": False}]
        whole = len(got) // 3 * 3
        assert got[:whole] == one * (whole // 3), got


# -- sink ----------------------------------------------------------------------------

ROW_FIELDS = [("id", "int32", False), ("name", "string", True), ("score", "double", False),
              ("active", "boolean", False), ("at", TIMESTAMP, False)]


def test_sink_insert_creates_the_table_from_the_records_schema(broker, start_worker, postgres):
    topic = ident("events")
    h.create_topic(broker.bootstrap, topic, 1)
    at = 1_700_000_000_123
    records = [(None, envelope(ROW_FIELDS, {"id": i, "name": None if i % 5 == 0 else f"n{i}\t\\x",
                                            "score": i / 4, "active": i % 2 == 0, "at": at + i}, "Event"))
               for i in range(50)]
    produce(broker.bootstrap, topic, records)
    w = start_worker(broker)
    w.create("pg-sink", sink_config(postgres, topic, **{"auto.create": "true"}))
    w.wait_running("pg-sink")
    h.wait_until(lambda: postgres.count(topic) == 50, WAIT, "50 rows in the table", interval=0.3)
    rows = postgres.rows(f"SELECT id, name, score, active, "
                         f"to_char(at, 'YYYY-MM-DD HH24:MI:SS.MS') FROM {topic} ORDER BY id")
    assert rows[1] == ["1", "n1\t\\x", "0.25", "f", "2023-11-14 22:13:20.124"]
    assert rows[5][1] is None
    types = dict(postgres.rows(f"SELECT column_name, data_type || ':' || is_nullable FROM information_schema.columns "
                               f"WHERE table_name = '{topic}'"))
    assert types == {"id": "integer:NO", "name": "text:YES", "score": "double precision:NO",
                     "active": "boolean:NO", "at": "timestamp without time zone:NO"}


def test_sink_upsert_by_record_key_collapses_duplicates_and_deletes_tombstones(broker, start_worker, postgres):
    topic = ident("accounts")
    h.create_topic(broker.bootstrap, topic, 1)
    key_fields = [("id", "int64", False)]
    value_fields = [("owner", "string", False), ("balance", "int64", False)]
    records = []
    for round_ in range(3):
        for i in range(10):
            records.append((envelope(key_fields, {"id": i}), envelope(value_fields, {"owner": f"o{i}",
                                                                                     "balance": 100 * round_ + i})))
    records.append((envelope(key_fields, {"id": 3}), None))   # a tombstone: delete id 3
    produce(broker.bootstrap, topic, records)
    w = start_worker(broker)
    w.create("pg-upsert-key", sink_config(postgres, topic, **{
        "auto.create": "true", "insert.mode": "upsert", "pk.mode": "record_key", "delete.enabled": "true",
        "table.name.format": "kv_${topic}", "batch.size": "7"}))
    w.wait_running("pg-upsert-key")
    expected = [[str(i), f"o{i}", str(200 + i)] for i in range(10) if i != 3]
    wait_rows(postgres, f"kv_{topic}", f"SELECT id, owner, balance FROM kv_{topic} ORDER BY id", expected,
              "9 rows with the last balance of each key")
    pk = postgres.rows(f"SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                       f"AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'kv_{topic}'::regclass AND i.indisprimary")
    assert pk == [["id"]]
    # the same records again (a replay): the table does not change
    produce(broker.bootstrap, topic, records + [(envelope(key_fields, {"id": 42}),
                                                 envelope(value_fields, {"owner": "marker", "balance": 0}))])
    wait_rows(postgres, f"kv_{topic}", f"SELECT id, owner, balance FROM kv_{topic} ORDER BY id",
              expected + [["42", "marker", "0"]], "the replay leaves the same rows plus the marker")


def test_sink_upsert_by_record_value(broker, start_worker, postgres):
    topic = ident("prices")
    h.create_topic(broker.bootstrap, topic, 1)
    fields = [("sku", "string", False), ("region", "string", False), ("price", "double", False)]
    postgres.sql(f"CREATE TABLE {topic} (sku text, region text, price double precision, note text, "
                 f"PRIMARY KEY (sku, region))")
    records = [(None, envelope(fields, {"sku": f"s{i % 4}", "region": "eu" if i % 2 else "us", "price": float(i)}))
               for i in range(40)]
    produce(broker.bootstrap, topic, records)
    w = start_worker(broker)
    w.create("pg-upsert-value", sink_config(postgres, topic, **{
        "insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "sku,region"}))
    w.wait_running("pg-upsert-value")
    # i % 4 fixes both sku and region: 4 keys, each last written by i = 36..39
    expected = [["s0", "us", "36"], ["s1", "eu", "37"], ["s2", "us", "38"], ["s3", "eu", "39"]]
    wait_rows(postgres, topic, f"SELECT sku, region, price FROM {topic} ORDER BY sku", expected, "4 rows, last prices")


def test_sink_auto_evolve_adds_optional_columns(broker, start_worker, postgres):
    topic = ident("people")
    h.create_topic(broker.bootstrap, topic, 1)
    v1 = [("id", "int32", False), ("name", "string", False)]
    v2 = v1 + [("email", "string", True)]
    produce(broker.bootstrap, topic, [(None, envelope(v1, {"id": i, "name": f"p{i}"})) for i in range(5)])
    w = start_worker(broker)
    w.create("pg-evolve", sink_config(postgres, topic, **{
        "auto.create": "true", "auto.evolve": "true", "insert.mode": "upsert", "pk.mode": "record_value",
        "pk.fields": "id"}))
    w.wait_running("pg-evolve")
    h.wait_until(lambda: postgres.count(topic) == 5, WAIT, "5 rows", interval=0.3)
    produce(broker.bootstrap, topic, [(None, envelope(v2, {"id": i, "name": f"p{i}", "email": f"p{i}@x"}))
                                      for i in range(3, 8)])
    expected = [[str(i), f"p{i}", f"p{i}@x" if i >= 3 else None] for i in range(8)]
    wait_rows(postgres, topic, f"SELECT id, name, email FROM {topic} ORDER BY id", expected,
              "the email column added and filled")
    nullable = postgres.scalar(f"SELECT is_nullable FROM information_schema.columns "
                               f"WHERE table_name = '{topic}' AND column_name = 'email'")
    assert nullable == "YES"


def test_sink_rides_out_a_database_restart(broker, start_worker, postgres):
    """Connection errors are retriable: the batch is written once the server is back, and
    the consumer offsets only move past what was committed in PostgreSQL."""
    topic = ident("ledger")
    h.create_topic(broker.bootstrap, topic, 1)
    fields = [("id", "int64", False), ("amount", "int32", False)]
    produce(broker.bootstrap, topic, [(None, envelope(fields, {"id": i, "amount": i})) for i in range(100)])
    w = start_worker(broker)
    w.create("pg-restart", sink_config(postgres, topic, **{
        "auto.create": "true", "insert.mode": "upsert", "pk.mode": "record_value", "pk.fields": "id"}))
    w.wait_running("pg-restart")
    h.wait_until(lambda: postgres.count(topic) == 100, WAIT, "the first 100 rows", interval=0.3)
    postgres.stop()
    produce(broker.bootstrap, topic, [(None, envelope(fields, {"id": i, "amount": i})) for i in range(100, 200)])
    postgres.restart()
    h.wait_until(lambda: postgres.count(topic) == 200, WAIT, "the 100 rows written while the server was down",
                 interval=0.3)
    assert postgres.scalar(f"SELECT sum(amount) FROM {topic}") == str(sum(range(200)))
    st = w.status("pg-restart")
    assert st["tasks"][0]["state"] == "RUNNING", st


# -- configuration -------------------------------------------------------------------

def test_bad_configs_are_refused_with_the_key_named(broker, start_worker, postgres):
    w = start_worker(broker)
    config = sink_config(postgres, "t")
    del config["connection.url"]
    status, body = w.put("/connectors/pg-bad/config", config)
    assert status == 400, (status, body)
    assert "connection.url" in json.dumps(body), body

    config = source_config(postgres, "t")   # no mode
    status, body = w.put(f"/connector-plugins/{SOURCE}/config/validate", config)
    assert status == 200, (status, body)
    assert body["error_count"] >= 1, body
    errors = {c["value"]["name"]: c["value"]["errors"] for c in body["configs"]}
    assert errors["mode"] and "mode" in errors["mode"][0], errors

    config = source_config(postgres, "t", mode="incrementing")   # no incrementing.column.name
    status, body = w.put(f"/connector-plugins/{SOURCE}/config/validate", config)
    errors = {c["value"]["name"]: c["value"]["errors"] for c in body["configs"]}
    assert errors.get("incrementing.column.name"), body

    config = sink_config(postgres, "t", **{"insert.mode": "upsert"})   # upsert without a primary key
    status, body = w.put("/connectors/pg-bad2/config", config)
    assert status == 400 and "pk.mode" in json.dumps(body), (status, body)
    status, _ = w.get("/connectors/pg-bad2")
    assert status == 404
