"""What the transport guarantees against a hostile or broken server, on real local servers.

* a redirect is never followed: nothing (no login body, no ``aptoken``, no order) reaches
  the host it points to, and the caller gets a ``RedirectError`` naming status and place;
* an answer is read up to ``max_body_size`` only, whether its size is declared, chunked or
  compressed, and the rest of a huge body is never read;
* a write cancelled from outside while in flight is an ``UnknownOutcomeError`` carrying
  its ``ClientOrderId``, and a cancellation that was not a timeout is not lost.

Servers are aiohttp apps on 127.0.0.1; the cancellation cases that need no socket use
:class:`kiiex_async.testing.MockTransport`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import anyio
import attrs
import pytest
from aiohttp import web
from loopback import serve_app

from kiiex_async import Credentials, KiiexClient, errors
from kiiex_async._pipeline import _redeliver
from kiiex_async.models import Side
from kiiex_async.testing import MockTransport, Request, Response

WAIT = 20.0  # a guard against hanging, never a measurement
TOKEN = "SESSION-TOKEN-5e1f"
PASSWORD = "PASSWORD-8a7b"
LOGIN_OK = {"Authenticated": True, "SessionToken": TOKEN, "User": {"UserId": 9, "AccountId": 4}}
ACCEPTED = {"status": "Accepted", "errormsg": "", "OrderId": 31}
MiB = 1024 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@attrs.define
class Seen:
    """One request as a server received it."""

    path: str
    headers: dict[str, str]
    body: bytes


@contextlib.asynccontextmanager
async def serve(routes: dict[str, Handler], seen: list[Seen]) -> AsyncIterator[str]:
    """Run an app on 127.0.0.1 that records every request, then answers from ``routes``."""

    async def dispatch(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        seen.append(Seen(request.path, dict(request.headers), await request.read()))
        handler = routes.get(name, routes.get("*"))
        if handler is None:
            return web.json_response({"result": False, "errorcode": 104}, status=404)
        return await handler(request)

    app = web.Application()
    app.router.add_route("*", "/ap/{name}", dispatch)
    async with serve_app(app) as base:
        yield f"{base}/ap"


def answer(data: Any, status: int = 200) -> Handler:
    async def handler(_request: web.Request) -> web.Response:
        return web.Response(status=status, text=json.dumps(data), content_type="application/json")

    return handler


# -- redirects -----------------------------------------------------------------------------


@pytest.fixture
async def elsewhere() -> AsyncIterator[tuple[str, list[Seen]]]:
    """The host a redirect points to: answers everything with success, records all."""
    seen: list[Seen] = []
    async with serve({"*": answer(LOGIN_OK)}, seen) as url:
        yield url, seen


@contextlib.asynccontextmanager
async def redirecting(
    status: int, target: str, seen: list[Seen], *, keep: dict[str, Handler] | None = None
) -> AsyncIterator[str]:
    """A server that redirects every method (except those in ``keep``) to ``target``."""

    async def redirect(request: web.Request) -> web.Response:
        location = f"{target}/{request.match_info['name']}"
        return web.Response(status=status, headers={"Location": location}, text="moved")

    async with serve({**(keep or {}), "*": redirect}, seen) as url:
        yield url


REDIRECTS = [301, 302, 307, 308]


@pytest.mark.parametrize("status", REDIRECTS)
async def test_a_redirected_login_sends_no_credentials_elsewhere(
    status: int, elsewhere: tuple[str, list[Seen]]
) -> None:
    """AuthenticateUser answered by a 3xx: RedirectError; the password never leaves."""
    target, received = elsewhere
    seen: list[Seen] = []
    async with redirecting(status, target, seen) as url:
        creds = Credentials(username="ana", password=PASSWORD)
        async with KiiexClient(url, credentials=creds, rate_limit=None) as client:
            with pytest.raises(errors.RedirectError) as info:
                await client.authenticate()
            assert not client.is_authenticated
    assert received == []
    assert [s.path for s in seen] == ["/ap/AuthenticateUser"]
    error = info.value
    assert (error.status, error.method) == (status, "AuthenticateUser")
    assert error.location == f"{target}/AuthenticateUser"
    assert str(status) in str(error) and target in str(error)
    assert PASSWORD not in str(error) and PASSWORD not in repr(error)


@pytest.mark.parametrize("status", REDIRECTS)
async def test_a_redirected_order_is_refused_and_never_reaches_the_other_host(
    status: int, elsewhere: tuple[str, list[Seen]]
) -> None:
    """SendOrder answered by a 3xx was not applied: RedirectError, sent once, aptoken kept home."""
    target, received = elsewhere
    seen: list[Seen] = []
    keep = {"AuthenticateUser": answer(LOGIN_OK)}
    async with redirecting(status, target, seen, keep=keep) as url:
        creds = Credentials(api_key="k", api_secret="s", user_id=9)
        async with KiiexClient(url, credentials=creds, rate_limit=None) as client:
            with pytest.raises(errors.RedirectError) as order:
                await client.send_order(1, Side.SELL, Decimal(1), client_order_id=77)
            with pytest.raises(errors.RedirectError) as read:
                await client.get_open_orders()
    assert received == []
    assert [s.path for s in seen].count("/ap/SendOrder") == 1
    assert not isinstance(order.value, errors.UnknownOutcomeError)
    assert (order.value.status, read.value.status) == (status, status)
    assert all(s.headers.get("aptoken") == TOKEN for s in seen if s.path != "/ap/AuthenticateUser")


async def test_a_303_after_a_write_is_an_unknown_outcome(
    elsewhere: tuple[str, list[Seen]],
) -> None:
    """303 "See Other" may mean "processed": a write answered so must be reconciled."""
    target, received = elsewhere
    seen: list[Seen] = []
    async with redirecting(303, target, seen, keep={"AuthenticateUser": answer(LOGIN_OK)}) as url:
        creds = Credentials(api_key="k", api_secret="s", user_id=9)
        async with KiiexClient(url, credentials=creds, rate_limit=None) as client:
            with pytest.raises(errors.UnknownOutcomeError) as info:
                await client.send_order(1, Side.SELL, Decimal(1), client_order_id=78)
    assert received == []
    assert info.value.client_order_id == 78
    assert isinstance(info.value.__cause__, errors.RedirectError)


async def test_a_redirect_without_location_is_still_refused() -> None:
    """A bare 302 (no Location) is a RedirectError with location None."""
    seen: list[Seen] = []

    async def bare(_request: web.Request) -> web.Response:
        return web.Response(status=302)

    async with serve({"Ping": bare}, seen) as url, KiiexClient(url, rate_limit=None) as client:
        with pytest.raises(errors.RedirectError) as info:
            await client.ping()
    assert info.value.location is None and "no Location" in str(info.value)


# -- body size cap -------------------------------------------------------------------------


@attrs.define
class Flood:
    """A route that streams ``total`` bytes of JSON padding, counting what it wrote."""

    total: int
    declare: bool = False
    written: int = 0
    finished: bool = False
    done: asyncio.Event = attrs.field(factory=asyncio.Event)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        if self.declare:
            response.content_length = self.total
        else:
            response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            chunk = b" " * MiB
            while self.written < self.total:
                await response.write(chunk)
                self.written += len(chunk)
            await response.write_eof()
            self.finished = True
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client hung up, which is the point
        finally:
            self.done.set()
        return response


@pytest.mark.parametrize("declare", [False, True], ids=["chunked", "content-length"])
async def test_a_200_mb_answer_stops_at_the_cap_without_being_read(declare: bool) -> None:
    """200 MB (chunked or declared): ResponseTooLargeError at 8 MiB; the rest is never read."""
    flood = Flood(200 * MiB, declare=declare)
    routes: dict[str, Handler] = {"GetLevel1": flood, "Ping": answer({"msg": "PONG"})}
    async with serve(routes, []) as url, KiiexClient(url, rate_limit=None) as client:
        with anyio.fail_after(WAIT), pytest.raises(errors.ResponseTooLargeError) as info:
            await client.get_level1(1)
        with anyio.fail_after(WAIT):
            await flood.done.wait()
        # The client still works after dropping that connection.
        assert (await client.ping()).msg == "PONG"
    error = info.value
    assert error.limit == 8 * MiB and error.status == 200 and error.method == "GetLevel1"
    assert not flood.finished
    assert flood.written < 200 * MiB
    assert error.size is not None
    if declare:
        assert error.size == 200 * MiB
    else:
        assert 8 * MiB < error.size <= 8 * MiB + 64 * 1024


async def test_a_compressed_bomb_is_capped_after_inflating() -> None:
    """A small gzip body that inflates past the cap is refused (Content-Length lies about it)."""
    bomb = gzip.compress(b" " * (4 * MiB))

    async def handler(_request: web.Request) -> web.Response:
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        return web.Response(body=bomb, headers=headers)

    async with (
        serve({"GetProducts": handler}, []) as url,
        KiiexClient(url, rate_limit=None, max_body_size=MiB) as client,
    ):
        with pytest.raises(errors.ResponseTooLargeError) as info:
            await client.get_products()
    assert len(bomb) < MiB and info.value.limit == MiB


async def test_a_too_large_answer_to_a_write_is_an_unknown_outcome() -> None:
    """SendOrder answered by an oversize body may have been applied: UnknownOutcomeError."""
    flood = Flood(4 * MiB)
    routes: dict[str, Handler] = {"AuthenticateUser": answer(LOGIN_OK), "SendOrder": flood}
    seen: list[Seen] = []
    async with serve(routes, seen) as url:
        creds = Credentials(api_key="k", api_secret="s", user_id=9)
        async with KiiexClient(url, credentials=creds, rate_limit=None, max_body_size=MiB) as c:
            with pytest.raises(errors.UnknownOutcomeError) as info:
                await c.send_order(1, Side.BUY, Decimal(2), client_order_id=79)
    assert isinstance(info.value.__cause__, errors.ResponseTooLargeError)
    assert info.value.client_order_id == 79
    assert [s.path for s in seen].count("/ap/SendOrder") == 1


def _sized(size: int) -> Callable[[Request], Response]:
    """A MockTransport handler: a login, then a JSON list of ``size`` bytes for every call."""
    body = b"[" + b" " * (size - 2) + b"]"

    def handler(request: Request) -> Response:
        if request.name == "AuthenticateUser":
            return Response(200, json=LOGIN_OK)
        return Response(200, content=body)

    return handler


async def test_history_calls_get_their_own_larger_cap() -> None:
    """max_history_body_size applies to history calls, max_body_size to the others."""
    transport = MockTransport(_sized(2 * MiB))
    async with KiiexClient(
        "http://exchange.test/ap",
        credentials=Credentials(api_key="k", api_secret="s", user_id=9),
        transport=transport,
        rate_limit=None,
        max_body_size=MiB,
        max_history_body_size=4 * MiB,
    ) as client:
        with pytest.raises(errors.ResponseTooLargeError) as info:
            await client.get_products()
        assert await client.get_orders_history() == []
    assert info.value.limit == MiB and info.value.size == 2 * MiB


# -- cancelling a write --------------------------------------------------------------------


class Stall:
    """A MockTransport handler that logs in and holds SendOrder until released."""

    def __init__(self) -> None:
        self.arrived = asyncio.Event()
        self.release = asyncio.Event()
        self.transport = MockTransport(self)

    async def __call__(self, request: Request) -> Response:
        if request.name == "AuthenticateUser":
            return Response(200, json=LOGIN_OK)
        if request.name == "SendOrder":
            self.arrived.set()
            await self.release.wait()
            return Response(200, json=ACCEPTED)
        return Response(200, json=[])

    def client(self, **options: Any) -> KiiexClient:
        creds = Credentials(api_key="k", api_secret="s", user_id=9)
        options.setdefault("rate_limit", None)
        return KiiexClient(
            "http://exchange.test/ap", credentials=creds, transport=self.transport, **options
        )

    def orders(self) -> int:
        return sum(r.name == "SendOrder" for r in self.transport.requests)


async def _order(client: KiiexClient, client_order_id: int = 41) -> Any:
    return await client.send_order(1, Side.SELL, Decimal(1), client_order_id=client_order_id)


def _still_running() -> None:
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_asyncio_timeout_around_a_write_is_an_unknown_outcome() -> None:
    """asyncio.timeout firing while SendOrder is in flight: UnknownOutcomeError with its id."""
    stall = Stall()
    async with stall.client() as client:
        await client.authenticate()
        with pytest.raises(errors.UnknownOutcomeError) as info:
            async with asyncio.timeout(0.05):
                await _order(client)
        _still_running()
        await asyncio.sleep(0)  # no stray cancellation is delivered afterwards
        assert await client.get_open_orders() == []
    assert info.value.client_order_id == 41 and info.value.method == "SendOrder"
    assert "41" in str(info.value)
    assert stall.orders() == 1


async def test_wait_for_and_fail_after_around_a_write_are_unknown_outcomes() -> None:
    """asyncio.wait_for and anyio.fail_after behave as asyncio.timeout does."""
    stall = Stall()
    async with stall.client() as client:
        await client.authenticate()
        with pytest.raises(errors.UnknownOutcomeError) as waited:
            await asyncio.wait_for(_order(client, 42), 0.05)
        with pytest.raises(errors.UnknownOutcomeError) as failed:
            with anyio.fail_after(0.05):
                await _order(client, 43)
        _still_running()
        await asyncio.sleep(0)
        assert await client.get_open_orders() == []
    assert (waited.value.client_order_id, failed.value.client_order_id) == (42, 43)


async def test_task_cancel_of_a_write_reports_the_unknown_outcome() -> None:
    """task.cancel() while SendOrder is in flight: awaiting the task raises UnknownOutcomeError."""
    stall = Stall()
    async with stall.client() as client:
        await client.authenticate()
        task = asyncio.create_task(_order(client, 44))
        with anyio.fail_after(WAIT):
            await stall.arrived.wait()
        task.cancel()
        with pytest.raises(errors.UnknownOutcomeError) as info:
            await task
    assert info.value.client_order_id == 44


async def test_a_cancellation_caught_as_unknown_outcome_is_delivered_again() -> None:
    """Code that catches the UnknownOutcomeError and goes on is cancelled at its next await."""
    stall = Stall()
    reached: list[str] = []

    async def job(client: KiiexClient) -> None:
        try:
            await _order(client, 45)
        except errors.UnknownOutcomeError:
            reached.append("caught")
        await asyncio.sleep(WAIT)  # the cancellation must land here
        reached.append("not cancelled")

    async with stall.client() as client:
        await client.authenticate()
        task = asyncio.create_task(job(client))
        with anyio.fail_after(WAIT):
            await stall.arrived.wait()
        task.cancel()
        with anyio.fail_after(WAIT):
            await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()
    assert reached == ["caught"]


async def test_a_timeout_caught_inside_its_block_still_ends_the_block() -> None:
    """Inside asyncio.timeout, catching the unknown outcome and awaiting more: TimeoutError."""
    stall = Stall()
    async with stall.client() as client:
        await client.authenticate()
        with pytest.raises(TimeoutError):  # noqa: PT012 - the block's shape is the point
            async with asyncio.timeout(0.05):
                with contextlib.suppress(errors.UnknownOutcomeError):
                    await _order(client, 46)
                await asyncio.sleep(WAIT)
        _still_running()


async def test_a_cancel_scope_caught_inside_still_ends_only_its_scope() -> None:
    """In anyio.move_on_after, catching the unknown outcome and awaiting ends the scope only."""
    stall = Stall()
    async with stall.client() as client:
        await client.authenticate()
        with anyio.move_on_after(0.05) as scope:
            with contextlib.suppress(errors.UnknownOutcomeError):
                await _order(client, 49)
            await asyncio.sleep(WAIT)
        assert scope.cancelled_caught
        _still_running()
        assert await client.get_open_orders() == []


async def test_a_redelivered_cancellation_keeps_its_message() -> None:
    """The second delivery carries the first one's message (anyio knows its own by it)."""
    message = "Cancelled via cancel scope 7f00"
    seen: list[BaseException] = []

    async def victim() -> None:
        # What a cancelled write does: it absorbs the cancellation (raising instead).
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(WAIT)
        try:
            await asyncio.sleep(WAIT)
        except asyncio.CancelledError as again:
            seen.append(again)

    task = asyncio.create_task(victim())
    await asyncio.sleep(0)
    task.cancel(message)
    await asyncio.sleep(0)  # the first delivery lands and is absorbed
    _redeliver(task, 0, message)
    with anyio.fail_after(WAIT):
        await task
    (again,) = seen
    assert again.args == (message,)


async def test_cancelling_before_the_request_left_stays_a_cancellation() -> None:
    """A write cancelled while waiting for the rate budget sent nothing: plain CancelledError."""
    stall = Stall()
    async with stall.client(rate_limit=0.1) as client:
        await client.authenticate()  # spends the budget: the order waits ~10 s for it
        task = asyncio.create_task(_order(client, 47))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert stall.orders() == 0


async def test_a_real_server_that_stalls_a_write_gives_an_unknown_outcome() -> None:
    """End to end over aiohttp: asyncio.timeout around SendOrder to a stalled server."""
    release = asyncio.Event()

    async def stalled(_request: web.Request) -> web.Response:
        await release.wait()
        return web.json_response(ACCEPTED)

    seen: list[Seen] = []
    routes: dict[str, Handler] = {"AuthenticateUser": answer(LOGIN_OK), "SendOrder": stalled}
    async with serve(routes, seen) as url:
        creds = Credentials(api_key="k", api_secret="s", user_id=9)
        async with KiiexClient(url, credentials=creds, rate_limit=None) as client:
            await client.authenticate()
            with pytest.raises(errors.UnknownOutcomeError) as info:
                async with asyncio.timeout(0.2):
                    await _order(client, 48)
            release.set()
        _still_running()
    assert info.value.client_order_id == 48
    assert [s.path for s in seen].count("/ap/SendOrder") == 1


# -- knobs ---------------------------------------------------------------------------------


async def test_a_borrowed_session_is_used_and_left_open() -> None:
    """session=: requests go through the caller's session, which the client never closes."""
    seen: list[Seen] = []
    async with (
        serve({"Ping": answer({"msg": "PONG"})}, seen) as url,
        aiohttp.ClientSession(headers={"X-Mine": "yes"}) as session,
    ):
        async with KiiexClient(url, session=session, rate_limit=None) as client:
            assert (await client.ping()).msg == "PONG"
        assert not session.closed
        (ping,) = seen
        assert ping.headers["X-Mine"] == "yes"
        assert ping.headers["Accept"] == "application/json"


async def test_trace_configs_see_every_request() -> None:
    """trace_configs= are handed to aiohttp: their hooks run for each request."""
    started: list[str] = []

    async def on_start(_s: Any, _ctx: Any, params: aiohttp.TraceRequestStartParams) -> None:
        started.append(params.url.path)

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_start)
    async with (
        serve({"Ping": answer({"msg": "PONG"})}, []) as url,
        KiiexClient(url, trace_configs=[trace], rate_limit=None) as client,
    ):
        await client.ping()
    assert started == ["/ap/Ping"]


# -- custom transports ---------------------------------------------------------------------


def _failing(failures: list[BaseException]) -> MockTransport:
    """Logs in, then raises the next of ``failures`` per call, then answers with success."""

    def handler(request: Request) -> Response:
        if request.name == "AuthenticateUser":
            return Response(200, json=LOGIN_OK)
        if failures:
            raise failures.pop(0)
        return Response(200, json=ACCEPTED if request.name == "SendOrder" else [])

    return MockTransport(handler)


def _fast_client(transport: MockTransport) -> KiiexClient:
    creds = Credentials(api_key="k", api_secret="s", user_id=9)
    return KiiexClient(
        "http://exchange.test/ap", credentials=creds, transport=transport, rate_limit=None
    )


async def test_a_custom_transport_s_socket_failures_are_retried_on_reads() -> None:
    """OSError and TimeoutError from a custom transport are transient for a read."""
    transport = _failing([ConnectionResetError("reset"), TimeoutError()])
    async with _fast_client(transport) as client:
        assert await client.get_open_orders() == []
    assert [r.name for r in transport.requests].count("GetOpenOrders") == 3


async def test_a_custom_transport_s_unknown_failure_passes_through_on_a_read() -> None:
    """A bug in a transport (not a network failure) is not retried nor disguised."""
    transport = _failing([LookupError("bug")])
    async with _fast_client(transport) as client:
        with pytest.raises(LookupError):
            await client.get_open_orders()


async def test_any_failure_of_a_custom_transport_after_a_write_is_an_unknown_outcome() -> None:
    """A write that failed in a custom transport may have been sent: UnknownOutcomeError."""
    transport = _failing([LookupError("bug"), ConnectionResetError("reset")])
    async with _fast_client(transport) as client:
        for client_order_id in (51, 52):
            with pytest.raises(errors.UnknownOutcomeError) as info:
                await _order(client, client_order_id)
            assert info.value.client_order_id == client_order_id
    assert [r.name for r in transport.requests].count("SendOrder") == 2


async def test_a_write_that_never_left_is_sent_again() -> None:
    """ConnectError from the transport means not sent: the write is retried and succeeds."""
    transport = _failing([errors.ConnectError("refused")])
    async with _fast_client(transport) as client:
        assert (await _order(client, 53)).order_id == 31
    assert [r.name for r in transport.requests].count("SendOrder") == 2


async def test_a_closed_borrowed_session_is_a_configuration_error() -> None:
    """A session closed by its owner gives a clear error, not aiohttp's RuntimeError."""
    session = aiohttp.ClientSession()
    await session.close()
    async with KiiexClient("http://127.0.0.1:1/ap", session=session, rate_limit=None) as client:
        with pytest.raises(errors.ConfigurationError, match="closed"):
            await client.ping()


async def test_policies_above_the_seam_apply_to_a_mock_transport() -> None:
    """Status table, retries, the 429 pause, re-login and the aptoken all run over MockTransport."""
    answers = [
        Response(503, content=b"<html>busy</html>"),
        Response(429, headers={"Retry-After": "0"}, json={}),
        Response(401, json={"result": False, "errorcode": 20, "errormsg": "Not Authorized"}),
        Response(200, json=[]),
    ]
    logins: list[str] = []

    def handler(request: Request) -> Response:
        if request.name == "AuthenticateUser":
            logins.append(request.json()["APIKey"])
            return Response(200, json={**LOGIN_OK, "SessionToken": f"{TOKEN}-{len(logins)}"})
        if request.name == "LogOut":
            return Response(200, json={"result": True})
        return answers.pop(0)

    transport = MockTransport(handler)
    async with _fast_client(transport) as client:
        assert await client.get_open_orders() == []
    reads = [r for r in transport.requests if r.name == "GetOpenOrders"]
    assert len(reads) == 4 and len(logins) == 2
    tokens = [r.headers.get("aptoken") for r in reads]
    assert tokens == [f"{TOKEN}-1"] * 3 + [f"{TOKEN}-2"]
