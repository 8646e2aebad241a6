"""Delegation tokens (KIP-48) with the Java client 3.9.1: the Admin client creates,
renews, expires and describes tokens over SASL SCRAM; a producer and a consumer
authenticate with a token (ScramLoginModule with tokenauth="true") as its owner; only
owners and renewers may renew, expire or see a token; an expired token is refused and
swept from the metadata log; token requests are refused on a connection that is not
SASL-authenticated, on one authenticated with a token, and when tokens are disabled.
"""

from __future__ import annotations

import subprocess
import time

import pytest

import helpers as h
from conftest import Broker, BrokerStartError, free_port, vltava_bin

N = 100
USERS = {"alice": "alice-secret", "bob": "bob-secret", "carol": "carol-secret"}
SECRET = "token-signing-secret"


@pytest.fixture
def token_broker(tmp_path, request):
    """Factory: token_broker(extra=None) starts a broker with PLAINTEXT (fixed port)
    and SASL_PLAINTEXT offering SCRAM-SHA-512 and SCRAM-SHA-256, the users of USERS
    (--add-scram) and delegation tokens on; returns (broker, SASL port)."""
    from conftest import _report_logs
    started: list[Broker] = []

    def factory(extra: dict | None = None):
        args = []
        for user, password in USERS.items():
            args += ["--add-scram", f"SCRAM-SHA-512=[name={user},password={password}]"]
        for attempt in range(3):
            plain, sasl = free_port(), free_port()
            sets = {
                "listeners": f"PLAINTEXT://127.0.0.1:{plain},SASL_PLAINTEXT://127.0.0.1:{sasl}",
                "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
                "sasl.enabled.mechanisms": "SCRAM-SHA-512,SCRAM-SHA-256",
                "delegation.token.secret.key": SECRET,
                "group.initial.rebalance.delay.ms": 0,
            }
            sets.update(extra or {})
            sets = {k: v for k, v in sets.items() if v is not None}
            b = Broker(tmp_path / f"broker{len(started)}", sets, port=plain)
            b.args = args
            started.append(b)
            try:
                return b.start(), sasl
            except BrokerStartError as e:
                if "Address already in use" not in str(e) or attempt == 2:
                    raise

    yield factory
    _report_logs(request, started)
    for b in started:
        b.kill()


def write_props(path, props: dict):
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def scram_props(tmp_path, user: str, password: str, mechanism: str = "SCRAM-SHA-512", token: bool = False):
    extra = ' tokenauth="true"' if token else ""
    return write_props(tmp_path / f"{user[:12]}-{mechanism}-{token}.properties", {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": mechanism,
        "sasl.jaas.config": "org.apache.kafka.common.security.scram.ScramLoginModule required "
                            f'username="{user}" password="{password}"{extra};',
    })


def run_tokens(bootstrap: str, props_file, op: str, *args) -> list[str]:
    """DelegationTokens.java: its "OK ..." and "ERR ..." lines."""
    res = h.run_java("DelegationTokens", bootstrap, props_file, op, *args, timeout=120)
    out = h.java_ok_lines(res, "DelegationTokens")
    return out + [line for line in res.stdout.splitlines() if line.startswith("ERR ")]


def create_token(bootstrap: str, props, renewers: str = "") -> dict:
    lines = run_tokens(bootstrap, props, "create", *([renewers] if renewers else []))
    assert len(lines) == 1 and lines[0].startswith("OK token "), lines
    token_id, hmac, owner, expiry, max_ts = lines[0].split()[2:]
    return {"id": token_id, "hmac": hmac, "owner": owner, "expiry": int(expiry), "max": int(max_ts)}


def described(bootstrap: str, props, owners: str = "") -> dict:
    """{token id: (owner, renewers)} as DescribeDelegationToken shows them."""
    lines = run_tokens(bootstrap, props, "describe", *([owners] if owners else []))
    assert lines and lines[0].startswith("OK described "), lines
    out = {}
    for line in lines[1:]:
        parts = line.split(" ")
        out[parts[2]] = (parts[3], parts[4] if len(parts) > 4 else "")
    assert len(out) == int(lines[0].split()[2]), lines
    return out


@pytest.mark.timeout(600)
def test_tokens_created_renewed_described_used_and_expired(token_broker, tmp_path):
    b, port = token_broker()
    boot = f"127.0.0.1:{port}"
    alice = scram_props(tmp_path, "alice", USERS["alice"])
    bob = scram_props(tmp_path, "bob", USERS["bob"])
    carol = scram_props(tmp_path, "carol", USERS["carol"])

    t = create_token(boot, alice, renewers="bob")
    assert t["owner"] == "User:alice"
    assert t["max"] - t["expiry"] == 6 * 24 * 3600 * 1000, t  # 1 day of 7
    assert len(t["id"]) == 22

    # owners and renewers see it; others do not
    assert described(boot, alice) == {t["id"]: ("User:alice", "User:bob")}
    assert described(boot, bob) == {t["id"]: ("User:alice", "User:bob")}
    assert described(boot, carol) == {}
    assert described(boot, alice, owners="carol") == {}
    assert described(boot, bob, owners="alice") == {t["id"]: ("User:alice", "User:bob")}

    # only owners and renewers renew or expire it
    assert run_tokens(boot, carol, "renew", t["hmac"], 60_000) == ["ERR DelegationTokenOwnerMismatchException"]
    assert run_tokens(boot, carol, "expire", t["hmac"], -1) == ["ERR DelegationTokenOwnerMismatchException"]
    before = int(time.time() * 1000)
    renewed = run_tokens(boot, bob, "renew", t["hmac"], 60_000)
    assert len(renewed) == 1 and renewed[0].startswith("OK renewed "), renewed
    assert before + 60_000 <= int(renewed[0].split()[2]) <= int(time.time() * 1000) + 60_000
    assert run_tokens(boot, alice, "renew", "AAAA", 1000) == ["ERR DelegationTokenNotFoundException"]

    # a producer and a consumer in a group authenticate with the token, over
    # SCRAM-SHA-512 and SCRAM-SHA-256
    for mechanism in ("SCRAM-SHA-512", "SCRAM-SHA-256"):
        props = scram_props(tmp_path, t["id"], t["hmac"], mechanism, token=True)
        topic = h.unique(f"token-{mechanism.lower()}")
        res = h.run_java("TlsClients", boot, topic, N, props, timeout=280)
        assert h.java_ok_lines(res, "TlsClients") == [f"OK cluster {port}", f"OK produced {N}", f"OK consumed {N}"]
    # a token-authenticated connection may not ask for tokens
    token_auth = scram_props(tmp_path, t["id"], t["hmac"], token=True)
    assert run_tokens(boot, token_auth, "create") == ["ERR UnsupportedByAuthenticationException"]
    assert run_tokens(boot, token_auth, "describe") == ["ERR UnsupportedByAuthenticationException"]
    # a wrong HMAC, or the token id as a plain SCRAM user, does not log in
    assert run_tokens(boot, scram_props(tmp_path, t["id"], "AAAA" + t["hmac"][4:], token=True),
                      "describe") == ["ERR SaslAuthenticationException"]
    assert run_tokens(boot, scram_props(tmp_path, t["id"], t["hmac"]), "describe") == [
        "ERR SaslAuthenticationException"]

    # expired at once: gone, and its logins refused
    expired = run_tokens(boot, alice, "expire", t["hmac"], -1)
    assert len(expired) == 1 and expired[0].startswith("OK expired "), expired
    assert described(boot, alice) == {}
    assert run_tokens(boot, token_auth, "describe") == ["ERR SaslAuthenticationException"]
    assert run_tokens(boot, alice, "renew", t["hmac"], 1000) == ["ERR DelegationTokenNotFoundException"]

    # tokens are in the metadata log: they survive a restart
    t2 = create_token(boot, bob)
    b.restart()
    assert described(boot, bob) == {t2["id"]: ("User:bob", "")}
    props = scram_props(tmp_path, t2["id"], t2["hmac"], token=True)
    res = h.run_java("TlsClients", boot, h.unique("after-restart"), 10, props, timeout=280)
    assert h.java_ok_lines(res, "TlsClients")[1:] == ["OK produced 10", "OK consumed 10"]


@pytest.mark.timeout(300)
def test_an_expired_token_is_refused_and_swept(token_broker, tmp_path):
    b, port = token_broker({"delegation.token.expiry.time.ms": 4000,
                            "delegation.token.expiry.check.interval.ms": 1000})
    boot = f"127.0.0.1:{port}"
    alice = scram_props(tmp_path, "alice", USERS["alice"])
    t = create_token(boot, alice)
    assert 0 < t["expiry"] - int(time.time() * 1000) <= 4000
    token_auth = scram_props(tmp_path, t["id"], t["hmac"], token=True)
    h.wait_until(lambda: time.time() * 1000 > t["expiry"] + 100, 30, "the token's expiry")
    assert run_tokens(boot, token_auth, "describe") == ["ERR SaslAuthenticationException"]
    assert run_tokens(boot, alice, "renew", t["hmac"], 1000) in (
        ["ERR DelegationTokenExpiredException"], ["ERR DelegationTokenNotFoundException"])
    # the active controller removes it
    h.wait_until(lambda: described(boot, alice) == {}, 60, "the expired token swept")
    assert "removing expired delegation tokens" in b.log()


def test_token_requests_are_refused_on_a_plaintext_connection(token_broker, tmp_path):
    """Kafka refuses every token API on a connection not authenticated by SASL
    (DELEGATION_TOKEN_REQUEST_NOT_ALLOWED: the Java client's
    UnsupportedByAuthenticationException)."""
    b, _port = token_broker()
    plain = write_props(tmp_path / "plain.properties", {"security.protocol": "PLAINTEXT"})
    refused = ["ERR UnsupportedByAuthenticationException"]
    assert run_tokens(b.bootstrap, plain, "create") == refused
    assert run_tokens(b.bootstrap, plain, "describe") == refused
    assert run_tokens(b.bootstrap, plain, "renew", "AAAA", 1000) == refused
    assert run_tokens(b.bootstrap, plain, "expire", "AAAA", -1) == refused
    h.create_topic(b.bootstrap, h.unique("after"), 1)


def test_tokens_disabled_without_a_secret(token_broker, tmp_path):
    _b, port = token_broker({"delegation.token.secret.key": None})
    alice = scram_props(tmp_path, "alice", USERS["alice"])
    assert run_tokens(f"127.0.0.1:{port}", alice, "create") == ["ERR DelegationTokenDisabledException"]
    assert run_tokens(f"127.0.0.1:{port}", alice, "describe") == ["ERR DelegationTokenDisabledException"]


def test_a_bad_token_setting_refuses_the_start(start_broker):
    with pytest.raises(BrokerStartError, match="delegation.token.expiry.time.ms"):
        start_broker({"delegation.token.expiry.time.ms": "0"})


@pytest.mark.timeout(300)
def test_mutual_tls_may_ask_for_tokens_one_way_tls_may_not(start_broker, tmp_path, tmp_path_factory):
    """Kafka allows token requests on two-way TLS (the certificate's principal owns
    the token) and refuses them on one-way TLS."""
    from test_tls import start_tls_broker
    from tls_certs import CertAuthority
    ca = CertAuthority(tmp_path_factory.mktemp("pki") / "ca")
    pki = {"ca": ca, "broker": ca.issue("broker", cn="localhost"), "alice": ca.issue("alice", cn="alice")}
    _b, ports = start_tls_broker(start_broker, pki, extra={"delegation.token.secret.key": SECRET})
    trust = {"security.protocol": "SSL", "ssl.truststore.type": "PEM", "ssl.truststore.location": pki["ca"].cert}
    one_way = write_props(tmp_path / "ssl.properties", trust)
    assert run_tokens(f"127.0.0.1:{ports['SSL']}", one_way, "create") == ["ERR UnsupportedByAuthenticationException"]
    p12 = pki["alice"].pkcs12("alice-secret")
    two_way = write_props(tmp_path / "mtls.properties", {
        **trust, "ssl.keystore.type": "PKCS12", "ssl.keystore.location": p12,
        "ssl.keystore.password": "alice-secret", "ssl.key.password": "alice-secret"})
    t = create_token(f"127.0.0.1:{ports['MTLS']}", two_way)
    assert t["owner"].startswith("User:CN=alice,"), t


@pytest.mark.timeout(300)
def test_an_authorizer_widens_who_may_create_and_describe_tokens(token_broker, tmp_path):
    """With the StandardAuthorizer, as Kafka: CREATE_TOKENS on the USER resource lets
    carol create a token owned by alice (refused without it), and DESCRIBE_TOKENS on
    alice lets bob see alice's tokens; without those ACLs each sees only their own."""
    b, port = token_broker({
        "authorizer.class.name": "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
        "super.users": "User:ANONYMOUS",      # the PLAINTEXT listener: brokers and the CLI
        "allow.everyone.if.no.acl.found": "false",
    })
    sasl = f"127.0.0.1:{port}"
    alice, bob, carol = (scram_props(tmp_path, u, USERS[u]) for u in ("alice", "bob", "carol"))
    own = create_token(sasl, alice)
    assert run_tokens(sasl, carol, "create-for", "alice") == [
        "ERR DelegationTokenAuthorizationException"]
    assert described(sasl, bob) == {}
    acl = lambda *args: subprocess.run([vltava_bin(), "--brokers", b.bootstrap, "acl", "create", *args],  # noqa: E731
                                       capture_output=True, text=True, timeout=60)
    for args in (["--allow-principal", "User:carol", "--operation", "create-tokens", "--user-principal", "User:alice"],
                 ["--allow-principal", "User:bob", "--operation", "describe-tokens", "--user-principal", "User:alice"]):
        res = acl(*args)
        assert res.returncode == 0, res.stderr
    lines = run_tokens(sasl, carol, "create-for", "alice")
    assert len(lines) == 1 and lines[0].startswith("OK token ") and lines[0].split()[4] == "User:alice", lines
    seen = described(sasl, bob)
    assert set(seen) == {own["id"], lines[0].split()[2]} and all(o == "User:alice" for o, _ in seen.values()), seen
