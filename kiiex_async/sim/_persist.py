"""Saving and loading the simulated exchange: its whole mutable state as JSON-able data.

Owns the layout of the ``exchange`` part of a simulator state file (``STATE_VERSION``):
balances, orders with their revisions, trades, tickets, the account journal, markets with
their books and prints, id counters and the seeded random generators, so that a restarted
simulator continues exactly where the previous one stopped.  Pure: no I/O (the server
writes the file atomically).
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from ._config import SimConfig
from ._exchange import Exchange
from ._history import Transaction
from ._records import (
    BUY,
    SELL,
    Balance,
    DepositTicket,
    Market,
    Order,
    Trade,
    WithdrawTicket,
    _from_state,
    _to_state,
    ms,
)

__all__ = ["STATE_VERSION", "exchange_from_state", "exchange_to_state"]

#: Version of the state layout; a file of another version is refused.
STATE_VERSION = 1


def exchange_to_state(ex: Exchange) -> dict[str, Any]:
    """All mutable state of ``ex`` as plain JSON-able data (Decimals as strings)."""

    def order_state(order: Order) -> dict[str, Any]:
        data = _to_state(order)
        data["revisions"] = order.revisions
        return data

    return {
        "version": STATE_VERSION,
        "seed": ex.config.seed,
        "last_now": ex.last_now,
        "next": dict(ex._next),
        "next_deposit": ex._next_deposit,
        "next_withdraw": ex._next_withdraw,
        "rng": [
            _rng_state(ex._market_rng),
            _rng_state(ex._ticket_rng),
            _rng_state(ex._guid_rng),
        ],
        "drift": [ex._drift_origin, ex._drift_steps],
        "balances": [
            [acct, pid, str(b.amount), str(b.hold)]
            for (acct, pid), b in sorted(ex.balances.items())
        ],
        "fees": {str(k): str(v) for k, v in sorted(ex.fees_collected.items())},
        "orders": [order_state(o) for o in ex.orders.values()],
        "trades": [_to_state(t) for t in ex.trades],
        "deposit_tickets": [_to_state(t) for t in ex.deposit_tickets.values()],
        "withdraw_tickets": [_to_state(t) for t in ex.withdraw_tickets.values()],
        "deposit_addresses": [
            [acct, pid, addrs] for (acct, pid), addrs in ex.deposit_addresses.items()
        ],
        "withdraw_outcomes": list(ex.withdraw_outcomes),
        "journal": [_to_state(t) for t in ex.journal],
        "markets": [
            {
                "instrument_id": m.spec.instrument_id,
                "mid": str(m.mid),
                "reference_price": str(m.reference_price),
                "last_price": str(m.last_price),
                "last_quantity": str(m.last_quantity),
                "last_trade_time": m.last_trade_time,
                "prints": [[t, ms, str(p), str(q)] for t, ms, p, q in m.prints],
                "book": [order_state(o) for o in m.bids + m.asks],
            }
            for m in ex.markets.values()
        ],
    }


def exchange_from_state(
    cls: type[Exchange], config: SimConfig, data: Mapping[str, Any], *, now: float
) -> Exchange:
    """Rebuild an exchange (of class ``cls``) saved by :func:`exchange_to_state`
    (``ValueError`` if incompatible)."""
    if data.get("version") != STATE_VERSION:
        raise ValueError(f"unsupported simulator state version: {data.get('version')!r}")
    ex = cls(config, now=now)
    ex.balances.clear()
    ex.markets.clear()
    ex.last_now = float(data["last_now"])
    ex._next = {str(k): int(v) for k, v in data["next"].items()}
    ex._next_deposit = int(data["next_deposit"])
    ex._next_withdraw = int(data["next_withdraw"])
    for rng, state in zip((ex._market_rng, ex._ticket_rng, ex._guid_rng), data["rng"], strict=True):
        rng.setstate((state[0], tuple(state[1]), state[2]))
    ex._drift_origin, ex._drift_steps = float(data["drift"][0]), int(data["drift"][1])
    for acct, pid, amount, hold in data["balances"]:
        ex.balances[(int(acct), int(pid))] = Balance(Decimal(amount), Decimal(hold))
    ex.fees_collected = {int(k): Decimal(v) for k, v in data["fees"].items()}

    def load_order(raw: Mapping[str, Any]) -> Order:
        order = _from_state(Order, raw)
        order.revisions = list(raw.get("revisions", []))
        return order

    ex.orders = {}
    for raw in data["orders"]:
        order = load_order(raw)
        ex.orders[order.order_id] = order
    ex.trades = [_from_state(Trade, t) for t in data["trades"]]
    ex.deposit_tickets = {}
    for raw in data["deposit_tickets"]:
        deposit = _from_state(DepositTicket, raw)
        ex.deposit_tickets[deposit.ticket_number] = deposit
    ex.withdraw_tickets = {}
    for raw in data["withdraw_tickets"]:
        wd = _from_state(WithdrawTicket, raw)
        ex.withdraw_tickets[wd.ticket_number] = wd
    ex._live_deposits = [t for t in ex.deposit_tickets.values() if t.stage < len(t.path) - 1]
    ex._live_withdrawals = [t for t in ex.withdraw_tickets.values() if t.stage < len(t.path) - 1]
    ex.deposit_addresses = {
        (int(a), int(p)): list(addrs) for a, p, addrs in data["deposit_addresses"]
    }
    ex.withdraw_outcomes = list(data["withdraw_outcomes"])
    # States saved before the journal existed load with an empty one.
    ex.journal = [_from_state(Transaction, t) for t in data.get("journal", [])]
    saved = {int(m["instrument_id"]): m for m in data["markets"]}
    for spec in config.instruments:
        raw_market = saved.get(spec.instrument_id)
        market = Market(spec=spec, mid=spec.mid, reference_price=spec.mid)
        market.last_price = spec.mid
        ex.markets[spec.instrument_id] = market
        if raw_market is None:
            ex._requote(market, (BUY, SELL), ms(now))
            continue
        market.mid = Decimal(raw_market["mid"])
        market.reference_price = Decimal(raw_market["reference_price"])
        market.last_price = Decimal(raw_market["last_price"])
        market.last_quantity = Decimal(raw_market["last_quantity"])
        market.last_trade_time = int(raw_market["last_trade_time"])
        market.prints = [
            (int(t), int(ms), Decimal(p), Decimal(q)) for t, ms, p, q in raw_market["prints"]
        ]
        for raw in raw_market["book"]:
            order = ex.orders.get(int(raw["order_id"])) or load_order(raw)
            ex._rest(market, order)
    for user in config.users:
        if not any(acct == user.account_id for acct, _ in ex.balances):
            ex._open_account(user, ms(now))
    ex.version = 0
    return ex


def _rng_state(rng: random.Random) -> list[Any]:
    version, internal, gauss_next = rng.getstate()
    return [version, list(internal), gauss_next]
