"""`kiiex swap` never strands money: withdrawal problems are refused before the order, and
`kiiex resume --withdraw-field` retries a withdrawal that failed after the trade."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from kiiex_async import Credentials, KiiexClient, cli
from kiiex_async.cli._env import EMBEDDED_EXCHANGE
from kiiex_async.sim import SimConfig, Simulator
from kiiex_async.workflow import SqliteCheckpointStore, SwapRequest, SwapWorkflow, WithdrawSpec


def ledger(state_dir: Path) -> dict[str, list[dict[str, object]]]:
    """The demo account's orders and withdraw tickets in the saved simulator state."""
    exchange = json.loads((state_dir / "sim-state.json").read_text())["exchange"]
    return {
        "orders": [o for o in exchange["orders"] if o["account_id"] == 1],
        "tickets": list(exchange["withdraw_tickets"]),
    }


def test_a_missing_template_field_is_refused_before_the_order(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`kiiex swap USDT COPM 1 --withdraw-template Standard` (no ExternalAddress) exits 2
    with one line naming the field; the simulator's ledger holds no order and no ticket."""
    code = cli.run(["swap", "USDT", "COPM", "1", "--withdraw-template", "Standard", "-q"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    (line,) = err.splitlines()
    assert "ExternalAddress=" in line
    assert ledger(state_dir) == {"orders": [], "tickets": []}


def test_resume_with_withdraw_field_retries_a_failed_withdrawal(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A swap whose withdraw ticket failed after the trade is WITHDRAW_FAILED (exit 3);
    `kiiex resume ID --withdraw-field ExternalAddress=...` completes it: one order, one
    successful ticket."""

    async def failing_swap() -> str:
        async with Simulator(SimConfig(), state_file=state_dir / "sim-state.json") as sim:
            sim.exchange.withdraw_outcomes.append("Failed")
            creds = Credentials(**sim.credentials_kwargs)
            async with (
                KiiexClient(sim.url, credentials=creds, rate_limit=None) as client,
                SqliteCheckpointStore(state_dir / "swaps-sim.sqlite3") as store,
            ):
                spec = WithdrawSpec("Standard", {"ExternalAddress": "old-wallet"})
                workflow = SwapWorkflow(client, store, exchange=EMBEDDED_EXCHANGE)
                result = await workflow.run(SwapRequest("USDT", "COPM", "10", withdrawal=spec))
                return result.swap_id

    swap_id = asyncio.run(failing_swap())
    assert cli.run(["show", swap_id, "--json", "-q"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["state"] == "WITHDRAW_FAILED"
    assert cli.run(["resume", swap_id, "-q"]) == cli.EXIT_NOT_COMPLETED  # as it is
    assert "WITHDRAW_FAILED" in capsys.readouterr().out

    code = cli.run(
        ["resume", swap_id, "--withdraw-field", "ExternalAddress=new-wallet", "--json", "-q"]
    )
    result = json.loads(capsys.readouterr().out)
    assert code == cli.EXIT_OK, result
    assert result["state"] == "COMPLETED"
    books = ledger(state_dir)
    assert len(books["orders"]) == 1
    done = [t for t in books["tickets"] if t["status"] == 5]
    assert len(done) == 1
    assert "new-wallet" in str(done[0]["template_form"])
