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

import subprocess
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import helpers as h
from helpers import ck_round_trip
import kafka_wire as w
from cluster import Cluster
from conftest import Broker, BrokerStartError, _report_logs, free_port, vltava_bin
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


@pytest.fixture
def sasl_broker(tmp_path, request):
    """Factory: sasl_broker(pki=None, extra=None, listeners=None, args=None) starts a
    broker with SASL listeners and extra `vltava server` arguments (--add-scram)."""
    started: list[Broker] = []

    def start(sets: dict) -> Broker:
        # a fixed PLAINTEXT port, so that a restart listens where it did
        port = int(sets["listeners"].split(",")[0].rsplit(":", 1)[1])
        b = Broker(tmp_path / f"broker{len(started)}", sets, port=port)
        b.args = list(start.args)
        started.append(b)
        return b.start()

    def factory(pki=None, extra=None, listeners=None, args=None):
        start.args = args or []
        return start_sasl_broker(start, pki, extra, listeners)

    yield factory
    _report_logs(request, started)
    for b in started:
        b.kill()


def start_sasl_broker(start_broker, pki=None, extra: dict | None = None, listeners: dict | None = None):
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
            "listeners": f"PLAINTEXT://127.0.0.1:{free_port()}," + ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()),
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
def test_plain_with_confluent_kafka_and_raw_exchanges(sasl_broker):
    b, ports = sasl_broker()
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
    log = "\n".join(line for line in b.log().splitlines() if not line.startswith("====="))
    assert "failed SASL authentication" in log and "alice" in log and "nope" not in log and "wrong" not in log


ADD_SCRAM = ["--add-scram", "SCRAM-SHA-512=[name=admin,password=admin-secret]",
             "--add-scram", "SCRAM-SHA-256=[name=admin,password=admin-secret,iterations=8192]"]


def ck_admin(conf: dict) -> AdminClient:
    return AdminClient(dict(conf))


def ck_upsert(admin: AdminClient, user: str, password: str, mechanism: str = "SCRAM-SHA-512",
              iterations: int = 4096):
    from confluent_kafka.admin import ScramCredentialInfo, ScramMechanism, UserScramCredentialUpsertion
    m = getattr(ScramMechanism, mechanism.replace("-", "_"))
    up = UserScramCredentialUpsertion(user, ScramCredentialInfo(m, iterations), password.encode())
    return admin.alter_user_scram_credentials([up])[user]


def ck_describe_users(admin: AdminClient) -> dict:
    """{user: sorted [(mechanism name, iterations)]}"""
    described = admin.describe_user_scram_credentials().result(30)
    return {u: sorted((str(i.mechanism).split(".")[-1], i.iterations) for i in d.scram_credential_infos)
            for u, d in described.items()}


@pytest.mark.timeout(300)
def test_scram_users_from_add_scram_and_admin_clients(sasl_broker, pki):
    b, ports = sasl_broker(pki, args=ADD_SCRAM)
    ssl_port, plain_port = ports["SASL_SSL"], ports["SASL_PLAINTEXT"]
    admin_conf = ck_conf(ssl_port, "SCRAM-SHA-512", "admin", "admin-secret", pki)
    admin = ck_admin(admin_conf)
    # --add-scram users exist, salted (the log never holds the password)
    h.wait_until(lambda: "admin" in ck_describe_users(admin), 30, "the --add-scram user")
    assert ck_describe_users(admin) == {"admin": [("SCRAM_SHA_256", 8192), ("SCRAM_SHA_512", 4096)]}
    ck_round_trip(admin_conf, h.unique("scram512"))
    ck_round_trip(ck_conf(plain_port, "SCRAM-SHA-256", "admin", "admin-secret"), h.unique("scram256"))
    # a user made through the admin API logs in at once
    ck_upsert(admin, "alice", "alice-secret").result(30)
    ck_round_trip(ck_conf(ssl_port, "SCRAM-SHA-512", "alice", "alice-secret", pki), h.unique("alice"), n=50)
    # a wrong password and an unknown user are refused
    assert "Authentication failed" in ck_auth_error(ck_conf(ssl_port, "SCRAM-SHA-512", "alice", "nope", pki))
    assert "Authentication failed" in ck_auth_error(ck_conf(plain_port, "SCRAM-SHA-256", "carol", "x"))
    # Kafka's errors for bad alterations
    from confluent_kafka.admin import (ScramCredentialInfo, ScramMechanism, UserScramCredentialDeletion,
                                       UserScramCredentialUpsertion)
    bad = {
        "few": UserScramCredentialUpsertion("few", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 100), b"x"),
        "many": UserScramCredentialUpsertion("many", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 20000), b"x"),
        "ghost": UserScramCredentialDeletion("ghost", ScramMechanism.SCRAM_SHA_512),
    }
    futures = admin.alter_user_scram_credentials(list(bad.values()))
    errors = {}
    for user, f in futures.items():
        with pytest.raises(KafkaException) as e:
            f.result(30)
        errors[user] = e.value.args[0].name()
    assert errors == {"few": "UNACCEPTABLE_CREDENTIAL", "many": "UNACCEPTABLE_CREDENTIAL",
                      "ghost": "RESOURCE_NOT_FOUND"}, errors
    # a user named twice in one request
    twice = admin.alter_user_scram_credentials([
        UserScramCredentialUpsertion("dup", ScramCredentialInfo(ScramMechanism.SCRAM_SHA_256, 4096), b"x"),
        UserScramCredentialDeletion("dup", ScramMechanism.SCRAM_SHA_512)])
    with pytest.raises(KafkaException) as e:
        twice["dup"].result(30)
    assert e.value.args[0].name() == "DUPLICATE_RESOURCE"
    # deleting alice refuses her next login
    admin.alter_user_scram_credentials([UserScramCredentialDeletion("alice", ScramMechanism.SCRAM_SHA_512)])[
        "alice"].result(30)
    assert "alice" not in ck_describe_users(admin)
    assert "Authentication failed" in ck_auth_error(ck_conf(ssl_port, "SCRAM-SHA-512", "alice", "alice-secret", pki))
    # credentials survive a restart; --add-scram is not applied again (admin keeps 8192)
    b.stop()
    b.start()
    admin = ck_admin(admin_conf)
    assert ck_describe_users(admin) == {"admin": [("SCRAM_SHA_256", 8192), ("SCRAM_SHA_512", 4096)]}
    assert b.is_running()
    broker_lines = [line for line in b.log().splitlines() if not line.startswith("=====")]
    assert not [line for line in broker_lines if "secret" in line], "a password in the log"


@pytest.mark.timeout(300)
def test_kafka_python_kcat_and_java_over_scram_and_plain(sasl_broker, pki, tmp_path):
    b, ports = sasl_broker(pki, args=ADD_SCRAM)
    ssl_port, plain_port = ports["SASL_SSL"], ports["SASL_PLAINTEXT"]
    # kafka-python: SCRAM-SHA-512 over SASL_SSL, PLAIN over SASL_PLAINTEXT
    for port, conf in (
        (ssl_port, dict(security_protocol="SASL_SSL", ssl_cafile=str(pki["ca"].cert), sasl_mechanism="SCRAM-SHA-512",
                        sasl_plain_username="admin", sasl_plain_password="admin-secret")),
        (plain_port, dict(security_protocol="SASL_PLAINTEXT", sasl_mechanism="PLAIN",
                          sasl_plain_username="alice", sasl_plain_password="alice-secret")),
    ):
        conf["bootstrap_servers"] = f"127.0.0.1:{port}"
        h.kp_round_trip(conf, h.unique("kp"), port, n=N)
    # kcat (Debian's, librdkafka 2.0.2): PLAIN over SASL_SSL and SASL_PLAINTEXT. Its
    # SCRAM repeats the client nonce in client-final (fixed in librdkafka 2.6.1), which
    # Kafka 4 refuses as this broker does (see test_old_librdkafka_scram_is_refused_as_kafka_4)
    for opts in (
        ["-b", f"127.0.0.1:{ssl_port}", "-X", "security.protocol=sasl_ssl", "-X", f"ssl.ca.location={pki['ca'].cert}",
         "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret"],
        ["-b", f"127.0.0.1:{plain_port}", "-X", "security.protocol=sasl_plaintext",
         "-X", "sasl.mechanisms=PLAIN", "-X", "sasl.username=alice", "-X", "sasl.password=alice-secret"],
    ):
        h.kcat_round_trip(opts, h.unique("kcat"), n=N)
    # the Java client 3.9.1: SCRAM-SHA-512 over SASL_SSL, PLAIN over SASL_PLAINTEXT
    for port, props in (
        (ssl_port, {"security.protocol": "SASL_SSL", "ssl.truststore.type": "PEM",
                    "ssl.truststore.location": pki["ca"].cert, "sasl.mechanism": "SCRAM-SHA-512",
                    "sasl.jaas.config": 'org.apache.kafka.common.security.scram.ScramLoginModule required '
                                        'username="admin" password="admin-secret";'}),
        (plain_port, {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
                      "sasl.jaas.config": 'org.apache.kafka.common.security.plain.PlainLoginModule required '
                                          'username="alice" password="alice-secret";'}),
    ):
        path = tmp_path / f"java-{port}.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        topic = h.unique("java")
        res = h.run_java("TlsClients", f"127.0.0.1:{port}", topic, N, path, timeout=280)
        assert h.java_ok_lines(res, "TlsClients") == [f"OK cluster {port}", f"OK produced {N}",
                                                      f"OK consumed {N}"], res.stdout
    assert b.is_running()


kcat = h.kcat


@pytest.mark.timeout(120)
def test_old_librdkafka_scram_is_refused_as_kafka_4(sasl_broker):
    """librdkafka before 2.6.1 (Debian's kcat: 2.0.2) sends the client nonce twice in its
    client-final message; Kafka 4 checks the nonce strictly (RFC 5802) and refuses it,
    and so does vltava: a clear authentication error, and the broker serves others."""
    b, ports = sasl_broker(args=ADD_SCRAM)
    opts = ["-b", f"127.0.0.1:{ports['SASL_PLAINTEXT']}", "-X", "security.protocol=sasl_plaintext",
            "-X", "sasl.mechanisms=SCRAM-SHA-512", "-X", "sasl.username=admin", "-X", "sasl.password=admin-secret"]
    res = kcat(*opts, "-L", "-m", "5", timeout=60)
    assert res.returncode != 0 and "Authentication failed" in res.stderr, res.stderr
    ck_round_trip(ck_conf(ports["SASL_PLAINTEXT"], "SCRAM-SHA-512", "admin", "admin-secret"), h.unique("new"), n=20)
    assert b.is_running()


def create_topics_v2(sock, name: str, cid: int = 5) -> bytes:
    body = (w.int32(1) + w.string(name) + w.int32(1) + w.int16(1) + w.int32(0) + w.int32(0)
            + w.int32(10000) + w.int8(0))
    return w.frame(w.request_header_v1(19, 2, cid) + body)


@pytest.mark.timeout(180)
def test_bad_input_is_refused_and_nothing_is_written(sasl_broker):
    b, ports = sasl_broker(args=ADD_SCRAM)
    port = ports["SASL_PLAINTEXT"]
    before = set(AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=30).topics)
    # a request before authentication (CreateTopics): the connection closes, nothing is created
    s = w.connect(port)
    s.sendall(create_topics_v2(s, "never-created"))
    assert w.wait_closed(s)[0]
    # ApiVersions is served before the handshake; Metadata is not
    s = w.connect(port)
    corr, err, apis, _ = w.parse_api_versions_v0(w.roundtrip(s, w.api_versions_request_v0(3)))
    assert (corr, err) == (3, 0) and API_SASL_HANDSHAKE in apis
    s.sendall(w.frame(w.request_header_v1(API_METADATA, 1, 4) + w.int32(-1)))
    assert w.wait_closed(s)[0]
    # SaslAuthenticate before SaslHandshake: closed
    s = w.connect(port)
    s.sendall(w.frame(w.request_header_v1(API_SASL_AUTHENTICATE, 1, 1) + w.nbytes(b"\0alice\0alice-secret")))
    assert w.wait_closed(s)[0]
    # an unknown or disabled mechanism: UNSUPPORTED_SASL_MECHANISM with the enabled ones, then closed
    for mechanism in ("GSSAPI", "OAUTHBEARER", "NOPE"):
        s = w.connect(port)
        code, offered = handshake(s, mechanism)
        assert code == UNSUPPORTED_SASL_MECHANISM and offered == ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]
        assert w.wait_closed(s)[0]
    # garbage inside the exchange: SASL_AUTHENTICATION_FAILED, then closed
    for mechanism, tokens in (
        ("PLAIN", [b"garbage-without-separators"]),
        ("PLAIN", [b"\xff\xfe\x00\x00\x00"]),
        ("SCRAM-SHA-512", [b"\x00\x01\x02 not scram"]),
        ("SCRAM-SHA-256", [b"n,,n=admin,r=abcdefgh", b"c=biws,r=wrong-nonce,p=AAAA"]),
        ("SCRAM-SHA-512", [b"n,,n=admin,r=abcdefgh", b"\xff" * 300]),
    ):
        s = w.connect(port)
        assert handshake(s, mechanism)[0] == 0
        for i, token in enumerate(tokens):
            code, message, _, _ = authenticate(s, token, cid=10 + i)
            if i < len(tokens) - 1:
                assert code == 0, message
        assert code == SASL_AUTHENTICATION_FAILED, (mechanism, tokens, code, message)
        assert w.wait_closed(s)[0]
    # a second handshake while authenticating: closed
    s = w.connect(port)
    assert handshake(s, "PLAIN")[0] == 0
    s.sendall(w.frame(w.request_header_v1(API_SASL_HANDSHAKE, 1, 7) + w.string("PLAIN")))
    assert w.wait_closed(s)[0]
    # on a listener without SASL the SASL APIs answer ILLEGAL_SASL_STATE and the connection stays
    s = w.connect(b.port)
    assert handshake(s, "PLAIN")[0] == ILLEGAL_SASL_STATE
    assert metadata(s)
    s.close()
    # handshake v0: bare tokens without SaslAuthenticate framing (a short one too)
    s = w.connect(port)
    assert handshake(s, "PLAIN", version=0)[0] == 0
    assert w.roundtrip(s, b"\0alice\0alice-secret") == b""
    assert metadata(s)
    s.close()
    s = w.connect(port)
    assert handshake(s, "PLAIN", version=0)[0] == 0
    s.sendall(w.frame(b"\0a\0b"))
    assert w.wait_closed(s)[0]
    # a frame over 512 KiB before authentication (sasl.server.max.receive.size) closes
    s = w.connect(port)
    s.sendall(w.int32(600 * 1024) + b"x" * 1024)
    assert w.wait_closed(s)[0]
    # nothing was written, and the broker serves everyone else
    after = set(AdminClient({"bootstrap.servers": b.bootstrap}).list_topics(timeout=30).topics)
    assert after == before, after - before
    ck_round_trip(ck_conf(port, "PLAIN", "alice", "alice-secret"), h.unique("after-bad"), n=20)
    assert b.is_running()


@pytest.mark.timeout(180)
def test_reauthentication_keeps_librdkafka_going_and_drops_clients_that_do_not(sasl_broker):
    lifetime_ms = 2000
    b, ports = sasl_broker(args=ADD_SCRAM, extra={"connections.max.reauth.ms": lifetime_ms})
    port = ports["SASL_PLAINTEXT"]
    # a raw client is told its session lifetime (SaslAuthenticate v1+)
    s, (code, _, _, lifetime) = plain_login(port, "alice", "alice-secret")
    assert (code, lifetime) == (0, lifetime_ms)
    started = time.monotonic()
    assert metadata(s)
    # one that re-authenticates in time keeps its connection past the first lifetime
    r, (code, _, _, _) = plain_login(port, "alice", "alice-secret")
    assert code == 0
    r_started = time.monotonic()
    h.wait_until(lambda: time.monotonic() > r_started + lifetime_ms / 2000, 10, "half a lifetime")
    assert handshake(r, "PLAIN", cid=20)[0] == 0
    assert authenticate(r, b"\0alice\0alice-secret", cid=21)[0] == 0
    h.wait_until(lambda: time.monotonic() > started + lifetime_ms / 1000 + 0.3, 10, "the first lifetime")
    assert metadata(r, cid=22), "a re-authenticated session was closed"
    # the one that did not re-authenticate is disconnected on its next request
    s.sendall(w.frame(w.request_header_v1(API_METADATA, 1, 9) + w.int32(-1)))
    assert w.wait_closed(s)[0], "an expired session was served"
    # another principal on re-authentication: refused
    assert handshake(r, "PLAIN", cid=23)[0] == 0
    code, message, _, _ = authenticate(r, b"\0bob\0" + b'b"o\\b-secret', cid=24)
    assert code == SASL_AUTHENTICATION_FAILED and "principal" in message, message
    assert w.wait_closed(r)[0]
    # librdkafka (SCRAM-SHA-512) re-authenticates and keeps producing across several lifetimes
    conf = ck_conf(port, "SCRAM-SHA-512", "admin", "admin-secret")
    topic = h.unique("reauth")
    admin = AdminClient(dict(conf))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(30)
    p = Producer({**conf, "acks": "all", "linger.ms": 0})
    failed, delivered = [], []
    t0 = time.monotonic()
    i = 0
    while time.monotonic() < t0 + 4 * lifetime_ms / 1000:
        p.produce(topic, value=f"v{i}".encode(),
                  on_delivery=lambda err, m: failed.append(err) if err else delivered.append(m.offset()))
        i += 1
        p.poll(0.05)
    assert p.flush(60) == 0
    assert not failed, failed[:3]
    assert len(delivered) == i and i > 20
    # only the raw client's session expired: librdkafka re-authenticated each time
    assert b.log().count("expired without re-authentication") == 1, b.log_tail(40)
    assert b.is_running()


def vltava_cli(*args, timeout: float = 60):
    return subprocess.run([vltava_bin(), *map(str, args)], capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(180)
def test_user_commands_and_command_config(sasl_broker, tmp_path):
    import json
    b, ports = sasl_broker(args=ADD_SCRAM)
    port = ports["SASL_PLAINTEXT"]
    # over the PLAINTEXT listener
    res = vltava_cli("-b", b.bootstrap, "user", "create", "carol", "--password", "carol-secret",
                     "--mechanism", "SCRAM-SHA-256", "--iterations", "8192")
    assert res.returncode == 0, res.stderr
    # over SASL_PLAINTEXT with SCRAM, the login read from --command-config
    props = tmp_path / "client.properties"
    props.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"
                     "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
                     "username=\"admin\" password=\"admin-secret\";\n")
    res = vltava_cli("-b", f"127.0.0.1:{port}", "--command-config", props, "user", "list", "--json")
    assert res.returncode == 0, res.stderr
    users = {u["name"]: u["credentials"] for u in json.loads(res.stdout)["users"]}
    assert users["carol"] == [{"mechanism": "SCRAM-SHA-256", "iterations": 8192}], users
    assert sorted(c["mechanism"] for c in users["admin"]) == ["SCRAM-SHA-256", "SCRAM-SHA-512"]
    # -X wins over the file: a wrong password is refused
    res = vltava_cli("-b", f"127.0.0.1:{port}", "--command-config", props, "-X", "sasl.password=wrong",
                     "user", "list")
    assert res.returncode != 0 and "SASL_AUTHENTICATION_FAILED" in res.stderr, res.stderr
    # the new user logs in with librdkafka, then is deleted and cannot
    carol = ck_conf(port, "SCRAM-SHA-256", "carol", "carol-secret")
    ck_round_trip(carol, h.unique("carol"), n=20)
    res = vltava_cli("-b", f"127.0.0.1:{port}", "--command-config", props, "user", "delete", "carol")
    assert res.returncode == 0, res.stderr
    assert "Authentication failed" in ck_auth_error(carol)
    res = vltava_cli("-b", b.bootstrap, "user", "delete", "carol")
    assert res.returncode != 0 and "RESOURCE_NOT_FOUND" in res.stderr, res.stderr
    # librdkafka-based commands take --command-config too (PLAIN here)
    plain = tmp_path / "plain.properties"
    plain.write_text("security.protocol=SASL_PLAINTEXT\nsasl.mechanism=PLAIN\n"
                     "sasl.username=alice\nsasl.password=alice-secret\n")
    topic = h.unique("cli")
    res = vltava_cli("-b", f"127.0.0.1:{port}", "--command-config", plain, "topic", "create", topic)
    assert res.returncode == 0, res.stderr
    res = vltava_cli("-b", f"127.0.0.1:{port}", "--command-config", plain, "topic", "list")
    assert res.returncode == 0 and topic in res.stdout.split(), res.stderr


# ------------------------------------------------------------------ cluster

BROKER_JAAS = ('org.apache.kafka.common.security.scram.ScramLoginModule required '
               'username="broker" password="broker-secret";')


CONTROLLER_JAAS = ('org.apache.kafka.common.security.plain.PlainLoginModule required '
                   'username="controller" password="controller-secret" user_controller="controller-secret";')


class SaslSslCluster(Cluster):
    """Every node gets a SASL_SSL listener (SCRAM-SHA-512) on a free port and uses it as
    the inter-broker listener: replication, WriteTxnMarkers and forwarded requests log
    in as the SCRAM user `broker` (from the listener's JAAS config), created with the
    cluster by --add-scram, as is `admin`. The CONTROLLER listener is SASL_SSL with
    PLAIN (as Kafka, SCRAM is not offered there: its users live in the metadata log):
    the Raft traffic and heartbeats log in as `controller`. The PLAINTEXT listener
    stays for the cluster helpers' raw requests."""

    def __init__(self, workdir, pki, **kw):
        super().__init__(workdir, **kw)
        self.pki = pki
        self.sasl_ports: dict[int, int] = {}

    def _layout(self) -> None:
        super()._layout()
        for i, node in self.nodes.items():
            port = free_port()
            self.sasl_ports[i] = port
            cert = self.pki["ca"].issue(f"node{i}-{uuid.uuid4().hex[:6]}", cn="localhost")
            s = node.settings
            s["listeners"] = s["listeners"].replace(",CONTROLLER", f",SASL_SSL://{node.host}:{port},CONTROLLER")
            s["advertised.listeners"] += f",SASL_SSL://{node.host}:{port}"
            s["inter.broker.listener.name"] = "SASL_SSL"
            s["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:SASL_SSL"
            s["listener.name.controller.sasl.enabled.mechanisms"] = "PLAIN"
            s["sasl.mechanism.controller.protocol"] = "PLAIN"
            s["listener.name.controller.plain.sasl.jaas.config"] = CONTROLLER_JAAS
            s["ssl.keystore.location"] = str(cert.keystore_pem)
            s["ssl.truststore.location"] = str(self.pki["ca"].cert)
            s["sasl.enabled.mechanisms"] = "SCRAM-SHA-512"
            s["sasl.mechanism.inter.broker.protocol"] = "SCRAM-SHA-512"
            s["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"] = BROKER_JAAS
            base = node.command
            node.command = lambda base=base: base() + [
                "--add-scram", "SCRAM-SHA-512=[name=broker,password=broker-secret]",
                "--add-scram", "SCRAM-SHA-512=[name=admin,password=admin-secret]"]


def scram_users_of(port: int) -> list[str]:
    """DescribeUserScramCredentials v0 (all users) on one node: the user names."""
    with w.connect(port) as s:
        resp = w.roundtrip(s, w.request_header_v2(50, 0, 7) + w.uvarint(0) + w.EMPTY_TAGGED_FIELDS)
    r = w.Reader(resp)
    assert r.int32() == 7
    r.tagged_fields()
    r.int32()
    assert r.int16() == 0
    r.compact_string()
    users = []
    for _ in range(r.uvarint() - 1):
        users.append(r.compact_string())
        assert r.int16() == 0
        r.compact_string()
        for _ in range(r.uvarint() - 1):
            r.int8()
            r.int32()
            r.tagged_fields()
        r.tagged_fields()
    return sorted(users)


@pytest.mark.timeout(400)
def test_three_nodes_over_sasl_ssl_survive_a_leader_sigkill(tmp_path, pki):
    import signal
    with SaslSslCluster(tmp_path, pki, n=3) as c:
        c.wait_controller(timeout=60)
        # the --add-scram users are on every node
        for node in c.nodes.values():
            c.wait_until(lambda node=node: scram_users_of(node.client_port) == ["admin", "broker"], 60,
                         f"the SCRAM users on node {node.node_id}")
        # the controller listener takes the controllers' PLAIN login and refuses a wrong one
        import socket
        import ssl
        import struct
        ctx = ssl.create_default_context(cafile=str(pki["ca"].cert))
        for password, status in ((b"controller-secret", 2), (b"wrong", 1)):
            with socket.create_connection(("127.0.0.1", c.nodes[1].controller_port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
                    payload = b"\x05PLAIN\x00\x00controller\x00" + password
                    t.sendall(struct.pack(">I", len(payload)) + payload)
                    assert w.recv_frame(t)[:2] == bytes([5, status])
        topic = h.unique("sasl-rf3")
        c.create_topic(topic, partitions=1, replication_factor=3)
        # followers fetch over SASL_SSL, logged in as `broker`
        c.wait_isr(topic, 0, 3, timeout=90)
        bootstrap = ",".join(f"localhost:{p}" for p in c.sasl_ports.values())
        conf = {**ck_conf(0, "SCRAM-SHA-512", "admin", "admin-secret", pki), "bootstrap.servers": bootstrap}
        acked: list[bytes] = []
        errors = []

        def produce(n: int, start: int):
            p = Producer({**conf, "acks": "all", "enable.idempotence": True, "message.timeout.ms": 120000})
            for i in range(start, start + n):
                p.produce(topic, value=f"v{i}".encode(),
                          on_delivery=lambda err, m: errors.append(err) if err else acked.append(m.value()))
                p.poll(0)
            assert p.flush(150) == 0

        produce(N, 0)
        assert not errors, errors[:3]
        leader = c.leader_of(topic, 0)
        c.kill(leader, signal.SIGKILL)
        c.wait_leader_not(topic, 0, leader, timeout=60)
        produce(N, N)
        assert not errors, errors[:3]
        assert len(acked) == 2 * N
        # every acked record is there, read over SASL_SSL from the new leader
        from confluent_kafka import OFFSET_BEGINNING
        cons = Consumer({**conf, "group.id": f"{topic}-check", "enable.auto.commit": False})
        try:
            cons.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])
            seen = set()
            deadline = time.monotonic() + 90
            while len(seen) < 2 * N and time.monotonic() < deadline:
                m = cons.poll(0.5)
                if m is not None and m.error() is None:
                    seen.add(m.value())
        finally:
            cons.close()
        assert set(acked) <= seen, f"lost {len(set(acked) - seen)} acked records"
        # the killed node comes back, logs in again and catches up; then a consumer group
        # (its offsets topic needs all three replicas) reads everything over SASL_SSL
        c.start_node(leader)
        c.wait_isr(topic, 0, 3, timeout=90)
        cons = Consumer({**conf, "group.id": f"{topic}-g", "auto.offset.reset": "earliest",
                         "enable.auto.commit": False})
        try:
            cons.subscribe([topic])
            in_group = set()
            deadline = time.monotonic() + 120
            while len(in_group) < 2 * N and time.monotonic() < deadline:
                m = cons.poll(0.5)
                if m is not None and m.error() is None:
                    in_group.add(m.value())
            cons.commit(asynchronous=False)
        finally:
            cons.close()
        assert set(acked) <= in_group, f"the group read {len(in_group)} of {len(set(acked))}"
        # no broker or controller login failed, but the wrong password above
        for node in c.nodes.values():
            assert "vltava_broker::sasl: failed SASL authentication" not in node.log(), node.log_tail()
            failed = node.log().count("failed SASL authentication on the controller listener")
            assert failed == (1 if node.node_id == 1 else 0), node.log_tail()


@pytest.mark.timeout(240)
def test_a_user_quota_applies_to_the_authenticated_user(sasl_broker):
    """Quotas on `user` entities match the SASL principal's name (issue 14): alice, over
    her producer_byte_rate, is told to back off (throttle_time_ms, seen by librdkafka's
    throttle callback) and her series appears on /metrics; bob, with the same client id
    and no quota, never is."""
    b, ports = sasl_broker()
    port = ports["SASL_PLAINTEXT"]
    res = subprocess.run([vltava_bin(), "--brokers", b.bootstrap, "quota", "alter", "--user", "alice",
                          "--producer-byte-rate", "65536"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    topic = h.unique("user-quota")
    h.create_topic(b.bootstrap, topic)
    value = b"u" * 16384

    def producer(user, password, throttles):
        conf = ck_conf(port, "PLAIN", user, password)
        conf.update({"client.id": "shared-app", "linger.ms": 5, "acks": 1,
                     "throttle_cb": lambda event: throttles.append(event.throttle_time)})
        return Producer(conf)

    alice_throttles, bob_throttles = [], []
    alice = producer("alice", "alice-secret", alice_throttles)
    bob = producer("bob", 'b"o\\b-secret', bob_throttles)

    def throttled():
        for p in (alice, bob):
            for _ in range(20):
                try:
                    p.produce(topic, value)
                except BufferError:
                    break
            p.poll(0.05)
        return any(t > 0 for t in alice_throttles)

    h.wait_until(throttled, 120, "a throttle for alice", interval=0)
    assert alice.flush(60) == 0 and bob.flush(60) == 0
    assert not [t for t in bob_throttles if t > 0], bob_throttles
    _, text = h.http_get(b.admin_url + "/metrics")
    assert 'kafka_server_produce_throttle_time{user="alice",client_id="shared-app"}' in text


@pytest.mark.timeout(180)
def test_commands_over_sasl_ssl_with_scram(sasl_broker, pki, tmp_path):
    """Every kind of `vltava` command over SASL_SSL with SCRAM-SHA-512: the ones sending
    Kafka requests themselves (`user`) and the librdkafka ones (`topic`, `produce`,
    `consume`), from one --command-config file."""
    b, ports = sasl_broker(pki=pki, args=ADD_SCRAM)
    addr = f"localhost:{ports['SASL_SSL']}"
    props = tmp_path / "sasl-ssl.properties"
    props.write_text(f"security.protocol=SASL_SSL\nssl.ca.location={pki['ca'].cert}\n"
                     "sasl.mechanism=SCRAM-SHA-512\nsasl.username=admin\nsasl.password=admin-secret\n")
    res = vltava_cli("-b", addr, "--command-config", props, "user", "list")
    assert res.returncode == 0 and "admin" in res.stdout, res.stderr
    topic = h.unique("sasl-ssl-cli")
    res = vltava_cli("-b", addr, "--command-config", props, "topic", "create", topic)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([vltava_bin(), "-b", addr, "--command-config", str(props), "produce", topic],
                         input="one\ntwo\n", capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    res = vltava_cli("-b", addr, "--command-config", props, "consume", topic, "--from-beginning", "--count", "2")
    assert res.returncode == 0 and res.stdout.split() == ["one", "two"], (res.stdout, res.stderr)
