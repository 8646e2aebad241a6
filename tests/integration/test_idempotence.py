"""Idempotent producers (issue 6): confluent-kafka and kafka-python producing with
idempotence on, duplicate suppression when connections drop after the broker
appended a batch but before the client saw the response (a TCP proxy in the
test injects the drops), the producer-state rules on the wire (duplicates,
sequence gaps, stale epochs) and producer state surviving broker restarts.

Set VLTAVA_RDKAFKA_DEBUG (e.g. "eos,protocol,msg") to pass librdkafka's `debug`
to the clients of these tests; its log goes to stderr, shown when a test fails.
"""

from __future__ import annotations

import random
import socket
import struct
import threading
import time

import pytest
from confluent_kafka import KafkaError, TopicPartition

import helpers as h
import kafka_wire as w





def _idempotent_producer(bootstrap: str, **extra):
    conf = {"enable.idempotence": True, "linger.ms": 5}
    conf.update(extra)
    p = h.make_producer(bootstrap, h.with_debug(conf))
    return p


def _values_by_partition(got: dict) -> dict:
    return {p: [m.value for m in msgs] for p, msgs in got.items()}


# --------------------------------------------------------------------------
# real clients
# --------------------------------------------------------------------------


def test_confluent_idempotent_producer_exactly_once_in_order(broker):
    topic = h.unique("idem")
    h.create_topic(broker.bootstrap, topic, 3)
    n = 20_000
    records = h.make_records(n, seed=61)
    p = _idempotent_producer(broker.bootstrap)
    d = h.produce_all(p, topic, records)
    assert d.errors() == {}, f"delivery errors: {list(d.errors().items())[:5]}"
    del p
    expected = h.expected_by_partition(records, d)
    assert sum(len(v) for v in expected.values()) == n
    assert len(expected) == 3, f"records landed in partitions {sorted(expected)} only"
    # acknowledged offsets are dense from 0 and in production order per partition
    for q, lst in expected.items():
        assert [off for off, _, _ in lst] == list(range(len(lst))), f"partition {q}: offsets"
        idx = [i for _, i, _ in lst]
        assert idx == sorted(idx), f"partition {q}: acknowledged out of production order"
    got = h.consume(broker.bootstrap, topic, {q: len(expected[q]) for q in range(3)},
                    timeout=120)
    h.assert_matches(got, expected)
    for q in range(3):
        assert h.watermarks(broker.bootstrap, topic, q) == (0, len(expected[q]))


def test_kafka_python_default_producer_is_idempotent_and_exactly_once(broker):
    from kafka import KafkaProducer
    topic = h.unique("kp-idem")
    h.create_topic(broker.bootstrap, topic, 2)
    n = 3000
    # The defaults of kafka-python 3.x: enable_idempotence=True, acks=all.
    p = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=5)
    try:
        assert p.config["enable_idempotence"] is True, (
            f"kafka-python turned idempotence off (api_version {p.config.get('api_version')}): "
            "the broker's ApiVersions made it think InitProducerId is unsupported")
        records = [h.Rec(b"k%d" % (i % 50), b"kp-idem-%06d" % i, [("i", b"%d" % i)], None)
                   for i in range(n)]
        acks = h.kp_produce_all(p, topic, records)
        pid = p._transaction_manager.producer_id_and_epoch.producer_id
        epoch = p._transaction_manager.producer_id_and_epoch.epoch
        assert pid >= 0 and epoch == 0, f"producer id/epoch {pid}/{epoch}"
    finally:
        p.close(timeout=10)
    by_part: dict[int, list] = {}
    for i, (q, off) in enumerate(acks):
        by_part.setdefault(q, []).append((off, i))
    for q, lst in by_part.items():
        assert sorted(off for off, _ in lst) == list(range(len(lst))), f"partition {q} offsets"
        lst.sort()
        assert [i for _, i in lst] == sorted(i for _, i in lst), f"partition {q}: order"
    got = h.kp_consume(broker.bootstrap, topic, {q: len(by_part.get(q, [])) for q in range(2)})
    for q in range(2):
        want = [records[i].value for _, i in by_part.get(q, [])]
        assert [m.value for m in got[q]] == want, f"partition {q}: read back differs"
        assert [m.offset for m in got[q]] == list(range(len(want)))
    all_values = [m.value for q in got for m in got[q]]
    assert len(all_values) == n and len(set(all_values)) == n


# --------------------------------------------------------------------------
# a TCP proxy that drops connections after the broker answered a Produce
# --------------------------------------------------------------------------


class DroppingProxy:
    """Forwards Kafka frames between clients and the broker unchanged. When armed,
    every `drop_every`-th Produce request (and, with probability `drop_prob`, any
    other one) is forwarded to the broker, and when the broker's response to it
    arrives the client connection is closed instead of delivering that response:
    the client must retry a batch the broker has already appended."""

    def __init__(self, drop_every: int = 4, drop_prob: float = 0.0, max_drops: int = 40,
                 seed: int = 7, api_keys=(w.API_PRODUCE,)):
        self.drop_every = drop_every
        self.drop_prob = drop_prob
        self.max_drops = max_drops
        self.api_keys = set(api_keys)
        self.rnd = random.Random(seed)
        self.lock = threading.Lock()
        self.armed = False
        self.target_port: int | None = None
        self.connections = 0
        self.requests = 0          # all forwarded requests
        self.watched = 0           # forwarded requests of api_keys
        self.drops = 0             # connections closed with a response withheld
        self.dropped = []          # (api_key, correlation_id) whose response was withheld
        self.errors: list[str] = []
        self._socks: set[socket.socket] = set()
        self._stop = threading.Event()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._accept_thread.start()

    # -- lifecycle --------------------------------------------------------

    def close(self):
        self._stop.set()
        try:
            self.listener.close()
        except OSError:
            pass
        with self.lock:
            socks = list(self._socks)
        for s in socks:
            self._close(s)

    def _close(self, s: socket.socket):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            s.close()
        except OSError:
            pass
        with self.lock:
            self._socks.discard(s)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.target_port is None:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
                upstream.settimeout(None)
            except OSError as e:
                self.errors.append(f"upstream connect: {e}")
                client.close()
                continue
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self.lock:
                self.connections += 1
                self._socks.update((client, upstream))
            conn = {"withhold": set(), "closed": threading.Event()}
            threading.Thread(target=self._c2b, args=(client, upstream, conn), daemon=True).start()
            threading.Thread(target=self._b2c, args=(client, upstream, conn), daemon=True).start()

    # -- forwarding -------------------------------------------------------

    @staticmethod
    def _read_frame(s: socket.socket) -> bytes | None:
        head = b""
        while len(head) < 4:
            chunk = s.recv(4 - len(head))
            if not chunk:
                return None
            head += chunk
        (n,) = struct.unpack(">i", head)
        body = bytearray()
        while len(body) < n:
            chunk = s.recv(min(n - len(body), 1 << 20))
            if not chunk:
                return None
            body += chunk
        return head + bytes(body)

    def _c2b(self, client, upstream, conn):
        try:
            while not conn["closed"].is_set():
                fr = self._read_frame(client)
                if fr is None:
                    break
                api_key, _ver, corr = struct.unpack(">hhi", fr[4:12])
                with self.lock:
                    self.requests += 1
                    if self.armed and api_key in self.api_keys and self.drops < self.max_drops:
                        self.watched += 1
                        if (self.drop_every and self.watched % self.drop_every == 0) or (
                                self.drop_prob and self.rnd.random() < self.drop_prob):
                            conn["withhold"].add(corr)
                upstream.sendall(fr)
        except OSError:
            pass
        finally:
            conn["closed"].set()
            self._close(client)
            self._close(upstream)

    def _b2c(self, client, upstream, conn):
        try:
            while not conn["closed"].is_set():
                fr = self._read_frame(upstream)
                if fr is None:
                    break
                (corr,) = struct.unpack(">i", fr[4:8])
                if corr in conn["withhold"]:
                    with self.lock:
                        self.drops += 1
                        self.dropped.append(corr)
                    break  # the broker has answered; the client never sees it
                client.sendall(fr)
        except OSError:
            pass
        finally:
            conn["closed"].set()
            self._close(client)
            self._close(upstream)


@pytest.fixture
def proxied_broker(start_broker):
    proxy = DroppingProxy()
    try:
        b = start_broker({"advertised.listeners": f"PLAINTEXT://127.0.0.1:{proxy.port}"})
        proxy.target_port = b.port
        yield b, proxy
    finally:
        proxy.close()


def _produce_through_drops(bootstrap: str, topic: str, n: int, conf: dict):
    """Produce n values, partition i % 3, in paced bursts so that many Produce requests
    are made. Returns (deliveries by index, delivery errors)."""
    p = h.make_producer(bootstrap, h.with_debug(conf))
    reports: dict[int, tuple] = {}
    errors = []

    def cb(i):
        def _cb(err, msg):
            if err is not None:
                errors.append((i, err))
            else:
                if i in reports:
                    errors.append((i, f"delivery reported twice: {reports[i]} and "
                                      f"{(msg.partition(), msg.offset())}"))
                reports[i] = (msg.partition(), msg.offset())
        return _cb

    for i in range(n):
        while True:
            try:
                p.produce(topic, value=b"drop-%06d" % i, key=b"%d" % i, partition=i % 3,
                          on_delivery=cb(i))
                break
            except BufferError:
                p.poll(0.05)
        if i % 100 == 99:
            p.poll(0.01)  # paced: many small Produce requests
    assert p.flush(120) == 0, "messages still queued after flush(120)"
    return reports, errors


DROP_CLIENT_CONF = {
    "linger.ms": 2,
    "batch.num.messages": 50,
    "reconnect.backoff.ms": 20,
    "reconnect.backoff.max.ms": 200,
    "retry.backoff.ms": 20,
    "message.timeout.ms": 90000,
    "socket.timeout.ms": 10000,
    "log.connection.close": False,
}


@pytest.mark.timeout(180)
def test_idempotent_producer_has_no_duplicates_under_connection_drops(proxied_broker):
    broker, proxy = proxied_broker
    topic = h.unique("idem-drops")
    h.create_topic(broker.bootstrap, topic, 3)
    n = 5000
    proxy.armed = True
    reports, errors = _produce_through_drops(
        broker.bootstrap, topic, n, dict(DROP_CLIENT_CONF, **{"enable.idempotence": True}))
    proxy.armed = False
    print(f"proxy: connections={proxy.connections} requests={proxy.requests} "
          f"produce requests={proxy.watched} drops={proxy.drops}")
    assert proxy.drops > 0, "the proxy dropped no connection: the test proved nothing"
    assert errors == [], f"delivery errors: {errors[:10]}"
    assert len(reports) == n
    # acknowledged offsets: dense per partition, in production order
    for q in range(3):
        mine = sorted((off, i) for i, (pp, off) in reports.items() if pp == q)
        assert [off for off, _ in mine] == list(range(len(mine))), (
            f"partition {q}: acknowledged offsets not 0..{len(mine) - 1}")
        assert [i for _, i in mine] == sorted(i for _, i in mine), f"partition {q}: order"
    got = h.consume(broker.bootstrap, topic, ([0, 1, 2], n), timeout=120)
    values = [m.value for q in got for m in got[q]]
    dups = len(values) - len(set(values))
    print(f"read back {len(values)} records, {len(set(values))} distinct, {dups} duplicates")
    assert dups == 0, f"{dups} duplicate records after {proxy.drops} dropped connections"
    assert sorted(values) == sorted(b"drop-%06d" % i for i in range(n))
    for q in range(3):
        want = [b"drop-%06d" % i for i in range(q, n, 3)]
        assert [m.value for m in got[q]] == want, f"partition {q}: order or content differs"
        assert [m.offset for m in got[q]] == list(range(len(want)))
        assert h.watermarks(broker.bootstrap, topic, q) == (0, len(want))


@pytest.mark.timeout(180)
def test_control_drops_duplicate_without_idempotence(proxied_broker):
    """The same drops with idempotence off: the proxy really makes the client retry
    batches the broker already appended (duplicates appear), so the test above
    exercises duplicate suppression."""
    broker, proxy = proxied_broker
    topic = h.unique("noidem-drops")
    h.create_topic(broker.bootstrap, topic, 3)
    n = 5000
    proxy.armed = True
    reports, errors = _produce_through_drops(
        broker.bootstrap, topic, n,
        dict(DROP_CLIENT_CONF, **{"enable.idempotence": False, "retries": 1000,
                                  "max.in.flight.requests.per.connection": 1}))
    proxy.armed = False
    print(f"proxy: connections={proxy.connections} requests={proxy.requests} "
          f"produce requests={proxy.watched} drops={proxy.drops}")
    assert proxy.drops > 0, "the proxy dropped no connection"
    assert proxy.connections > proxy.drops, "clients did not reconnect after the drops"
    assert errors == [], f"delivery errors: {errors[:10]}"
    total = sum(h.watermarks(broker.bootstrap, topic, q)[1] for q in range(3))
    got = h.consume(broker.bootstrap, topic, ([0, 1, 2], total), timeout=120)
    values = [m.value for q in got for m in got[q]]
    print(f"without idempotence: {len(values)} records for {n} produced, "
          f"{len(values) - len(set(values))} duplicates")
    assert set(values) == {b"drop-%06d" % i for i in range(n)}
    assert len(values) > n, "no duplicate without idempotence: the drops did not cause retries"


# --------------------------------------------------------------------------
# producer-state rules on the wire
# --------------------------------------------------------------------------


class Wire:
    """Raw requests on one connection to the broker."""

    def __init__(self, port: int):
        self.port = port
        self.sock = w.connect(port)
        self.corr = 100

    def close(self):
        self.sock.close()

    def call(self, payload_fn, *args, **kw):
        self.corr += 1
        resp = w.roundtrip(self.sock, payload_fn(self.corr, *args, **kw))
        return resp

    def init_producer_id(self, api_version: int = 1, **kw) -> dict:
        resp = self.call(w.init_producer_id_request, api_version=api_version, **kw)
        out = w.parse_init_producer_id_response(resp, api_version)
        assert out["correlation_id"] == self.corr
        return out

    def produce(self, topic: str, partition: int, batch: bytes, api_version: int = 7):
        resp = self.call(w.produce_request, topic, partition, batch, api_version=api_version)
        corr, parts, _ = w.parse_produce_response(resp, api_version)
        assert corr == self.corr
        return parts[(topic, partition)]

    def log_end(self, topic: str, partition: int, isolation_level: int = 0) -> int:
        resp = self.call(w.list_offsets_request_v2, topic, [(partition, -1)], isolation_level)
        _, parts = w.parse_list_offsets_v2(resp)
        err, _, off = parts[(topic, partition)]
        assert err == 0, f"ListOffsets error {err}"
        return off


def _batch(pid, epoch, seq, values, ts=None):
    return w.record_batch_v2([(b"k", v) for v in values], producer_id=pid, producer_epoch=epoch,
                             base_sequence=seq, base_timestamp=ts or h.base_ts())


def test_wire_init_producer_id_and_sequence_rules(broker):
    topic = h.unique("seq")
    h.create_topic(broker.bootstrap, topic, 1)
    c = Wire(broker.port)
    try:
        ipid = c.init_producer_id(api_version=1, transactional_id=None,
                                  transaction_timeout_ms=60000)
        assert ipid["error_code"] == 0, ipid
        pid = ipid["producer_id"]
        assert pid >= 0 and ipid["producer_epoch"] == 0, ipid

        a = _batch(pid, 0, 0, [b"a0", b"a1", b"a2"])
        r = c.produce(topic, 0, a)
        assert (r["error_code"], r["base_offset"]) == (0, 0), r
        assert c.log_end(topic, 0) == 3

        # the same batch again: acknowledged with its original offset, not appended
        r = c.produce(topic, 0, a)
        assert (r["error_code"], r["base_offset"]) == (0, 0), f"duplicate answered {r}"
        assert c.log_end(topic, 0) == 3, "duplicate batch was appended"

        # a gap in the sequence
        r = c.produce(topic, 0, _batch(pid, 0, 5, [b"gap"]))
        assert r["error_code"] == w.ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, f"gap answered {r}"
        assert c.log_end(topic, 0) == 3

        # the next sequence is appended
        b = _batch(pid, 0, 3, [b"b0", b"b1"])
        r = c.produce(topic, 0, b)
        assert (r["error_code"], r["base_offset"]) == (0, 3), r
        assert c.log_end(topic, 0) == 5

        # an older batch (one of the last five) is still recognised as a duplicate
        r = c.produce(topic, 0, a)
        assert (r["error_code"], r["base_offset"]) == (0, 0), f"older duplicate answered {r}"
        r = c.produce(topic, 0, b)
        assert (r["error_code"], r["base_offset"]) == (0, 3), f"last duplicate answered {r}"
        assert c.log_end(topic, 0) == 5

        # a new epoch starts at sequence 0 ...
        r = c.produce(topic, 0, _batch(pid, 1, 0, [b"e1"]))
        assert (r["error_code"], r["base_offset"]) == (0, 5), r
        assert c.log_end(topic, 0) == 6
        # ... after which the old epoch is fenced
        r = c.produce(topic, 0, _batch(pid, 0, 5, [b"stale"]))
        assert r["error_code"] == w.ERR_INVALID_PRODUCER_EPOCH, f"stale epoch answered {r}"
        # a new epoch that does not start at 0 is out of order
        r = c.produce(topic, 0, _batch(pid, 2, 7, [b"e2"]))
        assert r["error_code"] == w.ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, f"epoch 2 seq 7: {r}"
        # a gap in the new epoch
        r = c.produce(topic, 0, _batch(pid, 1, 3, [b"gap1"]))
        assert r["error_code"] == w.ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, f"epoch 1 gap: {r}"
        assert c.log_end(topic, 0) == 6

        # each InitProducerId without a transactional id hands out a new producer id
        again = c.init_producer_id(api_version=1, transactional_id=None)
        assert again["error_code"] == 0 and again["producer_id"] >= 0, again
        assert again["producer_id"] != pid and again["producer_epoch"] == 0, again
        # whose sequences are independent of the first producer's
        r = c.produce(topic, 0, _batch(again["producer_id"], 0, 0, [b"p2"]))
        assert (r["error_code"], r["base_offset"]) == (0, 6), r
        assert c.log_end(topic, 0) == 7
    finally:
        c.close()

    got = h.consume(broker.bootstrap, topic, {0: 7})
    assert [m.value for m in got[0]] == [b"a0", b"a1", b"a2", b"b0", b"b1", b"e1", b"p2"]
    assert [m.offset for m in got[0]] == list(range(7))


def test_wire_init_producer_id_flexible_versions(broker):
    """InitProducerId v2 (flexible) and v3 (with producer id/epoch) without a
    transactional id also hand out fresh producer ids at epoch 0."""
    with w.connect(broker.port) as s:
        _, err, apis, _ = w.parse_api_versions_v0(w.roundtrip(s, w.api_versions_request_v0(1)))
    assert err == 0 and w.API_INIT_PRODUCER_ID in apis, f"InitProducerId not advertised: {apis}"
    lo, hi = apis[w.API_INIT_PRODUCER_ID]
    # librdkafka 2.x uses up to v4, the Java client 3.9 up to v5 (and copes with less)
    assert lo == 0 and hi >= 3, f"InitProducerId versions {lo}..{hi}"
    versions = list(range(lo, min(hi, 4) + 1))
    c = Wire(broker.port)
    try:
        seen = set()
        for v in versions:
            r = c.init_producer_id(api_version=v, transactional_id=None)
            assert r["error_code"] == 0 and r["producer_id"] >= 0, (v, r)
            assert r["producer_epoch"] == 0, (v, r)
            seen.add(r["producer_id"])
        assert len(seen) == len(versions), f"producer ids handed out twice: {seen}"
    finally:
        c.close()


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_producer_state_survives_restart(start_broker, how):
    broker = start_broker()
    topic = h.unique(f"pstate-{how}")
    h.create_topic(broker.bootstrap, topic, 2)
    c = Wire(broker.port)
    ipid = c.init_producer_id(api_version=1, transactional_id=None)
    assert ipid["error_code"] == 0, ipid
    pid = ipid["producer_id"]
    # partition 0: three batches; partition 1: one
    b0 = [_batch(pid, 0, 5 * k, [b"p0-%d-%d" % (k, j) for j in range(5)]) for k in range(3)]
    for k, b in enumerate(b0):
        r = c.produce(topic, 0, b)
        assert (r["error_code"], r["base_offset"]) == (0, 5 * k), r
    b1 = _batch(pid, 0, 0, [b"p1-0", b"p1-1"])
    r = c.produce(topic, 1, b1)
    assert (r["error_code"], r["base_offset"]) == (0, 0), r
    c.close()

    if how == "sigterm":
        assert broker.stop() == 0, broker.log_tail()
    else:
        broker.kill()
    broker.start()
    h.wait_for_topic(broker.bootstrap, topic, 2)

    c = Wire(broker.port)
    try:
        assert c.log_end(topic, 0) == 15 and c.log_end(topic, 1) == 2
        # the last acknowledged batch of each partition is still a duplicate
        r = c.produce(topic, 0, b0[-1])
        assert (r["error_code"], r["base_offset"]) == (0, 10), f"after {how}: {r}"
        r = c.produce(topic, 1, b1)
        assert (r["error_code"], r["base_offset"]) == (0, 0), f"after {how}: {r}"
        assert c.log_end(topic, 0) == 15 and c.log_end(topic, 1) == 2, "duplicate appended"
        # the sequence is known: a gap is refused, the next sequence appended
        r = c.produce(topic, 0, _batch(pid, 0, 20, [b"gap"]))
        assert r["error_code"] == w.ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, f"after {how}: {r}"
        r = c.produce(topic, 0, _batch(pid, 0, 15, [b"next"]))
        assert (r["error_code"], r["base_offset"]) == (0, 15), f"after {how}: {r}"
        r = c.produce(topic, 1, _batch(pid, 0, 2, [b"next1"]))
        assert (r["error_code"], r["base_offset"]) == (0, 2), f"after {how}: {r}"
        # a new producer id is not one handed out before the restart
        again = c.init_producer_id(api_version=1, transactional_id=None)
        assert again["error_code"] == 0 and again["producer_id"] >= 0, again
        assert again["producer_id"] != pid, f"producer id {pid} handed out again after {how}"
    finally:
        c.close()

    # and once more after a second restart, now from the state written after the first
    if how == "sigterm":
        assert broker.stop() == 0, broker.log_tail()
    else:
        broker.kill()
    broker.start()
    c = Wire(broker.port)
    try:
        r = c.produce(topic, 0, _batch(pid, 0, 15, [b"next"]))
        assert (r["error_code"], r["base_offset"]) == (0, 15), f"second restart: {r}"
        assert c.log_end(topic, 0) == 16
    finally:
        c.close()
    got = h.consume(broker.bootstrap, topic, {0: 16, 1: 3})
    assert [m.value for m in got[0]] == [b"p0-%d-%d" % (k, j) for k in range(3)
                                         for j in range(5)] + [b"next"]
    assert [m.value for m in got[1]] == [b"p1-0", b"p1-1", b"next1"]


def test_describe_producers_after_idempotent_produce(broker):
    """DescribeProducers v0 reports the idempotent producer's last sequence per
    partition (n records in partition q -> last_sequence n-1)."""
    topic = h.unique("descprod")
    h.create_topic(broker.bootstrap, topic, 3)
    p = _idempotent_producer(broker.bootstrap)
    counts = {0: 7, 1: 120, 2: 0}
    for q, n in counts.items():
        for i in range(n):
            p.produce(topic, value=b"%d-%d" % (q, i), partition=q)
    assert p.flush(30) == 0
    del p
    c = Wire(broker.port)
    try:
        resp = c.call(w.describe_producers_request_v0, [(topic, [0, 1, 2])])
        out = w.parse_describe_producers_v0(resp)
    finally:
        c.close()
    assert out["correlation_id"] == c.corr
    parts = out["partitions"]
    assert set(parts) == {(topic, 0), (topic, 1), (topic, 2)}, parts
    pids = set()
    for q, n in counts.items():
        part = parts[(topic, q)]
        assert part["error_code"] == 0, part
        if n == 0:
            assert part["active_producers"] == [], part
            continue
        assert len(part["active_producers"]) == 1, part
        ap = part["active_producers"][0]
        assert ap["producer_id"] >= 0 and ap["producer_epoch"] == 0, ap
        assert ap["last_sequence"] == n - 1, (q, ap)
        assert ap["current_txn_start_offset"] == -1, ap
        assert ap["last_timestamp"] > 0, ap
        pids.add(ap["producer_id"])
    assert len(pids) == 1, f"one producer, several ids: {pids}"
