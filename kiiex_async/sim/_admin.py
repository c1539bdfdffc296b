"""The simulator's own controls: the ledger, simulated time, faults, session expiry.

Routes outside ``/ap/``, not authenticated (bind the simulator to a loopback address):
``GET /_sim/ledger``, ``GET|POST|DELETE /_sim/faults`` (``{"spec": "SendOrder:drop_after:1"}``
or the fields of a :class:`~._faults.Fault`), ``POST /_sim/advance`` (``{"seconds": 5}``)
and ``POST /_sim/expire_sessions``; also :meth:`AdminHandlers.ledger` and
:meth:`AdminHandlers.advance` for the in-process ``Simulator``.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from . import _render as render
from ._call import _JSON, Handlers
from ._faults import Fault, parse_fault_spec
from ._json import dumps, loads
from ._params import Params
from ._records import ZERO, ExchangeError, ms

__all__ = ["AdminHandlers"]


class AdminHandlers(Handlers):
    """The admin routes and the in-process controls (see the module doc)."""

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
