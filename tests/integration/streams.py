"""The vltava-streams example binaries (crates/streams/examples) for the streams
tests: start them as processes, kill or stop them, read what they wrote.

    from streams import start_app   # the fixture (factory)

    def test_x(broker, start_app):
        app = start_app("wordcount", broker, "wc-app", guarantee="exactly_once_v2",
                        args=["--input", "lines", "--output", "counts"])
        app.wait_log("stream thread 1 tasks: [")
        app.kill()            # SIGKILL
        app.start()           # the same application, state dir and arguments

Every app a test started is killed at teardown; its log is printed when the test failed.
The binaries come from $VLTAVA_STREAMS_EXAMPLES (default target/release/examples,
built by `cargo build --release --workspace --examples`).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import struct
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

import helpers as h
from conftest import REPO_ROOT, STARTUP_TIMEOUT, STOP_TIMEOUT


def examples_dir() -> Path:
    return Path(os.environ.get("VLTAVA_STREAMS_EXAMPLES", REPO_ROOT / "target" / "release" / "examples"))


def example_bin(name: str) -> str:
    path = examples_dir() / name
    if not path.exists():
        pytest.fail(f"{path} is missing: build it with `cargo build --release -p vltava-streams --examples`")
    return str(path)


class App:
    """One example binary's process (restartable with the same arguments and state dir)."""

    def __init__(self, workdir: Path, example: str, bootstrap: str, application_id: str,
                 guarantee: str = "at_least_once", args: list | None = None, threads: int = 1,
                 application_server: str | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.example = example
        self.state_dir = self.workdir / "state"
        self.log_path = self.workdir / f"{example}.log"
        self.argv = [example_bin(example), "--brokers", bootstrap, "--application-id", application_id,
                     "--processing-guarantee", guarantee, "--state-dir", str(self.state_dir),
                     "--threads", str(threads), *[str(a) for a in (args or [])]]
        if application_server:
            self.argv += ["--application-server", application_server]
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> "App":
        assert not self.is_running(), "already running"
        self.starts += 1
        with open(self.log_path, "ab") as logf:
            logf.write(f"\n===== start {self.starts}: {' '.join(self.argv)}\n".encode())
            env = dict(os.environ)
            env.setdefault("RUST_BACKTRACE", "1")
            env.setdefault("RUST_LOG", "info")
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                         env=env, cwd=str(self.workdir))
        return self

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL: no commit, no checkpoint, no leave."""
        if self.is_running():
            self.proc.kill()
            self.proc.wait()

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM (a clean close) and wait; the exit code."""
        if self.is_running():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"{self.example} did not exit within {timeout}s of SIGTERM\n{self.log_tail()}")
        return self.proc.returncode

    def wipe_state(self) -> None:
        assert not self.is_running()
        shutil.rmtree(self.state_dir, ignore_errors=True)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_since_start(self) -> str:
        text = self.log()
        marker = f"===== start {self.starts}:"
        return text[text.rfind(marker):] if marker in text else text

    def log_tail(self, n: int = 150) -> str:
        return "\n".join(self.log().splitlines()[-n:])

    def assert_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"{self.example} exited with {self.proc.returncode}\n{self.log_tail()}")

    def wait_log(self, pattern: str, timeout: float = STARTUP_TIMEOUT) -> re.Match:
        """Until the log since the last start matches `pattern` (a regex); the match."""
        rx = re.compile(pattern)

        def seen():
            self.assert_alive()
            return rx.search(self.log_since_start())
        return h.wait_until(seen, timeout, f"{self.example} to log /{pattern}/")

    def tasks(self) -> set[str]:
        """The active tasks its stream threads reported last (log lines
        `stream thread N tasks: [..]`), over all threads."""
        last: dict[str, str] = {}
        for m in re.finditer(r"stream thread (\d+) tasks: \[([^\]]*)\]", self.log_since_start()):
            last[m.group(1)] = m.group(2)
        return {t.strip() for v in last.values() for t in v.split(",") if t.strip()}


@pytest.fixture
def start_app(tmp_path, request):
    apps: list[App] = []

    def _start(example: str, broker, application_id: str, **kw) -> App:
        app = App(tmp_path / f"app{len(apps)}", example, broker.bootstrap, application_id, **kw)
        apps.append(app)
        return app.start()

    yield _start
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    for app in apps:
        app.kill()
        if failed:
            print(f"\n--- {app.example} log ({app.log_path}) ---\n{app.log_tail(200)}")


class Reader:
    """Reads a topic incrementally with read_committed (only what committed
    transactions wrote) and keeps the last value of every key."""

    def __init__(self, bootstrap: str, topic: str, partitions: int, decode=lambda v: v):
        self.consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": h.unique("reader"),
            "enable.auto.commit": False, "isolation.level": "read_committed",
            "enable.partition.eof": False, "auto.offset.reset": "earliest",
        })
        self.consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        self.decode = decode
        self.latest: dict = {}
        self.records = 0

    def poll(self, seconds: float = 1.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            msgs = self.consumer.consume(10000, timeout=0.2)
            for m in msgs:
                if m.error():
                    if m.error().code() == KafkaError._PARTITION_EOF:
                        continue
                    raise AssertionError(f"reading the output: {m.error()}")
                self.records += 1
                key = m.key().decode() if m.key() is not None else None
                self.latest[key] = None if m.value() is None else self.decode(m.value())
            if not msgs:
                break

    def close(self) -> None:
        self.consumer.close()


def long_value(b: bytes) -> int:
    """Kafka's LongSerializer: 8 bytes big-endian."""
    return struct.unpack(">q", b)[0]
