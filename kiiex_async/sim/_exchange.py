"""The simulated exchange: one object made of the rooms below, pure and deterministic.

Pure: no I/O, no event loop, no clock.  Every method that depends on time takes ``now``
(epoch seconds, float); orders and trades carry epoch milliseconds.  The HTTP layer
(:mod:`._app`) parses requests, calls these methods and renders the records.

Where each part lives:

* :mod:`._records` -- the records (orders, trades, tickets, markets, balances), the
  constants and :class:`ExchangeError`;
* :mod:`._accounts` -- users, accounts, balances, the journal, change observers;
* :mod:`._book` -- the order book, holds, matching and fills;
* :mod:`._market_maker` -- the seeded liquidity and the mids' drift;
* :mod:`._trading` -- user orders (send, cancel, queries) and the trading rules;
* :mod:`._tickets` -- deposits and withdrawals;
* :mod:`._persist` -- saving and loading the whole state; :mod:`._history` the journal
  and candle records.

This module sets the state up, moves it in time (:meth:`Exchange.tick`) and exposes the
state converters.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ._config import SimConfig
from ._records import (
    BUY,
    SELL,
    DepositTicket,
    ExchangeError,
    InsufficientBalance,
    Market,
    Order,
    OrderRequest,
    Trade,
    WithdrawTicket,
    ms,
)
from ._tickets import Tickets
from ._trading import Trading

__all__ = [
    "BUY",
    "SELL",
    "DepositTicket",
    "Exchange",
    "ExchangeError",
    "InsufficientBalance",
    "Market",
    "Order",
    "OrderRequest",
    "Trade",
    "WithdrawTicket",
]


class Exchange(Trading, Tickets):
    """The whole simulated exchange.  Mutating methods bump :attr:`version`."""

    def __init__(self, config: SimConfig, *, now: float) -> None:
        self.config = config
        self.products = {p.product_id: p for p in config.products}
        self._products_by_symbol = {p.symbol.upper(): p for p in config.products}
        self.users = {u.user_id: u for u in config.users}
        self._users_by_key = {u.api_key: u for u in config.users}
        self._users_by_name = {u.username.lower(): u for u in config.users}
        self._users_by_account = {u.account_id: u for u in config.users}
        self.mm_account_id = config.market_maker_account_id
        self.markets = {}
        self.balances = {}
        self.orders = {}
        self.trades = []
        self.deposit_tickets = {}
        self.withdraw_tickets = {}
        self.fees_collected = {}
        self.deposit_addresses = {}
        self.journal = []
        self.withdraw_outcomes = []
        self.version = 0
        self.last_now = now
        self.observers = []
        self._next = {"order": 5_000_001, "trade": 7_000_001, "execution": 8_000_001}
        self._next_deposit = 1001
        self._next_withdraw = 2001
        seed = config.seed
        self._market_rng = random.Random(f"{seed}:market")
        self._ticket_rng = random.Random(f"{seed}:tickets")
        self._guid_rng = random.Random(f"{seed}:guid")
        self._drift_origin = now
        self._drift_steps = 0
        self._live_deposits = []
        self._live_withdrawals = []
        for user in config.users:
            self._open_account(user, ms(now))
        big = Decimal(10) ** 15
        for product in config.products:
            self._balance(self.mm_account_id, product.product_id).amount = big
        now_ms = ms(now)
        for spec in config.instruments:
            market = Market(spec=spec, mid=spec.mid, reference_price=spec.mid)
            market.last_price = spec.mid
            market.updated_ms = now_ms
            self.markets[spec.instrument_id] = market
            self._requote(market, (BUY, SELL), now_ms)

    def tick(self, now: float) -> None:
        """Bring the exchange to ``now``: drift the mids, advance tickets."""
        if now > self.last_now:
            self.last_now = now
        self._drift_until(now)
        if self._live_deposits or self._live_withdrawals:
            self._advance_tickets(now)

    def to_state(self) -> dict[str, Any]:
        """All mutable state as plain JSON-able data (Decimals as strings); see
        :mod:`._persist`."""
        from ._persist import exchange_to_state

        return exchange_to_state(self)

    @classmethod
    def from_state(cls, config: SimConfig, data: Mapping[str, Any], *, now: float) -> Exchange:
        """Rebuild an exchange saved by :meth:`to_state` (``ValueError`` if incompatible)."""
        from ._persist import exchange_from_state

        return exchange_from_state(cls, config, data, now=now)
