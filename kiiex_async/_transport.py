"""HTTP transport: the only module that touches aiohttp's client.

One :class:`Transport` per client owns one ``aiohttp.ClientSession`` (a sized, keep-alive
connection pool), the per-call timeouts, the rate budget shared by every coroutine of the
client, the retry policy of safe calls and the session token (sent as the ``aptoken``
header).  Every aiohttp, asyncio and JSON failure is translated into :mod:`kiiex_async.errors`
in one place, :func:`translate_error`.

Retry rules:

* reads are retried with jittered exponential backoff (stamina) on connection errors,
  timeouts, dropped connections, 5xx and 429; a 429's ``Retry-After`` (seconds or an HTTP
  date) is the wait, unless it exceeds :attr:`RetryPolicy.max_retry_after`;
* writes (``write=True``) are sent once.  Only a failure that provably happened before the
  request left (:class:`~kiiex_async.errors.ConnectError`) is retried.  A timeout, a dropped
  connection, a 5xx or an unreadable answer after sending becomes
  :class:`~kiiex_async.errors.UnknownOutcomeError`.

The first attempt runs outside stamina: a call that succeeds never pays for the retry
machinery.  A retryable first failure is handed to stamina as its attempt 1, so backoff,
``Retry-After``, attempt counts, the time budget, instrumentation hooks and
``stamina.set_testing`` behave as if stamina had run the call from the start.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import json
import logging
import math
import time
from collections.abc import Mapping
from decimal import Decimal
from enum import IntEnum
from types import TracebackType
from typing import Any, Final, Literal

import aiohttp
import attrs
import stamina
from aiolimiter import AsyncLimiter
from multidict import CIMultiDict, CIMultiDictProxy

from . import _wire
from .errors import (
    ApiError,
    AuthenticationError,
    ConfigurationError,
    ConnectError,
    DecodeError,
    InvalidInputError,
    KiiexError,
    RateLimitedError,
    RequestTimeout,
    ServerError,
    TransportError,
    UnknownOutcomeError,
)

__all__ = [
    "RetryPolicy",
    "Timeouts",
    "Transport",
    "interpret_response",
    "parse_retry_after",
    "query_params",
    "retry_wait",
    "translate_error",
]

log = logging.getLogger("kiiex_async.transport")

HttpMethod = Literal["POST", "GET"]

_USER_AGENT: Final = "kiiex_async (+https://pypi.org/project/kiiex_async/)"
# Read-only, so aiohttp takes them as they are instead of copying them into a new mapping.
_JSON_HEADERS: Final = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))


@attrs.frozen
class Timeouts:
    """Per-call timeouts in seconds, passed to ``aiohttp.ClientTimeout``.

    ``connect`` covers waiting for a pooled connection plus opening one; ``sock_read``
    bounds every read from the socket, so a dead keep-alive connection cannot hang a call.
    ``total`` bounds one HTTP exchange (one attempt) from sending to the last byte read; the
    transport enforces it itself (see :class:`_Deadlines`), within a tenth of its value and
    at most a second late, as aiohttp's own rounding of long timeouts would.
    """

    total: float = 10.0
    connect: float = 10.0
    sock_read: float = 10.0

    def __attrs_post_init__(self) -> None:
        for name in ("total", "connect", "sock_read"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigurationError(f"timeout {name} must be a positive number of seconds")


@attrs.frozen
class RetryPolicy:
    """How safe calls are retried.

    ``attempts`` counts every try (1 disables retries); ``timeout`` caps the time spent
    on all of them.  The backoff before retry *n* is
    ``min(wait_max, wait_initial * wait_exp_base ** (n - 1) + random(0, wait_jitter))``,
    except after a 429 with ``Retry-After``, which is honoured exactly.  A ``Retry-After``
    longer than ``max_retry_after`` is not waited for: the
    :class:`~kiiex_async.errors.RateLimitedError` is raised.
    """

    attempts: int = 4
    timeout: float | None = 45.0
    wait_initial: float = 0.1
    wait_max: float = 5.0
    wait_jitter: float = 1.0
    wait_exp_base: float = 2.0
    max_retry_after: float = 60.0

    def __attrs_post_init__(self) -> None:
        if isinstance(self.attempts, bool) or not isinstance(self.attempts, int):
            raise ConfigurationError("attempts must be an int")
        if self.attempts < 1:
            raise ConfigurationError("attempts must be at least 1 (1 = no retries)")


def parse_retry_after(value: str | None, *, now: dt.datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header, or ``None`` if absent or unreadable.

    Accepts delay-seconds (``"120"``; fractions are tolerated) and an HTTP date, which is
    measured from ``now`` (default: the current UTC time).  Dates in the past give ``0.0``.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        return seconds if math.isfinite(seconds) and seconds >= 0 else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    now = now if now is not None else dt.datetime.now(dt.UTC)
    return max(0.0, (when - now).total_seconds())


def retry_wait(exc: Exception, *, write: bool, max_retry_after: float) -> bool | float:
    """Decide whether a failed attempt is retried (stamina backoff hook; pure).

    Returns ``False`` (give up), ``True`` (retry after the jittered exponential backoff) or
    a number of seconds (retry after exactly that long: a 429's ``Retry-After``).
    """
    if isinstance(exc, ConnectError):
        return True
    if write:
        return False
    if isinstance(exc, RateLimitedError):
        if exc.retry_after is None:
            return True
        if exc.retry_after > max_retry_after:
            return False
        return float(exc.retry_after)
    if isinstance(exc, RequestTimeout | ServerError):
        return True
    # A plain TransportError is a dropped or reset connection during a read.
    return type(exc) is TransportError


def interpret_response(
    method: str, status: int, body: bytes, *, retry_after: float | None = None
) -> Any:
    """Decode a response body and raise the matching error, or return the payload (pure).

    JSON error shapes are mapped by :func:`kiiex_async._wire.api_error`.  A body that is not
    JSON (an HTML error page) raises :class:`~kiiex_async.errors.ServerError` for 5xx,
    :class:`~kiiex_async.errors.RateLimitedError` for 429,
    :class:`~kiiex_async.errors.AuthenticationError` for 401/403 and
    :class:`~kiiex_async.errors.DecodeError` otherwise, each with the HTTP status.
    """
    try:
        payload = _wire.loads(body)
    except DecodeError as exc:
        where = f"{method}: HTTP {status}: {exc}"
        error: KiiexError
        if status == 429:
            error = RateLimitedError(where, retry_after=retry_after, method=method)
        elif status in (401, 403):
            error = AuthenticationError(where, method=method, status=status)
        elif status >= 500:
            error = ServerError(where, method=method, status=status)
        else:
            error = DecodeError(where, method=method, status=status)
        raise error from exc
    api_error = _wire.api_error(method, status, payload)
    if api_error is None and status >= 400:
        api_error = (ServerError if status >= 500 else ApiError)(
            f"{method}: HTTP {status}", method=method, status=status
        )
    if api_error is not None:
        if isinstance(api_error, RateLimitedError) and api_error.retry_after is None:
            api_error.retry_after = retry_after
        raise api_error
    return payload


def translate_error(exc: Exception, method: str, *, write: bool) -> Exception:
    """Map a failure of one HTTP exchange to the error tree (pure; the one place that does).

    Returns the exception to raise, chained to its cause, or ``exc`` itself when it passes
    through unchanged.  For a write, anything that may have happened after the request was
    sent (timeout, dropped connection, 5xx, unreadable answer) becomes
    :class:`~kiiex_async.errors.UnknownOutcomeError`.  Only connection failures that happen
    before sending map to :class:`~kiiex_async.errors.ConnectError`.  Cancellation is a
    ``BaseException`` and never gets here.
    """
    error: Exception
    if isinstance(exc, KiiexError):
        if write and isinstance(exc, ServerError | DecodeError):
            error = UnknownOutcomeError(f"{_unknown(method)} ({exc})", method=method)
            return _chained(error, exc)
        return exc
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        error = ConnectError(f"{method}: cannot connect: {exc}", method=method)
        return _chained(error, exc)
    if isinstance(exc, aiohttp.InvalidURL):
        return _chained(ConfigurationError(f"{method}: invalid URL: {exc}"), exc)
    if isinstance(exc, aiohttp.ClientResponseError):
        # Its request_info holds the request headers (the session token): never chain it.
        text = f"{type(exc).__name__}: HTTP {exc.status} {exc.message}"
        if write:
            error = UnknownOutcomeError(f"{_unknown(method)} ({text})", method=method)
        else:
            error = TransportError(f"{method}: bad response: {text}", method=method)
        return _chained(error, None)
    if isinstance(exc, aiohttp.ClientError | OSError):
        # TimeoutError (asyncio's too, since 3.11) is an OSError.
        what = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        if write:
            error = UnknownOutcomeError(f"{_unknown(method)} ({what})", method=method)
        elif isinstance(exc, TimeoutError):
            error = RequestTimeout(f"{method}: no answer in time ({what})", method=method)
        else:
            error = TransportError(f"{method}: connection failed ({what})", method=method)
        return _chained(error, exc)
    return exc


def _unknown(method: str) -> str:
    return (
        f"{method}: the request was sent but its outcome is unknown; "
        "reconcile with the exchange before sending it again"
    )


def _chained(error: Exception, cause: BaseException | None) -> Exception:
    """``error`` as ``raise error from cause`` would leave it (``None``: hide the context)."""
    error.__cause__ = cause
    error.__suppress_context__ = True
    return error


def _decimal_text(value: Decimal) -> str:
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, IntEnum):
        return str(int(value))
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, Mapping):
        return _wire.dumps(value).decode()
    if isinstance(value, list | tuple):
        return json.dumps([int(v) if isinstance(v, IntEnum) else v for v in value])
    raise InvalidInputError(f"cannot send {type(value).__name__} in a query string")


def query_params(payload: Mapping[str, Any]) -> dict[str, str]:
    """Render a request payload as query parameters (``None`` values are left out)."""
    return {key: _query_value(value) for key, value in payload.items() if value is not None}


class _Deadlines:
    """Enforces ``Timeouts.total`` on every exchange with one timer for all of them.

    ``aiohttp.ClientTimeout(total=...)`` arms a timer and a timer context per request,
    which costs about 6 % of a whole call to a local server.  Here an exchange registers
    its task's deadline (one dict entry) and one sweep, scheduled only while exchanges are
    in flight, runs every ``tick`` seconds (a tenth of the timeout, at most 1 s): it cancels
    the task of each exchange past its deadline, and the exchange turns that cancellation
    into a ``TimeoutError`` unless someone else cancelled the task too, exactly as
    ``asyncio.timeout`` does.  A task makes one exchange at a time, so it is the key.
    """

    def __init__(self, total: float) -> None:
        self._total = total
        self._tick = min(1.0, max(0.001, total / 10))
        # task -> (deadline, cancellation requests pending when its exchange began)
        self._live: dict[asyncio.Task[Any], tuple[float, int]] = {}
        self._fired: set[asyncio.Task[Any]] = set()
        self._timer: asyncio.TimerHandle | None = None

    def enter(self) -> asyncio.Task[Any]:
        """Start the clock for one exchange of the current task; returns the task."""
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - a coroutine always runs in a task here
            raise RuntimeError("HTTP calls must run inside an asyncio task")
        self._live[task] = (time.monotonic() + self._total, task.cancelling())
        if self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(self._tick, self._sweep)
        return task

    def leave(self, task: asyncio.Task[Any]) -> None:
        """The exchange of ``task`` is over (whatever its outcome)."""
        self._live.pop(task, None)  # gone already if the transport was closed meanwhile
        if self._fired:
            self._fired.discard(task)

    def expired(self, task: asyncio.Task[Any]) -> bool:
        """After a ``CancelledError`` in ``task``'s exchange: whether it was only the deadline's.

        If so, the deadline's cancellation is taken back; any other pending one wins.
        """
        if task not in self._fired:
            return False
        self._fired.discard(task)
        _, baseline = self._live[task]
        return task.uncancel() <= baseline

    def close(self) -> None:
        """Forget every deadline and the pending sweep."""
        self._live.clear()
        self._fired.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _sweep(self) -> None:
        self._timer = None
        now = time.monotonic()
        fired = self._fired
        for task, (deadline, _) in self._live.items():
            if deadline <= now and task not in fired:
                fired.add(task)
                task.cancel()
        if self._live:
            self._timer = asyncio.get_running_loop().call_later(self._tick, self._sweep)


class Transport:
    """One connection pool, rate budget, retry policy and session token for one client.

    ``base_url`` includes the ``/ap`` segment; a call goes to ``f"{base_url}/{method}"``.
    ``rate_limit`` is requests per second shared by all coroutines (``None`` = no limit).
    Use as an async context manager or call :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        timeouts: Timeouts | None = None,
        rate_limit: float | None = 20.0,
        retry: RetryPolicy | None = None,
        pool_size: int = 100,
        keepalive_timeout: float = 30.0,
        user_agent: str = _USER_AGENT,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError("base_url must start with http:// or https://")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise ConfigurationError("pool_size must be a positive int")
        self._base_url = base_url.rstrip("/")
        self._timeouts = timeouts if timeouts is not None else Timeouts()
        # No ``total`` here: _Deadlines enforces it for much less than aiohttp's timer.
        self._client_timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self._timeouts.connect,
            sock_read=self._timeouts.sock_read,
        )
        self._deadlines = _Deadlines(self._timeouts.total)
        self._retry = retry if retry is not None else RetryPolicy()
        self._pool_size = pool_size
        self._keepalive_timeout = keepalive_timeout
        self._user_agent = user_agent
        self._limiter = _make_limiter(rate_limit)
        # A 429 pauses every call of this client (not just the one that got it) until the
        # server's Retry-After has passed: the budget is the server's, shared by all callers.
        self._paused_until = 0.0
        self._rate_limit = rate_limit
        self._session: aiohttp.ClientSession | None = None
        self._closed = False
        self._token: str | None = None
        # The headers of a POST with the session token, built once per token.
        self._session_headers: Mapping[str, str] | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<Transport {self._base_url!r} {state} rate_limit={self._rate_limit!r} "
            f"session={'yes' if self._token else 'no'}>"
        )

    @property
    def base_url(self) -> str:
        """The base URL, without a trailing slash."""
        return self._base_url

    @property
    def pool_size(self) -> int:
        """Most connections (so most calls in flight) this transport opens at once."""
        return self._pool_size

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` ran."""
        return self._closed

    @property
    def has_session(self) -> bool:
        """True when a session token is held."""
        return self._token is not None

    def set_session_token(self, token: str | None) -> None:
        """Use ``token`` as the ``aptoken`` of later calls (``None`` forgets it)."""
        self._token = token or None
        self._session_headers = (
            None
            if self._token is None
            else CIMultiDictProxy(
                CIMultiDict({"Content-Type": "application/json", "aptoken": self._token})
            )
        )

    async def __aenter__(self) -> Transport:
        self._open_session()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool; later calls raise ``RuntimeError``."""
        self._closed = True
        self.set_session_token(None)
        self._deadlines.close()
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    def _open_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this transport (client) is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, keepalive_timeout=self._keepalive_timeout
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self._user_agent, "Accept": "application/json"},
            )
        return self._session

    def pause(self, seconds: float | None) -> None:
        """Hold every call of this transport for ``seconds`` (a 429's ``Retry-After``).

        Without a server value the pause is :attr:`RetryPolicy.wait_initial`; it never
        exceeds :attr:`RetryPolicy.max_retry_after`.  Pauses only ever extend.
        """
        wait = self._retry.wait_initial if seconds is None else seconds
        wait = min(max(wait, 0.0), self._retry.max_retry_after)
        self._paused_until = max(self._paused_until, time.monotonic() + wait)

    @property
    def paused_for(self) -> float:
        """Seconds until calls may be sent again after a 429 (0 when not paused)."""
        return max(0.0, self._paused_until - time.monotonic())

    async def call(
        self,
        method: str,
        payload: Mapping[str, Any] | None = None,
        *,
        write: bool = False,
        headers: Mapping[str, str] | None = None,
        http: HttpMethod = "POST",
        retry: bool = True,
        use_session: bool = True,
    ) -> Any:
        """Call one AlphaPoint method and return its decoded JSON answer.

        ``write=True`` marks a call that changes state (it is sent once; see the module
        docstring) and must use POST.  ``retry=False`` sends any call once.
        ``use_session=False`` leaves the ``aptoken`` header out (logging in).  Raises the
        mapped :mod:`kiiex_async.errors`.
        """
        if write and http != "POST":
            # aiohttp itself resends idempotent methods (GET) on a stale keep-alive socket.
            raise InvalidInputError("writes are sent with POST only")
        body = payload if payload is not None else {}
        # The first attempt is made here, without stamina (see the module docstring).
        began = started = time.monotonic()
        session = self._session
        if session is None:
            session = self._open_session()
        if self._paused_until:
            pause = self._paused_until - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
        if self._limiter is not None:
            await self._limiter.acquire()
            started = time.monotonic()
        request_headers: Mapping[str, str]
        if headers or http == "GET":
            extra = dict(headers) if headers else {}
            if http == "POST":
                extra["Content-Type"] = "application/json"
            if use_session and self._token is not None:
                extra["aptoken"] = self._token
            request_headers = extra
        elif use_session and self._session_headers is not None:
            request_headers = self._session_headers
        else:
            request_headers = _JSON_HEADERS
        url = f"{self._base_url}/{method}"
        try:
            if http == "GET":
                request = session.get(
                    url,
                    params=query_params(body),
                    headers=request_headers,
                    timeout=self._client_timeout,
                )
            else:
                request = session.post(
                    url,
                    data=_wire.dumps(body),
                    headers=request_headers,
                    timeout=self._client_timeout,
                )
            deadlines = self._deadlines
            task = deadlines.enter()
            try:
                async with request as response:
                    raw = await response.read()
                    status = response.status
                    retry_after = (
                        parse_retry_after(response.headers.get("Retry-After"))
                        if status >= 400
                        else None
                    )
            except asyncio.CancelledError:
                if deadlines.expired(task):
                    raise TimeoutError(f"total timeout of {self._timeouts.total:g}s") from None
                raise
            finally:
                deadlines.leave(task)
            log.debug("%s %s -> HTTP %d in %.3fs", http, method, status, time.monotonic() - started)
            return interpret_response(method, status, raw, retry_after=retry_after)
        except Exception as exc:
            error = translate_error(exc, method, write=write)
            if isinstance(error, RateLimitedError):
                self.pause(error.retry_after)
            if (
                not retry
                or retry_wait(error, write=write, max_retry_after=self._retry.max_retry_after)
                is False
            ):
                if error is exc:
                    raise
                raise error  # translate_error already set its cause (or hid the context)
            first = error
        try:
            return await self._retry_after(
                first,
                time.monotonic() - began,
                method,
                body,
                write=write,
                headers=headers,
                http=http,
                use_session=use_session,
            )
        finally:
            del first, error  # their traceback holds this frame: do not keep the cycle

    async def _retry_after(
        self,
        first: Exception,
        elapsed: float,
        method: str,
        payload: Mapping[str, Any],
        *,
        write: bool,
        headers: Mapping[str, str] | None,
        http: HttpMethod,
        use_session: bool,
    ) -> Any:
        """Retry a call whose first attempt failed with ``first``, ``elapsed`` seconds ago.

        stamina replays ``first`` as its attempt 1, so it decides, waits and reports exactly
        as if it had made that attempt itself; the time budget is what is left of it.
        """
        policy = self._retry
        timeout = policy.timeout
        if timeout is not None:
            timeout -= elapsed
            if timeout <= 0:
                if not stamina.is_testing():
                    raise first  # the budget is spent: stamina would stop here too
                timeout = policy.timeout  # testing mode ignores the budget

        def hook(exc: Exception) -> bool | float:
            return retry_wait(exc, write=write, max_retry_after=policy.max_retry_after)

        replay: Exception | None = first
        async for attempt in stamina.retry_context(
            on=hook,
            attempts=policy.attempts,
            timeout=timeout,
            wait_initial=policy.wait_initial,
            wait_max=policy.wait_max,
            wait_jitter=policy.wait_jitter,
            wait_exp_base=policy.wait_exp_base,
        ):
            with attempt:
                if replay is not None:
                    failure, replay = replay, None
                    raise failure
                return await self.call(
                    method,
                    payload,
                    write=write,
                    headers=headers,
                    http=http,
                    retry=False,
                    use_session=use_session,
                )
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover


def _make_limiter(rate_limit: float | None) -> AsyncLimiter | None:
    if rate_limit is None:
        return None
    if not (
        isinstance(rate_limit, int | float)
        and not isinstance(rate_limit, bool)
        and math.isfinite(rate_limit)
        and rate_limit > 0
    ):
        raise ConfigurationError("rate_limit must be a positive number of requests per second")
    if rate_limit >= 1:
        return AsyncLimiter(rate_limit, 1.0)
    # aiolimiter needs room for one request in the bucket: one request per 1/rate seconds.
    return AsyncLimiter(1, 1.0 / rate_limit)
