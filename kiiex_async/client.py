"""``KiiexClient``: one typed coroutine per AlphaPoint method.

This module owns the client itself: its options (:class:`ClientOptions`), its lifetime,
its state and how answers are structured (``_decode``, ``_decode_list``, ``_structure``,
under :func:`kiiex_async._rules.read_answer`'s rule: a bad answer is read once).
Every endpoint reads as validate → payload → call → structure, and lives with its family:

* :mod:`kiiex_async._validate`: the rules for arguments, checked before anything is sent
  (an :class:`~kiiex_async.errors.InvalidInputError` means no request left);
* :mod:`kiiex_async._session`: login, 2FA, per-request signed headers, the single-flight
  re-login, and how an endpoint calls (public, private, with an account, ``timeout=``);
* :mod:`kiiex_async._endpoints_market`, :mod:`kiiex_async._endpoints_trading` and
  :mod:`kiiex_async._endpoints_tickets`: the endpoints.

Private calls log in lazily on first use, then carry the session token or, when the login
answer has none (KIIEX's guide), AlphaPoint's signed headers with a fresh nonce.  When the
exchange answers "not authorized" (errorcode 20 / HTTP 401) the client re-authenticates
once, shared by every coroutine that noticed at the same moment, and repeats the call.
Writes (``send_order``, ``cancel_order``, ``cancel_all_orders``, ``create_deposit_ticket``,
``create_withdraw_ticket``) are never resent after their outcome became unknown: they
raise :class:`~kiiex_async.errors.UnknownOutcomeError` instead.  Every endpoint takes a
keyword-only ``timeout=`` (seconds): the whole call's budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypedDict, TypeVar, Unpack

import aiohttp

from . import _validate as check
from . import _wire
from ._endpoints_market import MarketDataMixin
from ._endpoints_tickets import TicketsMixin
from ._endpoints_trading import TradingMixin
from ._pipeline import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_HISTORY_BODY_SIZE,
    HttpMethod,
    Pipeline,
    RetryCallback,
    RetryPolicy,
    RetryScope,
)
from ._rules import check_timeout, read_answer, unreadable
from ._session import AuthMode
from ._transport import AiohttpTransport, AsyncTransport, SSLOption, Timeouts, refuse_options
from ._validate import Amount
from .auth import Credentials
from .errors import (
    ConfigurationError,
    InvalidInputError,
    KiiexError,
)
from .models import AuthResult, Instrument

if TYPE_CHECKING:
    from .stream import Stream

__all__ = ["PRODUCTION_URL", "STAGING_URL", "Amount", "AuthMode", "ClientOptions", "KiiexClient"]

#: KIIEX staging HTTP base URL (includes the ``/ap`` segment).
STAGING_URL: Final = "https://apstage.proxy.kiiex.io/ap"
#: KIIEX production HTTP base URL (includes the ``/ap`` segment).
PRODUCTION_URL: Final = "https://alphaprod.proxy.kiiex.io/ap"

T = TypeVar("T")

_AUTH_MODES: Final = ("auto", "session", "per_request")
_TEMPLATE_FORM_ENCODINGS: Final = ("object", "string")
_LOGOUT_TIMEOUT: Final = 5.0


class ClientOptions(TypedDict, total=False):
    """Every keyword of :class:`KiiexClient` (what :meth:`KiiexClient.staging` and
    :meth:`KiiexClient.production` accept), so that a misspelt option fails type checking."""

    credentials: Credentials | None
    oms_id: int
    account_id: int | None
    timeout: float
    rate_limit: float | None
    max_retries: int
    retry_timeout: float | None
    pool_size: int | None
    connect_timeout: float | None
    read_http_method: HttpMethod
    max_body_size: int
    max_history_body_size: int
    transport: AsyncTransport | None
    session: aiohttp.ClientSession | None
    ssl: SSLOption | None
    trust_env: bool | None
    trace_configs: Sequence[aiohttp.TraceConfig] | None
    auth: AuthMode
    template_form_as: Literal["object", "string"]


class KiiexClient(MarketDataMixin, TradingMixin, TicketsMixin):
    """Async client of one KIIEX (AlphaPoint APEX) HTTP endpoint.

    ``base_url`` includes the ``/ap`` segment (see :meth:`staging`, :meth:`production`).
    ``OMSId`` defaults to ``oms_id`` and ``AccountId`` to ``account_id`` or, if unset, the
    account authentication returned.  ``rate_limit`` is requests per second shared by every
    coroutine of this client (``None`` = off); ``max_retries`` is how often a read is
    retried, within ``retry_timeout`` seconds from its first attempt (``None``: attempts
    only); a per-call ``timeout=`` or :meth:`retry_scope` replaces that budget.  An answer
    larger than ``max_body_size`` bytes (``max_history_body_size`` for history and list
    calls) is not read: :class:`~kiiex_async.errors.ResponseTooLargeError`.

    I/O goes through ``transport`` (any :class:`~kiiex_async.AsyncTransport`, e.g.
    :class:`kiiex_async.testing.MockTransport`); by default an
    :class:`~kiiex_async.AiohttpTransport` built from ``timeout``, ``connect_timeout``,
    ``pool_size`` (default 100), ``session`` (your own ``aiohttp.ClientSession``, which the
    client then never closes), ``ssl``, ``trust_env`` and ``trace_configs``.  Those options
    configure the default transport, so they cannot be combined with ``transport=``.
    Rate limit, retries, the pause after a 429 and authentication apply to every transport.
    Every endpoint takes a keyword-only ``timeout=`` (seconds): the whole call's budget,
    every retry of a read included (``None``: each attempt bounded by ``timeout`` above,
    retries by ``retry_timeout``).
    Use as ``async with KiiexClient(...) as client:`` or call :meth:`aclose`.
    """

    def __init__(
        self,
        base_url: str,
        *,
        credentials: Credentials | None = None,
        oms_id: int = 1,
        account_id: int | None = None,
        timeout: float = 10.0,
        rate_limit: float | None = 20.0,
        max_retries: int = 3,
        retry_timeout: float | None = 45.0,
        pool_size: int | None = None,
        connect_timeout: float | None = None,
        read_http_method: HttpMethod = "POST",
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        max_history_body_size: int = DEFAULT_MAX_HISTORY_BODY_SIZE,
        transport: AsyncTransport | None = None,
        session: aiohttp.ClientSession | None = None,
        ssl: SSLOption | None = None,
        trust_env: bool | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] | None = None,
        auth: AuthMode = "auto",
        template_form_as: Literal["object", "string"] = "object",
    ) -> None:
        if credentials is not None and not isinstance(credentials, Credentials):
            raise ConfigurationError("credentials must be a kiiex_async.Credentials")
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise ConfigurationError("max_retries must be an int >= 0")
        if read_http_method not in ("POST", "GET"):
            raise ConfigurationError("read_http_method must be 'POST' or 'GET'")
        if auth not in _AUTH_MODES:
            raise ConfigurationError("auth must be 'auto', 'session' or 'per_request'")
        if auth == "per_request" and credentials is not None and not credentials.uses_api_key:
            raise ConfigurationError("auth='per_request' signs each request: it needs an API key")
        if template_form_as not in _TEMPLATE_FORM_ENCODINGS:
            raise ConfigurationError("template_form_as must be 'object' or 'string'")
        try:
            retry_budget = check_timeout(retry_timeout, "retry_timeout")
            self._oms_id = check.positive_id(oms_id, "oms_id")
            self._configured_account_id = check.optional_int(account_id, "account_id", minimum=1)
        except InvalidInputError as exc:
            raise ConfigurationError(str(exc)) from None
        self._credentials = credentials
        self._auth_mode: AuthMode = auth
        self._template_form_as = template_form_as
        # True while private calls carry signed headers instead of a session token.
        self._signing = False
        self._read_http: HttpMethod = read_http_method
        if transport is None:
            transport = AiohttpTransport(
                timeouts=Timeouts(
                    total=timeout,
                    connect=connect_timeout if connect_timeout is not None else timeout,
                    sock_read=timeout,
                ),
                pool_size=pool_size,
                session=session,
                ssl=ssl,
                trust_env=trust_env,
                trace_configs=trace_configs,
            )
        else:
            refuse_options(
                "configure the default transport: with transport= configure that transport",
                pool_size=pool_size,
                connect_timeout=connect_timeout,
                session=session,
                ssl=ssl,
                trust_env=trust_env,
                trace_configs=trace_configs,
            )
        self._transport = Pipeline(
            base_url,
            transport,
            rate_limit=rate_limit,
            retry=RetryPolicy(attempts=max_retries + 1, timeout=retry_budget),
            max_body_size=max_body_size,
            max_history_body_size=max_history_body_size,
        )
        self._account_id: int | None = self._configured_account_id
        self._user_id: int | None = None
        self._auth_lock = asyncio.Lock()
        # Bumped after every login attempt; a coroutine that saw an older value knows
        # someone else already (re)authenticated, and shares that outcome.
        self._auth_epoch = 0
        self._auth_failure: Exception | None = None
        self._last_auth: AuthResult | None = None
        self._pending_2fa: tuple[AuthResult, str | None] | None = None
        self._instruments: list[Instrument] | None = None
        self._closed = False

    @classmethod
    def staging(cls, **options: Unpack[ClientOptions]) -> KiiexClient:
        """A client of KIIEX staging (``https://apstage.proxy.kiiex.io/ap``).

        Takes every keyword of :class:`KiiexClient` (:class:`ClientOptions`).
        """
        return cls(STAGING_URL, **options)

    @classmethod
    def production(cls, **options: Unpack[ClientOptions]) -> KiiexClient:
        """A client of KIIEX production (``https://alphaprod.proxy.kiiex.io/ap``).

        Takes every keyword of :class:`KiiexClient` (:class:`ClientOptions`).
        """
        return cls(PRODUCTION_URL, **options)

    def __repr__(self) -> str:
        return (
            f"<KiiexClient {self._transport.base_url!r} oms_id={self._oms_id} "
            f"account_id={self._account_id} authenticated={self.is_authenticated}>"
        )

    # -- lifetime -------------------------------------------------------------------------

    async def __aenter__(self) -> KiiexClient:
        await self._transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Log out (best effort, if a session exists) and close the connection pool.

        The logout does not wait for the client's rate budget (it is the last call, so it
        cannot push a later one into a 429), and is not sent while the exchange has asked
        for a pause after a 429: then the session is left to expire on the exchange.
        """
        if self._closed:
            return
        self._closed = True
        try:
            transport = self._transport
            if transport.has_session and not transport.closed and not transport.paused_for:
                with contextlib.suppress(KiiexError, TimeoutError):
                    async with asyncio.timeout(_LOGOUT_TIMEOUT):
                        await transport.call("LogOut", {}, retry=False, limited=False)
        finally:
            await self._transport.aclose()

    # -- state ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The base URL calls go to (``<base_url>/<Method>``)."""
        return self._transport.base_url

    @property
    def pool_size(self) -> int:
        """Most connections the client keeps open, so most calls it has in flight at once.

        A call made while all of them are busy waits for one.  ``RatePoller`` reads it to
        leave part of the pool to the application's other calls.
        """
        return self._transport.pool_size

    @property
    def oms_id(self) -> int:
        """The ``OMSId`` sent with every call."""
        return self._oms_id

    @property
    def account_id(self) -> int | None:
        """The default ``AccountId``: the configured one or the one authentication returned."""
        return self._account_id

    @property
    def user_id(self) -> int | None:
        """The logged-in user's id, once authenticated."""
        return self._user_id

    def retry_scope(
        self,
        timeout: float,
        *,
        retry_on: tuple[type[Exception], ...] = (),
        on_retry: RetryCallback | None = None,
        wait_max: float | None = None,
    ) -> contextlib.AbstractContextManager[RetryScope]:
        """``with client.retry_scope(30):``: every read of this client inside the block (in
        this task) shares one deadline ``timeout`` seconds away and is retried until then.

        The client's retry engine does the retrying: transient failures (connection,
        timeout, 5xx, 429) and ``retry_on`` (say ``(NotFoundError,)`` for an order not
        visible yet) are retried with jittered backoff capped at ``wait_max``, without
        the ``max_retries`` limit; ``await on_retry(method, error)`` runs before each retry.
        Past the deadline the last error is raised (a
        :class:`~kiiex_async.errors.RequestTimeout` if an attempt was cut short).  Writes
        are not affected: they are still sent once.  ``SwapWorkflow`` runs each read of a
        step in such a scope, with the step's time limit.
        """
        return self._transport.retry_scope(
            timeout, retry_on=retry_on, on_retry=on_retry, wait_max=wait_max
        )

    def _decode(self, method: str, data: Any, cls: type[T], *, write: bool = False) -> T:
        # read_answer's rule, written out: this runs on every call.
        try:
            return _wire.structure(data, cls)
        except Exception as exc:
            error = unreadable(method, exc, write=write)
            if error is exc:
                raise
            raise error  # unreadable set its cause (or hid the context)

    def _decode_list(self, method: str, data: Any, cls: type[T]) -> list[T]:
        return read_answer(method, _wire.structure_list, data, cls, write=False)

    def _structure(self, method: str, convert: Callable[[], T]) -> T:
        """Run ``convert`` on a read's answer, mapping a shape mismatch like ``_decode``."""
        return read_answer(method, convert, write=False)

    def stream(self, **options: Any) -> Stream:
        """One WebSocket to the exchange's ``/WSGateway`` (``async with client.stream()``).

        Options are those of :class:`kiiex_async.stream.Stream` (``ws_url``, ``ping_interval``...).
        """
        from .stream import Stream

        login = None
        if self._credentials is not None:
            credentials = self._credentials
            login = functools.partial(self._login_payload, credentials)
            options.setdefault("two_factor", credentials.two_factor)
        return Stream(self, login=login, **options)
