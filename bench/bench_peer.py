"""The peer: ccxt's async ``ndax`` client (another AlphaPoint client) against the same simulator.

ccxt is pointed at the simulator by deep-merging ``urls.api`` into its config (capital
``/AP``, GET with a query string, which is how ndax calls every public method).  Its own
throttle (``rateLimit: 1000`` ms) is switched off with ``enableRateLimit=False`` so that
both clients run flat out.

Two ccxt calls are timed:

* ``fetch_ticker(symbol)`` (headline): GetLevel1 parsed into ccxt's unified ticker — the
  closest analogue of ``KiiexClient.get_level1`` returning a typed ``Level1``;
* ``publicGetGetLevel1(...)``: the raw endpoint method (HTTP + JSON, no structuring).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

from ._common import Report, Stats, run_concurrently
from .bench_client import INSTRUMENT_ID, open_client

__all__ = ["open_ndax", "run"]


def _ccxt_missing() -> str | None:
    try:
        import ccxt.async_support  # noqa: F401
    except Exception as exc:  # any import failure means "no peer", not a harness error
        return f"ccxt not importable ({type(exc).__name__}: {exc}); pip install '.[bench]'"
    return None


async def open_ndax(stack: AsyncExitStack, url_upper: str) -> Any:
    """A ccxt async ndax instance on the simulator (closed by ``stack``)."""
    import ccxt.async_support as ccxt_async

    exchange = ccxt_async.ndax(
        {
            "urls": {"api": {"public": url_upper, "private": url_upper}},
            "enableRateLimit": False,
            "timeout": 10_000,
        }
    )
    stack.push_async_callback(exchange.close)
    return exchange


async def _per_call(call: Callable[[], Awaitable[object]], n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        await call()
    return (time.perf_counter() - t0) / n


async def run(report: Report, url: str, url_upper: str, *, quick: bool) -> None:
    """Figure 3: ccxt per-call time over ``KiiexClient`` per-call time (same run, interleaved)."""
    missing = _ccxt_missing()
    if missing:
        report.skip("peer", missing)
        return
    import ccxt

    n, reps, warmup = (150, 5, 30) if quick else (600, 9, 100)
    async with AsyncExitStack() as stack:
        client = await open_client(stack, url)
        exchange = await open_ndax(stack, url_upper)
        await exchange.load_markets()
        symbol = next(
            m["symbol"] for m in exchange.markets.values() if str(m["id"]) == str(INSTRUMENT_ID)
        )
        report.note(
            "peer",
            f"ccxt {ccxt.__version__} ndax, enableRateLimit=False; headline call "
            f"fetch_ticker({symbol!r}) (GET {url_upper}/GetLevel1 -> unified ticker); "
            "raw call publicGetGetLevel1 (HTTP + JSON only); "
            "KiiexClient.get_level1 (POST /ap/GetLevel1 -> typed Level1)",
        )
        ticker = await exchange.fetch_ticker(symbol)
        if ticker.get("bid") is None and ticker.get("last") is None:
            report.note("peer_warning", f"ccxt ticker has no bid/last: {ticker!r}"[:300])

        async def kiiex() -> object:
            return await client.get_level1(INSTRUMENT_ID)

        async def ccxt_ticker() -> object:
            return await exchange.fetch_ticker(symbol)

        async def ccxt_raw() -> object:
            return await exchange.publicGetGetLevel1({"omsId": 1, "InstrumentId": INSTRUMENT_ID})

        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "kiiex": kiiex,
            "ccxt_ticker": ccxt_ticker,
            "ccxt_raw": ccxt_raw,
        }
        for call in calls.values():
            await _per_call(call, warmup)
        samples: dict[str, list[float]] = {k: [] for k in calls}
        names = list(calls)
        for i in range(reps):
            # Rotate the order so no call always runs first (or right after the same other).
            for name in names[i % 3 :] + names[: i % 3]:
                samples[name].append(await _per_call(calls[name], n) * 1e6)
        k = report.add("peer.kiiex.per_call_us", Stats("us", tuple(samples["kiiex"])))
        t = report.add(
            "peer.ccxt_fetch_ticker.per_call_us", Stats("us", tuple(samples["ccxt_ticker"]))
        )
        r = report.add("peer.ccxt_raw.per_call_us", Stats("us", tuple(samples["ccxt_raw"])))
        report.ratio("ccxt_vs_client_per_call", t.median / k.median, 3.0, ">=", "fetch_ticker")
        report.ratio("ccxt_raw_vs_client_per_call", r.median / k.median, note="publicGetGetLevel1")

        # Throughput at 16 in flight, for information (ccxt's pool holds 100 connections).
        total, creps = (300, 3) if quick else (1000, 5)
        for name in ("kiiex", "ccxt_ticker"):
            await run_concurrently(calls[name], 64, 16)
        tput: dict[str, list[float]] = {"kiiex": [], "ccxt_ticker": []}
        for i in range(creps):
            order = ["kiiex", "ccxt_ticker"] if i % 2 == 0 else ["ccxt_ticker", "kiiex"]
            for name in order:
                tput[name].append(total / await run_concurrently(calls[name], total, 16))
        kc = report.add("peer.conc16.kiiex.rps", Stats("req/s", tuple(tput["kiiex"])))
        cc = report.add(
            "peer.conc16.ccxt_fetch_ticker.rps", Stats("req/s", tuple(tput["ccxt_ticker"]))
        )
        report.ratio("client_vs_ccxt_throughput_c16", kc.median / cc.median, note="information")
