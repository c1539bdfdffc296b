"""Pure parts of the workflow: ids, order planning, reconciliation matching, the record
codec and the result, all without an event loop."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

import kiiex_async.workflow as workflow
from kiiex_async.errors import BelowMinimumError, InsufficientFundsError
from kiiex_async.models import (
    DepositStatus,
    DepositTicket,
    L2Entry,
    L2Snapshot,
    Order,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
    WithdrawStatus,
    WithdrawTicket,
)
from kiiex_async.workflow import (
    AmountSide,
    SwapPlan,
    SwapRecord,
    SwapRequest,
    SwapResult,
    SwapState,
    TicketProgress,
    TradesSummary,
    WithdrawSpec,
    client_order_id_for,
    swap_marker,
)
from kiiex_async.workflow._planning import (
    SlippageError,
    ThinBookError,
    check_funds,
    plan_order,
    round_up,
)
from kiiex_async.workflow._reconcile import (
    match_deposit_tickets,
    match_orders,
    match_withdraw_tickets,
    parse_timestamp,
)
from kiiex_async.workflow._record import decode_record, encode_record, utcnow

D = Decimal
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)


def test_exports_are_sorted_and_exist() -> None:
    """workflow.__all__ is sorted, complete and names the documented public API."""
    names = workflow.__all__
    assert names == sorted(names)
    assert all(hasattr(workflow, n) for n in names)
    for required in (
        "SwapWorkflow",
        "SwapRequest",
        "SwapResult",
        "SwapState",
        "AmountSide",
        "WithdrawSpec",
        "DepositSpec",
        "ProgressEvent",
        "CheckpointStore",
        "SqliteCheckpointStore",
        "MemoryCheckpointStore",
        "client_order_id_for",
    ):
        assert required in names


@given(st.text(min_size=1, max_size=64))
def test_client_order_id_is_deterministic_positive_63_bit(swap_id: str) -> None:
    """client_order_id_for: same id -> same value, always in 1..2**63-1."""
    value = client_order_id_for(swap_id)
    assert value == client_order_id_for(swap_id)
    assert 0 < value < 2**63


def test_client_order_id_known_answer() -> None:
    """The derivation is sha256's first 8 bytes masked to 63 bits (a stable contract)."""
    import hashlib

    digest = hashlib.sha256(b"swap-1").digest()
    assert client_order_id_for("swap-1") == int.from_bytes(digest[:8], "big") & (2**63 - 1)
    assert client_order_id_for("swap-1") != client_order_id_for("swap-2")
    assert swap_marker("abc") == "kiiex-swap:abc"


def make_plan(side: Side) -> SwapPlan:
    sells = side is Side.SELL
    return SwapPlan(
        account_id=1,
        instrument_id=1,
        instrument_symbol="USDTCOPM",
        base_symbol="USDT",
        quote_symbol="COPM",
        base_product_id=1,
        quote_product_id=3,
        from_product_id=1 if sells else 3,
        to_product_id=3 if sells else 1,
        side=side,
        quantity_increment=D("0.01"),
        price_increment=D("1"),
        minimum_quantity=D("1"),
        minimum_price=D("1"),
        from_tick_size=D("0.000001") if sells else D("0.01"),
        to_tick_size=D("0.01") if sells else D("0.000001"),
    )


BOOK = L2Snapshot(
    instrument_id=1,
    bids=(
        L2Entry(price=D("3998"), quantity=D("100"), side=Side.BUY),
        L2Entry(price=D("3996"), quantity=D("100"), side=Side.BUY),
    ),
    asks=(
        L2Entry(price=D("4002"), quantity=D("100"), side=Side.SELL),
        L2Entry(price=D("4004"), quantity=D("100"), side=Side.SELL),
    ),
)


def request(amount: str, side: AmountSide, slippage: str | None = None) -> SwapRequest:
    return SwapRequest(
        "USDT",
        "COPM",
        D(amount),
        amount_side=side,
        max_slippage=None if slippage is None else D(slippage),
    )


def test_sell_spend_exact_uses_the_rounded_quantity() -> None:
    """Selling the base, spend exactly: Quantity = amount rounded down to the increment."""
    order = plan_order(request("150.019", AmountSide.SPEND), make_plan(Side.SELL), BOOK)
    assert (order.side, order.order_type, order.time_in_force) == (
        Side.SELL,
        OrderType.MARKET,
        TimeInForce.GTC,
    )
    assert order.quantity == D("150.01") and order.value is None
    assert order.expected_spend == D("150.01")
    assert order.expected_receive == D("100") * 3998 + D("50.01") * 3996
    assert order.required == D("150.01")


def test_sell_receive_exact_is_sized_from_the_book_and_rounded_up() -> None:
    """Selling the base, receive exactly Y: quantity walks the bids to Y, rounded up."""
    order = plan_order(request("400000", AmountSide.RECEIVE), make_plan(Side.SELL), BOOK)
    assert order.quantity == D("100.06")  # 100 at 3998, then 200 / 3996 = 0.05005.. -> up
    assert order.expected_receive >= D("400000")


def test_sell_protected_limit_is_the_worst_acceptable_price_rounded_up() -> None:
    """With a slippage limit a sell becomes Limit + IOC at best bid x (1 - limit), up."""
    order = plan_order(request("50", AmountSide.SPEND, "0.001"), make_plan(Side.SELL), BOOK)
    assert (order.order_type, order.time_in_force) == (OrderType.LIMIT, TimeInForce.IOC)
    assert order.limit_price == D("3995")  # 3998 * 0.999 = 3994.002 -> up to 3995


def test_buy_receive_exact_quantity_and_protected_limit_rounded_down() -> None:
    """Buying the base, receive exactly Y: Quantity = Y; protected limit rounds down."""
    plan = make_plan(Side.BUY)
    req = SwapRequest("COPM", "USDT", D("120"), amount_side=AmountSide.RECEIVE)
    order = plan_order(req, plan, BOOK)
    assert order.quantity == D("120") and order.side is Side.BUY
    assert order.expected_spend == D("100") * 4002 + D("20") * 4004
    assert order.required == order.expected_spend
    req = SwapRequest(
        "COPM", "USDT", D("120"), amount_side=AmountSide.RECEIVE, max_slippage=D("0.001")
    )
    protected = plan_order(req, plan, BOOK)
    assert protected.limit_price == D("4006")  # 4002 * 1.001 = 4006.002 -> down
    assert protected.required == D("120") * D("4006")


def test_buy_spend_exact_by_value_or_protected_quantity_never_overspends() -> None:
    """Buying the base, spend exactly X: market by Value = X; protected: quantity
    floor(X / limit) so that quantity x limit <= X."""
    plan = make_plan(Side.BUY)
    market = plan_order(SwapRequest("COPM", "USDT", D("100000.005")), plan, BOOK)
    assert market.value == D("100000.00") and market.quantity is None
    assert market.required == D("100000.00")
    req = SwapRequest("COPM", "USDT", D("100000"), max_slippage=D("0.001"))
    protected = plan_order(req, plan, BOOK)
    assert protected.limit_price == D("4006")
    assert protected.quantity == D("24.96")
    assert protected.quantity * protected.limit_price <= D("100000")


def test_planning_refusals() -> None:
    """Below minimum, book too thin, slippage over the limit, funds short: typed errors."""
    with pytest.raises(BelowMinimumError):
        plan_order(request("0.5", AmountSide.SPEND), make_plan(Side.SELL), BOOK)
    with pytest.raises(ThinBookError):
        plan_order(request("500", AmountSide.SPEND), make_plan(Side.SELL), BOOK)
    with pytest.raises(SlippageError, match="exceeds the limit"):
        plan_order(request("150", AmountSide.SPEND, "0.0001"), make_plan(Side.SELL), BOOK)
    with pytest.raises(ThinBookError):
        plan_order(request("5", AmountSide.SPEND), make_plan(Side.SELL), L2Snapshot(1))
    order = plan_order(request("50", AmountSide.SPEND), make_plan(Side.SELL), BOOK)
    with pytest.raises(InsufficientFundsError, match=r"needs 50\.00"):
        check_funds(order, D("49.99"), "USDT")
    check_funds(order, D("50"), "USDT")


def test_round_up_to_increment() -> None:
    """round_up gives the smallest multiple of the increment >= value."""
    assert round_up(D("1.001"), D("0.01")) == D("1.01")
    assert round_up(D("1.00"), D("0.01")) == D("1.00")


def order(order_id: int, cid: int, *, state: OrderState = OrderState.WORKING, updated: int = 0,
          instrument: int = 1, account: int = 1) -> Order:  # fmt: skip
    return Order(
        order_id=order_id,
        instrument_id=instrument,
        account_id=account,
        side=Side.SELL,
        order_type=OrderType.MARKET,
        order_state=state,
        quantity_executed=D(0),
        avg_price=D(0),
        client_order_id=cid,
        last_updated_time=updated,
    )


def test_match_orders_dedupes_and_filters() -> None:
    """Orders match on ClientOrderId, instrument and account; revisions collapse to one,
    keeping the most advanced."""
    found = match_orders(
        [
            order(5, 42),
            order(5, 42, state=OrderState.FULLY_EXECUTED, updated=9),
            order(6, 43),
            order(7, 42, instrument=2),
            order(8, 42, account=2),
        ],
        client_order_id=42,
        instrument_id=1,
        account_id=1,
    )
    assert [(o.order_id, o.order_state) for o in found] == [(5, OrderState.FULLY_EXECUTED)]


def progress(marker: str | None, *, comment: str | None = None) -> TicketProgress:
    form = {"ExternalAddress": "0xabc"}
    if marker or comment:
        form["Comment"] = marker or comment or ""
    return TicketProgress(
        product_id=3,
        asset="COPM",
        amount=D("100.00"),
        marker=marker,
        known_tickets=(1, 2),
        intent_at=NOW,
        template_type="Standard",
        form=form,
        attempts=1,
    )


def wticket(number: int, *, comment: str | None = None, amount: str = "100",
            product: int = 3, created: dt.datetime = NOW, template: str = "Standard"
            ) -> WithdrawTicket:  # fmt: skip
    form = {"ExternalAddress": "0xabc"}
    if comment is not None:
        form["Comment"] = comment
    return WithdrawTicket(
        ticket_number=number,
        account_id=1,
        asset_id=product,
        amount=D(amount),
        status=WithdrawStatus.NEW,
        template_form=json.dumps(form),
        template_form_type=template,
        created_timestamp=created.isoformat().replace("+00:00", "Z"),
    )


def test_withdraw_match_prefers_the_marker() -> None:
    """A ticket with the swap's marker is the swap's, whatever else exists."""
    mine = swap_marker("s1")
    tickets = [wticket(3, comment=mine), wticket(4, comment=swap_marker("other")), wticket(5)]
    assert [t.ticket_number for t in match_withdraw_tickets(tickets, progress(mine))] == [3]
    two = [wticket(3, comment=mine), wticket(6, comment=mine)]
    assert len(match_withdraw_tickets(two, progress(mine))) == 2


def test_withdraw_match_without_visible_marker_uses_amount_template_and_time() -> None:
    """Without a marker match: new tickets of the product, amount and template, created
    after the intent (minus skew), showing no other Comment."""
    mine = swap_marker("s1")
    old = NOW - dt.timedelta(hours=1)
    tickets = [
        wticket(1),  # existed before the intent
        wticket(7),  # candidate: no comment visible
        wticket(8, amount="99"),
        wticket(9, product=1),
        wticket(10, template="Other"),
        wticket(11, created=old),
        wticket(12, comment="someone else's"),
    ]
    assert [t.ticket_number for t in match_withdraw_tickets(tickets, progress(mine))] == [7]
    users = progress(None, comment="payout 7")
    both = [wticket(13, comment="payout 7"), wticket(14, comment="payout 7"), wticket(15)]
    assert [t.ticket_number for t in match_withdraw_tickets(both, users)] == [13, 14, 15]


def test_deposit_match_reads_the_marker_from_deposit_info() -> None:
    """Deposit tickets carry the marker in their DepositInfo JSON."""
    mine = swap_marker("s1")
    base = progress(mine)

    def dticket(number: int, info: str) -> DepositTicket:
        return DepositTicket(
            ticket_number=number,
            account_id=1,
            asset_id=3,
            amount=D("100"),
            status=DepositStatus.NEW,
            deposit_info=info,
            created_timestamp=NOW.isoformat(),
        )

    tickets = [dticket(5, json.dumps({"Comment": mine})), dticket(6, "{}"), dticket(7, "x")]
    assert [t.ticket_number for t in match_deposit_tickets(tickets, base)] == [5]
    assert [t.ticket_number for t in match_deposit_tickets(tickets[1:], base)] == [6, 7]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-02T03:04:05Z", NOW),
        ("2026-01-02T03:04:05", NOW),
        ("1767323045000", NOW),
        (str(639029198450000000), NOW),
        ("", None),
        ("yesterday", None),
    ],
)
def test_parse_ticket_timestamps(text: str, expected: dt.datetime | None) -> None:
    """Ticket times parse from ISO, epoch ms and .NET ticks; garbage gives None."""
    assert parse_timestamp(text) == expected


def sample_record() -> SwapRecord:
    now = utcnow()
    return SwapRecord(
        swap_id="s",
        request=SwapRequest(
            "USDT", "COPM", D("1.10"), withdrawal=WithdrawSpec("Standard", {"A": "b"})
        ),
        client_order_id=client_order_id_for("s"),
        created_at=now,
        updated_at=now,
        state=SwapState.TRADES_READ,
        trades=TradesSummary(
            trade_ids=(1,),
            base_quantity=D("1.10"),
            quote_value=D("4400.0"),
            spent=D("1.10"),
            received=D("4400.0"),
            average_price=D("4000"),
            fees={"COPM": D("8.80")},
        ),
    )


def test_record_codec_round_trips_with_decimal_strings() -> None:
    """encode/decode keep Decimals exact (as strings) and enums readable."""
    record = sample_record()
    text = encode_record(record)
    assert decode_record(text) == record
    data = json.loads(text)
    assert data["trades"]["fees"]["COPM"] == "8.80"
    assert data["state"] == "TRADES_READ"
    assert data["version"] == 1


def test_result_from_record_reports_net_and_fees() -> None:
    """SwapResult derives net_received and exposes fills from the record."""
    result = SwapResult.from_record(sample_record())
    assert result.spent == D("1.10")
    assert result.net_received == D("4391.20")
    assert result.average_price == D("4000")
    assert result.order_id is None and not result.ok
    assert "spent 1.10 USDT" in result.summary()
