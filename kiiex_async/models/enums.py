"""AlphaPoint enumerations.

The wire carries either the integer or the name (``"FullyExecuted"``); ``kiiex_async._wire``
reads both.  Member names are the AlphaPoint names in UPPER_SNAKE case.
"""

from __future__ import annotations

import enum

__all__ = [
    "ChangeReason",
    "DepositStatus",
    "MakerTaker",
    "OrderState",
    "OrderType",
    "PegPriceType",
    "ProductType",
    "SessionStatus",
    "Side",
    "TimeInForce",
    "TradeDirection",
    "WithdrawStatus",
]


class Side(enum.IntEnum):
    """Order side."""

    BUY = 0
    SELL = 1
    SHORT = 2
    UNKNOWN = 3


class OrderType(enum.IntEnum):
    """Order type."""

    UNKNOWN = 0
    MARKET = 1
    LIMIT = 2
    STOP_MARKET = 3
    STOP_LIMIT = 4
    TRAILING_STOP_MARKET = 5
    TRAILING_STOP_LIMIT = 6
    BLOCK_TRADE = 7


class TimeInForce(enum.IntEnum):
    """How long an order rests on the book."""

    UNKNOWN = 0
    GTC = 1
    OPG = 2
    IOC = 3
    FOK = 4
    GTX = 5
    GTD = 6


class PegPriceType(enum.IntEnum):
    """Reference price of stop and trailing orders."""

    UNKNOWN = 0
    LAST = 1
    BID = 2
    ASK = 3
    MIDPOINT = 4


class OrderState(enum.IntEnum):
    """Order life cycle.  A partial fill is ``WORKING`` with ``quantity_executed > 0``."""

    UNKNOWN = 0
    WORKING = 1
    REJECTED = 2
    CANCELED = 3
    EXPIRED = 4
    FULLY_EXECUTED = 5
    #: Seen on some venues right after SendOrder; treated like ``WORKING``.
    ACCEPTED = 100

    @property
    def is_final(self) -> bool:
        """True when the order can no longer change."""
        return self in _FINAL_ORDER_STATES


_FINAL_ORDER_STATES = frozenset(
    {OrderState.REJECTED, OrderState.CANCELED, OrderState.EXPIRED, OrderState.FULLY_EXECUTED}
)


class ChangeReason(enum.IntEnum):
    """Why an order last changed."""

    UNKNOWN = 0
    NEW_INPUT_ACCEPTED = 1
    NEW_INPUT_REJECTED = 2
    OTHER_REJECTED = 3
    EXPIRED = 4
    TRADE = 5
    SYSTEM_CANCELED_NO_MORE_MARKET = 6
    SYSTEM_CANCELED_BELOW_MINIMUM = 7
    SYSTEM_CANCELED_PRICE_COLLAR = 8
    SYSTEM_CANCELED_MARGIN_FAILED = 9
    USER_MODIFIED = 100


class MakerTaker(enum.IntEnum):
    """Whether a fill added or took liquidity."""

    UNKNOWN = 0
    MAKER = 1
    TAKER = 2


class TradeDirection(enum.IntEnum):
    """Price direction of a trade relative to the previous one."""

    NO_CHANGE = 0
    UPTICK = 1
    DOWN_TICK = 2


class ProductType(enum.IntEnum):
    """Kind of product (asset)."""

    UNKNOWN = 0
    NATIONAL_CURRENCY = 1
    CRYPTO_CURRENCY = 2
    CONTRACT = 3


class SessionStatus(enum.IntEnum):
    """Trading session status of an instrument."""

    UNKNOWN = 0
    RUNNING = 1
    PAUSED = 2
    STOPPED = 3
    STARTING = 4


class DepositStatus(enum.IntEnum):
    """Deposit ticket status."""

    NEW = 0
    ADMIN_PROCESSING = 1
    ACCEPTED = 2
    REJECTED = 3
    SYSTEM_PROCESSING = 4
    FULLY_PROCESSED = 5
    FAILED = 6
    PENDING = 7
    CONFIRMED = 8
    AML_PROCESSING = 9
    AML_ACCEPTED = 10
    AML_REJECTED = 11
    AML_FAILED = 12
    LIMITS_ACCEPTED = 13
    LIMITS_REJECTED = 14

    @property
    def is_final(self) -> bool:
        """True for statuses after which the ticket no longer changes."""
        return self in _FINAL_DEPOSIT

    @property
    def is_success(self) -> bool:
        """True when the deposit was credited."""
        return self is DepositStatus.FULLY_PROCESSED


_FINAL_DEPOSIT = frozenset(
    {
        DepositStatus.FULLY_PROCESSED,
        DepositStatus.REJECTED,
        DepositStatus.FAILED,
        DepositStatus.AML_REJECTED,
        DepositStatus.AML_FAILED,
        DepositStatus.LIMITS_REJECTED,
    }
)


class WithdrawStatus(enum.IntEnum):
    """Withdraw ticket status."""

    NEW = 0
    ADMIN_PROCESSING = 1
    ACCEPTED = 2
    REJECTED = 3
    SYSTEM_PROCESSING = 4
    FULLY_PROCESSED = 5
    FAILED = 6
    PENDING = 7
    PENDING_2FA = 8
    AUTO_ACCEPTED = 9
    DELAYED = 10
    USER_CANCELED = 11
    ADMIN_CANCELED = 12
    AML_PROCESSING = 13
    AML_ACCEPTED = 14
    AML_REJECTED = 15
    AML_FAILED = 16
    LIMITS_ACCEPTED = 17
    LIMITS_REJECTED = 18
    SUBMITTED = 19
    CONFIRMED = 20
    MANUALLY_CONFIRMED = 21
    CONFIRMED_2FA = 22

    @property
    def is_final(self) -> bool:
        """True for statuses after which the ticket no longer changes."""
        return self in _FINAL_WITHDRAW

    @property
    def is_success(self) -> bool:
        """True when the funds left the account."""
        return self is WithdrawStatus.FULLY_PROCESSED


_FINAL_WITHDRAW = frozenset(
    {
        WithdrawStatus.FULLY_PROCESSED,
        WithdrawStatus.REJECTED,
        WithdrawStatus.FAILED,
        WithdrawStatus.USER_CANCELED,
        WithdrawStatus.ADMIN_CANCELED,
        WithdrawStatus.AML_REJECTED,
        WithdrawStatus.AML_FAILED,
        WithdrawStatus.LIMITS_REJECTED,
    }
)
