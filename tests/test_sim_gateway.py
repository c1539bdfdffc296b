"""The simulator's ``/WSGateway``: frames, subscriptions, account events and socket faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import aiohttp
import attrs
import pytest
from stream_support import TWOFA, TWOFA_CODE

from kiiex_async.auth import sign
from kiiex_async.sim import DemoUser, Fault, SimConfig, Simulator

CONFIG = SimConfig(seed=3, time_speed=0.0, start_time=1_700_000_000.0, drift_bps=D(0))


class Raw:
    """A bare AlphaPoint socket: send frames, read decoded frames."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.seq = 0

    async def send(self, name: str, payload: Any = None, *, m: int = 0) -> int:
        self.seq += 2
        await self.ws.send_str(
            json.dumps({"m": m, "i": self.seq, "n": name, "o": json.dumps(payload or {})})
        )
        return self.seq

    async def recv(self, wait: float = 5.0) -> dict[str, Any]:
        frame: dict[str, Any] = json.loads(await asyncio.wait_for(self.ws.receive_str(), wait))
        frame["o"] = json.loads(frame["o"])
        return frame

    async def call(self, name: str, payload: Any = None) -> dict[str, Any]:
        i = await self.send(name, payload)
        while True:
            frame = await self.recv()
            if frame["i"] == i and frame["m"] in (1, 5):
                return frame

    async def until(self, name: str) -> dict[str, Any]:
        while True:
            frame = await self.recv()
            if frame["n"] == name:
                return frame

    async def quiet(self, seconds: float = 0.3) -> list[dict[str, Any]]:
        """Every frame that arrives within ``seconds`` (the socket is expected to go quiet)."""
        frames = []
        while True:
            try:
                frames.append(await self.recv(seconds))
            except TimeoutError:
                return frames

    async def login(self, sim: Simulator) -> dict[str, Any]:
        d = sim.demo
        sig = sign(api_secret=d.api_secret, nonce="7", user_id=str(d.user_id), api_key=d.api_key)
        return await self.call(
            "AuthenticateUser",
            {"APIKey": d.api_key, "UserId": str(d.user_id), "Nonce": "7", "Signature": sig},
        )


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(CONFIG) as simulator:
        yield simulator


@pytest.fixture
async def raw(sim: Simulator) -> AsyncIterator[Raw]:
    async with aiohttp.ClientSession() as session, session.ws_connect(sim.ws_url) as ws:
        yield Raw(ws)


async def sell(sim: Simulator, raw: Raw, qty: str = "10") -> dict[str, Any]:
    order = {"InstrumentId": 1, "AccountId": 1, "OMSId": 1, "Side": 1, "OrderType": 1}
    return await raw.call("SendOrder", {**order, "Quantity": qty, "TimeInForce": 1})


async def test_ping_answers_pong_with_the_same_sequence_number(raw: Raw) -> None:
    """A Ping request (m 0) gets an m 1 reply echoing i and {"msg":"PONG"}."""
    reply = await raw.call("Ping")
    assert reply["m"] == 1 and reply["n"] == "Ping" and reply["o"] == {"msg": "PONG"}


async def test_unknown_method_and_garbage_frames_are_m5_errors(raw: Raw) -> None:
    """Unknown method → m 5 errorcode 104; a non-JSON frame or a non-JSON ``o`` → m 5 100."""
    reply = await raw.call("NoSuchMethod")
    assert reply["m"] == 5 and reply["o"]["errorcode"] == 104
    await raw.ws.send_str("not json at all")
    assert (await raw.recv())["o"]["errorcode"] == 100
    await raw.ws.send_str(json.dumps({"m": 0, "i": 2, "n": "GetLevel1", "o": "{nope"}))
    frame = await raw.recv()
    assert frame["m"] == 5 and frame["i"] == 2 and frame["o"]["errorcode"] == 100


async def test_api_methods_share_the_http_dispatch(sim: Simulator, raw: Raw) -> None:
    """GetLevel1 over the socket answers what HTTP answers; private calls need a login."""
    reply = await raw.call("GetLevel1", {"OMSId": 1, "InstrumentId": 1})
    assert (reply["o"]["BestBid"], reply["o"]["BestOffer"]) == (3998, 4002)
    refused = await raw.call("GetAccountPositions", {"OMSId": 1, "AccountId": 1})
    assert refused["o"]["errorcode"] == 20
    assert (await raw.login(sim))["o"]["Authenticated"] is True
    positions = await raw.call("GetAccountPositions", {"OMSId": 1, "AccountId": 1})
    assert {p["ProductSymbol"] for p in positions["o"]} >= {"USDT", "COPM"}


async def test_web_authenticate_user_reuses_an_http_session(sim: Simulator, raw: Raw) -> None:
    """WebAuthenticateUser {SessionToken} adopts a session opened over HTTP."""
    async with aiohttp.ClientSession() as http:
        d = sim.demo
        body = {"UserName": d.username, "Password": d.password}
        async with http.post(sim.url + "/AuthenticateUser", json=body) as resp:
            token = (await resp.json())["SessionToken"]
    reply = await raw.call("WebAuthenticateUser", {"SessionToken": token})
    assert reply["o"]["Authenticated"] is True
    assert (await raw.call("GetUserAccounts", {"OMSId": 1}))["o"] == [1]


async def test_a_guide_login_authenticates_the_socket_until_log_out() -> None:
    """In the guide dialect the login answers no SessionToken, yet the socket is logged in
    as the answer's user (private calls, account events) until LogOut."""
    async with (
        Simulator(attrs.evolve(CONFIG, dialect="guide")) as sim,
        aiohttp.ClientSession() as session,
        session.ws_connect(sim.ws_url) as ws,
    ):
        raw = Raw(ws)
        answer = (await raw.login(sim))["o"]
        assert answer["authenticated"] is True and "SessionToken" not in answer
        accounts = await raw.call("GetUserAccounts", {"OMSId": 1})
        assert accounts["m"] == 1 and accounts["o"] == [1]
        subscribed = await raw.call("SubscribeAccountEvents", {"AccountId": 1, "OMSId": 1})
        assert subscribed["o"] == {"Subscribe": True}
        await sell(sim, raw)
        assert "OrderStateEvent" in {f["n"] for f in await raw.quiet()}
        await raw.call("LogOut", {})
        refused = await raw.call("GetUserAccounts", {"OMSId": 1})
        assert refused["o"]["errorcode"] == 20


async def test_a_2fa_login_holds_the_socket_pending_until_authenticate_2fa() -> None:
    """A 2FA user's login leaves the socket unauthenticated (errorcode 20) until
    Authenticate2FA {Code} alone, the pending token held by the socket, completes it."""
    config = attrs.evolve(CONFIG, users=(DemoUser(), TWOFA))
    async with (
        Simulator(config) as sim,
        aiohttp.ClientSession() as session,
        session.ws_connect(sim.ws_url) as ws,
    ):
        raw = Raw(ws)
        body = {"UserName": TWOFA.username, "Password": TWOFA.password}
        challenge = (await raw.call("AuthenticateUser", body))["o"]
        assert challenge["Requires2FA"] is True and "SessionToken" not in challenge
        refused = await raw.call("GetUserAccounts", {"OMSId": 1})
        assert refused["o"]["errorcode"] == 20
        wrong = (await raw.call("Authenticate2FA", {"Code": "000000"}))["o"]
        assert wrong["Authenticated"] is False
        done = (await raw.call("Authenticate2FA", {"Code": TWOFA_CODE}))["o"]
        assert done["Authenticated"] is True and done["SessionToken"]
        assert (await raw.call("GetUserAccounts", {"OMSId": 1}))["o"] == [70]


async def test_second_subscription_is_already_subscribed(raw: Raw) -> None:
    """Subscribing twice to the same feed answers errorcode 909 "Already Subscribed"."""
    first = await raw.call("SubscribeLevel1", {"OMSId": 1, "InstrumentId": 1})
    assert first["o"]["InstrumentId"] == 1
    second = await raw.call("SubscribeLevel1", {"OMSId": 1, "InstrumentId": 1})
    assert second["o"]["errorcode"] == 909 and second["o"]["errormsg"] == "Already Subscribed"


async def test_level2_snapshot_then_updates_follow_the_book(sim: Simulator, raw: Raw) -> None:
    """The SubscribeLevel2 reply is the snapshot; a fill sends an update row by price."""
    snap = await raw.call("SubscribeLevel2", {"OMSId": 1, "InstrumentId": 1, "Depth": 3})
    assert len(snap["o"]) == 6 and snap["o"][0][6] == 3998
    await raw.login(sim)
    await sell(sim, raw)
    update = await raw.until("Level2UpdateEvent")
    (row,) = update["o"]
    assert (row[3], row[6], row[8], row[9]) == (1, 3998, 2490, 0)
    assert row[0] > snap["o"][0][0]


async def test_level1_and_trades_events_follow_a_fill(sim: Simulator, raw: Raw) -> None:
    """A fill publishes Level1UpdateEvent and a TradeDataUpdateEvent row (taker side)."""
    await raw.call("SubscribeLevel1", {"OMSId": 1, "InstrumentId": 1})
    trades = await raw.call("SubscribeTrades", {"OMSId": 1, "InstrumentId": 1})
    assert trades["o"] == []
    await raw.login(sim)
    await sell(sim, raw)
    level1 = await raw.until("Level1UpdateEvent")
    assert level1["o"]["LastTradedPx"] == 3998
    event = await raw.until("TradeDataUpdateEvent")
    (row,) = event["o"]
    assert (row[1], row[2], row[3], row[8]) == (1, 10, 3998, 1)


async def test_account_events_cover_orders_trades_positions_and_rejects(
    sim: Simulator, raw: Raw
) -> None:
    """Account subscribers see order state, trades, positions and both reject events."""
    assert (await raw.call("SubscribeAccountEvents", {"AccountId": 1}))["o"]["errorcode"] == 20
    await raw.login(sim)
    assert (await raw.call("SubscribeAccountEvents", {"AccountId": 1, "OMSId": 1}))["o"] == {
        "Subscribe": True
    }
    await sell(sim, raw)
    names = {f["n"] for f in await raw.quiet()}
    assert {"OrderStateEvent", "OrderTradeEvent", "AccountPositionEvent"} <= names
    await sell(sim, raw, "999999")
    names = {f["n"] for f in await raw.quiet()}
    assert "NewOrderRejectEvent" in names
    await raw.call("CancelOrder", {"OMSId": 1, "AccountId": 1, "OrderId": 123})
    assert "CancelOrderRejectEvent" in {f["n"] for f in await raw.quiet()}


async def test_ticket_events_follow_simulated_time(sim: Simulator, raw: Raw) -> None:
    """Deposit and withdraw tickets publish an update event at every status step."""
    await raw.login(sim)
    await raw.call("SubscribeAccountEvents", {"AccountId": 1, "OMSId": 1})
    created = await raw.call(
        "CreateDepositTicket", {"OMSId": 1, "AccountId": 1, "AssetId": 1, "Amount": 5}
    )
    assert created["m"] == 1
    first = await raw.until("DepositTicketUpdateEvent")
    sim.advance(60)
    later = await raw.until("DepositTicketUpdateEvent")
    assert later["o"]["Status"] != first["o"]["Status"]


async def test_unsubscribe_stops_events(sim: Simulator, raw: Raw) -> None:
    """After UnsubscribeLevel2 a fill sends no Level2UpdateEvent."""
    await raw.call("SubscribeLevel2", {"OMSId": 1, "InstrumentId": 1, "Depth": 3})
    await raw.call("UnsubscribeLevel2", {"OMSId": 1, "InstrumentId": 1})
    await raw.login(sim)
    await sell(sim, raw)
    assert "Level2UpdateEvent" not in {f["n"] for f in await raw.quiet()}


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("ws_skip", 0), ("ws_duplicate", 2)],
)
async def test_level2_skip_and_duplicate_faults(
    sim: Simulator, raw: Raw, kind: str, expected: int
) -> None:
    """ws_skip loses one Level2 update; ws_duplicate sends it twice."""
    await raw.call("SubscribeLevel2", {"OMSId": 1, "InstrumentId": 1, "Depth": 3})
    await raw.login(sim)
    sim.faults.inject(Fault("Level2UpdateEvent", kind, times=1))
    await sell(sim, raw)
    updates = [f for f in await raw.quiet() if f["n"] == "Level2UpdateEvent"]
    assert len(updates) == expected


async def test_reorder_fault_sends_an_event_after_the_next_frame(sim: Simulator, raw: Raw) -> None:
    """ws_reorder holds a frame back until the following one went out."""
    await raw.call("SubscribeLevel1", {"OMSId": 1, "InstrumentId": 1})
    await raw.login(sim)
    sim.faults.inject(Fault("Level1UpdateEvent", "ws_reorder", times=1))
    await sell(sim, raw)
    assert [f["n"] for f in await raw.quiet()] == []
    pong = await raw.call("Ping")
    assert pong["o"] == {"msg": "PONG"}
    late = await raw.recv()
    assert late["n"] == "Level1UpdateEvent"


async def test_silent_fault_keeps_the_socket_open_and_mute(sim: Simulator, raw: Raw) -> None:
    """ws_silent: the connection stays open but answers nothing, not even Ping."""
    sim.faults.inject(Fault("Ping", "ws_silent", times=1))
    await raw.send("Ping")
    assert await raw.quiet() == []
    assert not raw.ws.closed and sim.gateway.connections == 1


async def test_drop_fault_closes_the_connection(sim: Simulator, raw: Raw) -> None:
    """ws_drop closes the TCP connection instead of answering."""
    sim.faults.inject(Fault("Ping", "ws_drop", times=1))
    await raw.send("Ping")
    msg = await asyncio.wait_for(raw.ws.receive(), 5)
    assert msg.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.ERROR)


async def test_phantom_fault_never_deletes_levels_leaving_the_window(
    sim: Simulator, raw: Raw
) -> None:
    """With ws_phantom a level pushed out of a Depth-1 window is never deleted."""
    sim.faults.inject(Fault("SubscribeLevel2", "ws_phantom", times=1))
    await raw.call("SubscribeLevel2", {"OMSId": 1, "InstrumentId": 1, "Depth": 1})
    await raw.login(sim)
    limit = {"InstrumentId": 1, "AccountId": 1, "OMSId": 1, "Side": 1, "OrderType": 2}
    await raw.call("SendOrder", {**limit, "Quantity": 5, "LimitPrice": 4001, "TimeInForce": 1})
    rows = [r for f in await raw.quiet() if f["n"] == "Level2UpdateEvent" for r in f["o"]]
    assert [r[6] for r in rows if r[3] == 0] == [4001]
    assert not [r for r in rows if r[3] == 2]


async def test_a_smaller_window_deletes_levels_that_leave_it(sim: Simulator, raw: Raw) -> None:
    """Without the fault, a level pushed out of the Depth window gets a delete row."""
    await raw.call("SubscribeLevel2", {"OMSId": 1, "InstrumentId": 1, "Depth": 1})
    await raw.login(sim)
    limit = {"InstrumentId": 1, "AccountId": 1, "OMSId": 1, "Side": 1, "OrderType": 2}
    await raw.call("SendOrder", {**limit, "Quantity": 5, "LimitPrice": 4001, "TimeInForce": 1})
    rows = [r for f in await raw.quiet() if f["n"] == "Level2UpdateEvent" for r in f["o"]]
    assert [(r[3], r[6]) for r in rows] == [(0, 4001), (2, 4002)]


async def test_delay_fault_sends_an_event_late(sim: Simulator, raw: Raw) -> None:
    """ws_delay holds one event back: a reply sent after it arrives first."""
    await raw.call("SubscribeLevel1", {"OMSId": 1, "InstrumentId": 1})
    await raw.login(sim)
    sim.faults.inject(Fault("Level1UpdateEvent", "ws_delay", times=1, delay=0.3))
    await sell(sim, raw)
    pong = await raw.call("Ping")
    assert pong["o"] == {"msg": "PONG"}
    late = await raw.recv()
    assert late["n"] == "Level1UpdateEvent" and late["o"]["LastTradedPx"] == 3998


async def test_socket_faults_leave_http_calls_alone(sim: Simulator) -> None:
    """A "*" socket fault never turns an HTTP answer into a fault response."""
    sim.faults.inject(Fault("*", "ws_drop"))
    async with aiohttp.ClientSession() as http, http.post(sim.url + "/Ping", json={}) as resp:
        assert resp.status == 200 and await resp.json() == {"msg": "PONG"}
