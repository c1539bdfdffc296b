"""The calls other AlphaPoint clients expect: deposits, withdraws, ledger, cancel-all, OHLCV.

Against the simulator where it serves them, else against the local guide server answering
ccxt's documented samples (``tests/payloads/``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from guide_server import API_KEY, SECRET, USER_ID, GuideServer, guide_server

from kiiex_async import Credentials, errors
from kiiex_async.client import KiiexClient
from kiiex_async.models import (
    DepositStatus,
    OrderState,
    OrderType,
    ProductType,
    Side,
    WithdrawStatus,
)
from kiiex_async.sim import SimConfig, Simulator

PAYLOADS = Path(__file__).parent / "payloads"
UTC = dt.UTC
CREDENTIALS = Credentials(api_key=API_KEY, api_secret=SECRET, user_id=USER_ID)


def sample(name: str) -> Any:
    """A sample answer file, decoded with the standard library (the server re-encodes it)."""
    return json.loads((PAYLOADS / name).read_text())


def raw(name: str) -> bytes:
    """A sample answer file, byte for byte."""
    return (PAYLOADS / name).read_bytes()


@pytest.fixture
async def sim_client() -> AsyncIterator[KiiexClient]:
    async with Simulator(SimConfig(seed=1)) as sim:
        credentials = Credentials(**sim.credentials_kwargs)
        async with KiiexClient(sim.url, credentials=credentials, rate_limit=None) as client:
            yield client


def guide_client(server: GuideServer) -> KiiexClient:
    return KiiexClient(server.url, credentials=CREDENTIALS, rate_limit=None, max_retries=0)


# ------------------------------------------------------------------- with the simulator


async def _resting_sell(client: KiiexClient, instrument_id: int, cid: int) -> int:
    """A limit sell far above the market, so it rests on the book."""
    placed = await client.send_order(
        instrument_id,
        Side.SELL,
        Decimal(5),
        order_type=OrderType.LIMIT,
        limit_price=Decimal(1_000_000),
        client_order_id=cid,
    )
    return placed.order_id


async def test_cancel_all_orders_of_one_instrument_then_all(sim_client: KiiexClient) -> None:
    """cancel_all_orders(instrument_id=) leaves other instruments' orders; without it, all go."""
    on_1 = await _resting_sell(sim_client, 1, 11)
    on_2 = await _resting_sell(sim_client, 2, 21)
    assert {o.order_id for o in await sim_client.get_open_orders()} == {on_1, on_2}
    assert (await sim_client.cancel_all_orders(instrument_id=1)).result is True
    assert [o.order_id for o in await sim_client.get_open_orders()] == [on_2]
    assert (await sim_client.get_order_status(on_1)).order_state is OrderState.CANCELED
    await sim_client.cancel_all_orders()
    assert await sim_client.get_open_orders() == []


async def test_get_deposits_shows_a_created_deposit(sim_client: KiiexClient) -> None:
    """A deposit ticket shows up in get_deposits with its amount and a status name decoded."""
    usdt = next(p for p in await sim_client.get_products() if p.symbol == "USDT")
    created = await sim_client.create_deposit_ticket(usdt.product_id, Decimal("12.5"))
    (deposit,) = await sim_client.get_deposits()
    assert (deposit.product_id, deposit.amount) == (usdt.product_id, Decimal("12.5"))
    assert deposit.deposit_code == created.request_code
    assert isinstance(deposit.ticket_status, DepositStatus)
    assert deposit.account_id == sim_client.account_id


async def test_get_withdraws_shows_a_withdrawal_sent_with_an_object_form(
    sim_client: KiiexClient,
) -> None:
    """A withdrawal sent with TemplateForm as an object is stored and read back intact."""
    usdt = next(p for p in await sim_client.get_products() if p.symbol == "USDT")
    form = {"TemplateType": "Standard", "ExternalAddress": "wallet-9"}
    await sim_client.create_withdraw_ticket(
        usdt.product_id, Decimal(20), template_type="Standard", template_form=form
    )
    (withdraw,) = await sim_client.get_withdraws()
    assert (withdraw.asset_id, withdraw.amount) == (usdt.product_id, Decimal(20))
    assert withdraw.form["ExternalAddress"] == "wallet-9"
    assert isinstance(withdraw.ticket_status, WithdrawStatus)
    (ticket,) = await sim_client.get_withdraw_tickets()
    assert ticket.form["ExternalAddress"] == "wallet-9"


# ------------------------------------------------------------------ with ccxt's samples


async def test_get_deposits_and_withdraws_decode_ccxt_samples() -> None:
    """ccxt's GetDeposits/GetWithdraws rows decode (names, JSON text, even a JSON-text body)."""
    answers = {
        "GetDeposits": json.dumps(raw("get_deposits.json").decode()).encode(),
        "GetWithdraws": raw("get_withdraws.json"),
    }
    async with guide_server(answers) as server, guide_client(server) as client:
        (deposit,) = await client.get_deposits(account_id=449)
        (withdraw,) = await client.get_withdraws(account_id=449)
    assert deposit.ticket_status is DepositStatus.FULLY_PROCESSED
    assert deposit.product_type is ProductType.CRYPTO_CURRENCY
    assert (deposit.deposit_id, deposit.amount) == (44, Decimal("0.001"))
    assert json.loads(deposit.deposit_info or "")["TXId"] == "0xabc"
    assert deposit.last_update_time_stamp == 637431291261187806
    assert (withdraw.ticket_status, withdraw.ticket_number) == (WithdrawStatus.NEW, 66)
    assert withdraw.form["TemplateType"] == "TetherRPCWithdraw"
    assert withdraw.reaccepted is True and withdraw.withdraw_transaction_details == ""
    assert server.of("GetDeposits")[0].body == {"OMSId": 1, "AccountId": 449}


async def test_get_account_transactions_decodes_the_ledger() -> None:
    """ccxt's GetAccountTransactions sample decodes; Depth goes out when given."""
    answers = {"GetAccountTransactions": raw("get_account_transactions.json")}
    async with guide_server(answers) as server, guide_client(server) as client:
        (entry,) = await client.get_account_transactions(depth=10)
        with pytest.raises(errors.InvalidInputError, match="depth"):
            await client.get_account_transactions(depth=0)
    assert (entry.transaction_id, entry.cr, entry.dr, entry.balance) == (
        2663709493,
        Decimal(10),
        Decimal(0),
        Decimal(10),
    )
    assert (entry.reference_type, entry.transaction_type, entry.time_stamp) == (
        "Deposit",
        "Other",
        1607532331591,
    )
    (seen,) = server.of("GetAccountTransactions")
    assert seen.body == {"OMSId": 1, "AccountId": 1, "Depth": 10}


async def test_get_ticker_history_parses_ohlcv_rows_and_sends_utc_dates() -> None:
    """Rows [time, high, low, open, close, volume, bid, ask, id(, begin)] become TickerBars."""
    rows = sample("get_ticker_history.json")
    rows.append([1607299440000, "2", "1", "1.5", "1.75", "100", "1.7", "1.8", 8])
    async with guide_server({"GetTickerHistory": rows}) as server, guide_client(server) as client:
        bars = await client.get_ticker_history(
            8,
            interval=60,
            from_date=dt.datetime(2020, 12, 7, tzinfo=UTC),
            to_date=dt.datetime(2020, 12, 7, 1, 0, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        )
    assert [b.time for b in bars] == [1607299260000, 1607299320000, 1607299380000, 1607299440000]
    first, last = bars[0], bars[-1]
    assert (first.open, first.close, first.inside_bid, first.begin_time) == (
        Decimal("19069.32"),
        Decimal("19069.32"),
        Decimal("19069.31"),
        1607299200000,
    )
    assert (last.high, last.low, last.open, last.close, last.volume) == (
        Decimal(2),
        Decimal(1),
        Decimal("1.5"),
        Decimal("1.75"),
        Decimal(100),
    )
    assert (last.instrument_id, last.begin_time) == (8, None)
    (seen,) = server.of("GetTickerHistory")
    assert seen.body == {
        "OMSId": 1,
        "InstrumentId": 8,
        "Interval": 60,
        "FromDate": "2020-12-07T00:00:00",
        "ToDate": "2020-12-07T00:00:00",
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"from_date": dt.datetime(2020, 1, 1)}, "timezone-aware"),
        ({"from_date": "2020-01-01"}, "must be a datetime"),
        ({"interval": 0}, "interval"),
        ({"to_date": dt.datetime(2019, 1, 1, tzinfo=UTC)}, "after to_date"),
    ],
)
async def test_get_ticker_history_bad_input_sends_nothing(
    kwargs: dict[str, Any], message: str
) -> None:
    """Naive or reversed dates and a bad interval are refused before any request."""
    arguments: dict[str, Any] = {
        "interval": 60,
        "from_date": dt.datetime(2020, 1, 1, tzinfo=UTC),
        "to_date": dt.datetime(2020, 1, 2, tzinfo=UTC),
        **kwargs,
    }
    async with guide_server() as server, guide_client(server) as client:
        with pytest.raises(errors.InvalidInputError, match=message):
            await client.get_ticker_history(8, **arguments)
    assert server.seen == []


async def test_short_ticker_row_is_a_decode_error() -> None:
    """A row of fewer than six columns is a DecodeError naming the row."""
    answers = {"GetTickerHistory": [[1607299260000, 1, 1, 1, 1, 0], [1, 2]]}
    async with guide_server(answers) as server, guide_client(server) as client:
        with pytest.raises(errors.DecodeError, match="row 1: expected 6 to 10 columns, got 2"):
            await client.get_ticker_history(
                8,
                interval=60,
                from_date=dt.datetime(2020, 1, 1, tzinfo=UTC),
                to_date=dt.datetime(2020, 1, 2, tzinfo=UTC),
            )


async def test_cancel_all_orders_is_a_write_sent_once_with_both_spellings() -> None:
    """A 5xx answer to CancelAllOrders is an unknown outcome, never a resend; the instrument
    goes out as InstrumentId and as AlphaPoint's IntrumentId."""
    async with guide_server() as server, guide_client(server) as client:
        await client.authenticate()
        server.fail_once["CancelAllOrders"] = 500
        with pytest.raises(errors.UnknownOutcomeError):
            await client.cancel_all_orders(instrument_id=3)
        with pytest.raises(errors.InvalidInputError, match="instrument_id"):
            await client.cancel_all_orders(instrument_id=0)
    (seen,) = server.of("CancelAllOrders")
    assert seen.body == {"OMSId": 1, "AccountId": 1, "InstrumentId": 3, "IntrumentId": 3}
