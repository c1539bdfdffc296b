"""How many GetLevel1 requests per second the simulator serves on one core.

The simulator runs standalone in its own process (``python -m kiiex_async.sim``), pinned
to one CPU where the OS allows it; plain aiohttp clients in other processes (pinned to the
other CPUs) hammer ``POST /ap/GetLevel1`` over keep-alive connections for a fixed time.
Prints ``sim_level1_rps: N`` (observed throughput, which the clients may bound when CPUs
are few) and, on Linux, the server's requests per CPU-second (its capacity on one core).

    python bench/bench_sim.py [--seconds 5] [--clients N] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import re
import subprocess
import sys
import time

import aiohttp

_BODY = b'{"OMSId":1,"InstrumentId":1}'


async def _hammer(url: str, seconds: float, concurrency: int) -> tuple[int, float]:
    count = 0
    started = time.monotonic()
    deadline = started + seconds
    connector = aiohttp.TCPConnector(limit=concurrency)
    headers = {"Content-Type": "application/json"}
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal count
            while time.monotonic() < deadline:
                async with session.post(url, data=_BODY, headers=headers) as resp:
                    await resp.read()
                    if resp.status != 200:
                        raise RuntimeError(f"HTTP {resp.status}")
                count += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return count, time.monotonic() - started


def _client(url: str, seconds: float, concurrency: int, cpu: int | None, out: object) -> None:
    if cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {cpu})
    out.put(asyncio.run(_hammer(url, seconds, concurrency)))  # type: ignore[attr-defined]


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process (Linux ``/proc``), else ``None``."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    """Run the benchmark and print ``sim_level1_rps: N``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=0, help="client processes (0 = auto)")
    parser.add_argument("--concurrency", type=int, default=32, help="connections per client")
    parser.add_argument("--warmup", type=float, default=1.0)
    args = parser.parse_args()

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    server_cpu = cpus[0] if cpus else None
    client_cpus: list[int | None] = [*cpus[1:]] or [None]
    clients = args.clients or max(1, len(client_cpus))

    server = subprocess.Popen(
        [sys.executable, "-m", "kiiex_async.sim", "--port", "0", "--seed", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        if server_cpu is not None and hasattr(os, "sched_setaffinity"):
            os.sched_setaffinity(server.pid, {server_cpu})
        assert server.stdout is not None
        line = server.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        if not match:
            raise SystemExit(f"simulator did not start: {line!r}")
        url = match.group(1) + "/GetLevel1"

        asyncio.run(_hammer(url, args.warmup, 8))
        ctx = multiprocessing.get_context("spawn")
        queue = ctx.Queue()
        procs = [
            ctx.Process(
                target=_client,
                args=(
                    url,
                    args.seconds,
                    args.concurrency,
                    client_cpus[i % len(client_cpus)],
                    queue,
                ),
            )
            for i in range(clients)
        ]
        cpu_before = _cpu_seconds(server.pid)
        wall_before = time.monotonic()
        for proc in procs:
            proc.start()
        results = [queue.get() for _ in procs]
        for proc in procs:
            proc.join()
        cpu_after = _cpu_seconds(server.pid)
        wall = time.monotonic() - wall_before
    finally:
        server.terminate()
        server.wait(timeout=10)
    rps = sum(count / elapsed for count, elapsed in results)
    print(f"clients: {clients} process(es) x {args.concurrency} connections, {args.seconds:g} s")
    if cpu_before is not None and cpu_after is not None:
        busy = cpu_after - cpu_before
        total = sum(count for count, _ in results)
        print(f"server CPU use: {busy / wall:.0%} of one core over {wall:.1f} s")
        if busy > 0:
            print(f"requests per server CPU-second: {total / busy:.0f}")
    print(f"sim_level1_rps: {rps:.0f}")


if __name__ == "__main__":
    main()
