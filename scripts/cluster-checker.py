#!/usr/bin/env python3
"""Cluster checker: does every acknowledged acks=all write survive faults, once, in order?

Writers (confluent-kafka producers with enable.idempotence=true, acks=all) produce
unique values "w<writer>-<seq>" (key: the run id) round-robin over the partitions of a
replicated topic and record every ACKNOWLEDGED (partition, offset, value) from their
delivery reports. Afterwards everything is read back (from the beginning, every
partition, up to max(high watermark, highest acknowledged offset + 1)) and compared:

  acknowledged     delivery reports without error
  read             records of this run read back
  lost             acknowledged but never read                       -> failure
  duplicated       values read more than once                        -> failure
  reordered        per partition, a writer's sequence numbers going
                   backwards in offset order                          -> failure
  offset_mismatch  read at another partition/offset than acknowledged -> failure
  unacked_read     read but not acknowledged (timed out/failed
                   deliveries that were written anyway: allowed)

Exit code 0 only if there is no failure.

Modes
  cluster-checker.py --bootstrap H:P,H:P,H:P [--duration 60] [--topic T]
        against a running cluster (inject faults yourself meanwhile)
  cluster-checker.py soak [--duration 300] [--seed N (19)] [--report FILE]
        starts a 3-node cluster itself (tests/integration/cluster.py, the binary from
        $VLTAVA_BIN or target/release/vltava) and runs a random fault schedule: every few
        seconds one of SIGKILL+restart, SIGSTOP..SIGCONT, SIGTERM+restart, network
        isolate+heal (netns mode, root only), one node at a time, waiting for the ISR to
        recover between faults. Also checks at the end that every replica's log holds
        the same batches. Prints the JSON report (schedule, counts, failover times) to
        stdout and --report.

Failover time of a fault on a leader: from the fault to the first acknowledged write on
each partition it led (the report gives the slowest partition).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
INTEGRATION_DIR = REPO_ROOT / "tests" / "integration"
if str(INTEGRATION_DIR) not in sys.path:
    sys.path.insert(0, str(INTEGRATION_DIR))

VALUE_RE = re.compile(r"^w(\d+)-(\d+)$")
# librdkafka logs every refused connection while a node is down: only critical ones by
# default (errors are counted through error_cb). VLTAVA_CHECKER_RDKAFKA_LOG=7 for all.
RDKAFKA_LOG_LEVEL = int(os.environ.get("VLTAVA_CHECKER_RDKAFKA_LOG", "2"))
SAMPLE = 20


def log(msg: str) -> None:
    print(f"[checker {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# analysis (pure: unit-tested on synthetic data)
# --------------------------------------------------------------------------


def parse_value(value: str):
    """"w3-17" -> (3, 17); anything else -> None."""
    m = VALUE_RE.match(value)
    return (int(m.group(1)), int(m.group(2))) if m else None


def analyze(acked, read) -> dict:
    """acked: iterable of (partition, offset, value) from successful delivery reports
    (offset < 0: unknown). read: iterable of (partition, offset, value) read back.
    Values are "w<writer>-<seq>"; read values that do not parse are counted as foreign."""
    acked = list(acked)
    read_sorted = sorted(read, key=lambda r: (r[0], r[1]))
    res = {"acknowledged": len(acked), "read": 0, "unique_read": 0, "lost": 0, "duplicated": 0,
           "duplicate_records": 0, "reordered": 0, "offset_mismatch": 0, "unacked_read": 0,
           "acked_twice": 0, "acked_offset_unknown": 0, "foreign": 0, "same_offset_twice": 0,
           "samples": {"lost": [], "duplicated": [], "reordered": [], "offset_mismatch": [],
                       "acked_twice": [], "same_offset_twice": []}}
    sm = res["samples"]

    where: dict[str, list] = defaultdict(list)       # value -> [(partition, offset)]
    last_seq: dict[tuple, tuple] = {}                 # (partition, writer) -> (seq, offset)
    seen_pos: set = set()
    for p, off, value in read_sorted:
        pv = parse_value(value)
        if pv is None:
            res["foreign"] += 1
            continue
        if (p, off) in seen_pos:
            res["same_offset_twice"] += 1
            if len(sm["same_offset_twice"]) < SAMPLE:
                sm["same_offset_twice"].append([p, off, value])
            continue
        seen_pos.add((p, off))
        res["read"] += 1
        first = not where[value]
        where[value].append((p, off))
        if not first:
            continue  # counted as a duplicate below, not as a reordering
        writer, seq = pv
        prev = last_seq.get((p, writer))
        if prev is not None and seq < prev[0]:
            res["reordered"] += 1
            if len(sm["reordered"]) < SAMPLE:
                sm["reordered"].append({"partition": p, "writer": writer, "seq": seq,
                                        "offset": off, "after_seq": prev[0],
                                        "after_offset": prev[1]})
        if prev is None or seq > prev[0]:
            last_seq[(p, writer)] = (seq, off)
    res["unique_read"] = len(where)
    for value, places in where.items():
        if len(places) > 1:
            res["duplicated"] += 1
            res["duplicate_records"] += len(places) - 1
            if len(sm["duplicated"]) < SAMPLE:
                sm["duplicated"].append([value, places])

    acked_values = Counter(v for _, _, v in acked)
    for v, n in acked_values.items():
        if n > 1:
            res["acked_twice"] += 1
            if len(sm["acked_twice"]) < SAMPLE:
                sm["acked_twice"].append(v)
    for p, off, value in acked:
        places = where.get(value)
        if not places:
            res["lost"] += 1
            if len(sm["lost"]) < SAMPLE:
                sm["lost"].append([p, off, value])
            continue
        if off is None or off < 0:
            res["acked_offset_unknown"] += 1
            if all(pp != p for pp, _ in places):
                res["offset_mismatch"] += 1
                if len(sm["offset_mismatch"]) < SAMPLE:
                    sm["offset_mismatch"].append({"value": value, "acked": [p, off],
                                                  "read": places})
            continue
        if (p, off) not in places:
            res["offset_mismatch"] += 1
            if len(sm["offset_mismatch"]) < SAMPLE:
                sm["offset_mismatch"].append({"value": value, "acked": [p, off], "read": places})
    res["unacked_read"] = sum(1 for v in where if v not in acked_values)
    res["ok"] = all(res[k] == 0 for k in ("lost", "duplicated", "reordered", "offset_mismatch",
                                          "acked_twice", "same_offset_twice"))
    return res


def failover_times(events, ack_times: dict) -> list[dict]:
    """events: [{"t": monotonic, "action", "node", "partitions": [led partitions]}];
    ack_times: {partition: [(ack time, produce() time)] sorted by ack time} (a bare float
    stands for both). For every event with led partitions: per partition, the time from
    the event to the first acknowledgement of a record produced after it (a record
    acknowledged just after the event but sent before says nothing about the new
    leader), None if none came."""
    import bisect
    out = []
    for ev in events:
        parts = ev.get("partitions") or []
        if not parts:
            continue
        per = {}
        for p in parts:
            pairs = [(a, a) if isinstance(a, (int, float)) else tuple(a)
                     for a in ack_times.get(p, [])]
            i = bisect.bisect_right([a for a, _ in pairs], ev["t"])
            first = next((a for a, sent in pairs[i:] if sent >= ev["t"]), None)
            per[p] = round(first - ev["t"], 3) if first is not None else None
        known = [v for v in per.values() if v is not None]
        out.append({"action": ev["action"], "node": ev["node"],
                    "at_s": round(ev.get("rel", 0.0), 3), "partitions": per,
                    "max_s": max(known) if len(known) == len(per) else None})
    return out


# --------------------------------------------------------------------------
# the workload: writers with confluent-kafka
# --------------------------------------------------------------------------


class Writer(threading.Thread):
    """One idempotent acks=all producer writing w<id>-<seq> round-robin over partitions."""

    def __init__(self, wid: int, bootstrap: str, topic: str, partitions: int, rate: float,
                 run_key: bytes, conf: dict | None = None):
        super().__init__(daemon=True, name=f"writer-{wid}")
        self.wid = wid
        self.bootstrap = bootstrap
        self.topic = topic
        self.partitions = partitions
        self.rate = rate
        self.run_key = run_key
        self.conf = {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "message.timeout.ms": 60000,
            "request.timeout.ms": 10000,
            "retry.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "topic.metadata.refresh.interval.ms": 5000,
            "log_level": RDKAFKA_LOG_LEVEL,
            "error_cb": self._on_error,
        }
        self.conf.update(conf or {})
        self.stop_evt = threading.Event()
        self.acked: list[tuple[int, int, str]] = []
        self.ack_times: dict[int, list] = defaultdict(list)   # [(ack time, produce time)]
        self.failed: list[tuple[str, str]] = []          # (value, error name)
        self.errors: Counter = Counter()                  # delivery errors by name
        self.client_errors: Counter = Counter()           # error_cb, by name
        self.fatal: list[str] = []
        self.sent = 0
        self.unflushed = 0
        self.exception: BaseException | None = None

    def _on_error(self, err) -> None:
        self.client_errors[err.name()] += 1
        if err.fatal():
            self.fatal.append(str(err))

    def _on_delivery(self, err, msg) -> None:
        value = msg.value().decode()
        if err is not None:
            self.errors[err.name()] += 1
            self.failed.append((value, err.name()))
            return
        self.acked.append((msg.partition(), msg.offset(), value))
        now = time.monotonic()
        self.ack_times[msg.partition()].append((now, now - (msg.latency() or 0.0)))

    def run(self) -> None:
        from confluent_kafka import Producer
        try:
            producer = Producer(self.conf)
            interval = 1.0 / self.rate if self.rate > 0 else 0.0
            next_at = time.monotonic()
            seq = 0
            while not self.stop_evt.is_set() and not self.fatal:
                now = time.monotonic()
                if interval and now < next_at:
                    producer.poll(min(next_at - now, 0.05))
                    continue
                value = f"w{self.wid}-{seq}"
                try:
                    producer.produce(self.topic, value=value.encode(), key=self.run_key,
                                     partition=seq % self.partitions,
                                     on_delivery=self._on_delivery)
                except BufferError:
                    producer.poll(0.1)
                    continue
                seq += 1
                self.sent = seq
                producer.poll(0)
                next_at = max(next_at + interval, now - 0.5)
            deadline = time.monotonic() + self.conf["message.timeout.ms"] / 1000 + 15
            remaining = len(producer)
            while remaining and time.monotonic() < deadline and not self.fatal:
                remaining = producer.flush(1.0)
            self.unflushed = remaining
        except BaseException as e:  # noqa: BLE001 - reported by the workload
            self.exception = e


class Workload:
    def __init__(self, bootstrap: str, topic: str, partitions: int, writers: int = 2,
                 rate: float = 200.0, conf: dict | None = None):
        self.topic = topic
        self.partitions = partitions
        self.run_id = uuid.uuid4().hex[:12]
        self.run_key = f"checker-{self.run_id}".encode()
        self.writers = [Writer(i, bootstrap, topic, partitions, rate, self.run_key, conf)
                        for i in range(writers)]
        self.started_at: float | None = None

    def start(self) -> "Workload":
        self.started_at = time.monotonic()
        for wr in self.writers:
            wr.start()
        return self

    def acked_count(self) -> int:
        return sum(len(wr.acked) for wr in self.writers)

    def wait_acks(self, n: int, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self.acked_count() < n:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)
        return True

    def stop(self, timeout: float = 120.0) -> None:
        for wr in self.writers:
            wr.stop_evt.set()
        for wr in self.writers:
            wr.join(timeout)

    def acked(self) -> list:
        return [a for wr in self.writers for a in wr.acked]

    def ack_times(self) -> dict:
        out: dict[int, list] = defaultdict(list)
        for wr in self.writers:
            for p, ts in wr.ack_times.items():
                out[p].extend(ts)
        return {p: sorted(ts) for p, ts in out.items()}

    def delivery_errors(self) -> dict:
        c: Counter = Counter()
        for wr in self.writers:
            c.update(wr.errors)
        return dict(c)

    def summary(self) -> dict:
        return {
            "sent": sum(wr.sent for wr in self.writers),
            "delivery_errors": self.delivery_errors(),
            "client_errors": dict(sum((wr.client_errors for wr in self.writers), Counter())),
            "fatal": [f for wr in self.writers for f in wr.fatal],
            "unflushed": sum(wr.unflushed for wr in self.writers),
            "writer_exceptions": [repr(wr.exception) for wr in self.writers if wr.exception],
            "writers_alive": [wr.name for wr in self.writers if wr.is_alive()],
        }


def high_watermarks(bootstrap: str, topic: str, partitions: int, timeout: float = 30.0) -> dict:
    from confluent_kafka import Consumer, KafkaException, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": f"checker-hw-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "log_level": RDKAFKA_LOG_LEVEL})
    out = {}
    try:
        deadline = time.monotonic() + timeout
        for p in range(partitions):
            while True:
                try:
                    out[p] = c.get_watermark_offsets(TopicPartition(topic, p), timeout=5,
                                                     cached=False)[1]
                    break
                except KafkaException as e:
                    if time.monotonic() > deadline:
                        log(f"no high watermark for {topic}[{p}]: {e}")
                        out[p] = -1
                        break
                    time.sleep(0.3)
    finally:
        c.close()
    return out


def read_back(bootstrap: str, topic: str, partitions: int, targets: dict,
              timeout: float = 90.0) -> tuple[list, dict]:
    """Every record of `topic` from the beginning, until each partition's position reaches
    targets[p]. Returns ([(partition, offset, key, value)], info)."""
    from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition
    c = Consumer({"bootstrap.servers": bootstrap,
                  "group.id": f"checker-read-{uuid.uuid4().hex[:8]}",
                  "enable.auto.commit": False, "enable.auto.offset.store": False,
                  "enable.partition.eof": True, "auto.offset.reset": "earliest",
                  "fetch.wait.max.ms": 100, "isolation.level": "read_uncommitted",
                  "log_level": RDKAFKA_LOG_LEVEL})
    records = []
    errors: Counter = Counter()
    pos = {p: 0 for p in range(partitions)}
    try:
        c.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
        deadline = time.monotonic() + timeout
        while any(pos[p] < targets.get(p, 0) for p in pos):
            if time.monotonic() > deadline:
                break
            for m in c.consume(num_messages=5000, timeout=0.2):
                err = m.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        pos[m.partition()] = max(pos[m.partition()], m.offset())
                    else:
                        errors[err.name()] += 1
                        if err.fatal():
                            raise RuntimeError(f"fatal consumer error: {err}")
                    continue
                records.append((m.partition(), m.offset(), m.key(), m.value()))
                pos[m.partition()] = max(pos[m.partition()], m.offset() + 1)
    finally:
        c.close()
    incomplete = {p: [pos[p], targets.get(p, 0)] for p in pos if pos[p] < targets.get(p, 0)}
    return records, {"targets": targets, "positions": pos, "incomplete": incomplete,
                     "consumer_errors": dict(errors)}


def verify(bootstrap: str, workload: Workload, timeout: float = 90.0) -> dict:
    """Read everything back and analyze it against the workload's acknowledgements."""
    acked = workload.acked()
    hw = high_watermarks(bootstrap, workload.topic, workload.partitions)
    targets = {}
    for p in range(workload.partitions):
        # librdkafka may report an idempotent batch delivered with an unknown
        # offset (None), e.g. after a DUPLICATE_SEQUENCE_NUMBER answer
        top = max((off for pp, off, _ in acked if pp == p and off is not None and off >= 0), default=-1)
        targets[p] = max(hw.get(p, -1), top + 1, 0)
    records, info = read_back(bootstrap, workload.topic, workload.partitions, targets, timeout)
    ours = [(p, off, v.decode(errors="replace")) for p, off, k, v in records
            if k == workload.run_key and v is not None]
    res = analyze(acked, ours)
    res["other_records"] = len(records) - len(ours)
    res["read_back"] = info
    res["high_watermarks"] = hw
    res["workload"] = workload.summary()
    if info["incomplete"]:
        res["ok"] = False
    if res["workload"]["fatal"] or res["workload"]["writer_exceptions"]:
        res["ok"] = False
    return res


def counts_line(res: dict) -> str:
    return ", ".join(f"{k}={res[k]}" for k in (
        "acknowledged", "read", "lost", "duplicated", "reordered", "offset_mismatch",
        "unacked_read"))


# --------------------------------------------------------------------------
# soak: a random fault schedule against a cluster
# --------------------------------------------------------------------------

ALL_FAULTS = ("kill", "pause", "term", "isolate")
# The default fault schedule: a run repeats the last one unless --seed says otherwise
# (the seed is printed and in the report either way).
DEFAULT_SEED = 19


def run_soak(cluster, duration: float = 300.0, seed: int = DEFAULT_SEED, faults=ALL_FAULTS,
             topic: str | None = None, partitions: int = 6, writers: int = 2,
             rate: float = 200.0, gap=(2.0, 5.0), recovery_timeout: float = 60.0,
             producer_conf: dict | None = None) -> dict:
    """Runs the workload against `cluster` (a cluster.Cluster, started) with one random
    fault at a time for `duration` seconds, then verifies. Returns the report."""
    rng = random.Random(seed)
    faults = [f for f in faults if f != "isolate" or cluster.net is not None]
    if not faults:
        raise ValueError("no fault kind available")
    topic = topic or f"soak-{uuid.uuid4().hex[:8]}"
    cluster.create_topic(topic, partitions=partitions, replication_factor=len(cluster.ids))
    log(f"soak: seed={seed} duration={duration}s faults={faults} topic={topic} "
        f"bootstrap={cluster.bootstrap}")
    wl = Workload(cluster.bootstrap, topic, partitions, writers, rate, producer_conf).start()
    t0 = time.monotonic()
    schedule: list[dict] = []
    violations: list[str] = []
    if not wl.wait_acks(1, 60):
        violations.append("no acknowledgement within 60 s of the start")

    def recover(entry: dict) -> None:
        t = time.monotonic()
        try:
            for i in cluster.ids:
                if not cluster.nodes[i].is_running():
                    cluster.start_node(i, wait=False)
            cluster.wait_ready(timeout=recovery_timeout)
            cluster.wait_isr(topic, None, len(cluster.ids), timeout=recovery_timeout)
            entry["recovered_s"] = round(time.monotonic() - t, 3)
        except Exception as e:  # noqa: BLE001 - recorded, the soak goes on
            entry["recovered_s"] = None
            entry["recovery_error"] = str(e).splitlines()[0][:300]
            violations.append(f"no recovery after {entry['action']} of node {entry['node']} "
                              f"within {recovery_timeout}s")

    while time.monotonic() - t0 < duration:
        time.sleep(rng.uniform(*gap))
        if time.monotonic() - t0 >= duration:
            break
        action = rng.choice(faults)
        node = rng.choice(cluster.ids)
        try:
            led = cluster.partitions_led_by(topic, node)
        except Exception:  # noqa: BLE001
            led = []
        entry = {"action": action, "node": node, "partitions": led,
                 "rel": time.monotonic() - t0, "acked_before": wl.acked_count()}
        log(f"t={entry['rel']:.1f}s {action} node {node} (leads {led})")
        try:
            if action == "kill":
                entry["t"] = time.monotonic()
                cluster.kill(node, signal.SIGKILL)
                down = rng.uniform(0.5, 4.0)
                time.sleep(down)
                cluster.start_node(node, wait=False)
            elif action == "term":
                entry["t"] = time.monotonic()
                try:
                    cluster.stop(node)
                except AssertionError as e:
                    violations.append(f"SIGTERM of node {node}: {str(e).splitlines()[0]}")
                entry["stop_s"] = round(time.monotonic() - entry["t"], 3)
                down = rng.uniform(0.5, 3.0)
                time.sleep(down)
                cluster.start_node(node, wait=False)
            elif action == "pause":
                entry["t"] = time.monotonic()
                cluster.pause(node)
                down = rng.uniform(1.0, 6.0)
                time.sleep(down)
                cluster.resume(node)
            elif action == "isolate":
                entry["t"] = time.monotonic()
                cluster.isolate(node)
                down = rng.uniform(2.0, 8.0)
                time.sleep(down)
                cluster.heal()
            entry["down_s"] = round(down, 3)
        except Exception as e:  # noqa: BLE001
            entry["error"] = str(e).splitlines()[0][:300]
            violations.append(f"{action} of node {node} failed: {entry['error']}")
        recover(entry)
        schedule.append(entry)

    log(f"soak: faults done after {time.monotonic() - t0:.1f}s; stopping writers")
    wl.stop()
    res = verify(cluster.bootstrap, wl)
    try:
        cluster.wait_replicas_identical(topic, range(partitions), timeout=30)
        replica_check = "identical"
    except AssertionError as e:
        replica_check = str(e).splitlines()[0]
        violations.append(f"replica logs: {replica_check}")
    fo = failover_times([dict(e, t=e["t"]) for e in schedule if "t" in e and
                         e["action"] in ("kill", "term", "isolate", "pause")], wl.ack_times())
    for e in schedule:
        e.pop("t", None)
        e["at_s"] = round(e.pop("rel"), 3)
    report = {
        "mode": "soak", "seed": seed, "duration_s": duration, "topic": topic,
        "partitions": partitions, "writers": writers, "rate_per_writer": rate,
        "faults": list(faults), "netns": cluster.net is not None,
        "schedule": schedule, "failover": fo,
        "counts": {k: v for k, v in res.items() if k not in ("samples",)},
        "samples": res["samples"], "replica_check": replica_check,
        "violations": violations,
    }
    report["ok"] = bool(res["ok"]) and not violations
    return report


# --------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------


def _write_report(report: dict, path: str | None) -> None:
    text = json.dumps(report, indent=2, sort_keys=False, default=str)
    print(text)
    if path:
        Path(path).write_text(text + "\n")


def main_run(argv) -> int:
    ap = argparse.ArgumentParser(
        prog="cluster-checker.py",
        description="Produce, then verify, against a running cluster (inject faults meanwhile).",
        epilog="`cluster-checker.py soak --help`: start a 3-node cluster and inject random faults.")
    ap.add_argument("--bootstrap", required=True)
    ap.add_argument("--topic", help="default: a new topic checker-<id>")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--replication-factor", type=int, default=3)
    ap.add_argument("--duration", type=float, default=60.0)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=200.0, help="records/s per writer")
    ap.add_argument("--report")
    a = ap.parse_args(argv)
    from confluent_kafka.admin import AdminClient, NewTopic
    topic = a.topic or f"checker-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": a.bootstrap})
    md = admin.list_topics(timeout=15)
    if topic not in md.topics:
        fs = admin.create_topics([NewTopic(topic, a.partitions, a.replication_factor)])
        fs[topic].result(30)
        time.sleep(1)
    partitions = len(admin.list_topics(topic=topic, timeout=15).topics[topic].partitions)
    log(f"producing to {topic} ({partitions} partitions) for {a.duration}s")
    wl = Workload(a.bootstrap, topic, partitions, a.writers, a.rate).start()
    time.sleep(a.duration)
    wl.stop()
    res = verify(a.bootstrap, wl)
    log(counts_line(res))
    report = {"mode": "run", "topic": topic, "duration_s": a.duration, "counts": res,
              "ok": res["ok"]}
    _write_report(report, a.report)
    return 0 if res["ok"] else 1


def main_soak(argv) -> int:
    ap = argparse.ArgumentParser(prog="cluster-checker.py soak",
                                 description="Start a 3-node cluster and run random faults.")
    ap.add_argument("--duration", type=float, default=300.0)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED,
                    help=f"the fault schedule's seed (default {DEFAULT_SEED}; printed either way)")
    ap.add_argument("--nodes", type=int, default=3)
    ap.add_argument("--faults", default=",".join(ALL_FAULTS),
                    help="comma list of kill,pause,term,isolate")
    ap.add_argument("--netns", choices=("auto", "on", "off"), default="auto",
                    help="run nodes in network namespaces (needed for isolate)")
    ap.add_argument("--partitions", type=int, default=6)
    ap.add_argument("--writers", type=int, default=2)
    ap.add_argument("--rate", type=float, default=200.0, help="records/s per writer")
    ap.add_argument("--workdir", help="default: a temporary directory, kept on failure")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="extra broker setting for every node")
    ap.add_argument("--report")
    a = ap.parse_args(argv)
    import cluster as cl
    netns = False
    if a.netns != "off":
        ok, why = cl.netns_available()
        if a.netns == "on" and not ok:
            log(f"netns mode not available: {why}")
            return 2
        netns = ok
        if not ok:
            log(f"netns mode not available ({why}): no isolate faults")
    settings = dict(kv.split("=", 1) for kv in a.set)
    workdir = Path(a.workdir) if a.workdir else Path(tempfile.mkdtemp(prefix="vltava-soak-"))
    log(f"work directory {workdir}")
    c = cl.Cluster(workdir, n=a.nodes, settings=settings, netns=netns)
    report = None
    try:
        c.start()
        report = run_soak(c, duration=a.duration, seed=a.seed,
                          faults=[f for f in a.faults.split(",") if f], partitions=a.partitions,
                          writers=a.writers, rate=a.rate)
    except Exception as e:  # noqa: BLE001
        report = report or {"mode": "soak", "ok": False, "error": repr(e)}
        log(f"soak failed: {e}")
    finally:
        report = report or {"mode": "soak", "ok": False, "error": "interrupted"}
        report["workdir"] = str(workdir)
        if not report.get("ok"):
            print(c.log_tails(n=60), file=sys.stderr)
        c.close()
    _write_report(report, a.report)
    counts = report.get("counts", {})
    if counts:
        log(counts_line(counts))
    for f in report.get("failover", []):
        log(f"failover after {f['action']} of node {f['node']} at {f['at_s']}s: {f['max_s']}s")
    log("OK" if report.get("ok") else f"FAILED: {report.get('violations') or report.get('error')}")
    if report.get("ok") and not a.keep and not a.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if report.get("ok") else 1


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "soak":
        return main_soak(argv[1:])
    if argv and argv[0] == "run":
        argv = argv[1:]
    return main_run(argv)


if __name__ == "__main__":
    sys.exit(main())
