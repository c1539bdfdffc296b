"""Argument validation: one rule per kind of argument, checked before anything is sent.

Used by :class:`~kiiex_async.KiiexClient`'s endpoints, the workflow's
:class:`~kiiex_async.workflow.SwapRequest` and the CLI, so that an id, a client order id,
an enum member or a piece of text is refused by the same rule with the same message
everywhere.  Amounts have their own single rule, :func:`kiiex_async.pricing.check_amount`
(and :func:`~kiiex_async.pricing.parse_decimal_text` for text).  Every function here is
pure and raises :class:`~kiiex_async.errors.InvalidInputError`.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from enum import IntEnum
from typing import Final, TypeVar

from . import pricing
from .errors import InvalidInputError
from .models import OrderType

__all__ = [
    "MAX_INT64",
    "Amount",
    "client_order_id",
    "member",
    "optional_int",
    "order_price",
    "positive_id",
    "text",
    "utc_text",
]

E = TypeVar("E", bound=IntEnum)

#: An amount of money: a ``Decimal``, an ``int`` or a numeric ``str`` (never a ``float``).
Amount = Decimal | int | str

#: The largest ``ClientOrderId`` (a signed 64-bit integer).
MAX_INT64: Final = 2**63 - 1


def positive_id(value: object, name: str) -> int:
    """``value`` if it is an ``int`` > 0 (never a ``bool``)."""
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidInputError(f"{name} must be a positive int, got {value!r}")
    return value


def optional_int(value: object, name: str, *, minimum: int = 0) -> int | None:
    """``None``, or ``value`` if it is an ``int`` >= ``minimum`` (never a ``bool``)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InvalidInputError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def client_order_id(value: object) -> int:
    """A ``ClientOrderId``: an ``int`` in the signed 64-bit range, 0 included."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT64:
        raise InvalidInputError(
            f"client_order_id must be an int in 0..2**63-1 (signed 64-bit), got {value!r}"
        )
    return value


def member(value: object, enum: type[E], name: str, allowed: frozenset[E] | None = None) -> E:
    """``value`` as a member of ``enum`` (one of ``allowed`` when given)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} must be a {enum.__name__}, got {value!r}")
    try:
        found = enum(value)
    except ValueError:
        raise InvalidInputError(f"{name} must be a {enum.__name__}, got {value!r}") from None
    if allowed is not None and found not in allowed:
        names = ", ".join(sorted(m.name for m in allowed))
        raise InvalidInputError(f"{name} must be one of {names}, got {found.name}")
    return found


def order_price(
    value: Amount | None, name: str, order_type: OrderType, needed_by: frozenset[OrderType]
) -> Decimal | None:
    """A price the order types ``needed_by`` require and every other type refuses."""
    if order_type in needed_by:
        if value is None:
            raise InvalidInputError(f"a {order_type.name} order needs {name}")
        return pricing.check_amount(value, name=name)
    if value is not None:
        raise InvalidInputError(f"{name} does not apply to a {order_type.name} order")
    return None


def text(value: object, name: str) -> str:
    """``value`` if it is a ``str`` with something other than whitespace in it."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"{name} must be a non-empty str")
    return value


def utc_text(value: object, name: str) -> str:
    """An aware datetime as the UTC ``YYYY-MM-DDTHH:MM:SS`` AlphaPoint reads."""
    if not isinstance(value, dt.datetime):
        raise InvalidInputError(f"{name} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInputError(f"{name} must be timezone-aware (for UTC: tzinfo=datetime.UTC)")
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
