"""A fault storm: many swaps at once against an exchange that fails in every way it can
(seeded), checked against the exchange's ledger and the checkpoint store."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from pathlib import Path

import anyio
import attrs
import pytest
from workflow_support import (
    FAST,
    assert_ledger,
    balances,
    full_request,
    make_client,
    sim_config,
    swap_orders,
)

from kiiex_async.sim import Fault, Simulator
from kiiex_async.workflow import (
    SqliteCheckpointStore,
    SwapInterruptedError,
    SwapResult,
    SwapState,
    SwapWorkflow,
)

SWAPS = 30


def storm() -> list[Fault]:
    """Every kind of trouble, on every method, a few percent of the time each."""
    return [
        Fault("*", "error", probability=0.04, status=503),
        Fault("*", "error_after", probability=0.03, status=502),
        Fault("*", "rate_limit", probability=0.04, retry_after=0.05),
        Fault("*", "latency", probability=0.10, delay=0.05),
        Fault("*", "drop_before", probability=0.03),
        Fault("*", "drop_after", probability=0.03),
        Fault("*", "malformed_after", probability=0.02),
        Fault("*", "expire_session", probability=0.01),
    ]


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 23])
async def test_fault_storm_every_swap_terminal_nothing_duplicated_nothing_lost(
    tmp_path: Path, seed: int
) -> None:
    """30 concurrent swaps (deposit, order, withdrawal) through 5xx, 429, latency, drops
    before and after apply, truncated answers and session expiry: each ends in a terminal
    state (resuming interrupted ones), no order or ticket is duplicated, balances add up
    and the store holds every swap exactly as the results say."""
    async with Simulator(sim_config(seed=seed)) as sim:
        initial = balances(sim)
        sim.faults.extend(storm())
        timeouts = attrs.evolve(FAST, step=3.0, reconcile_grace=0.3)
        requests = {
            f"storm-{seed}-{i}": full_request(
                amount=Decimal(50 + i),
                deposit=None if i % 3 else full_request().deposit,
                timeouts=timeouts,
            )
            for i in range(SWAPS)
        }
        results: dict[str, SwapResult] = {}
        interruptions = Counter[str]()
        path = tmp_path / "swaps.sqlite3"
        async with SqliteCheckpointStore(path) as store, make_client(sim, timeout=1.0) as client:
            workflow = SwapWorkflow(client, store)

            async def one(swap_id: str) -> None:
                for _attempt in range(10):
                    try:
                        if await store.get(swap_id) is None:
                            results[swap_id] = await workflow.run(
                                requests[swap_id], swap_id=swap_id
                            )
                        else:
                            results[swap_id] = await workflow.resume(swap_id)
                        return
                    except SwapInterruptedError as exc:
                        interruptions[type(exc.__cause__).__name__] += 1

            with anyio.fail_after(40):
                async with anyio.create_task_group() as group:
                    for swap_id in requests:
                        group.start_soon(one, swap_id)
            sim.faults.clear()
            stored = {r.swap_id: r for r in await store.list()}

        assert set(results) == set(requests), "a swap never reached a terminal state"
        states = Counter(r.state for r in results.values())
        assert all(state.is_terminal for state in states), states
        assert states[SwapState.COMPLETED] >= SWAPS * 0.8, (states, interruptions)
        assert_ledger(sim, initial, results.values())
        for swap_id, result in results.items():
            record = stored[swap_id]
            assert record.state is result.state
            assert (record.order.order_id if record.order else None) == result.order_id
            if result.state is SwapState.COMPLETED:
                assert len(swap_orders(sim, swap_id)) == 1
                assert record.withdrawal is not None
                assert record.withdrawal.ticket_number == result.withdrawal_ticket
