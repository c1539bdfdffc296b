"""Shared helpers of the workflow tests: fast settings and ledger assertions that read the
simulator's own books (never the workflow's word)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from kiiex_async import Credentials
from kiiex_async.client import KiiexClient
from kiiex_async.sim import SimConfig, Simulator
from kiiex_async.workflow import (
    DepositSpec,
    StepTimeouts,
    SwapRequest,
    SwapResult,
    SwapState,
    WithdrawSpec,
    client_order_id_for,
    swap_marker,
)

ZERO = Decimal(0)
SYMBOLS = ("USDT", "USDC", "COPM", "COP")

#: Short limits and polls so that the suite stays fast; the reconcile grace stays long
#: enough for an in-process simulator to have applied any request it received.
FAST = StepTimeouts(
    step=5.0,
    deposit=5.0,
    order=5.0,
    withdrawal=5.0,
    deposit_poll=0.01,
    order_poll=0.01,
    withdrawal_poll=0.01,
    max_poll=0.05,
    reconcile_grace=0.15,
)


def sim_config(**overrides: Any) -> SimConfig:
    """A still market (no drift) whose tickets settle at once."""
    settings: dict[str, Any] = {
        "seed": 7,
        "deposit_step_seconds": 0.0,
        "withdraw_step_seconds": 0.0,
        "drift_bps": Decimal(0),
    }
    settings.update(overrides)
    return SimConfig(**settings)


def make_client(sim: Simulator, **overrides: Any) -> KiiexClient:
    """A client of the simulator's demo user, no rate limit, short timeouts."""
    options: dict[str, Any] = {"rate_limit": None, "timeout": 2.0}
    options.update(overrides)
    return KiiexClient(sim.url, credentials=Credentials(**sim.credentials_kwargs), **options)


def full_request(**overrides: Any) -> SwapRequest:
    """USDT -> COPM with a deposit first and a withdrawal at the end (all nine steps)."""
    settings: dict[str, Any] = {
        "from_asset": "USDT",
        "to_asset": "COPM",
        "amount": Decimal("100"),
        "deposit": DepositSpec(Decimal("50")),
        "withdrawal": WithdrawSpec("Standard", {"ExternalAddress": "0xfeedbeef"}),
        "timeouts": FAST,
    }
    settings.update(overrides)
    return SwapRequest(**settings)


def balances(sim: Simulator, account_id: int = 1) -> dict[str, Decimal]:
    """Total balance (``Amount``) of every demo product."""
    return {s: sim.exchange.balance(account_id, s)[0] for s in SYMBOLS}


def swap_orders(sim: Simulator, swap_id: str) -> list[Any]:
    """The simulator's orders carrying the swap's ClientOrderId."""
    cid = client_order_id_for(swap_id)
    return [o for o in sim.exchange.orders.values() if o.client_order_id == cid]


def _comment(text: str) -> object:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data.get("Comment") if isinstance(data, dict) else None


def swap_withdrawals(sim: Simulator, swap_id: str) -> list[Any]:
    """The simulator's withdraw tickets whose form's Comment is the swap's marker."""
    marker = swap_marker(swap_id)
    tickets = sim.exchange.withdraw_tickets.values()
    return [t for t in tickets if _comment(t.template_form) == marker]


def swap_deposits(sim: Simulator, swap_id: str) -> list[Any]:
    """The simulator's deposit tickets whose info's Comment is the swap's marker."""
    marker = swap_marker(swap_id)
    return [t for t in sim.exchange.deposit_tickets.values() if _comment(t.deposit_info) == marker]


def _symbol(sim: Simulator, product_id: int) -> str:
    return sim.exchange.products[product_id].symbol


def _has_comment(form: Mapping[str, str]) -> bool:
    """The user's form has its own Comment, so the swap adds no marker to it."""
    return any(key.lower() == "comment" and value for key, value in form.items())


def _check_ticket(
    kind: str,
    result: SwapResult,
    marked_tickets: list[Any],
    all_tickets: Mapping[int, Any],
    number: int | None,
    *,
    asked: bool,
    marked: bool,
) -> None:
    """The swap's ticket of one kind is the one it reports; a COMPLETED swap has exactly
    the ticket its request asked for, fully processed (status 5), and no other."""
    where = f"{result.swap_id}: {kind} ticket"
    if number is not None and marked:
        assert [t.ticket_number for t in marked_tickets] == [number], where
    if result.state is not SwapState.COMPLETED:
        return
    if not asked:
        assert number is None and marked_tickets == [], f"{where} that was not asked for"
        return
    assert number is not None, f"{where} asked for, none reported"
    assert number in all_tickets, f"{where} {number} unknown to the exchange"
    assert all_tickets[number].status == 5, f"{where} {number} not fully processed"
    if marked:
        assert len(marked_tickets) == 1, f"{where}: {len(marked_tickets)} carry the marker"


def assert_ledger(
    sim: Simulator,
    initial: Mapping[str, Decimal],
    results: Iterable[SwapResult],
    *,
    account_id: int = 1,
) -> None:
    """The exchange's books agree with the swaps, to the last unit.

    For every swap: at most one order with its ClientOrderId (exactly one once it got an
    order id), at most one deposit and one withdraw ticket, each the one the swap reports;
    a COMPLETED swap has exactly one order, and exactly one fully processed ticket of each
    kind its request asked for (none it did not ask for); the swap's reported fills match
    the exchange's trades.  For every product: final = initial + credited deposits - spent
    + received - trading fees - withdrawn (amount + fee of processed withdrawals).
    """
    expected = dict(initial)
    for result in results:
        completed = result.state is SwapState.COMPLETED
        orders = swap_orders(sim, result.swap_id)
        assert len(orders) <= 1, f"{result.swap_id}: {len(orders)} orders"
        if result.order_id is not None or completed:
            assert [o.order_id for o in orders] == [result.order_id], result.swap_id
        deposits = swap_deposits(sim, result.swap_id)
        withdrawals = swap_withdrawals(sim, result.swap_id)
        assert len(deposits) <= 1, f"{result.swap_id}: {len(deposits)} deposit tickets"
        assert len(withdrawals) <= 1, f"{result.swap_id}: {len(withdrawals)} withdraw tickets"
        deposit, withdrawal = result.request.deposit, result.request.withdrawal
        _check_ticket(
            "deposit",
            result,
            deposits,
            sim.exchange.deposit_tickets,
            result.deposit_ticket,
            asked=deposit is not None,
            marked=deposit is not None and not _has_comment(deposit.deposit_info),
        )
        _check_ticket(
            "withdraw",
            result,
            withdrawals,
            sim.exchange.withdraw_tickets,
            result.withdrawal_ticket,
            asked=withdrawal is not None,
            marked=withdrawal is not None and not _has_comment(withdrawal.form),
        )
        for ticket in deposits:
            if ticket.status == 5:
                symbol = _symbol(sim, ticket.product_id)
                expected[symbol] = expected.get(symbol, ZERO) + ticket.amount
        for ticket in withdrawals:
            if ticket.status == 5:
                symbol = _symbol(sim, ticket.product_id)
                expected[symbol] = expected.get(symbol, ZERO) - ticket.amount - ticket.fee
        if orders:
            order = orders[0]
            trades = [t for t in sim.exchange.trades if t.order_id == order.order_id]
            spec = sim.exchange.markets[order.instrument_id].spec
            base, quote = _symbol(sim, spec.base), _symbol(sim, spec.quote)
            qty = sum((t.quantity for t in trades), ZERO)
            value = sum((t.value for t in trades), ZERO)
            fees: dict[str, Decimal] = {}
            for t in trades:
                symbol = _symbol(sim, t.fee_product_id)
                fees[symbol] = fees.get(symbol, ZERO) + t.fee
            if order.side == 0:
                expected[base] = expected.get(base, ZERO) + qty
                expected[quote] = expected.get(quote, ZERO) - value
            else:
                expected[base] = expected.get(base, ZERO) - qty
                expected[quote] = expected.get(quote, ZERO) + value
            for symbol, fee in fees.items():
                expected[symbol] = expected.get(symbol, ZERO) - fee
            if result.trade_ids or completed:
                sells = order.side == 1
                assert result.spent == (qty if sells else value)
                assert result.received == (value if sells else qty)
                assert dict(result.fees) == {k: v for k, v in fees.items() if v}
                # An exchange that lists no trades leaves the swap only the order's word.
                listed = "no trades" not in result.derived.get("received", "")
                assert set(result.trade_ids) == ({t.trade_id for t in trades} if listed else set())
    final = balances(sim, account_id)
    for symbol in SYMBOLS:
        assert final[symbol] == expected.get(symbol, ZERO), (
            f"{symbol}: exchange has {final[symbol]}, the swaps account for "
            f"{expected.get(symbol, ZERO)}"
        )
