"""``OrderBook``: a Level2 book kept from AlphaPoint update rows (pure, no I/O).

Rows are ``[MDUpdateId, Accounts, ActionDateTime, ActionType, LastTradePrice, Orders,
Price, InstrumentId, Quantity, Side]`` (``ActionType`` 0 new, 1 update, 2 delete; ``Side``
0 bid, 1 ask), applied in array order keyed by price.  A row that cannot be a price level
(not a 10-column array, a price or quantity that is not a finite number, a negative one,
one beyond ±1e100 or 1,000 digits as every number the SDK reads, an unknown side or
action) is refused as a whole update: :meth:`OrderBook.apply` returns
False and the book marks itself :attr:`~OrderBook.dirty` so its owner rebuilds it from a
snapshot.  ``MDUpdateId`` is recorded but never trusted for gap detection: live gateways
skip ids, so a lost update is only caught by comparing with ``GetL2Snapshot``
(:meth:`OrderBook.matches`).

The stream (:mod:`kiiex_async.stream`) owns the healing; this module only keeps levels.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from . import pricing
from ._wire_json import exact_decimal, loads_rows
from .models import L2Entry, L2Snapshot, Side

__all__ = ["OrderBook", "decode_rows"]

_STALE: Any = object()  # a cached best price that must be recomputed

#: Decode the ``o`` of a Level2 frame: numbers with a fraction stay text (only price and
#: quantity become ``Decimal``, in :meth:`OrderBook.apply`, under the range rule of every
#: number the SDK reads), ``NaN`` is refused, and anything that is not JSON raises
#: :class:`~kiiex_async.errors.DecodeError`.
decode_rows = loads_rows

_NUMBER_TYPES = frozenset({str, int})
_ACTIONS = frozenset({0, 1, 2})
_SIDES = frozenset({0, 1})
#: Distinct price texts a book keeps converted (cleared when full, so a hostile feed of
#: ever-new prices costs at most this many entries).
_PRICES_KEPT = 4096
#: Longest price text kept (a price padded with zeros to megabytes is still read, but
#: kept it would let a feed pin _PRICES_KEPT times its largest frame).
_PRICE_TEXT_KEPT = 64


def _number(value: Any, what: str) -> Decimal:
    """A price or quantity from the wire (text or int) or from code (``Decimal``)."""
    if type(value) is Decimal:
        number = value
    elif type(value) in _NUMBER_TYPES:
        number = exact_decimal(value)
    else:
        raise ValueError(f"{what} is not a number")
    if not number.is_finite() or number < 0:
        raise ValueError(f"{what} is not a finite non-negative number")
    return number


def _parse_rows(
    rows: Sequence[Any], prices: dict[Any, Decimal]
) -> list[tuple[int, int, int, Decimal, Decimal]]:
    """Validate every row before any is applied (all or nothing); raises on a bad one.

    This is the hot path of a busy book, so the checks are inlined.  ``prices`` maps a
    price as sent (text or int) to its checked ``Decimal``: the same object comes back
    for the same price, and a ``Decimal`` keeps its hash once computed, so the book's
    dicts do not hash a new ``Decimal`` per row (~0.35 µs each).
    """
    parsed: list[tuple[int, int, int, Decimal, Decimal]] = []
    append = parsed.append
    numbers, exact = _NUMBER_TYPES, exact_decimal
    for row in rows:
        if type(row) is not list:
            raise ValueError("not a 10-column Level2 row")
        # One unpacking both checks the width (ValueError) and picks the five columns.
        update_id, _, _, action, _, _, price, _, quantity, side = row
        if action not in _ACTIONS or side not in _SIDES or type(update_id) is not int:
            raise ValueError("bad action, side or update id")
        if type(price) in numbers:
            known = prices.get(price)
            if known is None:
                known = _number(price, "price")
                if type(price) is int or len(price) <= _PRICE_TEXT_KEPT:
                    if len(prices) >= _PRICES_KEPT:
                        prices.clear()
                    prices[price] = known
        else:
            known = _number(price, "price")
        if type(quantity) is str:
            quantity = exact(quantity)
            if not quantity.is_finite() or quantity < 0:
                raise ValueError("quantity is not a finite non-negative number")
        else:
            quantity = _number(quantity, "quantity")
        append((update_id, action, side, known, quantity))
    return parsed


class OrderBook:
    """The live book of one instrument: ``best_bid``, ``best_ask``, ``levels``, ``quote``.

    ``depth`` is how many levels per side :attr:`levels` shows (the book may know more: it
    is fed deeper than that).  ``updates`` counts applied rows, ``rebuilds`` counts
    resets from a snapshot after the first.
    """

    __slots__ = (
        "_asks",
        "_asks_sorted",
        "_best_ask",
        "_best_bid",
        "_bids",
        "_bids_sorted",
        "_changed",
        "_prices",
        "depth",
        "dirty",
        "instrument_id",
        "last_update_id",
        "rebuilds",
        "updates",
        "verified",
    )

    def __init__(self, instrument_id: int, *, depth: int = 20) -> None:
        self.instrument_id = instrument_id
        self.depth = depth
        self._bids: dict[Decimal, Decimal] = {}
        self._asks: dict[Decimal, Decimal] = {}
        self._bids_sorted: list[Decimal] | None = None
        self._asks_sorted: list[Decimal] | None = None
        self._best_bid: Any = None
        self._best_ask: Any = None
        self._changed: asyncio.Event | None = None
        self._prices: dict[Any, Decimal] = {}
        #: True when an update could not be applied: the book needs a rebuild.
        self.dirty = False
        #: False until the book was built from a snapshot (or after it went dirty).
        self.verified = False
        self.last_update_id = 0
        self.updates = 0
        self.rebuilds = -1

    def __repr__(self) -> str:
        return (
            f"<OrderBook {self.instrument_id} bid={self.best_bid} ask={self.best_ask} "
            f"levels={len(self._bids)}/{len(self._asks)}>"
        )

    # ------------------------------------------------------------------ building

    def reset(self, snapshot: L2Snapshot) -> None:
        """Replace every level by those of ``snapshot`` (a rebuild)."""
        self._bids = {e.price: e.quantity for e in snapshot.bids if e.quantity > 0}
        self._asks = {e.price: e.quantity for e in snapshot.asks if e.quantity > 0}
        self._bids_sorted = self._asks_sorted = None
        self._best_bid = self._best_ask = _STALE
        self.dirty = False
        self.verified = True
        self.rebuilds += 1
        self._notify()

    def apply(self, rows: Sequence[Any]) -> bool:
        """Apply one ``Level2UpdateEvent`` (its rows, in order); False if it was refused.

        A refused update changes nothing and marks the book :attr:`dirty`.
        """
        try:
            parsed = _parse_rows(rows, self._prices)
        except (ValueError, TypeError, IndexError, ArithmeticError):
            self.dirty = True
            self.verified = False
            return False
        bids, asks = self._bids, self._asks
        # The best prices are kept incrementally: only removing the best forces a rescan.
        best_bid, best_ask = self._best_bid, self._best_ask
        last_update_id = self.last_update_id
        for update_id, action, side, price, quantity in parsed:
            remove = action == 2 or quantity == 0
            if side == 0:
                if remove:
                    if bids.pop(price, None) is not None and price == best_bid:
                        best_bid = _STALE
                else:
                    bids[price] = quantity
                    if best_bid is not _STALE and (best_bid is None or price > best_bid):
                        best_bid = price
            elif remove:
                if asks.pop(price, None) is not None and price == best_ask:
                    best_ask = _STALE
            else:
                asks[price] = quantity
                if best_ask is not _STALE and (best_ask is None or price < best_ask):
                    best_ask = price
            if update_id > last_update_id:
                last_update_id = update_id
        self.last_update_id = last_update_id
        self._best_bid, self._best_ask = best_bid, best_ask
        self._bids_sorted = self._asks_sorted = None
        self.updates += len(parsed)
        self._notify()
        return True

    # ------------------------------------------------------------------ reading

    def _sorted_bids(self) -> list[Decimal]:
        if self._bids_sorted is None:
            self._bids_sorted = sorted(self._bids, reverse=True)
        return self._bids_sorted

    def _sorted_asks(self) -> list[Decimal]:
        if self._asks_sorted is None:
            self._asks_sorted = sorted(self._asks)
        return self._asks_sorted

    @property
    def best_bid(self) -> Decimal | None:
        """Highest bid price, or ``None``."""
        if self._best_bid is _STALE:
            self._best_bid = max(self._bids) if self._bids else None
        best: Decimal | None = self._best_bid
        return best

    @property
    def best_ask(self) -> Decimal | None:
        """Lowest ask price, or ``None``."""
        if self._best_ask is _STALE:
            self._best_ask = min(self._asks) if self._asks else None
        best: Decimal | None = self._best_ask
        return best

    @property
    def crossed(self) -> bool:
        """True when the best bid is at or above the best ask (the book is wrong)."""
        bid, ask = self.best_bid, self.best_ask
        return bid is not None and ask is not None and bid >= ask

    def snapshot(self, depth: int | None = None) -> L2Snapshot:
        """The top ``depth`` levels per side (default :attr:`depth`; 0 = all) as a snapshot."""
        n = self.depth if depth is None else depth
        bid_prices = self._sorted_bids()
        ask_prices = self._sorted_asks()
        if n > 0:
            bid_prices, ask_prices = bid_prices[:n], ask_prices[:n]
        iid = self.instrument_id
        return L2Snapshot(
            instrument_id=iid,
            bids=tuple(L2Entry(p, self._bids[p], Side.BUY, iid) for p in bid_prices),
            asks=tuple(L2Entry(p, self._asks[p], Side.SELL, iid) for p in ask_prices),
        )

    @property
    def levels(self) -> L2Snapshot:
        """The top :attr:`depth` levels per side."""
        return self.snapshot()

    def quote(
        self,
        *,
        side: Side,
        base_quantity: Decimal | None = None,
        quote_amount: Decimal | None = None,
    ) -> pricing.Quote:
        """What a market order would do on this book (:func:`kiiex_async.pricing.quote`)."""
        return pricing.quote(
            self.snapshot(0), side=side, base_quantity=base_quantity, quote_amount=quote_amount
        )

    def matches(self, snapshot: L2Snapshot, depth: int | None = None) -> bool:
        """True when the top ``depth`` levels (default :attr:`depth`) equal ``snapshot``'s."""
        n = self.depth if depth is None else depth
        mine = self.snapshot(n)
        return _pairs(mine.bids) == _pairs(snapshot.bids[:n]) and _pairs(mine.asks) == _pairs(
            snapshot.asks[:n]
        )

    # ------------------------------------------------------------------ waiting

    async def wait_update(self) -> None:
        """Return after the next change (an applied update or a rebuild)."""
        if self._changed is None:
            self._changed = asyncio.Event()
        await self._changed.wait()

    def _notify(self) -> None:
        event = self._changed
        if event is not None:
            self._changed = None
            event.set()


def _pairs(entries: Iterable[L2Entry]) -> list[tuple[Decimal, Decimal]]:
    return [(e.price, e.quantity) for e in entries]
