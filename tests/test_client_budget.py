"""Per-call ``timeout=`` budgets and per-attempt signing, over a MockTransport.

The server here is slow on purpose (each attempt takes longer than the small budgets the
tests give), so what the budget does shows as a count of attempts and an error type, never
as a measured duration.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from kiiex_async import Credentials, errors
from kiiex_async.client import AuthMode, KiiexClient
from kiiex_async.models import Side
from kiiex_async.testing import MockTransport, Request, Response

LOGIN = {"Authenticated": True, "SessionToken": "tok-1", "User": {"UserId": 9, "AccountId": 7}}
#: How long the slow server takes per attempt: well above every budget given below.
SLOW = 0.3


def client_of(
    handler: Callable[[Request], Any], *, auth: AuthMode = "auto", **options: Any
) -> tuple[KiiexClient, MockTransport]:
    transport = MockTransport(handler)
    client = KiiexClient(
        "http://127.0.0.1:1/ap",
        credentials=Credentials(api_key="key-1", api_secret="secret-1", user_id=9),
        transport=transport,
        rate_limit=None,
        auth=auth,
        **options,
    )
    return client, transport


async def slow_failure(request: Request) -> Response:
    """Logs in at once; every other call fails with a 503 after ``SLOW`` seconds."""
    if request.name == "AuthenticateUser":
        return Response(200, json=LOGIN)
    await asyncio.sleep(SLOW)
    return Response(503, json={"result": False, "errormsg": "Busy", "errorcode": 107})


def attempts(transport: MockTransport, method: str) -> int:
    return sum(1 for r in transport.requests if r.name == method)


async def test_without_timeout_a_failing_read_gets_every_retry_of_the_default_budget() -> None:
    """No timeout=: the client's default budget applies, so a slow failing read is tried
    max_retries + 1 times and ends with the server's error."""
    client, transport = client_of(slow_failure, max_retries=1)
    async with client:
        with pytest.raises(errors.ServerError):
            await client.get_level1(1)
        with pytest.raises(errors.ServerError):
            await client.get_open_orders()
    assert attempts(transport, "GetLevel1") == 2
    assert attempts(transport, "GetOpenOrders") == 2


async def test_a_read_stops_when_its_timeout_is_spent() -> None:
    """timeout= is the whole read's budget: spent during the first slow attempt, no retry
    is made and the read raises RequestTimeout (public and private reads alike)."""
    client, transport = client_of(slow_failure, max_retries=5)
    async with client:
        await client.authenticate()  # the login is not what this budget is about
        with pytest.raises(errors.RequestTimeout, match=r"timeout of 0\.05s"):
            await client.get_level1(1, timeout=0.05)
        with pytest.raises(errors.RequestTimeout):
            await client.get_open_orders(timeout=0.05)
    assert attempts(transport, "GetLevel1") == 1
    assert attempts(transport, "GetOpenOrders") == 1


async def test_the_budget_covers_the_retries_of_a_read() -> None:
    """A read failing fast and then slowly is stopped by its budget after at most one retry,
    far before its five retries run out."""
    seen: list[Request] = []

    async def fast_then_slow(request: Request) -> Response:
        seen.append(request)
        if len(seen) > 1:
            await asyncio.sleep(SLOW)
        return Response(503, json={"result": False, "errormsg": "Busy", "errorcode": 107})

    client, _ = client_of(fast_then_slow, max_retries=5)
    async with client:
        # Cut during the backoff or the slow retry (RequestTimeout), or, on a starved
        # machine, not retried at all because the budget was gone (the 503's ServerError).
        with pytest.raises((errors.RequestTimeout, errors.ServerError)):
            await client.get_level1(1, timeout=0.2)
    assert 1 <= len(seen) <= 2


async def test_a_write_gets_one_attempt_and_a_spent_budget_makes_its_outcome_unknown() -> None:
    """A write whose budget ends while its request is in flight is not resent: its outcome
    is unknown (the ClientOrderId is kept for reconciliation)."""
    client, transport = client_of(slow_failure, max_retries=5)
    async with client:
        await client.authenticate()
        with pytest.raises(errors.UnknownOutcomeError) as info:
            await client.send_order(1, Side.SELL, 1, client_order_id=77, timeout=0.05)
    assert attempts(transport, "SendOrder") == 1
    assert info.value.client_order_id == 77


async def test_a_budget_spent_on_the_login_sends_nothing() -> None:
    """A private call whose budget the (shared, unbounded) login used up is not sent:
    RequestTimeout, and the exchange never sees the write."""

    async def slow_login(request: Request) -> Response:
        if request.name == "AuthenticateUser":
            await asyncio.sleep(SLOW)
            return Response(200, json=LOGIN)
        return Response(200, json={"status": "Accepted", "OrderId": 1})

    client, transport = client_of(slow_login)
    async with client:
        with pytest.raises(errors.RequestTimeout, match="spent before it was sent"):
            await client.send_order(1, Side.SELL, 1, timeout=0.05)
        assert client.is_authenticated
    assert attempts(transport, "SendOrder") == 0


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "5"])
async def test_a_bad_timeout_is_refused_before_any_request(bad: Any) -> None:
    """timeout= must be a positive number of seconds: anything else is InvalidInputError
    and nothing is sent (not even the login)."""
    client, transport = client_of(slow_failure)
    async with client:
        with pytest.raises(errors.InvalidInputError, match="timeout"):
            await client.get_level1(1, timeout=bad)
        with pytest.raises(errors.InvalidInputError, match="timeout"):
            await client.get_open_orders(timeout=bad)
    assert transport.requests == []


async def test_each_attempt_of_a_signed_read_carries_a_fresh_nonce() -> None:
    """Per-request signing: a read retried after a 503 is signed again, so its two attempts
    carry different nonces and signatures."""
    answers = iter([Response(503, json={"result": False, "errormsg": "Busy"}), None])

    def handler(request: Request) -> Response:
        if request.name == "AuthenticateUser":
            return Response(200, json=LOGIN)
        return next(answers) or Response(200, json=[])

    client, transport = client_of(handler, auth="per_request", max_retries=1)
    async with client:
        assert await client.get_open_orders() == []
    first, second = [r.headers for r in transport.requests if r.name == "GetOpenOrders"]
    assert first["Nonce"] != second["Nonce"]
    assert first["Signature"] != second["Signature"]
    assert first["APIKey"] == second["APIKey"] == "key-1"


async def test_retry_timeout_sets_the_clients_retry_budget() -> None:
    """retry_timeout= is the per-client budget of a read's retries: a first attempt slower
    than it leaves no time for the five retries max_retries allows."""
    client, transport = client_of(slow_failure, max_retries=5, retry_timeout=0.1)
    async with client:
        with pytest.raises(errors.ServerError):
            await client.get_level1(1)
    assert attempts(transport, "GetLevel1") == 1


async def test_retry_timeout_none_leaves_the_attempts_as_the_only_limit() -> None:
    """retry_timeout=None: a read failing fast is tried max_retries + 1 times."""

    def busy(request: Request) -> Response:
        if request.name == "AuthenticateUser":
            return Response(200, json=LOGIN)
        return Response(503, json={"result": False, "errormsg": "Busy", "errorcode": 107})

    client, transport = client_of(busy, max_retries=1, retry_timeout=None)
    async with client:
        with pytest.raises(errors.ServerError):
            await client.get_level1(1)
    assert attempts(transport, "GetLevel1") == 2


@pytest.mark.parametrize("budget", [0, -1.0, float("inf"), "45", True])
def test_a_bad_retry_timeout_is_a_configuration_error(budget: Any) -> None:
    """retry_timeout must be a positive number of seconds or None, checked at once."""
    with pytest.raises(errors.ConfigurationError, match="retry_timeout"):
        KiiexClient("http://127.0.0.1:1/ap", retry_timeout=budget)
