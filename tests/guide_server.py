"""A tiny exchange on 127.0.0.1 that answers exactly as KIIEX's guide documents.

It answers every method from a table (by default the guide's samples in
``tests/payloads/guide/``, verbatim), checks AlphaPoint's signed headers on private calls
the way a server without sessions would, and records every request so that a test can
state what went over the wire.  Tests drive ``KiiexClient`` against it through its
public API only.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
from aiohttp import web
from aiohttp.test_utils import TestServer

from kiiex_async.auth import verify_signature

GUIDE = Path(__file__).parent / "payloads" / "guide"
API_KEY = "guide-api-key"
SECRET = "guide-api-secret"
USER_ID = 1  # the guide's user
NOT_AUTHORIZED = {"result": False, "errormsg": "Not Authorized", "errorcode": 20, "detail": None}
PUBLIC = frozenset({"Ping", "GetLevel1SummaryMin", "GetTickerHistory", "GetInstruments"})
FILES = {
    "AuthenticateUser": "authenticate_user.json",
    "CreateDepositTicket": "create_deposit_ticket.json",
    "GetAccountPositions": "get_account_positions.json",
    "GetLevel1SummaryMin": "get_level1_summary_min.json",
    "SendOrder": "send_order.json",
    "GetOrderStatus": "get_order_status.json",
    "GetTradesHistory": "get_trades_history.json",
    "CreateWithdrawTicket": "create_withdraw_ticket.json",
    "GetWithdrawTickets": "get_withdraw_tickets.json",
}

#: An answer: raw body bytes, a JSON value, or a function of the request.
Answer = Any


def guide_body(method: str) -> bytes:
    """The guide's sample answer of ``method``, byte for byte."""
    return (GUIDE / FILES[method]).read_bytes()


@attrs.define
class Seen:
    """One request the server received."""

    method: str
    headers: dict[str, str]
    body: dict[str, Any]
    signed: bool


@attrs.define
class GuideServer:
    """State of the fake exchange: answers, requests seen, nonces used."""

    url: str = ""
    answers: dict[str, Answer] = attrs.Factory(dict)
    seen: list[Seen] = attrs.Factory(list)
    nonces: set[str] = attrs.Factory(set)
    #: Private calls to refuse with errorcode 20 before accepting again.
    refuse_next: int = 0
    #: HTTP status to answer a method with (once), e.g. {"SendOrder": 500}.
    fail_once: dict[str, int] = attrs.Factory(dict)
    #: A session token private calls may carry as ``aptoken`` instead of signing.
    session_token: str | None = None

    def methods(self) -> list[str]:
        """Methods in the order they arrived."""
        return [s.method for s in self.seen]

    def of(self, method: str) -> list[Seen]:
        """Every request of one method."""
        return [s for s in self.seen if s.method == method]

    def _signed(self, headers: dict[str, str]) -> bool:
        try:
            nonce = headers["Nonce"]
            ok = headers["APIKey"] == API_KEY and verify_signature(
                api_secret=SECRET,
                nonce=nonce,
                user_id=headers["UserId"],
                api_key=headers["APIKey"],
                signature=headers["Signature"],
            )
        except KeyError:
            return False
        if not ok or nonce in self.nonces:
            return False
        self.nonces.add(nonce)
        return True

    async def handle(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        raw = await request.read()
        body = json.loads(raw) if raw else dict(request.query)
        headers = dict(request.headers.items())
        signed = self._signed(headers) if "Signature" in headers else False
        self.seen.append(Seen(method, headers, body, signed))
        status = self.fail_once.pop(method, None)
        if status is not None:
            return web.Response(status=status, text="failed on purpose")
        if method == "AuthenticateUser":
            if "Password" not in body and not verify_signature(
                api_secret=SECRET,
                nonce=str(body.get("Nonce")),
                user_id=str(body.get("UserId")),
                api_key=str(body.get("APIKey")),
                signature=str(body.get("Signature")),
            ):
                return web.json_response({"authenticated": False, "errormsg": "bad signature"})
        elif method not in PUBLIC and method != "Authenticate2FA":
            token = request.headers.get("aptoken")
            token_ok = token is not None and token == self.session_token
            if self.refuse_next > 0 or not (signed or token_ok):
                self.refuse_next = max(0, self.refuse_next - 1)
                return web.json_response(NOT_AUTHORIZED)
        answer = self.answers.get(method)
        if callable(answer):
            answer = answer(body)
        if answer is None:
            return web.Response(body=guide_body(method), content_type="application/json")
        if isinstance(answer, bytes):
            return web.Response(body=answer, content_type="application/json")
        return web.json_response(answer)


@asynccontextmanager
async def guide_server(
    answers: dict[str, Answer] | None = None,
) -> AsyncIterator[GuideServer]:
    """Run a :class:`GuideServer` on ``127.0.0.1`` (a free port) for one test."""
    state = GuideServer(answers=dict(answers or {}))
    app = web.Application()
    app.router.add_route("*", "/ap/{method}", state.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        state.url = str(server.make_url("/ap"))
        yield state
    finally:
        await server.close()


def private_headers_ok(state: GuideServer, exclude: Callable[[str], bool] | None = None) -> bool:
    """True when every private request was signed with a fresh nonce and had no aptoken."""
    for seen in state.seen:
        if seen.method in PUBLIC or seen.method in ("AuthenticateUser", "Authenticate2FA"):
            continue
        if exclude is not None and exclude(seen.method):
            continue
        if not seen.signed or any(k.lower() == "aptoken" for k in seen.headers):
            return False
    return True
