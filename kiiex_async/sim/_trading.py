"""User orders: ``SendOrder``, ``CancelOrder``, ``CancelAllOrders`` and order queries.

Validates a request, checks funds, then matches and rests it through :mod:`._book`; the
market maker re-quotes after each order.

Trading rules (decided where AlphaPoint's documents are silent):

* Quantities must be multiples of the instrument's ``QuantityIncrement`` and at least
  ``MinimumQuantity``; limit prices multiples of ``PriceIncrement``.  Violations are
  ``errorcode 100`` errors and create no order.
* Funds are checked up front; a shortfall creates an order in state ``Rejected`` with
  ``RejectReason "Not_Enough_Funds"`` (so reconciliation by ``ClientOrderId`` finds it).
* A working limit order holds what it could spend (``qty x limit`` of the quote for a buy,
  ``qty`` of the base for a sell); a pending withdrawal holds ``amount + fee``.
* Fees are charged on what an order receives, exactly (no rounding): a buy pays
  ``quantity x rate`` in the base product, a sell ``value x rate`` in the quote product.
* Market buy: ``Value`` > 0 spends at most that much quote.  Per the SLATE rule, a market
  buy with ``LimitPrice`` and no ``Quantity`` treats ``LimitPrice`` as that value; with a
  ``Quantity`` it is a price cap (levels above it are not taken; the rest is canceled).
* IOC remainders and unfillable FOK orders end ``Canceled``; a market order that empties
  the book ends ``Canceled`` with what it filled.  A self-trade cancels the resting order.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from ._config import InstrumentSpec
from ._market_maker import MarketMaker
from ._records import (
    BUY,
    CANCELED,
    FOK,
    FULLY_EXECUTED,
    GTC,
    GTX,
    IOC,
    LIMIT,
    MARKET,
    SELL,
    WORKING,
    ZERO,
    ExchangeError,
    Market,
    Order,
    OrderRequest,
    Trade,
    _from_state,
    invalid,
    ms,
    not_found,
)

__all__ = ["Trading"]

_INT64 = 2**63


def _is_multiple(value: Decimal, increment: Decimal) -> bool:
    return value % increment == 0


class Trading(MarketMaker):
    """Orders of users (see the module doc)."""

    def send_order(
        self, request: OrderRequest, *, account_id: int, user_id: int, now: float
    ) -> Order:
        """Validate, fund-check, match and (for GTC limits) rest an order.

        Raises :class:`ExchangeError` for an invalid request (no order is created);
        returns the order otherwise, possibly in state ``Rejected`` (funds, post-only).
        """
        market = self.market(request.instrument_id)
        req = self._validate(request, market.spec)
        now_ms = ms(now)
        order = self._new_order(req, market, account_id, user_id, now_ms)
        self.orders[order.order_id] = order
        self.version += 1
        self._snapshot(order)
        spec = market.spec
        buy = req.side == BUY
        cap: Decimal | None = None
        qty_left: Decimal | None = req.quantity if req.quantity > 0 else None
        value_left: Decimal | None = req.value if req.value > 0 else None
        if req.order_type == LIMIT or req.limit_price > 0:
            cap = req.limit_price

        if req.order_type == LIMIT and (req.post_only or req.time_in_force == GTX):
            opposite = market.best_ask if buy else market.best_bid
            if opposite is not None and (
                opposite.limit_price <= req.limit_price
                if buy
                else opposite.limit_price >= req.limit_price
            ):
                return self._reject(order, "Post_Only_Would_Cross", now_ms)

        if buy:
            hold_product = spec.quote
            if req.order_type == LIMIT:
                need = req.quantity * req.limit_price
            elif value_left is not None and qty_left is None:
                need = value_left
            else:
                _, need, _ = self._walk(market, order, qty_left, value_left, cap, now_ms, False)
        else:
            hold_product = spec.base
            need = req.quantity
        if self._balance(account_id, hold_product).available < need:
            return self._reject(order, "Not_Enough_Funds", now_ms)

        if req.time_in_force == FOK and req.order_type == LIMIT:
            filled, _, _ = self._walk(market, order, qty_left, None, cap, now_ms, False)
            if filled < req.quantity:
                self._finish(order, CANCELED, "SystemCanceled_NoMoreMarket", "FOK", now_ms)
                return order

        self._hold(order, hold_product, need)
        _, _, exhausted = self._walk(market, order, qty_left, value_left, cap, now_ms, True)
        if req.order_type == MARKET:
            if qty_left is None:
                order.orig_quantity = order.quantity_executed
            if exhausted and (qty_left is None or order.quantity > 0):
                self._finish(order, CANCELED, "SystemCanceled_NoMoreMarket", "NoMoreMarket", now_ms)
            else:
                self._finish(order, FULLY_EXECUTED, order.change_reason, "", now_ms)
        elif order.quantity <= 0:
            self._finish(order, FULLY_EXECUTED, order.change_reason, "", now_ms)
        elif req.time_in_force == IOC:
            self._finish(order, CANCELED, "SystemCanceled_NoMoreMarket", "IOC", now_ms)
        else:
            self._rest(market, order)
            self._snapshot(order)
        self._replenish(market, now_ms)
        market.updated_ms = now_ms
        if order.is_working:
            self._emit("order", order)
        return order

    def _validate(self, req: OrderRequest, spec: InstrumentSpec) -> OrderRequest:
        if req.side == 2:
            raise ExchangeError(106, "Operation Not Supported", "Side Short is not supported")
        if req.side not in (BUY, SELL):
            raise invalid(f"Invalid Side: {req.side}")
        if 3 <= req.order_type <= 7:
            raise ExchangeError(
                106, "Operation Not Supported", f"OrderType {req.order_type} is not supported"
            )
        if req.order_type not in (MARKET, LIMIT):
            raise invalid(f"Invalid OrderType: {req.order_type}")
        if req.time_in_force in (2, 6):
            raise ExchangeError(
                106, "Operation Not Supported", f"TimeInForce {req.time_in_force} not supported"
            )
        if req.time_in_force not in (GTC, IOC, FOK, GTX):
            raise invalid(f"Invalid TimeInForce: {req.time_in_force}")
        if not -_INT64 <= req.client_order_id < _INT64:
            raise invalid("ClientOrderId must fit a signed 64-bit integer")
        for name, amount in (
            ("Quantity", req.quantity),
            ("LimitPrice", req.limit_price),
            ("Value", req.value),
        ):
            if amount < 0:
                raise invalid(f"{name} must not be negative")
        market_buy = req.order_type == MARKET and req.side == BUY
        if req.value > 0 and not market_buy:
            raise invalid("Value is only valid for a market buy")
        if market_buy and req.quantity == 0 and req.value == 0 and req.limit_price > 0:
            # SLATE: a market buy with LimitPrice "will execute up to the value specified".
            req.value, req.limit_price = req.limit_price, ZERO
        by_value = market_buy and req.value > 0
        if req.quantity == 0 and not by_value:
            raise invalid("Quantity must be greater than 0")
        if req.quantity > 0:
            if not _is_multiple(req.quantity, spec.quantity_increment):
                raise invalid(
                    f"Quantity {req.quantity} is not a multiple of QuantityIncrement "
                    f"{spec.quantity_increment}"
                )
            if req.quantity < spec.minimum_quantity:
                raise invalid(
                    f"Quantity {req.quantity} is below MinimumQuantity {spec.minimum_quantity}"
                )
        if req.order_type == LIMIT and req.limit_price <= 0:
            raise invalid("LimitPrice is required for a limit order")
        if req.limit_price > 0:
            if not _is_multiple(req.limit_price, spec.price_increment):
                raise invalid(
                    f"LimitPrice {req.limit_price} is not a multiple of PriceIncrement "
                    f"{spec.price_increment}"
                )
            if req.limit_price < spec.minimum_price:
                raise invalid(f"LimitPrice is below MinimumPrice {spec.minimum_price}")
        return req

    def _new_order(
        self, req: OrderRequest, market: Market, account_id: int, user_id: int, now_ms: int
    ) -> Order:
        inside = self._inside(market)
        return Order(
            order_id=self._id("order"),
            account_id=account_id,
            user_id=user_id,
            instrument_id=market.spec.instrument_id,
            side=req.side,
            order_type=req.order_type,
            time_in_force=req.time_in_force,
            client_order_id=req.client_order_id,
            orig_quantity=req.quantity,
            quantity=req.quantity,
            limit_price=req.limit_price,
            value=req.value,
            state=WORKING,
            change_reason="NewInputAccepted",
            receive_time=now_ms,
            last_updated_time=now_ms,
            post_only=req.post_only,
            stop_price=req.stop_price,
            inside_bid=inside[0],
            inside_bid_size=inside[1],
            inside_ask=inside[2],
            inside_ask_size=inside[3],
            last_trade_price=market.last_price,
        )

    def cancel_order(
        self,
        *,
        account_ids: Iterable[int],
        order_id: int = 0,
        client_order_id: int = 0,
        account_id: int | None = None,
        now: float,
    ) -> Order:
        """Cancel a working order by ``order_id`` or by (account, ``client_order_id``).

        ``errorcode 104`` if no such order of these accounts; ``101`` if it is not working.
        """
        allowed = set(account_ids)
        order: Order | None = None
        if order_id:
            order = self.orders.get(order_id)
            if order is not None and order.account_id not in allowed:
                order = None
        elif client_order_id:
            candidates = [
                o
                for o in self.orders.values()
                if o.client_order_id == client_order_id
                and o.account_id in allowed
                and (account_id is None or o.account_id == account_id)
            ]
            working = [o for o in candidates if o.is_working]
            pool = working or candidates
            order = pool[-1] if pool else None
        else:
            raise invalid("OrderId or ClOrderId is required")
        if order is None:
            self._emit("cancel_reject", {"accounts": allowed, "order_id": order_id})
            raise not_found("Order not found")
        if not order.is_working:
            self._emit("cancel_reject", {"accounts": {order.account_id}, "order_id": order_id})
            raise ExchangeError(101, "Operation Failed", f"Order is {order.state}")
        market = self.markets[order.instrument_id]
        self._unrest(market, order)
        self._finish(order, CANCELED, "UserModified", "UserModified", ms(now))
        market.updated_ms = ms(now)
        return order

    def cancel_all_orders(self, account_id: int, instrument_id: int, now: float) -> int:
        """Cancel every working order of an account (optionally one instrument)."""
        count = 0
        for order in list(self.orders.values()):
            if (
                order.account_id == account_id
                and order.is_working
                and (not instrument_id or order.instrument_id == instrument_id)
            ):
                market = self.markets[order.instrument_id]
                self._unrest(market, order)
                self._finish(order, CANCELED, "UserModified", "UserModified", ms(now))
                market.updated_ms = ms(now)
                count += 1
        return count

    def orders_of(self, account_id: int) -> list[Order]:
        """Every order of an account, most recent first."""
        found = [o for o in self.orders.values() if o.account_id == account_id]
        found.sort(key=lambda o: o.order_id, reverse=True)
        return found

    def revisions(self, order: Order) -> list[Order]:
        """Every recorded state of an order, oldest first (``GetOrderHistoryByOrderId``)."""
        return [_from_state(Order, r) for r in order.revisions]

    def trades_of(self, account_id: int) -> list[Trade]:
        """Every execution of an account, most recent first."""
        return [t for t in reversed(self.trades) if t.account_id == account_id]
