"""Deposit and withdrawal handlers: tickets, deposit addresses, templates and fees.

Deposit tickets answer SLATE's shapes (``{"success":true,"requestcode":...}``); a
withdrawal takes its ``TemplateForm`` as an object or JSON text (or ccxt's ``Payload``
wrapper with a 2FA code) and holds ``amount + fee`` until it ends.
"""

from __future__ import annotations

from . import _guide as guide
from . import _render as render
from ._call import Call, Handlers, Reply, _ok, _page
from ._json import dumps_text
from ._params import BadRequest, Params
from ._records import ZERO, ExchangeError

__all__ = ["TicketHandlers"]


class TicketHandlers(Handlers):
    """Handlers of deposits and withdrawals (see the module doc)."""

    def create_deposit_ticket(self, call: Call) -> Reply:
        """SLATE body; answers ``{"success":true,"requestcode":"<guid>"}``."""
        p = call.params
        account_id = self._account(call)
        assert call.user is not None
        info = p.raw("DepositInfo")
        info_text = info if isinstance(info, str) else dumps_text(info if info else {})
        ticket = self.exchange.create_deposit_ticket(
            account_id=account_id,
            user_id=call.user.user_id,
            product_id=self._product_id(p, "AssetId", "ProductId"),
            amount=p.decimal("Amount"),
            deposit_info=info_text,
            now=call.now,
            asset_manager_id=p.integer("AssetManagerId", 1),
            operator_id=p.integer("OperatorId", 1),
        )
        return _ok({"success": True, "requestcode": ticket.request_code})

    def get_deposit_tickets(self, call: Call) -> Reply:
        """Deposit tickets of the account, oldest first (``StartIndex``/``Limit``)."""
        account_id = self._account(call)
        ex = self.exchange
        found = [t for t in ex.deposit_tickets.values() if t.account_id == account_id]
        return _ok(
            [render.deposit_ticket(t, ex) for t in _page(found, call.params, limit_key="Limit")]
        )

    def get_deposits(self, call: Call) -> Reply:
        """Deposits of the account as ccxt reads them (``TicketStatus`` names)."""
        account_id = self._account(call)
        ex = self.exchange
        found = [t for t in ex.deposit_tickets.values() if t.account_id == account_id]
        return _ok([render.deposit_row(t, ex) for t in found])

    def get_withdraws(self, call: Call) -> Reply:
        """Withdrawals of the account as ccxt reads them (``TicketStatus`` names)."""
        account_id = self._account(call)
        ex = self.exchange
        found = [t for t in ex.withdraw_tickets.values() if t.account_id == account_id]
        return _ok([render.withdraw_row(t, ex) for t in found])

    def get_deposit_ticket(self, call: Call) -> Reply:
        """One deposit ticket by ``RequestCode`` or ``TicketId`` (errorcode 104)."""
        p = call.params
        ticket = self.exchange.find_deposit_ticket(
            [self._account(call)],
            request_code=p.text("RequestCode"),
            ticket_id=p.integer("TicketId", 0) or p.integer("TicketNumber", 0),
        )
        return _ok(render.deposit_ticket(ticket, self.exchange))

    def get_deposit_info(self, call: Call) -> Reply:
        """Addresses as a JSON *string* of a list (``DepositInfo``)."""
        p = call.params
        account_id = self._account(call)
        product_id = self._product_id(p, "ProductId", "AssetId")
        addresses = self.exchange.deposit_info(
            account_id, product_id, generate_new=p.boolean("GenerateNewKey")
        )
        return _ok(
            {
                "result": True,
                "errormsg": None,
                "statuscode": 0,
                "AssetManagerId": 1,
                "AccountId": account_id,
                "AssetId": product_id,
                "ProviderId": product_id,
                "DepositInfo": dumps_text(addresses),
            }
        )

    _TEMPLATE_FIELDS = ("ExternalAddress", "Comment")

    def get_withdraw_template_types(self, call: Call) -> Reply:
        """The objects form: ``TemplateTypes: [{AccountProviderId, TemplateName, ...}]``."""
        self._account(call)
        product = self.exchange.product(self._product_id(call.params, "ProductId", "AssetId"))
        return _ok(
            {
                "result": True,
                "errormsg": None,
                "statuscode": 0,
                "TemplateTypes": [
                    {
                        "AccountProviderId": product.product_id,
                        "TemplateName": "Standard",
                        "AccountProviderName": f"{product.symbol} Provider",
                    }
                ],
            }
        )

    def get_withdraw_template(self, call: Call) -> Reply:
        """``Template`` is a JSON string: ``{"TemplateType","ExternalAddress","Comment"}``."""
        self._account(call)
        p = call.params
        self._product_id(p, "ProductId", "AssetId")
        template_type = p.text("TemplateType")
        if template_type.lower() != "standard":
            raise ExchangeError(104, "Resource Not Found", f"Unknown TemplateType: {template_type}")
        template = {"TemplateType": "Standard", **dict.fromkeys(self._TEMPLATE_FIELDS, "")}
        return _ok(
            {"result": True, "errormsg": None, "statuscode": 0, "Template": dumps_text(template)}
        )

    def get_withdraw_fee(self, call: Call) -> Reply:
        """``{"FeeAmount": fee, "TicketAmount": amount}``."""
        self._account(call)
        p = call.params
        product_id = self._product_id(p, "ProductId", "AssetId")
        amount = p.decimal("Amount", ZERO)
        fee = self.exchange.withdraw_fee(product_id, amount)
        return _ok({"FeeAmount": fee, "TicketAmount": amount})

    def create_withdraw_ticket(self, call: Call) -> Reply:
        """Holds the amount; accepts ``TemplateForm`` as an object or JSON text, and ccxt's
        ``{TfaType, TFaCode, Payload: "<json>"}`` wrapper.  Answers the generic object; a
        shortfall answers ``{"result":true,"errormsg":"Invalid Request","errorcode":100,
        "detail":"Insufficient Balance"}`` (sic, as SLATE documents it)."""
        outer = call.params
        assert call.user is not None
        p = outer
        if outer.has("Payload"):
            payload = outer.json_value("Payload")
            if not isinstance(payload, dict):
                raise BadRequest("Payload must be a JSON object")
            p = Params(payload)
        call.params = p
        account_id = self._account(call)
        product_id = self._product_id(p, "ProductId", "AssetId")
        template_type = p.text("TemplateType", "Standard") or "Standard"
        if template_type.lower() != "standard":
            raise ExchangeError(104, "Resource Not Found", f"Unknown TemplateType: {template_type}")
        raw_form = p.raw("TemplateForm")
        form = p.json_value("TemplateForm")
        if not isinstance(form, dict):
            raise BadRequest("TemplateForm must be a JSON object (or JSON text of one)")
        if not str(form.get("ExternalAddress") or "").strip():
            raise BadRequest("TemplateForm.ExternalAddress is required")
        form_text = raw_form if isinstance(raw_form, str) else dumps_text(form)
        user = call.user
        pending_2fa = False
        if user.two_fa_code:
            code = outer.text("TFaCode") or outer.text("TfaCode")
            if code and code != user.two_fa_code:
                raise ExchangeError(101, "Operation Failed", "Invalid 2FA code")
            pending_2fa = not code
        self.exchange.create_withdraw_ticket(
            account_id=account_id,
            user_id=user.user_id,
            product_id=product_id,
            amount=p.decimal("Amount"),
            template_type="Standard",
            template_form=form_text,
            now=call.now,
            pending_2fa=pending_2fa,
        )
        return _ok(render.generic(True, None, 0, None))

    def get_withdraw_tickets(self, call: Call) -> Reply:
        """Withdraw tickets of the account, oldest first (``StartIndex``, ``Limit`` 200)."""
        account_id = self._account(call)
        ex = self.exchange
        found = [t for t in ex.withdraw_tickets.values() if t.account_id == account_id]
        start = max(call.params.integer("StartIndex", 0), 0)
        limit = call.params.integer("Limit", 200)
        page = found[start : start + limit] if limit > 0 else found[start:]
        if self.guide:
            return _ok([guide.withdraw_ticket(t, ex) for t in page])
        return _ok([render.withdraw_ticket(t, ex) for t in page])

    def get_withdraw_ticket(self, call: Call) -> Reply:
        """One withdraw ticket by ``RequestCode`` or ``TicketId`` (errorcode 104)."""
        p = call.params
        ticket = self.exchange.find_withdraw_ticket(
            [self._account(call)],
            request_code=p.text("RequestCode"),
            ticket_id=p.integer("TicketId", 0) or p.integer("TicketNumber", 0),
        )
        return _ok(render.withdraw_ticket(ticket, self.exchange))
