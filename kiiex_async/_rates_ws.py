"""The push side of ``RatePoller(source="ws")``: Level1 pushes from one client stream.

``PushFeed.run`` opens ``client.stream()``, subscribes every instrument's Level1 and hands
each push to the poller at once.  ``latest`` tells the poller's schedule whether the stream
currently vouches for an instrument (connected, and a value received on *this* connection):
if so the slot refreshes that value instead of polling over HTTP; if not (socket down,
reconnecting, not yet subscribed) the slot polls over HTTP as usual.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio

from ._stream_wire import backoff_delay
from .errors import KiiexError
from .models import Level1
from .stream import Stream

__all__ = ["PushFeed"]

log = logging.getLogger("kiiex_async.rates")


class PushFeed:
    """Level1 pushes of ``ids`` through ``client.stream(**options)``."""

    def __init__(
        self,
        client: Any,
        ids: Sequence[int],
        on_push: Callable[[int, Level1], None],
        options: Mapping[str, Any] | None = None,
    ) -> None:
        self._client = client
        self._ids = tuple(ids)
        self._on_push = on_push
        self._options = dict(options or {})
        self._stream: Stream | None = None
        # instrument id -> (connection number, value) of its newest push
        self._latest: dict[int, tuple[int, Level1]] = {}
        #: Pushes received.
        self.pushes = 0

    @property
    def connected(self) -> bool:
        """True while the stream is up."""
        return self._stream is not None and self._stream.connected

    def latest(self, instrument_id: int) -> Level1 | None:
        """The newest pushed value if the stream is up and sent it on this connection."""
        stream = self._stream
        seen = self._latest.get(instrument_id)
        if stream is None or seen is None or not stream.connected:
            return None
        connection, value = seen
        return value if connection == stream.reconnects else None

    async def run(self) -> None:
        """Stream until cancelled (the poller's task group owns this task).

        If the stream cannot be opened the poller keeps polling over HTTP and the stream is
        tried again with capped, jittered backoff.
        """
        attempt = 0
        rand = random.Random().random
        while True:
            stream: Stream = self._client.stream(**self._options)
            try:
                await stream.__aenter__()
            except KiiexError as exc:
                attempt += 1
                log.warning("rates: no stream (%s); polling over HTTP meanwhile", exc)
                await anyio.sleep(backoff_delay(attempt, base=1.0, cap=60.0, rand=rand))
                continue
            attempt = 0
            self._stream = stream
            try:
                async with anyio.create_task_group() as tg:
                    for instrument_id in self._ids:
                        tg.start_soon(self._pump, stream, instrument_id)
            finally:
                self._stream = None
                # anyio re-cancels every await of a cancelled task: shield the close.
                with anyio.CancelScope(shield=True):
                    await stream.aclose()

    async def _pump(self, stream: Stream, instrument_id: int) -> None:
        async for value in stream.level1(instrument_id):
            self.pushes += 1
            self._latest[instrument_id] = (stream.reconnects, value)
            self._on_push(instrument_id, value)
