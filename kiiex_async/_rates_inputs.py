"""The rate poller's inputs: the source protocol, modes, instruments and option checks.

:class:`RateSource` is what the poller needs from a client; :class:`RateMode` which call
it makes; :func:`_resolve` maps ids, symbols (any case and separators) and instruments to
instruments; the ``_check_*`` helpers refuse bad options with ``InvalidInputError``, and
:func:`_in_flight_cap` derives the default ``max_in_flight`` from the client's pool.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Sequence
from typing import Protocol, TypeGuard

from ._transport import DEFAULT_POOL_SIZE
from .errors import InvalidInputError
from .models import Instrument, Level1, Level1Summary

__all__ = ["InstrumentSpec", "RateMode", "RateSource"]

InstrumentSpec = int | str | Instrument


class RateSource(Protocol):
    """What the poller needs from a client; ``KiiexClient`` provides it.

    A source may also have an int ``pool_size`` (``KiiexClient.pool_size``): the poller then
    keeps a tenth of that pool free for other calls (see ``max_in_flight``).  A wrapper
    around a client should forward it.
    """

    async def get_instruments(self) -> list[Instrument]:
        """All instruments (used once, to resolve symbols)."""
        ...

    async def get_level1(self, instrument_id: int) -> Level1:
        """Top of book of one instrument."""
        ...

    async def get_level1_summary_min(
        self, instrument_ids: Sequence[int] | None = None
    ) -> list[Level1Summary]:
        """Last price of many instruments in one call."""
        ...


class RateMode(enum.StrEnum):
    """Which call the poller makes, and so which fields a tick carries."""

    #: ``GetLevel1`` per instrument: bid, ask and last, plus the exchange timestamp.
    BOOK = "book"
    #: ``GetLevel1SummaryMin`` per batch of instruments: last price only (bid/ask are None).
    LAST = "last"


_SEPARATORS = re.compile(r"[^0-9A-Z]")


def _norm_symbol(symbol: str) -> str:
    return _SEPARATORS.sub("", symbol.upper())


def _resolve(specs: Sequence[InstrumentSpec], known: Sequence[Instrument]) -> list[Instrument]:
    """Map ids, symbols (``"USDTCOPM"``, ``"usdt/copm"``) and instruments to instruments.

    Keeps the caller's order and drops duplicates.  Raises ``InvalidInputError`` naming every
    spec that matches no instrument.
    """
    by_id = {i.instrument_id: i for i in known}
    by_symbol: dict[str, Instrument] = {}
    for inst in known:
        for name in (inst.symbol, inst.venue_symbol):
            if name:
                by_symbol.setdefault(_norm_symbol(name), inst)
    out: dict[int, Instrument] = {}
    unknown: list[str] = []
    for spec in specs:
        found: Instrument | None
        if isinstance(spec, Instrument):
            found = spec
        elif isinstance(spec, bool):
            found = None
        elif isinstance(spec, int):
            found = by_id.get(spec)
        else:
            text = str(spec)
            found = by_symbol.get(_norm_symbol(text))
            if found is None and text.strip().isdigit():
                found = by_id.get(int(text))
        if found is None:
            unknown.append(repr(spec))
        else:
            out.setdefault(found.instrument_id, found)
    if unknown:
        raise InvalidInputError(f"unknown instrument(s): {', '.join(unknown)}")
    return list(out.values())


def _is_count(value: object, minimum: int) -> TypeGuard[int]:
    """Whether ``value`` is an int (not a bool) of at least ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _check_count(name: str, value: int, minimum: int) -> int:
    if not _is_count(value, minimum):
        raise InvalidInputError(f"{name} must be an int >= {minimum}, got {value!r}")
    return value


def _in_flight_cap(client: object, max_in_flight: int | None) -> int:
    """``max_in_flight`` checked, or its default from the client's pool size."""
    if max_in_flight is not None:
        return _check_count("max_in_flight", max_in_flight, 1)
    pool = getattr(client, "pool_size", None)
    if not _is_count(pool, 1):
        # A source that does not say (a wrapper around a client, a fake): assume the pool
        # of a default KiiexClient, which is also aiohttp's default connection limit.
        pool = DEFAULT_POOL_SIZE
    return max(1, pool - max(1, pool // 10))


def _check_seconds(name: str, value: float, *, allow_zero: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{name} must be a number of seconds, got {value!r}")
    ok = value >= 0 if allow_zero else value > 0
    if not ok or not math.isfinite(value):
        bound = ">= 0" if allow_zero else "> 0"
        raise InvalidInputError(f"{name} must be finite and {bound}, got {value!r}")
    return float(value)
