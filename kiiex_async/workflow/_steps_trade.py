"""The trade steps of a swap: rate (3), order (4), poll it (5), trades (6), positions (7).

It owns :class:`_TradeSteps`: quoting the order from the book, sending it once with the
swap's ClientOrderId and reconciling it by that id, polling it to a final state, summing
its fills (and working out fees the trades do not state, from the ledger or the balance
movement), and confirming the balances after the trade.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Final

import anyio
import attrs

from ..errors import ApiError
from ..models import DepositStatus, Order, OrderState, Position, Side, Trade
from ._errors import SwapInterruptedError
from ._machine import SwapEvent, SwapState, SwapStep
from ._planning import OrderPlan
from ._reconcile import match_orders
from ._record import OrderProgress, QuoteInfo, SwapPlan, TradesSummary, utcnow
from ._result import ProgressKind
from ._runner_context import _ZERO, _available, _RunnerContext

#: How many recent ledger entries are searched for the fees of the swap's trades.
_JOURNAL_DEPTH: Final = 500
#: ``TradesSummary.derived["fees"]`` between steps 6 and 7 when the trades state no fee.
_FEES_UNKNOWN: Final = "not stated by the trades: from the balance movement at step 7"


def _order_summary(plan: SwapPlan, executed: Decimal, avg_price: Decimal) -> TradesSummary:
    """Step 6 from the order alone (the exchange listed no trades): ``QuantityExecuted``
    base units at ``AvgPrice``."""
    quote = executed * avg_price
    sells_base = plan.side is Side.SELL
    how = "QuantityExecuted × AvgPrice of the order (the exchange listed no trades)"
    return TradesSummary(
        trade_ids=(),
        base_quantity=executed,
        quote_value=quote,
        spent=executed if sells_base else quote,
        received=quote if sells_base else executed,
        average_price=avg_price,
        derived={"spent": how, "received": how, "fees": _FEES_UNKNOWN},
    )


def _percent(value: Decimal) -> str:
    return f"{value * 100:.4f}%"


class _TradeSteps(_RunnerContext):
    """The order and what it did (a mixin of :class:`._runner._Runner`)."""

    # -- step 3: rate ---------------------------------------------------------------------

    async def rate(self) -> None:
        plan = self.plan
        book = await self.read(
            "GetL2Snapshot", lambda: self.client.get_l2_snapshot(plan.instrument_id)
        )
        positions = await self.positions()
        planned = await self._funded_order(SwapStep.RATE, positions, book)
        if planned is None:
            return
        order, _ = planned
        await self.commit(
            SwapEvent.QUOTED,
            self._describe_plan(order),
            quote=QuoteInfo(
                best_price=order.best_price,
                expected_price=order.expected_price,
                worst_price=order.worst_price,
                expected_spend=order.expected_spend,
                expected_receive=order.expected_receive,
                slippage=order.slippage,
                limit_price=order.limit_price,
                taken_at=utcnow(),
            ),
            order=OrderProgress(
                client_order_id=self.record.client_order_id,
                instrument_id=plan.instrument_id,
                side=order.side,
                order_type=order.order_type,
                time_in_force=order.time_in_force,
                quantity=order.quantity,
                value=order.value,
                limit_price=order.limit_price,
            ),
        )

    def _describe_plan(self, order: OrderPlan) -> str:
        request = self.request
        text = (
            f"rate {order.expected_price} (best {order.best_price}): expect to spend "
            f"{order.expected_spend} {request.from_asset} and receive {order.expected_receive} "
            f"{request.to_asset}, slippage {_percent(order.slippage)}"
        )
        if order.limit_price is not None and request.max_slippage is not None:
            text += f" (limit {_percent(request.max_slippage)}: price {order.limit_price})"
        return text

    # -- steps 4 and 5: order, poll it ----------------------------------------------------

    async def order(self) -> None:
        order = self.record.order
        assert order is not None
        amount = (
            f"quantity {order.quantity}" if order.quantity is not None else f"value {order.value}"
        )
        price = f" limit {order.limit_price}" if order.limit_price is not None else ""
        await self.commit(
            SwapEvent.ORDER_REQUESTED,
            f"SendOrder {order.side.name} {order.order_type.name} "
            f"{order.time_in_force.name} {amount}{price} ClientOrderId {order.client_order_id}",
            order=attrs.evolve(order, attempts=1, intent_at=utcnow()),
        )
        await self.send_order()

    async def send_order(self) -> None:
        order = self.record.order
        assert order is not None
        sent = await self._send_write(
            "SendOrder",
            SwapStep.ORDER,
            lambda: self.client.send_order(
                order.instrument_id,
                order.side,
                order.quantity,
                order_type=order.order_type,
                time_in_force=order.time_in_force,
                limit_price=order.limit_price,
                value=order.value,
                client_order_id=order.client_order_id,
                account_id=self.account_id,
            ),
            reconcile=self.reconcile_order,
        )
        if sent is None:
            return
        await self.commit(
            SwapEvent.ORDER_ACCEPTED,
            f"order {sent.order_id} accepted",
            order=attrs.evolve(order, order_id=sent.order_id),
        )

    async def _orders_with_client_id(self) -> list[Order]:
        order = self.record.order
        assert order is not None
        history = await self.read(
            "GetOrdersHistory",
            lambda: self.client.get_orders_history(
                account_id=self.account_id,
                client_order_id=order.client_order_id,
                instrument_id=order.instrument_id,
            ),
        )
        open_orders = await self.read(
            "GetOpenOrders", lambda: self.client.get_open_orders(account_id=self.account_id)
        )
        return match_orders(
            [*history, *open_orders],
            client_order_id=order.client_order_id,
            instrument_id=order.instrument_id,
            account_id=self.account_id,
        )

    async def reconcile_order(self) -> None:
        order = self.record.order
        assert order is not None
        found = await self.find("order", self._orders_with_client_id)
        if len(found) == 1:
            await self.commit(
                SwapEvent.ORDER_ACCEPTED,
                f"reconciled: order {found[0].order_id} carries ClientOrderId "
                f"{order.client_order_id}",
                order=attrs.evolve(order, order_id=found[0].order_id),
            )
        elif found:
            ids = ", ".join(str(o.order_id) for o in found)
            await self.escalate(
                SwapStep.ORDER,
                f"{len(found)} orders ({ids}) carry this swap's ClientOrderId "
                f"{order.client_order_id}: check them on the exchange",
            )
        else:
            await self._resend(SwapStep.ORDER, "SendOrder", "order", order)
            if self.record.state is SwapState.ORDER_INTENT:
                await self.send_order()

    async def poll_order(self) -> None:
        progress = self.record.order
        assert progress is not None
        assert progress.order_id is not None
        order_id = progress.order_id
        timeouts = self.request.timeouts
        deadline = anyio.current_time() + timeouts.order
        interval = timeouts.order_poll
        seen: tuple[object, ...] = ()
        while True:
            order = await self.read(
                "GetOrderStatus",
                lambda: self.client.get_order_status(order_id, account_id=self.account_id),
                not_found_is_transient=True,
            )
            progress = attrs.evolve(
                progress,
                order_state=order.order_state,
                quantity_executed=order.quantity_executed,
                gross_value_executed=order.gross_value_executed,
                avg_price=order.avg_price,
                reject_reason=order.reject_reason or order.cancel_reason or "",
            )
            if (order.order_state, order.quantity_executed) != seen:
                seen = (order.order_state, order.quantity_executed)
                await self.emit(
                    ProgressKind.STATUS,
                    f"order {order_id}: {order.order_state.name}, executed "
                    f"{order.quantity_executed} of {order.orig_quantity or progress.quantity}",
                    {
                        "order_id": str(order_id),
                        "order_state": order.order_state.name,
                        "quantity_executed": str(order.quantity_executed),
                    },
                )
            if order.order_state.is_final:
                if order.quantity_executed > 0:
                    full = order.order_state is OrderState.FULLY_EXECUTED
                    partial = "" if full else " (partially filled)"
                    await self.commit(
                        SwapEvent.ORDER_FINISHED,
                        f"order {order_id} {order.order_state.name}{partial}: executed "
                        f"{order.quantity_executed} at {order.avg_price}",
                        order=progress,
                    )
                else:
                    why = f": {progress.reject_reason}" if progress.reject_reason else ""
                    await self.fail(
                        SwapStep.POLL_ORDER,
                        f"order {order_id} ended {order.order_state.name} with nothing "
                        f"executed{why}",
                        order=progress,
                    )
                return
            if anyio.current_time() >= deadline:
                await self.escalate(
                    SwapStep.POLL_ORDER,
                    f"order {order_id} still {order.order_state.name} after "
                    f"{timeouts.order:g} s (executed {order.quantity_executed}); it may still "
                    "fill: check it on the exchange, or resume with reopen=True",
                    order=progress,
                )
                return
            await self.wait_change(
                interval, order_id=order_id, client_order_id=self.record.client_order_id
            )
            interval = min(interval * 1.5, timeouts.max_poll)

    # -- step 6: trades -------------------------------------------------------------------

    async def read_trades(self) -> None:
        progress, plan = self.record.order, self.plan
        assert progress is not None
        assert progress.order_id is not None
        order_id = progress.order_id
        executed = progress.quantity_executed or _ZERO
        timeouts = self.request.timeouts
        deadline = anyio.current_time() + timeouts.step
        interval = timeouts.order_poll
        while True:
            trades = await self.read(
                "GetTradesHistory",
                lambda: self.client.get_trades_history(
                    account_id=self.account_id, instrument_id=plan.instrument_id, order_id=order_id
                ),
            )
            unique = {(t.trade_id, t.execution_id): t for t in trades if t.order_id == order_id}
            fills = sorted(unique.values(), key=lambda t: (t.trade_id, t.execution_id or 0))
            total = sum((t.quantity for t in fills), _ZERO)
            if total == executed:
                summary = await self._summarize(fills)
                break
            if anyio.current_time() >= deadline:
                if not fills and progress.avg_price:
                    # An exchange that lists no trades still said what the order did.
                    summary = _order_summary(plan, executed, progress.avg_price)
                    break
                await self.escalate(
                    SwapStep.TRADES,
                    f"the fills of order {order_id} add up to {total}, but the order executed "
                    f"{executed}",
                )
                return
            await self.sleep(interval)
            interval = min(interval * 1.5, timeouts.max_poll)
        fees = ", ".join(f"{v} {k}" for k, v in sorted(summary.fees.items()))
        if not fees:
            fees = "not stated (worked out at step 7)" if "fees" in summary.derived else "none"
        await self.commit(
            SwapEvent.TRADES_READ,
            f"{len(fills)} fill(s): spent {summary.spent} {self.request.from_asset}, received "
            f"{summary.received} {self.request.to_asset} at {summary.average_price}; fees {fees}",
            trades=summary,
        )

    async def _summarize(self, fills: list[Trade]) -> TradesSummary:
        plan = self.plan
        base = sum((t.quantity for t in fills), _ZERO)
        quote = sum((t.value if t.value else t.quantity * t.price for t in fills), _ZERO)
        symbols = {plan.base_product_id: plan.base_symbol, plan.quote_product_id: plan.quote_symbol}
        fees: dict[str, Decimal] = {}
        for fill in fills:
            if not fill.fee:
                continue
            if fill.fee_product_id not in symbols:
                products = await self.read("GetProducts", self.client.get_products)
                symbols.update({p.product_id: p.symbol.upper() for p in products})
            symbol = symbols.get(fill.fee_product_id or 0, f"#{fill.fee_product_id}")
            fees[symbol] = fees.get(symbol, _ZERO) + fill.fee
        sells_base = plan.side is Side.SELL
        derived: dict[str, str] = {}
        if any(t.value is None for t in fills):
            quote_side = "received" if sells_base else "spent"
            derived[quote_side] = "Σ quantity × price of the trades (they state no Value)"
        if fills and all(t.fee is None for t in fills):
            derived["fees"] = _FEES_UNKNOWN
        return TradesSummary(
            trade_ids=tuple(sorted({t.trade_id for t in fills})),
            base_quantity=base,
            quote_value=quote,
            spent=base if sells_base else quote,
            received=quote if sells_base else base,
            average_price=(quote / base) if base else _ZERO,
            fees=fees,
            derived=derived,
        )

    # -- step 7: positions ----------------------------------------------------------------

    async def confirm_positions(self) -> None:
        request, trades = self.request, self.record.trades
        assert trades is not None
        positions = await self.positions()
        after = self._balances(positions)
        before = self.record.balances_before.get(request.to_asset, _ZERO)
        delta = after[request.to_asset] - before
        if trades.derived.get("fees") == _FEES_UNKNOWN:
            trades = await self._fees_from_journal(trades) or self._fees_from_balances(
                trades, after
            )
        net = trades.received - trades.fees.get(request.to_asset, _ZERO)
        note = f"{request.to_asset} balance {after[request.to_asset]} ({delta:+} since the start"
        if delta == net:
            note += ", as the fills say)"
        else:
            note += f"; the fills say {net:+}: other activity on the account?)"
        if "fees" in trades.derived:
            note += f"; fees {trades.derived['fees']}"
        await self.commit(SwapEvent.POSITIONS_CONFIRMED, note, balances_after=after, trades=trades)

    async def _fees_from_journal(self, trades: TradesSummary) -> TradesSummary | None:
        """The fees the trades did not state, from the account's ledger
        (``GetAccountTransactions``: its ``Fee`` entries referencing this order's trades).

        ``None`` when the exchange has no such call or the recent ledger does not show
        every trade of the order (the caller then falls back on the balance movement).
        """
        if not trades.trade_ids:
            return None
        try:
            entries = await self.read(
                "GetAccountTransactions",
                lambda: self.client.get_account_transactions(
                    account_id=self.account_id, depth=_JOURNAL_DEPTH
                ),
            )
        except (ApiError, SwapInterruptedError):
            return None
        ours = set(trades.trade_ids)
        traded = {
            e.reference_id
            for e in entries
            if e.reference_type == "Trade" and e.transaction_type == "Trade"
        }
        if not ours <= traded:
            return None
        plan = self.plan
        symbols = {plan.base_product_id: plan.base_symbol, plan.quote_product_id: plan.quote_symbol}
        fees: dict[str, Decimal] = {}
        for entry in entries:
            if (
                entry.transaction_type == "Fee"
                and entry.reference_type == "Trade"
                and entry.reference_id in ours
            ):
                symbol = symbols.get(entry.product_id, f"#{entry.product_id}")
                fees[symbol] = fees.get(symbol, _ZERO) + entry.dr - entry.cr
        how = "from the account's ledger (GetAccountTransactions Fee entries of the trades)"
        return attrs.evolve(
            trades,
            fees={k: v for k, v in fees.items() if v},
            derived={**trades.derived, "fees": how},
        )

    def _fees_from_balances(
        self, trades: TradesSummary, after: Mapping[str, Decimal]
    ) -> TradesSummary:
        """The trading fees the trades did not state, from how the two balances moved.

        Each asset's fee is what the trades (and a deposit credited during the swap) explain
        minus what the balance really did.  A result below zero or not below the traded
        amount means something else moved the account: the fees then stay unstated rather
        than guessed.
        """
        request, record = self.request, self.record
        before = record.balances_before
        deposit = record.deposit
        credited = (
            deposit.amount
            if deposit is not None and deposit.status == DepositStatus.FULLY_PROCESSED
            else _ZERO
        )
        from_asset, to_asset = request.from_asset, request.to_asset
        expected = {
            from_asset: before.get(from_asset, _ZERO) + credited - trades.spent,
            to_asset: before.get(to_asset, _ZERO) + trades.received,
        }
        charged = {symbol: expected[symbol] - after[symbol] for symbol in expected}
        traded = {from_asset: trades.spent, to_asset: trades.received}
        if any(not 0 <= charged[symbol] < traded[symbol] for symbol in charged):
            how = (
                "unknown: the trades state none and the balances moved more than the trades "
                "explain (other activity on the account?)"
            )
            return attrs.evolve(trades, derived={**trades.derived, "fees": how})
        fees = {symbol: amount for symbol, amount in charged.items() if amount > 0}
        how = (
            "from the balance movement (positions before vs after the trade): the trades state none"
        )
        return attrs.evolve(trades, fees=fees, derived={**trades.derived, "fees": how})

    def _balances(self, positions: Sequence[Position]) -> dict[str, Decimal]:
        """The balance of the swap's two assets, by symbol."""
        request, plan = self.request, self.plan
        balances: dict[str, Decimal] = {}
        for product_id, symbol in (
            (plan.from_product_id, request.from_asset),
            (plan.to_product_id, request.to_asset),
        ):
            position = _available(positions, product_id, symbol)
            balances[symbol] = position.amount if position else _ZERO
        return balances
