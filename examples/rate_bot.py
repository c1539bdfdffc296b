"""A small rate bot: watch USDT/COPM and USDC/COPM, react when USDT/USDC drifts from 1.

Both stablecoins are priced in COPM, so their mids imply a USDT/USDC cross rate::

    cross = mid(USDTCOPM) / mid(USDCCOPM)        (USDC per USDT; ideally 1)

The bot polls both pairs with one ``RatePoller`` and prints an alert when ``|cross - 1|``
goes over ``--threshold`` (and a line when it comes back), ignoring stale rates.  It runs
for ``--seconds`` and exits cleanly.

With no ``--url`` and no ``KIIEX_*`` credentials in the environment it starts the embedded
simulator (with a jumpier market than the default, so that there is something to see)::

    python examples/rate_bot.py --seconds 10
    python examples/rate_bot.py --url https://apstage.proxy.kiiex.io/ap --seconds 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Callable, Sequence
from decimal import Decimal, InvalidOperation

import anyio

from kiiex_async import Credentials, KiiexError
from kiiex_async.client import STAGING_URL, KiiexClient
from kiiex_async.rates import RatePoller, RateTick

USDT_LEG = "USDTCOPM"
USDC_LEG = "USDCCOPM"


def cross_rate(usdt: RateTick | None, usdc: RateTick | None) -> Decimal | None:
    """USDC per USDT implied by the two COPM legs, or None without fresh mids on both."""
    if usdt is None or usdc is None or usdt.stale or usdc.stale:
        return None
    a, b = usdt.mid, usdc.mid
    if a is None or b is None or b == 0:
        return None
    return a / b


async def watch(
    poller: RatePoller,
    *,
    seconds: float,
    threshold: Decimal,
    emit: Callable[[str], None] = print,
) -> int:
    """React to every change of either leg for ``seconds``; return the number of alerts."""
    alerts = 0
    outside = False
    with anyio.move_on_after(seconds):
        async with poller.subscribe() as ticks:
            async for tick in ticks:
                if tick.stale:
                    emit(f"{tick.symbol}: rate is {tick.age:.1f}s old (stale), not acting on it")
                    continue
                cross = cross_rate(poller.latest(USDT_LEG), poller.latest(USDC_LEG))
                if cross is None:
                    continue
                deviation = abs(cross - 1)
                if deviation > threshold and not outside:
                    alerts += 1
                    outside = True
                    emit(
                        f"ALERT  USDT/USDC = {cross:.6f} ({deviation * 10_000:.1f} bps from 1) "
                        f"after {tick.symbol} moved to bid {tick.bid} / ask {tick.ask}"
                    )
                elif deviation <= threshold and outside:
                    outside = False
                    emit(f"ok     USDT/USDC = {cross:.6f}, back within the threshold")
    return alerts


async def run(url: str | None, *, seconds: float, threshold: Decimal, interval: float) -> int:
    """Run the bot against ``url``, or against an embedded simulator when ``url`` is None."""
    async with contextlib.AsyncExitStack() as stack:
        if url is None:
            from kiiex_async.sim import SimConfig, Simulator

            # Faster, larger random steps than the default market, so a short demo moves.
            config = SimConfig(seed=7, drift_bps=Decimal(15), drift_interval=0.5)
            sim = await stack.enter_async_context(Simulator(config=config))
            url = sim.url
            print(f"no credentials configured: using the embedded simulator at {url}")
        client = await stack.enter_async_context(KiiexClient(url))
        poller = await stack.enter_async_context(
            RatePoller(client, [USDT_LEG, USDC_LEG], interval=interval, changes_only=True)
        )
        print(
            f"watching {USDT_LEG} and {USDC_LEG} every {interval:g}s for {seconds:g}s; "
            f"threshold {threshold * 10_000:.1f} bps"
        )
        alerts = await watch(poller, seconds=seconds, threshold=threshold)
        stats = poller.stats()
    print(
        f"done: {alerts} alert(s), {stats.requests} requests, {stats.rates} rates, "
        f"{stats.failures} failures, {stats.rate_limited} rate-limited"
    )
    return alerts


def _decimal(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise argparse.ArgumentTypeError(f"not a decimal number: {text!r}") from None
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError("threshold must be a finite number >= 0")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the process exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    parser.add_argument("--interval", type=float, default=0.5, help="seconds between polls")
    parser.add_argument(
        "--threshold",
        type=_decimal,
        default=Decimal("0.001"),
        help="alert when |USDT/USDC - 1| exceeds this fraction (default 0.001 = 10 bps)",
    )
    parser.add_argument("--url", help="AlphaPoint base URL including /ap (default: simulator)")
    args = parser.parse_args(argv)
    url = args.url
    if url is None and Credentials.env_configured():
        # Market data is public: credentials only choose the venue (staging).
        url = STAGING_URL
    try:
        asyncio.run(
            run(url, seconds=args.seconds, threshold=args.threshold, interval=args.interval)
        )
    except KiiexError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
