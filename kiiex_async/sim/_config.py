"""Configuration of the simulated exchange: users, products, instruments and knobs."""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any, TypedDict

import attrs

from ..errors import ConfigurationError

__all__ = [
    "DEFAULT_INSTRUMENTS",
    "DEFAULT_PRODUCTS",
    "DIALECTS",
    "CredentialsKwargs",
    "DemoUser",
    "InstrumentSpec",
    "ProductSpec",
    "SimConfig",
]

#: Public demo credentials of the simulator.  They protect nothing and are printed by
#: ``kiiex sim``; they are constants so that examples and docs can quote them.
DEMO_API_KEY = "4f1c2a9e8b7d6c5e4f3a2b1c0d9e8f7a"
DEMO_API_SECRET = "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d"
DEMO_PASSWORD = "demo-password"

#: What the simulator can speak: AlphaPoint's full answers, or KIIEX's quick-start guide.
DIALECTS = ("apex", "guide")


def _decimal(value: object) -> Decimal:
    if isinstance(value, (bool, float)):
        raise ConfigurationError(f"pass money as Decimal, int or str, not {value!r}")
    if isinstance(value, Decimal):
        result = value
    elif isinstance(value, int | str):
        result = Decimal(value)
    else:
        raise ConfigurationError(f"not a decimal: {value!r}")
    if not result.is_finite():
        raise ConfigurationError(f"not a finite decimal: {value!r}")
    return result


def _balances(value: Mapping[str, Any]) -> Mapping[str, Decimal]:
    return types.MappingProxyType({str(k): _decimal(v) for k, v in value.items()})


def _default_balances() -> Mapping[str, Decimal]:
    return _balances({"USDT": 10_000, "USDC": 10_000})


class CredentialsKwargs(TypedDict):
    """The keyword arguments of ``kiiex_async.Credentials`` that log in as the demo user."""

    api_key: str
    api_secret: str
    user_id: str
    username: str
    password: str


@attrs.frozen
class DemoUser:
    """A user of the simulated exchange with one account and its opening balances.

    ``balances`` maps product symbols to opening amounts.  ``two_fa_code``, when set,
    turns on 2FA for this user: ``AuthenticateUser`` then answers ``Requires2FA`` and
    ``Authenticate2FA`` expects this (static) code.  The ``repr`` hides the secret,
    the password and the code.
    """

    user_id: int = 1
    account_id: int = 1
    username: str = "demo"
    password: str = attrs.field(default=DEMO_PASSWORD, repr=False)
    api_key: str = DEMO_API_KEY
    api_secret: str = attrs.field(default=DEMO_API_SECRET, repr=False)
    email: str = "demo@kiiex.invalid"
    two_fa_code: str | None = attrs.field(default=None, repr=False)
    balances: Mapping[str, Decimal] = attrs.field(
        factory=_default_balances, converter=_balances, hash=False
    )

    @property
    def credentials_kwargs(self) -> CredentialsKwargs:
        """Keyword arguments for ``kiiex_async.Credentials(**kwargs)``."""
        return {
            "api_key": self.api_key,
            "api_secret": self.api_secret,
            "user_id": str(self.user_id),
            "username": self.username,
            "password": self.password,
        }


@attrs.frozen
class ProductSpec:
    """An asset: ``product_type`` is ``"CryptoCurrency"`` or ``"NationalCurrency"``.

    ``withdraw_fee`` is a flat fee held and debited on top of a withdrawal's amount.
    """

    product_id: int
    symbol: str
    full_name: str
    product_type: str = "CryptoCurrency"
    decimal_places: int = 6
    withdraw_fee: Decimal = attrs.field(default=Decimal(0), converter=_decimal)
    deposit_enabled: bool = True
    withdraw_enabled: bool = True

    @property
    def tick_size(self) -> Decimal:
        """Smallest unit of the product: ``10 ** -decimal_places``."""
        return Decimal(1).scaleb(-self.decimal_places)


@attrs.frozen
class InstrumentSpec:
    """A tradable pair: ``base`` (Product1) priced in ``quote`` (Product2).

    ``mid`` is the opening mid price; ``level_quantity`` the base quantity the market
    maker shows at each price level.
    """

    instrument_id: int
    symbol: str
    base: int
    quote: int
    mid: Decimal = attrs.field(converter=_decimal)
    quantity_increment: Decimal = attrs.field(default=Decimal("0.01"), converter=_decimal)
    price_increment: Decimal = attrs.field(default=Decimal("0.01"), converter=_decimal)
    minimum_quantity: Decimal = attrs.field(default=Decimal(1), converter=_decimal)
    minimum_price: Decimal = attrs.field(default=Decimal("0.01"), converter=_decimal)
    level_quantity: Decimal = attrs.field(default=Decimal(2500), converter=_decimal)


DEFAULT_PRODUCTS: tuple[ProductSpec, ...] = (
    ProductSpec(1, "USDT", "Tether USD", "CryptoCurrency", 6),
    ProductSpec(2, "USDC", "USD Coin", "CryptoCurrency", 6),
    ProductSpec(3, "COPM", "Minteo Colombian Peso", "CryptoCurrency", 2),
    ProductSpec(4, "COP", "Colombian Peso", "NationalCurrency", 2),
)

DEFAULT_INSTRUMENTS: tuple[InstrumentSpec, ...] = (
    InstrumentSpec(1, "USDTCOPM", base=1, quote=3, mid=Decimal(4000)),
    InstrumentSpec(2, "USDCCOPM", base=2, quote=3, mid=Decimal(4000)),
    InstrumentSpec(
        3,
        "USDCUSDT",
        base=2,
        quote=1,
        mid=Decimal(1),
        price_increment=Decimal("0.0001"),
        minimum_price=Decimal("0.0001"),
        level_quantity=Decimal(5000),
    ),
    InstrumentSpec(4, "USDTCOP", base=1, quote=4, mid=Decimal(4000)),
)


def _users(value: Iterable[DemoUser]) -> tuple[DemoUser, ...]:
    return tuple(value)


def _products(value: Iterable[ProductSpec]) -> tuple[ProductSpec, ...]:
    return tuple(value)


def _instruments(value: Iterable[InstrumentSpec]) -> tuple[InstrumentSpec, ...]:
    return tuple(value)


def _probability(instance: Any, attribute: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ConfigurationError(f"{attribute.name} must be within [0, 1], got {value!r}")


@attrs.frozen
class SimConfig:
    """Everything that shapes a simulated exchange.  All defaults make a usable demo.

    Market: ``book_levels`` price levels per side, ``spread_bps`` between best bid and
    best ask, ``level_step_bps`` between levels; the mid of each instrument takes one
    seeded random step of standard deviation ``drift_bps`` every ``drift_interval``
    simulated seconds (``drift_bps=0`` or ``drift_interval=0`` keeps it still).
    Fees: ``maker_fee`` / ``taker_fee`` are fractions of what the account receives.
    Sessions expire after ``session_ttl`` simulated seconds without activity.
    Tickets advance one status every ``deposit_step_seconds`` / ``withdraw_step_seconds``
    (0 = at once); a withdrawal ends ``withdraw_fail_status`` (``"Failed"`` or
    ``"Rejected"``) with ``withdraw_fail_probability``, a deposit ends ``Rejected`` with
    ``deposit_reject_probability``; ``withdraw_pending_2fa`` inserts a ``Pending2Fa``
    step.  Time: the simulated clock starts at ``start_time`` (epoch seconds; ``None`` =
    now) and runs at ``time_speed`` (0 = frozen, moved only by ``Simulator.advance``).
    ``seed`` makes drift, ticket outcomes, request codes and faults reproducible.
    ``dialect`` picks how the calls of KIIEX's quick-start guide answer: ``"apex"``
    (AlphaPoint's full objects and a session token) or ``"guide"`` (exactly the guide's
    samples: a login with no token, so private calls carry signed headers; a four-field
    order status and trades; camelCase positions); see :mod:`kiiex_async.sim._guide`.
    """

    seed: int = 0
    users: tuple[DemoUser, ...] = attrs.field(default=(DemoUser(),), converter=_users)
    products: tuple[ProductSpec, ...] = attrs.field(default=DEFAULT_PRODUCTS, converter=_products)
    instruments: tuple[InstrumentSpec, ...] = attrs.field(
        default=DEFAULT_INSTRUMENTS, converter=_instruments
    )
    book_levels: int = 10
    spread_bps: Decimal = attrs.field(default=Decimal(10), converter=_decimal)
    level_step_bps: Decimal = attrs.field(default=Decimal(5), converter=_decimal)
    drift_bps: Decimal = attrs.field(default=Decimal(3), converter=_decimal)
    drift_interval: float = 10.0
    maker_fee: Decimal = attrs.field(default=Decimal("0.001"), converter=_decimal)
    taker_fee: Decimal = attrs.field(default=Decimal("0.002"), converter=_decimal)
    session_ttl: float = 3600.0
    deposit_step_seconds: float = 2.0
    withdraw_step_seconds: float = 2.0
    withdraw_fail_probability: float = attrs.field(default=0.0, validator=_probability)
    withdraw_fail_status: str = "Failed"
    deposit_reject_probability: float = attrs.field(default=0.0, validator=_probability)
    withdraw_pending_2fa: bool = False
    time_speed: float = 1.0
    start_time: float | None = None
    market_maker_account_id: int = 9000
    dialect: str = "apex"

    def __attrs_post_init__(self) -> None:
        if not self.users:
            raise ConfigurationError("the simulator needs at least one user")
        seen: set[object] = set()
        for user in self.users:
            for key in (
                ("user", user.user_id),
                ("account", user.account_id),
                ("key", user.api_key),
                ("name", user.username.lower()),
            ):
                if key in seen:
                    raise ConfigurationError(f"duplicate {key[0]} in SimConfig.users: {key[1]}")
                seen.add(key)
        if ("account", self.market_maker_account_id) in seen:
            raise ConfigurationError("market_maker_account_id collides with a user account")
        product_ids = {p.product_id for p in self.products}
        symbols = {p.symbol for p in self.products}
        if len(product_ids) != len(self.products) or len(symbols) != len(self.products):
            raise ConfigurationError("duplicate product id or symbol")
        for user in self.users:
            unknown = set(user.balances) - symbols
            if unknown:
                raise ConfigurationError(f"unknown product(s) in balances: {sorted(unknown)}")
        if len({i.instrument_id for i in self.instruments}) != len(self.instruments):
            raise ConfigurationError("duplicate instrument id")
        for inst in self.instruments:
            if inst.base not in product_ids or inst.quote not in product_ids:
                raise ConfigurationError(f"instrument {inst.symbol} names an unknown product")
            if min(inst.quantity_increment, inst.price_increment, inst.mid) <= 0:
                raise ConfigurationError(f"instrument {inst.symbol}: increments and mid > 0")
        if self.book_levels < 1:
            raise ConfigurationError("book_levels must be >= 1")
        if self.withdraw_fail_status not in ("Failed", "Rejected"):
            raise ConfigurationError('withdraw_fail_status is "Failed" or "Rejected"')
        if min(self.session_ttl, self.deposit_step_seconds, self.withdraw_step_seconds) < 0:
            raise ConfigurationError("durations must be >= 0")
        if self.time_speed < 0:
            raise ConfigurationError("time_speed must be >= 0")
        if self.dialect not in DIALECTS:
            raise ConfigurationError(
                f"dialect must be one of {', '.join(DIALECTS)}, got {self.dialect!r}"
            )

    @property
    def demo(self) -> DemoUser:
        """The first user: the one ``kiiex sim`` prints and examples log in as."""
        return self.users[0]
