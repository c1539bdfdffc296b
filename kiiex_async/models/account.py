"""Users, sessions and balances."""

from __future__ import annotations

from decimal import Decimal

import attrs

__all__ = ["AccountTransaction", "AuthResult", "GenericResult", "Pong", "Position", "UserInfo"]


@attrs.frozen(slots=False)
class UserInfo:
    """The logged-in user (``User`` of ``AuthenticateUser``; ``GetUserInfo``).

    ``locked`` is ``None`` when the answer does not say (the login answer's ``user``).
    """

    user_id: int
    user_name: str = ""
    email: str = ""
    email_verified: bool = False
    account_id: int = 0
    oms_id: int = 1
    use_2fa: bool = False
    locked: bool | None = None


@attrs.frozen(slots=False)
class AuthResult:
    """Outcome of ``AuthenticateUser`` / ``Authenticate2FA``.

    The session token is deliberately not a field: the client keeps it privately so it
    can never show up in a ``repr``, a log line or a checkpoint.  ``auth_type`` is the 2FA
    type some venues name ``AuthType`` (``"Google"``) instead of ``TwoFAType``.
    """

    authenticated: bool
    user: UserInfo | None = None
    user_id: int | None = None
    locked: bool = False
    requires_2fa: bool = False
    two_fa_type: str | None = None
    auth_type: str | None = None
    errormsg: str | None = None


@attrs.frozen(slots=False)
class Pong:
    """Answer of ``Ping``."""

    msg: str = "PONG"


@attrs.frozen(slots=False)
class GenericResult:
    """AlphaPoint's standard ``{result, errormsg, errorcode, detail}`` acknowledgement."""

    result: bool
    errormsg: str | None = None
    errorcode: int = 0
    detail: str | None = None


@attrs.frozen(slots=False)
class Position:
    """Balance of one product in one account.  ``amount`` is the total; see ``available``.

    KIIEX's guide documents six fields (``omsId``, ``accountId``, ``productSymbol``,
    ``productId``, ``amount``, ``hold``): the others are ``None`` when left out.
    """

    account_id: int
    product_id: int
    product_symbol: str
    amount: Decimal
    hold: Decimal
    pending_deposits: Decimal | None = None
    pending_withdraws: Decimal | None = None
    total_day_deposits: Decimal | None = None
    total_day_withdraws: Decimal | None = None
    notional_product_id: int | None = None
    notional_product_symbol: str | None = None
    notional_value: Decimal | None = None
    notional_rate: Decimal | None = None
    notional_hold_amount: Decimal | None = None
    oms_id: int | None = None

    @property
    def available(self) -> Decimal:
        """What can be spent: ``amount - hold``."""
        return self.amount - self.hold


@attrs.frozen(slots=False)
class AccountTransaction:
    """One ledger entry of ``GetAccountTransactions``: a credit (``cr``) or debit (``dr``).

    ``balance`` is the product's balance after the entry; ``transaction_type`` and
    ``reference_type`` are the exchange's names (``"Trade"``, ``"Fee"``, ``"Deposit"``,
    ``"Withdraw"``...); ``time_stamp`` is epoch milliseconds.  Fields only some answers
    carry are ``None``.
    """

    transaction_id: int
    account_id: int
    product_id: int
    cr: Decimal
    dr: Decimal
    balance: Decimal | None = None
    transaction_type: str | None = None
    reference_type: str | None = None
    reference_id: int | None = None
    counterparty: int | None = None
    time_stamp: int | None = None
    oms_id: int | None = None
