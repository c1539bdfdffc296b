"""The ``guide`` dialect: answers shaped exactly like KIIEX's "Stablecoin FX Quick Start".

KIIEX's own guide documents thinner answers than AlphaPoint's full objects.  With
``SimConfig(dialect="guide")`` the calls of its nine steps answer in these shapes (and
every other call as in the ``apex`` dialect):

==========================  =========================================================
call                        answer
==========================  =========================================================
``AuthenticateUser``        ``{"authenticated":true,"user":{userId,userName,email,
                            emailVerified,accountId,omsId,use2FA}}`` -- no session
                            token, so private HTTP calls need the signed headers (a
                            WebSocket is logged in by the login itself)
``CreateDepositTicket``     ``{"success":true,"requestcode":"<guid>"}`` (as apex)
``GetAccountPositions``     ``[{omsId,accountId,productSymbol,productId,amount,hold}]``
``GetLevel1SummaryMin``     rows of strings
``SendOrder``               ``{"status","errormsg","OrderId"}`` (as apex)
``GetOrderStatus``          ``{OrderId, OrderState, QuantityExecuted, AvgPrice}``
``GetTradesHistory``        ``[{tradeId, orderId, quantity, price}]``
``CreateWithdrawTicket``    the generic ``{result, errormsg, errorcode, detail}`` (as apex)
``GetWithdrawTickets``      the guide's camelCase ticket (its 23 keys, nothing more)
==========================  =========================================================

Pure functions from exchange records to plain dicts, written by hand like :mod:`._render`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ._config import DemoUser, ProductSpec
from ._exchange import Exchange
from ._json import decimal_text
from ._records import Order, Trade, WithdrawTicket
from ._render import iso

__all__ = [
    "level1_summary",
    "login",
    "order_status",
    "position",
    "trade",
    "withdraw_ticket",
]


def login(user: DemoUser) -> dict[str, Any]:
    """The guide's successful ``AuthenticateUser`` answer (camelCase, no token)."""
    return {
        "authenticated": True,
        "user": {
            "userId": user.user_id,
            "userName": user.username,
            "email": user.email,
            "emailVerified": True,
            "accountId": user.account_id,
            "omsId": 1,
            "use2FA": user.two_fa_code is not None,
        },
    }


def position(ex: Exchange, account_id: int, spec: ProductSpec) -> dict[str, Any]:
    """The guide's ``GetAccountPositions`` element: six camelCase keys."""
    amount, hold = ex.balance(account_id, spec.product_id)
    return {
        "omsId": 1,
        "accountId": account_id,
        "productSymbol": spec.symbol,
        "productId": spec.product_id,
        "amount": amount,
        "hold": hold,
    }


def level1_summary(row: list[Any]) -> list[str]:
    """A ``GetLevel1SummaryMin`` row with every column as a string (the guide: ``[["text"]]``)."""
    return [decimal_text(v) if isinstance(v, Decimal) else str(v) for v in row]


def order_status(order: Order) -> dict[str, Any]:
    """The guide's ``GetOrderStatus`` answer: four fields."""
    return {
        "OrderId": order.order_id,
        "OrderState": order.state,
        "QuantityExecuted": order.quantity_executed,
        "AvgPrice": order.avg_price,
    }


def trade(t: Trade) -> dict[str, Any]:
    """The guide's ``GetTradesHistory`` element: four camelCase fields (no fee, no side)."""
    return {"tradeId": t.trade_id, "orderId": t.order_id, "quantity": t.quantity, "price": t.price}


def withdraw_ticket(t: WithdrawTicket, ex: Exchange) -> dict[str, Any]:
    """The guide's withdraw ticket: exactly its keys, ``templateForm`` and the three
    trailing lists as JSON text."""
    user = ex.users.get(t.user_id)
    name = user.username if user else ""
    return {
        "assetManagerId": 1,
        "accountId": t.account_id,
        "assetId": t.product_id,
        "assetName": ex.products[t.product_id].symbol,
        "amount": t.amount,
        "templateForm": t.template_form,
        "templateFormType": t.template_type,
        "omsId": 1,
        "requestCode": t.request_code,
        "requestIP": t.request_ip,
        "requestUserId": t.user_id,
        "requestUserName": name,
        "operatorId": 1,
        "Status": t.status,
        "feeAmt": t.fee,
        "updatedByUser": t.user_id,
        "updatedByUserName": name,
        "ticketNumber": t.ticket_number,
        "createdTimestamp": iso(t.created_at),
        "lastUpdateTimestamp": iso(t.updated_at),
        "Comments": "[]",
        "Attachments": "[]",
        "AuditLog": "[]",
    }
