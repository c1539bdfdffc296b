"""A throw-away PostgreSQL server for the tests: started once per session from the local
PostgreSQL binaries, on a Unix socket in a private temporary directory (no TCP port).

``initdb`` refuses to run as root: as root the server runs as the ``postgres`` user
(``runuser``).  Without PostgreSQL the tests that need it skip, naming what is missing,
unless ``KIIEX_REQUIRE_POSTGRES=1`` (CI), which turns the absence into a failure.  Each
test gets a database of its own (``postgres_dsn``).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from kiiex_async.workflow import (
    MemoryCheckpointStore,
    PostgresCheckpointStore,
    SqliteCheckpointStore,
)

PG_BIN = Path(os.environ.get("KIIEX_PG_BIN", "/usr/lib/postgresql/15/bin"))
REQUIRED = os.environ.get("KIIEX_REQUIRE_POSTGRES") == "1"
_databases = itertools.count()


class PgServer:
    """One PostgreSQL cluster in ``base`` (data, socket and log)."""

    def __init__(self, base: Path, *, durable: bool = False) -> None:
        self.base = base
        self.data = base / "data"
        self.socket = base / "sock"
        self.durable = durable
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:
            self.as_postgres = ["runuser", "-u", "postgres", "--"]

    @property
    def dsn(self) -> str:
        """The DSN of the ``postgres`` database."""
        return self.dsn_for("postgres")

    def dsn_for(self, dbname: str) -> str:
        """The DSN of database ``dbname`` of this server."""
        return f"host={self.socket} port=5432 user=postgres dbname={dbname}"

    def _run(self, *argv: str) -> None:
        proc = subprocess.run(
            [*self.as_postgres, *argv], capture_output=True, text=True, check=False, timeout=120
        )
        if proc.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed: {proc.stderr.strip() or proc.stdout.strip()}")

    def start(self) -> None:
        """initdb and start the server (waits until it accepts connections)."""
        self.socket.mkdir(parents=True)
        if self.as_postgres:
            user = pwd.getpwnam("postgres")
            for path in (self.base, self.socket):
                os.chown(path, user.pw_uid, user.pw_gid)
        self._run(
            str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        options = f"-k {self.socket} -c listen_addresses='' -p 5432 -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "log"),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server at once (its data is thrown away)."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")

    def create_database(self) -> str:
        """A new empty database; its DSN."""
        import psycopg

        name = f"kiiex_test_{os.getpid()}_{next(_databases)}"
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.dsn_for(name)


def missing() -> str | None:
    """Why no PostgreSQL server can be started here, or ``None``."""
    if not (PG_BIN / "initdb").exists():
        return f"PostgreSQL server binaries not found in {PG_BIN} (set KIIEX_PG_BIN)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server"
        if shutil.which("runuser") is None:
            return "running as root and runuser is missing"
    try:
        import psycopg  # noqa: F401
        import psycopg_pool  # noqa: F401
    except ImportError:
        return "psycopg / psycopg_pool not installed (pip install '.[postgres]')"
    return None


@contextlib.contextmanager
def running_server(*, durable: bool = False) -> Iterator[PgServer]:
    """A started server in a private temporary directory, stopped and removed after."""
    base = Path(tempfile.mkdtemp(prefix="kiiex-pg-"))
    server = PgServer(base, durable=durable)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """The session's PostgreSQL server (skip, or fail under KIIEX_REQUIRE_POSTGRES=1)."""
    reason = missing()
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"KIIEX_REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(f"no PostgreSQL: {reason}")
    with running_server() as server:
        yield server


@pytest.fixture
def postgres_dsn(pg_server: PgServer) -> str:
    """A fresh database of the session's server."""
    return pg_server.create_database()


#: The stores every store-level test runs on (``params=`` of their ``store`` fixtures).
STORE_KINDS = ("memory", "sqlite", "postgres")


@contextlib.asynccontextmanager
async def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """An open store of the kind ``request.param`` names (PostgreSQL: a fresh database)."""
    if request.param == "memory":
        async with MemoryCheckpointStore() as memory:
            yield memory
    elif request.param == "sqlite":
        async with SqliteCheckpointStore(tmp_path / "swaps.sqlite3") as sqlite:
            yield sqlite
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        async with PostgresCheckpointStore(dsn) as pg:
            yield pg
