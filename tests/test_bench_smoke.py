"""The benchmark harness's pure parts: output format, option parsing, payloads, timing proxy."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

# `bench/` is not part of the installed package; make the repository root importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import run as bench_run
from bench._common import Ratio, Report, Stats
from bench.bench_decode import build_payloads
from bench.bench_workflow import TimingStore
from kiiex_async import _wire
from kiiex_async.models import Order, Position, Trade


def test_ratio_line_has_the_parseable_form_and_verdict() -> None:
    """Each ratio prints as `ratio <name>: <value>` with PASS/MISS against its target."""
    assert Ratio("x_vs_y", 1.08, 1.2, "<=").line() == "ratio x_vs_y: 1.080  [PASS target <= 1.2]"
    assert Ratio("t", 0.5, 0.85, ">=").line() == "ratio t: 0.500  [MISS target >= 0.85]"
    assert Ratio("info", 2.0).line() == "ratio info: 2.000"


def test_report_json_carries_figures_versions_and_machine(tmp_path: Path) -> None:
    """`--out` JSON holds every statistic plus versions and machine facts."""
    report = Report(mode="quick")
    report.add("f", Stats("us", (3.0, 1.0, 2.0, 4.0)))
    report.ratio("r", 1.5, 1.2, "<=", quiet=True)
    out = tmp_path / "bench.json"
    report.write(out)
    data = json.loads(out.read_text())
    assert data["figures"]["f"]["median"] == 2.5
    assert (data["figures"]["f"]["min"], data["figures"]["f"]["max"]) == (1.0, 4.0)
    assert data["ratios"]["r"]["verdict"] == "MISS"
    assert {"python", "aiohttp", "kiiex_async", "ccxt"} <= set(data["versions"])
    assert {"cpu_count", "cpu_model", "python"} <= set(data["machine"])


def test_only_selects_sections_and_rejects_unknown_names() -> None:
    """`--only a,b` keeps the canonical order; an unknown name is a usage error."""
    args = bench_run._parse(["--only", "peer,client", "--quick"])
    assert args.sections == ["client", "peer"]
    assert bench_run._parse([]).sections == list(bench_run.SECTIONS)
    with pytest.raises(SystemExit):
        bench_run._parse(["--only", "nope"])


def test_decode_payloads_structure_into_every_row() -> None:
    """The decode benchmark's payloads are real AlphaPoint shapes the converter accepts."""
    payloads = build_payloads(orders=20, trades=20, positions=5)
    for name, cls, rows in (
        ("orders", Order, 20),
        ("trades", Trade, 20),
        ("positions", Position, 5),
    ):
        body, model = payloads[name]
        assert model is cls
        built = _wire.structure_list(_wire.loads(body), cls)
        assert len(built) == rows
    first = _wire.structure_list(_wire.loads(payloads["trades"][0]), Trade)[0]
    assert first.price.as_tuple().exponent == -28  # the 28-digit .NET decimal survived


def test_timing_store_busy_time_is_the_union_of_overlapping_calls() -> None:
    """Overlapping store calls count once; gaps and time outside the window do not count."""
    store = TimingStore(inner=None)
    store.intervals = [(0.0, 2.0), (1.0, 3.0), (5.0, 6.0), (9.0, 12.0)]
    assert store.busy_seconds(0.0, 10.0) == pytest.approx(3.0 + 1.0 + 1.0)
