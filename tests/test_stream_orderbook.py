"""``OrderBook`` (pure): rows applied by price and action, refusals, cached best prices."""

from __future__ import annotations

from decimal import Decimal as D
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kiiex_async._orderbook import _PRICES_KEPT, decode_rows
from kiiex_async.errors import DecodeError
from kiiex_async.models import L2Entry, L2Snapshot, Side
from kiiex_async.stream import OrderBook


def row(action: int, price: Any, qty: Any, side: int, update_id: int = 1) -> list[Any]:
    return [update_id, 1, 0, action, 0, 1, price, 1, qty, side]


def seeded() -> OrderBook:
    book = OrderBook(1, depth=2)
    book.reset(
        L2Snapshot(
            1,
            bids=(L2Entry(D(99), D(1), Side.BUY), L2Entry(D(98), D(2), Side.BUY)),
            asks=(L2Entry(D(101), D(1), Side.SELL), L2Entry(D(102), D(2), Side.SELL)),
        )
    )
    return book


def test_rows_apply_by_price_and_action() -> None:
    """New, update and delete rows change the level at their price; levels shows depth."""
    book = seeded()
    assert book.apply([row(0, 100, 3, 0), row(1, 101, 5, 1), row(2, 98, 0, 0)])
    assert (book.best_bid, book.best_ask) == (D(100), D(101))
    assert [(e.price, e.quantity) for e in book.levels.bids] == [(D(100), D(3)), (D(99), D(1))]
    assert book.levels.asks[0].quantity == D(5) and book.updates == 3


def test_deleting_the_best_level_rescans() -> None:
    """Removing the best bid or ask makes the next best one the best."""
    book = seeded()
    book.apply([row(2, 99, 0, 0), row(2, 101, 0, 1)])
    assert (book.best_bid, book.best_ask) == (D(98), D(102))


def test_a_bad_row_refuses_the_whole_update() -> None:
    """One bad row leaves every level unchanged and marks the book dirty."""
    book = seeded()
    assert not book.apply([row(0, 100, 3, 0), row(0, "abc", 1, 0)])
    assert book.dirty and book.best_bid == D(99)


def test_rows_decode_without_floats_and_refuse_nan() -> None:
    """decode_rows keeps fractions exact (as text) and refuses NaN and non-JSON."""
    (parsed,) = decode_rows("[[1,1,0,0,0.1,1,0.3,1,0.7,0]]")
    book = OrderBook(1)
    assert book.apply([parsed]) and book.best_bid == D("0.3")
    assert book.levels.bids[0].quantity == D("0.7")
    for text in ("[[1,1,0,0,NaN,1,1,1,1,0]]", "[[1,1,0,0,1,1,1,1,1,0]] x", "", "{"):
        with pytest.raises(DecodeError):
            decode_rows(text)
    assert decode_rows(" [[1,1,0,0,1,1,2.5,1,1,0]] ") == [[1, 1, 0, 0, 1, 1, "2.5", 1, 1, 0]]


@pytest.mark.parametrize(
    "frame",
    [
        "[[1,1,0,0,1,1,1e999999,1,1,0]]",  # a price far beyond any market
        "[[1,1,0,0,1,1,100,1,1e999999,0]]",  # a quantity that overflows any arithmetic
        "[[1,1,0,0,1,1,100,1,1e-999999,0]]",  # a quantity too small to be money
        "[[1,1,0,0,1,1," + "9" * 2000 + ",1,1,0]]",  # an integer price of 2,000 digits
        '[[1,1,0,0,1,1,"1E+200",1,1,0]]',  # the same as text
        '[[1,1,0,0,1,1,"sNaN",1,1,0]]',
        '[[1,1,0,0,1,1,100,1,"-0.5",0]]',
        "[[1,1,0,0,1,1,true,1,1,0]]",  # a boolean is not the price 1
        "[[1,1,0,0,1,1,100,1,1,0,7]]",  # 11 columns
    ],
)
def test_a_hostile_row_is_refused_and_leaves_the_book_as_it_was(frame: str) -> None:
    """Numbers the SDK refuses anywhere else (beyond ±1e100, 1,000 digits) are refused in
    a Level2 row too: the update changes nothing and the book asks for a rebuild."""
    book = seeded()
    assert book.apply([row(0, 1, 3, 0)])  # the price 1 (an int) is now a known price
    assert not book.apply(decode_rows(frame))
    assert book.dirty and (book.best_bid, book.best_ask) == (D(99), D(101))
    assert [e.price for e in book.snapshot(0).bids] == [D(99), D(98), D(1)]
    assert book.quote(side=Side.BUY, base_quantity=D(2)).average_price == D("101.5")


def test_a_feed_of_ever_new_prices_keeps_a_bounded_price_cache() -> None:
    """Prices are converted once and reused, but never kept beyond _PRICES_KEPT."""
    book = OrderBook(1)
    for k in range(_PRICES_KEPT + 50):
        assert book.apply(decode_rows(f"[[{k},1,0,0,1,1,{k}.5,1,1,0],[{k},1,0,2,1,1,{k}.5,1,0,0]]"))
    assert 0 < len(book._prices) <= _PRICES_KEPT
    padded = "0" * 100_000 + "7.5"  # the same price, but not a text worth keeping
    assert book.apply([row(0, padded, 1, 1)]) and padded not in book._prices
    assert book.apply([row(0, "7.50", 2, 1)]) and book.best_ask == D("7.5")
    assert book.apply([row(0, "7.5", 3, 1)]) and book.levels.asks[0].quantity == D(3)


def test_crossed_and_quote_use_the_whole_book() -> None:
    """A bid at or above the best ask is a crossed book; quote walks levels like pricing."""
    book = seeded()
    assert not book.crossed
    quote = book.quote(side=Side.BUY, base_quantity=D(2))
    assert quote.average_price == D("101.5") and quote.filled
    book.apply([row(0, 101, 1, 0)])
    assert book.crossed


@given(
    st.lists(
        st.tuples(st.integers(0, 2), st.integers(90, 110), st.integers(0, 5), st.integers(0, 1)),
        max_size=60,
    )
)
def test_cached_best_prices_match_a_naive_book(ops: list[tuple[int, int, int, int]]) -> None:
    """After any sequence of rows, best prices and levels equal a plain dict model."""
    book = OrderBook(1, depth=50)
    model: dict[int, dict[int, int]] = {0: {}, 1: {}}
    for action, price, qty, side in ops:
        book.apply([row(action, price, qty, side)])
        if action == 2 or qty == 0:
            model[side].pop(price, None)
        else:
            model[side][price] = qty
    assert book.best_bid == (max(model[0]) if model[0] else None)
    assert book.best_ask == (min(model[1]) if model[1] else None)
    assert [(e.price, e.quantity) for e in book.levels.bids] == [
        (D(price), D(qty)) for price, qty in sorted(model[0].items(), reverse=True)
    ]


def test_bench_frames_are_level2_updates_the_book_accepts() -> None:
    """The stream bench's synthetic frames decode and apply without a refusal."""
    import json
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.bench_stream import build_level2_frames

    book = OrderBook(1, depth=40)
    for text in build_level2_frames(200):
        frame = json.loads(text)
        assert frame["n"] == "Level2UpdateEvent"
        assert book.apply(decode_rows(frame["o"]))
    assert book.updates >= 200 and not book.crossed
