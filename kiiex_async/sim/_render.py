"""Records of the exchange as AlphaPoint puts them on the wire (plain dicts, by hand).

Orders, trades, positions, instruments, products and Level1 are PascalCase as real
AlphaPoint venues send them (ccxt and notbank samples); tickets are camelCase with a
capital ``Status`` (int) as in the SLATE docs.  Enumerations travel as names where the
venues send names (``"Buy"``, ``"Working"``, ``"Trade"``), as ints in tickets.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from ._config import InstrumentSpec, ProductSpec
from ._exchange import Exchange
from ._json import dumps_text
from ._records import (
    LIMIT,
    WORKING,
    ZERO,
    DepositTicket,
    Market,
    Order,
    Trade,
    WithdrawTicket,
)

__all__ = [
    "deposit_row",
    "deposit_ticket",
    "generic",
    "instrument",
    "l2_snapshot",
    "level1",
    "level1_summary",
    "order",
    "position",
    "product",
    "ticks",
    "trade",
    "withdraw_row",
    "withdraw_ticket",
]

SIDES = {0: "Buy", 1: "Sell", 2: "Short", 3: "Unknown"}
ORDER_TYPES = {
    0: "Unknown",
    1: "Market",
    2: "Limit",
    3: "StopMarket",
    4: "StopLimit",
    5: "TrailingStopMarket",
    6: "TrailingStopLimit",
    7: "BlockTrade",
}
_EPOCH_TICKS = 621_355_968_000_000_000
_DAY_MS = 86_400_000
_PCT = Decimal("0.01")


def ticks(ms: int) -> int:
    """.NET ticks (100 ns since 0001-01-01) of an epoch-milliseconds time."""
    return ms * 10_000 + _EPOCH_TICKS


def iso(seconds: float) -> str:
    """``2024-05-01T12:00:00.123Z``."""
    stamp = datetime.fromtimestamp(seconds, UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"


def generic(
    result: bool, errormsg: str | None = None, errorcode: int = 0, detail: str | None = None
) -> dict[str, Any]:
    """AlphaPoint's standard ``{result, errormsg, errorcode, detail}`` object."""
    return {"result": result, "errormsg": errormsg, "errorcode": errorcode, "detail": detail}


def product(spec: ProductSpec) -> dict[str, Any]:
    """A ``GetProducts`` element."""
    return {
        "OMSId": 1,
        "ProductId": spec.product_id,
        "Product": spec.symbol,
        "ProductFullName": spec.full_name,
        "MasterDataUniqueProductSymbol": "",
        "ProductType": spec.product_type,
        "DecimalPlaces": spec.decimal_places,
        "TickSize": spec.tick_size,
        "DepositEnabled": spec.deposit_enabled,
        "WithdrawEnabled": spec.withdraw_enabled,
        "NoFees": False,
        "IsDisabled": False,
        "MarginEnabled": False,
    }


def instrument(spec: InstrumentSpec, ex: Exchange) -> dict[str, Any]:
    """A ``GetInstruments`` element."""
    base, quote = ex.products[spec.base], ex.products[spec.quote]
    return {
        "OMSId": 1,
        "InstrumentId": spec.instrument_id,
        "Symbol": spec.symbol,
        "Product1": spec.base,
        "Product1Symbol": base.symbol,
        "Product2": spec.quote,
        "Product2Symbol": quote.symbol,
        "InstrumentType": "Standard",
        "VenueInstrumentId": spec.instrument_id,
        "VenueId": 1,
        "SortIndex": 0,
        "SessionStatus": "Running",
        "PreviousSessionStatus": "Stopped",
        "SessionStatusDateTime": "2024-01-01T00:00:00.000Z",
        "SelfTradePrevention": True,
        "QuantityIncrement": spec.quantity_increment,
        "PriceIncrement": spec.price_increment,
        "MinimumQuantity": spec.minimum_quantity,
        "MinimumPrice": spec.minimum_price,
        "VenueSymbol": spec.symbol,
        "IsDisable": False,
        "MasterDataId": 0,
        "PriceCollarThreshold": 0,
        "PriceCollarPercent": 0,
        "PriceCollarEnabled": False,
        "PriceFloorLimit": 0,
        "PriceFloorLimitEnabled": False,
        "PriceCeilingLimit": 0,
        "PriceCeilingLimitEnabled": False,
        "CreateWithMarketRunning": True,
        "AllowOnlyMarketMakerCounterParty": False,
        "PriceCollarIndexDifference": 0,
        "PriceCollarConvertToOtcEnabled": False,
        "PriceCollarConvertToOtcClientUserId": 0,
        "PriceCollarConvertToOtcAccountId": 0,
        "PriceCollarConvertToOtcThreshold": 0,
        "OtcConvertSizeThreshold": 0,
        "OtcConvertSizeEnabled": False,
        "OtcTradesPublic": True,
        "PriceTier": 0,
    }


def _level_totals(book: list[Order]) -> tuple[Decimal, int]:
    if not book:
        return ZERO, 0
    price, qty, count = book[0].limit_price, ZERO, 0
    for resting in book:
        if resting.limit_price != price:
            break
        qty += resting.quantity
        count += 1
    return qty, count


class _Stats:
    """Session (UTC day) and rolling 24 h figures of one market at ``now_ms``."""

    def __init__(self, market: Market, now_ms: int) -> None:
        last = market.last_price
        day_start = now_ms - now_ms % _DAY_MS
        window_start = now_ms - _DAY_MS
        before_day = market.reference_price
        before_window = market.reference_price
        today: list[tuple[Decimal, Decimal]] = []
        window: list[tuple[Decimal, Decimal]] = []
        for _, ms, price, qty in market.prints:
            if ms < day_start:
                before_day = price
            else:
                today.append((price, qty))
            if ms < window_start:
                before_window = price
            else:
                window.append((price, qty))
        self.open = today[0][0] if today else before_day
        prices = [p for p, _ in today] or [self.open]
        self.high, self.low, self.close = max(prices), min(prices), last
        self.day_volume = sum((q for _, q in today), ZERO)
        self.day_notional = sum((p * q for p, q in today), ZERO)
        self.day_trades = len(today)
        self.day_change = last - self.open
        self.volume_24h = sum((q for _, q in window), ZERO)
        self.notional_24h = sum((p * q for p, q in window), ZERO)
        self.trades_24h = len(window)
        self.change_24h = last - before_window
        self.change_24h_pct = (
            (self.change_24h * 100 / before_window).quantize(_PCT, ROUND_HALF_EVEN)
            if before_window
            else ZERO
        )


def level1(market: Market, now_ms: int) -> dict[str, Any]:
    """A ``GetLevel1`` object (``TimeStamp`` is a string of epoch ms, as venues send it)."""
    stats = _Stats(market, now_ms)
    bid, ask = market.best_bid, market.best_ask
    bid_qty, bid_ct = _level_totals(market.bids)
    ask_qty, ask_ct = _level_totals(market.asks)
    return {
        "OMSId": 1,
        "InstrumentId": market.spec.instrument_id,
        "BestBid": bid.limit_price if bid else ZERO,
        "BestOffer": ask.limit_price if ask else ZERO,
        "LastTradedPx": market.last_price,
        "LastTradedQty": market.last_quantity,
        "LastTradeTime": market.last_trade_time,
        "SessionOpen": stats.open,
        "SessionHigh": stats.high,
        "SessionLow": stats.low,
        "SessionClose": stats.close,
        "Volume": market.last_quantity,
        "CurrentDayVolume": stats.day_volume,
        "CurrentDayNotional": stats.day_notional,
        "CurrentDayNumTrades": stats.day_trades,
        "CurrentDayPxChange": stats.day_change,
        "Rolling24HrVolume": stats.volume_24h,
        "Rolling24HrNotional": stats.notional_24h,
        "Rolling24NumTrades": stats.trades_24h,
        "Rolling24HrPxChange": stats.change_24h,
        "TimeStamp": str(market.updated_ms),
        "BidQty": bid_qty,
        "AskQty": ask_qty,
        "BidOrderCt": bid_ct,
        "AskOrderCt": ask_ct,
        "Rolling24HrPxChangePercent": stats.change_24h_pct,
    }


def level1_summary(market: Market, now_ms: int) -> list[Any]:
    """A ``GetLevel1SummaryMin`` row, notbank-node column order:
    ``[id, symbol, last, 24h px change, 24h % change, 24h volume]``."""
    stats = _Stats(market, now_ms)
    return [
        market.spec.instrument_id,
        market.spec.symbol,
        market.last_price,
        stats.change_24h,
        stats.change_24h_pct,
        stats.volume_24h,
    ]


def l2_snapshot(market: Market, depth: int) -> list[list[Any]]:
    """``GetL2Snapshot`` rows in the 10-column AlphaPoint layout, bids then asks, best first:
    ``[MDUpdateId, Accounts, ActionDateTime, ActionType, LastTradePrice, Orders, Price,
    InstrumentId, Quantity, Side]``."""
    rows: list[list[Any]] = []
    for side, book in ((0, market.bids), (1, market.asks)):
        levels: list[list[Any]] = []
        for resting in book:
            if levels and levels[-1][0] == resting.limit_price:
                level = levels[-1]
                level[1] += resting.quantity
                level[2] += 1
                level[3].add(resting.account_id)
                level[4] = max(level[4], resting.last_updated_time)
            else:
                if len(levels) >= depth:
                    break
                levels.append(
                    [
                        resting.limit_price,
                        resting.quantity,
                        1,
                        {resting.account_id},
                        resting.last_updated_time,
                    ]
                )
        for price, qty, count, accounts, stamp in levels:
            rows.append(
                [
                    market.version,
                    len(accounts),
                    stamp,
                    0,
                    market.last_price,
                    count,
                    price,
                    market.spec.instrument_id,
                    qty,
                    side,
                ]
            )
    return rows


def order(o: Order, ex: Exchange) -> dict[str, Any]:
    """An order object (``GetOrderStatus``, ``GetOpenOrders``, ``GetOrdersHistory``...)."""
    user = ex.users.get(o.user_id)
    return {
        "Side": SIDES.get(o.side, "Unknown"),
        "OrderId": o.order_id,
        "Price": o.limit_price if o.order_type == LIMIT else ZERO,
        "Quantity": o.quantity,
        "DisplayQuantity": o.quantity if o.state == WORKING else o.orig_quantity,
        "Instrument": o.instrument_id,
        "Account": o.account_id,
        "AccountName": ex.account_name(o.account_id),
        "OrderType": ORDER_TYPES.get(o.order_type, "Unknown"),
        "ClientOrderId": o.client_order_id,
        "OrderState": o.state,
        "ReceiveTime": o.receive_time,
        "ReceiveTimeTicks": ticks(o.receive_time),
        "LastUpdatedTime": o.last_updated_time,
        "LastUpdatedTimeTicks": ticks(o.last_updated_time),
        "OrigQuantity": o.orig_quantity,
        "QuantityExecuted": o.quantity_executed,
        "GrossValueExecuted": o.gross_value_executed,
        "ExecutableValue": ZERO,
        "AvgPrice": o.avg_price,
        "CounterPartyId": 0,
        "ChangeReason": o.change_reason,
        "OrigOrderId": o.order_id,
        "OrigClOrdId": o.client_order_id,
        "EnteredBy": o.user_id,
        "UserName": user.username if user else ex.account_name(o.account_id),
        "IsQuote": False,
        "InsideAsk": o.inside_ask,
        "InsideAskSize": o.inside_ask_size,
        "InsideBid": o.inside_bid,
        "InsideBidSize": o.inside_bid_size,
        "LastTradePrice": o.last_trade_price,
        "RejectReason": o.reject_reason,
        "IsLockedIn": False,
        "CancelReason": o.cancel_reason,
        "OrderFlag": o.order_flag,
        "UseMargin": False,
        "StopPrice": o.stop_price,
        "PegPriceType": "Unknown",
        "PegOffset": ZERO,
        "PegLimitOffset": ZERO,
        "IpAddress": "127.0.0.1",
        "ClientOrderIdUuid": None,
        "TimeInForce": o.time_in_force,
        "OMSId": 1,
    }


def trade(t: Trade, ex: Exchange) -> dict[str, Any]:
    """A ``GetTradesHistory`` row (one account's side of one match)."""
    user = ex.users.get(t.user_id)
    quote = ex.markets[t.instrument_id].spec.quote
    return {
        "OMSId": 1,
        "ExecutionId": t.execution_id,
        "TradeId": t.trade_id,
        "OrderId": t.order_id,
        "AccountId": t.account_id,
        "AccountName": ex.account_name(t.account_id),
        "SubAccountId": 0,
        "ClientOrderId": t.client_order_id,
        "InstrumentId": t.instrument_id,
        "Side": SIDES.get(t.side, "Unknown"),
        "OrderType": ORDER_TYPES.get(t.order_type, "Unknown"),
        "Quantity": t.quantity,
        "RemainingQuantity": t.remaining_quantity,
        "Price": t.price,
        "Value": t.value,
        "CounterParty": str(t.counter_party),
        "OrderTradeRevision": t.order_trade_revision,
        "Direction": t.direction,
        "IsBlockTrade": False,
        "Fee": t.fee,
        "FeeProductId": t.fee_product_id,
        "OrderOriginator": t.user_id,
        "UserName": user.username if user else ex.account_name(t.account_id),
        "TradeTimeMS": t.trade_time_ms,
        "MakerTaker": t.maker_taker,
        "AdapterTradeId": 0,
        "InsideBid": t.inside_bid,
        "InsideBidSize": t.inside_bid_size,
        "InsideAsk": t.inside_ask,
        "InsideAskSize": t.inside_ask_size,
        "IsQuote": False,
        "CounterPartyClientUserId": 1,
        "NotionalProductId": quote,
        "NotionalRate": Decimal(1),
        "NotionalValue": t.value,
        "NotionalHoldAmount": ZERO,
        "TradeTime": ticks(t.trade_time_ms),
    }


def _period_totals(ex: Exchange, account_id: int, product_id: int, now: float) -> dict[str, Any]:
    stamp = datetime.fromtimestamp(now, UTC)
    out: dict[str, Any] = {}
    for kind, tickets in (
        ("Deposit", ex.deposit_tickets.values()),
        ("Withdraw", ex.withdraw_tickets.values()),
    ):
        sums = {"Day": ZERO, "Month": ZERO, "Year": ZERO}
        for t in tickets:
            if t.account_id != account_id or t.product_id != product_id or t.status != 5:
                continue
            when = datetime.fromtimestamp(t.updated_at, UTC)
            if when.year == stamp.year:
                sums["Year"] += t.amount
                if when.month == stamp.month:
                    sums["Month"] += t.amount
                    if when.day == stamp.day:
                        sums["Day"] += t.amount
        rate = ex.notional_rate(product_id)
        for period, amount in sums.items():
            out[f"Total{period}{kind}s"] = amount
            out[f"Total{period}{kind}Notional"] = amount * rate
    return out


def position(ex: Exchange, account_id: int, spec: ProductSpec, now: float) -> dict[str, Any]:
    """A ``GetAccountPositions`` element; ``Amount`` is the total, ``Hold`` the reserved part."""
    amount, hold = ex.balance(account_id, spec.product_id)
    pending_dep, pending_wd = ex.pending(account_id, spec.product_id)
    rate = ex.notional_rate(spec.product_id)
    totals = _period_totals(ex, account_id, spec.product_id, now)
    return {
        "OMSId": 1,
        "AccountId": account_id,
        "ProductSymbol": spec.symbol,
        "ProductId": spec.product_id,
        "Amount": amount,
        "Hold": hold,
        "PendingDeposits": pending_dep,
        "PendingWithdraws": pending_wd,
        "TotalDayDeposits": totals["TotalDayDeposits"],
        "TotalMonthDeposits": totals["TotalMonthDeposits"],
        "TotalYearDeposits": totals["TotalYearDeposits"],
        "TotalDayDepositNotional": totals["TotalDayDepositNotional"],
        "TotalMonthDepositNotional": totals["TotalMonthDepositNotional"],
        "TotalYearDepositNotional": totals["TotalYearDepositNotional"],
        "TotalDayWithdraws": totals["TotalDayWithdraws"],
        "TotalMonthWithdraws": totals["TotalMonthWithdraws"],
        "TotalYearWithdraws": totals["TotalYearWithdraws"],
        "TotalDayWithdrawNotional": totals["TotalDayWithdrawNotional"],
        "TotalMonthWithdrawNotional": totals["TotalMonthWithdrawNotional"],
        "TotalYearWithdrawNotional": totals["TotalYearWithdrawNotional"],
        "NotionalProductId": 1,
        "NotionalProductSymbol": ex.products[1].symbol if 1 in ex.products else "",
        "NotionalValue": amount * rate,
        "NotionalHoldAmount": hold * rate,
        "NotionalRate": rate,
        "TotalDayTransferNotional": ZERO,
    }


DEPOSIT_STATUS_NAMES = (
    "New", "AdminProcessing", "Accepted", "Rejected", "SystemProcessing", "FullyProcessed",
    "Failed", "Pending", "Confirmed", "AmlProcessing", "AmlAccepted", "AmlRejected", "AmlFailed",
    "LimitsAccepted", "LimitsRejected",
)  # fmt: skip
WITHDRAW_STATUS_NAMES = (
    "New", "AdminProcessing", "Accepted", "Rejected", "SystemProcessing", "FullyProcessed",
    "Failed", "Pending", "Pending2Fa", "AutoAccepted", "Delayed", "UserCanceled",
    "AdminCanceled", "AmlProcessing", "AmlAccepted", "AmlRejected", "AmlFailed",
    "LimitsAccepted", "LimitsRejected", "Submitted", "Confirmed", "ManuallyConfirmed",
    "Confirmed2Fa",
)  # fmt: skip


def deposit_row(t: DepositTicket, ex: Exchange) -> dict[str, Any]:
    """A ``GetDeposits`` row (PascalCase, ``TicketStatus`` as a name, as ccxt sees it)."""
    spec = ex.products[t.product_id]
    return {
        "OMSId": 1,
        "DepositId": t.ticket_number,
        "AccountId": t.account_id,
        "SubAccountId": 0,
        "ProductId": t.product_id,
        "Amount": t.amount,
        "LastUpdateTimeStamp": ticks(int(t.updated_at * 1000)),
        "ProductType": spec.product_type,
        "TicketStatus": DEPOSIT_STATUS_NAMES[t.status],
        "DepositInfo": t.deposit_info,
        "DepositCode": t.request_code,
        "TicketNumber": t.ticket_number,
        "NotionalProductId": 1,
        "NotionalValue": t.amount * ex.notional_rate(t.product_id),
        "FeeAmount": t.fee,
    }


def withdraw_row(t: WithdrawTicket, ex: Exchange) -> dict[str, Any]:
    """A ``GetWithdraws`` row (``TicketStatus`` as a name, ``TemplateForm`` JSON text)."""
    spec = ex.products[t.product_id]
    return {
        "Amount": t.amount,
        "FeeAmount": t.fee,
        "NotionalValue": t.amount * ex.notional_rate(t.product_id),
        "WithdrawId": t.ticket_number,
        "AssetManagerId": 1,
        "AccountId": t.account_id,
        "AssetId": t.product_id,
        "TemplateForm": t.template_form,
        "TemplateFormType": t.template_type,
        "omsId": 1,
        "TicketStatus": WITHDRAW_STATUS_NAMES[t.status],
        "TicketNumber": t.ticket_number,
        "WithdrawTransactionDetails": "",
        "WithdrawType": "Withdraw",
        "WithdrawCode": t.request_code,
        "AssetType": spec.product_type,
        "Reaccepted": False,
        "NotionalProductId": 1,
        "LastUpdateTimeStamp": ticks(int(t.updated_at * 1000)),
    }


def deposit_ticket(t: DepositTicket, ex: Exchange) -> dict[str, Any]:
    """A deposit ticket (camelCase keys, capital ``Status`` as int)."""
    user = ex.users.get(t.user_id)
    spec = ex.products[t.product_id]
    rate = ex.notional_rate(t.product_id)
    return {
        "assetManagerId": t.asset_manager_id,
        "accountProviderId": t.product_id,
        "accountId": t.account_id,
        "accountName": ex.account_name(t.account_id),
        "assetId": t.product_id,
        "assetName": spec.symbol,
        "amount": t.amount,
        "notionalValue": t.amount * rate,
        "notionalProductId": 1,
        "omsId": 1,
        "requestCode": t.request_code,
        "referenceId": "",
        "requestIP": t.request_ip,
        "requestUser": t.user_id,
        "requestUserName": user.username if user else "",
        "operatorId": t.operator_id,
        "Status": t.status,
        "feeAmt": t.fee,
        "updatedByUser": t.user_id,
        "updatedByUserName": user.username if user else "",
        "ticketNumber": t.ticket_number,
        "depositInfo": t.deposit_info,
        "rejectReason": t.reject_reason,
        "createdTimestamp": iso(t.created_at),
        "lastUpdateTimeStamp": iso(t.updated_at),
        "createdTimestampTick": ticks(int(t.created_at * 1000)),
        "lastUpdateTimestampTick": ticks(int(t.updated_at * 1000)),
        "comments": [],
        "attachments": [],
    }


def withdraw_ticket(t: WithdrawTicket, ex: Exchange) -> dict[str, Any]:
    """A withdraw ticket (camelCase keys, capital ``Status`` as int; ``templateForm`` is
    JSON text; ``Comments``/``Attachments``/``AuditLog`` JSON-text arrays, as in SLATE)."""
    user = ex.users.get(t.user_id)
    spec = ex.products[t.product_id]
    rate = ex.notional_rate(t.product_id)
    return {
        "assetManagerId": 1,
        "accountProviderId": t.account_provider_id,
        "accountId": t.account_id,
        "accountName": ex.account_name(t.account_id),
        "assetId": t.product_id,
        "assetName": spec.symbol,
        "amount": t.amount,
        "notionalValue": t.amount * rate,
        "notionalProductId": 1,
        "templateForm": t.template_form,
        "templateFormType": t.template_type,
        "omsId": 1,
        "requestCode": t.request_code,
        "referenceId": "",
        "requestIP": t.request_ip,
        "requestUserId": t.user_id,
        "requestUserName": user.username if user else "",
        "operatorId": 1,
        "Status": t.status,
        "feeAmt": t.fee,
        "updatedByUser": t.user_id,
        "updatedByUserName": user.username if user else "",
        "ticketNumber": t.ticket_number,
        "withdrawTransactionDetails": dumps_text(
            {"TxId": "0x" + t.request_code.replace("-", "")} if t.status == 5 else {}
        ),
        "rejectReason": t.reject_reason,
        "createdTimestamp": iso(t.created_at),
        "lastUpdateTimestamp": iso(t.updated_at),
        "createdTimestampTick": ticks(int(t.created_at * 1000)),
        "lastUpdateTimestampTick": ticks(int(t.updated_at * 1000)),
        "Comments": "[]",
        "Attachments": "[]",
        "AuditLog": "[]",
    }
