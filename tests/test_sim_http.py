"""The simulator over real HTTP (plain aiohttp client): routing, casing, auth, public data."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import aiohttp
import pytest

from kiiex_async import auth
from kiiex_async.sim import DemoUser, SimConfig, Simulator

T0 = 1_700_000_000.0
CONFIG = SimConfig(
    seed=11,
    time_speed=0.0,
    start_time=T0,
    drift_bps=D(0),
    session_ttl=60.0,
    users=(
        DemoUser(),
        DemoUser(
            user_id=7,
            account_id=70,
            username="twofa",
            api_key="twofa-key",
            two_fa_code="424242",
        ),
    ),
)


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(CONFIG) as simulator:
        yield simulator


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def post(
    http: aiohttp.ClientSession,
    url: str,
    payload: Any = None,
    *,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    data = b"" if payload is None else json.dumps(payload).encode()
    async with http.post(url, data=data, headers=headers) as resp:
        return resp.status, json.loads(await resp.read(), parse_float=D)


async def get(
    http: aiohttp.ClientSession,
    url: str,
    params: dict[str, str] | None = None,
    *,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    async with http.get(url, params=params, headers=headers) as resp:
        return resp.status, json.loads(await resp.read(), parse_float=D)


async def login(http: aiohttp.ClientSession, sim: Simulator) -> dict[str, str]:
    demo = sim.demo
    body = auth.signed_headers(api_key=demo.api_key, api_secret=demo.api_secret, user_id=1)
    status, answer = await post(http, f"{sim.url}/AuthenticateUser", body)
    assert status == 200 and answer["Authenticated"] is True
    return {"aptoken": answer["SessionToken"]}


NOT_AUTHORIZED = {"result": False, "errormsg": "Not Authorized", "errorcode": 20, "detail": None}


async def test_raw_script_authenticates_with_the_documented_signature_and_trades(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """A hand-written client (hashlib HMAC, no SDK code) logs in and places an order."""
    nonce = "2247733562"
    message = (nonce + "1" + sim.demo.api_key).encode()
    signature = hmac.new(sim.demo.api_secret.encode(), message, hashlib.sha256).hexdigest()
    body = {
        "APIKey": sim.demo.api_key,
        "Signature": signature,
        "UserId": "1",
        "Nonce": nonce,
        "UserName": "demo",
    }
    status, answer = await post(http, f"{sim.url}/AuthenticateUser", body)
    assert status == 200
    assert answer["Authenticated"] is True and answer["errormsg"] == ""
    assert answer["User"] == {
        "UserId": 1,
        "UserName": "demo",
        "Email": "demo@kiiex.invalid",
        "EmailVerified": True,
        "AccountId": 1,
        "OMSId": 1,
        "Use2FA": False,
    }
    assert len(answer["SessionToken"]) == 36 and answer["SessionToken"].count("-") == 4
    order = {
        "OMSId": 1,
        "AccountId": 1,
        "InstrumentId": 1,
        "Side": 1,
        "OrderType": 1,
        "TimeInForce": 1,
        "Quantity": 100.0,
        "ClientOrderId": 123456789,
    }
    headers = {"aptoken": answer["SessionToken"], "Content-Type": "application/json"}
    status, sent = await post(http, f"{sim.url}/SendOrder", order, headers=headers)
    assert status == 200
    assert sent == {"status": "Accepted", "errormsg": "", "OrderId": sent["OrderId"]}
    status, state = await post(
        http,
        f"{sim.url}/GetOrderStatus",
        {"OMSId": 1, "AccountId": 1, "OrderId": sent["OrderId"]},
        headers=headers,
    )
    assert state["OrderState"] == "FullyExecuted" and state["ClientOrderId"] == 123456789
    assert state["QuantityExecuted"] == 100 and state["AvgPrice"] == 3998


async def test_api_key_login_by_headers_on_a_get(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """notbank style: GET AuthenticateUser with APIKey/Signature/UserId/Nonce headers."""
    demo = sim.demo
    headers = auth.signed_headers(api_key=demo.api_key, api_secret=demo.api_secret, user_id=1)
    status, answer = await get(http, f"{sim.url}/AuthenticateUser", headers=headers)
    assert status == 200 and answer["Authenticated"] is True
    status, accounts = await get(
        http, f"{sim.url}/GetUserAccounts", headers={"APToken": answer["SessionToken"]}
    )
    assert accounts == [1]


async def test_password_login_and_failure_shape(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """UserName/Password logs in; wrong credentials answer HTTP 200 Authenticated:false."""
    good = {"UserName": "demo", "Password": sim.demo.password}
    status, answer = await post(http, f"{sim.url}/AuthenticateUser", good)
    assert answer["Authenticated"] is True and answer["Requires2FA"] is False
    status, answer = await post(
        http, f"{sim.url}/AuthenticateUser", {"UserName": "demo", "Password": "nope"}
    )
    assert status == 200
    assert answer == {
        "Authenticated": False,
        "Locked": False,
        "errormsg": "Invalid username or password",
    }


async def test_bad_signature_is_refused(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A signature made with the wrong secret (or for another user id) does not log in."""
    demo = sim.demo
    forged = auth.signed_headers(api_key=demo.api_key, api_secret="wrong", user_id=1)
    _, answer = await post(http, f"{sim.url}/AuthenticateUser", forged)
    assert answer["Authenticated"] is False
    other_user = auth.signed_headers(api_key=demo.api_key, api_secret=demo.api_secret, user_id=2)
    _, answer = await post(http, f"{sim.url}/AuthenticateUser", other_user)
    assert answer["Authenticated"] is False
    _, answer = await get(http, f"{sim.url}/GetUserInfo", headers=forged)
    assert answer == NOT_AUTHORIZED


async def test_private_call_without_auth_is_not_authorized(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """A private call with no session answers HTTP 200 with errorcode 20."""
    status, answer = await post(http, f"{sim.url}/GetAccountPositions", {"AccountId": 1})
    assert (status, answer) == (200, NOT_AUTHORIZED)
    status, answer = await post(
        http, f"{sim.url}/GetAccountPositions", {}, headers={"aptoken": "not-a-token"}
    )
    assert answer == NOT_AUTHORIZED


async def test_per_request_signed_headers_authorize_private_calls(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """ccxt style: each private request carries Nonce/APIKey/Signature/UserId instead of a token."""
    demo = sim.demo
    headers = auth.signed_headers(api_key=demo.api_key, api_secret=demo.api_secret, user_id=1)
    status, positions = await get(
        http,
        f"{sim.url.replace('/ap', '/AP')}/GetAccountPositions",
        {"omsId": "1"},
        headers=headers,
    )
    assert status == 200
    assert {p["ProductSymbol"]: p["Amount"] for p in positions} == {
        "USDT": 10_000,
        "USDC": 10_000,
        "COPM": 0,
        "COP": 0,
    }


async def test_sessions_expire_after_inactivity_and_on_demand(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """A token dies session_ttl after its last use, or when expire_sessions() is called."""
    headers = await login(http, sim)
    sim.advance(59)
    assert (await get(http, f"{sim.url}/GetUserAccounts", headers=headers))[1] == [1]
    sim.advance(59)
    assert (await get(http, f"{sim.url}/GetUserAccounts", headers=headers))[1] == [1]
    sim.advance(61)
    assert (await get(http, f"{sim.url}/GetUserAccounts", headers=headers))[1] == NOT_AUTHORIZED
    headers = await login(http, sim)
    assert sim.expire_sessions() == 1
    assert (await get(http, f"{sim.url}/GetUserAccounts", headers=headers))[1] == NOT_AUTHORIZED


async def test_log_out_ends_the_session(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """LogOut answers the generic success object and invalidates the token."""
    headers = await login(http, sim)
    _, answer = await post(http, f"{sim.url}/LogOut", {}, headers=headers)
    assert answer == {"result": True, "errormsg": None, "errorcode": 0, "detail": None}
    assert (await get(http, f"{sim.url}/GetUserInfo", headers=headers))[1] == NOT_AUTHORIZED


async def test_two_factor_login(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """A 2FA user gets Requires2FA + Pending2FaToken; Authenticate2FA with the code -> session."""
    body = {"UserName": "twofa", "Password": "demo-password"}
    _, first = await post(http, f"{sim.url}/AuthenticateUser", body)
    assert first["Requires2FA"] is True and "SessionToken" not in first
    pending = first["Pending2FaToken"]
    assert (await get(http, f"{sim.url}/GetUserInfo", headers={"aptoken": pending}))[
        1
    ] == NOT_AUTHORIZED
    _, wrong = await post(
        http, f"{sim.url}/Authenticate2FA", {"Code": "000000"}, headers={"Pending2FaToken": pending}
    )
    assert wrong["Authenticated"] is False
    _, ok = await get(
        http, f"{sim.url}/Authenticate2FA", {"Code": "424242"}, headers={"Pending2FaToken": pending}
    )
    assert ok["Authenticated"] is True and ok["UserId"] == 7
    _, info = await get(http, f"{sim.url}/GetUserInfo", headers={"aptoken": ok["SessionToken"]})
    assert (info["UserId"], info["AccountId"], info["Use2FA"]) == (7, 70, True)
    _, again = await post(http, f"{sim.url}/AuthenticateUser", body)
    _, ok = await post(
        http,
        f"{sim.url}/Authenticate2FA",
        {"Code": "424242"},
        headers={"aptoken": again["Pending2FaToken"]},
    )
    assert ok["Authenticated"] is True


async def test_basic_auth_authenticate_as_ccxt_signs_in(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """ccxt's ``GET /AP/Authenticate`` with HTTP Basic credentials returns a session token."""
    basic = aiohttp.BasicAuth("demo", sim.demo.password)
    async with http.get(
        f"{sim.url}/Authenticate", params={"grant_type": "client_credentials"}, auth=basic
    ) as resp:
        answer = await resp.json()
    assert answer["Authenticated"] is True and answer["SessionToken"]


async def test_prefix_method_and_keys_are_case_insensitive_on_get_and_post(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """/AP/ or /ap/, any method casing, GET query or POST body, any key casing: same answer."""
    base = sim.base_url
    _, expected = await post(http, f"{base}/ap/GetInstrument", {"OMSId": 1, "InstrumentId": 2})
    variants = [
        await get(http, f"{base}/AP/GetInstrument", {"omsId": "1", "instrumentid": "2"}),
        await get(http, f"{base}/ap/getinstrument", {"INSTRUMENTID": "2"}),
        await post(http, f"{base}/Ap/GETINSTRUMENT", {"instrumentId": "2"}),
        await post(http, f"{base}/ap/GetInstrument", {"InstrumentId": 2.0}),
    ]
    assert all(v == (200, expected) for v in variants)
    assert expected["Symbol"] == "USDCCOPM"


async def test_unknown_method_malformed_body_and_bad_values(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """Unknown method -> 404/104; non-JSON body -> 400/100; bad value -> 200/100."""
    status, answer = await post(http, f"{sim.url}/NoSuchMethod", {})
    assert status == 404 and answer["errorcode"] == 104
    async with http.post(f"{sim.url}/GetInstrument", data=b"{oops") as resp:
        assert resp.status == 400
        assert (await resp.json())["errorcode"] == 100
    status, answer = await post(http, f"{sim.url}/GetInstrument", {"InstrumentId": "two"})
    assert (status, answer["result"], answer["errorcode"]) == (200, False, 100)
    status, answer = await post(http, f"{sim.url}/GetInstrument", {"InstrumentId": 10000})
    assert answer == {
        "result": False,
        "errormsg": "Invalid InstrumentId: 10000",
        "errorcode": 100,
        "detail": None,
    }
    async with http.get(f"{sim.base_url}/api/Ping") as resp:
        assert resp.status == 404


async def test_products_and_instruments_carry_precision(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """GetProducts has DecimalPlaces/ProductType; instruments QuantityIncrement & co, exact."""
    _, products = await post(http, f"{sim.url}/GetProducts", {"OMSId": 1})
    assert [
        (p["ProductId"], p["Product"], p["ProductType"], p["DecimalPlaces"]) for p in products
    ] == [
        (1, "USDT", "CryptoCurrency", 6),
        (2, "USDC", "CryptoCurrency", 6),
        (3, "COPM", "CryptoCurrency", 2),
        (4, "COP", "NationalCurrency", 2),
    ]
    assert products[2]["TickSize"] == D("0.01")
    async with http.post(f"{sim.url}/GetInstruments", data=b"{}") as resp:
        text = await resp.text()
    assert '"QuantityIncrement":0.01,"PriceIncrement":0.01,"MinimumQuantity":1,' in text
    instruments = json.loads(text, parse_float=D)
    assert [
        (i["InstrumentId"], i["Symbol"], i["Product1"], i["Product2"]) for i in instruments
    ] == [
        (1, "USDTCOPM", 1, 3),
        (2, "USDCCOPM", 2, 3),
        (3, "USDCUSDT", 2, 1),
        (4, "USDTCOP", 1, 4),
    ]
    assert instruments[2]["PriceIncrement"] == D("0.0001")
    assert all(i["SessionStatus"] == "Running" and i["IsDisable"] is False for i in instruments)


async def test_level1_l2_and_summary_are_consistent_with_the_book(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """Level1 best bid/offer match the L2 rows; TimeStamp is a string; summary has 6 columns."""
    _, l1 = await post(http, f"{sim.url}/GetLevel1", {"OMSId": 1, "InstrumentId": 1})
    assert (l1["BestBid"], l1["BestOffer"], l1["BidQty"], l1["AskQty"]) == (3998, 4002, 2500, 2500)
    assert l1["TimeStamp"] == str(int(T0 * 1000))
    assert list(l1) == [  # the ccxt ndax fetchTicker sample, in its order
        "OMSId", "InstrumentId", "BestBid", "BestOffer", "LastTradedPx", "LastTradedQty",
        "LastTradeTime", "SessionOpen", "SessionHigh", "SessionLow", "SessionClose", "Volume",
        "CurrentDayVolume", "CurrentDayNotional", "CurrentDayNumTrades", "CurrentDayPxChange",
        "Rolling24HrVolume", "Rolling24HrNotional", "Rolling24NumTrades", "Rolling24HrPxChange",
        "TimeStamp", "BidQty", "AskQty", "BidOrderCt", "AskOrderCt", "Rolling24HrPxChangePercent",
    ]  # fmt: skip
    _, rows = await get(http, f"{sim.url}/GetL2Snapshot", {"InstrumentId": "1", "Depth": "3"})
    assert all(len(r) == 10 for r in rows) and len(rows) == 6
    bids = [r for r in rows if r[9] == 0]
    asks = [r for r in rows if r[9] == 1]
    assert [r[6] for r in bids] == [3998, 3996, 3994] and [r[6] for r in asks] == [4002, 4004, 4006]
    assert all(r[7] == 1 and r[8] == 2500 and r[5] == 1 for r in rows)
    _, summary = await post(
        http, f"{sim.url}/GetLevel1SummaryMin", {"OMSId": 1, "InstrumentIds": "[1,3]"}
    )
    assert summary == [[1, "USDTCOPM", 4000, 0, 0, 0], [3, "USDCUSDT", 1, 0, 0, 0]]
    _, everything = await get(http, f"{sim.url}/GetLevel1SummaryMin")
    assert [row[0] for row in everything] == [1, 2, 3, 4]


async def test_level1_changes_after_a_trade(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """The cached Level1 is invalidated by a trade: last price, volume and 24h change move."""
    headers = await login(http, sim)
    await post(http, f"{sim.url}/GetLevel1", {"InstrumentId": 1})
    order = {"InstrumentId": 1, "Side": 1, "OrderType": 1, "Quantity": "3000"}
    await post(http, f"{sim.url}/SendOrder", order, headers=headers)
    _, l1 = await post(http, f"{sim.url}/GetLevel1", {"InstrumentId": 1})
    assert (l1["LastTradedPx"], l1["LastTradedQty"], l1["CurrentDayNumTrades"]) == (3996, 500, 2)
    assert l1["Rolling24HrVolume"] == 3000 and l1["Rolling24HrPxChange"] == -4
    assert l1["Rolling24HrPxChangePercent"] == D("-0.1")
    assert l1["BestBid"] == 3996 and l1["BidQty"] == 2000
    _, summary = await post(http, f"{sim.url}/GetLevel1SummaryMin", {"InstrumentIds": [1]})
    assert summary == [[1, "USDTCOPM", 3996, -4, D("-0.1"), 3000]]


async def test_ping_and_health_check(sim: Simulator, http: aiohttp.ClientSession) -> None:
    """Ping answers {"msg":"PONG"}; HealthCheck the generic success object."""
    assert await get(http, f"{sim.url}/Ping") == (200, {"msg": "PONG"})
    _, health = await post(http, f"{sim.url}/HealthCheck")
    assert health["result"] is True


async def test_user_info_and_accounts_and_foreign_accounts(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    """GetUserInfo is PascalCase; asking for another user's account is Not Authorized."""
    headers = await login(http, sim)
    _, info = await post(http, f"{sim.url}/GetUserInfo", {"OMSId": 1, "UserId": 1}, headers=headers)
    assert (info["UserId"], info["UserName"], info["AccountId"], info["OMSId"]) == (1, "demo", 1, 1)
    _, answer = await post(
        http, f"{sim.url}/GetAccountPositions", {"AccountId": 70}, headers=headers
    )
    assert answer["errorcode"] == 20 and answer["result"] is False
