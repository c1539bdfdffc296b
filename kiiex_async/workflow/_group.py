"""Group commit: the writes that arrive while one batch is being committed go together in
the next one.  Owns the queue, the leader hand-over and what a cancelled caller may do;
each store owns how a batch is applied (:class:`GroupCommit`'s ``apply_batch``).

Used by the SQLite store (every write) and the PostgreSQL store (checkpoint saves, the
writes a running swap makes most): concurrent swaps share one commit, and one disk flush,
instead of queueing for one each, while each caller still returns only once the
transaction holding its write has committed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from ._errors import CheckpointError

__all__ = ["GroupCommit", "Op"]


class Op:
    """One write queued for the next batch (``payload`` says what to write), and what
    became of it: ``apply_batch`` sets ``result`` or calls :meth:`fail`."""

    __slots__ = ("done", "error", "payload", "result", "taken", "wake")

    def __init__(self, payload: Any) -> None:
        self.payload = payload
        #: Set once the op left the queue for a batch (it will be applied, or failed).
        self.taken = False
        #: Set once the batch holding it committed (or failed): ``result`` / ``error`` hold.
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None
        #: Set when the op is done, or when its caller is asked to lead the next batch.
        self.wake = anyio.Event()

    def fail(self, error: BaseException) -> None:
        self.result, self.error = None, error


class GroupCommit:
    """The queue of one store's writes and its one batch in flight.

    ``apply_batch(batch)`` applies every op of ``batch`` in one transaction and fills in
    each op's outcome; it returns once that transaction committed or failed.  ``where``
    names the store in the error of a batch that could not finish.
    """

    def __init__(self, apply_batch: Callable[[list[Op]], Awaitable[None]], where: str) -> None:
        self._apply_batch = apply_batch
        self._where = where
        #: Writes waiting for the next batch, oldest first.
        self._queue: list[Op] = []
        #: True while a batch is being applied (by its leader).
        self._flushing = False

    @property
    def flushing(self) -> bool:
        """True while a batch is being applied."""
        return self._flushing

    @property
    def queued(self) -> int:
        """How many writes wait for the next batch."""
        return len(self._queue)

    async def write(self, payload: Any) -> Any:
        """Queue a write for the next batch; return its result once that batch committed.

        The caller that finds no batch in flight leads one: it takes every queued write
        (its own included) and applies them together, then wakes their callers and hands
        the lead to the oldest write queued meanwhile.  A caller cancelled while its write
        is still queued withdraws it; once the write is in a batch, the caller waits for
        the outcome before the cancellation proceeds, so a write is never left in doubt
        inside this process.
        """
        op = Op(payload)
        self._queue.append(op)
        while not op.done:
            if not self._flushing:
                await self._flush()
                continue
            try:
                await op.wake.wait()
            except anyio.get_cancelled_exc_class():
                if not op.taken:
                    self._queue.remove(op)
                    self._hand_over()
                    raise
                with anyio.CancelScope(shield=True):
                    while not op.done:
                        op.wake = anyio.Event()
                        await op.wake.wait()
                raise
            if not op.done:
                op.wake = anyio.Event()
        if op.error is not None:
            raise op.error
        return op.result

    async def _flush(self) -> None:
        batch, self._queue = self._queue, []
        for op in batch:
            op.taken = True
        self._flushing = True
        applied: list[bool] = []
        failure: list[Exception] = []

        async def apply() -> None:
            # The batch holds other callers' writes: it is finished even if its leader is
            # cancelled.  It runs in a child task because a shield only holds against
            # anyio's cancellation: a plain asyncio ``task.cancel()`` of the leader
            # reaches the child through the task group, which honours the shield.
            with anyio.CancelScope(shield=True):
                try:
                    await self._apply_batch(batch)
                except Exception as exc:
                    failure.append(exc)
                else:
                    applied.append(True)

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(apply)
        finally:
            self._flushing = False
            for op in batch:
                if not applied and op.error is None:
                    op.fail(CheckpointError(f"checkpoint store {self._where}: write not applied"))
                op.done = True
                op.wake.set()
            self._hand_over()
        if failure:
            raise failure[0]

    def _hand_over(self) -> None:
        """Ask the oldest queued write's caller to lead the next batch."""
        if self._queue and not self._flushing:
            self._queue[0].wake.set()
