"""Deposit and withdraw tickets."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import attrs

from .enums import DepositStatus, ProductType, WithdrawStatus

__all__ = [
    "Deposit",
    "DepositInfo",
    "DepositTicket",
    "DepositTicketCreated",
    "Withdraw",
    "WithdrawFee",
    "WithdrawTemplate",
    "WithdrawTemplateType",
    "WithdrawTicket",
]

_ZERO = Decimal(0)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


@attrs.frozen(slots=False)
class DepositTicket:
    """A deposit request and its progress (``GetDepositTicket(s)``)."""

    ticket_number: int
    account_id: int
    asset_id: int
    amount: Decimal
    status: DepositStatus
    asset_name: str = ""
    request_code: str = ""
    asset_manager_id: int = 1
    operator_id: int = 1
    fee_amt: Decimal = _ZERO
    deposit_info: str = ""
    created_timestamp: str = ""
    last_update_time_stamp: str = ""
    reject_reason: str | None = None
    comments: str | None = None
    attachments: str | None = None
    oms_id: int = 1


@attrs.frozen(slots=False)
class DepositTicketCreated:
    """Answer of ``CreateDepositTicket``."""

    success: bool
    requestcode: str

    @property
    def request_code(self) -> str:
        """The new ticket's request code (a GUID)."""
        return self.requestcode


@attrs.frozen(slots=False)
class DepositInfo:
    """Deposit addresses of a product (``GetDepositInfo``)."""

    account_id: int
    asset_id: int
    deposit_info: tuple[str, ...] = ()
    asset_manager_id: int = 1
    provider_id: int = 0


@attrs.frozen(slots=False)
class WithdrawTicket:
    """A withdrawal request and its progress (``GetWithdrawTicket(s)``).

    ``template_form`` is the JSON text the exchange stores; ``form`` parses it.
    ``comments``, ``attachments`` and ``audit_log`` are kept as the exchange's text (JSON
    arrays are re-encoded as JSON text).  Fields only some answers carry are ``None`` when
    left out.
    """

    ticket_number: int
    account_id: int
    asset_id: int
    amount: Decimal
    status: WithdrawStatus
    asset_name: str = ""
    request_code: str = ""
    template_form: str = ""
    template_form_type: str = ""
    asset_manager_id: int = 1
    fee_amt: Decimal = _ZERO
    created_timestamp: str = ""
    last_update_timestamp: str = ""
    reject_reason: str | None = None
    request_ip: str | None = None
    request_user_id: int | None = None
    request_user_name: str | None = None
    operator_id: int | None = None
    updated_by_user: int | None = None
    updated_by_user_name: str | None = None
    account_provider_id: int | None = None
    comments: str | None = None
    attachments: str | None = None
    audit_log: str | None = None
    oms_id: int = 1

    @property
    def form(self) -> dict[str, Any]:
        """The template form as a dict (empty if it is not a JSON object)."""
        return _json_object(self.template_form)


@attrs.frozen(slots=False)
class Deposit:
    """One row of ``GetDeposits``: a deposit and its ticket's status (a name on the wire).

    ``deposit_info`` is the exchange's JSON text (provider, transaction id, addresses).
    Times are .NET ticks as sent.  Fields only some answers carry are ``None``.
    """

    account_id: int
    product_id: int
    amount: Decimal
    ticket_status: DepositStatus
    deposit_id: int | None = None
    ticket_number: int | None = None
    deposit_code: str | None = None
    deposit_info: str | None = None
    fee_amount: Decimal | None = None
    product_type: ProductType | None = None
    notional_product_id: int | None = None
    notional_value: Decimal | None = None
    sub_account_id: int | None = None
    last_update_time_stamp: int | None = None
    oms_id: int | None = None


@attrs.frozen(slots=False)
class Withdraw:
    """One row of ``GetWithdraws``: a withdrawal and its ticket's status.

    ``template_form`` is the exchange's JSON text; ``form`` parses it.  Fields only some
    answers carry are ``None``.
    """

    account_id: int
    asset_id: int
    amount: Decimal
    ticket_status: WithdrawStatus
    withdraw_id: int | None = None
    ticket_number: int | None = None
    withdraw_code: str | None = None
    fee_amount: Decimal | None = None
    template_form: str | None = None
    template_form_type: str | None = None
    withdraw_type: str | None = None
    withdraw_transaction_details: str | None = None
    asset_type: ProductType | None = None
    asset_manager_id: int | None = None
    reaccepted: bool | None = None
    notional_product_id: int | None = None
    notional_value: Decimal | None = None
    last_update_time_stamp: int | None = None
    oms_id: int | None = None

    @property
    def form(self) -> dict[str, Any]:
        """The template form as a dict (empty if it is not a JSON object)."""
        return _json_object(self.template_form or "")


@attrs.frozen(slots=False)
class WithdrawTemplateType:
    """One withdraw template a product offers (``GetWithdrawTemplateTypes``)."""

    template_name: str
    account_provider_id: int = 0
    account_provider_name: str = ""


@attrs.frozen(slots=False)
class WithdrawTemplate:
    """The fields a withdraw template needs (``GetWithdrawTemplate``)."""

    template_type: str
    fields: tuple[str, ...]
    template: str = ""


@attrs.frozen(slots=False)
class WithdrawFee:
    """Fee of a prospective withdrawal (``GetWithdrawFee``)."""

    fee_amount: Decimal
    ticket_amount: Decimal = _ZERO
