"""Market-data rows: the positional arrays of level-1 summaries, ticker bars and L2 books.

``GetLevel1SummaryMin``, ``GetTickerHistory`` and ``GetL2Snapshot`` answer with arrays of
columns rather than objects; each parser here knows the column layouts venues use and
names the failing row in its :class:`~kiiex_async.errors.DecodeError`.  Part of
:mod:`kiiex_async._wire`, which re-exports the public names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs

from . import errors
from ._events import PublicTrade
from ._wire_json import loads
from ._wire_scalars import _enum_converter, _kind, _to_decimal, _to_int, _to_str
from ._wire_structure import T, structure
from .models import L2Entry, L2Snapshot, Level1Summary, Side, TickerBar

__all__ = [
    "parse_l2_snapshot",
    "parse_level1_summary",
    "parse_public_trade",
    "parse_ticker_history",
]


_SUMMARY_COLUMNS = {
    # (last price, 24h change, 24h change %, 24h volume) column indexes
    "node": (2, 3, 4, 5),
    "python": (2, 4, 5, 3),
}


def _rows(rows: Any, what: str) -> list[Any]:
    if isinstance(rows, str | bytes):
        rows = loads(rows)
    if rows is None:
        return []
    if not isinstance(rows, list | tuple):
        raise errors.DecodeError(f"{what}: expected a JSON array of rows, got {_kind(rows)}")
    return list(rows)


def parse_level1_summary(rows: Any, *, columns: str = "node") -> list[Level1Summary]:
    """Parse ``GetLevel1SummaryMin`` rows (arrays of numbers or strings; objects too).

    ``columns="node"``: ``[id, symbol, last, 24hPxChange, 24hPxChangePercent, 24hVolume]``
    (notbank-node, the primary reading); ``columns="python"``:
    ``[id, symbol, last, 24hVolume, 24hPxChange, 24hPxChangePercent]`` (notbank-python).
    A row shorter than six columns fills the fields its columns reach and leaves the rest
    ``None``; its first column must be the instrument id, or the row is a
    :class:`~kiiex_async.errors.DecodeError` (KIIEX's guide shows ``[["text"]]``: the
    type of a row, not a row that could be read).
    """
    layout = _SUMMARY_COLUMNS.get(columns)
    if layout is None:
        raise errors.InvalidInputError(f"columns must be 'node' or 'python', not {columns!r}")
    last, change, percent, volume = layout
    result: list[Level1Summary] = []
    for index, row in enumerate(_rows(rows, "GetLevel1SummaryMin")):
        if isinstance(row, Mapping):
            result.append(structure(row, Level1Summary))
            continue
        if not isinstance(row, list | tuple) or not row:
            raise errors.DecodeError(
                f"GetLevel1SummaryMin row {index}: expected up to 6 columns starting with "
                f"the instrument id, got {_describe(row)}"
            )
        try:
            result.append(
                Level1Summary(
                    instrument_id=_to_int(row[0]),
                    symbol=_column(row, 1, _to_str),
                    last_traded_px=_column(row, last, _to_decimal),
                    rolling_24hr_px_change=_column(row, change, _to_decimal),
                    rolling_24hr_px_change_percent=_column(row, percent, _to_decimal),
                    rolling_24hr_volume=_column(row, volume, _to_decimal),
                )
            )
        except errors.DecodeError as exc:
            raise errors.DecodeError(f"GetLevel1SummaryMin row {index}: {exc}") from None
    return result


def _column(row: list[Any] | tuple[Any, ...], index: int, convert: Callable[[Any], T]) -> T | None:
    """Column ``index`` of a row converted, or ``None`` when the row is shorter or null."""
    value = row[index] if index < len(row) else None
    return None if value is None else convert(value)


def parse_ticker_history(rows: Any) -> list[TickerBar]:
    """Parse ``GetTickerHistory`` rows into bars (a JSON array, or JSON text of one).

    A row is ``[time ms, high, low, open, close, volume, inside bid, inside ask,
    instrument id, begin time ms]`` (AlphaPoint; ccxt reads the first six, notbank-node
    all ten); at least the first six columns are required, the rest are ``None`` when
    absent.
    """
    bars: list[TickerBar] = []
    for index, row in enumerate(_rows(rows, "GetTickerHistory")):
        if not isinstance(row, list | tuple) or len(row) < 6:
            raise errors.DecodeError(
                f"GetTickerHistory row {index}: expected 6 to 10 columns, got {_describe(row)}"
            )
        try:
            bars.append(
                TickerBar(
                    time=_to_int(row[0]),
                    high=_to_decimal(row[1]),
                    low=_to_decimal(row[2]),
                    open=_to_decimal(row[3]),
                    close=_to_decimal(row[4]),
                    volume=_to_decimal(row[5]),
                    inside_bid=_column(row, 6, _to_decimal),
                    inside_ask=_column(row, 7, _to_decimal),
                    instrument_id=_column(row, 8, _to_int),
                    begin_time=_column(row, 9, _to_int),
                )
            )
        except errors.DecodeError as exc:
            raise errors.DecodeError(f"GetTickerHistory row {index}: {exc}") from None
    return bars


def _describe(row: Any) -> str:
    return f"{len(row)} columns" if isinstance(row, list | tuple) else _kind(row)


# Column indexes: (price, quantity, side, action time, last trade price, orders, update id)
_L2_LAYOUTS: dict[int, tuple[int, int, int, int, int, int | None, int | None]] = {
    # MDUpdateId, Accounts, ActionDateTime, ActionType, LastTradePrice, Orders, Price,
    # InstrumentId, Quantity, Side  (AlphaPoint standard)
    10: (6, 8, 9, 2, 4, 5, 0),
    # AccountId, ActionDateTime, ActionType, LastTradePrice, OrderId, Price, InstrumentId,
    # Quantity, Side  (current KIIEX pages: one row per order)
    9: (5, 7, 8, 1, 3, None, None),
}
_SIDE = _enum_converter(Side)


def parse_l2_snapshot(rows: Any, instrument_id: int) -> L2Snapshot:
    """Parse ``GetL2Snapshot`` rows into a book; the layout is detected by row length.

    Rows at the same price and side are merged into one level (the 9-column KIIEX layout
    has one row per order).  Rows with a zero quantity or price are dropped.  ``bids``
    come highest first, ``asks`` lowest first.
    """
    levels: dict[tuple[Side, Decimal], L2Entry] = {}
    for index, row in enumerate(_rows(rows, "GetL2Snapshot")):
        layout = _L2_LAYOUTS.get(len(row)) if isinstance(row, list | tuple) else None
        if layout is None:
            raise errors.DecodeError(
                f"GetL2Snapshot row {index}: expected 9 or 10 columns, got {_describe(row)}"
            )
        price_at, quantity_at, side_at, time_at, last_at, orders_at, update_at = layout
        try:
            price = _to_decimal(row[price_at])
            quantity = _to_decimal(row[quantity_at])
            side = _SIDE(row[side_at])
            if side is not Side.BUY and side is not Side.SELL:
                raise errors.DecodeError(f"side must be 0 (bid) or 1 (ask), got {side.name}")
            entry = L2Entry(
                price=price,
                quantity=quantity,
                side=side,
                instrument_id=instrument_id,
                number_of_orders=1 if orders_at is None else _to_int(row[orders_at]),
                action_date_time=_to_int(row[time_at]),
                md_update_id=0 if update_at is None else _to_int(row[update_at]),
                last_trade_price=_to_decimal(row[last_at]),
            )
        except errors.DecodeError as exc:
            raise errors.DecodeError(f"GetL2Snapshot row {index}: {exc}") from None
        if price <= 0 or quantity <= 0:
            continue
        key = (side, price)
        seen = levels.get(key)
        if seen is not None:
            entry = attrs.evolve(
                seen,
                quantity=seen.quantity + quantity,
                number_of_orders=seen.number_of_orders + entry.number_of_orders,
                action_date_time=max(seen.action_date_time, entry.action_date_time),
                md_update_id=max(seen.md_update_id, entry.md_update_id),
            )
        levels[key] = entry
    bids = sorted((e for e in levels.values() if e.side is Side.BUY), key=_price, reverse=True)
    asks = sorted((e for e in levels.values() if e.side is Side.SELL), key=_price)
    return L2Snapshot(instrument_id=instrument_id, bids=tuple(bids), asks=tuple(asks))


def _price(entry: L2Entry) -> Decimal:
    return entry.price


def parse_public_trade(row: Any) -> PublicTrade:
    """Parse one ``TradeDataUpdateEvent`` row into a :class:`PublicTrade`.

    A row is ``[TradeId, InstrumentId, Quantity, Price, Order1, Order2, TradeTime ms,
    Direction, TakerSide, ...]`` (AlphaPoint; later columns are ignored).  Price and
    quantity follow the rule of every number the SDK reads and must not be negative;
    anything else is a :class:`~kiiex_async.errors.DecodeError`.
    """
    if not isinstance(row, list | tuple) or len(row) < 9:
        raise errors.DecodeError(
            f"TradeDataUpdateEvent row: expected at least 9 columns, got {_describe(row)}"
        )
    quantity, price = _to_decimal(row[2]), _to_decimal(row[3])
    if quantity < 0 or price < 0:
        raise errors.DecodeError("TradeDataUpdateEvent row: a negative price or quantity")
    side = _SIDE(row[8])
    if side is not Side.BUY and side is not Side.SELL:
        raise errors.DecodeError(f"TradeDataUpdateEvent row: taker side {side.name}")
    return PublicTrade(
        trade_id=_to_int(row[0]),
        instrument_id=_to_int(row[1]),
        quantity=quantity,
        price=price,
        order_id=_to_int(row[4]),
        trade_time_ms=_to_int(row[6]),
        direction=_to_int(row[7]),
        taker_side=side,
    )
