"""What a stream hands its consumers: latest-value cells and bounded queues (no I/O).

``Level1Feed`` keeps only the newest value (readers skip intermediate ones, never build a
backlog).  ``TradeFeed`` is a bounded queue that drops its oldest trades when full and
counts them.  ``AccountEvents`` is a bounded queue that, when full, empties itself and asks
its stream for a REST resynchronisation, whose :class:`~kiiex_async._events.Resynced`
marker follows: account events are never dropped silently.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from ._events import AccountEvent, PublicTrade
from .errors import ConfigurationError
from .models import Level1

__all__ = ["AccountEvents", "Latest", "Level1Feed", "TradeFeed"]

T = TypeVar("T")


class Latest(Generic[T]):
    """A latest-value cell: readers skip intermediate values, never build a backlog."""

    def __init__(self) -> None:
        self.value: T | None = None
        self.version = 0
        self.closed = False
        self.error: BaseException | None = None
        self._event = asyncio.Event()

    def set(self, value: T) -> None:
        self.value = value
        self.version += 1
        self._wake()

    def fail(self, error: BaseException) -> None:
        self.error = error
        self._wake()

    def close(self) -> None:
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    async def next(self, seen: int) -> tuple[int, T]:
        while self.version == seen:
            if self.error is not None:
                raise self.error
            if self.closed:
                raise StopAsyncIteration
            await self._event.wait()
        assert self.value is not None
        return self.version, self.value


class Level1Feed:
    """Pushed Level1 of one instrument: :meth:`latest`, or ``async for`` the newest values."""

    def __init__(self, instrument_id: int) -> None:
        self.instrument_id = instrument_id
        self._cell: Latest[Level1] = Latest()

    def latest(self) -> Level1 | None:
        """The newest value, or ``None`` before the first one."""
        return self._cell.value

    def __aiter__(self) -> _Level1Cursor:
        return _Level1Cursor(self._cell)


class _Level1Cursor:
    def __init__(self, cell: Latest[Level1]) -> None:
        self._cell = cell
        self._seen = 0

    def __aiter__(self) -> _Level1Cursor:
        return self

    async def __anext__(self) -> Level1:
        self._seen, value = await self._cell.next(self._seen)
        return value


class _Queue(Generic[T]):
    """A bounded queue one consumer reads with ``async for``; ``_full`` decides overflow."""

    def __init__(self, maxsize: int) -> None:
        if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 1:
            raise ConfigurationError(f"maxsize must be an int >= 1, got {maxsize!r}")
        self.maxsize = maxsize
        self.items: deque[T] = deque()
        self.closed = False
        self._event = asyncio.Event()

    def _full(self, item: T) -> None:
        raise NotImplementedError

    def put(self, item: T, *, force: bool = False) -> None:
        if not force and len(self.items) >= self.maxsize:
            self._full(item)
            return
        self.items.append(item)
        self._event.set()

    def close(self) -> None:
        self.closed = True
        self._event.set()

    def __aiter__(self) -> _Queue[T]:
        return self

    async def __anext__(self) -> T:
        while not self.items:
            if self.closed:
                raise StopAsyncIteration
            self._event.clear()
            await self._event.wait()
        return self.items.popleft()


class TradeFeed(_Queue[PublicTrade]):
    """Public trades of one instrument, oldest first; when full the oldest are dropped and
    counted in :attr:`dropped` (a trade feed is informational; REST has the history)."""

    def __init__(self, instrument_id: int, maxsize: int) -> None:
        super().__init__(maxsize)
        self.instrument_id = instrument_id
        self.dropped = 0

    def _full(self, item: PublicTrade) -> None:
        self.items.popleft()
        self.dropped += 1
        self.put(item)


class AccountEvents(_Queue[AccountEvent]):
    """This account's events; on overflow the queue is emptied and a :class:`Resynced`
    marker with the REST state follows (:attr:`overflows` counts them)."""

    def __init__(self, maxsize: int, resync: Callable[[AccountEvents, str], None]) -> None:
        super().__init__(maxsize)
        self._resync = resync
        self.overflows = 0

    def _full(self, item: AccountEvent) -> None:
        self.items.clear()
        self.overflows += 1
        self._resync(self, "overflow")
