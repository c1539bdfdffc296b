"""History views of the simulator: the account journal and ticker candles."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D

import aiohttp
import pytest
from sim_support import SignedApi

from kiiex_async.sim import SimConfig, Simulator
from kiiex_async.sim._history import MAX_CANDLES, candles, date_ms

T0 = 1_700_000_000.0
CONFIG = SimConfig(seed=5, time_speed=0.0, start_time=T0, drift_bps=D(0), withdraw_step_seconds=0)


@pytest.fixture
async def api() -> AsyncIterator[SignedApi]:
    async with Simulator(CONFIG) as sim, aiohttp.ClientSession() as http:
        yield SignedApi(http, sim)


async def test_account_transactions_journal_every_amount_change(api: SignedApi) -> None:
    """Opening balance, both sides of each fill, the fee and a withdrawal: balances chain."""
    sent = await api("SendOrder", {"InstrumentId": 1, "Side": 1, "OrderType": 1, "Quantity": 100})
    await api(
        "CreateWithdrawTicket",
        {"ProductId": 3, "Amount": 1000, "TemplateForm": {"ExternalAddress": "x"}},
    )
    rows = list(reversed(await api("GetAccountTransactions", {"OMSId": 1, "AccountId": 1})))
    copm = [r for r in rows if r["ProductId"] == 3]
    assert [(r["TransactionType"], r["ReferenceType"]) for r in copm] == [
        ("Trade", "Trade"),
        ("Fee", "Trade"),
        ("Other", "Withdraw"),
    ]
    (trade,) = await api("GetTradesHistory", {"OrderId": sent["OrderId"]})
    assert copm[0]["ReferenceId"] == trade["TradeId"] and copm[0]["CR"] == trade["Value"]
    assert copm[1]["DR"] == trade["Fee"]
    for product in (1, 2, 3):
        balance = D(0)
        for row in (r for r in rows if r["ProductId"] == product):
            balance += row["CR"] - row["DR"]
            assert row["Balance"] == balance
        assert balance == api.sim.exchange.balance(1, product)[0]
    usdt = [r for r in rows if r["ProductId"] == 1]
    assert (usdt[0]["ReferenceType"], usdt[0]["CR"]) == ("ManualEntry", 10_000)
    assert (usdt[1]["DR"], usdt[1]["Counterparty"]) == (100, 9000)
    latest = await api("GetAccountTransactions", {"Depth": 1, "ProductId": 3})
    assert latest == [copm[-1]]


async def test_ticker_history_builds_candles_from_prints(api: SignedApi) -> None:
    """GetTickerHistory: one row per interval, OHLCV from the trades, flat rows without any."""
    api.sim.advance(120)
    await api("SendOrder", {"InstrumentId": 1, "Side": 1, "OrderType": 1, "Quantity": 3000})
    now_ms = int(api.sim.now() * 1000)
    rows = await api(
        "GetTickerHistory",
        {"InstrumentId": 1, "Interval": 60, "FromDate": now_ms - 120_000, "ToDate": now_ms},
    )
    first = now_ms - 120_000 - (now_ms - 120_000) % 60_000  # buckets align on the epoch
    assert [r[9] for r in rows] == [first, first + 60_000, first + 120_000]
    assert all(r[0] - r[9] == 60_000 and r[8] == 1 for r in rows)
    flat, _, last = rows
    assert flat[1:6] == [4000, 4000, 4000, 4000, 0]
    assert last[1:6] == [D("3998"), D("3996"), D("3998"), D("3996"), 3000]
    level1 = await api("GetLevel1", {"InstrumentId": 1})
    assert last[6:8] == [level1["BestBid"], level1["BestOffer"]] == [3996, 4002]


def test_candles_cap_the_row_count_and_refuse_a_zero_interval() -> None:
    """At most MAX_CANDLES rows (the most recent); Interval 0 is an error."""
    rows = candles([], instrument_id=1, interval=1, start_ms=0, end_ms=10**10, opening_price=D(1),
                   bid=D(0), ask=D(0))  # fmt: skip
    assert len(rows) == MAX_CANDLES and rows[-1][9] == 10**10
    with pytest.raises(ValueError, match="Interval"):
        candles([], instrument_id=1, interval=0, start_ms=0, end_ms=1, opening_price=D(1),
                bid=D(0), ask=D(0))  # fmt: skip
    assert candles([], instrument_id=1, interval=1, start_ms=5, end_ms=1, opening_price=D(1),
                   bid=D(0), ask=D(0)) == []  # fmt: skip


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2023-11-14", 1_699_920_000_000),
        ("2023-11-14 22:13:20", 1_700_000_000_000),
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        (1_700_000_000, 1_700_000_000_000),
        ("1700000000000", 1_700_000_000_000),
        (638_355_968_000_000_000, 1_700_000_000_000),
    ],
)
def test_ticker_dates_accept_every_documented_form(value: object, expected: int) -> None:
    """FromDate/ToDate: dates, ymdhms, ISO, POSIX seconds or ms, .NET ticks."""
    assert date_ms(value) == expected


async def test_ticker_history_refuses_bad_dates_and_intervals(api: SignedApi) -> None:
    """A date that is not one, or a non-positive Interval, is errorcode 100."""
    bad_date = await api("GetTickerHistory", {"InstrumentId": 1, "FromDate": "yesterday"})
    bad_interval = await api("GetTickerHistory", {"InstrumentId": 1, "Interval": 0})
    assert bad_date["errorcode"] == bad_interval["errorcode"] == 100
