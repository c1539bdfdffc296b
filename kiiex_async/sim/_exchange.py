"""The simulated exchange: accounts, order books, matching, fees and tickets.

Pure: no I/O, no event loop, no clock.  Every method that depends on time takes ``now``
(epoch seconds, float); orders and trades carry epoch milliseconds.  The HTTP layer
(:mod:`._app`) parses requests, calls these methods and renders the records; saving and
loading the state is :mod:`._persist`'s, the journal and candle records :mod:`._history`'s.

Trading rules (decided where AlphaPoint's documents are silent):

* Quantities must be multiples of the instrument's ``QuantityIncrement`` and at least
  ``MinimumQuantity``; limit prices multiples of ``PriceIncrement``.  Violations are
  ``errorcode 100`` errors and create no order.
* Funds are checked up front; a shortfall creates an order in state ``Rejected`` with
  ``RejectReason "Not_Enough_Funds"`` (so reconciliation by ``ClientOrderId`` finds it).
* A working limit order holds what it could spend (``qty x limit`` of the quote for a buy,
  ``qty`` of the base for a sell); a pending withdrawal holds ``amount + fee``.
* Fees are charged on what an order receives, exactly (no rounding): a buy pays
  ``quantity x rate`` in the base product, a sell ``value x rate`` in the quote product.
* Market buy: ``Value`` > 0 spends at most that much quote.  Per the SLATE rule, a market
  buy with ``LimitPrice`` and no ``Quantity`` treats ``LimitPrice`` as that value; with a
  ``Quantity`` it is a price cap (levels above it are not taken; the rest is canceled).
* IOC remainders and unfillable FOK orders end ``Canceled``; a market order that empties
  the book ends ``Canceled`` with what it filled.  A self-trade cancels the resting order.
* The market maker (``SimConfig.market_maker_account_id``) owns the seeded liquidity and
  re-quotes a side when fewer than half of its levels remain, and both sides whenever the
  mid drifts.
"""

from __future__ import annotations

import bisect
import hashlib
import hmac
import math
import random
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from typing import Any, TypeVar

from .. import auth
from ._config import DemoUser, InstrumentSpec, ProductSpec, SimConfig
from ._history import Transaction

__all__ = [
    "BUY",
    "SELL",
    "DepositTicket",
    "Exchange",
    "ExchangeError",
    "InsufficientBalance",
    "Market",
    "Order",
    "OrderRequest",
    "Trade",
    "WithdrawTicket",
]

ZERO = Decimal(0)
BUY, SELL = 0, 1
MARKET, LIMIT = 1, 2
GTC, IOC, FOK, GTX = 1, 3, 4, 5
_INT64 = 2**63

#: Order state names as they travel on the wire.
WORKING, REJECTED, CANCELED, FULLY_EXECUTED = "Working", "Rejected", "Canceled", "FullyExecuted"

# Ticket statuses (AlphaPoint integers; see the reference's status table).
D_NEW, D_ADMIN_PROCESSING, D_ACCEPTED, D_REJECTED, D_FULLY_PROCESSED = 0, 1, 2, 3, 5
W_NEW, W_REJECTED, W_FULLY_PROCESSED, W_FAILED = 0, 3, 5, 6
W_PENDING_2FA, W_AUTO_ACCEPTED, W_SUBMITTED = 8, 9, 19
_DEPOSIT_FINAL = frozenset({D_FULLY_PROCESSED, D_REJECTED, 6, 11, 12, 14})
_WITHDRAW_FINAL = frozenset({W_FULLY_PROCESSED, W_REJECTED, W_FAILED, 11, 12, 15, 16, 18})

_FIRST_TRANSACTION = 9_000_001


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


def _round_up(value: Decimal, increment: Decimal) -> Decimal:
    return (value / increment).to_integral_value(ROUND_CEILING) * increment


def _is_multiple(value: Decimal, increment: Decimal) -> bool:
    return value % increment == 0


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


def _bid_key(order: Order) -> tuple[Decimal, int]:
    return (-order.limit_price, order.order_id)


def _ask_key(order: Order) -> tuple[Decimal, int]:
    return (order.limit_price, order.order_id)


_R = TypeVar("_R")
_Ticket = TypeVar("_Ticket", DepositTicket, WithdrawTicket)


def _find_ticket(
    tickets: Iterable[_Ticket], account_ids: Iterable[int], request_code: str, ticket_id: int
) -> _Ticket | None:
    """The ticket of one of ``account_ids`` with ``request_code`` (any case) or, when no
    code is given, with number ``ticket_id``."""
    allowed = set(account_ids)
    for ticket in tickets:
        if ticket.account_id in allowed and (
            (request_code and ticket.request_code.lower() == request_code.lower())
            or (not request_code and ticket_id and ticket.ticket_number == ticket_id)
        ):
            return ticket
    return None


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


class Exchange:
    """The whole simulated exchange.  Mutating methods bump :attr:`version`."""

    def __init__(self, config: SimConfig, *, now: float) -> None:
        self.config = config
        self.products: dict[int, ProductSpec] = {p.product_id: p for p in config.products}
        self._products_by_symbol = {p.symbol.upper(): p for p in config.products}
        self.users: dict[int, DemoUser] = {u.user_id: u for u in config.users}
        self._users_by_key = {u.api_key: u for u in config.users}
        self._users_by_name = {u.username.lower(): u for u in config.users}
        self._users_by_account = {u.account_id: u for u in config.users}
        self.mm_account_id = config.market_maker_account_id
        self.markets: dict[int, Market] = {}
        self.balances: dict[tuple[int, int], Balance] = {}
        self.orders: dict[int, Order] = {}
        self.trades: list[Trade] = []
        self.deposit_tickets: dict[int, DepositTicket] = {}
        self.withdraw_tickets: dict[int, WithdrawTicket] = {}
        self.fees_collected: dict[int, Decimal] = {}
        self.deposit_addresses: dict[tuple[int, int], list[str]] = {}
        #: Every change of a user account's amounts, oldest first (``GetAccountTransactions``).
        self.journal: list[Transaction] = []
        #: Forced outcomes ("FullyProcessed", "Failed", "Rejected") of the next withdrawals.
        self.withdraw_outcomes: list[str] = []
        self.version = 0
        self.last_now = now
        #: Called as ``observer(kind, subject)`` after each change (the WebSocket gateway
        #: listens): ``"book"`` (a Market), ``"order"`` (a user's Order), ``"trade"`` (a
        #: Trade), ``"ticket"`` (a Deposit/WithdrawTicket), ``"cancel_reject"`` (a dict).
        self.observers: list[Callable[[str, Any], None]] = []
        self._next = {"order": 5_000_001, "trade": 7_000_001, "execution": 8_000_001}
        self._next_deposit = 1001
        self._next_withdraw = 2001
        seed = config.seed
        self._market_rng = random.Random(f"{seed}:market")
        self._ticket_rng = random.Random(f"{seed}:tickets")
        self._guid_rng = random.Random(f"{seed}:guid")
        self._drift_origin = now
        self._drift_steps = 0
        self._live_deposits: list[DepositTicket] = []
        self._live_withdrawals: list[WithdrawTicket] = []
        for user in config.users:
            self._open_account(user, ms(now))
        big = Decimal(10) ** 15
        for product in config.products:
            self._balance(self.mm_account_id, product.product_id).amount = big
        now_ms = ms(now)
        for spec in config.instruments:
            market = Market(spec=spec, mid=spec.mid, reference_price=spec.mid)
            market.last_price = spec.mid
            market.updated_ms = now_ms
            self.markets[spec.instrument_id] = market
            self._requote(market, (BUY, SELL), now_ms)

    def _emit(self, kind: str, subject: Any) -> None:
        for observer in self.observers:
            observer(kind, subject)

    # ------------------------------------------------------------------ lookups

    def product(self, key: int | str) -> ProductSpec:
        """A product by id or symbol (``errorcode 100`` if unknown)."""
        found = (
            self._products_by_symbol.get(key.upper())
            if isinstance(key, str)
            else self.products.get(key)
        )
        if found is None:
            raise ExchangeError(100, f"Invalid ProductId: {key}")
        return found

    def market(self, instrument_id: int) -> Market:
        """An instrument's market (``errorcode 100`` ``Invalid InstrumentId`` if unknown)."""
        market = self.markets.get(instrument_id)
        if market is None:
            raise ExchangeError(100, f"Invalid InstrumentId: {instrument_id}")
        return market

    def user_for_account(self, account_id: int) -> DemoUser | None:
        """The user owning ``account_id`` (``None`` for the market maker / unknown)."""
        return self._users_by_account.get(account_id)

    def account_name(self, account_id: int) -> str:
        """Display name of an account."""
        if account_id == self.mm_account_id:
            return "market-maker"
        user = self._users_by_account.get(account_id)
        return user.username if user else str(account_id)

    def user_by_name(self, username: str) -> DemoUser | None:
        """A user by username (case-insensitive) or e-mail."""
        user = self._users_by_name.get(username.lower())
        if user is None:
            user = next((u for u in self.users.values() if u.email == username), None)
        return user

    def check_password(self, username: str, password: str) -> DemoUser | None:
        """The user if ``username``/``password`` match."""
        user = self.user_by_name(username)
        if user is None or not _safe_equal(user.password, password):
            return None
        return user

    def check_signature(
        self, *, api_key: str, user_id: str, nonce: str, signature: str
    ) -> DemoUser | None:
        """The user if the AlphaPoint signature is valid (any nonce is accepted)."""
        user = self._users_by_key.get(api_key)
        if user is None or str(user.user_id) != str(user_id).strip() or not nonce:
            return None
        ok = auth.verify_signature(
            api_secret=user.api_secret,
            nonce=nonce,
            user_id=user_id.strip(),
            api_key=api_key,
            signature=signature,
        )
        return user if ok else None

    def balance(self, account_id: int, product: int | str) -> tuple[Decimal, Decimal]:
        """``(amount, hold)`` of one product in one account."""
        bal = self.balances.get((account_id, self.product(product).product_id))
        return (bal.amount, bal.hold) if bal else (ZERO, ZERO)

    def _open_account(self, user: DemoUser, now_ms: int) -> None:
        for symbol, amount in user.balances.items():
            product = self._products_by_symbol[symbol.upper()]
            self._post(
                user.account_id, product.product_id, amount, "Other", "ManualEntry", 0, now_ms
            )

    def _post(
        self,
        account_id: int,
        product_id: int,
        delta: Decimal,
        kind: str,
        reference: str,
        reference_id: int,
        now_ms: int,
        counterparty: int = 0,
    ) -> None:
        """Change an amount by ``delta`` and journal it (the market maker is not journaled)."""
        bal = self._balance(account_id, product_id)
        bal.amount += delta
        if account_id == self.mm_account_id or not delta:
            return
        self.journal.append(
            Transaction(
                transaction_id=_FIRST_TRANSACTION + len(self.journal),
                account_id=account_id,
                product_id=product_id,
                cr=max(delta, ZERO),
                dr=max(-delta, ZERO),
                balance=bal.amount,
                transaction_type=kind,
                reference_type=reference,
                reference_id=reference_id,
                counterparty=counterparty,
                time_ms=now_ms,
            )
        )

    def _balance(self, account_id: int, product_id: int) -> Balance:
        key = (account_id, product_id)
        bal = self.balances.get(key)
        if bal is None:
            bal = self.balances[key] = Balance()
        return bal

    def pending(self, account_id: int, product_id: int) -> tuple[Decimal, Decimal]:
        """``(pending deposits, pending withdrawals)`` of a product in an account."""
        dep = sum(
            (
                t.amount
                for t in self._live_deposits
                if t.account_id == account_id and t.product_id == product_id
            ),
            ZERO,
        )
        wd = sum(
            (
                t.amount
                for t in self._live_withdrawals
                if t.account_id == account_id and t.product_id == product_id
            ),
            ZERO,
        )
        return dep, wd

    def notional_rate(self, product_id: int, notional_product_id: int = 1) -> Decimal:
        """Value of one unit of ``product_id`` in ``notional_product_id``, from the mids."""
        if product_id == notional_product_id:
            return Decimal(1)
        for market in self.markets.values():
            spec = market.spec
            if spec.base == product_id and spec.quote == notional_product_id:
                return market.mid
            if spec.quote == product_id and spec.base == notional_product_id:
                return (1 / market.mid).quantize(Decimal("0.00000001"), ROUND_HALF_EVEN)
        return ZERO

    # ------------------------------------------------------------------ time

    def tick(self, now: float) -> None:
        """Bring the exchange to ``now``: drift the mids, advance tickets."""
        if now > self.last_now:
            self.last_now = now
        cfg = self.config
        if cfg.drift_interval > 0 and cfg.drift_bps > 0:
            due = int((now - self._drift_origin) / cfg.drift_interval)
            if due > self._drift_steps:
                self._drift(min(due - self._drift_steps, 1000), now)
                self._drift_steps = due
        if self._live_deposits or self._live_withdrawals:
            self._advance_tickets(now)

    def _drift(self, steps: int, now: float) -> None:
        sigma = float(self.config.drift_bps) / 10_000
        now_ms = ms(now)
        for market in self.markets.values():
            spec = market.spec
            mid = market.mid
            for _ in range(steps):
                factor = Decimal(repr(1 + self._market_rng.gauss(0.0, sigma)))
                mid = (mid * factor).quantize(spec.price_increment, ROUND_HALF_EVEN)
                mid = max(mid, spec.price_increment * 10)
            market.mid = mid
            self._requote(market, (BUY, SELL), now_ms)
        self.version += 1

    # ------------------------------------------------------------------ trading

    def send_order(
        self, request: OrderRequest, *, account_id: int, user_id: int, now: float
    ) -> Order:
        """Validate, fund-check, match and (for GTC limits) rest an order.

        Raises :class:`ExchangeError` for an invalid request (no order is created);
        returns the order otherwise, possibly in state ``Rejected`` (funds, post-only).
        """
        market = self.market(request.instrument_id)
        req = self._validate(request, market.spec)
        now_ms = ms(now)
        order = self._new_order(req, market, account_id, user_id, now_ms)
        self.orders[order.order_id] = order
        self.version += 1
        self._snapshot(order)
        spec = market.spec
        buy = req.side == BUY
        cap: Decimal | None = None
        qty_left: Decimal | None = req.quantity if req.quantity > 0 else None
        value_left: Decimal | None = req.value if req.value > 0 else None
        if req.order_type == LIMIT or req.limit_price > 0:
            cap = req.limit_price

        if req.order_type == LIMIT and (req.post_only or req.time_in_force == GTX):
            opposite = market.best_ask if buy else market.best_bid
            if opposite is not None and (
                opposite.limit_price <= req.limit_price
                if buy
                else opposite.limit_price >= req.limit_price
            ):
                return self._reject(order, "Post_Only_Would_Cross", now_ms)

        if buy:
            hold_product = spec.quote
            if req.order_type == LIMIT:
                need = req.quantity * req.limit_price
            elif value_left is not None and qty_left is None:
                need = value_left
            else:
                _, need, _ = self._walk(market, order, qty_left, value_left, cap, now_ms, False)
        else:
            hold_product = spec.base
            need = req.quantity
        if self._balance(account_id, hold_product).available < need:
            return self._reject(order, "Not_Enough_Funds", now_ms)

        if req.time_in_force == FOK and req.order_type == LIMIT:
            filled, _, _ = self._walk(market, order, qty_left, None, cap, now_ms, False)
            if filled < req.quantity:
                self._finish(order, CANCELED, "SystemCanceled_NoMoreMarket", "FOK", now_ms)
                return order

        self._hold(order, hold_product, need)
        _, _, exhausted = self._walk(market, order, qty_left, value_left, cap, now_ms, True)
        if req.order_type == MARKET:
            if qty_left is None:
                order.orig_quantity = order.quantity_executed
            if exhausted and (qty_left is None or order.quantity > 0):
                self._finish(order, CANCELED, "SystemCanceled_NoMoreMarket", "NoMoreMarket", now_ms)
            else:
                self._finish(order, FULLY_EXECUTED, order.change_reason, "", now_ms)
        elif order.quantity <= 0:
            self._finish(order, FULLY_EXECUTED, order.change_reason, "", now_ms)
        elif req.time_in_force == IOC:
            self._finish(order, CANCELED, "SystemCanceled_NoMoreMarket", "IOC", now_ms)
        else:
            self._rest(market, order)
            self._snapshot(order)
        self._replenish(market, now_ms)
        market.updated_ms = now_ms
        if order.is_working:
            self._emit("order", order)
        return order

    def _validate(self, req: OrderRequest, spec: InstrumentSpec) -> OrderRequest:
        if req.side == 2:
            raise ExchangeError(106, "Operation Not Supported", "Side Short is not supported")
        if req.side not in (BUY, SELL):
            raise invalid(f"Invalid Side: {req.side}")
        if 3 <= req.order_type <= 7:
            raise ExchangeError(
                106, "Operation Not Supported", f"OrderType {req.order_type} is not supported"
            )
        if req.order_type not in (MARKET, LIMIT):
            raise invalid(f"Invalid OrderType: {req.order_type}")
        if req.time_in_force in (2, 6):
            raise ExchangeError(
                106, "Operation Not Supported", f"TimeInForce {req.time_in_force} not supported"
            )
        if req.time_in_force not in (GTC, IOC, FOK, GTX):
            raise invalid(f"Invalid TimeInForce: {req.time_in_force}")
        if not -_INT64 <= req.client_order_id < _INT64:
            raise invalid("ClientOrderId must fit a signed 64-bit integer")
        for name, amount in (
            ("Quantity", req.quantity),
            ("LimitPrice", req.limit_price),
            ("Value", req.value),
        ):
            if amount < 0:
                raise invalid(f"{name} must not be negative")
        market_buy = req.order_type == MARKET and req.side == BUY
        if req.value > 0 and not market_buy:
            raise invalid("Value is only valid for a market buy")
        if market_buy and req.quantity == 0 and req.value == 0 and req.limit_price > 0:
            # SLATE: a market buy with LimitPrice "will execute up to the value specified".
            req.value, req.limit_price = req.limit_price, ZERO
        by_value = market_buy and req.value > 0
        if req.quantity == 0 and not by_value:
            raise invalid("Quantity must be greater than 0")
        if req.quantity > 0:
            if not _is_multiple(req.quantity, spec.quantity_increment):
                raise invalid(
                    f"Quantity {req.quantity} is not a multiple of QuantityIncrement "
                    f"{spec.quantity_increment}"
                )
            if req.quantity < spec.minimum_quantity:
                raise invalid(
                    f"Quantity {req.quantity} is below MinimumQuantity {spec.minimum_quantity}"
                )
        if req.order_type == LIMIT and req.limit_price <= 0:
            raise invalid("LimitPrice is required for a limit order")
        if req.limit_price > 0:
            if not _is_multiple(req.limit_price, spec.price_increment):
                raise invalid(
                    f"LimitPrice {req.limit_price} is not a multiple of PriceIncrement "
                    f"{spec.price_increment}"
                )
            if req.limit_price < spec.minimum_price:
                raise invalid(f"LimitPrice is below MinimumPrice {spec.minimum_price}")
        return req

    def _new_order(
        self, req: OrderRequest, market: Market, account_id: int, user_id: int, now_ms: int
    ) -> Order:
        inside = self._inside(market)
        return Order(
            order_id=self._id("order"),
            account_id=account_id,
            user_id=user_id,
            instrument_id=market.spec.instrument_id,
            side=req.side,
            order_type=req.order_type,
            time_in_force=req.time_in_force,
            client_order_id=req.client_order_id,
            orig_quantity=req.quantity,
            quantity=req.quantity,
            limit_price=req.limit_price,
            value=req.value,
            state=WORKING,
            change_reason="NewInputAccepted",
            receive_time=now_ms,
            last_updated_time=now_ms,
            post_only=req.post_only,
            stop_price=req.stop_price,
            inside_bid=inside[0],
            inside_bid_size=inside[1],
            inside_ask=inside[2],
            inside_ask_size=inside[3],
            last_trade_price=market.last_price,
        )

    def _inside(self, market: Market) -> tuple[Decimal, Decimal, Decimal, Decimal]:
        """The inside market: best bid, its size, best ask, its size (0 for an empty side)."""
        bid, ask = market.best_bid, market.best_ask
        return (
            bid.limit_price if bid else ZERO,
            self._level_size(market.bids),
            ask.limit_price if ask else ZERO,
            self._level_size(market.asks),
        )

    @staticmethod
    def _level_size(book: list[Order]) -> Decimal:
        if not book:
            return ZERO
        price = book[0].limit_price
        total = ZERO
        for order in book:
            if order.limit_price != price:
                break
            total += order.quantity
        return total

    def _id(self, kind: str) -> int:
        value = self._next[kind]
        self._next[kind] = value + 1
        return value

    def _reject(self, order: Order, reason: str, now_ms: int) -> Order:
        order.reject_reason = reason
        order.quantity = ZERO
        self._finish(order, REJECTED, "NewInputRejected", "", now_ms)
        return order

    def _hold(self, order: Order, product_id: int, amount: Decimal) -> None:
        order.hold_product = product_id
        order.hold = amount
        self._balance(order.account_id, product_id).hold += amount

    def _release(self, order: Order, amount: Decimal) -> None:
        amount = min(amount, order.hold)
        if amount > 0:
            order.hold -= amount
            self._balance(order.account_id, order.hold_product).hold -= amount

    def _finish(
        self, order: Order, state: str, reason: str, cancel_reason: str, now_ms: int
    ) -> None:
        order.state = state
        order.change_reason = reason
        order.cancel_reason = cancel_reason
        order.last_updated_time = now_ms
        if state == CANCELED:
            order.quantity = ZERO
        if "AddedToBook" in order.order_flag:
            order.order_flag = "AddedToBook, RemovedFromBook"
        self._release(order, order.hold)
        self.version += 1
        if not order.is_market_maker:
            self._snapshot(order)
            self._emit("order", order)

    def _snapshot(self, order: Order) -> None:
        """Record a revision; a fill's later changes (its order finishing or resting) update
        that fill's ``Trade`` revision, so there is exactly one ``Trade`` revision per fill
        (ccxt builds ``fetch_order_trades`` from them)."""
        state = _to_state(order)
        last = order.revisions[-1] if order.revisions else None
        if (
            last is not None
            and state["change_reason"] == last["change_reason"] == "Trade"
            and state["trade_count"] == last["trade_count"]
        ):
            order.revisions[-1] = state
        else:
            order.revisions.append(state)

    def _rest(self, market: Market, order: Order) -> None:
        if order.side == BUY:
            bisect.insort(market.bids, order, key=_bid_key)
        else:
            bisect.insort(market.asks, order, key=_ask_key)
        order.order_flag = "AddedToBook"
        market.version += 1
        self._emit("book", market)

    def _unrest(self, market: Market, order: Order) -> None:
        book = market.book(order.side)
        for i, resting in enumerate(book):
            if resting is order:
                del book[i]
                market.version += 1
                self._emit("book", market)
                return

    def _walk(
        self,
        market: Market,
        order: Order,
        qty_left: Decimal | None,
        value_left: Decimal | None,
        cap: Decimal | None,
        now_ms: int,
        execute: bool,
    ) -> tuple[Decimal, Decimal, bool]:
        """Take liquidity best price first; returns ``(filled, cost, book_exhausted)``.

        With ``execute=False`` it only plans (used for funds and FOK checks); planning and
        execution walk the same way, so the plan is exact.
        """
        buy = order.side == BUY
        book = market.asks if buy else market.bids
        increment = market.spec.quantity_increment
        filled = cost = ZERO
        i = 0
        while i < len(book):
            maker = book[i]
            price = maker.limit_price
            if cap is not None and (price > cap if buy else price < cap):
                return filled, cost, True
            if maker.account_id == order.account_id:
                if execute:
                    self._unrest(market, maker)
                    self._finish(maker, CANCELED, "UserModified", "SelfTradePrevention", now_ms)
                else:
                    i += 1
                continue
            qty = maker.quantity
            if qty_left is not None:
                qty = min(qty, qty_left - filled)
            if value_left is not None:
                affordable = round_down((value_left - cost) / price, increment)
                while affordable > 0 and affordable * price > value_left - cost:
                    affordable -= increment
                qty = min(qty, affordable)
            if qty <= 0:
                return filled, cost, False
            if execute:
                self._fill(market, order, maker, qty, now_ms)
            if i < len(book) and book[i] is maker:
                i += 1
            filled += qty
            cost += qty * price
            if qty_left is not None and filled >= qty_left:
                return filled, cost, False
        return filled, cost, True

    def _fill(self, market: Market, taker: Order, maker: Order, qty: Decimal, now_ms: int) -> None:
        spec = market.spec
        price = maker.limit_price
        value = qty * price
        trade_id = self._id("trade")
        if price > market.last_price:
            direction = "UpTick"
        elif price < market.last_price:
            direction = "DownTick"
        else:
            direction = "NoChange"
        inside = self._inside(market)
        for order, role, other in ((taker, "Taker", maker), (maker, "Maker", taker)):
            rate = self.config.taker_fee if role == "Taker" else self.config.maker_fee
            account, peer = order.account_id, other.account_id
            if order.side == BUY:
                self._release(
                    order, qty * order.limit_price if order.order_type == LIMIT else value
                )
                self._post(account, spec.quote, -value, "Trade", "Trade", trade_id, now_ms, peer)
                fee, fee_product = qty * rate, spec.base
                self._post(account, spec.base, qty, "Trade", "Trade", trade_id, now_ms, peer)
            else:
                self._release(order, qty)
                self._post(account, spec.base, -qty, "Trade", "Trade", trade_id, now_ms, peer)
                fee, fee_product = value * rate, spec.quote
                self._post(account, spec.quote, value, "Trade", "Trade", trade_id, now_ms, peer)
            self._post(account, fee_product, -fee, "Fee", "Trade", trade_id, now_ms)
            self.fees_collected[fee_product] = self.fees_collected.get(fee_product, ZERO) + fee
            order.quantity = max(order.quantity - qty, ZERO)
            order.quantity_executed += qty
            order.gross_value_executed += value
            order.change_reason = "Trade"
            order.last_updated_time = now_ms
            order.trade_count += 1
            if order.is_market_maker and order.order_id not in self.orders:
                self.orders[order.order_id] = order
            self.trades.append(
                Trade(
                    trade_id=trade_id,
                    execution_id=self._id("execution"),
                    order_id=order.order_id,
                    client_order_id=order.client_order_id,
                    account_id=order.account_id,
                    user_id=order.user_id,
                    instrument_id=spec.instrument_id,
                    side=order.side,
                    order_type=order.order_type,
                    quantity=qty,
                    remaining_quantity=order.quantity,
                    price=price,
                    value=value,
                    fee=fee,
                    fee_product_id=fee_product,
                    maker_taker=role,
                    counter_party=other.account_id,
                    direction=direction,
                    trade_time_ms=now_ms,
                    order_trade_revision=order.trade_count,
                    inside_bid=inside[0],
                    inside_bid_size=inside[1],
                    inside_ask=inside[2],
                    inside_ask_size=inside[3],
                )
            )
            self._emit("trade", self.trades[-1])
            if not order.is_market_maker:
                self._snapshot(order)
                self._emit("order", order)
        if maker.quantity <= 0:
            self._unrest(market, maker)
            self._finish(maker, FULLY_EXECUTED, "Trade", "", now_ms)
        market.last_price = price
        market.last_quantity = qty
        market.last_trade_time = now_ms
        market.prints.append((trade_id, now_ms, price, qty))
        market.version += 1
        market.updated_ms = now_ms
        self.version += 1
        self._emit("book", market)

    def cancel_order(
        self,
        *,
        account_ids: Iterable[int],
        order_id: int = 0,
        client_order_id: int = 0,
        account_id: int | None = None,
        now: float,
    ) -> Order:
        """Cancel a working order by ``order_id`` or by (account, ``client_order_id``).

        ``errorcode 104`` if no such order of these accounts; ``101`` if it is not working.
        """
        allowed = set(account_ids)
        order: Order | None = None
        if order_id:
            order = self.orders.get(order_id)
            if order is not None and order.account_id not in allowed:
                order = None
        elif client_order_id:
            candidates = [
                o
                for o in self.orders.values()
                if o.client_order_id == client_order_id
                and o.account_id in allowed
                and (account_id is None or o.account_id == account_id)
            ]
            working = [o for o in candidates if o.is_working]
            pool = working or candidates
            order = pool[-1] if pool else None
        else:
            raise invalid("OrderId or ClOrderId is required")
        if order is None:
            self._emit("cancel_reject", {"accounts": allowed, "order_id": order_id})
            raise not_found("Order not found")
        if not order.is_working:
            self._emit("cancel_reject", {"accounts": {order.account_id}, "order_id": order_id})
            raise ExchangeError(101, "Operation Failed", f"Order is {order.state}")
        market = self.markets[order.instrument_id]
        self._unrest(market, order)
        self._finish(order, CANCELED, "UserModified", "UserModified", ms(now))
        market.updated_ms = ms(now)
        return order

    def cancel_all_orders(self, account_id: int, instrument_id: int, now: float) -> int:
        """Cancel every working order of an account (optionally one instrument)."""
        count = 0
        for order in list(self.orders.values()):
            if (
                order.account_id == account_id
                and order.is_working
                and (not instrument_id or order.instrument_id == instrument_id)
            ):
                market = self.markets[order.instrument_id]
                self._unrest(market, order)
                self._finish(order, CANCELED, "UserModified", "UserModified", ms(now))
                market.updated_ms = ms(now)
                count += 1
        return count

    # ------------------------------------------------------------------ market maker

    def _levels(self, market: Market, side: int) -> list[tuple[Decimal, Decimal]]:
        cfg, spec = self.config, market.spec
        mid, tick = market.mid, spec.price_increment
        half = mid * cfg.spread_bps / 20_000
        step = max(tick, round_down(mid * cfg.level_step_bps / 10_000, tick))
        best_bid = round_down(mid - half, tick)
        best_ask = _round_up(mid + half, tick)
        if best_ask <= best_bid:
            best_ask = best_bid + tick
        qty = round_down(spec.level_quantity, spec.quantity_increment)
        levels = []
        for i in range(cfg.book_levels):
            price = best_bid - step * i if side == BUY else best_ask + step * i
            if price < spec.minimum_price or price <= 0:
                break
            levels.append((price, qty))
        return levels

    def _requote(self, market: Market, sides: Iterable[int], now_ms: int) -> None:
        sides = tuple(sides)
        for side in sides:
            for order in [o for o in market.book(side) if o.is_market_maker]:
                self._unrest(market, order)
                if order.quantity_executed:
                    self._finish(order, CANCELED, "UserModified", "Requote", now_ms)
                else:
                    self._release(order, order.hold)
        for side in sides:
            for price, qty in self._levels(market, side):
                self._quote(market, side, price, qty, now_ms)
        market.version += 1
        market.updated_ms = now_ms

    def _quote(self, market: Market, side: int, price: Decimal, qty: Decimal, now_ms: int) -> None:
        spec = market.spec
        order = Order(
            order_id=self._id("order"),
            account_id=self.mm_account_id,
            user_id=self.mm_account_id,
            instrument_id=spec.instrument_id,
            side=side,
            order_type=LIMIT,
            time_in_force=GTC,
            client_order_id=0,
            orig_quantity=qty,
            quantity=qty,
            limit_price=price,
            value=ZERO,
            state=WORKING,
            change_reason="NewInputAccepted",
            receive_time=now_ms,
            last_updated_time=now_ms,
            is_market_maker=True,
        )
        if side == BUY:
            self._hold(order, spec.quote, qty * price)
        else:
            self._hold(order, spec.base, qty)
        self._walk(market, order, qty, None, price, now_ms, True)
        if order.quantity > 0:
            self._rest(market, order)
        else:
            self._finish(order, FULLY_EXECUTED, "Trade", "", now_ms)

    def _replenish(self, market: Market, now_ms: int) -> None:
        floor = max(1, self.config.book_levels // 2)
        thin = [
            side
            for side in (BUY, SELL)
            if sum(1 for o in market.book(side) if o.is_market_maker) < floor
        ]
        if thin:
            self._requote(market, thin, now_ms)

    # ------------------------------------------------------------------ queries

    def orders_of(self, account_id: int) -> list[Order]:
        """Every order of an account, most recent first."""
        found = [o for o in self.orders.values() if o.account_id == account_id]
        found.sort(key=lambda o: o.order_id, reverse=True)
        return found

    def revisions(self, order: Order) -> list[Order]:
        """Every recorded state of an order, oldest first (``GetOrderHistoryByOrderId``)."""
        return [_from_state(Order, r) for r in order.revisions]

    def trades_of(self, account_id: int) -> list[Trade]:
        """Every execution of an account, most recent first."""
        return [t for t in reversed(self.trades) if t.account_id == account_id]

    # ------------------------------------------------------------------ tickets

    def guid(self) -> str:
        """A reproducible GUID (seeded)."""
        return str(uuid.UUID(int=self._guid_rng.getrandbits(128), version=4))

    def create_deposit_ticket(
        self,
        *,
        account_id: int,
        user_id: int,
        product_id: int,
        amount: Decimal,
        deposit_info: str,
        now: float,
        asset_manager_id: int = 1,
        operator_id: int = 1,
    ) -> DepositTicket:
        """Open a deposit; it credits ``amount`` once it reaches ``FullyProcessed``."""
        product = self.product(product_id)
        if not product.deposit_enabled:
            raise ExchangeError(106, "Operation Not Supported", "Deposits are disabled")
        if amount <= 0:
            raise invalid("Amount must be greater than 0")
        rejected = self._ticket_rng.random() < self.config.deposit_reject_probability
        path = [D_NEW, D_ADMIN_PROCESSING]
        path += [D_REJECTED] if rejected else [D_ACCEPTED, D_FULLY_PROCESSED]
        ticket = DepositTicket(
            ticket_number=self._next_deposit,
            request_code=self.guid(),
            account_id=account_id,
            user_id=user_id,
            product_id=product.product_id,
            amount=amount,
            status=D_NEW,
            path=path,
            step=self.config.deposit_step_seconds,
            created_at=now,
            updated_at=now,
            deposit_info=deposit_info,
            asset_manager_id=asset_manager_id,
            operator_id=operator_id,
        )
        self._next_deposit += 1
        self.deposit_tickets[ticket.ticket_number] = ticket
        self._live_deposits.append(ticket)
        self.version += 1
        self._emit("ticket", ticket)
        self._advance_tickets(now)
        return ticket

    def withdraw_fee(self, product_id: int, amount: Decimal) -> Decimal:
        """The (flat) fee of a withdrawal of ``amount``."""
        return self.product(product_id).withdraw_fee

    def create_withdraw_ticket(
        self,
        *,
        account_id: int,
        user_id: int,
        product_id: int,
        amount: Decimal,
        template_type: str,
        template_form: str,
        now: float,
        pending_2fa: bool = False,
    ) -> WithdrawTicket:
        """Hold ``amount + fee`` and open a withdrawal (:class:`InsufficientBalance`)."""
        product = self.product(product_id)
        if not product.withdraw_enabled:
            raise ExchangeError(106, "Operation Not Supported", "Withdrawals are disabled")
        if amount <= 0:
            raise invalid("Amount must be greater than 0")
        fee = self.withdraw_fee(product.product_id, amount)
        bal = self._balance(account_id, product.product_id)
        if bal.available < amount + fee:
            raise InsufficientBalance()
        draw = self._ticket_rng.random()
        if self.withdraw_outcomes:
            outcome = self.withdraw_outcomes.pop(0)
        elif draw < self.config.withdraw_fail_probability:
            outcome = self.config.withdraw_fail_status
        else:
            outcome = "FullyProcessed"
        path = [W_NEW]
        if pending_2fa or self.config.withdraw_pending_2fa:
            path.append(W_PENDING_2FA)
        if outcome == "Rejected":
            path.append(W_REJECTED)
        elif outcome == "Failed":
            path += [W_AUTO_ACCEPTED, W_SUBMITTED, W_FAILED]
        else:
            path += [W_AUTO_ACCEPTED, W_SUBMITTED, W_FULLY_PROCESSED]
        ticket = WithdrawTicket(
            ticket_number=self._next_withdraw,
            request_code=self.guid(),
            account_id=account_id,
            user_id=user_id,
            product_id=product.product_id,
            amount=amount,
            fee=fee,
            status=W_NEW,
            path=path,
            step=self.config.withdraw_step_seconds,
            created_at=now,
            updated_at=now,
            template_form=template_form,
            template_type=template_type,
            account_provider_id=product.product_id,
        )
        self._next_withdraw += 1
        bal.hold += amount + fee
        self.withdraw_tickets[ticket.ticket_number] = ticket
        self._live_withdrawals.append(ticket)
        self.version += 1
        self._emit("ticket", ticket)
        self._advance_tickets(now)
        return ticket

    def _advance_tickets(self, now: float) -> None:
        for deposit in list(self._live_deposits):
            if self._advance(deposit, now):
                if deposit.status == D_FULLY_PROCESSED:
                    self._post(
                        deposit.account_id,
                        deposit.product_id,
                        deposit.amount,
                        "Other",
                        "Deposit",
                        deposit.ticket_number,
                        ms(deposit.updated_at),
                    )
                elif deposit.status == D_REJECTED:
                    deposit.reject_reason = "Rejected by the operator (simulated)"
                self._live_deposits.remove(deposit)
        for wd in list(self._live_withdrawals):
            if self._advance(wd, now):
                bal = self._balance(wd.account_id, wd.product_id)
                bal.hold -= wd.amount + wd.fee
                if wd.status == W_FULLY_PROCESSED:
                    when, number = ms(wd.updated_at), wd.ticket_number
                    self._post(
                        wd.account_id, wd.product_id, -wd.amount, "Other", "Withdraw", number, when
                    )
                    self._post(
                        wd.account_id, wd.product_id, -wd.fee, "Fee", "Withdraw", number, when
                    )
                    self.fees_collected[wd.product_id] = (
                        self.fees_collected.get(wd.product_id, ZERO) + wd.fee
                    )
                else:
                    wd.reject_reason = (
                        "Rejected by the operator (simulated)"
                        if wd.status == W_REJECTED
                        else "Blockchain transfer failed (simulated)"
                    )
                self._live_withdrawals.remove(wd)

    def _advance(self, ticket: DepositTicket | WithdrawTicket, now: float) -> bool:
        """Move a ticket along its path up to ``now``; True when it reached its end."""
        last = len(ticket.path) - 1
        if ticket.step <= 0:
            target = last
        else:
            target = min(last, math.floor((now - ticket.created_at) / ticket.step + 1e-9))
        if target > ticket.stage:
            ticket.stage = target
            ticket.status = ticket.path[target]
            ticket.updated_at = ticket.created_at + target * max(ticket.step, 0.0)
            self.version += 1
            self._emit("ticket", ticket)
        return ticket.stage >= last

    def find_deposit_ticket(
        self, account_ids: Iterable[int], *, request_code: str = "", ticket_id: int = 0
    ) -> DepositTicket:
        """A deposit ticket by request code or ticket number (``errorcode 104``)."""
        ticket = _find_ticket(self.deposit_tickets.values(), account_ids, request_code, ticket_id)
        if ticket is None:
            raise not_found("Deposit ticket not found")
        return ticket

    def find_withdraw_ticket(
        self, account_ids: Iterable[int], *, request_code: str = "", ticket_id: int = 0
    ) -> WithdrawTicket:
        """A withdraw ticket by request code or ticket number (``errorcode 104``)."""
        ticket = _find_ticket(self.withdraw_tickets.values(), account_ids, request_code, ticket_id)
        if ticket is None:
            raise not_found("Withdraw ticket not found")
        return ticket

    def deposit_info(self, account_id: int, product_id: int, *, generate_new: bool) -> list[str]:
        """Deposit addresses of a product (a new one first time or on ``generate_new``)."""
        product = self.product(product_id)
        addresses = self.deposit_addresses.setdefault((account_id, product.product_id), [])
        if generate_new or not addresses:
            n = len(addresses)
            digest = hashlib.sha256(
                f"{self.config.seed}:{account_id}:{product.product_id}:{n}".encode()
            ).hexdigest()
            if product.product_type == "NationalCurrency":
                addresses.append(f"{product.symbol}-REF-{account_id}-{digest[:10].upper()}")
            else:
                addresses.append("0x" + digest[:40])
            self.version += 1
        return list(addresses)

    # ------------------------------------------------------------------ state

    def to_state(self) -> dict[str, Any]:
        """All mutable state as plain JSON-able data (Decimals as strings); see
        :mod:`._persist`."""
        from ._persist import exchange_to_state

        return exchange_to_state(self)

    @classmethod
    def from_state(cls, config: SimConfig, data: Mapping[str, Any], *, now: float) -> Exchange:
        """Rebuild an exchange saved by :meth:`to_state` (``ValueError`` if incompatible)."""
        from ._persist import exchange_from_state

        return exchange_from_state(cls, config, data, now=now)


def _safe_equal(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
