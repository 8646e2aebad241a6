"""Two `vltava connect` workers in one group (a Kafka group with protocol type
`connect`) against a real vltava broker: a connector created on either is seen
by both (writes on the follower are forwarded to the leader), tasks spread over
both, a worker killed with SIGKILL has its tasks restarted on the other after
its session times out, and a restarted worker rejoins and gets work again."""

from __future__ import annotations

import helpers as h
from connect import start_worker  # noqa: F401

SINK = "org.apache.kafka.connect.file.FileStreamSinkConnector"
# a member killed drops out after its session: keep it short (the broker's minimum is 6 s)
GROUP_PROPS = {"heartbeat.interval.ms": 1000, "session.timeout.ms": 6000, "rebalance.timeout.ms": 20000}
FAILOVER_DEADLINE = 90.0


def sink(tmp_path, name, topic, tasks=1):
    return {"connector.class": SINK, "tasks.max": str(tasks), "file": str(tmp_path / f"{name}.txt"), "topics": topic,
            "key.converter": "org.apache.kafka.connect.storage.StringConverter",
            "value.converter": "org.apache.kafka.connect.storage.StringConverter"}


def workers_of(w, name):
    st = w.status(name)
    return sorted(t["worker_id"] for t in (st or {}).get("tasks", []) if t["state"] == "RUNNING")


def test_two_workers_see_each_others_connectors(broker, start_worker, tmp_path):
    w1 = start_worker(broker, group="pair", props=GROUP_PROPS)
    w2 = start_worker(broker, group="pair", props=GROUP_PROPS)
    topic = h.unique("in")
    for i, (creator, reader) in enumerate([(w1, w2), (w2, w1)]):
        name = f"c{i}"
        status, body = creator.post("/connectors", {"name": name, "config": sink(tmp_path, name, topic)})
        assert status == 201, body
        h.wait_until(lambda: name in reader.get("/connectors")[1], 60, f"{name} on the other worker")
        h.wait_until(lambda: reader.get(f"/connectors/{name}")[1]["tasks"] == [{"connector": name, "task": 0}],
                     60, f"{name}'s task seen on the other worker")
    # a second create of the same name on either worker is refused
    for w in (w1, w2):
        status, body = w.post("/connectors", {"name": "c0", "config": sink(tmp_path, "c0", topic)})
        assert (status, body) == (409, {"error_code": 409, "message": "Connector c0 already exists"})
    # deletes and updates through the follower too
    for w in (w1, w2):
        assert w.put("/connectors/c1/config", sink(tmp_path, "c1", topic, tasks=2))[0] == 200
    h.wait_until(lambda: all(len(w.get("/connectors/c1")[1]["tasks"]) == 2 for w in (w1, w2)), 60, "c1 with 2 tasks")
    assert w2.delete("/connectors/c0") == (204, None)
    h.wait_until(lambda: all(w.get("/connectors")[1] == ["c1"] for w in (w1, w2)), 60, "c0 deleted on both")


def test_tasks_spread_and_move_when_a_worker_dies(broker, start_worker, tmp_path):
    w1 = start_worker(broker, group="pair", props=GROUP_PROPS)
    w2 = start_worker(broker, group="pair", props=GROUP_PROPS)
    ids = {f"127.0.0.1:{w1.port}", f"127.0.0.1:{w2.port}"}
    topic = h.unique("in")
    h.create_topic(broker.bootstrap, topic, partitions=2)
    w1.create("spread", sink(tmp_path, "spread", topic, tasks=2))
    w1.wait_running("spread", tasks=2)
    h.wait_until(lambda: set(workers_of(w1, "spread")) == ids, 60, "the two tasks on the two workers")
    assert w2.wait_running("spread", tasks=2)
    # a task restart asked of either worker reaches the worker running the task
    for w in (w1, w2):
        for task in (0, 1):
            assert w.post(f"/connectors/spread/tasks/{task}/restart") == (204, None)
    w1.wait_running("spread", tasks=2)
    assert w2.post("/connectors/spread/tasks/7/restart")[0] == 404

    w2.kill()
    survivor = f"127.0.0.1:{w1.port}"
    h.wait_until(lambda: workers_of(w1, "spread") == [survivor, survivor], FAILOVER_DEADLINE,
                 "both tasks RUNNING on the surviving worker")

    w2.start()
    h.wait_until(lambda: set(workers_of(w1, "spread")) == ids, FAILOVER_DEADLINE,
                 "the restarted worker running a task again")
    assert w2.get("/connectors") == (200, ["spread"])
    assert w2.stop() == 0
    assert w1.stop() == 0
