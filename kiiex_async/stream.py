"""``Stream``: one multiplexed AlphaPoint WebSocket (``/WSGateway``) per client.

::

    async with KiiexClient(url, credentials=creds) as client:
        async with client.stream() as stream:
            level1 = await stream.call("GetLevel1", {"OMSId": 1, "InstrumentId": 1})
            async for tick in stream.level1(1):
                ...
            book = await stream.order_book(1, depth=10)
            book.best_bid, book.best_ask, book.quote(side=Side.BUY, quote_amount=D(100))
            async for event in stream.account_events():
                ...

How it behaves:

- *Calls.*  ``call(method, payload)`` sends ``{"m":0,"i":<even seq>,"n":method,"o":...}``
  and answers what the HTTP call answers: the same models, the same errors
  (``m: 5`` and AlphaPoint's error objects map exactly as over HTTP).  Writes
  (``SendOrder``, ``CancelOrder``, ticket creation) are sent once; if the reply is lost
  (the socket drops, or no reply in time) the call raises
  :class:`~kiiex_async.errors.UnknownOutcomeError`.  A read whose socket dropped is
  asked again once, on the next connection.
- *Liveness.*  The gateway sends no heartbeat, so the stream sends ``Ping`` every
  ``ping_interval`` seconds and treats a socket that does not answer within
  ``ping_timeout`` as dead, even if TCP says it is open.
- *Reconnect.*  A lost socket is reopened with jittered exponential backoff capped at
  ``reconnect_cap`` (the attempt count is reset only once a connection stayed up for
  ``ping_interval``, so a server that accepts and drops cannot cause a storm), then the
  stream re-authenticates, re-subscribes and reconciles over REST: order books are rebuilt
  from the subscription snapshot and checked against ``GetL2Snapshot``, and account
  listeners receive a :class:`Resynced` marker with open orders and positions read over
  HTTP, so nothing that happened while disconnected goes unseen.
- *Order books* heal themselves: subscribed deeper than asked, checked against
  ``GetL2Snapshot`` every ``verify_interval`` seconds, after every reconnect and whenever
  an update crosses the book or cannot be applied, and rebuilt on any mismatch.
- *Account events* go to bounded queues; a full queue is emptied and followed by a
  :class:`Resynced` marker (``reason="overflow"``) carrying the REST state: events are
  never dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import random
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, Final, TypeVar

import aiohttp

from . import _otel, _wire
from ._events import (
    AccountEvent,
    CancelReject,
    DepositTicketUpdate,
    OrderReject,
    OrderStateUpdate,
    OrderTradeUpdate,
    PositionUpdate,
    PublicTrade,
    Resynced,
    WithdrawTicketUpdate,
)
from ._feeds import AccountEvents, Latest, Level1Feed, TradeFeed
from ._orderbook import OrderBook, decode_rows
from ._stream_account import ACCOUNT_EVENTS, UNREADABLE, AccountHub, change_of
from ._stream_login import log_in
from ._stream_wire import (
    ERROR,
    REPLY,
    REQUEST,
    backoff_delay,
    decode_reply,
    is_write,
    ws_url_for,
)
from .errors import (
    ApiError,
    ConfigurationError,
    ConnectError,
    DecodeError,
    KiiexError,
    RequestTimeout,
    TransportError,
    UnknownOutcomeError,
)
from .models import (
    Level1,
)

if TYPE_CHECKING:
    from .auth import TwoFactorProvider
    from .client import KiiexClient

__all__ = [
    "AccountEvent",
    "AccountEvents",
    "CancelReject",
    "DepositTicketUpdate",
    "Level1Feed",
    "OrderBook",
    "OrderReject",
    "OrderStateUpdate",
    "OrderTradeUpdate",
    "PositionUpdate",
    "PublicTrade",
    "Resynced",
    "Stream",
    "TradeFeed",
    "WithdrawTicketUpdate",
    "backoff_delay",
    "ws_url_for",
]

log = logging.getLogger("kiiex_async.stream")

T = TypeVar("T")
_ALREADY_SUBSCRIBED: Final = 909


async def _cancel_all(tasks: Sequence[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until they end.

    ``asyncio.wait`` is used, not ``await task`` under ``suppress(CancelledError)``: that
    would also swallow a cancellation of the *caller* arriving meanwhile (a stream closed
    while it tears a dead socket down would then reconnect forever).
    """
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: a crash was logged where it happened


class _Lost(Exception):
    """The socket closed while a reply was awaited."""


class _BookSub:
    def __init__(self, instrument_id: int, depth: int, sub_depth: int) -> None:
        self.book = OrderBook(instrument_id, depth=depth)
        self.sub_depth = sub_depth
        self.ready = asyncio.Event()
        self.verifying: asyncio.Task[bool] | None = None
        self.mismatches = 0


class Stream:
    """One AlphaPoint WebSocket for a :class:`~kiiex_async.KiiexClient` (see the module doc).

    Use ``async with client.stream(...) as stream``; the first connection (and login, with
    credentials) happens on entry and its failure raises there.  ``ws_url`` defaults to
    ``<ws|wss>://<host>/WSGateway`` of the client's base URL.  A login that asks for 2FA
    takes a code from ``two_factor`` (``client.stream()`` passes
    ``credentials.two_factor``; it is asked again on every reconnect) or fails with
    :class:`~kiiex_async.errors.TwoFactorRequiredError`.
    """

    def __init__(
        self,
        client: KiiexClient,
        *,
        login: Callable[[], dict[str, Any]] | None = None,
        two_factor: TwoFactorProvider | None = None,
        ws_url: str | None = None,
        ping_interval: float = 10.0,
        ping_timeout: float = 5.0,
        call_timeout: float = 10.0,
        reconnect_base: float = 0.5,
        reconnect_cap: float = 30.0,
        verify_interval: float = 30.0,
        max_msg_size: int = 4 << 20,
        seed: int | None = None,
    ) -> None:
        if min(ping_interval, ping_timeout, call_timeout, reconnect_base, reconnect_cap) <= 0:
            raise ConfigurationError("stream intervals and timeouts must be > 0")
        self._client = client
        self._login = login
        self._two_factor = two_factor
        self.url = ws_url if ws_url is not None else ws_url_for(client.base_url)
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._call_timeout = call_timeout
        self._reconnect_base = reconnect_base
        self._reconnect_cap = reconnect_cap
        self._verify_interval = verify_interval
        self._max_msg_size = max_msg_size
        self._rand = random.Random(seed).random
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._connected = asyncio.Event()
        self._supervisor: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._seq = 0
        self._pending: dict[int, asyncio.Future[tuple[int, Any]]] = {}
        self._level1: dict[int, Level1Feed] = {}
        self._books: dict[int, _BookSub] = {}
        self._trades: dict[int, list[TradeFeed]] = {}
        self._account = AccountHub(client, self._spawn, self._backoff)
        self._closing = False
        #: Connections opened after the first one.
        self.reconnects = 0
        #: Frames that were not ``{m,i,n,o}`` JSON, or events that could not be read.
        self.protocol_errors = 0
        self._handlers: dict[str, Callable[[Any], None]] = {
            "Level1UpdateEvent": self._on_level1,
            "Level2UpdateEvent": self._on_level2,
            "TradeDataUpdateEvent": self._on_trades,
        }
        for name in ACCOUNT_EVENTS:
            self._handlers[name] = functools.partial(self._account.on_event, name)

    def __repr__(self) -> str:
        return f"<Stream {self.url!r} connected={self.connected}>"

    # ------------------------------------------------------------------ lifetime

    async def __aenter__(self) -> Stream:
        # The handshake is bounded like a call; an open socket has no total timeout.
        timeout = aiohttp.ClientTimeout(total=None, connect=self._call_timeout)
        self._session = aiohttp.ClientSession(timeout=timeout)
        first: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._supervisor = asyncio.create_task(self._run(first))
        try:
            await first
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the socket, stop every task and end every feed (idempotent)."""
        if self._closing:
            return
        self._closing = True
        try:
            await _cancel_all([t for t in (self._supervisor, *self._tasks) if t is not None])
            ws, self._ws = self._ws, None
            if ws is not None:
                await ws.close()
        finally:
            # Runs even if this close is itself cancelled: no feed is left waiting and
            # the session is closed (its close is quick and not awaited on the network).
            self._fail_pending()
            for feed in self._level1.values():
                feed._cell.close()
            for sub in self._books.values():
                sub.ready.set()
            for feeds in self._trades.values():
                for trade_feed in feeds:
                    trade_feed.close()
            self._account.close()
            if self._session is not None:
                await self._session.close()

    @property
    def connected(self) -> bool:
        """True while a socket is open and set up (logged in, subscribed)."""
        return self._connected.is_set()

    def _spawn(self, coro: Awaitable[T]) -> asyncio.Task[T]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ connection

    async def _run(self, first: asyncio.Future[None]) -> None:
        loop = asyncio.get_running_loop()
        attempt = 0
        while not self._closing:
            assert self._session is not None
            try:
                ws = await self._session.ws_connect(
                    self.url,
                    max_msg_size=self._max_msg_size,
                    autoping=True,
                    timeout=aiohttp.ClientWSTimeout(ws_close=self._ping_timeout),
                )
            except (aiohttp.ClientError, OSError) as exc:
                if not first.done():
                    first.set_exception(
                        ConnectError(f"stream: cannot connect to {self.url}: {exc}")
                    )
                    return
                attempt += 1
                await asyncio.sleep(self._backoff(attempt))
                continue
            opened = loop.time()
            self._ws = ws
            reader = asyncio.create_task(self._read(ws))
            pinger = asyncio.create_task(self._ping_loop(ws))
            # A failed first set-up fails the entry only once this socket is torn down:
            # the entry then closes the stream, and a close cancelled halfway would leave
            # aiohttp's connection open.
            refused: Exception | None = None
            try:
                try:
                    await self._setup(ws, reconnect=first.done())
                except Exception as exc:  # a 2FA code source's own error included
                    if not first.done():
                        if isinstance(exc, _Lost):
                            exc = ConnectError("stream: the connection closed during set-up")
                        refused = exc
                    else:
                        log.warning("stream set-up failed (%s); reconnecting", exc)
                        await ws.close()
                else:
                    if not first.done():
                        first.set_result(None)
                    if not reader.done():
                        self._connected.set()
                if refused is None:
                    await asyncio.wait([reader])
            finally:
                try:
                    await self._teardown(ws, reader, pinger)
                finally:
                    if refused is not None and not first.done():
                        first.set_exception(refused)
            if refused is not None:
                return
            if loop.time() - opened >= self._ping_interval:
                attempt = 0
            attempt += 1
            self.reconnects += 1
            log.info("stream lost its socket; reconnect attempt %d", attempt)
            await asyncio.sleep(self._backoff(attempt))

    def _backoff(self, attempt: int) -> float:
        return backoff_delay(
            attempt, base=self._reconnect_base, cap=self._reconnect_cap, rand=self._rand
        )

    async def _teardown(
        self, ws: aiohttp.ClientWebSocketResponse, *tasks: asyncio.Task[None]
    ) -> None:
        self._connected.clear()
        self._ws = None
        await _cancel_all(tasks)
        self._fail_pending()
        await ws.close()

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(_Lost())

    async def _setup(self, ws: aiohttp.ClientWebSocketResponse, *, reconnect: bool) -> None:
        """Log in, subscribe everything again, reconcile over REST after a reconnect."""
        if self._login is not None:
            send = functools.partial(self._traced_request, ws, raw=True)
            result = await log_in(send, self._login(), self._two_factor)
            if result.user is not None and result.user.account_id:
                self._account.account_id = result.user.account_id
        if self._account.subscribed:
            await self._subscribe_account(ws)
        # One refused subscription (a delisted instrument) must not fail the connection,
        # or the stream would reconnect forever: its feed gets the error instead.
        for iid in list(self._level1):
            await self._start(self._level1[iid]._cell, self._subscribe_level1, iid)
        for iid in list(self._trades):
            await self._subscribe_trades_once(iid)
        for iid in list(self._books):
            try:
                await self._subscribe_book(ws, iid)
            except ApiError as exc:
                log.warning("stream: order book %s refused on re-subscription (%s)", iid, exc)
        if reconnect:
            for iid in list(self._books):
                self._schedule_verify(iid)
            if self._account.subscribed:
                self._account.resync_all("reconnect")

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self._on_text(msg.data)
                elif msg.type is aiohttp.WSMsgType.BINARY:
                    self._on_text(msg.data.decode("utf-8", "replace"))
                else:
                    log.warning("stream socket error: %s", ws.exception())
                    return
        finally:
            # No reply can come any more: fail the waiting calls now (the set-up's login
            # among them), not after their timeouts, and let no call (a read asked again)
            # pick this socket before the supervisor has torn it down.
            self._connected.clear()
            self._fail_pending()

    async def _ping_loop(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        while True:
            await asyncio.sleep(self._ping_interval)
            try:
                await self._request(ws, "Ping", {}, wait=self._ping_timeout)
            except (KiiexError, _Lost) as exc:
                log.warning("stream Ping unanswered (%s): treating the socket as dead", exc)
                # The close handshake is bounded by ws_close=ping_timeout for a mute peer.
                await ws.close()
                return

    # ------------------------------------------------------------------ frames

    def _on_text(self, data: str) -> None:
        try:
            frame = json.loads(data)
            m, n = frame["m"], frame["n"]
        except (ValueError, TypeError, KeyError, RecursionError):
            self.protocol_errors += 1
            log.warning("stream: a frame that is not {m,i,n,o} JSON was ignored")
            return
        if m in (REPLY, ERROR):
            future = self._pending.get(frame.get("i"))
            if future is not None and not future.done():
                future.set_result((m, frame.get("o")))
            elif m == ERROR:
                self.protocol_errors += 1
                log.warning("stream: unsolicited error frame for %r", n)
            return
        o = frame.get("o")
        if n == "Level2UpdateEvent" and isinstance(o, str):
            try:
                rows = decode_rows(o)
            except DecodeError:
                rows = None
            self._on_level2(rows)
            return
        handler = self._handlers.get(n) if isinstance(n, str) else None
        if handler is None:
            return
        try:
            payload = _wire.loads(o) if isinstance(o, str) else o
        except DecodeError:
            self.protocol_errors += 1
            log.warning("stream: unreadable %s payload", n)
            if n in ACCOUNT_EVENTS:
                handler(UNREADABLE)
            elif n == "Level2UpdateEvent":
                for iid in list(self._books):
                    self._schedule_verify(iid)
            return
        handler(payload)

    async def _request(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        method: str,
        payload: Mapping[str, Any],
        *,
        wait: float | None = None,
        raw: bool = False,
    ) -> Any:
        write = is_write(method)
        self._seq += 2
        i = self._seq
        future: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self._pending[i] = future
        text = _wire.dumps(payload).decode()
        frame = json.dumps({"m": REQUEST, "i": i, "n": method, "o": text})
        try:
            try:
                await ws.send_str(frame)
            except (ConnectionError, RuntimeError, aiohttp.ClientError) as exc:
                raise ConnectError(f"{method}: the stream is not connected", method=method) from exc
            try:
                async with asyncio.timeout(wait or self._call_timeout):
                    m, o = await future
            except TimeoutError:
                if write:
                    raise UnknownOutcomeError(
                        f"{method}: sent on the stream, no reply in time; the outcome is "
                        "unknown: reconcile with the exchange before sending it again",
                        method=method,
                    ) from None
                raise RequestTimeout(f"{method}: no reply on the stream in time", method=method)
            except _Lost:
                if write:
                    raise UnknownOutcomeError(
                        f"{method}: the stream dropped before the reply; the outcome is "
                        "unknown: reconcile with the exchange before sending it again",
                        method=method,
                    ) from None
                raise
        finally:
            self._pending.pop(i, None)
        return decode_reply(method, m, o, payload, raw=raw)

    #: ``_request`` as one span of its own: what the stream sends for someone (its login,
    #: its subscriptions), not its liveness Ping nor the attempts of a ``call``.
    _traced_request = _otel.traced_ws_call(is_write, method_at=2)(_request)

    @_otel.traced_ws_call(is_write, method_at=1)
    async def call(
        self,
        method: str,
        payload: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - a per-call budget, like the HTTP calls
    ) -> Any:
        """Call any API method on the socket; returns what the HTTP call returns.

        Waits up to ``timeout`` (default ``call_timeout``) for a connection.  A read whose
        socket drops is asked once more after the reconnect; a write is never resent
        (:class:`~kiiex_async.errors.UnknownOutcomeError`).
        """
        if self._closing:
            raise ConfigurationError("the stream is closed")
        wait = timeout or self._call_timeout
        for attempt in (1, 2):
            try:
                async with asyncio.timeout(wait):
                    await self._connected.wait()
            except TimeoutError:
                raise ConnectError(f"{method}: the stream is not connected", method=method)
            ws = self._ws
            assert ws is not None
            try:
                return await self._request(ws, method, payload or {}, wait=wait)
            except _Lost:
                if attempt == 2:
                    raise TransportError(f"{method}: the stream dropped twice", method=method)
                _otel.record_attempt()
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ market data

    def _market(self, iid: int) -> dict[str, Any]:
        if isinstance(iid, bool) or not isinstance(iid, int) or iid <= 0:
            raise ConfigurationError(f"instrument_id must be a positive int, got {iid!r}")
        return {"OMSId": self._client.oms_id, "InstrumentId": iid}

    async def _subscribe(self, ws: aiohttp.ClientWebSocketResponse, name: str, p: Any) -> Any:
        try:
            return await self._traced_request(ws, name, p)
        except ApiError as exc:
            if exc.errorcode == _ALREADY_SUBSCRIBED:
                return None
            raise

    def level1(self, instrument_id: int) -> Level1Feed:
        """The pushed Level1 of ``instrument_id`` (subscribed once, shared by callers)."""
        feed = self._level1.get(instrument_id)
        if feed is None:
            self._market(instrument_id)
            feed = self._level1[instrument_id] = Level1Feed(instrument_id)
            if self._ws is not None and self.connected:
                self._spawn(self._start(feed._cell, self._subscribe_level1, instrument_id))
        return feed

    async def _start(self, cell: Latest[Any], subscribe: Any, iid: int) -> None:
        ws = self._ws
        if ws is None:
            return
        try:
            await subscribe(ws, iid)
        except ApiError as exc:
            cell.fail(exc)
        except (KiiexError, _Lost) as exc:
            log.info("stream: subscription of %s postponed to the next connection (%r)", iid, exc)

    async def _subscribe_level1(self, ws: aiohttp.ClientWebSocketResponse, iid: int) -> None:
        value = await self._subscribe(ws, "SubscribeLevel1", self._market(iid))
        if isinstance(value, Mapping):
            self._level1[iid]._cell.set(_wire.structure(value, Level1))

    def _on_level1(self, payload: Any) -> None:
        try:
            value = _wire.structure(payload, Level1)
        except (KiiexError, TypeError, ValueError):
            self.protocol_errors += 1
            return
        feed = self._level1.get(value.instrument_id)
        if feed is not None:
            feed._cell.set(value)

    def trades(self, instrument_id: int, *, maxsize: int = 10_000) -> TradeFeed:
        """A new queue of the public trades of ``instrument_id`` from now on."""
        self._market(instrument_id)
        feed = TradeFeed(instrument_id, maxsize)
        feeds = self._trades.setdefault(instrument_id, [])
        feeds.append(feed)
        if len(feeds) == 1 and self._ws is not None and self.connected:
            self._spawn(self._subscribe_trades_once(instrument_id))
        return feed

    async def _subscribe_trades_once(self, iid: int) -> None:
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(KiiexError, _Lost):
                await self._subscribe_trades(ws, iid)

    async def _subscribe_trades(self, ws: aiohttp.ClientWebSocketResponse, iid: int) -> None:
        await self._subscribe(ws, "SubscribeTrades", {**self._market(iid), "IncludeLastCount": 0})

    def _on_trades(self, payload: Any) -> None:
        if not isinstance(payload, list):
            self.protocol_errors += 1
            return
        for row in payload:
            try:
                trade = _wire.parse_public_trade(row)
            except DecodeError:
                self.protocol_errors += 1
                continue
            for feed in self._trades.get(trade.instrument_id, ()):
                feed.put(trade)

    async def order_book(self, instrument_id: int, *, depth: int = 20) -> OrderBook:
        """The self-healing book of ``instrument_id``, built from its first snapshot.

        Subscribed at ``max(2 * depth, depth + 10)`` levels so that levels a small window
        would never delete stay out of the ``depth`` shown.
        """
        if isinstance(depth, bool) or not isinstance(depth, int) or not 1 <= depth <= 500:
            raise ConfigurationError(f"depth must be an int in 1..500, got {depth!r}")
        sub = self._books.get(instrument_id)
        if sub is None:
            self._market(instrument_id)
            sub = self._books[instrument_id] = _BookSub(
                instrument_id, depth, max(2 * depth, depth + 10)
            )
            if self._verify_interval > 0:
                self._spawn(self._verify_loop(instrument_id))
            ws = self._ws
            if ws is not None and self.connected:
                try:
                    await self._subscribe_book(ws, instrument_id)
                except _Lost:
                    pass
                except BaseException:
                    del self._books[instrument_id]
                    raise
        await sub.ready.wait()
        return sub.book

    async def _subscribe_book(self, ws: aiohttp.ClientWebSocketResponse, iid: int) -> None:
        sub = self._books[iid]
        rows = await self._subscribe(
            ws, "SubscribeLevel2", {**self._market(iid), "Depth": sub.sub_depth}
        )
        if rows is not None:
            sub.book.reset(_wire.parse_l2_snapshot(rows, iid))
            sub.ready.set()

    def _on_level2(self, payload: Any) -> None:
        if payload is None:
            self.protocol_errors += 1
            log.warning("stream: unreadable Level2UpdateEvent payload")
            for key in list(self._books):
                self._schedule_verify(key)
            return
        if not isinstance(payload, list) or not payload:
            return
        first = payload[0]
        iid = first[7] if isinstance(first, list) and len(first) == 10 else None
        sub = self._books.get(iid) if isinstance(iid, int) else None
        if sub is None or not isinstance(iid, int):
            if iid is None:
                self.protocol_errors += 1
                for key in list(self._books):
                    self._schedule_verify(key)
            return
        if not sub.book.apply(payload) or sub.book.crossed:
            self._schedule_verify(iid)

    def _schedule_verify(self, iid: int) -> None:
        sub = self._books.get(iid)
        if sub is not None and (sub.verifying is None or sub.verifying.done()):
            sub.verifying = self._spawn(self._verify(iid))

    async def verify_book(self, instrument_id: int) -> bool:
        """Compare the book with ``GetL2Snapshot`` now; rebuild it on a mismatch.

        Returns True when it matched.  Runs on its own after a reconnect, on a crossed or
        unreadable update and every ``verify_interval`` seconds.
        """
        sub = self._books.get(instrument_id)
        if sub is None:
            raise ConfigurationError(f"no order book of instrument {instrument_id}")
        if sub.verifying is not None and not sub.verifying.done():
            await asyncio.shield(sub.verifying)
        return await self._verify(instrument_id)

    async def _verify(self, iid: int) -> bool:
        sub = self._books[iid]
        request = {**self._market(iid), "Depth": sub.sub_depth}
        try:
            snapshot = await self.call("GetL2Snapshot", request)
        except KiiexError as exc:
            log.warning("stream: cannot verify book %s (%s)", iid, exc)
            return False
        if sub.book.matches(snapshot) and not sub.book.dirty:
            return True
        sub.mismatches += 1
        log.warning("stream: order book %s drifted from GetL2Snapshot; rebuilt", iid)
        sub.book.reset(snapshot)
        sub.ready.set()
        return False

    async def _verify_loop(self, iid: int) -> None:
        while True:
            await asyncio.sleep(self._verify_interval)
            if self.connected:
                self._schedule_verify(iid)

    # ------------------------------------------------------------------ account

    async def _subscribe_account(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        payload = self._account.subscription(self._client.oms_id)
        await self._subscribe(ws, "SubscribeAccountEvents", payload)

    async def _ensure_account(self) -> None:
        if self._login is None:
            raise ConfigurationError("account events need credentials on the client")
        hub = self._account
        if hub.subscribed:
            return
        hub.subscribed = True
        ws = self._ws
        if ws is not None and self.connected:
            try:
                await self._subscribe_account(ws)
            except BaseException:
                hub.subscribed = False
                raise

    async def account_events(self, *, maxsize: int = 1000) -> AccountEvents:
        """A new bounded queue of this account's events (needs credentials)."""
        queue = self._account.new_queue(maxsize)
        await self._ensure_account()
        return queue

    async def wait_account_change(
        self,
        *,
        order_id: int | None = None,
        client_order_id: int | None = None,
        withdraw_ticket: int | None = None,
        deposit_ticket: int | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - False after it, rather than raising
    ) -> bool:
        """Wait until an event names this order or ticket, or the stream resynchronised
        (events may have been missed).  True when woken, False after ``timeout``.

        An event only says "look again": REST stays the source of truth.
        """
        await self._ensure_account()
        matches = change_of(
            order_id=order_id,
            client_order_id=client_order_id,
            withdraw_ticket=withdraw_ticket,
            deposit_ticket=deposit_ticket,
        )
        return await self._account.wait(matches, timeout)
