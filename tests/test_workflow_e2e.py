"""End-to-end swaps against the simulator on 127.0.0.1 with the real client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

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
    swap_withdrawals,
)

from kiiex_async import AiohttpTransport, Credentials
from kiiex_async.client import KiiexClient
from kiiex_async.errors import (
    BelowMinimumError,
    InsufficientFundsError,
    InvalidInputError,
    NotFoundError,
    WorkflowError,
)
from kiiex_async.models import AccountTransaction, DepositStatus, OrderState, Trade, WithdrawStatus
from kiiex_async.sim import DemoUser, Fault, Simulator
from kiiex_async.sim._exchange import OrderRequest
from kiiex_async.testing import MockTransport, Request, Response
from kiiex_async.workflow import (
    AmountSide,
    DepositSpec,
    LeaseOwner,
    MemoryCheckpointStore,
    ProgressEvent,
    ProgressKind,
    SqliteCheckpointStore,
    SwapInterruptedError,
    SwapLockedError,
    SwapNotFoundError,
    SwapRecord,
    SwapRequest,
    SwapState,
    SwapStep,
    SwapWorkflow,
    WithdrawSpec,
    client_order_id_for,
)

#: The ``dialect`` fixture: each simulator test runs once per dialect.
pytest_plugins = ["dialect_support"]

D = Decimal


@pytest.fixture
async def sim(dialect: str) -> AsyncIterator[Simulator]:
    async with Simulator(sim_config(dialect=dialect)) as simulator:
        yield simulator


@pytest.fixture
async def store() -> MemoryCheckpointStore:
    return MemoryCheckpointStore()


@pytest.fixture
async def workflow(sim: Simulator, store: MemoryCheckpointStore) -> AsyncIterator[SwapWorkflow]:
    async with make_client(sim) as client:
        yield SwapWorkflow(client, store)


async def test_all_nine_steps_complete_and_the_ledger_adds_up(
    sim: Simulator, workflow: SwapWorkflow
) -> None:
    """Deposit, sell, fills, positions and withdrawal: COMPLETED, numbers match the books."""
    initial = balances(sim)
    result = await workflow.run(full_request())
    assert result.state is SwapState.COMPLETED, result.reason
    assert result.ok
    assert result.spent == D("100")
    assert result.received > 0
    assert result.fees["COPM"] > 0
    assert result.net_received == result.received - result.fees["COPM"]
    assert result.average_price == result.received / result.spent
    assert result.client_order_id == client_order_id_for(result.swap_id)
    assert result.order_state is OrderState.FULLY_EXECUTED
    assert result.deposit_status is DepositStatus.FULLY_PROCESSED
    assert result.withdrawal_status is WithdrawStatus.FULLY_PROCESSED
    assert result.withdrawal_amount == result.net_received
    assert result.quote is not None and result.quote.expected_receive == result.received
    states = [entry.state for entry in result.timeline]
    assert states == [
        SwapState.CREATED,
        SwapState.AUTHENTICATED,
        SwapState.DEPOSIT_INTENT,
        SwapState.DEPOSIT_PENDING,
        SwapState.FUNDED,
        SwapState.QUOTED,
        SwapState.ORDER_INTENT,
        SwapState.ORDER_PLACED,
        SwapState.ORDER_DONE,
        SwapState.TRADES_READ,
        SwapState.POSITIONS_CONFIRMED,
        SwapState.WITHDRAW_INTENT,
        SwapState.WITHDRAW_PENDING,
        SwapState.COMPLETED,
    ]
    assert all(entry.at.tzinfo is not None for entry in result.timeline)
    assert "COMPLETED" in result.summary()
    assert_ledger(sim, initial, [result])
    assert balances(sim)["COPM"] == 0


@pytest.mark.parametrize(
    ("from_asset", "to_asset", "amount", "side", "slippage"),
    [
        ("USDT", "COPM", "250", AmountSide.SPEND, None),  # sell base, spend exact
        ("USDT", "COPM", "400000", AmountSide.RECEIVE, None),  # sell base, sized from L2
        ("USDC", "USDT", "75.5", AmountSide.SPEND, "0.01"),  # sell base, protected
        ("USDT", "USDC", "80", AmountSide.SPEND, None),  # buy base by Value
        ("USDT", "USDC", "80", AmountSide.SPEND, "0.01"),  # buy base, protected, spend <= X
        ("USDT", "USDC", "42.5", AmountSide.RECEIVE, "0.005"),  # buy base, exact quantity
    ],
)
async def test_both_orientations_and_both_amount_sides(
    sim: Simulator,
    workflow: SwapWorkflow,
    from_asset: str,
    to_asset: str,
    amount: str,
    side: AmountSide,
    slippage: str | None,
) -> None:
    """Buying or selling the base, spend- or receive-exact, market or protected: each
    completes with the documented meaning of the amount."""
    initial = balances(sim)
    request = SwapRequest(
        from_asset,
        to_asset,
        D(amount),
        amount_side=side,
        max_slippage=None if slippage is None else D(slippage),
        timeouts=FAST,
    )
    result = await workflow.run(request)
    assert result.state is SwapState.COMPLETED, result.reason
    order = swap_orders(sim, result.swap_id)[0]
    if slippage is None:
        assert order.order_type == 1  # market
    else:
        assert (order.order_type, order.time_in_force) == (2, 3)  # limit + IOC
    if side is AmountSide.SPEND:
        assert result.spent <= D(amount)
        if order.side == 1:
            assert result.spent == D(amount)  # selling the base: the quantity is exact
    else:
        if order.side == 0:
            assert result.received == D(amount)  # buying the base: the quantity is exact
        else:
            assert result.received >= D(amount)  # sized from the book, rounded up
    assert_ledger(sim, initial, [result])


async def test_protected_order_never_fills_beyond_the_limit(dialect: str) -> None:
    """When the book moves after the rate step, the Limit + IOC order fills only within the
    slippage limit; the swap completes, partially filled, with what it got."""
    config = sim_config(
        dialect=dialect,
        users=(DemoUser(), DemoUser(user_id=2, account_id=2, username="whale", api_key="k2")),
    )
    async with Simulator(config) as whale_sim, make_client(whale_sim) as client:
        initial = balances(whale_sim)

        def eat_bids(label: str, record: SwapRecord) -> None:
            if label == "send:SendOrder":
                # Someone else sells into the bids just before our order arrives.
                whale_sim.exchange.send_order(
                    OrderRequest(instrument_id=1, side=1, order_type=1, quantity=D("5000")),
                    account_id=2,
                    user_id=2,
                    now=whale_sim.now(),
                )

        workflow = SwapWorkflow(client, MemoryCheckpointStore(), on_checkpoint=eat_bids)
        request = SwapRequest("USDT", "COPM", D("3000"), max_slippage=D("0.0015"), timeouts=FAST)
        result = await workflow.run(request)
        assert result.state is SwapState.COMPLETED, result.reason
        assert result.partially_filled
        assert result.order_state is OrderState.CANCELED
        assert result.quote is not None and result.quote.limit_price is not None
        order = swap_orders(whale_sim, result.swap_id)[0]
        fills = [t for t in whale_sim.exchange.trades if t.order_id == order.order_id]
        assert fills and all(t.price >= result.quote.limit_price for t in fills)
        assert result.spent < D("3000")
        assert_ledger(whale_sim, initial, [result])


async def test_validation_errors_are_raised_before_any_side_effect(
    sim: Simulator, workflow: SwapWorkflow, store: MemoryCheckpointStore
) -> None:
    """Unknown asset, below minimum, insufficient balance, slippage beyond the limit: typed
    errors from run(), the swap recorded FAILED, and nothing sent to the exchange."""
    cases = [
        (SwapRequest("USDT", "DOGE", D("10"), timeouts=FAST), InvalidInputError, "unknown asset"),
        (SwapRequest("USDT", "COPM", D("0.5"), timeouts=FAST), BelowMinimumError, "minimum"),
        (SwapRequest("USDT", "COPM", D("20000"), timeouts=FAST), InsufficientFundsError, "20000"),
        (
            SwapRequest("USDT", "COPM", D("9000"), max_slippage=D("0.0001"), timeouts=FAST),
            InvalidInputError,
            "slippage",
        ),
        (
            SwapRequest("COP", "COPM", D("10"), timeouts=FAST),
            InvalidInputError,
            "no instrument",
        ),
        (
            full_request(withdrawal=WithdrawSpec("Standard", {}, amount=D("10000000"))),
            InsufficientFundsError,
            "cannot withdraw 10000000 COPM",
        ),
        (
            full_request(withdrawal=WithdrawSpec("Wire", {"ExternalAddress": "x"})),
            InvalidInputError,
            "no withdraw template 'Wire'.*offers Standard",
        ),
        (
            full_request(withdrawal=WithdrawSpec("Standard", {"ExternalAdress": "x"})),
            InvalidInputError,
            "no field.*ExternalAdress",
        ),
    ]
    for request, error, message in cases:
        with pytest.raises(error, match=message):
            await workflow.run(request)
    records = await store.list()
    assert [r.state for r in records] == [SwapState.FAILED] * len(cases)
    assert all(r.failed_step is SwapStep.AUTHENTICATE for r in records)
    assert sim.exchange.orders == {} or all(
        o.client_order_id == 0 for o in sim.exchange.orders.values()
    )
    assert sim.exchange.deposit_tickets == {}
    assert sim.exchange.withdraw_tickets == {}


def test_request_validation_is_pure() -> None:
    """Same asset twice, amount <= 0, floats, bad slippage: InvalidInputError at once."""
    with pytest.raises(InvalidInputError, match="itself"):
        SwapRequest("usdt", "USDT", D("1"))
    for amount in (D("0"), D("-1"), D("NaN"), 1.5, "abc"):
        with pytest.raises(InvalidInputError):
            SwapRequest("USDT", "COPM", amount)  # type: ignore[arg-type]  # floats on purpose
    with pytest.raises(InvalidInputError, match="max_slippage"):
        SwapRequest("USDT", "COPM", D("1"), max_slippage=D("1.5"))
    with pytest.raises(InvalidInputError):
        WithdrawSpec("")
    with pytest.raises(InvalidInputError):
        DepositSpec(D("0"))
    request = SwapRequest(" usdt ", "copm", "12.50", amount_side=AmountSide.RECEIVE)
    assert (request.from_asset, request.to_asset, request.amount) == ("USDT", "COPM", D("12.50"))
    assert request.amount_asset == "COPM"
    assert request.describe() == "receive 12.50 COPM for USDT"


async def test_insufficient_balance_with_a_deposit_counts_the_deposit(
    sim: Simulator, workflow: SwapWorkflow
) -> None:
    """Balance + deposit must cover the order before the deposit ticket is created."""
    request = full_request(amount=D("10040"), deposit=DepositSpec(D("30")), withdrawal=None)
    with pytest.raises(InsufficientFundsError):
        await workflow.run(request)
    assert sim.exchange.deposit_tickets == {}
    result = await workflow.run(full_request(amount=D("10040"), deposit=DepositSpec(D("50"))))
    assert result.state is SwapState.COMPLETED, result.reason


async def test_progress_stream_reports_states_statuses_and_the_result(
    workflow: SwapWorkflow,
) -> None:
    """stream() yields a STATE event per committed state, live STATUS while polling, and a
    final FINISHED event carrying the result; on_progress sees the same events."""
    seen: list[ProgressEvent] = []
    workflow.on_progress = seen.append
    async with workflow.stream(full_request()) as run:
        events = [event async for event in run]
    assert run.result.state is SwapState.COMPLETED
    assert events == seen
    kinds = [e.kind for e in events]
    assert kinds[-1] is ProgressKind.FINISHED
    assert events[-1].result == run.result
    assert kinds.count(ProgressKind.STATE) == len(run.result.timeline) - 1
    statuses = [e for e in events if e.kind is ProgressKind.STATUS]
    assert {e.data.get("order_state") for e in statuses} >= {"FULLY_EXECUTED"}
    assert {e.data.get("ticket_status") for e in statuses} >= {"FULLY_PROCESSED"}
    assert all(e.swap_id == run.result.swap_id for e in events)
    assert "[5/9 poll_order]" in str(next(e for e in events if e.data.get("order_state")))


async def test_progress_stream_raises_a_validation_error(workflow: SwapWorkflow) -> None:
    """A request refused before any side effect surfaces from the iteration."""

    async def consume() -> None:
        async with workflow.stream(full_request(amount=D("12000"), deposit=None)) as run:
            async for _event in run:
                pass

    with pytest.raises(InsufficientFundsError):
        await consume()


async def test_a_broken_progress_callback_does_not_break_the_swap(
    workflow: SwapWorkflow, caplog: pytest.LogCaptureFixture
) -> None:
    """Exceptions from on_progress are logged and ignored; the swap completes."""

    def broken(event: ProgressEvent) -> None:
        raise RuntimeError("display crashed")

    result = await workflow.run(full_request(withdrawal=None), on_progress=broken)
    assert result.state is SwapState.COMPLETED
    assert "progress callback failed" in caplog.text


@pytest.mark.parametrize(
    ("method", "kind"),
    [
        ("SendOrder", "drop_after"),
        ("SendOrder", "error_after"),
        ("SendOrder", "malformed_after"),
        ("SendOrder", "drop_before"),
        ("SendOrder", "error"),
        ("CreateWithdrawTicket", "drop_after"),
        ("CreateWithdrawTicket", "error_after"),
        ("CreateWithdrawTicket", "drop_before"),
        ("CreateDepositTicket", "drop_after"),
        ("CreateDepositTicket", "drop_before"),
        ("SendOrder", "in_process_after"),  # errorcode 107 "Operation In Process"
        ("SendOrder", "in_process"),
        ("CreateWithdrawTicket", "in_process_after"),
    ],
)
async def test_unknown_write_outcomes_are_reconciled_not_retried(
    sim: Simulator, workflow: SwapWorkflow, method: str, kind: str
) -> None:
    """A lost answer after (or before) the exchange applied a write is settled by asking
    the exchange: exactly one order / ticket results, and the timeline says so."""
    initial = balances(sim)
    sim.faults.inject(Fault(method, kind, times=1))
    result = await workflow.run(full_request())
    assert result.state is SwapState.COMPLETED, result.reason
    notes = " | ".join(entry.note for entry in result.timeline)
    if kind == "in_process_after" and method == "CreateWithdrawTicket":
        # 107 in the generic envelope reads as "accepted" (notbank's rule) or as unknown:
        # either way the ticket is adopted, never sent twice (checked below).
        assert "withdraw ticket" in notes
    elif kind.endswith("_after"):
        assert "reconciled" in notes
    else:
        assert "never reached the exchange" in notes
    assert_ledger(sim, initial, [result])
    assert len(swap_orders(sim, result.swap_id)) == 1
    assert len(swap_withdrawals(sim, result.swap_id)) == 1


async def test_duplicate_orders_with_the_client_order_id_need_an_operator(
    sim: Simulator, workflow: SwapWorkflow
) -> None:
    """Two orders carrying the swap's ClientOrderId: NEEDS_OPERATOR, nothing more sent."""
    swap_id = "dup-orders"
    cid = client_order_id_for(swap_id)

    async def intruder(label: str, record: SwapRecord) -> None:
        if label == "send:SendOrder":
            sim.exchange.send_order(
                OrderRequest(
                    instrument_id=1, side=1, order_type=1, quantity=D("1"), client_order_id=cid
                ),
                account_id=1,
                user_id=1,
                now=sim.now(),
            )

    workflow.on_checkpoint = intruder
    sim.faults.inject(Fault("SendOrder", "drop_after", times=1))
    result = await workflow.run(full_request(), swap_id=swap_id)
    assert result.state is SwapState.NEEDS_OPERATOR
    assert result.failed_step is SwapStep.ORDER
    assert "2 orders" in (result.reason or "")
    assert len(swap_orders(sim, swap_id)) == 2
    assert sim.exchange.withdraw_tickets == {}


async def test_ambiguous_withdraw_tickets_without_marker_need_an_operator(
    sim: Simulator, workflow: SwapWorkflow
) -> None:
    """With the user's own Comment (no marker) and two identical new tickets after a lost
    answer, the swap stops NEEDS_OPERATOR instead of guessing."""

    async def twin(label: str, record: SwapRecord) -> None:
        if label == "send:CreateWithdrawTicket":
            assert record.withdrawal is not None
            sim.exchange.create_withdraw_ticket(
                account_id=1,
                user_id=1,
                product_id=3,
                amount=record.withdrawal.amount,
                template_type="Standard",
                template_form='{"Comment":"payout 42","ExternalAddress":"0xfeedbeef"}',
                now=sim.now(),
            )

    workflow.on_checkpoint = twin
    sim.faults.inject(Fault("CreateWithdrawTicket", "drop_after", times=1))
    spec = WithdrawSpec(
        "Standard", {"ExternalAddress": "0xfeedbeef", "Comment": "payout 42"}, amount=D("1000")
    )
    result = await workflow.run(full_request(withdrawal=spec, deposit=None))
    assert result.state is SwapState.NEEDS_OPERATOR, result.reason
    assert result.failed_step is SwapStep.WITHDRAW
    assert "2 withdraw tickets" in (result.reason or "")
    assert len(sim.exchange.withdraw_tickets) == 2


async def test_withdrawal_without_marker_is_found_by_amount_and_time(
    sim: Simulator, workflow: SwapWorkflow
) -> None:
    """With the user's own Comment, a lost answer is matched by product, amount, template
    and time window: one ticket, adopted."""
    sim.faults.inject(Fault("CreateWithdrawTicket", "drop_after", times=1))
    spec = WithdrawSpec("Standard", {"ExternalAddress": "0xfeedbeef", "Comment": "payout 43"})
    result = await workflow.run(full_request(withdrawal=spec))
    assert result.state is SwapState.COMPLETED, result.reason
    assert len(sim.exchange.withdraw_tickets) == 1
    assert "reconciled" in result.timeline[-2].note


async def test_reads_answered_operation_in_process_are_retried(
    sim: Simulator, workflow: SwapWorkflow
) -> None:
    """Errorcode 107 on the reads of steps 5 to 7 only delays the swap: it completes."""
    initial = balances(sim)
    for method in ("GetOrderStatus", "GetTradesHistory", "GetAccountPositions"):
        sim.faults.inject(Fault(method, "in_process", times=2))
    result = await workflow.run(full_request())
    assert result.state is SwapState.COMPLETED, result.reason
    assert sum(1 for _, kind in sim.faults.fired if kind == "in_process") == 6
    assert_ledger(sim, initial, [result])


@pytest.mark.parametrize("dialect", ["apex"])  # the guide dialect opens no session
async def test_session_expiry_mid_swap_is_survived(sim: Simulator, workflow: SwapWorkflow) -> None:
    """Sessions expiring before the order, while polling and before the withdrawal are
    re-established by the client; the swap completes with one order."""
    initial = balances(sim)
    expired: list[str] = []

    def expire(label: str, record: SwapRecord) -> None:
        if label in ("commit:QUOTED", "commit:ORDER_PLACED", "commit:POSITIONS_CONFIRMED"):
            assert sim.expire_sessions() >= 1
            expired.append(label)

    workflow.on_checkpoint = expire
    sim.faults.inject(Fault("GetWithdrawTicket", "expire_session", times=1))
    result = await workflow.run(full_request())
    assert result.state is SwapState.COMPLETED, result.reason
    assert len(expired) == 3
    assert_ledger(sim, initial, [result])


@pytest.mark.parametrize("dialect", ["guide"])
async def test_guide_swap_signs_every_call_and_says_what_it_derived(
    sim: Simulator, workflow: SwapWorkflow
) -> None:
    """Guide dialect: no session is ever opened, and the result says the quote side came
    from quantity × price and the fees from the ledger, which match the books."""
    initial = balances(sim)
    result = await workflow.run(full_request())
    assert result.state is SwapState.COMPLETED, result.reason
    assert len(sim.sessions) == 0
    assert set(result.derived) == {"received", "fees"}
    assert "GetAccountTransactions" in result.derived["fees"]
    order = swap_orders(sim, result.swap_id)[0]
    fills = [t for t in sim.exchange.trades if t.order_id == order.order_id]
    assert result.fees == {"COPM": sum(t.fee for t in fills)}
    assert result.received == sum(t.value for t in fills)
    assert "fees derived: from the account's ledger" in result.summary()
    assert_ledger(sim, initial, [result])


class _NoLedgerClient(KiiexClient):
    """An exchange that answers only what the guide documents: no GetAccountTransactions."""

    async def get_account_transactions(self, **kwargs: Any) -> list[AccountTransaction]:
        raise NotFoundError("Resource Not Found", method="GetAccountTransactions", errorcode=104)


class _ShortLedgerClient(KiiexClient):
    """An exchange whose ledger answers but does not (yet) show the order's trades."""

    async def get_account_transactions(self, **kwargs: Any) -> list[AccountTransaction]:
        entries = await super().get_account_transactions(**kwargs)
        return [e for e in entries if e.reference_type != "Trade"]


@pytest.mark.parametrize("dialect", ["guide"])
@pytest.mark.parametrize("client_class", [_NoLedgerClient, _ShortLedgerClient])
async def test_without_a_ledger_the_fees_come_from_the_balance_movement(
    sim: Simulator, client_class: type[KiiexClient]
) -> None:
    """No ledger call, or a ledger without the order's trades: the fees are what the
    balances moved less than the trades explain."""
    initial = balances(sim)
    async with client_class(sim.url, credentials=Credentials(**sim.credentials_kwargs)) as c:
        result = await SwapWorkflow(c, MemoryCheckpointStore()).run(full_request())
    assert result.state is SwapState.COMPLETED, result.reason
    assert "balance movement" in result.derived["fees"]
    order = swap_orders(sim, result.swap_id)[0]
    fills = [t for t in sim.exchange.trades if t.order_id == order.order_id]
    assert result.fees == {"COPM": sum(t.fee for t in fills)}
    assert_ledger(sim, initial, [result])


class _NoTradesClient(KiiexClient):
    """An exchange that lists no trades at all (only the order says what happened)."""

    async def get_trades_history(self, **kwargs: Any) -> list[Trade]:
        await super().get_trades_history(**kwargs)
        return []


@pytest.mark.parametrize("dialect", ["guide"])
async def test_no_trades_listed_the_order_gives_the_amounts(sim: Simulator) -> None:
    """No trades by the step limit: spent/received from QuantityExecuted × AvgPrice, fees
    from the balance movement; the withdrawal sends exactly what arrived."""
    initial = balances(sim)
    client = _NoTradesClient(sim.url, credentials=Credentials(**sim.credentials_kwargs))
    async with client:
        request = full_request(timeouts=attrs.evolve(FAST, step=0.2))
        result = await SwapWorkflow(client, MemoryCheckpointStore()).run(request)
    assert result.state is SwapState.COMPLETED, result.reason
    assert result.trade_ids == ()
    assert "QuantityExecuted × AvgPrice" in result.derived["received"]
    order = swap_orders(sim, result.swap_id)[0]
    assert result.received == order.quantity_executed * order.avg_price
    fills = [t for t in sim.exchange.trades if t.order_id == order.order_id]
    assert result.fees == {"COPM": sum(t.fee for t in fills)}
    assert result.withdrawal_amount == result.net_received
    assert "trades not listed" in result.summary()
    assert_ledger(sim, initial, [result])


@pytest.mark.parametrize("dialect", ["guide"])
async def test_fees_are_not_guessed_when_other_activity_moved_the_balance(
    sim: Simulator,
) -> None:
    """A credit landing between the trade and step 7: the fees stay unstated (not a
    negative fee) and the result says why."""

    def deposit(label: str, record: SwapRecord) -> None:
        if label == "commit:TRADES_READ":
            sim.exchange.create_deposit_ticket(
                account_id=1, user_id=1, product_id=3, amount=D(1000), deposit_info="{}",
                now=sim.now(),
            )  # fmt: skip

    async with _NoLedgerClient(sim.url, credentials=Credentials(**sim.credentials_kwargs)) as c:
        workflow = SwapWorkflow(c, MemoryCheckpointStore(), on_checkpoint=deposit)
        result = await workflow.run(full_request(withdrawal=None))
    assert result.state is SwapState.COMPLETED, result.reason
    assert result.fees == {}
    assert "other activity" in result.derived["fees"]


@pytest.mark.parametrize("dialect", ["guide"])
async def test_unknown_fees_never_withdraw_other_funds(sim: Simulator) -> None:
    """The same stray credit with "withdraw everything received": the swap stops for an
    operator at the withdrawal (fees unknown) instead of withdrawing the gross amount, and
    no withdraw ticket is created."""

    def deposit(label: str, record: SwapRecord) -> None:
        if label == "commit:TRADES_READ":
            sim.exchange.create_deposit_ticket(
                account_id=1, user_id=1, product_id=3, amount=D(1000), deposit_info="{}",
                now=sim.now(),
            )  # fmt: skip

    async with _NoLedgerClient(sim.url, credentials=Credentials(**sim.credentials_kwargs)) as c:
        workflow = SwapWorkflow(c, MemoryCheckpointStore(), on_checkpoint=deposit)
        result = await workflow.run(full_request())
    assert result.state is SwapState.NEEDS_OPERATOR, result.state
    assert result.reason is not None and "fees are unknown" in result.reason
    assert swap_withdrawals(sim, result.swap_id) == []


async def test_cancellation_leaves_a_consistent_checkpoint_and_resume_completes(
    sim: Simulator, store: MemoryCheckpointStore
) -> None:
    """Ctrl-C (cancellation) while polling the order: the checkpoint holds the order id;
    a fresh client resumes and completes without a second order."""
    initial = balances(sim)
    swap_id = "cancelled"
    async with make_client(sim) as client:
        with anyio.CancelScope() as scope:

            def cancel(label: str, record: SwapRecord) -> None:
                if label == "commit:ORDER_PLACED":
                    scope.cancel()

            await SwapWorkflow(client, store, on_checkpoint=cancel).run(
                full_request(), swap_id=swap_id
            )
        assert scope.cancelled_caught
    record = await store.get(swap_id)
    assert record is not None and record.state is SwapState.ORDER_PLACED
    async with make_client(sim) as client:
        result = await SwapWorkflow(client, store).resume(swap_id)
    assert result.state is SwapState.COMPLETED, result.reason
    assert_ledger(sim, initial, [result])


async def test_cancel_while_send_order_is_in_flight_then_resume(
    sim: Simulator, store: MemoryCheckpointStore
) -> None:
    """Cancelled while SendOrder is in flight (the exchange applies it after we left): the
    resumed swap's grace re-check finds the late order instead of sending another."""
    initial = balances(sim)
    swap_id = "in-flight"
    sim.faults.inject(Fault("SendOrder", "latency", times=1, delay=0.6))
    request = full_request(timeouts=attrs.evolve(FAST, reconcile_grace=2.0))
    # The first client stays open: a LogOut would void the session the late order uses.
    async with make_client(sim) as first, make_client(sim) as second:
        with anyio.move_on_after(0.3):
            await SwapWorkflow(first, store).run(request, swap_id=swap_id)
        record = await store.get(swap_id)
        assert record is not None and record.state is SwapState.ORDER_INTENT
        assert swap_orders(sim, swap_id) == []  # still in the simulator's latency
        result = await SwapWorkflow(second, store).resume(swap_id)
    assert result.state is SwapState.COMPLETED, result.reason
    assert "reconciled" in " ".join(e.note for e in result.timeline)
    assert_ledger(sim, initial, [result])


async def test_a_second_runner_is_locked_out(
    sim: Simulator, workflow: SwapWorkflow, store: MemoryCheckpointStore
) -> None:
    """While a live lease is held, resume() raises SwapLockedError; an unknown id raises
    SwapNotFoundError."""
    swap_id = await workflow.create(full_request())
    await store.acquire(swap_id, LeaseOwner.current(), ttl=30)
    with pytest.raises(SwapLockedError):
        await workflow.resume(swap_id)
    assert swap_orders(sim, swap_id) == []
    with pytest.raises(SwapNotFoundError):
        await workflow.resume("no-such-swap")


async def test_run_is_idempotent_for_a_given_swap_id(
    sim: Simulator, workflow: SwapWorkflow
) -> None:
    """Running the same swap id twice returns the finished swap; another request with that
    id is refused."""
    first = await workflow.run(full_request(), swap_id="payout-1")
    second = await workflow.run(full_request(), swap_id="payout-1")
    assert second == first
    assert len(swap_orders(sim, "payout-1")) == 1
    with pytest.raises(WorkflowError, match="another request"):
        await workflow.run(full_request(amount=D("7")), swap_id="payout-1")


async def test_poll_timeout_needs_an_operator_and_reopen_continues(
    store: MemoryCheckpointStore, dialect: str
) -> None:
    """A withdrawal still pending at its limit stops NEEDS_OPERATOR; reopening later keeps
    polling it to completion (no second ticket)."""
    async with Simulator(sim_config(withdraw_step_seconds=1000.0, dialect=dialect)) as slow_sim:
        initial = balances(slow_sim)
        async with make_client(slow_sim) as client:
            workflow = SwapWorkflow(client, store)
            request = full_request(timeouts=attrs.evolve(FAST, withdrawal=0.1))
            result = await workflow.run(request)
            assert result.state is SwapState.NEEDS_OPERATOR
            assert result.failed_step is SwapStep.POLL_WITHDRAW
            assert "reopen" in (result.reason or "")
            assert (await workflow.resume(result.swap_id)).state is SwapState.NEEDS_OPERATOR
            slow_sim.advance(5000)
            done = await workflow.resume(result.swap_id, reopen=True)
        assert done.state is SwapState.COMPLETED, done.reason
        assert done.timeline[-2].note == "reopened by the operator"
        assert_ledger(slow_sim, initial, [done])


async def test_rejected_deposit_and_failed_withdrawal_end_failed() -> None:
    """A rejected deposit ticket ends the swap FAILED, a failed withdrawal ticket
    WITHDRAW_FAILED (the trade stands), each with the step and the exchange's reason."""
    async with Simulator(sim_config(deposit_reject_probability=1.0)) as rejecting:
        async with make_client(rejecting) as client:
            result = await SwapWorkflow(client, MemoryCheckpointStore()).run(full_request())
        assert result.state is SwapState.FAILED
        assert result.failed_step is SwapStep.FUND
        assert "REJECTED" in (result.reason or "")
        assert rejecting.exchange.orders == {} or not swap_orders(rejecting, result.swap_id)
    async with Simulator(sim_config(withdraw_fail_probability=1.0)) as failing:
        initial = balances(failing)
        async with make_client(failing) as client:
            result = await SwapWorkflow(client, MemoryCheckpointStore()).run(full_request())
        assert result.state is SwapState.WITHDRAW_FAILED
        assert result.failed_step is SwapStep.POLL_WITHDRAW
        assert result.withdrawal_status is WithdrawStatus.FAILED
        assert_ledger(failing, initial, [result])


async def test_reads_failing_past_the_step_limit_interrupt_and_resume_recovers(
    sim: Simulator, store: MemoryCheckpointStore
) -> None:
    """A read that keeps failing past the step limit raises SwapInterruptedError with a
    consistent checkpoint; once the exchange is back, resume completes."""
    initial = balances(sim)
    sim.faults.inject(Fault("GetOrderStatus", "error", status=503))
    request = full_request(timeouts=attrs.evolve(FAST, step=0.3))
    events: list[ProgressEvent] = []
    async with make_client(sim, max_retries=0) as client:
        workflow = SwapWorkflow(client, store, on_progress=events.append)
        with pytest.raises(SwapInterruptedError, match="GetOrderStatus kept failing") as info:
            await workflow.run(request, swap_id="flaky")
        assert info.value.swap_id == "flaky"
        # The client's engine retried past max_retries=0, within the step's limit, and
        # each retry was reported.
        retries = [e for e in events if e.kind is ProgressKind.RETRY]
        assert len(retries) >= 2
        assert all(e.message.startswith("GetOrderStatus failed") for e in retries)
        assert (await store.get("flaky")).state is SwapState.ORDER_PLACED  # type: ignore[union-attr]
        sim.faults.clear()
        result = await workflow.resume("flaky")
    assert result.state is SwapState.COMPLETED, result.reason
    assert_ledger(sim, initial, [result])


async def test_a_hanging_read_is_cut_at_the_step_limit_not_the_clients_timeout(
    sim: Simulator, store: MemoryCheckpointStore
) -> None:
    """The step's limit is the read's whole budget, the attempt in flight included: a read
    that hangs interrupts the run at the step limit although one attempt of the client may
    take a minute."""
    sim.faults.inject(Fault("GetOrderStatus", "latency", delay=60))
    request = full_request(timeouts=attrs.evolve(FAST, step=0.3))
    async with make_client(sim, timeout=60.0) as client:
        workflow = SwapWorkflow(client, store)
        # A generous bound on the whole run: the fault alone would take 60 s.
        async with asyncio.timeout(20):
            with pytest.raises(SwapInterruptedError, match="GetOrderStatus kept failing"):
                await workflow.run(request, swap_id="hung")
    assert (await store.get("hung")).state is SwapState.ORDER_PLACED  # type: ignore[union-attr]


async def test_no_secret_reaches_the_checkpoint_file(sim: Simulator, tmp_path: Path) -> None:
    """The SQLite file (and its WAL) never contains the API secret, password or any session
    token the exchange issued during the swap."""
    tokens: list[str] = []
    create = sim._app.sessions.create

    def recording(*args: Any, **kwargs: Any) -> str:
        token = create(*args, **kwargs)
        tokens.append(token)
        return token

    sim._app.sessions.create = recording  # type: ignore[method-assign]
    path = tmp_path / "swaps.sqlite3"
    async with SqliteCheckpointStore(path) as store, make_client(sim) as client:
        workflow = SwapWorkflow(client, store)
        sim.faults.inject(Fault("SendOrder", "expire_session", times=1))
        result = await workflow.run(full_request())
        assert result.state is SwapState.COMPLETED
        raw = _read_all(tmp_path)
    if sim.config.dialect == "apex":
        assert len(tokens) >= 2  # the first login and the re-login after expiry
    else:
        assert tokens == []  # the guide's login opens no session: every call is signed
    secrets = [sim.demo.api_secret, sim.demo.password, *tokens]
    for secret in secrets:
        assert secret.encode() not in raw
    assert sim.demo.api_key.encode() not in raw
    assert result.swap_id.encode() in raw


def _read_all(directory: Path) -> bytes:
    """Every byte of every file in ``directory`` (the database and its WAL)."""
    return b"".join(p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file())


async def test_writes_refused_for_authentication_interrupt_instead_of_failing(
    sim: Simulator, store: MemoryCheckpointStore
) -> None:
    """A write answered Not Authorized even after the client's re-login was not applied:
    the run stops resumable (not FAILED) and resume sends it once."""
    initial = balances(sim)
    # apex: the session expires; guide: the signed headers are refused (no session).
    kind = "expire_session" if sim.config.dialect == "apex" else "not_authorized"
    sim.faults.inject(Fault("SendOrder", kind, times=2))
    async with make_client(sim) as client:
        workflow = SwapWorkflow(client, store)
        with pytest.raises(SwapInterruptedError, match="Not Authorized"):
            await workflow.run(full_request(), swap_id="auth")
        assert (await store.get("auth")).state is SwapState.ORDER_INTENT  # type: ignore[union-attr]
        assert swap_orders(sim, "auth") == []
        result = await workflow.resume("auth")
    assert result.state is SwapState.COMPLETED, result.reason
    assert_ledger(sim, initial, [result])


async def test_a_redirected_write_was_not_applied_and_interrupts(
    sim: Simulator, store: MemoryCheckpointStore
) -> None:
    """A write answered by a 307 redirect was refused, not sent: the run stops resumable
    (no reconciliation, not FAILED) and resume sends the order once."""
    initial = balances(sim)
    network = AiohttpTransport()
    redirected: list[Request] = []

    async def handler(request: Request) -> Response:
        # The simulator's faults are HTTP errors only: a proxy in front of it redirects.
        if request.name == "SendOrder" and not redirected:
            redirected.append(request)
            return Response(307, headers={"Location": "https://elsewhere.test/ap/SendOrder"})
        return await network.handle_async_request(request)

    async with network, make_client(sim, transport=MockTransport(handler)) as client:
        workflow = SwapWorkflow(client, store)
        with pytest.raises(SwapInterruptedError, match="redirect"):
            await workflow.run(full_request(), swap_id="moved")
        record = await store.get("moved")
        assert record is not None and record.state is SwapState.ORDER_INTENT
        assert record.order is not None and record.order.attempts == 1
        assert swap_orders(sim, "moved") == []
        result = await workflow.resume("moved")
    assert result.state is SwapState.COMPLETED, result.reason
    assert_ledger(sim, initial, [result])


async def test_send_attempts_are_bounded_per_run(
    sim: Simulator, store: MemoryCheckpointStore
) -> None:
    """A write that keeps not arriving is sent at most max_send_attempts times per run,
    each resend only after reconciliation found nothing; a later resume continues."""
    initial = balances(sim)
    sim.faults.inject(Fault("SendOrder", "drop_before", times=3))
    async with make_client(sim) as client:
        workflow = SwapWorkflow(client, store, max_send_attempts=2)
        with pytest.raises(SwapInterruptedError, match="did not reach the exchange in 2 attempts"):
            await workflow.run(full_request(), swap_id="bounded")
        record = await store.get("bounded")
        assert record is not None and record.state is SwapState.ORDER_INTENT
        assert record.order is not None and record.order.attempts == 2
        result = await workflow.resume("bounded")
    assert result.state is SwapState.COMPLETED, result.reason
    assert result.timeline[-1].state is SwapState.COMPLETED
    assert_ledger(sim, initial, [result])


async def test_ambiguous_deposit_tickets_need_an_operator(
    sim: Simulator, workflow: SwapWorkflow
) -> None:
    """Two new deposit tickets matching a deposit whose answer was lost (user Comment, no
    marker): NEEDS_OPERATOR at the fund step, no order sent."""

    async def twin(label: str, record: SwapRecord) -> None:
        if label == "send:CreateDepositTicket":
            sim.exchange.create_deposit_ticket(
                account_id=1,
                user_id=1,
                product_id=1,
                amount=D("50"),
                deposit_info='{"Comment":"wire 9"}',
                now=sim.now(),
            )

    workflow.on_checkpoint = twin
    sim.faults.inject(Fault("CreateDepositTicket", "drop_after", times=1))
    result = await workflow.run(full_request(deposit=DepositSpec(D("50"), {"Comment": "wire 9"})))
    assert result.state is SwapState.NEEDS_OPERATOR, result.reason
    assert result.failed_step is SwapStep.FUND
    assert "2 deposit tickets" in (result.reason or "")
    assert swap_orders(sim, result.swap_id) == []
