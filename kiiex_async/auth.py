"""Credentials and AlphaPoint API-key signing (pure functions, no I/O).

``Signature = lowercase hex HMAC-SHA256(key=api_secret, msg=nonce + user_id + api_key)``,
the rule shared by AlphaPoint's own docs, notbank and ccxt's ``ndax``.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Awaitable, Callable, Mapping

import attrs

from .errors import ConfigurationError

__all__ = [
    "Credentials",
    "TwoFactorProvider",
    "make_nonce",
    "sign",
    "signed_headers",
    "verify_signature",
]

#: Called with the 2FA type the server asked for ("Google", ...); returns the code.
TwoFactorProvider = Callable[[str], Awaitable[str]]


def sign(*, api_secret: str, nonce: str, user_id: str | int, api_key: str) -> str:
    """Return the AlphaPoint signature: hex HMAC-SHA256(secret, nonce + user_id + api_key)."""
    message = f"{nonce}{user_id}{api_key}".encode()
    return hmac.new(api_secret.encode(), message, hashlib.sha256).hexdigest()


def verify_signature(
    *, api_secret: str, nonce: str, user_id: str | int, api_key: str, signature: str
) -> bool:
    """Check a signature in constant time (case-insensitive hex)."""
    expected = sign(api_secret=api_secret, nonce=nonce, user_id=user_id, api_key=api_key)
    return hmac.compare_digest(expected, signature.strip().lower())


def make_nonce() -> str:
    """A fresh nonce: a random string of digits, as AlphaPoint accepts."""
    return str(secrets.randbelow(10**12) + 1)


def signed_headers(
    *, api_key: str, api_secret: str, user_id: str | int, nonce: str | None = None
) -> dict[str, str]:
    """The four headers of a signed AlphaPoint request (``APIKey``, ``Signature``, ...)."""
    nonce = nonce if nonce is not None else make_nonce()
    return {
        "APIKey": api_key,
        "Signature": sign(api_secret=api_secret, nonce=nonce, user_id=user_id, api_key=api_key),
        "UserId": str(user_id),
        "Nonce": nonce,
    }


def _optional_str(value: object) -> str | None:
    return None if value is None else str(value)


def _hidden(value: object) -> str:
    return "None" if value is None else "'***'"


@attrs.frozen(repr=False)
class Credentials:
    """How to log in: an API key (preferred) and/or a username and password.

    With an API key, ``username`` alone (no password) is allowed: the API-key login then
    carries ``UserName`` too, as KIIEX's guide shows.  The ``repr`` never shows the
    secret, password or 2FA provider.
    """

    api_key: str | None = None
    api_secret: str | None = None
    user_id: str | None = attrs.field(default=None, converter=_optional_str)
    username: str | None = None
    password: str | None = None
    two_factor: TwoFactorProvider | None = None

    def __attrs_post_init__(self) -> None:
        has_key = self.api_key is not None or self.api_secret is not None
        if has_key and not (self.api_key and self.api_secret and self.user_id):
            raise ConfigurationError(
                "API-key credentials need api_key, api_secret and user_id together"
            )
        if self.password is not None and self.username is None:
            raise ConfigurationError("a password needs a username")
        if self.username is not None and self.password is None and not has_key:
            raise ConfigurationError("username and password go together (or add an API key)")
        if not has_key and self.username is None:
            raise ConfigurationError("credentials need an API key or a username and password")

    @property
    def uses_api_key(self) -> bool:
        """True when these credentials sign with an API key."""
        return self.api_key is not None

    def signed_headers(self, nonce: str | None = None) -> dict[str, str]:
        """Signed headers for one request (raises if there is no API key)."""
        if not (self.api_key and self.api_secret and self.user_id):
            raise ConfigurationError("no API key configured")
        return signed_headers(
            api_key=self.api_key, api_secret=self.api_secret, user_id=self.user_id, nonce=nonce
        )

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, *, prefix: str = "KIIEX_"
    ) -> Credentials:
        """Read ``KIIEX_API_KEY``, ``KIIEX_API_SECRET``, ``KIIEX_USER_ID``,
        ``KIIEX_USERNAME`` and ``KIIEX_PASSWORD``.

        ``KIIEX_USERNAME`` goes with ``KIIEX_PASSWORD``, or on its own with an API key (the
        API-key login then carries ``UserName``).

        Raises :class:`ConfigurationError` naming the missing variables.
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            value = env.get(prefix + name)
            return value if value else None

        key, secret, uid = get("API_KEY"), get("API_SECRET"), get("USER_ID")
        user, password = get("USERNAME"), get("PASSWORD")
        if key or secret or uid:
            missing = [
                prefix + n
                for n, v in (("API_KEY", key), ("API_SECRET", secret), ("USER_ID", uid))
                if not v
            ]
            if missing:
                raise ConfigurationError("missing environment variable(s): " + ", ".join(missing))
        elif not (user and password):
            raise ConfigurationError(
                f"no credentials in the environment: set {prefix}API_KEY, {prefix}API_SECRET "
                f"and {prefix}USER_ID (or {prefix}USERNAME and {prefix}PASSWORD)"
            )
        return cls(api_key=key, api_secret=secret, user_id=uid, username=user, password=password)

    @classmethod
    def env_configured(cls, environ: Mapping[str, str] | None = None) -> bool:
        """True when any KIIEX_* credential variable is set."""
        env = os.environ if environ is None else environ
        names = ("API_KEY", "API_SECRET", "USER_ID", "USERNAME", "PASSWORD")
        return any(env.get("KIIEX_" + n) for n in names)

    def __repr__(self) -> str:
        return (
            f"Credentials(api_key={self.api_key!r}, api_secret={_hidden(self.api_secret)}, "
            f"user_id={self.user_id!r}, username={self.username!r}, "
            f"password={_hidden(self.password)}, two_factor={_hidden(self.two_factor)})"
        )
