"""The public face of swaps: :class:`SwapWorkflow` (create, run, resume, list) and
:class:`SwapRun` (a running swap as an async iterator of progress events).

The step-by-step work of one run is :mod:`._runner`'s; this module owns what surrounds
it: registering a swap, taking and giving back its lease, reopening, reporting the end.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Self

import anyio
import anyio.abc
import attrs

from ..errors import ConfigurationError, InvalidInputError, KiiexError, WorkflowError
from ._errors import (
    CheckpointError,
    ExchangeMismatchError,
    SwapInterruptedError,
    SwapNotFoundError,
)
from ._ids import client_order_id_for, new_swap_id
from ._keeper import LeaseKeeper
from ._machine import SwapState, reopen, step_of
from ._record import ExchangeBinding, SwapRecord, TimelineEntry, exchange_key, utcnow
from ._request import SwapRequest
from ._result import ProgressEvent, ProgressKind, SwapResult
from ._runner import CheckpointHook, ProgressCallback, _Runner
from ._store import (
    DEFAULT_LEASE_TTL,
    CheckpointStore,
    Lease,
    LeaseOwner,
    RecordAcquirer,
    SwapQueue,
)

if TYPE_CHECKING:
    from ..client import KiiexClient
    from ..stream import Stream

__all__ = ["SwapRun", "SwapWorkflow"]

log = logging.getLogger("kiiex_async.workflow")


class SwapWorkflow:
    """Runs swaps through KIIEX's nine steps, exactly once, resumable after any crash.

    ``client`` is a :class:`~kiiex_async.KiiexClient` with credentials; ``store`` a
    :class:`CheckpointStore` (:class:`SqliteCheckpointStore` by default in applications).
    ``on_progress`` receives every :class:`ProgressEvent` of every run (a per-run callback
    can be added to :meth:`run` / :meth:`resume`; :meth:`stream` gives an async iterator).
    ``on_checkpoint`` is a test seam: it is awaited at every checkpoint boundary and its
    exceptions propagate.  ``max_send_attempts`` bounds how often one run sends the same
    write (each resend only after reconciliation proved the previous one never arrived);
    past it the run stops with :class:`SwapInterruptedError`, resumable.  One workflow can
    run many swaps concurrently.

    Every swap is bound to the exchange it was created on (``exchange``: by default the
    client's base URL, see :func:`exchange_key`; name it yourself when one exchange is
    reached under several URLs) and, once a run logged in, to its account and user:
    resuming it with a client of another exchange, account or user raises
    :class:`ExchangeMismatchError` before anything is sent.  A swap checkpointed before
    swaps recorded their exchange is bound to this workflow's on its next run (a warning
    is logged).

    ``account_stream`` (an open :meth:`KiiexClient.stream`, optional) lets the order, deposit and
    withdrawal polls wake as soon as the exchange pushes an event for that order or ticket
    instead of sleeping out their interval.  An event only triggers the next REST check
    (REST stays the source of truth), and polling at the usual intervals is the fallback
    whenever the socket is down or silent, so exactly-once is unchanged.
    """

    def __init__(
        self,
        client: KiiexClient,
        store: CheckpointStore,
        *,
        on_progress: ProgressCallback | None = None,
        on_checkpoint: CheckpointHook | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        max_send_attempts: int = 3,
        exchange: str | None = None,
        account_stream: Stream | None = None,
    ) -> None:
        if account_stream is not None and not callable(
            getattr(account_stream, "wait_account_change", None)
        ):
            raise ConfigurationError(
                "account_stream must be a kiiex_async.stream.Stream (client.stream())"
            )
        if exchange is not None and not (isinstance(exchange, str) and exchange.strip()):
            raise ConfigurationError("exchange must be a non-empty string naming the exchange")
        if not isinstance(store, CheckpointStore):
            raise ConfigurationError("store must implement kiiex_async.workflow.CheckpointStore")
        if not (isinstance(lease_ttl, int | float) and math.isfinite(lease_ttl) and lease_ttl > 0):
            raise ConfigurationError("lease_ttl must be a positive number of seconds")
        if isinstance(max_send_attempts, bool) or not (
            isinstance(max_send_attempts, int) and max_send_attempts >= 1
        ):
            raise ConfigurationError("max_send_attempts must be an int >= 1")
        self.client = client
        self.store = store
        self.on_progress = on_progress
        self.on_checkpoint = on_checkpoint
        self.lease_ttl = float(lease_ttl)
        self.max_send_attempts = max_send_attempts
        #: Pushed account events that wake the polls (``None``: poll only).
        self.account_stream = account_stream
        #: The exchange new swaps are bound to and resumed swaps must be bound to.
        self.exchange = exchange_key(client.base_url) if exchange is None else exchange.strip()

    def __repr__(self) -> str:
        return f"<SwapWorkflow client={self.client!r} store={type(self.store).__name__}>"

    async def _notify(self, callbacks: Sequence[ProgressCallback], event: ProgressEvent) -> None:
        for callback in callbacks:
            try:
                outcome = callback(event)
                if inspect.isawaitable(outcome):
                    await outcome
            except Exception:
                # A broken display must not break a money movement.
                log.exception("progress callback failed (ignored)")

    def _callbacks(self, extra: ProgressCallback | None) -> list[ProgressCallback]:
        return [cb for cb in (self.on_progress, extra) if cb is not None]

    async def create(self, request: SwapRequest, *, swap_id: str | None = None) -> str:
        """Register a swap (state CREATED) without running it; return its id.

        With an explicit ``swap_id`` this is idempotent: the same id and request return the
        existing swap, the same id with another request raises :class:`WorkflowError`.
        """
        return (await self._create(request, swap_id)).swap_id

    async def submit(self, request: SwapRequest, *, swap_id: str | None = None) -> str:
        """Queue a swap for a worker (:class:`SwapWorker`, ``kiiex worker``) without
        running it; return its id.

        The store must be a queue (:class:`PostgresCheckpointStore`,
        :class:`SqliteCheckpointStore`, :class:`MemoryCheckpointStore`); the swap is bound
        to this workflow's exchange, and only a worker of that exchange (and user, once a
        run logged in) claims it.  Idempotent for an explicit ``swap_id``, like
        :meth:`create`.
        """
        if not isinstance(self.store, SwapQueue):
            raise ConfigurationError(
                f"{type(self.store).__name__} is not a swap queue: use PostgresCheckpointStore "
                "or SqliteCheckpointStore"
            )
        return (await self._create(request, swap_id, queue=self.store)).swap_id

    async def _create(
        self, request: SwapRequest, swap_id: str | None, *, queue: SwapQueue | None = None
    ) -> SwapRecord:
        """:meth:`create` (or :meth:`submit` to ``queue``), returning the record as stored
        (the runner starts from it)."""
        if not isinstance(request, SwapRequest):
            raise InvalidInputError("request must be a SwapRequest")
        swap_id = new_swap_id() if swap_id is None else swap_id
        if not isinstance(swap_id, str) or not swap_id.strip():
            raise InvalidInputError("swap_id must be a non-empty string")
        now = utcnow()
        record = SwapRecord(
            swap_id=swap_id,
            request=request,
            client_order_id=client_order_id_for(swap_id),
            created_at=now,
            updated_at=now,
            timeline=(TimelineEntry(SwapState.CREATED, now, request.describe()),),
            exchange=ExchangeBinding(
                self.exchange,
                account_id=request.account_id or self.client.account_id,
                user_id=self.client.user_id,
            ),
        )
        # Insert first: the store refuses an existing id, and only then is it read.
        try:
            if queue is not None:
                await queue.submit(record)
            else:
                await self.store.create(record)
            return record
        except CheckpointError:
            existing = await self.store.get(swap_id)
            if existing is None:
                raise
        if existing.request != request:
            raise WorkflowError(
                f"swap {swap_id} already exists with another request "
                f"({existing.request.describe()})",
                swap_id=swap_id,
            )
        self._check_exchange(existing)
        return existing

    def _check_exchange(self, record: SwapRecord) -> SwapRecord:
        """``record`` bound to this workflow's exchange, or :class:`ExchangeMismatchError`
        when it is bound to another one (nothing has been sent)."""
        binding = record.exchange
        if binding is None:
            log.warning(
                "swap %s was checkpointed without its exchange (older kiiex_async): binding "
                "it to %s",
                record.swap_id,
                self.exchange,
            )
            return attrs.evolve(record, exchange=ExchangeBinding(self.exchange))
        if binding.exchange != self.exchange:
            raise ExchangeMismatchError(
                f"swap {record.swap_id} runs on {binding.exchange}, not on {self.exchange}: "
                f"resume it against {binding.exchange}",
                swap_id=record.swap_id,
                recorded=binding.exchange,
                given=self.exchange,
            )
        return record

    def _check_login(self, record: SwapRecord) -> SwapRecord:
        """After the run's login: ``record`` bound to the account and user the client logged
        in as, or :class:`ExchangeMismatchError` when it is bound to others (only the
        login has been sent).  The binding is persisted by the run's next save."""
        binding = record.exchange or ExchangeBinding(self.exchange)
        plan_account = record.plan.account_id if record.plan is not None else None
        recorded_account = plan_account or binding.account_id
        account = record.request.account_id or self.client.account_id
        user = self.client.user_id
        for what, recorded, given in (
            ("account", recorded_account, account),
            ("user", binding.user_id, user),
        ):
            if recorded is not None and given is not None and recorded != given:
                raise ExchangeMismatchError(
                    f"swap {record.swap_id} runs in {what} {recorded} of {binding.exchange}; "
                    f"these credentials are {what} {given}: resume it with the credentials "
                    f"of {what} {recorded}",
                    swap_id=record.swap_id,
                    recorded=f"{what} {recorded}",
                    given=f"{what} {given}",
                )
        bound = attrs.evolve(
            binding, account_id=recorded_account or account, user_id=binding.user_id or user
        )
        return record if bound == record.exchange else attrs.evolve(record, exchange=bound)

    async def run(
        self,
        request: SwapRequest,
        *,
        swap_id: str | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> SwapResult:
        """Run a swap to a terminal state and return its :class:`SwapResult`.

        Raises, before anything is sent, :class:`~kiiex_async.errors.InvalidInputError`
        (unknown asset or template, amount under the instrument minimum, book too thin or
        beyond the slippage limit) or :class:`~kiiex_async.errors.InsufficientFundsError`;
        the swap is recorded FAILED.  Raises :class:`SwapInterruptedError` when the exchange
        stayed unreachable past a step's limit, refused the credentials, or a write proven
        not to have arrived was sent ``max_send_attempts`` times; :class:`SwapLockedError`
        when another runner holds the swap.  After those the checkpoint is consistent and
        :meth:`resume` continues.  Use ``swap_id`` (an idempotency key) to make a retried
        ``run()`` return the same swap instead of starting a second one.
        """
        record = await self._create(request, swap_id)
        return await self._execute(
            record.swap_id, self._callbacks(on_progress), reopened=False, held=record
        )

    async def resume(
        self,
        swap_id: str,
        *,
        on_progress: ProgressCallback | None = None,
        reopen: bool = False,
        withdraw_fields: Mapping[str, str] | None = None,
    ) -> SwapResult:
        """Continue a swap from its last checkpoint (after a crash, Ctrl-C or a deploy).

        It logs in again and, in an ``*_INTENT`` state, reconciles with the exchange before
        it would send anything.  A terminal swap is returned as it is, except that
        ``reopen=True`` resumes a NEEDS_OPERATOR swap where it stopped (after an operator
        settled the question, or to keep waiting for a ticket), and a WITHDRAW_FAILED swap
        tries its withdrawal again when given ``withdraw_fields`` (merged into the form,
        checked against the template first) or ``reopen=True`` (the same form).
        ``withdraw_fields`` for a swap in any other state raises
        :class:`~kiiex_async.errors.InvalidInputError`.
        """
        return await self._execute(
            swap_id,
            self._callbacks(on_progress),
            reopened=reopen,
            withdraw_fields=withdraw_fields,
        )

    def stream(self, request: SwapRequest, *, swap_id: str | None = None) -> SwapRun:
        """Run a swap while iterating its progress::

            async with workflow.stream(request) as run:
                async for event in run:
                    print(event)
            result = run.result

        Leaving the block early cancels the run; its checkpoint stays consistent.
        """

        async def start(callback: ProgressCallback) -> SwapResult:
            return await self.run(request, swap_id=swap_id, on_progress=callback)

        return SwapRun(start)

    def stream_resume(self, swap_id: str, *, reopen: bool = False) -> SwapRun:
        """Like :meth:`stream`, for :meth:`resume`."""

        async def start(callback: ProgressCallback) -> SwapResult:
            return await self.resume(swap_id, on_progress=callback, reopen=reopen)

        return SwapRun(start)

    async def get(self, swap_id: str) -> SwapResult | None:
        """The current result of a swap (any state), or ``None``."""
        record = await self.store.get(swap_id)
        return None if record is None else SwapResult.from_record(record)

    async def list(self) -> list[SwapResult]:
        """Every swap of the store, oldest first."""
        return [SwapResult.from_record(r) for r in await self.store.list()]

    async def _execute(
        self,
        swap_id: str,
        callbacks: Sequence[ProgressCallback],
        *,
        reopened: bool,
        held: SwapRecord | None = None,
        claimed: Claimed | None = None,
        withdraw_fields: Mapping[str, str] | None = None,
    ) -> SwapResult:
        """Run the swap under a lease.  ``held`` is a record of it the caller has (just
        created or read): it is used when the lease says it is still the stored revision,
        instead of reading the record again.  ``claimed`` is a lease a worker already holds
        (with the record, how to give the lease back and when to park)."""
        owner = LeaseOwner.current()
        record: SwapRecord | None = None
        granted_at = time.monotonic()
        if claimed is not None:
            lease, record, granted_at = claimed.lease, claimed.record, claimed.granted_at
        elif held is None and isinstance(self.store, RecordAcquirer):
            lease, record = await self.store.acquire_record(swap_id, owner, ttl=self.lease_ttl)
        else:
            lease = await self.store.acquire(swap_id, owner, ttl=self.lease_ttl)
            if held is not None and lease.revision == held.revision:
                record = held
        keeper = LeaseKeeper(
            self.store,
            lease,
            ttl=self.lease_ttl,
            granted_at=granted_at,
            stop=claimed.stop if claimed else None,
        )
        error: BaseException | None = None
        try:
            if record is None:
                record = await self.store.get(swap_id)
            if record is None:  # pragma: no cover - acquire() already checked
                raise SwapNotFoundError(f"no swap {swap_id!r}", swap_id=swap_id)
            record = self._check_exchange(record)
            runner = _Runner(self, record, keeper, callbacks)
            if reopened and record.state is SwapState.NEEDS_OPERATOR:
                target = reopen(record.state, record.stopped_at)
                entry = TimelineEntry(target, utcnow(), "reopened by the operator")
                await runner._save(
                    attrs.evolve(
                        record,
                        state=target,
                        reason=None,
                        failed_step=None,
                        stopped_at=None,
                        timeline=(*record.timeline, entry),
                    )
                )
            try:
                if withdraw_fields is not None or (
                    reopened and record.state is SwapState.WITHDRAW_FAILED
                ):
                    await runner.retry_withdrawal(withdraw_fields or {})
                result = await _drive(runner, keeper)
            except WorkflowError:
                raise
            except KiiexError as exc:
                if exc is runner.raised:
                    raise
                step = step_of(runner.record.state)
                raise SwapInterruptedError(
                    f"swap {swap_id} interrupted in state {runner.record.state.value}: {exc}. "
                    "The checkpoint is consistent: resume it once the cause is fixed",
                    swap_id=swap_id,
                    step=step.label if step else None,
                ) from exc
        except BaseException as exc:
            error = exc
            raise
        finally:
            with anyio.CancelScope(shield=True):
                try:
                    if keeper.lost is None:
                        if claimed is not None:
                            await claimed.give_back(keeper.lease, error)
                        else:
                            await self.store.release(keeper.lease)
                except Exception:
                    log.warning("could not release the lease of swap %s", swap_id)
        await self._notify(
            callbacks,
            ProgressEvent(
                swap_id=swap_id,
                kind=ProgressKind.FINISHED,
                state=result.state,
                step=None,
                message=result.reason or result.state.value.lower(),
                at=utcnow(),
                result=result,
            ),
        )
        return result


@attrs.frozen
class Claimed:
    """A swap a worker claimed: its lease and record, the monotonic time the claim was
    sent, the event that asks its run to park, and how to give the lease back (given the
    run's exception, ``None`` when it ended)."""

    lease: Lease
    record: SwapRecord
    granted_at: float
    stop: anyio.Event
    give_back: Callable[[Lease, BaseException | None], Awaitable[None]]


async def _drive(runner: _Runner, keeper: LeaseKeeper) -> SwapResult:
    """``runner.drive()`` with the lease's heartbeat beside it; a lost lease stops the run
    at once with :class:`LeaseLostError` (no further write is made)."""
    results: list[SwapResult] = []
    errors: list[BaseException] = []
    async with anyio.create_task_group() as tg:

        async def body() -> None:
            try:
                results.append(await runner.drive())
            except anyio.get_cancelled_exc_class():
                raise
            except BaseException as exc:
                # Re-raised below, as is: not wrapped in an exception group.
                errors.append(exc)
            finally:
                tg.cancel_scope.cancel()

        tg.start_soon(keeper.heartbeat, tg.cancel_scope)
        tg.start_soon(body)
    if errors:
        raise errors[0]
    if keeper.lost is not None:
        raise keeper.lost
    if not results:  # pragma: no cover - only an outer cancellation gets here
        raise anyio.get_cancelled_exc_class()()
    return results[0]


class SwapRun:
    """A running swap as an async iterator of :class:`ProgressEvent` (see
    :meth:`SwapWorkflow.stream`).  ``result`` is set once the iteration ended."""

    def __init__(self, start: Callable[[ProgressCallback], Awaitable[SwapResult]]) -> None:
        self._start = start
        self._result: SwapResult | None = None
        self._error: BaseException | None = None
        self._surfaced = False
        self._done = False
        self._send, self._receive = anyio.create_memory_object_stream[ProgressEvent](math.inf)
        self._group: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._group = anyio.create_task_group()
        await self._group.__aenter__()
        self._group.start_soon(self._main)
        return self

    async def _main(self) -> None:
        async with self._send:
            try:
                self._result = await self._start(self._send.send)
            except Exception as exc:
                self._error = exc
            finally:
                self._done = True

    def __aiter__(self) -> AsyncIterator[ProgressEvent]:
        return self

    async def __anext__(self) -> ProgressEvent:
        try:
            return await self._receive.receive()
        except anyio.EndOfStream:
            if self._error is not None and not self._surfaced:
                self._surfaced = True
                raise self._error from None
            raise StopAsyncIteration from None

    @property
    def result(self) -> SwapResult:
        """The swap's result; raises the run's error if it failed, or
        :class:`WorkflowError` if it has not finished."""
        if self._error is not None:
            raise self._error
        if self._result is None:
            raise WorkflowError("the swap has not finished")
        return self._result

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._group is not None
        if not self._done:
            self._group.cancel_scope.cancel()
        try:
            # The body's own exception (if any) propagates as is, not wrapped in a group.
            await self._group.__aexit__(None, None, None)
        finally:
            self._receive.close()
        if exc_type is None and self._error is not None and not self._surfaced:
            self._surfaced = True
            raise self._error
        return None
