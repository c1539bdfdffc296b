"""The rate poller's schedule: polling units, their slot grids and dispatch.

Each polling unit (one instrument in ``BOOK`` mode, a batch in ``LAST`` mode) is due on
its own grid ``start + k * interval``; :class:`_Dispatcher` hands the earliest due unit
to one of a fixed set of workers (at most one timer pending, idle workers parked).  A
unit whose poll failed keeps its ``retry_at`` (set by the poller with
:func:`kiiex_async._backoff.equal_jitter`): its next slot waits for it.  Used by
:class:`kiiex_async.rates.RatePoller`, which owns the workers themselves.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import math
import time
from collections import deque
from collections.abc import Iterable

import attrs

__all__ = ["_Dispatcher", "_Unit", "_next_slot"]

# A slot this close is treated as due: the event loop cannot sleep that precisely anyway
# (epoll rounds timeouts up to whole milliseconds), so such a sleep would only cost a timer
# and a loop iteration.
_MIN_SLEEP = 50e-6


@attrs.define(eq=False)
class _Unit:
    """One polled request: its instruments, its slot grid and its backoff state."""

    ids: tuple[int, ...]
    phase: float
    #: Position among the poller's units: breaks ties between equal slots (FIFO by order).
    index: int = 0
    #: Origin of the slot grid ``start + k * interval`` (set when polling starts).
    start: float = 0.0
    failures: int = 0
    retry_at: float = 0.0


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class _Dispatcher:
    """Hands units to a fixed set of worker tasks, earliest slot first, when they fall due.

    Waiting units sit in a heap keyed by ``(slot, index)``.  ``take()`` returns the earliest
    one at once if it is due, so a busy worker goes from one poll to the next without
    suspending.  Otherwise the worker goes idle in one of two ways: the first idle worker is
    the *keeper*, woken by a timer at the earliest slot; the others park and wait to be
    woken.  A worker that takes a unit wakes one parked worker (which becomes the keeper, or
    takes the next due unit), and ``push()`` moves the keeper's timer forward when a unit
    falls due earlier than the one it watches.  So an idle worker is never needed for a due
    unit without being woken, and at most one timer is pending at any time.
    """

    def __init__(self, units: Iterable[_Unit]) -> None:
        self._heap = [(unit.start, unit.index, unit) for unit in units]
        heapq.heapify(self._heap)
        self._parked: deque[asyncio.Future[None]] = deque()
        self._keeper: asyncio.Future[None] | None = None
        self._keeper_at = math.inf
        self._timer: asyncio.TimerHandle | None = None

    def push(self, slot: float, unit: _Unit) -> None:
        """Queue ``unit`` for its next ``slot`` (``time.monotonic()`` seconds)."""
        heapq.heappush(self._heap, (slot, unit.index, unit))
        if slot < self._keeper_at and self._keeper is not None:
            self._arm(self._keeper, slot)

    def take_nowait(self) -> tuple[float, _Unit] | None:
        """The earliest unit and its slot if that slot is due, else ``None``."""
        heap = self._heap
        if not heap or heap[0][0] - time.monotonic() > _MIN_SLEEP:
            return None
        slot, _, unit = heapq.heappop(heap)
        if heap and self._parked:
            # Somebody must watch the next slot now that this worker is busy.
            self._wake_parked()
        return slot, unit

    async def take(self) -> tuple[float, _Unit]:
        """The earliest unit and its slot, once that slot is due (waits until then)."""
        while (taken := self.take_nowait()) is None:
            heap = self._heap
            # An empty heap: every unit is out with a worker, so wait for one to come back.
            await self._idle(heap[0][0] if heap else math.inf)
        return taken

    def close(self) -> None:
        """Drop the pending timer (polling stopped)."""
        self._disarm()

    def _disarm(self) -> None:
        self._keeper_at = math.inf
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, keeper: asyncio.Future[None], slot: float) -> None:
        """Wake ``keeper`` at ``slot`` (replacing any timer set before)."""
        self._disarm()
        self._keeper_at = slot
        if math.isfinite(slot):
            # Relative: slots are ``time.monotonic()`` values, which need not be loop.time().
            delay = max(0.0, slot - time.monotonic())
            self._timer = asyncio.get_running_loop().call_later(delay, _wake, keeper)

    def _wake_parked(self) -> None:
        parked = self._parked
        while parked:
            waiter = parked.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def _idle(self, slot: float) -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._keeper is None:
            self._keeper = waiter
            self._arm(waiter, slot)
            try:
                await waiter
            finally:
                if self._keeper is waiter:
                    self._keeper = None
                    self._disarm()
        else:
            self._parked.append(waiter)
            try:
                await waiter
            finally:
                if not waiter.done() or waiter.cancelled():
                    with contextlib.suppress(ValueError):
                        self._parked.remove(waiter)


def _next_slot(start: float, interval: float, now: float) -> float:
    """The first time ``start + k * interval`` (k >= 0) strictly after ``now``."""
    if now < start:
        return start
    k = math.floor((now - start) / interval) + 1
    slot = start + k * interval
    # Guard against float rounding putting the slot at or before `now`.
    return slot if slot > now else slot + interval
