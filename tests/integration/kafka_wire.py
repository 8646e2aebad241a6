"""Minimal hand-rolled Kafka wire-protocol helpers for the raw-socket tests.

Pure python, no dependencies: primitive encoders/decoders, request framing,
a record batch v2 builder with a table-based CRC-32C, and decoders for the
few responses the tests look at (ApiVersions, Produce).

Reference: https://kafka.apache.org/protocol (request header v1/v2, response
header v0/v1, record batch magic v2).
"""

from __future__ import annotations

import socket
import struct
import time

# --------------------------------------------------------------------------
# CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, table driven.
# --------------------------------------------------------------------------


def _make_crc32c_table():
    table = []
    for i in range(256):
        crc = i
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0x82F63B78
            else:
                crc >>= 1
        table.append(crc)
    return tuple(table)


_CRC32C_TABLE = _make_crc32c_table()


def crc32c(data: bytes, crc: int = 0) -> int:
    crc ^= 0xFFFFFFFF
    table = _CRC32C_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283, "crc32c self-test failed"

# --------------------------------------------------------------------------
# Primitive encoders
# --------------------------------------------------------------------------


def int8(v: int) -> bytes:
    return struct.pack(">b", v)


def int16(v: int) -> bytes:
    return struct.pack(">h", v)


def int32(v: int) -> bytes:
    return struct.pack(">i", v)


def uint32(v: int) -> bytes:
    return struct.pack(">I", v)


def int64(v: int) -> bytes:
    return struct.pack(">q", v)


def string(s: str | None) -> bytes:
    """STRING / NULLABLE_STRING: int16 length + utf-8 bytes (-1 = null)."""
    if s is None:
        return int16(-1)
    b = s.encode("utf-8")
    return int16(len(b)) + b


def nbytes(b: bytes | None) -> bytes:
    """BYTES / NULLABLE_BYTES: int32 length + bytes (-1 = null)."""
    if b is None:
        return int32(-1)
    return int32(len(b)) + b


def uvarint(v: int) -> bytes:
    """UNSIGNED_VARINT (protobuf style, 7 bits per byte)."""
    if v < 0:
        raise ValueError("uvarint must be >= 0")
    out = bytearray()
    while True:
        byte = v & 0x7F
        v >>= 7
        if v:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def varint(v: int) -> bytes:
    """VARINT / VARLONG: zig-zag encoded signed value."""
    return uvarint((v << 1) ^ (v >> 63))


def compact_string(s: str | None) -> bytes:
    """COMPACT_STRING / COMPACT_NULLABLE_STRING: uvarint(len+1) + bytes."""
    if s is None:
        return uvarint(0)
    b = s.encode("utf-8")
    return uvarint(len(b) + 1) + b


def compact_bytes(b: bytes | None) -> bytes:
    if b is None:
        return uvarint(0)
    return uvarint(len(b) + 1) + b


def array(items: list[bytes]) -> bytes:
    """ARRAY: int32 count + elements."""
    return int32(len(items)) + b"".join(items)


def compact_array(items: list[bytes] | None) -> bytes:
    if items is None:
        return uvarint(0)
    return uvarint(len(items) + 1) + b"".join(items)


EMPTY_TAGGED_FIELDS = uvarint(0)

# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------


class Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise ValueError(
                f"short read: need {n} bytes at {self.pos}, have {len(self.data) - self.pos}"
            )
        b = self.data[self.pos:self.pos + n]
        self.pos += n
        return b

    def int8(self) -> int:
        return struct.unpack(">b", self._take(1))[0]

    def int16(self) -> int:
        return struct.unpack(">h", self._take(2))[0]

    def int32(self) -> int:
        return struct.unpack(">i", self._take(4))[0]

    def uint32(self) -> int:
        return struct.unpack(">I", self._take(4))[0]

    def int64(self) -> int:
        return struct.unpack(">q", self._take(8))[0]

    def uvarint(self) -> int:
        shift = 0
        result = 0
        while True:
            b = self._take(1)[0]
            result |= (b & 0x7F) << shift
            if not b & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise ValueError("varint too long")

    def varint(self) -> int:
        v = self.uvarint()
        return (v >> 1) ^ -(v & 1)

    def string(self) -> str | None:
        n = self.int16()
        if n < 0:
            return None
        return self._take(n).decode("utf-8")

    def nbytes(self) -> bytes | None:
        n = self.int32()
        if n < 0:
            return None
        return self._take(n)

    def compact_string(self) -> str | None:
        n = self.uvarint()
        if n == 0:
            return None
        return self._take(n - 1).decode("utf-8")

    def compact_bytes(self) -> bytes | None:
        n = self.uvarint()
        if n == 0:
            return None
        return self._take(n - 1)

    def tagged_fields(self) -> dict[int, bytes]:
        out = {}
        for _ in range(self.uvarint()):
            tag = self.uvarint()
            size = self.uvarint()
            out[tag] = self._take(size)
        return out

    def raw(self, n: int) -> bytes:
        return self._take(n)


# --------------------------------------------------------------------------
# Framing
# --------------------------------------------------------------------------

API_PRODUCE = 0
API_FETCH = 1
API_LIST_OFFSETS = 2
API_METADATA = 3
API_API_VERSIONS = 18
API_CREATE_TOPICS = 19
API_DELETE_TOPICS = 20
API_OFFSET_FOR_LEADER_EPOCH = 23
API_DESCRIBE_CLUSTER = 60


def request_header_v1(api_key: int, api_version: int, correlation_id: int,
                      client_id: str | None = "vltava-tests") -> bytes:
    return int16(api_key) + int16(api_version) + int32(correlation_id) + string(client_id)


def request_header_v2(api_key: int, api_version: int, correlation_id: int,
                      client_id: str | None = "vltava-tests") -> bytes:
    # client_id stays a (non-compact) NULLABLE_STRING in header v2.
    return request_header_v1(api_key, api_version, correlation_id, client_id) + EMPTY_TAGGED_FIELDS


def frame(payload: bytes) -> bytes:
    return int32(len(payload)) + payload


def connect(port: int, host: str = "127.0.0.1", timeout: float = 10.0) -> socket.socket:
    s = socket.create_connection((host, port), timeout=timeout)
    s.settimeout(timeout)
    return s


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionClosed(f"connection closed after {len(buf)}/{n} bytes")
        buf += chunk
    return bytes(buf)


class ConnectionClosed(Exception):
    pass


def recv_frame(sock: socket.socket) -> bytes:
    (n,) = struct.unpack(">i", recv_exact(sock, 4))
    if n < 0 or n > 200 * 1024 * 1024:
        raise ValueError(f"bad response length {n}")
    return recv_exact(sock, n)


def roundtrip(sock: socket.socket, payload: bytes) -> bytes:
    sock.sendall(frame(payload))
    return recv_frame(sock)


def wait_closed(sock: socket.socket, timeout: float = 10.0) -> tuple[bool, bytes]:
    """Read until EOF/reset or timeout. Returns (closed, bytes_received)."""
    deadline = time.monotonic() + timeout
    got = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, bytes(got)
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            return False, bytes(got)
        except (ConnectionResetError, BrokenPipeError):
            return True, bytes(got)
        if not chunk:
            return True, bytes(got)
        got += chunk


# --------------------------------------------------------------------------
# Record batch v2
# --------------------------------------------------------------------------


def encode_record(offset_delta: int, timestamp_delta: int, key: bytes | None,
                  value: bytes | None, headers=()) -> bytes:
    body = bytearray()
    body += int8(0)  # attributes (unused)
    body += varint(timestamp_delta)
    body += varint(offset_delta)
    if key is None:
        body += varint(-1)
    else:
        body += varint(len(key)) + key
    if value is None:
        body += varint(-1)
    else:
        body += varint(len(value)) + value
    body += varint(len(headers))
    for hk, hv in headers:
        hkb = hk.encode("utf-8") if isinstance(hk, str) else hk
        body += varint(len(hkb)) + hkb
        if hv is None:
            body += varint(-1)
        else:
            body += varint(len(hv)) + hv
    return varint(len(body)) + bytes(body)


def record_batch(records, base_offset: int = 0, base_timestamp: int | None = None,
                 corrupt_crc: bool = False, producer_id: int = -1,
                 producer_epoch: int = -1, base_sequence: int = -1,
                 partition_leader_epoch: int = -1) -> bytes:
    """Build an uncompressed magic-v2 record batch.

    records: iterable of (key, value) or (key, value, headers) or
             (key, value, headers, timestamp_ms).
    """
    records = list(records)
    if not records:
        raise ValueError("empty batch")
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    encoded = []
    max_ts = base_timestamp
    for i, rec in enumerate(records):
        key, value = rec[0], rec[1]
        headers = rec[2] if len(rec) > 2 else ()
        ts = rec[3] if len(rec) > 3 else base_timestamp
        max_ts = max(max_ts, ts)
        encoded.append(encode_record(i, ts - base_timestamp, key, value, headers))
    after_crc = (
        int16(0)                      # attributes: no compression, CreateTime
        + int32(len(records) - 1)     # lastOffsetDelta
        + int64(base_timestamp)
        + int64(max_ts)
        + int64(producer_id)
        + int16(producer_epoch)
        + int32(base_sequence)
        + int32(len(records))
        + b"".join(encoded)
    )
    crc = crc32c(after_crc)
    if corrupt_crc:
        crc ^= 0xDEADBEEF
    after_length = int32(partition_leader_epoch) + int8(2) + uint32(crc) + after_crc
    return int64(base_offset) + int32(len(after_length)) + after_length


# --------------------------------------------------------------------------
# Requests / responses used by the tests
# --------------------------------------------------------------------------


def api_versions_request_v0(correlation_id: int, api_version: int = 0) -> bytes:
    return request_header_v1(API_API_VERSIONS, api_version, correlation_id)


def api_versions_request_v3(correlation_id: int, software_name: str = "vltava-tests",
                            software_version: str = "1.0", api_version: int = 3) -> bytes:
    return (request_header_v2(API_API_VERSIONS, api_version, correlation_id)
            + compact_string(software_name)
            + compact_string(software_version)
            + EMPTY_TAGGED_FIELDS)


def parse_api_versions_v0(payload: bytes):
    """Response header v0 + ApiVersions v0 body."""
    r = Reader(payload)
    corr = r.int32()
    err = r.int16()
    n = r.int32()
    apis = {}
    for _ in range(n):
        k, lo, hi = r.int16(), r.int16(), r.int16()
        apis[k] = (lo, hi)
    return corr, err, apis, r.remaining()


def parse_api_versions_v3(payload: bytes):
    """Response header v0 (ApiVersions is special) + ApiVersions v3 body."""
    r = Reader(payload)
    corr = r.int32()
    err = r.int16()
    n = r.uvarint() - 1
    apis = {}
    for _ in range(n):
        k, lo, hi = r.int16(), r.int16(), r.int16()
        r.tagged_fields()
        if k in apis:
            raise ValueError(f"api key {k} listed twice")
        apis[k] = (lo, hi)
    throttle = r.int32()
    tags = r.tagged_fields()
    return corr, err, apis, throttle, tags, r.remaining()


def produce_request(correlation_id: int, topic: str, partition: int, records: bytes,
                    api_version: int = 7, acks: int = -1, timeout_ms: int = 10000) -> bytes:
    """Produce v3..v8 (non-flexible)."""
    if not 3 <= api_version <= 8:
        raise ValueError("only non-flexible Produce v3..v8 supported")
    body = (string(None)              # transactional_id
            + int16(acks)
            + int32(timeout_ms)
            + array([string(topic) + array([int32(partition) + nbytes(records)])]))
    return request_header_v1(API_PRODUCE, api_version, correlation_id) + body


def parse_produce_response(payload: bytes, api_version: int = 7):
    """Returns (correlation_id, {(topic, partition): dict(error_code, base_offset, ...)})."""
    r = Reader(payload)
    corr = r.int32()
    out = {}
    for _ in range(r.int32()):
        name = r.string()
        for _ in range(r.int32()):
            p = {}
            idx = r.int32()
            p["error_code"] = r.int16()
            p["base_offset"] = r.int64()
            if api_version >= 2:
                p["log_append_time_ms"] = r.int64()
            if api_version >= 5:
                p["log_start_offset"] = r.int64()
            if api_version >= 8:
                p["record_errors"] = []
                for _ in range(r.int32()):
                    p["record_errors"].append((r.int32(), r.string()))
                p["error_message"] = r.string()
            out[(name, idx)] = p
    throttle = r.int32()
    return corr, out, throttle


def metadata_request_v1(correlation_id: int, topics: list[str] | None) -> bytes:
    body = int32(-1) if topics is None else array([string(t) for t in topics])
    return request_header_v1(API_METADATA, 1, correlation_id) + body


def describe_cluster_request_v0(correlation_id: int, include_authorized_operations: bool = False) -> bytes:
    """DescribeCluster v0 (flexible: request header v2)."""
    return (request_header_v2(API_DESCRIBE_CLUSTER, 0, correlation_id)
            + int8(1 if include_authorized_operations else 0)
            + EMPTY_TAGGED_FIELDS)


API_UNREGISTER_BROKER = 64


def unregister_broker_request_v0(correlation_id: int, broker_id: int) -> bytes:
    """UnregisterBroker v0 (flexible: request header v2)."""
    return request_header_v2(API_UNREGISTER_BROKER, 0, correlation_id) + int32(broker_id) + EMPTY_TAGGED_FIELDS


def _flexible_head(payload: bytes) -> tuple[Reader, dict]:
    """Response header v1 (correlation id + tagged fields), then the throttle time, error
    code and error message that open these flexible admin responses."""
    r = Reader(payload)
    out = {"correlation_id": r.int32()}
    r.tagged_fields()
    out["throttle_time_ms"] = r.int32()
    out["error_code"] = r.int16()
    out["error_message"] = r.compact_string()
    return r, out


def parse_unregister_broker_v0(payload: bytes) -> dict:
    r, out = _flexible_head(payload)
    r.tagged_fields()
    out["remaining"] = r.remaining()
    return out


def parse_describe_cluster_v0(payload: bytes):
    """Response header v1 (correlation id + tagged fields) + DescribeCluster v0 body."""
    r, out = _flexible_head(payload)
    out["cluster_id"] = r.compact_string()
    out["controller_id"] = r.int32()
    brokers = []
    for _ in range(r.uvarint() - 1):
        b = {"broker_id": r.int32(), "host": r.compact_string(), "port": r.int32(),
             "rack": r.compact_string()}
        r.tagged_fields()
        brokers.append(b)
    out["brokers"] = brokers
    out["cluster_authorized_operations"] = r.int32()
    r.tagged_fields()
    out["remaining"] = r.remaining()
    return out


def offset_for_leader_epoch_request_v3(correlation_id: int, topic: str, partitions) -> bytes:
    """OffsetForLeaderEpoch v3 (non-flexible). partitions: [(partition, current_leader_epoch,
    leader_epoch)]."""
    parts = [int32(p) + int32(cur) + int32(le) for p, cur, le in partitions]
    body = int32(-1) + array([string(topic) + array(parts)])  # replica_id -1: a consumer
    return request_header_v1(API_OFFSET_FOR_LEADER_EPOCH, 3, correlation_id) + body


def parse_offset_for_leader_epoch_v3(payload: bytes):
    """Returns (correlation_id, {(topic, partition): (error_code, leader_epoch, end_offset)})."""
    r = Reader(payload)
    corr = r.int32()
    r.int32()  # throttle_time_ms
    out = {}
    for _ in range(r.int32()):
        name = r.string()
        for _ in range(r.int32()):
            err = r.int16()
            p = r.int32()
            le = r.int32()
            end = r.int64()
            out[(name, p)] = (err, le, end)
    if r.remaining():
        raise ValueError(f"{r.remaining()} trailing bytes")
    return corr, out


# --------------------------------------------------------------------------
# Producer state and transactions (idempotence / exactly-once tests)
# --------------------------------------------------------------------------

API_FIND_COORDINATOR = 10
API_INIT_PRODUCER_ID = 22
API_DESCRIBE_PRODUCERS = 61
API_DESCRIBE_TRANSACTIONS = 65
API_LIST_TRANSACTIONS = 66

# error codes the producer-state tests look at
ERR_NONE = 0
ERR_OUT_OF_ORDER_SEQUENCE_NUMBER = 45
ERR_DUPLICATE_SEQUENCE_NUMBER = 46
ERR_INVALID_PRODUCER_EPOCH = 47
ERR_INVALID_TXN_STATE = 48
ERR_UNKNOWN_PRODUCER_ID = 59
ERR_PRODUCER_FENCED = 90

# attribute bits of a record batch v2
BATCH_ATTR_TRANSACTIONAL = 0x10
BATCH_ATTR_CONTROL = 0x20


def record_batch_v2(records, producer_id: int = -1, producer_epoch: int = -1,
                    base_sequence: int = -1, attributes: int = 0, base_offset: int = 0,
                    base_timestamp: int | None = None,
                    partition_leader_epoch: int = -1) -> bytes:
    """Like record_batch(), with the batch attributes given (e.g. BATCH_ATTR_TRANSACTIONAL).
    Uncompressed only: the compression bits of `attributes` must be 0."""
    records = list(records)
    if not records:
        raise ValueError("empty batch")
    if attributes & 0x07:
        raise ValueError("record_batch_v2 builds uncompressed batches only")
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    encoded = []
    max_ts = base_timestamp
    for i, rec in enumerate(records):
        key, value = rec[0], rec[1]
        headers = rec[2] if len(rec) > 2 else ()
        ts = rec[3] if len(rec) > 3 else base_timestamp
        max_ts = max(max_ts, ts)
        encoded.append(encode_record(i, ts - base_timestamp, key, value, headers))
    after_crc = (
        int16(attributes)
        + int32(len(records) - 1)
        + int64(base_timestamp)
        + int64(max_ts)
        + int64(producer_id)
        + int16(producer_epoch)
        + int32(base_sequence)
        + int32(len(records))
        + b"".join(encoded)
    )
    after_length = int32(partition_leader_epoch) + int8(2) + uint32(crc32c(after_crc)) + after_crc
    return int64(base_offset) + int32(len(after_length)) + after_length


def produce_request_txn(correlation_id: int, transactional_id: str | None, topic: str,
                        partition: int, records: bytes, api_version: int = 7, acks: int = -1,
                        timeout_ms: int = 10000) -> bytes:
    """Produce v3..v8 (non-flexible) with a transactional id."""
    if not 3 <= api_version <= 8:
        raise ValueError("only non-flexible Produce v3..v8 supported")
    body = (string(transactional_id)
            + int16(acks)
            + int32(timeout_ms)
            + array([string(topic) + array([int32(partition) + nbytes(records)])]))
    return request_header_v1(API_PRODUCE, api_version, correlation_id) + body


def init_producer_id_request(correlation_id: int, transactional_id: str | None = None,
                             transaction_timeout_ms: int = 60000, api_version: int = 1,
                             producer_id: int = -1, producer_epoch: int = -1) -> bytes:
    """InitProducerId v0..v4. v0/v1 are non-flexible; v2+ flexible (request header v2);
    v3+ carry the current producer id and epoch (KIP-360 epoch bump)."""
    if not 0 <= api_version <= 4:
        raise ValueError("InitProducerId v0..v4 supported")
    if api_version < 2:
        return (request_header_v1(API_INIT_PRODUCER_ID, api_version, correlation_id)
                + string(transactional_id) + int32(transaction_timeout_ms))
    body = compact_string(transactional_id) + int32(transaction_timeout_ms)
    if api_version >= 3:
        body += int64(producer_id) + int16(producer_epoch)
    return (request_header_v2(API_INIT_PRODUCER_ID, api_version, correlation_id)
            + body + EMPTY_TAGGED_FIELDS)


def parse_init_producer_id_response(payload: bytes, api_version: int = 1) -> dict:
    """Returns dict(correlation_id, throttle_time_ms, error_code, producer_id, producer_epoch)."""
    r = Reader(payload)
    out = {"correlation_id": r.int32()}
    if api_version >= 2:
        r.tagged_fields()
    out["throttle_time_ms"] = r.int32()
    out["error_code"] = r.int16()
    out["producer_id"] = r.int64()
    out["producer_epoch"] = r.int16()
    if api_version >= 2:
        r.tagged_fields()
    if r.remaining():
        raise ValueError(f"{r.remaining()} trailing bytes in InitProducerId response")
    return out


def list_offsets_request_v2(correlation_id: int, topic: str, partitions,
                            isolation_level: int = 0) -> bytes:
    """ListOffsets v2 (non-flexible). partitions: [(partition, timestamp)] with timestamp
    -1 = latest (high watermark, or the last stable offset when isolation_level=1
    read_committed), -2 = earliest."""
    parts = [int32(p) + int64(ts) for p, ts in partitions]
    body = int32(-1) + int8(isolation_level) + array([string(topic) + array(parts)])
    return request_header_v1(API_LIST_OFFSETS, 2, correlation_id) + body


def parse_list_offsets_v2(payload: bytes):
    """Returns (correlation_id, {(topic, partition): (error_code, timestamp, offset)})."""
    r = Reader(payload)
    corr = r.int32()
    r.int32()  # throttle_time_ms
    out = {}
    for _ in range(r.int32()):
        name = r.string()
        for _ in range(r.int32()):
            p = r.int32()
            err = r.int16()
            ts = r.int64()
            off = r.int64()
            out[(name, p)] = (err, ts, off)
    if r.remaining():
        raise ValueError(f"{r.remaining()} trailing bytes in ListOffsets response")
    return corr, out


def find_coordinator_request_v1(correlation_id: int, key: str, key_type: int = 1) -> bytes:
    """FindCoordinator v1 (non-flexible); key_type 0 = group, 1 = transaction."""
    return (request_header_v1(API_FIND_COORDINATOR, 1, correlation_id)
            + string(key) + int8(key_type))


def parse_find_coordinator_v1(payload: bytes) -> dict:
    r = Reader(payload)
    out = {"correlation_id": r.int32(), "throttle_time_ms": r.int32(),
           "error_code": r.int16(), "error_message": r.string(), "node_id": r.int32(),
           "host": r.string(), "port": r.int32()}
    if r.remaining():
        raise ValueError(f"{r.remaining()} trailing bytes in FindCoordinator response")
    return out


def describe_producers_request_v0(correlation_id: int, topics) -> bytes:
    """DescribeProducers v0 (flexible). topics: [(topic, [partition, ...])]."""
    ts = [compact_string(t) + compact_array([int32(p) for p in parts]) + EMPTY_TAGGED_FIELDS
          for t, parts in topics]
    return (request_header_v2(API_DESCRIBE_PRODUCERS, 0, correlation_id)
            + compact_array(ts) + EMPTY_TAGGED_FIELDS)


def parse_describe_producers_v0(payload: bytes) -> dict:
    """Returns dict(correlation_id, throttle_time_ms, partitions={(topic, partition): dict(
    error_code, error_message, active_producers=[dict(producer_id, producer_epoch,
    last_sequence, last_timestamp, coordinator_epoch, current_txn_start_offset)])})."""
    r = Reader(payload)
    out = {"correlation_id": r.int32()}
    r.tagged_fields()
    out["throttle_time_ms"] = r.int32()
    parts = {}
    for _ in range(r.uvarint() - 1):
        name = r.compact_string()
        for _ in range(r.uvarint() - 1):
            idx = r.int32()
            p = {"error_code": r.int16(), "error_message": r.compact_string()}
            producers = []
            for _ in range(r.uvarint() - 1):
                producers.append({
                    "producer_id": r.int64(),
                    "producer_epoch": r.int32(),
                    "last_sequence": r.int32(),
                    "last_timestamp": r.int64(),
                    "coordinator_epoch": r.int32(),
                    "current_txn_start_offset": r.int64(),
                })
                r.tagged_fields()
            p["active_producers"] = producers
            r.tagged_fields()
            parts[(name, idx)] = p
        r.tagged_fields()
    r.tagged_fields()
    if r.remaining():
        raise ValueError(f"{r.remaining()} trailing bytes in DescribeProducers response")
    out["partitions"] = parts
    return out


def describe_transactions_request_v0(correlation_id: int, transactional_ids) -> bytes:
    """DescribeTransactions v0 (flexible)."""
    return (request_header_v2(API_DESCRIBE_TRANSACTIONS, 0, correlation_id)
            + compact_array([compact_string(t) for t in transactional_ids])
            + EMPTY_TAGGED_FIELDS)


def parse_describe_transactions_v0(payload: bytes) -> dict:
    """Returns dict(correlation_id, throttle_time_ms, transactions={transactional_id: dict(
    error_code, state, transaction_timeout_ms, transaction_start_time_ms, producer_id,
    producer_epoch, partitions={(topic, partition), ...})})."""
    r = Reader(payload)
    out = {"correlation_id": r.int32()}
    r.tagged_fields()
    out["throttle_time_ms"] = r.int32()
    txns = {}
    for _ in range(r.uvarint() - 1):
        t = {"error_code": r.int16()}
        tid = r.compact_string()
        t["state"] = r.compact_string()
        t["transaction_timeout_ms"] = r.int32()
        t["transaction_start_time_ms"] = r.int64()
        t["producer_id"] = r.int64()
        t["producer_epoch"] = r.int16()
        parts = set()
        for _ in range(r.uvarint() - 1):
            topic = r.compact_string()
            for _ in range(r.uvarint() - 1):
                parts.add((topic, r.int32()))
            r.tagged_fields()
        t["partitions"] = parts
        r.tagged_fields()
        txns[tid] = t
    r.tagged_fields()
    if r.remaining():
        raise ValueError(f"{r.remaining()} trailing bytes in DescribeTransactions response")
    out["transactions"] = txns
    return out


def list_transactions_request_v0(correlation_id: int, state_filters=(),
                                 producer_id_filters=()) -> bytes:
    """ListTransactions v0 (flexible)."""
    return (request_header_v2(API_LIST_TRANSACTIONS, 0, correlation_id)
            + compact_array([compact_string(s) for s in state_filters])
            + compact_array([int64(p) for p in producer_id_filters])
            + EMPTY_TAGGED_FIELDS)


def parse_list_transactions_v0(payload: bytes) -> dict:
    """Returns dict(correlation_id, throttle_time_ms, error_code, unknown_state_filters,
    transactions={transactional_id: (producer_id, state)})."""
    r = Reader(payload)
    out = {"correlation_id": r.int32()}
    r.tagged_fields()
    out["throttle_time_ms"] = r.int32()
    out["error_code"] = r.int16()
    unknown = []
    for _ in range(r.uvarint() - 1):
        unknown.append(r.compact_string())
    out["unknown_state_filters"] = unknown
    txns = {}
    for _ in range(r.uvarint() - 1):
        tid = r.compact_string()
        pid = r.int64()
        state = r.compact_string()
        r.tagged_fields()
        if tid in txns:
            raise ValueError(f"transactional id {tid!r} listed twice")
        txns[tid] = (pid, state)
    r.tagged_fields()
    if r.remaining():
        raise ValueError(f"{r.remaining()} trailing bytes in ListTransactions response")
    out["transactions"] = txns
    return out


def request(port: int, payload: bytes, host: str = "127.0.0.1", timeout: float = 10.0) -> bytes:
    """One request on a fresh connection; returns the response frame."""
    with connect(port, host, timeout=timeout) as s:
        return roundtrip(s, payload)


# --------------------------------------------------------------------------
# Classic group protocol (non-flexible versions): JoinGroup v0/v5,
# SyncGroup v0/v3, OffsetCommit v2/v7, LeaveGroup v0/v3.
# --------------------------------------------------------------------------

API_OFFSET_COMMIT = 8
API_JOIN_GROUP = 11
API_LEAVE_GROUP = 13
API_SYNC_GROUP = 14


def join_group_request(correlation_id: int, version: int, group: str, member_id: str,
                       session_timeout_ms: int, rebalance_timeout_ms: int | None = None,
                       protocols=(("range", b""),), instance_id: str | None = None,
                       protocol_type: str = "consumer") -> bytes:
    """JoinGroup v0 (no rebalance timeout field) or v5."""
    assert version in (0, 5)
    body = string(group) + int32(session_timeout_ms)
    if version >= 1:
        body += int32(rebalance_timeout_ms)
    body += string(member_id)
    if version >= 5:
        body += string(instance_id)
    body += string(protocol_type) + array([string(n) + nbytes(m) for n, m in protocols])
    return request_header_v1(API_JOIN_GROUP, version, correlation_id) + body


def parse_join_group(payload: bytes, version: int) -> dict:
    r = Reader(payload)
    out = {"correlation_id": r.int32()}
    if version >= 2:
        out["throttle_time_ms"] = r.int32()
    out.update(error_code=r.int16(), generation_id=r.int32(), protocol_name=r.string(),
               leader=r.string(), member_id=r.string())
    members = []
    for _ in range(r.int32()):
        m = {"member_id": r.string()}
        if version >= 5:
            m["group_instance_id"] = r.string()
        m["metadata"] = r.nbytes()
        members.append(m)
    out["members"] = members
    if r.remaining():
        raise ValueError(f"{r.remaining()} trailing bytes in JoinGroup response")
    return out


def sync_group_request(correlation_id: int, version: int, group: str, generation_id: int,
                       member_id: str, assignments=(), instance_id: str | None = None) -> bytes:
    """SyncGroup v0 or v3. assignments: [(member_id, bytes)]."""
    assert version in (0, 3)
    body = string(group) + int32(generation_id) + string(member_id)
    if version >= 3:
        body += string(instance_id)
    body += array([string(m) + nbytes(a) for m, a in assignments])
    return request_header_v1(API_SYNC_GROUP, version, correlation_id) + body


def parse_sync_group(payload: bytes, version: int) -> dict:
    r = Reader(payload)
    out = {"correlation_id": r.int32()}
    if version >= 1:
        out["throttle_time_ms"] = r.int32()
    out.update(error_code=r.int16(), assignment=r.nbytes())
    if r.remaining():
        raise ValueError(f"{r.remaining()} trailing bytes in SyncGroup response")
    return out


def offset_commit_request(correlation_id: int, version: int, group: str, generation_id: int,
                          member_id: str, offsets, instance_id: str | None = None) -> bytes:
    """OffsetCommit v2 or v7. offsets: [(topic, partition, offset)]."""
    assert version in (2, 7)
    body = string(group) + int32(generation_id) + string(member_id)
    if version == 2:
        body += int64(-1)  # retention_time_ms: the broker's default
    if version >= 7:
        body += string(instance_id)
    by_topic: dict[str, list] = {}
    for t, p, o in offsets:
        by_topic.setdefault(t, []).append((p, o))
    topics = []
    for t, parts in by_topic.items():
        ps = []
        for p, o in parts:
            ps.append(int32(p) + int64(o) + (int32(-1) if version >= 6 else b"") + string(None))
        topics.append(string(t) + array(ps))
    return request_header_v1(API_OFFSET_COMMIT, version, correlation_id) + body + array(topics)


def parse_offset_commit(payload: bytes, version: int) -> dict:
    """Returns {"correlation_id", "errors": {(topic, partition): error_code}}."""
    r = Reader(payload)
    out = {"correlation_id": r.int32(), "errors": {}}
    if version >= 3:
        out["throttle_time_ms"] = r.int32()
    for _ in range(r.int32()):
        t = r.string()
        for _ in range(r.int32()):
            p = r.int32()
            out["errors"][(t, p)] = r.int16()
    if r.remaining():
        raise ValueError(f"{r.remaining()} trailing bytes in OffsetCommit response")
    return out


def leave_group_request(correlation_id: int, version: int, group: str, member_id: str,
                        instance_id: str | None = None) -> bytes:
    """LeaveGroup v0 (one member) or v3 (a list of members; one here)."""
    assert version in (0, 3)
    body = string(group)
    if version >= 3:
        body += array([string(member_id) + string(instance_id)])
    else:
        body += string(member_id)
    return request_header_v1(API_LEAVE_GROUP, version, correlation_id) + body


def parse_leave_group(payload: bytes, version: int) -> dict:
    r = Reader(payload)
    out = {"correlation_id": r.int32()}
    if version >= 1:
        out["throttle_time_ms"] = r.int32()
    out["error_code"] = r.int16()
    if version >= 3:
        out["members"] = [{"member_id": r.string(), "group_instance_id": r.string(),
                           "error_code": r.int16()} for _ in range(r.int32())]
    if r.remaining():
        raise ValueError(f"{r.remaining()} trailing bytes in LeaveGroup response")
    return out


# --------------------------------------------------------------------------
# Fetch v4 (non-flexible), and the records of uncompressed v2 batches
# --------------------------------------------------------------------------


def fetch_request_v4(correlation_id: int, topic: str, partition: int, offset: int,
                     max_wait_ms: int, min_bytes: int = 1, max_bytes: int = 1 << 20,
                     isolation_level: int = 0) -> bytes:
    """A consumer's Fetch v4 for one partition."""
    body = (int32(-1) + int32(max_wait_ms) + int32(min_bytes) + int32(max_bytes)
            + int8(isolation_level)
            + array([string(topic) + array([int32(partition) + int64(offset) + int32(max_bytes)])]))
    return request_header_v1(API_FETCH, 4, correlation_id) + body


def parse_fetch_v4(payload: bytes) -> tuple[int, dict]:
    """(correlation_id, {(topic, partition): {error_code, high_watermark, last_stable_offset,
    records}})."""
    r = Reader(payload)
    corr = r.int32()
    r.int32()  # throttle
    out = {}
    for _ in range(r.int32()):
        name = r.string()
        for _ in range(r.int32()):
            idx, err, hw, lso = r.int32(), r.int16(), r.int64(), r.int64()
            n = r.int32()
            for _ in range(max(n, 0)):
                r.int64(), r.int64()
            out[(name, idx)] = {"error_code": err, "high_watermark": hw,
                                "last_stable_offset": lso, "records": r.nbytes() or b""}
    if r.remaining():
        raise ValueError(f"{r.remaining()} trailing bytes in Fetch v4 response")
    return corr, out


def decode_records(data: bytes) -> list[tuple[int, bytes | None, bytes | None]]:
    """(offset, key, value) of every record in uncompressed v2 batches; a partial batch at
    the end (allowed in a Fetch response) is ignored."""
    out = []
    pos = 0
    while pos + 12 <= len(data):
        base, length = struct.unpack_from(">qi", data, pos)
        if pos + 12 + length > len(data):
            break
        r = Reader(data[pos + 12:pos + 12 + length])
        r.int32(), r.int8(), r.uint32()          # leader epoch, magic, crc
        attrs = r.int16()
        if attrs & 0x07:
            raise ValueError("decode_records reads uncompressed batches only")
        r.int32(), r.int64(), r.int64(), r.int64(), r.int16(), r.int32()
        for _ in range(r.int32()):
            r.varint()                            # record length
            r.int8()
            r.varint()                            # timestamp delta
            delta = r.varint()
            kn = r.varint()
            key = None if kn < 0 else r.raw(kn)
            vn = r.varint()
            value = None if vn < 0 else r.raw(vn)
            for _ in range(r.varint()):
                r.raw(r.varint())
                hn = r.varint()
                if hn >= 0:
                    r.raw(hn)
            if not attrs & BATCH_ATTR_CONTROL:
                out.append((base + delta, key, value))
        pos += 12 + length
    return out


# --------------------------------------------------------------------------
# Old formats: Produce v0-v2 and magic v0/v1 message sets
# --------------------------------------------------------------------------


def message_set_legacy(records, magic: int, base_timestamp: int | None = None) -> bytes:
    """A message set of magic v0 or v1 messages (one per (key, value)), uncompressed, with
    offsets 0.. and the CRC-32 (IEEE) Kafka's old formats use."""
    import zlib
    if magic not in (0, 1):
        raise ValueError("magic 0 or 1")
    if base_timestamp is None:
        base_timestamp = int(time.time() * 1000)
    out = b""
    for i, (key, value) in enumerate(records):
        body = int8(magic) + int8(0)
        if magic == 1:
            body += int64(base_timestamp + i)
        body += nbytes(key) + nbytes(value)
        msg = uint32(zlib.crc32(body)) + body
        out += int64(i) + int32(len(msg)) + msg
    return out


def produce_request_legacy(correlation_id: int, api_version: int, topic: str, partition: int,
                           records: bytes, acks: int = -1, timeout_ms: int = 10000) -> bytes:
    """Produce v0-v2: no transactional id."""
    if not 0 <= api_version <= 2:
        raise ValueError("Produce v0-v2 only")
    body = (int16(acks) + int32(timeout_ms)
            + array([string(topic) + array([int32(partition) + nbytes(records)])]))
    return request_header_v1(API_PRODUCE, api_version, correlation_id) + body
