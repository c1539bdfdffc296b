"""Deterministic identifiers derived from a swap id (pure)."""

from __future__ import annotations

import hashlib
import uuid

__all__ = ["client_order_id_for", "new_swap_id", "swap_marker"]

_MASK_63 = (1 << 63) - 1
_MARKER_PREFIX = "kiiex-swap:"


def client_order_id_for(swap_id: str) -> int:
    """The swap's ``ClientOrderId``: the first 8 bytes of sha256(swap_id), masked to 63 bits.

    Always positive and non-zero, so it fits AlphaPoint's signed 64-bit ``ClientOrderId``
    and can never be confused with the default ``0``.  The same swap id always gives the
    same value, which is what lets a resumed swap find its order.
    """
    digest = hashlib.sha256(swap_id.encode("utf-8")).digest()
    value = int.from_bytes(digest[:8], "big") & _MASK_63
    return value or 1


def swap_marker(swap_id: str) -> str:
    """The text put in a ticket's ``Comment`` so that the swap can find its ticket again."""
    return f"{_MARKER_PREFIX}{swap_id}"


def new_swap_id() -> str:
    """A fresh, random swap id (a UUID4 in hex)."""
    return uuid.uuid4().hex
