"""The `vltava` command line (topic, produce, consume, group, cluster, log-dirs, bench)
against the real broker: output, exit codes (0 ok, 1 error, 2 usage, 3 not
found), an unreachable broker and a missing topic."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time

import pytest

import helpers as h
from conftest import vltava_bin

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND = 0, 1, 2, 3


def cli(*args, brokers: str | None = None, stdin: str | bytes | None = None, timeout: float = 60.0,
        check: bool = False) -> subprocess.CompletedProcess:
    """Runs `vltava [--brokers B] ARGS...`; text output."""
    cmd = [vltava_bin()]
    if brokers is not None:
        cmd += ["--brokers", brokers]
    cmd += [str(a) for a in args]
    env = {k: v for k, v in os.environ.items() if k != "VLTAVA_BROKERS"}
    data = stdin.encode() if isinstance(stdin, str) else stdin
    p = subprocess.run(cmd, input=data, capture_output=True, timeout=timeout, env=env)
    out = subprocess.CompletedProcess(p.args, p.returncode, p.stdout.decode(errors="replace"),
                                      p.stderr.decode(errors="replace"))
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {out.returncode}\nstdout:\n{out.stdout}\n"
                             f"stderr:\n{out.stderr}")
    return out


def one_line_error(p: subprocess.CompletedProcess) -> str:
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{p.stderr}"
    assert lines[0].startswith("error: "), lines[0]
    return lines[0]


@pytest.fixture
def b(module_broker_alive):
    return module_broker_alive


# ---------------------------------------------------------------- help, usage


def test_help_lists_commands_examples_and_exit_codes():
    p = cli("--help", check=True)
    for word in ("server", "topic", "produce", "consume", "group", "cluster", "log-dirs", "bench", "--brokers",
                 "Exit codes", "not found"):
        assert word in p.stdout, word
    for sub in (["topic", "create"], ["topic", "describe"], ["produce"], ["consume"], ["group", "reset-offsets"],
                ["cluster", "info"], ["cluster", "describe-quorum"], ["cluster", "features"],
                ["log-dirs", "describe"], ["log-dirs", "move"], ["bench", "produce"], ["bench", "consume"], ["bench", "e2e"]):
        p = cli(*sub, "--help", check=True)
        assert "Examples:" in p.stdout, sub


def test_usage_errors_exit_2():
    assert cli("topic", "create").returncode == EXIT_USAGE
    assert cli("consume", "t", "--from-beginning", "--from-end").returncode == EXIT_USAGE
    assert cli("produce", "t", "--acks", "2").returncode == EXIT_USAGE
    assert cli("no-such-command").returncode == EXIT_USAGE


# ---------------------------------------------------------------- unreachable


@pytest.mark.parametrize("args", [
    ["topic", "list"],
    ["cluster", "info"],
    ["cluster", "describe-quorum"],
    ["cluster", "features"],
    ["log-dirs", "describe"],
    ["topic", "describe", "x"],
    ["consume", "x", "--from-beginning", "--exit-at-end"],
    ["group", "list"],
    ["bench", "produce", "--records", "10"],
])
def test_unreachable_broker_one_line_error(args):
    """Nothing listens: the command says so at once, without waiting out its --timeout
    (120 s here, twice the deadline of the subprocess, which fails the test)."""
    p = cli("--timeout", 120, *args, brokers="127.0.0.1:1", stdin="a\n", timeout=60)
    assert p.returncode == EXIT_ERROR, p
    line = one_line_error(p)
    assert "127.0.0.1:1" in line and "reach" in line, line


def test_produce_unreachable_broker_one_line_error():
    p = cli("--timeout", 120, "produce", "x", brokers="127.0.0.1:1", stdin="a\nb\n", timeout=60)
    assert p.returncode == EXIT_ERROR
    assert "cannot reach" in one_line_error(p)


@pytest.mark.parametrize("args", [["topic", "list"], ["cluster", "features"]])
def test_silent_listener_times_out_with_one_line(args):
    """A port that accepts connections but never answers: the --timeout applies. It is
    longer than the default (5 s), and the command gives up no earlier than it (a lower
    bound, which load cannot break). `cluster features` speaks the protocol itself
    (connection.rs), `topic list` through librdkafka."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        port = s.getsockname()[1]
        t0 = time.monotonic()
        p = cli("--timeout", 8, *args, brokers=f"127.0.0.1:{port}", timeout=60)
        took = time.monotonic() - t0
    assert p.returncode == EXIT_ERROR
    line = one_line_error(p)
    assert "no answer within" in line, line
    assert took >= 8, f"gave up after {took:.1f}s, before its --timeout of 8 s: {line}"


# ---------------------------------------------------------------- cluster


def test_cluster_info(b):
    p = cli("cluster", "info", brokers=b.bootstrap, check=True)
    assert f"127.0.0.1:{b.port}" in p.stdout
    assert "cluster id:" in p.stdout and "controller:  1" in p.stdout
    info = json.loads(cli("cluster", "info", "--json", brokers=b.bootstrap, check=True).stdout)
    assert info["controller_id"] == 1
    assert info["cluster_id"]
    assert info["brokers"] == [{"id": 1, "host": "127.0.0.1", "port": b.port, "controller": True}]


def test_brokers_from_environment(b):
    env = dict(os.environ, VLTAVA_BROKERS=b.bootstrap)
    p = subprocess.run([vltava_bin(), "cluster", "info", "--json"], capture_output=True, env=env, timeout=30)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["brokers"][0]["port"] == b.port


def _table(text: str, header: str) -> list[list[str]]:
    """The rows (split on white space) of the table whose header line starts with
    `header`, up to the next blank line."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.split()[:1] == [header])
    rows = []
    for ln in lines[start + 1:]:
        if not ln.strip():
            break
        rows.append(ln.split())
    return rows


def _fields(text: str) -> dict:
    """The `name: value` lines before the first blank line."""
    head = text.split("\n\n", 1)[0]
    return {k.strip(): v.strip() for k, v in (ln.split(":", 1) for ln in head.splitlines())}


def test_cluster_describe_quorum(b):
    """One node: it leads epoch >= 1 of the metadata quorum alone, its log end is the
    high watermark (lag 0), and it heard from itself just now."""
    cli("topic", "create", h.unique("cli-quorum"), brokers=b.bootstrap, check=True)
    q = json.loads(cli("cluster", "describe-quorum", "--json", brokers=b.bootstrap, check=True).stdout)
    assert q["leader_id"] == 1 and q["leader_epoch"] >= 1 and q["high_watermark"] > 0, q
    assert q["answered_by"] == b.bootstrap and q["observers"] == [], q
    [voter] = q["voters"]
    assert voter["id"] == 1 and voter["log_end_offset"] >= q["high_watermark"] > 0, q
    assert voter["lag"] == 0, q
    # ages from the broker's clock to ours: recent, never negative
    for age in ("last_fetch_age_ms", "last_caught_up_age_ms"):
        assert 0 <= voter[age] < 600_000, q

    text = cli("cluster", "describe-quorum", brokers=b.bootstrap, check=True).stdout
    fields = _fields(text)
    assert fields["leader"] == "1" and int(fields["leader epoch"]) >= 1, text
    assert int(fields["high watermark"]) > 0, text
    [row] = _table(text, "ROLE")
    assert row[:2] == ["voter", "1"] and int(row[2]) > 0 and row[3] == "0", text
    assert all(int(age) >= 0 for age in row[4:6]), text


def test_cluster_features(b):
    """KIP-584 flags from ApiVersions v3+: metadata.version finalized at 27 (supported
    7-27), transaction.version at 2 (supported 0-2), group.version and share.version at 1
    (supported 0-1), every other feature supported at 0 only and not finalized."""
    f = json.loads(cli("cluster", "features", "--json", brokers=b.bootstrap, check=True).stdout)
    assert f["finalized"] == [{"name": "group.version", "level": 1},
                              {"name": "metadata.version", "level": 27},
                              {"name": "share.version", "level": 1},
                              {"name": "transaction.version", "level": 2}], f
    assert f["finalized_epoch"] >= 0, f
    supported = {x["name"]: (x["min"], x["max"]) for x in f["supported"]}
    assert supported["metadata.version"] == (7, 27), f
    assert supported["transaction.version"] == (0, 2), f
    for name in ("group.version", "share.version"):
        assert supported[name] == (0, 1), (name, f)
    for name in ("kraft.version", "streams.version"):
        assert supported[name] == (0, 0), (name, f)

    text = cli("cluster", "features", brokers=b.bootstrap, check=True).stdout
    assert int(_fields(text)["finalized epoch"]) == f["finalized_epoch"], text
    assert _table(text, "FINALIZED") == [["group.version", "1"], ["metadata.version", "27"], ["share.version", "1"],
                                         ["transaction.version", "2"]], text
    rows = {r[0]: r[1:] for r in _table(text, "SUPPORTED")}
    assert rows["metadata.version"] == ["7", "27"] and rows["transaction.version"] == ["0", "2"], text
    assert len(rows) == len(supported), text


def _segment_bytes(partition_dir) -> int:
    return sum(p.stat().st_size for p in partition_dir.glob("*.log"))


def _log_dir_partitions(report: dict) -> dict:
    """{(broker, topic, partition): (size_bytes, offset_lag)} of a `log-dirs describe --json`."""
    return {(br["broker"], p["topic"], p["partition"]): (p["size_bytes"], p["offset_lag"])
            for br in report["brokers"] for d in br["log_dirs"] for p in d["partitions"]}


def test_log_dirs_describe(b):
    topic, other = h.unique("cli-dirs"), h.unique("cli-dirs-other")
    cli("topic", "create", topic, "-p", 2, brokers=b.bootstrap, check=True)
    cli("topic", "create", other, "-p", 1, brokers=b.bootstrap, check=True)
    cli("produce", topic, "--partition", 0, "--acks", "all", brokers=b.bootstrap,
        stdin="".join(f"record-{i:04d}-{'x' * 100}\n" for i in range(500)), check=True)

    report = json.loads(cli("log-dirs", "describe", "--json", brokers=b.bootstrap, check=True).stdout)
    [broker] = report["brokers"]
    assert (broker["broker"], broker["address"], broker["error"]) == (1, b.bootstrap, None), broker
    [log_dir] = broker["log_dirs"]
    assert log_dir["path"] == str(b.data_dir.resolve()) and log_dir["error"] is None, log_dir
    assert 0 < log_dir["usable_bytes"] <= log_dir["total_bytes"], log_dir
    sizes = _log_dir_partitions(report)
    on_disk = _segment_bytes(b.data_dir / f"{topic}-0")
    assert on_disk > 500 * 100
    assert sizes[(1, topic, 0)] == (on_disk, 0), sizes
    assert sizes[(1, topic, 1)] == (0, 0), sizes
    assert (1, other, 0) in sizes

    # --topic: that topic's partitions only; --broker 1: the same broker
    filtered = json.loads(cli("log-dirs", "describe", "--topic", topic, "--broker", 1, "--json",
                              brokers=b.bootstrap, check=True).stdout)
    assert set(_log_dir_partitions(filtered)) == {(1, topic, 0), (1, topic, 1)}, filtered

    text = cli("log-dirs", "describe", "--topic", topic, brokers=b.bootstrap, check=True).stdout
    assert f"broker 1 at {b.bootstrap}" in text, text
    rows = {int(r[1]): r[2:] for r in _table(text, "TOPIC")}
    assert sorted(rows) == [0, 1], text
    assert rows[0][0] != "0B" and rows[0][1] == "0", text
    assert rows[1] == ["0B", "0"], text
    assert other not in text

    p = cli("log-dirs", "describe", "--broker", 99, brokers=b.bootstrap)
    assert p.returncode == EXIT_NOT_FOUND, p
    line = one_line_error(p)
    assert "broker 99 is not in the cluster" in line, line
    p = cli("log-dirs", "describe", "--topic", h.unique("cli-nodirs"), brokers=b.bootstrap)
    assert p.returncode == EXIT_NOT_FOUND, p
    assert "does not exist" in one_line_error(p)


def test_log_dirs_describe_failed_dir(start_broker, faultfs, tmp_path):
    """A log directory taken offline by a failed fsync is reported with
    KAFKA_STORAGE_ERROR (the broker still answers); the controller fences that broker,
    so it is found through DescribeCluster's fenced brokers (Metadata leaves it out);
    topic describe names the failure for the replicas it held instead of failing."""
    control = tmp_path / "faults"
    control.write_text("")
    br = start_broker(env={"LD_PRELOAD": str(faultfs), "VLTAVA_FAULTS": str(control)})
    name = h.unique("cli-faildir")
    cli("topic", "create", name, "-p", 1, brokers=br.bootstrap, check=True)
    control.write_text(f"fsync EIO /{name}-0/ 1\n")
    p = cli("-X", "message.timeout.ms=5000", "produce", name, "--acks", "all", brokers=br.bootstrap, stdin="x\n",
            timeout=120)
    assert p.returncode == EXIT_ERROR, p

    def dir_error():
        r = json.loads(cli("log-dirs", "describe", "--json", brokers=br.bootstrap, check=True).stdout)
        return r if r["brokers"] and r["brokers"][0]["fenced"] and r["brokers"][0]["log_dirs"][0]["error"] else None
    report = h.wait_until(dir_error, 60, "the fenced broker's failed log dir in log-dirs describe")
    [broker] = report["brokers"]
    assert (broker["broker"], broker["error"]) == (1, None), broker
    [log_dir] = broker["log_dirs"]
    assert (log_dir["error"], log_dir["partitions"]) == ("KAFKA_STORAGE_ERROR", []), log_dir
    text = cli("log-dirs", "describe", brokers=br.bootstrap, check=True).stdout
    assert f"broker 1 at {br.bootstrap} (fenced)" in text and "error KAFKA_STORAGE_ERROR" in text, text

    d = json.loads(cli("topic", "describe", name, "--json", brokers=br.bootstrap, check=True).stdout)
    [replica] = d["partitions"][0]["replica_sizes"]
    assert replica["size_bytes"] is None and "KAFKA_STORAGE_ERROR" in replica["error"], d
    assert "KAFKA_STORAGE_ERROR" in d["size_error"], d


def test_topic_describe_size_on_disk(b):
    name = h.unique("cli-size")
    cli("topic", "create", name, "-p", 2, brokers=b.bootstrap, check=True)
    cli("produce", name, "--partition", 1, "--acks", "all", brokers=b.bootstrap,
        stdin="".join(f"value-{i}\n" for i in range(200)), check=True)
    on_disk = _segment_bytes(b.data_dir / f"{name}-1")
    assert on_disk > 0

    d = json.loads(cli("topic", "describe", name, "--json", brokers=b.bootstrap, check=True).stdout)
    parts = {p["partition"]: p for p in d["partitions"]}
    assert parts[1]["replica_sizes"] == [{"broker": 1, "size_bytes": on_disk, "error": None}], parts[1]
    assert parts[0]["replica_sizes"] == [{"broker": 1, "size_bytes": 0, "error": None}], parts[0]
    assert (d["size_bytes"], d["size_error"]) == (on_disk, None), d

    text = cli("topic", "describe", name, brokers=b.bootstrap, check=True).stdout
    assert _fields(text)["size on disk"].endswith("(all replicas)"), text
    sizes = {int(r[0]): r[7] for r in _table(text, "PARTITION")}
    assert sizes[0] == "1=0B" and sizes[1].startswith("1=") and sizes[1] != "1=0B", text


# ---------------------------------------------------------------- topics


def test_topic_lifecycle(b):
    name = h.unique("cli-topic")
    p = cli("topic", "create", name, "-p", 3, "-r", 1, "-c", "segment.bytes=1048576", brokers=b.bootstrap,
            check=True)
    assert name in p.stdout
    assert name in cli("topic", "list", brokers=b.bootstrap, check=True).stdout.split()
    listed = json.loads(cli("topic", "list", "--json", brokers=b.bootstrap, check=True).stdout)
    assert {"name": name, "partitions": 3, "replication_factor": 1} in listed
    assert name in cli("topic", "list", "--long", brokers=b.bootstrap, check=True).stdout

    cli("produce", name, "--partition", 1, brokers=b.bootstrap, stdin="a\nb\nc\n", check=True)
    desc = cli("topic", "describe", name, brokers=b.bootstrap, check=True).stdout
    assert "partitions:         3" in desc
    assert "size on disk:" in desc and "configs:" in desc
    d = json.loads(cli("topic", "describe", name, "--json", brokers=b.bootstrap, check=True).stdout)
    assert d["name"] == name and d["replication_factor"] == 1
    parts = {p["partition"]: p for p in d["partitions"]}
    assert sorted(parts) == [0, 1, 2]
    for pid, part in parts.items():
        assert part["leader"] == 1 and part["replicas"] == [1] and part["isr"] == [1]
        assert part["log_start_offset"] == 0
        assert part["high_watermark"] == (3 if pid == 1 else 0)

    p = cli("topic", "delete", name, brokers=b.bootstrap, check=True)
    assert "deleted" in p.stdout
    h.wait_until(lambda: name not in cli("topic", "list", brokers=b.bootstrap, check=True).stdout.split(),
                 60, f"{name} gone from the topic list")


def test_topic_create_twice(b):
    name = h.unique("cli-dup")
    cli("topic", "create", name, "-p", 1, brokers=b.bootstrap, check=True)
    p = cli("topic", "create", name, "-p", 1, brokers=b.bootstrap)
    assert p.returncode == EXIT_ERROR
    assert "already exists" in one_line_error(p)
    cli("topic", "create", name, "-p", 1, "--if-not-exists", brokers=b.bootstrap, check=True)


def test_topic_create_bad_config_is_refused(b):
    p = cli("topic", "create", h.unique("cli-badcfg"), "-c", "no.such.config=1", brokers=b.bootstrap)
    assert p.returncode == EXIT_ERROR
    one_line_error(p)


def test_missing_topic_exit_code_3(b):
    name = h.unique("cli-missing")
    for args in (["topic", "describe", name], ["topic", "delete", name],
                 ["consume", name, "--from-beginning", "--exit-at-end"],
                 ["topic", "add-partitions", name, "-p", "4"],
                 ["topic", "alter-config", name, "--set", "retention.ms=1000"]):
        p = cli(*args, brokers=b.bootstrap)
        assert p.returncode == EXIT_NOT_FOUND, (args, p)
        assert "does not exist" in one_line_error(p)
    # None of those created the topic.
    assert name not in cli("topic", "list", brokers=b.bootstrap, check=True).stdout.split()
    cli("topic", "delete", name, "--if-exists", brokers=b.bootstrap, check=True)


def test_alter_config_and_add_partitions(b):
    name = h.unique("cli-alter")
    cli("topic", "create", name, "-p", 2, "-c", "retention.ms=86400000", brokers=b.bootstrap, check=True)
    cli("topic", "add-partitions", name, "-p", 4, brokers=b.bootstrap, check=True)
    d = json.loads(cli("topic", "describe", name, "--json", brokers=b.bootstrap, check=True).stdout)
    assert len(d["partitions"]) == 4
    assert d["configs"].get("retention.ms") == "86400000"
    p = cli("topic", "add-partitions", name, "-p", 1, brokers=b.bootstrap)
    assert p.returncode == EXIT_ERROR and "must be larger" in one_line_error(p)

    # --set adds to the existing configs; --delete returns one to its default.
    cli("topic", "alter-config", name, "--set", "segment.bytes=1048576", brokers=b.bootstrap, check=True)
    d = json.loads(cli("topic", "describe", name, "--json", brokers=b.bootstrap, check=True).stdout)
    assert d["configs"].get("segment.bytes") == "1048576"
    assert d["configs"].get("retention.ms") == "86400000"
    assert "segment.bytes=1048576" in cli("topic", "describe", name, brokers=b.bootstrap, check=True).stdout
    cli("topic", "alter-config", name, "--delete", "retention.ms", brokers=b.bootstrap, check=True)
    d = json.loads(cli("topic", "describe", name, "--json", brokers=b.bootstrap, check=True).stdout)
    assert "retention.ms" not in d["configs"] and d["configs"].get("segment.bytes") == "1048576"
    p = cli("topic", "alter-config", name, "--set", "no.such.config=1", brokers=b.bootstrap)
    assert p.returncode == EXIT_ERROR
    one_line_error(p)
    assert cli("topic", "alter-config", name, brokers=b.bootstrap).returncode == EXIT_ERROR


# ---------------------------------------------------------------- produce / consume


def test_produce_consume_keys_headers_format(b):
    name = h.unique("cli-kv")
    cli("topic", "create", name, "-p", 1, brokers=b.bootstrap, check=True)
    cli("produce", name, "--key-sep", ":", "--header", "src=test", "--header", "n=1", brokers=b.bootstrap,
        stdin="user1:hello\nuser2:wor:ld\nnokey\n\n", check=True)
    p = cli("consume", name, "--from-beginning", "--exit-at-end", "--format", r"%k|%v|%p|%o|%h\n",
            brokers=b.bootstrap, check=True, timeout=30)
    assert p.stdout.splitlines() == [
        "user1|hello|0|0|src=test,n=1",
        "user2|wor:ld|0|1|src=test,n=1",
        "|nokey|0|2|src=test,n=1",
        "||0|3|src=test,n=1",
    ]
    # Default format: the value and a newline.
    p = cli("consume", name, "--from-beginning", "-n", 2, brokers=b.bootstrap, check=True, timeout=30)
    assert p.stdout == "hello\nwor:ld\n"
    # Tab escape and %t.
    p = cli("consume", name, "--offset", 1, "-n", 1, "--format", r"%o\t%t\n", brokers=b.bootstrap, check=True)
    off, ts = p.stdout.rstrip("\n").split("\t")
    assert off == "1" and abs(int(ts) - time.time() * 1000) < 600_000
    # A negative offset counts from the end.
    p = cli("consume", name, "--offset", -1, "--exit-at-end", brokers=b.bootstrap, check=True, timeout=30)
    assert p.stdout == "\n"
    # From the end: nothing new.
    p = cli("consume", name, "--from-end", "--exit-at-end", brokers=b.bootstrap, check=True, timeout=30)
    assert p.stdout == ""


def test_consume_json_and_partitions(b):
    name = h.unique("cli-json")
    cli("topic", "create", name, "-p", 3, brokers=b.bootstrap, check=True)
    lines = [
        {"key": "a", "value": "v0", "partition": 0},
        {"key": "b", "value": {"nested": [1, 2]}, "partition": 2, "headers": {"h": "x"}},
        {"value": None, "partition": 2},
        {"key": "c", "value": "v3", "partition": 1, "timestamp": 1_700_000_000_000},
    ]
    cli("produce", name, "--json", brokers=b.bootstrap, stdin="\n".join(json.dumps(l) for l in lines) + "\n",
        check=True)
    p = cli("consume", name, "--from-beginning", "--exit-at-end", "--json", brokers=b.bootstrap, check=True,
            timeout=30)
    got = sorted((json.loads(l) for l in p.stdout.splitlines()), key=lambda r: (r["partition"], r["offset"]))
    assert [(r["partition"], r["offset"], r["key"], r["value"]) for r in got] == [
        (0, 0, "a", "v0"), (1, 0, "c", "v3"), (2, 0, "b", '{"nested":[1,2]}'), (2, 1, None, None)]
    assert got[2]["headers"] == {"h": "x"} and got[0]["headers"] == {}
    assert got[1]["timestamp"] == 1_700_000_000_000 and got[0]["topic"] == name
    # One partition only.
    p = cli("consume", name, "--partition", 2, "--from-beginning", "--exit-at-end", "--format", r"%p:%o\n",
            brokers=b.bootstrap, check=True, timeout=30)
    assert p.stdout.splitlines() == ["2:0", "2:1"]
    # By timestamp: only the record stamped 2023 is older than "an hour ago".
    since = int(time.time() * 1000) - 3_600_000
    p = cli("consume", name, "--from-timestamp", since, "--exit-at-end", "--format", r"%k\n",
            brokers=b.bootstrap, check=True, timeout=30)
    assert sorted(p.stdout.splitlines()) == ["", "a", "b"]
    p = cli("consume", name, "--partition", 7, "--from-beginning", brokers=b.bootstrap)
    assert p.returncode == EXIT_NOT_FOUND
    one_line_error(p)


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_produce_file_compression_acks(b, tmp_path, codec):
    name = h.unique(f"cli-{codec}")
    cli("topic", "create", name, "-p", 2, brokers=b.bootstrap, check=True)
    path = tmp_path / "lines.txt"
    values = [f"line-{i}-" + "x" * (i % 50) for i in range(500)]
    path.write_text("\n".join(values) + "\n")
    cli("produce", name, "--file", path, "--compression", codec, "--acks", "all", brokers=b.bootstrap, check=True)
    p = cli("consume", name, "--from-beginning", "--exit-at-end", brokers=b.bootstrap, check=True, timeout=30)
    assert sorted(p.stdout.splitlines()) == sorted(values)


def test_produce_bad_json_names_the_line(b):
    name = h.unique("cli-badjson")
    p = cli("produce", name, "--json", brokers=b.bootstrap, stdin='{"value":"ok"}\n{"value": \n', timeout=30)
    assert p.returncode == EXIT_ERROR
    assert "line 2" in one_line_error(p)


def test_produce_to_missing_partition(b):
    name = h.unique("cli-nopart")
    cli("topic", "create", name, "-p", 1, brokers=b.bootstrap, check=True)
    p = cli("produce", name, "--partition", 5, brokers=b.bootstrap, stdin="x\n")
    assert p.returncode == EXIT_NOT_FOUND
    one_line_error(p)


def test_produce_delivery_failure_exits_1(start_broker):
    br = start_broker(message_max_bytes=2000)
    name = h.unique("cli-big")
    cli("topic", "create", name, "-p", 1, brokers=br.bootstrap, check=True)
    p = cli("produce", name, brokers=br.bootstrap, stdin="small\n" + "y" * 5000 + "\n", timeout=60)
    assert p.returncode == EXIT_ERROR, p
    line = one_line_error(p)
    assert "not delivered" in line, line


def test_produce_consume_through_pipe_closing_early(b):
    name = h.unique("cli-pipe")
    cli("topic", "create", name, "-p", 1, brokers=b.bootstrap, check=True)
    cli("produce", name, brokers=b.bootstrap, stdin="".join(f"{i}\n" for i in range(2000)), check=True)
    # `| head -1`: the consumer stops quietly when its reader goes away.
    out = subprocess.run(f"{vltava_bin()} --brokers {b.bootstrap} consume {name} --from-beginning | head -1",
                         shell=True, capture_output=True, timeout=30)
    assert out.stdout == b"0\n"


# ---------------------------------------------------------------- groups


def test_group_commands(b):
    name = h.unique("cli-grp")
    group = h.unique("cli-g")
    cli("topic", "create", name, "-p", 2, brokers=b.bootstrap, check=True)
    cli("produce", name, "--key-sep", ":", brokers=b.bootstrap,
        stdin="".join(f"k{i}:v{i}\n" for i in range(20)), check=True)
    p = cli("consume", name, "--group", group, "--from-beginning", "--exit-at-end", brokers=b.bootstrap,
            timeout=60)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.splitlines()) == 20

    assert group in cli("group", "list", brokers=b.bootstrap, check=True).stdout.split()
    listed = json.loads(cli("group", "list", "--json", brokers=b.bootstrap, check=True).stdout)
    assert any(g["group"] == group for g in listed)
    d = json.loads(cli("group", "describe", group, "--json", brokers=b.bootstrap, check=True).stdout)
    assert d["members"] == []
    offsets = {(o["topic"], o["partition"]): o for o in d["offsets"]}
    assert sum(o["committed"] for o in offsets.values()) == 20
    assert all(o["lag"] == 0 for o in offsets.values())
    assert "COMMITTED" in cli("group", "describe", group, brokers=b.bootstrap, check=True).stdout

    # Dry run: a plan, nothing changes.
    p = cli("group", "reset-offsets", group, "--topic", name, "--to-earliest", "--json", brokers=b.bootstrap,
            check=True)
    plan = json.loads(p.stdout)
    assert plan["executed"] is False and all(r["new"] == 0 for r in plan["plan"])
    assert "dry run" in p.stderr
    d = json.loads(cli("group", "describe", group, "--json", brokers=b.bootstrap, check=True).stdout)
    assert sum(o["committed"] for o in d["offsets"]) == 20
    # Execute: back to the start, lag 20.
    cli("group", "reset-offsets", group, "--topic", name, "--to-earliest", "--execute", brokers=b.bootstrap,
        check=True)
    d = json.loads(cli("group", "describe", group, "--json", brokers=b.bootstrap, check=True).stdout)
    assert sum(o["committed"] for o in d["offsets"]) == 0
    assert sum(o["lag"] for o in d["offsets"]) == 20
    cli("group", "reset-offsets", group, "--topic", name, "--partition", 0, "--shift-by", 3, "--execute",
        brokers=b.bootstrap, check=True)
    d = json.loads(cli("group", "describe", group, "--json", brokers=b.bootstrap, check=True).stdout)
    assert {o["partition"]: o["committed"] for o in d["offsets"]}[0] == 3

    cli("group", "delete", group, brokers=b.bootstrap, check=True)
    p = cli("group", "describe", group, brokers=b.bootstrap)
    assert p.returncode == EXIT_NOT_FOUND, p
    p = cli("group", "delete", group, brokers=b.bootstrap)
    assert p.returncode == EXIT_NOT_FOUND, p
    one_line_error(p)


def test_group_describe_missing_exit_3(b):
    p = cli("group", "describe", h.unique("cli-nogroup"), brokers=b.bootstrap)
    assert p.returncode == EXIT_NOT_FOUND, p
    one_line_error(p)


# ---------------------------------------------------------------- bench


def test_bench_produce_consume_json(b):
    name = h.unique("cli-bench")
    p = cli("bench", "produce", "--topic", name, "--records", 20000, "--record-size", 100, "--partitions", 4,
            "--json", "--broker-pid", b.pid, brokers=b.bootstrap, check=True, timeout=120)
    r = json.loads(p.stdout)
    assert r["records"] == r["records_sent"] == 20000
    assert r["errors"] == 0
    assert r["records_per_sec"] > 0 and r["mb_per_sec"] > 0
    lat = r["latency_ms"]
    assert 0 < lat["p50"] <= lat["p95"] <= lat["p99"] <= lat["p999"] <= lat["max"]
    assert r["partitions"] == 4
    assert r["broker_cpu_seconds"] >= 0 and r["broker_peak_rss_mib"] > 0
    d = json.loads(cli("topic", "describe", name, "--json", brokers=b.bootstrap, check=True).stdout)
    assert sum(p["high_watermark"] for p in d["partitions"]) == 20000

    p = cli("bench", "consume", "--topic", name, "--json", brokers=b.bootstrap, check=True, timeout=120)
    c = json.loads(p.stdout)
    assert c["records"] == c["records_expected"] == 20000
    assert c["bytes"] == 20000 * 100
    assert c["records_per_sec"] > 0


def test_bench_produce_table_and_duration(b):
    name = h.unique("cli-bench-t")
    p = cli("bench", "produce", "--topic", name, "--duration", 1, "--producers", 2, "--acks", "all",
            "--compression", "lz4", brokers=b.bootstrap, check=True, timeout=120)
    assert "records/s" in p.stdout and "latency (ms)" in p.stdout and "p99.9" in p.stdout


def test_bench_e2e_json(b):
    name = h.unique("cli-e2e")
    p = cli("bench", "e2e", "--topic", name, "--rate", 2000, "--duration", 2, "--json", brokers=b.bootstrap,
            check=True, timeout=120)
    r = json.loads(p.stdout)
    assert r["records_sent"] == 4000 and r["records"] == 4000 and r["lost"] == 0 and r["errors"] == 0
    lat = r["latency_ms"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["p999"] <= lat["max"]


def test_log_dirs_move(start_broker, tmp_path):
    """log-dirs move: AlterReplicaLogDirs to the broker, then waits until DescribeLogDirs
    shows the replica in the destination; every record is still there. A directory the
    broker does not have fails with LOG_DIR_NOT_FOUND; an unknown partition exits 3."""
    first, second = tmp_path / "disk-a", tmp_path / "disk-b"
    br = start_broker({"log.dirs": f"{first},{second}"})
    name = h.unique("cli-move")
    cli("topic", "create", name, "-p", 1, brokers=br.bootstrap, check=True)
    here, there = (first, second) if (first / f"{name}-0").is_dir() else (second, first)
    values = [f"m{i:04d}" for i in range(300)]
    cli("produce", name, "--acks", "all", brokers=br.bootstrap, stdin="".join(v + "\n" for v in values), check=True)
    out = json.loads(cli("log-dirs", "move", "--broker", 1, "--topic", name, "--partition", 0, "--dir", there,
                         "--json", brokers=br.bootstrap, check=True).stdout)
    assert (out["broker"], out["partition"], out["dir"]) == (1, 0, str(there.resolve())), out
    assert (there / f"{name}-0").is_dir() and not (here / f"{name}-0").exists()
    got = cli("consume", name, "-n", 300, "--from-beginning", brokers=br.bootstrap, check=True).stdout.split()
    assert got == values
    bad = cli("log-dirs", "move", "--broker", 1, "-t", name, "-p", 0, "--dir", tmp_path / "nowhere",
              brokers=br.bootstrap)
    assert bad.returncode == EXIT_ERROR and "LOG_DIR_NOT_FOUND" in bad.stderr, bad
    missing = cli("log-dirs", "move", "--broker", 1, "-t", name, "-p", 5, "--dir", there, brokers=br.bootstrap)
    assert missing.returncode == EXIT_NOT_FOUND, missing
