"""Checkpoint stores: atomic fenced saves, versioned schema, leases, money as strings."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import attrs
import pytest
from pg_support import STORE_KINDS, open_store
from workflow_support import full_request, make_client, sim_config

from kiiex_async.errors import ConfigurationError
from kiiex_async.sim import Simulator
from kiiex_async.workflow import (
    AmountSide,
    CheckpointError,
    CheckpointSchemaError,
    CheckpointStore,
    Lease,
    LeaseLostError,
    LeaseOwner,
    SqliteCheckpointStore,
    SwapLockedError,
    SwapNotFoundError,
    SwapRecord,
    SwapRequest,
    SwapState,
    SwapWorkflow,
    TradesSummary,
    WithdrawSpec,
    client_order_id_for,
)
from kiiex_async.workflow._record import utcnow
from kiiex_async.workflow._store import RecordAcquirer, lease_is_free, pid_alive

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


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CheckpointStore]:
    async with open_store(request, tmp_path) as opened:
        yield opened


async def test_stores_implement_the_protocol(store: CheckpointStore) -> None:
    """Every store satisfies the runtime-checkable CheckpointStore protocol."""
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
    with pytest.raises(CheckpointSchemaError, match=r"schema version 99.*needs version 2"):
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


# -- group commit (SqliteCheckpointStore) --------------------------------------------------


class BatchLog:
    """Wraps a store's ``_apply_batch`` to record, per batch, which ops succeeded."""

    def __init__(self, store: SqliteCheckpointStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.batches: list[list[bool]] = []
        apply = store._apply_batch

        def logged(batch: list[Any]) -> None:
            apply(batch)
            self.batches.append([op.error is None for op in batch])

        monkeypatch.setattr(store, "_apply_batch", logged)


def fresh_rows(path: Path) -> dict[str, tuple[str, int, str | None]]:
    """``swap_id -> (state, revision, lease owner)`` read by a new connection."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT swap_id, state, revision, lease_owner FROM swaps").fetchall()
    finally:
        db.close()
    return {swap_id: (state, revision, owner) for swap_id, state, revision, owner in rows}


async def started_swaps(store: CheckpointStore, count: int) -> list[tuple[SwapRecord, Lease]]:
    records = [make_record(f"g{i}") for i in range(count)]
    await asyncio.gather(*(store.create(r) for r in records))
    leases = await asyncio.gather(
        *(store.acquire(r.swap_id, LeaseOwner.current(), ttl=TTL) for r in records)
    )
    return list(zip(records, leases, strict=True))


Doomed = tuple[tuple[SwapRecord, Lease], tuple[SwapRecord, Lease], tuple[SwapRecord, Lease]]


async def doomed_and_good(
    store: CheckpointStore, count: int
) -> tuple[Doomed, list[tuple[SwapRecord, Lease]]]:
    """``count`` started swaps: the first three to be saved stale, with a stolen lease and
    against a trigger (the caller adds it), and the rest to be saved normally."""
    swaps = await started_swaps(store, count)
    (_, lost_lease) = swaps[1]
    await store.release(lost_lease)
    thief = LeaseOwner("thief", 1, "elsewhere.invalid")
    await store.acquire(lost_lease.swap_id, thief, ttl=TTL)
    return (swaps[0], swaps[1], swaps[2]), swaps[3:]


async def test_concurrent_saves_are_grouped_and_durable_on_return(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent saves of many swaps share transactions, and each one is in the file (read
    by a fresh connection) as soon as its save returned."""
    path = tmp_path / "swaps.sqlite3"
    async with SqliteCheckpointStore(path) as store:
        swaps = await started_swaps(store, 40)
        log = BatchLog(store, monkeypatch)
        seen_on_return: list[tuple[str, int, str | None]] = []

        async def advance(record: SwapRecord, lease: Lease) -> None:
            for revision in (1, 2, 3):
                record = attrs.evolve(record, revision=revision, state=SwapState.AUTHENTICATED)
                lease = await store.save(record, lease, ttl=TTL)
                assert lease.revision == revision
                seen_on_return.append(fresh_rows(path)[record.swap_id])
                assert seen_on_return[-1][1] == revision

        await asyncio.gather(*(advance(r, lease) for r, lease in swaps))
        assert len(seen_on_return) == 120
        assert sum(len(b) for b in log.batches) == 120
        assert len(log.batches) < 120 / 4
        assert max(len(b) for b in log.batches) >= 20
    rows = fresh_rows(path)
    assert {rows[r.swap_id][:2] for r, _ in swaps} == {("AUTHENTICATED", 3)}


async def test_a_failing_write_fails_alone_in_its_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stale, unfenced, duplicate and SQL-failing writes in one batch raise for their own
    callers only; the others in the same transaction commit."""
    path = tmp_path / "swaps.sqlite3"
    async with SqliteCheckpointStore(path) as store:
        doomed, good = await doomed_and_good(store, 8)
        (stale_rec, stale_lease), (lost_rec, lost_lease), (boom_rec, boom_lease) = doomed
        store._db.execute(
            "CREATE TRIGGER boom BEFORE UPDATE OF record ON swaps WHEN NEW.swap_id = "
            f"'{boom_rec.swap_id}' BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
        )
        log = BatchLog(store, monkeypatch)
        outcomes = await asyncio.gather(
            *(store.save(attrs.evolve(r, revision=1), lease, ttl=TTL) for r, lease in good),
            store.save(attrs.evolve(stale_rec, revision=5), stale_lease, ttl=TTL),
            store.save(attrs.evolve(lost_rec, revision=1), lost_lease, ttl=TTL),
            store.save(attrs.evolve(boom_rec, revision=1), boom_lease, ttl=TTL),
            store.create(make_record("g0")),
            store.create(make_record("brand-new")),
            return_exceptions=True,
        )
        *saved, stale, lost, boom, duplicate, created = outcomes
        assert all(isinstance(lease, Lease) and lease.revision == 1 for lease in saved)
        assert isinstance(stale, CheckpointError) and "stale save" in str(stale)
        assert isinstance(lost, LeaseLostError)
        assert isinstance(boom, CheckpointError) and "disk on fire" in str(boom)
        assert isinstance(duplicate, CheckpointError) and "already exists" in str(duplicate)
        assert created is None
        assert any(not all(b) and any(b) for b in log.batches), log.batches
    rows = fresh_rows(path)
    assert {rows[r.swap_id][1] for r, _ in good} == {1}
    assert rows[stale_rec.swap_id][1] == rows[boom_rec.swap_id][1] == 0
    assert rows[lost_rec.swap_id] == ("CREATED", 0, "thief")
    assert rows["brand-new"][1] == 0


async def test_a_leader_cancelled_by_plain_asyncio_waits_for_its_batch(tmp_path: Path) -> None:
    """``task.cancel()`` outside any anyio scope (asyncio.timeout, wait_for) of the caller
    leading a batch: the batch still commits, and the caller sees its cancellation only
    once its write's outcome is known; the writes queued behind it commit too."""
    path = tmp_path / "swaps.sqlite3"
    async with SqliteCheckpointStore(path) as store:
        swaps = await started_swaps(store, 3)
        store._lock.acquire()  # the first batch waits inside its worker thread
        try:
            tasks = [
                asyncio.create_task(store.save(attrs.evolve(r, revision=1), lease, ttl=TTL))
                for r, lease in swaps
            ]
            await asyncio.sleep(0.05)
            tasks[0].cancel()
            await asyncio.sleep(0.05)
            assert not tasks[0].done()
        finally:
            store._lock.release()
        with pytest.raises(asyncio.CancelledError):
            await tasks[0]
        assert [(await t).revision for t in tasks[1:]] == [1, 1]
    rows = fresh_rows(path)
    assert {rows[r.swap_id][1] for r, _ in swaps} == {1}


async def test_cancelled_callers_leave_the_queue_consistent(tmp_path: Path) -> None:
    """A caller cancelled while its write is queued withdraws it; one cancelled while its
    write is being committed waits for the commit; the writes queued behind still commit."""
    path = tmp_path / "swaps.sqlite3"
    async with SqliteCheckpointStore(path) as store:
        (a, la), (b, lb), (c, lc) = await started_swaps(store, 3)
        done: list[str] = []

        async def save(record: SwapRecord, lease: Lease, scope: anyio.CancelScope) -> None:
            with scope:
                await store.save(attrs.evolve(record, revision=1), lease, ttl=TTL)
                done.append(record.swap_id)

        async def until(condition: Callable[[], bool]) -> None:
            for _ in range(5000):
                if condition():
                    return
                await anyio.sleep(0.001)
            pytest.fail("the store never reached the expected state")

        scopes = [anyio.CancelScope() for _ in range(3)]
        # While the test holds the lock, the first batch waits inside its worker thread.
        store._lock.acquire()
        async with anyio.create_task_group() as tg:
            try:
                tg.start_soon(save, a, la, scopes[0])
                await until(lambda: store._group.flushing)
                tg.start_soon(save, b, lb, scopes[1])
                tg.start_soon(save, c, lc, scopes[2])
                await until(lambda: store._group.queued == 2)
                scopes[0].cancel()  # a's write is in flight: it still commits
                scopes[2].cancel()  # c's write is queued: it is withdrawn
                await until(lambda: store._group.queued == 1)
            finally:
                store._lock.release()
        assert b.swap_id in done
        assert c.swap_id not in done
    rows = fresh_rows(path)
    assert (rows[a.swap_id][1], rows[b.swap_id][1], rows[c.swap_id][1]) == (1, 1, 0)


CRASH_CHILD = """
import asyncio, sys
import attrs
from decimal import Decimal
from kiiex_async.workflow import (
    LeaseOwner, SqliteCheckpointStore, SwapRecord, SwapRequest, SwapState, client_order_id_for,
)
from kiiex_async.workflow._record import utcnow

async def main(path, durability):
    async with SqliteCheckpointStore(path, durability=durability) as store:
        async def swap(i):
            now = utcnow()
            record = SwapRecord(
                swap_id=f"k{i}", request=SwapRequest("USDT", "COPM", Decimal("1")),
                client_order_id=client_order_id_for(f"k{i}"), created_at=now, updated_at=now,
            )
            await store.create(record)
            lease = await store.acquire(record.swap_id, LeaseOwner.current(), ttl=30)
            for revision in range(1, 100000):
                record = attrs.evolve(record, revision=revision, state=SwapState.AUTHENTICATED)
                lease = await store.save(record, lease, ttl=30)
                sys.stdout.write(f"SAVED {record.swap_id} {revision}\\n")
                sys.stdout.flush()
        await asyncio.gather(*(swap(i) for i in range(16)))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.slow
@pytest.mark.parametrize("durability", ["full", "normal"])
async def test_a_save_that_returned_survives_sigkill(tmp_path: Path, durability: str) -> None:
    """A process SIGKILLed while saving many swaps at once loses no save that returned."""
    path = tmp_path / "swaps.sqlite3"
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        CRASH_CHILD,
        str(path),
        durability,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    returned: dict[str, int] = {}

    def note(line: str) -> bool:
        if not line.startswith("SAVED"):
            return False
        _, swap_id, revision = line.split()
        returned[swap_id] = max(returned.get(swap_id, 0), int(revision))
        return True

    try:
        with anyio.fail_after(60):
            while sum(returned.values()) < 400:
                if not note((await child.stdout.readline()).decode()):
                    break
    finally:
        child.kill()
        out, err = await child.communicate()
    assert child.returncode == -signal.SIGKILL, err.decode()[-2000:]
    for line in out.decode().splitlines():
        note(line)
    rows = fresh_rows(path)
    assert len(returned) == 16
    for swap_id, revision in returned.items():
        assert rows[swap_id][1] >= revision, (swap_id, rows[swap_id], revision)


async def test_durability_is_full_unless_normal_is_asked_for(tmp_path: Path) -> None:
    """synchronous=FULL by default, NORMAL only on request; anything else is refused."""
    async with SqliteCheckpointStore(tmp_path / "a.sqlite3") as full:
        assert full._db.execute("PRAGMA synchronous").fetchone() == (2,)
    async with SqliteCheckpointStore(tmp_path / "b.sqlite3", durability="normal") as normal:
        assert normal._db.execute("PRAGMA synchronous").fetchone() == (1,)
    with pytest.raises(ConfigurationError, match="durability"):
        SqliteCheckpointStore(tmp_path / "c.sqlite3", durability="off")  # type: ignore[arg-type]


async def test_a_closed_store_refuses_calls(tmp_path: Path) -> None:
    """After aclose every call raises CheckpointError instead of touching a closed file."""
    store = SqliteCheckpointStore(tmp_path / "swaps.sqlite3")
    await store.aclose()
    with pytest.raises(CheckpointError, match="closed"):
        await store.create(make_record())
    with pytest.raises(CheckpointError, match="closed"):
        await store.get("swap-1")


# -- fewer calls: Lease.revision and acquire_record ------------------------------------------


async def test_leases_carry_the_stored_revision(store: CheckpointStore) -> None:
    """acquire tells the stored revision; save moves it; renew keeps it."""
    record = make_record()
    await store.create(record)
    lease = await store.acquire(record.swap_id, LeaseOwner.current(), ttl=TTL)
    assert lease.revision == 0
    lease = await store.save(attrs.evolve(record, revision=1), lease, ttl=TTL)
    assert lease.revision == 1
    assert (await store.renew(lease, ttl=TTL)).revision == 1
    await store.release(lease)
    assert (await store.acquire(record.swap_id, LeaseOwner.current(), ttl=TTL)).revision == 1


async def test_acquire_record_takes_the_lease_and_reads_the_record(store: CheckpointStore) -> None:
    """acquire_record = acquire + get in one call, with the same refusals as acquire."""
    assert isinstance(store, RecordAcquirer)
    record = make_record()
    await store.create(record)
    lease, got = await store.acquire_record(record.swap_id, LeaseOwner.current(), ttl=TTL)
    assert got == record
    assert lease.revision == 0
    with pytest.raises(SwapLockedError):
        await store.acquire_record(record.swap_id, LeaseOwner.current(), ttl=TTL)
    with pytest.raises(SwapNotFoundError):
        await store.acquire_record("nope", LeaseOwner.current(), ttl=TTL)


async def test_acquire_record_of_another_record_version_takes_nothing(tmp_path: Path) -> None:
    """A record of another version is refused by acquire_record before the lease is taken."""
    path = tmp_path / "swaps.sqlite3"
    async with SqliteCheckpointStore(path) as store:
        await store.create(make_record())
        store._db.execute("UPDATE swaps SET schema_version = 7")
        with pytest.raises(CheckpointSchemaError, match="record version 7"):
            await store.acquire_record("swap-1", LeaseOwner.current(), ttl=TTL)
    assert fresh_rows(path)["swap-1"][2] is None


class CallLog:
    """A plain CheckpointStore proxy (no acquire_record) counting the calls it forwards."""

    def __init__(self, inner: CheckpointStore) -> None:
        self.inner = inner
        self.calls: list[str] = []

    async def create(self, record: SwapRecord) -> None:
        """Counted create."""
        self.calls.append("create")
        await self.inner.create(record)

    async def get(self, swap_id: str) -> SwapRecord | None:
        """Counted get."""
        self.calls.append("get")
        return await self.inner.get(swap_id)

    async def list(self) -> list[SwapRecord]:
        """Counted list."""
        self.calls.append("list")
        return await self.inner.list()

    async def acquire(self, swap_id: str, owner: LeaseOwner, *, ttl: float) -> Lease:
        """Counted acquire."""
        self.calls.append("acquire")
        return await self.inner.acquire(swap_id, owner, ttl=ttl)

    async def renew(self, lease: Lease, *, ttl: float) -> Lease:
        """Counted renew."""
        self.calls.append("renew")
        return await self.inner.renew(lease, ttl=ttl)

    async def save(self, record: SwapRecord, lease: Lease, *, ttl: float) -> Lease:
        """Counted save."""
        self.calls.append("save")
        return await self.inner.save(record, lease, ttl=ttl)

    async def release(self, lease: Lease) -> None:
        """Counted release."""
        self.calls.append("release")
        await self.inner.release(lease)

    async def aclose(self) -> None:
        """Closes the wrapped store."""
        await self.inner.aclose()


class RecordCallLog(CallLog):
    """A counting proxy that also offers acquire_record."""

    async def acquire_record(
        self, swap_id: str, owner: LeaseOwner, *, ttl: float
    ) -> tuple[Lease, SwapRecord]:
        """Counted acquire_record."""
        self.calls.append("acquire_record")
        assert isinstance(self.inner, RecordAcquirer)
        return await self.inner.acquire_record(swap_id, owner, ttl=ttl)


async def test_a_run_reads_back_nothing_it_already_holds(tmp_path: Path) -> None:
    """run() = create, acquire, one save per commit, release: no get; a run of an existing
    swap id reads it once; a resume through acquire_record reads it in the same call."""
    async with (
        Simulator(sim_config()) as sim,
        make_client(sim) as client,
        SqliteCheckpointStore(tmp_path / "swaps.sqlite3") as sqlite,
    ):
        store = CallLog(sqlite)
        result = await SwapWorkflow(client, store).run(full_request(), swap_id="calls")
        assert result.state is SwapState.COMPLETED
        calls = store.calls
        assert calls[:2] == ["create", "acquire"]
        assert calls[-1] == "release"
        assert set(calls[2:-1]) == {"save"}
        assert len(calls) - 3 >= len(result.timeline) - 1
        store.calls = []
        again = await SwapWorkflow(client, store).run(full_request(), swap_id="calls")
        assert again == result
        assert store.calls == ["create", "get", "acquire", "release"]
        store = RecordCallLog(sqlite)
        assert await SwapWorkflow(client, store).resume("calls") == result
        assert store.calls == ["acquire_record", "release"]
