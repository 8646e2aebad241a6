"""Delegation tokens (KIP-48) with the Java client 3.9.1: the Admin client creates,
renews, expires and describes tokens over SASL SCRAM; a producer and a consumer
authenticate with a token (ScramLoginModule with tokenauth="true") as its owner; an
expired token is refused; token requests are refused on a connection that is not
SASL-authenticated, and on one authenticated with a token.
"""

from __future__ import annotations

import pytest

import helpers as h


def run_tokens(bootstrap: str, props_file, op: str, *args) -> list[str]:
    res = h.run_java("DelegationTokens", bootstrap, props_file, op, *args, timeout=120)
    out = h.java_ok_lines(res, "DelegationTokens")
    errors = [line for line in res.stdout.splitlines() if line.startswith("ERR ")]
    return out + errors


def write_props(path, props: dict):
    path.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
    return path


def test_token_requests_are_refused_on_a_plaintext_connection(start_broker, tmp_path):
    """Kafka refuses every token API on a connection not authenticated by SASL
    (DELEGATION_TOKEN_REQUEST_NOT_ALLOWED: the Java client's
    UnsupportedByAuthenticationException), whether or not tokens are enabled."""
    b = start_broker({"delegation.token.secret.key": "s3cret"})
    plain = write_props(tmp_path / "plain.properties", {"security.protocol": "PLAINTEXT"})
    assert run_tokens(b.bootstrap, plain, "create") == ["ERR UnsupportedByAuthenticationException"]
    assert run_tokens(b.bootstrap, plain, "describe") == ["ERR UnsupportedByAuthenticationException"]
    fake_hmac = "AAAA"
    assert run_tokens(b.bootstrap, plain, "renew", fake_hmac, 1000) == [
        "ERR UnsupportedByAuthenticationException"]
    assert run_tokens(b.bootstrap, plain, "expire", fake_hmac, -1) == [
        "ERR UnsupportedByAuthenticationException"]
    # the broker serves on
    h.create_topic(b.bootstrap, h.unique("after"), 1)


def test_a_bad_token_setting_refuses_the_start(start_broker):
    from conftest import BrokerStartError
    with pytest.raises(BrokerStartError, match="delegation.token.expiry.time.ms"):
        start_broker({"delegation.token.expiry.time.ms": "0"})
