"""`vltava connect` workers for the Connect tests: start one or several (the same
`group.id` forms a cluster), call their REST API, wait for connector states.

    from connect import start_worker   # the fixture (factory)

    def test_x(broker, start_worker):
        w = start_worker(broker)                       # one worker, REST on a free port
        w.put(f"/connectors/{name}/config", {...})     # -> (status, json)
        w.wait_running(name, tasks=1)

Every worker a test started is killed at teardown; its log is printed when the test failed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import helpers as h
from conftest import STARTUP_TIMEOUT, STOP_TIMEOUT, free_port, vltava_bin

REQUEST_TIMEOUT = 60.0   # one REST call (a worker may forward it to the leader)


class Worker:
    """One `vltava connect` process with its properties file."""

    def __init__(self, workdir: Path, bootstrap: str, group: str, props: dict | None = None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = self.workdir / "connect.log"
        self.props = {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "config.storage.topic": f"{group}-configs",
            "offset.storage.topic": f"{group}-offsets",
            "status.storage.topic": f"{group}-status",
            "config.storage.replication.factor": "1",
            "offset.storage.replication.factor": "1",
            "status.storage.replication.factor": "1",
            "listeners": self.url,
            "key.converter": "org.apache.kafka.connect.json.JsonConverter",
            "value.converter": "org.apache.kafka.connect.json.JsonConverter",
            # tests wait for offsets: commit them often
            "offset.flush.interval.ms": "1000",
        }
        self.props.update({k: str(v) for k, v in (props or {}).items()})
        self.config_path = self.workdir / "connect.properties"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = STARTUP_TIMEOUT) -> "Worker":
        self.config_path.write_text("".join(f"{k}={v}\n" for k, v in self.props.items()))
        with open(self.log_path, "ab") as logf:
            logf.write(f"\n===== start: connect on {self.url}\n".encode())
            env = dict(os.environ)
            env.setdefault("RUST_BACKTRACE", "1")
            self.proc = subprocess.Popen([vltava_bin(), "connect", "--config", str(self.config_path)],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env,
                                         cwd=str(self.workdir))
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = STARTUP_TIMEOUT) -> None:
        """Until GET /connectors answers 200 (the worker joined its group and read the configs)."""
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"vltava connect exited with {self.proc.returncode}\n{self.log_tail()}")
            try:
                status, _ = self.get("/connectors", timeout=5.0)
                return status == 200
            except OSError:
                return False
        try:
            h.wait_until(ready, timeout, f"the worker on {self.url} to answer GET /connectors")
        except AssertionError:
            print(self.log_tail())
            raise

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM and wait; the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f"vltava connect did not exit within {timeout}s of SIGTERM\n{self.log_tail()}")
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, n: int = 150) -> str:
        return "\n".join(self.log().splitlines()[-n:])

    # -- REST ------------------------------------------------------------

    def request(self, method: str, path: str, body=None, timeout: float = REQUEST_TIMEOUT):
        """(status, parsed JSON body or None or the text)."""
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                status, text = resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, (json.loads(text) if text.strip() else None)
        except ValueError:
            return status, text

    def get(self, path: str, **kw):
        return self.request("GET", path, **kw)

    def post(self, path: str, body=None, **kw):
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body=None, **kw):
        return self.request("PUT", path, body, **kw)

    def delete(self, path: str, **kw):
        return self.request("DELETE", path, **kw)

    def create(self, name: str, config: dict) -> dict:
        """PUT /connectors/NAME/config (create or update); asserts 200/201, returns the answer."""
        status, body = self.put(f"/connectors/{name}/config", {k: str(v) for k, v in config.items()})
        assert status in (200, 201), (status, body)
        return body

    def status(self, name: str):
        status, body = self.get(f"/connectors/{name}/status")
        return body if status == 200 else None

    def wait_running(self, name: str, tasks: int = 1, timeout: float = 90.0) -> dict:
        """Until the connector and `tasks` tasks are RUNNING; the status. A FAILED task fails at once."""
        def running():
            st = self.status(name)
            if not st:
                return None
            for t in st.get("tasks", []):
                assert t["state"] != "FAILED", (name, t)
            ts = st.get("tasks", [])
            if st["connector"]["state"] == "RUNNING" and len(ts) == tasks and all(t["state"] == "RUNNING" for t in ts):
                return st
            return None
        return h.wait_until(running, timeout, f"connector {name} and {tasks} task(s) RUNNING")

    def wait_task_state(self, name: str, task: int, state: str, timeout: float = 90.0) -> dict:
        def reached():
            st = self.status(name)
            for t in (st or {}).get("tasks", []):
                if t["id"] == task and t["state"] == state:
                    return t
            return None
        return h.wait_until(reached, timeout, f"task {name}-{task} {state}")

    def __repr__(self) -> str:
        return f"<Worker {self.url} {'running' if self.is_running() else 'stopped'}>"


@pytest.fixture
def start_worker(tmp_path, request):
    """Factory: start_worker(broker, group="g", props={...}) -> a started Worker."""
    workers: list[Worker] = []

    def _start(broker, group: str | None = None, props: dict | None = None, start: bool = True) -> Worker:
        bootstrap = broker if isinstance(broker, str) else broker.bootstrap
        w = Worker(tmp_path / f"worker{len(workers)}", bootstrap, group or "connect-test", props)
        workers.append(w)
        return w.start() if start else w

    yield _start
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for w in workers:
            print(f"\n--- log of {w!r} (tail) ---\n{w.log_tail()}")
    for w in workers:
        w.kill()
