"""Crash safety: a swap stopped at every checkpoint boundary and inside every
side-effecting call, in-process and as a SIGKILLed subprocess, then resumed.  The verdict
comes from the simulator's ledger: one order, at most one ticket of each kind, balances
that add up to the last unit."""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
from workflow_support import FAST, assert_ledger, balances, full_request, make_client, sim_config

from kiiex_async.sim import Fault, Simulator
from kiiex_async.workflow import (
    SqliteCheckpointStore,
    SwapRecord,
    SwapRequest,
    SwapResult,
    SwapState,
    SwapWorkflow,
)

#: The ``dialect`` fixture: each simulator test runs once per dialect.
pytest_plugins = ["dialect_support"]

CHILD = Path(__file__).with_name("swap_child.py")

#: Every checkpoint boundary of a nine-step swap (deposit, order, withdrawal), in order.
#: ``send:`` = intent committed, call not sent; ``sent:`` = call applied by the exchange,
#: its answer not yet committed (the "crash in the middle of the call" case).
LABELS = [
    "start:CREATED",
    "commit:AUTHENTICATED",
    "commit:DEPOSIT_INTENT",
    "send:CreateDepositTicket",
    "sent:CreateDepositTicket",
    "commit:DEPOSIT_PENDING",
    "commit:FUNDED",
    "commit:QUOTED",
    "commit:ORDER_INTENT",
    "send:SendOrder",
    "sent:SendOrder",
    "commit:ORDER_PLACED",
    "commit:ORDER_DONE",
    "commit:TRADES_READ",
    "commit:POSITIONS_CONFIRMED",
    "commit:WITHDRAW_INTENT",
    "send:CreateWithdrawTicket",
    "sent:CreateWithdrawTicket",
    "commit:WITHDRAW_PENDING",
    "commit:COMPLETED",
]


class Crash(BaseException):
    """Stands for the process dying: not an Exception, so nothing may swallow it."""


@pytest.fixture
async def sim(dialect: str) -> AsyncIterator[Simulator]:
    async with Simulator(sim_config(dialect=dialect)) as simulator:
        yield simulator


async def test_labels_cover_every_boundary_of_a_full_swap(sim: Simulator) -> None:
    """The crash points below are exactly the runner's checkpoint boundaries."""
    seen: list[str] = []

    def record(label: str, _record: SwapRecord) -> None:
        seen.append(label)

    async with make_client(sim) as client, SqliteCheckpointStore(":memory:") as store:
        result = await SwapWorkflow(client, store, on_checkpoint=record).run(full_request())
    assert result.state is SwapState.COMPLETED
    assert seen == LABELS


@pytest.mark.parametrize("label", LABELS)
async def test_crash_in_process_at_every_boundary_then_resume(
    sim: Simulator, tmp_path: Path, label: str
) -> None:
    """A crash (BaseException) at the boundary, then resume with a fresh client: the swap
    completes and the exchange saw each write once."""
    initial = balances(sim)
    path = tmp_path / "swaps.sqlite3"

    def crash(seen: str, _record: SwapRecord) -> None:
        if seen == label:
            raise Crash(seen)

    async with SqliteCheckpointStore(path) as store:
        async with make_client(sim) as client:
            with pytest.raises(Crash):
                await SwapWorkflow(client, store, on_checkpoint=crash).run(
                    full_request(), swap_id="crash"
                )
        async with make_client(sim) as client:
            result = await SwapWorkflow(client, store).resume("crash")
    assert result.state is SwapState.COMPLETED, result.reason
    assert result.request == full_request()  # the resumed swap still asks for all nine steps
    assert_ledger(sim, initial, [result])


async def test_a_crash_at_every_boundary_of_one_swap_in_a_row(
    sim: Simulator, tmp_path: Path
) -> None:
    """One swap crashed at each boundary in turn (each resume dies at the next one) still
    ends COMPLETED with one order, one deposit and one withdrawal."""
    initial = balances(sim)
    crashes = 0
    async with SqliteCheckpointStore(tmp_path / "swaps.sqlite3") as store:
        for label in LABELS[1:]:

            def crash(seen: str, _record: SwapRecord, label: str = label) -> None:
                if seen == label:
                    raise Crash(seen)

            async with make_client(sim) as client:
                workflow = SwapWorkflow(client, store, on_checkpoint=crash)
                try:
                    if await store.get("chain") is None:
                        await workflow.run(full_request(), swap_id="chain")
                    else:
                        await workflow.resume("chain")
                except Crash:
                    crashes += 1
        async with make_client(sim) as client:
            result = await SwapWorkflow(client, store).resume("chain")
    assert crashes == len(LABELS) - 1
    assert result.state is SwapState.COMPLETED, result.reason
    assert result.request == full_request()
    assert_ledger(sim, initial, [result])


async def _child(sim: Simulator, store: Path, *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        str(CHILD),
        sim.url,
        str(store),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _resume_all(sim: Simulator, store_path: Path, swap_ids: list[str]) -> list[SwapResult]:
    async with SqliteCheckpointStore(store_path) as store, make_client(sim) as client:
        workflow = SwapWorkflow(client, store)
        return list(await asyncio.gather(*(workflow.resume(s) for s in swap_ids)))


@pytest.mark.slow
async def test_sigkill_subprocess_at_every_boundary_then_resume(
    sim: Simulator, tmp_path: Path
) -> None:
    """Real processes SIGKILLed at every boundary (all at once, one SQLite file): each
    swap is resumed at once (dead-pid lease takeover) and the ledger adds up."""
    initial = balances(sim)
    store_path = tmp_path / "swaps.sqlite3"
    SqliteCheckpointStore(store_path)._db.close()
    swap_ids = [f"kill-{i}" for i in range(len(LABELS))]
    specs = [f"{swap_id}={label}" for swap_id, label in zip(swap_ids, LABELS, strict=True)]
    child = await _child(sim, store_path, *specs)
    out, err = await child.communicate()
    assert child.returncode == 0, err.decode()[-2000:]
    exits = dict(line.split()[1:] for line in out.decode().splitlines() if line.startswith("EXIT"))
    assert exits == {swap_id: str(-signal.SIGKILL) for swap_id in swap_ids}, out.decode()[-3000:]
    results = await _resume_all(sim, store_path, swap_ids)
    assert [r.state for r in results] == [SwapState.COMPLETED] * len(LABELS), [
        r.reason for r in results
    ]
    assert [_as_requested(r) for r in results] == [full_request()] * len(LABELS)
    assert_ledger(sim, initial, results)


def _as_requested(result: SwapResult) -> SwapRequest:
    """The request a child swap recorded, with the test's timeouts (the child's grace
    differs): equal to ``full_request()`` when nothing of it was lost on the way."""
    return attrs.evolve(result.request, timeouts=FAST)


async def _kill_when(child: asyncio.subprocess.Process, line: str, delay: float) -> None:
    assert child.stdout is not None
    while True:
        raw = await child.stdout.readline()
        assert raw, "the child exited before the expected label"
        if raw.decode().strip() == line:
            break
    await asyncio.sleep(delay)
    child.kill()
    await child.communicate()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("method", ["SendOrder", "CreateWithdrawTicket"])
async def test_sigkill_from_outside_while_the_write_is_in_flight(
    tmp_path: Path, method: str, dialect: str
) -> None:
    """The child is killed while its write sits in the exchange's latency; the exchange
    applies it afterwards; the resumed swap finds it instead of sending another."""
    async with Simulator(sim_config(dialect=dialect)) as sim:
        initial = balances(sim)
        sim.faults.inject(Fault(method, "latency", times=1, delay=1.0))
        store_path = tmp_path / "swaps.sqlite3"
        child = await _child(sim, store_path, "in-flight", "--grace", "3")
        await _kill_when(child, f"LABEL send:{method}", 0.3)
        (result,) = await _resume_all(sim, store_path, ["in-flight"])
        assert result.state is SwapState.COMPLETED, result.reason
        assert _as_requested(result) == full_request()
        assert "reconciled" in " ".join(entry.note for entry in result.timeline)
        assert_ledger(sim, initial, [result])


@pytest.mark.slow
@pytest.mark.parametrize("method", ["SendOrder", "CreateWithdrawTicket", "CreateDepositTicket"])
async def test_sigkill_while_reconciling_a_dropped_answer(
    tmp_path: Path, method: str, dialect: str
) -> None:
    """The exchange applied the write and dropped the answer; the child dies while
    reconciling; the resumed swap settles it with the exchange, no second write."""
    async with Simulator(sim_config(dialect=dialect)) as sim:
        initial = balances(sim)
        sim.faults.inject(Fault(method, "drop_after", times=1))
        store_path = tmp_path / "swaps.sqlite3"
        child = await _child(sim, store_path, "dropped=reconcile")
        _out, err = await child.communicate()
        assert child.returncode == -signal.SIGKILL, err.decode()[-2000:]
        (result,) = await _resume_all(sim, store_path, ["dropped"])
        assert result.state is SwapState.COMPLETED, result.reason
        assert _as_requested(result) == full_request()
        assert_ledger(sim, initial, [result])


async def test_resume_of_a_finished_swap_changes_nothing(sim: Simulator, tmp_path: Path) -> None:
    """Resuming a COMPLETED swap returns it as is, without calling the exchange's writes."""
    initial = balances(sim)
    async with SqliteCheckpointStore(tmp_path / "s.sqlite3") as store, make_client(sim) as client:
        workflow = SwapWorkflow(client, store)
        done = await workflow.run(full_request(timeouts=attrs.evolve(FAST)), swap_id="done")
        again = await workflow.resume("done")
    assert again == done
    assert_ledger(sim, initial, [done])
