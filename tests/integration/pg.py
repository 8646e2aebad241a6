"""A real PostgreSQL (Debian's `postgresql` package) for the Connect tests: initdb in a
temp dir, the server on a free port of 127.0.0.1 (trust auth) with its unix socket in
that dir, run as the unprivileged user `vltava-pg` when the tests run as root (the
server refuses to run as root). SQL goes through Debian's `psql`.

    from pg import postgres   # noqa: F401  (the module-scoped fixture)

    def test_x(postgres):
        postgres.sql("CREATE TABLE t (id int PRIMARY KEY)")
        rows = postgres.rows("SELECT id FROM t ORDER BY id")   # [['1'], ['2']] (text)
        postgres.jdbc_url                                    # jdbc:postgresql://127.0.0.1:PORT/vltava
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

import helpers as h
from conftest import STARTUP_TIMEOUT, STOP_TIMEOUT, free_port

PG_USER = "vltava-pg"        # the OS user the server runs as when the tests run as root
DB_USER = "postgres"         # the database superuser initdb creates
DB_NAME = "vltava"
SQL_TIMEOUT = 120.0          # one psql call (a deadline, not a verdict)


def pg_bindir() -> Path:
    """Debian's PostgreSQL binaries (/usr/lib/postgresql/<version>/bin), newest first."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]), reverse=True)
    assert found, "PostgreSQL is not installed: apt-get install postgresql (scripts/test-all.sh does)"
    return Path(found[0]).parent


def _ensure_user() -> str | None:
    """The user to run the server as: None when not root, else `vltava-pg` (created if missing)."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(PG_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PG_USER],
                       check=True, capture_output=True)
    return PG_USER


class Postgres:
    """One PostgreSQL server in a temp dir of its own (its log linked into `workdir`)."""

    def __init__(self, workdir: Path):
        self.bindir = pg_bindir()
        # pytest keeps its temp tree private (0700, reset by each new session): the server's user
        # gets a directory of its own under the system temp dir, removed by cleanup()
        self.workdir = Path(tempfile.mkdtemp(prefix="vltava-pg-", dir=os.environ.get("TMPDIR", "/tmp")))
        self.log_link = Path(workdir) / "postgres.log"
        self.datadir = self.workdir / "data"
        self.sockdir = self.workdir / "sock"
        self.log_path = self.workdir / "postgres.log"
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = _ensure_user()
        self.proc: subprocess.Popen | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://{DB_USER}@{self.host}:{self.port}/{DB_NAME}"

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://{self.host}:{self.port}/{DB_NAME}"

    def _as_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self.user, "--", *argv] if self.user else argv

    def start(self) -> "Postgres":
        self.sockdir.mkdir(exist_ok=True)
        self.log_link.parent.mkdir(parents=True, exist_ok=True)
        self.log_link.unlink(missing_ok=True)
        self.log_link.symlink_to(self.log_path)
        if self.user:
            shutil.chown(self.workdir, self.user)
            shutil.chown(self.sockdir, self.user)
        subprocess.run(self._as_user([str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", DB_USER,
                                      "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8", "--no-sync"]),
                       check=True, capture_output=True, timeout=SQL_TIMEOUT)
        self._spawn()
        self.psql(f"CREATE DATABASE {DB_NAME}", db="postgres")
        return self

    def restart(self) -> "Postgres":
        """Stops the server (clients lose their connections) and starts it again on the same port."""
        self.stop()
        self._spawn()
        return self

    def _spawn(self) -> None:
        with open(self.log_path, "ab") as logf:
            if self.user:
                shutil.chown(self.log_path, self.user)
            self.proc = subprocess.Popen(
                self._as_user([str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port),
                               "-c", f"listen_addresses={self.host}", "-c", f"unix_socket_directories={self.sockdir}",
                               "-c", "timezone=UTC", "-c", "fsync=on", "-c", "max_connections=100", "-c", "shared_buffers=32MB"]),
                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)

        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"postgres exited with {self.proc.returncode}\n{self.log_tail()}")
            r = subprocess.run([str(self.bindir / "pg_isready"), "-h", self.host, "-p", str(self.port),
                                "-U", DB_USER], capture_output=True)
            return r.returncode == 0
        h.wait_until(ready, STARTUP_TIMEOUT, f"postgres on port {self.port} to accept connections", interval=0.2)

    def stop(self) -> None:
        """A fast shutdown (clients disconnected): SIGINT to the postmaster named in postmaster.pid
        (runuser would turn a signal it forwards into a SIGKILL)."""
        if self.proc is None:
            return
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split("\n")[0])
        except (OSError, ValueError):
            pid = None
        if pid is not None:
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                pass
        try:
            self.proc.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            if pid is not None:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.kill()
            self.proc.wait()

    def cleanup(self) -> None:
        """Stops the server and removes its directory."""
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def log_tail(self, n: int = 50) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except FileNotFoundError:
            return ""

    # -- SQL ---------------------------------------------------------------

    def psql(self, sql: str, db: str = DB_NAME) -> str:
        """Runs SQL (one or several statements) with psql; its unaligned, tuples-only output."""
        r = subprocess.run([str(self.bindir / "psql"), "-X", "-h", self.host, "-p", str(self.port), "-U", DB_USER,
                            "-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-F", "\x1f", "-P", "null=\x1e", "-c", sql],
                           capture_output=True, text=True, timeout=SQL_TIMEOUT)
        assert r.returncode == 0, f"psql failed ({r.returncode}) on {sql!r}: {r.stderr}"
        return r.stdout

    def sql(self, sql: str) -> None:
        self.psql(sql)

    def rows(self, query: str) -> list[list[str | None]]:
        """The rows of a query, each a list of column texts (NULL: None)."""
        out = self.psql(query)
        rows = []
        for line in out.split("\n"):
            if not line:
                continue
            rows.append([None if v == "\x1e" else v for v in line.split("\x1f")])
        return rows

    def scalar(self, query: str) -> str | None:
        rows = self.rows(query)
        return rows[0][0] if rows else None

    def count(self, table: str) -> int:
        """Rows in a table, 0 while it does not exist."""
        exists = self.scalar(f"SELECT to_regclass('{table}') IS NOT NULL")
        return int(self.scalar(f"SELECT count(*) FROM {table}")) if exists == "t" else 0


@pytest.fixture(scope="module")
def postgres(tmp_path_factory):
    pg = Postgres(tmp_path_factory.mktemp("postgres"))
    try:
        pg.start()
        yield pg
    finally:
        pg.cleanup()
