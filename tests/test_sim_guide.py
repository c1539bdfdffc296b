"""The simulator's ``guide`` dialect over raw HTTP: the quick-start guide's exact shapes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal as D

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

# The keys of each answer sample in KIIEX's "Stablecoin FX Quick Start", in its order.
GUIDE_LOGIN_USER = ["userId", "userName", "email", "emailVerified", "accountId", "omsId", "use2FA"]
GUIDE_POSITION = ["omsId", "accountId", "productSymbol", "productId", "amount", "hold"]
GUIDE_ORDER_STATUS = ["OrderId", "OrderState", "QuantityExecuted", "AvgPrice"]
GUIDE_TRADE = ["tradeId", "orderId", "quantity", "price"]
GUIDE_WITHDRAW_TICKET = [
    "assetManagerId", "accountId", "assetId", "assetName", "amount", "templateForm",
    "templateFormType", "omsId", "requestCode", "requestIP", "requestUserId", "requestUserName",
    "operatorId", "Status", "feeAmt", "updatedByUser", "updatedByUserName", "ticketNumber",
    "createdTimestamp", "lastUpdateTimestamp", "Comments", "Attachments", "AuditLog",
]  # fmt: skip
NOT_AUTHORIZED = {"result": False, "errormsg": "Not Authorized", "errorcode": 20, "detail": None}


@pytest.fixture
async def api() -> AsyncIterator[SignedApi]:
    async with Simulator(GUIDE) as sim, aiohttp.ClientSession() as http:
        yield SignedApi(http, sim)


async def test_guide_login_answers_the_guide_shape_without_a_session_token(api: SignedApi) -> None:
    """AuthenticateUser answers {"authenticated", "user"{7 camelCase keys}} and opens no session."""
    answer = await api("AuthenticateUser", {**api.signed(), "UserName": "demo"}, sign=False)
    assert list(answer) == ["authenticated", "user"] and answer["authenticated"] is True
    assert list(answer["user"]) == GUIDE_LOGIN_USER
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
    assert all(list(row) == GUIDE_POSITION for row in rows)
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
    assert list(sent) == ["status", "errormsg", "OrderId"] and sent["status"] == "Accepted"
    status = await api("GetOrderStatus", {"omsId": 1, "accountId": 1, "orderId": sent["OrderId"]})
    assert list(status) == GUIDE_ORDER_STATUS
    assert (status["OrderState"], status["QuantityExecuted"]) == ("FullyExecuted", 3000)
    trades = await api("GetTradesHistory", {"omsId": 1, "accountId": 1, "orderId": sent["OrderId"]})
    assert all(list(t) == GUIDE_TRADE for t in trades)
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
    (ticket,) = await api(
        "GetWithdrawTickets", {"OMSId": 1, "AccountId": 1, "StartIndex": 0, "Limit": 10}
    )
    assert list(ticket) == GUIDE_WITHDRAW_TICKET
    assert (ticket["amount"], ticket["Status"], ticket["assetName"]) == (5, 5, "USDT")
    assert json.loads(ticket["templateForm"]) == {"ExternalAddress": "0xabc"}


async def test_guide_deposit_ticket_answers_success_and_requestcode(api: SignedApi) -> None:
    """CreateDepositTicket with the guide's body answers {"success", "requestcode"}."""
    answer = await api(
        "CreateDepositTicket",
        {"assetManagerId": 1, "accountId": 1, "assetId": 1, "assetName": "USDT", "amount": 50,
         "omsId": 1, "requestCode": None, "Status": 0, "depositInfo": "{}"},
    )  # fmt: skip
    assert list(answer) == ["success", "requestcode"] and answer["success"] is True


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
