"""kcat (librdkafka's command line client) against the broker."""

import json
import shutil
import subprocess
import zlib

import pytest

import helpers as h

KCAT = shutil.which("kcat") or shutil.which("kafkacat")


def kcat(*args, input=None, timeout=60):
    assert KCAT, "kcat is not installed (scripts/test-all.sh installs it with apt-get)"
    res = subprocess.run([KCAT, *args], input=input, capture_output=True, timeout=timeout)
    assert res.returncode == 0, (
        f"kcat {' '.join(args)} exited {res.returncode}\nstdout: {res.stdout[-2000:]!r}\n"
        f"stderr: {res.stderr[-4000:]!r}")
    return res.stdout


def consume_lines(bootstrap, topic, *extra, fmt="%k|%s|%h|%p|%o\\n"):
    out = kcat("-C", "-b", bootstrap, "-t", topic, "-e", "-q", "-f", fmt, *extra)
    return out.decode().splitlines()


def test_metadata_listing(module_broker_alive):
    b = module_broker_alive
    t1, t3 = h.unique("kc1"), h.unique("kc3")
    h.create_topic(b.bootstrap, t1, 1)
    h.create_topic(b.bootstrap, t3, 3)
    md = json.loads(kcat("-L", "-b", b.bootstrap, "-J"))
    assert [(x["id"], x["name"]) for x in md["brokers"]] == [(1, b.bootstrap)]
    topics = {t["topic"]: t for t in md["topics"]}
    assert t1 in topics and t3 in topics
    parts = sorted(topics[t3]["partitions"], key=lambda p: p["partition"])
    assert [p["partition"] for p in parts] == [0, 1, 2]
    for p in parts:
        assert p["leader"] == 1
        assert [r["id"] for r in p["replicas"]] == [1]
        assert [r["id"] for r in p["isrs"]] == [1]
        assert "error" not in p or not p["error"]
    assert len(topics[t1]["partitions"]) == 1
    # plain-text listing too
    text = kcat("-L", "-b", b.bootstrap).decode()
    assert f"broker 1 at {b.bootstrap}" in text
    assert f'topic "{t3}" with 3 partitions:' in text
    # single-topic listing
    one = json.loads(kcat("-L", "-b", b.bootstrap, "-t", t3, "-J"))
    assert [t["topic"] for t in one["topics"]] == [t3]


def test_produce_consume_keys_headers(module_broker_alive):
    b = module_broker_alive
    topic = h.unique("kcrt")
    h.create_topic(b.bootstrap, topic, 3)
    lines = [f"key-{i % 17}:value number {i}" for i in range(300)]
    kcat("-P", "-b", b.bootstrap, "-t", topic, "-K:", "-H", "app=kcat", "-H", "trace=abc=def",
         input=("\n".join(lines) + "\n").encode())
    out = consume_lines(b.bootstrap, topic, "-o", "beginning")
    assert len(out) == 300, out[:5]
    by_part = {}
    for line in out:
        k, v, hdr, p, o = line.split("|")
        by_part.setdefault(int(p), []).append((int(o), k, v, hdr))
    expected = {}
    for line in lines:
        k, v = line.split(":", 1)
        # librdkafka's default (consistent_random) partitioner: crc32(key) % partitions
        expected.setdefault(zlib.crc32(k.encode()) % 3, []).append((k, v))
    assert sorted(by_part) == sorted(expected)
    for p, recs in by_part.items():
        assert [o for o, *_ in recs] == list(range(len(recs))), f"partition {p} offsets"
        assert [(k, v) for _, k, v, _ in recs] == expected[p], f"partition {p} contents"
        assert all(hdr == "app=kcat,trace=abc=def" for *_, hdr in recs), recs[0]


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
def test_produce_compressed(module_broker_alive, codec):
    b = module_broker_alive
    topic = h.unique(f"kcz-{codec}")
    h.create_topic(b.bootstrap, topic, 1)
    lines = [f"{codec} line {i} " + "x" * (i % 50) for i in range(500)]
    kcat("-P", "-b", b.bootstrap, "-t", topic, "-p", "0", "-z", codec,
         input=("\n".join(lines) + "\n").encode())
    out = consume_lines(b.bootstrap, topic, "-p", "0", "-o", "beginning", fmt="%o|%s\\n")
    assert out == [f"{i}|{line}" for i, line in enumerate(lines)]


def test_relative_tail_offset(module_broker_alive):
    b = module_broker_alive
    topic = h.unique("kctail")
    h.create_topic(b.bootstrap, topic, 1)
    kcat("-P", "-b", b.bootstrap, "-t", topic, "-p", "0",
         input=b"".join(b"tail-%d\n" % i for i in range(10)))
    out = consume_lines(b.bootstrap, topic, "-p", "0", "-o", "-2", fmt="%o|%s\\n")
    assert out == ["8|tail-8", "9|tail-9"]
    out = consume_lines(b.bootstrap, topic, "-p", "0", "-o", "7", fmt="%o|%s\\n")
    assert out == ["7|tail-7", "8|tail-8", "9|tail-9"]
    out = consume_lines(b.bootstrap, topic, "-p", "0", "-o", "end", fmt="%o|%s\\n")
    assert out == []


def test_consume_from_timestamp(module_broker_alive):
    b = module_broker_alive
    topic = h.unique("kcts")
    h.create_topic(b.bootstrap, topic, 1)
    t = h.base_ts()
    recs = [h.Rec(b"k%d" % i, b"at-%d" % (i + 1), None, t + 1000 * (i + 1)) for i in range(10)]
    p = h.make_producer(b.bootstrap)
    d = h.produce_all(p, topic, recs, partition=0)
    assert d.errors() == {}
    out = consume_lines(b.bootstrap, topic, "-p", "0", "-o", f"s@{t + 5500}", fmt="%o|%s|%T\\n")
    assert out == [f"{i}|at-{i + 1}|{t + 1000 * (i + 1)}" for i in range(5, 10)]
    out = consume_lines(b.bootstrap, topic, "-p", "0", "-o", f"s@{t + 1000}", fmt="%o\\n")
    assert out == [str(i) for i in range(10)]


def test_null_and_empty_payloads(module_broker_alive):
    b = module_broker_alive
    topic = h.unique("kcnull")
    h.create_topic(b.bootstrap, topic, 1)
    # -Z: empty input line -> NULL value (tombstone)
    kcat("-P", "-b", b.bootstrap, "-t", topic, "-p", "0", "-K:", "-Z",
         input=b"a:1\nb:\nc:3\n")
    out = consume_lines(b.bootstrap, topic, "-p", "0", "-o", "beginning", fmt="%k|%s|%S\\n")
    assert out == ["a|1|1", "b||-1", "c|3|1"]
