"""Orders and trades."""

from __future__ import annotations

from decimal import Decimal

import attrs

from .enums import (
    ChangeReason,
    MakerTaker,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
    TradeDirection,
)

__all__ = ["Order", "SendOrderResult", "Trade"]


@attrs.frozen(slots=False)
class SendOrderResult:
    """Answer of ``SendOrder``: ``"Accepted"`` means received, not filled."""

    status: str
    order_id: int
    errormsg: str | None = None


@attrs.frozen(slots=False)
class Order:
    """An order as ``GetOrderStatus`` / ``GetOpenOrders`` / ``GetOrdersHistory`` show it.

    ``quantity`` is what remains; ``orig_quantity`` what was asked.  KIIEX's guide
    documents a four-field order status (``OrderId``, ``OrderState``, ``QuantityExecuted``,
    ``AvgPrice``): every other field is ``None`` when the answer leaves it out.  An
    ``OrderState`` name the SDK does not know becomes ``OrderState.UNKNOWN``, which is not
    final: nothing is ever concluded from it.
    """

    order_id: int
    order_state: OrderState
    quantity_executed: Decimal
    avg_price: Decimal
    instrument_id: int | None = None
    account_id: int | None = None
    side: Side | None = None
    order_type: OrderType | None = None
    client_order_id: int | None = None
    price: Decimal | None = None
    quantity: Decimal | None = None
    display_quantity: Decimal | None = None
    orig_quantity: Decimal | None = None
    gross_value_executed: Decimal | None = None
    change_reason: ChangeReason | None = None
    receive_time: int | None = None
    last_updated_time: int | None = None
    reject_reason: str | None = None
    cancel_reason: str | None = None
    orig_order_id: int | None = None
    time_in_force: TimeInForce | None = None
    stop_price: Decimal | None = None
    order_flag: str | None = None
    is_quote: bool | None = None
    client_order_id_uuid: str | None = None
    oms_id: int | None = None


@attrs.frozen(slots=False)
class Trade:
    """One execution of this account (``GetTradesHistory`` row).

    KIIEX's guide documents four fields (``tradeId``, ``orderId``, ``quantity``,
    ``price``): every other field, the fee included, is ``None`` when the answer leaves it
    out (``None`` means "not said", never zero).
    """

    trade_id: int
    order_id: int
    quantity: Decimal
    price: Decimal
    execution_id: int | None = None
    instrument_id: int | None = None
    account_id: int | None = None
    side: Side | None = None
    value: Decimal | None = None
    fee: Decimal | None = None
    fee_product_id: int | None = None
    client_order_id: int | None = None
    remaining_quantity: Decimal | None = None
    order_type: OrderType | None = None
    maker_taker: MakerTaker | None = None
    direction: TradeDirection | None = None
    trade_time_ms: int | None = None
    trade_time: int | None = None
    is_quote: bool | None = None
    notional_product_id: int | None = None
    notional_rate: Decimal | None = None
    notional_value: Decimal | None = None
    oms_id: int | None = None
