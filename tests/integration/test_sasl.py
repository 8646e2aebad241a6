"""SASL with real clients: SaslHandshake v0-1 / SaslAuthenticate v0-2 on SASL_PLAINTEXT
and SASL_SSL listeners, PLAIN users from Kafka's JAAS syntax, SCRAM-SHA-256/512 users
stored salted in the metadata log (DescribeUserScramCredentials /
AlterUserScramCredentials, `vltava server --add-scram`, `vltava user`), bad input
(wrong password, unknown user or mechanism, garbage inside the exchange, requests
before authentication), and re-authentication (KIP-368, connections.max.reauth.ms).

Every broker here has a PLAINTEXT listener first (port 0, the fixtures' readiness
check) and its SASL listeners on ports picked free just before the start.
"""

from __future__ import annotations

import socket
import struct
import time

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import helpers as h
import kafka_wire as w
from conftest import BrokerStartError, free_port
from tls_certs import CertAuthority

N = 200
PLAIN_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
              'user_alice="alice-secret" user_bob="b\\"o\\\\b-secret";')
API_SASL_HANDSHAKE = 17
API_SASL_AUTHENTICATE = 36
API_METADATA = 3
ILLEGAL_SASL_STATE = 34
UNSUPPORTED_SASL_MECHANISM = 33
SASL_AUTHENTICATION_FAILED = 58


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    ca = CertAuthority(root / "ca")
    return {"ca": ca, "broker": ca.issue("broker", cn="localhost")}


def start_sasl_broker(start_broker, pki=None, extra: dict | None = None, listeners: dict | None = None,
                      args: list | None = None):
    """A broker with PLAINTEXT (port 0) plus SASL listeners ({name: protocol}; default
    SASL_PLAINTEXT with PLAIN and SCRAM, and SASL_SSL with SCRAM when `pki` is given).
    Returns (broker, {listener name: port})."""
    if listeners is None:
        listeners = {"SASL_PLAINTEXT": "SASL_PLAINTEXT"}
        if pki is not None:
            listeners["SASL_SSL"] = "SASL_SSL"
    for attempt in range(3):
        ports = {name: free_port() for name in listeners}
        sets = {
            "listeners": "PLAINTEXT://127.0.0.1:0," + ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()),
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,"
            + ",".join(f"{n}:{proto}" for n, proto in listeners.items()),
            "sasl.enabled.mechanisms": "PLAIN,SCRAM-SHA-256,SCRAM-SHA-512",
            "group.initial.rebalance.delay.ms": 0,
        }
        for n in listeners:
            sets[f"listener.name.{n.lower()}.plain.sasl.jaas.config"] = PLAIN_JAAS
        if pki is not None:
            sets["ssl.keystore.location"] = str(pki["broker"].keystore_pem)
            sets["ssl.truststore.location"] = str(pki["ca"].cert)
        sets.update(extra or {})
        try:
            b = start_broker(sets)
            return b, ports
        except BrokerStartError as e:
            if "Address already in use" not in str(e) or attempt == 2:
                raise


def ck_conf(port: int, mechanism: str, user: str, password: str, pki=None) -> dict:
    conf = {"bootstrap.servers": f"127.0.0.1:{port}",
            "security.protocol": "SASL_SSL" if pki else "SASL_PLAINTEXT",
            "sasl.mechanism": mechanism, "sasl.username": user, "sasl.password": password}
    if pki:
        conf["ssl.ca.location"] = str(pki["ca"].cert)
    return conf


def ck_round_trip(conf: dict, topic: str, n: int = N) -> None:
    """confluent-kafka: create the topic (admin), produce n with acks=all, read them all
    in a consumer group and commit."""
    admin = AdminClient(dict(conf))
    admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])[topic].result(30)
    p = Producer({**conf, "acks": "all", "linger.ms": 5})
    failed = []
    for i in range(n):
        p.produce(topic, key=str(i).encode(), value=f"v{i}".encode(),
                  on_delivery=lambda err, _m: err and failed.append(err))
    assert p.flush(60) == 0, "records still queued after 60 s"
    assert not failed, failed[:3]
    c = Consumer({**conf, "group.id": f"{topic}-g", "auto.offset.reset": "earliest",
                  "enable.auto.commit": False})
    try:
        c.subscribe([topic])
        seen = set()
        deadline = time.monotonic() + 60
        while len(seen) < n and time.monotonic() < deadline:
            m = c.poll(0.5)
            if m is not None and m.error() is None:
                seen.add(m.value())
        assert len(seen) == n, f"read {len(seen)} of {n}"
        c.commit(asynchronous=False)
        committed = c.committed([TopicPartition(topic, 0), TopicPartition(topic, 1)], timeout=30)
        assert sum(tp.offset for tp in committed) == n, committed
    finally:
        c.close()


def ck_auth_error(conf: dict) -> str:
    """The error librdkafka reports (error_cb) for a refused login."""
    from confluent_kafka import KafkaError
    errors = []
    p = Producer({**conf, "error_cb": errors.append})
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(e.code() == KafkaError._AUTHENTICATION for e in errors):
        p.poll(0.2)
    auth = [e for e in errors if e.code() == KafkaError._AUTHENTICATION]
    assert auth, f"no authentication error reported: {errors}"
    return str(auth[0])


# ------------------------------------------------------------------ raw wire


def handshake(sock, mechanism: str, version: int = 1, cid: int = 1) -> tuple[int, list[str]]:
    resp = w.roundtrip(sock, w.request_header_v1(API_SASL_HANDSHAKE, version, cid) + w.string(mechanism))
    r = w.Reader(resp)
    assert r.int32() == cid
    code = r.int16()
    mechanisms = [r.string() for _ in range(r.int32())]
    return code, mechanisms


def authenticate(sock, token: bytes, version: int = 1, cid: int = 2) -> tuple[int, str | None, bytes, int]:
    resp = w.roundtrip(sock, w.request_header_v1(API_SASL_AUTHENTICATE, version, cid) + w.nbytes(token))
    r = w.Reader(resp)
    assert r.int32() == cid
    code, message, auth_bytes = r.int16(), r.string(), r.nbytes()
    lifetime = r.int64() if version >= 1 else 0
    return code, message, auth_bytes, lifetime


def metadata(sock, cid: int = 9) -> bytes:
    """A Metadata v1 request for all topics; the raw response."""
    return w.roundtrip(sock, w.request_header_v1(API_METADATA, 1, cid) + w.int32(-1))


def plain_login(port: int, user: str, password: str, version: int = 1):
    s = w.connect(port)
    code, _ = handshake(s, "PLAIN")
    assert code == 0
    result = authenticate(s, b"\0" + user.encode() + b"\0" + password.encode(), version=version)
    return s, result


# ---------------------------------------------------------------------- tests


@pytest.mark.timeout(240)
def test_plain_with_confluent_kafka_and_raw_exchanges(start_broker):
    b, ports = start_sasl_broker(start_broker)
    port = ports["SASL_PLAINTEXT"]
    ck_round_trip(ck_conf(port, "PLAIN", "alice", "alice-secret"), h.unique("plain"))
    # the JAAS value's escapes: b"o\b-secret
    s, (code, message, _, _) = plain_login(port, "bob", 'b"o\\b-secret')
    assert code == 0, message
    assert metadata(s)
    s.close()
    # wrong password: SASL_AUTHENTICATION_FAILED, then the connection closes
    s, (code, message, _, _) = plain_login(port, "alice", "wrong")
    assert code == SASL_AUTHENTICATION_FAILED and "Invalid username or password" in message, (code, message)
    assert w.wait_closed(s)[0]
    # unknown user: the same
    s, (code, _, _, _) = plain_login(port, "mallory", "x")
    assert code == SASL_AUTHENTICATION_FAILED
    assert w.wait_closed(s)[0]
    # librdkafka reports the failure
    err = ck_auth_error(ck_conf(port, "PLAIN", "alice", "nope"))
    assert "Authentication failed" in err or "SASL" in err, err
    assert b.is_running()
    log = b.log()
    assert "failed SASL authentication" in log and "alice" in log and "nope" not in log and "wrong" not in log
