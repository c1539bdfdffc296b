"""The ``kiiex`` command line: swaps, their checkpoints, rates, balances and the simulator.

Environments: with no credentials in the environment every command runs against the
embedded simulator (and says so); credentials select staging; production is only ever
used when ``--env production`` is named.  Errors print one line and exit non-zero.

Modules: ``_base`` (target, output, connections shared by every command), ``_swap``
(swap, resume, swaps, show), ``_market`` (balances, rates, sim), ``_parser`` (arguments),
``_main`` (entry point and error mapping).
"""

from ._base import (
    EXIT_CODES,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_NOT_COMPLETED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
)
from ._main import main, run

__all__ = [
    "EXIT_CODES",
    "EXIT_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_NOT_COMPLETED",
    "EXIT_OK",
    "EXIT_USAGE",
    "CliError",
    "main",
    "run",
]
