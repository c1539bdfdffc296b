"""Shared pieces of the benchmark harness: timing, statistics, the report, the simulator process.

Nothing here asserts a speed: figures are measured, printed and written to JSON; targets are
shown as PASS/MISS for information only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "Op",
    "Ratio",
    "Report",
    "SimProcess",
    "Stats",
    "free_port",
    "machine_info",
    "run_concurrently",
    "start_simulator",
    "timed",
    "versions",
]

Op = Literal["<=", ">="]


@dataclass(frozen=True)
class Stats:
    """Median and spread of repeated measurements of one figure."""

    unit: str
    samples: tuple[float, ...]

    @property
    def median(self) -> float:
        """The median sample (the figure the report quotes)."""
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        """The smallest sample."""
        return min(self.samples)

    @property
    def max(self) -> float:
        """The largest sample."""
        return max(self.samples)

    @property
    def iqr(self) -> float:
        """Interquartile range (0 with fewer than 4 samples, where it means nothing)."""
        if len(self.samples) < 4:
            return 0.0
        q = statistics.quantiles(self.samples, n=4)
        return q[2] - q[0]

    def as_dict(self) -> dict[str, Any]:
        """JSON form: every statistic and the raw samples."""
        return {
            "unit": self.unit,
            "median": self.median,
            "min": self.min,
            "max": self.max,
            "iqr": self.iqr,
            "n": len(self.samples),
            "samples": list(self.samples),
        }


@dataclass(frozen=True)
class Ratio:
    """A headline ratio and the target it is compared with (for information only)."""

    name: str
    value: float
    target: float | None = None
    op: Op = "<="
    note: str = ""

    @property
    def verdict(self) -> str:
        """``PASS``/``MISS`` against the target, or ``info`` when there is none."""
        if self.target is None:
            return "info"
        ok = self.value <= self.target if self.op == "<=" else self.value >= self.target
        return "PASS" if ok else "MISS"

    def line(self) -> str:
        """The machine-readable line ``ratio <name>: <value>`` plus the verdict."""
        tail = (
            f"  [{self.verdict} target {self.op} {self.target:g}]"
            if self.target is not None
            else ""
        )
        note = f"  ({self.note})" if self.note else ""
        value = f"{self.value:.3f}" if abs(self.value) < 100 else f"{self.value:.1f}"
        return f"ratio {self.name}: {value}{tail}{note}"


@dataclass
class Report:
    """Everything one run measured, skipped or learned; printed as a table and dumped as JSON."""

    mode: str
    figures: dict[str, Stats] = field(default_factory=dict)
    scalars: dict[str, float] = field(default_factory=dict)
    ratios: list[Ratio] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)

    def add(self, name: str, stats: Stats) -> Stats:
        """Record a measured figure and return it."""
        self.figures[name] = stats
        return stats

    def scalar(self, name: str, value: float) -> None:
        """Record a single figure (one measurement, or one supplied by another module)."""
        self.scalars[name] = value

    def ratio(
        self,
        name: str,
        value: float,
        target: float | None = None,
        op: Op = "<=",
        note: str = "",
        *,
        quiet: bool = False,
    ) -> Ratio:
        """Record a headline ratio and print its line at once (so partial runs still show it).

        ``quiet`` records without printing (for figures another module already printed).
        """
        r = Ratio(name, value, target, op, note)
        self.ratios.append(r)
        if not quiet:
            print(r.line(), flush=True)
        return r

    def skip(self, section: str, reason: str) -> None:
        """Record that a section was not measured, and why."""
        self.skipped[section] = reason
        print(f"skipped {section}: {reason}", flush=True)

    def note(self, key: str, text: str) -> None:
        """Attach a free-text fact (which call the peer uses, payload sizes, ...)."""
        self.notes[key] = text

    def table(self) -> str:
        """The human-readable summary: every figure, then the ratios, then what was skipped."""
        rows = [("figure", "median", "min", "max", "IQR", "n", "unit")]
        for name, s in self.figures.items():
            rows.append(
                (
                    name,
                    _fmt(s.median),
                    _fmt(s.min),
                    _fmt(s.max),
                    _fmt(s.iqr),
                    str(len(s.samples)),
                    s.unit,
                )
            )
        for name, v in self.scalars.items():
            rows.append((name, _fmt(v), "", "", "", "1", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = []
        for i, r in enumerate(rows):
            cells = [r[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)
            ]
            lines.append("  ".join(cells).rstrip())
            if i == 0:
                lines.append("  ".join("-" * w for w in widths))
        lines.append("")
        lines.extend(r.line() for r in self.ratios)
        for section, reason in self.skipped.items():
            lines.append(f"skipped {section}: {reason}")
        return "\n".join(lines)

    def as_dict(self) -> dict[str, Any]:
        """JSON form with the environment (versions, machine) attached."""
        return {
            "mode": self.mode,
            "figures": {k: v.as_dict() for k, v in self.figures.items()},
            "scalars": dict(self.scalars),
            "ratios": {
                r.name: {
                    "value": r.value,
                    "target": r.target,
                    "op": r.op,
                    "verdict": r.verdict,
                    "note": r.note,
                }
                for r in self.ratios
            },
            "skipped": dict(self.skipped),
            "notes": dict(self.notes),
            "section_seconds": dict(self.durations),
            "versions": versions(),
            "machine": machine_info(),
        }

    def write(self, path: Path) -> None:
        """Write the JSON report to ``path``."""
        path.write_text(json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n")


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 0.01:
        return f"{v:.3f}"
    return f"{v:.3g}"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Versions of Python and of the libraries whose speed the figures depend on."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for dist in ("kiiex_async", "aiohttp", "ccxt", "cattrs", "attrs", "aiolimiter", "stamina"):
        out[dist] = _version(dist)
    return out


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_info() -> dict[str, Any]:
    """The machine the figures were taken on: CPU count and model, OS, Python build."""
    return {
        "cpu_count": os.cpu_count(),
        "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": sys.version.replace("\n", " "),
        "python_implementation": platform.python_implementation(),
        "event_loop": "asyncio (default selector loop)",
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run_concurrently(
    call: Callable[[], Awaitable[object]], total: int, concurrency: int
) -> float:
    """Make ``total`` calls with at most ``concurrency`` in flight; return the elapsed seconds.

    ``concurrency`` workers pull from one shared counter, so the load stays at exactly that
    many requests in flight until the tail (cheaper and steadier than a semaphore per call).
    """
    remaining = total

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await call()

    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        for _ in range(min(concurrency, total)):
            tg.create_task(worker())
    return time.perf_counter() - t0


# The child process: the simulator's standalone server (blocking; stops on SIGTERM).  Its
# banner goes to the log file, never to the harness's stdout.
_CHILD = r"""
import json, sys
from kiiex_async.sim import SimConfig, parse_fault_spec, serve
port, seed, speed = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
extra = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
faults = [parse_fault_spec(spec) for spec in extra.pop("faults", [])]
config = SimConfig(seed=seed, time_speed=speed, **extra)
serve("127.0.0.1", port, config=config, faults=faults)
"""


@dataclass
class SimProcess:
    """A simulator running in its own process (so its CPU does not count as the client's)."""

    proc: asyncio.subprocess.Process
    port: int

    @property
    def root(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """Base URL of the AlphaPoint API, lower-case ``/ap`` (what ``KiiexClient`` takes)."""
        return f"{self.root}/ap"

    @property
    def url_upper(self) -> str:
        """Base URL with capital ``/AP`` (what ccxt's ndax uses)."""
        return f"{self.root}/AP"


async def _wait_for_ping(url: str, proc: asyncio.subprocess.Process, seconds: float) -> None:
    import aiohttp

    deadline = time.monotonic() + seconds
    last: BaseException | None = None
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            if proc.returncode is not None:
                raise RuntimeError(f"simulator process exited with code {proc.returncode}")
            try:
                async with session.post(f"{url}/Ping", json={}) as resp:
                    if resp.status == 200:
                        await resp.read()
                        return
            except (aiohttp.ClientError, OSError) as exc:
                last = exc
            await asyncio.sleep(0.05)
    raise RuntimeError(f"simulator did not answer Ping within {seconds:.0f}s (last error: {last})")


async def _stop(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None:
        proc.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), 5)
        except TimeoutError:
            proc.kill()
            await proc.wait()


@contextlib.asynccontextmanager
async def start_simulator(
    *,
    seed: int = 1,
    time_speed: float = 1.0,
    startup_seconds: float = 30.0,
    faults: Sequence[str] = (),
    **config: float,
) -> AsyncIterator[SimProcess]:
    """Start ``kiiex_async.sim.serve`` in a subprocess on a free port; stop it on exit.

    ``time_speed`` > 1 makes the simulated clock (ticket status schedules) run faster;
    ``faults`` are ``kiiex sim --fault`` specs (``*:latency:delay=0.02``); other keyword
    arguments are ``SimConfig`` fields (numbers).
    """
    port = free_port()
    # A file, not a pipe: a chatty server must never block on a full pipe mid-benchmark.
    with tempfile.TemporaryFile() as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            _CHILD,
            str(port),
            str(seed),
            str(time_speed),
            json.dumps({**config, "faults": list(faults)}),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
        )
        try:
            try:
                await _wait_for_ping(f"http://127.0.0.1:{port}/ap", proc, startup_seconds)
            except RuntimeError as exc:
                await _stop(proc)
                log.seek(0)
                err = log.read().decode(errors="replace")
                raise RuntimeError(f"{exc}\n{err[-2000:]}") from None
            yield SimProcess(proc, port)
        finally:
            await _stop(proc)


@contextlib.contextmanager
def timed(report: Report, section: str) -> Iterator[None]:
    """Record how long a section of the run took (wall time, for the budget of ``--quick``)."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        report.durations[section] = time.perf_counter() - t0
