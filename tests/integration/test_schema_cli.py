"""`vltava schema register|get|list|delete|check` (issue 15) against the real
`vltava` binary's built-in schema registry; what the CLI wrote is read back
with confluent-kafka's SchemaRegistryClient, and the other way round."""

from __future__ import annotations

import json
import subprocess

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from conftest import vltava_bin
from helpers import unique

V1 = {"type": "record", "name": "Payment", "namespace": "bank",
      "fields": [{"name": "id", "type": "string"}, {"name": "amount", "type": "double"}]}
# BACKWARD compatible: a new field with a default
V2 = {**V1, "fields": V1["fields"] + [{"name": "currency", "type": "string", "default": "EUR"}]}
# not BACKWARD compatible: a new field without a default
V_BAD = {**V1, "fields": V1["fields"] + [{"name": "country", "type": "string"}]}


def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([vltava_bin(), "schema", *args], input=stdin, capture_output=True, text=True,
                          timeout=60)


@pytest.fixture(scope="module")
def reg(module_broker):
    return module_broker.registry_url


@pytest.fixture
def files(tmp_path):
    out = {}
    for name, schema in [("v1", V1), ("v2", V2), ("bad", V_BAD)]:
        path = tmp_path / f"{name}.avsc"
        path.write_text(json.dumps(schema, indent=2))
        out[name] = str(path)
    return out


def test_register_get_list_round_trip_with_the_confluent_client(reg, files):
    s = unique("payments") + "-value"
    r = cli("register", "--registry", reg, "--subject", s, "--type", "AVRO", files["v1"])
    assert r.returncode == 0, r.stderr
    schema_id = int(r.stdout.strip())
    client = SchemaRegistryClient({"url": reg})
    assert json.loads(client.get_schema(schema_id).schema_str) == V1
    # registering the same schema again answers the same id
    again = cli("register", "--registry", reg, "--subject", s, files["v1"])
    assert again.returncode == 0 and int(again.stdout) == schema_id, again.stderr
    # get by id and by subject + version print the schema
    for args in (["--id", str(schema_id)], ["--subject", s, "--version", "1"], ["--subject", s]):
        r = cli("get", "--registry", reg, *args)
        assert r.returncode == 0, (args, r.stderr)
        assert json.loads(r.stdout) == V1, args
    r = cli("get", "--registry", reg, "--subject", s, "--version", "1", "--json")
    answer = json.loads(r.stdout)
    assert (answer["subject"], answer["version"], answer["id"]) == (s, 1, schema_id)
    # a schema registered by the Confluent client is listed by the CLI
    v2_id = client.register_schema(s, Schema(json.dumps(V2), "AVRO"))
    assert v2_id != schema_id
    r = cli("list", "--registry", reg)
    assert r.returncode == 0 and s in r.stdout.split(), r
    r = cli("list", "--registry", reg, "--subject", s)
    assert r.stdout.split() == ["1", "2"], r


def test_check_exits_nonzero_with_the_reasons_when_incompatible(reg, files):
    s = unique("check") + "-value"
    assert cli("register", "--registry", reg, "--subject", s, files["v1"]).returncode == 0
    ok = cli("check", "--registry", reg, "--subject", s, "--type", "AVRO", files["v2"])
    assert ok.returncode == 0, ok.stderr
    assert "compatible" in ok.stdout
    bad = cli("check", "--registry", reg, "--subject", s, "--type", "AVRO", files["bad"])
    assert bad.returncode == 1, (bad.stdout, bad.stderr)
    assert "incompatible" in bad.stderr and "country" in bad.stderr, bad.stderr
    js = cli("check", "--registry", reg, "--subject", s, files["bad"], "--json")
    assert js.returncode == 1 and json.loads(js.stdout)["is_compatible"] is False, js
    # the check registered nothing
    assert cli("list", "--registry", reg, "--subject", s).stdout.split() == ["1"]


def test_schema_from_stdin(reg):
    s = unique("stdin") + "-value"
    r = cli("register", "--registry", reg, "--subject", s, "-", stdin='"string"')
    assert r.returncode == 0, r.stderr
    assert json.loads(cli("get", "--registry", reg, "--id", r.stdout.strip()).stdout) == "string"


def test_soft_then_permanent_delete(reg, files):
    s = unique("del") + "-value"
    schema_id = int(cli("register", "--registry", reg, "--subject", s, files["v1"]).stdout)
    assert cli("register", "--registry", reg, "--subject", s, files["v2"]).returncode == 0
    r = cli("delete", "--registry", reg, "--subject", s, "--version", "2")
    assert r.returncode == 0, r.stderr
    assert cli("list", "--registry", reg, "--subject", s).stdout.split() == ["1"]
    assert cli("list", "--registry", reg, "--subject", s, "--deleted").stdout.split() == ["1", "2"]
    # soft-deleting the subject hides it; its ids stay readable
    assert cli("delete", "--registry", reg, "--subject", s).returncode == 0
    assert s not in cli("list", "--registry", reg).stdout.split()
    assert s in cli("list", "--registry", reg, "--deleted").stdout.split()
    assert cli("get", "--registry", reg, "--id", str(schema_id)).returncode == 0
    # --permanent removes it for good
    r = cli("delete", "--registry", reg, "--subject", s, "--permanent")
    assert r.returncode == 0, r.stderr
    assert s not in cli("list", "--registry", reg, "--deleted").stdout.split()
    gone = cli("get", "--registry", reg, "--subject", s)
    assert gone.returncode == 3, gone
    assert "40401" in gone.stderr, gone.stderr


def test_errors_exit_codes(reg, tmp_path, files):
    # an unknown id: not found (3) with Confluent's error code
    r = cli("get", "--registry", reg, "--id", "987654")
    assert r.returncode == 3 and "40403" in r.stderr, r
    # an invalid schema: refused (1) with the registry's 422 reason
    bad = tmp_path / "broken.avsc"
    bad.write_text('{"type": "record", "name": "X", "fields": [{"name": "a", "type": "nosuchtype"}]}')
    r = cli("register", "--registry", reg, "--subject", unique("broken"), str(bad))
    assert r.returncode == 1 and "422" in r.stderr and "42201" in r.stderr, r
    # a missing file, a registry nobody listens on
    r = cli("register", "--registry", reg, "--subject", "x", str(tmp_path / "none.avsc"))
    assert r.returncode == 1 and "none.avsc" in r.stderr, r
    r = cli("list", "--registry", "http://127.0.0.1:9")
    assert r.returncode == 1 and "127.0.0.1:9" in r.stderr, r
    # usage errors
    assert cli("get", "--registry", reg).returncode == 2
