"""Instructions per ``get_level1`` call, client vs plain aiohttp, counted by callgrind.

CPU time on a shared 2-vCPU machine moves by 10-20 % between back-to-back runs; the number
of instructions a call executes does not (valgrind counts them, whatever else the machine
does).  Each side runs twice under ``valgrind --tool=callgrind`` in a child process, making
``N`` and then ``3N`` calls at concurrency 16 against a simulator in its own process (not
under valgrind); the difference over ``2N`` calls is the cost of one call, start-up and
imports cancelled out.  ``PYTHONHASHSEED`` is fixed so that both runs hash alike.

Under valgrind the client runs ~50x slower while the simulator does not, so the event
loop sees more ready events per turn than at full speed; both sides share that bias.
Run only when named (``--only instructions``): it needs valgrind and takes a few minutes.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import sys
import tempfile
from contextlib import AsyncExitStack
from pathlib import Path

from ._common import Report, run_concurrently, start_simulator

__all__ = ["run"]

CONCURRENCY = 16
WARMUP = 500
_PROJECT = Path(__file__).resolve().parent.parent  # where ``-m bench...`` imports from


async def _calls(side: str, url: str, n: int) -> None:
    """The child's work: ``n`` calls of ``side`` ("client" or "aiohttp") after a warm-up."""
    from .bench_client import FloorClient, open_client

    async with AsyncExitStack() as stack:
        if side == "client":
            client = await open_client(stack, url)

            async def call() -> object:
                return await client.get_level1(1)

        else:
            floor = FloorClient(url)
            stack.push_async_callback(floor.aclose)
            call = floor.get_level1
        await run_concurrently(call, WARMUP, CONCURRENCY)
        await run_concurrently(call, n, CONCURRENCY)


async def _count(side: str, url: str, n: int, workdir: Path) -> int:
    """Instructions callgrind counted in a child making ``n`` calls of ``side``."""
    out = workdir / f"callgrind.{side}.{n}.out"
    proc = await asyncio.create_subprocess_exec(
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "bench.bench_instructions",
        side,
        url,
        str(n),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "PYTHONHASHSEED": "0"},
        cwd=_PROJECT,
    )
    text = (await proc.communicate())[0].decode(errors="replace")
    found = re.search(r"Collected\s*:\s*([0-9]+)", text)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"valgrind run failed ({proc.returncode}): {text[-500:]}")
    return int(found.group(1))


async def run(report: Report, *, quick: bool) -> None:
    """Instructions per call of each side and their ratio (``instructions_client_vs_aiohttp``)."""
    if shutil.which("valgrind") is None:
        report.skip("instructions", "valgrind is not installed")
        return
    n = 500 if quick else 1000
    per_call: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        async with start_simulator() as sim:
            for side in ("aiohttp", "client"):
                few = await _count(side, sim.url, n, Path(tmp))
                many = await _count(side, sim.url, 3 * n, Path(tmp))
                per_call[side] = (many - few) / (2 * n)
                report.scalar(f"instructions.{side}.per_call", per_call[side])
    # Information: what bounds throughput when the client process is the bottleneck.
    report.ratio("instructions_client_vs_aiohttp", per_call["client"] / per_call["aiohttp"])


if __name__ == "__main__":
    asyncio.run(_calls(sys.argv[1], sys.argv[2], int(sys.argv[3])))
