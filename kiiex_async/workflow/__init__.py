"""Exactly-once stablecoin swaps on KIIEX, resumable after any crash.

:class:`SwapWorkflow` runs a :class:`SwapRequest` through the nine steps of KIIEX's
"Stablecoin FX Quick Start", checkpointing every step in a :class:`CheckpointStore`::

    async with KiiexClient(url, credentials=creds) as client:
        async with SqliteCheckpointStore("swaps.sqlite3") as store:
            workflow = SwapWorkflow(client, store, on_progress=print)
            result = await workflow.run(SwapRequest("USDT", "COPM", Decimal("100")))

Steps and states (:class:`SwapState`; ``*_INTENT`` = a write may be in flight)::

    1 authenticate   CREATED -> AUTHENTICATED        login, resolve assets/instrument, preflight
    2 fund           -> DEPOSIT_INTENT -> DEPOSIT_PENDING -> FUNDED   (CreateDepositTicket)
                     or -> FUNDED                                      (balance checked)
    3 rate           FUNDED -> QUOTED                L2 book: price, amount out, slippage
    4 order          QUOTED -> ORDER_INTENT -> ORDER_PLACED           (SendOrder)
    5 poll order     ORDER_PLACED -> ORDER_DONE      until the order is final
    6 trades         ORDER_DONE -> TRADES_READ       fills, average price, fees
    7 positions      TRADES_READ -> POSITIONS_CONFIRMED
    8 withdraw       -> WITHDRAW_INTENT -> WITHDRAW_PENDING           (CreateWithdrawTicket)
    9 poll withdraw  WITHDRAW_PENDING -> COMPLETED   (or POSITIONS_CONFIRMED -> COMPLETED)
    any running state -> FAILED (reason, step) or NEEDS_OPERATOR (a question the exchange
    cannot settle; everything known is in the record; ``resume(..., reopen=True)`` continues)
    steps 8-9 -> WITHDRAW_FAILED (refused / failed ticket after the trade: the proceeds stay
    in the account; ``resume(..., withdraw_fields={...})`` or ``reopen=True`` retries it)

The transitions are a pure table (:func:`transition_table`, :func:`transition`).

**Orientation.**  The instrument trading the two assets is found in either orientation.
When ``from_asset`` is the instrument's base the swap *sells* the base; otherwise it *buys*
the base with the quote asset.  Quantities are rounded down to ``QuantityIncrement`` (a
"receive" sell quantity is rounded *up*, see below), prices to ``PriceIncrement`` (a sell
limit up, a buy limit down) and checked against ``MinimumQuantity`` before anything is sent.

**What "spend exactly" / "receive exactly" mean** (:class:`AmountSide`; amounts are gross of
trading fees, which KIIEX charges in the asset received; fees are reported per product):

* selling the base (e.g. USDT -> COPM on USDTCOPM):

  - *spend exactly X*: the order's ``Quantity`` is X (rounded down to the increment), so
    the base spent is exact; what is received depends on the book.
  - *receive exactly Y*: the quantity is sized from the L2 snapshot taken at step 3: the
    base quantity whose fills, walking the bids, add up to Y, rounded *up* to the
    increment.  Received ≈ Y (≥ Y if the book did not move); not exact.

* buying the base (e.g. COPM -> USDC on USDCCOPM):

  - *receive exactly Y*: the order's ``Quantity`` is Y (rounded down): the base received
    is exact (gross of the fee charged in it).
  - *spend exactly X*: a market buy with ``Value`` = X (the exchange fills up to X of the
    quote asset); with a slippage limit, a Limit + IOC buy of ``floor(X / limit price)``,
    so the spend never exceeds X (it is lower by up to the slippage).

**Slippage limit.**  With ``max_slippage`` set, the order is Limit + IOC at the worst
acceptable price (best price × (1 ± limit)): it cannot fill beyond the limit; a partial
fill is reported (``SwapResult.partially_filled``) and the swap continues with what was
received.  Step 3 also refuses a book whose expected slippage exceeds the limit.

**Errors before anything is sent.**  Same asset twice, amount <= 0, a float amount:
:class:`~kiiex_async.errors.InvalidInputError` from :class:`SwapRequest`.  Unknown asset,
no instrument for the pair, amount under the minimum, a book too thin or beyond the limit,
a withdraw template or form field the exchange does not offer, a template field the form
leaves out, a withdrawal its fee would eat: ``InvalidInputError``
(``BelowMinimumError``); balance (plus deposit) too low:
:class:`~kiiex_async.errors.InsufficientFundsError`.  These are raised by
:meth:`SwapWorkflow.run` while nothing was sent yet (the swap is recorded FAILED); once a
write was sent, the same findings end the swap FAILED in its :class:`SwapResult` instead.

**Stopping without an answer.**  When the exchange stays unreachable past a step's limit,
authentication keeps failing, or a write proven not to have arrived was sent
``max_send_attempts`` times, ``run()``/``resume()`` raise :class:`SwapInterruptedError`
(``swap_id``, ``step``): the checkpoint is consistent and :meth:`SwapWorkflow.resume`
continues later.

**Exactly once.**  Before every side-effecting call its intent is committed (the order's
``ClientOrderId`` is :func:`client_order_id_for` the swap id; a ticket's form carries
``Comment: kiiex-swap:<swap_id>`` unless you set a ``Comment``, plus the numbers of the
tickets that already existed and the time); its result is committed right after, shielded
from cancellation.  An unknown outcome (timeout, dropped connection, 5xx, a crash) is
reconciled, never blindly retried:

* order: ``GetOrdersHistory(ClientOrderId)`` + ``GetOpenOrders`` filtered by client order
  id; one order -> adopted; several -> NEEDS_OPERATOR; none -> looked for again during
  ``StepTimeouts.reconcile_grace``, then sent again with the same client order id;
* withdrawal (CreateWithdrawTicket has no client id): tickets with the swap's marker; when
  the exchange does not echo it (or you set your own ``Comment``), new tickets of the same
  product, amount and template created after the intent; one -> adopted, several ->
  NEEDS_OPERATOR (never a guess), none -> sent again after the grace re-check;
* deposit: the same, with the marker in ``DepositInfo``.

Each read runs in the client's retry scope with the step's time limit as its whole budget
(:meth:`KiiexClient.retry_scope`): the client's own engine retries it, with jittered
backoff, until then; each retry is a ``RETRY`` progress event.  Session
expiry is handled by the client (one shared re-login).  A SIGKILLed run can be resumed at
once (its lease names a dead pid on this host).  No secret is ever checkpointed.
"""

from ._errors import (
    CheckpointError,
    CheckpointSchemaError,
    ExchangeMismatchError,
    LeaseLostError,
    SwapInterruptedError,
    SwapLockedError,
    SwapNotFoundError,
)
from ._ids import client_order_id_for, new_swap_id, swap_marker
from ._machine import (
    IllegalTransitionError,
    SwapEvent,
    SwapState,
    SwapStep,
    can_reopen,
    reopen,
    step_of,
    transition,
    transition_table,
)
from ._pg_store import PostgresCheckpointStore
from ._record import (
    ExchangeBinding,
    OrderProgress,
    QuoteInfo,
    SwapPlan,
    SwapRecord,
    TicketProgress,
    TimelineEntry,
    TradesSummary,
)
from ._request import AmountSide, DepositSpec, StepTimeouts, SwapRequest, WithdrawSpec
from ._result import ProgressEvent, ProgressKind, SwapResult
from ._runner import CheckpointHook, ProgressCallback
from ._sqlite_store import SqliteCheckpointStore
from ._store import (
    CheckpointStore,
    Lease,
    LeaseOwner,
    MemoryCheckpointStore,
    SwapQueue,
)
from ._worker import SwapWorker
from ._workflow import SwapRun, SwapWorkflow

__all__ = [
    "AmountSide",
    "CheckpointError",
    "CheckpointHook",
    "CheckpointSchemaError",
    "CheckpointStore",
    "DepositSpec",
    "ExchangeBinding",
    "ExchangeMismatchError",
    "IllegalTransitionError",
    "Lease",
    "LeaseLostError",
    "LeaseOwner",
    "MemoryCheckpointStore",
    "OrderProgress",
    "PostgresCheckpointStore",
    "ProgressCallback",
    "ProgressEvent",
    "ProgressKind",
    "QuoteInfo",
    "SqliteCheckpointStore",
    "StepTimeouts",
    "SwapEvent",
    "SwapInterruptedError",
    "SwapLockedError",
    "SwapNotFoundError",
    "SwapPlan",
    "SwapQueue",
    "SwapRecord",
    "SwapRequest",
    "SwapResult",
    "SwapRun",
    "SwapState",
    "SwapStep",
    "SwapWorker",
    "SwapWorkflow",
    "TicketProgress",
    "TimelineEntry",
    "TradesSummary",
    "WithdrawSpec",
    "can_reopen",
    "client_order_id_for",
    "new_swap_id",
    "reopen",
    "step_of",
    "swap_marker",
    "transition",
    "transition_table",
]
