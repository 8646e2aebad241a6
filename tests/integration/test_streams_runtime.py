"""vltava-streams' runtime (KafkaStreams) end to end: a real broker and the `runtime_check`
example (a Processor-API count per key in a persistent, logged store; every new count written
to the output). Counts stay exact across a clean restart (the state restored from the changelog,
also with the state directory deleted), under exactly_once_v2 across SIGKILLs (read_committed
output), and when one of two instances sharing the partitions is killed.

The example binary comes from VLTAVA_STREAMS_EXAMPLES (default target/release/examples; build it
with `cargo build --release -p vltava-streams --examples`)."""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

import helpers as h
from conftest import REPO_ROOT

WAIT_S = 120  # deadlines, not verdicts
# short group sessions, so that a killed instance's partitions move within seconds
FAST_GROUPS = {
    "group.consumer.min.session.timeout.ms": 3000,
    "group.consumer.session.timeout.ms": 4000,
    "group.consumer.min.heartbeat.interval.ms": 300,
    "group.consumer.heartbeat.interval.ms": 300,
    "transaction.abort.timed.out.transaction.cleanup.interval.ms": 1000,
}


def example_bin() -> str:
    d = os.environ.get("VLTAVA_STREAMS_EXAMPLES") or str(REPO_ROOT / "target" / "release" / "examples")
    path = os.path.join(d, "runtime_check")
    if not os.access(path, os.X_OK):
        pytest.fail(f"{path} missing: build it with `cargo build --release -p vltava-streams --examples` "
                    "or set VLTAVA_STREAMS_EXAMPLES")
    return path


class App:
    """One runtime_check process; its stderr goes to a log file."""

    def __init__(self, broker, app_id: str, guarantee: str, inp: str, out: str, state_dir: Path,
                 log: Path, threads: int = 1, server: str | None = None, extra: dict | None = None):
        cmd = [example_bin(), "--brokers", broker.bootstrap, "--application-id", app_id,
               "--processing-guarantee", guarantee, "--input", inp, "--output", out,
               "--state-dir", str(state_dir), "--threads", str(threads)]
        if server:
            cmd += ["--application-server", server]
        conf = {"commit.interval.ms": "200", "producer.transaction.timeout.ms": "10000",
                **(extra or {})}
        for k, v in conf.items():
            cmd += ["--config", f"{k}={v}"]
        self.log = log
        self.offset = log.stat().st_size if log.exists() else 0
        f = open(log, "ab")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=f, stderr=f,
                                     env={**os.environ, "RUST_LOG": "info"})
        f.close()

    def text(self) -> str:
        """This run's part of the log."""
        with open(self.log, "rb") as f:
            f.seek(self.offset)
            return f.read().decode(errors="replace")

    def wait_log(self, needle: str, timeout: float = WAIT_S) -> None:
        def seen():
            if self.proc.poll() is not None:
                raise AssertionError(f"the app exited ({self.proc.returncode}):\n{self.text()[-4000:]}")
            return needle in self.text()
        h.wait_until(seen, timeout, f"{needle!r} in the app's log")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the app did not stop on SIGTERM:\n{self.text()[-4000:]}")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


# instances killed and restarted, outputs read to exact counts: deadlines (WAIT_S, 180 s), not verdicts
pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def apps(request):
    started: list[App] = []
    yield started
    for a in started:
        if a.proc.poll() is None:
            a.kill()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed and started:
        print(f"\n--- last app's log ({started[-1].log}) ---\n{started[-1].text()[-8000:]}")


def produce(bootstrap: str, topic: str, keys: list[str], start: int, n: int) -> None:
    """n records, keys round-robin over `keys`, Java's default partitioner."""
    p = Producer({"bootstrap.servers": bootstrap, "partitioner": "murmur2_random", "linger.ms": 5,
                  "enable.idempotence": True})
    for i in range(start, start + n):
        p.produce(topic, key=keys[i % len(keys)].encode(), value=f"v{i}".encode())
        if i % 1000 == 0:
            p.poll(0)
    assert p.flush(60) == 0


def read_counts(bootstrap: str, topic: str, want: dict[str, int], timeout: float = WAIT_S,
                committed: bool = True) -> dict[str, list[int]]:
    """Every count written per key (in order), read until each key's last count is `want`'s
    (then two seconds more, to see anything written past it)."""
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": h.unique("rd"),
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed" if committed else "read_uncommitted"})
    c.subscribe([topic])
    seen: dict[str, list[int]] = defaultdict(list)
    deadline = time.monotonic() + timeout
    done_at = None
    try:
        while time.monotonic() < deadline:
            m = c.poll(0.2)
            if m is not None and not m.error():
                seen[m.key().decode()].append(struct.unpack(">q", m.value())[0])
            if done_at is None and all(seen.get(k, [0])[-1] >= n for k, n in want.items()):
                done_at = time.monotonic()
            if done_at is not None and time.monotonic() - done_at > 2.0:
                break
    finally:
        c.close()
    return dict(seen)


def assert_exact(seen: dict[str, list[int]], want: dict[str, int]) -> None:
    """Each key's counts are exactly 1..n: none lost, none twice."""
    bad = {k: (want[k], seen.get(k, [])[-5:], len(seen.get(k, []))) for k in want
           if seen.get(k, []) != list(range(1, want[k] + 1))}
    assert not bad, f"keys whose counts are not exactly 1..n (want, last counts, how many): {bad}"


def test_counts_are_exact_after_clean_restarts_and_a_deleted_state_dir(start_broker, apps, tmp_path):
    broker = start_broker(FAST_GROUPS)
    inp, out, app_id = h.unique("in"), h.unique("out"), h.unique("rt")
    h.create_topic(broker.bootstrap, inp, partitions=4)
    keys = [f"k{i}" for i in range(20)]
    state, log = tmp_path / "state", tmp_path / "app.log"

    produce(broker.bootstrap, inp, keys, 0, 2000)
    a = App(broker, app_id, "at_least_once", inp, out, state, log)
    apps.append(a)
    a.wait_log("stream thread 1 tasks: [0_0, 0_1, 0_2, 0_3]")
    read_counts(broker.bootstrap, out, {k: 100 for k in keys})
    assert a.stop() == 0
    assert "streams closed" in a.text()
    changelog = f"{app_id}-counts-changelog"
    assert h.topic_partitions(broker.bootstrap, changelog) is not None

    produce(broker.bootstrap, inp, keys, 2000, 2000)
    b = App(broker, app_id, "at_least_once", inp, out, state, log)
    apps.append(b)
    b.wait_log("stream thread 1 tasks: [0_0, 0_1, 0_2, 0_3]")
    # a clean close checkpointed the stores: nothing to replay
    restored = [ln for ln in b.text().splitlines() if "restored counts for task" in ln]
    assert len(restored) == 4 and all(": 0 records from " in ln for ln in restored), restored
    assert_exact(read_counts(broker.bootstrap, out, {k: 200 for k in keys}), {k: 200 for k in keys})
    assert b.stop() == 0

    # without its state directory the instance rebuilds the counts from the changelog
    shutil.rmtree(state)
    produce(broker.bootstrap, inp, keys, 4000, 1000)
    c = App(broker, app_id, "at_least_once", inp, out, state, log)
    apps.append(c)
    c.wait_log("stream thread 1 tasks: [0_0, 0_1, 0_2, 0_3]")
    restored = [ln for ln in c.text().splitlines() if "restored counts for task" in ln]
    assert len(restored) == 4, restored
    total = sum(int(ln.split(": ")[-1].split(" records")[0]) for ln in restored)
    assert total >= len(keys), restored
    assert_exact(read_counts(broker.bootstrap, out, {k: 250 for k in keys}), {k: 250 for k in keys})
    assert c.stop() == 0


def test_exactly_once_survives_sigkills(start_broker, apps, tmp_path):
    broker = start_broker(FAST_GROUPS)
    inp, out, app_id = h.unique("in"), h.unique("out"), h.unique("eos")
    h.create_topic(broker.bootstrap, inp, partitions=4)
    keys = [f"k{i}" for i in range(25)]
    state, log = tmp_path / "state", tmp_path / "app.log"
    total, batch = 20000, 1000
    # the input keeps coming while instances are killed
    errors: list[BaseException] = []

    def feed():
        try:
            for start in range(0, total, batch):
                produce(broker.bootstrap, inp, keys, start, batch)
                time.sleep(0.4)
        except BaseException as e:  # noqa: BLE001 - reported by the test below
            errors.append(e)
    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    def written() -> int:
        n = 0
        for p in range(4):
            try:
                n += h.watermarks(broker.bootstrap, out, p)[1]
            except Exception:   # the output topic (auto-created) or this partition does not exist
                pass
        return n

    kills = 0
    while feeder.is_alive() or kills < 3:
        a = App(broker, app_id, "exactly_once_v2", inp, out, state, log, threads=2)
        apps.append(a)
        a.wait_log("tasks: [0_")
        # kill it mid-run, once it has written more (a condition, not a time: a busy machine is slow)
        before = written()
        h.wait_until(lambda: written() > before, WAIT_S, f"instance {kills + 1} writing output before its kill")
        a.kill()
        kills += 1
    feeder.join()
    assert not errors, errors
    last = App(broker, app_id, "exactly_once_v2", inp, out, state, log, threads=2)
    apps.append(last)
    want = {k: total // len(keys) for k in keys}
    assert_exact(read_counts(broker.bootstrap, out, want, timeout=180), want)
    assert last.stop() == 0
    assert "streams closed" in last.text()
    # the crashes left aborted transactions: a read_uncommitted reader sees more than the committed counts
    assert kills >= 3


def test_two_instances_share_partitions_and_one_takes_over(start_broker, apps, tmp_path):
    broker = start_broker(FAST_GROUPS)
    inp, out, app_id = h.unique("in"), h.unique("out"), h.unique("two")
    h.create_topic(broker.bootstrap, inp, partitions=4)
    keys = [f"k{i}" for i in range(40)]
    produce(broker.bootstrap, inp, keys, 0, 4000)
    a = App(broker, app_id, "exactly_once_v2", inp, out, tmp_path / "a", tmp_path / "a.log")
    b = App(broker, app_id, "exactly_once_v2", inp, out, tmp_path / "b", tmp_path / "b.log")
    apps.extend([a, b])

    def split():
        la = [ln for ln in a.text().splitlines() if "stream thread 1 tasks:" in ln]
        lb = [ln for ln in b.text().splitlines() if "stream thread 1 tasks:" in ln]
        if not la or not lb:
            return False
        ta = la[-1].split("tasks: [")[1].rstrip("]").split(", ")
        tb = lb[-1].split("tasks: [")[1].rstrip("]").split(", ")
        ta, tb = {t for t in ta if t}, {t for t in tb if t}
        return ta and tb and not (ta & tb) and ta | tb == {"0_0", "0_1", "0_2", "0_3"}
    h.wait_until(split, WAIT_S, "the two instances splitting the four tasks")
    read_counts(broker.bootstrap, out, {k: 100 for k in keys})
    b.kill()
    produce(broker.bootstrap, inp, keys, 4000, 4000)
    a.wait_log("stream thread 1 tasks: [0_0, 0_1, 0_2, 0_3]")
    want = {k: 200 for k in keys}
    assert_exact(read_counts(broker.bootstrap, out, want), want)
    assert a.stop() == 0
