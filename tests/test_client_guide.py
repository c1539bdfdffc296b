"""KiiexClient against an exchange that answers exactly as KIIEX's guide documents.

Every response sample of the guide (``tests/payloads/guide/``, verbatim) is decoded
through the public client, and the login without a session token is followed by
AlphaPoint's signed headers on each private request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from guide_server import (
    API_KEY,
    SECRET,
    USER_ID,
    GuideServer,
    guide_body,
    guide_server,
    private_headers_ok,
)

from kiiex_async import Credentials, errors
from kiiex_async.client import KiiexClient
from kiiex_async.models import (
    DepositTicketCreated,
    GenericResult,
    OrderState,
    Side,
    WithdrawStatus,
)

KEY_CREDENTIALS = Credentials(api_key=API_KEY, api_secret=SECRET, user_id=USER_ID)
SESSION_LOGIN = {"Authenticated": True, "SessionToken": "tok-guide-1", "User": {"UserId": 1}}


@pytest.fixture
async def server() -> AsyncIterator[GuideServer]:
    async with guide_server() as state:
        yield state


def make(server: GuideServer, **kw: Any) -> KiiexClient:
    kw.setdefault("credentials", KEY_CREDENTIALS)
    kw.setdefault("max_retries", 0)
    return KiiexClient(server.url, rate_limit=None, **kw)


# ------------------------------------------------------------------ the nine samples


async def test_guide_login_without_token_signs_every_private_request(
    server: GuideServer,
) -> None:
    """The guide's login answer (no SessionToken) leads to signed headers, fresh nonces."""
    async with make(server) as client:
        result = await client.authenticate()
        assert result.authenticated is True
        assert result.user is not None
        assert (result.user.user_id, result.user.account_id, result.user.use_2fa) == (1, 1, True)
        assert result.user.locked is None  # the guide's user does not say
        assert client.is_authenticated and client.auth_mode == "per_request"
        assert (client.account_id, client.user_id) == (1, 1)
        await client.get_account_positions()
        await client.get_trades_history()
        await client.get_order_status(1)
    assert server.methods() == [
        "AuthenticateUser",
        "GetAccountPositions",
        "GetTradesHistory",
        "GetOrderStatus",
    ]
    assert private_headers_ok(server)
    nonces = [s.headers["Nonce"] for s in server.seen[1:]]
    assert len(set(nonces)) == 3
    assert "LogOut" not in server.methods()  # no session to end


async def test_guide_deposit_ticket_sample_decodes(server: GuideServer) -> None:
    """CreateDepositTicket's {success, requestcode} decodes."""
    async with make(server) as client:
        created = await client.create_deposit_ticket(1, Decimal(100))
    assert created == DepositTicketCreated(success=True, requestcode="text")
    assert created.request_code == "text"


async def test_guide_positions_sample_decodes_with_unsaid_fields_none(
    server: GuideServer,
) -> None:
    """The guide's six-field position decodes; the figures it omits are None, not zero."""
    async with make(server) as client:
        (position,) = await client.get_account_positions()
    assert (position.product_symbol, position.product_id, position.oms_id) == ("text", 1, 1)
    assert (position.amount, position.hold, position.available) == (
        Decimal(1),
        Decimal(1),
        Decimal(0),
    )
    assert position.pending_deposits is None
    assert position.notional_value is None


async def test_guide_level1_summary_sample_is_a_typed_error_and_sends_currencies(
    server: GuideServer,
) -> None:
    """[["text"]] (the guide's sample) is a DecodeError naming the row, never a crash;
    BaseCurrency/QuoteCurrency go out as given."""
    async with make(server) as client:
        with pytest.raises(errors.DecodeError, match=r"row 0: expected an integer"):
            await client.get_level1_summary_min(base_currency="COPM", quote_currency="USDT")
    (seen,) = server.of("GetLevel1SummaryMin")
    assert seen.body == {"OMSId": 1, "BaseCurrency": "COPM", "QuoteCurrency": "USDT"}


async def test_level1_summary_rows_of_strings_and_short_rows_decode() -> None:
    """Rows of strings decode exactly; a short row fills what it reaches, the rest None."""
    rows = [["1", "USDTCOPM", "4000.50", "1.25", "0.03", "12345.6"], ["2", "USDCCOPM", "3999"]]
    async with guide_server({"GetLevel1SummaryMin": rows}) as server, make(server) as client:
        full, short = await client.get_level1_summary_min([1, 2])
    assert (full.instrument_id, full.symbol, full.last_traded_px) == (
        1,
        "USDTCOPM",
        Decimal("4000.50"),
    )
    assert full.rolling_24hr_volume == Decimal("12345.6")
    assert (short.instrument_id, short.symbol, short.last_traded_px) == (
        2,
        "USDCCOPM",
        Decimal(3999),
    )
    assert short.rolling_24hr_px_change is None and short.rolling_24hr_volume is None
    (seen,) = server.of("GetLevel1SummaryMin")
    assert seen.body == {"OMSId": 1, "InstrumentIds": "[1,2]"}


async def test_guide_send_order_sample_decodes(server: GuideServer) -> None:
    """SendOrder's {status, errormsg, OrderId} decodes; the order went out signed, once."""
    async with make(server) as client:
        ack = await client.send_order(1, Side.BUY, Decimal(1))
    assert (ack.status, ack.order_id, ack.errormsg) == ("text", 1, "text")
    assert len(server.of("SendOrder")) == 1
    assert private_headers_ok(server)


async def test_guide_order_status_sample_decodes_and_unknown_state_is_not_final(
    server: GuideServer,
) -> None:
    """The four-field order status decodes; "text" is OrderState.UNKNOWN, never final."""
    async with make(server) as client:
        order = await client.get_order_status(1)
    assert (order.order_id, order.quantity_executed, order.avg_price) == (1, Decimal(1), Decimal(1))
    assert order.order_state is OrderState.UNKNOWN
    assert not order.order_state.is_final
    assert order.side is None and order.instrument_id is None and order.orig_quantity is None
    (seen,) = server.of("GetOrderStatus")
    assert seen.body == {"OMSId": 1, "AccountId": 1, "OrderId": 1}


async def test_guide_trades_sample_decodes_without_invented_fee(server: GuideServer) -> None:
    """The four-field trade decodes; fee, side and value are None (not said), not zero."""
    async with make(server) as client:
        (trade,) = await client.get_trades_history(order_id=1)
    assert (trade.trade_id, trade.order_id, trade.quantity, trade.price) == (
        1,
        1,
        Decimal(1),
        Decimal(1),
    )
    assert trade.fee is None and trade.fee_product_id is None
    assert trade.side is None and trade.value is None and trade.execution_id is None


async def test_guide_withdraw_envelope_decodes_and_template_form_is_an_object(
    server: GuideServer,
) -> None:
    """The guide's {result: true, errorcode: 1} envelope is an accepted request (no
    documented failure code), and TemplateForm goes out as a JSON object."""
    async with make(server) as client:
        result = await client.create_withdraw_ticket(
            1, Decimal(5), template_type="Standard", template_form={"ExternalAddress": "x"}
        )
    assert result == GenericResult(result=True, errormsg="text", errorcode=1, detail="text")
    (seen,) = server.of("CreateWithdrawTicket")
    assert seen.body["TemplateForm"] == {"ExternalAddress": "x"}
    assert seen.body["TemplateType"] == "Standard"


async def test_guide_withdraw_ticket_sample_keeps_comments_and_audit_log(
    server: GuideServer,
) -> None:
    """The guide's ticket decodes with the fields a user could want kept."""
    async with make(server) as client:
        (ticket,) = await client.get_withdraw_tickets()
    assert (ticket.ticket_number, ticket.amount, ticket.status) == (
        1,
        Decimal(1),
        WithdrawStatus.ADMIN_PROCESSING,
    )
    assert (ticket.comments, ticket.attachments, ticket.audit_log) == ("text", "text", "text")
    assert (ticket.request_user_id, ticket.request_user_name, ticket.request_ip) == (
        1,
        "text",
        "text",
    )
    assert ticket.template_form == "text" and ticket.form == {}
    assert ticket.reject_reason is None


def test_every_guide_sample_file_is_the_guide_verbatim() -> None:
    """The sample files are JSON exactly as printed in the guide (two-space indents)."""
    for method in ("AuthenticateUser", "GetOrderStatus", "GetWithdrawTickets"):
        body = guide_body(method)
        assert body.decode() == json.dumps(json.loads(body), indent=2) + "\n"


# ------------------------------------------------------------------------ auth modes


async def test_auth_session_refuses_a_login_without_token(server: GuideServer) -> None:
    """auth="session" turns the guide's token-less answer into an AuthenticationError."""
    async with make(server, auth="session") as client:
        with pytest.raises(errors.AuthenticationError, match=r"did not open a session.*auth="):
            await client.get_account_positions()
        assert not client.is_authenticated and client.auth_mode is None
    assert server.methods() == ["AuthenticateUser"]


async def test_password_login_without_token_cannot_sign(server: GuideServer) -> None:
    """Without an API key, a token-less login is refused: nothing could sign requests."""
    credentials = Credentials(username="alice", password="pw-secret")
    async with make(server, credentials=credentials, auth="auto") as client:
        with pytest.raises(errors.AuthenticationError, match="needs an API key"):
            await client.authenticate()


def test_per_request_mode_needs_an_api_key() -> None:
    """auth="per_request" with password credentials is refused at construction."""
    with pytest.raises(errors.ConfigurationError, match="needs an API key"):
        KiiexClient(
            "http://127.0.0.1:1/ap",
            credentials=Credentials(username="a", password="b"),
            auth="per_request",
        )
    with pytest.raises(errors.ConfigurationError, match="auth must be"):
        KiiexClient("http://127.0.0.1:1/ap", auth="bearer")  # type: ignore[arg-type]
    with pytest.raises(errors.ConfigurationError, match="template_form_as"):
        KiiexClient("http://127.0.0.1:1/ap", template_form_as="yaml")  # type: ignore[arg-type]


async def test_auto_uses_a_session_token_when_the_login_has_one() -> None:
    """With a SessionToken the client sends aptoken and no signature."""
    async with guide_server({"AuthenticateUser": SESSION_LOGIN}) as server:
        server.session_token = "tok-guide-1"
        async with make(server, account_id=1) as client:
            await client.get_account_positions()
            assert client.auth_mode == "session"
    (seen,) = server.of("GetAccountPositions")
    assert seen.headers.get("aptoken") == "tok-guide-1"
    assert "Signature" not in seen.headers


@pytest.mark.parametrize(
    "answer",
    [
        {"authenticated": True, "user": {"userId": 1, "accountId": 1, "sessionToken": "tok-u"}},
        {"Authenticated": True, "APToken": "tok-u", "User": {"UserId": 1, "AccountId": 1}},
    ],
)
async def test_token_is_found_in_the_documented_places(answer: dict[str, Any]) -> None:
    """A token inside User or under APToken is used as the aptoken."""
    async with guide_server({"AuthenticateUser": answer}) as server:
        server.session_token = "tok-u"
        async with make(server) as client:
            await client.get_account_positions()
    assert server.of("GetAccountPositions")[0].headers.get("aptoken") == "tok-u"


async def test_per_request_ignores_a_session_token() -> None:
    """auth="per_request" signs every private call even when the login offered a token."""
    async with guide_server({"AuthenticateUser": SESSION_LOGIN}) as server:
        server.session_token = "tok-guide-1"
        async with make(server, auth="per_request", account_id=1) as client:
            await client.get_account_positions()
            await client.send_order(1, Side.SELL, Decimal(2))
            assert client.auth_mode == "per_request"
    assert server.methods() == ["AuthenticateUser", "GetAccountPositions", "SendOrder"]
    assert private_headers_ok(server)


async def test_not_authorized_relogs_in_once_and_resigns(server: GuideServer) -> None:
    """errorcode 20 on a signed write: one shared re-login, then the call again with a
    fresh nonce (a refused call was not applied)."""
    async with make(server) as client:
        await client.authenticate()
        server.refuse_next = 1
        ack = await client.send_order(1, Side.BUY, Decimal(1))
    assert ack.order_id == 1
    assert server.methods() == ["AuthenticateUser", "SendOrder", "AuthenticateUser", "SendOrder"]
    first, second = server.of("SendOrder")
    assert first.headers["Nonce"] != second.headers["Nonce"] and second.signed


async def test_not_authorized_twice_is_raised_and_leaves_the_client_logged_out(
    server: GuideServer,
) -> None:
    """A second refusal is raised (no loop)."""
    async with make(server) as client:
        server.refuse_next = 2
        with pytest.raises(errors.AuthenticationError):
            await client.get_account_positions()
    assert server.methods().count("GetAccountPositions") == 2


async def test_log_out_in_per_request_mode_stops_signing(server: GuideServer) -> None:
    """log_out without a session sends nothing and the next private call logs in again."""
    async with make(server) as client:
        await client.authenticate()
        assert (await client.log_out()).result is True
        assert not client.is_authenticated
        await client.get_account_positions()
    assert server.methods() == ["AuthenticateUser", "AuthenticateUser", "GetAccountPositions"]


async def test_two_factor_then_no_token_signs_requests() -> None:
    """2FA still completes the login; an Authenticate2FA answer without token means signing."""
    first = {
        "Authenticated": True,
        "Requires2FA": True,
        "AuthType": "Google",
        "Pending2FaToken": "p-9",
    }
    second = {"Authenticated": True, "UserId": 1}
    asked: list[str] = []

    async def code(kind: str) -> str:
        asked.append(kind)
        return "123456"

    credentials = Credentials(api_key=API_KEY, api_secret=SECRET, user_id=USER_ID, two_factor=code)
    answers = {"AuthenticateUser": first, "Authenticate2FA": second}
    async with (
        guide_server(answers) as server,
        make(server, credentials=credentials, account_id=1) as client,
    ):
        await client.get_account_positions()
        assert client.auth_mode == "per_request"
    assert asked == ["Google"]  # AuthType names the 2FA kind
    assert server.methods() == ["AuthenticateUser", "Authenticate2FA", "GetAccountPositions"]
    assert server.of("Authenticate2FA")[0].headers["Pending2FaToken"] == "p-9"
    assert private_headers_ok(server)


async def test_api_key_login_carries_user_name_when_known(server: GuideServer) -> None:
    """The API-key login body has UserName when the credentials know it, as in the guide."""
    credentials = Credentials(api_key=API_KEY, api_secret=SECRET, user_id=USER_ID, username="alice")
    async with make(server, credentials=credentials) as client:
        await client.authenticate()
    async with make(server) as client:
        await client.authenticate()
    with_name, without = server.of("AuthenticateUser")
    assert set(with_name.body) == {"APIKey", "Signature", "UserId", "Nonce", "UserName"}
    assert with_name.body["UserName"] == "alice"
    assert "UserName" not in without.body


def test_credentials_username_with_api_key_and_from_env() -> None:
    """A username goes alone with an API key; a password never goes without a username."""
    assert Credentials(api_key="k", api_secret="s", user_id=1, username="alice").password is None
    with pytest.raises(errors.ConfigurationError, match="go together"):
        Credentials(username="alice")
    with pytest.raises(errors.ConfigurationError, match="needs a username"):
        Credentials(api_key="k", api_secret="s", user_id=1, password="pw")
    env = {
        "KIIEX_API_KEY": "k",
        "KIIEX_API_SECRET": "s",
        "KIIEX_USER_ID": "7",
        "KIIEX_USERNAME": "bob",
    }
    credentials = Credentials.from_env(env)
    assert (credentials.username, credentials.password, credentials.uses_api_key) == (
        "bob",
        None,
        True,
    )
    both = Credentials.from_env({"KIIEX_USERNAME": "bob", "KIIEX_PASSWORD": "pw"})
    assert (both.username, both.password) == ("bob", "pw")


async def test_no_secret_or_signature_in_logs_reprs_or_errors(
    server: GuideServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Signed requests leave no secret, signature or password in logs, reprs or errors."""
    caplog.set_level(logging.DEBUG)
    credentials = Credentials(
        api_key=API_KEY, api_secret=SECRET, user_id=USER_ID, username="u", password="pw-hidden"
    )
    texts: list[str] = []
    async with make(server, credentials=credentials) as client:
        await client.get_account_positions()
        server.refuse_next = 2
        with pytest.raises(errors.AuthenticationError) as refused:
            await client.get_trades_history()
        server.fail_once["GetOrderStatus"] = 500
        with pytest.raises(errors.ServerError) as failed:
            await client.get_order_status(1)
        texts += [repr(client), repr(credentials), str(refused.value), repr(refused.value)]
        texts += [str(failed.value), repr(failed.value), repr(failed.value.__cause__)]
    signatures = {s.headers["Signature"] for s in server.seen if "Signature" in s.headers}
    signatures |= {s.body["Signature"] for s in server.of("AuthenticateUser")}
    assert len(signatures) >= 4
    texts += [record.getMessage() for record in caplog.records]
    texts += [str(record.args) for record in caplog.records]
    blob = "\n".join(texts)
    for secret in (SECRET, "pw-hidden", *signatures):
        assert secret not in blob


async def test_retried_signed_read_is_signed_again_so_a_nonce_checking_server_takes_it(
    server: GuideServer,
) -> None:
    """A read retried after a 5xx is signed afresh for its second attempt: a server refusing
    a reused nonce accepts it, with no re-login."""
    async with make(server, max_retries=1) as client:
        await client.authenticate()
        server.fail_once["GetAccountPositions"] = 503
        (position,) = await client.get_account_positions()
    assert position.product_symbol == "text"
    assert server.methods() == [
        "AuthenticateUser",
        "GetAccountPositions",  # 503
        "GetAccountPositions",  # the pipeline's retry, with a new nonce: accepted
    ]
    assert server.seen[-1].signed
