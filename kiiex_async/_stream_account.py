"""A stream's account side: typed account events, their bounded queues, change waiters and
the REST resynchronisation that stands in for events that may have been missed.

``AccountHub.on_event`` turns one account event frame into a typed value and hands it to
every queue and waiter.  An unreadable event, a full queue or a reconnect cannot be
repaired from the socket: the hub reads open orders and positions over HTTP (retrying with
backoff) and delivers them as a :class:`~kiiex_async._events.Resynced` marker, and wakes
every waiter, so nothing is lost silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Final

from . import _wire
from ._events import (
    AccountEvent,
    CancelReject,
    DepositTicketUpdate,
    OrderReject,
    OrderStateUpdate,
    OrderTradeUpdate,
    PositionUpdate,
    Resynced,
    WithdrawTicketUpdate,
)
from ._feeds import AccountEvents
from .errors import DecodeError, KiiexError
from .models import DepositTicket, Order, Position, Trade, WithdrawTicket

if TYPE_CHECKING:
    from .client import KiiexClient

__all__ = ["ACCOUNT_EVENTS", "UNREADABLE", "AccountHub", "change_of"]

log = logging.getLogger("kiiex_async.stream")

#: Stands for an event whose payload was not JSON.
UNREADABLE: Final = object()
#: Account event names and how each becomes a typed value.
ACCOUNT_EVENTS: Final[dict[str, Callable[[Any], AccountEvent]]] = {
    "OrderStateEvent": lambda p: OrderStateUpdate(_wire.structure(p, Order)),
    "OrderTradeEvent": lambda p: OrderTradeUpdate(_wire.structure(p, Trade)),
    "AccountPositionEvent": lambda p: PositionUpdate(_wire.structure(p, Position)),
    "NewOrderRejectEvent": lambda p: _wire.structure(p, OrderReject),
    "CancelOrderRejectEvent": lambda p: _wire.structure(p, CancelReject),
    "DepositTicketUpdateEvent": lambda p: DepositTicketUpdate(_wire.structure(p, DepositTicket)),
    "WithdrawTicketUpdateEvent": lambda p: WithdrawTicketUpdate(_wire.structure(p, WithdrawTicket)),
}

Predicate = Callable[[AccountEvent], bool]


def change_of(
    *,
    order_id: int | None = None,
    client_order_id: int | None = None,
    withdraw_ticket: int | None = None,
    deposit_ticket: int | None = None,
) -> Predicate:
    """Whether an event names this order or ticket (a :class:`Resynced` always does)."""

    def matches(event: AccountEvent) -> bool:
        if isinstance(event, OrderStateUpdate):
            o = event.order
            return o.order_id == order_id or (
                client_order_id is not None and o.client_order_id == client_order_id
            )
        if isinstance(event, OrderTradeUpdate | OrderReject):
            e = event.trade if isinstance(event, OrderTradeUpdate) else event
            return e.order_id == order_id or (
                client_order_id is not None and e.client_order_id == client_order_id
            )
        if isinstance(event, WithdrawTicketUpdate):
            return event.ticket.ticket_number == withdraw_ticket
        if isinstance(event, DepositTicketUpdate):
            return event.ticket.ticket_number == deposit_ticket
        return isinstance(event, Resynced)

    return matches


class AccountHub:
    """Queues and waiters of one stream's account events."""

    def __init__(
        self,
        client: KiiexClient,
        spawn: Callable[[Coroutine[Any, Any, None]], object],
        backoff: Callable[[int], float],
    ) -> None:
        self._client = client
        self._spawn = spawn
        self._backoff = backoff
        self.queues: list[AccountEvents] = []
        self.subscribed = False
        #: The account the socket's login returned (used when the client has none yet).
        self.account_id: int | None = None
        self._watchers: list[tuple[Predicate, asyncio.Future[None]]] = []
        #: Account events that could not be read.
        self.unreadable = 0

    def subscription(self, oms_id: int) -> dict[str, Any]:
        """The ``SubscribeAccountEvents`` payload."""
        account = self._client.account_id or self.account_id
        return {"OMSId": oms_id, **({"AccountId": account} if account else {})}

    def new_queue(self, maxsize: int) -> AccountEvents:
        """A new bounded queue that resynchronises from REST when it overflows."""
        queue = AccountEvents(maxsize, self.resync)
        self.queues.append(queue)
        return queue

    async def wait(self, matches: Predicate, within: float | None) -> bool:
        """True once an event ``matches`` (or a resynchronisation), False after ``within``."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (matches, waiter)
        self._watchers.append(entry)
        try:
            async with asyncio.timeout(within):
                await waiter
            return True
        except TimeoutError:
            return False
        finally:
            with contextlib.suppress(ValueError):
                self._watchers.remove(entry)

    def wake(self, event: AccountEvent | None = None) -> None:
        """Wake the waiters ``event`` matches (every waiter for ``None``)."""
        for matches, waiter in self._watchers:
            if not waiter.done() and (event is None or matches(event)):
                waiter.set_result(None)

    def on_event(self, name: str, payload: Any) -> None:
        """One account event frame (``payload`` decoded, or :data:`UNREADABLE`)."""
        try:
            if payload is UNREADABLE:
                raise DecodeError("unreadable payload")
            event = ACCOUNT_EVENTS[name](payload)
        except (KiiexError, TypeError, ValueError):
            self.unreadable += 1
            log.warning("stream: unreadable %s; resynchronising from REST", name)
            self.resync_all("unreadable")
            return
        for queue in self.queues:
            queue.put(event)
        self.wake(event)

    def resync_all(self, reason: str) -> None:
        """Every queue gets a :class:`Resynced` marker; every waiter wakes."""
        for queue in self.queues:
            self.resync(queue, reason)
        self.wake()

    def resync(self, queue: AccountEvents, reason: str) -> None:
        """Read the account over REST and put a :class:`Resynced` marker in ``queue``."""
        self._spawn(self._resync_now(queue, reason))

    async def _resync_now(self, queue: AccountEvents, reason: str) -> None:
        attempt = 0
        while True:
            try:
                orders = await self._client.get_open_orders()
                positions = await self._client.get_account_positions()
                break
            except KiiexError as exc:
                attempt += 1
                log.warning("stream: REST resynchronisation failed (%s); retrying", exc)
                await asyncio.sleep(self._backoff(attempt))
        queue.put(Resynced(reason, tuple(orders), tuple(positions)), force=True)
        self.wake()

    def close(self) -> None:
        """End every queue and release every waiter."""
        for queue in self.queues:
            queue.close()
        self.wake()
