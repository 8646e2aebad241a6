#!/usr/bin/env python3
"""How close a throttled producer stays to its producer_byte_rate quota, and what another
client id gets meanwhile, on one broker.

Starts `target/release/vltava server` in a temporary directory, sets a
producer_byte_rate quota on client id `slow` with `vltava quota alter`, then runs two
confluent-kafka producers at once for --seconds: `slow` and `fast` (no quota), each
sending 16 KiB records as fast as it can (acks=1). Prints each one's delivered bytes
per second after the first --warmup seconds (Kafka measures the rate over 11 one-second
samples, so the first window allows a burst), and slow's rate against its quota.

Not a test: a measurement for BENCHMARKS.md.

Usage: .venv/bin/python scripts/quota-accuracy.py [--quota BYTES_PER_S] [--seconds S] [--warmup S]
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from confluent_kafka import Producer

ROOT = Path(__file__).resolve().parent.parent
VLTAVA = ROOT / "target" / "release" / "vltava"
VALUE = b"q" * 16384


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def produce(bootstrap: str, topic: str, client_id: str, seconds: float, events: list) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "client.id": client_id, "linger.ms": 5, "acks": 1,
                  "batch.size": 65536, "queue.buffering.max.kbytes": 4096})

    def done(err, msg):
        if err is None:
            events.append((time.monotonic(), len(msg.value())))
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            p.produce(topic, VALUE, on_delivery=done)
        except BufferError:
            p.poll(0.05)
        p.poll(0)
    p.flush(60)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quota", type=int, default=1024 * 1024)
    ap.add_argument("--seconds", type=float, default=40)
    ap.add_argument("--warmup", type=float, default=10)
    a = ap.parse_args()
    port = free_port()
    bootstrap = f"127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        broker = subprocess.Popen([str(VLTAVA), "server", "--data-dir", f"{tmp}/data", "--listen", bootstrap,
                                   "--set", "admin.listeners="], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while subprocess.run([str(VLTAVA), "--brokers", bootstrap, "topic", "create", "quota-accuracy"],
                                 capture_output=True).returncode != 0:
                if time.monotonic() > deadline:
                    raise SystemExit("the broker did not start")
                time.sleep(0.5)
            subprocess.run([str(VLTAVA), "--brokers", bootstrap, "quota", "alter", "--client-id", "slow",
                            "--producer-byte-rate", str(a.quota)], check=True, capture_output=True)
            slow, fast = [], []
            t0 = time.monotonic()
            threads = [threading.Thread(target=produce, args=(bootstrap, "quota-accuracy", "slow", a.seconds, slow)),
                       threading.Thread(target=produce, args=(bootstrap, "quota-accuracy", "fast", a.seconds, fast))]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            start, end = t0 + a.warmup, t0 + a.seconds
            rate = lambda ev: sum(n for t, n in ev if start <= t < end) / (end - start)  # noqa: E731
            s, f = rate(slow), rate(fast)
            print(f"quota {a.quota} B/s; seconds {a.warmup:.0f}-{a.seconds:.0f} of the run:")
            print(f"slow (quota): {s:,.0f} B/s = {s / a.quota:.3f} x quota")
            print(f"fast (none):  {f:,.0f} B/s = {f / a.quota:.1f} x slow's quota")
        finally:
            broker.terminate()
            broker.wait(30)


if __name__ == "__main__":
    main()
