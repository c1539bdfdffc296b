"""Helpers shared by the stream tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def until(predicate: Callable[[], bool]) -> None:
    """Yield to the loop until ``predicate()`` holds; the timeout only guards a hang."""
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - polls counters the stream owns, no event
            await asyncio.sleep(0.01)
