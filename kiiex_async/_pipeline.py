"""The call pipeline: one owner for each policy of an AlphaPoint call, above the transport.

:class:`Pipeline` turns ``call(method, payload, ...)`` into a :class:`~._transport.Request`,
hands it to any :class:`~._transport.AsyncTransport` and turns the answer into a payload
or an error.  It owns, each in one place:

* encoding: JSON bodies and GET query strings (:func:`query_params`);
* the rate budget shared by every coroutine of a client, and the pause after a 429;
* the ``aptoken`` session header; per-request signed headers come from ``sign=``, a
  factory called once per attempt, so a retried read carries a fresh nonce;
* the body-size cap of each call (``max_body_size``; history calls get
  ``max_history_body_size``);
* the retry engine (stamina) and each call's time budget (``timeout=``, default
  :attr:`RetryPolicy.timeout`, or a retry scope's deadline);
* applying the pure rules of :mod:`kiiex_async._rules` to every attempt: the status →
  error table (:func:`~kiiex_async._rules.interpret_response`), when to retry
  (:func:`~kiiex_async._rules.retry_wait`) and the rule for "this write's outcome is
  unknown" (:func:`~kiiex_async._rules.outcome_error`); a write cancelled from outside
  while its request was in flight is one more unknown outcome, handled here.

Retry rules:

* reads are retried with jittered exponential backoff (stamina) on connection errors,
  timeouts, dropped connections, 5xx (errorcode 107 included) and 429; a 429's
  ``Retry-After`` (seconds or an HTTP date) is the wait, unless it exceeds
  :attr:`RetryPolicy.max_retry_after` or ends past the call's budget (then the 429 is
  raised at once, as is the pause it set to a later call that it would outlast);
* writes (``write=True``) are sent once.  Only a failure that provably happened before the
  request left (:class:`~kiiex_async.errors.ConnectError`) is retried.

Retry scopes: ``with pipeline.retry_scope(seconds, retry_on=..., on_retry=...)`` sets the
budget of every read made inside it in the same task (a deadline ``seconds`` from entering
the scope, shared by all its calls), lets those reads retry until the deadline rather than
for a fixed number of attempts, adds errors worth retrying (a ``NotFoundError`` for an
order not visible yet) and calls ``on_retry(method, error)`` before each retry.  The
workflow passes its step limit down this way instead of looping around the client.

Time budget: no retry starts once a call's budget is spent (stamina's ``timeout``).  A
budget given per call (``call(..., timeout=seconds)``) bounds the attempt in flight too:
past it a read raises :class:`~kiiex_async.errors.RequestTimeout` and a write whose
request may have left :class:`~kiiex_async.errors.UnknownOutcomeError`.

The first attempt runs outside stamina: a call that succeeds never pays for the retry
machinery.  A retryable first failure is handed to stamina as its attempt 1, so backoff,
``Retry-After``, attempt counts, the time budget, instrumentation hooks and
``stamina.set_testing`` behave as if stamina had run the call from the start.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping
from types import TracebackType
from typing import Any, Final, Literal, TypeVar
from urllib.parse import quote, urlencode

import attrs
import stamina
from aiolimiter import AsyncLimiter
from multidict import CIMultiDict, CIMultiDictProxy

from . import _otel, _wire
from ._rules import (
    _client_order_id,
    _unknown,
    check_timeout,
    interpret_response,
    outcome_error,
    parse_retry_after,
    query_params,
    retry_wait,
)
from ._transport import DEFAULT_POOL_SIZE, JSON_HEADERS, AsyncTransport, Request, too_large
from .errors import (
    ConfigurationError,
    InvalidInputError,
    RateLimitedError,
    RequestTimeout,
    UnknownOutcomeError,
)

__all__ = [
    "DEFAULT_MAX_BODY_SIZE",
    "DEFAULT_MAX_HISTORY_BODY_SIZE",
    "HISTORY_METHODS",
    "HeaderFactory",
    "HttpMethod",
    "Pipeline",
    "RetryCallback",
    "RetryPolicy",
    "RetryScope",
]

log = logging.getLogger("kiiex_async.transport")

HttpMethod = Literal["POST", "GET"]
T = TypeVar("T")
#: Makes the extra headers of one attempt (per-request signing: a fresh nonce each time).
HeaderFactory = Callable[[], Mapping[str, str] | None]
#: Told ``(method, error)`` before a read in a retry scope is tried again.
RetryCallback = Callable[[str, Exception], Awaitable[None]]

#: Default cap of an answer's body (8 MiB): far above any single object AlphaPoint sends.
DEFAULT_MAX_BODY_SIZE: Final = 8 * 1024 * 1024
#: Default cap of a history or list answer (64 MiB): thousands of orders, trades or candles.
DEFAULT_MAX_HISTORY_BODY_SIZE: Final = 64 * 1024 * 1024
#: Calls whose answer grows with the account's history; they get the history cap.
HISTORY_METHODS: Final = frozenset(
    {
        "GetAccountTrades",
        "GetAccountTransactions",
        "GetAllDepositTickets",
        "GetAllWithdrawTickets",
        "GetDepositTickets",
        "GetDeposits",
        "GetOrderHistory",
        "GetOrderHistoryByOrderId",
        "GetOrdersHistory",
        "GetTickerHistory",
        "GetTradesHistory",
        "GetWithdrawTickets",
        "GetWithdraws",
    }
)


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


@attrs.frozen(slots=True)
class RetryScope:
    """The retry settings of the reads made inside :meth:`Pipeline.retry_scope`."""

    #: The pipeline the scope belongs to: another client's calls keep their own policy.
    owner: object
    #: ``time.monotonic()`` past which no read of the scope is sent or retried.
    deadline: float
    #: Read errors retried besides the transient ones of :func:`retry_wait`.
    retry_on: tuple[type[Exception], ...]
    on_retry: RetryCallback | None
    #: The longest wait between two attempts (``None``: the policy's ``wait_max``).
    wait_max: float | None

    def retries(self, exc: Exception) -> bool:
        return isinstance(exc, self.retry_on)


_SCOPE: Final[contextvars.ContextVar[RetryScope | None]] = contextvars.ContextVar(
    "kiiex_async_retry_scope", default=None
)


def _redeliver(task: asyncio.Task[Any], baseline: int, message: Any) -> None:
    """Deliver again a cancellation that a cancelled write turned into an error.

    Runs one loop iteration after the error was raised.  By then a timeout that cancelled
    the call (``asyncio.timeout``, ``wait_for``, a cancel scope) has taken its cancellation
    back; a cancellation still pending is someone else's (``task.cancel()``, a task group),
    and it must not be lost: the task's next ``await`` raises ``CancelledError`` again.
    The request count is left as it was (cancel, then uncancel), and the original message
    is kept: anyio recognises its own cancellations by it.
    """
    if not task.done() and task.cancelling() > baseline:
        task.cancel(message)
        task.uncancel()


def _size(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive int (bytes)")
    return value


class Pipeline:
    """Every policy of a call, over one transport (see the module docstring).

    ``base_url`` includes the ``/ap`` segment; a call goes to ``f"{base_url}/{method}"``.
    ``rate_limit`` is requests per second shared by all coroutines (``None`` = no limit).
    The pipeline owns ``transport``: :meth:`aclose` closes it.
    """

    def __init__(
        self,
        base_url: str,
        transport: AsyncTransport,
        *,
        rate_limit: float | None = 20.0,
        retry: RetryPolicy | None = None,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_history_body_size: int = DEFAULT_MAX_HISTORY_BODY_SIZE,
    ) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise ConfigurationError("base_url must start with http:// or https://")
        if not isinstance(transport, AsyncTransport):
            raise ConfigurationError(
                "transport must have handle_async_request(request) and aclose() "
                "(see kiiex_async.AsyncTransport)"
            )
        self._base_url = base_url.rstrip("/")
        self._transport = transport
        self._retry = retry if retry is not None else RetryPolicy()
        self._max_body_size = _size(max_body_size, "max_body_size")
        self._max_history_body_size = _size(max_history_body_size, "max_history_body_size")
        self._limiter = _make_limiter(rate_limit)
        # A 429 pauses every call of this client (not just the one that got it) until the
        # server's Retry-After has passed: the budget is the server's, shared by all callers.
        self._paused_until = 0.0
        self._rate_limit = rate_limit
        self._closed = False
        self._token: str | None = None
        # The headers of a POST with the session token, built once per token.
        self._session_headers: Mapping[str, str] | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<Pipeline {self._base_url!r} {state} rate_limit={self._rate_limit!r} "
            f"session={'yes' if self._token else 'no'}>"
        )

    @property
    def base_url(self) -> str:
        """The base URL, without a trailing slash."""
        return self._base_url

    @property
    def transport(self) -> AsyncTransport:
        """The transport requests go through."""
        return self._transport

    @property
    def pool_size(self) -> int:
        """Most calls the transport carries at once (its ``pool_size``; 100 if it has none)."""
        size = getattr(self._transport, "pool_size", None)
        return (
            size
            if isinstance(size, int) and not isinstance(size, bool) and size > 0
            else DEFAULT_POOL_SIZE
        )

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

    async def __aenter__(self) -> Pipeline:
        enter = getattr(self._transport, "__aenter__", None)
        if enter is not None:
            await enter()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the transport; later calls raise ``RuntimeError``."""
        self._closed = True
        self.set_session_token(None)
        await self._transport.aclose()

    def pause(self, seconds: float | None) -> None:
        """Hold every call of this pipeline for ``seconds`` (a 429's ``Retry-After``).

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

    def _request(
        self,
        method: str,
        body: Mapping[str, Any],
        headers: Mapping[str, str] | None,
        http: HttpMethod,
        use_session: bool,
        secret: bool,
    ) -> Request:
        """Encode one call: URL, headers (content type, session token) and body."""
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
            request_headers = JSON_HEADERS
        url = f"{self._base_url}/{method}"
        limit = self._max_history_body_size if method in HISTORY_METHODS else self._max_body_size
        if http == "GET":
            params = query_params(body)
            if params:
                url = f"{url}?{urlencode(params, quote_via=quote)}"
            return Request("GET", url, request_headers, b"", method, limit, secret)
        return Request("POST", url, request_headers, _wire.dumps(body), method, limit, secret)

    @_otel.traced_call
    def call(
        self,
        method: str,
        payload: Mapping[str, Any] | None = None,
        *,
        write: bool = False,
        headers: Mapping[str, str] | None = None,
        sign: HeaderFactory | None = None,
        http: HttpMethod = "POST",
        retry: bool = True,
        use_session: bool = True,
        timeout: float | None = None,
        secret: bool = False,
        limited: bool = True,
    ) -> Coroutine[Any, Any, Any]:
        """Call one AlphaPoint method and return its decoded JSON answer.

        ``write=True`` marks a call that changes state (it is sent once; see the module
        docstring) and must use POST.  ``retry=False`` sends any call once.
        ``use_session=False`` leaves the ``aptoken`` header out (logging in); ``headers``
        are added to every attempt, and so is what ``sign()`` returns, called anew for each
        attempt (per-request signed headers, each with a fresh nonce).  ``timeout`` is the
        whole call's budget in seconds, every attempt of a read included (``None``: the
        policy's :attr:`RetryPolicy.timeout`, which bounds retries only).  ``secret=True``
        marks a payload that carries a credential (:attr:`Request.secret`).
        ``limited=False`` sends the call without waiting for the client's own rate budget
        (a server's pause after a 429 still holds it): for a last call such as the logout
        of a closing client.  Raises the mapped :mod:`kiiex_async.errors`.

        A plain function handing back the coroutine that does the work (await it): one
        coroutine frame less per call.  A closed pipeline or an invalid argument raises
        at once.
        """
        if self._closed:
            raise RuntimeError("this transport (client) is closed")
        if write and http != "POST":
            # aiohttp itself resends idempotent methods (GET) on a stale keep-alive socket.
            raise InvalidInputError("writes are sent with POST only")
        body = payload if payload is not None else {}
        prepared = _Call(method, body, write, headers, sign, http, use_session, secret, limited)
        scope = _SCOPE.get()
        if scope is not None and scope.owner is self and not write:
            return self._scoped(prepared, retry, scope, timeout)
        if timeout is not None:
            return self._within(prepared, retry, check_timeout(timeout) or 0.0)
        return self._send(prepared, retry, self._retry.timeout)

    @contextlib.contextmanager
    def retry_scope(
        self,
        timeout: float,
        *,
        retry_on: tuple[type[Exception], ...] = (),
        on_retry: RetryCallback | None = None,
        wait_max: float | None = None,
    ) -> Iterator[RetryScope]:
        """Give every read of this pipeline made inside the ``with`` block (in this task)
        one deadline, ``timeout`` seconds from now, and retry it until then.

        Inside the scope a read is retried on the transient failures of
        :func:`retry_wait` and on ``retry_on``, with no limit on attempts but the deadline
        (the policy's ``attempts`` does not apply); ``on_retry(method, error)`` is awaited
        before each retry (an exception from it ends the call); ``wait_max`` caps the
        backoff.  A per-call ``timeout=`` can only shorten the budget.  Writes ignore the
        scope.  Scopes nest: the innermost applies.
        """
        budget = check_timeout(timeout)
        if budget is None:
            raise InvalidInputError("a retry scope needs a timeout")
        if not isinstance(retry_on, tuple) or not all(
            isinstance(kind, type) and issubclass(kind, Exception) for kind in retry_on
        ):
            raise InvalidInputError("retry_on must be a tuple of exception classes")
        wait_cap = check_timeout(wait_max, "wait_max")
        scope = RetryScope(self, time.monotonic() + budget, retry_on, on_retry, wait_cap)
        token = _SCOPE.set(scope)
        try:
            yield scope
        finally:
            _SCOPE.reset(token)

    async def _scoped(
        self, call: _Call, retry: bool, scope: RetryScope, timeout: float | None
    ) -> Any:
        """A read inside a retry scope: bounded by the scope's deadline."""
        budget = scope.deadline - time.monotonic()
        if timeout is not None:
            budget = min(budget, check_timeout(timeout) or 0.0)
        if budget <= 0:
            raise RequestTimeout(
                f"{call.method}: the retry scope's time was spent before it was sent",
                method=call.method,
            )
        return await self._within(call, retry, budget, scope)

    async def _within(
        self, call: _Call, retry: bool, budget: float, scope: RetryScope | None = None
    ) -> Any:
        """A call bounded by ``budget`` seconds, the attempt in flight included."""
        deadline = asyncio.timeout(budget)
        try:
            async with deadline:
                return await self._send(call, retry, budget, scope)
        except TimeoutError as exc:
            if not deadline.expired():
                raise
            # Cancelled before a request left (a write in flight became UnknownOutcomeError
            # inside, so it never gets here): nothing was applied.
            error = RequestTimeout(
                f"{call.method}: no answer within the call's timeout of {budget:g}s",
                method=call.method,
            )
            raise error from exc

    async def _send(
        self, call: _Call, retry: bool, budget: float | None, scope: RetryScope | None = None
    ) -> Any:
        """The first attempt of ``call``, then the retry engine with ``budget`` seconds."""
        method, body, write, http = call.method, call.body, call.write, call.http
        # The first attempt is made here, without stamina (see the module docstring).
        began = started = time.monotonic()
        if self._paused_until:
            pause = self._paused_until - time.monotonic()
            if pause > 0:
                if budget is not None and pause > budget and not stamina.is_testing():
                    # Nothing is sent: the pause would outlast the call's whole budget.
                    raise RateLimitedError(
                        f"{method}: not sent; the exchange asked for a pause of {pause:.3g}s "
                        f"after a 429, longer than the call's budget of {budget:g}s",
                        retry_after=pause,
                        method=method,
                        status=None,
                    )
                await asyncio.sleep(pause)
        if self._limiter is not None and call.limited:
            await self._limiter.acquire()
            started = time.monotonic()
        try:
            headers = call.headers
            if call.sign is not None:
                signed = call.sign()
                if signed:
                    headers = {**headers, **signed} if headers else signed
            request = self._request(method, body, headers, http, call.use_session, call.secret)
            if write:
                task = asyncio.current_task()
                baseline = task.cancelling() if task is not None else 0
                try:
                    response = await self._transport.handle_async_request(request)
                except asyncio.CancelledError as cancelled:
                    if task is None:  # pragma: no cover - a coroutine always runs in a task
                        raise
                    message = cancelled.args[0] if cancelled.args else None
                    asyncio.get_running_loop().call_soon(_redeliver, task, baseline, message)
                    raise self._cancelled(method, body, cancelled) from cancelled
            else:
                response = await self._transport.handle_async_request(request)
            status = response.status
            _otel.record_status(status)
            content = response.content
            if log.isEnabledFor(logging.DEBUG):
                took = time.monotonic() - started
                log.debug("%s %s -> HTTP %d in %.3fs", http, method, status, took)
            limit = request.max_body_size
            if limit is not None and len(content) > limit:
                raise too_large(method, status, limit, len(content), declared=False)
            if status < 300:
                return interpret_response(method, status, content)
            return interpret_response(
                method,
                status,
                content,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                location=response.headers.get("Location"),
            )
        except Exception as exc:
            error = outcome_error(
                exc, method, write=write, client_order_id=_client_order_id(body) if write else None
            )
            if isinstance(error, RateLimitedError):
                self.pause(error.retry_after)
            if not retry or self._retry_wait(error, write, scope) is False:
                if error is exc:
                    raise
                raise error  # outcome_error already set its cause (or hid the context)
            first = error
        try:
            return await self._retry_after(first, time.monotonic() - began, call, budget, scope)
        finally:
            del first, error  # their traceback holds this frame: do not keep the cycle

    def _cancelled(
        self, method: str, body: Mapping[str, Any], cancelled: asyncio.CancelledError
    ) -> UnknownOutcomeError:
        """The error of a write cancelled from outside while its request was in flight."""
        client_order_id = _client_order_id(body)
        log.warning(
            "%s cancelled while its request was in flight: outcome unknown%s",
            method,
            "" if client_order_id is None else f" (ClientOrderId {client_order_id})",
        )
        return UnknownOutcomeError(
            f"{_unknown(method, client_order_id)} (cancelled while in flight)",
            method=method,
            client_order_id=client_order_id,
        )

    def _retry_wait(self, exc: Exception, write: bool, scope: RetryScope | None) -> bool | float:
        """:func:`retry_wait`, plus the errors a retry scope adds for its reads."""
        wait = retry_wait(exc, write=write, max_retry_after=self._retry.max_retry_after)
        if wait is False and scope is not None and not write and scope.retries(exc):
            return True
        return wait

    async def _retry_after(
        self,
        first: Exception,
        elapsed: float,
        call: _Call,
        budget: float | None,
        scope: RetryScope | None = None,
    ) -> Any:
        """Retry a call whose first attempt failed with ``first``, ``elapsed`` seconds ago.

        stamina replays ``first`` as its attempt 1, so it decides, waits and reports exactly
        as if it had made that attempt itself; its time budget is what is left of
        ``budget``.  In a retry scope attempts are limited by the budget only, and the
        scope's ``on_retry`` hears of each failure before its retry.
        """
        policy = self._retry
        timeout = budget
        if timeout is not None:
            timeout -= elapsed
            if timeout <= 0:
                if not stamina.is_testing():
                    raise first  # the budget is spent: stamina would stop here too
                timeout = budget  # testing mode ignores the budget

        last = first
        # A server's Retry-After that ends past the budget is not waited for: its 429 is
        # the answer (a timeout after sleeping would hide what the server said).
        deadline = None if timeout is None else time.monotonic() + timeout

        def hook(exc: Exception) -> bool | float:
            nonlocal last
            last = exc
            wait = self._retry_wait(exc, call.write, scope)
            if (
                type(wait) is float
                and deadline is not None
                and time.monotonic() + wait > deadline
                and not stamina.is_testing()
            ):
                return False
            return wait

        on_retry = scope.on_retry if scope is not None else None
        wait_max = policy.wait_max
        if scope is not None and scope.wait_max is not None:
            wait_max = min(wait_max, scope.wait_max)
        replay: Exception | None = first
        try:
            async for attempt in stamina.retry_context(
                on=hook,
                attempts=policy.attempts if scope is None else None,
                timeout=timeout,
                wait_initial=policy.wait_initial,
                wait_max=wait_max,
                wait_jitter=policy.wait_jitter,
                wait_exp_base=policy.wait_exp_base,
            ):
                if on_retry is not None and replay is None:
                    await on_retry(call.method, last)
                with attempt:
                    if replay is not None:
                        failure, replay = replay, None
                        raise failure
                    _otel.record_attempt()
                    return await self._send(call, False, None)
        finally:
            del last  # the error's traceback holds this frame: do not keep the cycle
        raise AssertionError("unreachable: stamina re-raises the last error")  # pragma: no cover


class _Call:
    """One call as the caller asked for it; each attempt is prepared from it anew.

    A plain class: made once per call, it costs half of an attrs frozen one.
    """

    __slots__ = (
        "body",
        "headers",
        "http",
        "limited",
        "method",
        "secret",
        "sign",
        "use_session",
        "write",
    )

    def __init__(
        self,
        method: str,
        body: Mapping[str, Any],
        write: bool,
        headers: Mapping[str, str] | None,
        sign: HeaderFactory | None,
        http: HttpMethod,
        use_session: bool,
        secret: bool,
        limited: bool,
    ) -> None:
        self.method = method
        self.body = body
        self.write = write
        self.headers = headers
        self.sign = sign
        self.http = http
        self.use_session = use_session
        self.secret = secret
        self.limited = limited


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
