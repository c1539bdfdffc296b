"""Deposits and withdrawals: tickets, their status paths, fees and deposit addresses.

A ticket walks a status path (drawn from the seeded ticket generator when it is created)
one step every ``deposit_step_seconds`` / ``withdraw_step_seconds`` of simulated time.  A
deposit credits its amount once ``FullyProcessed``; a withdrawal holds ``amount + fee``
from creation and debits both once ``FullyProcessed`` (``withdraw_outcomes`` forces the
next outcomes).  Request codes are seeded GUIDs.
"""

from __future__ import annotations

import hashlib
import math
import random
import uuid
from collections.abc import Iterable
from decimal import Decimal
from typing import TypeVar

from ._accounts import Accounts
from ._records import (
    D_ACCEPTED,
    D_ADMIN_PROCESSING,
    D_FULLY_PROCESSED,
    D_NEW,
    D_REJECTED,
    W_AUTO_ACCEPTED,
    W_FAILED,
    W_FULLY_PROCESSED,
    W_NEW,
    W_PENDING_2FA,
    W_REJECTED,
    W_SUBMITTED,
    ZERO,
    DepositTicket,
    ExchangeError,
    InsufficientBalance,
    WithdrawTicket,
    invalid,
    ms,
    not_found,
)

__all__ = ["Tickets"]

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


class Tickets(Accounts):
    """Deposit and withdraw tickets (see the module doc)."""

    deposit_tickets: dict[int, DepositTicket]
    withdraw_tickets: dict[int, WithdrawTicket]
    deposit_addresses: dict[tuple[int, int], list[str]]
    #: Forced outcomes ("FullyProcessed", "Failed", "Rejected") of the next withdrawals.
    withdraw_outcomes: list[str]
    _next_deposit: int
    _next_withdraw: int
    _ticket_rng: random.Random
    _guid_rng: random.Random
    _live_deposits: list[DepositTicket]
    _live_withdrawals: list[WithdrawTicket]

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
