"""RatePoller figures: throughput against plain aiohttp, freshness under latency, memory.

Three measurements, each against a simulator running in its own process (so that its CPU is
not the client's) and configured with as many real instruments as the figure needs
(``SimConfig.instruments``: ``SYN0001COPM`` ... , so N logical instruments are N distinct ids
on the exchange, not one id polled N times):

1. *Throughput* (``rates_throughput_vs_aiohttp_n{10,100,500}``, target >= 0.85): rates per
   second the poller obtains for N instruments with ``interval=1 µs`` (far shorter than a
   round trip, so every instrument is polled back to back: the poller's capacity), over rates per
   second of the same work written by hand: N coroutines looping ``session.post(GetLevel1)``
   + ``json.loads(parse_float=Decimal)`` on one aiohttp session with the same pool size.
   Both use no rate limit; their repetitions are interleaved.  *The same work* means every
   one of the N instruments is polled: when N exceeds the pool (N = 500, pool 100), each
   hand-written coroutine yields once between two polls; without that, aiohttp hands the
   connection a coroutine just released back to that same coroutine (an idle connection
   goes to whoever asks first, ahead of the requests queued for one), so 100 coroutines
   kept the 100 connections and the other 400 instruments were never polled: the loop was
   doing the work of 100 instruments.  Every measurement checks that each instrument was
   polled during its window and fails otherwise.  (The poller needs no such yield: its
   workers never outnumber the connections it may use, 90 of the 100 by default.)
   ``rates_throughput_vs_aiohttp_same_timeouts_n*`` (information) is the same ratio over a
   plain loop bounded as the client's calls are: aiohttp's ``ClientTimeout`` with the
   client's ``total`` and ``sock_read`` (a timer per request, another re-armed on every
   read), where the client sweeps one deadline per call for all calls in flight.
   ``rates_throughput_vs_pooled_loop_n500`` (information, no target) compares with the
   cheapest correct hand-written loop for N > pool: one coroutine per connection (all 100),
   each polling its share of the instruments in turn, so that no request ever waits for a
   connection; the poller is built the same way, with 90 workers and a shared schedule.
2. *Freshness* (``rates_freshness_p99_intervals``, target <= 1.2): with 50 ms of latency
   injected on every ``GetLevel1`` (``POST /_sim/faults``), 100 instruments at a 1 s
   interval; for every instrument, the time between two consecutive fresh rates, in
   intervals (how old the newest rate gets just before it is replaced); the 99th percentile.
   ``rates_age_p99_intervals`` is the age of ``latest()`` sampled every 50 ms.
3. *Memory* (``rates_rss_delta_mb_500x10``): growth of this process's resident set while a
   poller of 500 instruments (1 s interval) feeds 10 subscribers (5 read everything, 5 never
   read: their buffers stay full), measured from a baseline taken after the client's pool
   was already warm.

``python -m bench --only rates`` runs it inside the harness; ``python bench/bench_rates.py
[--quick]`` runs it alone.  Each figure prints as ``ratio <name>: <value>``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import signal
import socket
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

__all__ = [
    "client_rate",
    "client_timeouts",
    "freshness",
    "memory",
    "overhead",
    "plain_rate",
    "plain_same_timeouts_rate",
    "poller_rate",
    "pooled_rate",
    "run",
    "simulator",
    "throughput",
]

POOL_SIZE = 100
_THIS_FILE = str(Path(__file__).resolve())
LEVELS = (10, 100, 500)
LATENCY = 0.05

# The simulator process: N synthetic instruments (distinct ids and books), shallow books.
_CHILD = r"""
import sys
from decimal import Decimal
from kiiex_async.sim import InstrumentSpec, SimConfig, serve
port, n = int(sys.argv[1]), int(sys.argv[2])
instruments = tuple(
    InstrumentSpec(i, f"SYN{i:04d}COPM", base=1, quote=3, mid=Decimal(4000 + i))
    for i in range(1, n + 1)
)
serve("127.0.0.1", port, config=SimConfig(seed=1, instruments=instruments, book_levels=2))
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss_bytes() -> int:
    """Resident set size of this process now (``VmRSS``; peak RSS where /proc is missing)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    import resource

    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    index = min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))
    return ordered[index]


@contextlib.asynccontextmanager
async def simulator(n_instruments: int) -> AsyncIterator[str]:
    """A simulator process with ``n_instruments`` instruments; yields its ``/ap`` base URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/ap"
    with tempfile.TemporaryFile() as log:
        # Output to a file, not a pipe: a chatty server must never block on a full pipe.
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD,
            str(port),
            str(n_instruments),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        try:
            async with aiohttp.ClientSession() as session:
                deadline = time.monotonic() + 60
                while True:
                    if proc.returncode is not None:
                        log.seek(0)
                        raise RuntimeError(f"simulator exited: {log.read().decode()[-2000:]}")
                    with contextlib.suppress(aiohttp.ClientError, OSError):
                        async with session.post(f"{url}/Ping", json={}) as resp:
                            await resp.read()
                            if resp.status == 200:
                                break
                    if time.monotonic() > deadline:
                        raise RuntimeError("simulator did not answer Ping within 60 s")
                    await asyncio.sleep(0.05)
            yield url
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(proc.wait(), timeout=10)
                except TimeoutError:
                    proc.kill()
                    await proc.wait()


async def _set_faults(url: str, spec: str | None) -> None:
    root = url.rsplit("/", 1)[0]
    body: dict[str, Any] = {"clear": True}
    if spec is not None:
        body["spec"] = spec
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{root}/_sim/faults", json=body) as resp,
    ):
        await resp.read()
        if resp.status != 200:
            raise RuntimeError(f"/_sim/faults answered HTTP {resp.status}")


async def poller_rate(url: str, n: int, *, seconds: float, warmup: float) -> float:
    """Rates per second a ``RatePoller`` obtains for instruments 1..n, polled back to back."""
    from kiiex_async.client import KiiexClient
    from kiiex_async.rates import RatePoller

    async with KiiexClient(url, rate_limit=None, pool_size=POOL_SIZE) as client:
        known = {i.instrument_id: i for i in await client.get_instruments()}
        instruments = [known[i] for i in range(1, n + 1)]
        # An interval far below a round trip: every instrument is polled back to back.
        async with RatePoller(client, instruments, interval=1e-6, stale_after=3600) as poller:
            await asyncio.sleep(warmup)
            c0, t0 = poller.stats().rates, time.perf_counter()
            await asyncio.sleep(seconds)
            c1, t1 = poller.stats().rates, time.perf_counter()
            newest = [poller.latest(i.instrument_id) for i in instruments]
    # Polled during the window: a rate younger than the window.
    _check_served("poller", n, sum(1 for t in newest if t is not None and t.age < t1 - t0))
    return (c1 - c0) / (t1 - t0)


def _check_served(name: str, n: int, served: int) -> None:
    """Fail unless all ``n`` instruments were polled during the window (same work for all)."""
    if served != n:
        raise RuntimeError(f"{name}: only {served} of {n} instruments polled during the window")


def _must_yield(n: int) -> bool:
    """Whether hand-written loops over ``n`` instruments must yield between polls.

    Only when the coroutines outnumber the connections: aiohttp gives an idle connection to
    whoever asks first, so a coroutine asking again at once keeps the connection it just
    released and the coroutines queued for one never get it.  Yielding once lets the queued
    request (woken by the release) take it first.
    """
    return n > POOL_SIZE


async def plain_rate(url: str, n: int, *, seconds: float, warmup: float) -> float:
    """Rates per second of the same work by hand: n coroutines looping POST GetLevel1."""
    return await _plain_loops(url, [[i] for i in range(1, n + 1)], seconds=seconds, warmup=warmup)


def client_timeouts() -> aiohttp.ClientTimeout:
    """aiohttp's way to bound each call as a default ``KiiexClient`` does (its own timers)."""
    from kiiex_async._transport import Timeouts

    t = Timeouts()
    return aiohttp.ClientTimeout(total=t.total, connect=t.connect, sock_read=t.sock_read)


async def plain_same_timeouts_rate(url: str, n: int, *, seconds: float, warmup: float) -> float:
    """:func:`plain_rate` bounded as the client's calls are, by aiohttp's timers (information)."""
    return await _plain_loops(
        url,
        [[i] for i in range(1, n + 1)],
        seconds=seconds,
        warmup=warmup,
        client_timeout=client_timeouts(),
    )


async def pooled_rate(url: str, n: int, *, seconds: float, warmup: float) -> float:
    """Like :func:`plain_rate` with one coroutine per connection, each polling its share.

    The cheapest correct loop when n > pool: no request ever waits for a connection.
    """
    workers = min(n, POOL_SIZE)
    groups = [list(range(k, n + 1, workers)) for k in range(1, workers + 1)]
    return await _plain_loops(url, groups, seconds=seconds, warmup=warmup, must_yield=False)


async def _plain_loops(
    url: str,
    groups: list[list[int]],
    *,
    seconds: float,
    warmup: float,
    must_yield: bool | None = None,
    client_timeout: aiohttp.ClientTimeout | None = None,
) -> float:
    """One coroutine per group of instrument ids, each polling its ids in turn, back to back.

    ``must_yield`` defaults to :func:`_must_yield` of the number of instruments;
    ``client_timeout`` to aiohttp's own default.
    """
    n = sum(len(g) for g in groups)
    if must_yield is None:
        must_yield = _must_yield(n)
    count = 0
    polls = [0] * (n + 1)

    async def worker(session: aiohttp.ClientSession, ids: list[int]) -> None:
        nonlocal count
        payloads = [(i, {"OMSId": 1, "InstrumentId": i}) for i in ids]
        while True:
            for instrument_id, payload in payloads:
                async with session.post(f"{url}/GetLevel1", json=payload) as resp:
                    body = await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"GetLevel1: HTTP {resp.status}")
                data = json.loads(body, parse_float=Decimal)
                _ = (data["BestBid"], data["BestOffer"], data["LastTradedPx"])
                count += 1
                polls[instrument_id] += 1
                if must_yield:
                    await asyncio.sleep(0)

    connector = aiohttp.TCPConnector(limit=POOL_SIZE)
    options: dict[str, Any] = {} if client_timeout is None else {"timeout": client_timeout}
    async with aiohttp.ClientSession(connector=connector, **options) as session:
        tasks = [asyncio.create_task(worker(session, ids)) for ids in groups]
        try:
            await asyncio.sleep(warmup)
            c0, t0, before = count, time.perf_counter(), list(polls)
            await asyncio.sleep(seconds)
            c1, t1, after = count, time.perf_counter(), list(polls)
            for task in tasks:
                if task.done():
                    task.result()  # a crashed worker would make the figure meaningless
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    _check_served("aiohttp loop", n, sum(1 for a, b in zip(before, after, strict=True) if b > a))
    return (c1 - c0) / (t1 - t0)


async def client_rate(url: str, n: int, *, seconds: float, warmup: float) -> float:
    """Rates per second of n coroutines looping ``KiiexClient.get_level1`` (no poller).

    Yields between polls when n exceeds the pool, like :func:`plain_rate`.
    """
    from kiiex_async.client import KiiexClient

    must_yield = _must_yield(n)
    count = 0
    polls = [0] * (n + 1)

    async def worker(client: KiiexClient, instrument_id: int) -> None:
        nonlocal count
        while True:
            await client.get_level1(instrument_id)
            count += 1
            polls[instrument_id] += 1
            if must_yield:
                await asyncio.sleep(0)

    async with KiiexClient(url, rate_limit=None, pool_size=POOL_SIZE) as client:
        tasks = [asyncio.create_task(worker(client, i)) for i in range(1, n + 1)]
        try:
            await asyncio.sleep(warmup)
            c0, t0, before = count, time.perf_counter(), list(polls)
            await asyncio.sleep(seconds)
            c1, t1, after = count, time.perf_counter(), list(polls)
            for task in tasks:
                if task.done():
                    task.result()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    _check_served("client loop", n, sum(1 for a, b in zip(before, after, strict=True) if b > a))
    return (c1 - c0) / (t1 - t0)


async def throughput(quick: bool) -> dict[str, float]:
    """Figure 1: poller over plain aiohttp for 10, 100 and 500 instruments (median of reps).

    The plain ``KiiexClient`` loop is measured too, to split the gap into the client's share
    (``rates_client_loop_vs_aiohttp_n*``) and the poller's own (``rates_poller_vs_client_loop_n*``);
    and, where N exceeds the pool, the one-coroutine-per-connection loop
    (``rates_throughput_vs_pooled_loop_n*``, see the module docstring).  The plain loop run
    again with aiohttp's timers bounding each call as the client does
    (``rates_throughput_vs_aiohttp_same_timeouts_n*``) compares equal guarantees.
    """
    reps, seconds, warmup = (1, 2.0, 0.5) if quick else (5, 3.0, 0.75)
    out: dict[str, float] = {}
    async with simulator(max(LEVELS)) as url:
        for n in LEVELS:
            runs = [
                ("poller", poller_rate),
                ("client", client_rate),
                ("aiohttp", plain_rate),
                ("aiohttp_same_timeouts", plain_same_timeouts_rate),
            ]
            if n > POOL_SIZE:
                runs.append(("pooled", pooled_rate))
            got: dict[str, list[float]] = {name: [] for name, _ in runs}
            for rep in range(reps):
                for name, measure in runs if rep % 2 == 0 else reversed(runs):
                    got[name].append(await measure(url, n, seconds=seconds, warmup=warmup))
            per_rep = list(zip(got["poller"], got["client"], got["aiohttp"], strict=True))
            ratio = statistics.median(p / a for p, _, a in per_rep)
            own = statistics.median(p / c for p, c, _ in per_rep)
            client_share = statistics.median(c / a for _, c, a in per_rep)
            for name, values in got.items():
                out[f"rates_{name}_per_s_n{n}"] = statistics.median(values)
            out[f"rates_throughput_vs_aiohttp_n{n}"] = ratio
            out[f"rates_poller_vs_client_loop_n{n}"] = own
            out[f"rates_client_loop_vs_aiohttp_n{n}"] = client_share
            print(
                f"ratio rates_throughput_vs_aiohttp_n{n}: {ratio:.2f}  [target >= 0.85]  "
                f"(poller {out[f'rates_poller_per_s_n{n}']:,.0f}/s, "
                f"aiohttp {out[f'rates_aiohttp_per_s_n{n}']:,.0f}/s, "
                f"{n} distinct instruments, all polled)",
                flush=True,
            )
            print(f"ratio rates_poller_vs_client_loop_n{n}: {own:.2f}", flush=True)
            print(f"ratio rates_client_loop_vs_aiohttp_n{n}: {client_share:.2f}", flush=True)
            same = statistics.median(
                p / q for p, q in zip(got["poller"], got["aiohttp_same_timeouts"], strict=True)
            )
            out[f"rates_throughput_vs_aiohttp_same_timeouts_n{n}"] = same
            print(
                f"ratio rates_throughput_vs_aiohttp_same_timeouts_n{n}: {same:.2f}  "
                "(the plain loop bounded like the client's calls, by aiohttp's total and "
                "sock_read timers; information)",
                flush=True,
            )
            if "pooled" in got:
                pooled = statistics.median(
                    p / q for p, q in zip(got["poller"], got["pooled"], strict=True)
                )
                out[f"rates_throughput_vs_pooled_loop_n{n}"] = pooled
                print(
                    f"ratio rates_throughput_vs_pooled_loop_n{n}: {pooled:.2f}  "
                    f"(pooled loop {out[f'rates_pooled_per_s_n{n}']:,.0f}/s; information)",
                    flush=True,
                )
    return out


class _InstantClient:
    """A client answering from memory at once (one checkpoint): isolates the poller's CPU."""

    def __init__(self) -> None:
        from kiiex_async.models import Level1

        self.level1 = {
            i: Level1(i, best_bid=Decimal(3999), best_offer=Decimal(4001)) for i in range(1, 101)
        }

    async def get_instruments(self) -> list[Any]:
        from kiiex_async.models import Instrument

        return [Instrument(i, f"SYN{i:04d}COPM", 1, "USDT", 3, "COPM") for i in self.level1]

    async def get_level1(self, instrument_id: int) -> Any:
        await asyncio.sleep(0)
        return self.level1[instrument_id]

    async def get_level1_summary_min(self, instrument_ids: Any = None) -> list[Any]:
        raise NotImplementedError


async def overhead(quick: bool) -> dict[str, float]:
    """Figure 1b: the poller's own CPU per poll, against a loop over an in-memory client.

    ``rates_poller_overhead_us``: microseconds a poll costs through the poller minus what the
    same ``get_level1`` costs in a bare loop (100 instruments, 1 subscriber reading).
    """
    from kiiex_async.rates import RatePoller

    reps, seconds = (3, 0.5) if quick else (7, 1.0)
    client = _InstantClient()
    ids = list(client.level1)
    bare: list[float] = []
    polled: list[float] = []
    for _ in range(reps):
        count = 0

        async def worker(instrument_id: int) -> None:
            nonlocal count
            while True:
                await client.get_level1(instrument_id)
                count += 1

        tasks = [asyncio.create_task(worker(i)) for i in ids]
        await asyncio.sleep(0.1)
        c0, t0 = count, time.perf_counter()
        await asyncio.sleep(seconds)
        bare.append((time.perf_counter() - t0) / (count - c0))
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

        async with RatePoller(client, await client.get_instruments(), interval=1e-6) as poller:
            reader = asyncio.create_task(_drain(poller.subscribe()))
            await asyncio.sleep(0.1)
            c0, t0 = poller.stats().rates, time.perf_counter()
            await asyncio.sleep(seconds)
            polled.append((time.perf_counter() - t0) / (poller.stats().rates - c0))
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
    us = (statistics.median(polled) - statistics.median(bare)) * 1e6
    print(
        f"ratio rates_poller_overhead_us: {us:.1f}  (per poll; bare loop "
        f"{statistics.median(bare) * 1e6:.1f} us, through the poller "
        f"{statistics.median(polled) * 1e6:.1f} us)",
        flush=True,
    )
    return {"rates_poller_overhead_us": us}


async def _drain(sub: Any) -> None:
    async for _ in sub:
        pass


async def freshness(quick: bool) -> dict[str, float]:
    """Figure 2: p99 time between fresh rates, in intervals, with 50 ms latency."""
    from kiiex_async.client import KiiexClient
    from kiiex_async.rates import RatePoller

    n, interval = 100, 1.0
    seconds = 8.0 if quick else 30.0
    gaps: list[float] = []
    ages: list[float] = []
    async with simulator(n) as url:
        await _set_faults(url, f"GetLevel1:latency:delay={LATENCY}")
        # A rate budget the job fits in (100 instruments/s), as a real bot would set.
        async with KiiexClient(url, rate_limit=150, pool_size=POOL_SIZE) as client:
            instruments = [i for i in await client.get_instruments() if i.instrument_id <= n]
            async with RatePoller(client, instruments, interval=interval) as poller:
                last_seen: dict[int, float] = {}

                async def collect() -> None:
                    async for tick in poller.subscribe():
                        if tick.stale:
                            continue
                        at = tick.received_at.timestamp()
                        before = last_seen.get(tick.instrument_id)
                        if before is not None and at > before:
                            gaps.append((at - before) / interval)
                        last_seen[tick.instrument_id] = at

                async def sample() -> None:
                    await asyncio.sleep(interval * 1.5)  # every instrument has a rate by then
                    while True:
                        ages.extend(t.age / interval for t in poller.snapshot())
                        await asyncio.sleep(0.05)

                tasks = [asyncio.create_task(collect()), asyncio.create_task(sample())]
                await asyncio.sleep(seconds)
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                stats = poller.stats()
    p99 = _percentile(gaps, 0.99)
    age99 = _percentile(ages, 0.99)
    print(
        f"ratio rates_freshness_p99_intervals: {p99:.3f}  [target <= 1.2]  "
        f"({len(gaps)} gaps, {n} instruments, {LATENCY * 1000:.0f} ms latency, "
        f"{stats.failures} failures, {stats.skipped} skipped slots)",
        flush=True,
    )
    print(f"ratio rates_age_p99_intervals: {age99:.3f}", flush=True)
    return {
        "rates_freshness_p99_intervals": p99,
        "rates_freshness_max_intervals": max(gaps, default=math.nan),
        "rates_age_p99_intervals": age99,
        "rates_freshness_failures": float(stats.failures),
    }


async def _feed_subscribers(
    client: Any, instruments: list[Any], *, seconds: float, subscribers: int
) -> tuple[int, int, int]:
    """Run a poller with ``subscribers`` (half reading, half never reading) for ``seconds``.

    Returns (RSS bytes, traced Python heap bytes or 0, ticks buffered) measured at the end,
    while the poller and its subscriptions are alive.
    """
    from kiiex_async.rates import RatePoller

    async with RatePoller(client, instruments, interval=1.0) as poller:
        subs = [poller.subscribe() for _ in range(subscribers)]

        readers = [asyncio.create_task(_drain(s)) for s in subs[: subscribers // 2]]
        try:
            await asyncio.sleep(seconds)
            gc.collect()
            rss = _rss_bytes()
            heap = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
            buffered = sum(s.pending for s in subs)
        finally:
            for task in readers:
                task.cancel()
            await asyncio.gather(*readers, return_exceptions=True)
    return rss, heap, buffered


async def memory(quick: bool) -> dict[str, float]:
    """Figure 3: memory of a 500-instrument poller feeding 10 subscribers.

    Measured in a fresh Python process: in one that already ran other benchmarks, the
    allocator reuses memory they freed and the RSS delta reads 0.
    ``rates_rss_delta_mb_500x10``: RSS growth over a baseline taken with the client's pool
    already warm (connections and aiohttp buffers excluded).  ``..._cold``: the same from a
    baseline taken before the client existed.  ``rates_heap_mb_500x10``: Python heap
    allocated after the poller was created and still alive at the end (tracemalloc, in a
    second run so that tracing does not inflate the RSS figures).
    """
    args = [sys.executable, _THIS_FILE, "--memory-child"]
    proc = await asyncio.create_subprocess_exec(
        *args,
        *(["--quick"] if quick else []),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    text = out.decode(errors="replace")
    marker = [line for line in text.splitlines() if line.startswith(_MEMORY_MARKER)]
    if proc.returncode != 0 or not marker:
        raise RuntimeError(f"memory child failed (exit {proc.returncode}):\n{text[-2000:]}")
    figures: dict[str, float] = json.loads(marker[-1][len(_MEMORY_MARKER) :])
    for name in ("rates_rss_delta_mb_500x10", "rates_rss_delta_mb_500x10_cold"):
        print(f"ratio {name}: {figures[name]:.2f}", flush=True)
    print(
        f"ratio rates_heap_mb_500x10: {figures['rates_heap_mb_500x10']:.2f}  "
        f"({figures['rates_buffered_ticks']:.0f} ticks buffered in the 5 unread subscriptions)",
        flush=True,
    )
    return figures


_MEMORY_MARKER = "MEMORY_FIGURES "


async def _measure_memory(quick: bool) -> dict[str, float]:
    """The body of :func:`memory`, run in the child process."""
    from kiiex_async.client import KiiexClient

    n, subscribers = 500, 10
    seconds = 5.0 if quick else 15.0
    async with simulator(n) as url:
        gc.collect()
        cold = _rss_bytes()
        async with KiiexClient(url, rate_limit=None, pool_size=POOL_SIZE) as client:
            instruments = await client.get_instruments()
            # Warm the pool (and every code path) so the baseline holds the connections.
            for _ in range(3):
                await asyncio.gather(*(client.get_level1(i.instrument_id) for i in instruments))
            gc.collect()
            warm = _rss_bytes()
            rss, _, buffered = await _feed_subscribers(
                client, instruments, seconds=seconds, subscribers=subscribers
            )
            tracemalloc.start()
            try:
                _, heap, _ = await _feed_subscribers(
                    client, instruments, seconds=seconds / 2, subscribers=subscribers
                )
            finally:
                tracemalloc.stop()
    return {
        "rates_rss_delta_mb_500x10": (rss - warm) / 2**20,
        "rates_rss_delta_mb_500x10_cold": (rss - cold) / 2**20,
        "rates_heap_mb_500x10": heap / 2**20,
        "rates_buffered_ticks": float(buffered),
    }


async def run(quick: bool) -> dict[str, float]:
    """Every RatePoller figure, by name (also printed as ``ratio <name>: <value>`` lines)."""
    figures: dict[str, float] = {}
    figures.update(await overhead(quick))
    figures.update(await throughput(quick))
    figures.update(await freshness(quick))
    figures.update(await memory(quick))
    return figures


def main(argv: list[str] | None = None) -> int:
    """``python bench/bench_rates.py [--quick]``."""
    parser = argparse.ArgumentParser(description="RatePoller benchmarks")
    parser.add_argument("--quick", action="store_true", help="shorter runs (CI smoke)")
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_child:
        figures = asyncio.run(_measure_memory(args.quick))
        print(_MEMORY_MARKER + json.dumps(figures), flush=True)
        return 0
    figures = asyncio.run(run(args.quick))
    print(json.dumps(figures, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
