"""Many `kiiex worker` processes on one PostgreSQL database and one simulator, SIGKILLed
and SIGSTOPped past their lease at random (seeded) moments and started again: every swap
ends, each with exactly one order and one ticket of each kind, balances exact, and the
store's write log shows no write from a fenced-off worker."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import IO

import anyio
import attrs
import pytest
from workflow_support import (
    FAST,
    assert_ledger,
    balances,
    full_request,
    make_client,
    sim_config,
    swap_orders,
)

from kiiex_async import cli
from kiiex_async.sim import DemoUser, Simulator
from kiiex_async.workflow import (
    PostgresCheckpointStore,
    SwapResult,
    SwapState,
    SwapWorkflow,
)

psycopg = pytest.importorskip("psycopg", reason="psycopg not installed (pip install '.[postgres]')")

pytestmark = pytest.mark.slow

TTL = 1.5
#: A worker is frozen this long: past its lease, within what reconciliation tolerates
#: (2/3 of the lease + the reconcile grace, see the README's "Running swaps on many
#: machines").
FREEZE = TTL + 0.8
#: Long enough for a successor to see an order a frozen worker sends when it wakes.
TIMEOUTS = attrs.evolve(
    FAST, reconcile_grace=2.0, step=30.0, deposit=30.0, order=30.0, withdrawal=30.0
)


def worker_env(tmp_path: Path) -> dict[str, str]:
    demo = DemoUser()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIIEX_")}
    env.update(
        KIIEX_API_KEY=demo.api_key,
        KIIEX_API_SECRET=demo.api_secret,
        KIIEX_USER_ID=str(demo.user_id),
        KIIEX_STATE_DIR=str(tmp_path),
    )
    return env


class Workers:
    """Worker subprocesses, each logging to its own file."""

    def __init__(self, sim: Simulator, dsn: str, tmp_path: Path) -> None:
        self.argv = [
            sys.executable, "-m", "kiiex_async", "worker", "--store", dsn, "--env", "staging",
            "--base-url", sim.url, "--concurrency", "6", "--lease-ttl", str(TTL),
            "--poll", "0.1",
        ]  # fmt: skip
        self.env = worker_env(tmp_path)
        self.tmp_path = tmp_path
        self.procs: list[asyncio.subprocess.Process] = []
        self.logs: list[IO[bytes]] = []

    async def spawn(self) -> asyncio.subprocess.Process:
        log = (self.tmp_path / f"worker-{len(self.logs)}.log").open("wb")
        self.logs.append(log)
        proc = await asyncio.create_subprocess_exec(
            *self.argv, stdout=log, stderr=log, env=self.env
        )
        self.procs.append(proc)
        return proc

    def text(self) -> str:
        for log in self.logs:
            if not log.closed:
                log.flush()
        return "".join(Path(log.name).read_text() for log in self.logs)

    async def close(self) -> None:
        for proc in self.procs:
            if proc.returncode is None:
                proc.send_signal(signal.SIGCONT)
                proc.kill()
                await proc.wait()
        for log in self.logs:
            log.close()


async def unfinished(dsn: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute("SELECT count(*) FROM kiiex_swaps WHERE NOT terminal")
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def until_finished(dsn: str) -> None:
    """Wait (at most 60 s) until every swap of the store is terminal."""
    with anyio.fail_after(60):
        while True:
            if not await unfinished(dsn):
                return
            await anyio.sleep(0.1)


async def write_log(dsn: str) -> dict[str, list[tuple[int, int]]]:
    """``swap_id -> [(revision, token), ...]`` in revision order."""
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cur = await conn.execute(
            "SELECT swap_id, revision, lease_token FROM kiiex_swap_writes ORDER BY 1, 2"
        )
        rows = await cur.fetchall()
    log: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for swap_id, revision, token in rows:
        log[swap_id].append((revision, token))
    return log


async def test_workers_killed_and_frozen_at_random_still_swap_exactly_once(
    postgres_dsn: str, tmp_path: Path
) -> None:
    """120 swaps, 3 workers, 14 seeded SIGKILLs/SIGSTOPs past the lease: all COMPLETED,
    one order and one ticket of each kind per swap, exact balances, every save in the
    write log in revision order under non-decreasing fencing tokens, and the workers
    exit 0 on SIGTERM."""
    rng = random.Random(14)
    count = 120
    async with Simulator(sim_config()) as sim:
        initial = balances(sim)
        async with make_client(sim) as client, PostgresCheckpointStore(postgres_dsn) as store:
            workflow = SwapWorkflow(client, store)
            request = full_request(amount=Decimal("20"), timeouts=TIMEOUTS)
            ids = [await workflow.submit(request) for _ in range(count)]
        workers = Workers(sim, postgres_dsn, tmp_path)
        try:
            pool = [await workers.spawn() for _ in range(3)]
            actions: list[str] = []
            with anyio.fail_after(150):
                while await unfinished(postgres_dsn):
                    await anyio.sleep(rng.uniform(0.3, 0.9))
                    if len(actions) >= 14:
                        continue
                    index = rng.randrange(len(pool))
                    if rng.random() < 0.5:
                        pool[index].kill()
                        await pool[index].wait()
                        pool[index] = await workers.spawn()
                        actions.append("kill")
                    else:
                        pool[index].send_signal(signal.SIGSTOP)
                        await anyio.sleep(FREEZE)
                        pool[index].send_signal(signal.SIGCONT)
                        actions.append("stop")
            for proc in pool:
                proc.send_signal(signal.SIGTERM)
            with anyio.fail_after(60):
                codes = [await proc.wait() for proc in pool]
            assert codes == [0, 0, 0], workers.text()[-3000:]
        finally:
            await workers.close()
        async with PostgresCheckpointStore(postgres_dsn) as store:
            records = await store.list()
        assert sorted(r.swap_id for r in records) == sorted(ids)
        assert {r.state for r in records} == {SwapState.COMPLETED}, [
            (r.swap_id, r.state, r.reason) for r in records if r.state is not SwapState.COMPLETED
        ]
        assert_ledger(sim, initial, [SwapResult.from_record(r) for r in records])
    log = await write_log(postgres_dsn)
    for record in records:
        writes = log[record.swap_id]
        assert [revision for revision, _ in writes] == list(range(1, record.revision + 1))
        tokens = [token for _, token in writes]
        assert tokens == sorted(tokens), (record.swap_id, writes)
    assert set(actions) == {"kill", "stop"}, actions
    # The freezes did fence workers off (their later writes were refused, see above).
    assert "fenced off" in workers.text()


async def test_cli_submit_then_worker_then_swaps_show_on_postgres(
    postgres_dsn: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`kiiex submit --store DSN` queues a swap bound to the exchange; a `kiiex worker`
    runs it; `kiiex swaps`, `show` and `resume --store DSN` read it back; SIGTERM stops
    the worker with exit 0; submit without --store is a usage error."""
    for name, value in worker_env(tmp_path).items():
        if name.startswith("KIIEX_"):
            monkeypatch.setenv(name, value)
    async with Simulator(sim_config()) as sim:
        base = ["--store", postgres_dsn, "--env", "staging", "--base-url", sim.url, "-q"]
        code = await asyncio.to_thread(
            cli.run, ["submit", "USDT", "COPM", "15", *base, "--json", "--swap-id", "queued-1"]
        )
        assert code == cli.EXIT_OK
        assert '"queued": true' in capsys.readouterr().out
        assert swap_orders(sim, "queued-1") == []
        workers = Workers(sim, postgres_dsn, tmp_path)
        try:
            proc = await workers.spawn()
            await until_finished(postgres_dsn)
            proc.send_signal(signal.SIGTERM)
            assert await proc.wait() == 0
        finally:
            await workers.close()
        assert "swap queued-1 COMPLETED" in workers.text()
        code = await asyncio.to_thread(cli.run, ["show", "queued-1", *base, "--json"])
        assert code == cli.EXIT_OK
        assert '"state": "COMPLETED"' in capsys.readouterr().out
        code = await asyncio.to_thread(cli.run, ["swaps", *base, "--json"])
        assert '"swap_id": "queued-1"' in capsys.readouterr().out
        code = await asyncio.to_thread(cli.run, ["resume", "queued-1", *base, "--json"])
        assert code == cli.EXIT_OK
        assert '"state": "COMPLETED"' in capsys.readouterr().out
        assert len(swap_orders(sim, "queued-1")) == 1
    code = await asyncio.to_thread(cli.run, ["submit", "USDT", "COPM", "15", "--env", "sim", "-q"])
    assert code == cli.EXIT_USAGE
    assert "needs --store" in capsys.readouterr().err
