"""Products, instruments and market data."""

from __future__ import annotations

from decimal import Decimal

import attrs

from .enums import ProductType, SessionStatus, Side

__all__ = [
    "Instrument",
    "L2Entry",
    "L2Snapshot",
    "Level1",
    "Level1Summary",
    "Product",
    "TickerBar",
]

_ZERO = Decimal(0)


@attrs.frozen(slots=False)
class Product:
    """An asset (``GetProducts``): a currency with its decimal places."""

    product_id: int
    product: str
    product_full_name: str = ""
    product_type: ProductType = ProductType.UNKNOWN
    decimal_places: int = 8
    tick_size: Decimal = Decimal("0.00000001")
    deposit_enabled: bool = True
    withdraw_enabled: bool = True
    no_fees: bool = False
    is_disabled: bool = False
    oms_id: int = 1

    @property
    def symbol(self) -> str:
        """The product's symbol (``"USDT"``)."""
        return self.product


@attrs.frozen(slots=False)
class Instrument:
    """A tradable pair (``GetInstruments``): base ``product1``, quote ``product2``."""

    instrument_id: int
    symbol: str
    product1: int
    product1_symbol: str
    product2: int
    product2_symbol: str
    quantity_increment: Decimal = Decimal("0.00000001")
    price_increment: Decimal = Decimal("0.00000001")
    minimum_quantity: Decimal = _ZERO
    minimum_price: Decimal = _ZERO
    session_status: SessionStatus = SessionStatus.RUNNING
    is_disable: bool = False
    instrument_type: str = "Standard"
    venue_symbol: str = ""
    sort_index: int = 0
    oms_id: int = 1

    @property
    def is_active(self) -> bool:
        """True when the instrument trades (session running, not disabled)."""
        return self.session_status is SessionStatus.RUNNING and not self.is_disable


@attrs.frozen(slots=False)
class Level1:
    """Top of book and daily statistics of one instrument (``GetLevel1``)."""

    instrument_id: int
    best_bid: Decimal = _ZERO
    best_offer: Decimal = _ZERO
    last_traded_px: Decimal = _ZERO
    last_traded_qty: Decimal = _ZERO
    last_trade_time: int = 0
    session_open: Decimal = _ZERO
    session_high: Decimal = _ZERO
    session_low: Decimal = _ZERO
    session_close: Decimal = _ZERO
    volume: Decimal = _ZERO
    current_day_volume: Decimal = _ZERO
    current_day_notional: Decimal = _ZERO
    current_day_num_trades: int = 0
    current_day_px_change: Decimal = _ZERO
    rolling_24hr_volume: Decimal = _ZERO
    rolling_24hr_notional: Decimal = _ZERO
    rolling_24_num_trades: int = 0
    rolling_24hr_px_change: Decimal = _ZERO
    rolling_24hr_px_change_percent: Decimal = _ZERO
    time_stamp: int = 0
    bid_qty: Decimal = _ZERO
    ask_qty: Decimal = _ZERO
    bid_order_ct: int = 0
    ask_order_ct: int = 0
    oms_id: int = 1

    @property
    def mid(self) -> Decimal | None:
        """Mid price, or ``None`` when one side of the book is empty."""
        if self.best_bid > 0 and self.best_offer > 0:
            return (self.best_bid + self.best_offer) / 2
        return None


@attrs.frozen(slots=False)
class Level1Summary:
    """One row of ``GetLevel1SummaryMin`` (no bid/ask: last price and 24 h figures).

    A row shorter than the documented six columns fills what it has, in column order;
    the figures it lacks are ``None``.
    """

    instrument_id: int
    symbol: str | None = None
    last_traded_px: Decimal | None = None
    rolling_24hr_px_change: Decimal | None = None
    rolling_24hr_px_change_percent: Decimal | None = None
    rolling_24hr_volume: Decimal | None = None


@attrs.frozen(slots=False)
class L2Entry:
    """One price level of the order book (``GetL2Snapshot`` row)."""

    price: Decimal
    quantity: Decimal
    side: Side
    instrument_id: int = 0
    number_of_orders: int = 0
    action_date_time: int = 0
    md_update_id: int = 0
    last_trade_price: Decimal = _ZERO


@attrs.frozen(slots=False)
class L2Snapshot:
    """The order book: ``bids`` best (highest) first, ``asks`` best (lowest) first."""

    instrument_id: int
    bids: tuple[L2Entry, ...] = ()
    asks: tuple[L2Entry, ...] = ()

    @property
    def best_bid(self) -> Decimal | None:
        """Highest bid price, if any."""
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        """Lowest ask price, if any."""
        return self.asks[0].price if self.asks else None


@attrs.frozen(slots=False)
class TickerBar:
    """One OHLCV bar of ``GetTickerHistory``.

    ``time`` is the row's first column (epoch milliseconds, what ccxt takes as the bar's
    time); ``begin_time`` the tenth column some venues add (``None`` when absent).
    """

    time: int
    high: Decimal
    low: Decimal
    open: Decimal
    close: Decimal
    volume: Decimal
    inside_bid: Decimal | None = None
    inside_ask: Decimal | None = None
    instrument_id: int | None = None
    begin_time: int | None = None
