"""What a swap reports: :class:`SwapResult` (the outcome) and :class:`ProgressEvent` (live)."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs

from ..models import DepositStatus, OrderState, WithdrawStatus
from ..pricing import format_amount
from ._machine import SwapState, SwapStep
from ._record import QuoteInfo, SwapRecord, TimelineEntry
from ._request import SwapRequest

__all__ = ["ProgressEvent", "ProgressKind", "SwapResult"]

_ZERO = Decimal(0)


def _frozen_map(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _deposit_status(value: int | None) -> DepositStatus | None:
    try:
        return None if value is None else DepositStatus(value)
    except ValueError:
        return None


def _withdraw_status(value: int | None) -> WithdrawStatus | None:
    try:
        return None if value is None else WithdrawStatus(value)
    except ValueError:
        return None


def _increments(record: SwapRecord) -> dict[str, Decimal]:
    plan = record.plan
    if plan is None:
        return {}
    request = record.request
    return {
        request.from_asset: plan.from_tick_size,
        request.to_asset: plan.to_tick_size,
        plan.instrument_symbol: plan.price_increment,
    }


@attrs.frozen
class SwapResult:
    """The outcome of a swap, with everything needed to print or audit it.

    ``spent`` (of ``from_asset``) and ``received`` (of ``to_asset``) are gross trade
    amounts; ``fees`` maps product symbols to the trading fees charged, so
    ``net_received = received - fees.get(to_asset, 0)``.  ``average_price`` is in the
    instrument's quote currency per base unit.  ``derived`` maps each of these figures
    that the exchange did not state (``"spent"``, ``"received"``, ``"fees"``) to how the
    swap worked it out: from the trades' quantity × price, from the order's
    ``QuantityExecuted × AvgPrice``, or the fees from the balance movement.
    ``timeline`` lists every committed state with its UTC time and a note.  ``state`` is
    COMPLETED, FAILED, NEEDS_OPERATOR or WITHDRAW_FAILED for a finished swap (``reason``
    and ``failed_step`` say why it stopped), or the state an interrupted swap can be
    resumed from.
    """

    swap_id: str
    state: SwapState
    request: SwapRequest
    client_order_id: int
    spent: Decimal = _ZERO
    received: Decimal = _ZERO
    fees: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_frozen_map)
    derived: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    average_price: Decimal | None = None
    instrument_symbol: str = ""
    order_id: int | None = None
    order_state: OrderState | None = None
    trade_ids: tuple[int, ...] = ()
    quote: QuoteInfo | None = None
    deposit_ticket: int | None = None
    deposit_status: DepositStatus | None = None
    withdrawal_ticket: int | None = None
    withdrawal_amount: Decimal | None = None
    withdrawal_status: WithdrawStatus | None = None
    balances_before: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_frozen_map)
    balances_after: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_frozen_map)
    reason: str | None = None
    failed_step: SwapStep | None = None
    timeline: tuple[TimelineEntry, ...] = ()
    created_at: dt.datetime | None = None
    updated_at: dt.datetime | None = None
    #: Display increments: product symbol -> tick size, instrument symbol -> price
    #: increment (what :meth:`summary` rounds to; the amounts above stay exact).
    increments: Mapping[str, Decimal] = attrs.field(factory=dict, converter=_frozen_map)

    @property
    def from_asset(self) -> str:
        """The asset given."""
        return self.request.from_asset

    @property
    def to_asset(self) -> str:
        """The asset obtained."""
        return self.request.to_asset

    @property
    def ok(self) -> bool:
        """True when the swap COMPLETED."""
        return self.state is SwapState.COMPLETED

    @property
    def net_received(self) -> Decimal:
        """``received`` minus the fees charged in ``to_asset``."""
        return self.received - self.fees.get(self.to_asset, _ZERO)

    @property
    def partially_filled(self) -> bool:
        """True when the order ended (canceled / expired, e.g. an IOC) only partly filled."""
        return self.order_state is not None and self.order_state is not OrderState.FULLY_EXECUTED

    @classmethod
    def from_record(cls, record: SwapRecord) -> SwapResult:
        """Build the result of a checkpointed swap (any state)."""
        trades, order = record.trades, record.order
        deposit, withdrawal = record.deposit, record.withdrawal
        return cls(
            swap_id=record.swap_id,
            state=record.state,
            request=record.request,
            client_order_id=record.client_order_id,
            spent=trades.spent if trades else _ZERO,
            received=trades.received if trades else _ZERO,
            fees=trades.fees if trades else {},
            derived=trades.derived if trades else {},
            average_price=trades.average_price if trades and trades.base_quantity else None,
            instrument_symbol=record.plan.instrument_symbol if record.plan else "",
            order_id=order.order_id if order else None,
            order_state=order.order_state if order else None,
            trade_ids=trades.trade_ids if trades else (),
            quote=record.quote,
            deposit_ticket=deposit.ticket_number if deposit else None,
            deposit_status=_deposit_status(deposit.status) if deposit else None,
            withdrawal_ticket=withdrawal.ticket_number if withdrawal else None,
            withdrawal_amount=withdrawal.amount if withdrawal else None,
            withdrawal_status=_withdraw_status(withdrawal.status) if withdrawal else None,
            balances_before=record.balances_before,
            balances_after=record.balances_after,
            reason=record.reason,
            failed_step=record.failed_step,
            timeline=record.timeline,
            created_at=record.created_at,
            updated_at=record.updated_at,
            increments=_increments(record),
        )

    def summary(self) -> str:
        """A few lines for humans (what a CLI prints): amounts rounded to their product's
        increment, in plain notation."""

        def fmt(value: Decimal | None, unit: str) -> str:
            return "-" if value is None else format_amount(value, self.increments.get(unit))

        lines = [f"swap {self.swap_id}: {self.state.value} — {self.request.describe()}"]
        if self.trade_ids:
            fees = ", ".join(
                f"{fmt(amount, symbol)} {symbol}" for symbol, amount in sorted(self.fees.items())
            )
            to = self.to_asset
            lines.append(
                f"  spent {fmt(self.spent, self.from_asset)} {self.from_asset}, received "
                f"{fmt(self.received, to)} {to} (net {fmt(self.net_received, to)}) at "
                f"{fmt(self.average_price, self.instrument_symbol)} "
                f"{self.instrument_symbol}; fees {fees or 'none'}"
            )
            lines.append(
                f"  order {self.order_id} (client order id {self.client_order_id}) "
                f"{self.order_state.name if self.order_state else ''}; "
                f"trades {', '.join(str(t) for t in self.trade_ids)}"
            )
        elif self.spent:
            lines.append(
                f"  spent {self.spent} {self.from_asset}, received {self.received} "
                f"{self.to_asset} by order {self.order_id}: trades not listed"
            )
        for figure, how in sorted(self.derived.items()):
            lines.append(f"  {figure} derived: {how}")
        if self.deposit_ticket is not None or self.deposit_status is not None:
            status = self.deposit_status.name if self.deposit_status else "unknown"
            lines.append(f"  deposit ticket {self.deposit_ticket}: {status}")
        if self.withdrawal_amount is not None:
            status = self.withdrawal_status.name if self.withdrawal_status else "unknown"
            lines.append(
                f"  withdrawal of {fmt(self.withdrawal_amount, self.to_asset)} {self.to_asset}, "
                f"ticket {self.withdrawal_ticket}: {status}"
            )
        if self.reason:
            step = f" at step {self.failed_step.label}" if self.failed_step else ""
            lines.append(f"  reason{step}: {self.reason}")
        return "\n".join(lines)


class ProgressKind(enum.Enum):
    """What a :class:`ProgressEvent` reports."""

    #: A state was committed (a step boundary); ``message`` is the timeline note.
    STATE = "state"
    #: Live status while polling (order state and fills, ticket status).
    STATUS = "status"
    #: A read failed and is being retried; or the outcome of a write is being reconciled.
    RETRY = "retry"
    RECONCILE = "reconcile"
    #: The run ended; ``result`` is set.
    FINISHED = "finished"


@attrs.frozen
class ProgressEvent:
    """One thing worth telling a user while a swap runs.

    ``step`` is the guide step being worked on (1-9), ``data`` holds details as strings
    (``order_state``, ``quantity_executed``, ``ticket_status``...).
    """

    swap_id: str
    kind: ProgressKind
    state: SwapState
    step: SwapStep | None
    message: str
    at: dt.datetime
    data: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_map)
    result: SwapResult | None = None

    def __str__(self) -> str:
        step = f"[{self.step.title}] " if self.step else ""
        return f"{self.at:%H:%M:%S} {step}{self.state.value}: {self.message}"
