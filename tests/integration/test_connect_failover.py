"""Two `vltava connect` workers run a file -> topic -> PostgreSQL pipeline; one is SIGKILLed mid-way.
Its tasks move to the other worker, and the table ends with exactly the file's rows: nothing lost,
and the duplicates at-least-once delivery allows after a crash are removed by the sink's upsert."""

from __future__ import annotations

import json
import threading
import time

import pytest

import helpers as h
from connect import start_worker  # noqa: F401 - the worker fixture
from pg import postgres  # noqa: F401 - the PostgreSQL fixture

STRING = "org.apache.kafka.connect.storage.StringConverter"
JSON = "org.apache.kafka.connect.json.JsonConverter"
ROW_SCHEMA = {"type": "struct", "name": "row", "optional": False, "fields": [
    {"field": "id", "type": "int64", "optional": False},
    {"field": "name", "type": "string", "optional": False}]}


def line(i: int) -> str:
    """A row as JsonConverter's envelope (schemas.enable=true), one per line of the source file."""
    return json.dumps({"schema": ROW_SCHEMA, "payload": {"id": i, "name": f"row-{i}"}}, separators=(",", ":"))


@pytest.mark.timeout(400)
def test_a_killed_workers_tasks_move_and_the_table_ends_with_exactly_the_source_rows(
        broker, start_worker, postgres, tmp_path):
    total, topic, table = 6000, h.unique("rows"), h.unique("rows").replace("-", "_")
    h.create_topic(broker.bootstrap, topic, partitions=2)
    src = tmp_path / "rows.txt"
    src.write_text("")
    # workers notice a dead member after session.timeout.ms
    props = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "1000"}
    w1 = start_worker(broker, group="failover", props=props)
    w2 = start_worker(broker, group="failover", props=props)

    w1.create("rows-src", {"connector.class": "FileStreamSource", "file": str(src), "topic": topic,
                           "key.converter": STRING, "value.converter": STRING})
    w1.create("rows-sink", {"connector.class": "io.confluent.connect.jdbc.JdbcSinkConnector", "tasks.max": "2",
                            "topics": topic, "connection.url": postgres.jdbc_url,
                            "connection.user": "postgres", "table.name.format": table,
                            "auto.create": "true", "insert.mode": "upsert",
                            "pk.mode": "record_value", "pk.fields": "id",
                            "key.converter": STRING, "value.converter": JSON,
                            "value.converter.schemas.enable": "true"})
    w1.wait_running("rows-src", tasks=1)
    st = w1.wait_running("rows-sink", tasks=2)
    # the two sink tasks are spread over the two workers
    assert {t["worker_id"] for t in st["tasks"]} == {w1.url[7:], w2.url[7:]}, st

    errors: list = []

    def write_rows():
        try:
            with src.open("a") as f:
                for start in range(0, total, 100):
                    f.write("".join(line(i) + "\n" for i in range(start, start + 100)))
                    f.flush()
                    time.sleep(0.03)
        except Exception as e:  # noqa: BLE001 - re-raised by the test
            errors.append(e)

    writer = threading.Thread(target=write_rows)
    writer.start()
    try:
        def some_rows():
            try:
                return postgres.count(table) >= 1000
            except Exception:  # noqa: BLE001 - the sink creates the table with its first rows
                return False
        h.wait_until(some_rows, 120, "the first 1000 rows in PostgreSQL")
        # kill the worker that runs the source, mid-stream
        src_owner = w1.status("rows-src")["tasks"][0]["worker_id"]
        victim, survivor = (w1, w2) if w1.url.endswith(src_owner) else (w2, w1)
        victim.kill()
    finally:
        writer.join()
    assert not errors, errors

    # every task runs on the survivor
    def moved():
        for name, n in (("rows-src", 1), ("rows-sink", 2)):
            st = survivor.status(name)
            ts = (st or {}).get("tasks", [])
            if len(ts) != n or not all(t["state"] == "RUNNING" and survivor.url.endswith(t["worker_id"]) for t in ts):
                return None
        return True
    h.wait_until(moved, 120, "every task RUNNING on the surviving worker")

    h.wait_until(lambda: postgres.count(table) == total, 180,
                 f"{total} rows in {table}", interval=1.0)
    rows = postgres.rows(f'SELECT count(*), count(DISTINCT id), min(id), max(id) FROM "{table}"')
    assert rows == [[str(total), str(total), "0", str(total - 1)]], rows
    bad = postgres.scalar(f"SELECT count(*) FROM \"{table}\" WHERE name <> 'row-' || id")
    assert bad == "0"
