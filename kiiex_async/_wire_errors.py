"""The error table: an HTTP status and a decoded body mapped to the matching ``ApiError``.

:func:`api_error` decides success or failure and the error class (rate limit,
authentication, not found, rejected, insufficient funds...) from the status and the
body's ``result``/``errorcode``/``status``/``authenticated`` keys; :func:`session_token`
finds the token of a login answer.  Part of :mod:`kiiex_async._wire`, which re-exports
the public names.
"""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from . import errors
from ._wire_scalars import _norm, _to_bool, _to_int

__all__ = ["api_error", "session_token"]

_AUTH_METHODS = frozenset(
    {"authenticateuser", "authenticate2fa", "authenticate", "webauthenticateuser"}
)
_OPERATION_IN_PROCESS = 107
_REJECTED_CODES = frozenset({100, 101, 106})
_CODE_NAMES = {
    20: "Not Authorized",
    100: "Invalid Request",
    101: "Operation Failed",
    102: "Server Error",
    104: "Resource Not Found",
    106: "Operation Not Supported",
}
_STATUSCODE_CLASSES: dict[int, type[errors.ApiError]] = {
    32: errors.AuthenticationError,  # ticket calls: Not Authorized
    33: errors.NotFoundError,  # ticket calls: Asset_Manager_Not_Found
}
_INTERESTING = frozenset(
    {
        "result",
        "errorcode",
        "errormsg",
        "detail",
        "status",
        "statuscode",
        "authenticated",
        "requires2fa",
        "locked",
        "message",
    }
)

# A 2xx/3xx body is an error only through one of these keys (any casing): without them
# ``failed`` below cannot become true.  Keys already seen not to be one are remembered.
_DECIDING = frozenset({"result", "status", "authenticated"})
_NOT_DECIDING: set[Any] = set()
_NOT_DECIDING_LIMIT = 4096


def _cannot_fail(payload: Any) -> bool:
    """True when a body with a 2xx/3xx status is certainly a success (the common case)."""
    if type(payload) is not dict:
        return not isinstance(payload, Mapping)
    if _NOT_DECIDING.issuperset(payload):
        return True
    for key in payload:
        if isinstance(key, str) and key.lower() in _DECIDING:
            return False
    if len(_NOT_DECIDING) < _NOT_DECIDING_LIMIT:
        _NOT_DECIDING.update(payload)
    return True


def _code(value: Any) -> int | None:
    try:
        return None if value is None or isinstance(value, bool) else _to_int(value)
    except errors.DecodeError:
        return None


def _text(value: Any) -> str:
    if value is None or isinstance(value, Mapping | list):
        return ""
    return " ".join(str(value).split())[:300]


def _flag(value: Any) -> bool | None:
    try:
        return None if value is None else _to_bool(value)
    except errors.DecodeError:
        return None


def api_error(method: str, status: int, payload: Any) -> errors.ApiError | None:
    """Map an HTTP status and a decoded body to the matching error, or ``None`` for success.

    Pure.  HTTP 429, 401/403, 5xx and 404 decide the class by themselves; otherwise the
    body does: ``{result: false, errorcode}`` (107 "Operation In Process" is
    :class:`~kiiex_async.errors.OperationInProcessError`: busy, a read retries it),
    ``{status: "Rejected"}`` (SendOrder), ``{result: true, errorcode: 100, detail:
    "Insufficient Balance"}`` (CreateWithdrawTicket, sic; with ``result: true`` only a
    documented errorcode fails), ``{authenticated: false}``.  Any
    other 4xx is a plain :class:`~kiiex_async.errors.ApiError`.  The message reads
    ``"<Method>: <errormsg> (<detail>) [errorcode N]"``.
    """
    if status < 400 and _cannot_fail(payload):
        return None
    fields: dict[str, Any] = {}
    if isinstance(payload, Mapping):
        for key, value in payload.items():
            if isinstance(key, str):
                lowered = key.lower()
                if lowered in _INTERESTING:
                    fields[lowered] = value
    errorcode = _code(fields.get("errorcode"))
    statuscode = _code(fields.get("statuscode"))
    errormsg = _text(fields.get("errormsg")) or _text(fields.get("message"))
    detail = _text(fields.get("detail"))
    result = _flag(fields.get("result"))
    rejected = (
        isinstance(fields.get("status"), str)
        and fields["status"].strip().lower() == "rejected"
        and bool(errormsg or errorcode is not None)
    )
    unauthenticated = (
        _flag(fields.get("authenticated")) is False and _flag(fields.get("requires2fa")) is not True
    )
    failed = (
        rejected
        or unauthenticated
        or (result is False and (errorcode is not None or bool(errormsg)))
        # ``result: true`` fails only with a documented code (SLATE's insufficient
        # balance is 100): KIIEX's guide shows ``{result: true, errorcode: 1}`` for a
        # request it accepted, and calling an applied write failed could get it resent.
        or (result is True and errorcode in _CODE_NAMES)
    )

    cls: type[errors.ApiError] | None
    if status == 429:
        cls = errors.RateLimitedError
    elif status in (401, 403):
        cls = errors.AuthenticationError
    elif status >= 500:
        cls = errors.ServerError
    elif status == 404:
        cls = errors.NotFoundError
    elif failed:
        cls = _classify(errorcode, statuscode, f"{errormsg} {detail}".lower(), rejected)
        if unauthenticated:
            cls = errors.AuthenticationError
    elif status >= 400:
        cls = errors.AuthenticationError if method.lower() in _AUTH_METHODS else errors.ApiError
    else:
        return None

    if unauthenticated and not errormsg:
        errormsg = "authentication failed"
    if unauthenticated and _flag(fields.get("locked")):
        detail = detail or "the account is locked"
    message = _message(method, status, errormsg, detail, errorcode, statuscode)
    kwargs: dict[str, Any] = {
        "method": method,
        "status": status,
        "errorcode": errorcode,
        "errormsg": errormsg or None,
        "detail": detail or None,
    }
    if cls is errors.RateLimitedError:
        return errors.RateLimitedError(message, **kwargs)
    return cls(message, **kwargs)


def _classify(
    errorcode: int | None, statuscode: int | None, text: str, rejected: bool
) -> type[errors.ApiError]:
    if errorcode == _OPERATION_IN_PROCESS:
        return errors.OperationInProcessError
    if "insufficient" in text or "not_enough_funds" in text or "not enough funds" in text:
        return errors.InsufficientFundsError
    if errorcode == 20 or "not authorized" in text or "2facode" in text:
        return errors.AuthenticationError
    if errorcode == 104 or "not found" in text:
        return errors.NotFoundError
    if errorcode == 102:
        return errors.ServerError
    if errorcode is None and statuscode in _STATUSCODE_CLASSES:
        return _STATUSCODE_CLASSES[statuscode]
    if rejected or errorcode in _REJECTED_CODES:
        return errors.RejectedError
    return errors.ApiError


def _message(
    method: str,
    status: int,
    errormsg: str,
    detail: str,
    errorcode: int | None,
    statuscode: int | None,
) -> str:
    http_said = False
    if not errormsg:
        errormsg = _CODE_NAMES.get(errorcode or 0, "")
    if not errormsg:
        errormsg, http_said = _http_phrase(status), True
    parts = [f"{method}: {errormsg}"]
    if detail and detail != errormsg:
        parts.append(f"({detail})")
    if errorcode is not None:
        parts.append(f"[errorcode {errorcode}]")
    elif statuscode:
        parts.append(f"[statuscode {statuscode}]")
    if not http_said and not 200 <= status < 300:
        parts.append(f"[HTTP {status}]")
    return " ".join(parts)


def _http_phrase(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


_TOKEN_KEYS = frozenset({"sessiontoken", "aptoken"})


def session_token(payload: Any) -> str | None:
    """The session token of an authentication answer, if it carries a non-empty one.

    Looked for where AlphaPoint venues put it: a ``SessionToken`` (or ``APToken``) key in
    any casing, at the top level or inside the ``User`` object.  KIIEX's guide shows a
    login answer with none: the client then signs each request instead.
    """
    if not isinstance(payload, Mapping):
        return None
    token = _token_in(payload)
    if token is None:
        user = next(
            (v for k, v in payload.items() if isinstance(k, str) and _norm(k) == "user"), None
        )
        token = _token_in(user) if isinstance(user, Mapping) else None
    return token


def _token_in(data: Mapping[Any, Any]) -> str | None:
    for key, value in data.items():
        if isinstance(key, str) and _norm(key) in _TOKEN_KEYS:
            return value if isinstance(value, str) and value.strip() else None
    return None
