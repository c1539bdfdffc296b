"""The ``otel`` extra: OpenTelemetry spans for calls and swap steps, and nothing without it."""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import textwrap
import warnings
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest
import stamina
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from stream_support import QUIET_STREAM, TWOFA, TWOFA_CODE, until
from workflow_support import FAST, make_client, sim_config

from kiiex_async import Credentials, KiiexClient, errors
from kiiex_async._pipeline import Pipeline
from kiiex_async.models import Side
from kiiex_async.sim import DemoUser, Fault, Simulator
from kiiex_async.testing import MockTransport, Request, Response
from kiiex_async.workflow import MemoryCheckpointStore, SwapRequest, SwapState, SwapWorkflow

BASE = "http://exchange.test/ap"
SECRET = "SHHH-otel-secret"
PASSWORD = "PW-otel-password"
TOKEN = "tok-otel-session"
LOGIN_OK = {"Authenticated": True, "SessionToken": TOKEN, "User": {"UserId": 9, "AccountId": 7}}
#: Every attribute a call span may carry: names and numbers, never a payload or a message.
CALL_KEYS = {
    "kiiex.method",
    "kiiex.transport",
    "kiiex.write",
    "http.request.method",
    "kiiex.attempts",
    "http.response.status_code",
    "kiiex.errorcode",
    "error.type",
}
#: What a span of a request sent on the stream's socket may carry: no ``http.*`` at all.
WS_KEYS = CALL_KEYS - {"http.request.method", "http.response.status_code"}
STREAM = QUIET_STREAM
STEP_KEYS = {
    "kiiex.swap.id",
    "kiiex.swap.step",
    "kiiex.swap.step_number",
    "kiiex.swap.state_from",
    "kiiex.swap.state",
    "error.type",
}


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """An SDK provider recording spans in memory, as the global provider for one test."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider(shutdown_on_exit=False)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    # What trace.set_tracer_provider() does, undone after the test (it may be set only once).
    monkeypatch.setattr(trace, "_TRACER_PROVIDER", provider)
    yield exporter
    provider.shutdown()


def named(exporter: InMemorySpanExporter, prefix: str) -> list[ReadableSpan]:
    """The finished spans whose name starts with ``prefix``, in the order they ended."""
    return [s for s in exporter.get_finished_spans() if s.name.startswith(prefix)]


def pong(request: Request) -> Response:
    """Answer Ping."""
    return Response(200, json={"msg": "PONG"})


def client_of(handler: MockTransport) -> KiiexClient:
    """A client of a MockTransport, with credentials holding secrets."""
    credentials = Credentials(
        username="ana", password=PASSWORD, api_key="PUB", api_secret=SECRET, user_id=9
    )
    return KiiexClient(BASE, transport=handler, rate_limit=None, credentials=credentials)


async def test_a_read_is_one_client_span_with_method_status_and_one_attempt(
    spans: InMemorySpanExporter,
) -> None:
    """A successful read gives one CLIENT span "kiiex Ping": method, 200, 1 attempt, read."""
    async with client_of(MockTransport(pong)) as client:
        await client.ping()
    (span,) = spans.get_finished_spans()
    assert span.name == "kiiex Ping"
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "kiiex.method": "Ping",
        "kiiex.transport": "http",
        "kiiex.write": False,
        "http.request.method": "POST",
        "kiiex.attempts": 1,
        "http.response.status_code": 200,
    }


async def test_retries_are_counted_on_the_one_span_of_the_call(
    spans: InMemorySpanExporter,
) -> None:
    """Two 503s then a 200: one span with kiiex.attempts == 3 and the final status 200."""
    answers = [Response(503, content=b"<html>busy</html>")] * 2 + [
        Response(200, json={"msg": "PONG"})
    ]

    def flaky(request: Request) -> Response:
        return answers.pop(0)

    stamina.set_testing(True, attempts=3)
    try:
        async with client_of(MockTransport(flaky)) as client:
            await client.ping()
    finally:
        stamina.set_testing(False)
    (span,) = spans.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["kiiex.attempts"] == 3
    assert span.attributes["http.response.status_code"] == 200
    assert span.status.status_code is StatusCode.UNSET


async def test_a_refused_write_marks_its_span_failed_with_the_errorcode_and_no_text(
    spans: InMemorySpanExporter,
) -> None:
    """A refused SendOrder: error status, errorcode 101, error type; not the message."""

    def refuse(request: Request) -> Response:
        if request.name == "AuthenticateUser":
            return Response(200, json=LOGIN_OK)
        return Response(
            200,
            json={"result": False, "errormsg": "Not_Enough_Funds", "errorcode": 101},
        )

    async with client_of(MockTransport(refuse)) as client:
        with pytest.raises(errors.RejectedError) as info:
            await client.send_order(1, Side.SELL, Decimal(5), client_order_id=77)
    (span,) = named(spans, "kiiex SendOrder")
    attributes = dict(span.attributes or {})
    assert attributes["kiiex.write"] is True
    assert attributes["kiiex.errorcode"] == 101
    assert attributes["error.type"] == type(info.value).__name__
    assert attributes["http.response.status_code"] == 200
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == type(info.value).__name__
    assert set(attributes) <= CALL_KEYS
    assert "Not_Enough_Funds" not in repr(span.to_json())


async def test_a_write_whose_outcome_is_unknown_is_not_retried_and_says_so(
    spans: InMemorySpanExporter,
) -> None:
    """A SendOrder answered 503: one attempt, status 503, error type UnknownOutcomeError."""

    def busy(request: Request) -> Response:
        if request.name == "AuthenticateUser":
            return Response(200, json=LOGIN_OK)
        return Response(503, content=b"<html>down</html>")

    async with client_of(MockTransport(busy)) as client:
        with pytest.raises(errors.UnknownOutcomeError):
            await client.send_order(1, Side.SELL, Decimal(5), client_order_id=78)
    (span,) = named(spans, "kiiex SendOrder")
    assert span.attributes is not None
    assert span.attributes["kiiex.attempts"] == 1
    assert span.attributes["http.response.status_code"] == 503
    assert span.attributes["error.type"] == "UnknownOutcomeError"


async def test_no_span_carries_a_secret_a_token_or_a_payload(
    spans: InMemorySpanExporter,
) -> None:
    """Logging in and calling: no secret, password, token or body in any exported span."""

    def answer(request: Request) -> Response:
        if request.name == "AuthenticateUser":
            return Response(200, json=LOGIN_OK)
        return Response(200, json=[{"ProductId": 1, "Product": "USDT-secret-looking"}])

    async with client_of(MockTransport(answer)) as client:
        await client.authenticate()
        await client.get_products()
    exported = named(spans, "kiiex ")
    names = ["kiiex AuthenticateUser", "kiiex GetProducts", "kiiex LogOut"]
    assert [s.name for s in exported] == names
    text = "".join(s.to_json() for s in exported)
    for secret in (SECRET, PASSWORD, TOKEN, "ana", "USDT-secret-looking"):
        assert secret not in text
    for span in exported:
        assert set(span.attributes or {}) <= CALL_KEYS


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A still simulator whose tickets settle at once."""
    async with Simulator(sim_config()) as simulator:
        yield simulator


def over_ws(exporter: InMemorySpanExporter, method: str) -> list[ReadableSpan]:
    """The finished spans of ``method`` sent on a socket, in the order they ended."""
    return [
        s
        for s in named(exporter, f"kiiex {method}")
        if s.name == f"kiiex {method}" and dict(s.attributes or {})["kiiex.transport"] == "ws"
    ]


def failed_over_ws(exporter: InMemorySpanExporter, method: str, error: str) -> dict[str, Any]:
    """The attributes of the one socket span of ``method``, checked failed by ``error``."""
    (span,) = over_ws(exporter, method)
    attributes = dict(span.attributes or {})
    assert attributes["error.type"] == error
    assert span.status.status_code is StatusCode.ERROR
    assert span.status.description == error
    assert set(attributes) <= WS_KEYS
    return attributes


async def test_a_socket_call_is_one_client_span_marked_ws(
    spans: InMemorySpanExporter, sim: Simulator
) -> None:
    """stream.call("GetLevel1"): one CLIENT span, transport ws, a read, 1 attempt, no http.*."""
    async with make_client(sim) as client, client.stream(**STREAM) as stream:
        await stream.call("GetLevel1", {"OMSId": 1, "InstrumentId": 1})
    (span,) = over_ws(spans, "GetLevel1")
    assert span.kind is SpanKind.CLIENT
    assert span.status.status_code is StatusCode.UNSET
    assert dict(span.attributes or {}) == {
        "kiiex.method": "GetLevel1",
        "kiiex.transport": "ws",
        "kiiex.write": False,
        "kiiex.attempts": 1,
    }


async def test_the_socket_login_and_subscriptions_are_spans_and_pings_are_not(
    spans: InMemorySpanExporter, sim: Simulator
) -> None:
    """The socket's AuthenticateUser and SubscribeLevel1 are ws spans; its Ping is not."""
    # A no-op fault on the next three Pings: once it is spent, three pings were answered.
    sim.faults.inject(Fault("Ping", "latency", delay=0.0, times=3))
    options = {**STREAM, "ping_interval": 0.01}
    async with make_client(sim) as client, client.stream(**options) as stream:
        ticks = aiter(stream.level1(1))
        assert (await anext(ticks)).instrument_id == 1
        await until(lambda: not sim.faults.active)
    for method in ("AuthenticateUser", "SubscribeLevel1"):
        (span,) = over_ws(spans, method)
        assert dict(span.attributes or {})["kiiex.write"] is False
        assert span.status.status_code is StatusCode.UNSET
    assert named(spans, "kiiex Ping") == []


async def test_a_refused_socket_call_carries_the_errorcode_and_error_type(
    spans: InMemorySpanExporter, sim: Simulator
) -> None:
    """An unknown method on the socket: error status, errorcode 104, NotFoundError."""
    async with make_client(sim) as client, client.stream(**STREAM) as stream:
        with pytest.raises(errors.NotFoundError) as info:
            await stream.call("NoSuchMethod", {})
    attributes = failed_over_ws(spans, "NoSuchMethod", "NotFoundError")
    assert attributes["kiiex.errorcode"] == 104 == info.value.errorcode


async def test_a_socket_write_whose_reply_is_lost_is_an_unknown_outcome_span(
    spans: InMemorySpanExporter, sim: Simulator
) -> None:
    """SendOrder on a socket that drops before the reply: a failed write span, 1 attempt."""
    sim.faults.inject(Fault("SendOrder", "ws_drop", times=1))
    order = {"OMSId": 1, "AccountId": 1, "InstrumentId": 1, "Side": 1, "OrderType": 1}
    async with make_client(sim) as client, client.stream(**STREAM) as stream:
        with pytest.raises(errors.UnknownOutcomeError):
            await stream.call("SendOrder", {**order, "Quantity": "10", "TimeInForce": 1})
    attributes = failed_over_ws(spans, "SendOrder", "UnknownOutcomeError")
    assert attributes["kiiex.write"] is True
    assert attributes["kiiex.attempts"] == 1


async def test_a_socket_read_asked_again_after_a_drop_counts_two_attempts(
    spans: InMemorySpanExporter, sim: Simulator
) -> None:
    """GetLevel1 whose socket drops is sent again on the next one: one span, 2 attempts."""
    sim.faults.inject(Fault("GetLevel1", "ws_drop", times=1))
    async with make_client(sim) as client, client.stream(**STREAM) as stream:
        level1 = await stream.call("GetLevel1", {"OMSId": 1, "InstrumentId": 1})
        assert level1.instrument_id == 1
        assert stream.reconnects == 1
    (span,) = over_ws(spans, "GetLevel1")
    assert dict(span.attributes or {})["kiiex.attempts"] == 2
    assert span.status.status_code is StatusCode.UNSET


async def test_no_socket_span_carries_a_secret_or_a_payload(
    spans: InMemorySpanExporter, sim: Simulator
) -> None:
    """Socket login and calls: every attribute is a name, a flag or a number of ours."""
    credentials = sim.credentials_kwargs
    async with make_client(sim) as client, client.stream(**STREAM) as stream:
        await stream.call("GetAccountPositions", {"OMSId": 1, "AccountId": 1})
    exported = [s for s in named(spans, "kiiex ") if s.name != "kiiex LogOut"]
    assert {s.name for s in exported} == {"kiiex AuthenticateUser", "kiiex GetAccountPositions"}
    text = "".join(s.to_json() for s in exported)
    for secret in (credentials["api_secret"], credentials["password"], "USDT"):
        assert secret and secret not in text
    for span in exported:
        attributes = dict(span.attributes or {})
        assert set(attributes) <= WS_KEYS
        assert {v for v in attributes.values() if isinstance(v, str)} == {
            span.name.removeprefix("kiiex "),
            "ws",
        }


async def test_a_socket_2fa_login_is_two_spans_without_the_code_or_password(
    spans: InMemorySpanExporter,
) -> None:
    """A 2FA user's socket login: AuthenticateUser then Authenticate2FA spans, and neither
    the password nor the code in any span."""
    code, password = TWOFA_CODE, TWOFA.password

    async def provider(kind: str) -> str:
        return code

    credentials = Credentials(username="twofa", password=password, two_factor=provider)
    async with (
        Simulator(sim_config(users=(DemoUser(), TWOFA))) as sim,
        KiiexClient(sim.url, credentials=credentials, rate_limit=None) as client,
        client.stream(**STREAM) as stream,
    ):
        assert await stream.call("GetUserAccounts", {"OMSId": 1}) == [70]
    exported = [s for s in named(spans, "kiiex ") if s.name != "kiiex LogOut"]
    assert [s.name for s in exported] == [
        "kiiex AuthenticateUser",
        "kiiex Authenticate2FA",
        "kiiex GetUserAccounts",
    ]
    text = "".join(s.to_json() for s in exported)
    assert code not in text and password not in text
    for span in exported:
        assert set(span.attributes or {}) <= WS_KEYS
        assert span.status.status_code is StatusCode.UNSET


async def test_a_swap_gives_one_span_per_step_with_its_calls_as_children(
    spans: InMemorySpanExporter, sim: Simulator
) -> None:
    """Against the simulator: step spans name the step, the swap and the state reached."""
    async with make_client(sim) as client:
        workflow = SwapWorkflow(client, MemoryCheckpointStore())
        result = await workflow.run(SwapRequest("USDT", "COPM", Decimal(25), timeouts=FAST))
    assert result.state is SwapState.COMPLETED
    steps = named(spans, "kiiex swap ")
    assert steps, "no step span"
    for span in steps:
        attributes = dict(span.attributes or {})
        assert attributes["kiiex.swap.id"] == result.swap_id
        assert set(attributes) <= STEP_KEYS
        assert span.name == f"kiiex swap {attributes['kiiex.swap.step']}"
    # Each step starts where the previous one ended: "state" is read after the step.
    chain = [dict(s.attributes or {}) for s in steps]
    assert [a["kiiex.swap.state_from"] for a in chain] == [
        "CREATED",
        *(a["kiiex.swap.state"] for a in chain[:-1]),
    ]
    assert chain[-1]["kiiex.swap.state"] == "COMPLETED"
    (order_step,) = [s for s in steps if dict(s.attributes or {})["kiiex.swap.step"] == "order"]
    (send,) = named(spans, "kiiex SendOrder")
    assert send.parent is not None and order_step.context is not None
    assert send.parent.span_id == order_step.context.span_id
    assert dict(send.attributes or {})["kiiex.write"] is True


@pytest.fixture
def asked(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names tracers are asked for while no SDK is configured (failing the call)."""
    names: list[str] = []

    def get_tracer(self: object, name: str, *args: object, **kwargs: object) -> object:
        names.append(name)
        raise AssertionError("a tracer was asked for without an SDK")

    assert isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
    monkeypatch.setattr(trace.ProxyTracerProvider, "get_tracer", get_tracer)
    return names


async def test_without_an_sdk_no_tracer_is_asked_for(asked: list[str]) -> None:
    """With the API but no SDK configured, calls never ask the proxy provider for a tracer."""
    async with client_of(MockTransport(pong)) as client:
        assert (await client.ping()).msg == "PONG"
    assert asked == []


async def test_without_an_sdk_socket_calls_ask_for_no_tracer(
    sim: Simulator, asked: list[str]
) -> None:
    """With the API but no SDK, the socket's login, subscriptions and calls ask no tracer."""
    async with make_client(sim) as client, client.stream(**STREAM) as stream:
        assert (await anext(aiter(stream.level1(1)))).instrument_id == 1
        assert (await stream.call("Ping")).msg == "PONG"
    assert asked == []


async def test_a_failing_opentelemetry_import_changes_nothing(
    spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With opentelemetry.trace unimportable, calls work and no span is made."""
    monkeypatch.setitem(sys.modules, "opentelemetry.trace", None)
    with pytest.raises(ImportError):
        import opentelemetry.trace  # noqa: F401
    async with client_of(MockTransport(pong)) as client:
        assert (await client.ping()).msg == "PONG"
    assert spans.get_finished_spans() == ()


def test_without_opentelemetry_installed_a_call_and_a_swap_run() -> None:
    """A process where opentelemetry cannot be imported calls and swaps as usual."""
    code = textwrap.dedent(
        """\
        import asyncio, sys
        from decimal import Decimal
        sys.modules["opentelemetry"] = None  # "not installed": every import of it fails
        from kiiex_async import KiiexClient, Credentials
        from kiiex_async.sim import Simulator
        from kiiex_async.workflow import MemoryCheckpointStore, SwapRequest, SwapWorkflow

        async def main():
            async with Simulator() as sim:
                creds = Credentials(**sim.credentials_kwargs)
                async with KiiexClient(sim.url, credentials=creds, rate_limit=None) as c:
                    result = await SwapWorkflow(c, MemoryCheckpointStore()).run(
                        SwapRequest("USDT", "COPM", Decimal(25))
                    )
            print(result.state.value)

        asyncio.run(main())
        assert not [m for m in sys.modules if m.startswith("opentelemetry.")]
        """
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "COMPLETED"


async def test_a_traced_call_cancelled_before_it_starts_leaves_no_coroutine_behind(
    spans: InMemorySpanExporter,
) -> None:
    """A call task cancelled before its first step: CancelledError, no "never awaited"."""
    async with Pipeline(BASE, MockTransport(pong), rate_limit=None) as pipeline:
        # The wrapper runs here, before the task's first step.
        task = asyncio.get_running_loop().create_task(pipeline.call("Ping"))
        task.cancel()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(asyncio.CancelledError):
                await task
            del task
            gc.collect()
    assert [str(w.message) for w in caught] == []
