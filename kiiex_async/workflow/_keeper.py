"""One run's hold on its swap's lease: fenced saves and renewals, the heartbeat, the fence
before every write to the exchange, and parking at a safe boundary.

The store decides who holds a lease (its clock, its fencing token); this module keeps a
run honest about it on its side:

* every save and renewal carries the lease's token; the first one refused
  (:class:`LeaseLostError`) marks the run *fenced off*: it stops and never writes again;
* a heartbeat renews the lease every third of its time-to-live while the run works, so a
  slow exchange call never lets it lapse;
* right before a write is sent to the exchange, :meth:`LeaseKeeper.fence` checks, on this
  process's monotonic clock, that at least half of the lease is still ahead since the last
  write the store accepted under the token (renewing it first if not).  A run paused past
  its lease (GC, SIGSTOP, a partition) thus finds out before it would send.  What no lease
  can rule out is a pause of more than half the time-to-live *between* that check and the
  request leaving the socket; the successor then reconciles (the order's
  ``ClientOrderId``, the ticket's marker) before it sends anything, which is why the
  time-to-live should stay well above a step's reconcile grace.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Final

import anyio
import attrs

from ..errors import WorkflowError
from ._errors import CheckpointError, LeaseLostError
from ._machine import SwapState
from ._record import SwapRecord
from ._store import CheckpointStore, Lease

__all__ = ["LeaseKeeper", "SwapParked"]

log = logging.getLogger("kiiex_async.workflow")

#: A write is only sent when at least this fraction of the lease is still ahead.
_FENCE_MARGIN: Final = 0.5


class SwapParked(WorkflowError):
    """The run stopped at a safe boundary (no write in flight) because its worker is
    shutting down; the swap stays queued for another worker."""


class LeaseKeeper:
    """Holds ``lease`` for one run (see the module docstring).

    ``granted_at`` is the monotonic time at which the request that granted the lease was
    sent; ``stop``, when set, asks the run to park at its next safe boundary.
    """

    def __init__(
        self,
        store: CheckpointStore,
        lease: Lease,
        *,
        ttl: float,
        granted_at: float,
        stop: anyio.Event | None = None,
    ) -> None:
        self.store = store
        self.lease = lease
        self.ttl = ttl
        self.stop = stop
        #: Monotonic time until which the lease is surely ours (measured from the request).
        self.valid_until = granted_at + ttl
        #: Set once the store refused this run's token: the run is fenced off.
        self.lost: LeaseLostError | None = None

    async def _fenced(self, call: Callable[[], Awaitable[Lease]], *, full: bool) -> None:
        if self.lost is not None:
            raise self.lost
        started = time.monotonic()
        try:
            lease = await call()
        except LeaseLostError as exc:
            self.lost = exc
            log.warning("swap %s: %s", self.lease.swap_id, exc)
            raise
        # A renewal that raced a save must not roll the save's revision back.
        self.lease = lease if full else attrs.evolve(self.lease, expires_at=lease.expires_at)
        self.valid_until = max(self.valid_until, started + self.ttl)

    async def save(self, record: SwapRecord) -> None:
        """Save ``record`` under the lease (renewing it)."""
        await self._fenced(lambda: self.store.save(record, self.lease, ttl=self.ttl), full=True)

    async def renew(self) -> None:
        """Extend the lease; :class:`LeaseLostError` if another runner took it."""
        await self._fenced(lambda: self.store.renew(self.lease, ttl=self.ttl), full=False)

    async def keep(self) -> None:
        """Renew the lease if half of it has passed since it was last extended."""
        if time.monotonic() > self.valid_until - self.ttl / 2:
            await self.renew()

    async def fence(self) -> None:
        """Just before a write is sent: make sure at least half of the lease is ahead,
        renewing it if not, or raise :class:`LeaseLostError` (the run stops, nothing sent).

        The intent's save, moments earlier, usually proved the token and extended the
        lease already; then no extra round trip is made."""
        if time.monotonic() > self.valid_until - self.ttl * _FENCE_MARGIN:
            await self.renew()
        if time.monotonic() > self.valid_until - self.ttl * _FENCE_MARGIN:
            self.lost = LeaseLostError(
                f"the lease on swap {self.lease.swap_id} took too long to renew: the write "
                "is not sent (the next holder reconciles)",
                swap_id=self.lease.swap_id,
            )
            log.warning("swap %s: %s", self.lease.swap_id, self.lost)
            raise self.lost

    def check_stop(self, record: SwapRecord) -> None:
        """Park (:class:`SwapParked`) if asked to stop and ``record`` is at a safe boundary:
        not terminal and no write in flight."""
        state: SwapState = record.state
        stopping = self.stop is not None and self.stop.is_set()
        if stopping and not state.is_terminal and not state.is_intent:
            raise SwapParked(
                f"swap {record.swap_id} parked in {state.value}: the worker is stopping",
                swap_id=record.swap_id,
            )

    async def heartbeat(self, scope: anyio.CancelScope) -> None:
        """Renew every third of the time-to-live until cancelled; when the lease is lost,
        cancel ``scope`` (the run) so that it stops at once."""
        while True:
            await anyio.sleep(self.ttl / 3)
            try:
                await self.renew()
            except LeaseLostError:
                scope.cancel()
                return
            except CheckpointError as exc:
                # The store is unreachable for now: the next save or fence decides.
                log.warning("swap %s: could not renew the lease: %s", self.lease.swap_id, exc)
