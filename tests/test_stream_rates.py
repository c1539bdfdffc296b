"""``RatePoller(source="ws")``: pushed rates, HTTP polling while the socket is down."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D

import pytest
from stream_support import until

from kiiex_async import Credentials, InvalidInputError, KiiexClient
from kiiex_async.models import OrderType, Side
from kiiex_async.rates import RatePoller
from kiiex_async.sim import Fault, SimConfig, Simulator

CONFIG = SimConfig(seed=9, time_speed=0.0, start_time=1_700_000_000.0, drift_bps=D(0))
FAST = {"ping_interval": 0.2, "ping_timeout": 0.3, "reconnect_base": 0.02, "reconnect_cap": 0.1}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(CONFIG) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[KiiexClient]:
    credentials = Credentials(**sim.credentials_kwargs)
    async with KiiexClient(sim.url, credentials=credentials, rate_limit=None) as c:
        yield c


async def test_pushed_rates_reach_subscribers_between_polls(
    sim: Simulator, client: KiiexClient
) -> None:
    """With a 60 s interval, a fill's new last price still arrives: it was pushed."""
    async with RatePoller(
        client, [1], interval=60.0, source="ws", stream_options=FAST, changes_only=True
    ) as poller:
        ticks = aiter(poller.subscribe())
        first = await anext(ticks)
        assert (first.bid, first.ask) == (D(3998), D(4002))
        await until(lambda: sim.gateway.subscribers("level1", 1) == 1)
        await client.send_order(1, Side.SELL, D(10), order_type=OrderType.MARKET)
        tick = await anext(ticks)
        while tick.last != D(3998):
            tick = await anext(ticks)
        assert poller.stats().requests <= 1


async def test_http_polling_covers_a_socket_that_is_down(
    sim: Simulator, client: KiiexClient
) -> None:
    """While every reconnect is dropped the slots poll over HTTP; once the socket is back
    they are served by pushes again."""
    async with RatePoller(client, [1], interval=0.05, source="ws", stream_options=FAST) as poller:
        await until(lambda: poller.stats().pushed > 0)
        sim.faults.inject(Fault("AuthenticateUser", "ws_drop"))
        await sim.gateway.drop_all()
        before = poller.stats().requests
        await until(lambda: poller.stats().requests > before + 3)
        sim.faults.clear()
        pushed = poller.stats().pushed
        await until(lambda: poller.stats().pushed > pushed + 3)


def test_ws_source_needs_book_mode_and_a_client() -> None:
    """source="ws" with RateMode.LAST, or an unknown source, is refused up front."""
    with pytest.raises(InvalidInputError):
        RatePoller(object(), [1], interval=1.0, source="ws")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError):
        RatePoller(object(), [1], interval=1.0, source="carrier-pigeon")  # type: ignore[arg-type]
