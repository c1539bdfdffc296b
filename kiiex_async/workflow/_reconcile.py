"""Pure matching rules of reconciliation: which orders and tickets belong to a swap.

Each function returns *every* candidate; the runner decides: one is the swap's, none means
the write never arrived (after a grace re-check), several means the exchange cannot settle
the question and an operator must.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from ..models import DepositTicket, Order, WithdrawTicket
from ._record import TicketProgress

__all__ = [
    "CLOCK_SKEW",
    "match_deposit_tickets",
    "match_orders",
    "match_withdraw_tickets",
    "parse_timestamp",
]

#: Tolerance between our clock and the exchange's when matching tickets by time.
CLOCK_SKEW = dt.timedelta(minutes=5)


def match_orders(
    orders: Iterable[Order], *, client_order_id: int, instrument_id: int, account_id: int
) -> list[Order]:
    """Distinct orders (by order id) carrying the swap's ClientOrderId on its instrument and
    account, each in its most advanced revision seen."""
    found: dict[int, Order] = {}
    for order in orders:
        if order.client_order_id != client_order_id:
            continue
        if order.instrument_id != instrument_id:
            continue
        if order.account_id and order.account_id != account_id:
            continue
        previous = found.get(order.order_id)
        if previous is None or (order.last_updated_time, order.order_state.is_final) >= (
            previous.last_updated_time,
            previous.order_state.is_final,
        ):
            found[order.order_id] = order
    return sorted(found.values(), key=lambda o: o.order_id)


def parse_timestamp(value: str) -> dt.datetime | None:
    """Parse a ticket timestamp (ISO-8601, or epoch ms / .NET ticks as digits); ``None`` if
    it cannot be read."""
    text = value.strip()
    if not text:
        return None
    if text.isdigit():
        number = int(text)
        if number > 10**17:  # .NET ticks (100 ns since 0001-01-01)
            return dt.datetime(1, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=number // 10)
        return dt.datetime.fromtimestamp(number / 1000, dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _comment(fields: dict[str, Any]) -> str | None:
    for key, value in fields.items():
        if key.lower() == "comment" and isinstance(value, str):
            return value
    return None


def _recent(created: str, progress: TicketProgress) -> bool:
    when = parse_timestamp(created)
    # A ticket whose time cannot be read is kept: the other criteria still apply, and an
    # extra candidate can only make the answer "ambiguous", never a wrong match.
    return when is None or when >= progress.intent_at - CLOCK_SKEW


def _pick(
    candidates: Iterable[tuple[int, int, Decimal, str, str, dict[str, Any]]],
    progress: TicketProgress,
) -> list[int]:
    """Indices of the tickets that may be the swap's.

    ``candidates`` are ``(index, ticket_number, amount, template_type, created, fields)``
    with ``fields`` the ticket's form / deposit info.  Strong matches carry the swap's
    marker in ``Comment``; they win when there are any.  Otherwise (the exchange does not
    echo the form, or the user set their own ``Comment``) a ticket is a candidate when it
    did not exist before the intent, has the product, amount and template type of the
    intent, was created after it (within clock skew) and shows no other ``Comment``.
    """
    known = set(progress.known_tickets)
    ours = _comment(dict(progress.form))
    strong: list[int] = []
    weak: list[int] = []
    for index, number, amount, template_type, created, fields in candidates:
        comment = _comment(fields)
        if progress.marker is not None and comment == progress.marker:
            strong.append(index)
            continue
        if number in known or amount != progress.amount:
            continue
        same_template = (
            not template_type
            or not progress.template_type
            or template_type.lower() == progress.template_type.lower()
        )
        if not same_template:
            continue
        if comment is not None and comment != ours:
            continue
        if _recent(created, progress):
            weak.append(index)
    return strong or weak


def match_withdraw_tickets(
    tickets: Iterable[WithdrawTicket], progress: TicketProgress
) -> list[WithdrawTicket]:
    """The withdraw tickets of the intent's product that may be the swap's (see
    :func:`_pick` for the rules), by ticket number."""
    unique = {t.ticket_number: t for t in tickets if t.asset_id == progress.product_id}
    ordered = sorted(unique.values(), key=lambda t: t.ticket_number)
    picked = _pick(
        (
            (i, t.ticket_number, t.amount, t.template_form_type, t.created_timestamp, t.form)
            for i, t in enumerate(ordered)
        ),
        progress,
    )
    return [ordered[i] for i in picked]


def match_deposit_tickets(
    tickets: Iterable[DepositTicket], progress: TicketProgress
) -> list[DepositTicket]:
    """The deposit tickets of the intent's product that may be the swap's (same rules as
    withdrawals, with the marker read from the ticket's ``DepositInfo``)."""
    unique = {t.ticket_number: t for t in tickets if t.asset_id == progress.product_id}
    ordered = sorted(unique.values(), key=lambda t: t.ticket_number)
    picked = _pick(
        (
            (i, t.ticket_number, t.amount, "", t.created_timestamp, _json_object(t.deposit_info))
            for i, t in enumerate(ordered)
        ),
        progress,
    )
    return [ordered[i] for i in picked]
