"""A raw HTTP client of the simulator for its own tests: no SDK code above ``auth``."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import aiohttp

from kiiex_async import auth
from kiiex_async.sim import Simulator


class SignedApi:
    """POSTs JSON to ``sim.url/<Method>`` with fresh signed headers (``APIKey``,
    ``Signature``, ``UserId``, ``Nonce``) of the demo user, and decodes with ``Decimal``."""

    def __init__(self, http: aiohttp.ClientSession, sim: Simulator) -> None:
        self.http, self.sim = http, sim

    def signed(self) -> dict[str, str]:
        """A fresh set of the demo user's signed headers."""
        demo = self.sim.demo
        return auth.signed_headers(api_key=demo.api_key, api_secret=demo.api_secret, user_id=1)

    async def __call__(
        self, method: str, payload: dict[str, Any] | None = None, *, sign: bool = True
    ) -> Any:
        data = json.dumps(payload or {}).encode()
        headers = self.signed() if sign else {}
        async with self.http.post(f"{self.sim.url}/{method}", data=data, headers=headers) as resp:
            assert resp.status == 200
            return json.loads(await resp.read(), parse_float=Decimal)
