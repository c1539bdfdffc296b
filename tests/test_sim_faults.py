"""Every fault kind over real HTTP, and whether the exchange applied the request."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDictProxy

from kiiex_async import auth
from kiiex_async.sim import Fault, SimConfig, Simulator

T0 = 1_700_000_000.0
CONFIG = SimConfig(seed=13, time_speed=0.0, start_time=T0, drift_bps=D(0))
ORDER = {"InstrumentId": 1, "Side": 1, "OrderType": 1, "Quantity": 10, "ClientOrderId": 31337}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(CONFIG) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    # A fresh connection per request: a drop must not be hidden by aiohttp's own retry of a
    # reused keep-alive connection.
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        yield session


@pytest.fixture
async def token(sim: Simulator, http: aiohttp.ClientSession) -> dict[str, str]:
    demo = sim.demo
    body = auth.signed_headers(api_key=demo.api_key, api_secret=demo.api_secret, user_id=1)
    async with http.post(f"{sim.url}/AuthenticateUser", json=body) as resp:
        return {"aptoken": (await resp.json())["SessionToken"]}


async def send(
    http: aiohttp.ClientSession, url: str, payload: dict[str, Any], headers: dict[str, str]
) -> tuple[int, bytes, CIMultiDictProxy[str]]:
    async with http.post(url, data=json.dumps(payload).encode(), headers=headers) as resp:
        return resp.status, await resp.read(), resp.headers


def orders(sim: Simulator) -> list[int]:
    return [o.client_order_id for o in sim.exchange.orders_of(1)]


async def test_drop_after_apply_the_order_exists_but_the_client_saw_a_disconnect(
    sim: Simulator, http: aiohttp.ClientSession, token: dict[str, str]
) -> None:
    """drop_after: SendOrder is applied (ledger has it) while the client gets a disconnect."""
    sim.faults.inject(Fault("SendOrder", "drop_after", times=1))
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await send(http, f"{sim.url}/SendOrder", ORDER, token)
    assert orders(sim) == [31337]
    async with http.get(f"{sim.base_url}/_sim/ledger") as resp:
        ledger = await resp.json()
    assert [o["ClientOrderId"] for o in ledger["Orders"] if o["Account"] == 1] == [31337]
    history = await send(http, f"{sim.url}/GetOrdersHistory", {"ClientOrderId": 31337}, token)
    assert json.loads(history[1])[0]["OrderState"] == "FullyExecuted"
    status, _, _ = await send(http, f"{sim.url}/SendOrder", ORDER, token)
    assert status == 200 and orders(sim) == [31337, 31337]
    assert sim.faults.fired == [("SendOrder", "drop_after")]


async def test_drop_before_apply_nothing_happens(
    sim: Simulator, http: aiohttp.ClientSession, token: dict[str, str]
) -> None:
    """drop_before: the connection closes and the exchange never saw the order."""
    sim.faults.inject("SendOrder:drop_before:1")
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await send(http, f"{sim.url}/SendOrder", ORDER, token)
    assert orders(sim) == []


async def test_drop_after_a_withdraw_ticket(
    sim: Simulator, http: aiohttp.ClientSession, token: dict[str, str]
) -> None:
    """drop_after on CreateWithdrawTicket: the ticket exists and holds funds."""
    sim.faults.inject(Fault("CreateWithdrawTicket", "drop_after", times=1))
    body = {"ProductId": 1, "Amount": 50, "TemplateForm": {"ExternalAddress": "0xa"}}
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await send(http, f"{sim.url}/CreateWithdrawTicket", body, token)
    assert len(sim.exchange.withdraw_tickets) == 1
    assert sim.exchange.balance(1, "USDT") == (D(10_000), D(50))


@pytest.mark.parametrize(("kind", "applied"), [("error", False), ("error_after", True)])
async def test_server_errors_before_and_after_apply(
    sim: Simulator,
    http: aiohttp.ClientSession,
    token: dict[str, str],
    kind: str,
    applied: bool,
) -> None:
    """error / error_after: HTTP 5xx with the generic body; only error_after applied it."""
    sim.faults.inject(Fault("SendOrder", kind, times=1, status=502))
    status, body, _ = await send(http, f"{sim.url}/SendOrder", ORDER, token)
    assert status == 502
    assert json.loads(body) == {
        "result": False,
        "errormsg": "Server Error",
        "errorcode": 102,
        "detail": "Simulated fault",
    }
    assert orders(sim) == ([31337] if applied else [])


async def test_rate_limit_answers_429_with_retry_after(
    sim: Simulator, http: aiohttp.ClientSession, token: dict[str, str]
) -> None:
    """rate_limit: HTTP 429 with Retry-After; the request was not applied; next one passes."""
    sim.faults.inject(Fault("SendOrder", "rate_limit", times=1, retry_after=2))
    status, _, headers = await send(http, f"{sim.url}/SendOrder", ORDER, token)
    assert status == 429 and headers["Retry-After"] == "2"
    assert orders(sim) == []
    status, _, _ = await send(http, f"{sim.url}/SendOrder", ORDER, token)
    assert status == 200 and orders(sim) == [31337]


async def test_latency_delays_the_answer(
    sim: Simulator, http: aiohttp.ClientSession, token: dict[str, str]
) -> None:
    """latency: the normal answer arrives at least ``delay`` seconds late."""
    sim.faults.inject(Fault("GetLevel1", "latency", times=1, delay=0.2))
    started = time.monotonic()
    status, body, _ = await send(http, f"{sim.url}/GetLevel1", {"InstrumentId": 1}, {})
    assert time.monotonic() - started >= 0.2
    assert status == 200 and json.loads(body)["BestBid"] == 3998


async def test_latency_lets_a_client_timeout_fire(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """A delay longer than the client's timeout surfaces as a client timeout."""
    sim.faults.inject(Fault("Ping", "latency", times=1, delay=0.5))
    with pytest.raises(asyncio.TimeoutError):
        async with http.get(f"{sim.url}/Ping", timeout=aiohttp.ClientTimeout(total=0.1)) as resp:
            await resp.read()


async def test_expire_session_fault(
    sim: Simulator, http: aiohttp.ClientSession, token: dict[str, str]
) -> None:
    """expire_session: sessions die before the call, which answers Not Authorized."""
    sim.faults.inject(Fault("GetAccountPositions", "expire_session", times=1))
    _, body, _ = await send(http, f"{sim.url}/GetAccountPositions", {}, token)
    assert json.loads(body)["errorcode"] == 20
    _, body, _ = await send(http, f"{sim.url}/GetUserAccounts", {}, token)
    assert json.loads(body)["errorcode"] == 20


@pytest.mark.parametrize(("kind", "applied"), [("malformed", False), ("malformed_after", True)])
async def test_malformed_bodies(
    sim: Simulator,
    http: aiohttp.ClientSession,
    token: dict[str, str],
    kind: str,
    applied: bool,
) -> None:
    """malformed: an HTML page, not applied; malformed_after: truncated JSON, applied."""
    sim.faults.inject(Fault("SendOrder", kind, times=1))
    status, body, headers = await send(http, f"{sim.url}/SendOrder", ORDER, token)
    assert status == 200
    with pytest.raises(ValueError):  # noqa: PT011 - json's own error type
        json.loads(body)
    assert ("text/html" in headers["Content-Type"]) is (not applied)
    assert orders(sim) == ([31337] if applied else [])


async def test_wildcard_probability_and_admin_route(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """Faults can target every method, fire with a probability, and be set over /_sim/faults."""
    async with http.post(
        f"{sim.base_url}/_sim/faults", json={"spec": "*:error:times=3:status=503"}
    ) as resp:
        listed = await resp.json()
    assert listed["Faults"][0] == {
        "Method": "*",
        "Kind": "error",
        "Times": 3,
        "Probability": 1,
        "Delay": 0.5,
        "Status": 503,
        "RetryAfter": 1,
    }
    statuses = []
    for _ in range(4):
        async with http.get(f"{sim.url}/Ping") as resp:
            statuses.append(resp.status)
    assert statuses == [503, 503, 503, 200]
    async with http.post(
        f"{sim.base_url}/_sim/faults",
        json={"method": "Ping", "kind": "error", "probability": 0.5},
    ) as resp:
        assert resp.status == 200
    seen = []
    for _ in range(20):
        async with http.get(f"{sim.url}/Ping") as resp:
            seen.append(resp.status)
    assert 0 < seen.count(503) < 20
    async with http.delete(f"{sim.base_url}/_sim/faults") as resp:
        assert (await resp.json()) == {"Faults": []}
    async with http.post(f"{sim.base_url}/_sim/faults", json={"spec": "Ping:explode"}) as resp:
        assert resp.status == 400


async def test_faults_given_at_construction(http: aiohttp.ClientSession) -> None:
    """Simulator(faults=[...]) arms fault specs from the start (as ``--fault`` does)."""
    async with Simulator(CONFIG, faults=["Ping:rate_limit:1:retry_after=0.5"]) as sim:
        async with http.get(f"{sim.url}/Ping") as resp:
            assert resp.status == 429 and resp.headers["Retry-After"] == "0.5"
        async with http.get(f"{sim.url}/Ping") as resp:
            assert resp.status == 200


@pytest.mark.parametrize(("kind", "applied"), [("in_process", []), ("in_process_after", [31337])])
async def test_operation_in_process_answers_errorcode_107(
    sim: Simulator,
    http: aiohttp.ClientSession,
    token: dict[str, str],
    kind: str,
    applied: list[int],
) -> None:
    """in_process[_after]: HTTP 200 errorcode 107 "Operation In Process", applied or not."""
    sim.faults.inject(f"SendOrder:{kind}:1")
    status, body, _ = await send(http, f"{sim.url}/SendOrder", ORDER, token)
    assert status == 200
    assert json.loads(body) == {
        "result": False,
        "errormsg": "Operation In Process",
        "errorcode": 107,
        "detail": None,
    }
    assert orders(sim) == applied
