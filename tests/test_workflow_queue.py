"""Fenced leases and the swap queue, the same rules in every store: each grant increments
the fencing token, a fenced-off holder can no longer write, and workers claim only the
swaps of their exchange that are queued or orphaned."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from pg_support import STORE_KINDS, open_store

from kiiex_async.workflow import (
    CheckpointStore,
    ExchangeBinding,
    LeaseLostError,
    LeaseOwner,
    SqliteCheckpointStore,
    SwapQueue,
    SwapRecord,
    SwapRequest,
    SwapState,
    client_order_id_for,
)
from kiiex_async.workflow._record import utcnow
from kiiex_async.workflow._store import claimable

TTL = 30.0
HERE = "http://127.0.0.1:1/ap"


def make_record(swap_id: str, exchange: str = HERE, user_id: int | None = None) -> SwapRecord:
    now = utcnow()
    return SwapRecord(
        swap_id=swap_id,
        request=SwapRequest("USDT", "COPM", Decimal("10.5")),
        client_order_id=client_order_id_for(swap_id),
        created_at=now,
        updated_at=now,
        exchange=ExchangeBinding(exchange, user_id=user_id),
    )


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CheckpointStore]:
    async with open_store(request, tmp_path) as opened:
        yield opened


def queue_of(store: CheckpointStore) -> SwapQueue:
    assert isinstance(store, SwapQueue)
    return store


async def claim(store: CheckpointStore, owner: LeaseOwner, **kw: object) -> list[str]:
    options: dict[str, object] = {"exchange": HERE, "user_id": None, "ttl": TTL, "limit": 10}
    options.update(kw)
    claimed = await queue_of(store).claim(owner, **options)  # type: ignore[arg-type]
    return [record.swap_id for _lease, record in claimed]


async def test_every_grant_increments_the_token_and_fences_the_previous_holder(
    store: CheckpointStore,
) -> None:
    """A lease taken over after expiry carries the next token; the old holder's save, renew
    and release are refused or ignored, and the new holder's writes go through."""
    record = make_record("t1")
    await store.create(record)
    first = await store.acquire("t1", LeaseOwner("a", 1, "elsewhere.invalid"), ttl=0.05)
    await anyio.sleep(0.1)
    second = await store.acquire("t1", LeaseOwner.current(), ttl=TTL)
    assert second.token == first.token + 1
    with pytest.raises(LeaseLostError, match="token"):
        await store.save(attrs.evolve(record, revision=1), first, ttl=TTL)
    with pytest.raises(LeaseLostError):
        await store.renew(first, ttl=TTL)
    await store.release(first)
    saved = attrs.evolve(record, revision=1, state=SwapState.AUTHENTICATED)
    await store.save(saved, second, ttl=TTL)
    assert await store.get("t1") == saved


async def test_the_same_owner_taking_the_lease_again_fences_its_older_lease(
    store: CheckpointStore,
) -> None:
    """The token, not the owner id, decides: an older lease of the same owner is stale."""
    record = make_record("t2")
    await store.create(record)
    owner = LeaseOwner.current()
    old = await store.acquire("t2", owner, ttl=TTL)
    new = await store.acquire("t2", owner, ttl=TTL)
    with pytest.raises(LeaseLostError):
        await store.save(attrs.evolve(record, revision=1), old, ttl=TTL)
    await store.save(attrs.evolve(record, revision=1), new, ttl=TTL)


async def test_workers_claim_queued_swaps_of_their_exchange_once(store: CheckpointStore) -> None:
    """Submitted swaps are claimed oldest first, each by one worker; swaps of another
    exchange or user, created (not submitted) swaps and terminal swaps are not claimed."""
    queue = queue_of(store)
    for swap_id in ("q1", "q2", "q3"):
        await queue.submit(make_record(swap_id))
    await queue.submit(make_record("elsewhere", exchange="http://other.invalid/ap"))
    await queue.submit(make_record("other-user", user_id=7))
    await store.create(make_record("in-process"))
    done = attrs.evolve(make_record("done"), state=SwapState.COMPLETED)
    await queue.submit(done)
    a, b = LeaseOwner.current(), LeaseOwner.current()
    assert await claim(store, a, limit=2) == ["q1", "q2"]
    assert await claim(store, b, user_id=3) == ["q3"]
    assert await claim(store, b, user_id=3) == []
    assert await claim(store, b, user_id=7) == ["other-user"]


async def test_an_expired_lease_is_claimed_with_the_next_token(store: CheckpointStore) -> None:
    """A swap whose holder vanished (lease expired) is claimed by another worker, even if
    it was never queued; the vanished holder is fenced off."""
    record = make_record("orphan")
    await store.create(record)
    ghost = await store.acquire("orphan", LeaseOwner("ghost", 1, "elsewhere.invalid"), ttl=0.05)
    assert await claim(store, LeaseOwner.current()) == []
    await anyio.sleep(0.1)
    claimed = await queue_of(store).claim(
        LeaseOwner.current(), exchange=HERE, user_id=None, ttl=TTL, limit=5
    )
    [(lease, got)] = claimed
    assert got == record
    assert lease.token == ghost.token + 1
    with pytest.raises(LeaseLostError):
        await store.save(attrs.evolve(record, revision=1), ghost, ttl=TTL)


async def test_defer_leaves_the_swap_queued_after_a_delay(store: CheckpointStore) -> None:
    """A deferred swap is not claimable until its delay passed, then it is; a deferral
    with a lost lease changes nothing."""
    queue = queue_of(store)
    await queue.submit(make_record("later"))
    owner = LeaseOwner.current()
    [(lease, _record)] = await queue.claim(owner, exchange=HERE, user_id=None, ttl=TTL, limit=1)
    await queue.defer(lease, delay=0.2)
    assert await claim(store, owner) == []
    await anyio.sleep(0.3)
    [(again, _record)] = await queue.claim(owner, exchange=HERE, user_id=None, ttl=TTL, limit=1)
    await queue.defer(lease, delay=0)
    assert await claim(store, owner) == []
    await queue.defer(again, delay=0)
    assert await claim(store, owner) == ["later"]


def test_claim_rules_are_pure() -> None:
    """claimable decides from terminal, queued, holder, expiry and deferral alone."""
    someone = LeaseOwner("x", 1, "h")
    base: dict[str, Any] = {"terminal": False, "queued": True, "holder": None, "expires_at": None}
    assert claimable(**base, run_after=None, now=10)
    assert not claimable(**{**base, "terminal": True}, run_after=None, now=10)
    assert not claimable(**{**base, "queued": False}, run_after=None, now=10)
    assert not claimable(**base, run_after=11.0, now=10)
    held: dict[str, Any] = {**base, "holder": someone, "expires_at": 20.0}
    assert not claimable(**held, run_after=None, now=10)
    assert claimable(**{**held, "queued": False}, run_after=None, now=20)


async def test_a_version_1_sqlite_file_is_migrated_on_open(tmp_path: Path) -> None:
    """A checkpoint file of schema version 1 gains the token and queue columns, keeps its
    swaps, and its leases start at token 0."""
    path = tmp_path / "v1.sqlite3"
    db = sqlite3.connect(path)
    db.executescript(
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        INSERT INTO meta VALUES ('schema_version', '1');
        CREATE TABLE swaps (swap_id TEXT PRIMARY KEY, schema_version INTEGER NOT NULL,
            state TEXT NOT NULL, revision INTEGER NOT NULL, created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL, record TEXT NOT NULL, lease_owner TEXT,
            lease_pid INTEGER, lease_host TEXT, lease_expires REAL);
        """
    )
    db.close()
    async with SqliteCheckpointStore(path) as store:
        await store.create(make_record("kept"))
        lease = await store.acquire("kept", LeaseOwner.current(), ttl=TTL)
        assert lease.token == 1
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT value FROM meta").fetchone() == ("2",)
        assert db.execute("SELECT lease_token, exchange FROM swaps").fetchone() == (1, HERE)
    finally:
        db.close()
