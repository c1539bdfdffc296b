"""kiiex_async: a typed asyncio SDK for KIIEX (AlphaPoint APEX)."""

from .auth import Credentials
from .client import PRODUCTION_URL, STAGING_URL, KiiexClient
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
    RateLimitedError,
    RejectedError,
    RequestTimeout,
    ServerError,
    TransportError,
    TwoFactorRequiredError,
    UnknownOutcomeError,
    WorkflowError,
)

__version__ = "0.1.0.dev0"

__all__ = [
    "PRODUCTION_URL",
    "STAGING_URL",
    "ApiError",
    "AuthenticationError",
    "BelowMinimumError",
    "ConfigurationError",
    "ConnectError",
    "Credentials",
    "DecodeError",
    "InsufficientFundsError",
    "InvalidInputError",
    "KiiexClient",
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
