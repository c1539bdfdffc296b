"""The swap runner: drives a :class:`SwapRecord` through the state machine, doing the I/O.

This module owns :class:`_Runner`: the step families (:mod:`._steps_tickets`,
:mod:`._steps_trade`) on their shared context (:mod:`._runner_context`), ``drive`` (which
step handles which state) and step 1 (authenticate, and the preflight checks that refuse
a swap before anything is sent).

Rules it keeps (see the package docstring for the whole contract):

* before every side-effecting call the intent is committed; its result is committed right
  after, under a shielded cancel scope, so Ctrl-C never loses an answer that arrived;
* an unknown write outcome is reconciled with the exchange at once (never resent blindly);
  a swap resumed in an ``*_INTENT`` state reconciles before it would send again;
* a read is given the step's time limit as its whole budget, and the client's retry
  engine retries it until then (``_RunnerContext.read``: a retry scope, no loop here);
* one runner per swap: a fenced lease (:mod:`._keeper`), renewed by every save, a
  heartbeat and right before every write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from .. import _otel, pricing
from ..errors import ConfigurationError, InsufficientFundsError, InvalidInputError, WorkflowError
from ..models import Product, Side
from ._machine import SwapEvent, SwapState, SwapStep, step_of
from ._planning import check_funds, plan_order
from ._record import SwapPlan
from ._result import SwapResult
from ._runner_context import _ZERO, CheckpointHook, ProgressCallback, _available
from ._steps_tickets import _TicketSteps
from ._steps_trade import _TradeSteps

__all__ = ["CheckpointHook", "ProgressCallback"]


class _Runner(_TicketSteps, _TradeSteps):
    """One run of one swap (private: :class:`SwapWorkflow` creates it)."""

    # -- driving --------------------------------------------------------------------------

    async def drive(self) -> SwapResult:
        handlers: dict[SwapState, Callable[[], Awaitable[None]]] = {
            SwapState.CREATED: self.authenticate,
            SwapState.AUTHENTICATED: self.fund,
            SwapState.DEPOSIT_INTENT: self.reconcile_deposit,
            SwapState.DEPOSIT_PENDING: self.poll_deposit,
            SwapState.FUNDED: self.rate,
            SwapState.QUOTED: self.order,
            SwapState.ORDER_INTENT: self.reconcile_order,
            SwapState.ORDER_PLACED: self.poll_order,
            SwapState.ORDER_DONE: self.read_trades,
            SwapState.TRADES_READ: self.confirm_positions,
            SwapState.POSITIONS_CONFIRMED: self.withdraw,
            SwapState.WITHDRAW_INTENT: self.reconcile_withdraw,
            SwapState.WITHDRAW_PENDING: self.poll_withdraw,
        }
        if not self.record.state.is_terminal:
            await self.hook(f"start:{self.record.state.value}")
            # Step 1 on every run: a resumed swap logs in again with this run's client.
            await self.read("AuthenticateUser", self.client.authenticate)
            self.record = self.wf._check_login(self.record)
        while not self.record.state.is_terminal:
            self.keeper.check_stop(self.record)
            revision = self.record.revision
            with _otel.swap_step(self, step_of(self.record.state)):
                await handlers[self.record.state]()
            if self.record.revision == revision:  # pragma: no cover - a bug, never a loop
                raise WorkflowError(
                    f"internal error: step {self.record.state.value} made no progress",
                    swap_id=self.record.swap_id,
                )
        return SwapResult.from_record(self.record)

    # -- step 1: authenticate (and preflight: nothing is sent before these checks) --------

    async def authenticate(self) -> None:
        client, request = self.client, self.request
        account_id = request.account_id or client.account_id
        if account_id is None:
            raise ConfigurationError("authentication returned no account id")
        products = await self.read("GetProducts", client.get_products)
        instruments = await self.read("GetInstruments", client.get_instruments)
        try:
            plan = self._resolve(account_id, products, instruments)
        except InvalidInputError as exc:
            await self.reject(SwapStep.AUTHENTICATE, exc)
            return
        self.record = attrs.evolve(self.record, plan=plan)
        positions = await self.positions()
        book = await self.read("GetL2Snapshot", lambda: client.get_l2_snapshot(plan.instrument_id))
        from_position = _available(positions, plan.from_product_id, request.from_asset)
        available = from_position.available if from_position else _ZERO
        deposit = request.deposit.amount if request.deposit else _ZERO
        try:
            order = plan_order(request, plan, book)
            check_funds(order, available + deposit, request.from_asset)
            spec = request.withdrawal
            if spec is not None and spec.amount is not None:
                target = _available(positions, plan.to_product_id, request.to_asset)
                reachable = (target.available if target else _ZERO) + order.expected_receive
                if spec.amount > reachable:
                    raise InsufficientFundsError(
                        f"cannot withdraw {spec.amount} {request.to_asset}: the account would "
                        f"hold about {reachable} after the swap"
                    )
            await self._check_withdraw_template(order.expected_receive)
        except (InvalidInputError, InsufficientFundsError) as exc:
            await self.reject(SwapStep.AUTHENTICATE, exc)
            return
        before = self._balances(positions)
        side = "sells" if plan.side is Side.SELL else "buys"
        await self.commit(
            SwapEvent.AUTHENTICATED,
            f"account {account_id}; {plan.instrument_symbol} {side} {plan.base_symbol}; "
            f"{available} {request.from_asset} available, the order needs about {order.required}",
            plan=plan,
            balances_before=before,
        )

    def _resolve(
        self, account_id: int, products: list[Product], instruments: list[Any]
    ) -> SwapPlan:
        request = self.request
        by_symbol = {p.symbol.upper(): p for p in products}
        for symbol in (request.from_asset, request.to_asset):
            product = by_symbol.get(symbol)
            if product is None or product.is_disabled:
                known = ", ".join(sorted(by_symbol)) or "none"
                raise InvalidInputError(f"unknown asset {symbol!r}: the exchange lists {known}")
        source, target = by_symbol[request.from_asset], by_symbol[request.to_asset]
        instrument = pricing.find_instrument(instruments, request.from_asset, request.to_asset)
        if not instrument.is_active:
            raise InvalidInputError(f"instrument {instrument.symbol} is not trading now")
        if request.deposit is not None and not source.deposit_enabled:
            raise InvalidInputError(f"deposits of {source.symbol} are disabled")
        if request.withdrawal is not None and not target.withdraw_enabled:
            raise InvalidInputError(f"withdrawals of {target.symbol} are disabled")
        sells_base = instrument.product1 == source.product_id
        return SwapPlan(
            account_id=account_id,
            instrument_id=instrument.instrument_id,
            instrument_symbol=instrument.symbol,
            base_symbol=instrument.product1_symbol.upper(),
            quote_symbol=instrument.product2_symbol.upper(),
            base_product_id=instrument.product1,
            quote_product_id=instrument.product2,
            from_product_id=source.product_id,
            to_product_id=target.product_id,
            side=Side.SELL if sells_base else Side.BUY,
            quantity_increment=instrument.quantity_increment,
            price_increment=instrument.price_increment,
            minimum_quantity=instrument.minimum_quantity,
            minimum_price=instrument.minimum_price,
            from_tick_size=source.tick_size,
            to_tick_size=target.tick_size,
        )
