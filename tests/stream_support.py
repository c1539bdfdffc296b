"""Helpers shared by the stream tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from kiiex_async.sim import DemoUser


async def until(predicate: Callable[[], bool]) -> None:
    """Yield to the loop until ``predicate()`` holds; the timeout only guards a hang."""
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 - polls counters the stream owns, no event
            await asyncio.sleep(0.01)


#: Stream options for tests: no liveness ping to speak of, quick reconnects, 5 s calls.
QUIET_STREAM: dict[str, float] = {
    "ping_interval": 3600.0,
    "ping_timeout": 5.0,
    "reconnect_base": 0.01,
    "reconnect_cap": 0.05,
    "verify_interval": 3600.0,
    "call_timeout": 5.0,
}
#: The code :data:`TWOFA` must give to log in.
TWOFA_CODE = "424242"
#: A simulator user (7, account 70) whose login asks for a 2FA code; add it beside the demo
#: user: ``SimConfig(users=(DemoUser(), TWOFA))``.
TWOFA = DemoUser(
    user_id=7,
    account_id=70,
    username="twofa",
    api_key="twofa-key",
    api_secret="twofa-secret",
    two_fa_code=TWOFA_CODE,
)
