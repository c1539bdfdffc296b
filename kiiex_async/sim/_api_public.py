"""Public API handlers: ``Ping``, products, instruments and market data.

``GetLevel1`` (its JSON cached until the book or the last trade changes),
``GetLevel1SummaryMin`` (with the guide's ``BaseCurrency`` / ``QuoteCurrency``),
``GetL2Snapshot`` and ``GetTickerHistory`` candles.  No session needed.
"""

from __future__ import annotations

from . import _guide as guide
from . import _render as render
from ._call import Call, Handlers, Reply, _ok
from ._exchange import Exchange
from ._history import candles, date_ms
from ._json import dumps
from ._params import BadRequest
from ._records import ZERO, ms

__all__ = ["PublicHandlers"]


def _pair_filter(ex: Exchange, ids: list[int], base: str, quote: str) -> list[int]:
    """The instruments among ``ids`` whose base / quote product symbols match (blank = any)."""
    found = []
    for iid in ids:
        spec = ex.market(iid).spec
        if (not base or ex.products[spec.base].symbol.upper() == base) and (
            not quote or ex.products[spec.quote].symbol.upper() == quote
        ):
            found.append(iid)
    return found


class PublicHandlers(Handlers):
    """Handlers of the public calls (see the module doc)."""

    _level1_cache: dict[int, tuple[int, bytes]]

    def ping(self, call: Call) -> Reply:
        """``{"msg":"PONG"}``."""
        return _ok({"msg": "PONG"})

    def health_check(self, call: Call) -> Reply:
        """Generic success (the real shape is undocumented)."""
        return _ok(render.generic(True, None, 0, None))

    def get_products(self, call: Call) -> Reply:
        """Every product."""
        return _ok([render.product(p) for p in self.exchange.products.values()])

    def get_product(self, call: Call) -> Reply:
        """One product by ``ProductId``."""
        return _ok(render.product(self.exchange.product(call.params.integer("ProductId"))))

    def get_instruments(self, call: Call) -> Reply:
        """Every instrument."""
        ex = self.exchange
        return _ok([render.instrument(m.spec, ex) for m in ex.markets.values()])

    def get_instrument(self, call: Call) -> Reply:
        """One instrument by ``InstrumentId``."""
        market = self.exchange.market(call.params.integer("InstrumentId"))
        return _ok(render.instrument(market.spec, self.exchange))

    def get_level1(self, call: Call) -> Reply:
        """Top of book; the JSON is cached until the book or the last trade changes."""
        market = self.exchange.market(call.params.integer("InstrumentId"))
        iid = market.spec.instrument_id
        cached = self._level1_cache.get(iid)
        if cached is not None and cached[0] == market.version:
            return 200, cached[1]
        payload = dumps(render.level1(market, ms(call.now)))
        self._level1_cache[iid] = (market.version, payload)
        return 200, payload

    def get_level1_summary_min(self, call: Call) -> Reply:
        """Rows ``[id, symbol, last, 24h px change, 24h % change, 24h volume]`` (strings in
        the guide dialect), filtered by ``InstrumentIds`` and by the guide's
        ``BaseCurrency`` / ``QuoteCurrency`` (product symbols; a pair asked the other way
        round finds the instrument quoted the other way)."""
        p = call.params
        wanted = p.json_value("InstrumentIds")
        if isinstance(wanted, int) and not isinstance(wanted, bool):
            wanted = [wanted]
        if wanted is not None and not isinstance(wanted, list):
            raise BadRequest("InstrumentIds must be a JSON list of ids")
        ex = self.exchange
        ids = [int(i) for i in wanted] if wanted else list(ex.markets)
        base, quote = (
            p.text("BaseCurrency").strip().upper(),
            p.text("QuoteCurrency").strip().upper(),
        )
        if base or quote:
            ids = _pair_filter(ex, ids, base, quote) or _pair_filter(ex, ids, quote, base)
        now_ms = ms(call.now)
        rows = [render.level1_summary(ex.market(i), now_ms) for i in ids]
        return _ok([guide.level1_summary(r) for r in rows] if self.guide else rows)

    def get_ticker_history(self, call: Call) -> Reply:
        """Candles ``[End, High, Low, Open, Close, Volume, Bid, Ask, InstrumentId, Begin]``
        of ``Interval`` seconds from ``FromDate`` to ``ToDate`` (dates, ISO, POSIX or
        ticks; default: the last 100 intervals up to now)."""
        p = call.params
        market = self.exchange.market(p.integer("InstrumentId"))
        interval = p.integer("Interval", 60)
        if interval <= 0:
            raise BadRequest("Interval must be a positive number of seconds")
        try:
            end = date_ms(p.raw("ToDate")) if p.has("ToDate") else ms(call.now)
            start = date_ms(p.raw("FromDate")) if p.has("FromDate") else end - 100 * interval * 1000
        except ValueError:
            raise BadRequest("FromDate / ToDate must be dates, ISO-8601 times or timestamps")
        bid, ask = market.best_bid, market.best_ask
        rows = candles(
            market.prints,
            instrument_id=market.spec.instrument_id,
            interval=interval,
            start_ms=start,
            end_ms=end,
            opening_price=market.reference_price,
            bid=bid.limit_price if bid else ZERO,
            ask=ask.limit_price if ask else ZERO,
        )
        return _ok(rows)

    def get_l2_snapshot(self, call: Call) -> Reply:
        """Aggregated book, 10-column rows, ``Depth`` levels per side (default 100)."""
        market = self.exchange.market(call.params.integer("InstrumentId"))
        depth = call.params.integer("Depth", 100)
        return _ok(render.l2_snapshot(market, depth if depth > 0 else 100))
