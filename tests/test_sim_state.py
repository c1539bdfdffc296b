"""State file persistence, admin routes and the standalone server."""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from kiiex_async import auth
from kiiex_async.sim import SimConfig, Simulator, serve_async

T0 = 1_700_000_000.0
CONFIG = SimConfig(seed=21, time_speed=0.0, start_time=T0, drift_bps=D(0), deposit_step_seconds=5)


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def call(
    http: aiohttp.ClientSession, sim: Simulator, method: str, payload: dict[str, Any], **kw: Any
) -> Any:
    async with http.post(f"{sim.url}/{method}", data=json.dumps(payload).encode(), **kw) as resp:
        return json.loads(await resp.read(), parse_float=D)


async def session_headers(http: aiohttp.ClientSession, sim: Simulator) -> dict[str, str]:
    demo = sim.demo
    body = auth.signed_headers(api_key=demo.api_key, api_secret=demo.api_secret, user_id=1)
    return {"aptoken": (await call(http, sim, "AuthenticateUser", body))["SessionToken"]}


async def test_state_file_survives_a_restart(tmp_path: Path, http: aiohttp.ClientSession) -> None:
    """Orders, trades, tickets and balances written to state_file are there after a restart."""
    path = tmp_path / "exchange.json"
    async with Simulator(CONFIG, state_file=path) as first:
        headers = await session_headers(http, first)
        order = {"InstrumentId": 1, "Side": 1, "OrderType": 1, "Quantity": 10, "ClientOrderId": 8}
        await call(http, first, "SendOrder", order, headers=headers)
        resting = {**order, "OrderType": 2, "LimitPrice": 4100, "ClientOrderId": 9}
        await call(http, first, "SendOrder", resting, headers=headers)
        await call(
            http, first, "CreateDepositTicket", {"AssetId": 3, "Amount": 70}, headers=headers
        )
        saved = json.loads(path.read_text())
        assert saved["format"] == "kiiex-sim-state"
        assert len(saved["exchange"]["orders"]) == 3  # two of ours, one market-maker order
        before = first.ledger()
    assert await asyncio.to_thread(os.listdir, tmp_path) == ["exchange.json"]  # no temp files
    async with Simulator(CONFIG, state_file=path) as second:
        after = second.ledger()
        assert {k: after[k] for k in ("Balances", "Orders", "Trades", "DepositTickets")} == {
            k: before[k] for k in ("Balances", "Orders", "Trades", "DepositTickets")
        }
        assert await call(http, second, "GetUserAccounts", {}, headers=headers) == {
            "result": False,
            "errormsg": "Not Authorized",
            "errorcode": 20,
            "detail": None,
        }
        headers = await session_headers(http, second)
        (open_order,) = await call(http, second, "GetOpenOrders", {}, headers=headers)
        assert open_order["ClientOrderId"] == 9
        second.advance(20)
        assert second.exchange.balance(1, "COPM")[0] == D("39900.04") + 70
        assert [o.limit_price for o in second.exchange.markets[1].asks][:2] == [D(4002), D(4004)]


async def test_state_is_saved_after_each_change(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Every mutating request (and a clock advance that moves a ticket) rewrites the file."""
    path = tmp_path / "state.json"
    async with Simulator(CONFIG, state_file=path) as sim:
        headers = await session_headers(http, sim)
        await call(http, sim, "CreateDepositTicket", {"AssetId": 1, "Amount": 1}, headers=headers)
        ticket = json.loads(path.read_text())["exchange"]["deposit_tickets"][0]
        assert ticket["status"] == 0
        sim.advance(100)
        ticket = json.loads(path.read_text())["exchange"]["deposit_tickets"][0]
        assert ticket["status"] == 5


def test_a_foreign_state_file_is_refused(tmp_path: Path) -> None:
    """A JSON file that is not a simulator state file is refused (ValueError), not overwritten."""
    path = tmp_path / "other.json"
    path.write_text('{"hello": "world"}')
    with pytest.raises(ValueError, match="not a kiiex simulator state file"):
        Simulator(CONFIG, state_file=path)
    assert path.read_text() == '{"hello": "world"}'


async def test_admin_routes(http: aiohttp.ClientSession) -> None:
    """/_sim/ledger shows everything; /_sim/advance moves time; /_sim/expire_sessions works."""
    async with Simulator(CONFIG) as sim:
        headers = await session_headers(http, sim)
        await call(http, sim, "CreateDepositTicket", {"AssetId": 3, "Amount": 5}, headers=headers)
        async with http.post(f"{sim.base_url}/_sim/advance", json={"seconds": 30}) as resp:
            assert (await resp.json())["Now"] == int((T0 + 30) * 1000)
        async with http.get(f"{sim.base_url}/_sim/ledger") as resp:
            ledger = json.loads(await resp.read(), parse_float=D)
        assert set(ledger) == {
            "Now", "Accounts", "Balances", "Orders", "Trades", "DepositTickets",
            "WithdrawTickets", "Fees", "Markets",
        }  # fmt: skip
        assert ledger["DepositTickets"][0]["Status"] == 5
        copm = next(b for b in ledger["Balances"] if b["AccountId"] == 1 and b["ProductId"] == 3)
        assert copm["Amount"] == 5
        async with http.post(f"{sim.base_url}/_sim/expire_sessions") as resp:
            assert await resp.json() == {"Expired": 1}
        assert (await call(http, sim, "GetUserInfo", {}, headers=headers))["errorcode"] == 20
        async with http.post(f"{sim.base_url}/_sim/advance", json={"seconds": -1}) as resp:
            assert resp.status == 400


async def test_serve_async_prints_the_banner_and_stops_on_request() -> None:
    """serve_async prints URL and demo credentials, serves, and returns when stopped."""
    out = io.StringIO()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_async("127.0.0.1", 0, config=CONFIG, out=out, stop=stop))
    for _ in range(200):
        if "listening on" in out.getvalue():
            break
        await asyncio.sleep(0.01)
    match = re.search(r"listening on (\S+)", out.getvalue())
    assert match is not None
    async with aiohttp.ClientSession() as http, http.get(f"{match.group(1)}/Ping") as resp:
        assert await resp.json() == {"msg": "PONG"}
    stop.set()
    await asyncio.wait_for(task, 5)
    text = out.getvalue()
    assert CONFIG.demo.api_key in text and "password=demo-password" in text
    assert text.rstrip().endswith("KIIEX simulator stopped.")


def test_standalone_server_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """``python -m kiiex_async.sim`` prints its URL, serves, exits 0 on SIGTERM, saves state."""
    state = tmp_path / "sim.json"
    env = {**os.environ, "PYTHONWARNINGS": "error"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kiiex_async.sim", "--port", "0", "--state", str(state),
         "--fault", "GetLevel1:error:1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        match = re.search(r"listening on (http://127\.0\.0\.1:\d+/ap)", first)
        assert match is not None, first
        url = match.group(1)

        async def probe() -> tuple[int, int]:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{url}/GetLevel1?InstrumentId=1") as a:
                    failed = a.status
                async with http.get(f"{url}/GetLevel1?InstrumentId=1") as b:
                    return failed, b.status

        assert asyncio.run(probe()) == (503, 200)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "KIIEX simulator stopped." in out
    assert json.loads(state.read_text())["format"] == "kiiex-sim-state"
