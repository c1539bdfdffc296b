"""``KiiexClient.retry_scope``: one deadline for the reads of a block, retried by the
client's own engine (the workflow passes its step limit down this way).

Waits between attempts are capped at a few milliseconds (``wait_max``), so what the scope
does shows as attempt counts, hook calls and error types, never as a measured duration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from kiiex_async import Credentials, errors
from kiiex_async.client import KiiexClient
from kiiex_async.models import Side
from kiiex_async.testing import MockTransport, Request, Response

LOGIN = {"Authenticated": True, "SessionToken": "tok-1", "User": {"UserId": 9, "AccountId": 7}}
LEVEL1 = {"OMSId": 1, "InstrumentId": 3, "BestBid": "0.9999", "BestOffer": "1.0001"}
NOT_FOUND = {"result": False, "errormsg": "Resource Not Found", "errorcode": 104}
BUSY = {"result": False, "errormsg": "Server Error", "errorcode": 102}
FAST = 0.005


def client_of(handler: Callable[[Request], Any], **options: Any) -> tuple[KiiexClient, Any]:
    transport = MockTransport(handler)
    options.setdefault("max_retries", 0)
    client = KiiexClient(
        "http://127.0.0.1:1/ap",
        credentials=Credentials(api_key="key-1", api_secret="secret-1", user_id=9),
        transport=transport,
        rate_limit=None,
        **options,
    )
    return client, transport


def failing_first(times: int, answer: dict[str, Any], status: int = 200) -> Any:
    """A handler answering ``answer`` (with ``status``) to the first ``times`` GetLevel1
    calls, then a normal Level1."""
    seen = {"GetLevel1": 0}

    def handler(request: Request) -> Response:
        if request.name == "AuthenticateUser":
            return Response(200, json=LOGIN)
        if request.name == "GetLevel1":
            seen["GetLevel1"] += 1
            if seen["GetLevel1"] <= times:
                return Response(status, json=answer)
            return Response(200, json=LEVEL1)
        return Response(200, json={"result": True, "errorcode": 0})

    return handler


def count(transport: MockTransport, method: str) -> int:
    return sum(1 for request in transport.requests if request.name == method)


async def test_a_scope_retries_past_max_retries_and_reports_each_retry() -> None:
    """max_retries=0 sends a failing read once; inside a scope the same read is retried
    until it succeeds, and on_retry hears of every failure before its retry."""
    client, transport = client_of(failing_first(3, BUSY, status=500))
    heard: list[tuple[str, type[Exception]]] = []

    async def on_retry(method: str, exc: Exception) -> None:
        heard.append((method, type(exc)))

    async with client:
        with pytest.raises(errors.ServerError):
            await client.get_level1(3)
        assert count(transport, "GetLevel1") == 1
        with client.retry_scope(30, on_retry=on_retry, wait_max=FAST):
            level1 = await client.get_level1(3)
    assert str(level1.best_bid) == "0.9999"
    assert count(transport, "GetLevel1") == 4  # 1 outside, 3 inside (2 failures, 1 success)
    assert heard == [("GetLevel1", errors.ServerError)] * 2


async def test_retry_on_adds_errors_that_are_final_outside_the_scope() -> None:
    """NotFoundError is final for a plain read; with retry_on=(NotFoundError,) the scope
    retries it (an order not visible yet), and only inside the block."""
    client, transport = client_of(failing_first(2, NOT_FOUND))
    async with client:
        with client.retry_scope(30, wait_max=FAST), pytest.raises(errors.NotFoundError):
            await client.get_level1(3)
        assert count(transport, "GetLevel1") == 1
        with client.retry_scope(30, retry_on=(errors.NotFoundError,), wait_max=FAST):
            await client.get_level1(3)
        assert count(transport, "GetLevel1") == 3


async def test_the_deadline_is_shared_by_the_block_and_bounds_the_attempt_in_flight() -> None:
    """A read that hangs is cut at the scope's deadline (the client's own timeout is far
    longer), and a read made after the deadline is not sent at all."""
    hanging = asyncio.Event()

    async def handler(request: Request) -> Response:
        if request.name == "AuthenticateUser":
            return Response(200, json=LOGIN)
        await hanging.wait()  # never set: the server never answers
        raise AssertionError("unreachable")

    client, transport = client_of(handler, timeout=600)
    async with client:
        with client.retry_scope(0.2, wait_max=FAST):
            with pytest.raises(errors.RequestTimeout):
                await client.get_level1(3)
            sent = count(transport, "GetLevel1")
            with pytest.raises(errors.RequestTimeout, match="spent before it was sent"):
                await client.get_level1(3)
            assert count(transport, "GetLevel1") == sent


async def test_writes_ignore_the_scope_and_are_sent_once() -> None:
    """A write inside a scope is still sent once: its 5xx is an unknown outcome."""

    def handler(request: Request) -> Response:
        if request.name == "AuthenticateUser":
            return Response(200, json=LOGIN)
        return Response(500, json=BUSY)

    client, transport = client_of(handler)
    async with client:
        scope = client.retry_scope(30, retry_on=(errors.ServerError,), wait_max=FAST)
        with scope, pytest.raises(errors.UnknownOutcomeError):
            await client.send_order(instrument_id=3, side=Side.BUY, quantity="1", client_order_id=5)
    assert count(transport, "SendOrder") == 1


async def test_another_clients_scope_does_not_apply() -> None:
    """A scope belongs to the client that opened it."""
    first, _ = client_of(failing_first(0, LEVEL1))
    second, transport = client_of(failing_first(1, BUSY, status=500))
    async with first, second:
        with first.retry_scope(30, wait_max=FAST), pytest.raises(errors.ServerError):
            await second.get_level1(3)
    assert count(transport, "GetLevel1") == 1


async def test_an_error_from_on_retry_ends_the_read() -> None:
    """on_retry may stop the retrying (the workflow does when its lease is lost)."""
    client, transport = client_of(failing_first(5, BUSY, status=500))

    class Stop(Exception):
        pass

    async def on_retry(method: str, exc: Exception) -> None:
        raise Stop(method)

    async with client:
        with client.retry_scope(30, on_retry=on_retry, wait_max=FAST), pytest.raises(Stop):
            await client.get_level1(3)
    assert count(transport, "GetLevel1") == 1


@pytest.mark.parametrize(
    ("seconds", "options"),
    [
        (0, {}),
        (-1, {}),
        (float("nan"), {}),
        (5, {"retry_on": [errors.NotFoundError]}),
        (5, {"retry_on": (ValueError, "x")}),
        (5, {"wait_max": 0}),
    ],
)
async def test_bad_scope_arguments_are_refused(seconds: float, options: dict[str, Any]) -> None:
    client, _ = client_of(failing_first(0, LEVEL1))
    async with client:
        with pytest.raises(errors.InvalidInputError), client.retry_scope(seconds, **options):
            raise AssertionError("the scope must not open")
