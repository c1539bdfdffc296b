"""How the stream logs its socket in: ``AuthenticateUser``, then 2FA as the client does it.

The rules are the HTTP client's (:mod:`kiiex_async._session`), applied to the socket: an
answer that asks for a 2FA code (``Requires2FA`` and no session token, whatever its
``Authenticated`` says) is completed with ``Authenticate2FA`` and a code from
``credentials.two_factor``, or fails with
:class:`~kiiex_async.errors.TwoFactorRequiredError` when no code source is set; a login or
code the exchange refuses is an :class:`~kiiex_async.errors.AuthenticationError`.  The
socket counts as logged in only after that, so no private call is ever sent on a socket
still half-way through its login.

``Authenticate2FA`` carries ``{"Code"}``, as AlphaPoint documents it for a socket (the
socket holds the pending login), plus the challenge's ``Pending2FaToken`` when it has one,
as the HTTP client sends it.  Neither the code nor a token ever reaches a message.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from . import _wire
from ._session import merge_auth, pending_2fa_token, two_factor_code
from ._stream_wire import decode_result
from .auth import TwoFactorProvider
from .errors import AuthenticationError
from .models import AuthResult

__all__ = ["Send", "log_in"]

#: Sends one request on the socket; returns the answer's JSON once checked for errors.
Send = Callable[[str, Mapping[str, Any]], Awaitable[Any]]


async def log_in(
    send: Send, payload: Mapping[str, Any], two_factor: TwoFactorProvider | None
) -> AuthResult:
    """Log the socket in with the ``AuthenticateUser`` ``payload`` (see the module doc)."""
    data = await send("AuthenticateUser", payload)
    result: AuthResult = decode_result("AuthenticateUser", data, payload)
    if result.requires_2fa and _wire.session_token(data) is None:
        code = await two_factor_code(two_factor, result, "AuthenticateUser")
        request = {"Code": code}
        pending = pending_2fa_token(data)
        if pending is not None:
            request["Pending2FaToken"] = pending
        second = decode_result("Authenticate2FA", await send("Authenticate2FA", request), request)
        result = merge_auth(result, second)
        method = "Authenticate2FA"
    else:
        method = "AuthenticateUser"
    if not result.authenticated:
        raise AuthenticationError(f"stream: {method} refused", method=method)
    return result
