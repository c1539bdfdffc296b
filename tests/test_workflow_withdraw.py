"""No money stranded by a late failure: a withdrawal is checked before the order is sent,
and one that still fails after the trade ends WITHDRAW_FAILED, retryable once fixed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import attrs
import pytest
from workflow_support import balances, full_request, make_client, sim_config, swap_orders

from kiiex_async.errors import BelowMinimumError, InvalidInputError
from kiiex_async.sim import Simulator
from kiiex_async.sim._config import DEFAULT_PRODUCTS
from kiiex_async.workflow import (
    MemoryCheckpointStore,
    SwapState,
    SwapStep,
    SwapWorkflow,
    WithdrawSpec,
)
from kiiex_async.workflow._planning import missing_template_fields

D = Decimal


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(sim_config()) as simulator:
        yield simulator


@pytest.fixture
async def workflow(sim: Simulator) -> AsyncIterator[SwapWorkflow]:
    async with make_client(sim) as client:
        yield SwapWorkflow(client, MemoryCheckpointStore())


def successful_tickets(sim: Simulator) -> list[int]:
    """Numbers of the simulator's fully processed withdraw tickets."""
    return [t.ticket_number for t in sim.exchange.withdraw_tickets.values() if t.status == 5]


def test_missing_template_fields_is_case_insensitive_and_skips_optional_ones() -> None:
    """Every template field but Comment must be given non-blank, whatever its casing."""
    fields = ("ExternalAddress", "Comment", "Memo")
    assert missing_template_fields(fields, {"externaladdress": "x", "Memo": "1"}) == []
    assert missing_template_fields(fields, {"ExternalAddress": " "}) == ["ExternalAddress", "Memo"]


async def test_a_required_template_field_missing_is_refused_before_the_order(
    sim: Simulator, workflow: SwapWorkflow
) -> None:
    """A withdrawal without the template's ExternalAddress is refused before anything is
    sent: no order, no ticket, the swap FAILED at authenticate."""
    request = full_request(deposit=None, withdrawal=WithdrawSpec("Standard", {}))
    with pytest.raises(InvalidInputError, match="ExternalAddress=") as info:
        await workflow.run(request)
    assert "nothing was sent" in str(info.value)
    assert [o for o in sim.exchange.orders.values() if not o.is_market_maker] == []
    assert sim.exchange.withdraw_tickets == {}


async def test_an_amount_eaten_by_the_withdrawal_fee_is_refused_before_the_order() -> None:
    """When the withdrawal fee would leave nothing of what the swap receives, the swap is
    refused before the order (BelowMinimumError), not after the trade."""
    products = [
        attrs.evolve(p, withdraw_fee=D(10**7)) if p.symbol == "COPM" else p
        for p in DEFAULT_PRODUCTS
    ]
    async with Simulator(sim_config(products=products)) as costly, make_client(costly) as client:
        workflow = SwapWorkflow(client, MemoryCheckpointStore())
        with pytest.raises(BelowMinimumError, match="fee"):
            await workflow.run(full_request(deposit=None))
        assert [o for o in costly.exchange.orders.values() if not o.is_market_maker] == []


async def test_a_failed_ticket_ends_withdraw_failed_and_a_retry_completes(
    sim: Simulator, workflow: SwapWorkflow
) -> None:
    """A withdraw ticket that fails after the trade leaves WITHDRAW_FAILED with the COPM in
    the account; resume(withdraw_fields=...) withdraws it: one order, one successful ticket."""
    initial = balances(sim)
    sim.exchange.withdraw_outcomes.append("Failed")
    result = await workflow.run(full_request(deposit=None))
    assert result.state is SwapState.WITHDRAW_FAILED, result.reason
    assert result.failed_step is SwapStep.POLL_WITHDRAW
    assert not result.ok
    assert f"the {result.net_received} COPM received stay in the account" in (result.reason or "")
    assert balances(sim)["COPM"] == initial["COPM"] + result.net_received
    assert successful_tickets(sim) == []

    done = await workflow.resume(result.swap_id, withdraw_fields={"ExternalAddress": "0xnew"})
    assert done.state is SwapState.COMPLETED, done.reason
    assert len(swap_orders(sim, done.swap_id)) == 1
    assert [o.account_id for o in sim.exchange.orders.values() if not o.is_market_maker] == [1]
    assert successful_tickets(sim) == [done.withdrawal_ticket]
    ticket = sim.exchange.withdraw_tickets[done.withdrawal_ticket]  # type: ignore[index]
    assert "0xnew" in ticket.template_form
    assert done.request.withdrawal is not None
    assert dict(done.request.withdrawal.form) == {"ExternalAddress": "0xnew"}
    assert balances(sim)["COPM"] == initial["COPM"] + result.net_received - ticket.amount


async def test_a_retry_with_a_bad_form_is_refused_and_keeps_the_swap(
    sim: Simulator, workflow: SwapWorkflow
) -> None:
    """Retry fields are checked against the template first: an unknown field raises
    InvalidInputError and the swap stays WITHDRAW_FAILED with no new ticket."""
    sim.exchange.withdraw_outcomes.append("Rejected")
    result = await workflow.run(full_request(deposit=None))
    assert result.state is SwapState.WITHDRAW_FAILED
    tickets = len(sim.exchange.withdraw_tickets)
    with pytest.raises(InvalidInputError, match="no field"):
        await workflow.resume(result.swap_id, withdraw_fields={"Adress": "0x1"})
    after = await workflow.get(result.swap_id)
    assert after is not None
    assert after.state is SwapState.WITHDRAW_FAILED
    assert len(sim.exchange.withdraw_tickets) == tickets
    plain = await workflow.resume(result.swap_id)
    assert plain.state is SwapState.WITHDRAW_FAILED
    reopened = await workflow.resume(result.swap_id, reopen=True)
    assert reopened.state is SwapState.COMPLETED, reopened.reason
    assert len(successful_tickets(sim)) == 1


async def test_withdraw_fields_for_another_state_are_refused(workflow: SwapWorkflow) -> None:
    """withdraw_fields only retries a WITHDRAW_FAILED swap; a COMPLETED one is refused."""
    result = await workflow.run(full_request(deposit=None))
    assert result.state is SwapState.COMPLETED
    with pytest.raises(InvalidInputError, match="only to a WITHDRAW_FAILED swap"):
        await workflow.resume(result.swap_id, withdraw_fields={"ExternalAddress": "x"})
