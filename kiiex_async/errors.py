"""The exception tree of kiiex_async, shaped by how a caller recovers.

::

    KiiexError                      anything this SDK raises on purpose
    ├── InvalidInputError           bad arguments; nothing was sent (fix the call)
    │   └── BelowMinimumError       amount under the instrument's MinimumQuantity
    ├── ConfigurationError          missing/invalid credentials or settings
    ├── TransportError              the request did not complete
    │   ├── ConnectError            never reached the server; safe to retry
    │   ├── RequestTimeout          no answer in time
    │   ├── ResponseTooLargeError   the answer exceeded ``max_body_size``; reading stopped
    │   └── UnknownOutcomeError     a write was sent and its fate is unknown:
    │                               reconcile with the exchange, never resend blindly
    ├── DecodeError                 the body was not the JSON we expected (HTML page, garbage)
    ├── ApiError                    the exchange answered and said no
    │   ├── AuthenticationError     credentials refused, session invalid (errorcode 20)
    │   │   └── TwoFactorRequiredError  a 2FA code is needed and none is configured
    │   ├── NotFoundError           errorcode 104 / Resource Not Found
    │   ├── RejectedError           request refused by business rules (errorcode 100/101/106)
    │   │   └── InsufficientFundsError  Not_Enough_Funds / Insufficient Balance
    │   ├── RateLimitedError        HTTP 429; carries ``retry_after`` seconds
    │   ├── RedirectError           HTTP 3xx: never followed; carries ``location``
    │   └── ServerError             HTTP 5xx or errorcode 102
    │       └── OperationInProcessError  errorcode 107: busy with an earlier request
    └── WorkflowError               a swap cannot proceed (see ``kiiex_async.workflow``)

Every ``ApiError`` keeps ``method``, ``status`` (HTTP), ``errorcode``, ``errormsg`` and
``detail`` as the exchange sent them.  Messages never contain secrets.

Whether a failed *write* may have been applied is decided in one place, the call pipeline:
a redirect (other than 303), a 4xx answer, a 429 and a refused connection were certainly
not applied; a timeout, a dropped connection, a 5xx (including errorcode 107), an answer
that is unreadable or too large, a 303, and a cancellation while the request was in flight
become :class:`UnknownOutcomeError`.
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "AuthenticationError",
    "BelowMinimumError",
    "ConfigurationError",
    "ConnectError",
    "DecodeError",
    "InsufficientFundsError",
    "InvalidInputError",
    "KiiexError",
    "NotFoundError",
    "OperationInProcessError",
    "RateLimitedError",
    "RedirectError",
    "RejectedError",
    "RequestTimeout",
    "ResponseTooLargeError",
    "ServerError",
    "TransportError",
    "TwoFactorRequiredError",
    "UnknownOutcomeError",
    "WorkflowError",
]


class KiiexError(Exception):
    """Base class of every error raised by kiiex_async."""


class InvalidInputError(KiiexError, ValueError):
    """An argument cannot be honoured; raised before any request is sent."""


class BelowMinimumError(InvalidInputError):
    """A quantity, once rounded to the instrument's increment, is under its minimum."""


class ConfigurationError(KiiexError):
    """Credentials or settings are missing or inconsistent."""


class TransportError(KiiexError):
    """The HTTP exchange with the server did not complete.

    ``method`` is the AlphaPoint method name that was being called.
    """

    def __init__(self, message: str, *, method: str | None = None) -> None:
        super().__init__(message)
        self.method = method


class ConnectError(TransportError):
    """The connection failed before the request was sent; retrying is safe."""


class RequestTimeout(TransportError):
    """The server did not answer within the configured timeout."""


class ResponseTooLargeError(TransportError):
    """The answer was larger than the client's ``max_body_size``; it was not read further.

    ``limit`` is the cap in bytes; ``size`` is the size the server declared
    (``Content-Length``) or, for a body sent without one, what had arrived when reading
    stopped.  ``status`` is the HTTP status of the answer.  After a write this becomes
    :class:`UnknownOutcomeError` (the write may have been applied).
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        status: int | None = None,
        limit: int | None = None,
        size: int | None = None,
    ) -> None:
        super().__init__(message, method=method)
        self.status = status
        self.limit = limit
        self.size = size


class UnknownOutcomeError(TransportError):
    """A write was (possibly) applied but its response was lost.

    Resending could duplicate it.  Callers reconcile with the exchange (for an order:
    ``get_orders_history(client_order_id=...)``) instead of retrying.  ``client_order_id``
    is the ``ClientOrderId`` the request carried, if any.  A write cancelled from outside
    while its request may have been in flight (``asyncio.timeout``, ``wait_for``, a cancel
    scope, ``task.cancel()``) also ends with this error; the task's cancellation is then
    delivered again at its next ``await`` unless a timeout took it back (see README,
    "Transport guarantees").
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        client_order_id: int | None = None,
    ) -> None:
        super().__init__(message, method=method)
        self.client_order_id = client_order_id


class DecodeError(KiiexError):
    """The response body was not valid JSON of the expected shape."""

    def __init__(
        self, message: str, *, method: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.method = method
        self.status = status


class ApiError(KiiexError):
    """The exchange answered and refused the request."""

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        status: int | None = None,
        errorcode: int | None = None,
        errormsg: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.status = status
        self.errorcode = errorcode
        self.errormsg = errormsg
        self.detail = detail


class AuthenticationError(ApiError):
    """Credentials were refused or the session is not (or no longer) valid."""


class TwoFactorRequiredError(AuthenticationError):
    """The exchange asks for a 2FA code and no code provider is configured."""


class NotFoundError(ApiError):
    """The requested resource (order, ticket, instrument) does not exist."""


class RejectedError(ApiError):
    """The exchange refused the request on business grounds."""


class InsufficientFundsError(RejectedError):
    """The account lacks the available balance the request needs."""


class RateLimitedError(ApiError):
    """HTTP 429: too many requests.  ``retry_after`` is in seconds, if the server said."""

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        method: str | None = None,
        status: int | None = 429,
        errorcode: int | None = None,
        errormsg: str | None = None,
        detail: str | None = None,
    ) -> None:
        super().__init__(
            message,
            method=method,
            status=status,
            errorcode=errorcode,
            errormsg=errormsg,
            detail=detail,
        )
        self.retry_after = retry_after


class RedirectError(ApiError):
    """The server answered with a redirect (HTTP 3xx), which the client never follows.

    Following one would send the request, its credentials and session token to another
    URL.  ``location`` is the ``Location`` the server named (``None`` if it named none).
    A write answered this way was not applied (except after a 303 "See Other", which means
    "processed, look elsewhere": that becomes :class:`UnknownOutcomeError`).  Usually the
    base URL is wrong (``http://`` for ``https://``, an old host).
    """

    def __init__(
        self,
        message: str,
        *,
        method: str | None = None,
        status: int | None = None,
        location: str | None = None,
    ) -> None:
        super().__init__(message, method=method, status=status)
        self.location = location


class ServerError(ApiError):
    """The server failed (HTTP 5xx or errorcode 102)."""


class OperationInProcessError(ServerError):
    """errorcode 107 "Operation In Process": the exchange is busy with an earlier request.

    A read is retried like any server error; a write answered this way has an unknown
    outcome (:class:`UnknownOutcomeError`).
    """


class WorkflowError(KiiexError):
    """A swap cannot proceed; ``step`` names where, ``swap_id`` which swap."""

    def __init__(
        self, message: str, *, swap_id: str | None = None, step: str | None = None
    ) -> None:
        super().__init__(message)
        self.swap_id = swap_id
        self.step = step
