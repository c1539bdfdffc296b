"""The market maker: the seeded liquidity around each mid, and the mids' drift.

The market maker (``SimConfig.market_maker_account_id``) quotes ``book_levels`` levels a
side, ``spread_bps`` wide around the mid and ``level_step_bps`` apart; it re-quotes a side
when fewer than half of its levels remain, and both sides whenever the mid drifts.  The
mids drift by a seeded random walk of ``drift_bps`` every ``drift_interval`` seconds.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal

from ._book import Book
from ._records import (
    BUY,
    CANCELED,
    FULLY_EXECUTED,
    GTC,
    LIMIT,
    SELL,
    WORKING,
    ZERO,
    Market,
    Order,
    ms,
    round_down,
)

__all__ = ["MarketMaker"]


def _round_up(value: Decimal, increment: Decimal) -> Decimal:
    return (value / increment).to_integral_value(ROUND_CEILING) * increment


class MarketMaker(Book):
    """Quoting and drifting (see the module doc)."""

    _market_rng: random.Random
    _drift_origin: float
    _drift_steps: int

    def _drift_until(self, now: float) -> None:
        """Apply the drift steps due by ``now`` (at most 1000 at once)."""
        cfg = self.config
        if cfg.drift_interval > 0 and cfg.drift_bps > 0:
            due = int((now - self._drift_origin) / cfg.drift_interval)
            if due > self._drift_steps:
                self._drift(min(due - self._drift_steps, 1000), now)
                self._drift_steps = due

    def _drift(self, steps: int, now: float) -> None:
        sigma = float(self.config.drift_bps) / 10_000
        now_ms = ms(now)
        for market in self.markets.values():
            spec = market.spec
            mid = market.mid
            for _ in range(steps):
                factor = Decimal(repr(1 + self._market_rng.gauss(0.0, sigma)))
                mid = (mid * factor).quantize(spec.price_increment, ROUND_HALF_EVEN)
                mid = max(mid, spec.price_increment * 10)
            market.mid = mid
            self._requote(market, (BUY, SELL), now_ms)
        self.version += 1

    def _levels(self, market: Market, side: int) -> list[tuple[Decimal, Decimal]]:
        cfg, spec = self.config, market.spec
        mid, tick = market.mid, spec.price_increment
        half = mid * cfg.spread_bps / 20_000
        step = max(tick, round_down(mid * cfg.level_step_bps / 10_000, tick))
        best_bid = round_down(mid - half, tick)
        best_ask = _round_up(mid + half, tick)
        if best_ask <= best_bid:
            best_ask = best_bid + tick
        qty = round_down(spec.level_quantity, spec.quantity_increment)
        levels = []
        for i in range(cfg.book_levels):
            price = best_bid - step * i if side == BUY else best_ask + step * i
            if price < spec.minimum_price or price <= 0:
                break
            levels.append((price, qty))
        return levels

    def _requote(self, market: Market, sides: Iterable[int], now_ms: int) -> None:
        sides = tuple(sides)
        for side in sides:
            for order in [o for o in market.book(side) if o.is_market_maker]:
                self._unrest(market, order)
                if order.quantity_executed:
                    self._finish(order, CANCELED, "UserModified", "Requote", now_ms)
                else:
                    self._release(order, order.hold)
        for side in sides:
            for price, qty in self._levels(market, side):
                self._quote(market, side, price, qty, now_ms)
        market.version += 1
        market.updated_ms = now_ms

    def _quote(self, market: Market, side: int, price: Decimal, qty: Decimal, now_ms: int) -> None:
        spec = market.spec
        order = Order(
            order_id=self._id("order"),
            account_id=self.mm_account_id,
            user_id=self.mm_account_id,
            instrument_id=spec.instrument_id,
            side=side,
            order_type=LIMIT,
            time_in_force=GTC,
            client_order_id=0,
            orig_quantity=qty,
            quantity=qty,
            limit_price=price,
            value=ZERO,
            state=WORKING,
            change_reason="NewInputAccepted",
            receive_time=now_ms,
            last_updated_time=now_ms,
            is_market_maker=True,
        )
        if side == BUY:
            self._hold(order, spec.quote, qty * price)
        else:
            self._hold(order, spec.base, qty)
        self._walk(market, order, qty, None, price, now_ms, True)
        if order.quantity > 0:
            self._rest(market, order)
        else:
            self._finish(order, FULLY_EXECUTED, "Trade", "", now_ms)

    def _replenish(self, market: Market, now_ms: int) -> None:
        floor = max(1, self.config.book_levels // 2)
        thin = [
            side
            for side in (BUY, SELL)
            if sum(1 for o in market.book(side) if o.is_market_maker) < floor
        ]
        if thin:
            self._requote(market, thin, now_ms)
