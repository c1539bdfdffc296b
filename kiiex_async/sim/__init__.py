"""A local, AlphaPoint-compatible KIIEX exchange: for tests, demos and users' own CI.

``async with Simulator() as sim:`` serves ``sim.url`` (``http://127.0.0.1:<port>/ap``) with
the demo user ``sim.demo``; :func:`serve` runs it standalone (``kiiex sim``).  The exchange
logic is pure (``sim.exchange``), faults are injected with :class:`Fault` /
:func:`parse_fault_spec`, and state can live in a JSON file.  This package imports only
``kiiex_async.auth`` and ``kiiex_async.errors`` from the SDK, and writes its JSON by hand.
"""

from ._config import DemoUser, InstrumentSpec, ProductSpec, SimConfig
from ._faults import Fault, parse_fault_spec
from ._server import Simulator, serve, serve_async

__all__ = [
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
