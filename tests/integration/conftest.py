"""Fixtures that start the real `vltava` binary for the integration tests.

Environment:
  VLTAVA_BIN           path of the broker binary (default: <repo>/target/release/vltava)
  VLTAVA_ALLOW_SKIPS   "1" lets a test skip; otherwise a skipped test (or module)
                       fails, so that nothing is silently left out of a run

Fixtures:
  broker          a fresh single broker for one test (default configuration)
  start_broker    factory: start_broker({"num.partitions": 3}) or
                  start_broker(num_partitions=3)  (underscores become dots);
                  start_broker(sets, config_file=path, port=n) starts it with
                  `--config path` first; every broker it started is killed at
                  teardown
  module_broker   one broker shared by all tests of a module (default config)
  browser         a headless chromium driven by Selenium, one per module
                  (browser_page: the same with its cookies cleared); see browser.py
"""

from __future__ import annotations

import gc
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import kafka_wire

REPO_ROOT = Path(__file__).resolve().parents[2]
STARTUP_TIMEOUT = 60.0   # a deadline, not a verdict: a busy machine starts slowly
STOP_TIMEOUT = 30.0


def vltava_bin() -> str:
    path = os.environ.get("VLTAVA_BIN") or str(REPO_ROOT / "target" / "release" / "vltava")
    return path


ALLOW_SKIPS = os.environ.get("VLTAVA_ALLOW_SKIPS", "") == "1"
SKIPS_FAIL = ("skipped, and a skip fails the run unless VLTAVA_ALLOW_SKIPS=1 "
              "(see tests/integration/README.md)")


# free_port() hands out ports below the kernel's ephemeral range (ip_local_port_range),
# which nothing takes by itself: no outgoing connection's local port and no bind to
# port 0 (a single broker, a client) lands there. Each pytest-xdist worker has its own
# block of it, so parallel workers never pick the same port either.
FIXED_PORTS_FIRST = 10000
MIN_BLOCK = 500


def _fixed_port_block() -> range | None:
    """This process's block of fixed ports, or None (then the kernel picks them)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            ephemeral_first = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT", "")
    workers = int(workers) if workers.isdigit() and int(workers) > 0 else 1
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")   # gw0, gw1, ... under xdist
    index = int(worker[2:]) if worker.startswith("gw") and worker[2:].isdigit() else 0
    span = (ephemeral_first - FIXED_PORTS_FIRST) // workers
    if span < MIN_BLOCK or index >= workers:
        return None
    first = FIXED_PORTS_FIRST + index * span
    return range(first, first + span)


_PORT_BLOCK = _fixed_port_block()
# a random start: two runs at once on one machine (same worker ids) rarely meet
_port_cursor = random.randrange(len(_PORT_BLOCK)) if _PORT_BLOCK else 0


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port free right now, for a listener whose port must be known before it starts
    (controller.quorum.voters, several listeners of one broker). Successive calls in
    a process return different ports (the block is walked round). Another program could
    still take it before it is bound: cluster.py and the tests retry on EADDRINUSE.
    A single broker binds port 0 itself (see Broker)."""
    global _port_cursor
    if _PORT_BLOCK is not None:
        for _ in range(len(_PORT_BLOCK)):
            port = _PORT_BLOCK[_port_cursor % len(_PORT_BLOCK)]
            _port_cursor += 1
            if _bindable(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class BrokerStartError(RuntimeError):
    pass


class Broker:
    """One `vltava server` process, restartable on the same port and data dir.

    Without a port, the first start listens on port 0: the broker binds a port the
    kernel picks and writes it to a port file once it accepts connections (no window
    in which another process could take a port picked in advance); restarts reuse it."""

    def __init__(self, workdir: Path, sets: dict | None = None, port: int | None = None,
                 env: dict | None = None, config_file: Path | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "broker.log"
        self.port_file = self.workdir / "broker.port"
        self.port = port or 0
        self.host = "127.0.0.1"
        self.sets = dict(sets or {})
        self.env = dict(env or {})      # extra environment of the process
        self.args: list[str] = []       # extra `vltava server` arguments
        self.config_file = config_file
        # the admin HTTP listener (/metrics, /health): port 0 at the first start (read
        # back from PORT_FILE.admin), then the same port across restarts
        self.admin_port = 0
        # the schema registry (schema.registry.listeners): likewise, from PORT_FILE.registry
        self.registry_port = 0
        self.proc: subprocess.Popen | None = None
        self.starts = 0
        self.exit_codes: list[int] = []

    # -- process control -------------------------------------------------

    @property
    def admin_url(self) -> str:
        if not self.admin_port:
            text = (self.port_file.parent / (self.port_file.name + ".admin")).read_text()
            self.admin_port = int(text.strip())
        return f"http://{self.host}:{self.admin_port}"

    @property
    def registry_url(self) -> str:
        if not self.registry_port:
            text = (self.port_file.parent / (self.port_file.name + ".registry")).read_text()
            self.registry_port = int(text.strip())
        return f"http://{self.host}:{self.registry_port}"

    @property
    def bootstrap(self) -> str:
        if not self.port:
            raise RuntimeError("the broker has not started yet: its port is not known")
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        cmd = [vltava_bin(), "server"]
        if self.config_file is not None:
            cmd += ["--config", str(self.config_file)]
        cmd += ["--data-dir", str(self.data_dir), "--port-file", str(self.port_file)]
        if "listeners" not in self.sets:
            cmd += ["--listen", f"{self.host}:{self.port}"]
        if "admin.listeners" not in self.sets:
            cmd += ["--set", f"admin.listeners=http://{self.host}:{self.admin_port}"]
        if "schema.registry.listeners" not in self.sets:
            cmd += ["--set", f"schema.registry.listeners=http://{self.host}:{self.registry_port}"]
        for k, v in self.sets.items():
            if isinstance(v, bool):
                v = "true" if v else "false"
            cmd += ["--set", f"{k}={v}"]
        return cmd + self.args

    def start(self, timeout: float = STARTUP_TIMEOUT) -> "Broker":
        binary = vltava_bin()
        if not os.path.isfile(binary) or not os.access(binary, os.X_OK):
            raise BrokerStartError(
                f"vltava binary not found or not executable: {binary} "
                "(build it with `cargo build --release -p vltava-cli` or set VLTAVA_BIN)")
        if self.proc is not None and self.proc.poll() is None:
            raise BrokerStartError("broker already running")
        self.starts += 1
        logf = open(self.log_path, "ab")
        logf.write(f"\n===== start #{self.starts}: {' '.join(self.command())}\n".encode())
        logf.flush()
        env = dict(os.environ)
        env.setdefault("RUST_BACKTRACE", "1")
        env.update(self.env)
        self.port_file.unlink(missing_ok=True)
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf, env=env, cwd=str(self.workdir))
        logf.close()
        self._wait_ready(timeout)
        return self

    def _read_port_file(self) -> int | None:
        try:
            text = self.port_file.read_text()
        except FileNotFoundError:
            return None
        return int(text) if text.endswith("\n") else None   # written whole (renamed into place)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_err: Exception | None = None
        # 1. the broker listens: it writes its port file once it accepts connections
        while True:
            if self.proc.poll() is not None:
                raise BrokerStartError(
                    f"vltava exited with code {self.proc.returncode} during startup\n"
                    f"--- broker log ---\n{self.log_tail()}")
            port = self._read_port_file()
            if port is not None:
                if self.port and port != self.port:
                    self.kill()
                    raise BrokerStartError(f"vltava listens on port {port}, not {self.port}")
                self.port = port
                break
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerStartError(
                    f"vltava did not write its port file {self.port_file} within {timeout:.0f}s"
                    f"\n--- broker log ---\n{self.log_tail()}")
            time.sleep(0.05)
        # 2. it answers an ApiVersions v0 request (every Kafka broker does)
        while True:
            try:
                with kafka_wire.connect(self.port, self.host, timeout=5.0) as s:
                    resp = kafka_wire.roundtrip(s, kafka_wire.api_versions_request_v0(1))
                    corr, err, apis, _ = kafka_wire.parse_api_versions_v0(resp)
                    if corr == 1 and err == 0 and apis:
                        return
                    last_err = RuntimeError(f"ApiVersions v0 answered corr={corr} err={err} apis={apis}")
            except Exception as e:  # noqa: BLE001 - retried until the deadline
                last_err = e
            if self.proc.poll() is not None or time.monotonic() > deadline:
                code = self.proc.poll()
                self.kill()
                raise BrokerStartError(
                    f"vltava on {self.bootstrap} accepted connections but did not answer "
                    f"ApiVersions v0 within {timeout:.0f}s (exit code {code}, last error: "
                    f"{last_err!r})\n--- broker log ---\n{self.log_tail()}")
            time.sleep(0.1)

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait. Returns the exit code (raises if it does not stop)."""
        if self.proc is None:
            raise RuntimeError("broker never started")
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(
                    f"vltava did not exit within {timeout}s of SIGTERM\n"
                    f"--- broker log ---\n{self.log_tail()}")
        self.exit_codes.append(self.proc.returncode)
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL and wait."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.exit_codes.append(self.proc.returncode)
        return self.proc.returncode

    def restart(self, timeout: float = STARTUP_TIMEOUT) -> "Broker":
        if self.is_running():
            self.stop()
        return self.start(timeout)

    # -- introspection ---------------------------------------------------

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 80) -> str:
        lines = self.log().splitlines()
        return "\n".join(lines[-n:])

    def cpu_seconds(self) -> float:
        """utime+stime of the broker process, from /proc/<pid>/stat."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            stat = f.read()
        fields = stat[stat.rindex(")") + 2:].split()
        utime, stime = int(fields[11]), int(fields[12])
        return (utime + stime) / os.sysconf("SC_CLK_TCK")

    def __repr__(self) -> str:
        return f"<Broker {self.host}:{self.port} data={self.data_dir} running={self.is_running()}>"


def _normalize_sets(sets: dict | None, kw: dict) -> dict:
    out = dict(sets or {})
    for k, v in kw.items():
        out[k.replace("_", ".")] = v
    return out


def _report_logs(request, brokers):
    rep = getattr(request.node, "rep_call", None)
    failed = rep is not None and rep.failed
    setup = getattr(request.node, "rep_setup", None)
    failed = failed or (setup is not None and setup.failed)
    if failed:
        for b in brokers:
            print(f"\n--- log of {b!r} (tail) ---\n{b.log_tail(150)}")


def _skip_reason(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    # A skip hides whatever the test would have found: it fails unless allowed.
    # (An xfail is reported as skipped too; it names a known bug and stays one.)
    if rep.skipped and not hasattr(rep, "wasxfail") and not ALLOW_SKIPS:
        rep.outcome = "failed"
        rep.longrepr = f"{SKIPS_FAIL}: {_skip_reason(rep.longrepr)}"
    setattr(item, "rep_" + rep.when, rep)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    rep = outcome.get_result()
    if rep.skipped and not ALLOW_SKIPS:
        rep.outcome = "failed"
        rep.longrepr = f"{SKIPS_FAIL}: {_skip_reason(rep.longrepr)}"


@pytest.fixture
def start_broker(tmp_path, request):
    brokers: list[Broker] = []

    def _start(sets: dict | None = None, env: dict | None = None, config_file: Path | None = None,
               port: int | None = None, **kw) -> Broker:
        b = Broker(tmp_path / f"broker{len(brokers)}", _normalize_sets(sets, kw), port=port,
                   env=env, config_file=config_file)
        brokers.append(b)
        return b.start()

    yield _start
    _report_logs(request, brokers)
    for b in brokers:
        b.kill()


FAULTFS_SRC = REPO_ROOT / "tests" / "faults" / "faultfs.c"


@pytest.fixture(scope="session")
def faultfs(tmp_path_factory) -> Path:
    """The storage fault injector (tests/faults/faultfs.c), built with gcc: an
    LD_PRELOAD library that fails chosen fsync/pwrite/write calls of the broker."""
    out = tmp_path_factory.mktemp("faultfs") / "faultfs.so"
    subprocess.run(["gcc", "-O2", "-shared", "-fPIC", "-o", str(out), str(FAULTFS_SRC), "-ldl"],
                   check=True)
    return out


@pytest.fixture
def broker(start_broker) -> Broker:
    return start_broker()


@pytest.fixture(scope="module")
def module_broker(tmp_path_factory, request):
    b = Broker(tmp_path_factory.mktemp("module-broker"))
    b.start()
    yield b
    alive = b.is_running()
    b.kill()
    if not alive:
        print(f"\n--- module broker had died; log tail ---\n{b.log_tail(150)}")


@pytest.fixture
def module_broker_alive(module_broker, request):
    """The module broker, asserting it is still alive after the test."""
    yield module_broker
    if not module_broker.is_running():
        pytest.fail(f"module broker died during the test\n{module_broker.log_tail(150)}")


@pytest.fixture(scope="module")
def browser():
    """A headless chromium (Debian's, through chromedriver; see browser.py), one per
    module; cookies are cleared between tests by `browser_page`."""
    import browser as b
    driver = b.chrome()
    yield driver
    b.close(driver)


@pytest.fixture
def browser_page(browser):
    """The module's browser with no cookies left from an earlier test."""
    browser.delete_all_cookies()
    yield browser


@pytest.fixture(autouse=True)
def _collect_clients():
    """Free a test's clients when it ends: a librdkafka handle kept alive by a
    reference cycle would go on reconnecting to a stopped broker for the rest
    of the session."""
    yield
    gc.collect()


# -- parallel runs (pytest-xdist) ---------------------------------------------
#
# scripts/test-all.sh runs the files in parallel: `-n 4 --dist loadfile
# --no-loadscope-reorder`. Each file runs whole on one worker, and the files are
# handed out in collection order, so the longest ones are put first and the short
# ones fill in at the end (else a long file picked last would run alone). The
# figures only order the files: rough serial seconds, measured with --durations on
# a 2-core machine; a file not listed counts DEFAULT_FILE_SECONDS.
FILE_SECONDS = {
    "test_cluster.py": 225, "test_tls.py": 67, "test_groups.py": 61, "test_cli.py": 57,
    "test_quotas.py": 56, "test_roundtrip.py": 56, "test_configs.py": 54,
    "test_transactions.py": 52, "test_sasl.py": 49, "test_oauth.py": 48,
    "test_delegation_tokens.py": 47, "test_storage_faults.py": 43, "test_kip848.py": 39,
    "test_share_groups.py": 38, "test_schema_registry.py": 36, "test_share_state.py": 32,
    "test_torn_tail.py": 30, "test_longpoll.py": 28, "test_bad_input.py": 23,
    "test_dynamic_quorum.py": 22, "test_java.py": 21, "test_limits.py": 20,
    "test_restart.py": 19, "test_kip848_migration.py": 19, "test_idempotence.py": 17,
    "test_protocol.py": 16, "test_acls.py": 15, "test_offsets.py": 15,
    "test_connect_postgres.py": 90, "test_connect_sinks.py": 70, "test_connect_convert.py": 60,
    "test_connect_rest.py": 60, "test_connect_failover.py": 60, "test_connect_runtime.py": 45,
    "test_connect_cluster.py": 35, "test_streams.py": 190, "test_streams_runtime.py": 70,
}
DEFAULT_FILE_SECONDS = 30   # a new file: in the middle until measured


def pytest_collection_modifyitems(session, config, items):
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return   # a serial run keeps the usual order
    first_seen: dict[str, int] = {}
    for item in items:
        first_seen.setdefault(item.path.name, len(first_seen))

    def key(item):
        name = item.path.name
        return (-FILE_SECONDS.get(name, DEFAULT_FILE_SECONDS), first_seen[name])
    items.sort(key=key)   # stable: a file's tests keep their order
