"""Poll Level1 rates for many instruments over one client, inside its rate budget.

``RatePoller`` asks the exchange for the top of book of every instrument once per
``interval`` and fans each answer out to any number of subscribers::

    async with KiiexClient(url) as client:
        async with RatePoller(client, ["USDTCOPM", "USDCCOPM"], interval=1.0) as poller:
            async for tick in poller:
                print(tick.symbol, tick.bid, tick.ask, tick.stale)

Every request goes through the client, so the poller shares its connection pool and rate
limiter with every other call the application makes.

How it behaves:

- *Scheduling.*  Each polling unit (one instrument in ``BOOK`` mode, a batch of instruments in
  ``LAST`` mode) is due on its own fixed grid ``origin + phase + k * interval``; ``phase`` is
  a random offset in ``[0, jitter)`` so that hundreds of instruments do not fire at the same
  instant.  A fixed set of worker tasks polls the units, earliest slot first, each worker
  going straight from one due unit to the next.  A unit has at most one request in flight:
  when a poll outlasts the interval, the slots it overran are skipped, never queued.
- *Connections.*  At most ``max_in_flight`` requests are in flight at once (one per
  worker).  By default that is the client's ``pool_size`` less a tenth (at least one
  connection): the rest of the pool stays free for the application's other calls, and polls
  never queue for a connection unless those calls hold more than the rest.  (A request that
  has to queue for one can starve: aiohttp hands a released connection to whoever asks
  first, and a busy loop always asks first.)
- *Rate limit.*  An HTTP 429 closes one gate shared by every unit until ``Retry-After`` has
  passed (or an exponential backoff when the server did not say); no unit sends a request
  while it is closed, so the whole poller slows down, not just the unit that was refused.
- *Failures.*  Any other error (5xx, timeouts, a bad instrument) backs off that unit alone with
  jittered exponential delays; the other units keep their schedule.  Session expiry is the
  client's business (it re-authenticates).
- *Staleness.*  A rate older than ``stale_after`` is flagged ``stale``: by ``latest()``, and by
  the ticks re-emitted at each slot while the instrument's polls keep failing.
- *Fan-out.*  Each subscription has its own buffer holding at most one tick per instrument
  (the newest): a slow consumer skips intermediate values instead of building a backlog, and
  never slows the poller or the other subscribers.

Where each part lives: this module holds :class:`RatePoller` (its workers, the 429 gate,
accepting rates and emitting ticks); the schedule (units, dispatcher, backoff) is
:mod:`kiiex_async._rates_schedule`'s, the ticks and subscriptions
:mod:`kiiex_async._rates_fanout`'s, the source protocol, modes and option checks
:mod:`kiiex_async._rates_inputs`'s, and the WebSocket pushes :mod:`kiiex_async._rates_ws`'s.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
import weakref
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from types import TracebackType
from typing import Any

import anyio
import anyio.abc
import attrs

from ._rates_fanout import RateTick, Subscription, _State
from ._rates_inputs import (
    InstrumentSpec,
    RateMode,
    RateSource,
    _check_count,
    _check_seconds,
    _in_flight_cap,
    _norm_symbol,
    _resolve,
)
from ._rates_schedule import _backoff_delay, _Dispatcher, _next_slot, _Unit
from ._rates_ws import PushFeed
from .errors import InvalidInputError, KiiexError, RateLimitedError
from .models import Instrument, Level1

__all__ = [
    "PollerStats",
    "RateMode",
    "RatePoller",
    "RateSource",
    "RateTick",
    "Subscription",
]

log = logging.getLogger(__name__)

_ZERO = Decimal(0)

# A worker yields to the event loop at least once every this many units it handles.
_YIELD_EVERY = 64


@attrs.frozen
class PollerStats:
    """Counters of a poller's life so far (a snapshot)."""

    #: Calls made to the client (one per unit poll).
    requests: int = 0
    #: Fresh rates received (one per instrument per successful poll).
    rates: int = 0
    #: Ticks fanned out to subscribers (fresh and stale).
    emitted: int = 0
    #: Calls that raised (429s included).
    failures: int = 0
    #: Calls refused with HTTP 429.
    rate_limited: int = 0
    #: Slots skipped because the previous poll of the unit outlasted the interval.
    skipped: int = 0
    #: Slots not polled because the 429 gate was closed or the unit was backing off.
    deferred: int = 0
    #: Slots served by the stream's latest push instead of an HTTP poll (``source="ws"``).
    pushed: int = 0


@attrs.define(eq=False)
class _Counters:
    # The mutable twin of PollerStats: bumped on the hot path, copied out by stats().
    requests: int = 0
    rates: int = 0
    emitted: int = 0
    failures: int = 0
    rate_limited: int = 0
    skipped: int = 0
    deferred: int = 0
    pushed: int = 0


def _positive(value: Decimal | None) -> Decimal | None:
    return value if value is not None and value > _ZERO else None


class RatePoller:
    """Polls Level1 rates of many instruments through one client and fans them out.

    ``client`` is a ``KiiexClient`` (anything implementing ``RateSource``); every request
    goes through it, sharing its pool and rate limiter.  ``instruments`` are ids, symbols
    (``"USDTCOPM"``; resolved with one ``get_instruments()`` call on start) or ``Instrument``
    objects.

    Options (seconds unless said):

    - ``interval``: each instrument is polled once per interval.
    - ``mode``: ``RateMode.BOOK`` (``GetLevel1``: bid, ask, last) or ``RateMode.LAST``
      (``GetLevel1SummaryMin`` in batches of ``batch_size``: last price only).
    - ``changes_only``: default of ``subscribe()``; emit only when bid/ask/last/stale change.
    - ``stale_after``: age beyond which a rate is flagged stale (default ``3 * interval``).
    - ``jitter``: width of the window the units' phases are drawn from (default
      ``interval / 10``; at most ``interval``).
    - ``backoff_base`` / ``backoff_cap``: per-unit backoff after a failure (default base
      ``interval``), and of the shared gate after a 429 without ``Retry-After``.
    - ``maxsize``: default of ``subscribe()`` (0: one tick per instrument, no other cap).
    - ``max_in_flight``: most requests in flight at once (default: the client's
      ``pool_size`` less a tenth, at least one; a client that does not expose ``pool_size``
      is taken to have ``KiiexClient``'s default of 100).  Several pollers on one client
      each take their own share: set it so that together they leave room for other calls.
    - ``seed``: makes phases and backoff jitter reproducible.
    - ``source``: ``"http"`` (polling) or ``"ws"``: rates are pushed by ``client.stream()``
      (``stream_options`` are its options) and reach subscribers as they arrive; while the
      socket is down the slots poll over HTTP instead, so rates only go stale when both
      fail.  ``"ws"`` needs ``RateMode.BOOK`` and a ``KiiexClient``.

    Use it as an async context manager from one task: entering resolves the instruments and
    starts ``min(units, max_in_flight)`` worker tasks in a task group, leaving stops it and
    waits for every task.  ``aclose()`` stops polling early, from any task.

    A 429 pauses every call of the ``KiiexClient`` until its ``Retry-After`` has passed (the
    client retries the read that got it), so the first 429 already slows every instrument;
    a 429 that outlasts the client's retries also closes the poller's own gate.
    """

    def __init__(
        self,
        client: RateSource,
        instruments: Iterable[InstrumentSpec],
        *,
        interval: float,
        mode: RateMode | str = RateMode.BOOK,
        changes_only: bool = False,
        stale_after: float | None = None,
        jitter: float | None = None,
        batch_size: int = 100,
        backoff_base: float | None = None,
        backoff_cap: float = 60.0,
        maxsize: int = 0,
        max_in_flight: int | None = None,
        seed: int | None = None,
        source: str = "http",
        stream_options: Mapping[str, Any] | None = None,
    ) -> None:
        self._client = client
        self._specs: tuple[InstrumentSpec, ...] = tuple(instruments)
        if not self._specs:
            raise InvalidInputError("RatePoller needs at least one instrument")
        self._interval = _check_seconds("interval", interval)
        try:
            self._mode = RateMode(mode)
        except ValueError:
            raise InvalidInputError(f"mode must be 'book' or 'last', got {mode!r}") from None
        self._changes_only = changes_only
        self._stale_after = (
            3 * self._interval
            if stale_after is None
            else _check_seconds("stale_after", stale_after)
        )
        window = (
            self._interval / 10
            if jitter is None
            else _check_seconds("jitter", jitter, allow_zero=True)
        )
        self._jitter = min(window, self._interval)
        self._batch_size = _check_count("batch_size", batch_size, 1)
        self._backoff_base = (
            self._interval if backoff_base is None else _check_seconds("backoff_base", backoff_base)
        )
        self._backoff_cap = max(_check_seconds("backoff_cap", backoff_cap), self._backoff_base)
        self._maxsize = _check_count("maxsize", maxsize, 0)
        self._max_in_flight = _in_flight_cap(client, max_in_flight)
        self._rng = random.Random(seed)
        if source not in ("http", "ws"):
            raise InvalidInputError(f"source must be 'http' or 'ws', got {source!r}")
        if source == "ws" and (self._mode is not RateMode.BOOK or not hasattr(client, "stream")):
            raise InvalidInputError("source='ws' needs RateMode.BOOK and a KiiexClient")
        self._source = source
        self._stream_options = stream_options
        self._pushes: PushFeed | None = None

        self._instruments: tuple[Instrument, ...] = ()
        self._states: dict[int, _State] = {}
        self._by_symbol: dict[str, int] = {}
        self._units: list[_Unit] = []
        # Weak: a subscription its consumer dropped (``break`` out of ``async for tick in
        # poller``) is collected instead of being fed forever.  A tuple, rebuilt on change,
        # because it is iterated on every tick.
        self._subs: tuple[weakref.ref[Subscription], ...] = ()
        self._counters = _Counters()
        self._gate_until = 0.0
        self._rate_limit_streak = 0
        self._phase = "new"  # new -> running -> stopped
        self._tg: anyio.abc.TaskGroup | None = None
        # Created on start: anyio primitives need a running event loop.
        self._run_scope: anyio.CancelScope | None = None
        self._stopped: anyio.Event | None = None

    # -- public surface ------------------------------------------------------------------

    @property
    def interval(self) -> float:
        """Seconds between two polls of one instrument."""
        return self._interval

    @property
    def mode(self) -> RateMode:
        """Which call the poller makes."""
        return self._mode

    @property
    def stale_after(self) -> float:
        """Age in seconds beyond which a rate is flagged stale."""
        return self._stale_after

    @property
    def instruments(self) -> tuple[Instrument, ...]:
        """The resolved instruments, in the caller's order (empty before start)."""
        return self._instruments

    @property
    def running(self) -> bool:
        """True between start and stop."""
        return self._phase == "running"

    @property
    def gate_open_in(self) -> float:
        """Seconds until the 429 gate reopens (0 when open)."""
        return max(0.0, self._gate_until - time.monotonic())

    def stats(self) -> PollerStats:
        """A snapshot of the poller's counters."""
        return PollerStats(**attrs.asdict(self._counters))

    def subscribe(
        self, *, maxsize: int | None = None, changes_only: bool | None = None
    ) -> Subscription:
        """A new independent subscription, primed with the latest known rate of each instrument.

        ``maxsize`` and ``changes_only`` default to the poller's settings.
        """
        size = self._maxsize if maxsize is None else _check_count("maxsize", maxsize, 0)
        sub = Subscription(
            maxsize=size,
            changes_only=self._changes_only if changes_only is None else changes_only,
        )
        for tick in self.snapshot():
            # New to this subscriber, so a change from its point of view.
            sub._offer(attrs.evolve(tick, changed=True))
        if self._phase == "stopped":
            sub._finish()
        else:
            self._subs = (*(weakref.ref(s) for s in self._live_subs()), weakref.ref(sub))
        return sub

    def __aiter__(self) -> Subscription:
        """``async for tick in poller`` iterates a fresh default subscription."""
        return self.subscribe()

    def latest(self, instrument: InstrumentSpec) -> RateTick | None:
        """The newest rate of ``instrument`` with its current age and stale flag.

        ``None`` until a first rate arrived.  Raises ``InvalidInputError`` for an instrument the
        poller does not poll.
        """
        state = self._states.get(self._key(instrument))
        if state is None:
            raise InvalidInputError(f"instrument {instrument!r} is not polled by this poller")
        return self._aged(state, time.monotonic())

    def snapshot(self) -> list[RateTick]:
        """``latest()`` of every instrument that has a rate, in the instruments' order."""
        now = time.monotonic()
        out = []
        for state in self._states.values():
            tick = self._aged(state, now)
            if tick is not None:
                out.append(tick)
        return out

    async def __aenter__(self) -> RatePoller:
        if self._phase != "new":
            raise InvalidInputError("a RatePoller can be started only once")
        await self._setup()
        self._run_scope = anyio.CancelScope()
        self._stopped = anyio.Event()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._phase = "running"
        tg.start_soon(self._run, self._run_scope, self._stopped)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        self._stop()
        tg, self._tg = self._tg, None
        if tg is None:
            return None
        if exc is not None and not isinstance(exc, anyio.get_cancelled_exc_class()):
            # The body's own error: stop polling and let it propagate as it is, not wrapped in
            # an exception group.  (A cancellation goes to the task group, which knows whether
            # it came from a crashed polling task.)
            await tg.__aexit__(None, None, None)
            return None
        return await tg.__aexit__(exc_type, exc, tb)

    async def aclose(self) -> None:
        """Stop polling (from any task) and wait until every polling task has ended.

        Subscriptions end once drained.  Leaving the ``async with`` block is still needed to
        release the task group; it returns at once afterwards.
        """
        self._stop()
        if self._stopped is not None:
            await self._stopped.wait()

    # -- internals -----------------------------------------------------------------------

    def _key(self, instrument: InstrumentSpec) -> int:
        if isinstance(instrument, Instrument):
            return instrument.instrument_id
        if isinstance(instrument, int) and not isinstance(instrument, bool):
            return instrument
        if isinstance(instrument, str):
            found = self._by_symbol.get(_norm_symbol(instrument))
            if found is not None:
                return found
            if instrument.strip().isdigit():
                return int(instrument)
        raise InvalidInputError(f"instrument {instrument!r} is not polled by this poller")

    def _aged(self, state: _State, now: float) -> RateTick | None:
        if not state.has_rate:
            return None
        age = max(0.0, now - state.received)
        return state.tick(age, age > self._stale_after, state.changed)

    async def _setup(self) -> None:
        specs = self._specs
        known: Sequence[Instrument] = ()
        if not all(isinstance(s, Instrument) for s in specs):
            known = await self._client.get_instruments()
        instruments = _resolve(specs, known)
        self._instruments = tuple(instruments)
        self._states = {i.instrument_id: _State(i) for i in instruments}
        for inst in instruments:
            for name in (inst.symbol, inst.venue_symbol):
                if name:
                    self._by_symbol.setdefault(_norm_symbol(name), inst.instrument_id)
        ids = [i.instrument_id for i in instruments]
        size = 1 if self._mode is RateMode.BOOK else self._batch_size
        self._units = [
            _Unit(tuple(ids[n : n + size]), self._rng.uniform(0, self._jitter), index)
            for index, n in enumerate(range(0, len(ids), size))
        ]
        if self._source == "ws":
            self._pushes = PushFeed(self._client, ids, self._on_push, self._stream_options)

    def _stop(self) -> None:
        if self._phase == "stopped":
            return
        self._phase = "stopped"
        if self._run_scope is not None:
            self._run_scope.cancel()
        for sub in self._live_subs():
            sub._finish()
        self._subs = ()

    async def _run(self, scope: anyio.CancelScope, stopped: anyio.Event) -> None:
        origin = time.monotonic()
        for unit in self._units:
            unit.start = origin + unit.phase
        dispatcher = _Dispatcher(self._units)
        try:
            with scope:
                async with anyio.create_task_group() as tg:
                    if self._pushes is not None:
                        tg.start_soon(self._pushes.run)
                    for _ in range(min(len(self._units), self._max_in_flight)):
                        tg.start_soon(self._work, dispatcher)
        finally:
            dispatcher.close()
            stopped.set()

    async def _work(self, dispatcher: _Dispatcher) -> None:
        """One worker: poll whichever unit falls due next, one request at a time.

        This loop is the poller's hot path: in ``BOOK`` mode the call is made right here,
        with no coroutine or list per poll.
        """
        interval = self._interval
        counters = self._counters
        monotonic = time.monotonic
        take = dispatcher.take
        take_nowait = dispatcher.take_nowait
        push = dispatcher.push
        book = self._mode is RateMode.BOOK
        states = self._states
        get_level1 = self._client.get_level1
        accept = self._accept
        wall = time.time
        pushes = self._pushes
        turns = 0
        while True:
            turns += 1
            if not turns % _YIELD_EVERY:
                # Going straight from one unit to the next never suspends by itself when
                # the source answers without waiting (an in-memory source) or when slots
                # keep being deferred (429 gate, backoff) at a tiny interval: let the rest
                # of the application run now and then.
                await asyncio.sleep(0)
            # Straight on to the next due unit when there is one (no suspension).
            slot, unit = take_nowait() or await take()
            now = monotonic()
            if now < self._gate_until or now < unit.retry_at:
                counters.deferred += 1
                self._mark_stale(unit.ids, now)
                push(_next_slot(unit.start, interval, max(now, slot)), unit)
                continue
            pushed = pushes.latest(unit.ids[0]) if pushes is not None else None
            if pushed is not None:
                # The live stream vouches for this rate: refresh it, no HTTP request.
                counters.pushed += 1
                self._on_push(unit.ids[0], pushed)
                push(_next_slot(unit.start, interval, max(now, slot + interval)), unit)
                continue
            counters.requests += 1
            if book:
                instrument_id = unit.ids[0]
                try:
                    l1 = await get_level1(instrument_id)
                except KiiexError as exc:
                    self._failed(unit, exc)
                    now = monotonic()
                else:
                    now = monotonic()
                    self._polled(unit)
                    if l1.instrument_id == instrument_id:
                        bid = l1.best_bid
                        ask = l1.best_offer
                        last = l1.last_traded_px
                        accept(
                            states[instrument_id],
                            bid if bid > _ZERO else None,
                            ask if ask > _ZERO else None,
                            last if last > _ZERO else None,
                            l1.time_stamp or l1.last_trade_time,
                            now,
                            wall(),
                        )
                    else:
                        # An answer about another instrument: this one ages like a failed poll.
                        self._mark_stale(unit.ids, now)
                    del l1  # not kept alive while the worker waits for its next unit
            else:
                await self._poll_batch(unit)
                now = monotonic()
            nxt = slot + interval
            if nxt <= now:
                # The poll outlasted the interval: the slots it overran are dropped, not queued.
                nxt = _next_slot(unit.start, interval, now)
                counters.skipped += max(0, round((nxt - slot) / interval) - 1)
            push(nxt, unit)

    async def _poll_batch(self, unit: _Unit) -> None:
        """One ``GetLevel1SummaryMin`` call for a LAST-mode unit (``requests`` counted)."""
        try:
            rows = await self._client.get_level1_summary_min(list(unit.ids))
        except KiiexError as exc:
            self._failed(unit, exc)
            return
        self._polled(unit)
        now = time.monotonic()
        wall = time.time()
        wanted = set(unit.ids)
        for row in rows:
            instrument_id = row.instrument_id
            if instrument_id in wanted:
                wanted.discard(instrument_id)
                self._accept(
                    self._states[instrument_id],
                    None,
                    None,
                    _positive(row.last_traded_px),
                    0,
                    now,
                    wall,
                )
        if wanted:
            # The exchange left some of the batch out: they age like failed polls.
            self._mark_stale(tuple(wanted), now)

    def _on_push(self, instrument_id: int, l1: Level1) -> None:
        """A Level1 from the stream (a push, or the stream's latest at a slot)."""
        state = self._states.get(instrument_id)
        if state is None or self._phase != "running":
            return
        self._accept(
            state,
            _positive(l1.best_bid),
            _positive(l1.best_offer),
            _positive(l1.last_traded_px),
            l1.time_stamp or l1.last_trade_time,
            time.monotonic(),
            time.time(),
        )

    def _polled(self, unit: _Unit) -> None:
        """A call of ``unit`` succeeded: its backoff and the 429 streak end."""
        unit.failures = 0
        self._rate_limit_streak = 0

    def _failed(self, unit: _Unit, exc: KiiexError) -> None:
        """A call of ``unit`` raised: close the gate (429) or back the unit off."""
        counters = self._counters
        counters.failures += 1
        if isinstance(exc, RateLimitedError):
            counters.rate_limited += 1
            self._close_gate(exc.retry_after)
            self._mark_stale(unit.ids, time.monotonic())
            return
        unit.failures += 1
        now = time.monotonic()
        wait = _backoff_delay(
            unit.failures, base=self._backoff_base, cap=self._backoff_cap, rng=self._rng
        )
        unit.retry_at = now + wait
        log.debug("poll of instrument(s) %s failed (%s); retry in %.2fs", unit.ids, exc, wait)
        self._mark_stale(unit.ids, now)

    def _close_gate(self, retry_after: float | None) -> None:
        self._rate_limit_streak += 1
        if retry_after is not None and math.isfinite(retry_after) and retry_after >= 0:
            wait = retry_after
        else:
            wait = _backoff_delay(
                self._rate_limit_streak,
                base=max(self._backoff_base, 1.0),
                cap=self._backoff_cap,
                rng=self._rng,
            )
        until = time.monotonic() + wait
        if until > self._gate_until:
            self._gate_until = until
            log.warning("rate limited (HTTP 429): pausing all polls for %.2fs", wait)

    def _accept(
        self,
        state: _State,
        bid: Decimal | None,
        ask: Decimal | None,
        last: Decimal | None,
        exchange_ms: int,
        now: float,
        wall: float,
    ) -> None:
        """Record a fresh rate (received at monotonic ``now``, epoch ``wall``) and emit it."""
        self._counters.rates += 1
        key = (bid, ask, last, False)
        state.has_rate = True
        state.bid = bid
        state.ask = ask
        state.last = last
        state.exchange_ms = exchange_ms
        state.wall = wall
        state.received = now
        state.changed = changed = key != state.emitted_key
        self._emit(state, key, 0.0, False, changed)

    def _mark_stale(self, ids: Iterable[int], now: float) -> None:
        for instrument_id in ids:
            state = self._states[instrument_id]
            if not state.has_rate:
                continue
            age = now - state.received
            if age > self._stale_after:
                key = (state.bid, state.ask, state.last, True)
                self._emit(state, key, age, True, key != state.emitted_key)

    def _emit(
        self, state: _State, key: tuple[object, ...], age: float, stale: bool, changed: bool
    ) -> None:
        state.emitted_key = key
        self._counters.emitted += 1
        subs = self._subs
        if not subs:
            return
        tick = state.tick(age, stale, changed)
        prune = False
        for ref in subs:
            sub = ref()
            if sub is None or sub._closed:
                prune = True
            else:
                sub._offer(tick)
        if prune:
            self._subs = tuple(weakref.ref(s) for s in self._live_subs())

    def _live_subs(self) -> list[Subscription]:
        subs = (ref() for ref in self._subs)
        return [s for s in subs if s is not None and not s._closed]
