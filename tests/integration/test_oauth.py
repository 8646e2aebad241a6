"""OAUTHBEARER with real clients: confluent-kafka (librdkafka) with unsecured JWTs
(`enable.sasl.oauthbearer.unsecure.jwt`) and with signed JWTs from an `oauth_cb`,
kafka-python with a token provider, and the Java client 3.9.1 with
`unsecuredLoginStringClaim_sub`: each creates a topic, produces, and consumes in a
group. Signed tokens are checked against a JWKS file the test writes (RSA keys made
in the test with `cryptography`, tokens signed with PyJWT); expired, badly signed,
wrong-issuer and wrong-audience tokens are refused while the broker keeps serving the
others; a key rotated into the JWKS file is picked up without a restart.

Every broker has a PLAINTEXT listener first (port 0, the fixtures' readiness check)
and a SASL_PLAINTEXT listener on a port picked free just before the start.
"""

from __future__ import annotations

import json
import time

import jwt
import pytest
from confluent_kafka import KafkaError, Producer
from confluent_kafka.admin import AdminClient
from cryptography.hazmat.primitives.asymmetric import rsa

import helpers as h
from conftest import BrokerStartError, free_port

N = 200
ISSUER = "https://idp.test"
AUDIENCE = "kafka"


class KeyPair:
    """An RSA signing key and its JWK."""

    def __init__(self, kid: str):
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        self.jwk.update(kid=kid, alg="RS256", use="sig")

    def sign(self, sub: str, lifetime_s: int = 3600, **claims) -> tuple[str, float]:
        now = int(time.time())
        body = {"sub": sub, "iat": now, "exp": now + lifetime_s, "iss": ISSUER, "aud": AUDIENCE}
        body.update(claims)
        return jwt.encode(body, self.private, algorithm="RS256", headers={"kid": self.kid}), body["exp"]


def write_jwks(path, *keys: KeyPair):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"keys": [k.jwk for k in keys]}))
    tmp.replace(path)


def start_oauth_broker(start_broker, extra: dict | None = None):
    """A broker with PLAINTEXT (port 0) and SASL_PLAINTEXT offering OAUTHBEARER;
    returns (broker, SASL port)."""
    for attempt in range(3):
        port = free_port()
        sets = {
            "listeners": f"PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:{port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT",
            "sasl.enabled.mechanisms": "OAUTHBEARER",
            "group.initial.rebalance.delay.ms": 0,
        }
        sets.update(extra or {})
        try:
            return start_broker(sets), port
        except BrokerStartError as e:
            if "Address already in use" not in str(e) or attempt == 2:
                raise


def jwks_broker(start_broker, tmp_path, *keys: KeyPair):
    jwks = tmp_path / "jwks.json"
    write_jwks(jwks, *keys)
    b, port = start_oauth_broker(start_broker, {
        "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class":
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
        "sasl.oauthbearer.jwks.endpoint.url": f"file://{jwks}",
        "sasl.oauthbearer.expected.issuer": ISSUER,
        "sasl.oauthbearer.expected.audience": AUDIENCE,
    })
    return b, port, jwks


def sasl_conf(port: int) -> dict:
    return {"bootstrap.servers": f"127.0.0.1:{port}", "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "OAUTHBEARER"}


def refused_by_broker(conf: dict, what: str, timeout: float = 60) -> list:
    """Connects with `conf` and waits for librdkafka to report an authentication error;
    returns the errors seen."""
    errors = []
    p = Producer({**conf, "error_cb": errors.append, "message.timeout.ms": 60_000})
    try:
        h.wait_until(lambda: p.poll(0.2) is not None and any(
            e.code() == KafkaError._AUTHENTICATION for e in errors), timeout, f"{what} refused")
    finally:
        p.purge()
        p.flush(5)
    return errors


# --------------------------------------------------------------- unsecured tokens


@pytest.mark.timeout(240)
def test_confluent_kafka_with_unsecured_jwt(start_broker):
    b, port = start_oauth_broker(start_broker)
    assert "unsecured" in b.log().lower(), "no warning about unsecured tokens at start"
    conf = {**sasl_conf(port), "enable.sasl.oauthbearer.unsecure.jwt": True,
            "sasl.oauthbearer.config": "principal=alice"}
    h.ck_round_trip(conf, h.unique("ck-unsecured"))
    assert b.is_running()


@pytest.mark.timeout(240)
def test_java_client_with_unsecured_login_string_claim_sub(start_broker, tmp_path):
    _b, port = start_oauth_broker(start_broker)
    props = tmp_path / "client.properties"
    props.write_text(
        "security.protocol=SASL_PLAINTEXT\n"
        "sasl.mechanism=OAUTHBEARER\n"
        "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required "
        'unsecuredLoginStringClaim_sub="alice";\n')
    topic = h.unique("java-oauth")
    res = h.run_java("TlsClients", f"127.0.0.1:{port}", topic, N, props, timeout=280)
    assert h.java_ok_lines(res, "TlsClients") == [f"OK cluster {port}", f"OK produced {N}", f"OK consumed {N}"]


# ----------------------------------------------------------------- signed tokens


@pytest.mark.timeout(300)
def test_confluent_kafka_with_signed_tokens_from_oauth_cb(start_broker, tmp_path):
    key = KeyPair("k1")
    b, port, jwks = jwks_broker(start_broker, tmp_path, key)
    calls = []

    def oauth_cb(_config):
        calls.append(1)
        return key.sign("alice")

    h.ck_round_trip({**sasl_conf(port), "oauth_cb": oauth_cb}, h.unique("ck-signed"))
    assert calls, "oauth_cb never called"

    # refused: expired, signed by an unknown key, by a key claiming a known kid,
    # wrong issuer, wrong audience, unsigned
    stranger = KeyPair("k2")
    impostor = KeyPair("k1")
    unsigned = jwt.encode({"sub": "alice", "exp": int(time.time()) + 600}, None, algorithm="none")
    bad = {
        "expired": key.sign("alice", lifetime_s=-3600)[0],
        "unknown key": stranger.sign("alice")[0],
        "bad signature": impostor.sign("alice")[0],
        "wrong issuer": key.sign("alice", iss="https://evil.test")[0],
        "wrong audience": key.sign("alice", aud="elsewhere")[0],
        "unsigned": unsigned,
    }
    # a client with a good token keeps working while the bad ones are refused
    good = Producer({**sasl_conf(port), "oauth_cb": lambda _c: key.sign("bob")})
    topic = h.unique("still-serving")
    h.create_topic(b.bootstrap, topic, 1)
    for what, token in bad.items():
        # librdkafka refuses a token it believes expired: it is told a future
        # expiry, whatever the token's claims say
        refused_by_broker({**sasl_conf(port), "oauth_cb": lambda _c, t=token: (t, time.time() + 600)}, what)
        good.produce(topic, value=what.encode())
        assert good.flush(60) == 0, f"good client stuck after {what}"
    assert h.watermarks(b.bootstrap, topic, 0) == (0, len(bad))
    log = b.log()
    for reason in ("expired", "no key with id k2", "bad signature", "issuer", "audience"):
        assert reason in log, f"no '{reason}' in the broker log"

    # a key rotated into the JWKS file is accepted without a restart
    write_jwks(jwks, key, stranger)
    h.ck_round_trip({**sasl_conf(port), "oauth_cb": lambda _c: stranger.sign("carol")}, h.unique("rotated"), n=20)
    assert b.is_running()


@pytest.mark.timeout(240)
def test_kafka_python_with_a_token_provider(start_broker, tmp_path):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError as KPError
    from kafka.net.sasl.oauth import AbstractTokenProvider

    key = KeyPair("kp")
    _b, port, _jwks = jwks_broker(start_broker, tmp_path, key)

    class Provider(AbstractTokenProvider):
        def __init__(self, token):
            self._token = token

        def token(self):
            return self._token

    conf = dict(bootstrap_servers=f"127.0.0.1:{port}", security_protocol="SASL_PLAINTEXT",
                sasl_mechanism="OAUTHBEARER", sasl_oauth_token_provider=Provider(key.sign("dave")[0]))
    h.kp_round_trip(conf, h.unique("kp-oauth"), port, N)

    expired = dict(conf, sasl_oauth_token_provider=Provider(key.sign("dave", lifetime_s=-600)[0]))
    with pytest.raises(KPError):
        KafkaAdminClient(request_timeout_ms=10_000, **expired).close()
