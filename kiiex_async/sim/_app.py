"""The simulator's HTTP face: an aiohttp.web application speaking AlphaPoint's ``/ap/`` API.

Wire decisions (where AlphaPoint's documents leave a choice):

* ``/ap/<Method>`` and ``/AP/<Method>``; the prefix and the method name are matched
  case-insensitively.  Every method accepts POST with a JSON body and GET with a query
  string (a GET may also carry a JSON body; body keys win).  Request keys are matched
  case-insensitively; numbers may be JSON numbers or numeric strings.
* Answers are the bare payload with HTTP 200, including AlphaPoint's generic error object
  ``{"result":false,"errormsg":...,"errorcode":N,"detail":...}`` and ``"Not Authorized"``
  (errorcode 20) for a private call without a valid session or signature.  Exceptions:
  an unknown method is HTTP 404 with errorcode 104; a body that is not JSON is HTTP 400
  with errorcode 100; an internal bug is HTTP 500 with errorcode 102.
* A failed ``AuthenticateUser`` is HTTP 200
  ``{"Authenticated":false,"Locked":false,"errormsg":"Invalid username or password"}``.
* Private calls authenticate with the ``aptoken`` header (any casing) or with the four
  signed headers ``APIKey``/``Signature``/``UserId``/``Nonce`` on the request itself.
* ``SimConfig.dialect``: in ``"guide"`` the nine calls of KIIEX's quick-start guide answer
  in the guide's shapes (:mod:`._guide`; its login opens no session, so private calls
  carry the signed headers); everything else answers as in ``"apex"``.
* Admin routes live outside ``/ap/``: ``GET /_sim/ledger``, ``GET|POST|DELETE
  /_sim/faults``, ``POST /_sim/advance``, ``POST /_sim/expire_sessions``.  They are not
  authenticated; bind the simulator to a loopback address.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from aiohttp import web

from . import _guide as guide
from . import _render as render
from ._clock import SimClock
from ._config import DemoUser, SimConfig
from ._exchange import Exchange
from ._faults import Fault, FaultInjector, parse_fault_spec
from ._history import candles, date_ms, transaction_row
from ._json import dumps, dumps_text, loads
from ._params import BadRequest, Params
from ._records import ZERO, ExchangeError, InsufficientBalance, Order, OrderRequest, ms
from ._sessions import SessionStore

__all__ = ["SimApp"]

log = logging.getLogger("kiiex_async.sim")

_JSON = "application/json"
_EPOCH_TICKS = 621_355_968_000_000_000
_NOT_AUTHORIZED = dumps(render.generic(False, "Not Authorized", 20, None))
_AUTH_FAILED = {"Authenticated": False, "Locked": False, "errormsg": "Invalid username or password"}
_SIGNED_HEADERS = ("APIKey", "Signature", "UserId", "Nonce")


_SIDE_NAMES = {"buy": 0, "sell": 1, "short": 2, "unknown": 3}
_TYPE_NAMES = {
    "unknown": 0,
    "market": 1,
    "limit": 2,
    "stopmarket": 3,
    "stoplimit": 4,
    "trailingstopmarket": 5,
    "trailingstoplimit": 6,
    "blocktrade": 7,
}
_TIF_NAMES = {"unknown": 0, "gtc": 1, "opg": 2, "ioc": 3, "fok": 4, "gtx": 5, "gtd": 6}


@dataclass(slots=True)
class Call:
    """One request as the handlers see it."""

    method: str
    params: Params
    headers: Mapping[str, str]
    now: float
    user: DemoUser | None = None
    token: str | None = None


Reply = tuple[int, bytes]
Handler = Callable[["SimApp", Call], Reply]


@dataclass(frozen=True, slots=True)
class _Method:
    name: str
    handler: Handler
    private: bool


def _ok(payload: Any) -> Reply:
    return 200, dumps(payload)


def _tsms(value: int) -> int:
    """Accept POSIX seconds, POSIX milliseconds or .NET ticks; return milliseconds."""
    if value > 10**16:
        return (value - _EPOCH_TICKS) // 10_000
    if value < 10**11:
        return value * 1000
    return value


def _window(p: Params) -> tuple[int | None, int | None]:
    start = p.integer("StartTimestamp", 0)
    end = p.integer("EndTimestamp", 0)
    return (_tsms(start) if start else None, _tsms(end) if end else None)


def _pair_filter(ex: Exchange, ids: list[int], base: str, quote: str) -> list[int]:
    """The instruments among ``ids`` whose base / quote product symbols match (blank = any)."""
    found = []
    for iid in ids:
        spec = ex.market(iid).spec
        if (not base or ex.products[spec.base].symbol.upper() == base) and (
            not quote or ex.products[spec.quote].symbol.upper() == quote
        ):
            found.append(iid)
    return found


def _page(items: list[Any], p: Params, *, limit_key: str = "Depth") -> list[Any]:
    start = max(p.integer("StartIndex", 0), 0)
    depth = p.integer(limit_key, 0)
    return items[start : start + depth] if depth > 0 else items[start:]


class SimApp:
    """Request handling around one :class:`Exchange` (used by ``Simulator`` and ``serve``)."""

    def __init__(
        self,
        config: SimConfig,
        exchange: Exchange,
        clock: SimClock,
        faults: FaultInjector,
        *,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.config = config
        self.exchange = exchange
        self.clock = clock
        self.faults = faults
        self.sessions = SessionStore(config.session_ttl)
        #: True when the calls of KIIEX's quick-start guide answer in the guide's shapes.
        self.guide = config.dialect == "guide"
        self._on_change = on_change
        self._level1_cache: dict[int, tuple[int, bytes]] = {}

    # ------------------------------------------------------------------ aiohttp

    def make_app(self) -> web.Application:
        """The aiohttp application (admin routes first, then ``/{ap}/{Method}``)."""
        app = web.Application(client_max_size=1 << 20)
        app.router.add_get("/_sim/ledger", self._admin_ledger)
        app.router.add_get("/_sim/faults", self._admin_faults_get)
        app.router.add_post("/_sim/faults", self._admin_faults_post)
        app.router.add_delete("/_sim/faults", self._admin_faults_delete)
        app.router.add_post("/_sim/advance", self._admin_advance)
        app.router.add_post("/_sim/expire_sessions", self._admin_expire)
        app.router.add_route("*", "/{prefix}/{method}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["prefix"].lower() != "ap":
            raise web.HTTPNotFound()
        name = request.match_info["method"]
        method = _METHODS.get(name.lower())
        body = await request.read() if request.body_exists else b""
        plan = self.faults.plan(method.name if method else name) if self.faults else None
        if plan is not None:
            if plan.delay:
                await asyncio.sleep(plan.delay)
            if plan.expire_sessions:
                self.sessions.expire_all()
            if plan.before is not None:
                return self._fault_response(request, plan.before, b"")
        if method is None:
            status, payload = (
                404,
                dumps(render.generic(False, "Resource Not Found", 104, f"Unknown method: {name}")),
            )
        else:
            status, payload = self.dispatch(method, request.method, request.query, body, request)
        if plan is not None and plan.after is not None:
            return self._fault_response(request, plan.after, payload)
        return web.Response(body=payload, status=status, content_type=_JSON)

    def _fault_response(self, request: web.Request, fault: Fault, payload: bytes) -> web.Response:
        kind = fault.kind
        if kind in ("drop_before", "drop_after"):
            if request.transport is not None:
                request.transport.close()
            return web.Response(status=204)
        if kind == "rate_limit":
            return web.Response(
                status=429,
                text="429 Too Many Requests",
                headers={"Retry-After": f"{fault.retry_after:g}"},
            )
        if kind in ("error", "error_after"):
            body = render.generic(False, "Server Error", 102, "Simulated fault")
            return web.Response(body=dumps(body), status=fault.status, content_type=_JSON)
        if kind == "not_authorized":
            return web.Response(body=_NOT_AUTHORIZED, content_type=_JSON)
        if kind in ("in_process", "in_process_after"):
            body = render.generic(False, "Operation In Process", 107, None)
            return web.Response(body=dumps(body), content_type=_JSON)
        if kind == "malformed":
            html = "<html><head><title>502 Bad Gateway</title></head><body>bad gateway</body>"
            return web.Response(text=html, status=200, content_type="text/html")
        return web.Response(body=payload[: max(1, len(payload) // 2)], content_type=_JSON)

    # ------------------------------------------------------------------ dispatch

    def dispatch(
        self,
        method: _Method,
        http_method: str,
        query: Mapping[str, str],
        body: bytes,
        request: web.Request,
        *,
        user: DemoUser | None = None,
    ) -> Reply:
        """Parse, authorise and run one call; persist if it changed the exchange.

        ``user``: the caller was already authenticated without a session (a WebSocket
        logged in with the guide dialect's session-less login); private calls run as them.
        """
        before = self.exchange.version
        try:
            raw: dict[str, Any] = dict(query)
            if body.strip():
                try:
                    decoded = loads(body)
                except ValueError:
                    return 400, dumps(
                        render.generic(False, "Invalid Request", 100, "Malformed JSON body")
                    )
                if isinstance(decoded, dict):
                    raw.update(decoded)
                elif decoded is not None:
                    return 200, dumps(
                        render.generic(False, "Invalid Request", 100, "Expected a JSON object")
                    )
            now = self.clock.now()
            self.exchange.tick(now)
            call = Call(method.name, Params(raw), request.headers, now)
            if method.private:
                if user is not None:
                    call.user = user
                else:
                    call.user, call.token = self._authorize(request.headers, now)
                if call.user is None:
                    return 200, _NOT_AUTHORIZED
            return method.handler(self, call)
        except InsufficientBalance as exc:
            return _ok(render.generic(True, exc.errormsg, exc.errorcode, exc.detail))
        except ExchangeError as exc:
            return _ok(render.generic(False, exc.errormsg, exc.errorcode, exc.detail))
        except Exception:
            log.exception("simulator bug while handling %s", method.name)
            return 500, dumps(render.generic(False, "Server Error", 102, None))
        finally:
            if self.exchange.version != before and self._on_change is not None:
                self._on_change()

    def _authorize(
        self, headers: Mapping[str, str], now: float
    ) -> tuple[DemoUser | None, str | None]:
        token = headers.get("aptoken")
        if token:
            session = self.sessions.get(token, now)
            if session is not None:
                return self.exchange.users.get(session.user_id), session.token
        user = self._signed_headers_user(headers)
        return user, None

    def _signed_headers_user(self, headers: Mapping[str, str]) -> DemoUser | None:
        if not all(headers.get(h) for h in _SIGNED_HEADERS):
            return None
        return self.exchange.check_signature(
            api_key=headers["APIKey"],
            user_id=headers["UserId"],
            nonce=headers["Nonce"],
            signature=headers["Signature"],
        )

    def _account(self, call: Call) -> int:
        user = call.user
        if user is None:  # pragma: no cover - private methods always have a user
            raise ExchangeError(20, "Not Authorized")
        account_id = call.params.integer("AccountId", 0)
        if account_id and account_id != user.account_id:
            raise ExchangeError(20, "Not Authorized", f"Account {account_id} is not yours")
        return user.account_id

    # ------------------------------------------------------------------ public methods

    def ping(self, call: Call) -> Reply:
        """``{"msg":"PONG"}``."""
        return _ok({"msg": "PONG"})

    def health_check(self, call: Call) -> Reply:
        """Generic success (the real shape is undocumented)."""
        return _ok(render.generic(True, None, 0, None))

    def get_products(self, call: Call) -> Reply:
        """Every product."""
        return _ok([render.product(p) for p in self.exchange.products.values()])

    def get_product(self, call: Call) -> Reply:
        """One product by ``ProductId``."""
        return _ok(render.product(self.exchange.product(call.params.integer("ProductId"))))

    def get_instruments(self, call: Call) -> Reply:
        """Every instrument."""
        ex = self.exchange
        return _ok([render.instrument(m.spec, ex) for m in ex.markets.values()])

    def get_instrument(self, call: Call) -> Reply:
        """One instrument by ``InstrumentId``."""
        market = self.exchange.market(call.params.integer("InstrumentId"))
        return _ok(render.instrument(market.spec, self.exchange))

    def get_level1(self, call: Call) -> Reply:
        """Top of book; the JSON is cached until the book or the last trade changes."""
        market = self.exchange.market(call.params.integer("InstrumentId"))
        iid = market.spec.instrument_id
        cached = self._level1_cache.get(iid)
        if cached is not None and cached[0] == market.version:
            return 200, cached[1]
        payload = dumps(render.level1(market, ms(call.now)))
        self._level1_cache[iid] = (market.version, payload)
        return 200, payload

    def get_level1_summary_min(self, call: Call) -> Reply:
        """Rows ``[id, symbol, last, 24h px change, 24h % change, 24h volume]`` (strings in
        the guide dialect), filtered by ``InstrumentIds`` and by the guide's
        ``BaseCurrency`` / ``QuoteCurrency`` (product symbols; a pair asked the other way
        round finds the instrument quoted the other way)."""
        p = call.params
        wanted = p.json_value("InstrumentIds")
        if isinstance(wanted, int) and not isinstance(wanted, bool):
            wanted = [wanted]
        if wanted is not None and not isinstance(wanted, list):
            raise BadRequest("InstrumentIds must be a JSON list of ids")
        ex = self.exchange
        ids = [int(i) for i in wanted] if wanted else list(ex.markets)
        base, quote = (
            p.text("BaseCurrency").strip().upper(),
            p.text("QuoteCurrency").strip().upper(),
        )
        if base or quote:
            ids = _pair_filter(ex, ids, base, quote) or _pair_filter(ex, ids, quote, base)
        now_ms = ms(call.now)
        rows = [render.level1_summary(ex.market(i), now_ms) for i in ids]
        return _ok([guide.level1_summary(r) for r in rows] if self.guide else rows)

    def get_ticker_history(self, call: Call) -> Reply:
        """Candles ``[End, High, Low, Open, Close, Volume, Bid, Ask, InstrumentId, Begin]``
        of ``Interval`` seconds from ``FromDate`` to ``ToDate`` (dates, ISO, POSIX or
        ticks; default: the last 100 intervals up to now)."""
        p = call.params
        market = self.exchange.market(p.integer("InstrumentId"))
        interval = p.integer("Interval", 60)
        if interval <= 0:
            raise BadRequest("Interval must be a positive number of seconds")
        try:
            end = date_ms(p.raw("ToDate")) if p.has("ToDate") else ms(call.now)
            start = date_ms(p.raw("FromDate")) if p.has("FromDate") else end - 100 * interval * 1000
        except ValueError:
            raise BadRequest("FromDate / ToDate must be dates, ISO-8601 times or timestamps")
        bid, ask = market.best_bid, market.best_ask
        rows = candles(
            market.prints,
            instrument_id=market.spec.instrument_id,
            interval=interval,
            start_ms=start,
            end_ms=end,
            opening_price=market.reference_price,
            bid=bid.limit_price if bid else ZERO,
            ask=ask.limit_price if ask else ZERO,
        )
        return _ok(rows)

    def get_l2_snapshot(self, call: Call) -> Reply:
        """Aggregated book, 10-column rows, ``Depth`` levels per side (default 100)."""
        market = self.exchange.market(call.params.integer("InstrumentId"))
        depth = call.params.integer("Depth", 100)
        return _ok(render.l2_snapshot(market, depth if depth > 0 else 100))

    # ------------------------------------------------------------------ authentication

    def _auth_success(self, user: DemoUser, now: float) -> Reply:
        if user.two_fa_code:
            pending = self.sessions.create(user.user_id, now, pending_2fa=True)
            return _ok(
                {
                    "Authenticated": True,
                    "Requires2FA": True,
                    "AuthType": "Google",
                    "TwoFAType": "Google",
                    "AddtlInfo": "",
                    "Pending2FaToken": pending,
                    "Locked": False,
                    "errormsg": "",
                }
            )
        if self.guide:
            return _ok(guide.login(user))
        return self._session_reply(self.sessions.create(user.user_id, now), user)

    def _session_reply(self, token: str, user: DemoUser) -> Reply:
        """The answer to a login that opened (or found) session ``token``."""
        return _ok(
            {
                "Authenticated": True,
                "SessionToken": token,
                "User": self._user_object(user),
                "Locked": False,
                "Requires2FA": False,
                "TwoFAType": "",
                "TwoFAToken": "",
                "errormsg": "",
            }
        )

    @staticmethod
    def _user_object(user: DemoUser) -> dict[str, Any]:
        return {
            "UserId": user.user_id,
            "UserName": user.username,
            "Email": user.email,
            "EmailVerified": True,
            "AccountId": user.account_id,
            "OMSId": 1,
            "Use2FA": user.two_fa_code is not None,
        }

    def authenticate_user(self, call: Call) -> Reply:
        """API key (body or headers), username/password, or an existing ``SessionToken``."""
        p, ex = call.params, self.exchange
        user: DemoUser | None = None
        if p.has("APIKey") or p.has("Signature"):
            user = ex.check_signature(
                api_key=p.text("APIKey"),
                user_id=p.text("UserId"),
                nonce=p.text("Nonce"),
                signature=p.text("Signature"),
            )
        elif p.has("Password"):
            user = ex.check_password(p.text("UserName") or p.text("Email"), p.text("Password"))
        elif p.has("SessionToken"):
            session = self.sessions.get(p.text("SessionToken"), call.now)
            if session is not None:
                return self._session_reply(session.token, ex.users[session.user_id])
        elif call.headers.get("APIKey"):
            user = self._signed_headers_user(call.headers)
        if user is None:
            return _ok(_AUTH_FAILED)
        return self._auth_success(user, call.now)

    def authenticate_basic(self, call: Call) -> Reply:
        """ccxt's ``Authenticate`` with ``Authorization: Basic base64(user:password)``."""
        header = call.headers.get("Authorization", "")
        scheme, _, encoded = header.partition(" ")
        user = None
        if scheme.lower() == "basic":
            try:
                name, _, password = base64.b64decode(encoded).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                name = password = ""
            user = self.exchange.check_password(name, password) if name else None
        if user is None:
            return _ok(_AUTH_FAILED)
        return self._auth_success(user, call.now)

    def authenticate_2fa(self, call: Call) -> Reply:
        """``{"Code"}`` + the pending token (``Pending2FaToken`` header/key or ``aptoken``)."""
        token = (
            call.headers.get("Pending2FaToken")
            or call.params.text("Pending2FaToken")
            or call.headers.get("aptoken")
            or ""
        )
        session = self.sessions.get(token, call.now, pending_2fa=True) if token else None
        if session is None:
            return _ok(
                {
                    "Authenticated": False,
                    "Locked": False,
                    "errormsg": "Invalid or expired 2FA token",
                }
            )
        user = self.exchange.users[session.user_id]
        code = call.params.text("Code").strip()
        if not user.two_fa_code or code != user.two_fa_code:
            return _ok({"Authenticated": False, "Locked": False, "errormsg": "Invalid 2FA code"})
        self.sessions.drop(session.token)
        token = self.sessions.create(user.user_id, call.now)
        return _ok(
            {
                "Authenticated": True,
                "UserId": user.user_id,
                "SessionToken": token,
                "User": self._user_object(user),
                "errormsg": "",
            }
        )

    def log_out(self, call: Call) -> Reply:
        """Ends the session used by this call (a signed-header call has none to end)."""
        if call.token:
            self.sessions.drop(call.token)
        return _ok(render.generic(True, None, 0, None))

    # ------------------------------------------------------------------ user / account

    def get_user_accounts(self, call: Call) -> Reply:
        """``[AccountId]``."""
        assert call.user is not None
        return _ok([call.user.account_id])

    def get_user_info(self, call: Call) -> Reply:
        """The authenticated user (PascalCase)."""
        user = call.user
        assert user is not None
        return _ok(
            {
                "UserId": user.user_id,
                "UserName": user.username,
                "Email": user.email,
                "PasswordHash": "",
                "PendingEmailCode": "",
                "EmailVerified": True,
                "AccountId": user.account_id,
                "DateTimeCreated": "2024-01-01T00:00:00.000Z",
                "AffiliateId": 0,
                "RefererId": 0,
                "OMSId": 1,
                "Use2FA": user.two_fa_code is not None,
                "Salt": "",
                "PendingCodeTime": "0001-01-01T00:00:00.000Z",
                "Locked": False,
                "LockedTime": "0001-01-01T00:00:00.000Z",
                "NumberOfFailedAttempt": 0,
                "MarginBorrowerEnabled": False,
                "MarginAcquisitionHalt": False,
                "OperatorId": 1,
            }
        )

    def get_account_positions(self, call: Call) -> Reply:
        """One position per product (``Amount`` total, ``Hold`` reserved)."""
        account_id = self._account(call)
        ex = self.exchange
        if self.guide:
            return _ok([guide.position(ex, account_id, spec) for spec in ex.products.values()])
        return _ok(
            [render.position(ex, account_id, spec, call.now) for spec in ex.products.values()]
        )

    # ------------------------------------------------------------------ orders

    def send_order(self, call: Call) -> Reply:
        """``{"status":"Accepted","errormsg":"","OrderId":N}`` or the Rejected shape."""
        p = call.params
        account_id = self._account(call)
        assert call.user is not None
        request = OrderRequest(
            instrument_id=p.integer("InstrumentId"),
            side=p.integer("Side", names=_SIDE_NAMES),
            order_type=p.integer("OrderType", names=_TYPE_NAMES),
            quantity=p.decimal("Quantity", ZERO),
            limit_price=p.decimal("LimitPrice", ZERO),
            value=p.decimal("Value", ZERO),
            time_in_force=p.integer("TimeInForce", 1, names=_TIF_NAMES),
            client_order_id=p.integer("ClientOrderId", 0),
            post_only=p.boolean("PostOnly"),
            stop_price=p.decimal("StopPrice", ZERO),
        )
        order = self.exchange.send_order(
            request, account_id=account_id, user_id=call.user.user_id, now=call.now
        )
        if order.state == "Rejected":
            return _ok({"status": "Rejected", "errormsg": order.reject_reason, "errorcode": 101})
        return _ok({"status": "Accepted", "errormsg": "", "OrderId": order.order_id})

    def cancel_order(self, call: Call) -> Reply:
        """By ``OrderId``, or by ``ClOrderId`` (alias ``ClientOrderId``) of the account."""
        p = call.params
        account_id = self._account(call)
        client_id = p.integer("ClOrderId", 0) or p.integer("ClientOrderId", 0)
        self.exchange.cancel_order(
            account_ids=[account_id],
            order_id=p.integer("OrderId", 0),
            client_order_id=client_id,
            account_id=account_id,
            now=call.now,
        )
        return _ok(render.generic(True, None, 0, None))

    def cancel_all_orders(self, call: Call) -> Reply:
        """Cancels every working order of the account (optionally one ``InstrumentId``)."""
        account_id = self._account(call)
        instrument = call.params.integer("InstrumentId", 0) or call.params.integer("IntrumentId", 0)
        self.exchange.cancel_all_orders(account_id, instrument, call.now)
        return _ok(render.generic(True, None, 0, None))

    def _own_order(self, call: Call, order_id: int) -> Order:
        account_id = self._account(call)
        order = self.exchange.orders.get(order_id)
        if order is None or order.account_id != account_id:
            raise ExchangeError(104, "Resource Not Found", f"Order {order_id} not found")
        return order

    def get_order_status(self, call: Call) -> Reply:
        """One order object (not an array), errorcode 104 if unknown."""
        order = self._own_order(call, call.params.integer("OrderId"))
        if self.guide:
            return _ok(guide.order_status(order))
        return _ok(render.order(order, self.exchange))

    def get_open_orders(self, call: Call) -> Reply:
        """Working orders of the account, most recent first."""
        account_id = self._account(call)
        ex = self.exchange
        return _ok([render.order(o, ex) for o in ex.orders_of(account_id) if o.is_working])

    def get_orders_history(self, call: Call) -> Reply:
        """Orders of the account, most recent first, with AlphaPoint's filters.

        Filters (0 = no filter): ``ClientOrderId``, ``OrderId``, ``OriginalOrderId``,
        ``OriginalClientOrderId``, ``InstrumentId``, ``OrderState``, ``StartTimestamp`` /
        ``EndTimestamp`` (seconds, ms or ticks, on ``ReceiveTime``), ``StartIndex``, ``Depth``.
        """
        p = call.params
        account_id = self._account(call)
        ex = self.exchange
        client_id = p.integer("ClientOrderId", 0) or p.integer("OriginalClientOrderId", 0)
        order_id = p.integer("OrderId", 0) or p.integer("OriginalOrderId", 0)
        instrument = p.integer("InstrumentId", 0)
        state = p.text("OrderState").strip().lower()
        start, end = _window(p)
        found = [
            o
            for o in ex.orders_of(account_id)
            if (not client_id or o.client_order_id == client_id)
            and (not order_id or o.order_id == order_id)
            and (not instrument or o.instrument_id == instrument)
            and (not state or o.state.lower() == state)
            and (start is None or o.receive_time >= start)
            and (end is None or o.receive_time <= end)
        ]
        return _ok([render.order(o, ex) for o in _page(found, p)])

    def get_order_history_by_order_id(self, call: Call) -> Reply:
        """Every revision of one order, most recent first."""
        order = self._own_order(call, call.params.integer("OrderId"))
        revisions = self.exchange.revisions(order)
        return _ok([render.order(r, self.exchange) for r in reversed(revisions)])

    def get_trades_history(self, call: Call) -> Reply:
        """Executions of the account, most recent first, with AlphaPoint's filters."""
        p = call.params
        account_id = self._account(call)
        ex = self.exchange
        instrument = p.integer("InstrumentId", 0)
        order_id = p.integer("OrderId", 0)
        trade_id = p.integer("TradeId", 0)
        execution_id = p.integer("ExecutionId", 0)
        client_id = p.integer("ClientOrderId", 0)
        start, end = _window(p)
        found = [
            t
            for t in ex.trades_of(account_id)
            if (not instrument or t.instrument_id == instrument)
            and (not order_id or t.order_id == order_id)
            and (not trade_id or t.trade_id == trade_id)
            and (not execution_id or t.execution_id == execution_id)
            and (not client_id or t.client_order_id == client_id)
            and (start is None or t.trade_time_ms >= start)
            and (end is None or t.trade_time_ms <= end)
        ]
        if self.guide:
            return _ok([guide.trade(t) for t in _page(found, p)])
        return _ok([render.trade(t, ex) for t in _page(found, p)])

    def get_account_transactions(self, call: Call) -> Reply:
        """The account's journal, most recent first, with AlphaPoint's filters (``Depth``,
        ``StartIndex``, ``ProductId``, ``TransactionId``, ``ReferenceId``, time window)."""
        p = call.params
        account_id = self._account(call)
        product = p.integer("ProductId", 0)
        transaction_id = p.integer("TransactionId", 0)
        reference_id = p.integer("ReferenceId", 0)
        start, end = _window(p)
        found = [
            t
            for t in reversed(self.exchange.journal)
            if t.account_id == account_id
            and (not product or t.product_id == product)
            and (not transaction_id or t.transaction_id == transaction_id)
            and (not reference_id or t.reference_id == reference_id)
            and (start is None or t.time_ms >= start)
            and (end is None or t.time_ms <= end)
        ]
        return _ok([transaction_row(t) for t in _page(found, p)])

    # ------------------------------------------------------------------ deposits

    def _product_id(self, p: Params, *keys: str) -> int:
        for key in keys:
            if p.has(key):
                return self.exchange.product(p.integer(key)).product_id
        if p.has("AssetName"):
            return self.exchange.product(p.text("AssetName")).product_id
        raise BadRequest(f"{keys[0]} is required")

    def create_deposit_ticket(self, call: Call) -> Reply:
        """SLATE body; answers ``{"success":true,"requestcode":"<guid>"}``."""
        p = call.params
        account_id = self._account(call)
        assert call.user is not None
        info = p.raw("DepositInfo")
        info_text = info if isinstance(info, str) else dumps_text(info if info else {})
        ticket = self.exchange.create_deposit_ticket(
            account_id=account_id,
            user_id=call.user.user_id,
            product_id=self._product_id(p, "AssetId", "ProductId"),
            amount=p.decimal("Amount"),
            deposit_info=info_text,
            now=call.now,
            asset_manager_id=p.integer("AssetManagerId", 1),
            operator_id=p.integer("OperatorId", 1),
        )
        return _ok({"success": True, "requestcode": ticket.request_code})

    def get_deposit_tickets(self, call: Call) -> Reply:
        """Deposit tickets of the account, oldest first (``StartIndex``/``Limit``)."""
        account_id = self._account(call)
        ex = self.exchange
        found = [t for t in ex.deposit_tickets.values() if t.account_id == account_id]
        return _ok(
            [render.deposit_ticket(t, ex) for t in _page(found, call.params, limit_key="Limit")]
        )

    def get_deposits(self, call: Call) -> Reply:
        """Deposits of the account as ccxt reads them (``TicketStatus`` names)."""
        account_id = self._account(call)
        ex = self.exchange
        found = [t for t in ex.deposit_tickets.values() if t.account_id == account_id]
        return _ok([render.deposit_row(t, ex) for t in found])

    def get_withdraws(self, call: Call) -> Reply:
        """Withdrawals of the account as ccxt reads them (``TicketStatus`` names)."""
        account_id = self._account(call)
        ex = self.exchange
        found = [t for t in ex.withdraw_tickets.values() if t.account_id == account_id]
        return _ok([render.withdraw_row(t, ex) for t in found])

    def get_deposit_ticket(self, call: Call) -> Reply:
        """One deposit ticket by ``RequestCode`` or ``TicketId`` (errorcode 104)."""
        p = call.params
        ticket = self.exchange.find_deposit_ticket(
            [self._account(call)],
            request_code=p.text("RequestCode"),
            ticket_id=p.integer("TicketId", 0) or p.integer("TicketNumber", 0),
        )
        return _ok(render.deposit_ticket(ticket, self.exchange))

    def get_deposit_info(self, call: Call) -> Reply:
        """Addresses as a JSON *string* of a list (``DepositInfo``)."""
        p = call.params
        account_id = self._account(call)
        product_id = self._product_id(p, "ProductId", "AssetId")
        addresses = self.exchange.deposit_info(
            account_id, product_id, generate_new=p.boolean("GenerateNewKey")
        )
        return _ok(
            {
                "result": True,
                "errormsg": None,
                "statuscode": 0,
                "AssetManagerId": 1,
                "AccountId": account_id,
                "AssetId": product_id,
                "ProviderId": product_id,
                "DepositInfo": dumps_text(addresses),
            }
        )

    # ------------------------------------------------------------------ withdrawals

    _TEMPLATE_FIELDS = ("ExternalAddress", "Comment")

    def get_withdraw_template_types(self, call: Call) -> Reply:
        """The objects form: ``TemplateTypes: [{AccountProviderId, TemplateName, ...}]``."""
        self._account(call)
        product = self.exchange.product(self._product_id(call.params, "ProductId", "AssetId"))
        return _ok(
            {
                "result": True,
                "errormsg": None,
                "statuscode": 0,
                "TemplateTypes": [
                    {
                        "AccountProviderId": product.product_id,
                        "TemplateName": "Standard",
                        "AccountProviderName": f"{product.symbol} Provider",
                    }
                ],
            }
        )

    def get_withdraw_template(self, call: Call) -> Reply:
        """``Template`` is a JSON string: ``{"TemplateType","ExternalAddress","Comment"}``."""
        self._account(call)
        p = call.params
        self._product_id(p, "ProductId", "AssetId")
        template_type = p.text("TemplateType")
        if template_type.lower() != "standard":
            raise ExchangeError(104, "Resource Not Found", f"Unknown TemplateType: {template_type}")
        template = {"TemplateType": "Standard", **dict.fromkeys(self._TEMPLATE_FIELDS, "")}
        return _ok(
            {"result": True, "errormsg": None, "statuscode": 0, "Template": dumps_text(template)}
        )

    def get_withdraw_fee(self, call: Call) -> Reply:
        """``{"FeeAmount": fee, "TicketAmount": amount}``."""
        self._account(call)
        p = call.params
        product_id = self._product_id(p, "ProductId", "AssetId")
        amount = p.decimal("Amount", ZERO)
        fee = self.exchange.withdraw_fee(product_id, amount)
        return _ok({"FeeAmount": fee, "TicketAmount": amount})

    def create_withdraw_ticket(self, call: Call) -> Reply:
        """Holds the amount; accepts ``TemplateForm`` as an object or JSON text, and ccxt's
        ``{TfaType, TFaCode, Payload: "<json>"}`` wrapper.  Answers the generic object; a
        shortfall answers ``{"result":true,"errormsg":"Invalid Request","errorcode":100,
        "detail":"Insufficient Balance"}`` (sic, as SLATE documents it)."""
        outer = call.params
        assert call.user is not None
        p = outer
        if outer.has("Payload"):
            payload = outer.json_value("Payload")
            if not isinstance(payload, dict):
                raise BadRequest("Payload must be a JSON object")
            p = Params(payload)
        call.params = p
        account_id = self._account(call)
        product_id = self._product_id(p, "ProductId", "AssetId")
        template_type = p.text("TemplateType", "Standard") or "Standard"
        if template_type.lower() != "standard":
            raise ExchangeError(104, "Resource Not Found", f"Unknown TemplateType: {template_type}")
        raw_form = p.raw("TemplateForm")
        form = p.json_value("TemplateForm")
        if not isinstance(form, dict):
            raise BadRequest("TemplateForm must be a JSON object (or JSON text of one)")
        if not str(form.get("ExternalAddress") or "").strip():
            raise BadRequest("TemplateForm.ExternalAddress is required")
        form_text = raw_form if isinstance(raw_form, str) else dumps_text(form)
        user = call.user
        pending_2fa = False
        if user.two_fa_code:
            code = outer.text("TFaCode") or outer.text("TfaCode")
            if code and code != user.two_fa_code:
                raise ExchangeError(101, "Operation Failed", "Invalid 2FA code")
            pending_2fa = not code
        self.exchange.create_withdraw_ticket(
            account_id=account_id,
            user_id=user.user_id,
            product_id=product_id,
            amount=p.decimal("Amount"),
            template_type="Standard",
            template_form=form_text,
            now=call.now,
            pending_2fa=pending_2fa,
        )
        return _ok(render.generic(True, None, 0, None))

    def get_withdraw_tickets(self, call: Call) -> Reply:
        """Withdraw tickets of the account, oldest first (``StartIndex``, ``Limit`` 200)."""
        account_id = self._account(call)
        ex = self.exchange
        found = [t for t in ex.withdraw_tickets.values() if t.account_id == account_id]
        start = max(call.params.integer("StartIndex", 0), 0)
        limit = call.params.integer("Limit", 200)
        page = found[start : start + limit] if limit > 0 else found[start:]
        if self.guide:
            return _ok([guide.withdraw_ticket(t, ex) for t in page])
        return _ok([render.withdraw_ticket(t, ex) for t in page])

    def get_withdraw_ticket(self, call: Call) -> Reply:
        """One withdraw ticket by ``RequestCode`` or ``TicketId`` (errorcode 104)."""
        p = call.params
        ticket = self.exchange.find_withdraw_ticket(
            [self._account(call)],
            request_code=p.text("RequestCode"),
            ticket_id=p.integer("TicketId", 0) or p.integer("TicketNumber", 0),
        )
        return _ok(render.withdraw_ticket(ticket, self.exchange))

    # ------------------------------------------------------------------ admin

    def ledger(self) -> dict[str, Any]:
        """Everything the exchange holds, for inspection (same shapes as the API)."""
        ex = self.exchange
        now = self.clock.now()
        ex.tick(now)
        accounts = [
            {"AccountId": u.account_id, "UserId": u.user_id, "UserName": u.username}
            for u in ex.users.values()
        ]
        accounts.append(
            {"AccountId": ex.mm_account_id, "UserId": ex.mm_account_id, "UserName": "market-maker"}
        )
        return {
            "Now": ms(now),
            "Accounts": accounts,
            "Balances": [
                {
                    "AccountId": acct,
                    "ProductId": pid,
                    "ProductSymbol": ex.products[pid].symbol,
                    "Amount": bal.amount,
                    "Hold": bal.hold,
                }
                for (acct, pid), bal in sorted(ex.balances.items())
            ],
            "Orders": [render.order(o, ex) for o in ex.orders.values()],
            "Trades": [render.trade(t, ex) for t in ex.trades],
            "DepositTickets": [render.deposit_ticket(t, ex) for t in ex.deposit_tickets.values()],
            "WithdrawTickets": [
                render.withdraw_ticket(t, ex) for t in ex.withdraw_tickets.values()
            ],
            "Fees": [
                {"ProductId": pid, "ProductSymbol": ex.products[pid].symbol, "Amount": amount}
                for pid, amount in sorted(ex.fees_collected.items())
            ],
            "Markets": [
                {
                    "InstrumentId": m.spec.instrument_id,
                    "Symbol": m.spec.symbol,
                    "Mid": m.mid,
                    "BestBid": m.best_bid.limit_price if m.best_bid else ZERO,
                    "BestOffer": m.best_ask.limit_price if m.best_ask else ZERO,
                    "LastTradedPx": m.last_price,
                }
                for m in ex.markets.values()
            ],
        }

    def advance(self, seconds: float) -> float:
        """Move the clock and bring the exchange up to date; returns the new time."""
        before = self.exchange.version
        now = self.clock.advance(seconds)
        self.exchange.tick(now)
        if self.exchange.version != before and self._on_change is not None:
            self._on_change()
        return now

    async def _admin_ledger(self, request: web.Request) -> web.Response:
        before = self.exchange.version
        body = dumps(self.ledger())
        if self.exchange.version != before and self._on_change is not None:
            self._on_change()
        return web.Response(body=body, content_type=_JSON)

    def _faults_body(self) -> bytes:
        return dumps(
            {
                "Faults": [
                    {
                        "Method": f.method,
                        "Kind": f.kind,
                        "Times": f.times,
                        "Probability": Decimal(repr(f.probability)),
                        "Delay": Decimal(repr(f.delay)),
                        "Status": f.status,
                        "RetryAfter": Decimal(repr(f.retry_after)),
                    }
                    for f in self.faults.active
                ]
            }
        )

    async def _admin_faults_get(self, request: web.Request) -> web.Response:
        return web.Response(body=self._faults_body(), content_type=_JSON)

    async def _admin_faults_post(self, request: web.Request) -> web.Response:
        try:
            body = loads(await request.read() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("expected a JSON object")
            p = Params(body)
            if p.boolean("clear"):
                self.faults.clear()
            specs: list[Any] = []
            if p.has("spec"):
                specs.append(p.text("spec"))
            raw_specs = p.raw("specs")
            if isinstance(raw_specs, list):
                specs.extend(str(s) for s in raw_specs)
            if p.has("kind"):
                specs.append(
                    Fault(
                        p.text("method", "*"),
                        p.text("kind"),
                        times=p.integer("times", 0) or None,
                        probability=float(p.decimal("probability", Decimal(1))),
                        delay=float(p.decimal("delay", Decimal("0.5"))),
                        status=p.integer("status", 503),
                        retry_after=float(p.decimal("retry_after", Decimal(1))),
                    )
                )
            self.faults.extend(parse_fault_spec(s) if isinstance(s, str) else s for s in specs)
        except (ValueError, ExchangeError) as exc:
            return web.Response(status=400, body=dumps({"error": str(exc)}), content_type=_JSON)
        return web.Response(body=self._faults_body(), content_type=_JSON)

    async def _admin_faults_delete(self, request: web.Request) -> web.Response:
        self.faults.clear()
        return web.Response(body=self._faults_body(), content_type=_JSON)

    async def _admin_advance(self, request: web.Request) -> web.Response:
        try:
            body = loads(await request.read() or b"{}")
            seconds = float(Params(body).decimal("seconds"))
            if seconds < 0:
                raise ValueError("seconds must be >= 0")
        except (ValueError, ExchangeError, AttributeError) as exc:
            return web.Response(status=400, body=dumps({"error": str(exc)}), content_type=_JSON)
        now = self.advance(seconds)
        return web.Response(body=dumps({"Now": ms(now)}), content_type=_JSON)

    async def _admin_expire(self, request: web.Request) -> web.Response:
        count = self.sessions.expire_all()
        return web.Response(body=dumps({"Expired": count}), content_type=_JSON)


def _m(name: str, handler: Handler, *, private: bool = True) -> tuple[str, _Method]:
    return name.lower(), _Method(name, handler, private)


_METHODS: dict[str, _Method] = dict(
    [
        _m("Ping", SimApp.ping, private=False),
        _m("HealthCheck", SimApp.health_check, private=False),
        _m("GetProducts", SimApp.get_products, private=False),
        _m("GetProduct", SimApp.get_product, private=False),
        _m("GetInstruments", SimApp.get_instruments, private=False),
        _m("GetInstrument", SimApp.get_instrument, private=False),
        _m("GetLevel1", SimApp.get_level1, private=False),
        _m("GetLevel1SummaryMin", SimApp.get_level1_summary_min, private=False),
        _m("GetL2Snapshot", SimApp.get_l2_snapshot, private=False),
        _m("GetTickerHistory", SimApp.get_ticker_history, private=False),
        _m("AuthenticateUser", SimApp.authenticate_user, private=False),
        _m("Authenticate", SimApp.authenticate_basic, private=False),
        _m("Authenticate2FA", SimApp.authenticate_2fa, private=False),
        _m("LogOut", SimApp.log_out),
        _m("GetUserAccounts", SimApp.get_user_accounts),
        _m("GetUserInfo", SimApp.get_user_info),
        _m("GetAccountPositions", SimApp.get_account_positions),
        _m("SendOrder", SimApp.send_order),
        _m("CancelOrder", SimApp.cancel_order),
        _m("CancelAllOrders", SimApp.cancel_all_orders),
        _m("GetOrderStatus", SimApp.get_order_status),
        _m("GetOpenOrders", SimApp.get_open_orders),
        _m("GetOrdersHistory", SimApp.get_orders_history),
        _m("GetOrderHistory", SimApp.get_orders_history),
        _m("GetOrderHistoryByOrderId", SimApp.get_order_history_by_order_id),
        _m("GetTradesHistory", SimApp.get_trades_history),
        _m("GetAccountTransactions", SimApp.get_account_transactions),
        _m("CreateDepositTicket", SimApp.create_deposit_ticket),
        _m("GetDepositTickets", SimApp.get_deposit_tickets),
        _m("GetDepositTicket", SimApp.get_deposit_ticket),
        _m("GetDepositInfo", SimApp.get_deposit_info),
        _m("GetDeposits", SimApp.get_deposits),
        _m("GetWithdraws", SimApp.get_withdraws),
        _m("GetWithdrawTemplateTypes", SimApp.get_withdraw_template_types),
        _m("GetWithdrawTemplate", SimApp.get_withdraw_template),
        _m("GetWithdrawFee", SimApp.get_withdraw_fee),
        _m("CreateWithdrawTicket", SimApp.create_withdraw_ticket),
        _m("GetWithdrawTickets", SimApp.get_withdraw_tickets),
        _m("GetWithdrawTicket", SimApp.get_withdraw_ticket),
    ]
)

#: Canonical names of every method the simulator serves.
METHODS: tuple[str, ...] = tuple(m.name for m in _METHODS.values())
PUBLIC_METHODS: tuple[str, ...] = tuple(m.name for m in _METHODS.values() if not m.private)
