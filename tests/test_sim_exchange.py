"""Pure tests of the simulated exchange: matching, fees, holds, tickets, state (no event loop)."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

from kiiex_async.sim import DemoUser, SimConfig
from kiiex_async.sim import _render as render
from kiiex_async.sim._exchange import (
    BUY,
    SELL,
    Exchange,
    ExchangeError,
    InsufficientBalance,
    Order,
    OrderRequest,
)

T0 = 1_700_000_000.0
MARKET, LIMIT = 1, 2
GTC, IOC, FOK = 1, 3, 4

ALICE = DemoUser(
    user_id=2,
    account_id=2,
    username="alice",
    api_key="alice-key",
    balances={"USDT": 100_000, "USDC": 100_000, "COPM": 100_000_000},
)


def make(**overrides: object) -> Exchange:
    config = SimConfig(
        seed=3,
        drift_bps=D(0),
        users=(DemoUser(), ALICE),
        **overrides,  # type: ignore[arg-type]
    )
    return Exchange(config, now=T0)


def order(
    ex: Exchange,
    side: int,
    order_type: int,
    *,
    account: int = 1,
    instrument: int = 1,
    qty: str = "0",
    price: str = "0",
    value: str = "0",
    tif: int = GTC,
    client_id: int = 0,
    post_only: bool = False,
    now: float = T0 + 1,
) -> Order:
    request = OrderRequest(
        instrument_id=instrument,
        side=side,
        order_type=order_type,
        quantity=D(qty),
        limit_price=D(price),
        value=D(value),
        time_in_force=tif,
        client_order_id=client_id,
        post_only=post_only,
    )
    return ex.send_order(request, account_id=account, user_id=account, now=now)


def test_book_is_seeded_around_the_mid_by_the_market_maker() -> None:
    """The seeded book has book_levels levels per side, spread_bps apart, owned by the maker."""
    ex = make()
    market = ex.markets[1]
    assert [o.limit_price for o in market.bids[:3]] == [D(3998), D(3996), D(3994)]
    assert [o.limit_price for o in market.asks[:3]] == [D(4002), D(4004), D(4006)]
    assert len(market.bids) == len(market.asks) == 10
    assert all(o.account_id == 9000 and o.quantity == 2500 for o in market.bids + market.asks)
    usdc_usdt = ex.markets[3]
    assert usdc_usdt.best_bid is not None and usdc_usdt.best_ask is not None
    assert (usdc_usdt.best_bid.limit_price, usdc_usdt.best_ask.limit_price) == (
        D("0.9995"),
        D("1.0005"),
    )


def test_market_sell_fills_best_bid_and_charges_taker_fee_in_quote() -> None:
    """A market sell takes the best bid; the taker fee is charged on the quote received."""
    ex = make()
    o = order(ex, SELL, MARKET, qty="100", client_id=42)
    assert o.state == "FullyExecuted"
    assert (o.quantity_executed, o.gross_value_executed, o.avg_price) == (
        D(100),
        D(399800),
        D(3998),
    )
    assert ex.balance(1, "USDT") == (D(9900), D(0))
    assert ex.balance(1, "COPM") == (D(399800) - D(399800) * D("0.002"), D(0))
    mine = ex.trades_of(1)
    assert len(mine) == 1
    trade = mine[0]
    assert (trade.maker_taker, trade.fee, trade.fee_product_id, trade.client_order_id) == (
        "Taker",
        D("799.6"),
        3,
        42,
    )
    maker = next(t for t in ex.trades if t.account_id == 9000)
    assert maker.trade_id == trade.trade_id and maker.maker_taker == "Maker"
    assert maker.fee == D(100) * D("0.001") and maker.fee_product_id == 1


def test_market_order_walks_levels_with_partial_maker_fill() -> None:
    """A large market sell consumes levels best-first and leaves a partly filled maker."""
    ex = make()
    o = order(ex, SELL, MARKET, account=2, qty="3000")
    assert o.quantity_executed == 3000
    assert o.gross_value_executed == 2500 * D(3998) + 500 * D(3996)
    assert o.avg_price == (o.gross_value_executed / 3000).quantize(D("0.00000001"))
    market = ex.markets[1]
    assert market.bids[0].limit_price == D(3996) and market.bids[0].quantity == 2000
    assert market.last_price == D(3996)


def test_market_buy_by_value_spends_at_most_the_value() -> None:
    """Market buy with Value buys whole quantity increments for at most that much quote."""
    ex = make()
    o = order(ex, BUY, MARKET, instrument=3, value="100", client_id=7)
    assert o.state == "FullyExecuted"
    assert o.quantity_executed == D("99.95")  # 100 / 1.0005 rounded down to 0.01
    assert o.gross_value_executed == D("99.95") * D("1.0005") <= 100
    assert o.orig_quantity == D("99.95")
    assert ex.balance(1, "USDT") == (D(10_000) - D("99.999975"), D(0))
    assert ex.balance(1, "USDC") == (D(10_000) + D("99.95") * (1 - D("0.002")), D(0))
    assert ex.trades_of(1)[0].fee_product_id == 2


def test_market_buy_by_value_beyond_funds_is_rejected() -> None:
    """A market buy by Value larger than the available quote is Rejected Not_Enough_Funds."""
    ex = make()
    o = order(ex, BUY, MARKET, value="10")  # the demo user holds no COPM
    assert (o.state, o.reject_reason) == ("Rejected", "Not_Enough_Funds")
    assert o.order_id in ex.orders
    assert not ex.trades_of(1)


def test_market_buy_with_limit_price_and_no_quantity_uses_it_as_value() -> None:
    """SLATE rule: a market buy with LimitPrice and no Quantity executes up to that value."""
    ex = make()
    o = order(ex, BUY, MARKET, account=2, price="40020")
    assert o.quantity_executed == D(10)
    assert o.gross_value_executed == D(40020)


def test_market_buy_with_quantity_and_limit_price_caps_the_price() -> None:
    """A market buy with Quantity and LimitPrice takes no level above the cap; rest canceled."""
    ex = make()
    o = order(ex, BUY, MARKET, account=2, qty="3000", price="4002")
    assert o.state == "Canceled"
    assert o.quantity_executed == 2500 and o.avg_price == D(4002)
    assert o.change_reason == "SystemCanceled_NoMoreMarket"
    assert ex.balance(2, "COPM")[1] == 0


def test_limit_order_rests_holds_funds_and_cancel_releases_them() -> None:
    """A non-crossing limit buy rests Working with qty x price held; cancel releases it."""
    ex = make()
    o = order(ex, BUY, LIMIT, account=2, qty="10", price="3990", client_id=5)
    assert o.state == "Working" and o.quantity == 10
    assert ex.balance(2, "COPM") == (D(100_000_000), D(39_900))
    ex.cancel_order(account_ids=[2], client_order_id=5, account_id=2, now=T0 + 2)
    assert o.state == "Canceled" and o.change_reason == "UserModified"
    assert ex.balance(2, "COPM") == (D(100_000_000), D(0))
    assert o not in ex.markets[1].bids


def test_crossing_limit_order_fills_then_rests_the_remainder() -> None:
    """A crossing GTC limit takes liquidity up to its price and rests the rest (partial fill)."""
    ex = make()
    o = order(ex, BUY, LIMIT, account=2, qty="3000", price="4002")
    assert o.state == "Working"
    assert (o.quantity_executed, o.quantity) == (D(2500), D(500))
    assert ex.markets[1].best_bid is o
    assert ex.balance(2, "COPM")[1] == 500 * D(4002)
    assert ex.balance(2, "USDT")[0] == 100_000 + 2500 * (1 - D("0.002"))


def test_resting_order_pays_maker_fee_when_hit() -> None:
    """A resting user order hit by another user's market order pays the maker fee."""
    ex = make()
    ask = order(ex, SELL, LIMIT, account=1, qty="10", price="4001")
    assert ex.markets[1].best_ask is ask
    assert ex.balance(1, "USDT") == (D(10_000), D(10))
    buy = order(ex, BUY, MARKET, account=2, value="40010")
    assert buy.quantity_executed == 10 and buy.avg_price == D(4001)
    assert ask.state == "FullyExecuted"
    (maker,) = ex.trades_of(1)
    assert (maker.maker_taker, maker.fee, maker.fee_product_id) == ("Maker", D("40.01"), 3)
    assert maker.counter_party == 2
    assert ex.balance(1, "USDT") == (D(9_990), D(0))
    assert ex.balance(1, "COPM") == (D(40010) - D("40.01"), D(0))


def test_ioc_partial_fill_cancels_the_remainder() -> None:
    """An IOC limit fills what its price allows and cancels the remainder."""
    ex = make()
    o = order(ex, BUY, LIMIT, account=2, qty="3000", price="4002", tif=IOC)
    assert o.state == "Canceled" and o.cancel_reason == "IOC"
    assert o.quantity_executed == 2500 and o.quantity == 0
    assert ex.balance(2, "COPM")[1] == 0
    assert all(b.account_id != 2 for b in ex.markets[1].bids)


def test_fok_fills_completely_or_not_at_all() -> None:
    """FOK: an unfillable order is canceled with no trade; a fillable one executes fully."""
    ex = make()
    miss = order(ex, BUY, LIMIT, account=2, qty="3000", price="4002", tif=FOK)
    assert miss.state == "Canceled" and miss.quantity_executed == 0
    assert not ex.trades_of(2)
    hit = order(ex, BUY, LIMIT, account=2, qty="3000", price="4004", tif=FOK)
    assert hit.state == "FullyExecuted" and hit.quantity_executed == 3000


def test_limit_order_without_funds_is_rejected_and_recorded() -> None:
    """Insufficient funds: the order is stored as Rejected with RejectReason Not_Enough_Funds."""
    ex = make()
    o = order(ex, SELL, LIMIT, qty="20000", price="4100", client_id=99)
    assert (o.state, o.reject_reason, o.change_reason) == (
        "Rejected",
        "Not_Enough_Funds",
        "NewInputRejected",
    )
    assert [x.client_order_id for x in ex.orders_of(1)] == [99]
    assert ex.balance(1, "USDT") == (D(10_000), D(0))


@pytest.mark.parametrize(
    ("kwargs", "detail"),
    [
        ({"qty": "1.005"}, "QuantityIncrement"),
        ({"qty": "0.5"}, "MinimumQuantity"),
        ({"qty": "0"}, "Quantity must be greater than 0"),
        ({"qty": "1", "price": "4000.001", "order_type": LIMIT}, "PriceIncrement"),
        ({"qty": "1", "order_type": LIMIT}, "LimitPrice is required"),
        ({"qty": "1", "value": "10", "side": SELL}, "Value is only valid"),
    ],
)
def test_invalid_orders_raise_errorcode_100_and_create_nothing(
    kwargs: dict[str, object], detail: str
) -> None:
    """Increments, minimums and missing prices are errorcode 100 errors; no order is stored."""
    ex = make()
    side = kwargs.pop("side", BUY)
    order_type = kwargs.pop("order_type", MARKET)
    with pytest.raises(ExchangeError) as info:
        order(ex, side, order_type, account=2, **kwargs)  # type: ignore[arg-type]
    assert info.value.errorcode == 100 and detail in (info.value.detail or "")
    assert not ex.orders_of(2)


def test_unknown_instrument_and_unsupported_type_are_refused() -> None:
    """An unknown InstrumentId is errorcode 100 ``Invalid InstrumentId``; stop orders are 106."""
    ex = make()
    with pytest.raises(ExchangeError) as info:
        order(ex, BUY, MARKET, instrument=99, qty="1")
    assert (info.value.errorcode, info.value.errormsg) == (100, "Invalid InstrumentId: 99")
    with pytest.raises(ExchangeError) as info:
        order(ex, BUY, 3, qty="1")
    assert info.value.errorcode == 106


def test_self_trade_cancels_the_resting_order() -> None:
    """An order that would trade with the same account's resting order cancels that order."""
    ex = make()
    ask = order(ex, SELL, LIMIT, account=2, qty="5", price="4001")
    buy = order(ex, BUY, MARKET, account=2, qty="5")
    assert ask.state == "Canceled" and ask.cancel_reason == "SelfTradePrevention"
    assert buy.avg_price == D(4002)
    assert all(t.counter_party != 2 for t in ex.trades_of(2))


def test_post_only_order_that_would_cross_is_rejected() -> None:
    """PostOnly limit orders that would take liquidity are rejected."""
    ex = make()
    o = order(ex, BUY, LIMIT, account=2, qty="1", price="4002", post_only=True)
    assert (o.state, o.reject_reason) == ("Rejected", "Post_Only_Would_Cross")
    ok = order(ex, BUY, LIMIT, account=2, qty="1", price="4001", post_only=True)
    assert ok.state == "Working"


def test_market_maker_replenishes_a_thin_side() -> None:
    """When fewer than half of the maker's levels remain, it re-quotes the side in full."""
    ex = make()
    order(ex, SELL, MARKET, account=2, qty="15000")  # eats six of ten bid levels
    market = ex.markets[1]
    assert len([o for o in market.bids if o.account_id == 9000]) == 10
    assert market.bids[0].limit_price == D(3998) and market.bids[0].quantity == 2500


def test_market_order_that_empties_the_book_is_canceled_with_its_fills() -> None:
    """A market order larger than the whole side fills what exists and ends Canceled."""
    ex = make(book_levels=1)
    o = order(ex, SELL, MARKET, account=2, qty="3000")
    assert o.state == "Canceled" and o.quantity_executed == 2500
    assert o.cancel_reason == "NoMoreMarket"
    assert ex.markets[1].bids  # and the maker re-seeded the book


def test_drift_is_a_seeded_random_walk() -> None:
    """Mids drift every drift_interval; the same seed gives the same path, another seed not."""
    a = Exchange(SimConfig(seed=1, drift_interval=10.0), now=T0)
    b = Exchange(SimConfig(seed=1, drift_interval=10.0), now=T0)
    c = Exchange(SimConfig(seed=2, drift_interval=10.0), now=T0)
    for ex in (a, b, c):
        ex.tick(T0 + 9)
        assert ex.markets[1].mid == D(4000)
        ex.tick(T0 + 100)
    assert [m.mid for m in a.markets.values()] == [m.mid for m in b.markets.values()]
    assert [m.mid for m in a.markets.values()] != [m.mid for m in c.markets.values()]
    market = a.markets[1]
    assert market.mid != D(4000)
    assert market.best_bid is not None and market.best_ask is not None
    assert market.best_bid.limit_price < market.mid < market.best_ask.limit_price


def test_deposit_ticket_advances_on_schedule_and_credits_at_the_end() -> None:
    """Deposit: New -> AdminProcessing -> Accepted -> FullyProcessed, one step per interval."""
    ex = make(deposit_step_seconds=2.0)
    ticket = ex.create_deposit_ticket(
        account_id=1, user_id=1, product_id=3, amount=D(500), deposit_info="{}", now=T0
    )
    statuses = []
    for t in (T0 + 1, T0 + 2, T0 + 4, T0 + 5.9, T0 + 6):
        ex.tick(t)
        statuses.append(ticket.status)
    assert statuses == [0, 1, 2, 2, 5]
    assert ex.balance(1, "COPM") == (D(500), D(0))
    assert ticket.updated_at == T0 + 6
    ex.tick(T0 + 100)
    assert ex.balance(1, "COPM") == (D(500), D(0))


def test_deposit_can_be_rejected_by_configuration() -> None:
    """deposit_reject_probability=1 ends every deposit Rejected without a credit."""
    ex = make(deposit_reject_probability=1.0, deposit_step_seconds=0.0)
    ticket = ex.create_deposit_ticket(
        account_id=1, user_id=1, product_id=3, amount=D(5), deposit_info="", now=T0
    )
    assert ticket.status == 3 and ticket.reject_reason
    assert ex.balance(1, "COPM") == (D(0), D(0))


def test_withdraw_ticket_holds_then_debits_when_fully_processed() -> None:
    """Withdraw: amount + fee held at once; New -> AutoAccepted -> Submitted -> FullyProcessed."""
    ex = make(withdraw_step_seconds=1.0)
    ticket = ex.create_withdraw_ticket(
        account_id=1,
        user_id=1,
        product_id=1,
        amount=D(250),
        template_type="Standard",
        template_form='{"ExternalAddress":"0xabc"}',
        now=T0,
    )
    assert ex.balance(1, "USDT") == (D(10_000), D(250))
    assert ex.pending(1, 1) == (D(0), D(250))
    seen = []
    for step in range(1, 4):
        ex.tick(T0 + step)
        seen.append(ticket.status)
    assert seen == [9, 19, 5]
    assert ex.balance(1, "USDT") == (D(9_750), D(0))


@pytest.mark.parametrize(("status", "code", "path_len"), [("Failed", 6, 4), ("Rejected", 3, 2)])
def test_failed_or_rejected_withdrawal_releases_the_hold(
    status: str, code: int, path_len: int
) -> None:
    """withdraw_fail_probability=1 ends tickets Failed/Rejected and gives the hold back."""
    ex = make(withdraw_fail_probability=1.0, withdraw_fail_status=status, withdraw_step_seconds=1.0)
    ticket = ex.create_withdraw_ticket(
        account_id=1,
        user_id=1,
        product_id=2,
        amount=D(10),
        template_type="Standard",
        template_form="{}",
        now=T0,
    )
    assert len(ticket.path) == path_len
    ex.tick(T0 + 10)
    assert ticket.status == code and ticket.reject_reason
    assert ex.balance(1, "USDC") == (D(10_000), D(0))


def test_forced_withdraw_outcome_and_pending_2fa_step() -> None:
    """Queued outcomes override the probability; withdraw_pending_2fa inserts Pending2Fa."""
    ex = make(withdraw_pending_2fa=True, withdraw_step_seconds=1.0)
    ex.withdraw_outcomes.append("Failed")
    ticket = ex.create_withdraw_ticket(
        account_id=1,
        user_id=1,
        product_id=1,
        amount=D(1),
        template_type="Standard",
        template_form="{}",
        now=T0,
    )
    assert ticket.path == [0, 8, 9, 19, 6]


def test_withdraw_beyond_available_balance_raises_the_documented_error() -> None:
    """A withdrawal over Amount - Hold raises InsufficientBalance (100, Insufficient Balance)."""
    ex = make()
    order(ex, SELL, LIMIT, qty="9000", price="4100")  # holds 9000 USDT
    with pytest.raises(InsufficientBalance) as info:
        ex.create_withdraw_ticket(
            account_id=1,
            user_id=1,
            product_id=1,
            amount=D(1001),
            template_type="Standard",
            template_form="{}",
            now=T0,
        )
    assert (info.value.errorcode, info.value.detail) == (100, "Insufficient Balance")
    assert not ex.withdraw_tickets


def test_cancel_errors_distinguish_unknown_from_final_orders() -> None:
    """Cancel: unknown order -> 104; an order that is not working -> 101."""
    ex = make()
    done = order(ex, SELL, MARKET, qty="1")
    with pytest.raises(ExchangeError) as info:
        ex.cancel_order(account_ids=[1], order_id=done.order_id, now=T0)
    assert info.value.errorcode == 101
    with pytest.raises(ExchangeError) as info:
        ex.cancel_order(account_ids=[2], order_id=done.order_id, now=T0)
    assert info.value.errorcode == 104


def test_order_revisions_record_every_change() -> None:
    """Each order keeps one revision per change: accepted, then one per fill (the last one
    carrying the final state), so the Trade revisions are the order's fills."""
    ex = make()
    o = order(ex, SELL, MARKET, account=2, qty="3000")
    revisions = ex.revisions(o)
    assert [r.change_reason for r in revisions] == ["NewInputAccepted", "Trade", "Trade"]
    fills = [t for t in ex.trades if t.order_id == o.order_id]
    assert [r.quantity_executed for r in revisions[1:]] == [D(2500), D(3000)]
    assert len(fills) == 2 and revisions[-1].state == "FullyExecuted"


def test_a_partly_filled_limit_order_that_rests_keeps_one_trade_revision_per_fill() -> None:
    """A limit order that fills one level then rests has one Trade revision, Working."""
    ex = make()
    o = order(ex, SELL, LIMIT, account=2, qty="3000", price="3998")
    revisions = ex.revisions(o)
    assert [r.change_reason for r in revisions] == ["NewInputAccepted", "Trade"]
    assert revisions[-1].state == "Working" and revisions[-1].quantity_executed == D(2500)


def test_state_round_trips_through_json() -> None:
    """to_state -> JSON -> from_state rebuilds the same exchange (book, ledger, tickets, RNG)."""
    ex = make(deposit_step_seconds=5.0)
    order(ex, SELL, MARKET, qty="100", client_id=1)
    order(ex, BUY, LIMIT, account=2, qty="10", price="3990")
    ex.create_deposit_ticket(
        account_id=1, user_id=1, product_id=3, amount=D(7), deposit_info="{}", now=T0
    )
    ex.deposit_info(1, 1, generate_new=False)
    state = json.loads(json.dumps(ex.to_state()))
    again = Exchange.from_state(ex.config, state, now=T0 + 2)
    assert again.to_state() == ex.to_state()
    assert [o.order_id for o in again.markets[1].bids] == [o.order_id for o in ex.markets[1].bids]
    again.tick(T0 + 20)
    assert again.balance(1, "COPM")[0] == ex.balance(1, "COPM")[0] + 7
    assert again.guid() == ex.guid()


def test_state_saved_before_the_journal_loads_with_an_empty_journal() -> None:
    """A state file written before GetAccountTransactions existed still loads; the journal
    then starts empty and grows with the next change."""
    ex = make()
    order(ex, SELL, MARKET, qty="10")
    state = json.loads(json.dumps(ex.to_state()))
    saved = state.pop("journal")
    assert [t["transaction_type"] for t in saved[-3:]] == ["Trade", "Trade", "Fee"]
    again = Exchange.from_state(ex.config, state, now=T0)
    assert again.journal == []
    order(again, SELL, MARKET, qty="10")
    assert [t.transaction_type for t in again.journal] == ["Trade", "Trade", "Fee"]


def test_state_of_another_version_is_refused() -> None:
    """from_state refuses data of an unknown schema version."""
    with pytest.raises(ValueError, match="version"):
        Exchange.from_state(SimConfig(), {"version": 99}, now=T0)


def test_l2_snapshot_aggregates_orders_at_one_price() -> None:
    """L2 rows sum the orders resting at a price: quantity, order count, distinct accounts."""
    ex = make()
    order(ex, SELL, LIMIT, account=1, qty="5", price="4002")
    rows = render.l2_snapshot(ex.markets[1], depth=2)
    asks = [r for r in rows if r[9] == 1]
    assert [(r[6], r[8], r[5], r[1]) for r in asks] == [
        (D(4002), D(2505), 2, 2),
        (D(4004), D(2500), 1, 1),
    ]
    level1 = render.level1(ex.markets[1], int(T0 * 1000))
    assert (level1["AskQty"], level1["AskOrderCt"]) == (D(2505), 2)
