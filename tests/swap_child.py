"""Crash-test child: run swaps against a simulator and die by SIGKILL on cue.

Usage::

    python tests/swap_child.py URL STORE_PATH SWAP_ID[=KILL_AT] [SWAP_ID[=KILL_AT] ...]
                               [--grace SECONDS]

Each swap is the nine-step USDT -> COPM swap of ``workflow_support.full_request``, run with
the simulator's demo credentials and a :class:`SqliteCheckpointStore` at ``STORE_PATH``.
With ``=KILL_AT`` the process running the swap sends itself SIGKILL at that checkpoint
label (``commit:ORDER_INTENT``, ``send:SendOrder``...; ``reconcile`` = at the first
reconciliation after a lost answer).

One swap runs in this process, which prints every label as ``LABEL <label>`` (flushed) so
that a parent can also kill it from outside at a precise moment; the last line of a
finished swap is ``STATE <state>``.  Several swaps run in forked processes (the imports are
paid once, nothing is open at fork time) and this process reports each one as
``EXIT <swap_id> <status>``, the status being ``-9`` for a SIGKILL, like ``Popen``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import traceback

import attrs
from workflow_support import FAST, full_request

from kiiex_async import Credentials
from kiiex_async.client import KiiexClient
from kiiex_async.sim import DemoUser
from kiiex_async.workflow import (
    ProgressEvent,
    ProgressKind,
    SqliteCheckpointStore,
    SwapRecord,
    SwapWorkflow,
)


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


async def run_swap(
    url: str, store_path: str, swap_id: str, kill_at: str, grace: float, *, verbose: bool
) -> str:
    """Run (or continue) one swap; return its final state's name."""

    def on_checkpoint(label: str, record: SwapRecord) -> None:
        if verbose:
            print(f"LABEL {label}", flush=True)
        if label == kill_at:
            _die()

    def on_progress(event: ProgressEvent) -> None:
        if kill_at == "reconcile" and event.kind is ProgressKind.RECONCILE:
            _die()

    request = full_request(timeouts=attrs.evolve(FAST, reconcile_grace=grace))
    credentials = Credentials(**DemoUser().credentials_kwargs)
    async with (
        KiiexClient(url, credentials=credentials, rate_limit=None, timeout=5.0) as client,
        SqliteCheckpointStore(store_path) as store,
    ):
        workflow = SwapWorkflow(client, store, on_checkpoint=on_checkpoint, on_progress=on_progress)
        result = await workflow.run(request, swap_id=swap_id)
    return result.state.value


def _status(raw: int) -> int:
    return -os.WTERMSIG(raw) if os.WIFSIGNALED(raw) else os.WEXITSTATUS(raw)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("store")
    parser.add_argument("swaps", nargs="+", help="SWAP_ID or SWAP_ID=KILL_AT")
    parser.add_argument("--grace", type=float, default=FAST.reconcile_grace)
    args = parser.parse_args(argv)
    swaps = [spec.partition("=")[::2] for spec in args.swaps]
    if len(swaps) == 1:
        swap_id, kill_at = swaps[0]
        state = asyncio.run(
            run_swap(args.url, args.store, swap_id, kill_at, args.grace, verbose=True)
        )
        print(f"STATE {state}", flush=True)
        return 0
    pids: dict[int, str] = {}
    for swap_id, kill_at in swaps:
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:  # the forked child: run one swap, never return into the loop above
            code = 1
            try:
                asyncio.run(
                    run_swap(args.url, args.store, swap_id, kill_at, args.grace, verbose=False)
                )
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                os._exit(code)
        pids[pid] = swap_id
    while pids:
        pid, raw = os.wait()
        print(f"EXIT {pids.pop(pid)} {_status(raw)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
