"""Entry point: parse, pick the target, run the command, map errors to one line."""

from __future__ import annotations

import argparse
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
from ..workflow import ExchangeMismatchError
from ._base import EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CliError, Output
from ._env import resolve_target
from ._logging import cli_logging
from ._market import cmd_balances, cmd_rates, cmd_sim
from ._parser import UsageError, build_parser
from ._stream import COMMANDS as STREAM_COMMANDS
from ._swap import cmd_resume, cmd_show, cmd_swap, cmd_swaps
from ._worker import COMMANDS as WORKER_COMMANDS

COMMANDS = {
    "swap": cmd_swap,
    "resume": cmd_resume,
    "swaps": cmd_swaps,
    "show": cmd_show,
    "balances": cmd_balances,
    "rates": cmd_rates,
    **STREAM_COMMANDS,
    **WORKER_COMMANDS,
}


def _exit_code(exc: KiiexError) -> int:
    if isinstance(exc, InvalidInputError | ConfigurationError | InsufficientFundsError):
        return EXIT_USAGE
    return EXIT_ERROR


def _completion(parser: argparse.ArgumentParser, shell: str) -> int:
    import shtab

    sys.stdout.write(shtab.complete(parser, shell=shell))
    return EXIT_OK


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status (no ``SystemExit``)."""
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(words)
    except UsageError as exc:
        output = Output(as_json="--json" in words)
        return output.fail(str(exc), EXIT_USAGE)
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    output = Output(as_json=args.json, quiet=args.quiet)
    if args.command == "completion":
        return _completion(parser, args.shell)
    with cli_logging(args.verbose):
        return _run(args, output)


def _run(args: argparse.Namespace, output: Output) -> int:
    try:
        if args.command == "sim":
            return cmd_sim(args)
        target = resolve_target(args)
        return asyncio.run(COMMANDS[args.command](args, target, output))
    except CliError as exc:
        return output.fail(str(exc), exc.code, swap_id=exc.swap_id)
    except KiiexError as exc:
        hint, swap_id = "", None
        if isinstance(exc, WorkflowError) and exc.swap_id:
            swap_id = exc.swap_id
            step = f" at step {exc.step}" if exc.step else ""
            notes = getattr(exc, "__notes__", None)
            if isinstance(exc, ExchangeMismatchError):
                hint = f" (swap {exc.swap_id})"
            else:
                command = notes[-1] if notes else f"kiiex resume {exc.swap_id}"
                hint = f" (swap {exc.swap_id}{step}; continue with: {command})"
        return output.fail(f"{exc}{hint}", _exit_code(exc), swap_id=swap_id)
    except KeyboardInterrupt:
        return output.fail("interrupted", EXIT_INTERRUPTED)
    except OSError as exc:
        where = f" {exc.filename}" if exc.filename else ""
        return output.fail(
            f"cannot use{where}: {exc.strerror or exc} (check the path, its permissions and "
            "free space)",
            EXIT_ERROR,
        )
    except Exception as exc:
        if os.environ.get("KIIEX_DEBUG"):
            raise
        return output.fail(
            f"internal error: {type(exc).__name__}: {exc} (a bug: please report it; set "
            "KIIEX_DEBUG=1 for the traceback)",
            EXIT_ERROR,
        )


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point."""
    sys.exit(run(argv))
