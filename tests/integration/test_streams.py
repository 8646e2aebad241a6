"""vltava-streams against a real broker: the crate's example applications
(wordcount, windowed-clicks, enrich-orders) run as processes and are checked
through what they write, read back with confluent-kafka (read_committed).
The topology-level operator tests are the crate's unit tests
(TopologyTestDriver); the runtime's own tests are test_streams_runtime.py."""

from __future__ import annotations

import collections
import json
import random

import pytest

import helpers as h
from streams import Reader, long_value, start_app  # noqa: F401 (fixture)


def decimal_value(b: bytes) -> int:
    """wordcount's default output: the count as a UTF-8 decimal string."""
    return int(b.decode())

# whole applications processing 100,000 lines, killed and restarted: deadlines, not verdicts
pytestmark = pytest.mark.timeout(600)

LINES = 100_000
DEADLINE = 300.0   # a generous bound on processing everything, not a speed verdict


def word_lines(n: int, seed: int = 18) -> tuple[list[str], collections.Counter]:
    """n lines of 1-12 words from a 2,000-word vocabulary (skewed, mixed case),
    and the expected count of every lower-cased word."""
    rnd = random.Random(seed)
    vocab = [f"w{i}" for i in range(2000)]
    weights = [1.0 / (i + 1) for i in range(len(vocab))]
    lines, counts = [], collections.Counter()
    for _ in range(n):
        words = rnd.choices(vocab, weights, k=rnd.randint(1, 12))
        words = [w.upper() if rnd.random() < 0.1 else w for w in words]
        lines.append("  ".join(words) if rnd.random() < 0.05 else " ".join(words))
        counts.update(w.lower() for w in words)
    return lines, counts


def produce_lines(bootstrap: str, topic: str, lines: list[str]) -> None:
    p = h.make_producer(bootstrap, {"linger.ms": 20, "enable.idempotence": True})
    for i, line in enumerate(lines):
        p.produce(topic, key=str(i).encode(), value=line.encode())
        if i % 10000 == 0:
            p.poll(0)
    assert p.flush(120) == 0, "lines not all delivered"


def wait_counts(reader: Reader, expected: collections.Counter, apps, timeout: float = DEADLINE) -> None:
    """Until the output's latest count of every word equals the expected count
    (and no other word appears), failing at once if an app died."""
    want = dict(expected)

    def done():
        for a in apps:
            a.assert_alive()
        reader.poll(2.0)
        return reader.latest == want
    try:
        h.wait_until(done, timeout, "the latest counts to equal the expected counts", interval=0.5)
    except AssertionError:
        wrong = {w: (reader.latest.get(w), c) for w, c in want.items() if reader.latest.get(w) != c}
        extra = set(reader.latest) - set(want)
        raise AssertionError(f"{len(wrong)} words wrong (got, want), e.g. {list(wrong.items())[:10]}; "
                             f"unexpected words {sorted(extra)[:10]}; output records read {reader.records}")


def test_wordcount_counts_100k_lines_exactly(broker, start_app):
    lines, expected = word_lines(LINES)
    h.create_topic(broker.bootstrap, "lines", partitions=4)
    h.create_topic(broker.bootstrap, "counts", partitions=4)
    produce_lines(broker.bootstrap, "lines", lines)
    app = start_app("wordcount", broker, "wordcount", args=["--input", "lines", "--output", "counts"])
    reader = Reader(broker.bootstrap, "counts", 4, decimal_value)
    try:
        wait_counts(reader, expected, [app])
    finally:
        reader.close()
    # the counts are UTF-8 text: kcat (Debian's, librdkafka 2.0) shows them as they are
    out = h.kcat("-C", "-b", broker.bootstrap, "-t", "counts", "-o", "beginning", "-e", "-q", "-f", "%k=%s\n")
    assert out.returncode == 0, out.stderr
    latest = dict(line.split("=", 1) for line in out.stdout.splitlines())
    assert latest == {w: str(c) for w, c in expected.items()}
    # word counts go through a repartition topic and are logged to a changelog, named as Kafka Streams names them
    topics = h.all_topics(broker.bootstrap)
    assert "wordcount-counts-changelog" in topics, sorted(topics)
    assert any(t.startswith("wordcount-") and t.endswith("-repartition") for t in topics), sorted(topics)
    assert app.stop() == 0, app.log_tail()
    assert "streams closed" in app.log_since_start()


def test_wordcount_exactly_once_survives_sigkills(broker, start_app):
    """exactly_once_v2: SIGKILLed three times mid-run (once with its state dir
    wiped), restarted each time; the read_committed output's latest counts are
    exact, and a restarted instance rebuilt its store from the changelog."""
    lines, expected = word_lines(LINES, seed=7)
    h.create_topic(broker.bootstrap, "lines", partitions=4)
    h.create_topic(broker.bootstrap, "counts", partitions=4)
    produce_lines(broker.bootstrap, "lines", lines)
    app = start_app("wordcount", broker, "wc-eos", guarantee="exactly_once_v2",
                    args=["--input", "lines", "--output", "counts", "--value-format", "long"])
    reader = Reader(broker.bootstrap, "counts", 4, long_value)
    try:
        progress = 0
        for kill in range(3):
            # let it commit some output, then kill it mid-run
            target = progress + 20_000

            def advanced():
                app.assert_alive()
                reader.poll(1.0)
                return reader.records >= target
            h.wait_until(advanced, DEADLINE, f"{target} committed output records before kill {kill + 1}")
            progress = reader.records
            app.kill()
            if kill == 1:
                app.wipe_state()
            app.start()
            if kill == 1:
                m = app.wait_log(r"restored counts for task \d+_\d+: ([1-9]\d*) records", timeout=120)
                assert int(m.group(1)) > 0
        wait_counts(reader, expected, [app])
        assert sum(1 for v in reader.latest.values() if v is None) == 0
    finally:
        reader.close()


def test_two_instances_share_the_work_and_survive_one_killed(broker, start_app):
    lines, expected = word_lines(LINES // 2, seed=3)
    h.create_topic(broker.bootstrap, "lines", partitions=4)
    h.create_topic(broker.bootstrap, "counts", partitions=4)
    a = start_app("wordcount", broker, "wc-two", guarantee="exactly_once_v2",
                  args=["--input", "lines", "--output", "counts"])
    b = start_app("wordcount", broker, "wc-two", guarantee="exactly_once_v2",
                  args=["--input", "lines", "--output", "counts"])

    def shared():
        a.assert_alive()
        b.assert_alive()
        ta, tb = a.tasks(), b.tasks()
        return ta and tb and not (ta & tb) and len(ta | tb) == 8 and (ta, tb)
    # 8 tasks: 4 reading lines (sub-topology 0), 4 counting (sub-topology 1)
    ta, tb = h.wait_until(shared, 120, "both instances to own disjoint tasks covering all 8")
    produce_lines(broker.bootstrap, "lines", lines[: len(lines) // 2])
    reader = Reader(broker.bootstrap, "counts", 4, decimal_value)
    try:
        h.wait_until(lambda: (reader.poll(1.0), reader.records >= 10_000)[1], DEADLINE, "output from both")
        a.kill()
        produce_lines(broker.bootstrap, "lines", lines[len(lines) // 2:])
        h.wait_until(lambda: (b.assert_alive(), len(b.tasks()) == 8)[1], 120,
                     "the survivor to take over all 8 tasks")
        wait_counts(reader, expected, [b])
    finally:
        reader.close()


MINUTE = 60_000


def test_windowed_clicks_counts_per_minute_with_grace_and_suppression(broker, start_app):
    """1-minute tumbling windows, 10 s grace, suppressed until the window
    closes: exactly one count per user and window; a click late within the
    grace counts, one later than the grace does not."""
    h.create_topic(broker.bootstrap, "clicks", partitions=2)
    h.create_topic(broker.bootstrap, "per-minute", partitions=2)
    t0 = (h.base_ts() // MINUTE) * MINUTE
    rnd = random.Random(5)
    clicks = []   # (user, timestamp)
    for minute in range(3):
        for _ in range(300):
            clicks.append((f"u{rnd.randint(0, 9)}", t0 + minute * MINUTE + rnd.randint(0, MINUTE - 2)))
    clicks.sort(key=lambda c: c[1])
    expected = collections.Counter((u, (ts - t0) // MINUTE * MINUTE + t0) for u, ts in clicks)
    # out of order: 5 s into minute 1, a click of minute 0 (within the 10 s grace: counted) ...
    late_ok = ("u3", t0 + MINUTE - 1)
    # ... and at 30 s into minute 2, one of minute 1 (past end + grace: dropped)
    too_late = ("u4", t0 + 2 * MINUTE - 1)
    ordered = []
    for c in clicks:
        ordered.append(c)
        if c[1] >= t0 + MINUTE + 5_000 and late_ok not in ordered:
            ordered.append(late_ok)
        if c[1] >= t0 + 2 * MINUTE + 30_000 and too_late not in ordered:
            ordered.append(too_late)
    expected[(late_ok[0], t0)] += 1
    p = h.make_producer(broker.bootstrap, {"enable.idempotence": True, "partitioner": "murmur2_random"})
    for user, ts in ordered:
        p.produce("clicks", key=user.encode(), value=b"/page", timestamp=ts)
    # close every window of minutes 0-2 on both partitions: stream time moves to minute 4
    for part in (0, 1):
        p.produce("clicks", key=b"closer", value=b"/", timestamp=t0 + 4 * MINUTE, partition=part)
    assert p.flush(60) == 0
    app = start_app("windowed-clicks", broker, "clicks", guarantee="exactly_once_v2",
                    args=["--input", "clicks", "--output", "per-minute", "--grace-ms", "10000", "--suppress"])
    want = {f"{u}@{w}": n for (u, w), n in expected.items()}
    reader = Reader(broker.bootstrap, "per-minute", 2, long_value)
    try:
        def done():
            app.assert_alive()
            reader.poll(1.0)
            return reader.latest == want
        h.wait_until(done, 120, "one final count per user and minute")
        # suppressed: each window was written once, not once per click
        reader.poll(2.0)
        assert reader.records == len(want), (reader.records, len(want))
    finally:
        reader.close()


def changelog_records(bootstrap: str, topic: str, partitions: int) -> int:
    """Records in a topic the application creates (0 until it exists)."""
    try:
        return sum(h.watermarks(bootstrap, topic, q)[1] for q in range(partitions))
    except Exception:
        return 0


def test_enrich_orders_joins_orders_with_the_customer_table(broker, start_app):
    h.create_topic(broker.bootstrap, "customers", partitions=2)
    h.create_topic(broker.bootstrap, "orders", partitions=2)
    h.create_topic(broker.bootstrap, "orders-enriched", partitions=2)
    # Java's partitioner for keyed records, so customers and the re-keyed orders are co-partitioned
    p = h.make_producer(broker.bootstrap, {"enable.idempotence": True, "partitioner": "murmur2_random"})
    customers = {f"c{i}": {"name": f"Customer {i}", "tier": "gold" if i % 3 == 0 else "basic"} for i in range(20)}
    for cid, c in customers.items():
        p.produce("customers", key=cid.encode(), value=json.dumps(c).encode())
    assert p.flush(60) == 0
    app = start_app("enrich-orders", broker, "enrich",
                    args=["--orders", "orders", "--customers", "customers", "--output", "orders-enriched"])
    # the table is loaded (its changelog holds every customer) before the first order
    h.wait_until(lambda: (app.assert_alive(),
                          changelog_records(broker.bootstrap, "enrich-customers-changelog", 2) >= len(customers))[1],
                 120, "the customer table to be loaded")
    orders = []
    for i in range(200):
        cid = f"c{i % 25}"   # c20..c24 do not exist
        orders.append({"order_id": f"o{i}", "customer_id": cid, "amount": i * 1.5})
    for o in orders:
        p.produce("orders", key=o["order_id"].encode(), value=json.dumps(o).encode())
    assert p.flush(60) == 0
    want = {o["order_id"]: {**o, "customer": customers.get(o["customer_id"])} for o in orders}
    reader = Reader(broker.bootstrap, "orders-enriched", 2, lambda v: json.loads(v))
    try:
        def done():
            app.assert_alive()
            reader.poll(1.0)
            return len(reader.latest) >= len(want)
        h.wait_until(done, 120, "every order enriched")
        assert reader.latest == want
        # a customer's update and a deletion reach later orders
        p.produce("customers", key=b"c1", value=json.dumps({"name": "Customer 1", "tier": "gold"}).encode())
        p.produce("customers", key=b"c2", value=None)
        assert p.flush(60) == 0
        h.wait_until(lambda: changelog_records(broker.bootstrap, "enrich-customers-changelog", 2)
                     >= len(customers) + 2, 120, "the table updates")
        later = [{"order_id": "o-late-1", "customer_id": "c1", "amount": 1.0},
                 {"order_id": "o-late-2", "customer_id": "c2", "amount": 2.0}]
        for o in later:
            p.produce("orders", key=o["order_id"].encode(), value=json.dumps(o).encode())
        assert p.flush(60) == 0
        h.wait_until(lambda: (reader.poll(1.0), "o-late-2" in reader.latest and "o-late-1" in reader.latest)[1],
                     120, "the later orders")
        assert reader.latest["o-late-1"]["customer"] == {"name": "Customer 1", "tier": "gold"}
        assert reader.latest["o-late-2"]["customer"] is None
    finally:
        reader.close()


def test_filter_map_drops_blank_lines_and_upper_cases_the_rest(broker, start_app):
    h.create_topic(broker.bootstrap, "in", partitions=3)
    h.create_topic(broker.bootstrap, "out", partitions=3)
    lines = {f"k{i}": ("   " if i % 7 == 0 else f"line {i} é") for i in range(2000)}
    p = h.make_producer(broker.bootstrap, {"enable.idempotence": True})
    for k, v in lines.items():
        p.produce("in", key=k.encode(), value=v.encode())
    assert p.flush(60) == 0
    app = start_app("filter-map", broker, "shout", args=["--input", "in", "--output", "out"])
    want = {k: v.upper() for k, v in lines.items() if v.strip()}
    reader = Reader(broker.bootstrap, "out", 3, lambda v: v.decode())
    try:
        h.wait_until(lambda: (app.assert_alive(), reader.poll(1.0), len(reader.latest) >= len(want))[2], 120,
                     "every non-blank line")
        reader.poll(1.0)
        assert reader.latest == want
        assert reader.records == len(want), "each line written once"
    finally:
        reader.close()
