"""The simulated exchange's records: orders, trades, tickets, markets, balances, errors.

Plain dataclasses and the constants they use (sides, order types, time in force, order
states, ticket statuses), :class:`ExchangeError` (rendered as AlphaPoint's generic error
object), the rounding helpers, and the record <-> plain data converters that revisions
and :mod:`._persist` use.  No behaviour beyond the records' own properties.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any, TypeVar

from ._config import InstrumentSpec

__all__ = [
    "BUY",
    "SELL",
    "ZERO",
    "Balance",
    "DepositTicket",
    "ExchangeError",
    "InsufficientBalance",
    "Market",
    "Order",
    "OrderRequest",
    "Trade",
    "WithdrawTicket",
    "invalid",
    "ms",
    "not_found",
    "round_down",
]

ZERO = Decimal(0)
BUY, SELL = 0, 1
MARKET, LIMIT = 1, 2
GTC, IOC, FOK, GTX = 1, 3, 4, 5

#: Order state names as they travel on the wire.
WORKING, REJECTED, CANCELED, FULLY_EXECUTED = "Working", "Rejected", "Canceled", "FullyExecuted"

# Ticket statuses (AlphaPoint integers; see the reference's status table).
D_NEW, D_ADMIN_PROCESSING, D_ACCEPTED, D_REJECTED, D_FULLY_PROCESSED = 0, 1, 2, 3, 5
W_NEW, W_REJECTED, W_FULLY_PROCESSED, W_FAILED = 0, 3, 5, 6
W_PENDING_2FA, W_AUTO_ACCEPTED, W_SUBMITTED = 8, 9, 19
_DEPOSIT_FINAL = frozenset({D_FULLY_PROCESSED, D_REJECTED, 6, 11, 12, 14})
_WITHDRAW_FINAL = frozenset({W_FULLY_PROCESSED, W_REJECTED, W_FAILED, 11, 12, 15, 16, 18})


class ExchangeError(Exception):
    """A request the exchange refuses; rendered as AlphaPoint's generic error object."""

    def __init__(self, errorcode: int, errormsg: str, detail: str | None = None) -> None:
        super().__init__(f"{errormsg} ({detail})" if detail else errormsg)
        self.errorcode = errorcode
        self.errormsg = errormsg
        self.detail = detail


class InsufficientBalance(ExchangeError):
    """A withdrawal larger than the available balance (AlphaPoint's ``result:true`` sic)."""

    def __init__(self) -> None:
        super().__init__(100, "Invalid Request", "Insufficient Balance")


def invalid(detail: str) -> ExchangeError:
    """``errorcode 100`` with a detail."""
    return ExchangeError(100, "Invalid Request", detail)


def not_found(detail: str) -> ExchangeError:
    """``errorcode 104`` with a detail."""
    return ExchangeError(104, "Resource Not Found", detail)


def ms(now: float) -> int:
    """Epoch seconds -> epoch milliseconds."""
    return round(now * 1000)


def round_down(value: Decimal, increment: Decimal) -> Decimal:
    """Largest multiple of ``increment`` not above ``value`` (for value >= 0)."""
    return (value / increment).to_integral_value(ROUND_DOWN) * increment


@dataclass(slots=True)
class Balance:
    """``amount`` is the total; ``hold`` the part reserved by orders and withdrawals."""

    amount: Decimal = ZERO
    hold: Decimal = ZERO

    @property
    def available(self) -> Decimal:
        """``amount - hold``."""
        return self.amount - self.hold


@dataclass(slots=True)
class OrderRequest:
    """The parsed fields of a ``SendOrder`` request."""

    instrument_id: int
    side: int
    order_type: int
    quantity: Decimal = ZERO
    limit_price: Decimal = ZERO
    value: Decimal = ZERO
    time_in_force: int = GTC
    client_order_id: int = 0
    post_only: bool = False
    stop_price: Decimal = ZERO


@dataclass(slots=True, eq=False)
class Order:
    """An order and its live state.  ``quantity`` is what remains to fill."""

    order_id: int
    account_id: int
    user_id: int
    instrument_id: int
    side: int
    order_type: int
    time_in_force: int
    client_order_id: int
    orig_quantity: Decimal
    quantity: Decimal
    limit_price: Decimal
    value: Decimal
    state: str
    change_reason: str
    receive_time: int
    last_updated_time: int
    quantity_executed: Decimal = ZERO
    gross_value_executed: Decimal = ZERO
    hold: Decimal = ZERO
    hold_product: int = 0
    reject_reason: str = ""
    cancel_reason: str = ""
    post_only: bool = False
    stop_price: Decimal = ZERO
    inside_bid: Decimal = ZERO
    inside_bid_size: Decimal = ZERO
    inside_ask: Decimal = ZERO
    inside_ask_size: Decimal = ZERO
    last_trade_price: Decimal = ZERO
    order_flag: str = "0"
    trade_count: int = 0
    is_market_maker: bool = False
    revisions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def avg_price(self) -> Decimal:
        """Average fill price (8 decimals), 0 before any fill."""
        if not self.quantity_executed:
            return ZERO
        return (self.gross_value_executed / self.quantity_executed).quantize(
            Decimal("0.00000001"), ROUND_HALF_EVEN
        )

    @property
    def is_working(self) -> bool:
        """True while the order rests on the book."""
        return self.state == WORKING


@dataclass(slots=True)
class Trade:
    """One account's side of one match (a ``GetTradesHistory`` row)."""

    trade_id: int
    execution_id: int
    order_id: int
    client_order_id: int
    account_id: int
    user_id: int
    instrument_id: int
    side: int
    order_type: int
    quantity: Decimal
    remaining_quantity: Decimal
    price: Decimal
    value: Decimal
    fee: Decimal
    fee_product_id: int
    maker_taker: str
    counter_party: int
    direction: str
    trade_time_ms: int
    order_trade_revision: int
    inside_bid: Decimal = ZERO
    inside_bid_size: Decimal = ZERO
    inside_ask: Decimal = ZERO
    inside_ask_size: Decimal = ZERO


@dataclass(slots=True)
class DepositTicket:
    """A deposit and where it is on its status ``path``."""

    ticket_number: int
    request_code: str
    account_id: int
    user_id: int
    product_id: int
    amount: Decimal
    status: int
    path: list[int]
    step: float
    created_at: float
    updated_at: float
    stage: int = 0
    deposit_info: str = "{}"
    fee: Decimal = ZERO
    reject_reason: str = ""
    comments: str = ""
    asset_manager_id: int = 1
    operator_id: int = 1
    request_ip: str = "127.0.0.1"

    @property
    def is_final(self) -> bool:
        """True once the ticket stopped changing."""
        return self.status in _DEPOSIT_FINAL


@dataclass(slots=True)
class WithdrawTicket:
    """A withdrawal and where it is on its status ``path``."""

    ticket_number: int
    request_code: str
    account_id: int
    user_id: int
    product_id: int
    amount: Decimal
    fee: Decimal
    status: int
    path: list[int]
    step: float
    created_at: float
    updated_at: float
    stage: int = 0
    template_form: str = "{}"
    template_type: str = "Standard"
    reject_reason: str = ""
    request_ip: str = "127.0.0.1"
    account_provider_id: int = 0

    @property
    def is_final(self) -> bool:
        """True once the ticket stopped changing."""
        return self.status in _WITHDRAW_FINAL


@dataclass(slots=True, eq=False)
class Market:
    """Runtime state of one instrument: book, mid, last trade.  ``version`` bumps on change."""

    spec: InstrumentSpec
    mid: Decimal
    reference_price: Decimal
    bids: list[Order] = field(default_factory=list)
    asks: list[Order] = field(default_factory=list)
    last_price: Decimal = ZERO
    last_quantity: Decimal = ZERO
    last_trade_time: int = 0
    prints: list[tuple[int, int, Decimal, Decimal]] = field(default_factory=list)
    version: int = 0
    updated_ms: int = 0

    def book(self, side: int) -> list[Order]:
        """The resting orders of ``side``, best first."""
        return self.bids if side == BUY else self.asks

    @property
    def best_bid(self) -> Order | None:
        """Best (highest) bid, if any."""
        return self.bids[0] if self.bids else None

    @property
    def best_ask(self) -> Order | None:
        """Best (lowest) ask, if any."""
        return self.asks[0] if self.asks else None


_R = TypeVar("_R")


def _to_state(record: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(record):
        value = getattr(record, f.name)
        if f.name == "revisions":
            continue
        out[f.name] = str(value) if isinstance(value, Decimal) else value
    return out


def _from_state(cls: type[_R], data: Mapping[str, Any]) -> _R:
    kwargs: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]  # a dataclass type, by construction
        if f.name not in data:
            continue
        value = data[f.name]
        kwargs[f.name] = Decimal(value) if f.type == "Decimal" else value
    return cls(**kwargs)
