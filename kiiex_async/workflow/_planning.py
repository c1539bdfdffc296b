"""Turning a request and an order book into an order, and checking a withdrawal form
against its template (pure; see the package docstring for what "spend exactly" and
"receive exactly" mean in each orientation)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from decimal import ROUND_DOWN, Context, Decimal

import attrs

from .. import pricing
from ..errors import InsufficientFundsError, InvalidInputError
from ..models import Instrument, L2Snapshot, OrderType, Side, TimeInForce
from ._record import SwapPlan
from ._request import AmountSide, SwapRequest

__all__ = [
    "OPTIONAL_TEMPLATE_FIELDS",
    "OrderPlan",
    "SlippageError",
    "ThinBookError",
    "missing_template_fields",
    "plan_order",
    "round_up",
]

#: Template fields a withdrawal may leave empty (lower case); every other field the
#: exchange's ``GetWithdrawTemplate`` lists must be given (AlphaPoint templates carry no
#: "required" flag, and an empty address is refused only after the trade).
OPTIONAL_TEMPLATE_FIELDS = frozenset({"comment", "templatetype"})

_DIVIDE = Context(prec=40, rounding=ROUND_DOWN)


class ThinBookError(InvalidInputError):
    """The order book is not deep enough to fill the requested amount."""


class SlippageError(InvalidInputError):
    """The book would fill the amount only beyond the slippage limit."""


@attrs.frozen
class OrderPlan:
    """The order to send and what the book says it will do.

    ``expected_spend`` is in ``from_asset``, ``expected_receive`` in ``to_asset`` (gross of
    fees); ``required`` is the available ``from_asset`` balance the order needs.
    """

    side: Side
    order_type: OrderType
    time_in_force: TimeInForce
    quantity: Decimal | None
    value: Decimal | None
    limit_price: Decimal | None
    best_price: Decimal
    expected_price: Decimal
    worst_price: Decimal
    slippage: Decimal
    expected_spend: Decimal
    expected_receive: Decimal
    required: Decimal


def round_up(value: Decimal, increment: Decimal) -> Decimal:
    """The smallest multiple of ``increment`` that is ``>= value``."""
    down = pricing.round_down(value, increment)
    return down if down >= value else down + increment


def instrument_of(plan: SwapPlan) -> Instrument:
    """The :class:`Instrument` the plan was resolved from (for :mod:`kiiex_async.pricing`)."""
    return Instrument(
        instrument_id=plan.instrument_id,
        symbol=plan.instrument_symbol,
        product1=plan.base_product_id,
        product1_symbol=plan.base_symbol,
        product2=plan.quote_product_id,
        product2_symbol=plan.quote_symbol,
        quantity_increment=plan.quantity_increment,
        price_increment=plan.price_increment,
        minimum_quantity=plan.minimum_quantity,
        minimum_price=plan.minimum_price,
    )


def _thin(request: SwapRequest, book_side: str) -> ThinBookError:
    return ThinBookError(
        f"the order book's {book_side} are not deep enough to {request.describe()}"
    )


def plan_order(request: SwapRequest, plan: SwapPlan, book: L2Snapshot) -> OrderPlan:
    """Size and price the swap's order against ``book``.

    Raises :class:`~kiiex_async.errors.BelowMinimumError` when the rounded quantity is under
    the instrument's minimum, :class:`ThinBookError` when the book cannot fill it and
    :class:`SlippageError` when the expected slippage exceeds ``request.max_slippage``.
    """
    instrument = instrument_of(plan)
    side = plan.side
    slip = request.max_slippage
    spend_exact = request.amount_side is AmountSide.SPEND
    if side is Side.SELL:
        best = book.best_bid
        if best is None:
            raise _thin(request, "bids")
        if spend_exact:
            quantity = pricing.round_quantity(instrument, request.amount)
        else:
            needed = pricing.quote(book, side=side, quote_amount=request.amount)
            if not needed.filled:
                raise _thin(request, "bids")
            quantity = round_up(needed.base_quantity, plan.quantity_increment)
            quantity = pricing.round_quantity(instrument, quantity)
        walk = pricing.quote(book, side=side, base_quantity=quantity)
        limit = None
        if slip is not None:
            limit = pricing.round_price(instrument, best * (1 - slip), side=side)
        value = None
        expected_spend, expected_receive = quantity, walk.quote_amount
        required = quantity
    else:
        best = book.best_ask
        if best is None:
            raise _thin(request, "asks")
        limit = None
        if slip is not None:
            limit = pricing.round_price(instrument, best * (1 + slip), side=side)
        value = None
        if spend_exact:
            if limit is None:
                value = pricing.round_down(request.amount, plan.from_tick_size)
                if value <= 0:
                    raise InvalidInputError(f"amount {request.amount} rounds down to 0")
                walk = pricing.quote(book, side=side, quote_amount=value)
                quantity = None
                required = value
            else:
                quantity = pricing.round_quantity(instrument, _DIVIDE.divide(request.amount, limit))
                walk = pricing.quote(book, side=side, base_quantity=quantity)
                required = quantity * limit
        else:
            quantity = pricing.round_quantity(instrument, request.amount)
            walk = pricing.quote(book, side=side, base_quantity=quantity)
            required = quantity * limit if limit is not None else walk.quote_amount
        expected_spend, expected_receive = walk.quote_amount, walk.base_quantity
    if not walk.filled:
        raise _thin(request, "bids" if side is Side.SELL else "asks")
    if slip is not None and walk.slippage > slip:
        raise SlippageError(
            f"expected slippage {walk.slippage:.4%} exceeds the limit {slip:.4%} "
            f"(best {walk.best_price}, average {walk.average_price}, worst {walk.worst_price})"
        )
    return OrderPlan(
        side=side,
        order_type=OrderType.MARKET if limit is None else OrderType.LIMIT,
        time_in_force=TimeInForce.GTC if limit is None else TimeInForce.IOC,
        quantity=quantity,
        value=value,
        limit_price=limit,
        best_price=walk.best_price,
        expected_price=walk.average_price,
        worst_price=walk.worst_price,
        slippage=walk.slippage,
        expected_spend=expected_spend,
        expected_receive=expected_receive,
        required=required,
    )


def check_funds(plan: OrderPlan, available: Decimal, asset: str) -> None:
    """Raise :class:`~kiiex_async.errors.InsufficientFundsError` unless ``available``
    covers what the order needs."""
    if available < plan.required:
        raise InsufficientFundsError(
            f"insufficient {asset}: the order needs {plan.required} available, the account "
            f"has {available}"
        )


def missing_template_fields(fields: Iterable[str], form: Mapping[str, str]) -> list[str]:
    """The template ``fields`` that ``form`` leaves out or blank (names compare
    case-insensitively; :data:`OPTIONAL_TEMPLATE_FIELDS` may stay empty)."""
    given = {key.lower() for key, value in form.items() if value.strip()}
    return [
        name
        for name in fields
        if name.lower() not in OPTIONAL_TEMPLATE_FIELDS and name.lower() not in given
    ]
