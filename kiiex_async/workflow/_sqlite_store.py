"""The default checkpoint store: :class:`SqliteCheckpointStore`, one SQLite file holding many
swaps, with group commit, fenced leases and the swap queue."""

from __future__ import annotations

import builtins
import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, Self, TypeVar, cast

import anyio
import anyio.to_thread
import attrs

from ..errors import ConfigurationError
from ._errors import CheckpointError, CheckpointSchemaError
from ._group import GroupCommit, Op
from ._machine import SwapState
from ._record import SwapRecord, decode_record, encode_record
from ._store import (
    Lease,
    LeaseOwner,
    _acquire_row,
    _check_held,
    _check_revision,
    _check_version,
    _Row,
    lease_lost,
)

__all__ = ["SCHEMA_VERSION", "SqliteCheckpointStore"]

#: Version of the SQLite layout (table ``meta``, key ``schema_version``).
SCHEMA_VERSION: Final = 2

T = TypeVar("T")


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS swaps (
    swap_id TEXT PRIMARY KEY,
    schema_version INTEGER NOT NULL,
    state TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    record TEXT NOT NULL,
    lease_owner TEXT,
    lease_pid INTEGER,
    lease_host TEXT,
    lease_expires REAL,
    lease_token INTEGER NOT NULL DEFAULT 0,
    queued INTEGER NOT NULL DEFAULT 0,
    run_after REAL,
    exchange TEXT,
    user_id INTEGER
);
"""

#: Statements that bring a file of schema version ``n`` to ``n + 1``, in a transaction.
_MIGRATIONS: Final = {
    # 1 -> 2: fencing tokens and the swap queue (issue 14).
    1: (
        "ALTER TABLE swaps ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE swaps ADD COLUMN queued INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE swaps ADD COLUMN run_after REAL",
        "ALTER TABLE swaps ADD COLUMN exchange TEXT",
        "ALTER TABLE swaps ADD COLUMN user_id INTEGER",
    ),
}
#: States a worker never claims (``SwapState.is_terminal``).
_TERMINAL_STATES: Final = tuple(s.value for s in SwapState if s.is_terminal)


#: ``durability=`` of :class:`SqliteCheckpointStore` -> SQLite's ``synchronous`` setting.
_SYNCHRONOUS: Final = {"full": "FULL", "normal": "NORMAL"}


def _create_private(path: Path) -> None:
    """Create a missing database file readable by its owner only (0600): it holds account
    ids, balances and withdrawal addresses.  SQLite gives its -wal and -shm files the
    same mode."""
    if str(path) == ":memory:" or str(path).startswith("file:"):
        return
    os.close(os.open(path, os.O_CREAT | os.O_RDWR, 0o600))


class SqliteCheckpointStore:
    """The default :class:`CheckpointStore`: one SQLite file holding many swaps.

    WAL journal, ``synchronous=FULL`` (an intent is on disk before the call it announces).
    Writes (``create``, ``acquire``, ``renew``, ``save``, ``release``) are *group
    committed*: the writes that arrive while a transaction is being committed are queued,
    then applied together, in arrival order, in the next transaction, each inside its own
    SAVEPOINT, so a write that fails (a lost lease, a stale revision, a swap that already
    exists) fails alone and the others commit.  Each call returns only once the transaction
    holding its write has committed, exactly as with one transaction per call: concurrent
    swaps share one disk flush instead of queueing for one flush each.

    ``durability="normal"`` (opt-in) uses ``synchronous=NORMAL``: a commit still survives a
    crash of the process, but the last commits may be lost if the operating system crashes
    or the machine loses power; a swap could then resume from an older checkpoint, before an
    intent whose call was already sent (reconciliation still applies, but the exactly-once
    guarantee then rests on it alone).  Keep the default for money.

    Leases carry a fencing token like every store's (see :mod:`._store`); their expiry is
    judged on this host's clock, which every user of the file shares.  The store is also a
    :class:`SwapQueue` for the workers of one host (``kiiex worker --store FILE``); for
    workers on many machines use :class:`PostgresCheckpointStore`.

    The file's ``meta.schema_version`` is checked when it is opened (a version-1 file is
    migrated to version 2: fencing tokens and the queue) and every row carries
    the record version.  Records are JSON with money as decimal strings; no credential or
    session token is ever written.  Blocking SQLite calls run in a worker thread
    (``anyio.to_thread``), one at a time, so a slow disk never stalls the event loop.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 10.0,
        durability: Literal["full", "normal"] = "full",
    ) -> None:
        synchronous = _SYNCHRONOUS.get(durability) if isinstance(durability, str) else None
        if synchronous is None:
            raise ConfigurationError('durability must be "full" or "normal"')
        self.path = Path(path)
        self.durability = durability
        self._lock = threading.Lock()
        self._group = GroupCommit(self._run_batch, str(self.path))
        self._closed = False
        try:
            _create_private(self.path)
            self._db = sqlite3.connect(
                self.path,
                timeout=busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
        except (sqlite3.Error, OSError) as exc:
            raise CheckpointError(f"cannot open checkpoint file {self.path}: {exc}") from exc
        try:
            self._open(synchronous)
        except BaseException:
            self._db.close()
            raise

    def _open(self, synchronous: str) -> None:
        db = self._db
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={synchronous}")
            db.execute("BEGIN IMMEDIATE")
            try:
                tables = {
                    r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
                if "meta" in tables:
                    row = db.execute(
                        "SELECT value FROM meta WHERE key = 'schema_version'"
                    ).fetchone()
                    found = row[0] if row else None
                    version = int(found) if found and found.isdigit() else None
                    if version is None or not 1 <= version <= SCHEMA_VERSION:
                        raise CheckpointSchemaError(
                            f"checkpoint file {self.path} has schema version {found}; this "
                            f"kiiex_async needs version {SCHEMA_VERSION}. Use the kiiex_async "
                            "version that wrote it, or another file"
                        )
                    for step in range(version, SCHEMA_VERSION):
                        for statement in _MIGRATIONS[step]:
                            db.execute(statement)
                    db.execute(
                        "UPDATE meta SET value = ? WHERE key = 'schema_version'",
                        (str(SCHEMA_VERSION),),
                    )
                elif tables:
                    raise CheckpointSchemaError(
                        f"{self.path} is an SQLite file but not a kiiex_async checkpoint store"
                    )
                else:
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            raise CheckpointError(f"{self.path} is not a usable checkpoint file: {exc}") from exc

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _error(self, exc: sqlite3.Error) -> CheckpointError:
        error = CheckpointError(f"checkpoint store {self.path}: {exc}")
        error.__cause__ = exc
        return error

    def _check_open(self) -> None:
        if self._closed:
            raise CheckpointError(f"checkpoint store {self.path} is closed")

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A read, in a worker thread, outside the write queue."""
        self._check_open()

        def call() -> T:
            with self._lock:
                try:
                    return fn(self._db)
                except sqlite3.Error as exc:
                    raise self._error(exc) from exc

        return await anyio.to_thread.run_sync(call)

    # -- group commit ---------------------------------------------------------------------

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Queue a write for the next group commit (:class:`GroupCommit`); return once the
        transaction holding it is durable."""
        self._check_open()
        return cast(T, await self._group.write(fn))

    async def _run_batch(self, batch: list[Op]) -> None:
        # One transaction in the worker thread (it could not be stopped anyway).
        await anyio.to_thread.run_sync(self._apply_batch, batch)

    def _apply_batch(self, batch: list[Op]) -> None:
        """Worker thread: apply ``batch`` in one transaction, one SAVEPOINT per write.

        Fills in each op's ``result`` or ``error``; its caller sees them only after this
        returned, i.e. after the COMMIT (or the rollback) of the whole transaction.
        """
        with self._lock:
            if self._closed:
                for op in batch:
                    op.fail(CheckpointError(f"checkpoint store {self.path} is closed"))
                return
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                for op in batch:
                    db.execute("SAVEPOINT op")
                    try:
                        op.result = op.payload(db)
                    except Exception as exc:
                        op.fail(self._error(exc) if isinstance(exc, sqlite3.Error) else exc)
                        if not db.in_transaction:
                            # SQLite rolled the whole transaction back (I/O error, disk
                            # full...): the writes before this one are gone too.
                            raise
                        db.execute("ROLLBACK TO op")
                    db.execute("RELEASE op")
                db.execute("COMMIT")
            except BaseException as exc:
                if db.in_transaction:
                    # Failing here too means the connection is unusable: the next BEGIN
                    # says so to the callers of the next batch.
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")
                for op in batch:
                    if op.error is None:
                        # Nothing of this batch was committed; each caller gets its own error.
                        op.fail(self._batch_error(exc))
                if not isinstance(exc, Exception):
                    raise

    def _batch_error(self, exc: BaseException) -> CheckpointError:
        if isinstance(exc, sqlite3.Error):
            error = CheckpointError(f"checkpoint store {self.path}: {exc}")
        else:
            error = CheckpointError(f"checkpoint store {self.path}: write failed: {exc!r}")
        error.__cause__ = exc
        return error

    # -- the protocol ---------------------------------------------------------------------

    @staticmethod
    def _row(db: sqlite3.Connection, swap_id: str) -> _Row | None:
        found = db.execute(
            "SELECT record, revision, schema_version, lease_owner, lease_pid, lease_host, "
            "lease_expires, lease_token FROM swaps WHERE swap_id = ?",
            (swap_id,),
        ).fetchone()
        if found is None:
            return None
        record, revision, version, owner, pid, host, expires, token = found
        holder = None if owner is None else LeaseOwner(owner_id=owner, pid=pid, host=host)
        return _Row(record, revision, version, holder, expires, token)

    async def _insert(self, record: SwapRecord, *, queued: bool) -> None:
        text = encode_record(record)
        binding = record.exchange

        def insert(db: sqlite3.Connection) -> None:
            try:
                db.execute(
                    "INSERT INTO swaps (swap_id, schema_version, state, revision, created_at, "
                    "updated_at, record, queued, exchange, user_id) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        record.swap_id,
                        record.version,
                        record.state.value,
                        record.revision,
                        record.created_at.isoformat(),
                        record.updated_at.isoformat(),
                        text,
                        int(queued),
                        binding.exchange if binding else None,
                        binding.user_id if binding else None,
                    ),
                )
            except sqlite3.IntegrityError:
                raise CheckpointError(
                    f"swap {record.swap_id} already exists", swap_id=record.swap_id
                ) from None

        await self._write(insert)

    async def create(self, record: SwapRecord) -> None:
        """See :meth:`CheckpointStore.create`."""
        await self._insert(record, queued=False)

    async def submit(self, record: SwapRecord) -> None:
        """See :meth:`SwapQueue.submit`."""
        await self._insert(record, queued=True)

    async def get(self, swap_id: str) -> SwapRecord | None:
        """See :meth:`CheckpointStore.get`."""
        row = await self._run(lambda db: self._row(db, swap_id))
        if row is None:
            return None
        _check_version(swap_id, row.version)
        return decode_record(row.record)

    async def list(self) -> list[SwapRecord]:
        """See :meth:`CheckpointStore.list`."""
        rows = await self._run(
            lambda db: db.execute(
                "SELECT swap_id, schema_version, record FROM swaps ORDER BY created_at, swap_id"
            ).fetchall()
        )
        records = []
        for swap_id, version, text in rows:
            _check_version(swap_id, version)
            records.append(decode_record(text))
        return records

    @staticmethod
    def _take(db: sqlite3.Connection, owner: LeaseOwner, lease: Lease) -> None:
        db.execute(
            "UPDATE swaps SET lease_owner = ?, lease_pid = ?, lease_host = ?, "
            "lease_expires = ?, lease_token = ? WHERE swap_id = ?",
            (owner.owner_id, owner.pid, owner.host, lease.expires_at, lease.token, lease.swap_id),
        )

    async def acquire(self, swap_id: str, owner: LeaseOwner, *, ttl: float) -> Lease:
        """See :meth:`CheckpointStore.acquire`."""

        def take(db: sqlite3.Connection) -> Lease:
            row = self._row(db, swap_id)
            lease = _acquire_row(row, swap_id, owner, ttl)
            self._take(db, owner, lease)
            return lease

        return await self._write(take)

    async def acquire_record(
        self, swap_id: str, owner: LeaseOwner, *, ttl: float
    ) -> tuple[Lease, SwapRecord]:
        """See :meth:`RecordAcquirer.acquire_record` (one group-committed write)."""

        def take(db: sqlite3.Connection) -> tuple[Lease, SwapRecord]:
            row = self._row(db, swap_id)
            lease = _acquire_row(row, swap_id, owner, ttl)
            assert row is not None
            _check_version(swap_id, row.version)
            record = decode_record(row.record)
            self._take(db, owner, lease)
            return lease, record

        return await self._write(take)

    async def claim(
        self,
        owner: LeaseOwner,
        *,
        exchange: str,
        user_id: int | None,
        ttl: float,
        limit: int,
    ) -> builtins.list[tuple[Lease, SwapRecord]]:
        """See :meth:`SwapQueue.claim` (the file's write lock makes it exclusive)."""
        marks = ", ".join("?" * len(_TERMINAL_STATES))

        def take(db: sqlite3.Connection) -> builtins.list[tuple[Lease, SwapRecord]]:
            now = time.time()
            rows = db.execute(
                "SELECT swap_id, revision, schema_version, record, lease_token FROM swaps "
                f"WHERE state NOT IN ({marks}) AND exchange = ? "
                "AND (user_id IS NULL OR user_id = ?) AND (run_after IS NULL OR run_after <= ?) "
                "AND ((queued = 1 AND lease_owner IS NULL) OR lease_expires <= ?) "
                "ORDER BY created_at, swap_id LIMIT ?",
                (*_TERMINAL_STATES, exchange, user_id, now, now, limit),
            ).fetchall()
            taken = []
            for swap_id, revision, version, text, token in rows:
                _check_version(swap_id, version)
                lease = Lease(swap_id, owner, now + ttl, revision, token + 1)
                self._take(db, owner, lease)
                db.execute("UPDATE swaps SET queued = 1 WHERE swap_id = ?", (swap_id,))
                taken.append((lease, decode_record(text)))
            return taken

        return await self._write(take)

    async def renew(self, lease: Lease, *, ttl: float) -> Lease:
        """See :meth:`CheckpointStore.renew`."""

        def extend(db: sqlite3.Connection) -> Lease:
            expires = time.time() + ttl
            cur = db.execute(
                "UPDATE swaps SET lease_expires = ? "
                "WHERE swap_id = ? AND lease_owner = ? AND lease_token = ?",
                (expires, lease.swap_id, lease.owner.owner_id, lease.token),
            )
            if cur.rowcount != 1:
                raise lease_lost(lease)
            return attrs.evolve(lease, expires_at=expires)

        return await self._write(extend)

    async def save(self, record: SwapRecord, lease: Lease, *, ttl: float) -> Lease:
        """See :meth:`CheckpointStore.save`."""
        text = encode_record(record)
        binding = record.exchange

        def write(db: sqlite3.Connection) -> Lease:
            row = self._row(db, record.swap_id)
            _check_held(row, lease)
            assert row is not None
            _check_revision(row, record)
            expires = time.time() + ttl
            db.execute(
                "UPDATE swaps SET schema_version = ?, state = ?, revision = ?, "
                "updated_at = ?, record = ?, lease_expires = ?, exchange = ?, user_id = ? "
                "WHERE swap_id = ? AND lease_token = ?",
                (
                    record.version,
                    record.state.value,
                    record.revision,
                    record.updated_at.isoformat(),
                    text,
                    expires,
                    binding.exchange if binding else None,
                    binding.user_id if binding else None,
                    record.swap_id,
                    lease.token,
                ),
            )
            return attrs.evolve(lease, expires_at=expires, revision=record.revision)

        return await self._write(write)

    async def _free(self, lease: Lease, *, queued: bool, run_after: float | None) -> None:
        def free(db: sqlite3.Connection) -> None:
            db.execute(
                "UPDATE swaps SET lease_owner = NULL, lease_pid = NULL, lease_host = NULL, "
                "lease_expires = NULL, queued = (queued OR ?), run_after = ? "
                "WHERE swap_id = ? AND lease_owner = ? AND lease_token = ?",
                (int(queued), run_after, lease.swap_id, lease.owner.owner_id, lease.token),
            )

        await self._write(free)

    async def release(self, lease: Lease) -> None:
        """See :meth:`CheckpointStore.release`."""
        await self._free(lease, queued=False, run_after=None)

    async def defer(self, lease: Lease, *, delay: float) -> None:
        """See :meth:`SwapQueue.defer`."""
        await self._free(lease, queued=True, run_after=time.time() + delay)

    async def aclose(self) -> None:
        """Close the database file (writes still queued fail with :class:`CheckpointError`)."""
        self._closed = True
        with self._lock:
            self._db.close()
