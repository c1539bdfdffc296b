"""The runner's context: the state of one run and the discipline every step keeps.

It owns :class:`_RunnerContext`, the base of the step families (:mod:`._steps_tickets`,
:mod:`._steps_trade`) combined into :class:`._runner._Runner`: committing and persisting
the record (``commit``/``update``/``stop``/``fail``/``escalate``/``reject``), progress
events and checkpoint hooks, keeping the lease, waiting (``sleep``/``wait_change``),
retried reads (``read``), sending a write once (``_send_write``, ``_resend``), looking for
a write's result (``find``), and the balance check shared by steps 2 and 3.
"""

from __future__ import annotations

import inspect
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.abc
import attrs

from ..errors import (
    AuthenticationError,
    ConfigurationError,
    DecodeError,
    InsufficientFundsError,
    InvalidInputError,
    KiiexError,
    NotFoundError,
    RateLimitedError,
    RedirectError,
    RejectedError,
    ServerError,
    TransportError,
)
from ..models import L2Snapshot, Position
from ._errors import SwapInterruptedError
from ._keeper import LeaseKeeper
from ._machine import SwapEvent, SwapStep, step_of, transition
from ._planning import OrderPlan, check_funds, plan_order
from ._record import OrderProgress, SwapPlan, SwapRecord, TicketProgress, TimelineEntry, utcnow
from ._request import SwapRequest
from ._result import ProgressEvent, ProgressKind
from ._store import Lease

if TYPE_CHECKING:
    from ._workflow import SwapWorkflow

__all__ = ["CheckpointHook", "ProgressCallback"]

log = logging.getLogger("kiiex_async.workflow")

T = TypeVar("T")

#: Receives every :class:`ProgressEvent`; may be a plain function or a coroutine function.
ProgressCallback = Callable[[ProgressEvent], Awaitable[None] | None]
#: Called at every checkpoint boundary with a label and the record as committed so far:
#: ``"start:<STATE>"`` when a run begins, ``"commit:<STATE>"`` after each commit,
#: ``"send:<Method>"`` / ``"sent:<Method>"`` just before / after a side-effecting call.
#: Exceptions propagate: crash tests use it to stop a run at an exact point.
CheckpointHook = Callable[[str, SwapRecord], Awaitable[None] | None]

_ZERO: Final = Decimal(0)
#: A read failing with one of these, after the client retried it until the step's limit,
#: interrupts the run (resumable) instead of failing the swap.
_TRANSIENT: Final = (TransportError, ServerError, RateLimitedError)
#: Retried inside a step's limit besides the client's transient failures: an answer that
#: is not JSON (a proxy's error page).
_READ_RETRY_ON: Final[tuple[type[Exception], ...]] = (DecodeError,)
#: A write failing with one of these was certainly not applied.
_DEFINITIVE: Final = (RejectedError, NotFoundError, InvalidInputError)
#: A write failing with one of these was not applied either, but the cause is not the
#: swap's: the run stops (resumable) instead of failing the swap.  A redirect reaching the
#: runner is a refusal (the pipeline turns a 303 into UnknownOutcomeError), usually a wrong
#: base URL.
_NOT_APPLIED: Final = (AuthenticationError, ConfigurationError, RedirectError)


def _available(positions: Sequence[Position], product_id: int, symbol: str) -> Position | None:
    for position in positions:
        if position.product_id == product_id or position.product_symbol.upper() == symbol:
            return position
    return None


class _RunnerContext:
    """One run of one swap: its record, lease and client, and how a step commits, reads
    and writes (the steps themselves live in the mixins built on this class)."""

    def __init__(
        self,
        workflow: SwapWorkflow,
        record: SwapRecord,
        keeper: LeaseKeeper,
        callbacks: Sequence[ProgressCallback],
    ) -> None:
        self.wf = workflow
        self.client = workflow.client
        self.store = workflow.store
        self.record = record
        self.keeper = keeper
        self.callbacks = callbacks
        #: The validation error ``run()`` re-raises as is (everything else is wrapped).
        self.raised: BaseException | None = None
        #: How often this run sent each write (bounded by ``max_send_attempts``).
        self.sent: Counter[str] = Counter()

    # -- plumbing -------------------------------------------------------------------------

    @property
    def lease(self) -> Lease:
        return self.keeper.lease

    @property
    def request(self) -> SwapRequest:
        return self.record.request

    @property
    def plan(self) -> SwapPlan:
        assert self.record.plan is not None
        return self.record.plan

    @property
    def account_id(self) -> int:
        return self.plan.account_id

    async def emit(
        self, kind: ProgressKind, message: str, data: dict[str, str] | None = None
    ) -> None:
        event = ProgressEvent(
            swap_id=self.record.swap_id,
            kind=kind,
            state=self.record.state,
            step=step_of(self.record.state),
            message=message,
            at=utcnow(),
            data=data or {},
        )
        await self.wf._notify(self.callbacks, event)

    async def hook(self, label: str) -> None:
        hook = self.wf.on_checkpoint
        if hook is not None:
            outcome = hook(label, self.record)
            if inspect.isawaitable(outcome):
                await outcome

    async def _save(self, record: SwapRecord) -> None:
        record = attrs.evolve(record, revision=self.record.revision + 1, updated_at=utcnow())
        # A commit is never abandoned half-way: Ctrl-C waits for it, so the checkpoint
        # always holds the last answer the exchange gave.
        with anyio.CancelScope(shield=True):
            await self.keeper.save(record)
        self.record = record

    async def commit(self, event: SwapEvent, note: str, **changes: Any) -> None:
        """Apply ``event`` (pure transition), persist, then report it."""
        state = transition(self.record.state, event)
        entry = TimelineEntry(state=state, at=utcnow(), note=note)
        await self._save(
            attrs.evolve(
                self.record, state=state, timeline=(*self.record.timeline, entry), **changes
            )
        )
        log.info("swap %s: %s — %s", self.record.swap_id, state.value, note)
        await self.emit(ProgressKind.STATE, note)
        await self.hook(f"commit:{state.value}")

    async def update(self, **changes: Any) -> None:
        """Persist new facts without changing state (ticket status seen while polling)."""
        await self._save(attrs.evolve(self.record, **changes))

    async def stop(self, event: SwapEvent, step: SwapStep, reason: str, **changes: Any) -> None:
        """End the swap FAILED or NEEDS_OPERATOR, remembering where and why."""
        await self.commit(
            event, reason, reason=reason, failed_step=step, stopped_at=self.record.state, **changes
        )

    async def fail(self, step: SwapStep, reason: str, **changes: Any) -> None:
        if step in (SwapStep.WITHDRAW, SwapStep.POLL_WITHDRAW) and self.record.trades:
            await self.withdraw_failed(step, reason, **changes)
            return
        await self.stop(SwapEvent.FAILED, step, reason, **changes)

    async def escalate(self, step: SwapStep, reason: str, **changes: Any) -> None:
        await self.stop(SwapEvent.ESCALATED, step, reason, **changes)

    async def reject(self, step: SwapStep, exc: Exception) -> None:
        """A check failed: FAILED; raised to the caller when nothing was sent yet."""
        await self.fail(step, str(exc))
        if not self.record.side_effects_started:
            self.raised = exc
            raise exc

    async def keep_lease(self) -> None:
        self.keeper.check_stop(self.record)
        await self.keeper.keep()

    async def sleep(self, seconds: float) -> None:
        await self.keep_lease()
        await anyio.sleep(max(seconds, 0.0))

    async def wait_change(self, seconds: float, **match: int | None) -> None:
        """Wait before the next poll: ``seconds``, or less when the workflow's stream pushes
        an event for this order or ticket (or resynchronised, so events may be missed).
        The event only triggers the next REST check.  Without a stream, or when it fails,
        this is :meth:`sleep`."""
        stream = self.wf.account_stream
        if stream is None:
            await self.sleep(seconds)
            return
        await self.keep_lease()
        start = anyio.current_time()
        try:
            await stream.wait_account_change(timeout=max(seconds, 0.0), **match)
        except KiiexError as exc:
            log.debug("swap %s: stream unavailable (%s); polling", self.record.swap_id, exc)
            await anyio.sleep(max(seconds - (anyio.current_time() - start), 0.0))

    async def read(
        self,
        what: str,
        call: Callable[[], Awaitable[T]],
        *,
        not_found_is_transient: bool = False,
    ) -> T:
        """A read given the step's time limit: the client's retry engine retries it
        (:meth:`~kiiex_async.KiiexClient.retry_scope`), reporting each retry and keeping
        the lease; past the limit :class:`SwapInterruptedError` (the swap stays resumable)."""
        limit = self.request.timeouts.step
        retry_on = _READ_RETRY_ON + ((NotFoundError,) if not_found_is_transient else ())
        try:
            with self.client.retry_scope(
                limit,
                retry_on=retry_on,
                on_retry=self._retrying,
                wait_max=self.request.timeouts.max_poll,
            ):
                return await call()
        except Exception as exc:
            if not isinstance(exc, retry_on + _TRANSIENT):
                raise
            raise SwapInterruptedError(
                f"{what} kept failing (the step's limit is {limit:g} s): {exc}",
                swap_id=self.record.swap_id,
                step=self._step_label(),
            ) from exc

    async def _retrying(self, method: str, exc: Exception) -> None:
        """Before the client retries a read: report it, and keep (or give up) the lease."""
        await self.emit(ProgressKind.RETRY, f"{method} failed ({exc}); retrying")
        await self.keep_lease()

    def _step_label(self) -> str | None:
        step = step_of(self.record.state)
        return step.label if step else None

    async def _send_write(
        self,
        method: str,
        step: SwapStep,
        call: Callable[[], Awaitable[T]],
        *,
        reconcile: Callable[[], Awaitable[None]],
    ) -> T | None:
        """Send a write once and return its answer; ``None`` when it was refused (the swap
        failed at ``step``) or its outcome is unknown (``reconcile`` ran instead)."""
        await self.hook(f"send:{method}")
        await self.keeper.fence()
        self.sent[method] += 1
        try:
            answer = await call()
        except _NOT_APPLIED:
            raise
        except _DEFINITIVE as exc:
            await self.fail(step, f"{method} refused: {exc}")
            return None
        except Exception as exc:
            await self.emit(ProgressKind.RECONCILE, f"{method} outcome unknown: {exc}")
            await reconcile()
            return None
        await self.hook(f"sent:{method}")
        return answer

    async def find(self, what: str, fetch: Callable[[], Awaitable[list[T]]]) -> list[T]:
        """Look for the result of a write, re-checking for ``reconcile_grace`` seconds
        before concluding that there is none."""
        deadline = anyio.current_time() + self.request.timeouts.reconcile_grace
        while True:
            found = await fetch()
            remaining = deadline - anyio.current_time()
            if found or remaining <= 0:
                return found
            await self.emit(ProgressKind.RECONCILE, f"{what}: nothing yet, looking again")
            await self.sleep(min(0.2, remaining))

    async def positions(self) -> list[Position]:
        return await self.read(
            "GetAccountPositions",
            lambda: self.client.get_account_positions(account_id=self.account_id),
        )

    # -- ending a swap whose trade stands; sending a write that never arrived again -----

    async def withdraw_failed(self, step: SwapStep, reason: str, **changes: Any) -> None:
        """End the swap WITHDRAW_FAILED: the trade stands, its proceeds stay in the account."""
        trades = self.record.trades
        assert trades is not None
        asset = self.request.to_asset
        net = trades.received - trades.fees.get(asset, _ZERO)
        await self.stop(
            SwapEvent.WITHDRAW_FAILED,
            step,
            f"{reason}; the {net} {asset} received stay in the account: retry the withdrawal "
            "by resuming with withdraw_fields",
            **changes,
        )

    async def _resend(
        self, step: SwapStep, method: str, field: str, progress: TicketProgress | OrderProgress
    ) -> None:
        if self.sent[method] >= self.wf.max_send_attempts:
            raise SwapInterruptedError(
                f"{method} did not reach the exchange in {self.sent[method]} attempts "
                "(reconciliation found nothing each time); nothing was applied, resume later",
                swap_id=self.record.swap_id,
                step=step.label,
            )
        await self.commit(
            SwapEvent.RESEND,
            f"{method} never reached the exchange (reconciliation found nothing after "
            f"{self.request.timeouts.reconcile_grace:g} s): sending it again",
            **{field: attrs.evolve(progress, attempts=progress.attempts + 1)},
        )

    # -- shared by steps 2 and 3: is the balance enough for the order -----------------

    async def check_balance(self, event: SwapEvent, step: SwapStep) -> None:
        request, plan = self.request, self.plan
        positions = await self.positions()
        book = await self.read(
            "GetL2Snapshot", lambda: self.client.get_l2_snapshot(plan.instrument_id)
        )
        planned = await self._funded_order(step, positions, book)
        if planned is None:
            return
        order, available = planned
        note = "deposit credited; " if event is SwapEvent.DEPOSIT_CREDITED else ""
        await self.commit(
            event,
            f"{note}{available} {request.from_asset} available, the order needs about "
            f"{order.required}",
        )

    async def _funded_order(
        self, step: SwapStep, positions: Sequence[Position], book: L2Snapshot
    ) -> tuple[OrderPlan, Decimal] | None:
        """The order to send now and the balance it draws on; ``None`` once the swap was
        rejected at ``step`` (no order fits the book, or the balance is short)."""
        request, plan = self.request, self.plan
        position = _available(positions, plan.from_product_id, request.from_asset)
        available = position.available if position else _ZERO
        try:
            order = plan_order(request, plan, book)
            check_funds(order, available, request.from_asset)
        except (InvalidInputError, InsufficientFundsError) as exc:
            await self.reject(step, exc)
            return None
        return order, available
