"""Swap throughput of ``SwapWorkflow`` with ``SqliteCheckpointStore``, and what checkpoints cost.

Many swaps (USDT -> COPM, spend a small fixed amount, no deposit, no withdrawal) run at
once through one client and one workflow against a fresh simulator process.  The store is
wrapped in :class:`TimingStore`, a proxy that times every call, so the share of time spent
checkpointing is measured rather than guessed:

* ``checkpoint_busy_share``: the part of the wall time during which at least one store call
  was in flight (the union of their intervals / wall time);
* ``checkpoint_share_of_swap_time``: the sum of store-call durations over the sum of swap
  durations (how much of an average swap's life is spent waiting for its checkpoints).

The client's rate limit is off (the figure is the SDK's, not the rate budget's); step
timeouts and poll intervals are the defaults users get.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from ._common import Report, Stats, start_simulator

__all__ = ["TimingStore", "run"]

AMOUNT = Decimal("5")
SIM_TIME_SPEED = 1.0


class TimingStore:
    """A ``CheckpointStore`` proxy recording the start and end of every call it forwards."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.calls: dict[str, list[float]] = {}
        self.intervals: list[tuple[float, float]] = []

    async def _timed(self, name: str, awaitable: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return await awaitable
        finally:
            t1 = time.perf_counter()
            self.calls.setdefault(name, []).append(t1 - t0)
            self.intervals.append((t0, t1))

    def reset(self) -> None:
        """Forget what was recorded (after the warm-up)."""
        self.calls.clear()
        self.intervals.clear()

    async def create(self, record: Any) -> None:
        """Timed ``create``."""
        await self._timed("create", self._inner.create(record))

    async def get(self, swap_id: str) -> Any:
        """Timed ``get``."""
        return await self._timed("get", self._inner.get(swap_id))

    async def list(self) -> Any:
        """Timed ``list``."""
        return await self._timed("list", self._inner.list())

    async def acquire(self, swap_id: str, owner: Any, *, ttl: float) -> Any:
        """Timed ``acquire``."""
        return await self._timed("acquire", self._inner.acquire(swap_id, owner, ttl=ttl))

    async def renew(self, lease: Any, *, ttl: float) -> Any:
        """Timed ``renew``."""
        return await self._timed("renew", self._inner.renew(lease, ttl=ttl))

    async def save(self, record: Any, lease: Any, *, ttl: float) -> Any:
        """Timed ``save``."""
        return await self._timed("save", self._inner.save(record, lease, ttl=ttl))

    async def release(self, lease: Any) -> None:
        """Timed ``release``."""
        await self._timed("release", self._inner.release(lease))

    async def aclose(self) -> None:
        """Close the wrapped store (not timed)."""
        await self._inner.aclose()

    def busy_seconds(self, start: float, end: float) -> float:
        """Length of the union of the recorded intervals, clipped to ``[start, end]``."""
        total = 0.0
        cur_s = cur_e = None
        for s, e in sorted(self.intervals):
            s, e = max(s, start), min(e, end)
            if e <= s:
                continue
            if cur_e is None or s > cur_e:
                if cur_s is not None and cur_e is not None:
                    total += cur_e - cur_s
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        if cur_s is not None and cur_e is not None:
            total += cur_e - cur_s
        return total


async def _batch(workflow: Any, request: Any, count: int) -> tuple[float, list[float], list[Any]]:
    """Run ``count`` swaps at once; (wall seconds, per-swap seconds, results)."""
    durations: list[float] = []

    async def one() -> Any:
        t0 = time.perf_counter()
        try:
            return await workflow.run(request)
        finally:
            durations.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    return time.perf_counter() - t0, durations, list(results)


async def run(report: Report, *, quick: bool) -> None:
    """Figure 5: swaps per second and the share of time spent checkpointing."""
    from kiiex_async import Credentials
    from kiiex_async.client import KiiexClient
    from kiiex_async.sim import SimConfig
    from kiiex_async.workflow import SqliteCheckpointStore, SwapRequest, SwapState, SwapWorkflow

    count, reps, warmup = (20, 2, 3) if quick else (200, 3, 10)
    request = SwapRequest("USDT", "COPM", AMOUNT)
    demo = SimConfig().users[0]
    credentials = Credentials(
        api_key=demo.api_key, api_secret=demo.api_secret, user_id=str(demo.user_id)
    )
    wall_s: list[float] = []
    rate_s: list[float] = []
    busy_s: list[float] = []
    share_s: list[float] = []
    p50_s: list[float] = []
    per_call: dict[str, list[float]] = {}
    saves_per_swap: list[float] = []
    failures: dict[str, int] = {}
    async with (
        start_simulator(time_speed=SIM_TIME_SPEED) as sim,
        KiiexClient(sim.url, credentials=credentials, rate_limit=None, pool_size=128) as client,
    ):
        with tempfile.TemporaryDirectory(prefix="kiiex-bench-") as tmp:
            for rep in range(-1, reps):
                path = Path(tmp) / f"swaps-{rep + 1}.sqlite3"
                async with SqliteCheckpointStore(path) as inner:
                    store = TimingStore(inner)
                    workflow = SwapWorkflow(client, store)
                    n = warmup if rep < 0 else count
                    t0 = time.perf_counter()
                    wall, durations, results = await _batch(workflow, request, n)
                    t1 = t0 + wall
                    bad = [r for r in results if getattr(r, "state", None) != SwapState.COMPLETED]
                    for r in bad:
                        key = (
                            f"{type(r).__name__}: {r}"[:120]
                            if isinstance(r, BaseException)
                            else f"{r.state.name}: {r.reason}"[:120]
                        )
                        failures[key] = failures.get(key, 0) + 1
                    if rep < 0:
                        if bad:
                            raise RuntimeError(f"warm-up swaps did not complete: {failures}")
                        continue
                    wall_s.append(wall)
                    rate_s.append(n / wall)
                    busy_s.append(store.busy_seconds(t0, t1) / wall)
                    spent = sum(sum(v) for v in store.calls.values())
                    share_s.append(spent / sum(durations))
                    p50_s.append(statistics.median(durations))
                    saves_per_swap.append(len(store.calls.get("save", [])) / n)
                    for name, values in store.calls.items():
                        per_call.setdefault(name, []).extend(values)
    report.add("workflow.swaps_per_s", Stats("swaps/s", tuple(rate_s)))
    report.add("workflow.batch_wall_s", Stats("s", tuple(wall_s)))
    report.add("workflow.swap_p50_s", Stats("s", tuple(p50_s)))
    report.add("workflow.checkpoint_busy_share", Stats("fraction", tuple(busy_s)))
    report.add("workflow.checkpoint_share_of_swap_time", Stats("fraction", tuple(share_s)))
    for name, values in sorted(per_call.items()):
        report.add(f"workflow.store.{name}_ms", Stats("ms", tuple(v * 1e3 for v in values)))
    report.scalar("workflow.saves_per_swap", statistics.mean(saves_per_swap))
    report.scalar("workflow.swaps_per_batch", float(count))
    report.scalar("workflow.failed_swaps", float(sum(failures.values())))
    report.note(
        "workflow",
        f"{count} concurrent swaps x {reps} batches (+{warmup} warm-up), "
        f"SwapRequest('USDT', 'COPM', {AMOUNT}) spend, no deposit/withdrawal, "
        "SqliteCheckpointStore (WAL, synchronous=FULL) in a temp dir, rate limit off",
    )
    if failures:
        report.note("workflow_failures", repr(failures)[:1000])
