"""Logging while a ``kiiex`` command runs: quiet unless asked.

By default only the library's warnings reach stderr, as ``kiiex: warning: ...`` lines;
stamina's routine ``stamina.retry_scheduled`` records stay silent.  ``-v`` adds every
request (method, HTTP status, time), each scheduled retry and the library's other
debug and info records.  Records never carry a secret (the library never logs one, and retries are
shown by callable, attempt and cause, never by their arguments).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator

__all__ = ["cli_logging"]

_LIBRARY = "kiiex_async"
_STAMINA = "stamina"


class _Formatter(logging.Formatter):
    """``kiiex: <level>: <message>``; a stamina retry as one readable sentence."""

    def format(self, record: logging.LogRecord) -> str:
        if record.name == _STAMINA or record.name.startswith(_STAMINA + "."):
            extra = record.__dict__
            message = (
                f"retry {extra.get('stamina.retry_num', '?')} of "
                f"{extra.get('stamina.callable', '?')} in {extra.get('stamina.wait_for', '?')} s "
                f"after {extra.get('stamina.caused_by', '?')}"
            )
        else:
            message = record.getMessage()
        level = "debug" if record.levelno < logging.WARNING else record.levelname.lower()
        return f"kiiex: {level}: {message}"


@contextlib.contextmanager
def cli_logging(verbosity: int) -> Iterator[None]:
    """Send the library's and stamina's records to stderr (quiet at ``verbosity`` 0,
    everything from 1) for the duration of a command, then restore the loggers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    levels = {
        _LIBRARY: logging.WARNING if verbosity <= 0 else logging.DEBUG,
        # stamina logs each scheduled retry at WARNING: routine, shown with -v only.
        _STAMINA: logging.ERROR if verbosity <= 0 else logging.DEBUG,
    }
    saved = []
    for name, level in levels.items():
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(level)
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
