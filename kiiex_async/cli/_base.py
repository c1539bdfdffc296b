"""What every ``kiiex`` command shares: exit codes, the one-line error, and output
(progress on stderr, results on stdout, or one JSON object per exit)."""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from typing import Any

from rich.console import Console

ENVIRONMENTS = ("sim", "staging", "production")
#: Exit statuses (the README's table; a test keeps the two equal).
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_COMPLETED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130
EXIT_CODES = {
    EXIT_OK: "success: the command did what it was asked (a swap COMPLETED)",
    EXIT_ERROR: "the exchange could not be reached or answered an error; a swap may be "
    "unfinished: `kiiex resume` it",
    EXIT_USAGE: "bad input or setup (arguments, amounts, credentials, state directory): "
    "nothing was sent",
    EXIT_NOT_COMPLETED: "the swap ended FAILED, NEEDS_OPERATOR or WITHDRAW_FAILED "
    "(`kiiex show` says why)",
    EXIT_INTERRUPTED: "interrupted (Ctrl-C): `kiiex resume` the swap",
}


class CliError(Exception):
    """A problem worth one line to the user; ``code`` is the exit status, ``swap_id`` the
    swap it concerns (if any)."""

    def __init__(self, message: str, code: int = EXIT_ERROR, *, swap_id: str | None = None):
        super().__init__(message)
        self.code = code
        self.swap_id = swap_id


_PIPE_WIDTH = 1000


class Output:
    """Human output on stderr (progress) and stdout (results), or JSON lines on stdout."""

    def __init__(self, *, as_json: bool, quiet: bool = False) -> None:
        self.as_json = as_json
        self.quiet = quiet
        # Piped output is read by programs and people alike: tables are never cut to 80
        # columns there (a terminal keeps its own width).
        width = None if sys.stdout.isatty() else _PIPE_WIDTH
        self.out = Console(highlight=False, soft_wrap=True, width=width)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def note(self, message: str) -> None:
        """A progress / context line for humans (never on stdout)."""
        if not self.quiet:
            self.err.print(message, markup=False)

    def json(self, value: Any) -> None:
        """One JSON document per line on stdout."""
        self.out.out(json.dumps(value, default=_json_default, sort_keys=True), highlight=False)

    def fail(self, message: str, code: int, *, swap_id: str | None = None) -> int:
        """Report an error: one line on stderr and, with ``--json``, the exit's one object
        ``{"error", "exit_code", "swap_id"}`` on stdout.  Returns ``code``."""
        self.err.print(f"kiiex: error: {message}", markup=False, highlight=False)
        if self.as_json:
            self.json({"error": message, "exit_code": code, "swap_id": swap_id})
        return code


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "name") and hasattr(value, "value"):
        return value.name
    raise TypeError(f"cannot serialise {type(value).__name__}")
