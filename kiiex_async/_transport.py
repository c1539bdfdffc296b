"""HTTP I/O behind a small seam: a prepared :class:`Request` in, a :class:`Response` out.

This module owns everything that touches the network and nothing else:

* :class:`AsyncTransport`, the protocol a transport implements
  (``handle_async_request(request) -> response`` and ``aclose()``, like httpx's), and the
  two values that cross it, :class:`Request` and :class:`Response`;
* :class:`AiohttpTransport`, the default: one ``aiohttp.ClientSession`` (a sized,
  keep-alive pool, or the caller's own session), the per-exchange deadlines
  (:class:`Timeouts`, enforced by :class:`_Deadlines`), the body-size cap, never following
  a redirect, and the mapping of aiohttp's and the socket's exceptions to
  :mod:`kiiex_async.errors` (:func:`map_error`, the one place that does).

What a call *means* (encoding, rate budget, auth headers, status → error, retries, whether
a write's outcome is unknown) is the call pipeline's (:mod:`kiiex_async._pipeline`), so any
transport, :class:`kiiex_async.testing.MockTransport` included, gets the same policies.

A transport raises :class:`~kiiex_async.errors.ConnectError` when the request certainly
did not leave, :class:`~kiiex_async.errors.RequestTimeout` when no answer came in time,
:class:`~kiiex_async.errors.ResponseTooLargeError` past ``request.max_body_size`` and
:class:`~kiiex_async.errors.TransportError` for anything else that broke the exchange.
"""

from __future__ import annotations

import asyncio
import logging
import math
import ssl as ssl_module
import time
from collections.abc import Awaitable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import attrs
from aiohttp.payload import BytesPayload
from multidict import CIMultiDict, CIMultiDictProxy

from . import _wire
from .errors import (
    ConfigurationError,
    ConnectError,
    KiiexError,
    RequestTimeout,
    ResponseTooLargeError,
    TransportError,
)

#: Connections a transport opens at most when none is said (aiohttp's own default limit).
DEFAULT_POOL_SIZE = 100

__all__ = [
    "DEFAULT_POOL_SIZE",
    "DEFAULT_USER_AGENT",
    "AiohttpTransport",
    "AsyncTransport",
    "Request",
    "Response",
    "Timeouts",
    "map_error",
    "refuse_options",
]

log = logging.getLogger("kiiex_async.transport")

DEFAULT_USER_AGENT: Final = "kiiex_async (+https://pypi.org/project/kiiex_async/)"
_READ_CHUNK: Final = 64 * 1024


@attrs.frozen
class Timeouts:
    """Per-exchange timeouts in seconds, passed to ``aiohttp.ClientTimeout``.

    ``connect`` covers waiting for a pooled connection plus opening one; ``sock_read``
    bounds every read from the socket, so a dead keep-alive connection cannot hang a call.
    ``total`` bounds one HTTP exchange (one attempt) from sending to the last byte read; the
    transport enforces it itself (see :class:`_Deadlines`), within a tenth of its value and
    at most a second late, as aiohttp's own rounding of long timeouts would.

    Every read happens inside an exchange, so ``total`` bounds each read too.  aiohttp's
    ``sock_read`` timer, re-armed on every read (about 5 % of a call to a local server), is
    therefore armed only when ``sock_read`` is the stricter limit (shorter than ``total``);
    otherwise the total deadline ends a stalled read.
    """

    total: float = 10.0
    connect: float = 10.0
    sock_read: float = 10.0

    def __attrs_post_init__(self) -> None:
        for name in ("total", "connect", "sock_read"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigurationError(f"timeout {name} must be a positive number of seconds")


class Request:
    """One prepared HTTP request, as it will be sent.

    ``method`` is the HTTP verb (``"POST"`` or ``"GET"``), ``url`` the full URL (query
    included), ``headers`` every header the call adds (the transport may add its defaults,
    such as ``User-Agent``), ``content`` the body.  ``name`` is the AlphaPoint method
    (``"SendOrder"``), for messages and logs; ``max_body_size`` is the most bytes of answer
    the transport may read (``None``: no cap).  ``secret`` marks a body that carries a
    credential (a password, a signature, a one-time code): a transport must not keep, log
    or show it.
    """

    __slots__ = ("content", "headers", "max_body_size", "method", "name", "secret", "url")

    def __init__(
        self,
        method: str,
        url: str,
        # Not keyword-only: the pipeline passes them by position, on every call.
        headers: Mapping[str, str] | None = None,
        content: bytes = b"",
        name: str = "",
        max_body_size: int | None = None,
        secret: bool = False,
    ) -> None:
        self.method = method
        self.url = url
        self.headers: Mapping[str, str] = headers if headers is not None else {}
        self.content = content
        self.name = name
        self.max_body_size = max_body_size
        self.secret = secret

    def __repr__(self) -> str:
        # Never the headers (session token, signature) nor the body (password).
        return f"<Request {self.method} {self.name or self.url}>"

    def json(self) -> Any:
        """The JSON body decoded as the exchange would (numbers as ``Decimal``)."""
        return _wire.loads(self.content) if self.content else None

    @property
    def params(self) -> dict[str, str]:
        """The query parameters of the URL (a GET call's payload, as text)."""
        return dict(parse_qsl(urlsplit(self.url).query, keep_blank_values=True))


class Response:
    """One HTTP answer: ``status``, ``headers`` (case-insensitive) and the body bytes.

    ``json=`` is a shortcut for a JSON body (``Decimal`` values are written exactly), as in
    ``Response(200, json={"result": True})``; it sets ``Content-Type`` too.
    """

    __slots__ = ("content", "headers", "status")

    def __init__(
        self,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        content: bytes = b"",
        json: Any = None,
    ) -> None:
        if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
            raise ConfigurationError(f"an HTTP status is an int in 100..599, got {status!r}")
        if json is not None:
            if content:
                raise ConfigurationError("pass content or json, not both")
            content = _wire.dumps(json)
            headers = {"Content-Type": "application/json", **(headers or {})}
        self.status = status
        if headers is None:
            self.headers: Mapping[str, str] = _NO_HEADERS
        elif isinstance(headers, CIMultiDictProxy):
            self.headers = headers
        else:
            self.headers = CIMultiDictProxy(CIMultiDict(headers))
        self.content = bytes(content)

    @classmethod
    def _received(cls, status: int, headers: CIMultiDictProxy[str], content: bytes) -> Response:
        """A response as aiohttp delivered it (already valid: no checks, no copies)."""
        response = cls.__new__(cls)
        response.status = status
        response.headers = headers
        response.content = content
        return response

    def __repr__(self) -> str:
        return f"<Response {self.status} ({len(self.content)} bytes)>"


_NO_HEADERS: Final[CIMultiDictProxy[str]] = CIMultiDictProxy(CIMultiDict())
#: The headers of a call with nothing but its JSON body to declare.  The default transport
#: sends none for them (its payloads declare their content type): the pipeline passes this
#: very object, so the test is one identity check.
JSON_HEADERS: Final = CIMultiDictProxy(CIMultiDict({"Content-Type": "application/json"}))
_PAYLOADS_KEPT = 256


@runtime_checkable
class AsyncTransport(Protocol):
    """What ``KiiexClient(transport=...)`` accepts: send one request, close.

    ``handle_async_request`` sends the request once (never retried, never redirected) and
    returns the answer, whatever its status; it raises the errors listed in this module's
    docstring.  A transport may also expose ``pool_size`` (most exchanges it carries at
    once), which the client reports as :attr:`KiiexClient.pool_size`.
    """

    async def handle_async_request(self, request: Request) -> Response:
        """Send ``request`` and return the server's answer."""
        ...

    async def aclose(self) -> None:
        """Release every connection; the transport is not used afterwards."""
        ...


def map_error(exc: BaseException, name: str) -> KiiexError | None:
    """The error of the tree for a failure of one exchange of ``name`` (pure), or ``None``.

    ``None`` means "not a network failure": the exception passes through unchanged.  The
    result is chained to ``exc``, except for ``aiohttp.ClientResponseError``, whose
    ``request_info`` holds the request headers (the session token): its chain is hidden.
    Cancellation is a ``BaseException`` and never gets here.
    """
    if isinstance(exc, KiiexError):
        return exc
    error: KiiexError
    if isinstance(exc, aiohttp.ClientConnectorError | aiohttp.ConnectionTimeoutError):
        error = ConnectError(f"{name}: cannot connect: {exc}", method=name)
    elif isinstance(exc, aiohttp.InvalidURL):
        error = ConfigurationError(f"{name}: invalid URL: {exc}")
    elif isinstance(exc, aiohttp.ClientResponseError):
        text = f"{type(exc).__name__}: HTTP {exc.status} {exc.message}"
        return _chained(TransportError(f"{name}: bad response: {text}", method=name), None)
    elif isinstance(exc, TimeoutError):
        # asyncio's TimeoutError is the builtin since 3.11; aiohttp's read timeouts too.
        error = RequestTimeout(f"{name}: no answer in time ({_what(exc)})", method=name)
    elif isinstance(exc, aiohttp.ClientError | OSError):
        error = TransportError(f"{name}: connection failed ({_what(exc)})", method=name)
    else:
        return None
    return _chained(error, exc)


def refuse_options(why: str, **options: object) -> None:
    """Raise :class:`~kiiex_async.errors.ConfigurationError` naming every option given.

    An option is given when it is not ``None``; ``why`` completes "<options> ...".
    """
    given = [name for name, value in options.items() if value is not None]
    if given:
        raise ConfigurationError(f"{', '.join(given)} {why}")


def _what(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _chained(error: KiiexError, cause: BaseException | None) -> KiiexError:
    """``error`` as ``raise error from cause`` would leave it (``None``: hide the context)."""
    error.__cause__ = cause
    error.__suppress_context__ = True
    return error


def too_large(name: str, status: int, limit: int, size: int, *, declared: bool) -> KiiexError:
    """The error for an answer of ``size`` bytes over ``limit`` (pure)."""
    said = "declares" if declared else "sent more than"
    shown = size if declared else limit
    return ResponseTooLargeError(
        f"{name}: the answer (HTTP {status}) {said} {shown} bytes, over the client's "
        f"max_body_size of {limit} bytes; it was not read further",
        method=name,
        status=status,
        limit=limit,
        size=size,
    )


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


SSLOption = ssl_module.SSLContext | aiohttp.Fingerprint | bool


class AiohttpTransport:
    """The default transport: aiohttp, one keep-alive pool, no redirects, capped bodies.

    It opens its own ``ClientSession`` (``pool_size`` connections, ``keepalive_timeout``,
    ``ssl``, ``trust_env`` for proxy variables and ``.netrc``, ``trace_configs`` for
    aiohttp's request hooks) on first use and closes it in :meth:`aclose`.  With
    ``session=`` it uses that session instead and never closes it (its owner does); the
    session's own connector, TLS and proxy settings then apply, so the options above must
    be left unset.  TLS verification cannot be turned off (``ssl=False`` is refused): pass
    an ``ssl.SSLContext`` that trusts your CA instead.

    Every request is sent with ``allow_redirects=False``; a 3xx comes back as a response.
    An answer is read up to ``request.max_body_size`` bytes: a larger ``Content-Length``
    fails before reading, and a body without one (chunked, compressed) is read in chunks
    and abandoned (the connection closed) as soon as it passes the cap.
    """

    def __init__(
        self,
        *,
        timeouts: Timeouts | None = None,
        pool_size: int | None = None,
        keepalive_timeout: float = 30.0,
        user_agent: str = DEFAULT_USER_AGENT,
        session: aiohttp.ClientSession | None = None,
        ssl: SSLOption | None = None,
        trust_env: bool | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] | None = None,
    ) -> None:
        if pool_size is not None and (
            isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1
        ):
            raise ConfigurationError("pool_size must be a positive int")
        if ssl is False:
            raise ConfigurationError(
                "TLS verification stays on: pass ssl=an ssl.SSLContext that trusts your CA"
            )
        if ssl is not None and not isinstance(ssl, SSLOption):
            raise ConfigurationError("ssl must be an ssl.SSLContext or an aiohttp.Fingerprint")
        if session is not None:
            if not isinstance(session, aiohttp.ClientSession):
                raise ConfigurationError("session must be an aiohttp.ClientSession")
            refuse_options(
                "configure a session the client opens; with session= set them on your own "
                "ClientSession",
                pool_size=pool_size,
                ssl=ssl,
                trust_env=trust_env,
                trace_configs=trace_configs,
            )
            connector = session.connector
            pool_size = connector.limit if connector is not None and connector.limit else None
        self._timeouts = timeouts if timeouts is not None else Timeouts()
        # No ``total`` here: _Deadlines enforces it for much less than aiohttp's timer.  A
        # read cannot outlast its exchange, so ``sock_read`` is armed only when it is stricter.
        sock_read = self._timeouts.sock_read
        self._client_timeout = aiohttp.ClientTimeout(
            total=None,
            connect=self._timeouts.connect,
            sock_read=sock_read if sock_read < self._timeouts.total else None,
        )
        self._deadlines = _Deadlines(self._timeouts.total)
        self._pool_size = pool_size if pool_size is not None else DEFAULT_POOL_SIZE
        self._keepalive_timeout = keepalive_timeout
        self._user_agent = user_agent
        self._ssl: SSLOption = ssl if ssl is not None else True
        self._trust_env = bool(trust_env)
        self._trace_configs = list(trace_configs) if trace_configs is not None else None
        self._session = session
        self._owns_session = session is None
        # A borrowed session lacks our defaults: they go with each request instead.
        self._defaults: Mapping[str, str] | None = (
            None if session is None else {"Accept": "application/json"}
        )
        self._closed = False
        # Request bodies already made into aiohttp payloads (see _payload).
        self._payloads: dict[bytes, BytesPayload] = {}

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        owner = "own session" if self._owns_session else "borrowed session"
        return f"<AiohttpTransport {state} pool_size={self._pool_size} {owner}>"

    @property
    def pool_size(self) -> int:
        """Most connections (so most exchanges in flight) this transport opens at once."""
        return self._pool_size

    @property
    def timeouts(self) -> Timeouts:
        """The timeouts of every exchange."""
        return self._timeouts

    @property
    def closed(self) -> bool:
        """True once :meth:`aclose` ran."""
        return self._closed

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The session in use (``None`` until the first exchange opens one)."""
        return self._session

    async def __aenter__(self) -> AiohttpTransport:
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
        """Close the connection pool (not a borrowed session); later requests fail."""
        self._closed = True
        self._deadlines.close()
        session, self._session = self._session, None
        if session is not None and self._owns_session:
            await session.close()

    def _open_session(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("this transport (client) is closed")
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._pool_size, keepalive_timeout=self._keepalive_timeout, ssl=self._ssl
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                headers={"User-Agent": self._user_agent, "Accept": "application/json"},
                trust_env=self._trust_env,
                trace_configs=self._trace_configs,
            )
        return self._session

    def _payload(self, request: Request) -> BytesPayload:
        """The body of ``request`` as aiohttp sends it, made once per distinct body.

        A ``BytesPayload`` is immutable and aiohttp only reads it, so the bodies a client
        sends over and over (a rate polled per instrument) share one; a secret body is
        never kept.  Its content type spares aiohttp a merge of the request's headers.
        """
        content = request.content
        found = self._payloads.get(content)
        if found is None:
            found = BytesPayload(content, content_type="application/json")
            if not request.secret:
                if len(self._payloads) >= _PAYLOADS_KEPT:
                    self._payloads.clear()
                self._payloads[content] = found
        return found

    async def handle_async_request(self, request: Request) -> Response:
        """Send ``request`` once, without following redirects; read at most its cap."""
        session = self._session
        if session is None:
            session = self._open_session()
        elif session.closed:
            raise ConfigurationError("the aiohttp session of this client is closed")
        headers = request.headers
        if self._defaults is not None:
            headers = {**self._defaults, **headers}
        deadlines = self._deadlines
        try:
            task = deadlines.enter()
            try:
                content = request.content
                async with session.request(
                    request.method,
                    request.url,
                    # A payload made here skips aiohttp's registry lookup of the body's type.
                    data=self._payload(request) if content else None,
                    headers=None if headers is JSON_HEADERS else headers,
                    timeout=self._client_timeout,
                    allow_redirects=False,
                ) as response:
                    content = await _read(response, request)
                    return Response._received(response.status, response.headers, content)
            except asyncio.CancelledError:
                if deadlines.expired(task):
                    raise TimeoutError(f"total timeout of {self._timeouts.total:g}s") from None
                raise
            finally:
                deadlines.leave(task)
        except Exception as exc:
            error = map_error(exc, request.name or request.url)
            if error is None or error is exc:
                raise
            raise error  # map_error set its cause (or hid the context)


def _read(response: aiohttp.ClientResponse, request: Request) -> Awaitable[bytes]:
    """The body of ``response``, or :class:`ResponseTooLargeError` past the request's cap.

    A plain function returning what to await: aiohttp's own ``read()`` when the length is
    known in advance (one coroutine frame less on the common path).
    """
    limit = request.max_body_size
    if limit is None:
        return response.read()
    length = response.content_length
    # aiohttp inflates compressed bodies as they arrive: Content-Length is not their size.
    if length is not None and "Content-Encoding" not in response.headers:
        if length > limit:
            response.close()
            raise too_large(request.name, response.status, limit, length, declared=True)
        return response.read()
    return _read_capped(response, request, limit)


async def _read_capped(response: aiohttp.ClientResponse, request: Request, limit: int) -> bytes:
    """A body of unknown length, read in chunks and abandoned as soon as it passes ``limit``."""
    chunks: list[bytes] = []
    size = 0
    stream = response.content
    while True:
        chunk = await stream.read(_READ_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            response.close()  # drop the connection rather than drain the rest
            raise too_large(request.name, response.status, limit, size, declared=False)
        chunks.append(chunk)
    return b"".join(chunks)
