"""The simulator's WebSocket face: AlphaPoint's ``/WSGateway`` over the same exchange.

Frames are ``{"m": type, "i": seq, "n": name, "o": "<JSON text>"}`` with ``m`` 0 request,
1 reply, 2 subscribe, 3 event, 4 unsubscribe, 5 error.  Wire decisions:

* Every HTTP method is callable on the socket (``m`` 0 or 2), answered by the HTTP app's
  own dispatch (:meth:`SimApp.dispatch`), so both faces always agree.  ``AuthenticateUser``
  (signed key or password) and ``WebAuthenticateUser {SessionToken}`` authenticate the
  socket: later private calls run under that session.  A 2FA user's login only opens a
  pending login, held by the socket: ``Authenticate2FA {Code}`` (the pending token may
  be left out) completes it and authenticates the socket; until then private calls are
  refused (errorcode 20).  The ``guide`` dialect's login
  opens no session (its answer is ``{"authenticated":true,"user":{...}}``): there the
  socket itself is authenticated as the answer's user for as long as it stays open.
* ``SubscribeLevel1`` answers the Level1 object, then ``Level1UpdateEvent``;
  ``SubscribeLevel2 {Depth}`` answers the snapshot rows, then ``Level2UpdateEvent`` rows
  ``[MDUpdateId, Accounts, ActionDateTime, ActionType, LastTradePrice, Orders, Price,
  InstrumentId, Quantity, Side]`` (``MDUpdateId`` rises with gaps); ``SubscribeTrades
  {IncludeLastCount}`` answers the last public trades, then ``TradeDataUpdateEvent`` rows
  ``[TradeId, InstrumentId, Quantity, Price, Order1, Order2, TradeTime, Direction,
  TakerSide, BlockTrade, ClientOrderId]``; ``SubscribeAccountEvents`` answers
  ``{"Subscribe": true}``, then ``OrderStateEvent``, ``OrderTradeEvent``,
  ``AccountPositionEvent``, ``NewOrderRejectEvent``, ``CancelOrderRejectEvent``,
  ``DepositTicketUpdateEvent``, ``WithdrawTicketUpdateEvent``.  ``Unsubscribe*`` undo them.
* A repeated subscription answers errorcode 909 ``Already Subscribed``; an unknown method
  or a frame that is not ``{m,i,n,o}`` JSON is an ``m: 5`` error.  The server never sends
  a heartbeat; ``Ping`` answers ``{"msg":"PONG"}``.
* The exchange reports its changes through ``Exchange.observers``; changes are coalesced
  and published once per event-loop turn.  While sockets are open the gateway also moves
  the exchange to the current simulated time every ``tick_interval`` seconds, so drift
  and ticket progress reach subscribers that make no calls.
* Socket faults (``ws_*`` kinds of :mod:`._faults`) act on frames by name; of the HTTP
  kinds only ``latency`` applies to a call made on the socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Container, Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from aiohttp import WSMsgType, web
from multidict import CIMultiDict

from . import _render as render
from ._app import _METHODS, SimApp
from ._config import DemoUser
from ._faults import Fault
from ._json import dumps_text, loads
from ._records import DepositTicket, Market, Order, Trade, WithdrawTicket, ms

__all__ = ["Gateway"]

log = logging.getLogger("kiiex_async.sim")

REQUEST, REPLY, SUBSCRIBE, EVENT, UNSUBSCRIBE, ERROR = range(6)
_MAX_FRAME = 1 << 20
_ALREADY = render.generic(False, "Already Subscribed", 909, None)
_LevelKey = tuple[int, Decimal]
_Level = tuple[Decimal, int, int, int]  # quantity, orders, accounts, action time


@dataclass(slots=True)
class _Window:
    """What one Level2 subscriber was told about one instrument."""

    depth: int
    phantom: bool
    levels: dict[_LevelKey, _Level] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class _Connection:
    ws: web.WebSocketResponse
    request: web.Request
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    token: str | None = None
    #: The pending token of a 2FA login awaiting ``Authenticate2FA`` on this socket.
    pending_2fa: str | None = None
    #: The user of a login that opened no session (guide dialect): the socket is the session.
    user: DemoUser | None = None
    account_id: int | None = None
    level1: set[int] = field(default_factory=set)
    level2: dict[int, _Window] = field(default_factory=dict)
    trades: set[int] = field(default_factory=set)
    accounts: set[int] = field(default_factory=set)
    silent: bool = False
    held: list[str] = field(default_factory=list)

    def put(self, text: str) -> None:
        if self.silent:
            return
        self.queue.put_nowait(text)
        if self.held:
            for late in self.held:
                self.queue.put_nowait(late)
            self.held.clear()


#: The payload a ``ws_garble`` fault sends instead of the real one: cut-off JSON.
_GARBLED = '[[1,1,"'


def _frame(m: int, i: Any, n: str, o: str) -> str:
    return dumps_text({"m": m, "i": i, "n": n, "o": o})


def _levels(market: Market, depth: int) -> dict[_LevelKey, _Level]:
    """The top ``depth`` aggregated levels of each side (``depth`` 0: all of them)."""
    out: dict[_LevelKey, _Level] = {}
    for row in render.l2_snapshot(market, depth if depth > 0 else 1 << 30):
        out[(row[9], row[6])] = (row[8], row[5], row[1], row[2])
    return out


class Gateway:
    """``/WSGateway`` for one :class:`SimApp` (mounted by the simulator's server)."""

    def __init__(self, app: SimApp, *, tick_interval: float = 0.25) -> None:
        self._app = app
        self._ex = app.exchange
        self._tick_interval = tick_interval
        self._conns: set[_Connection] = set()
        self._books: set[int] = set()
        self._orders: dict[int, Order] = {}
        self._trades: list[Trade] = []
        self._tickets: dict[tuple[str, int], DepositTicket | WithdrawTicket] = {}
        self._cancel_rejects: list[dict[str, Any]] = []
        self._flush_scheduled = False
        self._ticker: asyncio.Task[None] | None = None
        self._ex.observers.append(self._observe)

    # ------------------------------------------------------------------ aiohttp

    def mount(self, app: web.Application) -> None:
        """Route ``/WSGateway`` (any trailing slash) and close sockets on shutdown."""
        app.router.add_get("/WSGateway", self._handle)
        app.router.add_get("/WSGateway/", self._handle)
        app.on_shutdown.append(self._shutdown)

    @property
    def connections(self) -> int:
        """How many sockets are open."""
        return len(self._conns)

    def subscribers(self, feed: str, instrument_id: int = 0) -> int:
        """How many sockets subscribe to ``feed`` (``"level1"``, ``"level2"``, ``"trades"``
        of ``instrument_id``, or ``"account"``): tests wait on it instead of sleeping."""
        if feed == "account":
            return sum(1 for c in self._conns if c.accounts)
        attribute = {"level1": "level1", "level2": "level2", "trades": "trades"}[feed]
        return sum(1 for c in self._conns if instrument_id in getattr(c, attribute))

    async def _shutdown(self, app: web.Application) -> None:
        for conn in list(self._conns):
            await conn.ws.close(code=1001, message=b"server shutdown")

    async def drop_all(self) -> int:
        """Close every socket now (as a restarting server would); returns how many."""
        conns = list(self._conns)
        for conn in conns:
            await conn.ws.close(code=1012, message=b"service restart")
        return len(conns)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=_MAX_FRAME, autoping=True)
        await ws.prepare(request)
        conn = _Connection(ws, request)
        self._conns.add(conn)
        if self._ticker is None and self._tick_interval > 0:
            self._ticker = asyncio.create_task(self._tick_loop())
        writer = asyncio.create_task(self._write_loop(conn))
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    await self._on_frame(conn, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    await self._on_frame(conn, msg.data.decode("utf-8", "replace"))
                else:
                    break
        finally:
            self._conns.discard(conn)
            conn.queue.put_nowait(None)
            # asyncio.wait, not `await task` under suppress(CancelledError): that would
            # swallow a cancellation of this handler arriving meanwhile (server shutdown).
            writer.cancel()
            await asyncio.wait([writer])
            ticker = self._ticker
            if not self._conns and ticker is not None:
                self._ticker = None
                ticker.cancel()
                await asyncio.wait([ticker])
                if not ticker.cancelled() and ticker.exception() is not None:
                    log.error("the gateway's clock task failed", exc_info=ticker.exception())
        return ws

    async def _write_loop(self, conn: _Connection) -> None:
        while True:
            text = await conn.queue.get()
            if text is None or conn.ws.closed:
                return
            try:
                await conn.ws.send_str(text)
            except (ConnectionError, RuntimeError):
                return

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self._tick_interval)
            self._app.advance(0.0)

    # ------------------------------------------------------------------ sending

    def _send(self, conn: _Connection, name: str, text: str) -> None:
        """Queue one frame through the socket faults armed for ``name``."""
        faults = self._app.faults
        fired: list[Fault] = faults.socket_plan(name) if faults else []
        if not fired:
            conn.put(text)
            return
        kinds = {f.kind for f in fired}
        if "ws_silent" in kinds:
            conn.silent = True
            return
        if "ws_drop" in kinds:
            conn.silent = True
            transport = conn.request.transport
            if transport is not None:
                transport.close()  # abrupt, like a dead link: no close frame
            return
        if "ws_skip" in kinds:
            return
        if "ws_garble" in kinds:
            frame = loads(text)
            text = _frame(frame["m"], frame["i"], frame["n"], _GARBLED)
        if "ws_delay" in kinds:
            delay = max(f.delay for f in fired if f.kind == "ws_delay")
            asyncio.get_running_loop().call_later(delay, conn.put, text)
            return
        if "ws_reorder" in kinds:
            conn.held.append(text)
            return
        conn.put(text)
        if "ws_duplicate" in kinds:
            conn.put(text)

    def _reply(self, conn: _Connection, m: int, i: Any, name: str, payload: Any) -> None:
        text = payload if isinstance(payload, str) else dumps_text(payload)
        self._send(conn, name, _frame(m, i, name, text))

    def _error(self, conn: _Connection, i: Any, name: str, msg: str, code: int) -> None:
        self._reply(conn, ERROR, i, name, render.generic(False, msg, code, None))

    # ------------------------------------------------------------------ requests

    async def _on_frame(self, conn: _Connection, data: str) -> None:
        if conn.silent:
            return
        try:
            frame = loads(data)
        except (ValueError, RecursionError):
            self._error(conn, 0, "Error", "Invalid Request", 100)
            return
        if not isinstance(frame, dict) or not isinstance(frame.get("n"), str):
            self._error(conn, 0, "Error", "Invalid Request", 100)
            return
        i = frame.get("i", 0)
        if isinstance(i, bool) or not isinstance(i, int):
            i = 0
        name: str = frame["n"]
        raw = frame.get("o", "")
        if isinstance(raw, dict):
            body = dumps_text(raw)
        elif isinstance(raw, str):
            body = raw
        else:
            self._error(conn, i, name, "Invalid Request", 100)
            return
        try:
            params = loads(body) if body.strip() else {}
        except (ValueError, RecursionError):
            self._error(conn, i, name, "Invalid Request", 100)
            return
        if not isinstance(params, dict):
            self._error(conn, i, name, "Invalid Request", 100)
            return
        await self._request(conn, i, name, body, params)

    async def _request(
        self, conn: _Connection, i: int, name: str, body: str, params: dict[str, Any]
    ) -> None:
        key = name.lower()
        special = _SUBSCRIPTIONS.get(key)
        if special is not None:
            handler, canonical = special
            self._app.exchange.tick(self._app.clock.now())
            handler(self, conn, i, canonical, {k.lower(): v for k, v in params.items()})
            return
        method = _METHODS.get("authenticateuser" if key == "webauthenticateuser" else key)
        if method is None:
            self._error(conn, i, name, "Resource Not Found", 104)
            return
        faults = self._app.faults
        plan = faults.plan(method.name) if faults else None
        if plan is not None and plan.delay:
            await asyncio.sleep(plan.delay)
        status, payload = self._app.dispatch(
            method, "POST", {}, body.encode(), self._as_http(conn), user=conn.user
        )
        if method.name in ("AuthenticateUser", "Authenticate2FA") and status == 200:
            self._adopt(conn, payload)
        if method.name == "LogOut":
            conn.token = conn.user = conn.account_id = None
        if status != 200:
            self._reply(conn, ERROR, i, name, payload.decode())
            return
        self._reply(conn, REPLY, i, name, payload.decode())

    def _as_http(self, conn: _Connection) -> web.Request:
        """The upgrade request, carrying this socket's session like an HTTP call would."""
        headers: CIMultiDict[str] = CIMultiDict()
        if conn.token:
            headers["aptoken"] = conn.token
        if conn.pending_2fa:
            headers["Pending2FaToken"] = conn.pending_2fa
        return conn.request.clone(headers=headers)

    def _adopt(self, conn: _Connection, payload: bytes) -> None:
        """Authenticate the socket from a successful login answer: its session token, or
        (guide dialect, no token) the user it names.  A 2FA challenge names neither: the
        socket keeps its pending token for ``Authenticate2FA``."""
        answer = loads(payload)
        if not isinstance(answer, dict):
            return
        keys = {k.lower(): v for k, v in answer.items()}
        pending = keys.get("pending2fatoken")
        if isinstance(pending, str) and pending:
            conn.pending_2fa = pending
            conn.token = conn.user = conn.account_id = None
            return
        token = keys.get("sessiontoken")
        if isinstance(token, str) and token:
            session = self._app.sessions.get(token, self._app.clock.now())
            user = self._ex.users.get(session.user_id) if session else None
            if user is not None:
                conn.token, conn.user, conn.account_id = token, None, user.account_id
                conn.pending_2fa = None
            return
        found = keys.get("user")
        if keys.get("authenticated") is not True or not isinstance(found, dict):
            return
        user_id = {k.lower(): v for k, v in found.items()}.get("userid")
        user = self._ex.users.get(user_id) if isinstance(user_id, int) else None
        if user is not None:
            conn.token, conn.user, conn.account_id = None, user, user.account_id

    def _instrument(self, conn: _Connection, i: int, name: str, p: dict[str, Any]) -> int | None:
        value = p.get("instrumentid")
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value not in self._ex.markets:
            self._error(conn, i, name, "Invalid InstrumentId", 100)
            return None
        return value

    def _count(self, p: dict[str, Any], key: str, default: int) -> int:
        value = p.get(key)
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return default
        return min(value, 10_000)

    def _new_feed(
        self, conn: _Connection, i: int, name: str, p: dict[str, Any], feeds: Container[int]
    ) -> int | None:
        """The instrument of a subscription, or ``None`` once an error was answered."""
        iid = self._instrument(conn, i, name, p)
        if iid is not None and iid in feeds:
            self._reply(conn, REPLY, i, name, _ALREADY)
            return None
        return iid

    def _sub_level1(self, conn: _Connection, i: int, name: str, p: dict[str, Any]) -> None:
        iid = self._new_feed(conn, i, name, p, conn.level1)
        if iid is None:
            return
        conn.level1.add(iid)
        market = self._ex.markets[iid]
        self._reply(conn, REPLY, i, name, render.level1(market, ms(self._app.clock.now())))

    def _sub_level2(self, conn: _Connection, i: int, name: str, p: dict[str, Any]) -> None:
        iid = self._new_feed(conn, i, name, p, conn.level2)
        if iid is None:
            return
        depth = self._count(p, "depth", 100) or 100
        faults = self._app.faults
        phantom = bool(faults) and any(
            f.kind == "ws_phantom" for f in faults.socket_plan("SubscribeLevel2")
        )
        market = self._ex.markets[iid]
        window = _Window(depth, phantom, _levels(market, depth))
        conn.level2[iid] = window
        self._reply(conn, REPLY, i, name, render.l2_snapshot(market, depth))

    def _sub_trades(self, conn: _Connection, i: int, name: str, p: dict[str, Any]) -> None:
        iid = self._new_feed(conn, i, name, p, conn.trades)
        if iid is None:
            return
        conn.trades.add(iid)
        count = self._count(p, "includelastcount", 100)
        rows: list[list[Any]] = []
        for t in reversed(self._ex.trades):
            if len(rows) >= count:
                break
            if t.instrument_id == iid and t.maker_taker == "Taker":
                rows.append(_trade_row(t))
        rows.reverse()
        self._reply(conn, REPLY, i, name, rows)

    def _sub_account(self, conn: _Connection, i: int, name: str, p: dict[str, Any]) -> None:
        if conn.account_id is None:
            self._reply(conn, REPLY, i, name, render.generic(False, "Not Authorized", 20, None))
            return
        wanted = p.get("accountid") or conn.account_id
        if wanted != conn.account_id:
            self._reply(conn, REPLY, i, name, render.generic(False, "Not Authorized", 20, None))
            return
        if conn.account_id in conn.accounts:
            self._reply(conn, REPLY, i, name, _ALREADY)
            return
        conn.accounts.add(conn.account_id)
        self._reply(conn, REPLY, i, name, {"Subscribe": True})

    def _unsubscribe(self, conn: _Connection, i: int, name: str, p: dict[str, Any]) -> None:
        what = name.removeprefix("Unsubscribe")
        if what == "AccountEvents":
            conn.accounts.clear()
        else:
            iid = self._instrument(conn, i, name, p)
            if iid is None:
                return
            if what == "Level1":
                conn.level1.discard(iid)
            elif what == "Level2":
                conn.level2.pop(iid, None)
            else:
                conn.trades.discard(iid)
        self._reply(conn, REPLY, i, name, {"result": True})

    # ------------------------------------------------------------------ events

    def _observe(self, kind: str, subject: Any) -> None:
        if not self._conns:
            return
        if kind == "book":
            self._books.add(subject.spec.instrument_id)
        elif kind == "order":
            self._orders[subject.order_id] = subject
        elif kind == "trade":
            self._trades.append(subject)
        elif kind == "ticket":
            tag = "d" if isinstance(subject, DepositTicket) else "w"
            self._tickets[(tag, subject.ticket_number)] = subject
        elif kind == "cancel_reject":
            self._cancel_rejects.append(subject)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        """Publish everything that changed since the last turn of the event loop."""
        self._flush_scheduled = False
        books, self._books = self._books, set()
        orders, self._orders = self._orders, {}
        trades, self._trades = self._trades, []
        tickets, self._tickets = self._tickets, {}
        rejects, self._cancel_rejects = self._cancel_rejects, []
        now = self._app.clock.now()
        for iid in sorted(books):
            self._publish_market(self._ex.markets[iid], now)
        if trades:
            self._publish_trades(trades)
        if orders or trades or tickets or rejects:
            self._publish_account(orders.values(), trades, tickets.values(), rejects, now)

    def _publish_market(self, market: Market, now: float) -> None:
        iid = market.spec.instrument_id
        level1: str | None = None
        full: dict[_LevelKey, _Level] | None = None
        by_depth: dict[int, dict[_LevelKey, _Level]] = {}
        for conn in list(self._conns):
            if iid in conn.level1:
                if level1 is None:
                    level1 = dumps_text(render.level1(market, ms(now)))
                self._send(conn, "Level1UpdateEvent", _frame(EVENT, 0, "Level1UpdateEvent", level1))
            window = conn.level2.get(iid)
            if window is None:
                continue
            current = by_depth.get(window.depth)
            if current is None:
                current = by_depth[window.depth] = _levels(market, window.depth)
            if window.phantom and full is None:
                full = _levels(market, 0)
            rows = self._diff(market, window, current, full)
            if rows:
                text = _frame(EVENT, 0, "Level2UpdateEvent", dumps_text(rows))
                self._send(conn, "Level2UpdateEvent", text)

    @staticmethod
    def _diff(
        market: Market,
        window: _Window,
        current: dict[_LevelKey, _Level],
        full: dict[_LevelKey, _Level] | None,
    ) -> list[list[Any]]:
        spec, last, md = market.spec, market.last_price, market.version
        rows: list[list[Any]] = []
        old = window.levels
        for key, level in current.items():
            seen = old.get(key)
            if seen == level:
                continue
            action = 0 if seen is None else 1
            qty, orders, accounts, stamp = level
            rows.append([md, accounts, stamp, action, last, orders, key[1], spec.instrument_id,
                         qty, key[0]])  # fmt: skip
        for key, seen in list(old.items()):
            if key in current:
                continue
            if full is not None and key in full:
                continue  # phantom: it left the window but not the book; never deleted
            rows.append([md, 0, seen[3], 2, last, 0, key[1], spec.instrument_id, 0, key[0]])
            del old[key]
        old.update(current)
        return rows

    def _publish_trades(self, trades: list[Trade]) -> None:
        public: dict[int, list[list[Any]]] = {}
        for t in trades:
            if t.maker_taker == "Taker":
                public.setdefault(t.instrument_id, []).append(_trade_row(t))
        for iid, rows in public.items():
            text = _frame(EVENT, 0, "TradeDataUpdateEvent", dumps_text(rows))
            for conn in list(self._conns):
                if iid in conn.trades:
                    self._send(conn, "TradeDataUpdateEvent", text)

    def _publish_account(
        self,
        orders: Iterable[Order],
        trades: list[Trade],
        tickets: Iterable[DepositTicket | WithdrawTicket],
        rejects: list[dict[str, Any]],
        now: float,
    ) -> None:
        listeners = [c for c in self._conns if c.accounts]
        if not listeners:
            return
        ex = self._ex
        frames: dict[int, list[tuple[str, str]]] = {}
        touched: set[tuple[int, int]] = set()

        def add(account: int, name: str, payload: Any) -> None:
            frames.setdefault(account, []).append(
                (name, _frame(EVENT, 0, name, dumps_text(payload)))
            )

        for o in orders:
            spec = ex.markets[o.instrument_id].spec
            touched.update({(o.account_id, spec.base), (o.account_id, spec.quote)})
            if o.state == "Rejected" and o.change_reason == "NewInputRejected":
                add(o.account_id, "NewOrderRejectEvent", _order_reject(o))
            add(o.account_id, "OrderStateEvent", render.order(o, ex))
        for t in trades:
            if ex.user_for_account(t.account_id) is not None:
                add(t.account_id, "OrderTradeEvent", render.trade(t, ex))
        for ticket in tickets:
            touched.add((ticket.account_id, ticket.product_id))
            if isinstance(ticket, DepositTicket):
                add(
                    ticket.account_id, "DepositTicketUpdateEvent", render.deposit_ticket(ticket, ex)
                )
            else:
                add(
                    ticket.account_id,
                    "WithdrawTicketUpdateEvent",
                    render.withdraw_ticket(ticket, ex),
                )
        for reject in rejects:
            for account in reject["accounts"]:
                add(account, "CancelOrderRejectEvent", _cancel_reject(account, reject))
        for account, product in sorted(touched):
            if ex.user_for_account(account) is not None:
                position = render.position(ex, account, ex.products[product], now)
                add(account, "AccountPositionEvent", position)
        for conn in listeners:
            for account in conn.accounts:
                for name, text in frames.get(account, ()):
                    self._send(conn, name, text)


def _trade_row(t: Trade) -> list[Any]:
    direction = {"NoChange": 0, "UpTick": 1, "DownTick": 2}.get(t.direction, 0)
    return [
        t.trade_id,
        t.instrument_id,
        t.quantity,
        t.price,
        t.order_id,
        t.counter_party,
        t.trade_time_ms,
        direction,
        t.side,
        0,
        t.client_order_id,
    ]


def _order_reject(o: Order) -> dict[str, Any]:
    return {
        "OMSId": 1,
        "AccountId": o.account_id,
        "ClientOrderId": o.client_order_id,
        "OrderId": o.order_id,
        "InstrumentId": o.instrument_id,
        "Status": "Rejected",
        "RejectReason": o.reject_reason,
    }


def _cancel_reject(account: int, reject: dict[str, Any]) -> dict[str, Any]:
    return {
        "OMSId": 1,
        "AccountId": account,
        "OrderId": reject["order_id"],
        "RejectReason": "Order not found or not working",
    }


_Handler = Any
_SUBSCRIPTIONS: dict[str, tuple[_Handler, str]] = {
    name.lower(): (handler, name)
    for name, handler in (
        ("SubscribeLevel1", Gateway._sub_level1),
        ("SubscribeLevel2", Gateway._sub_level2),
        ("SubscribeTrades", Gateway._sub_trades),
        ("SubscribeAccountEvents", Gateway._sub_account),
        ("UnsubscribeLevel1", Gateway._unsubscribe),
        ("UnsubscribeLevel2", Gateway._unsubscribe),
        ("UnsubscribeTrades", Gateway._unsubscribe),
        ("UnsubscribeAccountEvents", Gateway._unsubscribe),
    )
}
