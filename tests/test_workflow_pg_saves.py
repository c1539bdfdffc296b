"""``PostgresCheckpointStore``'s group-committed saves, against a real PostgreSQL.

Concurrent checkpoint saves of many swaps share one transaction (seen in the database: the
rows they wrote share a transaction id), each caller still returns only once its save is
committed, a save refused by the server fails alone, and a caller cancelled while its
save is in flight leaves it committed, never in doubt.
"""

from __future__ import annotations

import asyncio
from typing import Any

import attrs
import psycopg
import pytest
from test_workflow_store import TTL, doomed_and_good, started_swaps

from kiiex_async.workflow import (
    CheckpointError,
    Lease,
    LeaseLostError,
    PostgresCheckpointStore,
    SwapRecord,
    SwapState,
)


async def rows(dsn: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """What a fresh connection reads (only committed data)."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cur = await conn.execute(sql, params)
        return await cur.fetchall()


async def test_concurrent_saves_share_transactions_and_are_committed_on_return(
    postgres_dsn: str,
) -> None:
    """40 swaps saving 3 revisions each at once: far fewer transactions than saves, and
    each save is visible to another connection as soon as it returned."""
    async with PostgresCheckpointStore(postgres_dsn) as store:
        swaps = await started_swaps(store, 40)
        seen: list[int] = []

        async def advance(record: SwapRecord, lease: Lease) -> None:
            for revision in (1, 2, 3):
                record = attrs.evolve(record, revision=revision, state=SwapState.AUTHENTICATED)
                lease = await store.save(record, lease, ttl=TTL)
                assert lease.revision == revision
                (found,) = await rows(
                    postgres_dsn,
                    "SELECT revision FROM kiiex_swaps WHERE swap_id = %s",
                    record.swap_id,
                )
                seen.append(found[0])
                assert found[0] == revision

        await asyncio.gather(*(advance(r, lease) for r, lease in swaps))
    assert len(seen) == 120
    writes = await rows(postgres_dsn, "SELECT xmin::text::bigint FROM kiiex_swap_writes")
    transactions = {xid for (xid,) in writes}
    assert len(writes) == 120
    assert len(transactions) < 120 / 4, len(transactions)


async def test_a_refused_or_unfenced_save_fails_alone_in_its_batch(postgres_dsn: str) -> None:
    """A stale revision, a lost lease and a save the server refuses (a trigger raising)
    fail for their own callers only; the other saves of the same batch commit."""
    async with PostgresCheckpointStore(postgres_dsn) as store:
        doomed, good = await doomed_and_good(store, 8)
        (stale_rec, stale_lease), (lost_rec, lost_lease), (boom_rec, boom_lease) = doomed
        async with await psycopg.AsyncConnection.connect(postgres_dsn, autocommit=True) as conn:
            await conn.execute(
                "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                "RAISE EXCEPTION 'disk on fire'; END $$"
            )
            await conn.execute(
                "CREATE TRIGGER boom BEFORE UPDATE OF record ON kiiex_swaps FOR EACH ROW "
                f"WHEN (NEW.swap_id = '{boom_rec.swap_id}') EXECUTE FUNCTION boom()"
            )
        outcomes = await asyncio.gather(
            *(store.save(attrs.evolve(r, revision=1), lease, ttl=TTL) for r, lease in good),
            store.save(attrs.evolve(stale_rec, revision=5), stale_lease, ttl=TTL),
            store.save(attrs.evolve(lost_rec, revision=1), lost_lease, ttl=TTL),
            store.save(attrs.evolve(boom_rec, revision=1), boom_lease, ttl=TTL),
            return_exceptions=True,
        )
    *saved, stale, lost, boom = outcomes
    assert all(isinstance(lease, Lease) and lease.revision == 1 for lease in saved), saved
    assert isinstance(stale, CheckpointError) and "stale save" in str(stale)
    assert isinstance(lost, LeaseLostError)
    assert isinstance(boom, CheckpointError) and "disk on fire" in str(boom)
    assert boom.swap_id == boom_rec.swap_id
    found = dict(await rows(postgres_dsn, "SELECT swap_id, revision FROM kiiex_swaps"))
    assert {found[r.swap_id] for r, _ in good} == {1}
    assert found[stale_rec.swap_id] == found[boom_rec.swap_id] == found[lost_rec.swap_id] == 0


async def test_a_caller_cancelled_with_its_save_in_flight_leaves_it_committed(
    postgres_dsn: str,
) -> None:
    """While another connection holds the row, the save's batch waits in the database; the
    caller is cancelled, the row is released, and the save commits all the same (the
    caller sees the cancellation only once the outcome is known)."""
    async with PostgresCheckpointStore(postgres_dsn) as store:
        ((record, lease),) = await started_swaps(store, 1)
        async with await psycopg.AsyncConnection.connect(postgres_dsn) as blocker:
            await blocker.execute(
                "SELECT 1 FROM kiiex_swaps WHERE swap_id = %s FOR UPDATE", (record.swap_id,)
            )
            task = asyncio.create_task(store.save(attrs.evolve(record, revision=1), lease, ttl=TTL))
            for _ in range(500):  # until the UPDATE waits for the row lock
                waiting = await rows(
                    postgres_dsn,
                    "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
                )
                if waiting[0][0]:
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the save never reached the database")
            task.cancel()
            await asyncio.sleep(0.05)
            assert not task.done()  # it waits for the outcome of its write
            await blocker.rollback()
        with pytest.raises(asyncio.CancelledError):
            await task
    found = await rows(
        postgres_dsn, "SELECT revision FROM kiiex_swaps WHERE swap_id = %s", record.swap_id
    )
    assert found == [(1,)]
