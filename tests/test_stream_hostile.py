"""``Stream`` against a hostile gateway: huge frames, garbage, absurd numbers, bad errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from decimal import Decimal as D
from typing import Any

import pytest
from aiohttp import WSMsgType, web
from loopback import serve_app
from stream_support import until

from kiiex_async import ConnectError, DecodeError, KiiexClient, UnknownOutcomeError
from kiiex_async.stream import Stream, backoff_delay, ws_url_for

Responder = Callable[[dict[str, Any]], list[str]]
ROW = [7, 1, 1, 0, 100, 1, 100, 1, 5, 0]
ASK = [7, 1, 1, 0, 100, 1, 101, 1, 5, 1]


def reply(frame: dict[str, Any], payload: Any, *, m: int = 1) -> str:
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return json.dumps({"m": m, "i": frame["i"], "n": frame["n"], "o": text})


def event(name: str, payload: Any) -> str:
    return json.dumps({"m": 3, "i": 0, "n": name, "o": json.dumps(payload)})


class Hostile:
    """A scriptable /WSGateway on 127.0.0.1: ``respond`` answers requests; ``push`` sends."""

    def __init__(self, respond: Responder) -> None:
        self.respond = respond
        self.sockets: list[web.WebSocketResponse] = []
        self.connections = 0
        self.snapshot: list[list[Any]] = [ROW, ASK]

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        self.sockets.append(ws)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                for text in self.respond(json.loads(msg.data)):
                    await ws.send_str(text)
        self.sockets.remove(ws)
        return ws

    async def push(self, text: str) -> None:
        for ws in list(self.sockets):
            await ws.send_str(text)


def default(server: Hostile) -> Responder:
    def respond(frame: dict[str, Any]) -> list[str]:
        if frame["n"] == "Ping":
            return [reply(frame, {"msg": "PONG"})]
        if frame["n"] in ("SubscribeLevel2", "GetL2Snapshot"):
            return [reply(frame, server.snapshot)]
        return [reply(frame, {"result": False, "errormsg": "nope", "errorcode": 104}, m=5)]

    return respond


@pytest.fixture
async def hostile() -> AsyncIterator[tuple[Hostile, str]]:
    server = Hostile(lambda frame: [])
    server.respond = default(server)
    app = web.Application()
    app.router.add_get("/WSGateway", server.handle)
    async with serve_app(app, shutdown_timeout=1.0) as base:
        try:
            yield server, f"{base}/ap"
        finally:
            for ws in list(server.sockets):
                await ws.close()


@pytest.fixture
async def stream(hostile: tuple[Hostile, str]) -> AsyncIterator[Stream]:
    _, url = hostile
    async with (
        KiiexClient(url) as client,
        client.stream(
            ping_interval=30.0,
            reconnect_base=0.01,
            reconnect_cap=0.05,
            verify_interval=3600.0,
            max_msg_size=64 * 1024,
        ) as s,
    ):
        yield s


def test_ws_url_is_derived_from_the_http_base_url() -> None:
    """https://host/ap → wss://host/WSGateway; http keeps the port and becomes ws."""
    assert (
        ws_url_for("https://apstage.proxy.kiiex.io/ap") == "wss://apstage.proxy.kiiex.io/WSGateway"
    )
    assert ws_url_for("http://127.0.0.1:8080/ap") == "ws://127.0.0.1:8080/WSGateway"


def test_backoff_is_jittered_never_zero_and_capped() -> None:
    """Equal jitter: between half and all of min(cap, base·2^(n-1))."""
    assert backoff_delay(1, base=1.0, cap=30.0, rand=lambda: 0.0) == 0.5
    assert backoff_delay(3, base=1.0, cap=30.0, rand=lambda: 1.0) == 4.0
    assert backoff_delay(99, base=1.0, cap=30.0, rand=lambda: 0.5) == 22.5


async def test_a_huge_frame_closes_the_socket_and_the_stream_reconnects(
    hostile: tuple[Hostile, str], stream: Stream
) -> None:
    """A frame above max_msg_size is refused (never buffered) and the stream reconnects."""
    server, _ = hostile
    await server.push(event("Level1UpdateEvent", {"x": "y" * 200_000}))
    await until(lambda: stream.reconnects >= 1 and stream.connected)
    assert server.connections == 2
    assert (await stream.call("Ping")).msg == "PONG"


async def test_garbage_frames_are_counted_and_ignored(
    hostile: tuple[Hostile, str], stream: Stream
) -> None:
    """Non-JSON frames, frames without m/n and stray m 5 errors do not break the stream."""
    server, _ = hostile
    await server.push("<html>")
    await server.push(json.dumps({"hello": 1}))
    await server.push(json.dumps({"m": 5, "i": 999, "n": "X", "o": "{}"}))
    assert (await stream.call("Ping")).msg == "PONG"
    assert stream.protocol_errors == 3 and stream.reconnects == 0


async def test_a_reply_whose_payload_is_not_json(
    hostile: tuple[Hostile, str], stream: Stream
) -> None:
    """A read with a non-JSON ``o`` is a DecodeError; a write is an UnknownOutcomeError."""
    server, _ = hostile
    server.respond = lambda frame: [reply(frame, "{not json")]
    with pytest.raises(DecodeError):
        await stream.call("GetLevel1", {"InstrumentId": 1})
    with pytest.raises(UnknownOutcomeError):
        await stream.call("SendOrder", {"InstrumentId": 1})


@pytest.mark.parametrize(
    "bad",
    [
        [7, 1, 1, 0, 100, 1, "NaN", 1, 5, 0],
        [7, 1, 1, 0, 100, 1, 99, 1, -5, 0],
        [7, 1, 1, 9, 100, 1, 99, 1, 5, 0],
        [7, 1, 1, 0, 100, 1, 99, 1, 5],
        [7, 1, 1, 0, 100, 1, "1e999999999999", 1, "Infinity", 0],
    ],
)
async def test_absurd_level2_rows_are_refused_and_the_book_rebuilt(
    hostile: tuple[Hostile, str], stream: Stream, bad: list[Any]
) -> None:
    """A row with a NaN, a negative quantity, an unknown action or a short row is refused
    whole; the book checks GetL2Snapshot and rebuilds."""
    server, _ = hostile
    book = await stream.order_book(1, depth=5)
    server.snapshot = [[8, 1, 1, 0, 100, 1, 99, 1, 3, 0], ASK]
    await server.push(event("Level2UpdateEvent", [[7, 1, 1, 0, 100, 1, 98, 1, 1, 0], bad]))
    await until(lambda: book.rebuilds == 1)
    assert book.best_bid == D(99) and not book.dirty
    assert [e.price for e in book.levels.bids] == [D(99)]


async def test_a_crossed_book_is_verified_and_rebuilt(
    hostile: tuple[Hostile, str], stream: Stream
) -> None:
    """An update that crosses the book triggers a GetL2Snapshot check and a rebuild."""
    server, _ = hostile
    book = await stream.order_book(1, depth=5)
    await server.push(event("Level2UpdateEvent", [[9, 1, 1, 0, 100, 1, 105, 1, 1, 0]]))
    await until(lambda: book.rebuilds == 1)
    assert (book.best_bid, book.best_ask) == (D(100), D(101))


async def test_no_gateway_is_a_connect_error_on_entry() -> None:
    """Entering a stream whose gateway refuses connections raises ConnectError at once."""
    async with KiiexClient("http://127.0.0.1:9/ap") as client:
        with pytest.raises(ConnectError):
            async with client.stream():
                pass  # pragma: no cover - never entered


async def test_absurd_public_trades_are_counted_and_never_delivered(
    hostile: tuple[Hostile, str], stream: Stream
) -> None:
    """Trade rows with NaN, a negative quantity, a number beyond ±1e100, a 2,000-digit
    integer, too few columns or an unknown taker side are dropped (each counted); the good
    row still arrives."""
    server, _ = hostile
    feed = stream.trades(1)
    good = [501, 1, "2.5", 4000, 77, 78, 1700000000000, 0, 1, 0]
    bad: list[Any] = [
        [502, 1, "2.5", "NaN", 77, 78, 1700000000000, 0, 1, 0],
        [503, 1, -1, 4000, 77, 78, 1700000000000, 0, 1, 0],
        [504, 1, "1e999999", 4000, 77, 78, 1700000000000, 0, 1, 0],
        [505, 1, 1, int("9" * 2000), 77, 78, 1700000000000, 0, 1, 0],
        [506, 1, 1, 4000, 77, 78, 1700000000000, 0],
        [507, 1, 1, 4000, 77, 78, 1700000000000, 0, 7, 0],
    ]
    await server.push(event("TradeDataUpdateEvent", [*bad, good]))
    trade = await anext(aiter(feed))
    assert (trade.trade_id, trade.quantity, trade.price) == (501, D("2.5"), D(4000))
    assert stream.protocol_errors == len(bad)
