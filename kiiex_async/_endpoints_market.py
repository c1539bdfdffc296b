"""Market-data endpoints of :class:`~kiiex_async.KiiexClient` (public calls, no login).

:class:`MarketDataMixin` owns ``Ping``, products, instruments (and the cache behind
:meth:`~MarketDataMixin.find_instrument`), Level 1, the Level 1 summary, the order book,
ticker history and :meth:`~MarketDataMixin.get_quote`.  Each endpoint reads as validate →
payload → call → structure.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Literal

from . import _validate as check
from . import _wire, pricing
from ._session import SessionMixin
from ._validate import Amount
from .errors import InvalidInputError
from .models import Instrument, L2Snapshot, Level1, Level1Summary, Pong, Product, Side, TickerBar

__all__ = ["MarketDataMixin"]


class MarketDataMixin(SessionMixin):
    """Public market-data calls (see the module docstring)."""

    _instruments: list[Instrument] | None

    # -- system ---------------------------------------------------------------------------

    async def ping(self, *, timeout: float | None = None) -> Pong:
        """``Ping``: check the endpoint answers."""
        return self._decode("Ping", await self._public("Ping", {}, timeout=timeout), Pong)

    # -- products and market data (public) ------------------------------------------------

    async def get_products(self, *, timeout: float | None = None) -> list[Product]:
        """``GetProducts``: every asset of the exchange."""
        data = await self._public("GetProducts", {"OMSId": self._oms_id}, timeout=timeout)
        return self._decode_list("GetProducts", data, Product)

    async def get_instruments(self, *, timeout: float | None = None) -> list[Instrument]:
        """``GetInstruments``: every tradable pair (also refreshes :meth:`find_instrument`'s
        cache)."""
        data = await self._public("GetInstruments", {"OMSId": self._oms_id}, timeout=timeout)
        instruments = self._decode_list("GetInstruments", data, Instrument)
        self._instruments = instruments
        return instruments

    async def get_instrument(
        self, instrument_id: int, *, timeout: float | None = None
    ) -> Instrument:
        """``GetInstrument``: one pair with its increments and minimum quantity."""
        payload = {
            "OMSId": self._oms_id,
            "InstrumentId": check.positive_id(instrument_id, "instrument_id"),
        }
        return self._decode(
            "GetInstrument",
            await self._public("GetInstrument", payload, timeout=timeout),
            Instrument,
        )

    async def find_instrument(
        self, a: str, b: str, *, refresh: bool = False, timeout: float | None = None
    ) -> Instrument:
        """The instrument trading symbols ``a`` and ``b`` in either orientation.

        Instruments are fetched once and cached (``refresh=True`` fetches them again).
        Raises :class:`~kiiex_async.errors.InvalidInputError` when there is none.
        """
        check.text(a, "a")
        check.text(b, "b")
        instruments = self._instruments
        if instruments is None or refresh:
            instruments = await self.get_instruments(timeout=timeout)
        return pricing.find_instrument(instruments, a, b)

    async def get_level1(self, instrument_id: int, *, timeout: float | None = None) -> Level1:
        """``GetLevel1``: best bid/offer and daily statistics of one instrument."""
        payload = {
            "OMSId": self._oms_id,
            "InstrumentId": check.positive_id(instrument_id, "instrument_id"),
        }
        return self._decode(
            "GetLevel1", await self._public("GetLevel1", payload, timeout=timeout), Level1
        )

    async def get_level1_summary_min(
        self,
        instrument_ids: Sequence[int] | None = None,
        *,
        base_currency: str | None = None,
        quote_currency: str | None = None,
        columns: Literal["node", "python"] = "node",
        timeout: float | None = None,
    ) -> list[Level1Summary]:
        """``GetLevel1SummaryMin``: last price and 24 h change of many instruments.

        Ask by ``instrument_ids`` and/or, as KIIEX's guide does, by ``base_currency`` and
        ``quote_currency`` (symbols such as ``"COPM"``, ``"USDT"``; sent as
        ``BaseCurrency``/``QuoteCurrency``).  ``columns`` names the row layout (the two
        AlphaPoint SDKs disagree; see :func:`kiiex_async._wire.parse_level1_summary`).
        """
        if columns not in ("node", "python"):
            raise InvalidInputError("columns must be 'node' or 'python'")
        payload: dict[str, Any] = {"OMSId": self._oms_id}
        if base_currency is not None:
            payload["BaseCurrency"] = check.text(base_currency, "base_currency").strip()
        if quote_currency is not None:
            payload["QuoteCurrency"] = check.text(quote_currency, "quote_currency").strip()
        if instrument_ids is not None:
            if isinstance(instrument_ids, str | bytes):
                raise InvalidInputError("instrument_ids must be a sequence of ints")
            ids = [check.positive_id(i, "instrument id") for i in instrument_ids]
            payload["InstrumentIds"] = "[" + ",".join(str(i) for i in ids) + "]"
        data = await self._public("GetLevel1SummaryMin", payload, timeout=timeout)
        return self._structure(
            "GetLevel1SummaryMin", lambda: _wire.parse_level1_summary(data, columns=columns)
        )

    async def get_l2_snapshot(
        self, instrument_id: int, *, depth: int = 100, timeout: float | None = None
    ) -> L2Snapshot:
        """``GetL2Snapshot``: the order book, bids best first, asks best first."""
        instrument_id = check.positive_id(instrument_id, "instrument_id")
        payload = {
            "OMSId": self._oms_id,
            "InstrumentId": instrument_id,
            "Depth": check.positive_id(depth, "depth"),
        }
        data = await self._public("GetL2Snapshot", payload, timeout=timeout)
        return self._structure(
            "GetL2Snapshot", lambda: _wire.parse_l2_snapshot(data, instrument_id)
        )

    async def get_ticker_history(
        self,
        instrument_id: int,
        *,
        interval: int,
        from_date: dt.datetime,
        to_date: dt.datetime,
        timeout: float | None = None,
    ) -> list[TickerBar]:
        """``GetTickerHistory``: OHLCV bars of ``interval`` seconds between two instants.

        ``from_date`` and ``to_date`` must be timezone-aware; they are sent in UTC as
        ``YYYY-MM-DDTHH:MM:SS``.  Rows are parsed by
        :func:`kiiex_async._wire.parse_ticker_history`.
        """
        instrument_id = check.positive_id(instrument_id, "instrument_id")
        seconds = check.positive_id(interval, "interval")
        start = check.utc_text(from_date, "from_date")
        end = check.utc_text(to_date, "to_date")
        if from_date > to_date:
            raise InvalidInputError("from_date must not be after to_date")
        payload = {
            "OMSId": self._oms_id,
            "InstrumentId": instrument_id,
            "Interval": seconds,
            "FromDate": start,
            "ToDate": end,
        }
        data = await self._public("GetTickerHistory", payload, timeout=timeout)
        return self._structure("GetTickerHistory", lambda: _wire.parse_ticker_history(data))

    async def get_quote(
        self,
        instrument_id: int,
        *,
        side: Side,
        base_quantity: Amount | None = None,
        quote_amount: Amount | None = None,
        depth: int = 100,
        timeout: float | None = None,
    ) -> pricing.Quote:
        """Price an order of ``side`` against the current book (``GetL2Snapshot``).

        Pass exactly one of ``base_quantity`` / ``quote_amount``; see
        :func:`kiiex_async.pricing.quote`.
        """
        side = check.member(side, Side, "side", frozenset({Side.BUY, Side.SELL}))
        if (base_quantity is None) == (quote_amount is None):
            raise InvalidInputError("pass exactly one of base_quantity and quote_amount")
        if base_quantity is not None:
            base_quantity = pricing.check_amount(base_quantity, name="base_quantity")
        if quote_amount is not None:
            quote_amount = pricing.check_amount(quote_amount, name="quote_amount")
        book = await self.get_l2_snapshot(instrument_id, depth=depth, timeout=timeout)
        return pricing.quote(
            book, side=side, base_quantity=base_quantity, quote_amount=quote_amount
        )
