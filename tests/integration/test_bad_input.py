"""Hostile and malformed input over raw sockets. The broker must close the
connection or answer with an error, never crash, and keep serving clients."""

import random
import socket
import struct

import pytest

import helpers as h
import kafka_wire as w

# apis the broker claims to implement, with the lowest max version a modern client needs
REQUIRED_APIS = {
    w.API_PRODUCE: 3,
    w.API_FETCH: 4,
    w.API_LIST_OFFSETS: 1,
    w.API_METADATA: 1,
    w.API_API_VERSIONS: 3,
    w.API_CREATE_TOPICS: 2,
    w.API_DELETE_TOPICS: 1,
    w.API_OFFSET_FOR_LEADER_EPOCH: 2,
    w.API_DESCRIBE_CLUSTER: 0,
}


@pytest.fixture(scope="module")
def target(module_broker):
    """The shared broker plus a topic with one partition, for the raw requests."""
    topic = h.unique("raw")
    h.create_topic(module_broker.bootstrap, topic, 1)
    return module_broker, topic


def _assert_alive_and_serving(b):
    assert b.is_running(), f"broker died\n{b.log_tail()}"
    # a fresh connection still gets a well-formed ApiVersions answer
    with w.connect(b.port) as s:
        corr, err, apis, _ = w.parse_api_versions_v0(w.roundtrip(s, w.api_versions_request_v0(77)))
        assert (corr, err) == (77, 0) and apis


def _closed_or_error(sock, timeout=5.0):
    """Returns 'closed' if the broker closed the connection, else the bytes it sent."""
    closed, data = w.wait_closed(sock, timeout)
    return "closed" if closed else data


# --------------------------------------------------------------------------
# framing
# --------------------------------------------------------------------------


def test_oversized_frame_closes_connection(target):
    b, _ = target
    with w.connect(b.port) as s:
        s.sendall(struct.pack(">i", 200 * 1024 * 1024) + b"\x00\x12\x00\x00" + b"\x00" * 100)
        closed, data = w.wait_closed(s, 10.0)
        assert closed, f"connection still open 10 s after a 200 MiB length prefix (got {data!r})"
    _assert_alive_and_serving(b)


def test_negative_frame_length_closes_connection(target):
    b, _ = target
    with w.connect(b.port) as s:
        s.sendall(struct.pack(">i", -5) + b"\x00" * 16)
        closed, data = w.wait_closed(s, 10.0)
        assert closed, f"connection still open after a negative length prefix (got {data!r})"
    _assert_alive_and_serving(b)


def test_http_request_closes_connection(target):
    b, _ = target
    with w.connect(b.port) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        closed, data = w.wait_closed(s, 10.0)
        assert closed, f"connection still open after an HTTP request (got {data!r})"
    _assert_alive_and_serving(b)


@pytest.mark.parametrize("payload", [
    b"\xff" * 12,                       # api key -1
    random.Random(1).randbytes(64),     # noise
    b"\x00",                            # shorter than a request header
    b"\x00\x12\x00\x00\x00\x00\x00\x01\x7f\xff",  # client id length 32767, missing bytes
])
def test_garbage_frame_closes_connection(target, payload):
    b, _ = target
    with w.connect(b.port) as s:
        s.sendall(w.frame(payload))
        res = _closed_or_error(s)
        assert res == "closed", f"broker answered garbage {payload!r} with {res!r}"
    _assert_alive_and_serving(b)


def test_unknown_api_key(target):
    b, _ = target
    with w.connect(b.port) as s:
        s.sendall(w.frame(w.request_header_v1(9999, 0, 4242) + b"\x00" * 8))
        res = _closed_or_error(s)
        if res != "closed":
            # an error answer is acceptable, if it is a framed response to this request
            assert len(res) >= 8, f"unexpected partial answer {res!r}"
            (n, corr) = struct.unpack(">ii", res[:8])
            assert corr == 4242 and n == len(res) - 4, f"malformed answer {res!r}"
    _assert_alive_and_serving(b)


def test_unknown_api_key_after_valid_requests_on_same_connection(target):
    b, _ = target
    with w.connect(b.port) as s:
        corr, err, apis, _ = w.parse_api_versions_v0(w.roundtrip(s, w.api_versions_request_v0(1)))
        assert (corr, err) == (1, 0)
        s.sendall(w.frame(w.request_header_v1(32000, 3, 2)))
        res = _closed_or_error(s)
        if res != "closed":
            assert struct.unpack(">i", res[4:8])[0] == 2, res
    _assert_alive_and_serving(b)


# --------------------------------------------------------------------------
# ApiVersions
# --------------------------------------------------------------------------


def test_api_versions_v0(target):
    b, _ = target
    with w.connect(b.port) as s:
        corr, err, apis, rest = w.parse_api_versions_v0(
            w.roundtrip(s, w.api_versions_request_v0(11)))
    assert (corr, err, rest) == (11, 0, 0)
    for key, min_max in REQUIRED_APIS.items():
        assert key in apis, f"api {key} missing from {sorted(apis)}"
        lo, hi = apis[key]
        assert 0 <= lo <= hi and hi >= min_max, f"api {key}: versions {lo}..{hi}"


def test_api_versions_unsupported_version(target):
    """A too-new ApiVersions request gets a v0 response with UNSUPPORTED_VERSION and
    the supported range of ApiVersions, so the client can retry with a lower version."""
    b, _ = target
    with w.connect(b.port) as s:
        payload = w.api_versions_request_v3(12345, api_version=99)
        resp = w.roundtrip(s, payload)
        corr, err, apis, rest = w.parse_api_versions_v0(resp)
        assert corr == 12345
        assert err == 35, f"error code {err}, expected 35 UNSUPPORTED_VERSION"
        assert rest == 0, f"{rest} trailing bytes: response is not ApiVersions v0 format"
        assert w.API_API_VERSIONS in apis, f"api list {apis} lacks ApiVersions (18)"
        lo, hi = apis[w.API_API_VERSIONS]
        assert lo == 0 and hi >= 3
        # the same connection is still usable with a supported version
        corr, err, apis3, throttle, tags, rest = w.parse_api_versions_v3(
            w.roundtrip(s, w.api_versions_request_v3(12346)))
        assert (corr, err, rest) == (12346, 0, 0)


def test_api_versions_v3_flexible(target):
    b, _ = target
    with w.connect(b.port) as s:
        resp = w.roundtrip(s, w.api_versions_request_v3(777))
    corr, err, apis, throttle, tags, rest = w.parse_api_versions_v3(resp)
    assert corr == 777
    assert err == 0
    assert rest == 0, f"{rest} trailing bytes after the v3 body"
    assert throttle == 0
    assert apis[w.API_PRODUCE][0] == 0, f"Produce min version {apis[w.API_PRODUCE][0]}"
    for key, min_max in REQUIRED_APIS.items():
        assert key in apis, f"api {key} missing from {sorted(apis)}"
        lo, hi = apis[key]
        assert 0 <= lo <= hi and hi >= min_max, f"api {key}: versions {lo}..{hi}"
    # v0 and v3 advertise the same thing
    with w.connect(b.port) as s:
        _, _, apis0, _ = w.parse_api_versions_v0(w.roundtrip(s, w.api_versions_request_v0(1)))
    assert apis0 == apis


def test_api_versions_v3_invalid_software_name(target):
    """KIP-511: client_software_name must match [a-zA-Z0-9](?:[a-zA-Z0-9\\-.]*[a-zA-Z0-9])?"""
    b, _ = target
    with w.connect(b.port) as s:
        s.sendall(w.frame(w.api_versions_request_v3(5, software_name="bad name!")))
        res = _closed_or_error(s)
        if res != "closed":
            corr, err, apis, throttle, tags, rest = w.parse_api_versions_v3(res[4:])
            assert corr == 5 and err == 42, f"error {err}, expected 42 INVALID_REQUEST"
    _assert_alive_and_serving(b)


def test_pipelined_requests_answered_in_order(target):
    b, _ = target
    with w.connect(b.port) as s:
        reqs = []
        for i in range(20):
            if i % 2:
                reqs.append(w.frame(w.api_versions_request_v0(1000 + i)))
            else:
                reqs.append(w.frame(w.metadata_request_v1(1000 + i, [])))
        s.sendall(b"".join(reqs))
        corrs = [struct.unpack(">i", w.recv_frame(s)[:4])[0] for _ in range(20)]
    assert corrs == [1000 + i for i in range(20)]


# --------------------------------------------------------------------------
# Produce with a hand-made record batch
# --------------------------------------------------------------------------


@pytest.mark.parametrize("version", [3, 7, 8])
def test_produce_handmade_batch_valid(target, version):
    """Sanity check of the hand-made encoder: a correct batch is accepted."""
    b, _ = target
    topic = h.unique(f"raw-ok-v{version}")
    h.create_topic(b.bootstrap, topic, 1)
    t = h.base_ts()
    batch = w.record_batch([(b"k1", b"v1", [("h", b"x")], t), (None, b"v2", (), t + 5)],
                           base_timestamp=t)
    with w.connect(b.port) as s:
        corr, res, _ = w.parse_produce_response(
            w.roundtrip(s, w.produce_request(31, topic, 0, batch, api_version=version)), version)
    assert corr == 31
    assert res[(topic, 0)]["error_code"] == 0, res
    assert res[(topic, 0)]["base_offset"] == 0
    got = h.consume(b.bootstrap, topic, {0: 2})
    assert [(m.offset, m.key, m.value, m.headers, m.timestamp) for m in got[0]] == [
        (0, b"k1", b"v1", (("h", b"x"),), t), (1, None, b"v2", (), t + 5)]


@pytest.mark.parametrize("version", [3, 7])
def test_produce_corrupt_crc(target, version):
    b, _ = target
    topic = h.unique(f"raw-crc-v{version}")
    h.create_topic(b.bootstrap, topic, 1)
    batch = w.record_batch([(b"k", b"v"), (b"k2", b"v2")], corrupt_crc=True)
    with w.connect(b.port) as s:
        corr, res, _ = w.parse_produce_response(
            w.roundtrip(s, w.produce_request(32, topic, 0, batch, api_version=version, acks=1)),
            version)
    assert corr == 32
    assert res[(topic, 0)]["error_code"] == 2, f"expected CORRUPT_MESSAGE (2): {res}"
    assert h.watermarks(b.bootstrap, topic, 0) == (0, 0)
    _assert_alive_and_serving(b)


def test_produce_batch_with_flipped_payload_byte(target):
    """CRC correct for the original bytes, then one record byte flipped in transit."""
    b, _ = target
    topic = h.unique("raw-flip")
    h.create_topic(b.bootstrap, topic, 1)
    batch = bytearray(w.record_batch([(b"key", b"value-" * 10)]))
    batch[-10] ^= 0x01
    with w.connect(b.port) as s:
        _, res, _ = w.parse_produce_response(
            w.roundtrip(s, w.produce_request(33, topic, 0, bytes(batch))), 7)
    assert res[(topic, 0)]["error_code"] == 2, res
    assert h.watermarks(b.bootstrap, topic, 0) == (0, 0)


def test_produce_truncated_batch(target):
    """records bytes ending in the middle of a batch -> CORRUPT_MESSAGE, nothing written."""
    b, _ = target
    topic = h.unique("raw-trunc")
    h.create_topic(b.bootstrap, topic, 1)
    batch = w.record_batch([(b"key", b"value-%d" % i) for i in range(5)])
    with w.connect(b.port) as s:
        s.sendall(w.frame(w.produce_request(34, topic, 0, batch[:-7])))
        res = _closed_or_error(s)
        if res != "closed":
            _, parts, _ = w.parse_produce_response(res[4:], 7)
            assert parts[(topic, 0)]["error_code"] in (2, 87), parts  # CORRUPT_MESSAGE/INVALID_RECORD
    assert h.watermarks(b.bootstrap, topic, 0) == (0, 0)
    _assert_alive_and_serving(b)


def test_produce_unknown_partition_and_topic(target):
    b, topic = target
    batch = w.record_batch([(b"k", b"v")])
    with w.connect(b.port) as s:
        _, res, _ = w.parse_produce_response(
            w.roundtrip(s, w.produce_request(35, topic, 7, batch)), 7)
        assert res[(topic, 7)]["error_code"] == 3, res   # UNKNOWN_TOPIC_OR_PARTITION
        ghost = h.unique("ghost")
        _, res, _ = w.parse_produce_response(
            w.roundtrip(s, w.produce_request(36, ghost, 0, batch)), 7)
        assert res[(ghost, 0)]["error_code"] == 3, res
    # producing never auto-creates topics by itself (only Metadata does)
    assert ghost not in h.all_topics(b.bootstrap)


def test_produce_nonzero_base_offset(target):
    """Client batches must have base offset 0 (Kafka: INVALID_RECORD, 87)."""
    b, _ = target
    topic = h.unique("raw-base")
    h.create_topic(b.bootstrap, topic, 1)
    batch = w.record_batch([(b"k", b"v")], base_offset=12345)
    with w.connect(b.port) as s:
        _, res, _ = w.parse_produce_response(
            w.roundtrip(s, w.produce_request(37, topic, 0, batch)), 7)
    assert res[(topic, 0)]["error_code"] == 87, res
    assert h.watermarks(b.bootstrap, topic, 0) == (0, 0)


def test_produce_acks_0_is_not_answered(target):
    """acks=0: no response; the next request on the same connection gets the next answer."""
    b, _ = target
    topic = h.unique("raw-acks0")
    h.create_topic(b.bootstrap, topic, 1)
    good = w.record_batch([(b"k", b"good")])
    with w.connect(b.port) as s:
        s.sendall(w.frame(w.produce_request(41, topic, 0, good, acks=0)))
        resp = w.roundtrip(s, w.api_versions_request_v0(42))
        assert struct.unpack(">i", resp[:4])[0] == 42, "an acks=0 produce must not be answered"
    got = h.consume(b.bootstrap, topic, {0: 1})
    assert [(m.offset, m.value) for m in got[0]] == [(0, b"good")]


def test_produce_acks_0_corrupt(target):
    """acks=0 with a corrupt batch: never answered (Kafka closes the connection to signal
    the error); nothing is written."""
    b, _ = target
    topic = h.unique("raw-acks0-bad")
    h.create_topic(b.bootstrap, topic, 1)
    bad = w.record_batch([(b"k", b"v")], corrupt_crc=True)
    with w.connect(b.port) as s:
        s.sendall(w.frame(w.produce_request(40, topic, 0, bad, acks=0)))
        try:
            s.sendall(w.frame(w.api_versions_request_v0(43)))
            corr = struct.unpack(">i", w.recv_frame(s)[:4])[0]
        except (w.ConnectionClosed, ConnectionResetError, BrokenPipeError):
            corr = "closed"
        assert corr in (43, "closed"), f"answer with correlation id {corr} to an acks=0 produce"
    assert h.watermarks(b.bootstrap, topic, 0) == (0, 0)
    _assert_alive_and_serving(b)


# --------------------------------------------------------------------------
# lying lengths inside request bodies
# --------------------------------------------------------------------------


@pytest.mark.parametrize("body", [
    w.int32(1000) + w.string("only-one"),             # array count larger than the content
    w.int32(1) + w.int16(30000) + b"short",            # string length past the frame end
    w.int32(2**31 - 1),                                # absurd array count, nothing else
    w.int32(-7),                                       # negative array count (only -1 is null)
], ids=["array-count", "string-length", "huge-count", "negative-count"])
def test_lying_lengths_in_metadata_request(target, body):
    b, _ = target
    with w.connect(b.port) as s:
        s.sendall(w.frame(w.request_header_v1(w.API_METADATA, 1, 50) + body))
        res = _closed_or_error(s)
        if res != "closed":
            assert struct.unpack(">i", res[4:8])[0] == 50, f"malformed answer {res[:64]!r}"
    _assert_alive_and_serving(b)


def test_lying_records_length_in_produce(target):
    b, _ = target
    topic = h.unique("raw-lie")
    h.create_topic(b.bootstrap, topic, 1)
    batch = w.record_batch([(b"k", b"v")])
    req = bytearray(w.produce_request(60, topic, 0, batch))
    # the records NULLABLE_BYTES length sits right before the batch: claim 1 MiB more
    pos = len(req) - len(batch) - 4
    assert struct.unpack(">i", req[pos:pos + 4])[0] == len(batch)
    req[pos:pos + 4] = struct.pack(">i", len(batch) + 1024 * 1024)
    with w.connect(b.port) as s:
        s.sendall(w.frame(bytes(req)))
        res = _closed_or_error(s)
        if res != "closed":
            _, parts, _ = w.parse_produce_response(res[4:], 7)
            assert parts[(topic, 0)]["error_code"] != 0, parts
    assert h.watermarks(b.bootstrap, topic, 0) == (0, 0)
    _assert_alive_and_serving(b)


def test_record_count_lies_in_batch(target):
    """Batch header claims more records than it contains (CRC recomputed to match)."""
    b, _ = target
    topic = h.unique("raw-count")
    h.create_topic(b.bootstrap, topic, 1)
    batch = bytearray(w.record_batch([(b"k", b"v"), (b"k", b"w")]))
    # records count is at offset 57 (8+4+4+1+4+2+4+8+8+8+2+4)
    assert struct.unpack(">i", batch[57:61])[0] == 2
    batch[57:61] = struct.pack(">i", 50)
    batch[17:21] = struct.pack(">I", w.crc32c(bytes(batch[21:])))
    with w.connect(b.port) as s:
        s.sendall(w.frame(w.produce_request(61, topic, 0, bytes(batch))))
        res = _closed_or_error(s)
        if res != "closed":
            _, parts, _ = w.parse_produce_response(res[4:], 7)
            assert parts[(topic, 0)]["error_code"] in (2, 87), parts
    assert h.watermarks(b.bootstrap, topic, 0) == (0, 0)
    _assert_alive_and_serving(b)


def test_half_request_then_disconnect(target):
    b, _ = target
    for _ in range(20):
        s = w.connect(b.port)
        s.sendall(struct.pack(">i", 100) + b"\x00\x03\x00\x01")
        s.close()
    s = w.connect(b.port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close
    s.sendall(struct.pack(">i", 100) + b"\x00")
    s.close()
    _assert_alive_and_serving(b)


# --------------------------------------------------------------------------
# after all that, real clients still work
# --------------------------------------------------------------------------


def test_zz_clients_still_work(target):
    b, topic = target
    p = h.make_producer(b.bootstrap)
    recs = [h.Rec(b"k%d" % i, b"after-abuse-%d" % i, [("i", b"%d" % i)], None) for i in range(100)]
    d = h.produce_all(p, topic, recs, partition=0)
    assert d.errors() == {}
    lo, hi = h.watermarks(b.bootstrap, topic, 0)
    assert (lo, hi) == (0, 100), "nothing from the raw tests should have landed here"
    got = h.consume(b.bootstrap, topic, {0: 100})
    assert [(m.offset, m.key, m.value) for m in got[0]] == [
        (i, r.key, r.value) for i, r in enumerate(recs)]
    assert b.is_running()
