"""Order handlers: ``SendOrder``, cancels, order status and history, trades, the journal.

Enumerations are accepted as numbers or names (``"Sell"``, ``"Market"``, ``"IOC"``);
history calls take AlphaPoint's filters, time windows (seconds, milliseconds or .NET
ticks) and paging (``StartIndex``, ``Depth``), most recent first.
"""

from __future__ import annotations

from . import _guide as guide
from . import _render as render
from ._call import Call, Handlers, Reply, _ok, _page, _window
from ._history import transaction_row
from ._records import ZERO, ExchangeError, Order, OrderRequest

__all__ = ["OrderHandlers"]

_SIDE_NAMES = {"buy": 0, "sell": 1, "short": 2, "unknown": 3}

_TYPE_NAMES = {
    "unknown": 0,
    "market": 1,
    "limit": 2,
    "stopmarket": 3,
    "stoplimit": 4,
    "trailingstopmarket": 5,
    "trailingstoplimit": 6,
    "blocktrade": 7,
}

_TIF_NAMES = {"unknown": 0, "gtc": 1, "opg": 2, "ioc": 3, "fok": 4, "gtx": 5, "gtd": 6}


class OrderHandlers(Handlers):
    """Handlers of orders, trades and the account journal (see the module doc)."""

    def send_order(self, call: Call) -> Reply:
        """``{"status":"Accepted","errormsg":"","OrderId":N}`` or the Rejected shape."""
        p = call.params
        account_id = self._account(call)
        assert call.user is not None
        request = OrderRequest(
            instrument_id=p.integer("InstrumentId"),
            side=p.integer("Side", names=_SIDE_NAMES),
            order_type=p.integer("OrderType", names=_TYPE_NAMES),
            quantity=p.decimal("Quantity", ZERO),
            limit_price=p.decimal("LimitPrice", ZERO),
            value=p.decimal("Value", ZERO),
            time_in_force=p.integer("TimeInForce", 1, names=_TIF_NAMES),
            client_order_id=p.integer("ClientOrderId", 0),
            post_only=p.boolean("PostOnly"),
            stop_price=p.decimal("StopPrice", ZERO),
        )
        order = self.exchange.send_order(
            request, account_id=account_id, user_id=call.user.user_id, now=call.now
        )
        if order.state == "Rejected":
            return _ok({"status": "Rejected", "errormsg": order.reject_reason, "errorcode": 101})
        return _ok({"status": "Accepted", "errormsg": "", "OrderId": order.order_id})

    def cancel_order(self, call: Call) -> Reply:
        """By ``OrderId``, or by ``ClOrderId`` (alias ``ClientOrderId``) of the account."""
        p = call.params
        account_id = self._account(call)
        client_id = p.integer("ClOrderId", 0) or p.integer("ClientOrderId", 0)
        self.exchange.cancel_order(
            account_ids=[account_id],
            order_id=p.integer("OrderId", 0),
            client_order_id=client_id,
            account_id=account_id,
            now=call.now,
        )
        return _ok(render.generic(True, None, 0, None))

    def cancel_all_orders(self, call: Call) -> Reply:
        """Cancels every working order of the account (optionally one ``InstrumentId``)."""
        account_id = self._account(call)
        instrument = call.params.integer("InstrumentId", 0) or call.params.integer("IntrumentId", 0)
        self.exchange.cancel_all_orders(account_id, instrument, call.now)
        return _ok(render.generic(True, None, 0, None))

    def _own_order(self, call: Call, order_id: int) -> Order:
        account_id = self._account(call)
        order = self.exchange.orders.get(order_id)
        if order is None or order.account_id != account_id:
            raise ExchangeError(104, "Resource Not Found", f"Order {order_id} not found")
        return order

    def get_order_status(self, call: Call) -> Reply:
        """One order object (not an array), errorcode 104 if unknown."""
        order = self._own_order(call, call.params.integer("OrderId"))
        if self.guide:
            return _ok(guide.order_status(order))
        return _ok(render.order(order, self.exchange))

    def get_open_orders(self, call: Call) -> Reply:
        """Working orders of the account, most recent first."""
        account_id = self._account(call)
        ex = self.exchange
        return _ok([render.order(o, ex) for o in ex.orders_of(account_id) if o.is_working])

    def get_orders_history(self, call: Call) -> Reply:
        """Orders of the account, most recent first, with AlphaPoint's filters.

        Filters (0 = no filter): ``ClientOrderId``, ``OrderId``, ``OriginalOrderId``,
        ``OriginalClientOrderId``, ``InstrumentId``, ``OrderState``, ``StartTimestamp`` /
        ``EndTimestamp`` (seconds, ms or ticks, on ``ReceiveTime``), ``StartIndex``, ``Depth``.
        """
        p = call.params
        account_id = self._account(call)
        ex = self.exchange
        client_id = p.integer("ClientOrderId", 0) or p.integer("OriginalClientOrderId", 0)
        order_id = p.integer("OrderId", 0) or p.integer("OriginalOrderId", 0)
        instrument = p.integer("InstrumentId", 0)
        state = p.text("OrderState").strip().lower()
        start, end = _window(p)
        found = [
            o
            for o in ex.orders_of(account_id)
            if (not client_id or o.client_order_id == client_id)
            and (not order_id or o.order_id == order_id)
            and (not instrument or o.instrument_id == instrument)
            and (not state or o.state.lower() == state)
            and (start is None or o.receive_time >= start)
            and (end is None or o.receive_time <= end)
        ]
        return _ok([render.order(o, ex) for o in _page(found, p)])

    def get_order_history_by_order_id(self, call: Call) -> Reply:
        """Every revision of one order, most recent first."""
        order = self._own_order(call, call.params.integer("OrderId"))
        revisions = self.exchange.revisions(order)
        return _ok([render.order(r, self.exchange) for r in reversed(revisions)])

    def get_trades_history(self, call: Call) -> Reply:
        """Executions of the account, most recent first, with AlphaPoint's filters."""
        p = call.params
        account_id = self._account(call)
        ex = self.exchange
        instrument = p.integer("InstrumentId", 0)
        order_id = p.integer("OrderId", 0)
        trade_id = p.integer("TradeId", 0)
        execution_id = p.integer("ExecutionId", 0)
        client_id = p.integer("ClientOrderId", 0)
        start, end = _window(p)
        found = [
            t
            for t in ex.trades_of(account_id)
            if (not instrument or t.instrument_id == instrument)
            and (not order_id or t.order_id == order_id)
            and (not trade_id or t.trade_id == trade_id)
            and (not execution_id or t.execution_id == execution_id)
            and (not client_id or t.client_order_id == client_id)
            and (start is None or t.trade_time_ms >= start)
            and (end is None or t.trade_time_ms <= end)
        ]
        if self.guide:
            return _ok([guide.trade(t) for t in _page(found, p)])
        return _ok([render.trade(t, ex) for t in _page(found, p)])

    def get_account_transactions(self, call: Call) -> Reply:
        """The account's journal, most recent first, with AlphaPoint's filters (``Depth``,
        ``StartIndex``, ``ProductId``, ``TransactionId``, ``ReferenceId``, time window)."""
        p = call.params
        account_id = self._account(call)
        product = p.integer("ProductId", 0)
        transaction_id = p.integer("TransactionId", 0)
        reference_id = p.integer("ReferenceId", 0)
        start, end = _window(p)
        found = [
            t
            for t in reversed(self.exchange.journal)
            if t.account_id == account_id
            and (not product or t.product_id == product)
            and (not transaction_id or t.transaction_id == transaction_id)
            and (not reference_id or t.reference_id == reference_id)
            and (start is None or t.time_ms >= start)
            and (end is None or t.time_ms <= end)
        ]
        return _ok([transaction_row(t) for t in _page(found, p)])
