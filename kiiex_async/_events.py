"""Typed values a stream delivers: public trades and account events (frozen attrs, no I/O).

Account events wrap the same models the HTTP calls return (``Order``, ``Trade``,
``Position``, tickets).  :class:`Resynced` is the stream's own marker: events may have been
lost (a reconnect, a full queue, an unreadable event), so it carries the state read back
over REST, which is the source of truth.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

from .models import DepositTicket, Order, Position, Side, Trade, WithdrawTicket

__all__ = [
    "AccountEvent",
    "CancelReject",
    "DepositTicketUpdate",
    "OrderReject",
    "OrderStateUpdate",
    "OrderTradeUpdate",
    "PositionUpdate",
    "PublicTrade",
    "Resynced",
    "WithdrawTicketUpdate",
]


@attrs.frozen
class PublicTrade:
    """One public trade (``TradeDataUpdateEvent`` row); ``taker_side`` is the aggressor."""

    trade_id: int
    instrument_id: int
    quantity: Decimal
    price: Decimal
    order_id: int
    trade_time_ms: int
    direction: int
    taker_side: Side


@attrs.frozen
class OrderReject:
    """``NewOrderRejectEvent``: an order the exchange refused."""

    account_id: int
    order_id: int = 0
    client_order_id: int = 0
    instrument_id: int = 0
    reject_reason: str = ""


@attrs.frozen
class CancelReject:
    """``CancelOrderRejectEvent``: a cancel the exchange refused."""

    account_id: int
    order_id: int = 0
    reject_reason: str = ""


@attrs.frozen
class OrderStateUpdate:
    """``OrderStateEvent``."""

    order: Order


@attrs.frozen
class OrderTradeUpdate:
    """``OrderTradeEvent``: a fill of one of this account's orders."""

    trade: Trade


@attrs.frozen
class PositionUpdate:
    """``AccountPositionEvent``."""

    position: Position


@attrs.frozen
class DepositTicketUpdate:
    """``DepositTicketUpdateEvent``."""

    ticket: DepositTicket


@attrs.frozen
class WithdrawTicketUpdate:
    """``WithdrawTicketUpdateEvent``."""

    ticket: WithdrawTicket


@attrs.frozen
class Resynced:
    """Events may have been missed (``reason``: ``"reconnect"``, ``"overflow"``,
    ``"unreadable"``); this is the account as REST reads it now."""

    reason: str
    open_orders: tuple[Order, ...]
    positions: tuple[Position, ...]


AccountEvent = (
    OrderStateUpdate
    | OrderTradeUpdate
    | PositionUpdate
    | OrderReject
    | CancelReject
    | DepositTicketUpdate
    | WithdrawTicketUpdate
    | Resynced
)
