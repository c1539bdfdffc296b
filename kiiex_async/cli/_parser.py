"""The ``kiiex`` argument parser."""

from __future__ import annotations

import argparse
from typing import NoReturn

from .. import __version__
from ..sim import DIALECTS
from ._base import ENVIRONMENTS
from ._stream import add_parsers as add_stream_parsers
from ._worker import register as register_worker


class UsageError(Exception):
    """A command line argparse refused (exit status 2), raised instead of exiting so that
    ``--json`` can still print its one object."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors raise :class:`UsageError`."""

    def error(self, message: str) -> NoReturn:
        """Raise :class:`UsageError` (argparse would print usage and exit)."""
        raise UsageError(f"{message} (see: {self.prog} --help)")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (0-65535; 0 picks a free one)")
    return port


def _common_options(*, top: bool) -> Parser:
    """The options every command takes, before or after its name (``kiiex --env sim
    balances`` = ``kiiex balances --env sim``).  After the command their defaults are
    suppressed, so they never reset a value given before it."""
    common = Parser(add_help=False)

    def default(value: object) -> object:
        return value if top else argparse.SUPPRESS

    common.add_argument(
        "--env",
        choices=ENVIRONMENTS,
        default=default(None),
        help="sim (embedded simulator; default without credentials), staging (default with "
        "credentials) or production (only when named)",
    )
    common.add_argument(
        "--base-url",
        default=default(None),
        help="talk to this API URL instead of the environment's (e.g. a `kiiex sim`)",
    )
    common.add_argument(
        "--state-dir",
        default=default(None),
        help="where checkpoints (and the embedded simulator's state) live "
        "(default: $KIIEX_STATE_DIR or the user data directory)",
    )
    common.add_argument(
        "--store",
        default=default(None),
        metavar="DSN",
        help="shared checkpoint store: a PostgreSQL DSN (postgresql://user@host/db) or an "
        "SQLite file (default: the state directory's file)",
    )
    common.add_argument(
        "--json", action="store_true", default=default(False), help="machine-readable output"
    )
    common.add_argument(
        "-q", "--quiet", action="store_true", default=default(False), help="no progress lines"
    )
    common.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=default(0),
        help="log requests and retries on stderr",
    )
    return common


def build_parser() -> argparse.ArgumentParser:
    """The ``kiiex`` argument parser."""
    common = _common_options(top=False)
    parser = Parser(
        prog="kiiex",
        description="KIIEX swaps, rates and balances; a local simulator.",
        parents=[_common_options(top=True)],
    )
    parser.add_argument("--version", action="version", version=f"kiiex_async {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    swap = sub.add_parser("swap", parents=[common], help="swap one stablecoin for another")
    swap.add_argument("from_asset", metavar="FROM", help="asset to spend, e.g. USDT")
    swap.add_argument("to_asset", metavar="TO", help="asset to receive, e.g. COPM")
    swap.add_argument("amount", metavar="AMOUNT", help="amount of FROM to spend")
    swap.add_argument(
        "--receive", action="store_true", help="AMOUNT is what to receive in TO instead"
    )
    swap.add_argument(
        "--max-slippage", default=None, help="limit vs the best price: 0.01 or 1%% (protected)"
    )
    swap.add_argument("--deposit", default=None, help="deposit this much FROM first")
    swap.add_argument("--withdraw-template", default=None, help="withdraw TO with this template")
    swap.add_argument(
        "--withdraw-field",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a field of the withdraw template form (repeatable)",
    )
    swap.add_argument(
        "--withdraw-amount", default=None, help="amount to withdraw (default: all received)"
    )
    swap.add_argument("--swap-id", default=None, help="choose the swap id (idempotent)")

    resume = sub.add_parser("resume", parents=[common], help="continue a swap after a crash")
    resume.add_argument("swap_id", metavar="SWAP_ID")
    resume.add_argument(
        "--reopen",
        action="store_true",
        help="resume a swap that stopped for an operator, or retry a failed withdrawal",
    )
    resume.add_argument(
        "--withdraw-field",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="retry the withdrawal of a WITHDRAW_FAILED swap with this form field (repeatable)",
    )

    sub.add_parser("swaps", parents=[common], help="list swaps and their states")
    show = sub.add_parser("show", parents=[common], help="one swap's result and timeline")
    show.add_argument("swap_id", metavar="SWAP_ID")

    rates = sub.add_parser("rates", parents=[common], help="live rates")
    rates.add_argument("symbols", nargs="*", metavar="SYMBOL", help="instruments (default: all)")
    rates.add_argument("--interval", default="1", help="seconds between polls (default 1)")
    rates.add_argument("--duration", default=None, help="stop after this many seconds")
    rates.add_argument("--count", type=int, default=None, help="stop after this many ticks")
    rates.add_argument("--changes-only", action="store_true", help="only changed rates")
    add_stream_parsers(sub, common, rates)

    sub.add_parser("balances", parents=[common], help="account positions")
    register_worker(sub, common)

    sim = sub.add_parser("sim", help="run a standalone KIIEX simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=_port, default=8080, help="0 picks a free port")
    sim.add_argument("--state", default=None, help="JSON file that keeps the exchange state")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--dialect",
        choices=DIALECTS,
        default="apex",
        help="apex (AlphaPoint's full answers, session tokens; default) or guide (exactly the "
        "answers of KIIEX's quick-start guide: no session token, signed headers on every call)",
    )
    sim.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="METHOD:KIND[:TIMES][:key=value], e.g. SendOrder:drop_after:1 (repeatable)",
    )

    completion = sub.add_parser("completion", help="print a shell completion script")
    completion.add_argument("shell", choices=("bash", "zsh"), help="the shell to complete in")
    return parser
