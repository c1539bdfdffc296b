"""The swap worker: claims queued and orphaned swaps from a :class:`SwapQueue` and runs
them, many at once, until asked to stop (:class:`SwapWorker`)."""

from __future__ import annotations

import logging
import math
import time
from typing import Final

import anyio

from ..errors import ConfigurationError, KiiexError
from ._errors import ExchangeMismatchError, LeaseLostError
from ._keeper import SwapParked
from ._result import SwapResult
from ._store import Lease, LeaseOwner, SwapQueue
from ._workflow import Claimed, SwapWorkflow

__all__ = ["SwapWorker"]

log = logging.getLogger("kiiex_async.workflow")

#: A swap bound to another account than the worker's is looked at again this much later.
_MISMATCH_DELAY: Final = 300.0


class SwapWorker:
    """Runs the queued swaps of ``workflow``'s exchange (``SwapWorkflow.submit``), and the
    swaps whose runner died (lease expired), ``concurrency`` at a time.

    A worker claims only swaps bound to its workflow's exchange and, once a run recorded
    it, to the user its client logs in as: it never runs a swap it has no credentials
    for.  Every swap runs under a fenced lease (heartbeat, token on every write); a swap
    whose run was interrupted (the exchange unreachable past a step's limit) is deferred
    for ``retry_delay`` seconds, then claimed again by any worker.  :meth:`stop` (or
    SIGTERM in ``kiiex worker``) stops the claiming, lets running swaps reach a safe
    boundary (no write in flight), gives their leases back and returns from :meth:`run`.
    """

    def __init__(
        self,
        workflow: SwapWorkflow,
        *,
        concurrency: int = 4,
        poll_interval: float = 1.0,
        retry_delay: float = 10.0,
    ) -> None:
        if not isinstance(workflow.store, SwapQueue):
            raise ConfigurationError(
                f"{type(workflow.store).__name__} is not a swap queue: a worker needs "
                "PostgresCheckpointStore or SqliteCheckpointStore"
            )
        if isinstance(concurrency, bool) or not (isinstance(concurrency, int) and concurrency > 0):
            raise ConfigurationError("concurrency must be an int >= 1")
        for name, value in (("poll_interval", poll_interval), ("retry_delay", retry_delay)):
            if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
                raise ConfigurationError(f"{name} must be a number of seconds >= 0")
        self.workflow = workflow
        self.queue: SwapQueue = workflow.store
        self.concurrency = concurrency
        self.poll_interval = float(poll_interval)
        self.retry_delay = float(retry_delay)
        self.owner = LeaseOwner.current()
        #: Results of the swaps this worker finished (any terminal state), in order.
        self.finished: list[SwapResult] = []
        self._stopping = anyio.Event()
        self._changed = anyio.Event()
        self._running: set[str] = set()

    def __repr__(self) -> str:
        return f"<SwapWorker {self.owner.describe()} exchange={self.workflow.exchange!r}>"

    def stop(self) -> None:
        """Stop claiming; running swaps park at their next safe boundary."""
        self._stopping.set()
        self._changed.set()

    async def run(self) -> None:
        """Claim and run swaps until :meth:`stop`; return once every run gave its lease
        back.  Logs in first (the user id decides which swaps it may claim)."""
        client = self.workflow.client
        await client.authenticate()
        user_id = client.user_id
        log.info("worker %s started on %s", self.owner.describe(), self.workflow.exchange)
        async with anyio.create_task_group() as tg:
            while not self._stopping.is_set():
                free = self.concurrency - len(self._running)
                claimed = []
                if free > 0:
                    granted_at = time.monotonic()
                    claimed = await self.queue.claim(
                        self.owner,
                        exchange=self.workflow.exchange,
                        user_id=user_id,
                        ttl=self.workflow.lease_ttl,
                        limit=free,
                    )
                    for lease, record in claimed:
                        self._running.add(lease.swap_id)
                        run = Claimed(lease, record, granted_at, self._stopping, self._give_back)
                        tg.start_soon(self._run_one, run)
                if free <= 0 or not claimed:
                    self._changed = anyio.Event()
                    with anyio.move_on_after(self.poll_interval):
                        await self._changed.wait()
        log.info("worker %s stopped", self.owner.describe())

    async def _run_one(self, claimed: Claimed) -> None:
        swap_id = claimed.lease.swap_id
        try:
            callbacks = self.workflow._callbacks(None)
            result = await self.workflow._execute(
                swap_id, callbacks, reopened=False, claimed=claimed
            )
            self.finished.append(result)
        except SwapParked:
            log.info("swap %s parked: the worker is stopping", swap_id)
        except LeaseLostError as exc:
            log.warning(
                "swap %s: fenced off (%s); stopped without touching the exchange", swap_id, exc
            )
        except KiiexError as exc:
            log.warning("swap %s stopped: %s", swap_id, exc)
        except Exception:
            log.exception("swap %s: unexpected error (deferred)", swap_id)
        finally:
            self._running.discard(swap_id)
            self._changed.set()

    async def _give_back(self, lease: Lease, error: BaseException | None) -> None:
        """Release a finished swap's lease; defer an unfinished one (parked: at once)."""
        if error is None:
            await self.workflow.store.release(lease)
        elif isinstance(error, SwapParked | anyio.get_cancelled_exc_class()):
            await self.queue.defer(lease, delay=0)
        elif isinstance(error, ExchangeMismatchError):
            await self.queue.defer(lease, delay=_MISMATCH_DELAY)
        else:
            await self.queue.defer(lease, delay=self.retry_delay)
