"""Checkpoint stores: the :class:`CheckpointStore` protocol, its optional extensions
(:class:`RecordAcquirer`, :class:`SwapQueue`), the lease rules every store shares, and the
in-memory store.  The SQLite store is in :mod:`._sqlite_store`, the PostgreSQL store in
:mod:`._pg_store`.

Guarantees every store gives the runner:

* a save is atomic (all of the record or none of it) and durable when it returns;
* a save is *fenced*: it succeeds only under the swap's current lease, i.e. with its
  current fencing token (:attr:`Lease.token`, incremented by every grant), and only on top
  of the revision the holder last saw, so a runner whose lease was taken over cannot
  overwrite its successor, nor renew or release the successor's lease;
* one runner per swap: :meth:`CheckpointStore.acquire` grants a lease (owner id, pid, host,
  expiry).  A lease may be taken over once it expired, or at once when its holder ran on this
  host and its process is gone (a SIGKILLed run can be resumed immediately).

The stores here also tell, in :attr:`Lease.revision`, which revision of the record was
stored when the lease was granted or last used to save, and offer
:meth:`~RecordAcquirer.acquire_record` (the lease and the record in one call), so a
runner that already holds the current record does not read it again.  Both are optional:
a store without them gets the plain ``acquire`` + ``get``.
"""

from __future__ import annotations

import builtins
import os
import socket
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import (
    Final,
    Protocol,
    Self,
    TypeVar,
    runtime_checkable,
)

import attrs

from ._errors import (
    CheckpointError,
    CheckpointSchemaError,
    LeaseLostError,
    SwapLockedError,
    SwapNotFoundError,
)
from ._machine import SwapState
from ._record import RECORD_VERSION, SwapRecord, decode_record, encode_record

__all__ = [
    "CheckpointStore",
    "Lease",
    "LeaseOwner",
    "MemoryCheckpointStore",
    "RecordAcquirer",
    "SwapQueue",
    "claimable",
    "lease_is_free",
    "pid_alive",
]

#: Default lease time-to-live in seconds; the runner renews it at every save and poll.
DEFAULT_LEASE_TTL: Final = 30.0

T = TypeVar("T")


@attrs.frozen
class LeaseOwner:
    """Who runs a swap: a random owner id plus the process id and host name."""

    owner_id: str
    pid: int
    host: str

    @classmethod
    def current(cls) -> LeaseOwner:
        """A new owner id for this process."""
        return cls(owner_id=uuid.uuid4().hex, pid=os.getpid(), host=socket.gethostname())

    def describe(self) -> str:
        """``"<owner id> (pid 123 on host)"``."""
        return f"{self.owner_id} (pid {self.pid} on {self.host})"


@attrs.frozen
class Lease:
    """The right to run one swap until ``expires_at`` (epoch seconds, the store's clock).

    ``token`` is the *fencing token*: every grant of the swap's lease increments it, and
    every write (save, renew, release) must carry the current one, so a runner whose lease
    was taken over (it paused past its expiry) can never write again.  ``revision`` is the
    record revision stored when the lease was granted or last used to save (``None`` when
    the store does not say): a runner holding a record of that revision holds the current
    one and need not read it again.
    """

    swap_id: str
    owner: LeaseOwner
    expires_at: float
    revision: int | None = None
    token: int = 0


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists on this host and is not a zombie."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    # The state letter follows the parenthesised command name, which may contain spaces.
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def lease_is_free(
    holder: LeaseOwner | None,
    expires_at: float | None,
    *,
    me: LeaseOwner,
    now: float,
    alive: Callable[[int], bool] = pid_alive,
) -> bool:
    """Decide (purely, given ``now`` and ``alive``) whether ``me`` may take a lease."""
    if holder is None or expires_at is None:
        return True
    if holder.owner_id == me.owner_id:
        return True
    if expires_at <= now:
        return True
    return holder.host == me.host and not alive(holder.pid)


@runtime_checkable
class CheckpointStore(Protocol):
    """Where swaps are checkpointed.  All methods are coroutines; see the module docstring."""

    async def create(self, record: SwapRecord) -> None:
        """Insert a new swap (revision 0); raise :class:`CheckpointError` if it exists."""

    async def get(self, swap_id: str) -> SwapRecord | None:
        """The swap's last committed record, or ``None``."""

    async def list(self) -> list[SwapRecord]:
        """Every swap, oldest first."""

    async def acquire(self, swap_id: str, owner: LeaseOwner, *, ttl: float) -> Lease:
        """Take the swap's lease or raise :class:`SwapLockedError` / :class:`SwapNotFoundError`."""

    async def renew(self, lease: Lease, *, ttl: float) -> Lease:
        """Extend a held lease; raise :class:`LeaseLostError` if it was taken over."""

    async def save(self, record: SwapRecord, lease: Lease, *, ttl: float) -> Lease:
        """Atomically replace the record (its ``revision`` must be the stored one + 1) and
        renew the lease; raise :class:`LeaseLostError` if the lease is not ours any more."""

    async def release(self, lease: Lease) -> None:
        """Give the lease up (no error if it was already lost)."""

    async def aclose(self) -> None:
        """Release resources (files)."""


@runtime_checkable
class SwapQueue(Protocol):
    """Optional extension of a :class:`CheckpointStore`: a queue of swaps for workers.

    A *claimable* swap is not terminal, is bound to the worker's exchange (and user, once
    known), is not deferred, and is either queued with no lease or held by a lease that
    expired (its runner died or paused).  Claiming grants a new lease (token + 1) exactly
    like :meth:`CheckpointStore.acquire`; two workers never claim the same swap.
    """

    async def submit(self, record: SwapRecord) -> None:
        """Insert a new swap, queued for a worker; :class:`CheckpointError` if it exists."""

    async def claim(
        self,
        owner: LeaseOwner,
        *,
        exchange: str,
        user_id: int | None,
        ttl: float,
        limit: int,
    ) -> list[tuple[Lease, SwapRecord]]:
        """Take up to ``limit`` claimable swaps, oldest first, with their records."""

    async def defer(self, lease: Lease, *, delay: float) -> None:
        """Give the lease up and leave the swap queued, claimable again after ``delay``
        seconds (0: at once); nothing happens if the lease was lost."""


@runtime_checkable
class RecordAcquirer(Protocol):
    """Optional extension of a :class:`CheckpointStore`: lease and record in one call."""

    async def acquire_record(
        self, swap_id: str, owner: LeaseOwner, *, ttl: float
    ) -> tuple[Lease, SwapRecord]:
        """:meth:`CheckpointStore.acquire` plus :meth:`CheckpointStore.get` of the record
        as it is under the new lease; nothing is taken when the record cannot be read."""
        ...


class _Row:
    """A stored swap: the encoded record, its lease and queue facts (shared by the stores'
    logic)."""

    __slots__ = (
        "exchange",
        "expires",
        "holder",
        "queued",
        "record",
        "revision",
        "run_after",
        "state",
        "token",
        "user_id",
        "version",
    )

    def __init__(
        self,
        record: str,
        revision: int,
        version: int,
        holder: LeaseOwner | None,
        expires: float | None,
        token: int = 0,
    ) -> None:
        self.record = record
        self.revision = revision
        self.version = version
        self.holder = holder
        self.expires = expires
        self.token = token
        self.queued = False
        self.run_after: float | None = None
        self.state = ""
        self.exchange: str | None = None
        self.user_id: int | None = None

    def describe(self, record: SwapRecord) -> None:
        """Copy the facts the queue filters on from ``record``."""
        self.state = record.state.value
        self.exchange = record.exchange.exchange if record.exchange else None
        self.user_id = record.exchange.user_id if record.exchange else None


def claimable(
    *,
    terminal: bool,
    queued: bool,
    holder: LeaseOwner | None,
    expires_at: float | None,
    run_after: float | None,
    now: float,
) -> bool:
    """Decide (purely) whether a worker may claim a swap of its exchange: see
    :class:`SwapQueue`."""
    if terminal or (run_after is not None and run_after > now):
        return False
    if holder is None or expires_at is None:
        return queued
    return expires_at <= now


def _check_version(swap_id: str, version: int) -> None:
    if version != RECORD_VERSION:
        raise CheckpointSchemaError(
            f"swap {swap_id} was checkpointed with record version {version}; this "
            f"kiiex_async reads version {RECORD_VERSION}: use the matching kiiex_async",
            swap_id=swap_id,
        )


def _acquire_row(
    row: _Row | None, swap_id: str, owner: LeaseOwner, ttl: float, now: float | None = None
) -> Lease:
    """The lease ``owner`` gets on ``row`` at ``now`` (the store's clock; default this
    host's), or :class:`SwapNotFoundError` / :class:`SwapLockedError`."""
    if row is None:
        raise SwapNotFoundError(f"no swap {swap_id!r} in the checkpoint store", swap_id=swap_id)
    now = time.time() if now is None else now
    if not lease_is_free(row.holder, row.expires, me=owner, now=now):
        assert row.holder is not None
        assert row.expires is not None
        raise SwapLockedError(
            f"swap {swap_id} is being run by {row.holder.describe()}; its lease expires in "
            f"{row.expires - now:.0f} s",
            swap_id=swap_id,
            holder=row.holder.describe(),
            expires_in=row.expires - now,
        )
    return Lease(
        swap_id=swap_id,
        owner=owner,
        expires_at=now + ttl,
        revision=row.revision,
        token=row.token + 1,
    )


def holds(row: _Row | None, lease: Lease) -> bool:
    """True when ``lease`` is the row's current lease (same owner and fencing token)."""
    return (
        row is not None
        and row.holder is not None
        and row.holder.owner_id == lease.owner.owner_id
        and row.token == lease.token
    )


def lease_lost(lease: Lease) -> LeaseLostError:
    """The error of a write whose lease is not the current one any more."""
    return LeaseLostError(
        f"the lease on swap {lease.swap_id} (token {lease.token}) was taken over by another "
        "runner: this one stops without writing",
        swap_id=lease.swap_id,
    )


def _check_held(row: _Row | None, lease: Lease) -> None:
    if not holds(row, lease):
        raise lease_lost(lease)


def _check_revision(row: _Row, record: SwapRecord) -> None:
    if record.revision != row.revision + 1:
        raise CheckpointError(
            f"stale save of swap {record.swap_id}: revision {record.revision} on top of "
            f"{row.revision}",
            swap_id=record.swap_id,
        )


class MemoryCheckpointStore:
    """A :class:`CheckpointStore` and :class:`SwapQueue` in memory (tests, throw-away runs).

    Records are kept encoded, exactly as SQLite keeps them, so that what a test resumes
    from went through the same codec.
    """

    def __init__(self) -> None:
        self._rows: dict[str, _Row] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def create(self, record: SwapRecord) -> None:
        """Insert a new swap; see :meth:`CheckpointStore.create`."""
        if record.swap_id in self._rows:
            raise CheckpointError(f"swap {record.swap_id} already exists", swap_id=record.swap_id)
        row = _Row(encode_record(record), record.revision, record.version, None, None)
        row.describe(record)
        self._rows[record.swap_id] = row

    async def submit(self, record: SwapRecord) -> None:
        """See :meth:`SwapQueue.submit`."""
        await self.create(record)
        self._rows[record.swap_id].queued = True

    async def get(self, swap_id: str) -> SwapRecord | None:
        """See :meth:`CheckpointStore.get`."""
        row = self._rows.get(swap_id)
        if row is None:
            return None
        _check_version(swap_id, row.version)
        return decode_record(row.record)

    async def list(self) -> list[SwapRecord]:
        """See :meth:`CheckpointStore.list`."""
        records = [decode_record(row.record) for row in self._rows.values()]
        return sorted(records, key=lambda r: (r.created_at, r.swap_id))

    def _grant(self, row: _Row, lease: Lease) -> None:
        row.holder, row.expires, row.token = lease.owner, lease.expires_at, lease.token

    async def acquire(self, swap_id: str, owner: LeaseOwner, *, ttl: float) -> Lease:
        """See :meth:`CheckpointStore.acquire`."""
        row = self._rows.get(swap_id)
        lease = _acquire_row(row, swap_id, owner, ttl)
        assert row is not None
        self._grant(row, lease)
        return lease

    async def acquire_record(
        self, swap_id: str, owner: LeaseOwner, *, ttl: float
    ) -> tuple[Lease, SwapRecord]:
        """See :meth:`RecordAcquirer.acquire_record`."""
        row = self._rows.get(swap_id)
        lease = _acquire_row(row, swap_id, owner, ttl)
        assert row is not None
        _check_version(swap_id, row.version)
        record = decode_record(row.record)
        self._grant(row, lease)
        return lease, record

    async def claim(
        self,
        owner: LeaseOwner,
        *,
        exchange: str,
        user_id: int | None,
        ttl: float,
        limit: int,
    ) -> builtins.list[tuple[Lease, SwapRecord]]:
        """See :meth:`SwapQueue.claim`."""
        now = time.time()
        taken: builtins.list[tuple[Lease, SwapRecord]] = []
        for swap_id, row in self._rows.items():  # insertion order: oldest first
            if len(taken) >= limit:
                break
            mine = row.exchange == exchange and row.user_id in (None, user_id)
            if mine and claimable(
                terminal=SwapState(row.state).is_terminal,
                queued=row.queued,
                holder=row.holder,
                expires_at=row.expires,
                run_after=row.run_after,
                now=now,
            ):
                lease = Lease(swap_id, owner, now + ttl, row.revision, row.token + 1)
                self._grant(row, lease)
                row.queued = True
                taken.append((lease, decode_record(row.record)))
        return taken

    async def renew(self, lease: Lease, *, ttl: float) -> Lease:
        """See :meth:`CheckpointStore.renew`."""
        row = self._rows.get(lease.swap_id)
        _check_held(row, lease)
        assert row is not None
        row.expires = time.time() + ttl
        return attrs.evolve(lease, expires_at=row.expires)

    async def save(self, record: SwapRecord, lease: Lease, *, ttl: float) -> Lease:
        """See :meth:`CheckpointStore.save`."""
        row = self._rows.get(record.swap_id)
        _check_held(row, lease)
        assert row is not None
        _check_revision(row, record)
        row.record, row.revision = encode_record(record), record.revision
        row.describe(record)
        row.expires = time.time() + ttl
        return attrs.evolve(lease, expires_at=row.expires, revision=record.revision)

    async def release(self, lease: Lease) -> None:
        """See :meth:`CheckpointStore.release`."""
        row = self._rows.get(lease.swap_id)
        if holds(row, lease):
            assert row is not None
            row.holder, row.expires = None, None

    async def defer(self, lease: Lease, *, delay: float) -> None:
        """See :meth:`SwapQueue.defer`."""
        row = self._rows.get(lease.swap_id)
        if holds(row, lease):
            assert row is not None
            row.holder, row.expires = None, None
            row.queued, row.run_after = True, time.time() + delay

    async def aclose(self) -> None:
        """Nothing to release."""

    def expire_leases(self) -> None:
        """Make every lease expired (tests: simulate a runner that vanished)."""
        for row in self._rows.values():
            if row.expires is not None:
                row.expires = 0.0
