"""Deposit and withdrawal endpoints of :class:`~kiiex_async.KiiexClient`.

:class:`TicketsMixin` owns deposit tickets, deposit info and deposits, withdraw templates,
fees, withdraw tickets and withdrawals.  ``create_deposit_ticket`` and
``create_withdraw_ticket`` are writes: sent once, an unknown outcome raises
:class:`~kiiex_async.errors.UnknownOutcomeError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from . import _validate as check
from . import _wire, pricing
from ._session import SessionMixin, _ci_get
from ._validate import Amount
from .errors import InvalidInputError
from .models import (
    Deposit,
    DepositInfo,
    DepositTicket,
    DepositTicketCreated,
    GenericResult,
    Withdraw,
    WithdrawFee,
    WithdrawTemplate,
    WithdrawTemplateType,
    WithdrawTicket,
)

__all__ = ["TicketsMixin"]


class TicketsMixin(SessionMixin):
    """Deposit and withdrawal calls (see the module docstring)."""

    _template_form_as: Literal["object", "string"]

    # -- deposits -------------------------------------------------------------------------

    async def create_deposit_ticket(
        self,
        product_id: int,
        amount: Amount,
        *,
        account_id: int | None = None,
        asset_name: str = "",
        deposit_info: Mapping[str, str] | None = None,
        asset_manager_id: int = 1,
        operator_id: int = 1,
        timeout: float | None = None,
    ) -> DepositTicketCreated:
        """``CreateDepositTicket`` (a WRITE): ask for a (fiat) deposit to be credited."""
        product_id = check.positive_id(product_id, "product_id")
        checked = pricing.check_amount(amount, name="amount")
        check.optional_int(account_id, "account_id", minimum=1)
        asset_manager_id = check.positive_id(asset_manager_id, "asset_manager_id")
        operator_id = check.positive_id(operator_id, "operator_id")
        if not isinstance(asset_name, str):
            raise InvalidInputError("asset_name must be a str")
        if deposit_info is not None and not isinstance(deposit_info, Mapping):
            raise InvalidInputError("deposit_info must be a mapping")
        info = "" if deposit_info is None else _wire.dumps(deposit_info).decode()

        def build() -> dict[str, Any]:
            return {
                "OMSId": self._oms_id,
                "OperatorId": operator_id,
                "AccountId": self._account(account_id),
                "AssetManagerId": asset_manager_id,
                "AssetId": product_id,
                "AssetName": asset_name,
                "Amount": checked,
                "Status": 0,
                "DepositInfo": info,
            }

        data = await self._private("CreateDepositTicket", build, write=True, timeout=timeout)
        return self._decode("CreateDepositTicket", data, DepositTicketCreated, write=True)

    async def get_deposit_tickets(
        self, *, account_id: int | None = None, operator_id: int = 1, timeout: float | None = None
    ) -> list[DepositTicket]:
        """``GetDepositTickets``: the account's deposit tickets."""
        check.optional_int(account_id, "account_id", minimum=1)
        operator_id = check.positive_id(operator_id, "operator_id")

        def build() -> dict[str, Any]:
            return {
                "OMSId": self._oms_id,
                "OperatorId": operator_id,
                "AccountId": self._account(account_id),
            }

        data = await self._private("GetDepositTickets", build, timeout=timeout)
        return self._decode_list("GetDepositTickets", data, DepositTicket)

    async def get_deposit_ticket(
        self,
        *,
        request_code: str | None = None,
        ticket_id: int | None = None,
        account_id: int | None = None,
        timeout: float | None = None,
    ) -> DepositTicket:
        """``GetDepositTicket`` by ``request_code`` and/or ``ticket_id``."""
        lookup = _ticket_lookup(request_code, ticket_id)
        check.optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call("GetDepositTicket", account_id, lookup, timeout=timeout)
        return self._decode("GetDepositTicket", data, DepositTicket)

    async def get_deposit_info(
        self,
        product_id: int,
        *,
        generate_new_key: bool = False,
        account_id: int | None = None,
        timeout: float | None = None,
    ) -> DepositInfo:
        """``GetDepositInfo``: deposit addresses of a (crypto) product."""
        product_id = check.positive_id(product_id, "product_id")
        if not isinstance(generate_new_key, bool):
            raise InvalidInputError("generate_new_key must be a bool")
        check.optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call(
            "GetDepositInfo",
            account_id,
            {"ProductId": product_id, "GenerateNewKey": generate_new_key},
            timeout=timeout,
        )
        return self._decode("GetDepositInfo", data, DepositInfo)

    async def get_deposits(
        self, *, account_id: int | None = None, timeout: float | None = None
    ) -> list[Deposit]:
        """``GetDeposits``: the account's deposits, with ticket status names."""
        check.optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call("GetDeposits", account_id, timeout=timeout)
        return self._decode_list("GetDeposits", data, Deposit)

    # -- withdrawals ----------------------------------------------------------------------

    async def get_withdraws(
        self, *, account_id: int | None = None, timeout: float | None = None
    ) -> list[Withdraw]:
        """``GetWithdraws``: the account's withdrawals, with ticket status names."""
        check.optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call("GetWithdraws", account_id, timeout=timeout)
        return self._decode_list("GetWithdraws", data, Withdraw)

    async def get_withdraw_template_types(
        self, product_id: int, *, account_id: int | None = None, timeout: float | None = None
    ) -> list[WithdrawTemplateType]:
        """``GetWithdrawTemplateTypes``: the withdraw templates a product offers."""
        product_id = check.positive_id(product_id, "product_id")
        check.optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call(
            "GetWithdrawTemplateTypes", account_id, {"ProductId": product_id}, timeout=timeout
        )
        items = _ci_get(data, "TemplateTypes") if isinstance(data, Mapping) else data
        return self._decode_list(
            "GetWithdrawTemplateTypes", [] if items is None else items, WithdrawTemplateType
        )

    async def get_withdraw_template(
        self,
        product_id: int,
        template_type: str,
        *,
        account_id: int | None = None,
        account_provider_id: int | None = None,
        timeout: float | None = None,
    ) -> WithdrawTemplate:
        """``GetWithdrawTemplate``: the fields a withdrawal with ``template_type`` needs."""
        product_id = check.positive_id(product_id, "product_id")
        template_type = check.text(template_type, "template_type")
        check.optional_int(account_id, "account_id", minimum=1)
        provider = check.optional_int(account_provider_id, "account_provider_id", minimum=1)
        fields: dict[str, Any] = {"ProductId": product_id, "TemplateType": template_type}
        if provider is not None:
            fields["AccountProviderId"] = provider
        data = await self._account_call("GetWithdrawTemplate", account_id, fields, timeout=timeout)
        return self._decode("GetWithdrawTemplate", data, WithdrawTemplate)

    async def get_withdraw_fee(
        self,
        product_id: int,
        amount: Amount,
        *,
        account_id: int | None = None,
        timeout: float | None = None,
    ) -> WithdrawFee:
        """``GetWithdrawFee``: the fee a withdrawal of ``amount`` would cost."""
        product_id = check.positive_id(product_id, "product_id")
        checked = pricing.check_amount(amount, name="amount")
        check.optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call(
            "GetWithdrawFee",
            account_id,
            {"ProductId": product_id, "Amount": checked},
            timeout=timeout,
        )
        return self._decode("GetWithdrawFee", data, WithdrawFee)

    async def create_withdraw_ticket(
        self,
        product_id: int,
        amount: Amount,
        *,
        template_type: str,
        template_form: Mapping[str, str],
        account_id: int | None = None,
        timeout: float | None = None,
    ) -> GenericResult:
        """``CreateWithdrawTicket`` (a WRITE): ask for ``amount`` to leave the account.

        ``template_form`` is sent as a JSON object, as KIIEX's guide and AlphaPoint's docs
        show it, or as JSON text with ``KiiexClient(template_form_as="string")`` (as ccxt
        sends it).  The answer only confirms receipt: follow the ticket with
        :meth:`get_withdraw_tickets`.
        """
        product_id = check.positive_id(product_id, "product_id")
        checked = pricing.check_amount(amount, name="amount")
        template_type = check.text(template_type, "template_type")
        if not isinstance(template_form, Mapping):
            raise InvalidInputError("template_form must be a mapping of field name to value")
        text = _wire.dumps(template_form).decode()  # also refuses what cannot be sent
        form: str | dict[str, Any] = (
            text if self._template_form_as == "string" else dict(template_form)
        )
        check.optional_int(account_id, "account_id", minimum=1)
        fields = {
            "ProductId": product_id,
            "Amount": checked,
            "TemplateType": template_type,
            "TemplateForm": form,
        }
        data = await self._account_call(
            "CreateWithdrawTicket", account_id, fields, write=True, timeout=timeout
        )
        return self._decode("CreateWithdrawTicket", data, GenericResult, write=True)

    async def get_withdraw_tickets(
        self,
        *,
        account_id: int | None = None,
        start_index: int = 0,
        limit: int = 200,
        timeout: float | None = None,
    ) -> list[WithdrawTicket]:
        """``GetWithdrawTickets``: the account's withdraw tickets (index 0 is the oldest)."""
        check.optional_int(account_id, "account_id", minimum=1)
        start = check.optional_int(start_index, "start_index")
        count = check.positive_id(limit, "limit")
        data = await self._account_call(
            "GetWithdrawTickets", account_id, {"StartIndex": start, "Limit": count}, timeout=timeout
        )
        return self._decode_list("GetWithdrawTickets", data, WithdrawTicket)

    async def get_withdraw_ticket(
        self,
        *,
        request_code: str | None = None,
        ticket_id: int | None = None,
        account_id: int | None = None,
        timeout: float | None = None,
    ) -> WithdrawTicket:
        """``GetWithdrawTicket`` by ``request_code`` and/or ``ticket_id``."""
        lookup = _ticket_lookup(request_code, ticket_id)
        check.optional_int(account_id, "account_id", minimum=1)
        data = await self._account_call("GetWithdrawTicket", account_id, lookup, timeout=timeout)
        return self._decode("GetWithdrawTicket", data, WithdrawTicket)


def _ticket_lookup(request_code: str | None, ticket_id: int | None) -> dict[str, Any]:
    if request_code is None and ticket_id is None:
        raise InvalidInputError("pass request_code or ticket_id")
    lookup: dict[str, Any] = {}
    if request_code is not None:
        lookup["RequestCode"] = check.text(request_code, "request_code")
    if ticket_id is not None:
        lookup["TicketId"] = check.positive_id(ticket_id, "ticket_id")
    return lookup
