"""The simulator's controllable clock."""

from __future__ import annotations

import time

__all__ = ["SimClock"]


class SimClock:
    """Epoch seconds that run at ``speed`` x real time and can be moved forward.

    ``speed=0`` freezes time: only :meth:`advance` moves it, which makes ticket schedules,
    drift and session expiry deterministic in tests.
    """

    def __init__(self, start: float | None = None, speed: float = 1.0) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._base = time.time() if start is None else float(start)
        self._mono = time.monotonic()
        self._speed = speed

    @property
    def speed(self) -> float:
        """Simulated seconds per real second."""
        return self._speed

    def now(self) -> float:
        """Current simulated time (epoch seconds)."""
        if self._speed == 0:
            return self._base
        return self._base + (time.monotonic() - self._mono) * self._speed

    def advance(self, seconds: float) -> float:
        """Move time forward by ``seconds`` (>= 0); returns the new time."""
        if seconds < 0:
            raise ValueError("time only moves forward")
        self._base += seconds
        return self.now()

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on (0 freezes)."""
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._base = self.now()
        self._mono = time.monotonic()
        self._speed = speed
