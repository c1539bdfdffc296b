"""Checked by mypy (``files`` in pyproject), never run: wrong types in a ``SwapRequest``
fail type checking.

Each line below must be a mypy error; ``warn_unused_ignores`` (strict mode) turns an
ignore that is no longer needed into an error, so if a field went back to accepting any
object, CI would fail here.
"""

from __future__ import annotations

from decimal import Decimal

from kiiex_async.workflow import DepositSpec, SwapRequest, WithdrawSpec


def wrong_types() -> None:
    """A float amount, a number as an asset, a misspelt keyword, a form of numbers."""
    SwapRequest("USDT", "COPM", 100.5)  # type: ignore[arg-type]
    SwapRequest(1, "COPM", "100")  # type: ignore[arg-type]
    SwapRequest("USDT", "COPM", "100", max_slipage=Decimal("0.01"))  # type: ignore[call-arg]
    SwapRequest("USDT", "COPM", "100", max_slippage=0.01)  # type: ignore[arg-type]
    DepositSpec(5.0)  # type: ignore[arg-type]
    WithdrawSpec("Standard", {"ExternalAddress": 1})  # type: ignore[dict-item]


def right_types() -> None:
    """The same requests spelt right type-check."""
    SwapRequest("USDT", "COPM", "100.5", max_slippage=Decimal("0.01"))
    SwapRequest("USDT", "COPM", Decimal(100), deposit=DepositSpec(5))
    WithdrawSpec("Standard", {"ExternalAddress": "0xfeed"}, amount="10")
