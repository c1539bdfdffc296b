"""The order-book engine: resting orders, holds, matching and fills.

Owns each market's two sides (best first, then by order id), the holds an order places
and releases, the walk of a taker through the opposite side (planned or executed the same
way, so a plan is exact), fills with their fees, trades and journal entries, finishing an
order (``Canceled``, ``FullyExecuted``, ``Rejected``) and the per-order revisions that
``GetOrderHistoryByOrderId`` answers.  Self-trades cancel the resting order.
"""

from __future__ import annotations

import bisect
from decimal import Decimal

from ._accounts import Accounts
from ._records import (
    BUY,
    CANCELED,
    FULLY_EXECUTED,
    LIMIT,
    REJECTED,
    ZERO,
    Market,
    Order,
    Trade,
    _to_state,
    round_down,
)

__all__ = ["Book"]


def _bid_key(order: Order) -> tuple[Decimal, int]:
    return (-order.limit_price, order.order_id)


def _ask_key(order: Order) -> tuple[Decimal, int]:
    return (order.limit_price, order.order_id)


class Book(Accounts):
    """Resting, matching and filling orders (see the module doc)."""

    orders: dict[int, Order]
    trades: list[Trade]
    _next: dict[str, int]

    def _id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    def _inside(self, market: Market) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """The inside market: best bid, its size, best ask, its size (0 for an empty side)."""
        bid, ask = market.best_bid, market.best_ask
        return (
            bid.limit_price if bid else ZERO,
            self._level_size(market.bids),
            ask.limit_price if ask else ZERO,
            self._level_size(market.asks),
        )

    @staticmethod
    def _level_size(book: list[Order]) -> Decimal:
        if not book:
            return ZERO
        price = book[0].limit_price
        total = ZERO
        for order in book:
            if order.limit_price != price:
                break
            total += order.quantity
        return total

    def _reject(self, order: Order, reason: str, now_ms: int) -> Order:
        order.reject_reason = reason
        order.quantity = ZERO
        self._finish(order, REJECTED, "NewInputRejected", "", now_ms)
        return order

    def _hold(self, order: Order, product_id: int, amount: Decimal) -> None:
        order.hold_product = product_id
        order.hold = amount
        self._balance(order.account_id, product_id).hold += amount

    def _release(self, order: Order, amount: Decimal) -> None:
        amount = min(amount, order.hold)
        if amount > 0:
            order.hold -= amount
            self._balance(order.account_id, order.hold_product).hold -= amount

    def _finish(
        self, order: Order, state: str, reason: str, cancel_reason: str, now_ms: int
    ) -> None:
        order.state = state
        order.change_reason = reason
        order.cancel_reason = cancel_reason
        order.last_updated_time = now_ms
        if state == CANCELED:
            order.quantity = ZERO
        if "AddedToBook" in order.order_flag:
            order.order_flag = "AddedToBook, RemovedFromBook"
        self._release(order, order.hold)
        self.version += 1
        if not order.is_market_maker:
            self._snapshot(order)
            self._emit("order", order)

    def _snapshot(self, order: Order) -> None:
        """Record a revision; a fill's later changes (its order finishing or resting) update
        that fill's ``Trade`` revision, so there is exactly one ``Trade`` revision per fill
        (ccxt builds ``fetch_order_trades`` from them)."""
        state = _to_state(order)
        last = order.revisions[-1] if order.revisions else None
        if (
            last is not None
            and state["change_reason"] == last["change_reason"] == "Trade"
            and state["trade_count"] == last["trade_count"]
        ):
            order.revisions[-1] = state
        else:
            order.revisions.append(state)

    def _rest(self, market: Market, order: Order) -> None:
        if order.side == BUY:
            bisect.insort(market.bids, order, key=_bid_key)
        else:
            bisect.insort(market.asks, order, key=_ask_key)
        order.order_flag = "AddedToBook"
        market.version += 1
        self._emit("book", market)

    def _unrest(self, market: Market, order: Order) -> None:
        book = market.book(order.side)
        for i, resting in enumerate(book):
            if resting is order:
                del book[i]
                market.version += 1
                self._emit("book", market)
                return

    def _walk(
        self,
        market: Market,
        order: Order,
        qty_left: Decimal | None,
        value_left: Decimal | None,
        cap: Decimal | None,
        now_ms: int,
        execute: bool,
    ) -> tuple[Decimal, Decimal, bool]:
        """Take liquidity best price first; returns ``(filled, cost, book_exhausted)``.

        With ``execute=False`` it only plans (used for funds and FOK checks); planning and
        execution walk the same way, so the plan is exact.
        """
        buy = order.side == BUY
        book = market.asks if buy else market.bids
        increment = market.spec.quantity_increment
        filled = cost = ZERO
        i = 0
        while i < len(book):
            maker = book[i]
            price = maker.limit_price
            if cap is not None and (price > cap if buy else price < cap):
                return filled, cost, True
            if maker.account_id == order.account_id:
                if execute:
                    self._unrest(market, maker)
                    self._finish(maker, CANCELED, "UserModified", "SelfTradePrevention", now_ms)
                else:
                    i += 1
                continue
            qty = maker.quantity
            if qty_left is not None:
                qty = min(qty, qty_left - filled)
            if value_left is not None:
                affordable = round_down((value_left - cost) / price, increment)
                while affordable > 0 and affordable * price > value_left - cost:
                    affordable -= increment
                qty = min(qty, affordable)
            if qty <= 0:
                return filled, cost, False
            if execute:
                self._fill(market, order, maker, qty, now_ms)
            if i < len(book) and book[i] is maker:
                i += 1
            filled += qty
            cost += qty * price
            if qty_left is not None and filled >= qty_left:
                return filled, cost, False
        return filled, cost, True

    def _fill(self, market: Market, taker: Order, maker: Order, qty: Decimal, now_ms: int) -> None:
        spec = market.spec
        price = maker.limit_price
        value = qty * price
        trade_id = self._id("trade")
        if price > market.last_price:
            direction = "UpTick"
        elif price < market.last_price:
            direction = "DownTick"
        else:
            direction = "NoChange"
        inside = self._inside(market)
        for order, role, other in ((taker, "Taker", maker), (maker, "Maker", taker)):
            rate = self.config.taker_fee if role == "Taker" else self.config.maker_fee
            account, peer = order.account_id, other.account_id
            if order.side == BUY:
                self._release(
                    order, qty * order.limit_price if order.order_type == LIMIT else value
                )
                self._post(account, spec.quote, -value, "Trade", "Trade", trade_id, now_ms, peer)
                fee, fee_product = qty * rate, spec.base
                self._post(account, spec.base, qty, "Trade", "Trade", trade_id, now_ms, peer)
            else:
                self._release(order, qty)
                self._post(account, spec.base, -qty, "Trade", "Trade", trade_id, now_ms, peer)
                fee, fee_product = value * rate, spec.quote
                self._post(account, spec.quote, value, "Trade", "Trade", trade_id, now_ms, peer)
            self._post(account, fee_product, -fee, "Fee", "Trade", trade_id, now_ms)
            self.fees_collected[fee_product] = self.fees_collected.get(fee_product, ZERO) + fee
            order.quantity = max(order.quantity - qty, ZERO)
            order.quantity_executed += qty
            order.gross_value_executed += value
            order.change_reason = "Trade"
            order.last_updated_time = now_ms
            order.trade_count += 1
            if order.is_market_maker and order.order_id not in self.orders:
                self.orders[order.order_id] = order
            self.trades.append(
                Trade(
                    trade_id=trade_id,
                    execution_id=self._id("execution"),
                    order_id=order.order_id,
                    client_order_id=order.client_order_id,
                    account_id=order.account_id,
                    user_id=order.user_id,
                    instrument_id=spec.instrument_id,
                    side=order.side,
                    order_type=order.order_type,
                    quantity=qty,
                    remaining_quantity=order.quantity,
                    price=price,
                    value=value,
                    fee=fee,
                    fee_product_id=fee_product,
                    maker_taker=role,
                    counter_party=other.account_id,
                    direction=direction,
                    trade_time_ms=now_ms,
                    order_trade_revision=order.trade_count,
                    inside_bid=inside[0],
                    inside_bid_size=inside[1],
                    inside_ask=inside[2],
                    inside_ask_size=inside[3],
                )
            )
            self._emit("trade", self.trades[-1])
            if not order.is_market_maker:
                self._snapshot(order)
                self._emit("order", order)
        if maker.quantity <= 0:
            self._unrest(market, maker)
            self._finish(maker, FULLY_EXECUTED, "Trade", "", now_ms)
        market.last_price = price
        market.last_quantity = qty
        market.last_trade_time = now_ms
        market.prints.append((trade_id, now_ms, price, qty))
        market.version += 1
        market.updated_ms = now_ms
        self.version += 1
        self._emit("book", market)
