"""Pricing helpers: pair lookup, rounding to increments, amount checks, book quotes."""

from __future__ import annotations

from decimal import Decimal, localcontext
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from kiiex_async import errors
from kiiex_async.models import Instrument, L2Entry, L2Snapshot, SessionStatus, Side
from kiiex_async.pricing import (
    Quote,
    check_amount,
    find_instrument,
    quote,
    round_down,
    round_price,
    round_quantity,
)

D = Decimal


def instrument(
    instrument_id: int = 1,
    base: str = "USDT",
    quote_symbol: str = "COPM",
    *,
    quantity_increment: str = "0.01",
    price_increment: str = "0.01",
    minimum_quantity: str = "1",
    minimum_price: str = "0.01",
    active: bool = True,
) -> Instrument:
    """An instrument like the simulator's USDT/COPM one."""
    return Instrument(
        instrument_id=instrument_id,
        symbol=base + quote_symbol,
        product1=instrument_id * 10,
        product1_symbol=base,
        product2=instrument_id * 10 + 1,
        product2_symbol=quote_symbol,
        quantity_increment=D(quantity_increment),
        price_increment=D(price_increment),
        minimum_quantity=D(minimum_quantity),
        minimum_price=D(minimum_price),
        session_status=SessionStatus.RUNNING if active else SessionStatus.STOPPED,
    )


INSTRUMENTS = [
    instrument(1, "USDT", "COPM"),
    instrument(2, "USDC", "COPM"),
    instrument(3, "USDC", "USDT", quantity_increment="0.0001", price_increment="0.0001"),
]


def book(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> L2Snapshot:
    """A book from (price, quantity) pairs, given in any order."""
    return L2Snapshot(
        instrument_id=1,
        bids=tuple(L2Entry(price=D(p), quantity=D(q), side=Side.BUY) for p, q in bids),
        asks=tuple(L2Entry(price=D(p), quantity=D(q), side=Side.SELL) for p, q in asks),
    )


BOOK = book(
    bids=[("3990", "10"), ("3995", "5"), ("3980", "100")],
    asks=[("4010", "5"), ("4005", "10"), ("4050", "100")],
)


# ------------------------------------------------------------------ find_instrument


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [("USDT", "COPM", 1), ("COPM", "USDT", 1), ("copm", "usdc", 2), (" usdt ", "Usdc", 3)],
)
def test_find_instrument_either_orientation(a: str, b: str, expected: int) -> None:
    """The pair is found whichever product comes first, in any letter case."""
    assert find_instrument(INSTRUMENTS, a, b).instrument_id == expected


def test_find_instrument_prefers_active_then_base_first() -> None:
    """An active instrument wins over a stopped one, then a base-first orientation."""
    stopped = instrument(7, "USDT", "COPM", active=False)
    reverse = instrument(8, "COPM", "USDT")
    assert find_instrument([stopped, reverse], "USDT", "COPM").instrument_id == 8
    assert find_instrument([reverse, INSTRUMENTS[0]], "USDT", "COPM").instrument_id == 1
    assert find_instrument([reverse, INSTRUMENTS[0]], "COPM", "USDT").instrument_id == 8


def test_find_instrument_unknown_pair_lists_known_ones() -> None:
    """No matching instrument is an InvalidInputError listing what exists."""
    with pytest.raises(errors.InvalidInputError, match=r"no instrument trades USDT against EUR;"):
        find_instrument(INSTRUMENTS, "usdt", "eur")
    with pytest.raises(errors.InvalidInputError, match=r"USDTCOPM \(USDT/COPM\)"):
        find_instrument(INSTRUMENTS, "BTC", "EUR")
    with pytest.raises(errors.InvalidInputError, match="known: none"):
        find_instrument([], "BTC", "EUR")


@pytest.mark.parametrize(("a", "b"), [("USDT", "usdt"), ("", "USDT"), ("USDT", " ")])
def test_find_instrument_refuses_same_or_empty_symbols(a: str, b: str) -> None:
    """The same product twice, or an empty symbol, is an InvalidInputError."""
    with pytest.raises(errors.InvalidInputError):
        find_instrument(INSTRUMENTS, a, b)


# -------------------------------------------------------------------------- rounding


@pytest.mark.parametrize(
    ("value", "increment", "expected"),
    [
        ("1.239", "0.01", "1.23"),
        ("1.239", "0.0100000", "1.23"),
        ("1.5", "0.0000000100000000000000000000", "1.50000000"),
        ("123.456789", "0.0000000100000000000000000000", "123.45678900"),
        ("0.74", "0.25", "0.50"),
        ("17", "5", "15"),
        ("123", "10", "120"),
        ("0.009", "0.01", "0.00"),
        ("-1.239", "0.01", "-1.24"),
        ("5", "1", "5"),
    ],
)
def test_round_down_examples(value: str, increment: str, expected: str) -> None:
    """round_down floors to the increment and writes the increment's exponent."""
    result = round_down(D(value), D(increment))
    assert str(result) == expected


@pytest.mark.parametrize(
    ("value", "increment"),
    [
        (D("1"), D("0")),
        (D("1"), D("-0.01")),
        (D("NaN"), D("0.01")),
        (D("1"), D("Infinity")),
        (1.5, D("0.01")),
        (D("1"), 0.01),
    ],
)
def test_round_down_refuses_bad_input(value: Any, increment: Any) -> None:
    """Non-finite values, floats and non-positive increments are InvalidInputError."""
    with pytest.raises(errors.InvalidInputError):
        round_down(value, increment)


def test_round_down_refuses_absurd_magnitudes() -> None:
    """A value too large to divide exactly is reported, not silently rounded."""
    with pytest.raises(errors.InvalidInputError, match="too large"):
        round_down(D("1E+500"), D("1E-500"))


@given(
    value=st.decimals(
        min_value=D("-1e12"), max_value=D("1e12"), allow_nan=False, allow_infinity=False
    ),
    increment=st.decimals(
        min_value=D("1e-12"), max_value=D("1e6"), allow_nan=False, allow_infinity=False
    ),
)
def test_round_down_properties(value: Decimal, increment: Decimal) -> None:
    """Rounded values never exceed the input, are multiples, and lie within one increment."""
    assume(increment > 0)
    result = round_down(value, increment)
    with localcontext(prec=200):  # the checks themselves must not round
        assert result <= value
        assert value - result < increment
        assert result % increment == 0


@given(
    quantity=st.decimals(
        min_value=D("0.000001"), max_value=D("1e9"), allow_nan=False, allow_infinity=False
    ),
    step_exponent=st.integers(min_value=-8, max_value=2),
)
def test_round_quantity_properties(quantity: Decimal, step_exponent: int) -> None:
    """round_quantity never rounds up and stays within one increment, or says why."""
    step = D(1).scaleb(step_exponent)
    inst = instrument(quantity_increment=str(step), minimum_quantity="0")
    try:
        result = round_quantity(inst, quantity)
    except errors.BelowMinimumError:
        assert quantity < step
        return
    with localcontext(prec=200):
        assert 0 < result <= quantity
        assert quantity - result < step
        assert result % step == 0


def test_round_quantity_rounds_down_to_the_increment() -> None:
    """A quantity is floored to the instrument's quantity increment."""
    assert round_quantity(INSTRUMENTS[0], D("100.019")) == D("100.01")
    assert round_quantity(INSTRUMENTS[2], D("7")) == D(7)
    assert round_quantity(INSTRUMENTS[0], 5) == D(5)  # type: ignore[arg-type]  # an int works too


def test_round_quantity_below_minimum_names_instrument_increment_and_minimum() -> None:
    """Under the minimum after rounding is a BelowMinimumError a user can act on."""
    with pytest.raises(errors.BelowMinimumError) as info:
        round_quantity(INSTRUMENTS[0], D("0.999"))
    assert str(info.value) == (
        "quantity 0.999 USDT rounds down to 0.99 (quantity increment 0.01 of USDTCOPM), "
        "below its minimum quantity 1"
    )
    with pytest.raises(errors.BelowMinimumError, match=r"rounds down to 0\.00 "):
        round_quantity(instrument(minimum_quantity="0"), D("0.001"))


@pytest.mark.parametrize(
    "bad", [D("NaN"), D("Infinity"), D("-Infinity"), D(0), D("-1"), 1.5, "5", True, None]
)
def test_round_quantity_refuses_bad_quantities(bad: Any) -> None:
    """NaN, infinities, non-positive values and non-Decimals are InvalidInputError."""
    with pytest.raises(errors.InvalidInputError) as info:
        round_quantity(INSTRUMENTS[0], bad)
    assert not isinstance(info.value, errors.BelowMinimumError)
    assert "quantity" in str(info.value)


def test_round_quantity_without_increment_keeps_the_value() -> None:
    """An instrument without a positive increment leaves the quantity as given."""
    inst = instrument(quantity_increment="0", minimum_quantity="0")
    assert round_quantity(inst, D("1.23456789123")) == D("1.23456789123")


def test_round_price_by_side() -> None:
    """Prices round down by default and for buys, up for sells."""
    inst = INSTRUMENTS[0]
    assert round_price(inst, D("4000.129")) == D("4000.12")
    assert round_price(inst, D("4000.129"), side=Side.BUY) == D("4000.12")
    assert round_price(inst, D("4000.121"), side=Side.SELL) == D("4000.13")
    assert round_price(inst, D("4000.12"), side=Side.SELL) == D("4000.12")
    assert str(round_price(inst, D("4000.1200000"), side=Side.SELL)) == "4000.12"


def test_round_price_refuses_bad_and_too_low_prices() -> None:
    """Bad prices and prices under the minimum are InvalidInputError naming the instrument."""
    inst = instrument(minimum_price="1")
    with pytest.raises(errors.InvalidInputError, match="below its minimum price 1"):
        round_price(inst, D("0.5"))
    with pytest.raises(errors.InvalidInputError, match=r"price increment 0\.01 of USDTCOPM"):
        round_price(instrument(minimum_price="0"), D("0.001"))
    for bad in (D(0), D("NaN"), 4000.5):
        with pytest.raises(errors.InvalidInputError, match="price"):
            round_price(inst, bad)  # type: ignore[arg-type]  # a float on purpose


# ---------------------------------------------------------------------- check_amount


@pytest.mark.parametrize(
    ("value", "expected"),
    [(D("1.50"), D("1.5")), (3, D(3)), ("0.1", D("0.1")), ("2", D(2)), (".5", D("0.5"))],
)
def test_check_amount_accepts_decimal_int_and_str(value: object, expected: Decimal) -> None:
    """Decimals, ints and numeric strings become the same exact Decimal."""
    result = check_amount(value)
    assert type(result) is Decimal
    assert result == expected


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (0.1, "not a float"),
        (D("NaN"), "finite"),
        ("inf", "must be a number"),
        (D(0), "positive"),
        ("-5", "positive"),
        (True, "got bool"),
        (None, "got NoneType"),
        ("abc", "must be a number"),
        ("1_000", "must be a number"),
    ],
)
def test_check_amount_refuses_floats_and_nonsense(value: object, reason: str) -> None:
    """Floats, non-finite, non-positive and non-numeric values are InvalidInputError."""
    with pytest.raises(errors.InvalidInputError, match=reason):
        check_amount(value, name="swap amount")


@pytest.mark.parametrize(
    "text",
    ["١٠٠", "１００", "1_0_0", "1e2", "+1", " 1", "1 ", "1\n", "1.2.3", "0x10", "NaN", "", "."],
)
def test_check_amount_text_is_ascii_digits_and_one_point(text: str) -> None:
    """A string amount is ASCII digits with at most one point: other scripts, signs,
    exponents, separators and spaces are InvalidInputError."""
    with pytest.raises(errors.InvalidInputError, match="digits 0-9"):
        check_amount(text)


def test_check_amount_float_message_suggests_the_fix() -> None:
    """The float message names the argument and shows the Decimal to pass instead."""
    with pytest.raises(errors.InvalidInputError) as info:
        check_amount(0.1, name="amount")
    assert "amount must be a Decimal or a str" in str(info.value)
    assert "Decimal('0.1')" in str(info.value)


# ----------------------------------------------------------------------------- quote


def test_quote_buy_by_base_quantity_walks_asks_low_to_high() -> None:
    """Buying 12 base takes 10 at 4005 and 2 at 4010."""
    q = quote(BOOK, side=Side.BUY, base_quantity=D(12))
    assert isinstance(q, Quote)
    assert (q.instrument_id, q.side, q.filled) == (1, Side.BUY, True)
    assert (q.base_quantity, q.quote_amount) == (D(12), D(10 * 4005 + 2 * 4010))
    assert (q.best_price, q.worst_price) == (D(4005), D(4010))
    assert abs(q.average_price - D(48070) / 12) < D("1e-24")
    assert abs(q.slippage - (D(48070) / 12 - 4005) / 4005) < D("1e-24")
    assert q.slippage > 0


def test_quote_sell_by_base_quantity_walks_bids_high_to_low() -> None:
    """Selling 8 base takes 5 at 3995 and 3 at 3990."""
    q = quote(BOOK, side=Side.SELL, base_quantity=D(8))
    assert (q.base_quantity, q.quote_amount) == (D(8), D(5 * 3995 + 3 * 3990))
    assert (q.best_price, q.worst_price, q.filled) == (D(3995), D(3990), True)
    assert abs(q.slippage - (D(3995) - q.average_price) / D(3995)) < D("1e-24")


def test_quote_buy_by_quote_amount_splits_the_last_level() -> None:
    """Spending 50075 buys all 10 at 4005 and then 2.5 of the 5 at 4010, exactly."""
    q = quote(BOOK, side=Side.BUY, quote_amount=D(50075))
    assert q.quote_amount == D(50075)
    assert q.base_quantity == D("12.5")
    assert q.filled


def test_quote_by_quote_amount_truncates_inexact_division() -> None:
    """An amount that does not divide the price is truncated: never more than asked."""
    q = quote(book([], [("3", "100")]), side=Side.BUY, quote_amount=D(10))
    assert q.base_quantity == D("3.333333333333333333333333333")
    assert q.quote_amount <= D(10)
    assert q.quote_amount == q.base_quantity * 3
    assert q.filled


def test_quote_reports_a_book_too_thin() -> None:
    """A request deeper than the book fills what it can and says filled=False."""
    q = quote(BOOK, side=Side.SELL, base_quantity=D(1000))
    assert (q.base_quantity, q.filled, q.worst_price) == (D(115), False, D(3980))
    thin = quote(BOOK, side=Side.BUY, quote_amount=D(10**9))
    assert thin.base_quantity == D(115)
    assert not thin.filled


def test_quote_on_an_empty_side_is_zero_and_unfilled() -> None:
    """An empty side gives zeros and filled=False rather than an error."""
    q = quote(book([("1", "1")], []), side=Side.BUY, base_quantity=D(1))
    assert (q.base_quantity, q.quote_amount, q.average_price, q.best_price) == (
        D(0),
        D(0),
        D(0),
        D(0),
    )
    assert (q.slippage, q.filled) == (D(0), False)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"base_quantity": D(1), "quote_amount": D(1)},
        {"base_quantity": D(0)},
        {"quote_amount": 1.5},
        {"base_quantity": D(1), "side": Side.SHORT},
    ],
)
def test_quote_refuses_bad_requests(kwargs: dict[str, Any]) -> None:
    """Both or neither amount, a bad amount or a side other than buy/sell is bad input."""
    arguments = {"side": Side.BUY, **kwargs}
    with pytest.raises(errors.InvalidInputError):
        quote(BOOK, **arguments)


levels = st.lists(
    st.tuples(
        st.decimals(min_value=D("0.0001"), max_value=D("100000"), places=4),
        st.decimals(min_value=D("0.00000001"), max_value=D("1000"), places=8),
    ),
    max_size=8,
)


@given(
    asks=levels,
    bids=levels,
    amount=st.decimals(min_value=D("0.00000001"), max_value=D("1e8"), places=8),
    side=st.sampled_from([Side.BUY, Side.SELL]),
)
def test_quote_never_spends_more_than_asked(
    asks: list[tuple[Decimal, Decimal]],
    bids: list[tuple[Decimal, Decimal]],
    amount: Decimal,
    side: Side,
) -> None:
    """With a quote_amount the quote never exceeds it and its base adds up level by level."""
    snapshot = book([(str(p), str(q)) for p, q in bids], [(str(p), str(q)) for p, q in asks])
    q = quote(snapshot, side=side, quote_amount=amount)
    assert 0 <= q.quote_amount <= amount
    side_depth = sum((p * s for p, s in (asks if side is Side.BUY else bids)), D(0))
    assert q.filled == (side_depth >= amount)
    if q.base_quantity:
        assert q.slippage >= 0


@given(
    asks=levels,
    quantity=st.decimals(min_value=D("0.00000001"), max_value=D("10000"), places=8),
)
def test_quote_base_quantity_never_exceeds_request(
    asks: list[tuple[Decimal, Decimal]], quantity: Decimal
) -> None:
    """With a base_quantity the quote fills at most that much, exactly when depth allows."""
    snapshot = book([], [(str(p), str(q)) for p, q in asks])
    q = quote(snapshot, side=Side.BUY, base_quantity=quantity)
    depth = sum((s for _, s in asks), D(0))
    assert q.base_quantity == min(quantity, depth)
    assert q.filled == (depth >= quantity)
