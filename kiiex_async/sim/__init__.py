"""A local, AlphaPoint-compatible KIIEX exchange: for tests, demos and users' own CI.

::

    from kiiex_async.sim import Simulator, SimConfig, Fault

    async with Simulator(SimConfig(seed=1)) as sim:
        sim.url                  # "http://127.0.0.1:<port>/ap"
        sim.credentials_kwargs   # Credentials(**...) logs in as the demo user
        sim.faults.inject(Fault("SendOrder", "drop_after", times=1))
        sim.advance(10)          # simulated time: tickets advance, mids drift
        sim.exchange.balance(1, "USDT")   # (amount, hold)

:func:`serve` runs it standalone (``kiiex sim``; also ``python -m kiiex_async.sim``).

Wire behaviour: ``/ap/<Method>`` and ``/AP/<Method>`` (prefix, method and request keys
case-insensitive), POST with a JSON body or GET with a query string for every method,
numbers or numeric strings accepted.  Answers are the bare AlphaPoint payload with HTTP
200 -- PascalCase objects, camelCase tickets with an int ``Status`` -- including the
generic ``{"result","errormsg","errorcode","detail"}`` error object, ``Not Authorized``
(errorcode 20) and a failed login (``{"Authenticated":false,...}``).  Only an unknown
method (404, errorcode 104), a body that is not JSON (400, errorcode 100), injected
faults and simulator bugs (500, errorcode 102) use other statuses.  Sessions travel in
the ``aptoken`` header; ccxt-style signed headers work on every private call.

Dialects: ``SimConfig(dialect="guide")`` answers the calls of KIIEX's quick-start guide in
exactly the guide's shapes (a login with no session token, so private calls must carry
the signed headers; a four-field order status and trades; camelCase positions) and every
other call as the default ``"apex"`` dialect does (see :mod:`kiiex_async.sim._guide`).

Admin routes (not authenticated; keep the simulator on loopback): ``GET /_sim/ledger``,
``GET|POST|DELETE /_sim/faults`` (``{"spec": "SendOrder:drop_after:1"}``),
``POST /_sim/advance`` (``{"seconds": 5}``), ``POST /_sim/expire_sessions``.

This package imports only ``kiiex_async.auth`` and ``kiiex_async.errors`` from the SDK and
writes every response by hand, so an SDK converter bug cannot hide behind it.
"""

from ._config import DIALECTS, DemoUser, InstrumentSpec, ProductSpec, SimConfig
from ._faults import Fault, parse_fault_spec
from ._server import Simulator, serve, serve_async

__all__ = [
    "DIALECTS",
    "DemoUser",
    "Fault",
    "InstrumentSpec",
    "ProductSpec",
    "SimConfig",
    "Simulator",
    "parse_fault_spec",
    "serve",
    "serve_async",
]
