"""A swap killed (SIGKILL) right after the exchange accepted its order, then resumed.

::

    python examples/resume_after_crash.py

1. A simulated exchange starts in this process.
2. A child process runs a swap and kills itself the instant ``SendOrder`` has been applied
   by the exchange but before the answer was written to the checkpoint file: the worst
   moment, the one where a naive retry would buy twice.
3. This process reads the checkpoint (state ``ORDER_INTENT``), resumes the swap with a new
   client, and the workflow *reconciles*: it finds the order by its ``ClientOrderId``
   instead of sending another one.  The exchange's ledger shows exactly one order.

The child's lease names a dead process on this host, so the resume takes it over at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from kiiex_async import Credentials, KiiexClient
from kiiex_async.sim import DemoUser, SimConfig, Simulator
from kiiex_async.workflow import (
    SqliteCheckpointStore,
    SwapRecord,
    SwapRequest,
    SwapWorkflow,
    WithdrawSpec,
    client_order_id_for,
)

SWAP_ID = "payout-2024-0001"
REQUEST = SwapRequest(
    "USDT",
    "COPM",
    Decimal("250"),
    withdrawal=WithdrawSpec("Standard", {"ExternalAddress": "0xfeedbeef"}),
)


async def child(url: str, store_path: str) -> None:
    """Run the swap and die right after SendOrder was applied."""

    def crash(label: str, record: SwapRecord) -> None:
        if label == "sent:SendOrder":
            print("child: the exchange has the order; dying before checkpointing it", flush=True)
            os.kill(os.getpid(), getattr(signal, "SIGKILL", signal.SIGTERM))

    credentials = Credentials(**DemoUser().credentials_kwargs)
    async with (
        KiiexClient(url, credentials=credentials) as client,
        SqliteCheckpointStore(store_path) as store,
    ):
        await SwapWorkflow(client, store, on_checkpoint=crash).run(REQUEST, swap_id=SWAP_ID)


async def main() -> None:
    store_path = Path(tempfile.mkdtemp()) / "swaps.sqlite3"
    config = SimConfig(withdraw_step_seconds=0.2)
    async with Simulator(config) as sim:
        print(f"simulated KIIEX at {sim.url}; checkpoints in {store_path}")
        process = await asyncio.create_subprocess_exec(
            sys.executable, __file__, "--child", sim.url, str(store_path)
        )
        await process.wait()
        print(f"child exited with {process.returncode} (killed)")

        async with SqliteCheckpointStore(store_path) as store:
            record = await store.get(SWAP_ID)
            assert record is not None
            print(f"checkpoint: {record.state.value} (order id unknown to the checkpoint)")
            async with KiiexClient(sim.url, credentials=Credentials(**sim.credentials_kwargs)) as c:
                result = await SwapWorkflow(c, store, on_progress=print).resume(SWAP_ID)
        print()
        print(result.summary())
        cid = client_order_id_for(SWAP_ID)
        orders = [o for o in sim.exchange.orders.values() if o.client_order_id == cid]
        print(f"\nthe exchange holds {len(orders)} order(s) with ClientOrderId {cid}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        asyncio.run(child(sys.argv[2], sys.argv[3]))
    else:
        asyncio.run(main())
