#!/usr/bin/env python3
"""Disk usage of a time-retained and a compacted topic under continuous load.

Usage: .venv/bin/python scripts/disk-usage-run.py target/release/vltava

Starts a broker on 127.0.0.1:19196 (data in /tmp/disk-run), creates "retained"
(retention.ms=10000) and "compacted" (1,000 keys, cleanup.policy=compact), both
with 1 MiB segments, produces about 1 MB/s to each for 90 s, and prints the
size of each partition's segments every 10 s."""
import os, subprocess, sys, time, threading
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
BIN, DATA, B = sys.argv[1], "/tmp/disk-run", "127.0.0.1:19196"
subprocess.run(["rm", "-rf", DATA])
srv = subprocess.Popen([BIN, "server", "--data-dir", DATA, "--listen", B,
                        "--set", "log.retention.check.interval.ms=2000", "--set", "log.cleaner.backoff.ms=2000"],
                       stderr=open("/tmp/disk-run.log", "w"))
time.sleep(1)
a = AdminClient({"bootstrap.servers": B})
fs = a.create_topics([NewTopic("retained", 1, 1, config={"retention.ms": "10000", "segment.bytes": "1048576"}),
                      NewTopic("compacted", 1, 1, config={"cleanup.policy": "compact", "segment.bytes": "1048576",
                                                           "min.cleanable.dirty.ratio": "0.1"})])
for f in fs.values(): f.result()
def du(t):
    d = f"{DATA}/{t}-0"
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if f.endswith(".log")) / 2**20
stop = threading.Event(); sent = [0]
def load():
    p = Producer({"bootstrap.servers": B, "linger.ms": 5})
    v = b"x" * 200
    t0 = time.time(); i = 0
    while not stop.is_set():
        for _ in range(100):
            p.produce("retained", value=v); p.produce("compacted", key=b"key-%d" % (i % 1000), value=v); i += 1
        p.poll(0)
        # ~5000 records/s per topic (1 MB/s each)
        ahead = i / 5000 - (time.time() - t0)
        if ahead > 0: time.sleep(ahead)
    p.flush(); sent[0] = i
th = threading.Thread(target=load); th.start()
print("t_s  retained_MiB  compacted_MiB")
for s in range(0, 91, 10):
    print(f"{s:3d}  {du('retained'):10.2f}  {du('compacted'):10.2f}", flush=True)
    if s < 90: time.sleep(10)
stop.set(); th.join()
print("records per topic:", sent[0])
srv.terminate(); srv.wait()
