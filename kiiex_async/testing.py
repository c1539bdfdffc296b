"""Test doubles for code that uses :class:`~kiiex_async.KiiexClient`: :class:`MockTransport`.

``MockTransport(handler)`` replaces the network under a client, as httpx's does::

    from kiiex_async import KiiexClient
    from kiiex_async.testing import MockTransport, Request, Response

    def handler(request: Request) -> Response:
        if request.name == "GetLevel1":
            return Response(200, json={"InstrumentId": 1, "BestBid": "4000.5"})
        return Response(404, json={"result": False, "errormsg": "Resource Not Found"})

    async with KiiexClient("http://exchange.test/ap", transport=MockTransport(handler)) as c:
        level1 = await c.get_level1(1)

Everything above the transport still runs: validation, encoding, the rate budget, the
pause after a 429, authentication and re-login, the status → error table, retries of
reads and the rules for writes.  The handler may raise
:class:`~kiiex_async.errors.ConnectError` (the request never left: a write is retried),
:class:`~kiiex_async.errors.RequestTimeout` or :class:`~kiiex_async.errors.TransportError`
(the request may have arrived: a write becomes
:class:`~kiiex_async.errors.UnknownOutcomeError`).
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from ._transport import DEFAULT_POOL_SIZE, Request, Response

__all__ = ["Handler", "MockTransport", "Request", "Response"]

#: What :class:`MockTransport` calls for each request: a function or a coroutine function.
Handler = Callable[[Request], Response | Awaitable[Response]]


class MockTransport:
    """A transport that answers every request by calling ``handler(request)``.

    ``requests`` lists every request received, in order (handy for "nothing was sent"
    assertions); ``pool_size`` is what :attr:`KiiexClient.pool_size` reports.  After
    :meth:`aclose`, requests raise ``RuntimeError``.
    """

    def __init__(self, handler: Handler, *, pool_size: int = DEFAULT_POOL_SIZE) -> None:
        if not callable(handler):
            raise TypeError("handler must be a function of a Request returning a Response")
        self._handler = handler
        self.pool_size = pool_size
        self.requests: list[Request] = []
        self.closed = False

    def __repr__(self) -> str:
        return f"<MockTransport {len(self.requests)} requests{' closed' if self.closed else ''}>"

    async def handle_async_request(self, request: Request) -> Response:
        """Record ``request`` and return what the handler answers."""
        if self.closed:
            raise RuntimeError("this MockTransport is closed")
        self.requests.append(request)
        response = self._handler(request)
        if inspect.isawaitable(response):
            response = await response
        if not isinstance(response, Response):
            raise TypeError(
                f"the MockTransport handler returned {type(response).__name__}, "
                "not a kiiex_async.testing.Response"
            )
        return response

    async def aclose(self) -> None:
        """Mark the transport closed (there is nothing to release)."""
        self.closed = True
