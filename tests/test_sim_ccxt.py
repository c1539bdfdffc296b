"""Faithfulness: ccxt's ``ndax`` (an AlphaPoint client written by others) trades on the sim."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

import attrs
import ccxt.async_support as ccxt  # a real third-party AlphaPoint client (test extra)
import pytest

from kiiex_async import Credentials, KiiexClient
from kiiex_async.models import OrderType, Side
from kiiex_async.sim import SimConfig, Simulator

CONFIG = SimConfig(seed=17, time_speed=0.0, start_time=1_700_000_000.0, drift_bps=D(0))


def _ndax(sim: Simulator) -> Any:
    base = sim.base_url + "/AP"
    return ccxt.ndax(
        {
            "urls": {"api": {"public": base, "private": base}},
            "apiKey": sim.demo.api_key,
            "secret": sim.demo.api_secret,
            "uid": str(sim.demo.user_id),
            "login": sim.demo.username,
            "password": sim.demo.password,
            "enableRateLimit": False,
        }
    )


async def test_ccxt_fetch_ohlcv_reads_the_simulators_candles() -> None:
    """ccxt fetch_ohlcv (GetTickerHistory with ymdhms dates) gets one candle per minute."""
    async with Simulator(CONFIG) as sim:
        exchange = _ndax(sim)
        try:
            await exchange.create_order("USDT/COPM", "market", "sell", 3000)
            since = int(sim.now() * 1000) // 60_000 * 60_000 - 120_000
            candles = await exchange.fetch_ohlcv("USDT/COPM", "1m", since, 3)
            assert len(candles) == 3
            # ccxt reads column 0 (EndDateTime) as the candle's time.
            assert [c[0] - since for c in candles] == [60_000, 120_000, 180_000]
            assert candles[0][1:] == [4000.0, 4000.0, 4000.0, 4000.0, 0.0]
            assert candles[-1][1:] == [3998.0, 3998.0, 3996.0, 3996.0, 3000.0]
        finally:
            await exchange.close()


async def test_ccxt_fetch_order_trades_shows_one_trade_per_fill() -> None:
    """ccxt fetch_order_trades (Trade revisions of GetOrderHistoryByOrderId) = the fills."""
    async with Simulator(CONFIG) as sim:
        exchange = _ndax(sim)
        try:
            order = await exchange.create_order("USDT/COPM", "market", "sell", 3000)
            trades = await exchange.fetch_order_trades(order["id"], "USDT/COPM")
            fills = [t for t in sim.exchange.trades if str(t.order_id) == order["id"]]
            assert len(trades) == len(fills) == 2
            assert all(t["order"] == order["id"] and t["side"] == "sell" for t in trades)
            assert sorted(t["cost"] for t in trades) == [
                2500 * 3998.0,
                2500 * 3998.0 + 500 * 3996.0,
            ]
        finally:
            await exchange.close()


@pytest.mark.parametrize("dialect", ["apex", "guide"])
async def test_ccxt_fetch_ledger_reads_the_account_journal(dialect: str) -> None:
    """ccxt fetch_ledger (GetAccountTransactions, signed headers) in both dialects."""
    async with Simulator(attrs.evolve(CONFIG, dialect=dialect)) as sim:
        exchange = _ndax(sim)
        try:
            await exchange.create_order("USDT/COPM", "market", "sell", 10)
            entries = await exchange.fetch_ledger("COPM")
            assert [e["type"] for e in entries] == ["trade", "trade"]
            assert sorted(e["after"] for e in entries) == [39980.0 - 79.96, 39980.0]
            assert {e["referenceId"] for e in entries} == {str(sim.exchange.trades[-1].trade_id)}
        finally:
            await exchange.close()


async def test_ccxt_ndax_works_against_the_simulator() -> None:
    """ccxt ndax (GET /AP/ reads, per-request signatures, float bodies) sees a coherent exchange."""
    async with Simulator(CONFIG) as sim:
        exchange = _ndax(sim)
        try:
            markets = await exchange.load_markets()
            assert markets["USDT/COPM"]["precision"]["amount"] == 0.01
            ticker = await exchange.fetch_ticker("USDT/COPM")
            assert (ticker["bid"], ticker["ask"]) == (3998.0, 4002.0)
            book = await exchange.fetch_order_book("USDT/COPM", 3)
            assert book["bids"][0][:2] == [3998.0, 2500.0] and book["asks"][0][:2] == [
                4002.0,
                2500.0,
            ]
            balance = await exchange.fetch_balance()
            assert balance["USDT"]["total"] == 10_000.0
            await exchange.create_order(
                "USDT/COPM", "market", "sell", 10, None, {"clientOrderId": 55}
            )
            limit = await exchange.create_order("USDT/COPM", "limit", "sell", 10, 4100)
            (trade,) = await exchange.fetch_my_trades("USDT/COPM")
            assert (trade["price"], trade["amount"], trade["fee"]["currency"]) == (
                3998.0,
                10.0,
                "COPM",
            )
            (open_order,) = await exchange.fetch_open_orders("USDT/COPM")
            assert open_order["id"] == limit["id"] and open_order["status"] == "open"
            await exchange.cancel_order(limit["id"], "USDT/COPM")
            assert (await exchange.fetch_order(limit["id"], "USDT/COPM"))["status"] == "canceled"
            balance = await exchange.fetch_balance()
            assert balance["USDT"]["total"] == 9_990.0 and balance["USDT"]["used"] == 0.0
            address = await exchange.fetch_deposit_address("USDT")
            assert address["address"].startswith("0x")
            await exchange.sign_in()
            assert await exchange.fetch_withdrawals("USDT") == []
        finally:
            await exchange.close()


async def test_ccxt_pro_ndax_streams_from_the_simulator() -> None:
    """ccxt.pro ndax's watch_order_book, watch_ticker and watch_trades run on /WSGateway.

    The order book is watched first: ccxt's ndax indexes its subscriptions by id when the
    SubscribeLevel2 reply arrives and trips over the ``True`` that watch_ticker stores.
    """
    import ccxt.pro as ccxtpro  # ccxt.pro ships inside the ccxt package

    async with Simulator(CONFIG) as sim:
        base = sim.base_url + "/AP"
        exchange = ccxtpro.ndax(
            {"urls": {"api": {"public": base, "private": base, "ws": sim.ws_url}}}
        )
        credentials = Credentials(**sim.credentials_kwargs)
        try:
            book = await exchange.watch_order_book("USDT/COPM", 5)
            assert book["bids"][0][:2] == [3998.0, 2500.0] and book["asks"][0][0] == 4002.0
            ticker = await exchange.watch_ticker("USDT/COPM")
            assert (ticker["bid"], ticker["ask"]) == (3998.0, 4002.0)
            watching = asyncio.ensure_future(exchange.watch_trades("USDT/COPM"))
            updated = asyncio.ensure_future(exchange.watch_order_book("USDT/COPM", 5))
            async with asyncio.timeout(10):
                while not sim.gateway.subscribers("trades", 1):  # noqa: ASYNC110 - a counter
                    await asyncio.sleep(0.01)
            async with KiiexClient(sim.url, credentials=credentials) as client:
                await client.send_order(1, Side.SELL, D(10), order_type=OrderType.MARKET)
            (trade,) = await asyncio.wait_for(watching, 10)
            assert (trade["price"], trade["amount"], trade["side"]) == (3998.0, 10.0, "sell")
            book = await asyncio.wait_for(updated, 10)
            assert book["bids"][0][:2] == [3998.0, 2490.0]
        finally:
            await exchange.close()
