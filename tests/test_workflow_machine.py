"""The swap state machine: a pure transition table, tested without an event loop."""

from __future__ import annotations

import pytest

from kiiex_async.errors import WorkflowError
from kiiex_async.workflow import (
    IllegalTransitionError,
    SwapEvent,
    SwapState,
    SwapStep,
    can_reopen,
    reopen,
    step_of,
    transition,
    transition_table,
)

S, E = SwapState, SwapEvent

HAPPY_PATH_WITH_EVERYTHING = [
    (E.AUTHENTICATED, S.AUTHENTICATED),
    (E.DEPOSIT_REQUESTED, S.DEPOSIT_INTENT),
    (E.DEPOSIT_CREATED, S.DEPOSIT_PENDING),
    (E.DEPOSIT_CREDITED, S.FUNDED),
    (E.QUOTED, S.QUOTED),
    (E.ORDER_REQUESTED, S.ORDER_INTENT),
    (E.ORDER_ACCEPTED, S.ORDER_PLACED),
    (E.ORDER_FINISHED, S.ORDER_DONE),
    (E.TRADES_READ, S.TRADES_READ),
    (E.POSITIONS_CONFIRMED, S.POSITIONS_CONFIRMED),
    (E.WITHDRAW_REQUESTED, S.WITHDRAW_INTENT),
    (E.WITHDRAW_CREATED, S.WITHDRAW_PENDING),
    (E.WITHDRAW_FINISHED, S.COMPLETED),
]


def test_full_path_through_all_nine_steps() -> None:
    """Deposit, order and withdrawal events lead from CREATED to COMPLETED in order."""
    state = S.CREATED
    for event, expected in HAPPY_PATH_WITH_EVERYTHING:
        state = transition(state, event)
        assert state is expected


def test_short_path_without_deposit_or_withdrawal() -> None:
    """Balance check instead of a deposit, and no withdrawal, also reach COMPLETED."""
    state = S.CREATED
    for event in (
        E.AUTHENTICATED,
        E.BALANCE_CONFIRMED,
        E.QUOTED,
        E.ORDER_REQUESTED,
        E.ORDER_ACCEPTED,
        E.ORDER_FINISHED,
        E.TRADES_READ,
        E.POSITIONS_CONFIRMED,
        E.NO_WITHDRAWAL,
    ):
        state = transition(state, event)
    assert state is S.COMPLETED


@pytest.mark.parametrize("state", [S.DEPOSIT_INTENT, S.ORDER_INTENT, S.WITHDRAW_INTENT])
def test_resend_keeps_an_intent_state(state: SwapState) -> None:
    """RESEND (reconciliation proved the write never arrived) stays in the intent state."""
    assert transition(state, E.RESEND) is state
    assert state.is_intent


@pytest.mark.parametrize("state", [s for s in SwapState if not s.is_terminal])
def test_every_running_state_can_fail_or_escalate(state: SwapState) -> None:
    """FAILED and ESCALATED are accepted from every non-terminal state."""
    assert transition(state, E.FAILED) is S.FAILED
    assert transition(state, E.ESCALATED) is S.NEEDS_OPERATOR


@pytest.mark.parametrize("state", [S.COMPLETED, S.FAILED, S.NEEDS_OPERATOR])
def test_terminal_states_accept_no_event(state: SwapState) -> None:
    """No event leaves a terminal state."""
    assert state.is_terminal
    for event in SwapEvent:
        with pytest.raises(IllegalTransitionError):
            transition(state, event)


@pytest.mark.parametrize("state", [S.POSITIONS_CONFIRMED, S.WITHDRAW_INTENT, S.WITHDRAW_PENDING])
def test_a_failed_withdrawal_ends_withdraw_failed_and_only_retry_leaves_it(
    state: SwapState,
) -> None:
    """A refused or failed withdrawal ends WITHDRAW_FAILED (terminal, funds kept); the only
    way out is WITHDRAW_RETRY, back to the confirmed positions."""
    failed = transition(state, E.WITHDRAW_FAILED)
    assert failed is S.WITHDRAW_FAILED
    assert failed.is_terminal
    assert step_of(failed) is None
    assert [e for e in SwapEvent if (failed, e) in transition_table()] == [E.WITHDRAW_RETRY]
    assert transition(failed, E.WITHDRAW_RETRY) is S.POSITIONS_CONFIRMED
    with pytest.raises(IllegalTransitionError):
        transition(S.ORDER_PLACED, E.WITHDRAW_FAILED)


def test_illegal_transitions_raise_a_workflow_error() -> None:
    """Skipping a step (sending an order before the rate) is refused with a clear message."""
    with pytest.raises(WorkflowError, match="ORDER_REQUESTED is not allowed in state FUNDED"):
        transition(S.FUNDED, E.ORDER_REQUESTED)


def test_resend_is_only_legal_in_intent_states() -> None:
    """RESEND after the order id is known would be a double send: illegal."""
    for state in SwapState:
        legal = (state, E.RESEND) in transition_table()
        assert legal == state.is_intent


def test_table_is_read_only_and_every_target_is_a_state() -> None:
    """The exported table cannot be mutated and only names real states."""
    table = transition_table()
    with pytest.raises(TypeError):
        table[(S.CREATED, E.QUOTED)] = S.QUOTED  # type: ignore[index]
    assert all(isinstance(target, SwapState) for target in table.values())
    # every non-terminal state is reachable from CREATED
    reachable, frontier = {S.CREATED}, [S.CREATED]
    while frontier:
        current = frontier.pop()
        for (source, _event), target in table.items():
            if source is current and target not in reachable:
                reachable.add(target)
                frontier.append(target)
    assert reachable == set(SwapState)


def test_each_running_state_names_its_guide_step() -> None:
    """A running state maps to the guide step it works on; terminal states to none."""
    assert step_of(S.CREATED) is SwapStep.AUTHENTICATE
    assert step_of(S.ORDER_INTENT) is SwapStep.ORDER
    assert step_of(S.WITHDRAW_PENDING) is SwapStep.POLL_WITHDRAW
    assert step_of(S.COMPLETED) is None
    assert [s.value for s in SwapStep] == list(range(1, 10))
    assert SwapStep.POLL_ORDER.label == "poll_order"


def test_reopen_only_from_needs_operator_with_a_running_stop() -> None:
    """A NEEDS_OPERATOR swap reopens where it stopped; nothing else reopens."""
    assert can_reopen(S.NEEDS_OPERATOR, S.WITHDRAW_PENDING)
    assert reopen(S.NEEDS_OPERATOR, S.WITHDRAW_PENDING) is S.WITHDRAW_PENDING
    assert not can_reopen(S.FAILED, S.ORDER_PLACED)
    assert not can_reopen(S.NEEDS_OPERATOR, None)
    assert not can_reopen(S.NEEDS_OPERATOR, S.COMPLETED)
    with pytest.raises(IllegalTransitionError):
        reopen(S.COMPLETED, S.ORDER_PLACED)
