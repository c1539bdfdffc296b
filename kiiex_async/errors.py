"""The exception tree of kiiex_async, shaped by how a caller recovers.

::

    KiiexError                      anything this SDK raises on purpose
    ├── InvalidInputError           bad arguments; nothing was sent (fix the call)
    │   └── BelowMinimumError       amount under the instrument's MinimumQuantity
    ├── ConfigurationError          missing/invalid credentials or settings
    ├── TransportError              the request did not complete
    │   ├── ConnectError            never reached the server; safe to retry
    │   ├── RequestTimeout          no answer in time
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
    │   └── ServerError             HTTP 5xx or errorcode 102
    └── WorkflowError               a swap cannot proceed (see ``kiiex_async.workflow``)

Every ``ApiError`` keeps ``method``, ``status`` (HTTP), ``errorcode``, ``errormsg`` and
``detail`` as the exchange sent them.  Messages never contain secrets.
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
    "RateLimitedError",
    "RejectedError",
    "RequestTimeout",
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


class UnknownOutcomeError(TransportError):
    """A write was (possibly) applied but its response was lost.

    Resending could duplicate it.  Callers reconcile with the exchange (for an order:
    ``get_orders_history(client_order_id=...)``) instead of retrying.
    """


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


class ServerError(ApiError):
    """The server failed (HTTP 5xx or errorcode 102)."""


class WorkflowError(KiiexError):
    """A swap cannot proceed; ``step`` names where, ``swap_id`` which swap."""

    def __init__(
        self, message: str, *, swap_id: str | None = None, step: str | None = None
    ) -> None:
        super().__init__(message)
        self.swap_id = swap_id
        self.step = step
