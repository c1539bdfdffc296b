"""Account and order endpoints of :class:`~kiiex_async.KiiexClient`.

:class:`TradingMixin` owns balances and the ledger, ``SendOrder`` (validation, rounding to
the instrument's increments, the payload), cancels, order status, open orders and the
order and trade histories.  ``send_order``, ``cancel_order`` and ``cancel_all_orders`` are
writes: sent once, an unknown outcome raises :class:`~kiiex_async.errors.UnknownOutcomeError`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Final

from . import _validate as check
from . import pricing
from ._session import SessionMixin
from ._validate import Amount
from .errors import InvalidInputError, NotFoundError
from .models import (
    AccountTransaction,
    GenericResult,
    Instrument,
    Order,
    OrderType,
    Position,
    SendOrderResult,
    Side,
    TimeInForce,
    Trade,
)

__all__ = ["TradingMixin"]

_LIMIT_TYPES: Final = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
_STOP_TYPES: Final = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT})
_SUPPORTED_TYPES: Final = frozenset(
    {OrderType.MARKET, OrderType.LIMIT, OrderType.STOP_MARKET, OrderType.STOP_LIMIT}
)


class TradingMixin(SessionMixin):
    """Account and order calls (see the module docstring)."""

    # -- account --------------------------------------------------------------------------

    async def get_account_positions(
        self, *, account_id: int | None = None, timeout: float | None = None
    ) -> list[Position]:
        """``GetAccountPositions``: the balance (``amount``, ``hold``) of every product."""
        check.optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call("GetAccountPositions", account_id, timeout=timeout)
        return self._decode_list("GetAccountPositions", data, Position)

    async def get_account_transactions(
        self,
        *,
        account_id: int | None = None,
        depth: int | None = None,
        timeout: float | None = None,
    ) -> list[AccountTransaction]:
        """``GetAccountTransactions``: the account's ledger (credits, debits, balances),
        at most ``depth`` entries when given."""
        check.optional_int(account_id, "account_id", minimum=1)
        limit = check.optional_int(depth, "depth", minimum=1)
        fields = {} if limit is None else {"Depth": limit}
        data = await self._account_call(
            "GetAccountTransactions", account_id, fields, timeout=timeout
        )
        return self._decode_list("GetAccountTransactions", data, AccountTransaction)

    # -- orders ---------------------------------------------------------------------------

    async def send_order(
        self,
        instrument_id: int,
        side: Side,
        quantity: Amount | None = None,
        *,
        order_type: OrderType = OrderType.MARKET,
        time_in_force: TimeInForce = TimeInForce.GTC,
        limit_price: Amount | None = None,
        value: Amount | None = None,
        client_order_id: int = 0,
        account_id: int | None = None,
        post_only: bool = False,
        stop_price: Amount | None = None,
        instrument: Instrument | None = None,
        timeout: float | None = None,
    ) -> SendOrderResult:
        """``SendOrder`` (a WRITE: sent once, never retried after it may have arrived).

        Amounts are ``Decimal`` (or ``int``/``str``), finite and > 0; floats are refused.
        A market buy may give ``value`` (quote amount to spend) instead of ``quantity``.
        Limit orders need ``limit_price``, stop orders ``stop_price``.  With ``instrument``
        the quantity and prices are rounded down to its increments and checked against its
        minimum.  ``"Accepted"`` means received, not filled: poll :meth:`get_order_status`.
        Raises :class:`~kiiex_async.errors.UnknownOutcomeError` when the order may or may not
        exist; reconcile with ``get_orders_history(client_order_id=...)``.
        """
        instrument_id = check.positive_id(instrument_id, "instrument_id")
        side = check.member(side, Side, "side", frozenset({Side.BUY, Side.SELL}))
        order_type = check.member(order_type, OrderType, "order_type", _SUPPORTED_TYPES)
        time_in_force = check.member(time_in_force, TimeInForce, "time_in_force")
        if time_in_force is TimeInForce.UNKNOWN:
            raise InvalidInputError("time_in_force must not be UNKNOWN")
        client_order_id = check.client_order_id(client_order_id)
        check.optional_int(account_id, "account_id", minimum=1)
        if not isinstance(post_only, bool):
            raise InvalidInputError("post_only must be a bool")
        qty: Decimal | None = None
        spend: Decimal | None = None
        if value is not None:
            if order_type is not OrderType.MARKET or side is not Side.BUY:
                raise InvalidInputError("value (an amount to spend) is only for market buys")
            if quantity is not None:
                raise InvalidInputError("pass quantity or value, not both")
            spend = pricing.check_amount(value, name="value")
        elif quantity is None:
            raise InvalidInputError("quantity is required (or value, for a market buy)")
        else:
            qty = pricing.check_amount(quantity, name="quantity")
        limit = check.order_price(limit_price, "limit_price", order_type, _LIMIT_TYPES)
        stop = check.order_price(stop_price, "stop_price", order_type, _STOP_TYPES)
        if post_only and order_type is not OrderType.LIMIT:
            raise InvalidInputError("post_only applies to LIMIT orders only")
        if instrument is not None:
            if not isinstance(instrument, Instrument):
                raise InvalidInputError("instrument must be an Instrument")
            if instrument.instrument_id != instrument_id:
                raise InvalidInputError(
                    f"instrument is {instrument.instrument_id}, not instrument_id {instrument_id}"
                )
            if qty is not None:
                qty = pricing.round_quantity(instrument, qty)
            if limit is not None:
                limit = pricing.round_price(instrument, limit, side=side)
            if stop is not None:
                stop = pricing.round_price(instrument, stop, side=side)

        def build() -> dict[str, Any]:
            return _order_payload(
                oms_id=self._oms_id,
                account_id=self._account(account_id),
                instrument_id=instrument_id,
                side=side,
                order_type=order_type,
                time_in_force=time_in_force,
                client_order_id=client_order_id,
                quantity=qty,
                value=spend,
                limit_price=limit,
                stop_price=stop,
                post_only=post_only,
            )

        data = await self._private("SendOrder", build, write=True, timeout=timeout)
        return self._decode("SendOrder", data, SendOrderResult, write=True)

    async def cancel_order(
        self,
        *,
        order_id: int | None = None,
        client_order_id: int | None = None,
        account_id: int | None = None,
        timeout: float | None = None,
    ) -> GenericResult:
        """``CancelOrder`` by ``order_id`` or by ``client_order_id`` (a WRITE).

        The answer only confirms receipt; check with :meth:`get_order_status`.
        """
        if (order_id is None) == (client_order_id is None):
            raise InvalidInputError("pass exactly one of order_id and client_order_id")
        if order_id is not None:
            check.positive_id(order_id, "order_id")
        if client_order_id is not None:
            check.client_order_id(client_order_id)
        check.optional_int(account_id, "account_id", minimum=1)
        key = {"OrderId": order_id} if order_id is not None else {"ClOrderId": client_order_id}
        data = await self._account_call("CancelOrder", account_id, key, write=True, timeout=timeout)
        return self._decode("CancelOrder", data, GenericResult, write=True)

    async def cancel_all_orders(
        self,
        *,
        instrument_id: int | None = None,
        account_id: int | None = None,
        timeout: float | None = None,
    ) -> GenericResult:
        """``CancelAllOrders`` (a WRITE, sent once): cancel the account's working orders,
        or only those of ``instrument_id``.

        The instrument goes out as ``InstrumentId`` and as ``IntrumentId`` (AlphaPoint's
        documented spelling, which ccxt sends): a server that read only the other one would
        otherwise cancel every order.  The answer only confirms receipt: check with
        :meth:`get_open_orders`.
        """
        instrument = check.optional_int(instrument_id, "instrument_id", minimum=1)
        check.optional_int(account_id, "account_id", minimum=1)
        fields = (
            {} if instrument is None else {"InstrumentId": instrument, "IntrumentId": instrument}
        )
        data = await self._account_call(
            "CancelAllOrders", account_id, fields, write=True, timeout=timeout
        )
        return self._decode("CancelAllOrders", data, GenericResult, write=True)

    async def get_order_status(
        self, order_id: int, *, account_id: int | None = None, timeout: float | None = None
    ) -> Order:
        """``GetOrderStatus``: one order (the answer may be an object or a 1-element array)."""
        order_id = check.positive_id(order_id, "order_id")
        check.optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call(
            "GetOrderStatus", account_id, {"OrderId": order_id}, timeout=timeout
        )
        if isinstance(data, list):
            orders = self._decode_list("GetOrderStatus", data, Order)
            matching = [o for o in orders if o.order_id == order_id] or orders[:1]
            if not matching:
                raise NotFoundError(
                    f"GetOrderStatus: order {order_id} not found",
                    method="GetOrderStatus",
                    errorcode=104,
                )
            return matching[0]
        return self._decode("GetOrderStatus", data, Order)

    async def get_open_orders(
        self, *, account_id: int | None = None, timeout: float | None = None
    ) -> list[Order]:
        """``GetOpenOrders``: the account's working orders."""
        check.optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call("GetOpenOrders", account_id, timeout=timeout)
        return self._decode_list("GetOpenOrders", data, Order)

    async def get_orders_history(
        self,
        *,
        account_id: int | None = None,
        client_order_id: int | None = None,
        instrument_id: int | None = None,
        start_timestamp: int | None = None,
        end_timestamp: int | None = None,
        depth: int | None = None,
        start_index: int | None = None,
        timeout: float | None = None,
    ) -> list[Order]:
        """``GetOrdersHistory``: past and present orders, filterable by ``client_order_id``."""
        check.optional_int(account_id, "account_id", minimum=1)
        filters = {
            "ClientOrderId": None
            if client_order_id is None
            else check.client_order_id(client_order_id),
            "InstrumentId": check.optional_int(instrument_id, "instrument_id", minimum=1),
            "StartTimestamp": check.optional_int(start_timestamp, "start_timestamp"),
            "EndTimestamp": check.optional_int(end_timestamp, "end_timestamp"),
            "Depth": check.optional_int(depth, "depth", minimum=1),
            "StartIndex": check.optional_int(start_index, "start_index"),
        }
        given = {k: v for k, v in filters.items() if v is not None}
        data = await self._account_call("GetOrdersHistory", account_id, given, timeout=timeout)
        return self._decode_list("GetOrdersHistory", data, Order)

    async def get_order_history_by_order_id(
        self, order_id: int, *, timeout: float | None = None
    ) -> list[Order]:
        """``GetOrderHistoryByOrderId``: every revision of one order."""
        order_id = check.positive_id(order_id, "order_id")

        def build() -> dict[str, Any]:
            return {"OMSId": self._oms_id, "OrderId": order_id}

        data = await self._private("GetOrderHistoryByOrderId", build, timeout=timeout)
        return self._decode_list("GetOrderHistoryByOrderId", data, Order)

    async def get_trades_history(
        self,
        *,
        account_id: int | None = None,
        instrument_id: int | None = None,
        order_id: int | None = None,
        trade_id: int | None = None,
        start_timestamp: int | None = None,
        end_timestamp: int | None = None,
        depth: int | None = None,
        start_index: int | None = None,
        timeout: float | None = None,
    ) -> list[Trade]:
        """``GetTradesHistory``: the account's executions (fills, with fees)."""
        check.optional_int(account_id, "account_id", minimum=1)
        filters = {
            "InstrumentId": check.optional_int(instrument_id, "instrument_id", minimum=1),
            "OrderId": check.optional_int(order_id, "order_id", minimum=1),
            "TradeId": check.optional_int(trade_id, "trade_id", minimum=1),
            "StartTimestamp": check.optional_int(start_timestamp, "start_timestamp"),
            "EndTimestamp": check.optional_int(end_timestamp, "end_timestamp"),
            "Depth": check.optional_int(depth, "depth", minimum=1),
            "StartIndex": check.optional_int(start_index, "start_index"),
        }
        given = {k: v for k, v in filters.items() if v is not None}
        data = await self._account_call("GetTradesHistory", account_id, given, timeout=timeout)
        return self._decode_list("GetTradesHistory", data, Trade)


def _order_payload(
    *,
    oms_id: int,
    account_id: int,
    instrument_id: int,
    side: Side,
    order_type: OrderType,
    time_in_force: TimeInForce,
    client_order_id: int,
    quantity: Decimal | None,
    value: Decimal | None,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    post_only: bool,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "OMSId": oms_id,
        "AccountId": account_id,
        "InstrumentId": instrument_id,
        "Side": int(side),
        "OrderType": int(order_type),
        "TimeInForce": int(time_in_force),
        "ClientOrderId": client_order_id,
    }
    if quantity is not None:
        payload["Quantity"] = quantity
    if value is not None:
        payload["Value"] = value
    if limit_price is not None:
        payload["LimitPrice"] = limit_price
    if stop_price is not None:
        payload["StopPrice"] = stop_price
    if post_only:
        payload["PostOnly"] = True
    return payload
