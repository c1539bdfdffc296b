"""The ``dialect`` fixture: a test module that imports it runs its simulator tests once
per simulator dialect (``from dialect_support import dialect``)."""

from __future__ import annotations

import pytest

from kiiex_async.sim import DIALECTS


@pytest.fixture(params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    """Each simulator dialect in turn: ``"apex"`` (AlphaPoint's full answers) and
    ``"guide"`` (KIIEX's quick-start shapes: no session token, thin order status/trades)."""
    value: str = request.param
    return value
