"""The `kiiex` command line: the demo swap, its bookkeeping commands and its errors."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest

from kiiex_async import KiiexClient, cli
from kiiex_async.cli._env import EMBEDDED_EXCHANGE
from kiiex_async.workflow import SqliteCheckpointStore, SwapRequest, SwapWorkflow

#: The ``dialect`` fixture: each simulator test runs once per dialect.
pytest_plugins = ["dialect_support"]

CREDENTIAL_VARS = ("KIIEX_API_KEY", "KIIEX_API_SECRET", "KIIEX_USER_ID", "KIIEX_USERNAME")


def demo_orders(state_file: Path) -> list[dict[str, object]]:
    """The demo account's orders in the embedded simulator's saved ledger."""
    exchange = json.loads(state_file.read_text())["exchange"]
    return [o for o in exchange["orders"] if o["account_id"] == 1]


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

    code, (listed,) = run_json(capsys, "swaps")
    assert code == 0
    rows = listed["swaps"]
    assert isinstance(rows, list)
    assert [row["swap_id"] for row in rows] == [swap_id]
    assert rows[0]["state"] == "COMPLETED"

    code, shown = run_json(capsys, "show", str(swap_id))
    assert code == 0
    timeline = shown[0]["timeline"]
    assert isinstance(timeline, list)
    states = [entry["state"] for entry in timeline]
    assert states[0] == "CREATED"
    assert states[-1] == "COMPLETED"
    assert "ORDER_INTENT" in states

    code, (balances,) = run_json(capsys, "balances")
    assert code == 0
    rows = balances["balances"]
    assert isinstance(rows, list)
    by_product = {row["product"]: row for row in rows}
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
    assert demo_orders(state_dir / "sim-state.json") == []


def test_insufficient_balance_is_refused(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Spending more than the balance is refused with one line, before any order."""
    # 20000 USDT: twice the demo balance, yet within the book's depth (a larger amount
    # would be refused for the book instead, and the balance check would go untested).
    code = cli.run(["swap", "USDT", "COPM", "20000", "-q"])
    captured = capsys.readouterr()
    assert code == cli.EXIT_USAGE
    (line,) = captured.err.splitlines()
    assert line.startswith("kiiex: error: insufficient USDT: the order needs 20000")
    assert demo_orders(state_dir / "sim-state.json") == []


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


def test_resume_continues_a_registered_swap(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`kiiex resume` picks up a swap that was registered but never ran, and completes it."""

    async def register() -> str:
        async with (
            KiiexClient("http://127.0.0.1:9/ap") as client,
            SqliteCheckpointStore(state_dir / "swaps-sim.sqlite3") as store,
        ):
            workflow = SwapWorkflow(client, store, exchange=EMBEDDED_EXCHANGE)
            return await workflow.create(SwapRequest("USDT", "COPM", Decimal("12")))

    swap_id = asyncio.run(register())
    code, lines = run_json(capsys, "resume", swap_id)
    assert code == 0
    assert lines[0]["swap_id"] == swap_id
    assert lines[0]["state"] == "COMPLETED"
    assert lines[0]["spent"] == "12"
    assert cli.run(["resume", "nope", "-q"]) == cli.EXIT_USAGE


def test_rates_json_lines(state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`kiiex rates --json --count N` prints N ticks with Decimal strings and stops."""
    code, lines = run_json(capsys, "rates", "USDTCOPM", "--interval", "0.05", "--count", "3")
    assert code == 0
    assert len(lines) == 3
    assert {line["symbol"] for line in lines} == {"USDTCOPM"}
    first = lines[0]
    assert isinstance(first["bid"], str)
    assert isinstance(first["ask"], str)
    assert Decimal(str(first["bid"])) < Decimal(str(first["ask"]))


def test_rates_table_and_balances_table(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The human forms of `rates` and `balances` render tables of the simulator's data."""
    assert cli.run(["rates", "USDTCOPM", "--interval", "0.05", "--count", "2", "-q"]) == 0
    assert "USDTCOPM" in capsys.readouterr().out
    assert cli.run(["balances", "-q"]) == 0
    out = capsys.readouterr().out
    assert "USDT" in out
    assert "USDC" in out


def test_sim_command_prints_url_and_stops_on_sigint(tmp_path: Path) -> None:
    """`kiiex sim` prints its URL and demo credentials, serves, and exits 0 on Ctrl-C."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiiex_async", "sim", "--port", "0", "--state", str(tmp_path / "s")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert "listening on http://127.0.0.1:" in first
        url = first.strip().rsplit(" ", 1)[-1]
        banner = "".join(proc.stdout.readline() for _ in range(3))
        assert "API key" in banner
        with urllib.request.urlopen(url + "/Ping", data=b"{}", timeout=10) as resp:
            assert json.loads(resp.read()) == {"msg": "PONG"}
        proc.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 20
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


@pytest.mark.slow
def test_ctrl_c_leaves_a_resumable_swap(tmp_path: Path) -> None:
    """Ctrl-C during a deposit exits 130 naming the swap; `kiiex resume` then completes it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIIEX_")}
    env["KIIEX_STATE_DIR"] = str(tmp_path)
    command = [sys.executable, "-m", "kiiex_async"]
    proc = subprocess.Popen(
        [*command, "swap", "USDT", "COPM", "10", "--deposit", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stderr is not None
        seen = ""
        deadline = time.monotonic() + 60
        while "DEPOSIT_PENDING" not in seen and time.monotonic() < deadline:
            line = proc.stderr.readline()
            if not line:
                break
            seen += line
        assert "DEPOSIT_PENDING" in seen
        proc.send_signal(signal.SIGINT)
        _out, rest = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
    assert proc.returncode == cli.EXIT_INTERRUPTED
    hint = [line for line in rest.splitlines() if "resume with: kiiex resume" in line]
    assert len(hint) == 1
    swap_id = hint[0].rsplit(" ", 1)[-1]
    resumed = subprocess.run(
        [*command, "resume", swap_id, "--json", "-q"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    result = json.loads(resumed.stdout)
    assert result["state"] == "COMPLETED"
    assert result["deposit_status"] == "FULLY_PROCESSED"
    exchange = json.loads((tmp_path / "sim-state.json").read_text())["exchange"]
    assert len(exchange["deposit_tickets"]) == 1
    assert len(demo_orders(tmp_path / "sim-state.json")) == 1


@pytest.mark.slow
def test_swap_against_a_standalone_simulator_of_each_dialect(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    dialect: str,
) -> None:
    """`kiiex sim --dialect D` standalone, then `kiiex swap USDT COPM 100 --base-url URL`
    with its credentials in the environment: the swap completes with a withdrawal."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiiex_async", "sim", "--port", "0", "--dialect", dialect],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"{dialect} dialect" in first
        url = first.strip().rsplit(" ", 1)[-1]
        banner = dict(
            line.strip().split(":", 1) for line in (proc.stdout.readline() for _ in range(3))
        )
        user_id = banner["demo user"].split("user_id=")[1].split()[0]
        monkeypatch.setenv("KIIEX_API_KEY", banner["API key"].strip())
        monkeypatch.setenv("KIIEX_API_SECRET", banner["API secret"].strip())
        monkeypatch.setenv("KIIEX_USER_ID", user_id)
        monkeypatch.delenv("KIIEX_USERNAME", raising=False)
        monkeypatch.delenv("KIIEX_PASSWORD", raising=False)
        monkeypatch.setenv("KIIEX_STATE_DIR", str(tmp_path))
        code, lines = run_json(
            capsys,
            "swap", "USDT", "COPM", "100", "--base-url", url,
            "--withdraw-template", "Standard", "--withdraw-field", "ExternalAddress=0xfeed",
        )  # fmt: skip
        assert code == 0, lines
        (result,) = lines
        assert (result["state"], result["spent"]) == ("COMPLETED", "100")
        assert result["withdrawal_status"] == "FULLY_PROCESSED"
        assert Decimal(str(result["withdrawal_amount"])) == Decimal(str(result["net_received"]))
        with urllib.request.urlopen(url.rsplit("/", 1)[0] + "/_sim/ledger", timeout=10) as resp:
            ledger = json.loads(resp.read())
        (ticket,) = ledger["WithdrawTickets"]
        assert Decimal(str(ticket["amount"])) == Decimal(str(result["withdrawal_amount"]))
        assert [o["ClientOrderId"] for o in ledger["Orders"] if o["Account"] == 1] == [
            result["client_order_id"]
        ]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)


def test_book_json_lines_show_the_live_book(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`kiiex book USDTCOPM --json --count 1` prints the book read over the WebSocket."""
    code, lines = run_json(capsys, "book", "USDTCOPM", "--depth", "3", "--count", "1")
    assert code == 0
    (book,) = lines
    bids, asks = book["bids"], book["asks"]
    assert isinstance(bids, list) and isinstance(asks, list) and len(bids) == len(asks) == 3
    assert Decimal(str(book["best_bid"])) < Decimal(str(book["best_ask"]))


def test_book_table_and_rates_over_the_websocket(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`kiiex book` renders a table; `kiiex rates --ws` prints ticks; a bad symbol is one line."""
    assert cli.run(["book", "USDT/COPM", "--count", "1", "-q"]) == 0
    assert "order book" in capsys.readouterr().out
    code, lines = run_json(capsys, "rates", "USDTCOPM", "--ws", "--count", "2")
    assert code == 0 and len(lines) == 2
    assert cli.run(["book", "NOPE", "-q"]) == cli.EXIT_USAGE
    assert capsys.readouterr().err.startswith("kiiex: error:")
