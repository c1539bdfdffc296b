"""SwapWorker in one process: it runs the queued swaps of its exchange exactly once, leaves
other exchanges' swaps alone, parks its swaps at a safe boundary when stopped, and a run
fenced off by a takeover stops without another write."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import anyio
import attrs
import pytest
from pg_support import STORE_KINDS, open_store
from workflow_support import (
    FAST,
    assert_ledger,
    balances,
    full_request,
    make_client,
    sim_config,
    swap_orders,
)

from kiiex_async.errors import ConfigurationError
from kiiex_async.sim import Simulator
from kiiex_async.workflow import (
    CheckpointStore,
    LeaseLostError,
    LeaseOwner,
    MemoryCheckpointStore,
    SwapQueue,
    SwapRecord,
    SwapResult,
    SwapState,
    SwapWorker,
    SwapWorkflow,
)


@pytest.fixture(params=STORE_KINDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[CheckpointStore]:
    async with open_store(request, tmp_path) as opened:
        yield opened


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(sim_config()) as simulator:
        yield simulator


async def until(check: Callable[[], Awaitable[bool]]) -> None:
    """Wait (at most 30 s) until ``check()`` is true."""
    with anyio.fail_after(30):
        while True:
            if await check():
                return
            await anyio.sleep(0.02)


async def until_all_terminal(store: CheckpointStore, count: int) -> list[SwapRecord]:
    with anyio.fail_after(60):
        while True:
            records = await store.list()
            if len(records) == count and all(r.state.is_terminal for r in records):
                return records
            await anyio.sleep(0.05)


async def test_a_worker_runs_every_queued_swap_once(sim: Simulator, store: CheckpointStore) -> None:
    """Twelve submitted swaps are all completed by a worker of four slots, one order and
    one ticket of each kind each, balances exact; then stop() returns."""
    initial = balances(sim)
    async with make_client(sim) as client:
        workflow = SwapWorkflow(client, store, lease_ttl=5)
        ids = [await workflow.submit(full_request()) for _ in range(12)]
        worker = SwapWorker(workflow, concurrency=4, poll_interval=0.05)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)
            records = await until_all_terminal(store, 12)
            worker.stop()
    assert sorted(r.swap_id for r in records) == sorted(ids)
    assert {r.state for r in records} == {SwapState.COMPLETED}
    assert sorted(r.swap_id for r in worker.finished) == sorted(ids)
    assert_ledger(sim, initial, [SwapResult.from_record(r) for r in records])


async def test_a_worker_never_claims_another_exchanges_swap(
    sim: Simulator, store: CheckpointStore
) -> None:
    """A swap submitted for another exchange stays queued, untouched, while the worker
    runs its own exchange's swap."""
    async with make_client(sim) as client:
        other = SwapWorkflow(client, store, exchange="https://elsewhere.invalid/ap")
        foreign = await other.submit(full_request())
        workflow = SwapWorkflow(client, store, lease_ttl=5)
        mine = await workflow.submit(full_request())
        worker = SwapWorker(workflow, concurrency=2, poll_interval=0.05)
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker.run)

            async def done() -> bool:
                record = await store.get(mine)
                return record is not None and record.state.is_terminal

            await until(done)
            worker.stop()
        untouched = await store.get(foreign)
    assert untouched is not None and untouched.state is SwapState.CREATED
    assert untouched.revision == 0
    assert [r.swap_id for r in worker.finished] == [mine]


async def test_stop_parks_running_swaps_and_another_worker_finishes_them(
    store: CheckpointStore,
) -> None:
    """A stopped worker leaves its swaps at a safe boundary (no write in flight) with their
    leases given back; a second worker claims them at once and completes them."""
    async with Simulator(sim_config(withdraw_step_seconds=0.5)) as sim:
        initial = balances(sim)
        async with make_client(sim) as client:
            workflow = SwapWorkflow(client, store, lease_ttl=5)
            ids = [await workflow.submit(full_request()) for _ in range(3)]
            first = SwapWorker(workflow, concurrency=3, poll_interval=0.05)
            async with anyio.create_task_group() as tg:
                tg.start_soon(first.run)

                async def polling() -> bool:
                    return {r.state for r in await store.list()} == {SwapState.WITHDRAW_PENDING}

                await until(polling)
                first.stop()
            parked = await store.list()
            assert first.finished == []
            assert {r.state for r in parked} == {SwapState.WITHDRAW_PENDING}
            second = SwapWorker(workflow, concurrency=3, poll_interval=0.05)
            async with anyio.create_task_group() as tg:
                tg.start_soon(second.run)
                records = await until_all_terminal(store, 3)
                second.stop()
        assert {r.state for r in records} == {SwapState.COMPLETED}
        assert sorted(r.swap_id for r in second.finished) == sorted(ids)
        assert_ledger(sim, initial, [SwapResult.from_record(r) for r in records])


async def test_a_run_paused_past_its_lease_sends_nothing_more(store: CheckpointStore) -> None:
    """A run that froze (the whole process, heartbeat included) past its lease between its
    order intent and the send, while another runner took the swap over, raises
    LeaseLostError at the fence: its order is never sent; the new holder reconciles and
    completes the swap with exactly one order."""
    ttl = 0.5
    async with Simulator(sim_config()) as sim:
        initial = balances(sim)

        async def freeze_then_lose(label: str, record: SwapRecord) -> None:
            if label == "send:SendOrder":
                # The process is paused (blocking on purpose): nothing of it runs.
                time.sleep(ttl * 1.5)  # noqa: ASYNC251
                thief = LeaseOwner("thief", 1, "elsewhere.invalid")
                await store.acquire(record.swap_id, thief, ttl=0)

        async with make_client(sim) as client:
            frozen = SwapWorkflow(client, store, on_checkpoint=freeze_then_lose, lease_ttl=ttl)
            swap_id = await frozen.create(full_request())
            with pytest.raises(LeaseLostError, match="taken over"):
                await frozen.resume(swap_id)
            assert swap_orders(sim, swap_id) == []
            record = await store.get(swap_id)
            assert record is not None and record.state is SwapState.ORDER_INTENT
            result = await SwapWorkflow(client, store).resume(swap_id)
        assert result.state is SwapState.COMPLETED, result.reason
        assert_ledger(sim, initial, [result])


async def test_submit_needs_a_queue_and_the_worker_checks_its_options(sim: Simulator) -> None:
    """submit() on a store that is not a queue, and a worker with bad options, raise
    ConfigurationError before anything is stored or claimed."""

    class NoQueue(MemoryCheckpointStore):
        submit = None  # type: ignore[assignment]

    async with make_client(sim) as client:
        plain = SwapWorkflow(client, MemoryCheckpointStore())
        assert isinstance(plain.store, SwapQueue)
        with pytest.raises(ConfigurationError, match="concurrency"):
            SwapWorker(plain, concurrency=0)
        with pytest.raises(ConfigurationError, match="poll_interval"):
            SwapWorker(plain, poll_interval=float("nan"))
        store = NoQueue()
        with pytest.raises(ConfigurationError, match="not a swap queue"):
            await SwapWorkflow(client, store).submit(full_request(timeouts=attrs.evolve(FAST)))
        assert await store.list() == []
