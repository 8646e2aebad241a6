#!/usr/bin/env python3
"""Produce and consume throughput over TLS against plaintext, in one run on one broker.

Starts `target/release/vltava server` in a temporary directory with a PLAINTEXT and an
SSL listener (certificates made with openssl, as tests/integration/tls_certs.py does),
then, with confluent-kafka (librdkafka with OpenSSL), for each listener in turn
(alternating, best of --rounds): produces --records records of --value-bytes with
acks=1 into a fresh 3-partition topic, and consumes them all back (no group, from the
beginning). Prints MB/s for each (and the broker's CPU seconds per GB moved) and the
TLS/plaintext ratios.

Not a test: a measurement (the `vltava bench` client is built without TLS so that the
default build needs no OpenSSL headers).

Usage: .venv/bin/python scripts/tls-throughput.py [--records N] [--value-bytes B] [--rounds R]
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
from tls_certs import CertAuthority  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"vltava exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"vltava did not listen on {port} within {timeout}s")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def produce(conf: dict, topic: str, records: int, value: bytes) -> float:
    p = Producer({**conf, "acks": "1", "linger.ms": 5, "batch.size": 1 << 20,
                  "queue.buffering.max.messages": 1_000_000, "queue.buffering.max.kbytes": 1 << 20})
    t0 = time.perf_counter()
    for i in range(records):
        while True:
            try:
                p.produce(topic, value=value)
                break
            except BufferError:
                p.poll(0.005)
        if i % 10_000 == 0:
            p.poll(0)
    if p.flush(120) != 0:
        raise SystemExit("produce did not finish")
    return time.perf_counter() - t0


def consume(conf: dict, topic: str, records: int) -> float:
    c = Consumer({**conf, "group.id": "unused", "enable.auto.commit": False,
                  "fetch.max.bytes": 50 << 20, "max.partition.fetch.bytes": 10 << 20})
    c.assign([TopicPartition(topic, p, 0) for p in range(3)])
    got = 0
    t0 = time.perf_counter()
    while got < records:
        for m in c.consume(10_000, 1.0):
            if m.error() is None:
                got += 1
        if time.perf_counter() - t0 > 300:
            raise SystemExit(f"consumed {got} of {records} in 300 s")
    elapsed = time.perf_counter() - t0
    c.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=500_000)
    ap.add_argument("--value-bytes", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=2)
    args = ap.parse_args()
    binary = REPO / "target" / "release" / "vltava"
    with tempfile.TemporaryDirectory(prefix="vltava-tls-bench-") as tmp:
        tmp = Path(tmp)
        ca = CertAuthority(tmp / "pki")
        broker_cert = ca.issue("broker")
        plain, tls = free_port(), free_port()
        cmd = [str(binary), "server", "--data-dir", str(tmp / "data"),
               "--set", f"listeners=PLAINTEXT://127.0.0.1:{plain},SSL://127.0.0.1:{tls}",
               "--set", f"ssl.keystore.location={broker_cert.keystore_pem}"]
        with open(tmp / "broker.log", "wb") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=log)
        try:
            wait_port(plain, proc)
            wait_port(tls, proc)
            confs = {
                "plaintext": {"bootstrap.servers": f"127.0.0.1:{plain}"},
                "tls": {"bootstrap.servers": f"127.0.0.1:{tls}", "security.protocol": "SSL",
                        "ssl.ca.location": str(ca.cert)},
            }
            value = b"x" * args.value_bytes
            mb = args.records * args.value_bytes / 1e6
            best = {(name, what): 0.0 for name in confs for what in ("produce", "consume")}
            admin = AdminClient(confs["plaintext"])
            for r in range(args.rounds):
                for name, conf in confs.items():
                    topic = f"bench-{name}-{r}"
                    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(30)
                    cpu0 = cpu_seconds(proc.pid)
                    p = mb / produce(conf, topic, args.records, value)
                    cpu1 = cpu_seconds(proc.pid)
                    c = mb / consume(conf, topic, args.records)
                    cpu2 = cpu_seconds(proc.pid)
                    print(f"round {r + 1} {name:9s} produce {p:7.1f} MB/s  consume {c:7.1f} MB/s"
                          f"  (broker CPU per GB: produce {(cpu1 - cpu0) / mb * 1000:.2f} s,"
                          f" consume {(cpu2 - cpu1) / mb * 1000:.2f} s)", flush=True)
                    best[(name, "produce")] = max(best[(name, "produce")], p)
                    best[(name, "consume")] = max(best[(name, "consume")], c)
            del admin
            print(f"\n{args.records} records of {args.value_bytes} bytes, acks=1, best of {args.rounds}:")
            for what in ("produce", "consume"):
                pt, t = best[("plaintext", what)], best[("tls", what)]
                print(f"  {what:8s} plaintext {pt:7.1f} MB/s  tls {t:7.1f} MB/s  ratio {t / pt:.2f}x")
        finally:
            proc.terminate()
            proc.wait(30)


if __name__ == "__main__":
    main()
