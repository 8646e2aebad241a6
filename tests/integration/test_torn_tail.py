"""Crash recovery of a torn segment tail: after an unclean shutdown the newest
segment may end in a partial batch or in garbage. On restart the broker must
keep every complete batch, drop the rest, and append right after it."""

import os
import random
import struct
from pathlib import Path

import pytest

import helpers as h

BATCHES = 10
PER_BATCH = 10
CLEAN_MARKERS = {".clean_shutdown", "clean_shutdown", ".kafka_cleanshutdown", "cleanshutdown",
                 ".cleanshutdown"}


def _produce_batches(bootstrap, topic):
    """BATCHES record batches of PER_BATCH records each, to partition 0."""
    # a long linger keeps each group of PER_BATCH records together; flush() sends it
    p = h.make_producer(bootstrap, {"linger.ms": 5000, "compression.type": "none"})
    values = []
    for j in range(BATCHES):
        recs = [h.Rec(b"k%d" % j, b"torn-%d-%d" % (j, i), [("batch", b"%d" % j)], None)
                for i in range(PER_BATCH)]
        d = h.produce_all(p, topic, recs, partition=0, timeout=30)
        assert [d.reports[i] for i in range(PER_BATCH)] == [
            (None, 0, j * PER_BATCH + i) for i in range(PER_BATCH)]
        values += [r.value for r in recs]
    return values


def _partition_dir(data_dir: Path, topic: str, partition: int = 0) -> Path:
    cands = [d for d in data_dir.rglob(f"{topic}-{partition}") if d.is_dir()]
    assert len(cands) == 1, (
        f"expected one directory {topic}-{partition} under {data_dir}, found {cands}; "
        f"tree: {sorted(str(p.relative_to(data_dir)) for p in data_dir.rglob('*'))[:50]}")
    return cands[0]


def _newest_segment(pdir: Path) -> Path:
    logs = sorted(pdir.glob("*.log"), key=lambda p: p.name)
    assert logs, f"no .log segment in {pdir}: {sorted(os.listdir(pdir))}"
    for p in logs:
        stem = p.name[:-len(".log")]
        assert len(stem) == 20 and stem.isdigit(), f"unexpected segment name {p.name}"
    nonempty = [p for p in logs if p.stat().st_size > 0]
    assert nonempty, f"all segments empty in {pdir}"
    newest = nonempty[-1]
    # segments after the newest non-empty one, if any, are empty and start at the end
    return newest


def _remove_clean_markers(data_dir: Path):
    removed = []
    for p in data_dir.rglob("*"):
        if p.name in CLEAN_MARKERS and p.is_file():
            p.unlink()
            removed.append(p)
    return removed


def _damage(seg: Path, how: str):
    size = seg.stat().st_size
    if how.startswith("truncate-"):
        n = int(how.split("-")[1])
        assert size > n
        os.truncate(seg, size - n)
    elif how == "garbage-random":
        with open(seg, "ab") as f:
            f.write(random.Random(42).randbytes(100))
    elif how == "garbage-zeros":
        with open(seg, "ab") as f:
            f.write(b"\0" * 4096)
    elif how == "garbage-fake-header":
        # a plausible batch header (next offset, claims 1000 bytes, magic 2) cut short
        with open(seg, "ab") as f:
            f.write(struct.pack(">qiib", BATCHES * PER_BATCH, 1000, 0, 2) + b"\x12" * 30)
    else:
        raise ValueError(how)


@pytest.mark.parametrize("how,survivors", [
    ("truncate-3", (BATCHES - 1) * PER_BATCH),
    ("truncate-40", (BATCHES - 1) * PER_BATCH),
    ("garbage-random", BATCHES * PER_BATCH),
    ("garbage-zeros", BATCHES * PER_BATCH),
    ("garbage-fake-header", BATCHES * PER_BATCH),
])
def test_torn_tail_recovery(broker, how, survivors):
    topic = h.unique("torn")
    h.create_topic(broker.bootstrap, topic, 1)
    values = _produce_batches(broker.bootstrap, topic)
    assert broker.stop() == 0

    seg = _newest_segment(_partition_dir(broker.data_dir, topic))
    _damage(seg, how)
    _remove_clean_markers(broker.data_dir)

    broker.start()
    h.wait_for_topic(broker.bootstrap, topic, 1)
    assert h.watermarks(broker.bootstrap, topic, 0) == (0, survivors), (
        f"after '{how}' the partition should end after the last complete batch")
    got = h.consume(broker.bootstrap, topic, {0: survivors})
    assert [(m.offset, m.value) for m in got[0]] == list(enumerate(values[:survivors]))
    assert [m.headers for m in got[0]] == [(("batch", b"%d" % (i // PER_BATCH)),)
                                           for i in range(survivors)]

    # appends continue densely right after the recovered end
    p = h.make_producer(broker.bootstrap, {"linger.ms": 0})
    new = [h.Rec(None, b"after-%d" % i, None, None) for i in range(5)]
    d = h.produce_all(p, topic, new, partition=0)
    assert [d.reports[i] for i in range(5)] == [(None, 0, survivors + i) for i in range(5)]
    got = h.consume(broker.bootstrap, topic, {0: survivors + 5})
    assert [(m.offset, m.value) for m in got[0]] == list(
        enumerate(values[:survivors] + [r.value for r in new]))

    # and the repaired log survives another (clean) restart unchanged
    assert broker.stop() == 0
    broker.start()
    got = h.consume(broker.bootstrap, topic, {0: survivors + 5})
    assert [(m.offset, m.value) for m in got[0]] == list(
        enumerate(values[:survivors] + [r.value for r in new]))


def test_torn_tail_after_sigkill(broker):
    """Same, without a graceful stop at all: SIGKILL, then damage, then restart."""
    topic = h.unique("torn-kill")
    h.create_topic(broker.bootstrap, topic, 1)
    values = _produce_batches(broker.bootstrap, topic)
    broker.kill()
    seg = _newest_segment(_partition_dir(broker.data_dir, topic))
    _damage(seg, "truncate-3")
    _remove_clean_markers(broker.data_dir)
    broker.start()
    survivors = (BATCHES - 1) * PER_BATCH
    assert h.watermarks(broker.bootstrap, topic, 0) == (0, survivors)
    got = h.consume(broker.bootstrap, topic, {0: survivors})
    assert [(m.offset, m.value) for m in got[0]] == list(enumerate(values[:survivors]))
