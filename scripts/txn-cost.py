#!/usr/bin/env python3
"""Throughput of a confluent-kafka producer with acks=all, plain and transactional
(one transaction per 10,000 records), against a broker on 127.0.0.1:19197.

Usage: .venv/bin/python scripts/txn-cost.py"""
import time, sys
from confluent_kafka import Producer
B="127.0.0.1:19197"; N=300000; V=b"x"*100
def run(conf, txn):
    p=Producer(dict({"bootstrap.servers":B,"linger.ms":5,"acks":"all","queue.buffering.max.messages":1000000}, **conf))
    if txn: p.init_transactions(10)
    t0=time.time()
    for i in range(N):
        if txn and i%10000==0:
            if i: p.commit_transaction(30)
            p.begin_transaction()
        while True:
            try: p.produce("tb%d"%txn, value=V); break
            except BufferError: p.poll(0.01)
        if i%10000==0: p.poll(0)
    if txn: p.commit_transaction(30)
    else: p.flush(30)
    return N/(time.time()-t0)
for k in range(2):
    print("acks=all %.0f rec/s" % run({}, 0), " transactional(10k/txn) %.0f rec/s" % run({"transactional.id":"bench%d"%k}, 1))
