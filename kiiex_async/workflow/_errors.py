"""Workflow-specific errors; all are :class:`~kiiex_async.errors.WorkflowError`."""

from __future__ import annotations

from ..errors import WorkflowError

__all__ = [
    "CheckpointError",
    "CheckpointSchemaError",
    "ExchangeMismatchError",
    "LeaseLostError",
    "SwapInterruptedError",
    "SwapLockedError",
    "SwapNotFoundError",
]


class CheckpointError(WorkflowError):
    """The checkpoint store cannot be used (unreadable file, corrupt record)."""


class CheckpointSchemaError(CheckpointError):
    """The checkpoint file was written by an incompatible version of kiiex_async."""


class SwapNotFoundError(CheckpointError):
    """No swap with this id in the store."""


class SwapLockedError(WorkflowError):
    """Another live runner holds the swap's lease; wait for it or for the lease to expire.

    ``holder`` describes the holder (owner id, pid, host); ``expires_in`` is in seconds.
    """

    def __init__(
        self, message: str, *, swap_id: str, holder: str = "", expires_in: float = 0.0
    ) -> None:
        super().__init__(message, swap_id=swap_id)
        self.holder = holder
        self.expires_in = expires_in


class LeaseLostError(WorkflowError):
    """This runner's lease was taken over (it expired); it stops without writing."""


class SwapInterruptedError(WorkflowError):
    """The runner could not finish a step (the exchange stayed unreachable past the step's
    time limit, or the store refused a write).  The checkpoint is consistent: resume the swap
    with :meth:`SwapWorkflow.resume` once the cause is gone."""


class ExchangeMismatchError(WorkflowError):
    """The swap is bound to another exchange, account or user than this run's client.

    Raised before anything is sent (for an account or user: right after the login, before
    any other call).  ``recorded`` and ``given`` name the two sides (URLs or ids, never a
    credential).  Resume the swap with a client of the recorded exchange and account.
    """

    def __init__(self, message: str, *, swap_id: str, recorded: str, given: str) -> None:
        super().__init__(message, swap_id=swap_id)
        self.recorded = recorded
        self.given = given
