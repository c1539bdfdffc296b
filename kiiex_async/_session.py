"""Authentication of :class:`~kiiex_async.KiiexClient` and the plumbing of private calls.

:class:`SessionMixin` owns the login state of a client: the lazy login (API key or username
and password, 2FA through ``Credentials.two_factor`` or :meth:`~SessionMixin.authenticate_user`
then :meth:`~SessionMixin.authenticate_2fa`), adopting the session token or, when the login
answer has none, signing every private request (``APIKey``, ``Signature``, ``UserId`` and a
fresh ``Nonce`` per attempt), the single-flight re-login shared by every coroutine that
met "not authorized" at the same moment, and ``log_out``.  It also owns how an endpoint
calls: :meth:`~SessionMixin._public`, :meth:`~SessionMixin._private` and
:meth:`~SessionMixin._account_call`, with their per-call ``timeout=`` budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from collections.abc import Callable, Coroutine, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from . import _validate as check
from . import _wire
from ._pipeline import HttpMethod, Pipeline
from ._rules import check_timeout
from .auth import Credentials, TwoFactorProvider
from .errors import (
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    InvalidInputError,
    RequestTimeout,
    TwoFactorRequiredError,
)
from .models import AuthResult, GenericResult, UserInfo

__all__ = ["AuthMode", "SessionMixin", "merge_auth", "pending_2fa_token", "two_factor_code"]

log = logging.getLogger("kiiex_async.client")

T = TypeVar("T")

#: How private calls are authenticated: ``"auto"`` follows the login answer (its session
#: token if it has one, else AlphaPoint's signed headers on every request), ``"session"``
#: requires a session token, ``"per_request"`` signs every request.
AuthMode = Literal["auto", "session", "per_request"]


class SessionMixin:
    """Login state and call plumbing of :class:`~kiiex_async.KiiexClient` (see the module
    docstring); the client's ``__init__`` sets every attribute declared here."""

    _oms_id: int
    _configured_account_id: int | None
    _credentials: Credentials | None
    _auth_mode: AuthMode
    _signing: bool
    _read_http: HttpMethod
    _transport: Pipeline
    _account_id: int | None
    _user_id: int | None
    _auth_lock: asyncio.Lock
    _auth_epoch: int
    _auth_failure: Exception | None
    _last_auth: AuthResult | None
    _pending_2fa: tuple[AuthResult, str | None] | None

    if TYPE_CHECKING:
        # Structuring answers is the client's (kiiex_async.client).

        def _decode(self, method: str, data: Any, cls: type[T], *, write: bool = False) -> T: ...

        def _decode_list(self, method: str, data: Any, cls: type[T]) -> list[T]: ...

        def _structure(self, method: str, convert: Callable[[], T]) -> T: ...

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
            "AuthenticateUser", self._login_payload(credentials), use_session=False, secret=True
        )
        result = self._decode("AuthenticateUser", data, AuthResult)
        return result, self._token(data), pending_2fa_token(data)

    async def _authenticate_2fa_step(
        self, code: str, pending: str | None
    ) -> tuple[AuthResult, str | None]:
        headers = {"Pending2FaToken": pending} if pending else None
        data = await self._transport.call(
            "Authenticate2FA",
            {"Code": code},
            headers=headers,
            use_session=False,
            retry=False,
            secret=True,
        )
        return self._decode("Authenticate2FA", data, AuthResult), self._token(data)

    async def _login(self) -> AuthResult:
        credentials = self._require_credentials()
        self._pending_2fa = None
        result, token, pending = await self._authenticate_user_step()
        if token is None and result.requires_2fa:
            code = await two_factor_code(credentials.two_factor, result, "AuthenticateUser")
            second, token = await self._authenticate_2fa_step(code, pending)
            result = merge_auth(result, second)
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
            credentials = self._require_credentials()
            data = await self._transport.call(
                "GetUserAccounts",
                payload,
                headers={"aptoken": token} if token else None,
                sign=None if token else credentials.signed_headers,
                use_session=False,
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
        code = check.text(code, "code")
        async with self._auth_lock:
            if self._pending_2fa is None:
                raise InvalidInputError("no pending 2FA login: call authenticate_user() first")
            first, pending = self._pending_2fa
            try:
                second, token = await self._authenticate_2fa_step(code, pending)
                result = merge_auth(first, second)
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

    def _public(
        self, method: str, payload: Mapping[str, Any], *, timeout: float | None = None
    ) -> Coroutine[Any, Any, Any]:
        # A plain function handing back the transport's coroutine: one frame less per call.
        return self._transport.call(method, payload, http=self._read_http, timeout=timeout)

    async def _private(
        self,
        method: str,
        build: Callable[[], Mapping[str, Any]],
        *,
        write: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """Call a private method: lazy login, one shared re-login on errorcode 20 / 401.

        ``build`` makes the payload after login (it may need the account id).  Without a
        session token each attempt carries freshly signed headers (a new nonce).
        ``timeout`` bounds the call's own attempts (what is left of it after a re-login);
        a login it waits for is shared with other callers and bounded by the client's
        timeouts.
        """
        self._require_credentials()
        budget = check_timeout(timeout)
        deadline = None if budget is None else time.monotonic() + budget
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
                    sign=self._signed_headers,
                    timeout=_remaining(method, deadline),
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
        timeout: float | None = None,
    ) -> Any:
        """Call a private method with ``OMSId``, ``AccountId`` (resolved after login) and
        ``fields``."""

        def build() -> dict[str, Any]:
            return {"OMSId": self._oms_id, "AccountId": self._account(account_id), **(fields or {})}

        return await self._private(method, build, write=write, timeout=timeout)

    def _user_payload(self) -> dict[str, Any]:
        """``OMSId`` and, once known, the logged-in ``UserId``."""
        payload: dict[str, Any] = {"OMSId": self._oms_id}
        if self._user_id is not None:
            payload["UserId"] = self._user_id
        return payload

    def _account(self, account_id: int | None) -> int:
        if account_id is not None:
            return check.positive_id(account_id, "account_id")
        if self._account_id is None:
            raise ConfigurationError("no account id: authentication returned none")
        return self._account_id

    # -- user -----------------------------------------------------------------------------

    async def get_user_accounts(self, *, timeout: float | None = None) -> list[int]:
        """``GetUserAccounts``: the ids of the accounts of the logged-in user."""
        data = await self._private("GetUserAccounts", self._user_payload, timeout=timeout)
        return _int_list("GetUserAccounts", data)

    async def get_user_info(self, *, timeout: float | None = None) -> UserInfo:
        """``GetUserInfo``: the logged-in user."""
        data = await self._private("GetUserInfo", self._user_payload, timeout=timeout)
        return self._decode("GetUserInfo", data, UserInfo)


def _ci_get(data: object, name: str) -> Any:
    """Read ``name`` from a JSON object, ignoring key case."""
    if not isinstance(data, Mapping):
        return None
    wanted = name.lower()
    for key, value in data.items():
        if isinstance(key, str) and key.lower() == wanted:
            return value
    return None


def _remaining(method: str, deadline: float | None) -> float | None:
    """What is left of a call's budget; none left means the request is not sent."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise RequestTimeout(
            f"{method}: the call's timeout was spent before it was sent", method=method
        )
    return left


def _shared(exc: Exception) -> Exception:
    """A copy of another coroutine's login failure, so each waiter raises its own object."""
    try:
        return copy.copy(exc)
    except Exception:
        return exc


def pending_2fa_token(data: object) -> str | None:
    """The token a 2FA challenge hands back for ``Authenticate2FA``, if it has one."""
    pending = _ci_get(data, "Pending2FaToken") or _ci_get(data, "TwoFAToken") or None
    return pending if isinstance(pending, str) else None


async def two_factor_code(
    provider: TwoFactorProvider | None, challenge: AuthResult, method: str
) -> str:
    """A code from ``provider`` for the 2FA type ``challenge`` names (Google by default).

    Without a provider the login cannot go on: :class:`TwoFactorRequiredError`.
    """
    if provider is None:
        raise TwoFactorRequiredError(
            f"{method}: the exchange asks for a 2FA code and credentials.two_factor is not set",
            method=method,
        )
    code = await provider(challenge.two_fa_type or challenge.auth_type or "Google")
    return check.text(code, "2FA code")


def merge_auth(first: AuthResult, second: AuthResult) -> AuthResult:
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
