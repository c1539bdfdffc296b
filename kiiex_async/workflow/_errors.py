"""Workflow-specific errors; all are :class:`~kiiex_async.errors.WorkflowError`."""

from __future__ import annotations

from ..errors import WorkflowError

__all__ = [
    "CheckpointError",
    "CheckpointSchemaError",
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
