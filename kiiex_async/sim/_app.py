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

Where each part lives: this module routes (``make_app``, the method table, injected HTTP
faults) and dispatches (parse, authorise, run, persist); the handlers live by family in
:mod:`._api_public`, :mod:`._api_auth`, :mod:`._api_orders`, :mod:`._api_tickets` and
:mod:`._admin`, with what they share in :mod:`._call`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import _render as render
from ._admin import AdminHandlers
from ._api_auth import AuthHandlers
from ._api_orders import OrderHandlers
from ._api_public import PublicHandlers
from ._api_tickets import TicketHandlers
from ._call import _JSON, Call, Reply, _ok
from ._clock import SimClock
from ._config import DemoUser, SimConfig
from ._exchange import Exchange
from ._faults import Fault, FaultInjector
from ._json import dumps, loads
from ._params import Params
from ._records import ExchangeError, InsufficientBalance
from ._sessions import SessionStore

__all__ = ["SimApp"]

log = logging.getLogger("kiiex_async.sim")

_NOT_AUTHORIZED = dumps(render.generic(False, "Not Authorized", 20, None))

Handler = Callable[["SimApp", Call], Reply]


@dataclass(frozen=True, slots=True)
class _Method:
    name: str
    handler: Handler
    private: bool


class SimApp(PublicHandlers, AuthHandlers, OrderHandlers, TicketHandlers, AdminHandlers):
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
        self.guide = config.dialect == "guide"
        self._on_change = on_change
        self._level1_cache = {}

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
