"""Pure pricing helpers: find a pair, round to increments, check amounts, quote a book.

Rounding always goes toward the side that cannot hurt the user: quantities down (never
sell or buy more than asked), prices down, except a sell limit price, which rounds up
(never sell below the price asked).  Everything here is exact ``Decimal`` arithmetic.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Context, Decimal, InvalidOperation

import attrs

from .errors import BelowMinimumError, InvalidInputError
from .models import Instrument, L2Entry, L2Snapshot, Side

__all__ = [
    "Quote",
    "check_amount",
    "find_instrument",
    "format_amount",
    "parse_decimal_text",
    "quote",
    "round_down",
    "round_price",
    "round_quantity",
]

_ZERO = Decimal(0)
# Wide enough that products and integer quotients of realistic amounts are exact; traps
# turn anything that is not (absurd magnitudes) into an InvalidOperation we report.
_EXACT = Context(prec=200, Emax=10**6, Emin=-(10**6), traps=[InvalidOperation])
# Dividing money by a price: 28 significant digits, truncated so a spend never grows.
_DIVIDE = Context(prec=28, rounding=ROUND_DOWN)


def _pair(instrument: Instrument) -> str:
    return f"{instrument.symbol} ({instrument.product1_symbol}/{instrument.product2_symbol})"


def find_instrument(instruments: Iterable[Instrument], a: str, b: str) -> Instrument:
    """The instrument trading products ``a`` and ``b``, in either orientation.

    Symbols compare case-insensitively.  An instrument with ``a`` as its base wins over the
    reversed pair, and an active one over an inactive one.  Raises
    :class:`~kiiex_async.errors.InvalidInputError` when ``a == b`` or no instrument fits.
    """
    first, second = a.strip().upper(), b.strip().upper()
    if not first or not second:
        raise InvalidInputError("both product symbols are needed (for example 'USDT', 'COPM')")
    if first == second:
        raise InvalidInputError(f"cannot trade {first} against itself: pick two products")
    candidates = list(instruments)
    found = [
        inst
        for inst in candidates
        if {inst.product1_symbol.upper(), inst.product2_symbol.upper()} == {first, second}
    ]
    if not found:
        known = ", ".join(sorted(_pair(inst) for inst in candidates)[:20]) or "none"
        raise InvalidInputError(f"no instrument trades {first} against {second}; known: {known}")
    found.sort(key=lambda inst: (not inst.is_active, inst.product1_symbol.upper() != first))
    return found[0]


def _finite_decimal(value: object, name: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, Decimal | int):
        hint = " (a float is not exact)" if isinstance(value, float) else ""
        raise InvalidInputError(f"{name} must be a Decimal, got {type(value).__name__}{hint}")
    number = Decimal(value)
    if not number.is_finite():
        raise InvalidInputError(f"{name} must be a finite number, got {number}")
    return number


def _exponent(increment: Decimal) -> Decimal:
    """``1E<n>`` for the increment's last significant digit, never above ``1``."""
    exponent = increment.normalize(_EXACT).as_tuple().exponent
    assert isinstance(exponent, int)  # finite by the caller's checks
    return Decimal(1).scaleb(min(exponent, 0))


def round_down(value: Decimal, increment: Decimal) -> Decimal:
    """The largest multiple of ``increment`` that is ``<= value``.

    The result is written with the increment's significant exponent
    (``round_down(Decimal("1.239"), Decimal("0.0100000"))`` -> ``Decimal("1.23")``).
    Raises :class:`~kiiex_async.errors.InvalidInputError` for a non-finite value or a
    non-positive increment.
    """
    number = _finite_decimal(value, "value")
    step = _finite_decimal(increment, "increment")
    if step <= 0:
        raise InvalidInputError(f"increment must be positive, got {step}")
    try:
        steps = _EXACT.divide_int(number, step)
        result = _EXACT.multiply(steps, step)
        if result > number:  # divide_int truncates toward zero; negatives go one lower
            result = _EXACT.subtract(result, step)
        return result.quantize(_exponent(step), context=_EXACT)
    except InvalidOperation:
        raise InvalidInputError(f"{number} is too large to round to {step}") from None


def _round_up(value: Decimal, increment: Decimal) -> Decimal:
    down = round_down(value, increment)
    if down == value:
        return down
    return _EXACT.add(down, increment).quantize(_exponent(increment), context=_EXACT)


def round_quantity(instrument: Instrument, quantity: Decimal) -> Decimal:
    """Round ``quantity`` down to the instrument's ``quantity_increment`` and check it.

    Raises :class:`~kiiex_async.errors.InvalidInputError` for a non-Decimal, non-finite or
    non-positive quantity, and :class:`~kiiex_async.errors.BelowMinimumError` when the
    rounded quantity is zero or under the instrument's ``minimum_quantity``.  An instrument
    without a positive increment leaves the quantity as is.
    """
    number = _finite_decimal(quantity, "quantity")
    if number <= 0:
        raise InvalidInputError(f"quantity must be positive, got {number}")
    step = instrument.quantity_increment
    rounded = round_down(number, step) if step > 0 else number
    minimum = instrument.minimum_quantity
    if rounded <= 0 or rounded < minimum:
        base = instrument.product1_symbol or "base units"
        raise BelowMinimumError(
            f"quantity {number} {base} rounds down to {rounded} (quantity increment {step} "
            f"of {instrument.symbol}), below its minimum quantity {max(minimum, step)}"
        )
    return rounded


def round_price(instrument: Instrument, price: Decimal, *, side: Side | None = None) -> Decimal:
    """Round a limit price to the instrument's ``price_increment``.

    Down by default and for a buy (never pay more than asked); up for a sell (never sell
    for less).  Raises :class:`~kiiex_async.errors.InvalidInputError` for a non-Decimal,
    non-finite or non-positive price, or one under the instrument's ``minimum_price``.
    """
    number = _finite_decimal(price, "price")
    if number <= 0:
        raise InvalidInputError(f"price must be positive, got {number}")
    step = instrument.price_increment
    if step > 0:
        rounded = _round_up(number, step) if side is Side.SELL else round_down(number, step)
    else:
        rounded = number
    if rounded <= 0 or rounded < instrument.minimum_price:
        raise InvalidInputError(
            f"price {number} rounds to {rounded} (price increment {step} of "
            f"{instrument.symbol}), below its minimum price "
            f"{max(instrument.minimum_price, step)}"
        )
    return rounded


#: The one spelling of an amount in text: ASCII digits with at most one decimal point.
#: No sign, exponent, separator, space, or digits of other scripts (``Decimal()`` would
#: take ``"١٠٠"``, ``"１００"``, ``"1_0_0"``, ``"1e2"`` and ``" +1"``).
_AMOUNT_TEXT = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")


def parse_decimal_text(text: str, *, name: str = "amount") -> Decimal:
    """``text`` as a ``Decimal`` if it is ASCII digits with at most one decimal point.

    The one rule for amounts typed by people, used by :func:`check_amount` (so by the
    client and :class:`~kiiex_async.workflow.SwapRequest`) and by the ``kiiex`` command
    line.  Raises :class:`~kiiex_async.errors.InvalidInputError` naming ``name``.
    """
    if _AMOUNT_TEXT.fullmatch(text):
        return Decimal(text)
    if text.startswith("-") and _AMOUNT_TEXT.fullmatch(text[1:]):
        raise InvalidInputError(f"{name} must be positive, got {text!r}")
    raise InvalidInputError(
        f"{name} must be a number written with the digits 0-9 and at most one '.', got {text!r}"
    )


def check_amount(value: object, *, name: str = "amount", allow_zero: bool = False) -> Decimal:
    """``value`` as a positive finite ``Decimal`` (from a ``Decimal``, ``int`` or ``str``).

    A string must follow :func:`parse_decimal_text` (``"100"``, ``"0.5"``; not ``"1e2"``,
    ``" 1"``, ``"+1"``, ``"1_000"`` or non-ASCII digits).  A ``float`` is refused (``0.1`` is
    not exact): pass ``Decimal("0.1")`` or ``"0.1"``.  ``allow_zero`` accepts ``0`` too.
    Raises :class:`~kiiex_async.errors.InvalidInputError` naming ``name``.
    """
    if isinstance(value, str):
        number = parse_decimal_text(value, name=name)
    elif isinstance(value, float):
        raise InvalidInputError(
            f"{name} must be a Decimal or a str, not a float ({value!r} is not exact): "
            f"pass Decimal({str(value)!r})"
        )
    elif isinstance(value, Decimal | int) and not isinstance(value, bool):
        number = Decimal(value)
    else:
        raise InvalidInputError(f"{name} must be a Decimal, int or str, got {type(value).__name__}")
    if not number.is_finite():
        raise InvalidInputError(f"{name} must be a finite number, got {number}")
    if number < 0 or (number == 0 and not allow_zero):
        raise InvalidInputError(f"{name} must be positive, got {number}")
    return number


def format_amount(value: Decimal, increment: Decimal | None = None) -> str:
    """``value`` for people: rounded (half-even) to the decimal places of ``increment``
    when one is given (a product's tick size, an instrument's price increment), and always
    in plain notation (``100``, never ``1E+2``).  Exact values belong in JSON, not here."""
    if increment is not None and increment > 0 and value.is_finite():
        with contextlib.suppress(InvalidOperation):  # beyond 200 digits: shown as it is
            value = value.quantize(_exponent(increment), rounding=ROUND_HALF_EVEN, context=_EXACT)
    return format(value, "f")


@attrs.frozen
class Quote:
    """What walking the order book says a market order would do.

    ``side`` is the side of the order to send; ``base_quantity`` the base it would buy or
    sell and ``quote_amount`` the quote it would spend or receive, both limited by the
    book's depth (``filled`` is False when the book ran out).  ``average_price`` is
    ``quote_amount / base_quantity``; ``best_price`` and ``worst_price`` the first and
    last levels touched; ``slippage`` the fraction by which the average is worse than the
    best price.  Prices are ``0`` when nothing could be filled.
    """

    instrument_id: int
    side: Side
    base_quantity: Decimal
    quote_amount: Decimal
    average_price: Decimal
    best_price: Decimal
    worst_price: Decimal
    slippage: Decimal
    filled: bool


def _levels(book: L2Snapshot, side: Side) -> list[L2Entry]:
    if side is Side.BUY:
        return sorted(book.asks, key=lambda entry: entry.price)
    return sorted(book.bids, key=lambda entry: entry.price, reverse=True)


def quote(
    book: L2Snapshot,
    *,
    side: Side,
    base_quantity: Decimal | None = None,
    quote_amount: Decimal | None = None,
) -> Quote:
    """Walk the asks (for a ``BUY``) or the bids (for a ``SELL``) to price an order.

    Give exactly one of ``base_quantity`` (base to buy or sell) or ``quote_amount`` (quote
    to spend or to receive).  With ``quote_amount`` the result never exceeds it: partial
    levels are divided with truncation.  Raises
    :class:`~kiiex_async.errors.InvalidInputError` for a bad side or amount.
    """
    if side is not Side.BUY and side is not Side.SELL:
        raise InvalidInputError(f"side must be Side.BUY or Side.SELL, got {side!r}")
    if (base_quantity is None) == (quote_amount is None):
        raise InvalidInputError("give exactly one of base_quantity or quote_amount")
    by_quote = quote_amount is not None
    wanted = check_amount(
        quote_amount if by_quote else base_quantity,
        name="quote_amount" if by_quote else "base_quantity",
    )
    remaining = wanted
    base = quote_total = _ZERO
    best = worst = _ZERO
    for level in _levels(book, side):
        if level.price <= 0 or level.quantity <= 0:
            continue
        value = _EXACT.multiply(level.price, level.quantity)
        if by_quote:
            if value <= remaining:
                take, cost = level.quantity, value
            else:
                take = _DIVIDE.divide(remaining, level.price)
                cost = _EXACT.multiply(take, level.price)
            if take <= 0:
                break
            remaining = _EXACT.subtract(remaining, cost)
        else:
            take = min(level.quantity, remaining)
            cost = value if take == level.quantity else _EXACT.multiply(take, level.price)
            remaining = _EXACT.subtract(remaining, take)
        if best == 0:
            best = level.price
        worst = level.price
        base = _EXACT.add(base, take)
        quote_total = _EXACT.add(quote_total, cost)
        if remaining <= 0 or (by_quote and take != level.quantity):
            remaining = _ZERO
            break
    average = _DIVIDE.divide(quote_total, base) if base > 0 else _ZERO
    if best > 0:
        worse = average - best if side is Side.BUY else best - average
        slippage = _DIVIDE.divide(worse, best)
    else:
        slippage = _ZERO
    return Quote(
        instrument_id=book.instrument_id,
        side=side,
        base_quantity=base,
        quote_amount=quote_total,
        average_price=average,
        best_price=best,
        worst_price=worst,
        slippage=slippage,
        filled=remaining <= 0,
    )
