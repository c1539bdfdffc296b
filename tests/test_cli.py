"""The `kiiex` command line: the demo swap, its bookkeeping commands and its errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kiiex_async import cli

CREDENTIAL_VARS = ("KIIEX_API_KEY", "KIIEX_API_SECRET", "KIIEX_USER_ID", "KIIEX_USERNAME")


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state dir and no credentials: the embedded simulator."""
    for name in (*CREDENTIAL_VARS, "KIIEX_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KIIEX_STATE_DIR", str(tmp_path))
    return tmp_path


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict[str, object]]]:
    """Run the CLI in-process with --json and parse its stdout lines."""
    code = cli.run([*argv, "--json", "-q"])
    out = capsys.readouterr().out
    return code, [json.loads(line) for line in out.splitlines() if line.strip()]


def test_swap_on_embedded_simulator_then_list_and_show(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A demo swap completes, spends exactly the amount, and is listed and shown afterwards."""
    code, lines = run_json(capsys, "swap", "USDT", "COPM", "25")
    assert code == 0
    (result,) = lines
    assert result["state"] == "COMPLETED"
    assert result["spent"] == "25"
    assert result["from"] == "USDT"
    assert result["to"] == "COPM"
    assert float(str(result["received"])) > 0  # display only; exact value depends on the book
    swap_id = result["swap_id"]

    code, listed = run_json(capsys, "swaps")
    assert code == 0
    assert [row["swap_id"] for row in listed] == [swap_id]
    assert listed[0]["state"] == "COMPLETED"

    code, shown = run_json(capsys, "show", str(swap_id))
    assert code == 0
    states = [entry["state"] for entry in shown[0]["timeline"]]  # type: ignore[union-attr]
    assert states[0] == "CREATED"
    assert states[-1] == "COMPLETED"
    assert "ORDER_INTENT" in states

    code, balances = run_json(capsys, "balances")
    assert code == 0
    by_product = {row["product"]: row for row in balances}
    assert by_product["USDT"]["amount"] in ("9975", "9975.00")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["swap", "USDT", "COPM", "-5"], "positive"),
        (["swap", "USDT", "COPM", "abc"], "must be a number"),
        (["swap", "USDT", "USDT", "10"], "USDT"),
        (
            [
                "swap",
                "USDT",
                "COPM",
                "10",
                "--withdraw-template",
                "Standard",
                "--withdraw-field",
                "x",
            ],
            "KEY=VALUE",
        ),
        (["show", "no-such-swap"], "no swap"),
        (["swap", "USDT", "COPM", "10", "--env", "staging"], "needs credentials"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(
    state_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], fragment: str
) -> None:
    """Bad input prints one readable error line to stderr and exits non-zero."""
    code = cli.run(argv)
    captured = capsys.readouterr()
    assert code != 0
    err_lines = [line for line in captured.err.splitlines() if line.startswith("kiiex: error")]
    assert len(err_lines) == 1
    assert fragment in err_lines[0]
    assert "Traceback" not in captured.err


def test_unknown_asset_sends_nothing(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An unknown asset fails before any order: the simulator's state shows no order."""
    code = cli.run(["swap", "USDT", "XYZ", "10", "-q"])
    captured = capsys.readouterr()
    assert code == cli.EXIT_USAGE
    assert "XYZ" in captured.err
    state = json.loads((state_dir / "sim-state.json").read_text())
    assert state.get("orders", []) in ([], {})


def test_insufficient_balance_is_refused(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Spending more than the balance is refused with one line, before any order."""
    code = cli.run(["swap", "USDT", "COPM", "1000000", "-q"])
    captured = capsys.readouterr()
    assert code == cli.EXIT_USAGE
    assert "kiiex: error" in captured.err
    state = json.loads((state_dir / "sim-state.json").read_text())
    assert state.get("orders", []) in ([], {})


def test_console_script_error_has_no_traceback(tmp_path: Path) -> None:
    """The installed `kiiex` entry point prints one line and exits 2 on a bad amount."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIIEX_")}
    env["KIIEX_STATE_DIR"] = str(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "kiiex_async", "swap", "USDT", "COPM", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("kiiex: error")
    assert proc.stdout == ""
