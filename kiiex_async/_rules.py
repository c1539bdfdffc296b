"""The rules of one call's answer, pure functions the pipeline and the stream apply.

This module owns, each in one place:

* the status → error table (:func:`interpret_response`, with
  :func:`kiiex_async._wire.api_error` for AlphaPoint's JSON error shapes);
* whether a failed attempt is retried, and after how long (:func:`retry_wait`,
  :func:`parse_retry_after` for a 429's ``Retry-After``);
* the rule for "this write's outcome is unknown" (:func:`outcome_error`) and for an answer
  that cannot be read (:func:`read_answer`);
* how a payload is written as a query string (:func:`query_params`) and what a time budget
  may be (:func:`check_timeout`).

Nothing here does I/O or keeps state: :mod:`kiiex_async._pipeline` runs the calls; the
client and the stream read answers with :func:`read_answer`.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import math
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from . import _wire
from .errors import (
    ApiError,
    AuthenticationError,
    ConnectError,
    DecodeError,
    InvalidInputError,
    KiiexError,
    RateLimitedError,
    RedirectError,
    RequestTimeout,
    ServerError,
    TransportError,
    UnknownOutcomeError,
)

__all__ = [
    "check_timeout",
    "interpret_response",
    "outcome_error",
    "parse_retry_after",
    "query_params",
    "read_answer",
    "retry_wait",
    "unreadable",
]

T = TypeVar("T")

_LOCATION_SHOWN: Final = 200


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
    method: str,
    status: int,
    body: bytes,
    *,
    retry_after: float | None = None,
    location: str | None = None,
) -> Any:
    """Decode a response body and raise the matching error, or return the payload (pure).

    This is the status → error table.  A 3xx is a
    :class:`~kiiex_async.errors.RedirectError` whatever its body (``location`` is its
    ``Location`` header).  JSON error shapes are mapped by
    :func:`kiiex_async._wire.api_error`.  A body that is not JSON (an HTML error page)
    raises :class:`~kiiex_async.errors.ServerError` for 5xx,
    :class:`~kiiex_async.errors.RateLimitedError` for 429,
    :class:`~kiiex_async.errors.AuthenticationError` for 401/403 and
    :class:`~kiiex_async.errors.DecodeError` otherwise, each with the HTTP status.
    """
    if 300 <= status < 400:
        shown = location if location is None else location[:_LOCATION_SHOWN]
        where = f" to {shown!r}" if shown else " (no Location)"
        raise RedirectError(
            f"{method}: HTTP {status} redirect{where} refused: the client never follows "
            "redirects (check the base URL)",
            method=method,
            status=status,
            location=location,
        )
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


def outcome_error(
    exc: Exception, method: str, *, write: bool, client_order_id: int | None = None
) -> Exception:
    """The error a failed call raises (pure): the one rule for "this write's outcome is unknown".

    For a write, anything that may have happened after the request was sent becomes
    :class:`~kiiex_async.errors.UnknownOutcomeError` (chained to ``exc``): a timeout, a
    dropped connection, an answer too large or unreadable, a 5xx (errorcode 102 and 107
    too), a 303, and any failure a custom transport raises that is not in the error tree.
    A refused connection (:class:`~kiiex_async.errors.ConnectError`), any other redirect and
    any other refusal by the exchange mean the write was not applied and pass through.  For
    a read, socket failures of a custom transport are mapped like the default transport's;
    anything else passes through.
    """
    if isinstance(exc, KiiexError):
        if not write or isinstance(exc, ConnectError | UnknownOutcomeError):
            return exc
        unknown = isinstance(exc, ServerError | DecodeError | TransportError) or (
            isinstance(exc, RedirectError) and exc.status == 303
        )
        if not unknown:
            return exc
    elif not write:
        if isinstance(exc, TimeoutError):
            return _chained(RequestTimeout(f"{method}: no answer in time", method=method), exc)
        if isinstance(exc, OSError):
            error = TransportError(f"{method}: connection failed ({exc!r})", method=method)
            return _chained(error, exc)
        return exc
    what = str(exc).removeprefix(f"{method}: ") or type(exc).__name__
    error = UnknownOutcomeError(
        f"{_unknown(method, client_order_id)} ({what})",
        method=method,
        client_order_id=client_order_id,
    )
    return _chained(error, exc)


def _unknown(method: str, client_order_id: int | None) -> str:
    which = "" if client_order_id is None else f" (ClientOrderId {client_order_id})"
    return (
        f"{method}{which}: the request was sent but its outcome is unknown; "
        "reconcile with the exchange before sending it again"
    )


def _chained(error: Exception, cause: BaseException | None) -> Exception:
    """``error`` as ``raise error from cause`` would leave it (``None``: hide the context)."""
    error.__cause__ = cause
    error.__suppress_context__ = True
    return error


def read_answer(method: str, convert: Callable[..., T], *args: Any, write: bool) -> T:
    """``convert(*args)`` on an answer that decoded as JSON; its failure mapped once (pure).

    The one rule for an answer that cannot be read (:func:`unreadable`).
    """
    try:
        return convert(*args)
    except Exception as exc:
        error = unreadable(method, exc, write=write)
        if error is exc:
            raise
        raise error  # unreadable set its cause (or hid the context)


def unreadable(method: str, exc: Exception, *, write: bool) -> Exception:
    """The error to raise when reading the answer of ``method`` failed with ``exc`` (pure).

    After a write the outcome is unknown (:func:`outcome_error`; a refusal that proves the
    write was not applied comes back as it is); after a read it is a
    :class:`~kiiex_async.errors.DecodeError` naming the method.  A new error comes
    chained as ``raise error from ...`` would leave it; ``exc`` itself comes back when it
    stands (re-raise it).  The details of a login answer are never shown: it carries the
    session token.
    """
    if write:
        return outcome_error(exc, method, write=True)
    if isinstance(exc, DecodeError) and exc.method is None:
        return _chained(DecodeError(f"{method}: {exc}", method=method), None)
    if isinstance(exc, KiiexError):
        return exc
    if method in _SECRET_ANSWERS:
        return _chained(DecodeError(f"{method}: unexpected answer shape", method=method), None)
    return _chained(
        DecodeError(
            f"{method}: unexpected answer shape ({type(exc).__name__}: {exc})", method=method
        ),
        exc,
    )


_SECRET_ANSWERS: Final = frozenset({"AuthenticateUser", "Authenticate2FA"})


def _client_order_id(payload: Mapping[str, Any]) -> int | None:
    value = payload.get("ClientOrderId")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _query_value(value: Any) -> str:
    """A query parameter: text as it is, anything else as the JSON body would write it."""
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return _wire.encode(value)


def query_params(payload: Mapping[str, Any]) -> dict[str, str]:
    """Render a request payload as query parameters (``None`` values are left out).

    Numbers, enums, lists and mappings are written by the JSON body's encoder
    (:func:`kiiex_async._wire.encode`): a ``Decimal`` reads the same in both, exact and
    without exponent; a ``float`` is refused.
    """
    return {key: _query_value(value) for key, value in payload.items() if value is not None}


def check_timeout(value: object, name: str = "timeout") -> float | None:
    """A call's time budget: ``None`` or a positive, finite number of seconds."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise InvalidInputError(f"{name} must be a positive number of seconds or None")
    return float(value)
