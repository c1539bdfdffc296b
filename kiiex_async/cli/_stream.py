"""The command line's stream commands: ``kiiex book SYMBOL`` and ``kiiex rates --ws``.

Registered by the parser (``add_parsers``) and the command table (``COMMANDS``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

from ..pricing import find_instrument
from ._base import EXIT_OK, CliError, Output
from ._env import Target, connect
from ._swap import parse_amount

if TYPE_CHECKING:
    from ..stream import OrderBook

__all__ = ["COMMANDS", "add_parsers", "poller_options"]


def add_parsers(
    sub: argparse._SubParsersAction[Any],
    common: argparse.ArgumentParser,
    rates: argparse.ArgumentParser,
) -> None:
    """Add ``book`` and the ``--ws`` option of ``rates``."""
    rates.add_argument(
        "--ws", action="store_true", help="rates pushed over the WebSocket (HTTP while it is down)"
    )
    book = sub.add_parser("book", parents=[common], help="a live order book over the WebSocket")
    book.add_argument("symbol", metavar="SYMBOL", help="instrument, e.g. USDTCOPM")
    book.add_argument("--depth", type=int, default=10, help="levels per side (default 10)")
    book.add_argument("--duration", default=None, help="stop after this many seconds")
    book.add_argument("--count", type=int, default=None, help="stop after this many updates")


def poller_options(args: argparse.Namespace) -> dict[str, Any]:
    """Extra ``RatePoller`` options of ``kiiex rates`` (``source="ws"`` with ``--ws``)."""
    return {"source": "ws"} if getattr(args, "ws", False) else {}


def _split(symbol: str) -> tuple[str, str]:
    """``USDTCOPM`` / ``USDT/COPM`` / ``USDT-COPM`` → a pair to look up (either orientation)."""
    for sep in ("/", "-", "_"):
        if sep in symbol:
            a, _, b = symbol.partition(sep)
            return a, b
    return symbol, ""


async def cmd_book(args: argparse.Namespace, target: Target, output: Output) -> int:
    """``kiiex book SYMBOL``: the self-healing order book, live (or JSON lines)."""
    if not 1 <= args.depth <= 500:
        raise CliError("--depth must be between 1 and 500", 2)
    duration = float(parse_amount(args.duration, what="--duration")) if args.duration else None
    async with connect(target, output) as client:
        instruments = await client.get_instruments()
        a, b = _split(args.symbol.strip().upper())
        if b:
            instrument = find_instrument(instruments, a, b)
        else:
            found = [i for i in instruments if i.symbol.upper() == a]
            if not found:
                raise CliError(f"unknown instrument {args.symbol!r}", 2)
            instrument = found[0]
        async with client.stream() as stream:
            book = await stream.order_book(instrument.instrument_id, depth=args.depth)
            show = _json_lines if output.as_json else _live
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(duration):
                    await show(book, instrument.symbol, output, args.count)
    return EXIT_OK


def _book_dict(book: OrderBook, symbol: str) -> dict[str, Any]:
    levels = book.levels
    return {
        "symbol": symbol,
        "best_bid": book.best_bid,
        "best_ask": book.best_ask,
        "bids": [[e.price, e.quantity] for e in levels.bids],
        "asks": [[e.price, e.quantity] for e in levels.asks],
        "rebuilds": book.rebuilds,
    }


async def _updates(book: OrderBook, count: int | None, each: Callable[[], None]) -> None:
    """Call ``each`` now and after every change, ``count`` times in all (None: forever)."""
    seen = 0
    while True:
        each()
        seen += 1
        if count is not None and seen >= count:
            return
        await book.wait_update()


async def _json_lines(book: OrderBook, symbol: str, output: Output, count: int | None) -> None:
    await _updates(book, count, lambda: output.json(_book_dict(book, symbol)))


async def _live(book: OrderBook, symbol: str, output: Output, count: int | None) -> None:
    from rich.live import Live
    from rich.table import Table

    def render() -> Table:
        table = Table("bid qty", "bid", "ask", "ask qty", title=f"{symbol} order book")
        levels = book.levels
        for n in range(max(len(levels.bids), len(levels.asks))):
            bid = levels.bids[n] if n < len(levels.bids) else None
            ask = levels.asks[n] if n < len(levels.asks) else None
            table.add_row(
                str(bid.quantity) if bid else "",
                str(bid.price) if bid else "",
                str(ask.price) if ask else "",
                str(ask.quantity) if ask else "",
            )
        return table

    with Live(render(), console=output.out, auto_refresh=False) as live:
        await _updates(book, count, lambda: live.update(render(), refresh=True))


Command = Callable[[argparse.Namespace, "Target", "Output"], Coroutine[Any, Any, int]]
COMMANDS: dict[str, Command] = {"book": cmd_book}
