"""Per-call overhead and concurrency of ``KiiexClient.get_level1`` against plain aiohttp.

The floor is the same HTTP request written by hand: ``session.post(url, json=payload)`` and
``json.loads`` of the body (floats, no model).  The client does the same round trip plus
what it is for: a shared rate limiter (off here), retries of safe calls, error mapping,
``Decimal`` parsing and a typed ``Level1``.  Both use one keep-alive pool of the same size
against the same simulator process, and their repetitions are interleaved so that drift
(CPU frequency, the simulator's state) hits both alike.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp

from ._common import Report, Stats, run_concurrently

__all__ = [
    "FloorClient",
    "open_client",
    "profile_client",
    "run",
    "run_capacity",
    "run_concurrency",
    "run_overhead",
]

INSTRUMENT_ID = 1
POOL_SIZE = 128
LEVELS = (1, 16, 128)


class FloorClient:
    """The hand-written floor: one aiohttp session, POST JSON, ``json.loads``."""

    def __init__(self, base_url: str, *, pool_size: int = POOL_SIZE) -> None:
        self._url = f"{base_url}/GetLevel1"
        self._payload = {"OMSId": 1, "InstrumentId": INSTRUMENT_ID}
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=pool_size),
            headers={"Accept": "application/json"},
        )

    async def get_level1(self) -> Any:
        """One GetLevel1 round trip; the decoded JSON object."""
        async with self._session.post(self._url, json=self._payload) as resp:
            body = await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"GetLevel1: HTTP {resp.status}")
        return json.loads(body)

    async def aclose(self) -> None:
        """Close the session."""
        await self._session.close()


async def open_client(stack: AsyncExitStack, url: str) -> Any:
    """A ``KiiexClient`` on ``url`` with the rate limit off and a pool like the floor's."""
    from kiiex_async.client import KiiexClient

    client = KiiexClient(url, rate_limit=None, pool_size=POOL_SIZE)
    return await stack.enter_async_context(client)


async def _per_call(call: Callable[[], Awaitable[object]], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await call()
    return (time.perf_counter() - t0) / n


async def _pair_sequential(
    a: Callable[[], Awaitable[object]],
    b: Callable[[], Awaitable[object]],
    *,
    n: int,
    reps: int,
    warmup: int,
) -> tuple[list[float], list[float]]:
    """Per-call seconds of ``a`` and ``b``, interleaved (a b b a a b ...) after a warm-up."""
    await _per_call(a, warmup)
    await _per_call(b, warmup)
    sa: list[float] = []
    sb: list[float] = []
    for i in range(reps):
        if i % 2 == 0:
            sa.append(await _per_call(a, n))
            sb.append(await _per_call(b, n))
        else:
            sb.append(await _per_call(b, n))
            sa.append(await _per_call(a, n))
    return sa, sb


async def run_overhead(
    report: Report, url: str, *, n: int, reps: int, warmup: int
) -> tuple[Stats, Stats]:
    """Figure 1: sequential per-call time, client vs floor; returns (client, floor) stats."""
    async with AsyncExitStack() as stack:
        client = await open_client(stack, url)
        floor = FloorClient(url)
        stack.push_async_callback(floor.aclose)
        sample = await client.get_level1(INSTRUMENT_ID)
        report.note("client_result_type", type(sample).__name__)

        async def via_client() -> object:
            return await client.get_level1(INSTRUMENT_ID)

        sc, sf = await _pair_sequential(via_client, floor.get_level1, n=n, reps=reps, warmup=warmup)
    c = report.add("seq.client.per_call_us", Stats("us", tuple(x * 1e6 for x in sc)))
    f = report.add("seq.aiohttp.per_call_us", Stats("us", tuple(x * 1e6 for x in sf)))
    ratios = [x / y for x, y in zip(sc, sf, strict=True)]
    report.add("seq.ratio_per_rep", Stats("x", tuple(ratios)))
    report.ratio("client_overhead_vs_aiohttp", c.median / f.median, 1.10, "<=")
    report.scalar("seq.client_minus_aiohttp_us", c.median - f.median)
    return c, f


async def run_concurrency(
    report: Report, url: str, *, total: int, reps: int, levels: tuple[int, ...] = LEVELS
) -> dict[int, float]:
    """Figure 2: throughput of ``total`` calls at each concurrency level, client vs floor.

    Returns the floor's best median throughput per level (the simulator's capacity as seen
    by the cheapest possible client).
    """
    floor_rps: dict[int, float] = {}
    async with AsyncExitStack() as stack:
        client = await open_client(stack, url)
        floor = FloorClient(url)
        stack.push_async_callback(floor.aclose)

        async def via_client() -> object:
            return await client.get_level1(INSTRUMENT_ID)

        for level in levels:
            # Warm-up fills the pool with `level` open connections for both.
            await run_concurrently(via_client, min(total, level * 4), level)
            await run_concurrently(floor.get_level1, min(total, level * 4), level)
            sc: list[float] = []
            sf: list[float] = []
            cpu_c: list[float] = []
            cpu_f: list[float] = []
            for i in range(reps):
                order = (
                    [(via_client, sc, cpu_c), (floor.get_level1, sf, cpu_f)]
                    if i % 2 == 0
                    else [(floor.get_level1, sf, cpu_f), (via_client, sc, cpu_c)]
                )
                for call, out, cpu in order:
                    before = time.process_time()
                    out.append(total / await run_concurrently(call, total, level))
                    cpu.append((time.process_time() - before) / total * 1e6)
            c = report.add(f"conc{level}.client.rps", Stats("req/s", tuple(sc)))
            f = report.add(f"conc{level}.aiohttp.rps", Stats("req/s", tuple(sf)))
            floor_rps[level] = f.median
            report.ratio(f"client_throughput_vs_aiohttp_c{level}", c.median / f.median, 0.85, ">=")
            # Each repetition's ratio to the floor's run next to it: background load on a
            # shared machine hits both runs of a pair alike, so their median is steadier.
            pairs = report.add(
                f"conc{level}.ratio_per_rep",
                Stats("x", tuple(x / y for x, y in zip(sc, sf, strict=True))),
            )
            report.scalar(f"conc{level}.pair_ratio_median", pairs.median)
            # CPU this process spent per call (the client's own cost, whatever the load).
            cc = report.add(f"conc{level}.client.cpu_us_per_call", Stats("us", tuple(cpu_c)))
            cf = report.add(f"conc{level}.aiohttp.cpu_us_per_call", Stats("us", tuple(cpu_f)))
            report.scalar(f"conc{level}.client_cpu_vs_aiohttp", cc.median / cf.median)
    return floor_rps


async def run(report: Report, url: str, *, quick: bool) -> dict[int, float]:
    """Figures 1 and 2; returns the floor's throughput per concurrency level."""
    if quick:
        await run_overhead(report, url, n=200, reps=5, warmup=50)
        return await run_concurrency(report, url, total=500, reps=3)
    await run_overhead(report, url, n=1000, reps=9, warmup=200)
    # Sequential calls are slow enough for 1,000 to make a steady sample; under load a
    # sample of 4,000 lasts about 0.4 s, long enough that a scheduling hiccup of this shared
    # machine is a small part of it, and 11 pairs give the medians a steady middle.
    floor_rps = await run_concurrency(report, url, total=1000, reps=7, levels=(1,))
    floor_rps |= await run_concurrency(report, url, total=4000, reps=11, levels=(16, 128))
    return floor_rps


async def profile_client(url: str, *, n: int, concurrency: int = 1, html: str | None = None) -> str:
    """Profile ``n`` ``get_level1`` calls (``concurrency`` in flight) with pyinstrument.

    The whole thread is sampled (``async_mode="disabled"``), so the event loop's own work
    and aiohttp's protocol callbacks are attributed too, not only the awaiting coroutine.
    Returns the text report (and writes an HTML one to ``html`` if given).
    """
    from pyinstrument import Profiler

    async with AsyncExitStack() as stack:
        client = await open_client(stack, url)

        async def call() -> object:
            return await client.get_level1(INSTRUMENT_ID)

        await run_concurrently(call, max(200, concurrency * 4), concurrency)
        profiler = Profiler(interval=0.0002, async_mode="disabled")
        profiler.start()
        await run_concurrently(call, n, concurrency)
        profiler.stop()
    if html:
        await asyncio.to_thread(Path(html).write_text, profiler.output_html())
    return str(profiler.output_text(unicode=True, color=False, show_all=False))


async def run_capacity(report: Report, url: str, *, quick: bool) -> None:
    """Figure 6: requests per second the simulator process serves to the cheapest client.

    Plain aiohttp GetLevel1 at several concurrency levels; the best median is the capacity.
    On a 2-core machine client and server share the CPU, so this is a floor on capacity.
    """
    total, reps = (1000, 3) if quick else (3000, 5)
    best = 0.0
    floor = FloorClient(url, pool_size=256)
    try:
        for level in (16, 64, 256):
            await run_concurrently(floor.get_level1, level * 2, level)
            samples = tuple(
                [
                    total / await run_concurrently(floor.get_level1, total, level)
                    for _ in range(reps)
                ]
            )
            s = report.add(f"sim.aiohttp_c{level}.rps", Stats("req/s", samples))
            best = max(best, s.median)
    finally:
        await floor.aclose()
    report.scalar("sim.capacity_rps", best)
    await _bench_sim_script(report, quick=quick)


async def _bench_sim_script(report: Report, *, quick: bool) -> None:
    """The simulator helper's own benchmark (``bench/bench_sim.py``), run as its CLI.

    It pins the simulator and its load generators to separate CPUs, so its figure is the
    simulator's capacity on one core, not shared with the client as above.
    """
    script = Path(__file__).with_name("bench_sim.py")
    if not script.exists():
        report.skip("sim.bench_sim", "bench/bench_sim.py is not present")
        return
    seconds = "2" if quick else "5"
    samples: list[float] = []
    per_cpu: list[float] = []
    for _ in range(1 if quick else 3):
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            "--seconds",
            seconds,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await proc.communicate()
        text = out.decode(errors="replace")
        rps = re.search(r"sim_level1_rps:\s*([0-9.]+)", text)
        if proc.returncode != 0 or not rps:
            raise RuntimeError(f"bench/bench_sim.py failed ({proc.returncode}): {text[-500:]}")
        samples.append(float(rps.group(1)))
        cpu = re.search(r"requests per server CPU-second:\s*([0-9.]+)", text)
        if cpu:
            per_cpu.append(float(cpu.group(1)))
    report.add("sim.bench_sim.level1_rps", Stats("req/s", tuple(samples)))
    if per_cpu:
        report.add("sim.bench_sim.req_per_server_cpu_s", Stats("req/cpu-s", tuple(per_cpu)))
