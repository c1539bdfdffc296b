"""Decode cost: ``_wire.loads`` + ``_wire.structure_list`` against plain ``json.loads``.

The payloads are the largest realistic answers a user meets: 1,000 orders
(``GetOrdersHistory``), 1,000 trades (``GetTradesHistory``) and 50 positions
(``GetAccountPositions``), with every key AlphaPoint sends (most of which the models
ignore), .NET decimals written with 28 fractional digits, numeric strings, enum names as
strings and ``.NET`` tick timestamps — the shapes of the reference's samples.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from ._common import Report, Stats

__all__ = ["build_payloads", "run"]


class _Num(str):
    """A JSON number written verbatim (so 28-digit .NET decimals survive)."""

    __slots__ = ()


def _encode(obj: Any) -> str:
    if isinstance(obj, _Num):
        return str.__str__(obj)
    if isinstance(obj, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_encode(v)}" for k, v in obj.items()) + "}"
    if isinstance(obj, list):
        return "[" + ",".join(_encode(v) for v in obj) + "]"
    return json.dumps(obj)


def _net(value: Decimal | float | str, places: int = 28) -> _Num:
    """A .NET ``decimal`` as AlphaPoint prints it: fixed point, ``places`` fraction digits."""
    return _Num(f"{Decimal(str(value)):.{places}f}")


def _ticks(ms: int) -> int:
    return ms * 10_000 + 621_355_968_000_000_000


def _order(rng: random.Random, i: int) -> dict[str, Any]:
    qty = Decimal(rng.randint(1, 500_000)) / 100
    price = Decimal(rng.randint(390_000, 410_000)) / 100
    done = rng.random() < 0.7
    executed = qty if done else Decimal(0)
    ms = 1_700_000_000_000 + i * 1_337
    return {
        "Side": rng.choice(["Buy", "Sell"]),
        "OrderId": 2_543_565_000 + i,
        "Price": _net(price if rng.random() < 0.5 else 0),
        "Quantity": _net(0 if done else qty),
        "DisplayQuantity": _net(qty),
        "Instrument": rng.randint(1, 4),
        "Account": 1,
        "AccountName": "demo@example.com",
        "OrderType": rng.choice(["Market", "Limit"]),
        "ClientOrderId": rng.getrandbits(62),
        "OrderState": "FullyExecuted" if done else rng.choice(["Working", "Canceled"]),
        "ReceiveTime": ms,
        "ReceiveTimeTicks": _ticks(ms),
        "LastUpdatedTime": ms + 25,
        "LastUpdatedTimeTicks": _ticks(ms + 25),
        "OrigQuantity": _net(qty),
        "QuantityExecuted": _net(executed),
        "GrossValueExecuted": _net(executed * price),
        "ExecutableValue": _net(0),
        "AvgPrice": _net(price if done else 0),
        "CounterPartyId": 0,
        "ChangeReason": "Trade" if done else "NewInputAccepted",
        "OrigOrderId": 2_543_565_000 + i,
        "OrigClOrdId": 0,
        "EnteredBy": 1,
        "UserName": "demo",
        "IsQuote": False,
        "InsideAsk": _net(price + 1),
        "InsideAskSize": _net(Decimal("12.5")),
        "InsideBid": _net(price - 1),
        "InsideBidSize": _net(Decimal("3.25")),
        "LastTradePrice": _net(price),
        "RejectReason": "",
        "IsLockedIn": False,
        "CancelReason": "" if done else "UserModified",
        "OrderFlag": "AddedToBook, RemovedFromBook",
        "UseMargin": False,
        "StopPrice": _net(0),
        "PegPriceType": "Unknown",
        "PegOffset": _net(0),
        "PegLimitOffset": _net(0),
        "IpAddress": "127.0.0.1",
        "ClientOrderIdUuid": None,
        "OMSId": 1,
    }


def _trade(rng: random.Random, i: int) -> dict[str, Any]:
    qty = Decimal(rng.randint(1, 500_000)) / 1000
    price = Decimal(rng.randint(390_000, 410_000)) / 100
    value = qty * price
    ms = 1_700_000_000_000 + i * 911
    # Newer AlphaPoint builds send some numerics as strings: mix both, as the wild does.
    as_str = i % 4 == 0
    return {
        "OMSId": 1,
        "ExecutionId": 16_916_567 + i,
        "TradeId": 14_476_351 + i,
        "OrderId": 2_543_565_000 + i // 2,
        "AccountId": 1,
        "AccountName": "demo@example.com",
        "SubAccountId": 0,
        "ClientOrderId": rng.getrandbits(62),
        "InstrumentId": rng.randint(1, 4),
        "Side": rng.choice(["Buy", "Sell"]),
        "OrderType": "Market",
        "Quantity": str(_net(qty)) if as_str else _net(qty),
        "RemainingQuantity": _net(0),
        "Price": str(_net(price)) if as_str else _net(price),
        "Value": _net(value),
        "CounterParty": str(rng.randint(2, 99)),
        "OrderTradeRevision": 1,
        "Direction": "NoChange",
        "IsBlockTrade": False,
        "Fee": _net(value * Decimal("0.0025")),
        "FeeProductId": rng.randint(1, 4),
        "OrderOriginator": 1,
        "UserName": "demo",
        "TradeTimeMS": ms,
        "MakerTaker": rng.choice(["Maker", "Taker"]),
        "AdapterTradeId": 0,
        "InsideBid": _net(price - 1),
        "InsideBidSize": _net(Decimal("3.25")),
        "InsideAsk": _net(price + 1),
        "InsideAskSize": _net(Decimal("12.5")),
        "IsQuote": False,
        "CounterPartyClientUserId": 1,
        "NotionalProductId": 2,
        "NotionalRate": _net(1),
        "NotionalValue": _net(value),
        "NotionalHoldAmount": 0,
        "TradeTime": _ticks(ms),
    }


def _position(rng: random.Random, i: int) -> dict[str, Any]:
    amount = Decimal(rng.randint(0, 10**12)) / 10**8
    zero = _net(0)
    return {
        "OMSId": 1,
        "AccountId": 1,
        "ProductSymbol": f"P{i:03d}",
        "ProductId": i + 1,
        "Amount": _net(amount),
        "Hold": _net(amount / 10),
        "PendingDeposits": zero,
        "PendingWithdraws": zero,
        "TotalDayDeposits": _net(amount),
        "TotalMonthDeposits": _net(amount),
        "TotalYearDeposits": _net(amount),
        "TotalDayDepositNotional": _net(amount),
        "TotalMonthDepositNotional": _net(amount),
        "TotalYearDepositNotional": _net(amount),
        "TotalDayWithdraws": 0,
        "TotalMonthWithdraws": 0,
        "TotalYearWithdraws": 0,
        "TotalDayWithdrawNotional": 0,
        "TotalMonthWithdrawNotional": 0,
        "TotalYearWithdrawNotional": 0,
        "NotionalProductId": 2,
        "NotionalProductSymbol": "USDT",
        "NotionalValue": str(_net(amount)),
        "NotionalHoldAmount": 0,
        "NotionalRate": 1,
        "TotalDayTransferNotional": 0,
    }


def build_payloads(
    *, orders: int = 1000, trades: int = 1000, positions: int = 50, seed: int = 7
) -> dict[str, tuple[bytes, type[Any]]]:
    """JSON bodies (bytes) and the model each decodes to, keyed by figure name."""
    from kiiex_async.models import Order, Position, Trade

    rng = random.Random(seed)
    return {
        "orders": (_encode([_order(rng, i) for i in range(orders)]).encode(), Order),
        "trades": (_encode([_trade(rng, i) for i in range(trades)]).encode(), Trade),
        "positions": (_encode([_position(rng, i) for i in range(positions)]).encode(), Position),
    }


def _time(fn: Callable[[], object], loops: int) -> float:
    t0 = time.perf_counter()
    for _ in range(loops):
        fn()
    return (time.perf_counter() - t0) / loops


def run(report: Report, *, quick: bool) -> None:
    """Figure 4: decode + structure time per payload, and its ratio to ``json.loads``."""
    from kiiex_async import _wire

    payloads = build_payloads()
    reps = 5 if quick else 11
    total_full = 0.0
    total_json = 0.0
    best_full = 0.0
    best_json = 0.0
    sizes = []
    for name, (body, cls) in payloads.items():
        rows = len(json.loads(body))
        sizes.append(f"{name}: {rows} rows, {len(body):,} bytes")
        # Sanity: the SDK must actually build the models (not just return raw dicts).
        built = _wire.structure_list(_wire.loads(body), cls)
        if len(built) != rows or not isinstance(built[0], cls):
            raise RuntimeError(f"structure_list({name}) did not return {rows} {cls.__name__}")

        def plain(b: bytes = body) -> object:
            return json.loads(b)

        def loads_only(b: bytes = body) -> object:
            return _wire.loads(b)

        def full(b: bytes = body, c: type[Any] = cls) -> object:
            return _wire.structure_list(_wire.loads(b), c)

        # Aim at ~50 ms per sample so timer noise stays well under 1%.
        loops = max(1, int(0.05 / max(_time(full, 1), 1e-6)))
        sp: list[float] = []
        sl: list[float] = []
        sf: list[float] = []
        for _ in range(reps):
            sp.append(_time(plain, loops) * 1e3)
            sl.append(_time(loads_only, loops) * 1e3)
            sf.append(_time(full, loops) * 1e3)
        p = report.add(f"decode.{name}.json_loads_ms", Stats("ms", tuple(sp)))
        lo = report.add(f"decode.{name}.wire_loads_ms", Stats("ms", tuple(sl)))
        f = report.add(f"decode.{name}.wire_loads_structure_ms", Stats("ms", tuple(sf)))
        report.scalar(f"decode.{name}.us_per_row", f.median * 1e3 / rows)
        report.ratio(f"decode_{name}_vs_json_loads", f.median / p.median)
        report.ratio(f"decode_{name}_loads_only_vs_json_loads", lo.median / p.median)
        total_full += f.median
        total_json += p.median
        best_full += f.min
        best_json += p.min
    report.note("decode_payloads", "; ".join(sizes))
    report.ratio("decode_all_vs_json_loads", total_full / total_json)
    # The fastest sample of each: CPU-bound work that noise on a shared machine can only
    # slow down, so the best samples are the steadiest comparison (what timeit reports).
    report.ratio("decode_all_vs_json_loads_best", best_full / best_json)
