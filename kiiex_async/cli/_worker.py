"""The ``kiiex`` commands for many machines: ``--store`` (a shared checkpoint store),
``kiiex submit`` (queue a swap) and ``kiiex worker`` (run queued swaps until SIGTERM).

``--store`` takes a PostgreSQL DSN (``postgresql://user@host/db`` or ``host=... dbname=...``)
or the path of an SQLite file; the DSN's password is never printed.  ``_env.open_store``
uses :func:`open_store_at` for ``swaps``, ``show`` and ``resume`` when ``--store`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..workflow import (
    CheckpointStore,
    PostgresCheckpointStore,
    ProgressEvent,
    ProgressKind,
    SqliteCheckpointStore,
    SwapWorker,
    SwapWorkflow,
)
from ..workflow._pg_store import describe_dsn
from ._base import EXIT_OK, EXIT_USAGE, CliError

if TYPE_CHECKING:
    from ._base import Output
    from ._env import Target

__all__ = ["COMMANDS", "open_store_at", "register", "store_label"]


def is_postgres(spec: str) -> bool:
    """True when ``--store`` names a PostgreSQL database rather than an SQLite file."""
    return spec.startswith(("postgres://", "postgresql://")) or "=" in spec


def store_label(spec: str) -> str:
    """``--store`` as it may be shown: a DSN without its password, or the file path."""
    return describe_dsn(spec) if is_postgres(spec) else spec


@contextlib.asynccontextmanager
async def open_store_at(spec: str) -> AsyncIterator[CheckpointStore]:
    """The store ``--store`` names, open."""
    if is_postgres(spec):
        async with PostgresCheckpointStore(spec) as pg:
            yield pg
        return
    path = Path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    async with SqliteCheckpointStore(path) as sqlite:
        yield sqlite


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add ``submit`` (the ``swap`` arguments) and ``worker`` to the subcommands."""
    swap = sub.choices["swap"]
    sub.add_parser(
        "submit",
        parents=[swap],
        add_help=False,
        help="queue a swap for `kiiex worker` (needs --store)",
        description="Queue a swap in --store without running it; a `kiiex worker` of the "
        "same exchange runs it.",
    )
    worker = sub.add_parser(
        "worker", parents=[common], help="run queued swaps from --store until SIGTERM"
    )
    worker.add_argument("--concurrency", type=int, default=4, help="swaps at once (default 4)")
    worker.add_argument(
        "--lease-ttl", type=float, default=30.0, help="lease time-to-live, seconds (default 30)"
    )
    worker.add_argument(
        "--poll", type=float, default=1.0, help="seconds between looks at the queue (default 1)"
    )


def _needs_store(target: Target, command: str) -> str:
    if not target.store:
        raise CliError(f"kiiex {command} needs --store DSN (the queue workers share)", EXIT_USAGE)
    return target.store


async def cmd_submit(args: argparse.Namespace, target: Target, output: Output) -> int:
    """``kiiex submit FROM TO AMOUNT --store DSN``: queue a swap, print its id."""
    from ._env import connect, exchange_of, open_store
    from ._swap import build_request

    _needs_store(target, "submit")
    request = build_request(args)
    async with connect(target, output) as client, open_store(target) as store:
        # Logging in first proves the credentials and binds the swap to their user.
        await client.authenticate()
        workflow = SwapWorkflow(client, store, exchange=exchange_of(target))
        swap_id = await workflow.submit(request, swap_id=args.swap_id)
    if output.as_json:
        output.json({"swap_id": swap_id, "state": "CREATED", "queued": True})
    else:
        output.out.print(swap_id, markup=False)
        output.note(f"queued {request.describe()} in {store_label(target.store or '')}")
    return EXIT_OK


class _NoteHandler(logging.Handler):
    """Workflow warnings (a fenced-off run, a deferred swap) as lines for the operator."""

    def __init__(self, output: Output) -> None:
        super().__init__(logging.WARNING)
        self.output = output

    def emit(self, record: logging.LogRecord) -> None:
        self.output.note(f"warning: {record.getMessage()}")


async def cmd_worker(args: argparse.Namespace, target: Target, output: Output) -> int:
    """``kiiex worker --store DSN``: run queued and orphaned swaps until SIGTERM/Ctrl-C."""
    from ._env import connect, exchange_of, open_store

    _needs_store(target, "worker")
    if args.concurrency < 1 or not args.lease_ttl > 0 or not args.poll > 0:
        raise CliError("--concurrency, --lease-ttl and --poll must be positive", EXIT_USAGE)

    def progress(event: ProgressEvent) -> None:
        if event.kind in (ProgressKind.STATE, ProgressKind.FINISHED):
            output.note(f"swap {event.swap_id} {event.state.value}: {event.message}")

    handler = _NoteHandler(output)
    logger = logging.getLogger("kiiex_async.workflow")
    logger.addHandler(handler)
    loop = asyncio.get_running_loop()
    try:
        async with connect(target, output) as client, open_store(target) as store:
            workflow = SwapWorkflow(
                client,
                store,
                exchange=exchange_of(target),
                lease_ttl=args.lease_ttl,
                on_progress=progress,
            )
            worker = SwapWorker(workflow, concurrency=args.concurrency, poll_interval=args.poll)
            for sig in (signal.SIGTERM, signal.SIGINT):
                # Only the main thread may own signals (an embedding may run us elsewhere).
                with contextlib.suppress(ValueError, RuntimeError):
                    loop.add_signal_handler(sig, worker.stop)
            output.note(
                f"worker {worker.owner.describe()} on {workflow.exchange}, "
                f"{args.concurrency} at a time; SIGTERM or Ctrl-C stops it"
            )
            await worker.run()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ValueError, RuntimeError):
                loop.remove_signal_handler(sig)
        logger.removeHandler(handler)
    output.note(f"worker stopped; {len(worker.finished)} swap(s) finished")
    return EXIT_OK


COMMANDS = {"submit": cmd_submit, "worker": cmd_worker}
