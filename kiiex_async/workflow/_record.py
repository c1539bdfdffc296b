"""The checkpointed record of a swap, and its JSON codec (money as decimal strings).

A :class:`SwapRecord` is everything the workflow knows about one swap: the request, the
state, the intents of side-effecting calls and what the exchange answered.  It never holds
a client, credentials or a session token, so nothing secret can reach a checkpoint.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs
import cattrs

from ..models import OrderState, OrderType, Side, TimeInForce
from ._machine import SwapState, SwapStep
from ._request import SwapRequest

__all__ = [
    "RECORD_VERSION",
    "ExchangeBinding",
    "OrderProgress",
    "QuoteInfo",
    "SwapPlan",
    "SwapRecord",
    "TicketProgress",
    "TimelineEntry",
    "TradesSummary",
    "decode_record",
    "encode_record",
    "exchange_key",
    "utcnow",
]

#: Version of the record layout; stored with every record.
RECORD_VERSION = 1


def utcnow() -> dt.datetime:
    """The current UTC time (timezone-aware)."""
    return dt.datetime.now(dt.UTC)


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def exchange_key(base_url: str) -> str:
    """The name a swap is bound to for a client of ``base_url``: the URL with its scheme
    and host in lower case and no trailing slash (``HTTPS://Host/ap/`` -> ``https://host/ap``)."""
    parts = urllib.parse.urlsplit(base_url.strip())
    path = parts.path.rstrip("/")
    return urllib.parse.urlunsplit(
        (parts.scheme.lower(), parts.netloc.lower(), path, parts.query, "")
    )


@attrs.frozen
class ExchangeBinding:
    """The exchange and account a swap runs against; never a credential.

    ``exchange`` is the :func:`exchange_key` of the base URL the swap was created with (or
    a name the application chose, see ``SwapWorkflow(exchange=...)``).  ``account_id`` and
    ``user_id`` are filled in by the first run that logged in (the user id is the identity
    of the credentials, never their secret).  A swap is only ever resumed against the same
    exchange, account and user.
    """

    exchange: str
    account_id: int | None = None
    user_id: int | None = None


@attrs.frozen
class TimelineEntry:
    """One step of a swap's history: the state reached, when (UTC) and a note."""

    state: SwapState
    at: dt.datetime
    note: str = ""


@attrs.frozen
class SwapPlan:
    """What authentication and the preflight resolved: account, instrument, products."""

    account_id: int
    instrument_id: int
    instrument_symbol: str
    base_symbol: str
    quote_symbol: str
    base_product_id: int
    quote_product_id: int
    from_product_id: int
    to_product_id: int
    #: Side of the order: SELL when ``from_asset`` is the instrument's base, else BUY.
    side: Side
    quantity_increment: Decimal
    price_increment: Decimal
    minimum_quantity: Decimal
    minimum_price: Decimal
    #: Smallest amount steps of the two assets (their products' ``TickSize``).
    from_tick_size: Decimal
    to_tick_size: Decimal


@attrs.frozen
class QuoteInfo:
    """Step 3: the rate taken from the order book, and the order it led to."""

    best_price: Decimal
    expected_price: Decimal
    worst_price: Decimal
    expected_spend: Decimal
    expected_receive: Decimal
    slippage: Decimal
    limit_price: Decimal | None
    taken_at: dt.datetime


@attrs.frozen
class OrderProgress:
    """Step 4-5: the order's intent (what will be / was sent) and what became of it."""

    client_order_id: int
    instrument_id: int
    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal | None
    value: Decimal | None
    limit_price: Decimal | None
    #: How many times SendOrder was sent (more than 1 only after reconciliation proved
    #: that the earlier attempt never reached the exchange).
    attempts: int = 0
    intent_at: dt.datetime | None = None
    order_id: int | None = None
    order_state: OrderState | None = None
    quantity_executed: Decimal | None = None
    gross_value_executed: Decimal | None = None
    avg_price: Decimal | None = None
    reject_reason: str = ""


@attrs.frozen
class TradesSummary:
    """Step 6: the fills of the order.

    ``spent`` and ``received`` are gross trade amounts (Σ quantity for the base side,
    Σ value for the quote side); ``fees`` are per product symbol.  ``derived`` names each
    figure the exchange did not state (``"spent"``, ``"received"``, ``"fees"``) and says how
    it was worked out (thin answers such as the quick-start guide's four-field trades).
    """

    trade_ids: tuple[int, ...]
    base_quantity: Decimal
    quote_value: Decimal
    spent: Decimal
    received: Decimal
    average_price: Decimal
    fees: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_frozen_map)
    derived: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)


@attrs.frozen
class TicketProgress:
    """A deposit or withdraw ticket: the intent (marker, tickets that already existed,
    time) and what became of it."""

    product_id: int
    asset: str
    amount: Decimal
    #: The ``Comment`` marker written into the form / deposit info, if the swap set one.
    marker: str | None
    #: Ticket numbers of the account's tickets of this kind before the intent was committed.
    known_tickets: tuple[int, ...]
    intent_at: dt.datetime
    template_type: str = ""
    form: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    attempts: int = 0
    ticket_number: int | None = None
    request_code: str | None = None
    #: Last ``Status`` seen (DepositStatus / WithdrawStatus value).
    status: int | None = None
    fee: Decimal | None = None


@attrs.frozen
class SwapRecord:
    """Everything a checkpoint holds about one swap (no secrets, money as Decimal)."""

    swap_id: str
    request: SwapRequest
    client_order_id: int
    created_at: dt.datetime
    updated_at: dt.datetime
    state: SwapState = SwapState.CREATED
    #: Incremented by every save; the store refuses a save built on a stale revision.
    revision: int = 0
    version: int = RECORD_VERSION
    plan: SwapPlan | None = None
    #: Total balances (symbol -> ``Amount``) of the two assets before the swap.
    balances_before: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_frozen_map)
    deposit: TicketProgress | None = None
    quote: QuoteInfo | None = None
    order: OrderProgress | None = None
    trades: TradesSummary | None = None
    #: Total balances (symbol -> amount) of the two assets after the trade.
    balances_after: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_frozen_map)
    withdrawal: TicketProgress | None = None
    reason: str | None = None
    failed_step: SwapStep | None = None
    #: The non-terminal state a FAILED / NEEDS_OPERATOR swap stopped in.
    stopped_at: SwapState | None = None
    timeline: tuple[TimelineEntry, ...] = ()
    #: Where the swap runs; ``None`` only in records written before kiiex_async 0.1
    #: recorded it (such a swap is bound to the exchange of the run that resumes it).
    exchange: ExchangeBinding | None = None

    @property
    def side_effects_started(self) -> bool:
        """True once a side-effecting call may have been sent."""
        return any(
            part is not None and part.attempts > 0
            for part in (self.deposit, self.order, self.withdrawal)
        )


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter()
    conv.register_unstructure_hook(Decimal, str)
    conv.register_structure_hook(Decimal, lambda v, _t: Decimal(str(v)))
    conv.register_unstructure_hook(dt.datetime, lambda v: v.isoformat())
    conv.register_structure_hook(dt.datetime, lambda v, _t: dt.datetime.fromisoformat(v))
    conv.register_unstructure_hook(MappingProxyType, dict)
    return conv


_converter = _make_converter()


def encode_record(record: SwapRecord) -> str:
    """Serialize a record to JSON text (Decimals as strings, enums by value)."""
    return json.dumps(_converter.unstructure(record), sort_keys=True, separators=(",", ":"))


def decode_record(text: str | bytes) -> SwapRecord:
    """Parse JSON text written by :func:`encode_record`."""
    return _converter.structure(json.loads(text), SwapRecord)
