"""The simulator's ``guide`` dialect over raw HTTP: the quick-start guide's exact shapes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sim_support import SignedApi

from kiiex_async import auth
from kiiex_async.errors import ConfigurationError
from kiiex_async.sim import SimConfig, Simulator

T0 = 1_700_000_000.0
GUIDE = SimConfig(
    seed=5, time_speed=0.0, start_time=T0, drift_bps=D(0), dialect="guide", withdraw_step_seconds=0
)

PAYLOADS = Path(__file__).parent / "payloads" / "guide"
NOT_AUTHORIZED = {"result": False, "errormsg": "Not Authorized", "errorcode": 20, "detail": None}


def sample(name: str) -> Any:
    """The guide's answer sample ``payloads/guide/<name>.json`` (copied verbatim)."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(), parse_float=D)


def _kind(value: object) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, int | D) else type(value).__name__


def assert_guide_shape(answer: Any, shape: Any) -> None:
    """``answer`` has the sample's keys in its order and, value by value, its JSON types
    (a ``null`` may stand for the sample's placeholder ``"text"``); every element of a
    list has the shape of the sample's first element."""
    if isinstance(shape, dict):
        assert isinstance(answer, dict) and list(answer) == list(shape), (answer, shape)
        for key, value in shape.items():
            assert_guide_shape(answer[key], value)
    elif isinstance(shape, list):
        assert isinstance(answer, list) and answer, answer
        for item in answer:
            assert_guide_shape(item, shape[0])
    elif not (answer is None and isinstance(shape, str)):
        assert _kind(answer) == _kind(shape), (answer, shape)


@pytest.fixture
async def api() -> AsyncIterator[SignedApi]:
    async with Simulator(GUIDE) as sim, aiohttp.ClientSession() as http:
        yield SignedApi(http, sim)


async def test_guide_login_answers_the_guide_shape_without_a_session_token(api: SignedApi) -> None:
    """AuthenticateUser answers {"authenticated", "user"{7 camelCase keys}} and opens no session."""
    answer = await api("AuthenticateUser", {**api.signed(), "UserName": "demo"}, sign=False)
    assert_guide_shape(answer, sample("authenticate_user"))
    assert answer["authenticated"] is True
    assert answer["user"]["userId"] == 1 and answer["user"]["accountId"] == 1
    assert len(api.sim.sessions) == 0


async def test_guide_private_calls_need_valid_signed_headers(api: SignedApi) -> None:
    """Without signed headers, or with a forged signature, a private call is Not Authorized."""
    assert await api("GetAccountPositions", {"AccountId": 1}, sign=False) == NOT_AUTHORIZED
    forged = auth.signed_headers(api_key=api.sim.demo.api_key, api_secret="wrong", user_id=1)
    async with api.http.post(f"{api.sim.url}/GetAccountPositions", headers=forged) as resp:
        assert json.loads(await resp.read()) == NOT_AUTHORIZED
    assert len(await api("GetAccountPositions", {"AccountId": 1})) == 4


async def test_guide_positions_are_the_six_camelcase_keys(api: SignedApi) -> None:
    """GetAccountPositions answers only omsId/accountId/productSymbol/productId/amount/hold."""
    rows = await api("GetAccountPositions", {"AccountId": 1, "OMSId": 1, "IncludePending": True})
    assert_guide_shape(rows, sample("get_account_positions"))
    usdt = next(r for r in rows if r["productSymbol"] == "USDT")
    assert (usdt["amount"], usdt["hold"]) == (10_000, 0)


async def test_guide_level1_summary_min_rows_are_strings_found_by_currencies(
    api: SignedApi,
) -> None:
    """GetLevel1SummaryMin rows are all strings; BaseCurrency/QuoteCurrency pick the pair."""
    rows = await api(
        "GetLevel1SummaryMin", {"OMSId": 1, "BaseCurrency": "USDT", "QuoteCurrency": "COPM"}
    )
    assert rows == [["1", "USDTCOPM", "4000", "0", "0", "0"]]
    assert_guide_shape(rows, sample("get_level1_summary_min"))
    flipped = await api("GetLevel1SummaryMin", {"BaseCurrency": "COPM", "QuoteCurrency": "USDT"})
    assert flipped == rows
    assert len(await api("GetLevel1SummaryMin", {"QuoteCurrency": "COPM"})) == 2


async def test_guide_order_status_and_trades_are_the_four_field_shapes(api: SignedApi) -> None:
    """A filled order: GetOrderStatus has 4 fields, each trade tradeId/orderId/quantity/price."""
    sent = await api(
        "SendOrder",
        {"InstrumentId": 1, "OMSId": 1, "AccountId": 1, "TimeInForce": 1, "ClientOrderId": 7,
         "Side": 1, "quantity": 3000, "OrderType": 1},
    )  # fmt: skip
    assert_guide_shape(sent, sample("send_order"))
    assert sent["status"] == "Accepted"
    status = await api("GetOrderStatus", {"omsId": 1, "accountId": 1, "orderId": sent["OrderId"]})
    assert_guide_shape(status, sample("get_order_status"))
    assert (status["OrderState"], status["QuantityExecuted"]) == ("FullyExecuted", 3000)
    trades = await api("GetTradesHistory", {"omsId": 1, "accountId": 1, "orderId": sent["OrderId"]})
    assert_guide_shape(trades, sample("get_trades_history"))
    assert sorted(t["quantity"] for t in trades) == [500, 2500]
    value = sum(t["quantity"] * t["price"] for t in trades)
    assert status["AvgPrice"] == (D(value) / 3000).quantize(D("0.00000001"))


async def test_guide_withdraw_ticket_has_exactly_the_guide_keys(api: SignedApi) -> None:
    """CreateWithdrawTicket answers the envelope; GetWithdrawTickets the guide's 23 keys."""
    answer = await api(
        "CreateWithdrawTicket",
        {"OMSId": 1, "AccountId": 1, "ProductId": 1, "Amount": 5, "feeAmount": 0,
         "TemplateForm": {"ExternalAddress": "0xabc"}, "TemplateType": "Standard"},
    )  # fmt: skip
    assert answer == {"result": True, "errormsg": None, "errorcode": 0, "detail": None}
    assert_guide_shape(answer, sample("create_withdraw_ticket"))
    (ticket,) = await api(
        "GetWithdrawTickets", {"OMSId": 1, "AccountId": 1, "StartIndex": 0, "Limit": 10}
    )
    assert_guide_shape([ticket], sample("get_withdraw_tickets"))
    assert (ticket["amount"], ticket["Status"], ticket["assetName"]) == (5, 5, "USDT")
    assert json.loads(ticket["templateForm"]) == {"ExternalAddress": "0xabc"}


async def test_guide_deposit_ticket_answers_success_and_requestcode(api: SignedApi) -> None:
    """CreateDepositTicket with the guide's body answers {"success", "requestcode"}."""
    answer = await api(
        "CreateDepositTicket",
        {"assetManagerId": 1, "accountId": 1, "assetId": 1, "assetName": "USDT", "amount": 50,
         "omsId": 1, "requestCode": None, "Status": 0, "depositInfo": "{}"},
    )  # fmt: skip
    assert_guide_shape(answer, sample("create_deposit_ticket"))
    assert answer["success"] is True


async def test_guide_dialect_keeps_other_calls_as_apex(api: SignedApi) -> None:
    """Calls the guide does not document keep AlphaPoint's full shapes (orders history here)."""
    await api(
        "SendOrder",
        {"InstrumentId": 1, "Side": 1, "OrderType": 1, "Quantity": 10, "ClientOrderId": 9},
    )
    (order,) = await api("GetOrdersHistory", {"ClientOrderId": 9})
    assert (
        order["ClientOrderId"] == 9 and order["Instrument"] == 1 and "GrossValueExecuted" in order
    )


async def test_apex_dialect_still_issues_session_tokens() -> None:
    """The default dialect answers the PascalCase login with a SessionToken."""
    async with (
        Simulator(SimConfig(time_speed=0.0, start_time=T0)) as sim,
        aiohttp.ClientSession() as http,
    ):
        answer = await SignedApi(http, sim)(
            "AuthenticateUser", SignedApi(http, sim).signed(), sign=False
        )
        assert answer["Authenticated"] is True and len(answer["SessionToken"]) == 36


def test_unknown_dialect_is_a_configuration_error() -> None:
    """SimConfig refuses a dialect it does not speak."""
    with pytest.raises(ConfigurationError, match="dialect"):
        SimConfig(dialect="kraken")
