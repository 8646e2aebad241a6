"""Kafka Connect's REST API on `vltava connect`, driven as Connect's documentation
shows (JSON over HTTP), against a real vltava broker: worker info, the three
internal topics and the config topic's records, connector create/list/get/
config/update/delete, validation errors with Connect's messages, error bodies,
pause/resume/stop/restart, KIP-875 offsets, the connector plugins, and the
`vltava connector` CLI."""

from __future__ import annotations

import json
import subprocess
import uuid

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import ConfigResource, ResourceType

import helpers as h
from conftest import vltava_bin
from connect import start_worker  # noqa: F401

SOURCE = "org.apache.kafka.connect.file.FileStreamSourceConnector"
SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"
# the converters every connector here uses (the worker's default is JsonConverter)
STRINGS = {"key.converter": "org.apache.kafka.connect.storage.StringConverter",
           "value.converter": "org.apache.kafka.connect.storage.StringConverter"}
NOT_FOUND = lambda name: {"error_code": 404, "message": f"Connector {name} not found"}  # noqa: E731


def sink_config(tmp_path, topic="t-in", **extra):
    cfg = {"connector.class": SINK, "tasks.max": "1", "file": str(tmp_path / f"sink-{uuid.uuid4().hex[:6]}.txt"),
           "topics": topic, **STRINGS}
    cfg.update({k: str(v) for k, v in extra.items()})
    return cfg


def source_config(tmp_path, topic="t-out", lines=()):
    f = tmp_path / f"source-{uuid.uuid4().hex[:6]}.txt"
    f.write_text("".join(f"{line}\n" for line in lines))
    return {"connector.class": SOURCE, "tasks.max": "1", "file": str(f), "topic": topic, **STRINGS}


def read_topic(bootstrap, topic, partition=0, timeout=30.0):
    """Every record of one partition: [(key, value-or-None)]."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": h.unique("g"), "enable.auto.commit": False,
                  "enable.partition.eof": True})
    try:
        c.assign([TopicPartition(topic, partition, 0)])
        out = []
        deadline_msgs = h.wait_until(lambda: True, 1, "")  # noqa: F841
        import time
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is None:
                continue
            if m.error():
                if m.error().code() == -191:  # _PARTITION_EOF
                    return out
                raise AssertionError(m.error())
            out.append((m.key().decode(), None if m.value() is None else json.loads(m.value())))
        raise AssertionError(f"did not reach the end of {topic}")
    finally:
        c.close()


def test_worker_info_and_internal_topics(broker, start_worker):
    w = start_worker(broker, props={"offset.storage.partitions": 4, "status.storage.partitions": 3})
    status, info = w.get("/")
    assert status == 200, info
    assert set(info) >= {"version", "commit", "kafka_cluster_id"}
    assert info["kafka_cluster_id"]
    group = w.props["group.id"]
    parts = {f"{group}-configs": 1, f"{group}-offsets": 4, f"{group}-status": 3}
    for topic, n in parts.items():
        h.wait_for_topic(broker.bootstrap, topic, n)
    admin = h.admin(broker.bootstrap)
    resources = [ConfigResource(ResourceType.TOPIC, t) for t in parts]
    for res, fut in admin.describe_configs(resources).items():
        assert fut.result(timeout=30)["cleanup.policy"].value == "compact", res


def test_create_list_get_update_delete(broker, start_worker, tmp_path):
    w = start_worker(broker)
    cfg = sink_config(tmp_path)
    status, body = w.post("/connectors", {"name": "s1", "config": cfg})
    assert status == 201, body
    assert body["name"] == "s1" and body["type"] == "sink"
    assert body["config"] == {**cfg, "name": "s1"}
    status, body = w.post("/connectors", {"name": "s1", "config": cfg})
    assert (status, body) == (409, {"error_code": 409, "message": "Connector s1 already exists"})

    assert w.get("/connectors") == (200, ["s1"])
    # the leader writes one task config and its commit
    info = h.wait_until(lambda: (lambda r: r[1] if r[0] == 200 and r[1]["tasks"] else None)(w.get("/connectors/s1")),
                        60, "s1's task")
    assert info["tasks"] == [{"connector": "s1", "task": 0}]
    assert w.get("/connectors/s1/config") == (200, {**cfg, "name": "s1"})
    status, tasks = w.get("/connectors/s1/tasks")
    assert status == 200 and tasks[0]["id"] == {"connector": "s1", "task": 0}
    assert tasks[0]["config"]["file"] == cfg["file"]

    # PUT creates (201) or updates (200)
    cfg2 = dict(cfg, **{"tasks.max": "2"})
    status, body = w.put("/connectors/s1/config", cfg2)
    assert status == 200 and body["config"]["tasks.max"] == "2", body
    h.wait_until(lambda: len(w.get("/connectors/s1")[1]["tasks"]) == 2, 60, "two tasks after the update")
    status, body = w.put("/connectors/s2/config", sink_config(tmp_path))
    assert status == 201, body
    # PATCH merges (KIP-477); a null removes a key, and the result is validated
    status, body = w.request("PATCH", "/connectors/s2/config", {"tasks.max": "3", "errors.log.enable": "true"})
    assert status == 200 and body["config"]["tasks.max"] == "3" and body["config"]["errors.log.enable"] == "true", body
    status, body = w.request("PATCH", "/connectors/s2/config", {"errors.log.enable": None, "file": None})
    assert status == 400 and "Missing required configuration \"file\"" in body["message"], body
    status, body = w.request("PATCH", "/connectors/s2/config", {"errors.log.enable": None})
    assert status == 200 and "errors.log.enable" not in body["config"], body
    assert w.request("PATCH", "/connectors/none/config", {"a": "b"}) == (404, NOT_FOUND("none"))
    status, listed = w.get("/connectors?expand=status&expand=info")
    assert status == 200 and set(listed) == {"s1", "s2"}
    assert listed["s1"]["info"]["name"] == "s1" and listed["s1"]["status"]["type"] == "sink"

    # the config topic holds Connect's records
    records = read_topic(broker.bootstrap, f"{w.props['group.id']}-configs")
    by_key = {}
    for k, v in records:
        by_key[k] = v
    assert by_key["connector-s1"] == {"properties": {**cfg2, "name": "s1"}}
    assert by_key["commit-s1"] == {"tasks": 2}
    assert by_key["task-s1-1"]["properties"]["file"] == cfg["file"]

    # and the status topic Connect's status records
    def connector_status():
        for partition in range(5):
            for k, v in read_topic(broker.bootstrap, f"{w.props['group.id']}-status", partition):
                if k == "status-connector-s1" and v is not None:
                    return v
        return None
    st = h.wait_until(connector_status, 60, "status-connector-s1 in the status topic")
    assert st == {"state": "RUNNING", "trace": None, "worker_id": f"127.0.0.1:{w.port}", "generation": st["generation"]}
    assert isinstance(st["generation"], int)

    assert w.delete("/connectors/s1") == (204, None)
    assert w.get("/connectors/s1") == (404, NOT_FOUND("s1"))
    assert w.get("/connectors/s1/status") == (404, NOT_FOUND("s1"))
    assert w.delete("/connectors/s1") == (404, NOT_FOUND("s1"))
    assert w.get("/connectors") == (200, ["s2"])
    records = read_topic(broker.bootstrap, f"{w.props['group.id']}-configs")
    assert ("connector-s1", None) in records


def test_validation_errors_and_bad_requests(broker, start_worker, tmp_path):
    w = start_worker(broker)
    # validate: a sink with neither topics nor topics.regex, and a bad tasks.max
    status, body = w.put(f"/connector-plugins/{SINK}/config/validate",
                         {"connector.class": SINK, "name": "v", "file": "/tmp/x", "tasks.max": "zero"})
    assert status == 200, body
    assert body["name"] == SINK and body["error_count"] == 3, body
    errors = {c["value"]["name"]: c["value"]["errors"] for c in body["configs"] if c["value"]["errors"]}
    assert errors["topics"] == ["Must configure one of topics or topics.regex"]
    assert errors["tasks.max"] == ["Invalid value zero for configuration tasks.max: Not a int"]
    names = {c["definition"]["name"] for c in body["configs"]}
    assert {"file", "name", "connector.class", "tasks.max", "topics", "topics.regex", "errors.tolerance",
            "errors.deadletterqueue.topic.name", "key.converter", "transforms"} <= names
    status, body = w.put("/connector-plugins/FileStreamSource/config/validate",
                         {"file": "/tmp/x", "topic": "a,b", "name": "v"})
    assert status == 200 and body["error_count"] == 1, body
    assert "exactly.once.support" in {c["definition"]["name"] for c in body["configs"]}
    # the body's connector.class must be the URL's
    status, body = w.put("/connector-plugins/FileStreamSource/config/validate", {"connector.class": SINK})
    assert status == 400 and body["error_code"] == 400, body

    # creation validates first
    cfg = sink_config(tmp_path)
    del cfg["file"]
    status, body = w.post("/connectors", {"name": "bad", "config": cfg})
    assert status == 400, body
    assert body == {"error_code": 400, "message": (
        "Connector configuration is invalid and contains the following 1 error(s):\n"
        "Missing required configuration \"file\" which has no default value.\n"
        "You can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`")}
    # transforms are validated with the connector
    status, body = w.put("/connectors/bad/config", dict(sink_config(tmp_path), transforms="route",
                                                         **{"transforms.route.type": "NoSuchTransform"}))
    assert status == 400 and (
        "Invalid value NoSuchTransform for configuration transforms.route.type: Class NoSuchTransform could not be "
        "found.") in body["message"], body
    status, body = w.put(f"/connector-plugins/{SINK}/config/validate",
                         dict(sink_config(tmp_path), name="v", transforms="a", **{"transforms.a.type": "Nope"}))
    assert status == 200 and body["error_count"] == 1, body
    assert [c["value"]["errors"] for c in body["configs"] if c["value"]["name"] == "transforms.a.type"] == [
        ["Invalid value Nope for configuration transforms.a.type: Class Nope could not be found."]]
    status, body = w.put("/connectors/bad/config", dict(cfg, **{"connector.class": "NoSuchConnector"}))
    assert status == 400 and body["message"].startswith(
        "Failed to find any class that implements Connector and which name matches NoSuchConnector"), body
    status, body = w.put("/connectors/bad/config", dict(sink_config(tmp_path), name="other"))
    assert (status, body) == (400, {"error_code": 400, "message":
                                    "Connector name configuration (other) doesn't match connector name in the URL (bad)"})
    # bad JSON, not a JSON object
    req_status, body = w.request("POST", "/connectors", None)
    assert req_status == 400 and body["error_code"] == 400, body
    import urllib.request
    import urllib.error
    r = urllib.request.Request(w.url + "/connectors", data=b"{not json", method="POST",
                               headers={"Content-Type": "application/json"})
    try:
        urllib.request.urlopen(r, timeout=30)
        raise AssertionError("bad JSON accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 400
        assert json.loads(e.read())["error_code"] == 400
    status, body = w.put("/connectors/x/config", ["a"])
    assert status == 400 and body["error_code"] == 400, body
    assert w.get("/connectors") == (200, [])
    # what no route takes answers in Connect's error body too
    assert w.request("DELETE", "/connectors") == (405, {"error_code": 405, "message": "HTTP 405 Method Not Allowed"})
    status, body = w.get("/no/such/path")
    assert status == 404 and body["error_code"] == 404, body
    status, body = w.post("/connectors/x/restart?includeTasks=maybe")
    assert status == 400 and body["error_code"] == 400, body
    # unknown connectors and tasks
    for path in ("/connectors/nope", "/connectors/nope/config", "/connectors/nope/status", "/connectors/nope/tasks",
                 "/connectors/nope/offsets"):
        assert w.get(path) == (404, NOT_FOUND("nope")), path
    for path in ("/connectors/nope/pause", "/connectors/nope/resume", "/connectors/nope/stop"):
        assert w.put(path) == (404, NOT_FOUND("nope")), path
    assert w.post("/connectors/nope/restart") == (404, NOT_FOUND("nope"))


def test_connector_plugins(broker, start_worker):
    w = start_worker(broker)
    status, plugins = w.get("/connector-plugins")
    assert status == 200
    classes = {p["class"]: p["type"] for p in plugins}
    assert classes[SOURCE] == "source" and classes[SINK] == "sink"
    assert all(p["type"] in ("source", "sink") for p in plugins)
    status, everything = w.get("/connector-plugins?connectorsOnly=false")
    assert status == 200
    kinds = {(p["class"], p["type"]) for p in everything}
    assert ("org.apache.kafka.connect.storage.StringConverter", "converter") in kinds
    assert ("org.apache.kafka.connect.json.JsonConverter", "converter") in kinds
    assert ("org.apache.kafka.connect.storage.SimpleHeaderConverter", "header_converter") in kinds


def test_pause_resume_stop_restart(broker, start_worker, tmp_path):
    w = start_worker(broker)
    topic = h.unique("lines")
    w.create("src", source_config(tmp_path, topic, ["a", "b"]))
    w.wait_running("src", tasks=1)

    assert w.put("/connectors/src/pause") == (202, None)
    h.wait_until(lambda: (s := w.status("src")) and s["connector"]["state"] == "PAUSED"
                 and [t["state"] for t in s["tasks"]] == ["PAUSED"], 60, "src PAUSED")
    assert w.put("/connectors/src/resume") == (202, None)
    w.wait_running("src", tasks=1)

    status, body = w.post("/connectors/src/restart")
    assert (status, body) == (204, None)
    status, body = w.post("/connectors/src/restart?includeTasks=true&onlyFailed=false")
    assert status == 202, body
    assert body["name"] == "src" and body["connector"]["state"] == "RESTARTING"
    assert [t["state"] for t in body["tasks"]] == ["RESTARTING"]
    w.wait_running("src", tasks=1)
    status, body = w.post("/connectors/src/restart?includeTasks=true&onlyFailed=true")
    assert status == 202 and body["connector"]["state"] == "RUNNING", body
    assert w.post("/connectors/src/tasks/0/restart") == (204, None)
    w.wait_running("src", tasks=1)
    status, t0 = w.get("/connectors/src/tasks/0/status")
    assert status == 200 and t0["id"] == 0 and t0["worker_id"] == f"127.0.0.1:{w.port}", t0

    assert w.put("/connectors/src/stop") == (202, None)
    h.wait_until(lambda: (s := w.status("src")) and s["connector"]["state"] == "STOPPED" and s["tasks"] == [],
                 60, "src STOPPED with no tasks")
    assert w.get("/connectors/src")[1]["tasks"] == []
    records = dict(read_topic(broker.bootstrap, f"{w.props['group.id']}-configs"))
    assert records["target-state-src"] == {"state": "STOPPED", "state.v2": "STOPPED"}
    assert records["commit-src"] == {"tasks": 0}
    assert w.put("/connectors/src/resume") == (202, None)
    w.wait_running("src", tasks=1)


def test_offsets_of_a_stopped_connector(broker, start_worker, tmp_path):
    w = start_worker(broker)
    topic = h.unique("in")
    h.create_topic(broker.bootstrap, topic, partitions=2)
    p = h.make_producer(broker.bootstrap)
    for i in range(5):
        p.produce(topic, value=f"line {i}".encode(), partition=0)
    p.flush(30)
    w.create("snk", sink_config(tmp_path, topic))
    w.wait_running("snk", tasks=1)
    h.wait_until(lambda: {"partition": {"kafka_topic": topic, "kafka_partition": 0}, "offset": {"kafka_offset": 5}}
                 in w.get("/connectors/snk/offsets")[1]["offsets"], 60, "the sink's committed offset")

    # only a STOPPED connector's offsets can change
    body = {"offsets": [{"partition": {"kafka_topic": topic, "kafka_partition": 0}, "offset": {"kafka_offset": 2}}]}
    status, answer = w.request("PATCH", "/connectors/snk/offsets", body)
    assert (status, answer) == (400, {"error_code": 400, "message": (
        "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the "
        "specified connector by issuing a 'PUT' request to the '/connectors/snk/stop' endpoint")})
    assert w.put("/connectors/snk/stop") == (202, None)
    h.wait_until(lambda: w.status("snk")["connector"]["state"] == "STOPPED", 60, "snk STOPPED")
    status, answer = w.request("PATCH", "/connectors/snk/offsets", body)
    assert (status, answer) == (200, {"message": "The offsets for this connector have been altered successfully"})
    status, got = w.get("/connectors/snk/offsets")
    assert status == 200 and body["offsets"][0] in got["offsets"], got
    status, answer = w.request("PATCH", "/connectors/snk/offsets", {"offsets": []})
    assert status == 400 and answer["error_code"] == 400
    status, answer = w.delete("/connectors/snk/offsets")
    assert (status, answer) == (200, {"message": "The offsets for this connector have been reset successfully"})
    assert w.get("/connectors/snk/offsets") == (200, {"offsets": []})

    # a source's offsets: {"partition": {...}, "offset": {...}} as the connector writes them
    w.create("src", source_config(tmp_path, h.unique("out"), ["x", "y"]))
    w.wait_running("src", tasks=1)
    status, got = h.wait_until(lambda: (r := w.get("/connectors/src/offsets")) and r[1]["offsets"] and r, 60,
                               "the source's offsets")
    assert status == 200 and set(got["offsets"][0]) == {"partition", "offset"}, got


def test_file_pipeline_through_a_topic(broker, start_worker, tmp_path):
    w = start_worker(broker)
    topic = h.unique("pipe")
    lines = [f"line {i}" for i in range(50)]
    w.create("src", source_config(tmp_path, topic, lines))
    out = tmp_path / "out.txt"
    w.create("snk", {"connector.class": SINK, "file": str(out), "topics": topic, **STRINGS})
    w.wait_running("src")
    w.wait_running("snk")
    h.wait_until(lambda: out.exists() and len(out.read_text().splitlines()) >= len(lines), 90, "the sink file")
    assert out.read_text().splitlines()[:len(lines)] == lines


def test_vltava_connector_cli(broker, start_worker, tmp_path):
    w = start_worker(broker)
    props = tmp_path / "sink.properties"
    cfg = sink_config(tmp_path, name="cli")
    props.write_text("".join(f"{k}={v}\n" for k, v in cfg.items()))

    def cli(*args):
        return subprocess.run([vltava_bin(), "connector", *args, "--url", w.url], capture_output=True, text=True,
                              timeout=120)

    r = cli("create", str(props))
    assert r.returncode == 0, r.stderr
    assert "cli" in r.stdout
    assert w.get("/connectors") == (200, ["cli"])
    r = cli("list")
    assert r.returncode == 0 and r.stdout.startswith("cli\tsink"), (r.stdout, r.stderr)
    r = cli("status", "cli", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["name"] == "cli"
    r = cli("delete", "cli")
    assert r.returncode == 0, r.stderr
    assert w.get("/connectors") == (200, [])
    r = cli("status", "cli")
    assert r.returncode != 0 and "Connector cli not found" in r.stderr, (r.stdout, r.stderr)


def test_worker_over_sasl(start_broker, start_worker, tmp_path):
    """The worker's group connection and its Kafka clients log in (SASL PLAIN) with the worker's client keys."""
    from test_sasl import start_sasl_broker
    broker, ports = start_sasl_broker(start_broker)
    w = start_worker(f"127.0.0.1:{ports['SASL_PLAINTEXT']}", props={
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
        "sasl.username": "alice", "sasl.password": "alice-secret"})
    topic = h.unique("lines")
    w.create("src", source_config(tmp_path, topic, ["a", "b"]))
    w.wait_running("src", tasks=1)
    assert w.get("/connectors") == (200, ["src"])
    assert w.stop() == 0
