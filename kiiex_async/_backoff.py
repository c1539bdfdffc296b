"""The one backoff rule for waiting after failures: exponential with "equal jitter" (pure).

Used by the rate poller (a failing unit, the 429 gate) and the stream (reconnects).  The
HTTP retry engine (stamina, in the call pipeline) has its own, configured per client.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["equal_jitter"]


def equal_jitter(attempt: int, *, base: float, cap: float, rand: Callable[[], float]) -> float:
    """Seconds to wait after the ``attempt``-th consecutive failure (1, 2, ...).

    Half of ``min(cap, base * 2**(attempt-1))`` is fixed and the other half is scaled by
    ``rand()`` (a number in [0, 1)): never zero (no storm), never above ``cap``, and spread
    so that many waiters do not come back together.
    """
    ceiling = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 62))
    return ceiling / 2 + rand() * ceiling / 2
