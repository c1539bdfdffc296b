"""Entry point: parse, pick the target, run the command, map errors to one line."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from typing import NoReturn

from ..errors import (
    ConfigurationError,
    InsufficientFundsError,
    InvalidInputError,
    KiiexError,
    WorkflowError,
)
from ._base import (
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    CliError,
    Output,
    resolve_target,
)
from ._market import cmd_balances, cmd_rates, cmd_sim
from ._parser import build_parser
from ._swap import cmd_resume, cmd_show, cmd_swap, cmd_swaps

COMMANDS = {
    "swap": cmd_swap,
    "resume": cmd_resume,
    "swaps": cmd_swaps,
    "show": cmd_show,
    "balances": cmd_balances,
    "rates": cmd_rates,
}


def _exit_code(exc: KiiexError) -> int:
    if isinstance(exc, InvalidInputError | ConfigurationError | InsufficientFundsError):
        return EXIT_USAGE
    return EXIT_ERROR


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status (no ``SystemExit``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    output = Output(as_json=getattr(args, "json", False), quiet=getattr(args, "quiet", False))
    try:
        if args.command == "sim":
            return cmd_sim(args)
        target = resolve_target(args)
        return asyncio.run(COMMANDS[args.command](args, target, output))
    except CliError as exc:
        output.err.print(f"kiiex: error: {exc}", markup=False, highlight=False)
        return exc.code
    except KiiexError as exc:
        hint = ""
        if isinstance(exc, WorkflowError) and exc.swap_id:
            step = f" at step {exc.step}" if exc.step else ""
            hint = f" (swap {exc.swap_id}{step}; continue with: kiiex resume {exc.swap_id})"
        output.err.print(f"kiiex: error: {exc}{hint}", markup=False, highlight=False)
        return _exit_code(exc)
    except KeyboardInterrupt:
        output.err.print("kiiex: interrupted", markup=False)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("KIIEX_DEBUG"):
            raise
        output.err.print(
            f"kiiex: internal error: {type(exc).__name__}: {exc} "
            "(set KIIEX_DEBUG=1 for the traceback)",
            markup=False,
            highlight=False,
        )
        return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point."""
    sys.exit(run(argv))
