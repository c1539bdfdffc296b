"""A checkpoint store and swap queue in PostgreSQL, for many workers on many machines:
:class:`PostgresCheckpointStore`.

Every lease decision is made by the database, on the database's clock (``now()``), in one
statement: taking a swap increments its fencing token and sets ``lease_until = now() +
ttl``; every save, renewal and release is conditioned on that token, so a worker whose
lease was taken over cannot write again.  Workers claim swaps with ``FOR UPDATE SKIP
LOCKED``, so two never claim the same one and none waits for another's claim.

Tables (created or migrated on open, under a transaction-level advisory lock):
``kiiex_meta`` (``schema_version``), ``kiiex_swaps`` (one row per swap: the record as JSON
text with money as decimal strings, the amount as ``numeric``, the lease, the queue facts)
and ``kiiex_swap_writes`` (one row per accepted save: revision, fencing token, owner,
database time), which is how an operator (or a test) sees who wrote what under which
lease.  Checkpoint saves, a running swap's most frequent write, are group committed
(:class:`~._group.GroupCommit`): those arriving while a batch commits go together in the
next transaction, sent as one pipeline.  No credential or session token is ever stored.
Needs the ``postgres`` extra (``pip install 'kiiex_async[postgres]'``: psycopg 3 and
psycopg_pool).
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import AsyncIterator, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Self

import attrs

from ..errors import ConfigurationError
from ._errors import CheckpointError, CheckpointSchemaError
from ._group import GroupCommit, Op
from ._record import RECORD_VERSION, SwapRecord, decode_record, encode_record
from ._store import (
    Lease,
    LeaseOwner,
    _acquire_row,
    _check_revision,
    _check_version,
    _Row,
    lease_lost,
)

if TYPE_CHECKING:
    from psycopg import AsyncConnection
    from psycopg_pool import AsyncConnectionPool

__all__ = ["PG_SCHEMA_VERSION", "PostgresCheckpointStore"]

#: Version of the PostgreSQL layout (``kiiex_meta.schema_version``).
PG_SCHEMA_VERSION: Final = 1
#: Key of the advisory lock that serialises schema creation and migration.
_MIGRATION_LOCK: Final = 0x6B69_6965_7801

#: Statements that bring the database from version ``n - 1`` to ``n``.
_MIGRATIONS: Final[dict[int, Sequence[str]]] = {
    1: (
        """CREATE TABLE kiiex_swaps (
            swap_id text PRIMARY KEY,
            record_version integer NOT NULL,
            state text NOT NULL,
            terminal boolean NOT NULL,
            revision bigint NOT NULL,
            created_at timestamptz NOT NULL,
            updated_at timestamptz NOT NULL,
            from_asset text NOT NULL,
            to_asset text NOT NULL,
            amount numeric NOT NULL,
            exchange text,
            user_id bigint,
            record text NOT NULL,
            queued boolean NOT NULL DEFAULT false,
            run_after timestamptz,
            lease_token bigint NOT NULL DEFAULT 0,
            lease_owner text,
            lease_pid integer,
            lease_host text,
            lease_until timestamptz
        )""",
        "CREATE INDEX kiiex_swaps_claim ON kiiex_swaps (exchange, created_at) WHERE NOT terminal",
        """CREATE TABLE kiiex_swap_writes (
            swap_id text NOT NULL REFERENCES kiiex_swaps ON DELETE CASCADE,
            revision bigint NOT NULL,
            lease_token bigint NOT NULL,
            lease_owner text NOT NULL,
            written_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            PRIMARY KEY (swap_id, revision)
        )""",
    ),
}

_TTL: Final = "now() + make_interval(secs => %(ttl)s)"
_EPOCH: Final = "extract(epoch FROM lease_until)::float8"

_SAVE: Final = f"""
WITH saved AS (
    UPDATE kiiex_swaps SET record_version = %(version)s, state = %(state)s,
        terminal = %(terminal)s, revision = %(revision)s, updated_at = %(updated_at)s,
        record = %(record)s, exchange = %(exchange)s, user_id = %(user_id)s,
        lease_until = {_TTL}
    WHERE swap_id = %(swap_id)s AND lease_token = %(token)s AND lease_owner = %(owner)s
        AND revision = %(revision)s - 1
    RETURNING swap_id, {_EPOCH} AS until
), logged AS (
    INSERT INTO kiiex_swap_writes (swap_id, revision, lease_token, lease_owner)
    SELECT swap_id, %(revision)s, %(token)s, %(owner)s FROM saved
)
SELECT until FROM saved
"""

_TAKE_FREE: Final = f"""
UPDATE kiiex_swaps SET lease_token = lease_token + 1, lease_owner = %(owner)s,
    lease_pid = %(pid)s, lease_host = %(host)s, lease_until = {_TTL}
WHERE swap_id = %(swap_id)s AND record_version = %(version)s
    AND (lease_owner IS NULL OR lease_until <= now() OR lease_owner = %(owner)s)
RETURNING revision, record, lease_token, {_EPOCH}
"""

_CLAIM: Final = f"""
WITH due AS (
    SELECT swap_id FROM kiiex_swaps
    WHERE NOT terminal AND exchange = %(exchange)s
        AND (user_id IS NULL OR user_id = %(user_id)s)
        AND (run_after IS NULL OR run_after <= now())
        AND ((queued AND lease_owner IS NULL) OR lease_until <= now())
    ORDER BY created_at, swap_id
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE kiiex_swaps s SET lease_token = s.lease_token + 1, lease_owner = %(owner)s,
    lease_pid = %(pid)s, lease_host = %(host)s, lease_until = {_TTL}, queued = true
FROM due WHERE s.swap_id = due.swap_id
RETURNING s.swap_id, s.revision, s.record_version, s.record, s.lease_token, {_EPOCH},
    s.created_at
"""


def _import_psycopg() -> tuple[Any, Any]:
    try:
        import psycopg
        import psycopg_pool
    except ImportError:
        raise ConfigurationError(
            "PostgresCheckpointStore needs psycopg 3 and psycopg_pool: "
            "pip install 'kiiex_async[postgres]'"
        ) from None
    return psycopg, psycopg_pool


def describe_dsn(dsn: str) -> str:
    """The DSN without its password (for messages and logs)."""
    psycopg, _pool = _import_psycopg()
    try:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable DSN>"
    shown = {k: v for k, v in params.items() if k in ("host", "port", "dbname", "user")}
    return " ".join(f"{k}={v}" for k, v in sorted(shown.items())) or "<default DSN>"


class PostgresCheckpointStore:
    """A :class:`CheckpointStore`, :class:`RecordAcquirer` and :class:`SwapQueue` in
    PostgreSQL (see the module docstring).

    ``dsn`` is a libpq connection string or URL (``postgresql://user@host/db``);
    ``min_size``/``max_size`` bound the async connection pool.  Open it with ``async with``
    (or :meth:`open` then :meth:`aclose`); opening creates or migrates the schema and
    raises :class:`CheckpointSchemaError` for a database of a newer layout.  Database
    errors become :class:`CheckpointError` (the DSN's password is never shown).
    """

    def __init__(
        self,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        psycopg, psycopg_pool = _import_psycopg()
        if not isinstance(dsn, str) or not dsn.strip():
            raise ConfigurationError("dsn must be a PostgreSQL connection string")
        if not (isinstance(max_size, int) and isinstance(min_size, int) and max_size > 0):
            raise ConfigurationError("max_size must be a positive int")
        self._psycopg = psycopg
        self.where = describe_dsn(dsn)
        self.connect_timeout = connect_timeout
        self._pool: AsyncConnectionPool[AsyncConnection[tuple[Any, ...]]] = (
            psycopg_pool.AsyncConnectionPool(
                dsn,
                min_size=min(min_size, max_size),
                max_size=max_size,
                open=False,
                kwargs={"autocommit": True},
                timeout=connect_timeout,
                name="kiiex-checkpoints",
            )
        )
        self._opened = False
        #: Checkpoint saves, group committed (a running swap's most frequent write).
        self._saves = GroupCommit(self._apply_saves, self.where)

    def __repr__(self) -> str:
        return f"<PostgresCheckpointStore {self.where}>"

    # -- lifetime -------------------------------------------------------------------------

    async def open(self) -> None:
        """Connect and create or migrate the schema."""
        try:
            await self._pool.open(wait=True, timeout=self.connect_timeout)
        except Exception as exc:
            await self._pool.close()
            raise CheckpointError(f"cannot connect to PostgreSQL at {self.where}: {exc}") from exc
        self._opened = True
        try:
            await self._migrate()
        except BaseException:
            await self.aclose()
            raise

    async def __aenter__(self) -> Self:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pool's connections."""
        self._opened = False
        await self._pool.close()

    def _check_open(self) -> None:
        if not self._opened:
            raise CheckpointError(f"checkpoint store {self.where} is not open")

    @contextlib.asynccontextmanager
    async def _conn(self) -> AsyncIterator[AsyncConnection[tuple[Any, ...]]]:
        self._check_open()
        try:
            async with self._pool.connection() as conn:
                yield conn
        except self._psycopg.Error as exc:
            raise CheckpointError(f"checkpoint store {self.where}: {exc}") from exc

    async def _migrate(self) -> None:
        async with self._conn() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS kiiex_meta (key text PRIMARY KEY, value text NOT NULL)"
            )
            cur = await conn.execute("SELECT value FROM kiiex_meta WHERE key = 'schema_version'")
            row = await cur.fetchone()
            found = int(row[0]) if row else 0
            if found > PG_SCHEMA_VERSION:
                raise CheckpointSchemaError(
                    f"the database at {self.where} has kiiex schema version {found}; this "
                    f"kiiex_async knows up to {PG_SCHEMA_VERSION}: upgrade kiiex_async"
                )
            for version in range(found + 1, PG_SCHEMA_VERSION + 1):
                for statement in _MIGRATIONS[version]:
                    await conn.execute(statement)
            await conn.execute(
                "INSERT INTO kiiex_meta (key, value) VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(PG_SCHEMA_VERSION),),
            )

    # -- records --------------------------------------------------------------------------

    async def _insert(self, record: SwapRecord, *, queued: bool) -> None:
        binding = record.exchange
        async with self._conn() as conn:
            cur = await conn.execute(
                "INSERT INTO kiiex_swaps (swap_id, record_version, state, terminal, revision, "
                "created_at, updated_at, from_asset, to_asset, amount, exchange, user_id, "
                "record, queued) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
                "ON CONFLICT (swap_id) DO NOTHING RETURNING swap_id",
                (
                    record.swap_id,
                    record.version,
                    record.state.value,
                    record.state.is_terminal,
                    record.revision,
                    record.created_at,
                    record.updated_at,
                    record.request.from_asset,
                    record.request.to_asset,
                    record.request.amount,
                    binding.exchange if binding else None,
                    binding.user_id if binding else None,
                    encode_record(record),
                    queued,
                ),
            )
            if await cur.fetchone() is None:
                raise CheckpointError(
                    f"swap {record.swap_id} already exists", swap_id=record.swap_id
                )

    async def create(self, record: SwapRecord) -> None:
        """See :meth:`CheckpointStore.create`."""
        await self._insert(record, queued=False)

    async def submit(self, record: SwapRecord) -> None:
        """See :meth:`SwapQueue.submit`."""
        await self._insert(record, queued=True)

    async def get(self, swap_id: str) -> SwapRecord | None:
        """See :meth:`CheckpointStore.get`."""
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT record_version, record FROM kiiex_swaps WHERE swap_id = %s", (swap_id,)
            )
            row = await cur.fetchone()
        if row is None:
            return None
        _check_version(swap_id, row[0])
        return decode_record(row[1])

    async def list(self) -> builtins.list[SwapRecord]:
        """See :meth:`CheckpointStore.list`."""
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT swap_id, record_version, record FROM kiiex_swaps "
                "ORDER BY created_at, swap_id"
            )
            rows = await cur.fetchall()
        records = []
        for swap_id, version, text in rows:
            _check_version(swap_id, version)
            records.append(decode_record(text))
        return records

    # -- leases ---------------------------------------------------------------------------

    async def _take(self, swap_id: str, owner: LeaseOwner, ttl: float) -> tuple[Lease, str]:
        # Fast path, one statement: the lease is free, expired or already ours.
        async with self._conn() as conn:
            cur = await conn.execute(
                _TAKE_FREE,
                {**_owner_params(owner), "ttl": ttl, "swap_id": swap_id, "version": RECORD_VERSION},
            )
            taken = await cur.fetchone()
        if taken is not None:
            revision, text, token, until = taken
            return Lease(swap_id, owner, until, revision, token), text
        # Otherwise decide in Python (not found, locked, a dead holder on this host, another
        # record version), under the row's lock.
        async with self._conn() as conn, conn.transaction():
            cur = await conn.execute(
                "SELECT record, revision, record_version, lease_owner, lease_pid, lease_host, "
                f"{_EPOCH}, lease_token, extract(epoch FROM now())::float8 "
                "FROM kiiex_swaps WHERE swap_id = %s FOR UPDATE",
                (swap_id,),
            )
            found = await cur.fetchone()
            row = None
            now = 0.0
            if found is not None:
                text, revision, version, holder, pid, host, until, token, now = found
                lease_holder = None if holder is None else LeaseOwner(holder, pid, host)
                row = _Row(text, revision, version, lease_holder, until, token)
            lease = _acquire_row(row, swap_id, owner, ttl, now=now)
            assert row is not None
            _check_version(swap_id, row.version)
            cur = await conn.execute(
                "UPDATE kiiex_swaps SET lease_token = lease_token + 1, lease_owner = %(owner)s, "
                f"lease_pid = %(pid)s, lease_host = %(host)s, lease_until = {_TTL} "
                f"WHERE swap_id = %(swap_id)s RETURNING lease_token, {_EPOCH}",
                {**_owner_params(owner), "ttl": ttl, "swap_id": swap_id},
            )
            granted = await cur.fetchone()
            assert granted is not None
        return attrs.evolve(lease, token=granted[0], expires_at=granted[1]), row.record

    async def acquire(self, swap_id: str, owner: LeaseOwner, *, ttl: float) -> Lease:
        """See :meth:`CheckpointStore.acquire` (judged on the database's clock)."""
        lease, _text = await self._take(swap_id, owner, ttl)
        return lease

    async def acquire_record(
        self, swap_id: str, owner: LeaseOwner, *, ttl: float
    ) -> tuple[Lease, SwapRecord]:
        """See :meth:`RecordAcquirer.acquire_record` (one transaction)."""
        lease, text = await self._take(swap_id, owner, ttl)
        return lease, decode_record(text)

    async def claim(
        self,
        owner: LeaseOwner,
        *,
        exchange: str,
        user_id: int | None,
        ttl: float,
        limit: int,
    ) -> builtins.list[tuple[Lease, SwapRecord]]:
        """See :meth:`SwapQueue.claim`: one statement, ``FOR UPDATE SKIP LOCKED``."""
        params = {
            **_owner_params(owner),
            "exchange": exchange,
            "user_id": user_id,
            "ttl": ttl,
            "limit": limit,
        }
        async with self._conn() as conn:
            cur = await conn.execute(_CLAIM, params)
            rows = await cur.fetchall()
        claimed = []
        # RETURNING keeps no order: oldest first, as claimed.
        for swap_id, revision, version, text, token, until, _created in sorted(
            rows, key=lambda row: (row[6], row[0])
        ):
            _check_version(swap_id, version)
            lease = Lease(swap_id, owner, until, revision, token)
            claimed.append((lease, decode_record(text)))
        return claimed

    async def renew(self, lease: Lease, *, ttl: float) -> Lease:
        """See :meth:`CheckpointStore.renew`."""
        async with self._conn() as conn:
            cur = await conn.execute(
                f"UPDATE kiiex_swaps SET lease_until = {_TTL} WHERE swap_id = %(swap_id)s "
                f"AND lease_token = %(token)s AND lease_owner = %(owner)s RETURNING {_EPOCH}",
                {**_lease_params(lease), "ttl": ttl},
            )
            row = await cur.fetchone()
        if row is None:
            raise lease_lost(lease)
        return attrs.evolve(lease, expires_at=row[0])

    async def save(self, record: SwapRecord, lease: Lease, *, ttl: float) -> Lease:
        """See :meth:`CheckpointStore.save`: one statement, conditioned on the token and
        the revision, that also logs the write in ``kiiex_swap_writes``; concurrent saves
        are group committed (:meth:`_apply_saves`)."""
        binding = record.exchange
        params = {
            **_lease_params(lease),
            "ttl": ttl,
            "version": record.version,
            "state": record.state.value,
            "terminal": record.state.is_terminal,
            "revision": record.revision,
            "updated_at": record.updated_at,
            "record": encode_record(record),
            "exchange": binding.exchange if binding else None,
            "user_id": binding.user_id if binding else None,
        }
        self._check_open()
        row = await self._saves.write(params)
        if row is not None:
            return attrs.evolve(lease, expires_at=row[0], revision=record.revision)
        async with self._conn() as conn:
            cur = await conn.execute(
                "SELECT lease_token, lease_owner, revision FROM kiiex_swaps WHERE swap_id = %s",
                (lease.swap_id,),
            )
            found = await cur.fetchone()
        if found is None or (found[0], found[1]) != (lease.token, lease.owner.owner_id):
            raise lease_lost(lease)
        _check_revision(_Row("", found[2], record.version, None, None), record)
        raise CheckpointError(  # pragma: no cover - the conditions above cover every miss
            f"save of swap {record.swap_id} refused", swap_id=record.swap_id
        )

    async def _apply_saves(self, batch: builtins.list[Op]) -> None:
        """Apply a batch of saves (their ``_SAVE`` parameters) in one transaction.

        Each op's result is its ``_SAVE`` row, or ``None`` when its conditions did not hold
        (the statement does not fail for that).  When the server refuses a statement,
        nothing of the batch committed: each save is then applied alone, so the refusal
        fails its own caller only, as in the SQLite store.  Any other failure (the
        connection lost) fails every caller of the batch with its own error.
        """
        try:
            rows = await self._save_rows([op.payload for op in batch])
        except CheckpointError as exc:
            refused = getattr(exc.__cause__, "sqlstate", None) is not None
            if refused and len(batch) > 1:
                for op in batch:
                    await self._apply_saves([op])
                return
            for op in batch:
                error = CheckpointError(str(exc), swap_id=op.payload["swap_id"])
                error.__cause__ = exc.__cause__
                op.fail(error)
            return
        for op, row in zip(batch, rows, strict=True):
            op.result = row

    async def _save_rows(self, batch: Sequence[dict[str, Any]]) -> builtins.list[Any]:
        """Run ``_SAVE`` for each parameter set: one statement alone, or several in one
        transaction sent as one pipeline (one round trip, one commit)."""
        async with self._conn() as conn:
            if len(batch) == 1:  # one statement is its own transaction
                cursors = [await conn.execute(_SAVE, batch[0])]
            else:
                async with conn.pipeline(), conn.transaction():
                    cursors = []
                    for params in batch:
                        cursor = conn.cursor()
                        await cursor.execute(_SAVE, params)
                        cursors.append(cursor)
            return [await cursor.fetchone() for cursor in cursors]

    async def _free(self, lease: Lease, *, queued: bool, delay: float | None) -> None:
        async with self._conn() as conn:
            await conn.execute(
                "UPDATE kiiex_swaps SET lease_owner = NULL, lease_pid = NULL, "
                "lease_host = NULL, lease_until = NULL, queued = queued OR %(queued)s, "
                "run_after = CASE WHEN %(delay)s::float8 IS NULL THEN NULL "
                "ELSE now() + make_interval(secs => %(delay)s::float8) END "
                "WHERE swap_id = %(swap_id)s AND lease_token = %(token)s "
                "AND lease_owner = %(owner)s",
                {**_lease_params(lease), "queued": queued, "delay": delay},
            )

    async def release(self, lease: Lease) -> None:
        """See :meth:`CheckpointStore.release`."""
        await self._free(lease, queued=False, delay=None)

    async def defer(self, lease: Lease, *, delay: float) -> None:
        """See :meth:`SwapQueue.defer` (the delay runs on the database's clock)."""
        await self._free(lease, queued=True, delay=float(delay))


def _owner_params(owner: LeaseOwner) -> dict[str, Any]:
    return {"owner": owner.owner_id, "pid": owner.pid, "host": owner.host}


def _lease_params(lease: Lease) -> dict[str, Any]:
    return {"swap_id": lease.swap_id, "token": lease.token, "owner": lease.owner.owner_id}
