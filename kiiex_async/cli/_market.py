"""Account and market commands: ``balances``, ``rates`` and the standalone ``sim``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.table import Table

from ..pricing import format_amount
from ..rates import RatePoller, RateTick
from ..sim import SimConfig, Simulator, parse_fault_spec, serve
from ._base import EXIT_OK, EXIT_USAGE, CliError, Output
from ._env import Target, connect
from ._stream import poller_options
from ._swap import parse_amount


async def cmd_balances(args: argparse.Namespace, target: Target, output: Output) -> int:
    """``kiiex balances``: positions of the account."""
    async with connect(target, output) as client:
        positions = await client.get_account_positions()
        ticks = (
            {} if output.as_json else {p.symbol: p.tick_size for p in await client.get_products()}
        )
    if output.as_json:
        rows = [
            {
                "product": p.product_symbol,
                "amount": p.amount,
                "hold": p.hold,
                "available": p.available,
            }
            for p in positions
        ]
        output.json({"balances": rows})
        return EXIT_OK
    table = Table("product", "amount", "hold", "available")
    for p in positions:
        tick = ticks.get(p.product_symbol)
        table.add_row(
            p.product_symbol,
            *(format_amount(v, tick) for v in (p.amount, p.hold, p.available)),
        )
    output.out.print(table)
    return EXIT_OK


def _fmt(value: Decimal | None) -> str:
    return "-" if value is None else format_amount(value)


async def cmd_rates(args: argparse.Namespace, target: Target, output: Output) -> int:
    """``kiiex rates [SYMBOL ...]``: a live table (or JSON lines) of bid/ask/last."""
    interval = float(parse_amount(args.interval, what="--interval"))
    duration = float(parse_amount(args.duration, what="--duration")) if args.duration else None
    async with connect(target, output) as client:
        symbols: list[str | int] = list(args.symbols)
        if not symbols:
            symbols = [i.symbol for i in await client.get_instruments()]
        poller = RatePoller(
            client,
            symbols,
            interval=interval,
            changes_only=args.changes_only,
            **poller_options(args),
        )
        async with poller:
            if output.as_json:
                await _stream_json(poller, output, args.count, duration)
            else:
                await _live_table(poller, output, args.count, duration)
    return EXIT_OK


def _tick_dict(tick: RateTick) -> dict[str, Any]:
    return {
        "symbol": tick.symbol,
        "instrument_id": tick.instrument_id,
        "bid": tick.bid,
        "ask": tick.ask,
        "last": tick.last,
        "exchange_time": tick.exchange_time,
        "received_at": tick.received_at,
        "age": round(tick.age, 3),
        "stale": tick.stale,
    }


async def _stream_json(
    poller: RatePoller, output: Output, count: int | None, duration: float | None
) -> None:
    seen = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(duration), poller.subscribe() as sub:
            async for tick in sub:
                output.json(_tick_dict(tick))
                seen += 1
                if count is not None and seen >= count:
                    return


async def _live_table(
    poller: RatePoller, output: Output, count: int | None, duration: float | None
) -> None:
    from rich.live import Live

    def render() -> Table:
        table = Table("symbol", "bid", "ask", "last", "age (s)", "stale")
        for tick in sorted(poller.snapshot(), key=lambda t: t.symbol):
            table.add_row(
                tick.symbol,
                _fmt(tick.bid),
                _fmt(tick.ask),
                _fmt(tick.last),
                f"{tick.age:.1f}",
                "STALE" if tick.stale else "",
            )
        return table

    seen = 0
    with (
        Live(render(), console=output.out, auto_refresh=False) as live,
        contextlib.suppress(TimeoutError),
    ):
        async with asyncio.timeout(duration), poller.subscribe() as sub:
            async for _tick in sub:
                live.update(render(), refresh=True)
                seen += 1
                if count is not None and seen >= count:
                    return


def cmd_sim(args: argparse.Namespace) -> int:
    """``kiiex sim``: a standalone simulator until Ctrl-C."""
    faults = [parse_fault_spec(spec) for spec in args.fault]
    config = SimConfig(seed=args.seed, dialect=args.dialect)
    if args.state is not None:
        _check_state_file(Path(args.state), config)
    try:
        serve(args.host, args.port, config=config, state_file=args.state, faults=faults)
    except OSError as exc:
        raise CliError(
            f"cannot listen on {args.host}:{args.port} ({exc.strerror or exc}): pick another "
            "--port (0 picks a free one) or --host",
            EXIT_USAGE,
        ) from None
    return EXIT_OK


def _check_state_file(path: Path, config: SimConfig) -> None:
    """Load ``--state`` once before serving, so a damaged file is one clear line."""
    try:
        Simulator(config, state_file=path)
    except (ValueError, KeyError, TypeError) as exc:
        raise CliError(
            f"--state {path} is not a simulator state file kiiex can read ({exc}): give another "
            "path, or move it away to start a fresh exchange",
            EXIT_USAGE,
        ) from None
    except OSError as exc:
        raise CliError(f"cannot read --state {path} ({exc.strerror or exc})", EXIT_USAGE) from None
