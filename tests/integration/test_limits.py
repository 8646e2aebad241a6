"""The broker's bounds, set to small values and hit with real clients and raw
connections: max.connections, queued.max.requests (pipelined requests per
connection) and socket.request.max.bytes (the largest request frame)."""

from __future__ import annotations

import gc
import select
import time

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer

import helpers as h
import kafka_wire as w

LONG_WAIT_MS = 240_000   # a parked fetch outlasts every deadline here
DEADLINE_S = 60.0


def _served(port: int, corr: int):
    """A new connection that answers ApiVersions, or None if the broker dropped it."""
    s = w.connect(port, timeout=DEADLINE_S)
    try:
        _, err, apis, _ = w.parse_api_versions_v0(w.roundtrip(s, w.api_versions_request_v0(corr)))
        assert err == 0 and apis
        return s
    except (w.ConnectionClosed, ConnectionResetError, BrokenPipeError):
        s.close()
        return None


def test_max_connections(start_broker):
    """max.connections=3: a fourth connection is closed unanswered and a client finds no
    broker; once one closes, clients are served again."""
    b = start_broker({"max.connections": 3})
    held = []
    try:
        # the start-up check's connection may still hold a slot for a moment
        for i in range(3):
            held.append(h.wait_until(lambda: _served(b.port, i), DEADLINE_S, f"connection {i + 1} served"))
        with w.connect(b.port) as s:
            s.sendall(w.frame(w.api_versions_request_v0(9)))
            closed, data = w.wait_closed(s, DEADLINE_S)
            assert closed and data == b"", f"a 4th connection was served: {data!r}"
        a = h.admin(b.bootstrap)
        with pytest.raises(KafkaException) as e:
            a.list_topics(timeout=5)   # never served while the three are open
        assert e.value.args[0].code() == KafkaError._TRANSPORT, e.value
        del a
        gc.collect()
        held.pop().close()
        md = h.wait_until(lambda: _list_topics(b.bootstrap), DEADLINE_S, "a client served again")
        assert list(md.brokers) == [1], md.brokers
    finally:
        for s in held:
            s.close()
    assert b.is_running()


def _list_topics(bootstrap):
    try:
        return h.admin(bootstrap).list_topics(timeout=5)
    except KafkaException:
        return None


def _hw(bootstrap, topic):
    return h.watermarks(bootstrap, topic, 0)[1]


@pytest.mark.parametrize("queued", [1, None], ids=["queued.max.requests=1", "default"])
def test_queued_max_requests_bounds_pipelined_requests(start_broker, queued):
    """With queued.max.requests=1 a connection with parked fetches in flight is not read
    further: a Produce pipelined behind them is appended only once they are answered. With
    the default (500) it is appended at once."""
    b = start_broker({} if queued is None else {"queued.max.requests": queued})
    x, y = h.unique("parked"), h.unique("behind")
    h.create_topic(b.bootstrap, x, 1)
    h.create_topic(b.bootstrap, y, 1)
    fetches = 4
    with w.connect(b.port, timeout=DEADLINE_S) as s:
        for i in range(fetches):
            s.sendall(w.frame(w.fetch_request_v4(100 + i, x, 0, 0, max_wait_ms=LONG_WAIT_MS)))
        batch = w.record_batch([(b"k", b"pipelined")])
        s.sendall(w.frame(w.produce_request(200, y, 0, batch, acks=1)))
        if queued is None:
            h.wait_until(lambda: _hw(b.bootstrap, y) == 1, DEADLINE_S,
                         "the pipelined Produce appended while the fetches are parked")
        else:
            time.sleep(2)   # the fetches wait 240 s: nothing may be appended meanwhile
            assert _hw(b.bootstrap, y) == 0, (
                f"a Produce behind {fetches} parked fetches was read and appended with "
                f"queued.max.requests={queued}")
        assert not select.select([s], [], [], 0)[0], "a parked fetch was answered"
        # wake the fetches: an append to their partition
        p = h.make_producer(b.bootstrap)
        assert h.produce_all(p, x, [h.Rec(None, b"wake", None, None)], partition=0).errors() == {}
        for i in range(fetches):
            corr, res = w.parse_fetch_v4(w.recv_frame(s))
            assert corr == 100 + i
            assert [v for _, _, v in w.decode_records(res[(x, 0)]["records"])] == [b"wake"], res
        corr, res, _ = w.parse_produce_response(w.recv_frame(s), 7)
        assert corr == 200 and res[(y, 0)]["error_code"] == 0, res
    assert _hw(b.bootstrap, y) == 1


LIMIT = 100_000


def _produce_frame(topic: str, size: int) -> bytes:
    """A Produce v7 request of exactly `size` bytes (the frame's length prefix)."""
    base = len(w.produce_request(1, topic, 0, w.record_batch([(None, b"")], base_timestamp=0)))
    value_len = size - base
    for pad in range(value_len, value_len - 8, -1):   # the varint lengths grow with the value
        req = w.produce_request(1, topic, 0, w.record_batch([(None, b"x" * pad)], base_timestamp=0))
        if len(req) == size:
            return req
    raise AssertionError(f"cannot build a {size}-byte Produce request")


def test_socket_request_max_bytes(start_broker):
    """socket.request.max.bytes=100000 (the default is 100 MiB): a request of exactly that
    size is served; one byte more closes the connection, writes nothing, and a producer of
    such a batch fails while smaller records go through."""
    b = start_broker({"socket.request.max.bytes": LIMIT})
    topic = h.unique("frame")
    h.create_topic(b.bootstrap, topic, 1)
    with w.connect(b.port, timeout=DEADLINE_S) as s:
        _, res, _ = w.parse_produce_response(w.roundtrip(s, _produce_frame(topic, LIMIT)), 7)
        assert res[(topic, 0)]["error_code"] == 0, res
    with w.connect(b.port, timeout=DEADLINE_S) as s:
        s.sendall(w.frame(_produce_frame(topic, LIMIT + 1)))
        closed, data = w.wait_closed(s, DEADLINE_S)
        assert closed and data == b"", f"a {LIMIT + 1}-byte request was answered: {data[:40]!r}"
    assert h.watermarks(b.bootstrap, topic, 0) == (0, 1)

    p = Producer({"bootstrap.servers": b.bootstrap, "message.timeout.ms": 10_000, "linger.ms": 0})
    reports = []
    p.produce(topic, value=b"y" * (2 * LIMIT), partition=0, on_delivery=lambda e, m: reports.append(e))
    assert p.flush(DEADLINE_S) == 0
    assert len(reports) == 1 and reports[0] is not None, f"a 200 kB batch was accepted: {reports}"
    p.produce(topic, value=b"z" * 1000, partition=0, on_delivery=lambda e, m: reports.append(e))
    assert p.flush(DEADLINE_S) == 0
    assert len(reports) == 2 and reports[1] is None, reports
    got = h.consume(b.bootstrap, topic, {0: 2})
    assert [m.value[:1] for m in got[0]] == [b"x", b"z"] and got[0][1].value == b"z" * 1000
    assert "bad frame length" in b.log()
