"""History views of the simulated exchange: the account journal and candles (pure).

* :class:`Transaction` is one line of an account's journal (``GetAccountTransactions``):
  every change of a balance's ``Amount`` -- opening balance, each side of a fill, its fee,
  a credited deposit, a withdrawal and its fee -- with the balance after it.
* :func:`candles` turns a market's prints into ``GetTickerHistory`` rows.

Rows are written by hand as AlphaPoint venues send them (ccxt ``ndax`` samples,
notbank-node's ``Ticker`` tuple); nothing here touches the exchange's state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

__all__ = ["MAX_CANDLES", "Transaction", "candles", "date_ms", "transaction_row"]

#: The most rows one ``GetTickerHistory`` answers (the most recent ones are kept).
MAX_CANDLES = 5000
_EPOCH_TICKS = 621_355_968_000_000_000


@dataclass(slots=True)
class Transaction:
    """One journal line: ``cr`` credited or ``dr`` debited, ``balance`` the amount after.

    ``transaction_type`` is ``"Trade"``, ``"Fee"`` or ``"Other"``; ``reference_type``
    ``"Trade"``, ``"Deposit"``, ``"Withdraw"`` or ``"ManualEntry"`` (opening balances);
    ``reference_id`` the trade id or ticket number it belongs to.
    """

    transaction_id: int
    account_id: int
    product_id: int
    cr: Decimal
    dr: Decimal
    balance: Decimal
    transaction_type: str
    reference_type: str
    reference_id: int
    counterparty: int
    time_ms: int


def transaction_row(t: Transaction) -> dict[str, Any]:
    """A ``GetAccountTransactions`` element (PascalCase, types as names, as ccxt sees it)."""
    return {
        "TransactionId": t.transaction_id,
        "ReferenceId": t.reference_id,
        "OMSId": 1,
        "AccountId": t.account_id,
        "CR": t.cr,
        "DR": t.dr,
        "Counterparty": t.counterparty,
        "TransactionType": t.transaction_type,
        "ReferenceType": t.reference_type,
        "ProductId": t.product_id,
        "Balance": t.balance,
        "TimeStamp": t.time_ms,
    }


def date_ms(value: object) -> int:
    """Epoch ms of a ``FromDate``/``ToDate``: ``"2024-05-01"``, ``"2024-05-01 12:00:00"``,
    ISO-8601 (``Z`` or an offset; naive = UTC), or a number of POSIX seconds, POSIX ms or
    .NET ticks.  ``ValueError`` for anything else."""
    if isinstance(value, bool):
        raise ValueError("not a date")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value.strip())
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    if isinstance(value, int):
        if value > 10**16:
            return (value - _EPOCH_TICKS) // 10_000
        return value * 1000 if value < 10**11 else value
    if not isinstance(value, str):
        raise ValueError("not a date")
    text = value.strip().replace("Z", "+00:00")
    stamp = dt.datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    return int(stamp.timestamp() * 1000)


def candles(
    prints: Sequence[tuple[int, int, Decimal, Decimal]],
    *,
    instrument_id: int,
    interval: int,
    start_ms: int,
    end_ms: int,
    opening_price: Decimal,
    bid: Decimal,
    ask: Decimal,
) -> list[list[Any]]:
    """``GetTickerHistory`` rows ``[EndDateTime, High, Low, Open, Close, Volume, Bid, Ask,
    InstrumentId, BeginDateTime]`` for the ``interval``-second buckets (aligned on the
    epoch) that overlap ``[start_ms, end_ms]``, oldest first.

    ``prints`` are the market's ``(trade_id, ms, price, quantity)``, oldest first.  A
    bucket without trades is flat at the previous close with volume 0 (as venues answer);
    before the first print the price is ``opening_price``.  ``Bid``/``Ask`` are the inside
    market when asked (the simulator keeps no history of quotes).  At most
    :data:`MAX_CANDLES` rows, the most recent.
    """
    if interval <= 0:
        raise ValueError("Interval must be > 0 seconds")
    if end_ms < start_ms:
        return []
    step = interval * 1000
    first = start_ms - start_ms % step
    last = end_ms - end_ms % step
    first = max(first, last - (MAX_CANDLES - 1) * step)
    close = opening_price
    i = 0
    while i < len(prints) and prints[i][1] < first:
        close = prints[i][2]
        i += 1
    rows: list[list[Any]] = []
    for begin in range(first, last + step, step):
        end = begin + step
        open_ = high = low = close
        volume = Decimal(0)
        traded = False
        while i < len(prints) and prints[i][1] < end:
            price, qty = prints[i][2], prints[i][3]
            if not traded:
                open_ = high = low = price
                traded = True
            high, low, close = max(high, price), min(low, price), price
            volume += qty
            i += 1
        rows.append([end, high, low, open_, close, volume, bid, ask, instrument_id, begin])
    return rows
