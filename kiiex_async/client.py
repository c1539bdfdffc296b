"""``KiiexClient``: one typed coroutine per AlphaPoint method.

Arguments are validated before anything is sent (an :class:`~kiiex_async.errors.InvalidInputError`
means no request left).  Private calls log in lazily on first use, then carry the session
token or, when the login answer has none (KIIEX's guide), AlphaPoint's signed headers with
a fresh nonce.  When the exchange answers "not authorized" (errorcode 20 / HTTP 401) the
client re-authenticates once, shared by every coroutine that noticed at the same moment,
and repeats the call.
Writes (``send_order``, ``cancel_order``, ``cancel_all_orders``, ``create_deposit_ticket``,
``create_withdraw_ticket``) are never resent after their outcome became unknown: they
raise :class:`~kiiex_async.errors.UnknownOutcomeError` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime as dt
import functools
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from decimal import Decimal
from enum import IntEnum
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, Literal, TypedDict, TypeVar, Unpack

import aiohttp

from . import _wire, pricing
from ._pipeline import (
    DEFAULT_MAX_BODY_SIZE,
    DEFAULT_MAX_HISTORY_BODY_SIZE,
    HttpMethod,
    Pipeline,
    RetryPolicy,
    read_answer,
)
from ._transport import AiohttpTransport, AsyncTransport, SSLOption, Timeouts, refuse_options
from .auth import Credentials
from .errors import (
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    InvalidInputError,
    KiiexError,
    NotFoundError,
    TwoFactorRequiredError,
)
from .models import (
    AccountTransaction,
    AuthResult,
    Deposit,
    DepositInfo,
    DepositTicket,
    DepositTicketCreated,
    GenericResult,
    Instrument,
    L2Snapshot,
    Level1,
    Level1Summary,
    Order,
    OrderType,
    Pong,
    Position,
    Product,
    SendOrderResult,
    Side,
    TickerBar,
    TimeInForce,
    Trade,
    UserInfo,
    Withdraw,
    WithdrawFee,
    WithdrawTemplate,
    WithdrawTemplateType,
    WithdrawTicket,
)

if TYPE_CHECKING:
    from .stream import Stream

__all__ = ["PRODUCTION_URL", "STAGING_URL", "Amount", "AuthMode", "ClientOptions", "KiiexClient"]

#: KIIEX staging HTTP base URL (includes the ``/ap`` segment).
STAGING_URL: Final = "https://apstage.proxy.kiiex.io/ap"
#: KIIEX production HTTP base URL (includes the ``/ap`` segment).
PRODUCTION_URL: Final = "https://alphaprod.proxy.kiiex.io/ap"

log = logging.getLogger("kiiex_async.client")

T = TypeVar("T")
E = TypeVar("E", bound=IntEnum)

#: An amount of money: a ``Decimal``, an ``int`` or a numeric ``str`` (never a ``float``).
Amount = Decimal | int | str

#: How private calls are authenticated: ``"auto"`` follows the login answer (its session
#: token if it has one, else AlphaPoint's signed headers on every request), ``"session"``
#: requires a session token, ``"per_request"`` signs every request.
AuthMode = Literal["auto", "session", "per_request"]
_AUTH_MODES: Final = ("auto", "session", "per_request")
_TEMPLATE_FORM_ENCODINGS: Final = ("object", "string")

_MAX_INT64: Final = 2**63 - 1
_LOGOUT_TIMEOUT: Final = 5.0
_LIMIT_TYPES: Final = frozenset({OrderType.LIMIT, OrderType.STOP_LIMIT})
_STOP_TYPES: Final = frozenset({OrderType.STOP_MARKET, OrderType.STOP_LIMIT})
_SUPPORTED_TYPES: Final = frozenset(
    {OrderType.MARKET, OrderType.LIMIT, OrderType.STOP_MARKET, OrderType.STOP_LIMIT}
)


# -- validation (pure; runs before any request) ------------------------------------------


def _positive_id(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInputError(f"{name} must be a positive int, got {value!r}")
    return value


def _optional_int(value: object, name: str, *, minimum: int = 0) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _client_order_id(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_INT64:
        raise InvalidInputError(
            f"client_order_id must be an int in 0..2**63-1 (signed 64-bit), got {value!r}"
        )
    return value


def _member(value: object, enum: type[E], name: str, allowed: frozenset[E] | None = None) -> E:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} must be a {enum.__name__}, got {value!r}")
    try:
        member = enum(value)
    except ValueError:
        raise InvalidInputError(f"{name} must be a {enum.__name__}, got {value!r}") from None
    if allowed is not None and member not in allowed:
        names = ", ".join(sorted(m.name for m in allowed))
        raise InvalidInputError(f"{name} must be one of {names}, got {member.name}")
    return member


def _order_price(
    value: Amount | None, name: str, order_type: OrderType, needed_by: frozenset[OrderType]
) -> Decimal | None:
    """A price the order types ``needed_by`` require and every other type refuses."""
    if order_type in needed_by:
        if value is None:
            raise InvalidInputError(f"a {order_type.name} order needs {name}")
        return pricing.check_amount(value, name=name)
    if value is not None:
        raise InvalidInputError(f"{name} does not apply to a {order_type.name} order")
    return None


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{name} must be a non-empty str")
    return value


def _ci_get(data: object, name: str) -> Any:
    """Read ``name`` from a JSON object, ignoring key case."""
    if not isinstance(data, Mapping):
        return None
    wanted = name.lower()
    for key, value in data.items():
        if isinstance(key, str) and key.lower() == wanted:
            return value
    return None


def _order_payload(
    *,
    oms_id: int,
    account_id: int,
    instrument_id: int,
    side: Side,
    order_type: OrderType,
    time_in_force: TimeInForce,
    client_order_id: int,
    quantity: Decimal | None,
    value: Decimal | None,
    limit_price: Decimal | None,
    stop_price: Decimal | None,
    post_only: bool,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "OMSId": oms_id,
        "AccountId": account_id,
        "InstrumentId": instrument_id,
        "Side": int(side),
        "OrderType": int(order_type),
        "TimeInForce": int(time_in_force),
        "ClientOrderId": client_order_id,
    }
    if quantity is not None:
        payload["Quantity"] = quantity
    if value is not None:
        payload["Value"] = value
    if limit_price is not None:
        payload["LimitPrice"] = limit_price
    if stop_price is not None:
        payload["StopPrice"] = stop_price
    if post_only:
        payload["PostOnly"] = True
    return payload


class ClientOptions(TypedDict, total=False):
    """Every keyword of :class:`KiiexClient` (what :meth:`KiiexClient.staging` and
    :meth:`KiiexClient.production` accept), so that a misspelt option fails type checking."""

    credentials: Credentials | None
    oms_id: int
    account_id: int | None
    timeout: float
    rate_limit: float | None
    max_retries: int
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


class KiiexClient:
    """Async client of one KIIEX (AlphaPoint APEX) HTTP endpoint.

    ``base_url`` includes the ``/ap`` segment (see :meth:`staging`, :meth:`production`).
    ``OMSId`` defaults to ``oms_id`` and ``AccountId`` to ``account_id`` or, if unset, the
    account authentication returned.  ``rate_limit`` is requests per second shared by every
    coroutine of this client (``None`` = off); ``max_retries`` is how often a read is
    retried.  An answer larger than ``max_body_size`` bytes (``max_history_body_size`` for
    history and list calls) is not read: :class:`~kiiex_async.errors.ResponseTooLargeError`.

    I/O goes through ``transport`` (any :class:`~kiiex_async.AsyncTransport`, e.g.
    :class:`kiiex_async.testing.MockTransport`); by default an
    :class:`~kiiex_async.AiohttpTransport` built from ``timeout``, ``connect_timeout``,
    ``pool_size`` (default 100), ``session`` (your own ``aiohttp.ClientSession``, which the
    client then never closes), ``ssl``, ``trust_env`` and ``trace_configs``.  Those options
    configure the default transport, so they cannot be combined with ``transport=``.
    Rate limit, retries, the pause after a 429 and authentication apply to every transport.
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
            self._oms_id = _positive_id(oms_id, "oms_id")
            self._configured_account_id = _optional_int(account_id, "account_id", minimum=1)
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
            retry=RetryPolicy(attempts=max_retries + 1),
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
        """Log out (best effort, if a session exists) and close the connection pool."""
        if self._closed:
            return
        self._closed = True
        try:
            if self._transport.has_session and not self._transport.closed:
                with contextlib.suppress(KiiexError, TimeoutError):
                    async with asyncio.timeout(_LOGOUT_TIMEOUT):
                        await self._transport.call("LogOut", {}, retry=False)
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

    @property
    def is_authenticated(self) -> bool:
        """True after a successful login, until :meth:`log_out` or a failed re-login.

        With a session token, while the client holds it; without one (``auth_mode`` is
        ``"per_request"``), while private calls are signed.
        """
        return self._signing or self._transport.has_session

    @property
    def auth_mode(self) -> Literal["session", "per_request"] | None:
        """How private calls are authenticated now: ``"session"`` (an ``aptoken``),
        ``"per_request"`` (signed headers on each request) or ``None`` (not logged in)."""
        if self._transport.has_session:
            return "session"
        return "per_request" if self._signing else None

    # -- authentication -------------------------------------------------------------------

    def _require_credentials(self) -> Credentials:
        if self._credentials is None:
            raise ConfigurationError(
                "this call needs credentials: pass credentials=Credentials(...) "
                "(or Credentials.from_env())"
            )
        return self._credentials

    async def authenticate(self) -> AuthResult:
        """Log in now (API key, else username and password; 2FA via ``two_factor``).

        Raises :class:`~kiiex_async.errors.TwoFactorRequiredError` when the exchange asks for
        a 2FA code and ``credentials.two_factor`` is not set.  Concurrent callers share one
        login.
        """
        self._require_credentials()
        await self._refresh_session(self._auth_epoch)
        assert self._last_auth is not None
        return self._last_auth

    async def _refresh_session(self, seen_epoch: int) -> None:
        """Log in unless another coroutine already did so since ``seen_epoch``."""
        async with self._auth_lock:
            if self._auth_epoch != seen_epoch:
                if self.is_authenticated:
                    return
                failure = self._auth_failure
                if failure is not None:
                    clone = _shared(failure)
                    if clone is failure:
                        raise failure
                    raise clone from failure
            log.info("logging in to %s", self._transport.base_url)
            try:
                self._last_auth = await self._login()
            except Exception as exc:
                self._auth_failure = exc
                self._signing = False
                raise
            else:
                self._auth_failure = None
            finally:
                self._auth_epoch += 1

    def _login_payload(self, credentials: Credentials) -> dict[str, Any]:
        """The JSON-body form of AuthenticateUser, signed with a fresh nonce.

        The API-key form carries ``UserName`` when the credentials know it, as KIIEX's
        guide shows.
        """
        if credentials.uses_api_key:
            payload: dict[str, Any] = dict(credentials.signed_headers())
            if credentials.username:
                payload["UserName"] = credentials.username
            return payload
        return {"UserName": credentials.username, "Password": credentials.password}

    def _token(self, data: Any) -> str | None:
        """The session token of a login answer, unless ``auth="per_request"`` ignores it."""
        return None if self._auth_mode == "per_request" else _wire.session_token(data)

    def _signed_headers(self) -> dict[str, str] | None:
        """Fresh signed headers (a new nonce) when private calls are signed, else ``None``."""
        if not self._signing or self._credentials is None:
            return None
        return self._credentials.signed_headers()

    async def _authenticate_user_step(self) -> tuple[AuthResult, str | None, str | None]:
        """Send AuthenticateUser; return (result, session token, pending 2FA token)."""
        credentials = self._require_credentials()
        data = await self._transport.call(
            "AuthenticateUser", self._login_payload(credentials), use_session=False
        )
        result = self._decode("AuthenticateUser", data, AuthResult)
        token = self._token(data)
        pending = _ci_get(data, "Pending2FaToken") or _ci_get(data, "TwoFAToken") or None
        return result, token, pending if isinstance(pending, str) else None

    async def _authenticate_2fa_step(
        self, code: str, pending: str | None
    ) -> tuple[AuthResult, str | None]:
        headers = {"Pending2FaToken": pending} if pending else None
        data = await self._transport.call(
            "Authenticate2FA", {"Code": code}, headers=headers, use_session=False, retry=False
        )
        return self._decode("Authenticate2FA", data, AuthResult), self._token(data)

    async def _login(self) -> AuthResult:
        credentials = self._require_credentials()
        self._pending_2fa = None
        result, token, pending = await self._authenticate_user_step()
        if token is None and result.requires_2fa:
            if credentials.two_factor is None:
                raise TwoFactorRequiredError(
                    "AuthenticateUser: the exchange asks for a 2FA code and "
                    "credentials.two_factor is not set",
                    method="AuthenticateUser",
                )
            code = await credentials.two_factor(result.two_fa_type or result.auth_type or "Google")
            second, token = await self._authenticate_2fa_step(_text(code, "2FA code"), pending)
            result = _merge_auth(result, second)
            await self._adopt_session(result, token, "Authenticate2FA")
        else:
            await self._adopt_session(result, token)
        return result

    def _check_session(self, method: str, result: AuthResult, token: str | None) -> None:
        """Refuse a login answer without a token when the client cannot sign instead."""
        if token is not None:
            return
        reason = ""
        if self._auth_mode == "session":
            reason = "; auth='auto' or 'per_request' signs each request instead"
        elif not self._require_credentials().uses_api_key:
            reason = ", and signing each request needs an API key"
        else:
            return
        raise AuthenticationError(
            f"{method}: the exchange did not open a session"
            + (f" ({result.errormsg})" if result.errormsg else "")
            + reason,
            method=method,
            errormsg=result.errormsg,
        )

    async def _adopt_session(
        self, result: AuthResult, token: str | None, method: str = "AuthenticateUser"
    ) -> None:
        """Adopt the user and account of a successful login, then publish the token (or,
        without one, start signing each private request)."""
        self._check_session(method, result, token)
        user = result.user
        user_id = (user.user_id if user is not None and user.user_id else None) or result.user_id
        if not user_id and self._credentials is not None and self._credentials.user_id:
            with contextlib.suppress(ValueError):
                user_id = int(self._credentials.user_id)
        account_id = self._configured_account_id
        if account_id is None and user is not None and user.account_id:
            account_id = user.account_id
        if account_id is None:
            # Asked before the token is published so no coroutine sees a session without
            # an account.
            payload: dict[str, Any] = {"OMSId": self._oms_id}
            if user_id:
                payload["UserId"] = user_id
            headers = {"aptoken": token} if token else self._require_credentials().signed_headers()
            data = await self._transport.call(
                "GetUserAccounts", payload, headers=headers, use_session=False
            )
            accounts = _int_list("GetUserAccounts", data)
            if not accounts:
                raise ConfigurationError("the authenticated user has no account")
            account_id = accounts[0]
        self._user_id = user_id or None
        self._account_id = account_id
        self._signing = token is None
        self._transport.set_session_token(token)

    async def authenticate_user(self) -> AuthResult:
        """Send ``AuthenticateUser`` with the configured credentials (one step only).

        If the exchange opens a session, the client is authenticated.  If it asks for 2FA,
        the result has ``requires_2fa=True`` and :meth:`authenticate_2fa` completes the login.
        """
        self._require_credentials()
        async with self._auth_lock:
            try:
                result, token, pending = await self._authenticate_user_step()
                if token is None and result.requires_2fa:
                    self._pending_2fa = (result, pending)
                else:
                    self._pending_2fa = None
                    await self._adopt_session(result, token)
                    self._last_auth = result
            except Exception as exc:
                self._auth_failure = exc
                raise
            else:
                self._auth_failure = None
                return result
            finally:
                self._auth_epoch += 1

    async def authenticate_2fa(self, code: str) -> AuthResult:
        """Send ``Authenticate2FA`` with ``code`` after :meth:`authenticate_user` asked for it."""
        code = _text(code, "code")
        async with self._auth_lock:
            if self._pending_2fa is None:
                raise InvalidInputError("no pending 2FA login: call authenticate_user() first")
            first, pending = self._pending_2fa
            try:
                second, token = await self._authenticate_2fa_step(code, pending)
                result = _merge_auth(first, second)
                await self._adopt_session(result, token, "Authenticate2FA")
            except Exception as exc:
                self._auth_failure = exc
                raise
            else:
                self._pending_2fa = None
                self._last_auth = result
                self._auth_failure = None
                return result
            finally:
                self._auth_epoch += 1

    async def log_out(self) -> GenericResult:
        """End the session (``LogOut``); a no-op success when there is no session.

        When private calls are signed per request there is no session to end: the client
        only stops signing (the next private call logs in again).
        """
        self._signing = False
        if not self._transport.has_session:
            return GenericResult(result=True)
        try:
            data = await self._transport.call("LogOut", {}, retry=False)
        finally:
            self._transport.set_session_token(None)
        return self._decode("LogOut", data, GenericResult)

    # -- call plumbing --------------------------------------------------------------------

    def _public(self, method: str, payload: Mapping[str, Any]) -> Coroutine[Any, Any, Any]:
        # A plain function handing back the transport's coroutine: one frame less per call.
        return self._transport.call(method, payload, http=self._read_http)

    async def _private(
        self, method: str, build: Callable[[], Mapping[str, Any]], *, write: bool = False
    ) -> Any:
        """Call a private method: lazy login, one shared re-login on errorcode 20 / 401.

        ``build`` makes the payload after login (it may need the account id).  Without a
        session token each attempt carries freshly signed headers (a new nonce).
        """
        self._require_credentials()
        for attempt in (1, 2):
            epoch = self._auth_epoch
            if not self.is_authenticated:
                await self._refresh_session(epoch)
                epoch = self._auth_epoch
            payload = build()
            try:
                return await self._transport.call(
                    method,
                    payload,
                    write=write,
                    http="POST" if write else self._read_http,
                    headers=self._signed_headers(),
                )
            except AuthenticationError:
                # "Not authorized" means the call was refused, so repeating it (even a
                # write) cannot duplicate it.
                if attempt == 2:
                    raise
                await self._refresh_session(epoch)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _account_call(
        self,
        method: str,
        account_id: int | None,
        fields: Mapping[str, Any] | None = None,
        *,
        write: bool = False,
    ) -> Any:
        """Call a private method with ``OMSId``, ``AccountId`` (resolved after login) and
        ``fields``."""

        def build() -> dict[str, Any]:
            return {"OMSId": self._oms_id, "AccountId": self._account(account_id), **(fields or {})}

        return await self._private(method, build, write=write)

    def _user_payload(self) -> dict[str, Any]:
        """``OMSId`` and, once known, the logged-in ``UserId``."""
        payload: dict[str, Any] = {"OMSId": self._oms_id}
        if self._user_id is not None:
            payload["UserId"] = self._user_id
        return payload

    def _account(self, account_id: int | None) -> int:
        if account_id is not None:
            return _positive_id(account_id, "account_id")
        if self._account_id is None:
            raise ConfigurationError("no account id: authentication returned none")
        return self._account_id

    def _decode(self, method: str, data: Any, cls: type[T], *, write: bool = False) -> T:
        return read_answer(method, lambda: _wire.structure(data, cls), write=write)

    def _decode_list(self, method: str, data: Any, cls: type[T]) -> list[T]:
        return read_answer(method, lambda: _wire.structure_list(data, cls), write=False)

    def stream(self, **options: Any) -> Stream:
        """One WebSocket to the exchange's ``/WSGateway`` (``async with client.stream()``).

        Options are those of :class:`kiiex_async.stream.Stream` (``ws_url``, ``ping_interval``...).
        """
        from .stream import Stream

        login = None
        if self._credentials is not None:
            credentials = self._credentials
            login = functools.partial(self._login_payload, credentials)
        return Stream(self, login=login, **options)

    # -- system ---------------------------------------------------------------------------

    async def ping(self) -> Pong:
        """``Ping``: check the endpoint answers."""
        return self._decode("Ping", await self._public("Ping", {}), Pong)

    # -- user -----------------------------------------------------------------------------

    async def get_user_accounts(self) -> list[int]:
        """``GetUserAccounts``: the ids of the accounts of the logged-in user."""
        data = await self._private("GetUserAccounts", self._user_payload)
        return _int_list("GetUserAccounts", data)

    async def get_user_info(self) -> UserInfo:
        """``GetUserInfo``: the logged-in user."""
        data = await self._private("GetUserInfo", self._user_payload)
        return self._decode("GetUserInfo", data, UserInfo)

    # -- products and market data (public) ------------------------------------------------

    async def get_products(self) -> list[Product]:
        """``GetProducts``: every asset of the exchange."""
        data = await self._public("GetProducts", {"OMSId": self._oms_id})
        return self._decode_list("GetProducts", data, Product)

    async def get_instruments(self) -> list[Instrument]:
        """``GetInstruments``: every tradable pair (also refreshes :meth:`find_instrument`'s
        cache)."""
        data = await self._public("GetInstruments", {"OMSId": self._oms_id})
        instruments = self._decode_list("GetInstruments", data, Instrument)
        self._instruments = instruments
        return instruments

    async def get_instrument(self, instrument_id: int) -> Instrument:
        """``GetInstrument``: one pair with its increments and minimum quantity."""
        payload = {
            "OMSId": self._oms_id,
            "InstrumentId": _positive_id(instrument_id, "instrument_id"),
        }
        return self._decode(
            "GetInstrument", await self._public("GetInstrument", payload), Instrument
        )

    async def find_instrument(self, a: str, b: str, *, refresh: bool = False) -> Instrument:
        """The instrument trading symbols ``a`` and ``b`` in either orientation.

        Instruments are fetched once and cached (``refresh=True`` fetches them again).
        Raises :class:`~kiiex_async.errors.InvalidInputError` when there is none.
        """
        _text(a, "a")
        _text(b, "b")
        instruments = self._instruments
        if instruments is None or refresh:
            instruments = await self.get_instruments()
        return pricing.find_instrument(instruments, a, b)

    async def get_level1(self, instrument_id: int) -> Level1:
        """``GetLevel1``: best bid/offer and daily statistics of one instrument."""
        payload = {
            "OMSId": self._oms_id,
            "InstrumentId": _positive_id(instrument_id, "instrument_id"),
        }
        return self._decode("GetLevel1", await self._public("GetLevel1", payload), Level1)

    async def get_level1_summary_min(
        self,
        instrument_ids: Sequence[int] | None = None,
        *,
        base_currency: str | None = None,
        quote_currency: str | None = None,
        columns: Literal["node", "python"] = "node",
    ) -> list[Level1Summary]:
        """``GetLevel1SummaryMin``: last price and 24 h change of many instruments.

        Ask by ``instrument_ids`` and/or, as KIIEX's guide does, by ``base_currency`` and
        ``quote_currency`` (symbols such as ``"COPM"``, ``"USDT"``; sent as
        ``BaseCurrency``/``QuoteCurrency``).  ``columns`` names the row layout (the two
        AlphaPoint SDKs disagree; see :func:`kiiex_async._wire.parse_level1_summary`).
        """
        if columns not in ("node", "python"):
            raise InvalidInputError("columns must be 'node' or 'python'")
        payload: dict[str, Any] = {"OMSId": self._oms_id}
        if base_currency is not None:
            payload["BaseCurrency"] = _text(base_currency, "base_currency").strip()
        if quote_currency is not None:
            payload["QuoteCurrency"] = _text(quote_currency, "quote_currency").strip()
        if instrument_ids is not None:
            if isinstance(instrument_ids, str | bytes):
                raise InvalidInputError("instrument_ids must be a sequence of ints")
            ids = [_positive_id(i, "instrument id") for i in instrument_ids]
            payload["InstrumentIds"] = "[" + ",".join(str(i) for i in ids) + "]"
        data = await self._public("GetLevel1SummaryMin", payload)
        return _shaped(
            "GetLevel1SummaryMin",
            lambda: _wire.parse_level1_summary(data, columns=columns),
            write=False,
        )

    async def get_l2_snapshot(self, instrument_id: int, *, depth: int = 100) -> L2Snapshot:
        """``GetL2Snapshot``: the order book, bids best first, asks best first."""
        instrument_id = _positive_id(instrument_id, "instrument_id")
        payload = {
            "OMSId": self._oms_id,
            "InstrumentId": instrument_id,
            "Depth": _positive_id(depth, "depth"),
        }
        data = await self._public("GetL2Snapshot", payload)
        return _shaped(
            "GetL2Snapshot", lambda: _wire.parse_l2_snapshot(data, instrument_id), write=False
        )

    async def get_ticker_history(
        self,
        instrument_id: int,
        *,
        interval: int,
        from_date: dt.datetime,
        to_date: dt.datetime,
    ) -> list[TickerBar]:
        """``GetTickerHistory``: OHLCV bars of ``interval`` seconds between two instants.

        ``from_date`` and ``to_date`` must be timezone-aware; they are sent in UTC as
        ``YYYY-MM-DDTHH:MM:SS``.  Rows are parsed by
        :func:`kiiex_async._wire.parse_ticker_history`.
        """
        instrument_id = _positive_id(instrument_id, "instrument_id")
        seconds = _positive_id(interval, "interval")
        start = _utc_text(from_date, "from_date")
        end = _utc_text(to_date, "to_date")
        if from_date > to_date:
            raise InvalidInputError("from_date must not be after to_date")
        payload = {
            "OMSId": self._oms_id,
            "InstrumentId": instrument_id,
            "Interval": seconds,
            "FromDate": start,
            "ToDate": end,
        }
        data = await self._public("GetTickerHistory", payload)
        return _shaped("GetTickerHistory", lambda: _wire.parse_ticker_history(data), write=False)

    async def get_quote(
        self,
        instrument_id: int,
        *,
        side: Side,
        base_quantity: Amount | None = None,
        quote_amount: Amount | None = None,
        depth: int = 100,
    ) -> pricing.Quote:
        """Price an order of ``side`` against the current book (``GetL2Snapshot``).

        Pass exactly one of ``base_quantity`` / ``quote_amount``; see
        :func:`kiiex_async.pricing.quote`.
        """
        side = _member(side, Side, "side", frozenset({Side.BUY, Side.SELL}))
        if (base_quantity is None) == (quote_amount is None):
            raise InvalidInputError("pass exactly one of base_quantity and quote_amount")
        if base_quantity is not None:
            base_quantity = pricing.check_amount(base_quantity, name="base_quantity")
        if quote_amount is not None:
            quote_amount = pricing.check_amount(quote_amount, name="quote_amount")
        book = await self.get_l2_snapshot(instrument_id, depth=depth)
        return pricing.quote(
            book, side=side, base_quantity=base_quantity, quote_amount=quote_amount
        )

    # -- account --------------------------------------------------------------------------

    async def get_account_positions(self, *, account_id: int | None = None) -> list[Position]:
        """``GetAccountPositions``: the balance (``amount``, ``hold``) of every product."""
        _optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call("GetAccountPositions", account_id)
        return self._decode_list("GetAccountPositions", data, Position)

    async def get_account_transactions(
        self, *, account_id: int | None = None, depth: int | None = None
    ) -> list[AccountTransaction]:
        """``GetAccountTransactions``: the account's ledger (credits, debits, balances),
        at most ``depth`` entries when given."""
        _optional_int(account_id, "account_id", minimum=1)
        limit = _optional_int(depth, "depth", minimum=1)
        fields = {} if limit is None else {"Depth": limit}
        data = await self._account_call("GetAccountTransactions", account_id, fields)
        return self._decode_list("GetAccountTransactions", data, AccountTransaction)

    # -- orders ---------------------------------------------------------------------------

    async def send_order(
        self,
        instrument_id: int,
        side: Side,
        quantity: Amount | None = None,
        *,
        order_type: OrderType = OrderType.MARKET,
        time_in_force: TimeInForce = TimeInForce.GTC,
        limit_price: Amount | None = None,
        value: Amount | None = None,
        client_order_id: int = 0,
        account_id: int | None = None,
        post_only: bool = False,
        stop_price: Amount | None = None,
        instrument: Instrument | None = None,
    ) -> SendOrderResult:
        """``SendOrder`` (a WRITE: sent once, never retried after it may have arrived).

        Amounts are ``Decimal`` (or ``int``/``str``), finite and > 0; floats are refused.
        A market buy may give ``value`` (quote amount to spend) instead of ``quantity``.
        Limit orders need ``limit_price``, stop orders ``stop_price``.  With ``instrument``
        the quantity and prices are rounded down to its increments and checked against its
        minimum.  ``"Accepted"`` means received, not filled: poll :meth:`get_order_status`.
        Raises :class:`~kiiex_async.errors.UnknownOutcomeError` when the order may or may not
        exist; reconcile with ``get_orders_history(client_order_id=...)``.
        """
        instrument_id = _positive_id(instrument_id, "instrument_id")
        side = _member(side, Side, "side", frozenset({Side.BUY, Side.SELL}))
        order_type = _member(order_type, OrderType, "order_type", _SUPPORTED_TYPES)
        time_in_force = _member(time_in_force, TimeInForce, "time_in_force")
        if time_in_force is TimeInForce.UNKNOWN:
            raise InvalidInputError("time_in_force must not be UNKNOWN")
        client_order_id = _client_order_id(client_order_id)
        _optional_int(account_id, "account_id", minimum=1)
        if not isinstance(post_only, bool):
            raise InvalidInputError("post_only must be a bool")
        qty: Decimal | None = None
        spend: Decimal | None = None
        if value is not None:
            if order_type is not OrderType.MARKET or side is not Side.BUY:
                raise InvalidInputError("value (an amount to spend) is only for market buys")
            if quantity is not None:
                raise InvalidInputError("pass quantity or value, not both")
            spend = pricing.check_amount(value, name="value")
        elif quantity is None:
            raise InvalidInputError("quantity is required (or value, for a market buy)")
        else:
            qty = pricing.check_amount(quantity, name="quantity")
        limit = _order_price(limit_price, "limit_price", order_type, _LIMIT_TYPES)
        stop = _order_price(stop_price, "stop_price", order_type, _STOP_TYPES)
        if post_only and order_type is not OrderType.LIMIT:
            raise InvalidInputError("post_only applies to LIMIT orders only")
        if instrument is not None:
            if not isinstance(instrument, Instrument):
                raise InvalidInputError("instrument must be an Instrument")
            if instrument.instrument_id != instrument_id:
                raise InvalidInputError(
                    f"instrument is {instrument.instrument_id}, not instrument_id {instrument_id}"
                )
            if qty is not None:
                qty = pricing.round_quantity(instrument, qty)
            if limit is not None:
                limit = pricing.round_price(instrument, limit, side=side)
            if stop is not None:
                stop = pricing.round_price(instrument, stop, side=side)

        def build() -> dict[str, Any]:
            return _order_payload(
                oms_id=self._oms_id,
                account_id=self._account(account_id),
                instrument_id=instrument_id,
                side=side,
                order_type=order_type,
                time_in_force=time_in_force,
                client_order_id=client_order_id,
                quantity=qty,
                value=spend,
                limit_price=limit,
                stop_price=stop,
                post_only=post_only,
            )

        data = await self._private("SendOrder", build, write=True)
        return self._decode("SendOrder", data, SendOrderResult, write=True)

    async def cancel_order(
        self,
        *,
        order_id: int | None = None,
        client_order_id: int | None = None,
        account_id: int | None = None,
    ) -> GenericResult:
        """``CancelOrder`` by ``order_id`` or by ``client_order_id`` (a WRITE).

        The answer only confirms receipt; check with :meth:`get_order_status`.
        """
        if (order_id is None) == (client_order_id is None):
            raise InvalidInputError("pass exactly one of order_id and client_order_id")
        if order_id is not None:
            _positive_id(order_id, "order_id")
        if client_order_id is not None:
            _client_order_id(client_order_id)
        _optional_int(account_id, "account_id", minimum=1)
        key = {"OrderId": order_id} if order_id is not None else {"ClOrderId": client_order_id}
        data = await self._account_call("CancelOrder", account_id, key, write=True)
        return self._decode("CancelOrder", data, GenericResult, write=True)

    async def cancel_all_orders(
        self, *, instrument_id: int | None = None, account_id: int | None = None
    ) -> GenericResult:
        """``CancelAllOrders`` (a WRITE, sent once): cancel the account's working orders,
        or only those of ``instrument_id``.

        The instrument goes out as ``InstrumentId`` and as ``IntrumentId`` (AlphaPoint's
        documented spelling, which ccxt sends): a server that read only the other one would
        otherwise cancel every order.  The answer only confirms receipt: check with
        :meth:`get_open_orders`.
        """
        instrument = _optional_int(instrument_id, "instrument_id", minimum=1)
        _optional_int(account_id, "account_id", minimum=1)
        fields = (
            {} if instrument is None else {"InstrumentId": instrument, "IntrumentId": instrument}
        )
        data = await self._account_call("CancelAllOrders", account_id, fields, write=True)
        return self._decode("CancelAllOrders", data, GenericResult, write=True)

    async def get_order_status(self, order_id: int, *, account_id: int | None = None) -> Order:
        """``GetOrderStatus``: one order (the answer may be an object or a 1-element array)."""
        order_id = _positive_id(order_id, "order_id")
        _optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call("GetOrderStatus", account_id, {"OrderId": order_id})
        if isinstance(data, list):
            orders = self._decode_list("GetOrderStatus", data, Order)
            matching = [o for o in orders if o.order_id == order_id] or orders[:1]
            if not matching:
                raise NotFoundError(
                    f"GetOrderStatus: order {order_id} not found",
                    method="GetOrderStatus",
                    errorcode=104,
                )
            return matching[0]
        return self._decode("GetOrderStatus", data, Order)

    async def get_open_orders(self, *, account_id: int | None = None) -> list[Order]:
        """``GetOpenOrders``: the account's working orders."""
        _optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call("GetOpenOrders", account_id)
        return self._decode_list("GetOpenOrders", data, Order)

    async def get_orders_history(
        self,
        *,
        account_id: int | None = None,
        client_order_id: int | None = None,
        instrument_id: int | None = None,
        start_timestamp: int | None = None,
        end_timestamp: int | None = None,
        depth: int | None = None,
        start_index: int | None = None,
    ) -> list[Order]:
        """``GetOrdersHistory``: past and present orders, filterable by ``client_order_id``."""
        _optional_int(account_id, "account_id", minimum=1)
        filters = {
            "ClientOrderId": None if client_order_id is None else _client_order_id(client_order_id),
            "InstrumentId": _optional_int(instrument_id, "instrument_id", minimum=1),
            "StartTimestamp": _optional_int(start_timestamp, "start_timestamp"),
            "EndTimestamp": _optional_int(end_timestamp, "end_timestamp"),
            "Depth": _optional_int(depth, "depth", minimum=1),
            "StartIndex": _optional_int(start_index, "start_index"),
        }
        given = {k: v for k, v in filters.items() if v is not None}
        data = await self._account_call("GetOrdersHistory", account_id, given)
        return self._decode_list("GetOrdersHistory", data, Order)

    async def get_order_history_by_order_id(self, order_id: int) -> list[Order]:
        """``GetOrderHistoryByOrderId``: every revision of one order."""
        order_id = _positive_id(order_id, "order_id")

        def build() -> dict[str, Any]:
            return {"OMSId": self._oms_id, "OrderId": order_id}

        data = await self._private("GetOrderHistoryByOrderId", build)
        return self._decode_list("GetOrderHistoryByOrderId", data, Order)

    async def get_trades_history(
        self,
        *,
        account_id: int | None = None,
        instrument_id: int | None = None,
        order_id: int | None = None,
        trade_id: int | None = None,
        start_timestamp: int | None = None,
        end_timestamp: int | None = None,
        depth: int | None = None,
        start_index: int | None = None,
    ) -> list[Trade]:
        """``GetTradesHistory``: the account's executions (fills, with fees)."""
        _optional_int(account_id, "account_id", minimum=1)
        filters = {
            "InstrumentId": _optional_int(instrument_id, "instrument_id", minimum=1),
            "OrderId": _optional_int(order_id, "order_id", minimum=1),
            "TradeId": _optional_int(trade_id, "trade_id", minimum=1),
            "StartTimestamp": _optional_int(start_timestamp, "start_timestamp"),
            "EndTimestamp": _optional_int(end_timestamp, "end_timestamp"),
            "Depth": _optional_int(depth, "depth", minimum=1),
            "StartIndex": _optional_int(start_index, "start_index"),
        }
        given = {k: v for k, v in filters.items() if v is not None}
        data = await self._account_call("GetTradesHistory", account_id, given)
        return self._decode_list("GetTradesHistory", data, Trade)

    # -- deposits -------------------------------------------------------------------------

    async def create_deposit_ticket(
        self,
        product_id: int,
        amount: Amount,
        *,
        account_id: int | None = None,
        asset_name: str = "",
        deposit_info: Mapping[str, str] | None = None,
        asset_manager_id: int = 1,
        operator_id: int = 1,
    ) -> DepositTicketCreated:
        """``CreateDepositTicket`` (a WRITE): ask for a (fiat) deposit to be credited."""
        product_id = _positive_id(product_id, "product_id")
        checked = pricing.check_amount(amount, name="amount")
        _optional_int(account_id, "account_id", minimum=1)
        asset_manager_id = _positive_id(asset_manager_id, "asset_manager_id")
        operator_id = _positive_id(operator_id, "operator_id")
        if not isinstance(asset_name, str):
            raise InvalidInputError("asset_name must be a str")
        if deposit_info is not None and not isinstance(deposit_info, Mapping):
            raise InvalidInputError("deposit_info must be a mapping")
        info = "" if deposit_info is None else _wire.dumps(deposit_info).decode()

        def build() -> dict[str, Any]:
            return {
                "OMSId": self._oms_id,
                "OperatorId": operator_id,
                "AccountId": self._account(account_id),
                "AssetManagerId": asset_manager_id,
                "AssetId": product_id,
                "AssetName": asset_name,
                "Amount": checked,
                "Status": 0,
                "DepositInfo": info,
            }

        data = await self._private("CreateDepositTicket", build, write=True)
        return self._decode("CreateDepositTicket", data, DepositTicketCreated, write=True)

    async def get_deposit_tickets(
        self, *, account_id: int | None = None, operator_id: int = 1
    ) -> list[DepositTicket]:
        """``GetDepositTickets``: the account's deposit tickets."""
        _optional_int(account_id, "account_id", minimum=1)
        operator_id = _positive_id(operator_id, "operator_id")

        def build() -> dict[str, Any]:
            return {
                "OMSId": self._oms_id,
                "OperatorId": operator_id,
                "AccountId": self._account(account_id),
            }

        data = await self._private("GetDepositTickets", build)
        return self._decode_list("GetDepositTickets", data, DepositTicket)

    async def get_deposit_ticket(
        self,
        *,
        request_code: str | None = None,
        ticket_id: int | None = None,
        account_id: int | None = None,
    ) -> DepositTicket:
        """``GetDepositTicket`` by ``request_code`` and/or ``ticket_id``."""
        lookup = _ticket_lookup(request_code, ticket_id)
        _optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call("GetDepositTicket", account_id, lookup)
        return self._decode("GetDepositTicket", data, DepositTicket)

    async def get_deposit_info(
        self, product_id: int, *, generate_new_key: bool = False, account_id: int | None = None
    ) -> DepositInfo:
        """``GetDepositInfo``: deposit addresses of a (crypto) product."""
        product_id = _positive_id(product_id, "product_id")
        if not isinstance(generate_new_key, bool):
            raise InvalidInputError("generate_new_key must be a bool")
        _optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call(
            "GetDepositInfo",
            account_id,
            {"ProductId": product_id, "GenerateNewKey": generate_new_key},
        )
        return self._decode("GetDepositInfo", data, DepositInfo)

    async def get_deposits(self, *, account_id: int | None = None) -> list[Deposit]:
        """``GetDeposits``: the account's deposits, with ticket status names."""
        _optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call("GetDeposits", account_id)
        return self._decode_list("GetDeposits", data, Deposit)

    # -- withdrawals ----------------------------------------------------------------------

    async def get_withdraws(self, *, account_id: int | None = None) -> list[Withdraw]:
        """``GetWithdraws``: the account's withdrawals, with ticket status names."""
        _optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call("GetWithdraws", account_id)
        return self._decode_list("GetWithdraws", data, Withdraw)

    async def get_withdraw_template_types(
        self, product_id: int, *, account_id: int | None = None
    ) -> list[WithdrawTemplateType]:
        """``GetWithdrawTemplateTypes``: the withdraw templates a product offers."""
        product_id = _positive_id(product_id, "product_id")
        _optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call(
            "GetWithdrawTemplateTypes", account_id, {"ProductId": product_id}
        )
        items = _ci_get(data, "TemplateTypes") if isinstance(data, Mapping) else data
        return self._decode_list(
            "GetWithdrawTemplateTypes", [] if items is None else items, WithdrawTemplateType
        )

    async def get_withdraw_template(
        self,
        product_id: int,
        template_type: str,
        *,
        account_id: int | None = None,
        account_provider_id: int | None = None,
    ) -> WithdrawTemplate:
        """``GetWithdrawTemplate``: the fields a withdrawal with ``template_type`` needs."""
        product_id = _positive_id(product_id, "product_id")
        template_type = _text(template_type, "template_type")
        _optional_int(account_id, "account_id", minimum=1)
        provider = _optional_int(account_provider_id, "account_provider_id", minimum=1)
        fields: dict[str, Any] = {"ProductId": product_id, "TemplateType": template_type}
        if provider is not None:
            fields["AccountProviderId"] = provider
        data = await self._account_call("GetWithdrawTemplate", account_id, fields)
        return self._decode("GetWithdrawTemplate", data, WithdrawTemplate)

    async def get_withdraw_fee(
        self, product_id: int, amount: Amount, *, account_id: int | None = None
    ) -> WithdrawFee:
        """``GetWithdrawFee``: the fee a withdrawal of ``amount`` would cost."""
        product_id = _positive_id(product_id, "product_id")
        checked = pricing.check_amount(amount, name="amount")
        _optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call(
            "GetWithdrawFee", account_id, {"ProductId": product_id, "Amount": checked}
        )
        return self._decode("GetWithdrawFee", data, WithdrawFee)

    async def create_withdraw_ticket(
        self,
        product_id: int,
        amount: Amount,
        *,
        template_type: str,
        template_form: Mapping[str, str],
        account_id: int | None = None,
    ) -> GenericResult:
        """``CreateWithdrawTicket`` (a WRITE): ask for ``amount`` to leave the account.

        ``template_form`` is sent as a JSON object, as KIIEX's guide and AlphaPoint's docs
        show it, or as JSON text with ``KiiexClient(template_form_as="string")`` (as ccxt
        sends it).  The answer only confirms receipt: follow the ticket with
        :meth:`get_withdraw_tickets`.
        """
        product_id = _positive_id(product_id, "product_id")
        checked = pricing.check_amount(amount, name="amount")
        template_type = _text(template_type, "template_type")
        if not isinstance(template_form, Mapping):
            raise InvalidInputError("template_form must be a mapping of field name to value")
        text = _wire.dumps(template_form).decode()  # also refuses what cannot be sent
        form: str | dict[str, Any] = (
            text if self._template_form_as == "string" else dict(template_form)
        )
        _optional_int(account_id, "account_id", minimum=1)
        fields = {
            "ProductId": product_id,
            "Amount": checked,
            "TemplateType": template_type,
            "TemplateForm": form,
        }
        data = await self._account_call("CreateWithdrawTicket", account_id, fields, write=True)
        return self._decode("CreateWithdrawTicket", data, GenericResult, write=True)

    async def get_withdraw_tickets(
        self, *, account_id: int | None = None, start_index: int = 0, limit: int = 200
    ) -> list[WithdrawTicket]:
        """``GetWithdrawTickets``: the account's withdraw tickets (index 0 is the oldest)."""
        _optional_int(account_id, "account_id", minimum=1)
        start = _optional_int(start_index, "start_index")
        count = _positive_id(limit, "limit")
        data = await self._account_call(
            "GetWithdrawTickets", account_id, {"StartIndex": start, "Limit": count}
        )
        return self._decode_list("GetWithdrawTickets", data, WithdrawTicket)

    async def get_withdraw_ticket(
        self,
        *,
        request_code: str | None = None,
        ticket_id: int | None = None,
        account_id: int | None = None,
    ) -> WithdrawTicket:
        """``GetWithdrawTicket`` by ``request_code`` and/or ``ticket_id``."""
        lookup = _ticket_lookup(request_code, ticket_id)
        _optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call("GetWithdrawTicket", account_id, lookup)
        return self._decode("GetWithdrawTicket", data, WithdrawTicket)


def _shared(exc: Exception) -> Exception:
    """A copy of another coroutine's login failure, so each waiter raises its own object."""
    try:
        return copy.copy(exc)
    except Exception:
        return exc


def _utc_text(value: object, name: str) -> str:
    """An aware datetime as the UTC ``YYYY-MM-DDTHH:MM:SS`` AlphaPoint reads."""
    if not isinstance(value, dt.datetime):
        raise InvalidInputError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{name} must be timezone-aware (for UTC: tzinfo=datetime.UTC)")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")


def _ticket_lookup(request_code: str | None, ticket_id: int | None) -> dict[str, Any]:
    if request_code is None and ticket_id is None:
        raise InvalidInputError("pass request_code or ticket_id")
    lookup: dict[str, Any] = {}
    if request_code is not None:
        lookup["RequestCode"] = _text(request_code, "request_code")
    if ticket_id is not None:
        lookup["TicketId"] = _positive_id(ticket_id, "ticket_id")
    return lookup


def _merge_auth(first: AuthResult, second: AuthResult) -> AuthResult:
    """The result of a 2FA login: the second answer, completed by the first."""
    return AuthResult(
        authenticated=second.authenticated,
        user=second.user if second.user is not None else first.user,
        user_id=second.user_id if second.user_id is not None else first.user_id,
        locked=second.locked,
        requires_2fa=False,
        two_fa_type=first.two_fa_type,
        auth_type=first.auth_type,
        errormsg=second.errormsg,
    )


def _int_list(method: str, data: Any) -> list[int]:
    if not isinstance(data, list):
        raise DecodeError(
            f"{method}: expected a JSON array, got {type(data).__name__}", method=method
        )
    result: list[int] = []
    for item in data:
        if isinstance(item, bool):
            raise DecodeError(f"{method}: expected integers", method=method)
        try:
            number = int(item)
        except (TypeError, ValueError):
            raise DecodeError(f"{method}: expected integers", method=method) from None
        if isinstance(item, Decimal) and not (item.is_finite() and number == item):
            raise DecodeError(f"{method}: expected integers", method=method)
        result.append(number)
    return result


def _shaped(method: str, convert: Callable[[], T], *, write: bool) -> T:
    """Run ``convert`` on an answer under :func:`~kiiex_async._pipeline.read_answer`'s rule."""
    return read_answer(method, convert, write=write)
