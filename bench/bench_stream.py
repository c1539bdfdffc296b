"""Streams: tick latency over ``/WSGateway`` and Level2 updates applied per second.

*Tick latency* (headline ``ws_tick_latency_vs_aiohttp``): an in-process simulator changes
its top of book (a resting sell at 4001 is placed, then cancelled) and the time until the
subscriber holds the new value is measured, p50 and p99, for three subscribers, one at a
time, interleaved over several rounds:

* ``Stream.level1`` yielding a typed ``Level1`` (Decimal money);
* a plain aiohttp WebSocket loop decoding the same frames with ``json.loads`` (floats,
  no types): the floor any Python client pays;
* ccxt.pro ``ndax.watch_ticker`` (skipped if ccxt is missing).

The clock starts just before the change (the subscriber is already waiting), so every
figure includes the simulator's publish, the loopback hop and the client's decoding.

*Order book* (``ws_book_updates_vs_ccxt``): the same synthetic ``Level2UpdateEvent`` frames
(one to three rows around a 40-level book) are decoded and applied the way ``Stream`` does
(frame JSON, rows, price and quantity as Decimal, ``OrderBook.apply``, then the best bid is
read) and by ccxt.pro ndax's ``handle_message`` (frame JSON, its float order book store,
best bid read) with no network; updates (rows) per second are compared.

*Swap latency* (``swap_latency_stream_vs_polling``): steps 1-7 of a swap (login, a deposit
whose ticket the exchange settles in three steps of 0.45 s, rate, market order, order poll,
trades, positions) with 20 ms added to every answer, HTTP and socket alike, run with the
default poll intervals by a workflow given ``account_stream=client.stream()`` and by one
that only polls, interleaved; the ratio of the median wall times (lower is better).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp

from kiiex_async import Credentials, KiiexClient
from kiiex_async._orderbook import decode_rows
from kiiex_async.sim import SimConfig, Simulator
from kiiex_async.sim._exchange import OrderRequest
from kiiex_async.stream import OrderBook
from kiiex_async.workflow import (
    DepositSpec,
    MemoryCheckpointStore,
    SwapRequest,
    SwapState,
    SwapWorkflow,
)

from ._common import Report, Stats

__all__ = ["build_level2_frames", "run"]

_CONFIG = SimConfig(seed=11, time_speed=0.0, start_time=1_700_000_000.0, drift_bps=Decimal(0))


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


class _Toggler:
    """Moves the simulator's best ask: rest a sell at 4001, then cancel it."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.order_id = 0

    def __call__(self) -> None:
        ex, now = self.sim.exchange, self.sim.now()
        if self.order_id:
            ex.cancel_order(account_ids=[1], order_id=self.order_id, now=now)
            self.order_id = 0
        else:
            request = OrderRequest(
                instrument_id=1,
                side=1,
                order_type=2,
                quantity=Decimal(1),
                limit_price=Decimal(4001),
                time_in_force=1,
            )
            self.order_id = ex.send_order(request, account_id=1, user_id=1, now=now).order_id


async def _latencies(
    wait_next: Callable[[], Awaitable[Any]], toggle: Callable[[], None], n: int
) -> list[float]:
    out = []
    for _ in range(n):
        waiter = asyncio.ensure_future(wait_next())
        await asyncio.sleep(0.001)  # the subscriber is parked on its socket
        t0 = time.perf_counter()
        toggle()
        await waiter
        out.append(time.perf_counter() - t0)
    return out


async def _stream_round(sim: Simulator, toggle: _Toggler, n: int) -> list[float]:
    credentials = Credentials(**sim.credentials_kwargs)
    async with KiiexClient(sim.url, credentials=credentials) as client, client.stream() as s:
        ticks = aiter(s.level1(1))
        await anext(ticks)
        return await _latencies(lambda: anext(ticks), toggle, n)


async def _aiohttp_round(sim: Simulator, toggle: _Toggler, n: int) -> list[float]:
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.ws_url) as ws:
        o = json.dumps({"OMSId": 1, "InstrumentId": 1})
        await ws.send_str(json.dumps({"m": 0, "i": 2, "n": "SubscribeLevel1", "o": o}))
        await ws.receive_str()

        async def next_tick() -> dict[str, Any]:
            while True:
                frame = json.loads(await ws.receive_str())
                if frame["n"] == "Level1UpdateEvent":
                    payload: dict[str, Any] = json.loads(frame["o"])
                    return payload

        return await _latencies(next_tick, toggle, n)


async def _ccxt_round(sim: Simulator, toggle: _Toggler, n: int) -> list[float]:
    import ccxt.pro as ccxtpro

    base = sim.base_url + "/AP"
    exchange = ccxtpro.ndax({"urls": {"api": {"public": base, "private": base, "ws": sim.ws_url}}})
    try:
        await exchange.watch_ticker("USDT/COPM")
        return await _latencies(lambda: exchange.watch_ticker("USDT/COPM"), toggle, n)
    finally:
        await exchange.close()


def build_level2_frames(count: int, *, seed: int = 7) -> list[str]:
    """``count`` Level2UpdateEvent frames of 1–3 rows on instrument 1: a 40-level-per-side
    book on a 0.5 tick grid whose levels change size, leave and come back."""
    rng = random.Random(seed)
    grid = {
        0: [Decimal(3998) - Decimal(k) / 2 for k in range(60)],
        1: [Decimal(4002) + Decimal(k) / 2 for k in range(60)],
    }
    live: dict[int, set[Decimal]] = {side: set(prices[:40]) for side, prices in grid.items()}
    frames = []
    update_id = 1000
    for _ in range(count):
        rows = []
        for _ in range(rng.randint(1, 3)):
            side = rng.randint(0, 1)
            price = rng.choice(grid[side])
            action = (2 if rng.random() < 0.2 else 1) if price in live[side] else 0
            if action == 2:
                live[side].discard(price)
                qty = Decimal(0)
            else:
                live[side].add(price)
                qty = Decimal(rng.randint(1, 500_000)) / 100
            update_id += rng.randint(1, 3)
            rows.append(f"[{update_id},1,1700000000000,{action},4000.5,1,{price},1,{qty},{side}]")
        o = "[" + ",".join(rows) + "]"
        frames.append(json.dumps({"m": 3, "i": 0, "n": "Level2UpdateEvent", "o": o}))
    return frames


def _rows_in(frames: list[str]) -> int:
    return sum(json.loads(json.loads(f)["o"]).__len__() for f in frames)


def _apply_ours(frames: list[str]) -> float:
    book = OrderBook(1, depth=20)
    t0 = time.perf_counter()
    for text in frames:
        book.apply(decode_rows(json.loads(text)["o"]))
        book.best_bid  # noqa: B018 - what a consumer reads after each update
    return time.perf_counter() - t0


class _Client:
    def resolve(self, result: Any, message_hash: str) -> None:
        pass


def _apply_ccxt(exchange: Any, frames: list[str]) -> float:
    exchange.orderbooks["USDT/COPM"] = exchange.order_book({}, 100)
    client = _Client()
    t0 = time.perf_counter()
    for text in frames:
        exchange.handle_message(client, json.loads(text))
        exchange.orderbooks["USDT/COPM"]["bids"][0]  # the same read as ours: the best bid
    return time.perf_counter() - t0


async def run(report: Report, *, quick: bool) -> None:
    """Tick latency (p50/p99) of three subscribers and Level2 apply throughput vs ccxt.pro."""
    n = 60 if quick else 300
    rounds = 2 if quick else 5
    try:
        import ccxt.pro  # noqa: F401

        have_ccxt = True
    except Exception:
        have_ccxt = False
        report.skip("stream.ccxt", "ccxt.pro not importable; pip install '.[bench]'")
    samples: dict[str, list[float]] = {"stream": [], "aiohttp": [], "ccxt": []}
    async with Simulator(_CONFIG) as sim:
        toggle = _Toggler(sim)
        for _ in range(rounds):
            samples["stream"] += await _stream_round(sim, toggle, n)
            samples["aiohttp"] += await _aiohttp_round(sim, toggle, n)
            if have_ccxt:
                samples["ccxt"] += await _ccxt_round(sim, toggle, n)
        ccxt_exchange = None
        if have_ccxt:
            import ccxt.pro as ccxtpro

            base = sim.base_url + "/AP"
            ccxt_exchange = ccxtpro.ndax({"urls": {"api": {"public": base, "private": base}}})
            await ccxt_exchange.load_markets()
            await ccxt_exchange.close()
    p50 = {k: statistics.median(v) * 1e6 for k, v in samples.items() if v}
    p99 = {k: _percentile(v, 0.99) * 1e6 for k, v in samples.items() if v}
    for name in p50:
        report.add(f"stream.tick_{name}_p50", Stats("us", tuple(x * 1e6 for x in samples[name])))
        report.scalar(f"stream.tick_{name}_p99_us", p99[name])
    report.ratio(
        "ws_tick_latency_vs_aiohttp", p50["stream"] / p50["aiohttp"], 1.2, "<=", "p50 ratio"
    )
    report.ratio("ws_tick_latency_p99_vs_aiohttp", p99["stream"] / p99["aiohttp"])
    if "ccxt" in p50:
        report.ratio("ws_tick_latency_vs_ccxt_pro", p50["stream"] / p50["ccxt"])

    await _swap_latency(report, rounds=2 if quick else 5)

    frames = build_level2_frames(5_000 if quick else 40_000)
    rows = _rows_in(frames)
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(3 if quick else 7):  # interleaved, so load changes hit both alike
        ours.append(rows / _apply_ours(frames))
        if ccxt_exchange is not None:
            theirs.append(rows / _apply_ccxt(ccxt_exchange, frames))
    report.add("stream.book_updates_per_s", Stats("rows/s", tuple(ours)))
    if ccxt_exchange is not None:
        report.add("stream.ccxt_book_updates_per_s", Stats("rows/s", tuple(theirs)))
        report.ratio(
            "ws_book_updates_vs_ccxt",
            statistics.median(ours) / statistics.median(theirs),
            2.0,
            ">=",
        )


_SWAP_CONFIG = SimConfig(seed=13, deposit_step_seconds=0.45, drift_bps=Decimal(0))


async def _one_swap(sim: Simulator, *, pushed: bool) -> float:
    """Wall seconds of one swap's steps 1-7, woken by pushes or polling only."""
    credentials = Credentials(**sim.credentials_kwargs)
    request = SwapRequest(
        from_asset="USDT",
        to_asset="COPM",
        amount=Decimal("10"),
        deposit=DepositSpec(Decimal("10")),
        withdrawal=None,
    )
    async with KiiexClient(sim.url, credentials=credentials, rate_limit=None) as client:
        await client.authenticate()
        if pushed:
            async with client.stream() as stream:
                workflow = SwapWorkflow(client, MemoryCheckpointStore(), account_stream=stream)
                await stream.wait_account_change(timeout=0)  # subscribed before the clock
                start = time.perf_counter()
                result = await workflow.run(request)
                elapsed = time.perf_counter() - start
        else:
            workflow = SwapWorkflow(client, MemoryCheckpointStore())
            start = time.perf_counter()
            result = await workflow.run(request)
            elapsed = time.perf_counter() - start
    if result.state is not SwapState.COMPLETED:
        raise RuntimeError(f"bench swap ended {result.state.value}: {result.reason}")
    return elapsed


async def _swap_latency(report: Report, *, rounds: int) -> None:
    """Steps 1-7 with 20 ms of latency: pushed events against polling only."""
    pushed: list[float] = []
    polled: list[float] = []
    async with Simulator(_SWAP_CONFIG, faults=["*:latency:delay=0.02"]) as sim:
        for _ in range(rounds):
            pushed.append(await _one_swap(sim, pushed=True))
            polled.append(await _one_swap(sim, pushed=False))
    report.add("stream.swap_steps1to7_pushed", Stats("s", tuple(pushed)))
    report.add("stream.swap_steps1to7_polled", Stats("s", tuple(polled)))
    report.ratio(
        "swap_latency_stream_vs_polling",
        statistics.median(pushed) / statistics.median(polled),
        note="steps 1-7, 20 ms latency, default polls",
    )
