"""The workflow with an account stream: polls wake on pushed events, REST decides, and
polling stays the fallback (issue 13, item 4)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import attrs
import pytest
from workflow_support import FAST, assert_ledger, balances, full_request, make_client, sim_config

from kiiex_async.errors import ConfigurationError
from kiiex_async.sim import Simulator
from kiiex_async.workflow import MemoryCheckpointStore, SwapState, SwapWorkflow

#: Polls so slow that only a pushed event can finish the withdrawal within the guard.
SLOW_POLLS = attrs.evolve(FAST, withdrawal=120.0, withdrawal_poll=60.0, max_poll=60.0)
#: A guard against a hang, far below one slow poll interval.
GUARD = 30.0


async def test_withdrawal_wakes_on_the_pushed_ticket_event() -> None:
    """With `account_stream`, a withdrawal polled every 60 s completes as soon as the
    exchange pushes the ticket's update: well inside one poll interval, one ticket."""
    async with Simulator(sim_config(withdraw_step_seconds=0.2)) as sim:
        initial = balances(sim)
        async with make_client(sim) as client, client.stream() as stream:
            workflow = SwapWorkflow(client, MemoryCheckpointStore(), account_stream=stream)
            request = full_request(timeouts=SLOW_POLLS)
            async with asyncio.timeout(GUARD):
                result = await workflow.run(request)
        assert result.state is SwapState.COMPLETED, result.reason
        assert len(sim.exchange.withdraw_tickets) == 1
        assert_ledger(sim, initial, [result])


async def test_without_a_stream_the_same_swap_still_waits_for_its_poll() -> None:
    """The control: without a stream the same withdrawal is still pending when the guard
    of the pushed case has long passed (the poll interval, not an event, decides)."""
    async with (
        Simulator(sim_config(withdraw_step_seconds=0.2)) as sim,
        make_client(sim) as client,
    ):
        workflow = SwapWorkflow(client, MemoryCheckpointStore())
        request = full_request(timeouts=SLOW_POLLS)
        swap_id = await workflow.create(request)
        task = asyncio.create_task(workflow.resume(swap_id))
        # Long enough for the ticket to be fully processed on the exchange (5 steps of
        # 0.2 s), far shorter than one 60 s poll interval.
        for _ in range(200):
            await asyncio.sleep(0.05)
            record = await workflow.store.get(swap_id)
            assert record is not None
            if record.state is SwapState.WITHDRAW_PENDING:
                break
        await asyncio.sleep(2.0)
        record = await workflow.store.get(swap_id)
        assert record is not None and record.state is SwapState.WITHDRAW_PENDING
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_closed_stream_falls_back_to_polling() -> None:
    """A stream that is already closed never blocks the swap: the polls run at their
    usual intervals and the swap completes with one order and one ticket."""
    async with Simulator(sim_config()) as sim:
        initial = balances(sim)
        async with make_client(sim) as client:
            async with client.stream() as stream:
                pass
            workflow = SwapWorkflow(client, MemoryCheckpointStore(), account_stream=stream)
            async with asyncio.timeout(GUARD):
                result = await workflow.run(full_request())
        assert result.state is SwapState.COMPLETED, result.reason
        assert_ledger(sim, initial, [result])


def test_account_stream_must_be_a_stream() -> None:
    """Anything but a stream is refused when the workflow is built."""
    with pytest.raises(ConfigurationError, match="account_stream"):
        SwapWorkflow(
            object(),  # type: ignore[arg-type]
            MemoryCheckpointStore(),
            account_stream=Decimal(1),  # type: ignore[arg-type]
        )
