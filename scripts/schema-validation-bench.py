#!/usr/bin/env python3
"""Produce throughput on a topic with broker-side schema validation against one
without, in the same run (issue 15): starts its own `vltava server` (with the
schema registry on a free port), registers the Avro schema "bytes" under the
validated topic's subject, then alternates `vltava bench produce` on the plain
and the validated topic (records framed with the schema id:
`--value-schema-id`), and prints each round and the median ratio.

Usage: .venv/bin/python scripts/schema-validation-bench.py [--records 2000000]
       [--rounds 3] [--record-size 100] [--partitions 8] [--acks 1] [--decode]
       [--compression none]
--decode also sets vltava.schema.validation.decode=true (a full Avro decode of
each value) on the validated topic."""
import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VLTAVA = str(REPO / "target" / "release" / "vltava")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*args: str, stdin: str | None = None) -> str:
    done = subprocess.run([VLTAVA, *args], input=stdin, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        sys.exit(f"vltava {' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


def wait_for(cond, what: str, timeout: float = 60.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if cond():
                return
        except Exception:
            pass
        time.sleep(0.2)
    sys.exit(f"timed out waiting for {what}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=2_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--record-size", type=int, default=100)
    ap.add_argument("--partitions", type=int, default=8)
    ap.add_argument("--acks", default="1")
    ap.add_argument("--compression", default="none")
    ap.add_argument("--decode", action="store_true")
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="schema-bench-"))
    port, registry_port = free_port(), free_port()
    bootstrap, registry = f"127.0.0.1:{port}", f"http://127.0.0.1:{registry_port}"
    log = open(work / "broker.log", "w")
    broker = subprocess.Popen(
        [VLTAVA, "server", "--data-dir", str(work / "data"), "--listen", bootstrap,
         "--set", f"schema.registry.listeners={registry}"], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: subprocess.run([VLTAVA, "-b", bootstrap, "topic", "list"], capture_output=True,
                                        timeout=30).returncode == 0, "the broker")
        wait_for(lambda: subprocess.run([VLTAVA, "schema", "list", "--registry", registry],
                                        capture_output=True, timeout=30).returncode == 0, "the registry")
        schema_id = run("schema", "register", "--registry", registry, "--subject", "validated-value",
                        "--type", "AVRO", "-", stdin='"bytes"').strip()
        configs = ["-c", "confluent.value.schema.validation=true"]
        if a.decode:
            configs += ["-c", "vltava.schema.validation.decode=true"]
        run("-b", bootstrap, "topic", "create", "plain", "-p", str(a.partitions), "-r", "1")
        run("-b", bootstrap, "topic", "create", "validated", "-p", str(a.partitions), "-r", "1", *configs)
        common = ["--records", str(a.records), "--record-size", str(a.record_size), "--acks", a.acks,
                  "--compression", a.compression, "--broker-pid", str(broker.pid), "--json",
                  "--value-schema-id", schema_id]
        ratios = []
        for r in range(a.rounds):
            rates = {}
            for topic in ("plain", "validated"):
                out = json.loads(run("-b", bootstrap, "bench", "produce", "--topic", topic, *common))
                assert out["errors"] == 0, out
                rates[topic] = (out["records_per_sec"], out.get("broker_cpu_seconds"))
            ratio = rates["validated"][0] / rates["plain"][0]
            ratios.append(ratio)
            print(f"round {r + 1}: plain {rates['plain'][0]:,.0f} rec/s (broker CPU {rates['plain'][1]} s), "
                  f"validated{' + decode' if a.decode else ''} {rates['validated'][0]:,.0f} rec/s "
                  f"(broker CPU {rates['validated'][1]} s), ratio {ratio:.3f}", flush=True)
        print(f"median ratio validated/plain: {statistics.median(ratios):.3f} over {a.rounds} rounds "
              f"of {a.records:,} records of {a.record_size} B, acks={a.acks}, compression={a.compression}")
    finally:
        broker.terminate()
        broker.wait(60)
        log.close()


if __name__ == "__main__":
    main()
