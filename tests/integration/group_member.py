"""A consumer-group member run as its own process, so tests can SIGKILL it.

Usage: group_member.py BOOTSTRAP GROUP TOPIC OUTFILE [--instance ID]
       [--assignor range|roundrobin|cooperative-sticky] [--session-ms N]

Writes one JSON line per event to OUTFILE, flushed at once:
  {"ev": "assign", "parts": [...], "t": time}   (incremental for cooperative)
  {"ev": "revoke", "parts": [...], "t": time}
  {"ev": "rec", "p": partition, "o": offset, "v": value, "t": time}
  {"ev": "commit_ok", "p": partition, "o": offset, "t": time}
  {"ev": "commit_error", "p": partition, "o": offset, "err": "...", "t": time}
  {"ev": "error", "err": "...", "code": "...", "t": time}   (a consumer error)
Offsets are committed synchronously after each record is written (at least
once): a record is delivered again (to this or another member) only if its
commit_ok is missing. SIGTERM closes the consumer cleanly (LeaveGroup) and exits 0.
"""

import argparse
import json
import signal
import sys
import time

from confluent_kafka import Consumer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("group")
    ap.add_argument("topic")
    ap.add_argument("outfile")
    ap.add_argument("--instance")
    ap.add_argument("--assignor", default="range")
    ap.add_argument("--session-ms", type=int, default=6000)
    args = ap.parse_args()

    out = open(args.outfile, "a", buffering=1)

    def emit(**ev):
        ev["t"] = time.time()
        out.write(json.dumps(ev) + "\n")

    conf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": args.session_ms,
        "heartbeat.interval.ms": 500,
        "partition.assignment.strategy": args.assignor,
        "topic.metadata.refresh.interval.ms": 2000,
        "error_cb": lambda err: emit(ev="error", err=str(err), code=err.name(), source="error_cb"),
    }
    if args.instance:
        conf["group.instance.id"] = args.instance
    c = Consumer(conf)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

    def on_assign(consumer, parts):
        emit(ev="assign", parts=sorted(p.partition for p in parts))
        if args.assignor == "cooperative-sticky":
            consumer.incremental_assign(parts)
        else:
            consumer.assign(parts)

    def on_revoke(consumer, parts):
        emit(ev="revoke", parts=sorted(p.partition for p in parts))
        if args.assignor == "cooperative-sticky":
            consumer.incremental_unassign(parts)
        else:
            consumer.unassign()

    c.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke)
    emit(ev="start")
    while not stop["now"]:
        m = c.poll(0.2)
        if m is None:
            continue
        if m.error():
            emit(ev="error", err=str(m.error()), code=m.error().name())
            continue
        emit(ev="rec", p=m.partition(), o=m.offset(), v=m.value().decode())
        try:
            c.commit(message=m, asynchronous=False)
        except Exception as e:  # a commit refused during a rebalance: the record may come again
            emit(ev="commit_error", p=m.partition(), o=m.offset(), err=str(e))
        else:
            emit(ev="commit_ok", p=m.partition(), o=m.offset())
    c.close()
    emit(ev="closed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
