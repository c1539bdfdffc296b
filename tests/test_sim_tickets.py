"""Deposit and withdraw tickets through HTTP, moved along by the simulator's clock."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import aiohttp
import pytest

from kiiex_async import auth
from kiiex_async.sim import DemoUser, ProductSpec, SimConfig, Simulator
from kiiex_async.sim._config import DEFAULT_PRODUCTS

T0 = 1_700_000_000.0
PRODUCTS = (
    ProductSpec(1, "USDT", "Tether USD", withdraw_fee=D("1.5")),
    *DEFAULT_PRODUCTS[1:],
)
CONFIG = SimConfig(
    seed=9,
    time_speed=0.0,
    start_time=T0,
    drift_bps=D(0),
    products=PRODUCTS,
    deposit_step_seconds=3.0,
    withdraw_step_seconds=2.0,
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


class Api:
    """POST JSON, decode with Decimal, carry the session token."""

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

    async def login(self, user: DemoUser) -> None:
        body = auth.signed_headers(
            api_key=user.api_key, api_secret=user.api_secret, user_id=user.user_id
        )
        answer = await self("AuthenticateUser", body)
        if answer.get("Requires2FA"):
            self.headers = {"Pending2FaToken": answer["Pending2FaToken"]}
            answer = await self("Authenticate2FA", {"Code": user.two_fa_code})
        self.headers = {"aptoken": answer["SessionToken"]}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(CONFIG) as simulator:
        yield simulator


@pytest.fixture
async def api(sim: Simulator) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as http:
        client = Api(http, sim)
        await client.login(sim.demo)
        yield client


async def position(api: Api, symbol: str) -> tuple[Any, ...]:
    rows = await api("GetAccountPositions", {"AccountId": 1})
    row = next(r for r in rows if r["ProductSymbol"] == symbol)
    return row["Amount"], row["Hold"], row["PendingDeposits"], row["PendingWithdraws"]


SLATE_DEPOSIT = {
    "assetManagerId": 1,
    "accountId": 1,
    "assetId": 3,
    "assetName": "COPM",
    "amount": 250000.5,
    "omsId": 1,
    "requestCode": None,
    "requestIP": None,
    "requestUserName": "demo",
    "operatorId": 1,
    "Status": 0,
    "feeAmt": 0,
    "updatedByUser": 1,
    "updatedByUserName": "demo",
    "ticketNumber": 0,
    "depositInfo": '{"Full Name":"Demo User","Bank Name":"Banco Demo"}',
    "createdTimestamp": None,
    "lastUpdateTimeStamp": None,
    "comments": None,
    "attachments": None,
}


async def test_deposit_ticket_life_cycle(sim: Simulator, api: Api) -> None:
    """CreateDepositTicket (SLATE body) -> New ... FullyProcessed on schedule, then credited."""
    created = await api("CreateDepositTicket", SLATE_DEPOSIT)
    assert created["success"] is True and len(created["requestcode"]) == 36
    code = created["requestcode"]
    ticket = await api("GetDepositTicket", {"OMSId": 1, "AccountId": 1, "RequestCode": code})
    assert (ticket["Status"], ticket["amount"], ticket["assetName"]) == (0, D("250000.5"), "COPM")
    assert ticket["depositInfo"] == SLATE_DEPOSIT["depositInfo"]
    assert await position(api, "COPM") == (0, 0, D("250000.5"), 0)
    statuses = []
    for _ in range(3):
        sim.advance(3)
        by_number = await api("GetDepositTicket", {"TicketId": ticket["ticketNumber"]})
        statuses.append(by_number["Status"])
    assert statuses == [1, 2, 5]
    assert await position(api, "COPM") == (D("250000.5"), 0, 0, 0)
    (listed,) = await api("GetDepositTickets", {"OMSId": 1, "OperatorId": 1, "AccountId": 1})
    assert listed["requestCode"] == code and listed["Status"] == 5
    assert listed["lastUpdateTimeStamp"] == "2023-11-14T22:13:29.000Z"
    (row,) = await api("GetDeposits", {"OMSId": 1, "AccountId": 1})
    assert (row["TicketStatus"], row["DepositCode"], row["Amount"]) == (
        "FullyProcessed",
        code,
        D("250000.5"),
    )
    missing = await api("GetDepositTicket", {"RequestCode": "nope"})
    assert missing["errorcode"] == 104


async def test_withdraw_ticket_life_cycle_with_fee(sim: Simulator, api: Api) -> None:
    """CreateWithdrawTicket holds amount+fee, advances to FullyProcessed and debits them."""
    (template_type,) = (await api("GetWithdrawTemplateTypes", {"ProductId": 1}))["TemplateTypes"]
    assert template_type["TemplateName"] == "Standard"
    template = await api("GetWithdrawTemplate", {"ProductId": 1, "TemplateType": "Standard"})
    assert json.loads(template["Template"]) == {
        "TemplateType": "Standard",
        "ExternalAddress": "",
        "Comment": "",
    }
    fee = await api("GetWithdrawFee", {"ProductId": 1, "Amount": 100})
    assert fee == {"FeeAmount": D("1.5"), "TicketAmount": 100}
    form = {"TemplateType": "Standard", "ExternalAddress": "0xdeadbeef", "Comment": ""}
    answer = await api(
        "CreateWithdrawTicket",
        {
            "OMSId": 1,
            "AccountId": 1,
            "ProductId": 1,
            "Amount": "100",
            "TemplateType": "Standard",
            "TemplateForm": json.dumps(form),
        },
    )
    assert answer == {"result": True, "errormsg": None, "errorcode": 0, "detail": None}
    assert await position(api, "USDT") == (10_000, D("101.5"), 0, 100)
    (ticket,) = await api("GetWithdrawTickets", {"OMSId": 1, "AccountId": 1})
    assert (ticket["Status"], ticket["amount"], ticket["feeAmt"]) == (0, 100, D("1.5"))
    assert json.loads(ticket["templateForm"]) == form
    statuses = []
    for _ in range(3):
        sim.advance(2)
        one = await api("GetWithdrawTicket", {"RequestCode": ticket["requestCode"]})
        statuses.append(one["Status"])
    assert statuses == [9, 19, 5]
    assert await position(api, "USDT") == (D("9898.5"), 0, 0, 0)
    (row,) = await api("GetWithdraws", {"AccountId": 1})
    assert (row["TicketStatus"], row["FeeAmount"], row["WithdrawCode"]) == (
        "FullyProcessed",
        D("1.5"),
        ticket["requestCode"],
    )
    by_number = await api("GetWithdrawTicket", {"TicketId": ticket["ticketNumber"]})
    assert by_number["requestCode"] == ticket["requestCode"]
    rows = await api("GetAccountPositions")
    usdt = next(r for r in rows if r["ProductSymbol"] == "USDT")
    assert usdt["TotalDayWithdraws"] == 100


async def test_withdraw_template_form_as_object_and_ccxt_wrapper(sim: Simulator, api: Api) -> None:
    """TemplateForm may be an object; ccxt's {TfaType,TFaCode,Payload:"<json>"} is unwrapped."""
    await api(
        "CreateWithdrawTicket",
        {"ProductId": 2, "Amount": 5, "TemplateType": "Standard",
         "TemplateForm": {"ExternalAddress": "0xa"}},
    )  # fmt: skip
    payload = {
        "omsId": 1,
        "AccountId": 1,
        "ProductId": 2,
        "Amount": 6.25,
        "TemplateForm": json.dumps({"TemplateType": "Standard", "ExternalAddress": "0xb"}),
        "TemplateType": "Standard",
    }
    wrapped = {"TfaType": "Google", "TFaCode": "123456", "Payload": json.dumps(payload)}
    answer = await api("CreateWithdrawTicket", wrapped)
    assert answer["result"] is True
    tickets = await api("GetWithdrawTickets", {"StartIndex": 0, "Limit": 200})
    assert [t["amount"] for t in tickets] == [5, D("6.25")]
    assert json.loads(tickets[0]["templateForm"]) == {"ExternalAddress": "0xa"}
    assert [t["amount"] for t in await api("GetWithdrawTickets", {"StartIndex": 1})] == [D("6.25")]


async def test_withdraw_insufficient_balance_is_the_documented_answer(
    sim: Simulator, api: Api
) -> None:
    """A withdrawal over the available balance answers SLATE's result:true/100 object."""
    answer = await api(
        "CreateWithdrawTicket",
        {"ProductId": 1, "Amount": 10_000, "TemplateForm": {"ExternalAddress": "0xa"}},
    )
    assert answer == {
        "result": True,
        "errormsg": "Invalid Request",
        "errorcode": 100,
        "detail": "Insufficient Balance",
    }
    assert await api("GetWithdrawTickets") == []


async def test_withdraw_needs_an_address_and_a_known_template(sim: Simulator, api: Api) -> None:
    """Missing ExternalAddress is errorcode 100; an unknown TemplateType errorcode 104."""
    no_address = await api(
        "CreateWithdrawTicket", {"ProductId": 1, "Amount": 1, "TemplateForm": "{}"}
    )
    assert no_address["result"] is False and no_address["errorcode"] == 100
    unknown = await api(
        "CreateWithdrawTicket",
        {
            "ProductId": 1,
            "Amount": 1,
            "TemplateType": "Wire",
            "TemplateForm": {"ExternalAddress": "x"},
        },
    )
    assert unknown["errorcode"] == 104


async def test_failed_withdrawal_releases_the_hold(sim: Simulator, api: Api) -> None:
    """A withdrawal forced to fail ends Failed and gives the held amount back."""
    sim.exchange.withdraw_outcomes.append("Failed")
    await api(
        "CreateWithdrawTicket",
        {"ProductId": 2, "Amount": 40, "TemplateForm": {"ExternalAddress": "0xa"}},
    )
    sim.advance(60)
    (ticket,) = await api("GetWithdrawTickets")
    assert ticket["Status"] == 6 and ticket["rejectReason"]
    rows = await api("GetAccountPositions")
    usdc = next(r for r in rows if r["ProductSymbol"] == "USDC")
    assert (usdc["Amount"], usdc["Hold"]) == (10_000, 0)


async def test_two_factor_user_withdrawal_goes_through_pending_2fa(sim: Simulator) -> None:
    """A 2FA user's withdrawal without a code passes Pending2Fa (8); a wrong code is refused."""
    async with aiohttp.ClientSession() as http:
        api = Api(http, sim)
        await api.login(sim.config.users[1])
        await api(
            "CreateWithdrawTicket",
            {"ProductId": 2, "Amount": 1, "TemplateForm": {"ExternalAddress": "0xa"}},
        )
        sim.advance(2)
        (ticket,) = await api("GetWithdrawTickets")
        assert ticket["Status"] == 8
        payload = json.dumps(
            {"ProductId": 2, "Amount": 1, "TemplateForm": {"ExternalAddress": "0xa"}}
        )
        wrong = await api("CreateWithdrawTicket", {"TFaCode": "1", "Payload": payload})
        assert wrong["result"] is False


async def test_deposit_info_is_a_json_string_of_addresses(sim: Simulator, api: Api) -> None:
    """GetDepositInfo returns DepositInfo as JSON text; GenerateNewKey appends an address."""
    first = await api("GetDepositInfo", {"ProductId": 1, "GenerateNewKey": False})
    addresses = json.loads(first["DepositInfo"])
    assert len(addresses) == 1 and addresses[0].startswith("0x") and len(addresses[0]) == 42
    again = await api("GetDepositInfo", {"ProductId": 1})
    assert json.loads(again["DepositInfo"]) == addresses
    more = await api("GetDepositInfo", {"ProductId": 1, "GenerateNewKey": "true"})
    assert json.loads(more["DepositInfo"])[:1] == addresses
    assert len(json.loads(more["DepositInfo"])) == 2
