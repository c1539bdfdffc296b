"""Swap stablecoins through KIIEX's nine steps, with live progress and a checkpoint file.

Runs against the embedded simulator (no account, no network)::

    python examples/swap.py                        # spend 100 USDT for COPM
    python examples/swap.py COPM USDC 400000       # buy USDC with COPM
    python examples/swap.py USDT COPM 400000 --receive --max-slippage 0.005
    python examples/swap.py USDT COPM 100 --deposit 50 --withdraw-to 0xfeedbeef

Against a real KIIEX account, build the client with ``KiiexClient.staging(credentials=
Credentials.from_env())`` instead; everything else stays the same.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from decimal import Decimal
from pathlib import Path

from kiiex_async import Credentials, KiiexClient
from kiiex_async.sim import SimConfig, Simulator
from kiiex_async.workflow import (
    AmountSide,
    DepositSpec,
    ProgressKind,
    SqliteCheckpointStore,
    SwapRequest,
    SwapWorkflow,
    WithdrawSpec,
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("from_asset", nargs="?", default="USDT")
    parser.add_argument("to_asset", nargs="?", default="COPM")
    parser.add_argument("amount", nargs="?", default="100", type=Decimal)
    parser.add_argument("--receive", action="store_true", help="the amount is what to receive")
    parser.add_argument("--max-slippage", type=Decimal, help="fraction, e.g. 0.005 = 0.5%%")
    parser.add_argument("--deposit", type=Decimal, help="deposit this much of FROM first")
    parser.add_argument("--withdraw-to", help="withdraw what was received to this address")
    parser.add_argument("--store", type=Path, help="checkpoint file (default: a temp file)")
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    request = SwapRequest(
        args.from_asset,
        args.to_asset,
        args.amount,
        amount_side=AmountSide.RECEIVE if args.receive else AmountSide.SPEND,
        max_slippage=args.max_slippage,
        deposit=DepositSpec(args.deposit) if args.deposit else None,
        withdrawal=(
            WithdrawSpec("Standard", {"ExternalAddress": args.withdraw_to})
            if args.withdraw_to
            else None
        ),
    )
    store_path = args.store or Path(tempfile.mkdtemp()) / "swaps.sqlite3"
    # Tickets settle within a couple of simulated seconds; speed the demo clock up.
    config = SimConfig(deposit_step_seconds=0.2, withdraw_step_seconds=0.2)
    async with (
        Simulator(config) as sim,
        KiiexClient(sim.url, credentials=Credentials(**sim.credentials_kwargs)) as client,
        SqliteCheckpointStore(store_path) as store,
    ):
        print(f"simulated KIIEX at {sim.url}; checkpoints in {store_path}")
        workflow = SwapWorkflow(client, store)
        async with workflow.stream(request) as run:
            async for event in run:
                if event.kind is not ProgressKind.FINISHED:
                    print(event)
        result = run.result
        print()
        print(result.summary())
        print()
        for entry in result.timeline:
            print(f"  {entry.at:%H:%M:%S.%f} {entry.state.value:<20} {entry.note}")


if __name__ == "__main__":
    asyncio.run(main())
