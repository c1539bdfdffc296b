"""KiiexClient without a network: validation, payloads, login flows, signing vectors.

A :class:`~kiiex_async.testing.MockTransport` plugs in at the seam (``transport=``): it
records every request and answers from a table, so "no request was sent" is an exact,
checkable statement, and everything above the transport (encoding, auth headers, the
status -> error table) runs as in production.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import attrs
import pytest

from kiiex_async import Credentials, errors
from kiiex_async.auth import sign, verify_signature
from kiiex_async.client import PRODUCTION_URL, STAGING_URL, KiiexClient
from kiiex_async.models import (
    Instrument,
    OrderState,
    OrderType,
    Side,
    TimeInForce,
)
from kiiex_async.testing import MockTransport, Request, Response

API_KEY = "28c68ac3kiiexkey"
SECRET = "kiiex-test-secret"
TOKEN = "tok-5d1e"
LOGIN_OK = {"Authenticated": True, "SessionToken": TOKEN, "User": {"UserId": 96, "AccountId": 7}}
ORDER = {
    "OrderId": 55,
    "Instrument": 1,
    "Account": 7,
    "Side": "Sell",
    "OrderType": "Market",
    "OrderState": "FullyExecuted",
    "ClientOrderId": 3,
    "OrigQuantity": 1,
    "QuantityExecuted": 1,
    "AvgPrice": 4000,
}

Answer = Any | Callable[[Mapping[str, Any]], Any]
#: Headers every request carries; ``options()["headers"]`` shows the others.
_STANDARD_HEADERS = frozenset({"content-type", "accept", "user-agent"})


class Seq(list[Any]):
    """Successive answers of one method (the last one repeats)."""


class FakeExchange:
    """Answers a MockTransport's requests from a table (or raises what the table holds).

    ``calls`` holds ``(method, payload, options)`` per request, where ``options`` has the
    HTTP verb (``http``), the non-standard ``headers`` sent (``aptoken`` included) and
    whether the client was ``authenticated`` (had published a session) when it sent it.
    """

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self.calls: list[tuple[str, dict[str, Any], dict[str, Any]]] = []
        self.client: KiiexClient | None = None
        self.transport = MockTransport(self.handle)

    async def handle(self, request: Request) -> Response:
        payload = dict(request.params) if request.method == "GET" else dict(request.json() or {})
        headers = {
            key: value
            for key, value in request.headers.items()
            if key.lower() not in _STANDARD_HEADERS
        }
        authenticated = self.client is not None and self.client.is_authenticated
        options = {"http": request.method, "headers": headers, "authenticated": authenticated}
        self.calls.append((request.name, payload, options))
        await asyncio.sleep(0)  # let concurrent callers interleave, as real I/O would
        answer = self.answers[request.name]
        if isinstance(answer, Seq):
            answer = answer.pop(0) if len(answer) > 1 else answer[0]
        if isinstance(answer, BaseException):
            raise answer
        if callable(answer):
            answer = answer(payload)
        return Response(200, json=answer)

    def methods(self) -> list[str]:
        return [method for method, _, _ in self.calls]

    def payload(self, method: str) -> dict[str, Any]:
        (payload,) = [p for m, p, _ in self.calls if m == method]
        return payload

    def options(self, method: str) -> dict[str, Any]:
        (options,) = [o for m, _, o in self.calls if m == method]
        return options


def make_client(
    answers: dict[str, Answer] | None = None,
    *,
    credentials: Credentials | None = None,
    **kw: Any,
) -> tuple[KiiexClient, FakeExchange]:
    table: dict[str, Answer] = {"AuthenticateUser": LOGIN_OK}
    table.update(answers or {})
    if credentials is None:
        credentials = Credentials(api_key=API_KEY, api_secret=SECRET, user_id=96)
    fake = FakeExchange(table)
    kw.setdefault("rate_limit", None)
    client = KiiexClient(
        "http://127.0.0.1:1/ap", credentials=credentials, transport=fake.transport, **kw
    )
    fake.client = client
    return client, fake


INSTRUMENT = Instrument(
    instrument_id=1,
    symbol="USDTCOPM",
    product1=1,
    product1_symbol="USDT",
    product2=3,
    product2_symbol="COPM",
    quantity_increment=Decimal("0.01"),
    price_increment=Decimal("0.5"),
    minimum_quantity=Decimal("1"),
)


# -- validation happens before any request -------------------------------------------------

INVALID_CALLS: list[tuple[str, Callable[[KiiexClient], Any]]] = [
    ("float quantity", lambda c: c.send_order(1, Side.SELL, 1.5)),  # type: ignore[arg-type]
    ("nan quantity", lambda c: c.send_order(1, Side.SELL, Decimal("NaN"))),
    ("inf quantity", lambda c: c.send_order(1, Side.SELL, Decimal("Infinity"))),
    ("zero quantity", lambda c: c.send_order(1, Side.SELL, Decimal(0))),
    ("negative quantity", lambda c: c.send_order(1, Side.SELL, "-1")),
    ("no quantity", lambda c: c.send_order(1, Side.SELL)),
    ("bool quantity", lambda c: c.send_order(1, Side.SELL, True)),
    ("client id negative", lambda c: c.send_order(1, Side.SELL, 1, client_order_id=-1)),
    ("client id > int64", lambda c: c.send_order(1, Side.SELL, 1, client_order_id=2**63)),
    ("client id bool", lambda c: c.send_order(1, Side.SELL, 1, client_order_id=True)),
    ("limit without price", lambda c: c.send_order(1, Side.BUY, 1, order_type=OrderType.LIMIT)),
    (
        "limit float price",
        lambda c: c.send_order(1, Side.BUY, 1, order_type=OrderType.LIMIT, limit_price=1.0),  # type: ignore[arg-type]
    ),
    ("market with limit price", lambda c: c.send_order(1, Side.BUY, 1, limit_price=Decimal(1))),
    (
        "stop without stop price",
        lambda c: c.send_order(1, Side.BUY, 1, order_type=OrderType.STOP_MARKET),
    ),
    ("value on a sell", lambda c: c.send_order(1, Side.SELL, value=Decimal(10))),
    ("value and quantity", lambda c: c.send_order(1, Side.BUY, 1, value=Decimal(10))),
    ("value on a limit", lambda c: c.send_order(1, Side.BUY, value=10, order_type=OrderType.LIMIT)),
    ("post only market", lambda c: c.send_order(1, Side.BUY, 1, post_only=True)),
    ("unknown side", lambda c: c.send_order(1, Side.UNKNOWN, 1)),
    ("side out of range", lambda c: c.send_order(1, 9, 1)),  # type: ignore[arg-type]
    ("block trade", lambda c: c.send_order(1, Side.BUY, 1, order_type=OrderType.BLOCK_TRADE)),
    ("tif unknown", lambda c: c.send_order(1, Side.BUY, 1, time_in_force=TimeInForce.UNKNOWN)),
    ("instrument id 0", lambda c: c.send_order(0, Side.BUY, 1)),
    ("instrument mismatch", lambda c: c.send_order(2, Side.SELL, 5, instrument=INSTRUMENT)),
    ("below minimum", lambda c: c.send_order(1, Side.SELL, "0.999", instrument=INSTRUMENT)),
    ("cancel without id", lambda c: c.cancel_order()),
    ("cancel with both ids", lambda c: c.cancel_order(order_id=1, client_order_id=2)),
    (
        "withdraw float",
        lambda c: c.create_withdraw_ticket(1, 1.0, template_type="T", template_form={}),  # type: ignore[arg-type]
    ),
    (
        "withdraw no type",
        lambda c: c.create_withdraw_ticket(1, 1, template_type="", template_form={}),
    ),
    ("deposit text", lambda c: c.create_deposit_ticket(3, "ten")),
    ("withdraw fee zero", lambda c: c.get_withdraw_fee(1, 0)),
    ("ids as a string", lambda c: c.get_level1_summary_min("1,2")),  # type: ignore[arg-type]
    ("ticket without lookup", lambda c: c.get_deposit_ticket()),
    ("order id 0", lambda c: c.get_order_status(0)),
    ("negative depth", lambda c: c.get_orders_history(depth=-1)),
    ("account 0", lambda c: c.get_account_positions(account_id=0)),
    (
        "quote both amounts",
        lambda c: c.get_quote(1, side=Side.BUY, base_quantity=1, quote_amount=1),
    ),
]


@pytest.mark.parametrize("call", [c for _, c in INVALID_CALLS], ids=[n for n, _ in INVALID_CALLS])
async def test_invalid_arguments_raise_before_any_request(
    call: Callable[[KiiexClient], Any],
) -> None:
    """Bad arguments raise InvalidInputError and nothing (not even a login) is sent."""
    client, fake = make_client()
    with pytest.raises(errors.InvalidInputError):
        await call(client)
    assert fake.calls == []


async def test_float_amount_error_says_what_to_pass() -> None:
    """A float amount is refused with a message that says to pass a Decimal or str."""
    client, _ = make_client()
    with pytest.raises(errors.InvalidInputError, match="Decimal"):
        await client.send_order(1, Side.SELL, 0.1)  # type: ignore[arg-type]


async def test_below_minimum_is_its_own_error() -> None:
    """Rounding under the instrument's minimum raises BelowMinimumError, nothing sent."""
    client, fake = make_client()
    strict = attrs.evolve(INSTRUMENT, minimum_quantity=Decimal("1.01"))
    with pytest.raises(errors.BelowMinimumError):
        await client.send_order(1, Side.SELL, "1.009", instrument=strict)
    assert fake.calls == []


async def test_private_call_without_credentials_is_configuration_error() -> None:
    """A private call on a client without credentials raises before sending."""
    fake = FakeExchange({})
    client = KiiexClient("http://127.0.0.1:1/ap", transport=fake.transport)
    with pytest.raises(errors.ConfigurationError, match="credentials"):
        await client.get_open_orders()
    assert fake.calls == []


# -- payloads ------------------------------------------------------------------------------


async def test_send_order_limit_payload_is_exact_and_a_write() -> None:
    """A limit order carries the documented PascalCase keys, ints for enums, Decimals."""
    answer = {"status": "Accepted", "errormsg": "", "OrderId": 123}
    client, fake = make_client({"SendOrder": answer})
    result = await client.send_order(
        1,
        Side.BUY,
        Decimal("2.50"),
        order_type=OrderType.LIMIT,
        time_in_force=TimeInForce.IOC,
        limit_price="4000.1",
        client_order_id=2**63 - 1,
        post_only=False,
    )
    assert (result.status, result.order_id) == ("Accepted", 123)
    assert fake.methods() == ["AuthenticateUser", "SendOrder"]
    assert fake.payload("SendOrder") == {
        "OMSId": 1,
        "AccountId": 7,
        "InstrumentId": 1,
        "Side": 0,
        "OrderType": 2,
        "TimeInForce": 3,
        "ClientOrderId": 2**63 - 1,
        "Quantity": Decimal("2.50"),
        "LimitPrice": Decimal("4000.1"),
    }
    options = fake.options("SendOrder")
    assert options["http"] == "POST"
    assert options["headers"] == {"aptoken": TOKEN}


async def test_market_buy_by_value_sends_value_without_quantity() -> None:
    """A market buy by value sends Value and no Quantity."""
    client, fake = make_client({"SendOrder": {"status": "Accepted", "OrderId": 1}})
    await client.send_order(2, Side.BUY, value=Decimal("40000"), account_id=9)
    payload = fake.payload("SendOrder")
    assert payload["Value"] == Decimal("40000") and "Quantity" not in payload
    assert payload["AccountId"] == 9 and payload["OrderType"] == 1


async def test_send_order_with_instrument_rounds_down_to_increments() -> None:
    """With instrument=, quantity rounds down to QuantityIncrement, a buy price down too."""
    client, fake = make_client({"SendOrder": {"status": "Accepted", "OrderId": 1}})
    await client.send_order(
        1,
        Side.BUY,
        Decimal("12.3456"),
        order_type=OrderType.STOP_LIMIT,
        limit_price=Decimal("4000.9"),
        stop_price=Decimal("3999.7"),
        instrument=INSTRUMENT,
    )
    payload = fake.payload("SendOrder")
    assert payload["Quantity"] == Decimal("12.34")
    assert payload["LimitPrice"] == Decimal("4000.5")
    assert payload["StopPrice"] == Decimal("3999.5")


async def test_rejected_order_raises_with_fields() -> None:
    """{status: Rejected} from the transport surfaces unchanged (InsufficientFundsError)."""
    rejected = errors.InsufficientFundsError(
        "SendOrder: Not_Enough_Funds",
        method="SendOrder",
        errorcode=101,
        errormsg="Not_Enough_Funds",
    )
    client, fake = make_client({"SendOrder": rejected})
    with pytest.raises(errors.InsufficientFundsError) as info:
        await client.send_order(1, Side.SELL, 1)
    assert info.value.errorcode == 101
    assert fake.methods().count("SendOrder") == 1


async def test_cancel_order_by_client_id_and_by_order_id() -> None:
    """CancelOrder sends ClOrderId or OrderId (a write), with OMSId and AccountId."""
    ok = {"result": True, "errormsg": "", "errorcode": 0, "detail": ""}
    client, fake = make_client({"CancelOrder": ok})
    assert (await client.cancel_order(client_order_id=77)).result is True
    await client.cancel_order(order_id=5, account_id=8)
    cancels = [p for m, p, _ in fake.calls if m == "CancelOrder"]
    assert cancels == [
        {"OMSId": 1, "AccountId": 7, "ClOrderId": 77},
        {"OMSId": 1, "AccountId": 8, "OrderId": 5},
    ]


@pytest.mark.parametrize("encoding", ["object", "string"])
async def test_create_withdraw_ticket_sends_template_form_as_configured(encoding: str) -> None:
    """TemplateForm goes out as an object (the guide) or, if asked, as JSON text (ccxt)."""
    ok = {"result": True, "errormsg": None, "errorcode": 0, "detail": None}
    client, fake = make_client({"CreateWithdrawTicket": ok}, template_form_as=encoding)
    form = {"TemplateType": "ToExternalAddress", "ExternalAddress": "0xabc", "Comment": ""}
    await client.create_withdraw_ticket(
        3, Decimal("1000.10"), template_type="ToExternalAddress", template_form=form
    )
    payload = fake.payload("CreateWithdrawTicket")
    if encoding == "string":
        assert isinstance(payload["TemplateForm"], str)
        assert json.loads(payload["TemplateForm"]) == form
    else:
        assert payload["TemplateForm"] == form
    assert payload["Amount"] == Decimal("1000.10")
    assert {k: payload[k] for k in ("OMSId", "AccountId", "ProductId", "TemplateType")} == {
        "OMSId": 1,
        "AccountId": 7,
        "ProductId": 3,
        "TemplateType": "ToExternalAddress",
    }


async def test_create_deposit_ticket_payload() -> None:
    """CreateDepositTicket (a write) names the asset, amount and deposit info as JSON text."""
    created = {"success": True, "requestcode": "866f21fe-3461-41d1-91aa-5689bc38503f"}
    client, fake = make_client({"CreateDepositTicket": created})
    result = await client.create_deposit_ticket(
        1, "500", asset_name="USDT", deposit_info={"Full Name": "Ana"}
    )
    assert result.request_code == "866f21fe-3461-41d1-91aa-5689bc38503f"
    payload = fake.payload("CreateDepositTicket")
    assert payload["AssetId"] == 1 and payload["Amount"] == Decimal(500)
    assert payload["AssetName"] == "USDT" and payload["OperatorId"] == 1
    assert json.loads(payload["DepositInfo"]) == {"Full Name": "Ana"}


async def test_level1_summary_min_sends_json_list_text_and_passes_columns() -> None:
    """InstrumentIds is a JSON-string list; `columns` picks the row layout."""
    rows = [[1, "USDTCOPM", 4000, 5, Decimal("0.1"), 100]]
    client, fake = make_client({"GetLevel1SummaryMin": rows})
    (node,) = await client.get_level1_summary_min([1, 2])
    assert fake.payload("GetLevel1SummaryMin") == {"OMSId": 1, "InstrumentIds": "[1,2]"}
    assert node.rolling_24hr_volume == 100
    fake.calls.clear()
    (python,) = await client.get_level1_summary_min(columns="python")
    assert fake.payload("GetLevel1SummaryMin") == {"OMSId": 1}
    assert python.rolling_24hr_volume == 5
    assert "AuthenticateUser" not in fake.methods()


async def test_public_reads_do_not_log_in_and_can_use_get() -> None:
    """Market data calls are public (no login) and follow read_http_method."""
    level1 = {"OMSId": 1, "InstrumentId": 3, "BestBid": "0.9999", "BestOffer": Decimal("1.0001")}
    client, fake = make_client({"GetLevel1": level1}, read_http_method="GET")
    result = await client.get_level1(3)
    assert result.best_bid == Decimal("0.9999")
    assert fake.methods() == ["GetLevel1"]
    assert fake.options("GetLevel1")["http"] == "GET"


@pytest.mark.parametrize("shape", ["object", "array"])
async def test_get_order_status_accepts_object_or_one_element_array(shape: str) -> None:
    """GetOrderStatus answers an object (clients) or a 1-element array (docs)."""
    answer = ORDER if shape == "object" else [ORDER]
    client, fake = make_client({"GetOrderStatus": answer})
    order = await client.get_order_status(55)
    assert order.order_state is OrderState.FULLY_EXECUTED
    assert (order.order_id, order.account_id, order.side) == (55, 7, Side.SELL)
    assert fake.payload("GetOrderStatus") == {"OMSId": 1, "AccountId": 7, "OrderId": 55}


async def test_get_order_status_empty_array_is_not_found() -> None:
    """An empty array from GetOrderStatus means the order does not exist."""
    client, _ = make_client({"GetOrderStatus": []})
    with pytest.raises(errors.NotFoundError):
        await client.get_order_status(55)


async def test_orders_history_sends_only_given_filters() -> None:
    """GetOrdersHistory filters by ClientOrderId etc.; absent filters are not sent."""
    client, fake = make_client({"GetOrdersHistory": [ORDER]})
    (order,) = await client.get_orders_history(client_order_id=3, depth=10)
    assert order.client_order_id == 3
    assert fake.payload("GetOrdersHistory") == {
        "OMSId": 1,
        "AccountId": 7,
        "ClientOrderId": 3,
        "Depth": 10,
    }


async def test_withdraw_template_types_read_from_the_wrapper() -> None:
    """GetWithdrawTemplateTypes unwraps TemplateTypes (strings or objects)."""
    answer = {"result": True, "TemplateTypes": ["Standard", {"TemplateName": "ToBank"}]}
    client, _ = make_client({"GetWithdrawTemplateTypes": answer})
    names = [t.template_name for t in await client.get_withdraw_template_types(3)]
    assert names == ["Standard", "ToBank"]


async def test_unreadable_answer_to_a_write_is_unknown_outcome() -> None:
    """If a write's answer cannot be structured, its outcome is unknown (not a DecodeError)."""
    client, fake = make_client({"SendOrder": {"status": "Accepted", "OrderId": "not-a-number"}})
    with pytest.raises(errors.UnknownOutcomeError):
        await client.send_order(1, Side.SELL, 1)
    assert fake.methods().count("SendOrder") == 1


async def test_find_instrument_fetches_once_and_get_quote_walks_the_book() -> None:
    """find_instrument caches GetInstruments; get_quote prices against GetL2Snapshot."""
    instrument = {
        "InstrumentId": 1,
        "Symbol": "USDTCOPM",
        "Product1": 1,
        "Product1Symbol": "USDT",
        "Product2": 3,
        "Product2Symbol": "COPM",
    }
    book = [
        [1, 1, 0, 0, 4000, 1, 4001, 1, 2, 1],
        [2, 1, 0, 0, 4000, 1, 4003, 1, 2, 1],
        [3, 1, 0, 0, 4000, 1, 3999, 1, 5, 0],
    ]
    client, fake = make_client({"GetInstruments": [instrument], "GetL2Snapshot": book})
    assert (await client.find_instrument("copm", "USDT")).instrument_id == 1
    assert (await client.find_instrument("USDT", "COPM")).instrument_id == 1
    assert fake.methods() == ["GetInstruments"]
    quote = await client.get_quote(1, side=Side.BUY, base_quantity=Decimal(3))
    assert quote.quote_amount == Decimal(4001 * 2 + 4003)
    assert quote.filled
    assert fake.payload("GetL2Snapshot") == {"OMSId": 1, "InstrumentId": 1, "Depth": 100}
    with pytest.raises(errors.InvalidInputError):
        await client.find_instrument("USDT", "EUR")


WRITES: list[tuple[str, Callable[[KiiexClient], Any]]] = [
    ("SendOrder", lambda c: c.send_order(1, Side.SELL, 1, client_order_id=31)),
    ("CancelOrder", lambda c: c.cancel_order(client_order_id=31)),
    (
        "CreateWithdrawTicket",
        lambda c: c.create_withdraw_ticket(3, 1, template_type="T", template_form={"a": "b"}),
    ),
    ("CreateDepositTicket", lambda c: c.create_deposit_ticket(1, 5)),
]


@pytest.mark.parametrize(("method", "call"), WRITES, ids=[w[0] for w in WRITES])
async def test_writes_answered_by_a_5xx_are_sent_once_with_an_unknown_outcome(
    method: str, call: Callable[[KiiexClient], Any]
) -> None:
    """Every write endpoint is a write: a 503 is not retried, it is UnknownOutcomeError."""
    busy = errors.ServerError(f"{method}: HTTP 503", method=method, status=503)
    client, fake = make_client({method: busy})
    with pytest.raises(errors.UnknownOutcomeError) as info:
        await call(client)
    assert fake.methods().count(method) == 1
    assert info.value.method == method


async def test_reads_answered_by_a_5xx_are_retried() -> None:
    """A read endpoint is not a write: a 503 is retried and the next answer returned."""
    busy = errors.ServerError("GetOpenOrders: HTTP 503", method="GetOpenOrders", status=503)
    client, fake = make_client({"GetOpenOrders": Seq([busy, []])})
    assert await client.get_open_orders() == []
    assert fake.methods().count("GetOpenOrders") == 2


async def test_a_2fa_code_is_sent_once() -> None:
    """Authenticate2FA is not retried after a 503 (a code may be single-use)."""
    first = {"Authenticated": True, "Requires2FA": True, "TwoFAType": "Google"}
    busy = errors.ServerError("Authenticate2FA: HTTP 503", status=503)
    client, fake = make_client({"AuthenticateUser": first, "Authenticate2FA": busy})
    await client.authenticate_user()
    with pytest.raises(errors.ServerError):
        await client.authenticate_2fa("123456")
    assert fake.methods().count("Authenticate2FA") == 1


# -- authentication ------------------------------------------------------------------------


async def test_api_key_login_payload_is_signed_with_a_fresh_nonce() -> None:
    """AuthenticateUser carries APIKey/Signature/UserId/Nonce; each login has a new nonce."""
    client, fake = make_client()
    await client.authenticate()
    await client.authenticate()
    first, second = [p for m, p, _ in fake.calls if m == "AuthenticateUser"]
    assert set(first) == {"APIKey", "Signature", "UserId", "Nonce"}
    assert first["APIKey"] == API_KEY and first["UserId"] == "96"
    assert first["Nonce"] != second["Nonce"]
    for payload in (first, second):
        assert verify_signature(
            api_secret=SECRET,
            nonce=payload["Nonce"],
            user_id="96",
            api_key=API_KEY,
            signature=payload["Signature"],
        )
    # The second login is sent while a session is held, still without its aptoken.
    assert all("aptoken" not in o["headers"] for m, _, o in fake.calls if m == "AuthenticateUser")
    assert client.user_id == 96 and client.account_id == 7 and client.is_authenticated


async def test_username_password_login_and_account_from_get_user_accounts() -> None:
    """Username/password form; without User.AccountId the account is GetUserAccounts()[0]."""
    login = {"Authenticated": True, "SessionToken": TOKEN, "User": {"UserId": 5}}
    client, fake = make_client(
        {"AuthenticateUser": login, "GetUserAccounts": ["12", 13]},
        credentials=Credentials(username="ana", password="pw"),
    )
    await client.authenticate()
    assert fake.payload("AuthenticateUser") == {"UserName": "ana", "Password": "pw"}
    assert client.account_id == 12
    # Asked with the new token before it was published to other coroutines.
    options = fake.options("GetUserAccounts")
    assert options["headers"] == {"aptoken": TOKEN} and options["authenticated"] is False
    assert fake.payload("GetUserAccounts") == {"OMSId": 1, "UserId": 5}


async def test_configured_account_id_wins() -> None:
    """account_id given to the client overrides the one authentication returned."""
    client, _ = make_client(account_id=42, oms_id=2)
    await client.authenticate()
    assert client.account_id == 42 and client.oms_id == 2


async def test_two_factor_is_completed_with_the_provider() -> None:
    """Requires2FA -> the provider's code goes to Authenticate2FA with the pending token."""
    asked: list[str] = []

    async def provider(kind: str) -> str:
        asked.append(kind)
        return "123456"

    first = {
        "Authenticated": True,
        "Requires2FA": True,
        "TwoFAType": "Google",
        "Pending2FaToken": "p",
    }
    second = {"Authenticated": True, "UserId": 96, "SessionToken": TOKEN}
    client, fake = make_client(
        {"AuthenticateUser": first, "Authenticate2FA": second, "GetUserAccounts": [3]},
        credentials=Credentials(username="u", password="p", two_factor=provider),
    )
    result = await client.authenticate()
    assert asked == ["Google"]
    assert fake.payload("Authenticate2FA") == {"Code": "123456"}
    assert fake.options("Authenticate2FA")["headers"] == {"Pending2FaToken": "p"}
    assert result.authenticated and not result.requires_2fa
    assert client.account_id == 3 and client.user_id == 96 and client.is_authenticated


async def test_two_factor_without_provider_raises() -> None:
    """Requires2FA and no credentials.two_factor -> TwoFactorRequiredError, no session."""
    first = {"Authenticated": True, "Requires2FA": True, "TwoFAType": "Google"}
    client, fake = make_client({"AuthenticateUser": first})
    with pytest.raises(errors.TwoFactorRequiredError):
        await client.get_open_orders()
    assert fake.methods() == ["AuthenticateUser"]
    assert not client.is_authenticated


async def test_manual_two_factor_steps() -> None:
    """authenticate_user() reports requires_2fa; authenticate_2fa(code) opens the session."""
    first = {"Authenticated": True, "Requires2FA": True, "TwoFAType": "Google"}
    second = {"Authenticated": True, "SessionToken": TOKEN, "User": {"UserId": 1, "AccountId": 2}}
    client, fake = make_client({"AuthenticateUser": first, "Authenticate2FA": second})
    with pytest.raises(errors.InvalidInputError):
        await client.authenticate_2fa("000000")
    step = await client.authenticate_user()
    assert step.requires_2fa
    # bool(): mypy would otherwise pin the property to False for the rest of the test.
    assert not bool(client.is_authenticated)
    await client.authenticate_2fa("654321")
    assert client.is_authenticated and client.account_id == 2
    assert fake.payload("Authenticate2FA") == {"Code": "654321"}


async def test_failed_login_is_shared_by_concurrent_callers() -> None:
    """Concurrent first calls with bad credentials cause ONE AuthenticateUser, all fail."""
    refused = errors.AuthenticationError("AuthenticateUser: Invalid", method="AuthenticateUser")
    client, fake = make_client({"AuthenticateUser": refused, "GetOpenOrders": []})
    results = await asyncio.gather(
        *(client.get_open_orders() for _ in range(20)), return_exceptions=True
    )
    assert all(isinstance(r, errors.AuthenticationError) for r in results)
    assert len({id(r) for r in results}) == 20  # each waiter raises its own copy
    assert fake.methods() == ["AuthenticateUser"]
    # A later call tries again (the failure is not cached forever).
    with pytest.raises(errors.AuthenticationError):
        await client.get_open_orders()
    assert fake.methods() == ["AuthenticateUser", "AuthenticateUser"]


async def test_not_authorized_write_is_repeated_once_after_relogin() -> None:
    """A write refused with errorcode 20 was not applied: re-login, then send it again."""
    expired = errors.AuthenticationError("SendOrder: Not Authorized", errorcode=20)
    accepted = {"status": "Accepted", "OrderId": 9}
    client, fake = make_client({"SendOrder": Seq([expired, accepted])})
    result = await client.send_order(1, Side.SELL, 1, client_order_id=4)
    assert result.order_id == 9
    assert fake.methods() == ["AuthenticateUser", "SendOrder", "AuthenticateUser", "SendOrder"]


async def test_auth_error_twice_is_raised_not_looped() -> None:
    """If the call is refused again after re-login, the AuthenticationError is raised."""
    expired = errors.AuthenticationError("GetOpenOrders: Not Authorized", errorcode=20)
    client, fake = make_client({"GetOpenOrders": expired})
    with pytest.raises(errors.AuthenticationError):
        await client.get_open_orders()
    assert fake.methods().count("GetOpenOrders") == 2
    assert fake.methods().count("AuthenticateUser") == 2


async def test_unknown_outcome_write_is_never_repeated() -> None:
    """UnknownOutcomeError from SendOrder propagates; the order is not sent again."""
    unknown = errors.UnknownOutcomeError("SendOrder: lost", method="SendOrder")
    client, fake = make_client({"SendOrder": unknown})
    with pytest.raises(errors.UnknownOutcomeError):
        await client.send_order(1, Side.SELL, 1)
    assert fake.methods() == ["AuthenticateUser", "SendOrder"]


async def test_log_out_forgets_the_session_and_aclose_logs_out_once() -> None:
    """log_out clears the token; aclose only logs out when a session exists."""
    ok = {"result": True, "errormsg": None, "errorcode": 0, "detail": None}
    client, fake = make_client({"LogOut": ok})
    assert (await client.log_out()).result is True
    assert fake.methods() == []
    await client.authenticate()
    await client.log_out()
    assert not client.is_authenticated
    await client.authenticate()
    await client.aclose()
    assert fake.methods() == ["AuthenticateUser", "LogOut", "AuthenticateUser", "LogOut"]
    assert fake.transport.closed


async def test_aclose_logs_out_without_waiting_for_a_spent_rate_budget() -> None:
    """One call per 100 s, spent by the login: the LogOut on close is still sent at once."""
    ok = {"result": True, "errormsg": None, "errorcode": 0, "detail": None}
    client, fake = make_client({"LogOut": ok}, rate_limit=0.01)
    await client.authenticate()
    async with asyncio.timeout(2):  # waiting for the budget would take 100 s
        await client.aclose()
    assert fake.methods() == ["AuthenticateUser", "LogOut"]
    assert fake.transport.closed


async def test_aclose_sends_no_logout_while_the_exchange_asked_for_a_pause() -> None:
    """After a 429 with Retry-After, closing neither waits for the pause nor sends LogOut."""
    sent: list[str] = []

    async def exchange(request: Request) -> Response:
        sent.append(request.name)
        if request.name == "AuthenticateUser":
            return Response(200, json=LOGIN_OK)
        if request.name == "GetOpenOrders":
            return Response(429, headers={"Retry-After": "60"})
        return Response(200, json={"result": True, "errorcode": 0})

    transport = MockTransport(exchange)
    creds = Credentials(api_key=API_KEY, api_secret=SECRET, user_id=96)
    client = KiiexClient("http://127.0.0.1:1/ap", credentials=creds, transport=transport)
    await client.authenticate()
    with pytest.raises(errors.RateLimitedError):
        await client.get_open_orders(timeout=0.5)
    async with asyncio.timeout(2):  # the pause lasts 60 s
        await client.aclose()
    assert sent == ["AuthenticateUser", "GetOpenOrders"]
    assert transport.closed


# -- constructors, reprs, credentials ------------------------------------------------------


async def test_staging_and_production_urls_and_repr_without_secrets() -> None:
    """staging()/production() point at KIIEX; repr shows no credentials."""
    creds = Credentials(
        api_key="PUB", api_secret="SHHH-SECRET", user_id=1, password="PW-X", username="u"
    )
    async with KiiexClient.staging(credentials=creds, rate_limit=None) as staging:
        assert staging.base_url == STAGING_URL == "https://apstage.proxy.kiiex.io/ap"
        text = repr(staging) + str(staging)
        assert "SHHH-SECRET" not in text and "PW-X" not in text
    async with KiiexClient.production() as production:
        assert production.base_url == PRODUCTION_URL == "https://alphaprod.proxy.kiiex.io/ap"


def test_client_options_are_validated() -> None:
    """Bad constructor options are ConfigurationError, not a later failure."""
    with pytest.raises(errors.ConfigurationError):
        KiiexClient("http://127.0.0.1:1/ap", max_retries=-1)
    with pytest.raises(errors.ConfigurationError):
        KiiexClient("http://127.0.0.1:1/ap", oms_id=0)
    with pytest.raises(errors.ConfigurationError):
        KiiexClient("http://127.0.0.1:1/ap", credentials="key:secret")  # type: ignore[arg-type]


def test_credentials_from_env_username_password_and_repr() -> None:
    """from_env reads username/password; the repr hides the password and secret."""
    creds = Credentials.from_env(
        {"KIIEX_USERNAME": "ana", "KIIEX_PASSWORD": "hunter2-PW"}, prefix="KIIEX_"
    )
    assert (creds.username, creds.uses_api_key) == ("ana", False)
    assert "hunter2-PW" not in repr(creds)
    keyed = Credentials.from_env(
        {"KIIEX_API_KEY": "k", "KIIEX_API_SECRET": "sec-XYZ", "KIIEX_USER_ID": "96"}
    )
    assert keyed.user_id == "96" and "sec-XYZ" not in repr(keyed) + str(keyed)


# -- signing known-answer vectors ----------------------------------------------------------


def test_sign_matches_an_independent_hmac() -> None:
    """auth.sign == hex HMAC-SHA256(secret, nonce + user_id + api_key), computed here."""
    nonce, user_id = "1700000000000", 96
    expected = hmac.new(
        SECRET.encode(), f"{nonce}{user_id}{API_KEY}".encode(), hashlib.sha256
    ).hexdigest()
    assert sign(api_secret=SECRET, nonce=nonce, user_id=user_id, api_key=API_KEY) == expected


def test_sign_known_answer_vector() -> None:
    """A literal vector (computed once) pins the algorithm and the message order."""
    got = sign(api_secret=SECRET, nonce="1700000000000", user_id="96", api_key=API_KEY)
    assert got == "7a8fedc8552c2cb9d55d1b71f020e7bbc0c9b00569e9d936c254ca6149ad6bef"
    swapped = sign(api_secret=SECRET, nonce="96", user_id="1700000000000", api_key=API_KEY)
    assert swapped != got


# -- every read endpoint: documented request, typed answer ---------------------------------

TICKET = {"ticketNumber": 1, "accountId": 7, "assetId": 1, "amount": 500, "Status": 5}
WITHDRAWAL = {
    "ticketNumber": 3,
    "accountId": 7,
    "assetId": 3,
    "amount": 10,
    "Status": "FullyProcessed",
    "templateForm": '{"ExternalAddress": "0xabc"}',
}
TRADE = {
    "TradeId": 1,
    "ExecutionId": 2,
    "OrderId": 55,
    "InstrumentId": 1,
    "AccountId": 7,
    "Side": "Sell",
    "Quantity": 1,
    "Price": 4000,
    "Fee": Decimal("0.5"),
    "FeeProductId": 3,
    "MakerTaker": "Taker",
}
READS: list[
    tuple[str, Callable[[KiiexClient], Any], dict[str, Any], Any, Callable[[Any], bool]]
] = [
    ("Ping", lambda c: c.ping(), {}, {"msg": "PONG"}, lambda r: r.msg == "PONG"),
    (
        "GetUserAccounts",
        lambda c: c.get_user_accounts(),
        {"OMSId": 1, "UserId": 96},
        [7, "8"],
        lambda r: r == [7, 8],
    ),
    (
        "GetUserInfo",
        lambda c: c.get_user_info(),
        {"OMSId": 1, "UserId": 96},
        {"UserId": 96, "UserName": "ana", "AccountId": 7},
        lambda r: (r.user_name, r.account_id) == ("ana", 7),
    ),
    (
        "GetProducts",
        lambda c: c.get_products(),
        {"OMSId": 1},
        [{"ProductId": 1, "Product": "USDT", "ProductType": "CryptoCurrency"}],
        lambda r: r[0].symbol == "USDT",
    ),
    (
        "GetInstrument",
        lambda c: c.get_instrument(1),
        {"OMSId": 1, "InstrumentId": 1},
        {
            "InstrumentId": 1,
            "Symbol": "USDTCOPM",
            "Product1": 1,
            "Product1Symbol": "USDT",
            "Product2": 3,
            "Product2Symbol": "COPM",
            "QuantityIncrement": "0.01",
        },
        lambda r: r.quantity_increment == Decimal("0.01"),
    ),
    (
        "GetL2Snapshot",
        lambda c: c.get_l2_snapshot(1, depth=5),
        {"OMSId": 1, "InstrumentId": 1, "Depth": 5},
        [[1, 1, 0, 0, 4000, 1, 3999, 1, 5, 0]],
        lambda r: r.best_bid == 3999 and r.asks == (),
    ),
    (
        "GetAccountPositions",
        lambda c: c.get_account_positions(),
        {"OMSId": 1, "AccountId": 7},
        [{"AccountId": 7, "ProductId": 1, "ProductSymbol": "USDT", "Amount": 10000, "Hold": 1}],
        lambda r: r[0].available == 9999,
    ),
    (
        "GetOpenOrders",
        lambda c: c.get_open_orders(account_id=8),
        {"OMSId": 1, "AccountId": 8},
        [ORDER],
        lambda r: r[0].order_id == 55,
    ),
    (
        "GetOrderHistoryByOrderId",
        lambda c: c.get_order_history_by_order_id(55),
        {"OMSId": 1, "OrderId": 55},
        [ORDER, ORDER],
        lambda r: len(r) == 2,
    ),
    (
        "GetTradesHistory",
        lambda c: c.get_trades_history(order_id=55, start_index=0, start_timestamp=1),
        {"OMSId": 1, "AccountId": 7, "OrderId": 55, "StartIndex": 0, "StartTimestamp": 1},
        [TRADE],
        lambda r: r[0].fee == Decimal("0.5") and r[0].side is Side.SELL,
    ),
    (
        "GetDepositTickets",
        lambda c: c.get_deposit_tickets(),
        {"OMSId": 1, "OperatorId": 1, "AccountId": 7},
        [TICKET],
        lambda r: r[0].status.is_success,
    ),
    (
        "GetDepositTicket",
        lambda c: c.get_deposit_ticket(request_code="abc", ticket_id=1),
        {"OMSId": 1, "AccountId": 7, "RequestCode": "abc", "TicketId": 1},
        TICKET,
        lambda r: r.ticket_number == 1,
    ),
    (
        "GetDepositInfo",
        lambda c: c.get_deposit_info(1, generate_new_key=True),
        {"OMSId": 1, "AccountId": 7, "ProductId": 1, "GenerateNewKey": True},
        {"result": True, "AccountId": 7, "AssetId": 1, "DepositInfo": '["0xabc"]'},
        lambda r: r.deposit_info == ("0xabc",),
    ),
    (
        "GetWithdrawTemplate",
        lambda c: c.get_withdraw_template(3, "Standard", account_provider_id=5),
        {
            "OMSId": 1,
            "AccountId": 7,
            "ProductId": 3,
            "TemplateType": "Standard",
            "AccountProviderId": 5,
        },
        {"result": True, "Template": '{"TemplateType": "Standard", "ExternalAddress": ""}'},
        lambda r: (r.template_type, r.fields) == ("Standard", ("ExternalAddress",)),
    ),
    (
        "GetWithdrawFee",
        lambda c: c.get_withdraw_fee(3, "10"),
        {"OMSId": 1, "AccountId": 7, "ProductId": 3, "Amount": Decimal(10)},
        {"FeeAmount": Decimal("1.06")},
        lambda r: r.fee_amount == Decimal("1.06"),
    ),
    (
        "GetWithdrawTickets",
        lambda c: c.get_withdraw_tickets(),
        {"OMSId": 1, "AccountId": 7, "StartIndex": 0, "Limit": 200},
        [WITHDRAWAL],
        lambda r: r[0].form == {"ExternalAddress": "0xabc"},
    ),
    (
        "GetWithdrawTicket",
        lambda c: c.get_withdraw_ticket(ticket_id=3),
        {"OMSId": 1, "AccountId": 7, "TicketId": 3},
        WITHDRAWAL,
        lambda r: r.status.is_final,
    ),
]


@pytest.mark.parametrize(
    ("method", "call", "payload", "answer", "check"), READS, ids=[r[0] for r in READS]
)
async def test_read_endpoint_sends_documented_payload_and_decodes(
    method: str,
    call: Callable[[KiiexClient], Any],
    payload: dict[str, Any],
    answer: Any,
    check: Callable[[Any], bool],
) -> None:
    """Each read sends its documented PascalCase request and returns models."""
    client, fake = make_client({method: answer})
    result = await call(client)
    assert fake.payload(method) == payload
    assert check(result)


async def test_unexpected_answer_shape_of_a_read_is_decode_error() -> None:
    """A read whose JSON has the wrong shape raises DecodeError naming the method."""
    client, _ = make_client({"GetUserInfo": [1, 2]})
    with pytest.raises(errors.DecodeError) as info:
        await client.get_user_info()
    assert info.value.method == "GetUserInfo"
