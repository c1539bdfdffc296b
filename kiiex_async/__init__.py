"""kiiex_async: a typed asyncio SDK for KIIEX (AlphaPoint APEX)."""

import logging as _logging
from importlib import metadata as _metadata

from ._transport import AiohttpTransport, AsyncTransport, Request, Response, Timeouts
from .auth import Credentials
from .client import PRODUCTION_URL, STAGING_URL, ClientOptions, KiiexClient
from .errors import (
    ApiError,
    AuthenticationError,
    BelowMinimumError,
    ConfigurationError,
    ConnectError,
    DecodeError,
    InsufficientFundsError,
    InvalidInputError,
    KiiexError,
    NotFoundError,
    OperationInProcessError,
    RateLimitedError,
    RedirectError,
    RejectedError,
    RequestTimeout,
    ResponseTooLargeError,
    ServerError,
    TransportError,
    TwoFactorRequiredError,
    UnknownOutcomeError,
    WorkflowError,
)

try:
    __version__ = _metadata.version("kiiex_async")
except _metadata.PackageNotFoundError:  # pragma: no cover - running from a bare source tree
    __version__ = "0+unknown"

# Library logging goes to "kiiex_async.*" loggers and nowhere unless the application
# configures logging (the CLI does, with -v).
_logging.getLogger(__name__).addHandler(_logging.NullHandler())

__all__ = [
    "PRODUCTION_URL",
    "STAGING_URL",
    "AiohttpTransport",
    "ApiError",
    "AsyncTransport",
    "AuthenticationError",
    "BelowMinimumError",
    "ClientOptions",
    "ConfigurationError",
    "ConnectError",
    "Credentials",
    "DecodeError",
    "InsufficientFundsError",
    "InvalidInputError",
    "KiiexClient",
    "KiiexError",
    "NotFoundError",
    "OperationInProcessError",
    "RateLimitedError",
    "RedirectError",
    "RejectedError",
    "Request",
    "RequestTimeout",
    "Response",
    "ResponseTooLargeError",
    "ServerError",
    "Timeouts",
    "TransportError",
    "TwoFactorRequiredError",
    "UnknownOutcomeError",
    "WorkflowError",
]
