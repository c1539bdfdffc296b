"""Orders, trades and positions through the simulator's HTTP API (plain aiohttp client)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import aiohttp
import pytest

from kiiex_async import auth
from kiiex_async.sim import SimConfig, Simulator

T0 = 1_700_000_000.0
CONFIG = SimConfig(seed=5, time_speed=0.0, start_time=T0, drift_bps=D(0))


class Api:
    """A tiny raw client: POST JSON, decode with Decimal, carry the session token."""

    def __init__(self, http: aiohttp.ClientSession, sim: Simulator) -> None:
        self.http, self.sim = http, sim
        self.headers: dict[str, str] = {}

    async def __call__(self, method: str, payload: dict[str, Any] | None = None) -> Any:
        data = json.dumps(payload or {}).encode()
        async with self.http.post(
            f"{self.sim.url}/{method}", data=data, headers=self.headers
        ) as resp:
            assert resp.status == 200
            return json.loads(await resp.read(), parse_float=D)

    async def login(self) -> None:
        demo = self.sim.demo
        body = auth.signed_headers(api_key=demo.api_key, api_secret=demo.api_secret, user_id=1)
        answer = await self("AuthenticateUser", body)
        self.headers = {"aptoken": answer["SessionToken"]}


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    async with Simulator(CONFIG) as sim, aiohttp.ClientSession() as http:
        client = Api(http, sim)
        await client.login()
        yield client


def positions(rows: list[dict[str, Any]]) -> dict[str, tuple[Any, Any]]:
    return {r["ProductSymbol"]: (r["Amount"], r["Hold"]) for r in rows}


async def test_market_sell_then_trades_fees_and_positions(api: Api) -> None:
    """USDT -> COPM: a market sell fills, the trade shows the fee in COPM, positions add up."""
    sent = await api(
        "SendOrder",
        {"InstrumentId": 1, "Side": 1, "OrderType": 1, "Quantity": 100, "ClientOrderId": 501},
    )
    assert sent["status"] == "Accepted"
    (trade,) = await api("GetTradesHistory", {"AccountId": 1})
    expected = {
        "OrderId": sent["OrderId"],
        "ClientOrderId": 501,
        "InstrumentId": 1,
        "Side": "Sell",
        "Quantity": 100,
        "Price": 3998,
        "Value": 399800,
        "Fee": D("799.6"),
        "FeeProductId": 3,
        "MakerTaker": "Taker",
        "TradeTimeMS": int(T0 * 1000),
    }
    assert {k: trade[k] for k in expected} == expected
    assert trade["TradeId"] and trade["ExecutionId"]
    rows = await api("GetAccountPositions", {"AccountId": 1, "OMSId": 1})
    assert positions(rows)["USDT"] == (9900, 0)
    assert positions(rows)["COPM"] == (D("399000.4"), 0)


async def test_market_buy_by_value(api: Api) -> None:
    """COPM -> USDC style: a market buy with Value spends at most that quote amount."""
    sent = await api("SendOrder", {"InstrumentId": 3, "Side": 0, "OrderType": 1, "Value": "100"})
    order = await api("GetOrderStatus", {"OrderId": sent["OrderId"]})
    assert order["OrderState"] == "FullyExecuted"
    assert order["QuantityExecuted"] == D("99.95")
    assert order["GrossValueExecuted"] == D("99.999975")
    assert order["Price"] == 0 and order["OrderType"] == "Market"


async def test_rejected_order_shape_and_history(api: Api) -> None:
    """Insufficient funds: the documented Rejected answer; the order is in history Rejected."""
    sent = await api(
        "SendOrder",
        {"InstrumentId": 1, "Side": 0, "OrderType": 1, "Quantity": 1, "ClientOrderId": 9},
    )
    assert sent == {"status": "Rejected", "errormsg": "Not_Enough_Funds", "errorcode": 101}
    (order,) = await api("GetOrdersHistory", {"ClientOrderId": 9})
    assert order["OrderState"] == "Rejected" and order["RejectReason"] == "Not_Enough_Funds"


async def test_invalid_quantity_is_a_generic_error(api: Api) -> None:
    """A quantity off the increment is refused with the generic object, errorcode 100."""
    answer = await api(
        "SendOrder", {"InstrumentId": 1, "Side": 1, "OrderType": 1, "Quantity": "0.001"}
    )
    assert answer["result"] is False and answer["errorcode"] == 100
    assert "QuantityIncrement" in answer["detail"]


async def test_limit_order_hold_open_orders_and_cancel_by_client_id(api: Api) -> None:
    """A resting limit sell holds USDT, is listed open, cancels by ClOrderId and frees the hold."""
    sent = await api(
        "SendOrder",
        {
            "InstrumentId": 1,
            "Side": 1,
            "OrderType": 2,
            "Quantity": "10.5",
            "LimitPrice": "4100",
            "TimeInForce": 1,
            "ClientOrderId": 77,
        },
    )
    (open_order,) = await api("GetOpenOrders", {"AccountId": 1})
    assert (open_order["OrderId"], open_order["OrderState"], open_order["Price"]) == (
        sent["OrderId"],
        "Working",
        4100,
    )
    assert positions(await api("GetAccountPositions"))["USDT"] == (10_000, D("10.5"))
    answer = await api("CancelOrder", {"OMSId": 1, "AccountId": 1, "ClOrderId": 77})
    assert answer == {"result": True, "errormsg": None, "errorcode": 0, "detail": None}
    assert await api("GetOpenOrders") == []
    assert positions(await api("GetAccountPositions"))["USDT"] == (10_000, 0)
    order = await api("GetOrderStatus", {"OrderId": sent["OrderId"]})
    assert (order["OrderState"], order["ChangeReason"]) == ("Canceled", "UserModified")
    again = await api("CancelOrder", {"OrderId": sent["OrderId"]})
    assert again["result"] is False and again["errorcode"] == 101


async def test_ioc_partial_fill_over_http(api: Api) -> None:
    """IOC (TimeInForce 3) limit: partial fill, remainder canceled, fills visible as trades."""
    sent = await api(
        "SendOrder",
        {
            "InstrumentId": 3,
            "Side": 1,
            "OrderType": 2,
            "Quantity": 6000,
            "LimitPrice": "0.9995",
            "TimeInForce": 3,
        },
    )
    order = await api("GetOrderStatus", {"OrderId": sent["OrderId"]})
    assert order["OrderState"] == "Canceled"
    assert (order["QuantityExecuted"], order["Quantity"]) == (5000, 0)
    trades = await api("GetTradesHistory", {"OrderId": sent["OrderId"]})
    assert sum(t["Quantity"] for t in trades) == 5000


async def test_fok_over_http(api: Api) -> None:
    """FOK (TimeInForce 4) that cannot fill completely ends Canceled with no trades."""
    sent = await api(
        "SendOrder",
        {"InstrumentId": 3, "Side": 1, "OrderType": 2, "Quantity": 6000, "LimitPrice": "0.9995",
         "TimeInForce": 4},
    )  # fmt: skip
    order = await api("GetOrderStatus", {"OrderId": sent["OrderId"]})
    assert order["OrderState"] == "Canceled" and order["QuantityExecuted"] == 0
    assert await api("GetTradesHistory") == []


async def test_orders_history_filters(api: Api) -> None:
    """GetOrdersHistory filters by ClientOrderId, InstrumentId, time window, StartIndex/Depth."""
    for i, instrument in enumerate((1, 3, 1)):
        await api(
            "SendOrder",
            {"InstrumentId": instrument, "Side": 1, "OrderType": 1, "Quantity": 1,
             "ClientOrderId": 100 + i},
        )  # fmt: skip
        api.sim.advance(10)
    everything = await api("GetOrdersHistory", {"OMSId": 1, "AccountId": 1})
    assert [o["ClientOrderId"] for o in everything] == [102, 101, 100]
    assert [o["ClientOrderId"] for o in await api("GetOrdersHistory", {"InstrumentId": 1})] == [
        102,
        100,
    ]
    by_client = await api("GetOrdersHistory", {"ClientOrderId": 101})
    assert [o["ClientOrderId"] for o in by_client] == [101]
    window = {"StartTimestamp": int(T0) + 5, "EndTimestamp": int(T0 * 1000) + 15_000}
    assert [o["ClientOrderId"] for o in await api("GetOrdersHistory", window)] == [101]
    page = await api("GetOrdersHistory", {"StartIndex": 1, "Depth": 1})
    assert [o["ClientOrderId"] for o in page] == [101]
    assert await api("GetOrdersHistory", {"ClientOrderId": 4242}) == []


async def test_order_history_by_order_id_lists_revisions(api: Api) -> None:
    """GetOrderHistoryByOrderId returns every revision, newest first: one Trade row per fill."""
    sent = await api("SendOrder", {"InstrumentId": 1, "Side": 1, "OrderType": 1, "Quantity": 3000})
    rows = await api("GetOrderHistoryByOrderId", {"OMSId": 1, "OrderId": sent["OrderId"]})
    assert [r["ChangeReason"] for r in rows] == ["Trade", "Trade", "NewInputAccepted"]
    assert rows[0]["OrderState"] == "FullyExecuted"
    assert [r["QuantityExecuted"] for r in rows][:2] == [3000, 2500]


async def test_unknown_order_status_is_not_found(api: Api) -> None:
    """GetOrderStatus of an unknown order answers errorcode 104."""
    answer = await api("GetOrderStatus", {"OrderId": 1})
    assert (answer["result"], answer["errorcode"], answer["errormsg"]) == (
        False,
        104,
        "Resource Not Found",
    )


async def test_cancel_all_orders(api: Api) -> None:
    """CancelAllOrders cancels every working order of the account."""
    for price in ("4100", "4200"):
        await api(
            "SendOrder",
            {"InstrumentId": 1, "Side": 1, "OrderType": 2, "Quantity": 1, "LimitPrice": price},
        )
    assert len(await api("GetOpenOrders")) == 2
    assert (await api("CancelAllOrders", {"AccountId": 1}))["result"] is True
    assert await api("GetOpenOrders") == []
