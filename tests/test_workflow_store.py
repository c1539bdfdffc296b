"""Checkpoint stores: atomic fenced saves, versioned schema, leases, money as strings."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

import anyio
import attrs
import pytest

from kiiex_async.workflow import (
    AmountSide,
    CheckpointError,
    CheckpointSchemaError,
    CheckpointStore,
    LeaseLostError,
    LeaseOwner,
    MemoryCheckpointStore,
    SqliteCheckpointStore,
    SwapLockedError,
    SwapNotFoundError,
    SwapRecord,
    SwapRequest,
    SwapState,
    TradesSummary,
    WithdrawSpec,
    client_order_id_for,
)
from kiiex_async.workflow._record import utcnow
from kiiex_async.workflow._store import lease_is_free, pid_alive

TTL = 30.0


def make_record(swap_id: str = "swap-1") -> SwapRecord:
    now = utcnow()
    return SwapRecord(
        swap_id=swap_id,
        request=SwapRequest(
            "USDT",
            "COPM",
            Decimal("100.10"),
            amount_side=AmountSide.SPEND,
            withdrawal=WithdrawSpec("Standard", {"ExternalAddress": "0xabc"}),
        ),
        client_order_id=client_order_id_for(swap_id),
        created_at=now,
        updated_at=now,
    )


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CheckpointStore]:
    if request.param == "memory":
        async with MemoryCheckpointStore() as memory:
            yield memory
    else:
        async with SqliteCheckpointStore(tmp_path / "swaps.sqlite3") as sqlite:
            yield sqlite


async def test_stores_implement_the_protocol(store: CheckpointStore) -> None:
    """Both stores satisfy the runtime-checkable CheckpointStore protocol."""
    assert isinstance(store, CheckpointStore)


async def test_create_get_list_round_trip(store: CheckpointStore) -> None:
    """A created record comes back equal, Decimals intact; list is oldest first."""
    first, second = make_record("a"), make_record("b")
    await store.create(first)
    await store.create(second)
    assert await store.get("a") == first
    assert await store.get("missing") is None
    assert [r.swap_id for r in await store.list()] == ["a", "b"]
    with pytest.raises(CheckpointError, match="already exists"):
        await store.create(first)


async def test_save_needs_the_lease_and_the_next_revision(store: CheckpointStore) -> None:
    """A save is fenced by the lease holder and by revision; a rejected save changes nothing."""
    record = make_record()
    await store.create(record)
    lease = await store.acquire(record.swap_id, LeaseOwner.current(), ttl=TTL)
    updated = attrs.evolve(record, state=SwapState.AUTHENTICATED, revision=1)
    lease = await store.save(updated, lease, ttl=TTL)
    stale = attrs.evolve(record, state=SwapState.FAILED, revision=1)
    with pytest.raises(CheckpointError, match="stale save"):
        await store.save(stale, lease, ttl=TTL)
    assert await store.get(record.swap_id) == updated


async def test_lease_excludes_a_second_live_runner(store: CheckpointStore) -> None:
    """While a live runner holds the lease, another owner gets SwapLockedError."""
    record = make_record()
    await store.create(record)
    await store.acquire(record.swap_id, LeaseOwner.current(), ttl=TTL)
    with pytest.raises(SwapLockedError, match="is being run by") as info:
        await store.acquire(record.swap_id, LeaseOwner.current(), ttl=TTL)
    assert info.value.swap_id == record.swap_id
    assert info.value.expires_in > 0


async def test_dead_pid_lease_is_taken_over_at_once(store: CheckpointStore) -> None:
    """A lease whose holder process is gone (same host) is taken over before it expires,
    and the old holder can no longer save."""
    record = make_record()
    await store.create(record)
    ghost = LeaseOwner(owner_id="ghost", pid=dead_pid(), host=socket.gethostname())
    old = await store.acquire(record.swap_id, ghost, ttl=3600)
    new = await store.acquire(record.swap_id, LeaseOwner.current(), ttl=TTL)
    assert new.owner.owner_id != "ghost"
    with pytest.raises(LeaseLostError):
        await store.save(attrs.evolve(record, revision=1), old, ttl=TTL)
    with pytest.raises(LeaseLostError):
        await store.renew(old, ttl=TTL)


async def test_live_pid_on_another_host_waits_for_expiry(store: CheckpointStore) -> None:
    """A lease from another host cannot be judged by pid: only expiry frees it."""
    record = make_record()
    await store.create(record)
    remote = LeaseOwner(owner_id="remote", pid=dead_pid(), host="elsewhere.invalid")
    await store.acquire(record.swap_id, remote, ttl=0.05)
    with pytest.raises(SwapLockedError):
        await store.acquire(record.swap_id, LeaseOwner.current(), ttl=TTL)
    await anyio.sleep(0.06)
    await store.acquire(record.swap_id, LeaseOwner.current(), ttl=TTL)


async def test_release_frees_the_lease(store: CheckpointStore) -> None:
    """After release another runner acquires at once; acquiring an unknown swap fails."""
    record = make_record()
    await store.create(record)
    lease = await store.acquire(record.swap_id, LeaseOwner.current(), ttl=TTL)
    await store.release(lease)
    await store.acquire(record.swap_id, LeaseOwner.current(), ttl=TTL)
    with pytest.raises(SwapNotFoundError):
        await store.acquire("nope", LeaseOwner.current(), ttl=TTL)


def test_lease_rules_are_pure() -> None:
    """lease_is_free decides from holder, expiry, host and a pid probe passed in."""
    me = LeaseOwner("me", 10, "h")
    other = LeaseOwner("other", 20, "h")
    assert lease_is_free(None, None, me=me, now=0)
    assert lease_is_free(me, 100.0, me=me, now=0)
    assert not lease_is_free(other, 100.0, me=me, now=0, alive=lambda pid: True)
    assert lease_is_free(other, 100.0, me=me, now=0, alive=lambda pid: False)
    assert lease_is_free(other, 100.0, me=me, now=100.0, alive=lambda pid: True)
    remote = LeaseOwner("other", 20, "elsewhere")
    assert not lease_is_free(remote, 100.0, me=me, now=0, alive=lambda pid: False)


def test_pid_alive_sees_this_process_and_not_a_reaped_one() -> None:
    """pid_alive: True for ourselves, False for an exited child and for pid 0."""
    assert pid_alive(os.getpid())
    assert not pid_alive(dead_pid())
    assert not pid_alive(0)


async def test_sqlite_keeps_money_as_decimal_strings_and_uses_wal(tmp_path: Path) -> None:
    """The SQLite row holds JSON with amounts as strings (never floats), in WAL mode."""
    path = tmp_path / "swaps.sqlite3"
    async with SqliteCheckpointStore(path) as store:
        record = make_record()
        await store.create(record)
        lease = await store.acquire(record.swap_id, LeaseOwner.current(), ttl=TTL)
        trades = TradesSummary(
            trade_ids=(7,),
            base_quantity=Decimal("100.10"),
            quote_value=Decimal("400400.000"),
            spent=Decimal("100.10"),
            received=Decimal("400400.000"),
            average_price=Decimal("4000"),
            fees={"COPM": Decimal("800.800")},
        )
        await store.save(attrs.evolve(record, revision=1, trades=trades), lease, ttl=TTL)
    db = sqlite3.connect(path)
    try:
        (text,) = db.execute("SELECT record FROM swaps").fetchone()
        (mode,) = db.execute("PRAGMA journal_mode").fetchone()
    finally:
        db.close()
    data = json.loads(text)
    assert data["request"]["amount"] == "100.10"
    assert data["trades"]["received"] == "400400.000"
    assert data["trades"]["fees"] == {"COPM": "800.800"}
    assert mode == "wal"
    assert '"amount":100' not in text


async def test_sqlite_one_file_many_swaps_survives_reopen(tmp_path: Path) -> None:
    """Records written by one store object are read back by a new one on the same file."""
    path = tmp_path / "swaps.sqlite3"
    async with SqliteCheckpointStore(path) as store:
        for i in range(5):
            await store.create(make_record(f"s{i}"))
    async with SqliteCheckpointStore(path) as store:
        assert [r.swap_id for r in await store.list()] == [f"s{i}" for i in range(5)]


async def test_sqlite_schema_version_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    """Opening a file of another schema version raises CheckpointSchemaError naming both."""
    path = tmp_path / "swaps.sqlite3"
    SqliteCheckpointStore(path)._db.close()
    db = sqlite3.connect(path)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(CheckpointSchemaError, match=r"schema version 99.*needs version 1"):
        SqliteCheckpointStore(path)


async def test_sqlite_record_version_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    """A row written with another record version is refused on read, not misparsed."""
    path = tmp_path / "swaps.sqlite3"
    async with SqliteCheckpointStore(path) as store:
        await store.create(make_record())
        store._db.execute("UPDATE swaps SET schema_version = 7")
        with pytest.raises(CheckpointSchemaError, match="record version 7"):
            await store.get("swap-1")
        with pytest.raises(CheckpointSchemaError):
            await store.list()


def test_sqlite_refuses_foreign_and_garbage_files(tmp_path: Path) -> None:
    """Another SQLite database or a non-database file is refused with a CheckpointError."""
    foreign = tmp_path / "other.sqlite3"
    db = sqlite3.connect(foreign)
    db.execute("CREATE TABLE t (x)")
    db.commit()
    db.close()
    with pytest.raises(CheckpointSchemaError, match="not a kiiex_async checkpoint store"):
        SqliteCheckpointStore(foreign)
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(CheckpointError, match="not a usable checkpoint file"):
        SqliteCheckpointStore(garbage)


async def test_sqlite_failed_transaction_leaves_the_previous_record(tmp_path: Path) -> None:
    """A save that fails inside its transaction is rolled back as a whole."""
    path = tmp_path / "swaps.sqlite3"
    async with SqliteCheckpointStore(path) as store:
        record = make_record()
        await store.create(record)
        lease = await store.acquire(record.swap_id, LeaseOwner.current(), ttl=TTL)
        store._db.execute(
            "CREATE TRIGGER boom BEFORE UPDATE OF record ON swaps "
            "BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
        with pytest.raises(CheckpointError, match="disk on fire"):
            await store.save(
                attrs.evolve(record, revision=1, state=SwapState.AUTHENTICATED), lease, ttl=TTL
            )
        store._db.execute("DROP TRIGGER boom")
        assert await store.get(record.swap_id) == record
        await store.save(attrs.evolve(record, revision=1), lease, ttl=TTL)
