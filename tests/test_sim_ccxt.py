"""Faithfulness: ccxt's ``ndax`` (an AlphaPoint client written by others) trades on the sim."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D

import ccxt.async_support as ccxt  # a real third-party AlphaPoint client (test extra)

from kiiex_async import Credentials, KiiexClient
from kiiex_async.models import OrderType, Side
from kiiex_async.sim import SimConfig, Simulator

CONFIG = SimConfig(seed=17, time_speed=0.0, start_time=1_700_000_000.0, drift_bps=D(0))


async def test_ccxt_ndax_works_against_the_simulator() -> None:
    """ccxt ndax (GET /AP/ reads, per-request signatures, float bodies) sees a coherent exchange."""
    async with Simulator(CONFIG) as sim:
        base = sim.base_url + "/AP"
        exchange = ccxt.ndax(
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
