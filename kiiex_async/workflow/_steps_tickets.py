"""The ticket steps of a swap: the deposit (step 2) and the withdrawal (steps 8 and 9).

It owns :class:`_TicketSteps`: creating a deposit or withdraw ticket once, marked with the
swap's id; reconciling one whose outcome is unknown (``_adopt_ticket``); polling it to a
final status; the withdrawal's preflight checks (template, form fields, amount after its
fee) and retrying a failed withdrawal with new form fields.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Final, TypeVar

import anyio
import attrs

from .. import pricing
from ..errors import ApiError, BelowMinimumError, InvalidInputError
from ..models import DepositStatus, DepositTicket, WithdrawStatus, WithdrawTicket
from ._ids import swap_marker
from ._machine import SwapEvent, SwapState, SwapStep
from ._planning import missing_template_fields
from ._reconcile import match_deposit_tickets, match_withdraw_tickets
from ._record import TicketProgress, utcnow
from ._result import ProgressKind
from ._runner_context import _ZERO, _available, _RunnerContext

_TICKET_PAGE: Final = 200

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


class _TicketSteps(_RunnerContext):
    """Deposit and withdraw tickets (a mixin of :class:`._runner._Runner`)."""

    # -- withdrawal preflight (step 1, and a retried withdrawal) -------------------------

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
