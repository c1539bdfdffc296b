"""RatePoller: scheduling, rate gate, per-instrument isolation, fan-out, staleness, lifetime.

The first tests drive the poller with a tiny in-memory client (a spy that records every
call); the last ones run it over a real ``KiiexClient`` against the simulator on 127.0.0.1.
No assertion depends on how fast the machine is: waits are condition-based with generous
timeouts, and the rate-gate test checks an invariant of the request log, not a duration.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import random
import time
import weakref
from collections import Counter
from collections.abc import Callable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from kiiex_async._rates_inputs import _resolve
from kiiex_async._rates_schedule import _backoff_delay, _Dispatcher, _next_slot, _Unit
from kiiex_async.client import KiiexClient
from kiiex_async.errors import InvalidInputError, NotFoundError, RateLimitedError, ServerError
from kiiex_async.models import Instrument, Level1, Level1Summary
from kiiex_async.rates import RateMode, RatePoller, RateTick, Subscription
from kiiex_async.sim import Fault, InstrumentSpec, SimConfig, Simulator

WAIT = 20.0  # generous: a loaded 2-core CI machine must never time these out

INSTRUMENTS = [
    Instrument(1, "USDTCOPM", 1, "USDT", 3, "COPM"),
    Instrument(2, "USDCCOPM", 2, "USDC", 3, "COPM"),
    Instrument(3, "USDCUSDT", 2, "USDC", 1, "USDT"),
]

Behaviour = Callable[[int, int], Level1 | Exception]


def counting(instrument_id: int, n: int) -> Level1:
    """Level1 whose prices move on every call: last = n, bid = n, ask = n + 1."""
    return Level1(
        instrument_id,
        best_bid=Decimal(n),
        best_offer=Decimal(n + 1),
        last_traded_px=Decimal(n),
        time_stamp=1_700_000_000_000 + n,
    )


class FakeClient:
    """In-memory stand-in for ``KiiexClient`` that logs every call (a spy)."""

    def __init__(self, behaviour: Behaviour = counting, *, delay: float = 0.0) -> None:
        self.behaviour = behaviour
        self.delay = delay
        self.calls: list[tuple[float, int]] = []  # (start time, instrument id)
        self.counts: Counter[int] = Counter()
        self.instrument_calls = 0
        self.summary_calls: list[list[int]] = []
        self.in_flight: Counter[int] = Counter()
        self.max_in_flight = 0
        self.raised_429_at: list[float] = []

    async def get_instruments(self) -> list[Instrument]:
        self.instrument_calls += 1
        await anyio.lowlevel.checkpoint()
        return list(INSTRUMENTS)

    async def get_level1(self, instrument_id: int) -> Level1:
        # Recorded before the first await: the log shows when the poller decided to send.
        self.calls.append((time.monotonic(), instrument_id))
        self.counts[instrument_id] += 1
        n = self.counts[instrument_id]
        self.in_flight[instrument_id] += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight[instrument_id])
        try:
            if self.delay:
                await anyio.sleep(self.delay)
            else:
                await anyio.lowlevel.checkpoint()
            result = self.behaviour(instrument_id, n)
        finally:
            self.in_flight[instrument_id] -= 1
        if isinstance(result, RateLimitedError):
            self.raised_429_at.append(time.monotonic())
        if isinstance(result, Exception):
            raise result
        return result

    async def get_level1_summary_min(
        self, instrument_ids: Sequence[int] | None = None
    ) -> list[Level1Summary]:
        ids = list(instrument_ids or [])
        self.summary_calls.append(ids)
        await anyio.lowlevel.checkpoint()
        # Instrument 3 is "unknown" to this exchange: left out of the answer.
        return [
            Level1Summary(i, f"SYM{i}", Decimal(100 + i), Decimal(0), Decimal(0), Decimal(0))
            for i in ids
            if i != 3
        ]


async def wait_until(predicate: Callable[[], bool]) -> None:
    """Wait until ``predicate()`` holds (checked every few ms), or fail the test."""
    with anyio.fail_after(WAIT):
        # Polling, not an Event: the conditions span the spy, the poller and subscribers.
        while not predicate():  # noqa: ASYNC110
            await anyio.sleep(0.005)


async def next_tick(sub: Subscription) -> RateTick:
    """The next tick of ``sub``, or fail the test."""
    with anyio.fail_after(WAIT):
        return await anext(sub)


def no_other_tasks(before: set[asyncio.Task[object]]) -> bool:
    """True when no task exists besides those that existed at ``before``."""
    return asyncio.all_tasks() <= before


# -- pure parts ---------------------------------------------------------------------------


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    """Backoff after the n-th failure lies in [step/2, step], step = min(cap, base * 2**(n-1))."""
    rng = random.Random(7)
    for attempt, step in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (10, 10.0), (500, 10.0)]:
        delays = [_backoff_delay(attempt, base=0.5, cap=10.0, rng=rng) for _ in range(200)]
        assert all(step / 2 <= d <= step for d in delays)
        assert len(set(delays)) > 100  # jittered, not constant


def test_next_slot_is_on_the_grid_and_strictly_in_the_future() -> None:
    """The next slot after `now` lies on start + k*interval and skips every missed slot."""
    assert _next_slot(10.0, 1.0, 5.0) == 10.0
    assert _next_slot(10.0, 1.0, 10.0) == 11.0
    assert _next_slot(10.0, 1.0, 13.5) == 14.0
    assert _next_slot(0.0, 0.1, 0.3) > 0.3
    for now in (0.0, 0.7, 12.345, 1e6 + 0.01):
        slot = _next_slot(0.0, 0.25, now)
        assert now < slot <= now + 0.25 + 1e-9
        assert abs(slot / 0.25 - round(slot / 0.25)) < 1e-6


def test_resolve_accepts_ids_symbols_and_instruments_in_order() -> None:
    """Ids, symbols (any case/separator), digit strings and Instrument objects resolve."""
    got = _resolve(["usdc/copm", 1, INSTRUMENTS[2], "USDTCOPM", "3"], INSTRUMENTS)
    assert [i.instrument_id for i in got] == [2, 1, 3]


def test_resolve_names_every_unknown_instrument() -> None:
    """Unknown symbols and ids raise InvalidInputError naming each of them."""
    with pytest.raises(InvalidInputError, match=r"'BTCUSD'.*99"):
        _resolve(["BTCUSD", 1, 99], INSTRUMENTS)
    with pytest.raises(InvalidInputError):
        _resolve([True], INSTRUMENTS)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"interval": 0},
        {"interval": float("nan")},
        {"interval": -1},
        {"interval": 1, "stale_after": 0},
        {"interval": 1, "mode": "depth"},
        {"interval": 1, "batch_size": 0},
        {"interval": 1, "maxsize": -1},
        {"interval": 1, "jitter": -0.1},
    ],
)
def test_invalid_options_are_refused(kwargs: dict[str, object]) -> None:
    """Bad intervals, staleness, modes, batch sizes and buffer sizes raise InvalidInputError."""
    with pytest.raises(InvalidInputError):
        RatePoller(FakeClient(), [1], **kwargs)  # type: ignore[arg-type]


def test_poller_needs_instruments() -> None:
    """An empty instrument list is refused."""
    with pytest.raises(InvalidInputError):
        RatePoller(FakeClient(), [], interval=1)


def _tick(instrument_id: int, last: int) -> RateTick:
    from datetime import UTC, datetime

    return RateTick(
        instrument_id, f"S{instrument_id}", None, None, Decimal(last), None, datetime.now(UTC)
    )


def test_subscription_keeps_only_the_newest_tick_per_instrument() -> None:
    """A new tick for a buffered instrument replaces it in place; maxsize evicts the oldest."""
    sub = Subscription(maxsize=2, changes_only=False)
    sub._offer(_tick(1, 1))
    sub._offer(_tick(2, 1))
    sub._offer(_tick(1, 2))  # replaces instrument 1's tick, keeps its place in line
    assert sub.pending == 2
    assert sub.dropped == 1
    sub._offer(_tick(3, 1))  # over maxsize: instrument 1 (oldest) is evicted
    assert [(t.instrument_id, t.last) for t in iter(sub.get_nowait, None)] == [
        (2, Decimal(1)),
        (3, Decimal(1)),
    ]
    assert sub.dropped == 2
    assert sub.delivered == 2


async def test_phases_spread_instruments_over_the_jitter_window() -> None:
    """Units share one grid but start at seeded random phases within [0, jitter)."""
    many = [Instrument(i, f"S{i}", 1, "A", 2, "B") for i in range(1, 501)]
    poller = RatePoller(FakeClient(), many, interval=1.0, jitter=0.2, seed=3)
    await poller._setup()
    phases = [u.phase for u in poller._units]
    assert len(phases) == 500
    assert all(0 <= p < 0.2 for p in phases)
    assert max(phases) - min(phases) > 0.15
    assert len(set(phases)) == 500
    aligned = RatePoller(FakeClient(), many, interval=1.0, jitter=0)
    await aligned._setup()
    assert {u.phase for u in aligned._units} == {0.0}
    batched = RatePoller(FakeClient(), many, interval=1.0, mode="last", batch_size=64)
    await batched._setup()
    assert [len(u.ids) for u in batched._units] == [64] * 7 + [52]


def _units(*offsets: float) -> list[_Unit]:
    """Units whose first slot is ``offsets`` seconds from now."""
    now = time.monotonic()
    return [_Unit((i,), 0.0, i, now + off) for i, off in enumerate(offsets, start=1)]


async def test_dispatcher_hands_out_due_units_earliest_first() -> None:
    """Due units come out in slot order without waiting; a unit not yet due is held back."""
    dispatcher = _Dispatcher(_units(-0.2, -0.3, -0.1, 60))
    taken = [dispatcher.take_nowait() for _ in range(4)]
    assert [t[1].index if t else None for t in taken] == [2, 1, 3, None]
    dispatcher.close()


async def test_dispatcher_wakes_a_parked_worker_for_the_next_slot() -> None:
    """Two idle workers: the one watching the timer takes the first unit and wakes the other.

    Without the hand-over the second worker would stay parked with a unit due.
    """
    dispatcher = _Dispatcher(_units(0.02, 0.04, 60))
    got: list[int] = []

    async def worker() -> None:
        got.append((await dispatcher.take())[1].index)

    with anyio.fail_after(WAIT):
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker)
            tg.start_soon(worker)
    assert sorted(got) == [1, 2]
    assert dispatcher._timer is None and not dispatcher._parked
    dispatcher.close()


async def test_dispatcher_moves_the_timer_forward_for_an_earlier_unit() -> None:
    """A unit pushed with a slot before the watched one is taken at its own slot."""
    dispatcher = _Dispatcher(_units(60))
    early = _units(0.01)[0]
    early.index = 9
    got: list[int] = []

    async def worker() -> None:
        got.append((await dispatcher.take())[1].index)

    with anyio.fail_after(WAIT):  # the watched slot is 60 s away
        async with anyio.create_task_group() as tg:
            tg.start_soon(worker)
            await wait_until(lambda: dispatcher._keeper is not None)
            dispatcher.push(early.start, early)
    assert got == [9]
    dispatcher.close()


async def test_dispatcher_forgets_cancelled_workers() -> None:
    """Cancelling idle workers leaves no parked waiter and no pending timer behind."""
    dispatcher = _Dispatcher(_units(60))
    with anyio.move_on_after(0.05):
        async with anyio.create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(dispatcher.take)
    assert dispatcher._keeper is None
    assert dispatcher._timer is None
    assert not dispatcher._parked


# -- the poller over a fake client ---------------------------------------------------------


async def test_ticks_carry_bid_ask_last_times_and_symbol() -> None:
    """BOOK ticks hold Decimal bid/ask/last, the exchange time, receive time and the symbol."""

    def book(instrument_id: int, n: int) -> Level1:
        if instrument_id == 2:  # empty book, never traded
            return Level1(instrument_id)
        return counting(instrument_id, n)

    client = FakeClient(book)
    async with RatePoller(client, ["usdt-copm", 2], interval=0.01) as poller:
        sub = poller.subscribe()
        seen: dict[int, RateTick] = {}
        while len(seen) < 2:
            tick = await next_tick(sub)
            seen[tick.instrument_id] = tick
        assert [i.symbol for i in poller.instruments] == ["USDTCOPM", "USDCCOPM"]
    one, two = seen[1], seen[2]
    assert one.symbol == "USDTCOPM"
    assert isinstance(one.bid, Decimal)
    assert one.ask == one.bid + 1
    assert one.last == one.bid
    assert one.mid == one.bid + Decimal("0.5")
    assert one.exchange_time is not None
    assert one.exchange_time.timestamp() > 1_700_000_000
    assert one.received_at.tzinfo is not None
    assert not one.stale
    assert (two.bid, two.ask, two.last, two.mid, two.exchange_time) == (None,) * 5
    assert client.instrument_calls == 1


async def test_instrument_objects_need_no_lookup() -> None:
    """Passing Instrument objects skips get_instruments() entirely."""
    client = FakeClient()
    async with RatePoller(client, INSTRUMENTS[:2], interval=0.01) as poller:
        await wait_until(lambda: poller.latest(2) is not None)
        assert poller.latest("USDTCOPM") is not None
        with pytest.raises(InvalidInputError):
            poller.latest(3)
    assert client.instrument_calls == 0


async def test_fast_subscriber_sees_every_change_slow_one_the_newest() -> None:
    """Fan-out: a fast consumer gets every tick; a slow one gets the newest, skipping the rest."""
    client = FakeClient()
    async with RatePoller(client, [1], interval=0.01) as poller:
        fast = poller.subscribe()
        slow = poller.subscribe()
        fast_seen: list[Decimal | None] = []

        async def consume_fast() -> None:
            async for tick in fast:
                fast_seen.append(tick.last)
                if len(fast_seen) >= 40:
                    return

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume_fast)
            first = await next_tick(slow)
            # The slow consumer dawdles while the poller keeps going.
            await wait_until(lambda: len(fast_seen) >= 25)
            second = await next_tick(slow)  # does not wait: the newest tick is buffered
            newest = poller.latest(1)
    assert fast_seen == [Decimal(n) for n in range(1, 41)]
    assert newest is not None
    assert second.last == newest.last
    assert first.last is not None
    assert second.last is not None
    assert second.last - first.last >= 20
    assert slow.dropped >= 20
    assert fast.dropped == 0


async def test_rate_limit_pauses_every_instrument_until_retry_after() -> None:
    """A 429 on one instrument stops all instruments' requests until Retry-After has passed."""
    retry_after = 0.6

    def limited(instrument_id: int, n: int) -> Level1 | Exception:
        if instrument_id == 1 and n == 5:
            return RateLimitedError("GetLevel1: HTTP 429", retry_after=retry_after)
        return counting(instrument_id, n)

    client = FakeClient(limited)
    async with RatePoller(client, [1, 2, 3], interval=0.01, stale_after=60) as poller:
        await wait_until(lambda: bool(client.raised_429_at))
        t429 = client.raised_429_at[0]
        await wait_until(lambda: client.calls[-1][0] > t429 + retry_after)
        await wait_until(lambda: min(client.counts.values()) >= 10)
        stats = poller.stats()
    during = [(t, i) for t, i in client.calls if t429 < t < t429 + retry_after]
    assert during == []
    # The other instruments were being polled before the 429, and all resumed after it.
    assert all(any(t < t429 and i == n for t, i in client.calls) for n in (2, 3))
    assert {i for t, i in client.calls if t > t429} == {1, 2, 3}
    assert stats.rate_limited == 1
    assert stats.deferred >= 1


async def test_one_failing_instrument_does_not_stop_the_others() -> None:
    """An instrument that keeps failing backs off alone; the others keep ticking, fresh."""

    def broken(instrument_id: int, n: int) -> Level1 | Exception:
        if instrument_id == 2:
            return ServerError("GetLevel1: HTTP 503", status=503)
        return counting(instrument_id, n)

    client = FakeClient(broken)
    async with RatePoller(client, [1, 2, 3], interval=0.01, stale_after=60) as poller:
        await wait_until(lambda: min(client.counts[1], client.counts[3]) >= 40)
        assert poller.latest(2) is None
        ticks = [poller.latest(1), poller.latest(3)]
        stats = poller.stats()
    assert all(t is not None and not t.stale for t in ticks)
    # Exponential backoff: far fewer attempts for the broken instrument.
    assert 1 <= client.counts[2] < 40
    # Every completed request for it failed (one may still have been in flight).
    assert client.counts[2] - 1 <= stats.failures <= client.counts[2]


async def test_an_answer_about_another_instrument_is_not_taken_for_this_one() -> None:
    """A GetLevel1 answer naming another instrument is ignored, and is not a failure."""

    def confused(instrument_id: int, n: int) -> Level1:
        return counting(3 if instrument_id == 2 else instrument_id, n)

    client = FakeClient(confused)
    async with RatePoller(client, [1, 2], interval=0.01, stale_after=60) as poller:
        # No backoff for instrument 2: it keeps pace with instrument 1.
        await wait_until(lambda: min(client.counts[1], client.counts[2]) >= 20)
        assert poller.latest(2) is None
        tick = poller.latest(1)
        stats = poller.stats()
    assert tick is not None
    assert tick.instrument_id == 1
    assert stats.failures == 0


async def test_last_mode_failing_batch_backs_off_alone() -> None:
    """In LAST mode a failing call backs off its own batch; the other batches keep polling."""

    class Flaky(FakeClient):
        async def get_level1_summary_min(
            self, instrument_ids: Sequence[int] | None = None
        ) -> list[Level1Summary]:
            ids = list(instrument_ids or [])
            if 4 not in ids:
                return await super().get_level1_summary_min(ids)
            self.summary_calls.append(ids)
            await anyio.lowlevel.checkpoint()
            raise ServerError("GetLevel1SummaryMin: HTTP 503", status=503)

    def calls_with(instrument_id: int) -> int:
        return sum(1 for ids in client.summary_calls if instrument_id in ids)

    client = Flaky()
    extra = [Instrument(i, f"SYM{i}", 1, "A", 2, "B") for i in range(4, 7)]
    instruments = [*INSTRUMENTS, *extra]
    async with RatePoller(
        client, instruments, interval=0.01, mode="last", batch_size=3, stale_after=60
    ) as poller:
        await wait_until(lambda: calls_with(1) >= 40)
        assert all(poller.latest(i) is None for i in (4, 5, 6))
        tick = poller.latest(1)
        stats = poller.stats()
    assert tick is not None
    assert not tick.stale
    # Exponential backoff: far fewer attempts for the failing batch.
    assert 1 <= calls_with(4) < 40
    # Every completed call for it failed (one may still have been in flight).
    assert calls_with(4) - 1 <= stats.failures <= calls_with(4)


async def test_rate_goes_stale_when_polls_keep_failing() -> None:
    """After stale_after without a fresh rate, latest() and re-emitted ticks are flagged stale."""

    def once(instrument_id: int, n: int) -> Level1 | Exception:
        if n == 1:
            return counting(instrument_id, n)
        return NotFoundError("GetLevel1: Resource Not Found", errorcode=104)

    client = FakeClient(once)
    async with RatePoller(client, [1], interval=0.01, stale_after=0.1, backoff_cap=0.05) as poller:
        sub = poller.subscribe()
        fresh = await next_tick(sub)
        stale = await next_tick(sub)
        latest = poller.latest(1)
    assert not fresh.stale
    assert stale.stale
    assert stale.changed
    assert stale.age > 0.1
    assert stale.last == fresh.last == Decimal(1)
    assert latest is not None
    assert latest.stale
    assert latest.age >= stale.age


async def test_changes_only_emits_when_bid_ask_or_last_move() -> None:
    """In change-only mode repeated identical rates are not emitted; other subscribers see all."""
    script = [1, 1, 1, 2, 2, 3]

    def steps(instrument_id: int, n: int) -> Level1:
        return counting(instrument_id, script[min(n, len(script)) - 1])

    client = FakeClient(steps)
    async with RatePoller(client, [1], interval=0.01, changes_only=True, stale_after=60) as poller:
        changes = poller.subscribe()
        everything = poller.subscribe(changes_only=False, maxsize=0)
        seen = [(await next_tick(changes)).last for _ in range(3)]
        await wait_until(lambda: client.counts[1] >= 15)
        assert changes.get_nowait() is None
        assert everything.pending == 1  # coalesced, but present
    assert seen == [Decimal(1), Decimal(2), Decimal(3)]


async def test_slow_polls_are_skipped_not_queued() -> None:
    """A poll longer than the interval skips the missed slots; one request in flight per unit."""
    client = FakeClient(delay=0.05)
    async with RatePoller(client, [1, 2], interval=0.01) as poller:
        await wait_until(lambda: min(client.counts.values(), default=0) >= 4)
        stats = poller.stats()
    assert client.max_in_flight == 1
    # Every completed poll overran at least 4 slots; queued slots would show up as requests.
    assert stats.skipped >= 4 * (stats.requests - 2)


class CountsInFlight:
    """Mixin for a source: counts its GetLevel1 calls in flight, and the most at once."""

    now_in_flight = 0
    peak_in_flight = 0

    async def get_level1(self, instrument_id: int) -> Level1:
        self.now_in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.now_in_flight)
        try:
            return await super().get_level1(instrument_id)  # type: ignore[misc, no-any-return]
        finally:
            self.now_in_flight -= 1


class PooledClient(CountsInFlight, FakeClient):
    """A ``FakeClient`` that says how big its pool is and counts requests in flight overall."""

    def __init__(self, pool_size: int, *, delay: float) -> None:
        super().__init__(delay=delay)
        self.pool_size = pool_size


def test_max_in_flight_defaults_to_the_pool_less_a_reserve() -> None:
    """A tenth of the pool (at least one connection) stays free for the application's calls."""

    def cap(source: object, **options: Any) -> int:
        return RatePoller(source, [1], interval=1, **options)._max_in_flight  # type: ignore[arg-type]

    assert cap(PooledClient(100, delay=0)) == 90
    assert cap(PooledClient(20, delay=0)) == 18
    assert cap(PooledClient(2, delay=0)) == 1
    assert cap(PooledClient(1, delay=0)) == 1  # nothing to spare: the poller still polls
    assert cap(FakeClient()) == 90  # a source that does not say: KiiexClient's default pool
    assert cap(PooledClient(100, delay=0), max_in_flight=7) == 7
    for bad in (0, -1, True, 2.5, "3"):
        with pytest.raises(InvalidInputError, match="max_in_flight"):
            cap(FakeClient(), max_in_flight=bad)


async def test_kiiex_client_reports_its_pool_size() -> None:
    """The poller reads the pool size from the client, so it must be the configured one."""
    async with KiiexClient("http://127.0.0.1:9/ap", pool_size=12) as client:
        assert client.pool_size == 12
        assert RatePoller(client, [1], interval=1)._max_in_flight == 11


async def test_requests_in_flight_never_exceed_max_in_flight_and_units_take_turns() -> None:
    """More instruments than workers, polled back to back: the cap holds and none starves."""
    client = PooledClient(100, delay=0.005)
    many = [Instrument(i, f"S{i}", 1, "A", 2, "B") for i in range(1, 21)]
    ids = [i.instrument_id for i in many]
    async with RatePoller(client, many, interval=1e-6, max_in_flight=3, stale_after=60):
        await wait_until(lambda: min(client.counts[i] for i in ids) >= 10)
        counts = [client.counts[i] for i in ids]
    assert client.peak_in_flight == 3
    assert client.max_in_flight == 1  # still one request per instrument at a time
    # Due units are served earliest slot first, so back to back they take turns.
    assert max(counts) - min(counts) <= 2


async def test_fewer_instruments_than_the_cap_poll_concurrently() -> None:
    """Each instrument gets its own worker when the cap allows: polls overlap."""
    client = PooledClient(100, delay=0.02)
    async with RatePoller(client, [1, 2, 3], interval=1e-6, stale_after=60):
        await wait_until(lambda: min(client.counts[i] for i in (1, 2, 3)) >= 5)
    assert client.peak_in_flight == 3


class InstantSource(FakeClient):
    """Answers without ever suspending; gives up if the test never gets to run again."""

    async def get_level1(self, instrument_id: int) -> Level1:
        self.counts[instrument_id] += 1
        if sum(self.counts.values()) > 200_000:
            raise RuntimeError("the poller never let the event loop run")
        return counting(instrument_id, self.counts[instrument_id])


async def test_workers_let_the_event_loop_run_with_a_source_that_never_waits() -> None:
    """Back to back over a source that answers at once, the application still gets to run."""
    source = InstantSource()
    async with RatePoller(source, [1, 2], interval=1e-6, stale_after=60) as poller:
        with anyio.fail_after(WAIT):
            await anyio.sleep(0.01)
            await wait_until(lambda: sum(source.counts.values()) >= 1000)
        assert poller.latest(1) is not None


async def test_deferred_slots_do_not_keep_the_event_loop() -> None:
    """While the 429 gate is closed, tiny-interval slots are deferred without hogging."""
    client = FakeClient(lambda i, n: RateLimitedError("slow down", retry_after=30))
    async with RatePoller(client, [1, 2], interval=1e-6, stale_after=60) as poller:
        await wait_until(lambda: poller.stats().rate_limited >= 1)
        # A worker that kept the loop would hold it until the gate reopens, 30 s from now.
        with anyio.fail_after(WAIT / 2):
            await anyio.sleep(0.01)
        assert poller.stats().deferred > 0
        assert poller.stats().requests <= 2  # only those in flight when the gate closed


async def test_last_mode_batches_through_level1_summary_min() -> None:
    """LAST mode polls GetLevel1SummaryMin in batches; ticks have last only."""
    client = FakeClient()
    extra = [Instrument(i, f"SYM{i}", 1, "A", 2, "B") for i in range(4, 9)]
    instruments = [*INSTRUMENTS, *extra]
    async with RatePoller(client, instruments, interval=0.01, mode="last", batch_size=3) as poller:
        assert poller.mode is RateMode.LAST
        await wait_until(lambda: all(poller.latest(i) is not None for i in (1, 2, 4, 5, 6, 7, 8)))
        tick = poller.latest(5)
        assert poller.latest(3) is None  # left out of every answer
    assert client.calls == []
    assert all(len(ids) <= 3 for ids in client.summary_calls)
    assert set().union(*client.summary_calls) == set(range(1, 9))
    assert tick is not None
    assert (tick.bid, tick.ask, tick.last, tick.exchange_time) == (None, None, Decimal(105), None)


async def test_subscribe_is_primed_with_the_latest_rates() -> None:
    """A late subscriber (change-only too) first receives the current rate of every instrument."""
    client = FakeClient(lambda i, n: counting(i, 1))  # rates never change
    async with RatePoller(client, [1, 2], interval=0.01) as poller:
        await wait_until(lambda: min(client.counts.values(), default=0) >= 3)
        late = poller.subscribe()
        late_changes = poller.subscribe(changes_only=True)
        assert late.pending == 2
        assert late_changes.pending == 2
        assert {t.instrument_id for t in iter(late_changes.get_nowait, None)} == {1, 2}


async def test_leaving_the_block_cancels_every_task() -> None:
    """Leaving the block (even while requests hang) leaves no task behind."""
    before = asyncio.all_tasks()

    def hang_on_2(instrument_id: int, n: int) -> Level1:
        return counting(instrument_id, n)

    client = FakeClient(hang_on_2)
    hanging = anyio.Event()
    original = client.get_level1

    async def get_level1(instrument_id: int) -> Level1:
        if instrument_id == 2:
            hanging.set()
            await anyio.sleep_forever()
        return await original(instrument_id)

    client.get_level1 = get_level1  # type: ignore[method-assign]
    with anyio.CancelScope() as scope:
        async with RatePoller(client, [1, 2], interval=0.01) as poller:
            sub = poller.subscribe()
            await next_tick(sub)
            with anyio.fail_after(WAIT):
                await hanging.wait()
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert not poller.running
    assert no_other_tasks(before)


async def test_aclose_ends_subscriptions_and_tasks() -> None:
    """aclose() from another task stops polling and ends every subscriber's iteration."""
    before = asyncio.all_tasks()
    received: list[int] = []
    async with RatePoller(FakeClient(), [1, 2, 3], interval=0.01) as poller:
        started = anyio.Event()

        async def consume() -> None:
            async for tick in poller:
                received.append(tick.instrument_id)
                started.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            tg.start_soon(consume)
            with anyio.fail_after(WAIT):
                await started.wait()
            await poller.aclose()
        assert not poller.running
        assert received
        await poller.aclose()  # idempotent
    assert no_other_tasks(before)


async def test_an_error_in_the_body_propagates_unwrapped() -> None:
    """An exception raised inside the block comes out as itself, and polling stops."""
    before = asyncio.all_tasks()

    async def failing_body() -> None:
        async with RatePoller(FakeClient(), [1], interval=0.01) as poller:
            await next_tick(poller.subscribe())
            raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        await failing_body()
    assert no_other_tasks(before)


async def test_a_poller_starts_only_once() -> None:
    """Re-entering a poller raises; subscribing after it stopped gives an ended subscription."""
    poller = RatePoller(FakeClient(), [1], interval=0.01)
    async with poller:
        pass
    with pytest.raises(InvalidInputError):
        async with poller:
            pass
    with pytest.raises(StopAsyncIteration):
        await anext(poller.subscribe())


# -- over a real KiiexClient against the simulator ------------------------------------------


class SpyClient:
    """Delegates to a real ``KiiexClient`` and logs when each GetLevel1 was sent (a spy)."""

    def __init__(self, client: KiiexClient) -> None:
        self.client = client
        self.calls: list[tuple[float, int]] = []
        self.raised_429_at: list[float] = []
        self.counts: Counter[int] = Counter()

    @property
    def pool_size(self) -> int:
        return self.client.pool_size

    async def get_instruments(self) -> list[Instrument]:
        return await self.client.get_instruments()

    async def get_level1(self, instrument_id: int) -> Level1:
        self.calls.append((time.monotonic(), instrument_id))
        self.counts[instrument_id] += 1
        try:
            return await self.client.get_level1(instrument_id)
        except RateLimitedError:
            self.raised_429_at.append(time.monotonic())
            raise

    async def get_level1_summary_min(
        self, instrument_ids: Sequence[int] | None = None
    ) -> list[Level1Summary]:
        return await self.client.get_level1_summary_min(instrument_ids)


class PooledSpy(CountsInFlight, SpyClient):
    """A ``SpyClient`` that also records the most GetLevel1 calls it had in flight at once."""


async def test_sim_symbols_resolve_and_ticks_carry_the_book() -> None:
    """Against the simulator: symbols resolve and ticks hold the top of book as Decimals."""
    async with (
        Simulator(SimConfig(seed=1)) as sim,
        KiiexClient(sim.url) as client,
        RatePoller(client, ["USDTCOPM", "usdc/copm"], interval=0.05) as poller,
    ):
        sub = poller.subscribe()
        ticks: dict[int, RateTick] = {}
        while len(ticks) < 2:
            tick = await next_tick(sub)
            ticks[tick.instrument_id] = tick
    assert {t.symbol for t in ticks.values()} == {"USDTCOPM", "USDCCOPM"}
    for tick in ticks.values():
        assert tick.bid is not None
        assert tick.ask is not None
        assert isinstance(tick.bid, Decimal)
        assert Decimal(3000) < tick.bid < tick.ask < Decimal(5000)
        assert tick.exchange_time is not None


async def test_sim_last_mode_uses_one_summary_call_per_batch() -> None:
    """Against the simulator: LAST mode reads every instrument's last price via the summary."""
    async with (
        Simulator(SimConfig(seed=1)) as sim,
        KiiexClient(sim.url) as client,
        RatePoller(client, [1, 2, 3, 4], interval=0.05, mode=RateMode.LAST) as poller,
    ):
        await wait_until(lambda: len(poller.snapshot()) == 4)
        snapshot = poller.snapshot()
        stats = poller.stats()
    assert [t.instrument_id for t in snapshot] == [1, 2, 3, 4]
    assert all(t.bid is None and t.last is not None and t.last > 0 for t in snapshot)
    assert stats.rates >= 4 * stats.requests - 4  # four rates per (successful) request


async def test_sim_back_to_back_polls_share_a_small_pool_fairly() -> None:
    """More instruments than connections, polls back to back: none starves, nor other calls.

    aiohttp gives a released connection to whoever asks first, ahead of the requests queued
    for one; a unit that asked again at once would keep its connection for ever.
    """
    async with (
        Simulator(SimConfig(seed=1)) as sim,
        KiiexClient(sim.url, rate_limit=None, pool_size=2) as client,
    ):
        spy = SpyClient(client)
        # Far shorter than a round trip: every unit is due again when its poll returns.
        async with RatePoller(spy, [1, 2, 3, 4], interval=1e-6, stale_after=60) as poller:
            await wait_until(lambda: min(spy.counts[i] for i in (1, 2, 3, 4)) >= 20)
            # A call of the application, queued behind the poller's, still gets a connection.
            with anyio.fail_after(WAIT):
                level1 = await client.get_level1(4)
            assert all(poller.latest(i) is not None for i in (1, 2, 3, 4))
    assert level1.instrument_id == 4


async def test_sim_saturated_poller_keeps_its_share_of_the_pool() -> None:
    """30 instruments back to back on a 10-connection client: the poller never has more than
    9 requests in flight, every instrument is polled, and the application's calls go through."""
    specs = tuple(
        InstrumentSpec(i, f"SYN{i:04d}COPM", base=1, quote=3, mid=Decimal(4000 + i))
        for i in range(1, 31)
    )
    async with (
        Simulator(SimConfig(seed=1, instruments=specs, book_levels=2)) as sim,
        KiiexClient(sim.url, rate_limit=None, pool_size=10) as client,
    ):
        spy = PooledSpy(client)
        ids = list(range(1, 31))
        async with RatePoller(spy, ids, interval=1e-6, stale_after=60) as poller:
            assert poller._max_in_flight == 9
            await wait_until(lambda: min(spy.counts[i] for i in ids) >= 5)
            with anyio.fail_after(WAIT):
                for _ in range(20):
                    await client.get_level1(30)
            assert all(poller.latest(i) is not None for i in ids)
        assert spy.peak_in_flight == 9


async def test_sim_429_pauses_the_whole_poller() -> None:
    """Against the simulator: one 429 with Retry-After stops every instrument's requests."""
    retry_after = 0.8
    async with (
        Simulator(SimConfig(seed=1)) as sim,
        # No client-side retry, so the 429 reaches the poller at once.
        KiiexClient(sim.url, max_retries=0, rate_limit=None) as client,
    ):
        spy = SpyClient(client)
        async with RatePoller(spy, [1, 2, 3, 4], interval=0.02, stale_after=60) as poller:
            await wait_until(lambda: min(spy.counts.values(), default=0) >= 3)
            sim.faults.inject(Fault("GetLevel1", "rate_limit", times=1, retry_after=retry_after))
            await wait_until(lambda: bool(spy.raised_429_at))
            t429 = spy.raised_429_at[0]
            await wait_until(lambda: spy.calls[-1][0] > t429 + retry_after)
            await wait_until(lambda: all(spy.counts[i] >= 8 for i in (1, 2, 3, 4)))
            stats = poller.stats()
    assert ("GetLevel1", "rate_limit") in sim.faults.fired
    assert [c for c in spy.calls if t429 < c[0] < t429 + retry_after] == []
    assert {i for t, i in spy.calls if t > t429 + retry_after} == {1, 2, 3, 4}
    assert stats.rate_limited == 1


async def test_sim_unknown_instrument_fails_alone() -> None:
    """Against the simulator: an instrument the exchange rejects backs off; the rest tick."""
    ghost = Instrument(99, "GHOSTCOPM", 9, "GHOST", 3, "COPM")
    async with (
        Simulator(SimConfig(seed=1)) as sim,
        KiiexClient(sim.url, max_retries=0, rate_limit=None) as client,
    ):
        spy = SpyClient(client)
        async with RatePoller(spy, [1, ghost, 2], interval=0.02, stale_after=60) as poller:
            await wait_until(lambda: min(spy.counts[1], spy.counts[2]) >= 25)
            stats = poller.stats()
            assert poller.latest(ghost) is None
            assert poller.latest(1) is not None
    assert 1 <= spy.counts[99] < 25
    # Every completed request for it failed (one may still have been in flight).
    assert spy.counts[99] - 1 <= stats.failures <= spy.counts[99]


# -- structure and the example ---------------------------------------------------------------


async def test_a_crashing_poll_task_propagates_and_stops_everything() -> None:
    """A bug in a polling task (not a KiiexError) ends the block with that error, no leaks."""
    before = asyncio.all_tasks()

    def buggy(instrument_id: int, n: int) -> Level1 | Exception:
        if instrument_id == 2 and n == 3:
            return TypeError("bug")
        return counting(instrument_id, n)

    async def body() -> None:
        async with RatePoller(FakeClient(buggy), [1, 2], interval=0.01):
            await anyio.sleep_forever()

    with pytest.raises(BaseExceptionGroup) as info:
        await body()
    assert info.group_contains(TypeError, match="bug", depth=None)
    assert no_other_tasks(before)


async def test_a_dropped_subscription_is_released() -> None:
    """The poller holds subscriptions weakly: one its consumer dropped is garbage collected."""
    async with RatePoller(FakeClient(), [1], interval=0.01) as poller:
        async for _tick in poller:
            break
        sub = poller.subscribe()
        ref = weakref.ref(sub)
        await next_tick(sub)
        del sub
        gc.collect()
        assert ref() is None
        kept = poller.subscribe()
        await next_tick(kept)  # the poller still feeds live subscribers


def _load_example() -> Any:
    path = Path(__file__).resolve().parent.parent / "examples" / "rate_bot.py"
    spec = importlib.util.spec_from_file_location("rate_bot_example", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_example_cross_rate_needs_two_fresh_mids() -> None:
    """The bot's USDT/USDC cross rate is mid(USDTCOPM)/mid(USDCCOPM), None if a leg is unusable."""
    bot = _load_example()
    from datetime import UTC, datetime

    def leg(bid: str, ask: str, *, stale: bool = False) -> RateTick:
        return RateTick(
            1, "X", Decimal(bid), Decimal(ask), None, None, datetime.now(UTC), stale=stale
        )

    assert bot.cross_rate(leg("4039", "4041"), leg("3999", "4001")) == Decimal("1.01")
    assert bot.cross_rate(leg("4039", "4041"), leg("3999", "4001", stale=True)) is None
    assert bot.cross_rate(None, leg("3999", "4001")) is None


async def test_example_bot_runs_against_the_simulator_and_exits_cleanly(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """examples/rate_bot.py starts the simulator, watches both legs and stops on time."""
    bot = _load_example()
    before = asyncio.all_tasks()
    alerts = await bot.run(None, seconds=1.0, threshold=Decimal("0.0001"), interval=0.05)
    out = capsys.readouterr().out
    assert isinstance(alerts, int)
    assert "embedded simulator" in out
    assert "done:" in out
    assert no_other_tasks(before)
