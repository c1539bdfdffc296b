"""The rate poller's fan-out: ticks, each instrument's latest rate, and subscriptions.

:class:`RateTick` is what a subscriber receives; :class:`_State` keeps one instrument's
latest fresh rate as plain fields and builds a tick only when someone reads it;
:class:`Subscription` buffers at most one tick per instrument (the newest), so a slow
consumer skips values instead of building a backlog and never slows the poller.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from datetime import UTC, datetime
from decimal import Decimal
from types import TracebackType

import anyio
import anyio.abc
import attrs

from .models import Instrument

__all__ = ["RateTick", "Subscription", "_State"]


@attrs.frozen
class RateTick:
    """One instrument's rate as the poller saw it.

    ``bid``/``ask``/``last`` are ``None`` when the exchange has none (empty side of the book,
    never traded) or when the poller runs in ``RateMode.LAST`` (no bid/ask).  ``age`` is the
    number of seconds between ``received_at`` and the moment this object was produced; ``stale``
    is ``age > stale_after``.  ``changed`` is true when bid, ask, last or ``stale`` differ from
    the previous tick the poller emitted for this instrument (always true for the first).
    """

    instrument_id: int
    symbol: str
    bid: Decimal | None
    ask: Decimal | None
    last: Decimal | None
    exchange_time: datetime | None
    received_at: datetime
    age: float = 0.0
    stale: bool = False
    changed: bool = True

    @property
    def mid(self) -> Decimal | None:
        """Mid price, or ``None`` unless both bid and ask are known."""
        if self.bid is None or self.ask is None:
            return None
        return (self.bid + self.ask) / 2


@attrs.define(eq=False)
class _State:
    """The latest fresh rate of one instrument.

    Kept as plain fields, not as a ``RateTick``: a tick is built only when someone needs one
    (a subscriber to feed, a ``latest()`` or ``snapshot()`` call), so a poll whose rate
    nobody reads yet costs no tick and no ``datetime``.
    """

    instrument: Instrument
    #: Whether a fresh rate arrived yet; the fields below describe it.
    has_rate: bool = False
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None
    #: Exchange timestamp in ms since the epoch (<= 0: none).
    exchange_ms: int = 0
    #: ``time.time()`` and ``time.monotonic()`` at receipt.
    wall: float = 0.0
    received: float = 0.0
    #: The fresh tick's ``changed`` flag.
    changed: bool = True
    emitted_key: tuple[object, ...] | None = None
    # ``datetime``s built from ``exchange_ms`` / ``wall``, for the values they were built from.
    exchange_time_ms: int = 0
    exchange_time: datetime | None = None
    received_at_wall: float = math.nan
    received_at: datetime | None = None

    def tick(self, age: float, stale: bool, changed: bool) -> RateTick:
        """This rate as a tick (``has_rate`` must be true)."""
        ms = self.exchange_ms
        if ms != self.exchange_time_ms:
            self.exchange_time_ms = ms
            self.exchange_time = datetime.fromtimestamp(ms / 1000, UTC) if ms > 0 else None
        received_at = self.received_at
        if received_at is None or self.wall != self.received_at_wall:
            self.received_at_wall = self.wall
            self.received_at = received_at = datetime.fromtimestamp(self.wall, UTC)
        return RateTick(
            self.instrument.instrument_id,
            self.instrument.symbol,
            self.bid,
            self.ask,
            self.last,
            self.exchange_time,
            received_at,
            age,
            stale,
            changed,
        )


class Subscription:
    """An independent stream of ticks from a ``RatePoller``.

    Iterate it with ``async for``; use it as an async context manager (or call ``aclose()``)
    to unsubscribe.  Its buffer holds at most one tick per instrument, the newest: when a new
    tick arrives for an instrument whose previous tick was not read yet, it replaces it in
    place (``dropped`` counts these).  ``maxsize`` > 0 further caps the number of instruments
    buffered; beyond it the oldest waiting tick is discarded.  Iteration ends after the poller
    stops and the buffer is drained.

    Create one with ``RatePoller.subscribe()``.  The poller holds subscriptions weakly, so one
    that its consumer dropped (``break`` out of ``async for tick in poller``) simply goes away.
    """

    def __init__(self, *, maxsize: int, changes_only: bool) -> None:
        self._buffer: OrderedDict[int, RateTick] = OrderedDict()
        self._maxsize = maxsize
        self._changes_only = changes_only
        self._closed = False
        self._wakeup: anyio.Event | None = None
        self._dropped = 0
        self._delivered = 0

    @property
    def pending(self) -> int:
        """Number of ticks waiting to be read."""
        return len(self._buffer)

    @property
    def dropped(self) -> int:
        """Ticks superseded by a newer tick (or evicted by ``maxsize``) before being read."""
        return self._dropped

    @property
    def delivered(self) -> int:
        """Ticks read from this subscription so far."""
        return self._delivered

    @property
    def closed(self) -> bool:
        """True once unsubscribed or once the poller stopped (buffered ticks stay readable)."""
        return self._closed

    def get_nowait(self) -> RateTick | None:
        """The oldest waiting tick, or ``None`` when there is none (never waits)."""
        if not self._buffer:
            return None
        _, tick = self._buffer.popitem(last=False)
        self._delivered += 1
        return tick

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> RateTick:
        """The next tick; waits for one.  Ends when closed and drained."""
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            wakeup = self._wakeup
            if wakeup is None:
                self._wakeup = wakeup = anyio.Event()
            await wakeup.wait()
        _, tick = self._buffer.popitem(last=False)
        self._delivered += 1
        return tick

    async def __aenter__(self) -> Subscription:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Unsubscribe now: waiting ticks are discarded and iteration ends."""
        self._buffer.clear()
        self._finish()

    def _finish(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        # Set once, then forgotten: the next ticks offered before the reader runs need not set
        # it again, and the reader makes a new one when it waits again.
        wakeup = self._wakeup
        if wakeup is not None:
            self._wakeup = None
            wakeup.set()

    def _offer(self, tick: RateTick) -> None:
        if self._closed or (self._changes_only and not tick.changed):
            return
        buffer = self._buffer
        key = tick.instrument_id
        if key in buffer:
            self._dropped += 1
        elif self._maxsize and len(buffer) >= self._maxsize:
            buffer.popitem(last=False)
            self._dropped += 1
        buffer[key] = tick
        self._wake()
