"""Command line of the benchmark harness: ``python -m bench [--quick] [--out FILE] [--only NAME]``.

Sections (``--only`` takes one or more, comma-separated):

``decode``    _wire.loads + structure_list vs json.loads on large payloads (no network)
``client``    per-call overhead and concurrency of KiiexClient vs plain aiohttp
``peer``      ccxt's async ndax client vs KiiexClient (skipped if ccxt is missing)
``sim``       requests per second the simulator serves
``workflow``  SwapWorkflow throughput and the share of time spent checkpointing
``store``     PostgreSQL vs SQLite store, 1/2/4 worker processes, lease takeover
``rates``     the RatePoller figures from bench/bench_rates.py
``stream``    /WSGateway tick latency (Stream vs aiohttp vs ccxt.pro) and OrderBook updates/s
``profile``   pyinstrument profile of get_level1 (only when named, or with --profile)
``instructions``  instructions per get_level1, client vs aiohttp, counted by callgrind
              (only when named; needs valgrind; a few minutes)

Nothing is asserted: figures are printed as a table, each ratio as a ``ratio <name>:
<value>`` line with PASS/MISS against its target for information, and written as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._common import Op, Report

__all__ = ["SECTIONS", "main"]

SECTIONS = ("decode", "client", "peer", "sim", "workflow", "store", "rates", "stream")
OPTIONAL = ("profile", "instructions")


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmarks of kiiex_async against a simulator in its own process.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer calls and repetitions (< 2 min, CI smoke)"
    )
    parser.add_argument("--out", type=Path, help="write every figure and the environment as JSON")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="NAME",
        help=f"run only these sections (repeatable or comma-separated): "
        f"{', '.join(SECTIONS + OPTIONAL)}",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="also profile get_level1 with pyinstrument (printed after the table)",
    )
    parser.add_argument(
        "--profile-calls", type=int, default=3000, help="calls profiled (default 3000)"
    )
    parser.add_argument(
        "--profile-concurrency",
        type=int,
        default=1,
        help="calls in flight while profiling (default 1: sequential)",
    )
    parser.add_argument("--profile-html", type=Path, help="also write the profile as HTML here")
    args = parser.parse_args(argv)
    only = [name.strip() for item in args.only for name in item.split(",") if name.strip()]
    unknown = sorted(set(only) - set(SECTIONS + OPTIONAL))
    if unknown:
        parser.error(f"unknown section(s): {', '.join(unknown)}")
    chosen = [s for s in SECTIONS + OPTIONAL if s in only] if only else list(SECTIONS)
    if args.profile and "profile" not in chosen:
        chosen.append("profile")
    args.sections = chosen
    return args


async def _run(args: argparse.Namespace) -> int:
    from ._common import Report, start_simulator, timed

    report = Report(mode="quick" if args.quick else "full")
    failures: list[str] = []
    sections: list[str] = args.sections
    quick: bool = args.quick
    profile_text = ""

    async def guarded(name: str, coro_fn: Callable[[], Awaitable[None]]) -> None:
        # One section's failure is reported and the others still run.
        try:
            with timed(report, name):
                await coro_fn()
        except Exception as exc:
            failures.append(name)
            report.skip(name, f"FAILED: {type(exc).__name__}: {exc}".splitlines()[0][:300])
            traceback.print_exc(file=sys.stderr)

    print(f"kiiex_async bench ({report.mode}): sections {', '.join(sections)}", flush=True)

    if "decode" in sections:

        async def decode() -> None:
            from . import bench_decode

            bench_decode.run(report, quick=quick)

        await guarded("decode", decode)

    needs_sim = {"client", "peer", "sim", "profile"} & set(sections)
    if needs_sim:
        try:
            with timed(report, "sim_start"):
                sim_cm = start_simulator()
                sim = await sim_cm.__aenter__()
        except Exception as exc:
            for name in sorted(needs_sim):
                report.skip(name, f"simulator did not start: {exc}".splitlines()[0][:300])
                failures.append(name)
        else:
            try:
                print(f"simulator process pid {sim.proc.pid} on {sim.url}", flush=True)
                if "client" in sections:

                    async def client() -> None:
                        from . import bench_client

                        await bench_client.run(report, sim.url, quick=quick)

                    await guarded("client", client)
                if "peer" in sections:

                    async def peer() -> None:
                        from . import bench_peer

                        await bench_peer.run(report, sim.url, sim.url_upper, quick=quick)

                    await guarded("peer", peer)
                if "sim" in sections:

                    async def simcap() -> None:
                        from . import bench_client

                        await bench_client.run_capacity(report, sim.url, quick=quick)

                    await guarded("sim", simcap)
                if "profile" in sections:

                    async def profile() -> None:
                        nonlocal profile_text
                        from .bench_client import profile_client

                        try:
                            import pyinstrument  # noqa: F401
                        except ImportError:
                            report.skip("profile", "pyinstrument is not installed (bench extra)")
                            return

                        html = str(args.profile_html) if args.profile_html else None
                        profile_text = await profile_client(
                            sim.url,
                            n=args.profile_calls,
                            concurrency=args.profile_concurrency,
                            html=html,
                        )

                    await guarded("profile", profile)
            finally:
                await sim_cm.__aexit__(None, None, None)

    if "workflow" in sections:

        async def workflow() -> None:
            from . import bench_workflow

            await bench_workflow.run(report, quick=quick)

        await guarded("workflow", workflow)

    if "store" in sections:

        async def store() -> None:
            from . import bench_store

            await bench_store.run(report, quick=quick)

        await guarded("store", store)

    if "rates" in sections:

        async def rates() -> None:
            await _rates(report, quick=quick)

        await guarded("rates", rates)

    if "stream" in sections:

        async def stream() -> None:
            from . import bench_stream

            await bench_stream.run(report, quick=quick)

        await guarded("stream", stream)

    if "instructions" in sections:

        async def instructions() -> None:
            from . import bench_instructions

            await bench_instructions.run(report, quick=quick)

        await guarded("instructions", instructions)

    if report.figures or report.scalars or report.ratios or report.skipped:
        print()
        print(report.table())
    if profile_text:
        print()
        print(profile_text)
    if args.out:
        report.write(args.out)
        print(f"\nwrote {args.out}")
    return 1 if failures else 0


async def _rates(report: Report, *, quick: bool) -> None:
    """Figure 7: whatever ``bench/bench_rates.py``'s ``run(quick)`` measures, as scalars."""
    try:
        from . import bench_rates  # type: ignore[attr-defined,unused-ignore]
    except ModuleNotFoundError as exc:
        if exc.name not in ("bench.bench_rates", "bench_rates"):
            raise
        report.skip("rates", "bench/bench_rates.py is not present")
        return
    figures = await bench_rates.run(quick)
    for name, value in figures.items():
        target = next((t for prefix, t in _RATES_TARGETS.items() if name.startswith(prefix)), None)
        if target is not None:
            report.ratio(name, float(value), target[0], target[1], quiet=True)
        elif "_vs_" in name or name.endswith("_intervals"):
            report.ratio(name, float(value), quiet=True)
        else:
            report.scalar(f"rates.{name}", float(value))


# Targets of the RatePoller figures (bench_rates.py prints them; repeated in the summary).
_RATES_TARGETS: dict[str, tuple[float, Op]] = {
    "rates_throughput_vs_aiohttp_n": (0.85, ">="),
    "rates_freshness_p99_intervals": (1.2, "<="),
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen sections; exit status 1 if a section crashed (never for a missed target)."""
    args = _parse(argv)
    t0 = time.perf_counter()
    status = asyncio.run(_run(args))
    print(f"total {time.perf_counter() - t0:.1f}s", flush=True)
    return status


if __name__ == "__main__":
    # `python bench/run.py`: make the repository root importable so `bench` is a package.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.run import main as _main

    sys.exit(_main())
