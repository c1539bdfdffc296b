"""The swap state machine: states, events and the transition table.  Pure: no I/O, no clock.

A swap's state is the last thing that was *committed* to its checkpoint.  ``*_INTENT``
states mean "the intent of a side-effecting call is durable, the call may or may not have
reached the exchange": resuming from one of them always reconciles with the exchange before
it would send again.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from ..errors import WorkflowError

__all__ = [
    "TRANSITIONS",
    "IllegalTransitionError",
    "SwapEvent",
    "SwapState",
    "SwapStep",
    "can_reopen",
    "reopen",
    "step_of",
    "transition",
    "transition_table",
]


class SwapStep(enum.IntEnum):
    """The nine steps of KIIEX's "Stablecoin FX Quick Start"; the value is the step number."""

    AUTHENTICATE = 1
    FUND = 2
    RATE = 3
    ORDER = 4
    POLL_ORDER = 5
    TRADES = 6
    POSITIONS = 7
    WITHDRAW = 8
    POLL_WITHDRAW = 9

    @property
    def label(self) -> str:
        """Lower-case name for humans (``"poll_order"``)."""
        return self.name.lower()

    @property
    def title(self) -> str:
        """How progress shows the step, everywhere (``"5/9 poll_order"``)."""
        return f"{self.value}/9 {self.label}"


class SwapState(enum.Enum):
    """Where a swap is; each non-terminal state names the last committed checkpoint."""

    #: Registered in the store; nothing asked of the exchange yet.
    CREATED = "CREATED"
    #: Logged in; account, instrument and products resolved; preflight checks passed.
    AUTHENTICATED = "AUTHENTICATED"
    #: CreateDepositTicket intent committed; the call may be in flight.
    DEPOSIT_INTENT = "DEPOSIT_INTENT"
    #: The deposit ticket exists (request code known); waiting for it to be credited.
    DEPOSIT_PENDING = "DEPOSIT_PENDING"
    #: Funds confirmed available (deposit credited, or balance checked).
    FUNDED = "FUNDED"
    #: Rate taken and the order planned (quantity, price limit) within the slippage limit.
    QUOTED = "QUOTED"
    #: SendOrder intent (with its ClientOrderId) committed; the call may be in flight.
    ORDER_INTENT = "ORDER_INTENT"
    #: The exchange knows the order (order id committed); polling it.
    ORDER_PLACED = "ORDER_PLACED"
    #: The order reached a terminal state with something executed.
    ORDER_DONE = "ORDER_DONE"
    #: Fills, average price and fees read.
    TRADES_READ = "TRADES_READ"
    #: Balances after the trade read and compared.
    POSITIONS_CONFIRMED = "POSITIONS_CONFIRMED"
    #: CreateWithdrawTicket intent (marker, known tickets) committed; the call may be in flight.
    WITHDRAW_INTENT = "WITHDRAW_INTENT"
    #: The withdraw ticket is known; polling it.
    WITHDRAW_PENDING = "WITHDRAW_PENDING"
    #: Terminal: every requested step succeeded.
    COMPLETED = "COMPLETED"
    #: Terminal: the swap stopped for a known reason (``reason``, ``failed_step``).
    FAILED = "FAILED"
    #: Terminal until reopened: the exchange cannot settle a question; a human decides.
    NEEDS_OPERATOR = "NEEDS_OPERATOR"
    #: Terminal until retried: the trade is done but the withdrawal was refused or its
    #: ticket failed; the funds stay in the account, in ``to_asset``.  Resuming with
    #: ``withdraw_fields`` (or ``reopen=True``) tries the withdrawal again.
    WITHDRAW_FAILED = "WITHDRAW_FAILED"

    @property
    def is_terminal(self) -> bool:
        """True for COMPLETED, FAILED, NEEDS_OPERATOR and WITHDRAW_FAILED."""
        return self in _TERMINAL

    @property
    def is_intent(self) -> bool:
        """True while a side-effecting call may be in flight (resume must reconcile)."""
        return self in _INTENTS


_TERMINAL: Final = frozenset(
    {SwapState.COMPLETED, SwapState.FAILED, SwapState.NEEDS_OPERATOR, SwapState.WITHDRAW_FAILED}
)
_INTENTS: Final = frozenset(
    {SwapState.DEPOSIT_INTENT, SwapState.ORDER_INTENT, SwapState.WITHDRAW_INTENT}
)


class SwapEvent(enum.Enum):
    """What the runner observed; fed to :func:`transition`."""

    AUTHENTICATED = "AUTHENTICATED"
    DEPOSIT_REQUESTED = "DEPOSIT_REQUESTED"
    DEPOSIT_CREATED = "DEPOSIT_CREATED"
    DEPOSIT_CREDITED = "DEPOSIT_CREDITED"
    BALANCE_CONFIRMED = "BALANCE_CONFIRMED"
    QUOTED = "QUOTED"
    ORDER_REQUESTED = "ORDER_REQUESTED"
    ORDER_ACCEPTED = "ORDER_ACCEPTED"
    ORDER_FINISHED = "ORDER_FINISHED"
    TRADES_READ = "TRADES_READ"
    POSITIONS_CONFIRMED = "POSITIONS_CONFIRMED"
    WITHDRAW_REQUESTED = "WITHDRAW_REQUESTED"
    WITHDRAW_CREATED = "WITHDRAW_CREATED"
    WITHDRAW_FINISHED = "WITHDRAW_FINISHED"
    NO_WITHDRAWAL = "NO_WITHDRAWAL"
    #: The withdrawal was refused or its ticket ended Rejected / Failed (after the trade).
    WITHDRAW_FAILED = "WITHDRAW_FAILED"
    #: Try the withdrawal of a WITHDRAW_FAILED swap again (from the confirmed positions).
    WITHDRAW_RETRY = "WITHDRAW_RETRY"
    #: Reconciliation proved an intent never reached the exchange: send it again.
    RESEND = "RESEND"
    FAILED = "FAILED"
    ESCALATED = "ESCALATED"


_S = SwapState
_E = SwapEvent

_TABLE: dict[tuple[SwapState, SwapEvent], SwapState] = {
    (_S.CREATED, _E.AUTHENTICATED): _S.AUTHENTICATED,
    (_S.AUTHENTICATED, _E.DEPOSIT_REQUESTED): _S.DEPOSIT_INTENT,
    (_S.AUTHENTICATED, _E.BALANCE_CONFIRMED): _S.FUNDED,
    (_S.DEPOSIT_INTENT, _E.DEPOSIT_CREATED): _S.DEPOSIT_PENDING,
    (_S.DEPOSIT_INTENT, _E.RESEND): _S.DEPOSIT_INTENT,
    (_S.DEPOSIT_PENDING, _E.DEPOSIT_CREDITED): _S.FUNDED,
    (_S.FUNDED, _E.QUOTED): _S.QUOTED,
    (_S.QUOTED, _E.ORDER_REQUESTED): _S.ORDER_INTENT,
    (_S.ORDER_INTENT, _E.ORDER_ACCEPTED): _S.ORDER_PLACED,
    (_S.ORDER_INTENT, _E.RESEND): _S.ORDER_INTENT,
    (_S.ORDER_PLACED, _E.ORDER_FINISHED): _S.ORDER_DONE,
    (_S.ORDER_DONE, _E.TRADES_READ): _S.TRADES_READ,
    (_S.TRADES_READ, _E.POSITIONS_CONFIRMED): _S.POSITIONS_CONFIRMED,
    (_S.POSITIONS_CONFIRMED, _E.WITHDRAW_REQUESTED): _S.WITHDRAW_INTENT,
    (_S.POSITIONS_CONFIRMED, _E.NO_WITHDRAWAL): _S.COMPLETED,
    (_S.WITHDRAW_INTENT, _E.WITHDRAW_CREATED): _S.WITHDRAW_PENDING,
    (_S.WITHDRAW_INTENT, _E.RESEND): _S.WITHDRAW_INTENT,
    (_S.WITHDRAW_PENDING, _E.WITHDRAW_FINISHED): _S.COMPLETED,
    (_S.POSITIONS_CONFIRMED, _E.WITHDRAW_FAILED): _S.WITHDRAW_FAILED,
    (_S.WITHDRAW_INTENT, _E.WITHDRAW_FAILED): _S.WITHDRAW_FAILED,
    (_S.WITHDRAW_PENDING, _E.WITHDRAW_FAILED): _S.WITHDRAW_FAILED,
    (_S.WITHDRAW_FAILED, _E.WITHDRAW_RETRY): _S.POSITIONS_CONFIRMED,
}
for _state in SwapState:
    if not _state.is_terminal:
        _TABLE[(_state, _E.FAILED)] = _S.FAILED
        _TABLE[(_state, _E.ESCALATED)] = _S.NEEDS_OPERATOR

#: Every legal ``(state, event) -> next state``.  Terminal states have no way out, except
#: that a WITHDRAW_FAILED swap can retry its withdrawal, and a NEEDS_OPERATOR swap can be
#: *reopened* explicitly (see :func:`can_reopen`).
TRANSITIONS: Final[Mapping[tuple[SwapState, SwapEvent], SwapState]] = MappingProxyType(_TABLE)

_STEP_OF: Final[Mapping[SwapState, SwapStep]] = MappingProxyType(
    {
        _S.CREATED: SwapStep.AUTHENTICATE,
        _S.AUTHENTICATED: SwapStep.FUND,
        _S.DEPOSIT_INTENT: SwapStep.FUND,
        _S.DEPOSIT_PENDING: SwapStep.FUND,
        _S.FUNDED: SwapStep.RATE,
        _S.QUOTED: SwapStep.ORDER,
        _S.ORDER_INTENT: SwapStep.ORDER,
        _S.ORDER_PLACED: SwapStep.POLL_ORDER,
        _S.ORDER_DONE: SwapStep.TRADES,
        _S.TRADES_READ: SwapStep.POSITIONS,
        _S.POSITIONS_CONFIRMED: SwapStep.WITHDRAW,
        _S.WITHDRAW_INTENT: SwapStep.WITHDRAW,
        _S.WITHDRAW_PENDING: SwapStep.POLL_WITHDRAW,
    }
)


class IllegalTransitionError(WorkflowError):
    """An event arrived that the current state does not accept (a bug, never a user error)."""


def transition_table() -> Mapping[tuple[SwapState, SwapEvent], SwapState]:
    """Every legal ``(state, event) -> next state`` (read-only)."""
    return TRANSITIONS


def transition(state: SwapState, event: SwapEvent) -> SwapState:
    """Return the state after ``event``; raise :class:`IllegalTransitionError` if illegal."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise IllegalTransitionError(
            f"event {event.value} is not allowed in state {state.value}"
        ) from None


def step_of(state: SwapState) -> SwapStep | None:
    """The step a swap in ``state`` works on next (``None`` for terminal states)."""
    return _STEP_OF.get(state)


def can_reopen(state: SwapState, stopped_at: SwapState | None) -> bool:
    """True when a NEEDS_OPERATOR swap may be resumed at ``stopped_at``.

    Reopening is safe because every step reconciles with the exchange before acting.
    """
    return (
        state is SwapState.NEEDS_OPERATOR and stopped_at is not None and not stopped_at.is_terminal
    )


def reopen(state: SwapState, stopped_at: SwapState | None) -> SwapState:
    """The state a reopened NEEDS_OPERATOR swap continues from (see :func:`can_reopen`)."""
    if not can_reopen(state, stopped_at):
        raise IllegalTransitionError(
            f"only a NEEDS_OPERATOR swap that stopped in a running state can be reopened "
            f"(state {state.value}, stopped at {stopped_at.value if stopped_at else None})"
        )
    assert stopped_at is not None
    return stopped_at
