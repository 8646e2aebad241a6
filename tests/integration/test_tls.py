"""TLS listeners with real clients: confluent-kafka (librdkafka), kafka-python, kcat and
the Java client 3.9.1 each produce, consume in a group and make an admin call over SSL
and over mutual TLS; several listeners at once, each advertising its own endpoint;
client certificates required, mapped by ssl.principal.mapping.rules; PKCS12 stores; a
keystore rotated without a restart; a 3-node cluster replicating over an SSL
inter-broker listener; and bad input (plaintext on the TLS port, TLS on the plaintext
port, a client that never says anything, garbage).

Certificates are made in the test with the openssl CLI (tls_certs.py). Every broker
here has a PLAINTEXT listener first (port 0, the fixtures' readiness check) and its
TLS listeners on ports picked free just before the start.
"""

from __future__ import annotations

import socket
import ssl
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

import helpers as h
from helpers import ck_round_trip
import kafka_wire
from cluster import Cluster
from conftest import BrokerStartError, free_port
from tls_certs import CertAuthority

N = 300


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    root = tmp_path_factory.mktemp("pki")
    ca = CertAuthority(root / "ca")
    return {
        "ca": ca,
        "broker": ca.issue("broker", cn="localhost"),
        "alice": ca.issue("alice", cn="alice", ou="eng"),
        "bob": ca.issue("bob", cn="bob", ou="ops"),
        # signed by a CA the broker does not trust
        "mallory": CertAuthority(root / "other-ca", cn="other CA").issue("mallory", cn="mallory"),
    }


def start_tls_broker(start_broker, pki, extra: dict | None = None, listeners: dict | None = None):
    """A broker with PLAINTEXT (port 0) plus the given TLS listeners ({name: protocol},
    default SSL and an MTLS listener requiring client certificates). Returns (broker,
    {listener name: port}). Ports are picked free just before the start: a start that
    loses one to another process is retried."""
    listeners = listeners or {"SSL": "SSL", "MTLS": "SSL"}
    for attempt in range(3):
        ports = {name: free_port() for name in listeners}
        sets = {
            "listeners": "PLAINTEXT://127.0.0.1:0," + ",".join(f"{n}://127.0.0.1:{p}" for n, p in ports.items()),
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,"
            + ",".join(f"{n}:{proto}" for n, proto in listeners.items()),
            "ssl.keystore.location": str(pki["broker"].keystore_pem),
            "ssl.truststore.location": str(pki["ca"].cert),
            "listener.name.mtls.ssl.client.auth": "required",
            "group.initial.rebalance.delay.ms": 0,
        }
        sets.update(extra or {})
        try:
            return start_broker(sets), ports
        except BrokerStartError as e:
            if "Address already in use" not in str(e) or attempt == 2:
                raise


def ck_conf(port: int, pki, cert: str | None = None) -> dict:
    conf = {"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SSL",
            "ssl.ca.location": str(pki["ca"].cert)}
    if cert:
        conf["ssl.certificate.location"] = str(pki[cert].cert)
        conf["ssl.key.location"] = str(pki[cert].key)
    return conf


def advertised_ports(conf: dict) -> list[int]:
    md = AdminClient(dict(conf)).list_topics(timeout=30)
    return sorted(b.port for b in md.brokers.values())


# -------------------------------------------------------------------- clients


@pytest.mark.timeout(240)
def test_confluent_kafka_over_ssl_and_mutual_tls(start_broker, pki):
    b, ports = start_tls_broker(start_broker, pki)
    ck_round_trip(ck_conf(ports["SSL"], pki), h.unique("ck-ssl"))
    ck_round_trip(ck_conf(ports["MTLS"], pki, cert="alice"), h.unique("ck-mtls"))
    # each listener advertises itself
    assert advertised_ports(ck_conf(ports["SSL"], pki)) == [ports["SSL"]]
    assert advertised_ports(ck_conf(ports["MTLS"], pki, cert="alice")) == [ports["MTLS"]]
    assert advertised_ports({"bootstrap.servers": b.bootstrap}) == [b.port]
    assert b.is_running()


@pytest.mark.timeout(240)
def test_kafka_python_over_ssl_and_mutual_tls(start_broker, pki):
    _b, ports = start_tls_broker(start_broker, pki)
    for listener, cert in (("SSL", None), ("MTLS", "alice")):
        conf = dict(bootstrap_servers=f"127.0.0.1:{ports[listener]}", security_protocol="SSL",
                    ssl_cafile=str(pki["ca"].cert))
        if cert:
            conf.update(ssl_certfile=str(pki[cert].cert), ssl_keyfile=str(pki[cert].key))
        h.kp_round_trip(conf, h.unique(f"kp-{listener.lower()}"), ports[listener], n=N)



@pytest.mark.timeout(240)
def test_kcat_over_ssl_and_mutual_tls(start_broker, pki):
    _b, ports = start_tls_broker(start_broker, pki)
    for listener, cert in (("SSL", None), ("MTLS", "alice")):
        opts = ["-b", f"127.0.0.1:{ports[listener]}", "-X", "security.protocol=ssl",
                "-X", f"ssl.ca.location={pki['ca'].cert}"]
        if cert:
            opts += ["-X", f"ssl.certificate.location={pki[cert].cert}",
                     "-X", f"ssl.key.location={pki[cert].key}"]
        metadata = h.kcat_round_trip(opts, h.unique(f"kcat-{listener.lower()}"), n=N)
        # the admin view kcat has: each listener advertises itself
        assert [br["name"] for br in metadata["brokers"]] == [f"127.0.0.1:{ports[listener]}"], metadata


@pytest.mark.timeout(300)
def test_java_client_over_ssl_and_mutual_tls_with_pkcs12(start_broker, pki, tmp_path):
    _b, ports = start_tls_broker(start_broker, pki)
    alice_p12 = pki["alice"].pkcs12("alice-secret")
    for listener, props in (
        ("SSL", {"security.protocol": "SSL", "ssl.truststore.type": "PEM",
                 "ssl.truststore.location": pki["ca"].cert}),
        ("MTLS", {"security.protocol": "SSL", "ssl.truststore.type": "PEM",
                  "ssl.truststore.location": pki["ca"].cert, "ssl.keystore.type": "PKCS12",
                  "ssl.keystore.location": alice_p12, "ssl.keystore.password": "alice-secret",
                  "ssl.key.password": "alice-secret"}),
    ):
        path = tmp_path / f"{listener}.properties"
        path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        topic = h.unique(f"java-{listener.lower()}")
        res = h.run_java("TlsClients", f"127.0.0.1:{ports[listener]}", topic, N, path, timeout=280)
        assert h.java_ok_lines(res, "TlsClients") == [
            f"OK cluster {ports[listener]}", f"OK produced {N}", f"OK consumed {N}"], res.stdout


# ------------------------------------------------------- listeners and principals


@pytest.mark.timeout(120)
def test_each_listener_advertises_its_own_endpoint(start_broker, pki):
    """listeners INTERNAL (PLAINTEXT) and EXTERNAL (SSL) with advertised.listeners naming
    other hosts: a client bootstrapped on each is told that listener's host and port."""
    internal, external = free_port(), free_port()
    b = start_broker({
        "listeners": f"INTERNAL://127.0.0.1:{internal},EXTERNAL://127.0.0.1:{external}",
        "listener.security.protocol.map": "INTERNAL:PLAINTEXT,EXTERNAL:SSL",
        "advertised.listeners": f"INTERNAL://127.0.0.1:{internal},EXTERNAL://localhost:{external}",
        "inter.broker.listener.name": "INTERNAL",
        "ssl.keystore.location": str(pki["broker"].keystore_pem),
    })
    md = AdminClient({"bootstrap.servers": f"127.0.0.1:{internal}"}).list_topics(timeout=30)
    assert [(br.host, br.port) for br in md.brokers.values()] == [("127.0.0.1", internal)]
    ext = {"bootstrap.servers": f"localhost:{external}", "security.protocol": "SSL",
           "ssl.ca.location": str(pki["ca"].cert)}
    md = AdminClient(ext).list_topics(timeout=30)
    assert [(br.host, br.port) for br in md.brokers.values()] == [("localhost", external)]
    # the group coordinator is found on the client's listener too
    ck_round_trip(ext, h.unique("external"), n=50)
    assert b.is_running()


@pytest.mark.timeout(120)
def test_mutual_tls_required_refuses_clients_without_a_trusted_certificate(start_broker, pki):
    b, ports = start_tls_broker(start_broker, pki)
    for cert in (None, "mallory"):
        conf = {**ck_conf(ports["MTLS"], pki, cert=cert), "socket.timeout.ms": 5000}
        with pytest.raises(KafkaException):
            AdminClient(conf).list_topics(timeout=8)
    # the same clients are served where client certificates are not required
    assert advertised_ports(ck_conf(ports["SSL"], pki)) == [ports["SSL"]]
    assert advertised_ports(ck_conf(ports["MTLS"], pki, cert="alice")) == [ports["MTLS"]]
    assert "peer sent no certificates" in b.log() or "CertificateRequired" in b.log(), b.log_tail()
    assert b.is_running()


def tls_version(port: int, pki, maximum=None, cert: str | None = None) -> str:
    ctx = ssl.create_default_context(cafile=str(pki["ca"].cert))
    if maximum is not None:
        ctx.maximum_version = maximum
    if cert:
        ctx.load_cert_chain(str(pki[cert].cert), str(pki[cert].key))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.version()


def tls_api_versions(port: int, pki, cert: str | None = None) -> bool:
    """Whether ApiVersions over TLS is answered (False: the connection was refused)."""
    ctx = ssl.create_default_context(cafile=str(pki["ca"].cert))
    if cert:
        ctx.load_cert_chain(str(pki[cert].cert), str(pki[cert].key))
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                corr, err, apis, _ = kafka_wire.parse_api_versions_v0(
                    kafka_wire.roundtrip(s, kafka_wire.api_versions_request_v0(3)))
                return corr == 3 and err == 0 and bool(apis)
    except (ssl.SSLError, ConnectionError, kafka_wire.ConnectionClosed) as e:
        print(f"ApiVersions over TLS refused: {e!r}")
        return False


@pytest.mark.timeout(120)
def test_client_auth_requested_and_enabled_protocols(start_broker, pki):
    """ssl.client.auth=requested takes clients with or without a trusted certificate
    (not one from another CA); ssl.enabled.protocols=TLSv1.3 on one listener refuses a
    TLS 1.2 client there, while the other listener speaks both."""
    b, ports = start_tls_broker(start_broker, pki, listeners={"SSL": "SSL", "REQ": "SSL", "TLS13": "SSL"}, extra={
        "listener.name.req.ssl.client.auth": "requested",
        "listener.name.tls13.ssl.enabled.protocols": "TLSv1.3",
    })
    assert advertised_ports(ck_conf(ports["REQ"], pki)) == [ports["REQ"]]
    assert advertised_ports(ck_conf(ports["REQ"], pki, cert="alice")) == [ports["REQ"]]
    # a certificate that is presented must be trusted (Python's ssl sends it whatever
    # CAs the server names; the server's verdict comes after the TLS 1.3 handshake)
    assert tls_api_versions(ports["REQ"], pki, cert="alice")
    assert tls_api_versions(ports["REQ"], pki)
    assert not tls_api_versions(ports["REQ"], pki, cert="mallory")
    assert tls_version(ports["TLS13"], pki) == "TLSv1.3"
    with pytest.raises((ssl.SSLError, ConnectionError)):
        tls_version(ports["TLS13"], pki, maximum=ssl.TLSVersion.TLSv1_2)
    assert tls_version(ports["SSL"], pki, maximum=ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
    assert b.is_running()


@pytest.mark.timeout(120)
def test_principal_mapping_rules_decide_who_may_connect(start_broker, pki):
    """ssl.principal.mapping.rules with one RULE and no DEFAULT: a certificate whose
    subject no rule matches is refused, as in Kafka (bob is OU=ops, alice OU=eng)."""
    b, ports = start_tls_broker(start_broker, pki, extra={
        "listener.name.mtls.ssl.principal.mapping.rules": "RULE:^CN=(.*?),OU=ops,O=vltava$/$1/U"})
    assert advertised_ports(ck_conf(ports["MTLS"], pki, cert="bob")) == [ports["MTLS"]]
    with pytest.raises(KafkaException):
        AdminClient({**ck_conf(ports["MTLS"], pki, cert="alice"), "socket.timeout.ms": 5000}).list_topics(timeout=8)
    h.wait_until(lambda: "no ssl.principal.mapping.rules rule applies to CN=alice,OU=eng,O=vltava" in b.log(),
                 timeout=15, what="the refusal naming alice's distinguished name in the log")
    assert b.is_running()


@pytest.mark.timeout(120)
def test_pkcs12_keystore_and_truststore(start_broker, pki):
    b, ports = start_tls_broker(start_broker, pki, extra={
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(pki["broker"].pkcs12("broker-secret")),
        "ssl.keystore.password": "broker-secret",
        "ssl.key.password": "broker-secret",
        "ssl.truststore.type": "PKCS12",
        "ssl.truststore.location": str(pki["ca"].truststore_pkcs12("trust-secret")),
        "ssl.truststore.password": "trust-secret",
    })
    ck_round_trip(ck_conf(ports["MTLS"], pki, cert="alice"), h.unique("p12"), n=50)
    assert b.is_running()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case", ["wrong PKCS12 password", "missing keystore", "SASL listener"])
def test_unusable_security_settings_refuse_to_start(start_broker, pki, case, tmp_path):
    sets = {"listeners": f"PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:{free_port()}",
            "ssl.keystore.location": str(pki["broker"].keystore_pem)}
    expected = {
        "wrong PKCS12 password": ["listener SSL (SSL)", "ssl.keystore.password"],
        "missing keystore": ["listener SSL (SSL)", "/nonexistent/keystore.pem"],
        "SASL listener": ["listener SSL", "SASL mechanism GSSAPI", "not supported"],
    }[case]
    if case == "wrong PKCS12 password":
        sets.update({"ssl.keystore.type": "PKCS12", "ssl.keystore.password": "wrong",
                     "ssl.keystore.location": str(pki["broker"].pkcs12("broker-secret"))})
    elif case == "missing keystore":
        sets["ssl.keystore.location"] = "/nonexistent/keystore.pem"
    else:
        sets["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT,SSL:SASL_SSL"
    with pytest.raises(BrokerStartError) as e:
        start_broker(sets)
    assert "exited with code 1" in str(e.value), e.value
    log = (tmp_path / "broker0" / "broker.log").read_text()   # the start_broker fixture's
    for text in expected:
        assert text in log, log[-3000:]


@pytest.mark.timeout(120)
def test_inline_pem_keystore_in_a_properties_file(start_broker, pki, tmp_path):
    """ssl.keystore.key and ssl.keystore.certificate.chain written inline in
    server.properties with Java line continuations, as Kafka's documentation shows."""
    def continued(pem: str) -> str:
        return " \\\n    ".join(pem.strip().splitlines())

    broker = pki["broker"]
    props = tmp_path / "server.properties"
    props.write_text(
        "ssl.keystore.type=PEM\n"
        f"ssl.keystore.key={continued(broker.key.read_text())}\n"
        f"ssl.keystore.certificate.chain={continued(broker.cert.read_text() + pki['ca'].cert.read_text())}\n")
    ssl_port = free_port()
    b = start_broker({"listeners": f"PLAINTEXT://127.0.0.1:0,SSL://127.0.0.1:{ssl_port}"}, config_file=props)
    assert int(peer_certificate(ssl_port, pki)["serialNumber"], 16) == broker.serial()
    assert advertised_ports(ck_conf(ssl_port, pki)) == [ssl_port]
    assert b.is_running()


# ------------------------------------------------------------------- rotation


def peer_certificate(port: int, pki) -> dict:
    ctx = ssl.create_default_context(cafile=str(pki["ca"].cert))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
            return s.getpeercert()


@pytest.mark.timeout(120)
def test_a_rotated_keystore_reaches_new_connections_without_a_restart(start_broker, pki, tmp_path):
    keystore = tmp_path / "rotating.pem"
    keystore.write_text(pki["broker"].keystore_pem.read_text())
    b, ports = start_tls_broker(start_broker, pki, extra={"ssl.keystore.location": str(keystore)})
    before = peer_certificate(ports["SSL"], pki)
    assert int(before["serialNumber"], 16) == pki["broker"].serial()
    # an established connection keeps working across the rotation
    p = Producer({**ck_conf(ports["SSL"], pki), "acks": "all"})
    topic = h.unique("rotate")
    p.produce(topic, b"before")
    assert p.flush(30) == 0
    renewed = pki["ca"].issue("broker-renewed", cn="broker.renewed")
    tmp = keystore.with_suffix(".tmp")
    tmp.write_text(renewed.keystore_pem.read_text())
    tmp.rename(keystore)
    after = h.wait_until(
        lambda: (c := peer_certificate(ports["SSL"], pki)) and int(c["serialNumber"], 16) == renewed.serial() and c,
        timeout=30, what="a new connection to see the renewed certificate")
    assert dict(x[0] for x in after["subject"])["commonName"] == "broker.renewed"
    p.produce(topic, b"after")
    assert p.flush(30) == 0
    # a keystore replaced by garbage keeps the last good one
    keystore.write_text("not a keystore\n")
    time.sleep(2.5)
    assert int(peer_certificate(ports["SSL"], pki)["serialNumber"], 16) == renewed.serial()
    h.wait_until(lambda: "does not load: keeping the previous one" in b.log(), timeout=15,
                 what="a warning about the unloadable keystore")
    assert b.is_running()


# ------------------------------------------------------------------ bad input


def plaintext_api_versions(port: int) -> bool:
    with kafka_wire.connect(port) as s:
        corr, err, apis, _ = kafka_wire.parse_api_versions_v0(
            kafka_wire.roundtrip(s, kafka_wire.api_versions_request_v0(7)))
        return corr == 7 and err == 0 and bool(apis)


@pytest.mark.timeout(120)
def test_bad_input_on_either_port_closes_only_that_connection(start_broker, pki):
    b, ports = start_tls_broker(start_broker, pki)
    ssl_port = ports["SSL"]
    # a plaintext Kafka client on the TLS port: the handshake fails, the connection closes
    with kafka_wire.connect(ssl_port) as s:
        s.sendall(kafka_wire.frame(kafka_wire.api_versions_request_v0(1)))
        closed, data = kafka_wire.wait_closed(s, timeout=15)
        assert closed, "still open"
        assert not data.startswith(b"\x00\x00"), "answered in plaintext"
    # garbage on the TLS port
    with kafka_wire.connect(ssl_port) as s:
        s.sendall(b"\x16\x03\x01\xff\xff" + bytes(range(256)) * 8)
        assert kafka_wire.wait_closed(s, timeout=15)[0]
    # a TLS client on the PLAINTEXT port: its ClientHello is no Kafka frame
    ctx = ssl.create_default_context(cafile=str(pki["ca"].cert))
    with socket.create_connection(("127.0.0.1", b.port), timeout=15) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1"):
                pass
    h.wait_until(lambda: "a TLS client on a PLAINTEXT listener" in b.log(), timeout=15,
                 what="the broker to name the TLS client on its PLAINTEXT listener")
    # a client that connects to the TLS port and says nothing is dropped (bounded handshake)
    silent = kafka_wire.connect(ssl_port, timeout=40)
    t0 = time.monotonic()
    closed, _ = kafka_wire.wait_closed(silent, timeout=40)
    silent.close()
    assert closed and time.monotonic() - t0 < 30, "a silent client held its connection"
    # everyone else is still served, on both ports
    assert plaintext_api_versions(b.port)
    assert advertised_ports(ck_conf(ssl_port, pki)) == [ssl_port]
    assert b.is_running()


# --------------------------------------------------------------------- cluster


class SslInterBrokerCluster(Cluster):
    """Every node gets an SSL listener (client certificates required) on a free port
    and uses it as the inter-broker listener: replication and broker-to-broker calls
    go over mutual TLS; its CONTROLLER listener is SSL too (client certificates
    required), so the Raft traffic and heartbeats are mutual TLS. Each node has its own
    certificate. The PLAINTEXT listener stays for the cluster helpers' raw requests."""

    def __init__(self, workdir, pki, **kw):
        super().__init__(workdir, **kw)
        self.pki = pki
        self.ssl_ports: dict[int, int] = {}

    def _layout(self) -> None:
        super()._layout()
        for i, node in self.nodes.items():
            port = free_port()
            self.ssl_ports[i] = port
            cert = self.pki["ca"].issue(f"node{i}-{uuid.uuid4().hex[:6]}", cn=f"broker-{i}")
            s = node.settings
            s["listeners"] = s["listeners"].replace(",CONTROLLER", f",SSL://{node.host}:{port},CONTROLLER")
            s["advertised.listeners"] += f",SSL://{node.host}:{port}"
            s["inter.broker.listener.name"] = "SSL"
            s["ssl.keystore.location"] = str(cert.keystore_pem)
            s["ssl.truststore.location"] = str(self.pki["ca"].cert)
            s["ssl.client.auth"] = "required"
            s["listener.security.protocol.map"] = "PLAINTEXT:PLAINTEXT,SSL:SSL,CONTROLLER:SSL"


@pytest.mark.timeout(300)
def test_three_nodes_replicate_over_an_ssl_inter_broker_listener(tmp_path, pki):
    with SslInterBrokerCluster(tmp_path, pki, n=3) as c:
        # the quorum formed over TLS: a controller was elected and every broker registered
        c.wait_controller(timeout=60)
        ctx = ssl.create_default_context(cafile=str(pki["ca"].cert))
        ctx.load_cert_chain(str(pki["alice"].cert), str(pki["alice"].key))
        for i, node in c.nodes.items():
            with socket.create_connection(("127.0.0.1", node.controller_port), timeout=10) as raw:
                with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as t:
                    subject = dict(x[0] for x in t.getpeercert()["subject"])
                    assert subject["commonName"] == f"broker-{i}", subject
        topic = h.unique("ssl-rf3")
        c.create_topic(topic, partitions=3, replication_factor=3)
        c.wait_isr(topic, None, 3, timeout=60)
        # acks=all over an SSL client listener: every follower must fetch over mutual TLS
        ssl_bootstrap = ",".join(f"127.0.0.1:{p}" for p in c.ssl_ports.values())
        conf = {**ck_conf(0, pki, cert="alice"), "bootstrap.servers": ssl_bootstrap}
        p = Producer({**conf, "acks": "all", "enable.idempotence": True})
        errors = []
        for i in range(N):
            p.produce(topic, key=str(i).encode(), value=f"v{i}".encode(),
                      on_delivery=lambda err, _m: err and errors.append(err))
        assert p.flush(90) == 0
        assert not errors, errors[:3]
        c.wait_isr(topic, None, 3, timeout=60)
        # Metadata over SSL lists every broker's SSL endpoint
        assert advertised_ports(conf) == sorted(c.ssl_ports.values())
        ck_round_trip(conf, h.unique("ssl-group"), n=100)
        for node in c.nodes.values():
            assert "TLS handshake failed" not in node.log(), node.log_tail()


def test_the_admin_listener_over_https_and_mutual_tls(start_broker, pki):
    """admin.listeners=https://...: /metrics and /health over TLS with the listeners'
    ssl.* keys (listener.name.admin.ssl.* first); with ssl.client.auth=required only a
    client with a certificate the truststore vouches for gets an answer; plain HTTP on
    the port gets none."""
    import urllib.error
    import urllib.request
    b, _ = start_tls_broker(start_broker, pki, {"admin.listeners": "https://127.0.0.1:0",
                                               "listener.name.admin.ssl.client.auth": "required"})
    port = int((b.port_file.parent / (b.port_file.name + ".admin")).read_text().strip())
    url = f"https://localhost:{port}"

    def get(path: str, cert: str | None):
        ctx = ssl.create_default_context(cafile=str(pki["ca"].cert))
        if cert:
            ctx.load_cert_chain(str(pki[cert].cert), str(pki[cert].key))
        with urllib.request.urlopen(url + path, context=ctx, timeout=30) as r:
            return r.status, r.read().decode()

    assert get("/health/live", "alice") == (200, "live\n")
    status, text = get("/metrics", "alice")
    assert status == 200 and "process_open_fds" in text, text[:300]
    for cert in (None, "mallory"):
        with pytest.raises((ssl.SSLError, urllib.error.URLError, ConnectionError)):
            get("/health/live", cert)
    import http.client
    with pytest.raises((urllib.error.URLError, http.client.HTTPException, OSError)):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/health/live", timeout=30).read()
    assert get("/health/ready", "bob")[0] == 200, "the listener serves on after refusals"


def test_vltava_bench_and_admin_commands_over_tls(start_broker, pki, tmp_path):
    """The command-line tools speak TLS: `vltava bench` (librdkafka with OpenSSL) with
    -X security.protocol=ssl, and the commands that send Kafka requests themselves
    (`quota`, `cluster`) from a --command-config file with librdkafka's ssl.* keys."""
    import subprocess
    from conftest import vltava_bin
    b, ports = start_tls_broker(start_broker, pki)
    ssl_addr = f"localhost:{ports['SSL']}"
    topic = h.unique("bench-tls")
    res = subprocess.run([vltava_bin(), "bench", "produce", "-b", ssl_addr, "-X", "security.protocol=ssl",
                          "-X", f"ssl.ca.location={pki['ca'].cert}", "--topic", topic, "--records", "20000",
                          "--record-size", "100", "--partitions", "2", "--json"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert h.watermarks(b.bootstrap, topic, 0)[1] + h.watermarks(b.bootstrap, topic, 1)[1] == 20000
    props = tmp_path / "client.properties"
    props.write_text(f"security.protocol=SSL\nssl.ca.location={pki['ca'].cert}\n")
    for args in (["quota", "describe", "--json"], ["cluster", "describe-quorum"]):
        res = subprocess.run([vltava_bin(), "--brokers", ssl_addr, "--command-config", str(props), *args],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, (args, res.stderr)
    # mutual TLS: the client certificate from the same file
    mtls = tmp_path / "mtls.properties"
    mtls.write_text(f"security.protocol=SSL\nssl.ca.location={pki['ca'].cert}\n"
                    f"ssl.certificate.location={pki['alice'].cert}\nssl.key.location={pki['alice'].key}\n")
    res = subprocess.run([vltava_bin(), "--brokers", f"localhost:{ports['MTLS']}", "--command-config", str(mtls),
                          "quota", "describe"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    res = subprocess.run([vltava_bin(), "--brokers", f"localhost:{ports['MTLS']}", "--command-config", str(props),
                          "quota", "describe"], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0, "no client certificate on a listener that requires one"
