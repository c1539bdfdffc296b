"""Absurd numbers are refused at decode: non-finite values and exponents beyond ±100."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kiiex_async import _wire, errors, pricing
from kiiex_async.models import Order, Position, Side

L2_ROW = "[1, 0, 0, 0, {last}, 1, {price}, 8, {quantity}, 1]"


@pytest.mark.parametrize(
    "number",
    [
        "1e999999999999999999",
        "-1e999999999999999999",
        "1e101",
        "1.5E+200",
        "1e-101",
        "1" * 102 + ".5",
        "0." + "0" * 150 + "1",
    ],
)
def test_loads_refuses_numbers_beyond_the_exponent_range(number: str) -> None:
    """A JSON number beyond 1e100 or below 1e-100 is a DecodeError, never a Decimal."""
    with pytest.raises(errors.DecodeError, match="out of range"):
        _wire.loads(f'{{"Amount": {number}}}')


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("1e100", Decimal("1E+100")),
        ("-1E100", Decimal("-1E+100")),
        ("1e-100", Decimal("1E-100")),
        ("79228162514264337593543950335", 79228162514264337593543950335),
        ("0.0000000100000000000000000000", Decimal("0.0000000100000000000000000000")),
        ("0.0", Decimal("0.0")),
    ],
)
def test_loads_keeps_numbers_inside_the_range_exact(number: str, expected: Any) -> None:
    """Numbers up to the edge of the range (and every .NET decimal) decode exactly."""
    value = _wire.loads(f"[{number}]")[0]
    assert value == expected
    assert str(value) == str(expected)


def test_huge_integer_is_refused_where_it_would_be_money() -> None:
    """An integer of more than 101 digits is refused in a Decimal field, or as a string."""
    order = {"OrderId": 1, "OrderState": "Working", "QuantityExecuted": 0, "AvgPrice": 0}
    with pytest.raises(errors.DecodeError, match=r"Order\.price.*out of range"):
        _wire.structure({**order, "Price": -(10**150)}, Order)
    with pytest.raises(errors.DecodeError, match=r"Order\.order_id.*out of range"):
        _wire.structure({**order, "OrderId": "1" * 150}, Order)
    assert _wire.structure({**order, "Price": 10**100}, Order).price == Decimal(10**100)


@pytest.mark.parametrize("text", ["1e999999999999999999", "NaN", "-Infinity", "1E-999"])
def test_numeric_strings_out_of_range_are_refused(text: str) -> None:
    """Numbers sent as strings get the same range check as JSON numbers."""
    row = {"AccountId": 1, "ProductId": 1, "ProductSymbol": "USDT", "Amount": text, "Hold": 0}
    with pytest.raises(errors.DecodeError, match=r"Position\.amount"):
        _wire.structure(row, Position)


def test_absurd_l2_price_cannot_reach_pricing_quote() -> None:
    """A book quoting 1e999999999999999999 is refused, so a quote is never Infinity."""
    body = "[" + L2_ROW.format(last=1, price="1e999999999999999999", quantity=1) + "]"
    with pytest.raises(errors.DecodeError, match="out of range"):
        _wire.parse_l2_snapshot(_wire.loads(body), 8)
    rows = [[1, 0, 0, 0, 1, 1, "1e999999999999999999", 8, 1, 1]]
    with pytest.raises(errors.DecodeError, match="out of range"):
        _wire.parse_l2_snapshot(rows, 8)
    sane = _wire.parse_l2_snapshot(
        _wire.loads("[" + L2_ROW.format(last=1, price="1e100", quantity="1e100") + "]"), 8
    )
    quote = pricing.quote(sane, side=Side.BUY, base_quantity=Decimal(5))
    assert quote.quote_amount.is_finite()
    assert quote.quote_amount == Decimal("5E+100")
