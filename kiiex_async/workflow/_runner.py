"""The swap runner: drives a :class:`SwapRecord` through the state machine, doing the I/O.

Rules it keeps (see the package docstring for the whole contract):

* before every side-effecting call the intent is committed; its result is committed right
  after, under a shielded cancel scope, so Ctrl-C never loses an answer that arrived;
* an unknown write outcome is reconciled with the exchange at once (never resent blindly);
  a swap resumed in an ``*_INTENT`` state reconciles before it would send again;
* reads that fail are retried with jittered backoff until the step's time limit;
* one runner per swap: a fenced lease (:mod:`._keeper`), renewed by every save, a
  heartbeat and right before every write.
"""

from __future__ import annotations

import functools
import inspect
import logging
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Final, TypeVar

import anyio
import anyio.abc
import attrs

from .. import pricing
from ..errors import (
    ApiError,
    AuthenticationError,
    BelowMinimumError,
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
    WorkflowError,
)
from ..models import (
    DepositStatus,
    DepositTicket,
    L2Snapshot,
    Order,
    OrderState,
    Position,
    Product,
    Side,
    Trade,
    WithdrawStatus,
    WithdrawTicket,
)
from ._errors import SwapInterruptedError
from ._ids import swap_marker
from ._keeper import LeaseKeeper
from ._machine import SwapEvent, SwapState, SwapStep, step_of, transition
from ._planning import OrderPlan, check_funds, missing_template_fields, plan_order
from ._reconcile import match_deposit_tickets, match_orders, match_withdraw_tickets
from ._record import (
    OrderProgress,
    QuoteInfo,
    SwapPlan,
    SwapRecord,
    TicketProgress,
    TimelineEntry,
    TradesSummary,
    utcnow,
)
from ._request import SwapRequest
from ._result import ProgressEvent, ProgressKind, SwapResult
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
#: A read failing with one of these is retried by the runner until the step's limit.
_RETRYABLE: Final = (TransportError, ServerError, RateLimitedError, DecodeError)
#: A write failing with one of these was certainly not applied.
_DEFINITIVE: Final = (RejectedError, NotFoundError, InvalidInputError)
#: A write failing with one of these was not applied either, but the cause is not the
#: swap's: the run stops (resumable) instead of failing the swap.  A redirect reaching the
#: runner is a refusal (the pipeline turns a 303 into UnknownOutcomeError), usually a wrong
#: base URL.
_NOT_APPLIED: Final = (AuthenticationError, ConfigurationError, RedirectError)
_TICKET_PAGE: Final = 200
#: How many recent ledger entries are searched for the fees of the swap's trades.
_JOURNAL_DEPTH: Final = 500
#: ``TradesSummary.derived["fees"]`` between steps 6 and 7 when the trades state no fee.
_FEES_UNKNOWN: Final = "not stated by the trades: from the balance movement at step 7"

_Ticket = TypeVar("_Ticket", DepositTicket, WithdrawTicket)


@attrs.frozen
class _TicketKind:
    """What tells a swap's deposit ticket from its withdraw ticket when reconciling."""

    #: The :class:`SwapRecord` attribute holding the ticket's progress.
    field: str
    noun: str
    method: str
    step: SwapStep
    intent: SwapState
    created: SwapEvent


_DEPOSIT: Final = _TicketKind(
    field="deposit",
    noun="deposit",
    method="CreateDepositTicket",
    step=SwapStep.FUND,
    intent=SwapState.DEPOSIT_INTENT,
    created=SwapEvent.DEPOSIT_CREATED,
)
_WITHDRAWAL: Final = _TicketKind(
    field="withdrawal",
    noun="withdraw",
    method="CreateWithdrawTicket",
    step=SwapStep.WITHDRAW,
    intent=SwapState.WITHDRAW_INTENT,
    created=SwapEvent.WITHDRAW_CREATED,
)


def _available(positions: Sequence[Position], product_id: int, symbol: str) -> Position | None:
    for position in positions:
        if position.product_id == product_id or position.product_symbol.upper() == symbol:
            return position
    return None


def _comment_of(form: dict[str, str]) -> str | None:
    for key, value in form.items():
        if key.lower() == "comment" and value:
            return value
    return None


def _marked(form: Mapping[str, str], swap_id: str) -> tuple[dict[str, str], str | None]:
    """A copy of a ticket's ``form`` whose comment is the swap's marker, and the marker;
    a form that has a comment already is kept as it is (marker ``None``)."""
    marked = dict(form)
    if _comment_of(marked) is not None:
        return marked, None
    marker = swap_marker(swap_id)
    marked["Comment"] = marker
    return marked, marker


def _order_summary(plan: SwapPlan, executed: Decimal, avg_price: Decimal) -> TradesSummary:
    """Step 6 from the order alone (the exchange listed no trades): ``QuantityExecuted``
    base units at ``AvgPrice``."""
    quote = executed * avg_price
    sells_base = plan.side is Side.SELL
    how = "QuantityExecuted × AvgPrice of the order (the exchange listed no trades)"
    return TradesSummary(
        trade_ids=(),
        base_quantity=executed,
        quote_value=quote,
        spent=executed if sells_base else quote,
        received=quote if sells_base else executed,
        average_price=avg_price,
        derived={"spent": how, "received": how, "fees": _FEES_UNKNOWN},
    )


def _percent(value: Decimal) -> str:
    return f"{value * 100:.4f}%"


class _Runner:
    """One run of one swap (private: :class:`SwapWorkflow` creates it)."""

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
        """A read, retried with jittered backoff on transient failures until the step's
        time limit; then :class:`SwapInterruptedError` (the swap stays resumable)."""
        limit = self.request.timeouts.step
        deadline = anyio.current_time() + limit
        delay = 0.05
        while True:
            try:
                return await call()
            except Exception as exc:
                transient = isinstance(exc, _RETRYABLE) or (
                    not_found_is_transient and isinstance(exc, NotFoundError)
                )
                if not transient:
                    raise
                now = anyio.current_time()
                if now >= deadline:
                    raise SwapInterruptedError(
                        f"{what} kept failing for {limit:g} s: {exc}",
                        swap_id=self.record.swap_id,
                        step=self._step_label(),
                    ) from exc
                wait = delay * random.uniform(0.5, 1.0)
                if isinstance(exc, RateLimitedError) and exc.retry_after:
                    wait = exc.retry_after
                wait = min(wait, deadline - now, self.request.timeouts.max_poll)
                await self.emit(ProgressKind.RETRY, f"{what} failed ({exc}); retrying")
                await self.sleep(wait)
                delay = min(delay * 2, self.request.timeouts.max_poll)

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

    # -- driving --------------------------------------------------------------------------

    async def drive(self) -> SwapResult:
        handlers: dict[SwapState, Callable[[], Awaitable[None]]] = {
            SwapState.CREATED: self.authenticate,
            SwapState.AUTHENTICATED: self.fund,
            SwapState.DEPOSIT_INTENT: self.reconcile_deposit,
            SwapState.DEPOSIT_PENDING: self.poll_deposit,
            SwapState.FUNDED: self.rate,
            SwapState.QUOTED: self.order,
            SwapState.ORDER_INTENT: self.reconcile_order,
            SwapState.ORDER_PLACED: self.poll_order,
            SwapState.ORDER_DONE: self.read_trades,
            SwapState.TRADES_READ: self.confirm_positions,
            SwapState.POSITIONS_CONFIRMED: self.withdraw,
            SwapState.WITHDRAW_INTENT: self.reconcile_withdraw,
            SwapState.WITHDRAW_PENDING: self.poll_withdraw,
        }
        if not self.record.state.is_terminal:
            await self.hook(f"start:{self.record.state.value}")
            # Step 1 on every run: a resumed swap logs in again with this run's client.
            await self.read("AuthenticateUser", self.client.authenticate)
            self.record = self.wf._check_login(self.record)
        while not self.record.state.is_terminal:
            self.keeper.check_stop(self.record)
            revision = self.record.revision
            await handlers[self.record.state]()
            if self.record.revision == revision:  # pragma: no cover - a bug, never a loop
                raise WorkflowError(
                    f"internal error: step {self.record.state.value} made no progress",
                    swap_id=self.record.swap_id,
                )
        return SwapResult.from_record(self.record)

    # -- step 1: authenticate (and preflight: nothing is sent before these checks) --------

    async def authenticate(self) -> None:
        client, request = self.client, self.request
        account_id = request.account_id or client.account_id
        if account_id is None:
            raise ConfigurationError("authentication returned no account id")
        products = await self.read("GetProducts", client.get_products)
        instruments = await self.read("GetInstruments", client.get_instruments)
        try:
            plan = self._resolve(account_id, products, instruments)
        except InvalidInputError as exc:
            await self.reject(SwapStep.AUTHENTICATE, exc)
            return
        self.record = attrs.evolve(self.record, plan=plan)
        positions = await self.positions()
        book = await self.read("GetL2Snapshot", lambda: client.get_l2_snapshot(plan.instrument_id))
        from_position = _available(positions, plan.from_product_id, request.from_asset)
        available = from_position.available if from_position else _ZERO
        deposit = request.deposit.amount if request.deposit else _ZERO
        try:
            order = plan_order(request, plan, book)
            check_funds(order, available + deposit, request.from_asset)
            spec = request.withdrawal
            if spec is not None and spec.amount is not None:
                target = _available(positions, plan.to_product_id, request.to_asset)
                reachable = (target.available if target else _ZERO) + order.expected_receive
                if spec.amount > reachable:
                    raise InsufficientFundsError(
                        f"cannot withdraw {spec.amount} {request.to_asset}: the account would "
                        f"hold about {reachable} after the swap"
                    )
            await self._check_withdraw_template(order.expected_receive)
        except (InvalidInputError, InsufficientFundsError) as exc:
            await self.reject(SwapStep.AUTHENTICATE, exc)
            return
        before = self._balances(positions)
        side = "sells" if plan.side is Side.SELL else "buys"
        await self.commit(
            SwapEvent.AUTHENTICATED,
            f"account {account_id}; {plan.instrument_symbol} {side} {plan.base_symbol}; "
            f"{available} {request.from_asset} available, the order needs about {order.required}",
            plan=plan,
            balances_before=before,
        )

    async def _check_withdraw_template(self, expected_receive: Decimal | None = None) -> None:
        """Refuse, before anything is sent, a withdrawal that could only fail after the
        trade: a template the exchange does not offer for the asset, form fields its
        template does not have (a typo), fields it needs that the form leaves out, or
        (given the ``expected_receive`` of the order) an amount that leaves nothing above
        the product's smallest unit once the withdrawal fee is paid."""
        spec, plan = self.request.withdrawal, self.plan
        if spec is None:
            return
        asset = self.request.to_asset
        try:
            types = await self.read(
                "GetWithdrawTemplateTypes",
                lambda: self.client.get_withdraw_template_types(
                    plan.to_product_id, account_id=plan.account_id
                ),
            )
        except ApiError:
            types = []  # a venue without template listing: nothing to check against
        names = {t.template_name.lower(): t.template_name for t in types if t.template_name}
        if names and spec.template_type.lower() not in names:
            raise InvalidInputError(
                f"{asset} has no withdraw template {spec.template_type!r}; the exchange offers "
                + ", ".join(sorted(names.values()))
            )
        try:
            template = await self.read(
                "GetWithdrawTemplate",
                lambda: self.client.get_withdraw_template(
                    plan.to_product_id, spec.template_type, account_id=plan.account_id
                ),
            )
        except ApiError:
            template = None
        if template is not None and template.fields:
            name = template.template_type or spec.template_type
            fields = {f.lower() for f in template.fields} | {"templatetype", "comment"}
            unknown = sorted(k for k in spec.form if k.lower() not in fields)
            if unknown:
                raise InvalidInputError(
                    f"withdraw template {name} of {asset} has no field(s) {', '.join(unknown)}; "
                    "its fields are " + ", ".join(template.fields)
                )
            missing = missing_template_fields(template.fields, spec.form)
            if missing:
                raise InvalidInputError(
                    f"withdraw template {name} of {asset} needs "
                    + ", ".join(f"{m}=..." for m in missing)
                    + " (give each with --withdraw-field / WithdrawSpec.form); nothing was sent"
                )
        if expected_receive is not None:
            await self._check_withdraw_amount(expected_receive)

    async def _check_withdraw_amount(self, expected_receive: Decimal) -> None:
        """Refuse a withdrawal whose amount, after its fee, is not above the product's
        smallest unit (``expected_receive`` is the order's gross estimate)."""
        spec, plan = self.request.withdrawal, self.plan
        assert spec is not None
        tick = plan.to_tick_size
        wanted = spec.amount if spec.amount is not None else expected_receive
        amount = pricing.round_down(wanted, tick) if wanted > 0 else _ZERO
        fee = await self._withdraw_fee(amount) if amount > 0 else _ZERO
        left = amount - fee if spec.amount is None else amount
        if left <= 0 or left < tick:
            raise BelowMinimumError(
                f"the withdrawal of about {wanted} {self.request.to_asset} leaves "
                f"{max(left, _ZERO)} after its fee {fee}, not above the smallest amount {tick}"
                ": swap more, or leave the withdrawal out"
            )

    def _resolve(
        self, account_id: int, products: list[Product], instruments: list[Any]
    ) -> SwapPlan:
        request = self.request
        by_symbol = {p.symbol.upper(): p for p in products}
        for symbol in (request.from_asset, request.to_asset):
            product = by_symbol.get(symbol)
            if product is None or product.is_disabled:
                known = ", ".join(sorted(by_symbol)) or "none"
                raise InvalidInputError(f"unknown asset {symbol!r}: the exchange lists {known}")
        source, target = by_symbol[request.from_asset], by_symbol[request.to_asset]
        instrument = pricing.find_instrument(instruments, request.from_asset, request.to_asset)
        if not instrument.is_active:
            raise InvalidInputError(f"instrument {instrument.symbol} is not trading now")
        if request.deposit is not None and not source.deposit_enabled:
            raise InvalidInputError(f"deposits of {source.symbol} are disabled")
        if request.withdrawal is not None and not target.withdraw_enabled:
            raise InvalidInputError(f"withdrawals of {target.symbol} are disabled")
        sells_base = instrument.product1 == source.product_id
        return SwapPlan(
            account_id=account_id,
            instrument_id=instrument.instrument_id,
            instrument_symbol=instrument.symbol,
            base_symbol=instrument.product1_symbol.upper(),
            quote_symbol=instrument.product2_symbol.upper(),
            base_product_id=instrument.product1,
            quote_product_id=instrument.product2,
            from_product_id=source.product_id,
            to_product_id=target.product_id,
            side=Side.SELL if sells_base else Side.BUY,
            quantity_increment=instrument.quantity_increment,
            price_increment=instrument.price_increment,
            minimum_quantity=instrument.minimum_quantity,
            minimum_price=instrument.minimum_price,
            from_tick_size=source.tick_size,
            to_tick_size=target.tick_size,
        )

    # -- step 2: deposit, or check the balance --------------------------------------------

    async def fund(self) -> None:
        if self.request.deposit is None:
            await self.check_balance(SwapEvent.BALANCE_CONFIRMED, SwapStep.FUND)
            return
        spec, plan = self.request.deposit, self.plan
        amount = pricing.round_down(spec.amount, plan.from_tick_size)
        if amount <= 0:
            await self.reject(SwapStep.FUND, InvalidInputError("deposit amount rounds down to 0"))
            return
        tickets = await self.read(
            "GetDepositTickets",
            lambda: self.client.get_deposit_tickets(account_id=self.account_id),
        )
        info, marker = _marked(spec.deposit_info, self.record.swap_id)
        progress = TicketProgress(
            product_id=plan.from_product_id,
            asset=self.request.from_asset,
            amount=amount,
            marker=marker,
            known_tickets=tuple(sorted({t.ticket_number for t in tickets})),
            intent_at=utcnow(),
            form=info,
            attempts=1,
        )
        await self.commit(
            SwapEvent.DEPOSIT_REQUESTED,
            f"CreateDepositTicket {amount} {progress.asset} (marker {marker or 'none'})",
            deposit=progress,
        )
        await self.send_deposit()

    async def send_deposit(self) -> None:
        progress = self.record.deposit
        assert progress is not None
        created = await self._send_write(
            "CreateDepositTicket",
            SwapStep.FUND,
            lambda: self.client.create_deposit_ticket(
                progress.product_id,
                progress.amount,
                account_id=self.account_id,
                asset_name=progress.asset,
                deposit_info=dict(progress.form),
            ),
            reconcile=self.reconcile_deposit,
        )
        if created is None:
            return
        if not created.success or not created.request_code:
            await self.fail(SwapStep.FUND, "CreateDepositTicket answered without success")
            return
        await self.commit(
            SwapEvent.DEPOSIT_CREATED,
            f"deposit ticket created (request code {created.request_code})",
            deposit=attrs.evolve(progress, request_code=created.request_code),
        )

    async def reconcile_deposit(self) -> None:
        progress = self.record.deposit
        assert progress is not None

        async def fetch() -> list[DepositTicket]:
            tickets = await self.read(
                "GetDepositTickets",
                lambda: self.client.get_deposit_tickets(account_id=self.account_id),
            )
            return match_deposit_tickets(tickets, progress)

        await self._adopt_ticket(
            _DEPOSIT,
            progress,
            fetch,
            lambda ticket: f"reconciled: deposit ticket {ticket.ticket_number} is this swap's",
            send=self.send_deposit,
        )

    async def _adopt_ticket(
        self,
        kind: _TicketKind,
        progress: TicketProgress,
        fetch: Callable[[], Awaitable[list[_Ticket]]],
        note: Callable[[_Ticket], str],
        *,
        send: Callable[[], Awaitable[None]],
        after_success: bool = False,
    ) -> None:
        """Record the one ticket ``fetch`` attributes to this swap (committing ``note``);
        escalate when several match; when none does, escalate ``after_success``, else send
        the ticket again."""
        found = await self.find(f"{kind.noun} ticket", fetch)
        if len(found) == 1:
            ticket = found[0]
            await self.commit(
                kind.created,
                note(ticket),
                **{
                    kind.field: attrs.evolve(
                        progress,
                        ticket_number=ticket.ticket_number,
                        request_code=ticket.request_code or None,
                        status=int(ticket.status),
                    )
                },
            )
        elif found:
            numbers = ", ".join(str(t.ticket_number) for t in found)
            await self.escalate(
                kind.step,
                f"{len(found)} {kind.noun} tickets ({numbers}) match this swap's {kind.field} of "
                f"{progress.amount} {progress.asset}: decide which one is valid",
            )
        elif after_success:
            await self.escalate(
                kind.step,
                f"{kind.method} succeeded but no matching ticket is visible; check the "
                f"account's {kind.noun} tickets",
            )
        else:
            await self._resend(kind.step, kind.method, kind.field, progress)
            if self.record.state is kind.intent:
                await send()

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

    async def poll_deposit(self) -> None:
        progress = self.record.deposit
        assert progress is not None
        timeouts = self.request.timeouts
        deadline = anyio.current_time() + timeouts.deposit
        interval = timeouts.deposit_poll
        code = progress.request_code
        number = None if code else progress.ticket_number

        async def lookup() -> DepositTicket:
            return await self.client.get_deposit_ticket(
                request_code=code, ticket_id=number, account_id=self.account_id
            )

        while True:
            ticket = await self.read("GetDepositTicket", lookup, not_found_is_transient=True)
            if int(ticket.status) != progress.status or progress.ticket_number is None:
                progress = attrs.evolve(
                    progress, status=int(ticket.status), ticket_number=ticket.ticket_number
                )
                await self.update(deposit=progress)
                await self.emit(
                    ProgressKind.STATUS,
                    f"deposit ticket {ticket.ticket_number}: {ticket.status.name}",
                    {"ticket": str(ticket.ticket_number), "ticket_status": ticket.status.name},
                )
            if ticket.status.is_final:
                if ticket.status is DepositStatus.FULLY_PROCESSED:
                    await self.check_balance(SwapEvent.DEPOSIT_CREDITED, SwapStep.FUND)
                else:
                    await self.fail(
                        SwapStep.FUND,
                        f"deposit ticket {ticket.ticket_number} ended {ticket.status.name}"
                        + (f": {ticket.reject_reason}" if ticket.reject_reason else ""),
                    )
                return
            if anyio.current_time() >= deadline:
                await self.escalate(
                    SwapStep.FUND,
                    f"deposit ticket {ticket.ticket_number} still {ticket.status.name} after "
                    f"{timeouts.deposit:g} s; resume with reopen=True to keep waiting",
                )
                return
            await self.wait_change(interval, deposit_ticket=progress.ticket_number)
            interval = min(interval * 1.5, timeouts.max_poll)

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

    # -- step 3: rate ---------------------------------------------------------------------

    async def rate(self) -> None:
        plan = self.plan
        book = await self.read(
            "GetL2Snapshot", lambda: self.client.get_l2_snapshot(plan.instrument_id)
        )
        positions = await self.positions()
        planned = await self._funded_order(SwapStep.RATE, positions, book)
        if planned is None:
            return
        order, _ = planned
        await self.commit(
            SwapEvent.QUOTED,
            self._describe_plan(order),
            quote=QuoteInfo(
                best_price=order.best_price,
                expected_price=order.expected_price,
                worst_price=order.worst_price,
                expected_spend=order.expected_spend,
                expected_receive=order.expected_receive,
                slippage=order.slippage,
                limit_price=order.limit_price,
                taken_at=utcnow(),
            ),
            order=OrderProgress(
                client_order_id=self.record.client_order_id,
                instrument_id=plan.instrument_id,
                side=order.side,
                order_type=order.order_type,
                time_in_force=order.time_in_force,
                quantity=order.quantity,
                value=order.value,
                limit_price=order.limit_price,
            ),
        )

    def _describe_plan(self, order: OrderPlan) -> str:
        request = self.request
        text = (
            f"rate {order.expected_price} (best {order.best_price}): expect to spend "
            f"{order.expected_spend} {request.from_asset} and receive {order.expected_receive} "
            f"{request.to_asset}, slippage {_percent(order.slippage)}"
        )
        if order.limit_price is not None and request.max_slippage is not None:
            text += f" (limit {_percent(request.max_slippage)}: price {order.limit_price})"
        return text

    # -- steps 4 and 5: order, poll it ----------------------------------------------------

    async def order(self) -> None:
        order = self.record.order
        assert order is not None
        amount = (
            f"quantity {order.quantity}" if order.quantity is not None else f"value {order.value}"
        )
        price = f" limit {order.limit_price}" if order.limit_price is not None else ""
        await self.commit(
            SwapEvent.ORDER_REQUESTED,
            f"SendOrder {order.side.name} {order.order_type.name} "
            f"{order.time_in_force.name} {amount}{price} ClientOrderId {order.client_order_id}",
            order=attrs.evolve(order, attempts=1, intent_at=utcnow()),
        )
        await self.send_order()

    async def send_order(self) -> None:
        order = self.record.order
        assert order is not None
        sent = await self._send_write(
            "SendOrder",
            SwapStep.ORDER,
            lambda: self.client.send_order(
                order.instrument_id,
                order.side,
                order.quantity,
                order_type=order.order_type,
                time_in_force=order.time_in_force,
                limit_price=order.limit_price,
                value=order.value,
                client_order_id=order.client_order_id,
                account_id=self.account_id,
            ),
            reconcile=self.reconcile_order,
        )
        if sent is None:
            return
        await self.commit(
            SwapEvent.ORDER_ACCEPTED,
            f"order {sent.order_id} accepted",
            order=attrs.evolve(order, order_id=sent.order_id),
        )

    async def _orders_with_client_id(self) -> list[Order]:
        order = self.record.order
        assert order is not None
        history = await self.read(
            "GetOrdersHistory",
            lambda: self.client.get_orders_history(
                account_id=self.account_id,
                client_order_id=order.client_order_id,
                instrument_id=order.instrument_id,
            ),
        )
        open_orders = await self.read(
            "GetOpenOrders", lambda: self.client.get_open_orders(account_id=self.account_id)
        )
        return match_orders(
            [*history, *open_orders],
            client_order_id=order.client_order_id,
            instrument_id=order.instrument_id,
            account_id=self.account_id,
        )

    async def reconcile_order(self) -> None:
        order = self.record.order
        assert order is not None
        found = await self.find("order", self._orders_with_client_id)
        if len(found) == 1:
            await self.commit(
                SwapEvent.ORDER_ACCEPTED,
                f"reconciled: order {found[0].order_id} carries ClientOrderId "
                f"{order.client_order_id}",
                order=attrs.evolve(order, order_id=found[0].order_id),
            )
        elif found:
            ids = ", ".join(str(o.order_id) for o in found)
            await self.escalate(
                SwapStep.ORDER,
                f"{len(found)} orders ({ids}) carry this swap's ClientOrderId "
                f"{order.client_order_id}: check them on the exchange",
            )
        else:
            await self._resend(SwapStep.ORDER, "SendOrder", "order", order)
            if self.record.state is SwapState.ORDER_INTENT:
                await self.send_order()

    async def poll_order(self) -> None:
        progress = self.record.order
        assert progress is not None
        assert progress.order_id is not None
        order_id = progress.order_id
        timeouts = self.request.timeouts
        deadline = anyio.current_time() + timeouts.order
        interval = timeouts.order_poll
        seen: tuple[object, ...] = ()
        while True:
            order = await self.read(
                "GetOrderStatus",
                lambda: self.client.get_order_status(order_id, account_id=self.account_id),
                not_found_is_transient=True,
            )
            progress = attrs.evolve(
                progress,
                order_state=order.order_state,
                quantity_executed=order.quantity_executed,
                gross_value_executed=order.gross_value_executed,
                avg_price=order.avg_price,
                reject_reason=order.reject_reason or order.cancel_reason or "",
            )
            if (order.order_state, order.quantity_executed) != seen:
                seen = (order.order_state, order.quantity_executed)
                await self.emit(
                    ProgressKind.STATUS,
                    f"order {order_id}: {order.order_state.name}, executed "
                    f"{order.quantity_executed} of {order.orig_quantity or progress.quantity}",
                    {
                        "order_id": str(order_id),
                        "order_state": order.order_state.name,
                        "quantity_executed": str(order.quantity_executed),
                    },
                )
            if order.order_state.is_final:
                if order.quantity_executed > 0:
                    full = order.order_state is OrderState.FULLY_EXECUTED
                    partial = "" if full else " (partially filled)"
                    await self.commit(
                        SwapEvent.ORDER_FINISHED,
                        f"order {order_id} {order.order_state.name}{partial}: executed "
                        f"{order.quantity_executed} at {order.avg_price}",
                        order=progress,
                    )
                else:
                    why = f": {progress.reject_reason}" if progress.reject_reason else ""
                    await self.fail(
                        SwapStep.POLL_ORDER,
                        f"order {order_id} ended {order.order_state.name} with nothing "
                        f"executed{why}",
                        order=progress,
                    )
                return
            if anyio.current_time() >= deadline:
                await self.escalate(
                    SwapStep.POLL_ORDER,
                    f"order {order_id} still {order.order_state.name} after "
                    f"{timeouts.order:g} s (executed {order.quantity_executed}); it may still "
                    "fill: check it on the exchange, or resume with reopen=True",
                    order=progress,
                )
                return
            await self.wait_change(
                interval, order_id=order_id, client_order_id=self.record.client_order_id
            )
            interval = min(interval * 1.5, timeouts.max_poll)

    # -- step 6: trades -------------------------------------------------------------------

    async def read_trades(self) -> None:
        progress, plan = self.record.order, self.plan
        assert progress is not None
        assert progress.order_id is not None
        order_id = progress.order_id
        executed = progress.quantity_executed or _ZERO
        timeouts = self.request.timeouts
        deadline = anyio.current_time() + timeouts.step
        interval = timeouts.order_poll
        while True:
            trades = await self.read(
                "GetTradesHistory",
                lambda: self.client.get_trades_history(
                    account_id=self.account_id, instrument_id=plan.instrument_id, order_id=order_id
                ),
            )
            unique = {(t.trade_id, t.execution_id): t for t in trades if t.order_id == order_id}
            fills = sorted(unique.values(), key=lambda t: (t.trade_id, t.execution_id or 0))
            total = sum((t.quantity for t in fills), _ZERO)
            if total == executed:
                summary = await self._summarize(fills)
                break
            if anyio.current_time() >= deadline:
                if not fills and progress.avg_price:
                    # An exchange that lists no trades still said what the order did.
                    summary = _order_summary(plan, executed, progress.avg_price)
                    break
                await self.escalate(
                    SwapStep.TRADES,
                    f"the fills of order {order_id} add up to {total}, but the order executed "
                    f"{executed}",
                )
                return
            await self.sleep(interval)
            interval = min(interval * 1.5, timeouts.max_poll)
        fees = ", ".join(f"{v} {k}" for k, v in sorted(summary.fees.items()))
        if not fees:
            fees = "not stated (worked out at step 7)" if "fees" in summary.derived else "none"
        await self.commit(
            SwapEvent.TRADES_READ,
            f"{len(fills)} fill(s): spent {summary.spent} {self.request.from_asset}, received "
            f"{summary.received} {self.request.to_asset} at {summary.average_price}; fees {fees}",
            trades=summary,
        )

    async def _summarize(self, fills: list[Trade]) -> TradesSummary:
        plan = self.plan
        base = sum((t.quantity for t in fills), _ZERO)
        quote = sum((t.value if t.value else t.quantity * t.price for t in fills), _ZERO)
        symbols = {plan.base_product_id: plan.base_symbol, plan.quote_product_id: plan.quote_symbol}
        fees: dict[str, Decimal] = {}
        for fill in fills:
            if not fill.fee:
                continue
            if fill.fee_product_id not in symbols:
                products = await self.read("GetProducts", self.client.get_products)
                symbols.update({p.product_id: p.symbol.upper() for p in products})
            symbol = symbols.get(fill.fee_product_id or 0, f"#{fill.fee_product_id}")
            fees[symbol] = fees.get(symbol, _ZERO) + fill.fee
        sells_base = plan.side is Side.SELL
        derived: dict[str, str] = {}
        if any(t.value is None for t in fills):
            quote_side = "received" if sells_base else "spent"
            derived[quote_side] = "Σ quantity × price of the trades (they state no Value)"
        if fills and all(t.fee is None for t in fills):
            derived["fees"] = _FEES_UNKNOWN
        return TradesSummary(
            trade_ids=tuple(sorted({t.trade_id for t in fills})),
            base_quantity=base,
            quote_value=quote,
            spent=base if sells_base else quote,
            received=quote if sells_base else base,
            average_price=(quote / base) if base else _ZERO,
            fees=fees,
            derived=derived,
        )

    # -- step 7: positions ----------------------------------------------------------------

    async def confirm_positions(self) -> None:
        request, trades = self.request, self.record.trades
        assert trades is not None
        positions = await self.positions()
        after = self._balances(positions)
        before = self.record.balances_before.get(request.to_asset, _ZERO)
        delta = after[request.to_asset] - before
        if trades.derived.get("fees") == _FEES_UNKNOWN:
            trades = await self._fees_from_journal(trades) or self._fees_from_balances(
                trades, after
            )
        net = trades.received - trades.fees.get(request.to_asset, _ZERO)
        note = f"{request.to_asset} balance {after[request.to_asset]} ({delta:+} since the start"
        if delta == net:
            note += ", as the fills say)"
        else:
            note += f"; the fills say {net:+}: other activity on the account?)"
        if "fees" in trades.derived:
            note += f"; fees {trades.derived['fees']}"
        await self.commit(SwapEvent.POSITIONS_CONFIRMED, note, balances_after=after, trades=trades)

    async def _fees_from_journal(self, trades: TradesSummary) -> TradesSummary | None:
        """The fees the trades did not state, from the account's ledger
        (``GetAccountTransactions``: its ``Fee`` entries referencing this order's trades).

        ``None`` when the exchange has no such call or the recent ledger does not show
        every trade of the order (the caller then falls back on the balance movement).
        """
        if not trades.trade_ids:
            return None
        try:
            entries = await self.read(
                "GetAccountTransactions",
                lambda: self.client.get_account_transactions(
                    account_id=self.account_id, depth=_JOURNAL_DEPTH
                ),
            )
        except (ApiError, SwapInterruptedError):
            return None
        ours = set(trades.trade_ids)
        traded = {
            e.reference_id
            for e in entries
            if e.reference_type == "Trade" and e.transaction_type == "Trade"
        }
        if not ours <= traded:
            return None
        plan = self.plan
        symbols = {plan.base_product_id: plan.base_symbol, plan.quote_product_id: plan.quote_symbol}
        fees: dict[str, Decimal] = {}
        for entry in entries:
            if (
                entry.transaction_type == "Fee"
                and entry.reference_type == "Trade"
                and entry.reference_id in ours
            ):
                symbol = symbols.get(entry.product_id, f"#{entry.product_id}")
                fees[symbol] = fees.get(symbol, _ZERO) + entry.dr - entry.cr
        how = "from the account's ledger (GetAccountTransactions Fee entries of the trades)"
        return attrs.evolve(
            trades,
            fees={k: v for k, v in fees.items() if v},
            derived={**trades.derived, "fees": how},
        )

    def _fees_from_balances(
        self, trades: TradesSummary, after: Mapping[str, Decimal]
    ) -> TradesSummary:
        """The trading fees the trades did not state, from how the two balances moved.

        Each asset's fee is what the trades (and a deposit credited during the swap) explain
        minus what the balance really did.  A result below zero or not below the traded
        amount means something else moved the account: the fees then stay unstated rather
        than guessed.
        """
        request, record = self.request, self.record
        before = record.balances_before
        deposit = record.deposit
        credited = (
            deposit.amount
            if deposit is not None and deposit.status == DepositStatus.FULLY_PROCESSED
            else _ZERO
        )
        from_asset, to_asset = request.from_asset, request.to_asset
        expected = {
            from_asset: before.get(from_asset, _ZERO) + credited - trades.spent,
            to_asset: before.get(to_asset, _ZERO) + trades.received,
        }
        charged = {symbol: expected[symbol] - after[symbol] for symbol in expected}
        traded = {from_asset: trades.spent, to_asset: trades.received}
        if any(not 0 <= charged[symbol] < traded[symbol] for symbol in charged):
            how = (
                "unknown: the trades state none and the balances moved more than the trades "
                "explain (other activity on the account?)"
            )
            return attrs.evolve(trades, derived={**trades.derived, "fees": how})
        fees = {symbol: amount for symbol, amount in charged.items() if amount > 0}
        how = (
            "from the balance movement (positions before vs after the trade): the trades state none"
        )
        return attrs.evolve(trades, fees=fees, derived={**trades.derived, "fees": how})

    def _balances(self, positions: Sequence[Position]) -> dict[str, Decimal]:
        """The balance of the swap's two assets, by symbol."""
        request, plan = self.request, self.plan
        balances: dict[str, Decimal] = {}
        for product_id, symbol in (
            (plan.from_product_id, request.from_asset),
            (plan.to_product_id, request.to_asset),
        ):
            position = _available(positions, product_id, symbol)
            balances[symbol] = position.amount if position else _ZERO
        return balances

    # -- steps 8 and 9: withdrawal, poll it -----------------------------------------------

    async def _withdraw_tickets(self) -> list[WithdrawTicket]:
        tickets: list[WithdrawTicket] = []
        start = 0
        while True:
            page = await self.read(
                "GetWithdrawTickets",
                functools.partial(
                    self.client.get_withdraw_tickets,
                    account_id=self.account_id,
                    start_index=start,
                    limit=_TICKET_PAGE,
                ),
            )
            tickets.extend(page)
            if len(page) < _TICKET_PAGE:
                return tickets
            start += len(page)

    async def withdraw(self) -> None:
        request, plan, trades = self.request, self.plan, self.record.trades
        spec = request.withdrawal
        if spec is None:
            await self.commit(SwapEvent.NO_WITHDRAWAL, "swap completed (no withdrawal asked)")
            return
        assert trades is not None
        if spec.amount is None and trades.derived.get("fees", "").startswith("unknown"):
            # "Everything received" less unknown fees could take other funds of the account.
            await self.escalate(
                SwapStep.WITHDRAW,
                f"the trade's fees are unknown (the trades state none and other activity "
                f"moved the balances), so what this swap received cannot be told apart from "
                f"other {request.to_asset} on the account: withdraw it by hand, or swap with "
                "an explicit withdrawal amount",
            )
            return
        net = trades.received - trades.fees.get(request.to_asset, _ZERO)
        positions = await self.positions()
        position = _available(positions, plan.to_product_id, request.to_asset)
        available = position.available if position else _ZERO
        amount = spec.amount if spec.amount is not None else net
        amount = pricing.round_down(amount, plan.to_tick_size) if amount > 0 else _ZERO
        fee = await self._withdraw_fee(amount) if amount > 0 else _ZERO
        if spec.amount is None and available < amount + fee:
            # "Everything received": leave room for a fee charged on top.
            amount = pricing.round_down(max(min(amount, available - fee), _ZERO), plan.to_tick_size)
        if amount <= 0:
            await self.fail(SwapStep.WITHDRAW, f"nothing to withdraw ({available} available)")
            return
        if available < amount + fee:
            await self.fail(
                SwapStep.WITHDRAW,
                f"insufficient {request.to_asset} to withdraw {amount} (fee {fee}): "
                f"{available} available",
            )
            return
        known = await self._withdraw_tickets()
        # A retried withdrawal gets its own marker: the failed ticket carries the first one.
        tries = sum(e.state is SwapState.WITHDRAW_FAILED for e in self.record.timeline)
        swap_id = self.record.swap_id
        form, marker = _marked(spec.form, f"{swap_id}/{tries + 1}" if tries else swap_id)
        progress = TicketProgress(
            product_id=plan.to_product_id,
            asset=request.to_asset,
            amount=amount,
            marker=marker,
            known_tickets=tuple(
                sorted({t.ticket_number for t in known if t.asset_id == plan.to_product_id})
            ),
            intent_at=utcnow(),
            template_type=spec.template_type,
            form=form,
            attempts=1,
            fee=fee,
        )
        await self.commit(
            SwapEvent.WITHDRAW_REQUESTED,
            f"CreateWithdrawTicket {amount} {request.to_asset} ({spec.template_type}, fee {fee}, "
            f"marker {marker or 'none'})",
            withdrawal=progress,
        )
        await self.send_withdraw()

    async def _withdraw_fee(self, amount: Decimal) -> Decimal:
        try:
            fee = await self.read(
                "GetWithdrawFee",
                lambda: self.client.get_withdraw_fee(
                    self.plan.to_product_id, amount, account_id=self.account_id
                ),
            )
        except ApiError:
            return _ZERO
        return fee.fee_amount

    async def send_withdraw(self) -> None:
        progress = self.record.withdrawal
        assert progress is not None
        answered = await self._send_write(
            "CreateWithdrawTicket",
            SwapStep.WITHDRAW,
            lambda: self.client.create_withdraw_ticket(
                progress.product_id,
                progress.amount,
                template_type=progress.template_type,
                template_form=dict(progress.form),
                account_id=self.account_id,
            ),
            reconcile=self.reconcile_withdraw,
        )
        if answered is None:
            return
        await self._adopt_withdraw_ticket(after_success=True)

    async def _adopt_withdraw_ticket(self, *, after_success: bool) -> None:
        progress = self.record.withdrawal
        assert progress is not None

        async def fetch() -> list[WithdrawTicket]:
            return match_withdraw_tickets(await self._withdraw_tickets(), progress)

        how = "created" if after_success else "reconciled: found"
        await self._adopt_ticket(
            _WITHDRAWAL,
            progress,
            fetch,
            lambda ticket: f"{how} withdraw ticket {ticket.ticket_number} ({ticket.status.name})",
            send=self.send_withdraw,
            after_success=after_success,
        )

    async def reconcile_withdraw(self) -> None:
        await self._adopt_withdraw_ticket(after_success=False)

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

    async def retry_withdrawal(self, fields: Mapping[str, str]) -> None:
        """Send a WITHDRAW_FAILED swap back to its withdrawal, with ``fields`` merged into
        the form (a key given again replaces the old value, case-insensitively); the new
        form is checked against the template first, and a bad one raises
        :class:`~kiiex_async.errors.InvalidInputError` leaving the swap as it was."""
        spec, stored = self.request.withdrawal, self.record
        try:
            if stored.state is not SwapState.WITHDRAW_FAILED or spec is None:
                raise InvalidInputError(
                    f"withdraw fields apply only to a WITHDRAW_FAILED swap; swap "
                    f"{stored.swap_id} is {stored.state.value}"
                )
            if not isinstance(fields, Mapping):
                raise InvalidInputError("withdraw_fields must be a mapping of field names to text")
            replaced = {str(key).lower() for key in fields}
            form = {k: v for k, v in spec.form.items() if k.lower() not in replaced}
            form.update(fields)
            request = attrs.evolve(self.request, withdrawal=attrs.evolve(spec, form=form))
            self.record = attrs.evolve(stored, request=request)
            await self._check_withdraw_template()
        except InvalidInputError as exc:
            self.record = stored
            self.raised = exc
            raise
        given = ", ".join(sorted(fields)) or "the same form"
        await self.commit(
            SwapEvent.WITHDRAW_RETRY,
            f"withdrawal retried ({given})",
            reason=None,
            failed_step=None,
            stopped_at=None,
        )

    async def poll_withdraw(self) -> None:
        progress = self.record.withdrawal
        assert progress is not None
        assert progress.ticket_number is not None
        ticket_id = progress.ticket_number
        timeouts = self.request.timeouts
        deadline = anyio.current_time() + timeouts.withdrawal
        interval = timeouts.withdrawal_poll
        while True:
            ticket = await self.read(
                "GetWithdrawTicket",
                lambda: self.client.get_withdraw_ticket(
                    ticket_id=ticket_id, account_id=self.account_id
                ),
                not_found_is_transient=True,
            )
            if int(ticket.status) != progress.status:
                progress = attrs.evolve(progress, status=int(ticket.status))
                await self.update(withdrawal=progress)
                await self.emit(
                    ProgressKind.STATUS,
                    f"withdraw ticket {ticket_id}: {ticket.status.name}",
                    {"ticket": str(ticket_id), "ticket_status": ticket.status.name},
                )
            if ticket.status.is_final:
                if ticket.status is WithdrawStatus.FULLY_PROCESSED:
                    await self.commit(
                        SwapEvent.WITHDRAW_FINISHED,
                        f"withdraw ticket {ticket_id} fully processed",
                    )
                else:
                    await self.fail(
                        SwapStep.POLL_WITHDRAW,
                        f"withdraw ticket {ticket_id} ended {ticket.status.name}"
                        + (f": {ticket.reject_reason}" if ticket.reject_reason else ""),
                    )
                return
            if anyio.current_time() >= deadline:
                await self.escalate(
                    SwapStep.POLL_WITHDRAW,
                    f"withdraw ticket {ticket_id} still {ticket.status.name} after "
                    f"{timeouts.withdrawal:g} s; resume with reopen=True to keep waiting",
                )
                return
            await self.wait_change(interval, withdraw_ticket=ticket_id)
            interval = min(interval * 1.5, timeouts.max_poll)
