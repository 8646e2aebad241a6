"""A KIP-848 consumer group member (confluent-kafka, group.protocol=consumer) run
as its own process, so tests can SIGKILL it.

Usage: kip848_member.py BOOTSTRAP GROUP TOPIC OUTFILE [--instance ID] [--assignor uniform|range]
       [--protocol consumer|classic]   (classic: cooperative-sticky, for test_kip848_migration.py)

Writes one JSON line per event to OUTFILE, flushed at once:
  {"ev": "assign", "parts": [...], "t": time}   (incremental: the partitions added)
  {"ev": "revoke", "parts": [...], "t": time}   (the partitions taken away)
  {"ev": "rec", "p": partition, "o": offset, "t": time}
  {"ev": "commit_ok", "p": partition, "o": offset, "t": time}
  {"ev": "error", "err": "...", "t": time}
Each record is committed synchronously after it is written. SIGTERM closes the
consumer (it leaves the group) and exits 0.
"""

import argparse
import json
import signal
import time

from confluent_kafka import Consumer, KafkaException


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("group")
    ap.add_argument("topic")
    ap.add_argument("outfile")
    ap.add_argument("--instance")
    ap.add_argument("--assignor")
    ap.add_argument("--protocol", choices=["classic", "consumer"], default="consumer")
    args = ap.parse_args()
    out = open(args.outfile, "a", buffering=1)

    def emit(**ev):
        ev["t"] = time.time()
        out.write(json.dumps(ev) + "\n")

    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "group.protocol": args.protocol,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "topic.metadata.refresh.interval.ms": 1000,
        "error_cb": lambda err: emit(ev="error", err=str(err)),
    }
    if args.instance:
        conf["group.instance.id"] = args.instance
    if args.assignor:
        conf["group.remote.assignor"] = args.assignor
    if args.protocol == "classic":
        conf.update({"partition.assignment.strategy": "cooperative-sticky",
                     "session.timeout.ms": 6000, "heartbeat.interval.ms": 300})
    c = Consumer(conf)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    c.subscribe([args.topic],
                on_assign=lambda _c, ps: emit(ev="assign", parts=sorted(p.partition for p in ps)),
                on_revoke=lambda _c, ps: emit(ev="revoke", parts=sorted(p.partition for p in ps)),
                on_lost=lambda _c, ps: emit(ev="revoke", parts=sorted(p.partition for p in ps)))
    while not stop["now"]:
        msg = c.poll(0.2)
        if msg is None:
            continue
        if msg.error():
            emit(ev="error", err=str(msg.error()))
            continue
        emit(ev="rec", p=msg.partition(), o=msg.offset())
        try:
            c.commit(message=msg, asynchronous=False)
            emit(ev="commit_ok", p=msg.partition(), o=msg.offset())
        except KafkaException as e:
            emit(ev="commit_error", p=msg.partition(), o=msg.offset(), err=str(e))
    c.close()


if __name__ == "__main__":
    main()
