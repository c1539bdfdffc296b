"""``client.stream()`` against the simulator: calls, subscriptions, reconnects, healing."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal as D
from typing import Any

import attrs
import pytest
from stream_support import until

from kiiex_async import (
    ConfigurationError,
    Credentials,
    KiiexClient,
    NotFoundError,
    RejectedError,
    UnknownOutcomeError,
)
from kiiex_async.models import L2Snapshot, Level1, OrderType, Side
from kiiex_async.sim import Fault, SimConfig, Simulator
from kiiex_async.stream import (
    AccountEvents,
    OrderStateUpdate,
    OrderTradeUpdate,
    PositionUpdate,
    Resynced,
    Stream,
)

#: The ``dialect`` fixture: each simulator test runs once per dialect (the guide's login
#: answers no session token, so the socket must authenticate from the signed login).
pytest_plugins = ["dialect_support"]

CONFIG = SimConfig(seed=5, time_speed=0.0, start_time=1_700_000_000.0, drift_bps=D(0))
FAST = {
    "ping_interval": 0.2,
    "ping_timeout": 0.3,
    "reconnect_base": 0.02,
    "reconnect_cap": 0.1,
    "verify_interval": 3600.0,
    "call_timeout": 5.0,
}


async def no_leaked_tasks() -> None:
    """Every task but the test's own has finished."""
    await asyncio.sleep(0)
    current = asyncio.current_task()
    left = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
    assert left == [], left


@pytest.fixture
async def sim(dialect: str) -> AsyncIterator[Simulator]:
    async with Simulator(attrs.evolve(CONFIG, dialect=dialect)) as simulator:
        yield simulator


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[KiiexClient]:
    async with KiiexClient(
        sim.url, credentials=Credentials(**sim.credentials_kwargs), rate_limit=None
    ) as c:
        yield c


@pytest.fixture
async def stream(client: KiiexClient) -> AsyncIterator[Stream]:
    async with client.stream(**FAST) as s:
        yield s


async def sell(client: KiiexClient, qty: str = "10") -> int:
    result = await client.send_order(1, Side.SELL, D(qty), order_type=OrderType.MARKET)
    return result.order_id


async def test_call_returns_what_the_http_call_returns(client: KiiexClient, stream: Stream) -> None:
    """stream.call("GetLevel1") and GetL2Snapshot give the same typed values as HTTP."""
    over_ws = await stream.call("GetLevel1", {"OMSId": 1, "InstrumentId": 1})
    assert isinstance(over_ws, Level1)
    assert over_ws == await client.get_level1(1)
    book = await stream.call("GetL2Snapshot", {"OMSId": 1, "InstrumentId": 1, "Depth": 5})
    assert isinstance(book, L2Snapshot) and book == await client.get_l2_snapshot(1, depth=5)


async def test_call_maps_errors_like_http(stream: Stream) -> None:
    """An unknown method (m 5, errorcode 104) raises NotFoundError, as over HTTP."""
    with pytest.raises(NotFoundError):
        await stream.call("NoSuchMethod", {})


async def test_a_write_whose_reply_is_lost_is_an_unknown_outcome(
    sim: Simulator, stream: Stream
) -> None:
    """SendOrder applied but the socket drops before the reply → UnknownOutcomeError."""
    sim.faults.inject(Fault("SendOrder", "ws_drop", times=1))
    payload = {"OMSId": 1, "AccountId": 1, "InstrumentId": 1, "Side": 1, "OrderType": 1}
    with pytest.raises(UnknownOutcomeError):
        await stream.call("SendOrder", {**payload, "Quantity": "10", "TimeInForce": 1})
    assert len([o for o in sim.ledger()["Orders"] if o["Account"] == 1]) == 1


async def test_a_read_whose_socket_drops_is_asked_again_on_the_next_socket(
    sim: Simulator, stream: Stream
) -> None:
    """GetLevel1 whose socket drops before the reply is answered after the reconnect
    (it is not sent again on the dead socket)."""
    sim.faults.inject(Fault("GetLevel1", "ws_drop", times=1))
    level1 = await stream.call("GetLevel1", {"OMSId": 1, "InstrumentId": 1})
    assert isinstance(level1, Level1) and level1.instrument_id == 1
    assert stream.reconnects == 1


async def test_level1_pushes_the_latest_value(client: KiiexClient, stream: Stream) -> None:
    """level1() yields the subscription snapshot, then the value after a fill."""
    ticks = aiter(stream.level1(1))
    first = await anext(ticks)
    assert (first.best_bid, first.best_offer) == (D(3998), D(4002))
    await sell(client)
    second = await anext(ticks)
    assert second.last_traded_px == D(3998) and stream.level1(1).latest() == second


async def test_trades_feed_types_public_trades(
    sim: Simulator, client: KiiexClient, stream: Stream
) -> None:
    """trades() yields typed PublicTrade rows with the taker side."""
    feed = stream.trades(1)
    await until(lambda: sim.gateway.subscribers("trades", 1) == 1)
    await sell(client)
    trade = await anext(aiter(feed))
    assert (trade.price, trade.quantity, trade.taker_side) == (D(3998), D(10), Side.SELL)


async def test_order_book_follows_updates_and_quotes(client: KiiexClient, stream: Stream) -> None:
    """order_book() applies updates by price and quotes like pricing.quote."""
    book = await stream.order_book(1, depth=3)
    assert (book.best_bid, book.best_ask) == (D(3998), D(4002))
    await sell(client)
    await until(lambda: book.levels.bids[0].quantity == D(2490))
    assert book.matches(await client.get_l2_snapshot(1, depth=3))
    quote = book.quote(side=Side.BUY, base_quantity=D(10))
    assert quote.average_price == D(4002) and quote.filled


async def test_book_heals_after_a_lost_update(
    sim: Simulator, client: KiiexClient, stream: Stream
) -> None:
    """A skipped Level2 update leaves the book wrong until verification rebuilds it."""
    book = await stream.order_book(1, depth=3)
    sim.faults.inject(Fault("Level2UpdateEvent", "ws_skip", times=1))
    await sell(client)
    await stream.call("Ping")  # the lost update would have arrived before this reply
    snapshot = await client.get_l2_snapshot(1, depth=3)
    assert not book.matches(snapshot)
    assert await stream.verify_book(1) is False
    assert book.matches(snapshot) and book.rebuilds == 1
    assert await stream.verify_book(1) is True


async def test_an_unreadable_update_makes_the_book_heal_at_once(
    sim: Simulator, client: KiiexClient, stream: Stream
) -> None:
    """A Level2 update whose payload is not JSON is counted and the book checks itself
    against GetL2Snapshot right away, without waiting for the periodic verification."""
    book = await stream.order_book(1, depth=3)
    sim.faults.inject(Fault("Level2UpdateEvent", "ws_garble", times=1))
    await sell(client)
    await until(lambda: book.rebuilds == 1)
    assert stream.protocol_errors == 1
    assert book.matches(await client.get_l2_snapshot(1, depth=3))


async def test_an_unreadable_account_event_resyncs_listeners_from_rest(
    sim: Simulator, client: KiiexClient, stream: Stream
) -> None:
    """An account event that cannot be read is not dropped silently: listeners get a
    Resynced("unreadable") marker carrying what REST says (the fill's COPM included)."""
    events = await stream.account_events()
    sim.faults.inject(Fault("AccountPositionEvent", "ws_garble", times=1))
    await sell(client)
    marker = await first_of(events, Resynced)
    assert marker.reason == "unreadable" and stream.protocol_errors == 1
    assert any(p.product_symbol == "COPM" and p.amount > 0 for p in marker.positions)


async def test_duplicated_and_reordered_updates_leave_the_book_right(
    sim: Simulator, client: KiiexClient, stream: Stream
) -> None:
    """Level2 rows carry absolute quantities: a duplicate or a swap changes nothing."""
    book = await stream.order_book(1, depth=3)
    sim.faults.inject(Fault("Level2UpdateEvent", "ws_duplicate", times=1))
    await sell(client)
    sim.faults.inject(Fault("Level1UpdateEvent", "ws_reorder", times=1))
    await sell(client)
    await stream.call("Ping")
    assert book.matches(await client.get_l2_snapshot(1, depth=3)) and book.rebuilds == 0


async def test_reconnect_after_a_drop_resubscribes_and_resyncs(
    sim: Simulator, client: KiiexClient, stream: Stream
) -> None:
    """After the server drops the socket the stream reconnects, logs in, re-subscribes the
    book (rebuilt from the new snapshot) and tells account listeners what REST says."""
    book = await stream.order_book(1, depth=3)
    events = await stream.account_events()
    await sim.gateway.drop_all()
    await sell(client)  # happens while the stream is down (or reconnecting)
    await until(lambda: stream.reconnects >= 1 and stream.connected)
    marker = await first_of(events, Resynced)
    assert marker.reason == "reconnect" and {p.product_symbol for p in marker.positions} >= {"USDT"}
    await stream.call("Ping")
    assert book.matches(await client.get_l2_snapshot(1, depth=3))


async def first_of(events: AccountEvents, kind: type[Any]) -> Any:
    async with asyncio.timeout(10):
        async for event in events:
            if isinstance(event, kind):
                return event
    raise AssertionError("stream ended")


async def test_a_silent_socket_is_treated_as_dead(sim: Simulator, stream: Stream) -> None:
    """When Ping goes unanswered the watchdog closes the socket and the stream reconnects."""
    sim.faults.inject(Fault("Ping", "ws_silent", times=1))
    await until(lambda: stream.reconnects >= 1 and stream.connected)
    assert (await stream.call("Ping")).msg == "PONG"


async def test_account_events_arrive_typed(client: KiiexClient, stream: Stream) -> None:
    """A fill yields OrderStateUpdate, OrderTradeUpdate and PositionUpdate events."""
    events = await stream.account_events()
    order_id = await sell(client)
    seen: set[type[Any]] = set()
    async with asyncio.timeout(10):
        async for event in events:
            seen.add(type(event))
            if {OrderStateUpdate, OrderTradeUpdate, PositionUpdate} <= seen:
                break
    assert await stream.wait_account_change(order_id=order_id, timeout=0.01) is False
    waiter = asyncio.ensure_future(stream.wait_account_change(order_id=order_id + 1))
    await asyncio.sleep(0)
    await sell(client)
    assert await waiter is True


async def test_account_queue_overflow_resyncs_from_rest(
    client: KiiexClient, stream: Stream
) -> None:
    """A full account queue is emptied and followed by a Resynced("overflow") marker."""
    events = await stream.account_events(maxsize=2)
    await sell(client)
    marker = await first_of(events, Resynced)
    assert marker.reason == "overflow" and events.overflows >= 1
    assert any(p.product_symbol == "COPM" and p.amount > 0 for p in marker.positions)


async def test_closing_leaves_no_task_behind() -> None:
    """Entering and leaving a busy stream (feeds, book, account queue) leaks no task, and a
    consumer waiting on a feed ends with StopAsyncIteration."""
    async with (
        Simulator(CONFIG) as sim,
        KiiexClient(sim.url, credentials=Credentials(**sim.credentials_kwargs)) as client,
    ):
        async with client.stream(**FAST) as s:
            s.level1(1)
            await s.order_book(1, depth=2)
            await s.account_events()
            await sell(client)
            consumer = asyncio.ensure_future(anext(aiter(s.level1(2))))
            await s.call("Ping")
        with pytest.raises(StopAsyncIteration):
            await consumer
    await no_leaked_tasks()


async def test_cancelling_a_call_leaves_no_pending_reply(stream: Stream) -> None:
    """A cancelled call forgets its sequence number; the stream keeps working."""
    task = asyncio.ensure_future(stream.call("GetInstruments", {"OMSId": 1}))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (await stream.call("Ping")).msg == "PONG"


async def test_an_unknown_instrument_fails_its_feed_not_the_stream(
    sim: Simulator, stream: Stream
) -> None:
    """A refused subscription raises in its own feed; a reconnect still succeeds."""
    ticks = aiter(stream.level1(999))
    with pytest.raises(RejectedError):
        await anext(ticks)
    await sim.gateway.drop_all()
    await until(lambda: stream.reconnects >= 1 and stream.connected)
    assert (await stream.call("Ping")).msg == "PONG"


async def test_account_events_need_credentials(sim: Simulator) -> None:
    """Without credentials account_events() is a ConfigurationError, before any request."""
    async with KiiexClient(sim.url) as anonymous, anonymous.stream(**FAST) as s:
        with pytest.raises(ConfigurationError):
            await s.account_events()


async def test_duplicated_and_reordered_account_events_are_all_delivered(
    sim: Simulator, client: KiiexClient, stream: Stream
) -> None:
    """Account events sent twice or out of order all reach the consumer (REST decides)."""
    events = await stream.account_events()
    sim.faults.inject(Fault("OrderTradeEvent", "ws_duplicate", times=1))
    sim.faults.inject(Fault("OrderStateEvent", "ws_reorder", times=1))
    await sell(client)
    trades: list[Any] = []
    states: list[Any] = []
    async with asyncio.timeout(10):
        async for event in events:
            if isinstance(event, OrderTradeUpdate):
                trades.append(event)
            if isinstance(event, OrderStateUpdate):
                states.append(event)
            if len(trades) == 2 and states:
                break
    assert trades[0] == trades[1]


async def test_a_drop_during_login_fails_the_setup_at_once(
    sim: Simulator, client: KiiexClient
) -> None:
    """A socket dropped while AuthenticateUser awaits its reply reconnects at once, not
    after the call timeout (here a minute)."""
    async with client.stream(**{**FAST, "call_timeout": 60.0}) as s:
        sim.faults.inject(Fault("AuthenticateUser", "ws_drop", times=1))
        await sim.gateway.drop_all()
        await until(lambda: s.reconnects >= 2 and s.connected)
        assert (await s.call("Ping")).msg == "PONG"


async def test_periodic_verification_heals_a_book_on_its_own(
    sim: Simulator, client: KiiexClient
) -> None:
    """With a short verify_interval a lost update is repaired without anyone asking."""
    async with client.stream(**{**FAST, "verify_interval": 0.1}) as s:
        book = await s.order_book(1, depth=3)
        sim.faults.inject(Fault("Level2UpdateEvent", "ws_skip", times=1))
        await sell(client)
        await until(lambda: book.rebuilds >= 1)
        assert book.matches(await client.get_l2_snapshot(1, depth=3))


async def test_level1_is_resubscribed_after_a_reconnect(
    sim: Simulator, client: KiiexClient, stream: Stream
) -> None:
    """A Level1 feed keeps delivering after the socket was dropped and reopened."""
    ticks = aiter(stream.level1(1))
    await anext(ticks)
    await sim.gateway.drop_all()
    await until(lambda: stream.reconnects >= 1 and sim.gateway.subscribers("level1", 1) == 1)
    await sell(client)
    tick = await anext(ticks)
    while tick.last_traded_px != D(3998):
        tick = await anext(ticks)


async def test_a_per_request_client_streams_private_calls_and_account_events(
    sim: Simulator,
) -> None:
    """A client that signs each request (auth="per_request") logs the socket in, makes a
    private call on it and receives its account events, in both dialects."""
    credentials = Credentials(**sim.credentials_kwargs)
    async with (
        KiiexClient(sim.url, credentials=credentials, auth="per_request", rate_limit=None) as c,
        c.stream(**FAST) as s,
    ):
        positions = await s.call("GetAccountPositions", {"OMSId": 1, "AccountId": 1})
        assert {p.product_symbol for p in positions} >= {"USDT", "COPM"}
        events = await s.account_events()
        order_id = await sell(c)
        update = await first_of(events, OrderStateUpdate)
        assert update.order.order_id == order_id
