"""An exactly-once consume-transform-produce processor, run as its own process so
that tests/integration/test_transactions.py can SIGKILL it mid-transaction.

Usage: eos_processor.py BOOTSTRAP INPUT OUTPUT GROUP TRANSACTIONAL_ID EVENTS
       [--batch N] [--hold-after N] [--session-ms N]

It consumes INPUT in consumer group GROUP (isolation.level=read_committed,
enable.auto.commit=false) and for each batch of records: begin_transaction,
produce value + b":out" (same key, same partition number) to OUTPUT,
send_offsets_to_transaction(consumer positions, group metadata),
commit_transaction.

--hold-after N: once N input records have been committed, the next batch is
produced and flushed (the records are in OUTPUT's log, uncommitted) and then the
process sleeps inside the open transaction, waiting to be killed.

Writes one JSON line per event to EVENTS, flushed at once:
  {"ev": "start"} {"ev": "ready"} {"ev": "assign", "parts": [...]}
  {"ev": "committed", "n": records in this txn, "total": since start}
  {"ev": "holding", "n": records produced in the open txn, "total": committed}
  {"ev": "aborted", "err": ...} {"ev": "error", "err": ...} {"ev": "closed", "total": ...}
SIGTERM finishes the current transaction and exits cleanly.
"""

import argparse
import json
import os
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bootstrap")
    ap.add_argument("input")
    ap.add_argument("output")
    ap.add_argument("group")
    ap.add_argument("transactional_id")
    ap.add_argument("events")
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--hold-after", type=int, default=-1)
    ap.add_argument("--session-ms", type=int, default=6000)
    args = ap.parse_args()

    out = open(args.events, "a", buffering=1)

    def emit(**ev):
        ev["t"] = time.time()
        ev["pid"] = os.getpid()
        out.write(json.dumps(ev) + "\n")

    debug = os.environ.get("VLTAVA_RDKAFKA_DEBUG", "")
    pconf = {
        "bootstrap.servers": args.bootstrap,
        "transactional.id": args.transactional_id,
        "transaction.timeout.ms": 60000,
        "linger.ms": 5,
    }
    cconf = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "isolation.level": "read_committed",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": args.session_ms,
        "heartbeat.interval.ms": 500,
    }
    if debug:
        pconf["debug"] = debug
        cconf["debug"] = debug

    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    emit(ev="start")

    producer = Producer(pconf)
    # Before consuming: fences an earlier incarnation and aborts its open transaction,
    # so that the committed input offsets read below are stable.
    producer.init_transactions(60)
    consumer = Consumer(cconf)

    def on_assign(c, parts):
        emit(ev="assign", parts=sorted(p.partition for p in parts))

    def on_revoke(c, parts):
        emit(ev="revoke", parts=sorted(p.partition for p in parts))

    consumer.subscribe([args.input], on_assign=on_assign, on_revoke=on_revoke)
    emit(ev="ready")

    def rewind():
        """After an aborted transaction: go back to the committed input offsets."""
        assignment = consumer.assignment()
        if not assignment:
            return
        for tp in consumer.committed(assignment, timeout=30):
            if tp.offset >= 0:
                consumer.seek(tp)
            else:
                consumer.seek(TopicPartition(tp.topic, tp.partition, -2))  # beginning

    def retry(op, what):
        while True:
            try:
                return op()
            except KafkaException as e:
                err = e.args[0]
                if err.retriable():
                    emit(ev="retry", what=what, err=str(err))
                    time.sleep(0.1)
                    continue
                raise

    total = 0
    held = False
    while not stop["now"]:
        msgs = consumer.consume(num_messages=args.batch, timeout=0.5)
        recs = []
        for m in msgs:
            if m.error():
                if m.error().code() != KafkaError._PARTITION_EOF:
                    emit(ev="consume_error", err=str(m.error()))
                continue
            recs.append(m)
        if not recs:
            continue
        try:
            producer.begin_transaction()
            for m in recs:
                value = m.value() + b":out"
                while True:
                    try:
                        producer.produce(args.output, key=m.key(), value=value,
                                         partition=m.partition())
                        break
                    except BufferError:
                        producer.poll(0.05)
            if args.hold_after >= 0 and total >= args.hold_after and not held:
                held = True
                producer.flush(30)
                emit(ev="holding", n=len(recs), total=total)
                while True:  # inside the open transaction until SIGKILLed
                    time.sleep(1)
            positions = [tp for tp in consumer.position(consumer.assignment()) if tp.offset >= 0]
            retry(lambda: producer.send_offsets_to_transaction(
                positions, consumer.consumer_group_metadata(), 30), "send_offsets")
            retry(lambda: producer.commit_transaction(30), "commit")
            total += len(recs)
            emit(ev="committed", n=len(recs), total=total)
        except KafkaException as e:
            err = e.args[0]
            if err.txn_requires_abort():
                emit(ev="aborted", err=str(err))
                producer.abort_transaction(30)
                rewind()
                continue
            emit(ev="error", err=str(err), fatal=err.fatal(), code=err.code())
            print(f"eos_processor: fatal: {err}", file=sys.stderr)
            return 2
    consumer.close()
    emit(ev="closed", total=total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
