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

_ZERO = Decimal(0)


@attrs.frozen
class SendOrderResult:
    """Answer of ``SendOrder``: ``"Accepted"`` means received, not filled."""

    status: str
    order_id: int
    errormsg: str | None = None


@attrs.frozen
class Order:
    """An order as ``GetOrderStatus`` / ``GetOpenOrders`` / ``GetOrdersHistory`` show it.

    ``quantity`` is what remains; ``orig_quantity`` what was asked.
    """

    order_id: int
    instrument_id: int
    account_id: int
    side: Side
    order_type: OrderType
    order_state: OrderState
    client_order_id: int = 0
    price: Decimal = _ZERO
    quantity: Decimal = _ZERO
    orig_quantity: Decimal = _ZERO
    quantity_executed: Decimal = _ZERO
    gross_value_executed: Decimal = _ZERO
    avg_price: Decimal = _ZERO
    change_reason: ChangeReason = ChangeReason.UNKNOWN
    receive_time: int = 0
    last_updated_time: int = 0
    reject_reason: str = ""
    cancel_reason: str = ""
    orig_order_id: int = 0
    time_in_force: TimeInForce = TimeInForce.UNKNOWN
    stop_price: Decimal = _ZERO
    oms_id: int = 1


@attrs.frozen
class Trade:
    """One execution of this account (``GetTradesHistory`` row)."""

    trade_id: int
    execution_id: int
    order_id: int
    instrument_id: int
    account_id: int
    side: Side
    quantity: Decimal
    price: Decimal
    value: Decimal = _ZERO
    fee: Decimal = _ZERO
    fee_product_id: int = 0
    client_order_id: int = 0
    remaining_quantity: Decimal = _ZERO
    order_type: OrderType = OrderType.UNKNOWN
    maker_taker: MakerTaker = MakerTaker.UNKNOWN
    direction: TradeDirection = TradeDirection.NO_CHANGE
    trade_time_ms: int = 0
    trade_time: int = 0
    oms_id: int = 1
