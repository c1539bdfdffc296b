"""``Timeouts.total``: the transport's own deadline per HTTP exchange, against a real server.

aiohttp's ``total`` is not used (it costs a timer per request); the transport sweeps the
deadlines of the exchanges in flight instead.  These tests run a small aiohttp server on
127.0.0.1 that answers slowly, in the ways a total timeout exists for, with ``sock_read``
set far above ``total`` so that only the transport's deadline can end the call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import anyio
import pytest
from aiohttp import web
from loopback import serve_app

from kiiex_async import errors
from kiiex_async._pipeline import Pipeline, RetryPolicy
from kiiex_async._transport import AiohttpTransport, Timeouts, _Deadlines

WAIT = 20.0
SLOW = 5.0  # how long the slow routes take; every test's deadline is far shorter


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(SLOW)
    return web.json_response({"result": True})


async def _trickle(request: web.Request) -> web.StreamResponse:
    """Headers at once, then one byte of a JSON body every 50 ms (each read is on time)."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    body = b'{"result":true' + b" " * 200 + b"}"
    for index in range(len(body)):
        await response.write(body[index : index + 1])
        await asyncio.sleep(0.05)
    await response.write_eof()
    return response


async def _stall(request: web.Request) -> web.StreamResponse:
    """Headers and half a JSON body at once, then nothing for ``SLOW`` seconds."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    await response.prepare(request)
    await response.write(b'{"result":')
    await asyncio.sleep(SLOW)
    await response.write(b"true}")
    await response.write_eof()
    return response


async def _fast(request: web.Request) -> web.Response:
    return web.json_response({"result": True})


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/ap/Slow", _slow)
    app.router.add_post("/ap/Trickle", _trickle)
    app.router.add_post("/ap/Stall", _stall)
    app.router.add_post("/ap/Fast", _fast)
    app.router.add_post("/ap/SendOrder", _slow)
    async with serve_app(app) as base:
        yield f"{base}/ap"


def transport(
    url: str, total: float, retry: RetryPolicy | None = None, *, sock_read: float = 60.0
) -> Pipeline:
    """A pipeline whose aiohttp transport has ``total`` as its deadline (no retries)."""
    timeouts = Timeouts(total=total, connect=5.0, sock_read=sock_read)
    return Pipeline(
        url,
        AiohttpTransport(timeouts=timeouts),
        rate_limit=None,
        retry=retry if retry is not None else RetryPolicy(attempts=1),
    )


def deadlines(t: Pipeline) -> _Deadlines:
    """The deadline sweep of the pipeline's aiohttp transport."""
    assert isinstance(t.transport, AiohttpTransport)
    return t.transport._deadlines


@pytest.mark.parametrize("route", ["Slow", "Trickle"])
async def test_a_read_past_its_total_timeout_is_a_request_timeout(server: str, route: str) -> None:
    """A server that never answers, or answers a byte at a time, is cut at the deadline."""
    async with transport(server, total=0.3) as t:
        started = time.monotonic()
        with anyio.fail_after(WAIT), pytest.raises(errors.RequestTimeout, match="total timeout"):
            await t.call(route)
        elapsed = time.monotonic() - started
    # Ended by the deadline (0.3 s, swept every 0.03 s), not by the server finishing.
    assert elapsed < SLOW / 2


async def test_a_read_stalled_mid_body_is_cut_by_sock_read_when_it_is_the_stricter_limit(
    server: str,
) -> None:
    """``sock_read`` shorter than ``total``: aiohttp's per-read timer ends the stalled read."""
    async with transport(server, total=30.0, sock_read=0.3) as t:
        started = time.monotonic()
        with (
            anyio.fail_after(WAIT),
            pytest.raises(errors.RequestTimeout, match="reading data from socket"),
        ):
            await t.call("Stall")
        assert time.monotonic() - started < SLOW / 2


async def test_a_read_stalled_mid_body_is_cut_by_total_when_sock_read_is_not_stricter(
    server: str,
) -> None:
    """``sock_read`` equal to ``total`` (the client's default): no per-read timer is armed,
    and the exchange's deadline still ends a read that stalls after the headers."""
    async with transport(server, total=0.3, sock_read=0.3) as t:
        assert isinstance(t.transport, AiohttpTransport)
        assert t.transport._client_timeout.sock_read is None
        started = time.monotonic()
        with anyio.fail_after(WAIT), pytest.raises(errors.RequestTimeout, match="total timeout"):
            await t.call("Stall")
        assert time.monotonic() - started < SLOW / 2


async def test_a_write_past_its_total_timeout_has_an_unknown_outcome(server: str) -> None:
    """The server may have applied it: the caller must reconcile, not resend."""
    async with transport(server, total=0.3) as t:
        with anyio.fail_after(WAIT), pytest.raises(errors.UnknownOutcomeError):
            await t.call("SendOrder", {"OMSId": 1}, write=True)


async def test_a_read_is_retried_after_its_total_timeout(server: str) -> None:
    """Each attempt gets its own deadline; the retries run out and the timeout surfaces."""
    fast_retries = RetryPolicy(attempts=3, wait_initial=0.001, wait_max=0.002, wait_jitter=0.0)
    async with transport(server, total=0.2, retry=fast_retries) as t:
        started = time.monotonic()
        with anyio.fail_after(WAIT), pytest.raises(errors.RequestTimeout):
            await t.call("Slow")
        assert time.monotonic() - started < SLOW


async def test_an_outer_cancellation_stays_a_cancellation(server: str) -> None:
    """Cancelling a caller (a cancel scope, a task group) is never turned into a timeout."""
    async with transport(server, total=30.0) as t:
        with anyio.move_on_after(0.2) as scope:
            await t.call("Slow")
        assert scope.cancelled_caught
        current = asyncio.current_task()
        assert current is not None and current.cancelling() == 0
        # The transport still works, and its sweep is not left running for the dead call.
        assert await t.call("Fast") == {"result": True}


async def test_the_sweep_runs_only_while_calls_are_in_flight(server: str) -> None:
    """No timer is left behind once the calls are over, nor after close."""

    async def sweep_stopped(t: Pipeline) -> None:
        with anyio.fail_after(WAIT):
            while deadlines(t)._timer is not None:  # noqa: ASYNC110 - a timer, not an event
                await asyncio.sleep(0.01)

    t = transport(server, total=0.05)
    try:
        assert await t.call("Fast") == {"result": True}
        assert not deadlines(t)._live
        await sweep_stopped(t)
        with pytest.raises(errors.RequestTimeout):
            await t.call("Slow")
        await sweep_stopped(t)
        slow = asyncio.create_task(t.call("Slow"))
        await asyncio.sleep(0.01)
        assert deadlines(t)._timer is not None  # watching the call in flight
    finally:
        await t.aclose()
    assert deadlines(t)._timer is None and not deadlines(t)._live
    slow.cancel()
    outcome: object
    (outcome,) = await asyncio.gather(slow, return_exceptions=True)
    # The call in flight ends with the closing (or the cancellation), not a KeyError.
    assert isinstance(outcome, errors.KiiexError | asyncio.CancelledError), repr(outcome)


async def test_a_deadline_takes_back_only_its_own_cancellation() -> None:
    """``expired()`` follows asyncio.timeout: another pending cancellation wins."""
    sweep = _Deadlines(total=60.0)

    async def exchange(*, fired: bool, others: int) -> tuple[bool, int]:
        task = sweep.enter()
        try:
            if fired:
                sweep._fired.add(task)  # what the sweep does at the deadline
                task.cancel()
            for _ in range(others):
                task.cancel()
            try:
                await asyncio.sleep(WAIT)
            except asyncio.CancelledError:
                return sweep.expired(task), task.cancelling()
            raise AssertionError("not cancelled")
        finally:
            sweep.leave(task)

    assert await asyncio.create_task(exchange(fired=True, others=0)) == (True, 0)
    assert await asyncio.create_task(exchange(fired=True, others=1)) == (False, 1)
    assert await asyncio.create_task(exchange(fired=False, others=1)) == (False, 1)
    assert not sweep._live and not sweep._fired
    sweep.close()
