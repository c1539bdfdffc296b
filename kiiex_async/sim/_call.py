"""What every handler of the simulator's API sees: the call, the reply, shared rules.

:class:`Call` is one request as a handler gets it (canonical method name, parameters
matched case-insensitively, headers, the simulated time, the authenticated user); a
handler answers a :data:`Reply` (HTTP status, JSON bytes).  :class:`Handlers` declares the
state the families of handlers share (:mod:`._api_public`, :mod:`._api_auth`,
:mod:`._api_orders`, :mod:`._api_tickets`, :mod:`._admin`; :class:`~._app.SimApp` sets
it up) and the rules they share: whose account a call may touch, how a product is named,
time windows and paging of history calls.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._clock import SimClock
from ._config import DemoUser, SimConfig
from ._exchange import Exchange
from ._faults import FaultInjector
from ._json import dumps
from ._params import BadRequest, Params
from ._records import ExchangeError
from ._sessions import SessionStore

__all__ = ["Call", "Handlers", "Reply"]

_JSON = "application/json"

_EPOCH_TICKS = 621_355_968_000_000_000


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


def _page(items: list[Any], p: Params, *, limit_key: str = "Depth") -> list[Any]:
    start = max(p.integer("StartIndex", 0), 0)
    depth = p.integer(limit_key, 0)
    return items[start : start + depth] if depth > 0 else items[start:]


class Handlers:
    """The state and the shared rules of every family of handlers (see the module doc)."""

    config: SimConfig
    exchange: Exchange
    clock: SimClock
    faults: FaultInjector
    sessions: SessionStore
    #: True when the calls of KIIEX's quick-start guide answer in the guide's shapes.
    guide: bool
    _on_change: Callable[[], None] | None

    def _account(self, call: Call) -> int:
        user = call.user
        if user is None:  # pragma: no cover - private methods always have a user
            raise ExchangeError(20, "Not Authorized")
        account_id = call.params.integer("AccountId", 0)
        if account_id and account_id != user.account_id:
            raise ExchangeError(20, "Not Authorized", f"Account {account_id} is not yours")
        return user.account_id

    def _product_id(self, p: Params, *keys: str) -> int:
        for key in keys:
            if p.has(key):
                return self.exchange.product(p.integer(key)).product_id
        if p.has("AssetName"):
            return self.exchange.product(p.text("AssetName")).product_id
        raise BadRequest(f"{keys[0]} is required")
