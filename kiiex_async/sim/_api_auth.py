"""Authentication and user handlers: logins, 2FA, sessions, the user and its positions.

``AuthenticateUser`` accepts a signed API key (body or headers), a username/password or
an existing ``SessionToken``; ccxt's ``Authenticate`` sends HTTP Basic credentials;
``Authenticate2FA`` completes a login that asked for a code.  A successful login opens a
session (``aptoken``), except in the guide dialect, whose login answers no token.  A
failed login is HTTP 200 ``{"Authenticated":false,...}``.  Also ``LogOut``,
``GetUserAccounts``, ``GetUserInfo`` and ``GetAccountPositions``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from . import _guide as guide
from . import _render as render
from ._call import Call, Handlers, Reply, _ok
from ._config import DemoUser

__all__ = ["AuthHandlers"]

_AUTH_FAILED = {"Authenticated": False, "Locked": False, "errormsg": "Invalid username or password"}

_SIGNED_HEADERS = ("APIKey", "Signature", "UserId", "Nonce")


class AuthHandlers(Handlers):
    """Handlers of logins and the user's own records (see the module doc)."""

    def _signed_headers_user(self, headers: Mapping[str, str]) -> DemoUser | None:
        if not all(headers.get(h) for h in _SIGNED_HEADERS):
            return None
        return self.exchange.check_signature(
            api_key=headers["APIKey"],
            user_id=headers["UserId"],
            nonce=headers["Nonce"],
            signature=headers["Signature"],
        )

    def _auth_success(self, user: DemoUser, now: float) -> Reply:
        if user.two_fa_code:
            pending = self.sessions.create(user.user_id, now, pending_2fa=True)
            return _ok(
                {
                    "Authenticated": True,
                    "Requires2FA": True,
                    "AuthType": "Google",
                    "TwoFAType": "Google",
                    "AddtlInfo": "",
                    "Pending2FaToken": pending,
                    "Locked": False,
                    "errormsg": "",
                }
            )
        if self.guide:
            return _ok(guide.login(user))
        return self._session_reply(self.sessions.create(user.user_id, now), user)

    def _session_reply(self, token: str, user: DemoUser) -> Reply:
        """The answer to a login that opened (or found) session ``token``."""
        return _ok(
            {
                "Authenticated": True,
                "SessionToken": token,
                "User": self._user_object(user),
                "Locked": False,
                "Requires2FA": False,
                "TwoFAType": "",
                "TwoFAToken": "",
                "errormsg": "",
            }
        )

    @staticmethod
    def _user_object(user: DemoUser) -> dict[str, Any]:
        return {
            "UserId": user.user_id,
            "UserName": user.username,
            "Email": user.email,
            "EmailVerified": True,
            "AccountId": user.account_id,
            "OMSId": 1,
            "Use2FA": user.two_fa_code is not None,
        }

    def authenticate_user(self, call: Call) -> Reply:
        """API key (body or headers), username/password, or an existing ``SessionToken``."""
        p, ex = call.params, self.exchange
        user: DemoUser | None = None
        if p.has("APIKey") or p.has("Signature"):
            user = ex.check_signature(
                api_key=p.text("APIKey"),
                user_id=p.text("UserId"),
                nonce=p.text("Nonce"),
                signature=p.text("Signature"),
            )
        elif p.has("Password"):
            user = ex.check_password(p.text("UserName") or p.text("Email"), p.text("Password"))
        elif p.has("SessionToken"):
            session = self.sessions.get(p.text("SessionToken"), call.now)
            if session is not None:
                return self._session_reply(session.token, ex.users[session.user_id])
        elif call.headers.get("APIKey"):
            user = self._signed_headers_user(call.headers)
        if user is None:
            return _ok(_AUTH_FAILED)
        return self._auth_success(user, call.now)

    def authenticate_basic(self, call: Call) -> Reply:
        """ccxt's ``Authenticate`` with ``Authorization: Basic base64(user:password)``."""
        header = call.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        user = None
        if scheme.lower() == "basic":
            try:
                name, _, password = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                name = password = ""
            user = self.exchange.check_password(name, password) if name else None
        if user is None:
            return _ok(_AUTH_FAILED)
        return self._auth_success(user, call.now)

    def authenticate_2fa(self, call: Call) -> Reply:
        """``{"Code"}`` + the pending token (``Pending2FaToken`` header/key or ``aptoken``)."""
        token = (
            call.headers.get("Pending2FaToken")
            or call.params.text("Pending2FaToken")
            or call.headers.get("aptoken")
            or ""
        )
        session = self.sessions.get(token, call.now, pending_2fa=True) if token else None
        if session is None:
            return _ok(
                {
                    "Authenticated": False,
                    "Locked": False,
                    "errormsg": "Invalid or expired 2FA token",
                }
            )
        user = self.exchange.users[session.user_id]
        code = call.params.text("Code").strip()
        if not user.two_fa_code or code != user.two_fa_code:
            return _ok({"Authenticated": False, "Locked": False, "errormsg": "Invalid 2FA code"})
        self.sessions.drop(session.token)
        token = self.sessions.create(user.user_id, call.now)
        return _ok(
            {
                "Authenticated": True,
                "UserId": user.user_id,
                "SessionToken": token,
                "User": self._user_object(user),
                "errormsg": "",
            }
        )

    def log_out(self, call: Call) -> Reply:
        """Ends the session used by this call (a signed-header call has none to end)."""
        if call.token:
            self.sessions.drop(call.token)
        return _ok(render.generic(True, None, 0, None))

    def get_user_accounts(self, call: Call) -> Reply:
        """``[AccountId]``."""
        assert call.user is not None
        return _ok([call.user.account_id])

    def get_user_info(self, call: Call) -> Reply:
        """The authenticated user (PascalCase)."""
        user = call.user
        assert user is not None
        return _ok(
            {
                "UserId": user.user_id,
                "UserName": user.username,
                "Email": user.email,
                "PasswordHash": "",
                "PendingEmailCode": "",
                "EmailVerified": True,
                "AccountId": user.account_id,
                "DateTimeCreated": "2024-01-01T00:00:00.000Z",
                "AffiliateId": 0,
                "RefererId": 0,
                "OMSId": 1,
                "Use2FA": user.two_fa_code is not None,
                "Salt": "",
                "PendingCodeTime": "0001-01-01T00:00:00.000Z",
                "Locked": False,
                "LockedTime": "0001-01-01T00:00:00.000Z",
                "NumberOfFailedAttempt": 0,
                "MarginBorrowerEnabled": False,
                "MarginAcquisitionHalt": False,
                "OperatorId": 1,
            }
        )

    def get_account_positions(self, call: Call) -> Reply:
        """One position per product (``Amount`` total, ``Hold`` reserved)."""
        account_id = self._account(call)
        ex = self.exchange
        if self.guide:
            return _ok([guide.position(ex, account_id, spec) for spec in ex.products.values()])
        return _ok(
            [render.position(ex, account_id, spec, call.now) for spec in ex.products.values()]
        )
