"""Users, sessions and balances."""

from __future__ import annotations

from decimal import Decimal

import attrs

__all__ = ["AuthResult", "GenericResult", "Pong", "Position", "UserInfo"]

_ZERO = Decimal(0)


@attrs.frozen
class UserInfo:
    """The logged-in user (``User`` of ``AuthenticateUser``; ``GetUserInfo``)."""

    user_id: int
    user_name: str = ""
    email: str = ""
    email_verified: bool = False
    account_id: int = 0
    oms_id: int = 1
    use_2fa: bool = False
    locked: bool = False


@attrs.frozen
class AuthResult:
    """Outcome of ``AuthenticateUser`` / ``Authenticate2FA``.

    The session token is deliberately not a field: the client keeps it privately so it
    can never show up in a ``repr``, a log line or a checkpoint.
    """

    authenticated: bool
    user: UserInfo | None = None
    user_id: int | None = None
    locked: bool = False
    requires_2fa: bool = False
    two_fa_type: str | None = None
    errormsg: str | None = None


@attrs.frozen
class Pong:
    """Answer of ``Ping``."""

    msg: str = "PONG"


@attrs.frozen
class GenericResult:
    """AlphaPoint's standard ``{result, errormsg, errorcode, detail}`` acknowledgement."""

    result: bool
    errormsg: str | None = None
    errorcode: int = 0
    detail: str | None = None


@attrs.frozen
class Position:
    """Balance of one product in one account.  ``amount`` is the total; see ``available``."""

    account_id: int
    product_id: int
    product_symbol: str
    amount: Decimal = _ZERO
    hold: Decimal = _ZERO
    pending_deposits: Decimal = _ZERO
    pending_withdraws: Decimal = _ZERO
    total_day_deposits: Decimal = _ZERO
    total_day_withdraws: Decimal = _ZERO
    notional_product_id: int = 0
    notional_value: Decimal = _ZERO
    oms_id: int = 1

    @property
    def available(self) -> Decimal:
        """What can be spent: ``amount - hold``."""
        return self.amount - self.hold
