"""The default transport under the call pipeline (aiohttp mocked with aioresponses: the only
test module that does).  Redirects, body caps and cancellation run against real local
servers in ``tests/test_transport_guarantees.py``."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any
from unittest.mock import Mock

import aiohttp
import pytest
import stamina
from aiohttp.client_reqrep import ConnectionKey, RequestInfo
from aioresponses import CallbackResult, aioresponses
from multidict import CIMultiDict, CIMultiDictProxy
from stamina.instrumentation import RetryDetails, set_on_retry_hooks
from yarl import URL

from kiiex_async import Credentials, errors
from kiiex_async._pipeline import Pipeline, RetryPolicy
from kiiex_async._rules import interpret_response, parse_retry_after, retry_wait
from kiiex_async._transport import AiohttpTransport, Timeouts
from kiiex_async.client import KiiexClient

BASE = "http://127.0.0.1:8999/ap"
TOKEN = "SESSION-TOKEN-7f3c"
SECRET = "API-SECRET-9b1e"
PASSWORD = "PASSWORD-c0ffee"

#: Retries without real waiting (the backoff arithmetic is stamina's).
FAST = RetryPolicy(attempts=3, wait_initial=0.001, wait_max=0.002, wait_jitter=0.0)


def pipeline(
    base: str = BASE,
    *,
    pool_size: int | None = None,
    timeouts: Timeouts | None = None,
    **options: Any,
) -> Pipeline:
    """A pipeline over the default aiohttp transport."""
    return Pipeline(base, AiohttpTransport(pool_size=pool_size, timeouts=timeouts), **options)


def url(method: str) -> str:
    return f"{BASE}/{method}"


def count(mock: aioresponses, method: str | None = None) -> int:
    """Requests recorded by aioresponses, for one AlphaPoint method or in total."""
    return sum(
        len(calls)
        for (_verb, target), calls in mock.requests.items()
        if method is None or target.path.endswith("/" + method)
    )


def sent(mock: aioresponses, method: str) -> list[Any]:
    """The recorded calls of one AlphaPoint method."""
    return [
        call
        for (_verb, target), calls in mock.requests.items()
        if target.path.endswith("/" + method)
        for call in calls
    ]


def sent_body(call: Any) -> str:
    """The body a recorded call sent, as text (the transport hands aiohttp a payload)."""
    data = call.kwargs["data"]
    return str(data.decode()) if data is not None else ""


def chain_text(exc: BaseException) -> str:
    """str and repr of an exception and of the chain a traceback would display."""
    parts: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        parts += [str(seen), repr(seen)]
        if seen.__cause__ is not None:
            seen = seen.__cause__
        elif seen.__context__ is not None and not seen.__suppress_context__:
            seen = seen.__context__
        else:
            seen = None
    return "\n".join(parts)


def connector_error() -> aiohttp.ClientConnectorError:
    key = ConnectionKey("127.0.0.1", 8999, False, True, None, None, None)
    return aiohttp.ClientConnectorError(key, ConnectionRefusedError(111, "Connection refused"))


@pytest.fixture
def mock() -> Iterator[aioresponses]:
    with aioresponses() as m:
        yield m


@pytest.fixture
async def transport() -> AsyncIterator[Pipeline]:
    async with pipeline(BASE, rate_limit=None, retry=FAST) as t:
        yield t


@pytest.fixture
def retries() -> Iterator[list[RetryDetails]]:
    """Capture stamina's scheduled retries (and restore its default hooks afterwards)."""
    seen: list[RetryDetails] = []

    def hook(details: RetryDetails) -> None:
        seen.append(details)

    set_on_retry_hooks([hook])
    yield seen
    set_on_retry_hooks(None)


# -- requests ------------------------------------------------------------------------------


async def test_post_sends_json_body_aptoken_and_timeouts(
    mock: aioresponses, transport: Pipeline
) -> None:
    """POST carries an exact JSON body, the aptoken header and per-call timeouts."""
    mock.post(url("GetAccountPositions"), body="[]")
    transport.set_session_token(TOKEN)
    await transport.call("GetAccountPositions", {"OMSId": 1, "Amount": Decimal("100.50")})
    (call,) = sent(mock, "GetAccountPositions")
    assert sent_body(call) == '{"OMSId":1,"Amount":100.5}'
    headers = CIMultiDict(call.kwargs["headers"])
    assert headers["aptoken"] == TOKEN
    assert headers["Content-Type"] == "application/json"
    timeout = call.kwargs["timeout"]
    # total is enforced by the transport itself, and bounds every read while sock_read is
    # not shorter than it (tests/test_transport_deadline.py).
    assert (timeout.total, timeout.connect, timeout.sock_read) == (None, 10.0, None)


async def test_get_sends_query_string(mock: aioresponses, transport: Pipeline) -> None:
    """GET puts the payload in the query string (Decimal exact, bools lowercase)."""
    mock.get(re.compile(r".*/GetLevel1\?.*"), body='{"InstrumentId": 1}')
    payload = {"OMSId": 1, "InstrumentId": 1, "Px": Decimal("1.50"), "Flag": True, "No": None}
    assert await transport.call("GetLevel1", payload, http="GET") == {"InstrumentId": 1}
    ((verb, target),) = mock.requests
    assert verb == "GET"
    assert dict(target.query) == {"OMSId": "1", "InstrumentId": "1", "Px": "1.5", "Flag": "true"}


async def test_no_aptoken_without_session_or_when_logging_in(
    mock: aioresponses, transport: Pipeline
) -> None:
    """Without a token, or with use_session=False, no aptoken header is sent."""
    mock.post(url("Ping"), body='{"msg":"PONG"}', repeat=True)
    await transport.call("Ping", {})
    transport.set_session_token(TOKEN)
    await transport.call("Ping", {}, use_session=False)
    assert all("aptoken" not in CIMultiDict(c.kwargs["headers"]) for c in sent(mock, "Ping"))


async def test_pool_is_sized_and_writes_refuse_get() -> None:
    """The connector has pool_size connections; a write over GET is refused before sending."""
    async with pipeline(BASE, pool_size=7) as t:
        assert isinstance(t.transport, AiohttpTransport)
        session = t.transport.session
        assert session is not None and session.connector is not None
        assert session.connector.limit == 7
        assert t.pool_size == 7
        with pytest.raises(errors.InvalidInputError):
            await t.call("SendOrder", {}, write=True, http="GET")


async def test_closed_transport_refuses_calls(transport: Pipeline) -> None:
    """After aclose a call raises RuntimeError instead of opening a new session."""
    await transport.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await transport.call("Ping")


# -- retries of reads ----------------------------------------------------------------------


async def test_read_waits_exactly_retry_after_on_429(
    mock: aioresponses, retries: list[RetryDetails]
) -> None:
    """A 429's Retry-After is the wait before the retry (real sleep, measured)."""
    mock.post(url("GetLevel1"), status=429, body="{}", headers={"Retry-After": "0.2"})
    mock.post(url("GetLevel1"), body='{"InstrumentId": 1}')
    async with pipeline(BASE, rate_limit=None, retry=RetryPolicy(wait_initial=5.0)) as t:
        started = time.monotonic()
        assert await t.call("GetLevel1", {"InstrumentId": 1}) == {"InstrumentId": 1}
        elapsed = time.monotonic() - started
    assert [r.wait_for for r in retries] == [0.2]
    assert elapsed >= 0.2
    assert count(mock) == 2


async def test_429_pauses_every_call_of_the_client(mock: aioresponses) -> None:
    """After a 429 no other call of the same client is sent before Retry-After has passed."""
    arrivals: list[tuple[str, float]] = []

    def record(name: str) -> Any:
        def callback(_url: URL, **_kwargs: Any) -> CallbackResult:
            arrivals.append((name, time.monotonic()))
            if name == "GetLevel1" and len(arrivals) == 1:
                return CallbackResult(status=429, body="{}", headers={"Retry-After": "0.3"})
            return CallbackResult(body="{}")

        return callback

    mock.post(url("GetLevel1"), callback=record("GetLevel1"), repeat=True)
    mock.post(url("GetProducts"), callback=record("GetProducts"), repeat=True)
    async with pipeline(BASE, rate_limit=None, retry=RetryPolicy(attempts=1)) as t:
        with pytest.raises(errors.RateLimitedError):
            await t.call("GetLevel1", {})
        assert t.paused_for > 0
        limited_at = arrivals[0][1]
        await asyncio.gather(t.call("GetProducts", {}), t.call("GetLevel1", {}))
    later = [at for _name, at in arrivals[1:]]
    assert len(later) == 2
    assert min(later) >= limited_at + 0.3


async def test_retry_after_beyond_cap_is_raised_not_waited(mock: aioresponses) -> None:
    """A Retry-After longer than max_retry_after surfaces as RateLimitedError at once."""
    mock.post(url("GetLevel1"), status=429, body="{}", headers={"Retry-After": "3600"})
    async with pipeline(BASE, rate_limit=None) as t:
        with pytest.raises(errors.RateLimitedError) as info:
            await t.call("GetLevel1", {})
    assert info.value.retry_after == 3600.0
    assert count(mock) == 1


@pytest.mark.parametrize("where", ["per call", "per client"])
async def test_retry_after_beyond_the_call_s_budget_is_raised_not_waited(
    mock: aioresponses, where: str
) -> None:
    """A 60 s Retry-After (within the cap) on a call with 0.5 s left: the 429 at once, not
    a RequestTimeout after sleeping into the budget."""
    mock.post(url("GetLevel1"), status=429, body="{}", headers={"Retry-After": "60"})
    policy = RetryPolicy(timeout=0.5 if where == "per client" else 45.0)
    async with pipeline(BASE, rate_limit=None, retry=policy) as t:
        with pytest.raises(errors.RateLimitedError) as info:
            async with asyncio.timeout(5):
                await t.call("GetLevel1", {}, timeout=0.5 if where == "per call" else None)
    assert info.value.retry_after == 60.0
    assert count(mock) == 1


async def test_a_call_the_pause_would_outlast_is_refused_unsent(mock: aioresponses) -> None:
    """While a 60 s pause holds the client, a call with 0.5 s of budget is not sent and
    fails at once with the pause left (a write too: nothing left, nothing to reconcile)."""
    mock.post(url("GetLevel1"), status=429, body="{}", headers={"Retry-After": "60"})
    async with pipeline(BASE, rate_limit=None, retry=RetryPolicy(attempts=1)) as t:
        with pytest.raises(errors.RateLimitedError):
            await t.call("GetLevel1", {})
        for name, write in (("GetProducts", False), ("SendOrder", True)):
            with pytest.raises(errors.RateLimitedError) as info:
                async with asyncio.timeout(5):
                    await t.call(name, {"ClientOrderId": 5}, write=write, timeout=0.5)
            assert info.value.method == name
            assert info.value.retry_after is not None and 55 < info.value.retry_after <= 60
    assert count(mock) == 1


async def test_read_retries_5xx_and_timeouts_then_succeeds(
    mock: aioresponses, transport: Pipeline
) -> None:
    """Reads are retried after a 503 and after a timeout."""
    mock.post(url("GetProducts"), status=503, body="<html>busy</html>")
    mock.post(url("GetProducts"), exception=aiohttp.SocketTimeoutError("read"))
    mock.post(url("GetProducts"), body="[]")
    assert await transport.call("GetProducts", {"OMSId": 1}) == []
    assert count(mock) == 3


async def test_read_gives_up_after_attempts_with_last_error(
    mock: aioresponses, transport: Pipeline
) -> None:
    """After `attempts` tries the last error (HTML 502 -> ServerError with status) is raised."""
    mock.post(url("GetProducts"), status=502, body="<html><title>Bad</title></html>", repeat=True)
    with pytest.raises(errors.ServerError) as info:
        await transport.call("GetProducts", {})
    assert info.value.status == 502
    assert count(mock) == FAST.attempts


async def test_stamina_testing_mode_sets_attempts(mock: aioresponses) -> None:
    """stamina.set_testing controls the attempts of reads (fast test suites for users)."""
    mock.post(url("GetProducts"), exception=connector_error(), repeat=True)
    stamina.set_testing(True, attempts=2)
    try:
        async with pipeline(BASE, rate_limit=None) as t:
            with pytest.raises(errors.ConnectError):
                await t.call("GetProducts", {})
    finally:
        stamina.set_testing(False)
    assert count(mock) == 2


async def test_successful_read_stays_out_of_the_retry_machinery(
    mock: aioresponses, transport: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read that succeeds never enters stamina; a retryable failure then does, once."""
    spy = Mock(wraps=stamina.retry_context)
    monkeypatch.setattr(stamina, "retry_context", spy)
    mock.post(url("GetLevel1"), body='{"InstrumentId": 1}')
    mock.post(url("GetLevel1"), status=503, body="<html>busy</html>")
    mock.post(url("GetLevel1"), body='{"InstrumentId": 1}')
    assert await transport.call("GetLevel1", {}) == {"InstrumentId": 1}
    assert spy.call_count == 0
    assert await transport.call("GetLevel1", {}) == {"InstrumentId": 1}
    assert spy.call_count == 1
    assert count(mock) == 3


async def test_successful_calls_leave_no_reference_cycles(
    mock: aioresponses, transport: Pipeline
) -> None:
    """Successful calls create no garbage cycles (nothing for the cyclic GC to collect)."""
    mock.post(url("GetLevel1"), body='{"InstrumentId": 1}', repeat=True)
    await transport.call("GetLevel1", {})
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            await transport.call("GetLevel1", {"InstrumentId": 1})
        assert gc.collect() == 0
    finally:
        gc.enable()


async def test_retry_budget_counts_the_first_attempt(mock: aioresponses) -> None:
    """A first attempt that outlasts RetryPolicy.timeout is not retried (the budget is spent)."""

    async def slow_503(_url: URL, **_kwargs: Any) -> CallbackResult:
        await asyncio.sleep(0.08)
        return CallbackResult(status=503, body="<html>busy</html>")

    mock.post(url("GetProducts"), callback=slow_503)
    mock.post(url("GetProducts"), body="[]")
    policy = RetryPolicy(attempts=3, timeout=0.05, wait_initial=0.001, wait_jitter=0.0)
    async with pipeline(BASE, rate_limit=None, retry=policy) as t:
        with pytest.raises(errors.ServerError):
            await t.call("GetProducts", {})
    assert count(mock) == 1


# -- writes are sent once ------------------------------------------------------------------


@pytest.mark.parametrize(
    "response",
    [
        {"status": 500, "body": "<html><title>Internal Server Error</title></html>"},
        {"status": 502, "body": '{"result":false,"errormsg":"Bad Gateway"}'},
        {"status": 200, "body": '{"result":false,"errormsg":"Server Error","errorcode":102}'},
        {"status": 200, "body": "<html>maintenance</html>"},
        {"exception": aiohttp.ServerDisconnectedError()},
        {"exception": aiohttp.SocketTimeoutError("read timeout")},
        {"exception": TimeoutError()},
        {"exception": aiohttp.ClientPayloadError("truncated")},
        {"exception": aiohttp.ClientOSError(104, "Connection reset by peer")},
    ],
    ids=[
        "500-html",
        "502-json",
        "errorcode-102",
        "200-html",
        "disconnect",
        "sock-read-timeout",
        "total-timeout",
        "payload",
        "reset",
    ],
)
async def test_write_failure_after_sending_is_unknown_outcome_sent_once(
    mock: aioresponses, transport: Pipeline, response: dict[str, Any]
) -> None:
    """SendOrder after a 5xx/timeout/drop/unreadable answer -> UnknownOutcomeError, 1 request."""
    mock.post(url("SendOrder"), repeat=True, **response)
    with pytest.raises(errors.UnknownOutcomeError) as info:
        await transport.call("SendOrder", {"ClientOrderId": 5}, write=True)
    assert info.value.__cause__ is not None
    assert info.value.method == "SendOrder"
    assert count(mock, "SendOrder") == 1


async def test_write_connect_error_before_sending_is_retried(
    mock: aioresponses, transport: Pipeline
) -> None:
    """A write whose connection failed before sending (connect refused/timeout) is retried."""
    mock.post(url("SendOrder"), exception=connector_error())
    mock.post(url("SendOrder"), exception=aiohttp.ConnectionTimeoutError("connect"))
    mock.post(url("SendOrder"), body='{"status":"Accepted","errormsg":"","OrderId":9}')
    answer = await transport.call("SendOrder", {}, write=True)
    assert answer == {"status": "Accepted", "errormsg": "", "OrderId": 9}
    assert count(mock, "SendOrder") == 3


async def test_write_rate_limited_is_not_retried(mock: aioresponses, transport: Pipeline) -> None:
    """A 429 on a write is raised (never resent), even with a short Retry-After."""
    mock.post(url("SendOrder"), status=429, body="{}", headers={"Retry-After": "0"}, repeat=True)
    with pytest.raises(errors.RateLimitedError):
        await transport.call("SendOrder", {}, write=True)
    assert count(mock, "SendOrder") == 1


async def test_read_connect_error_is_connect_error(mock: aioresponses, transport: Pipeline) -> None:
    """A refused connection on a read ends as ConnectError chained to aiohttp's error."""
    mock.post(url("Ping"), exception=connector_error(), repeat=True)
    with pytest.raises(errors.ConnectError) as info:
        await transport.call("Ping")
    assert isinstance(info.value.__cause__, aiohttp.ClientConnectorError)


# -- response mapping ----------------------------------------------------------------------


async def test_html_page_is_decode_error_with_status(
    mock: aioresponses, transport: Pipeline
) -> None:
    """A 200 HTML page on a read is a DecodeError keeping the HTTP status and the title."""
    mock.post(url("GetLevel1"), body="<html><title>Login</title><body/></html>")
    with pytest.raises(errors.DecodeError) as info:
        await transport.call("GetLevel1", {})
    assert info.value.status == 200
    assert info.value.method == "GetLevel1"
    assert "Login" in str(info.value)
    assert count(mock) == 1


@pytest.mark.parametrize(
    ("status", "body", "expected", "errorcode", "errormsg", "detail"),
    [
        (
            200,
            {"result": False, "errormsg": "Not Authorized", "errorcode": 20, "detail": None},
            errors.AuthenticationError,
            20,
            "Not Authorized",
            None,
        ),
        (
            200,
            {"result": False, "errormsg": "Resource Not Found", "errorcode": 104, "detail": None},
            errors.NotFoundError,
            104,
            "Resource Not Found",
            None,
        ),
        (
            200,
            {"result": False, "errormsg": "Invalid InstrumentId: 10000", "errorcode": 100},
            errors.RejectedError,
            100,
            "Invalid InstrumentId: 10000",
            None,
        ),
        (
            200,
            {"result": False, "errormsg": "Operation Failed", "errorcode": 101, "detail": "why"},
            errors.RejectedError,
            101,
            "Operation Failed",
            "why",
        ),
        (
            200,
            {"result": False, "errormsg": "Operation Not Supported", "errorcode": 106},
            errors.RejectedError,
            106,
            "Operation Not Supported",
            None,
        ),
        (
            200,
            {"status": "Rejected", "errormsg": "Not_Enough_Funds", "errorcode": 101},
            errors.InsufficientFundsError,
            101,
            "Not_Enough_Funds",
            None,
        ),
        (
            200,
            {
                "result": True,
                "errormsg": "Invalid Request",
                "errorcode": 100,
                "detail": "Insufficient Balance",
            },
            errors.InsufficientFundsError,
            100,
            "Invalid Request",
            "Insufficient Balance",
        ),
        (
            200,
            {"result": False, "errormsg": "Server Error", "errorcode": 102, "detail": None},
            errors.ServerError,
            102,
            "Server Error",
            None,
        ),
        (
            401,
            {"result": False, "errormsg": "Invalid credentials or token"},
            errors.AuthenticationError,
            None,
            "Invalid credentials or token",
            None,
        ),
        (
            200,
            {"Authenticated": False, "errormsg": "Invalid username or password"},
            errors.AuthenticationError,
            None,
            "Invalid username or password",
            None,
        ),
    ],
    ids=[
        "20",
        "104",
        "100",
        "101",
        "106",
        "rejected",
        "result-true-insufficient",
        "102",
        "http-401",
        "authenticated-false",
    ],
)
async def test_documented_error_shapes_map_to_the_tree(
    mock: aioresponses,
    status: int,
    body: dict[str, Any],
    expected: type[errors.ApiError],
    errorcode: int | None,
    errormsg: str,
    detail: str | None,
) -> None:
    """Each documented AlphaPoint error shape -> its class, keeping errorcode/errormsg/detail."""
    mock.post(url("SomeMethod"), status=status, body=json.dumps(body))
    async with pipeline(BASE, rate_limit=None, retry=RetryPolicy(attempts=1)) as t:
        with pytest.raises(errors.ApiError) as info:
            await t.call("SomeMethod", {})
    exc = info.value
    assert type(exc) is expected
    assert (exc.method, exc.status) == ("SomeMethod", status)
    assert (exc.errorcode, exc.errormsg, exc.detail) == (errorcode, errormsg, detail)


async def test_operation_in_process_on_a_write_is_unknown_outcome(
    mock: aioresponses, transport: Pipeline
) -> None:
    """errorcode 107 "Operation In Process" answering a write: outcome unknown, sent once."""
    body = {"result": False, "errormsg": "Operation In Process", "errorcode": 107}
    mock.post(url("CancelOrder"), body=json.dumps(body), repeat=True)
    with pytest.raises(errors.UnknownOutcomeError) as info:
        await transport.call("CancelOrder", {"ClientOrderId": 8}, write=True)
    assert isinstance(info.value.__cause__, errors.OperationInProcessError)
    assert info.value.client_order_id == 8
    assert count(mock, "CancelOrder") == 1


async def test_operation_in_process_on_a_read_is_retried(
    mock: aioresponses, transport: Pipeline
) -> None:
    """errorcode 107 answering a read is retried like a busy server, then the answer wins."""
    body = {"result": False, "errormsg": "Operation In Process", "errorcode": 107}
    mock.post(url("GetOpenOrders"), body=json.dumps(body))
    mock.post(url("GetOpenOrders"), body="[]")
    assert await transport.call("GetOpenOrders", {}) == []
    assert count(mock, "GetOpenOrders") == 2


def test_interpret_response_non_json_statuses() -> None:
    """Non-JSON bodies: 429 -> RateLimited (retry_after), 401 -> Auth, 404 -> Decode."""
    with pytest.raises(errors.RateLimitedError) as limited:
        interpret_response("M", 429, b"<html/>", retry_after=3.0)
    assert limited.value.retry_after == 3.0
    with pytest.raises(errors.AuthenticationError):
        interpret_response("M", 401, b"<html/>")
    with pytest.raises(errors.DecodeError) as decode:
        interpret_response("M", 404, b"not found")
    assert decode.value.status == 404
    assert interpret_response("M", 200, b'{"a": 1.10}') == {"a": Decimal("1.10")}


# -- pure retry arithmetic -----------------------------------------------------------------


def test_parse_retry_after_seconds_and_http_date() -> None:
    """Retry-After is read as seconds or as an HTTP date relative to now; junk is None."""
    now = dt.datetime(2025, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Wed, 01 Jan 2025 12:00:30 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-3") is None
    assert parse_retry_after(None) is None


def test_retry_wait_rules() -> None:
    """Reads retry transient errors (429 waits Retry-After); writes retry ConnectError only."""
    limited = errors.RateLimitedError("x", retry_after=7)
    assert retry_wait(limited, write=False, max_retry_after=60) == 7.0
    assert retry_wait(limited, write=False, max_retry_after=5) is False
    assert retry_wait(errors.RateLimitedError("x"), write=False, max_retry_after=60) is True
    assert retry_wait(errors.ServerError("x"), write=False, max_retry_after=60) is True
    assert retry_wait(errors.RequestTimeout("x"), write=False, max_retry_after=60) is True
    assert retry_wait(errors.TransportError("x"), write=False, max_retry_after=60) is True
    assert retry_wait(errors.RejectedError("x"), write=False, max_retry_after=60) is False
    assert retry_wait(errors.AuthenticationError("x"), write=False, max_retry_after=60) is False
    assert retry_wait(errors.DecodeError("x"), write=False, max_retry_after=60) is False
    for exc in (errors.ServerError("x"), errors.RequestTimeout("x"), limited):
        assert retry_wait(exc, write=True, max_retry_after=60) is False
    assert retry_wait(errors.ConnectError("x"), write=True, max_retry_after=60) is True


def test_configuration_is_validated() -> None:
    """Bad pool sizes, rate limits, timeouts and attempts are ConfigurationError."""
    with pytest.raises(errors.ConfigurationError):
        pipeline("ftp://x")
    with pytest.raises(errors.ConfigurationError):
        pipeline(BASE, pool_size=0)
    with pytest.raises(errors.ConfigurationError):
        pipeline(BASE, rate_limit=0)
    with pytest.raises(errors.ConfigurationError):
        Timeouts(total=-1)
    with pytest.raises(errors.ConfigurationError):
        RetryPolicy(attempts=0)


# -- rate limit ----------------------------------------------------------------------------


async def test_rate_limiter_is_one_budget_for_all_coroutines(mock: aioresponses) -> None:
    """Two groups of 15 concurrent calls share one 20/s budget: the last 10 wait ~0.5 s."""
    mock.post(url("Ping"), body='{"msg":"PONG"}', repeat=True)
    async with pipeline(BASE, rate_limit=20) as t:

        async def group() -> None:
            await asyncio.gather(*(t.call("Ping") for _ in range(15)))

        started = time.monotonic()
        await asyncio.gather(group(), group())
        elapsed = time.monotonic() - started
    assert count(mock) == 30
    assert elapsed >= 0.4


async def test_limiter_spaces_requests_and_supports_rates_below_one(mock: aioresponses) -> None:
    """Beyond the burst, calls wait for the budget; rate_limit < 1 means one call per 1/rate s."""
    mock.post(url("Ping"), body='{"msg":"PONG"}', repeat=True)
    async with pipeline(BASE, rate_limit=4) as t:
        started = time.monotonic()
        await asyncio.gather(*(t.call("Ping") for _ in range(6)))
        assert time.monotonic() - started >= 0.4
    async with pipeline(BASE, rate_limit=0.5) as slow:
        assert slow._limiter is not None
        assert (slow._limiter.max_rate, slow._limiter.time_period) == (1, 2.0)


# -- secrets -------------------------------------------------------------------------------


async def test_session_token_absent_from_errors_reprs_and_logs(
    mock: aioresponses, transport: Pipeline, caplog: pytest.LogCaptureFixture
) -> None:
    """The aptoken never shows in exceptions (or their chain), reprs or debug logs."""
    caplog.set_level(logging.DEBUG)
    transport.set_session_token(TOKEN)
    info = RequestInfo(
        URL(url("GetOpenOrders")),
        "POST",
        CIMultiDictProxy(CIMultiDict({"aptoken": TOKEN})),
    )
    mock.post(url("GetOpenOrders"), status=401, body='{"result":false,"errorcode":20}')
    mock.post(url("SendOrder"), exception=aiohttp.ServerDisconnectedError())
    # repeat: a read is retried, and a later attempt must meet the same token-laden error.
    mock.post(
        url("GetUserInfo"), exception=aiohttp.ClientResponseError(info, (), status=400), repeat=True
    )
    mock.post(url("CancelOrder"), exception=aiohttp.ClientResponseError(info, (), status=400))
    mock.post(url("GetTradesHistory"), exception=aiohttp.SocketTimeoutError(), repeat=True)
    failures: list[BaseException] = []
    for method, write in [
        ("GetOpenOrders", False),
        ("SendOrder", True),
        ("GetUserInfo", False),
        ("GetTradesHistory", False),
        ("CancelOrder", True),
    ]:
        with pytest.raises(errors.KiiexError) as raised:
            await transport.call(method, {}, write=write)
        failures.append(raised.value)
    assert [type(f) for f in failures] == [
        errors.AuthenticationError,
        errors.UnknownOutcomeError,
        errors.TransportError,
        errors.RequestTimeout,
        errors.UnknownOutcomeError,
    ]
    # The two ClientResponseError cases end as that error (carrying the aptoken in its
    # request_info), not as some later failure of the mock.
    assert "bad response: ClientResponseError: HTTP 400" in str(failures[2])
    assert "(bad response: ClientResponseError: HTTP 400" in str(failures[4])
    for failure in failures:
        assert TOKEN not in chain_text(failure)
    assert TOKEN not in repr(transport)
    assert TOKEN not in caplog.text
    assert "GetOpenOrders" in caplog.text


async def test_client_secrets_absent_from_repr_errors_and_logs(
    mock: aioresponses, caplog: pytest.LogCaptureFixture
) -> None:
    """API secret, signature, password and token are absent from client repr, errors, logs."""
    caplog.set_level(logging.DEBUG)
    refused = {"Authenticated": False, "Locked": False, "errormsg": "Invalid username or password"}
    mock.post(url("AuthenticateUser"), body=json.dumps(refused))
    accepted = {
        "Authenticated": True,
        "SessionToken": TOKEN,
        "User": {"UserId": 96, "AccountId": 4},
    }
    mock.post(url("AuthenticateUser"), body=json.dumps(accepted))
    mock.post(url("LogOut"), body='{"result":true,"errorcode":0}')
    creds = Credentials(
        api_key="PUBKEY", api_secret=SECRET, user_id=96, username="bob", password=PASSWORD
    )
    async with KiiexClient(BASE, credentials=creds, rate_limit=None) as client:
        with pytest.raises(errors.AuthenticationError) as refused_info:
            await client.authenticate()
        result = await client.authenticate()
        assert client.is_authenticated and client.account_id == 4 and client.user_id == 96
        text = "\n".join([chain_text(refused_info.value), repr(client), str(client), repr(result)])
    signatures = [sent_body(c) for c in sent(mock, "AuthenticateUser")]
    signature = json.loads(signatures[0])["Signature"]
    for secret in (SECRET, PASSWORD, TOKEN, signature):
        assert secret not in text
        assert secret not in caplog.text


# -- client lifetime and single-flight re-authentication -----------------------------------


def _login_answer(token: str) -> CallbackResult:
    return CallbackResult(
        body=json.dumps(
            {"Authenticated": True, "SessionToken": token, "User": {"UserId": 1, "AccountId": 1}}
        )
    )


async def test_expired_session_is_renewed_once_for_100_concurrent_calls(
    mock: aioresponses,
) -> None:
    """100 coroutines hitting an expired session cause exactly one AuthenticateUser."""
    tokens = iter(["tok-1", "tok-2", "tok-3"])
    mock.post(
        url("AuthenticateUser"), callback=lambda *_, **__: _login_answer(next(tokens)), repeat=True
    )

    stale: list[str] = []
    all_stale = asyncio.Event()

    async def positions(_url: URL, **kwargs: Any) -> CallbackResult:
        if CIMultiDict(kwargs["headers"]).get("aptoken") == "tok-2":
            return CallbackResult(body="[]")
        # Hold every stale answer until all 100 calls are in flight: they fail together.
        stale.append("tok-1")
        if len(stale) == 100:
            all_stale.set()
        await all_stale.wait()
        return CallbackResult(
            status=401, body='{"result":false,"errormsg":"Not Authorized","errorcode":20}'
        )

    mock.post(url("GetAccountPositions"), callback=positions, repeat=True)
    mock.post(url("LogOut"), body='{"result":true}')
    creds = Credentials(api_key="k", api_secret="s", user_id=1)
    async with KiiexClient(BASE, credentials=creds, rate_limit=None) as client:
        await client.authenticate()
        answers = await asyncio.gather(*(client.get_account_positions() for _ in range(100)))
    assert answers == [[]] * 100
    assert len(stale) == 100
    assert count(mock, "AuthenticateUser") == 2  # the first login, then exactly one renewal
    assert count(mock, "GetAccountPositions") == 200


async def test_lazy_login_is_single_flight(mock: aioresponses) -> None:
    """100 first calls on a fresh client log in once, then all use the token."""

    async def slow_login(*_: Any, **__: Any) -> CallbackResult:
        await asyncio.sleep(0.01)  # every other call reaches the login meanwhile
        return _login_answer(TOKEN)

    mock.post(url("AuthenticateUser"), callback=slow_login, repeat=True)
    mock.post(url("GetOpenOrders"), body="[]", repeat=True)
    mock.post(url("LogOut"), body='{"result":true}')
    creds = Credentials(username="bob", password=PASSWORD)
    async with KiiexClient(BASE, credentials=creds, rate_limit=None) as client:
        await asyncio.gather(*(client.get_open_orders() for _ in range(100)))
    assert count(mock, "AuthenticateUser") == 1
    orders = sent(mock, "GetOpenOrders")
    assert len(orders) == 100
    assert {CIMultiDict(c.kwargs["headers"])["aptoken"] for c in orders} == {TOKEN}


async def test_aclose_logs_out_once_and_closes(mock: aioresponses) -> None:
    """aclose sends LogOut when a session exists, tolerates its failure, and is idempotent."""
    mock.post(url("AuthenticateUser"), callback=lambda *_, **__: _login_answer(TOKEN), repeat=True)
    mock.post(url("LogOut"), status=500, body="<html/>")
    client = KiiexClient(BASE, credentials=Credentials(username="u", password="p"))
    await client.authenticate()
    await client.aclose()
    await client.aclose()
    assert count(mock, "LogOut") == 1
    with pytest.raises(RuntimeError):
        await client.ping()


async def test_aclose_without_session_sends_nothing(mock: aioresponses) -> None:
    """A client that never logged in closes without any request."""
    mock.post(url("Ping"), body='{"msg":"PONG"}')
    async with KiiexClient(BASE) as client:
        pong = await client.ping()
    assert pong.msg == "PONG"
    assert count(mock) == 1
