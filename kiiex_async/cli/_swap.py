"""The swap commands: ``swap``, ``resume``, ``swaps`` and ``show``."""

from __future__ import annotations

import argparse
import asyncio
import enum
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs
from rich.table import Column, Table

from ..errors import WorkflowError
from ..pricing import check_amount
from ..workflow import (
    AmountSide,
    CheckpointStore,
    DepositSpec,
    ExchangeMismatchError,
    ProgressEvent,
    ProgressKind,
    SwapRecord,
    SwapRequest,
    SwapResult,
    SwapState,
    SwapStep,
    SwapWorkflow,
    WithdrawSpec,
)
from ._base import EXIT_INTERRUPTED, EXIT_NOT_COMPLETED, EXIT_OK, EXIT_USAGE, CliError, Output
from ._env import Target, connect, exchange_of, open_store, resume_command

# -- amounts and forms ---------------------------------------------------------------------


def parse_amount(text: str, *, what: str = "amount", allow_zero: bool = False) -> Decimal:
    """A positive decimal from the command line, by the SDK's one rule for amounts
    (:func:`kiiex_async.pricing.check_amount`: ASCII digits, at most one ``.``)."""
    return check_amount(text, name=what, allow_zero=allow_zero)


def parse_fields(pairs: Sequence[str]) -> dict[str, str]:
    """``KEY=VALUE`` pairs of a withdraw template form."""
    form: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--withdraw-field takes KEY=VALUE, got {pair!r}", EXIT_USAGE)
        form[key.strip()] = value
    return form


def build_request(args: argparse.Namespace) -> SwapRequest:
    """The :class:`SwapRequest` the ``swap`` arguments describe (validated, nothing sent)."""
    amount = parse_amount(args.amount)
    slippage = None
    if args.max_slippage is not None:
        text = args.max_slippage
        percent = text.endswith("%")
        slippage = parse_amount(text.removesuffix("%"), what="--max-slippage", allow_zero=True)
        if percent:
            slippage /= 100
    deposit = DepositSpec(parse_amount(args.deposit, what="--deposit")) if args.deposit else None
    withdrawal = None
    if args.withdraw_template or args.withdraw_field:
        if not args.withdraw_template:
            raise CliError("--withdraw-field needs --withdraw-template", EXIT_USAGE)
        withdrawal = WithdrawSpec(
            args.withdraw_template,
            parse_fields(args.withdraw_field),
            amount=parse_amount(args.withdraw_amount, what="--withdraw-amount")
            if args.withdraw_amount
            else None,
        )
    return SwapRequest(
        args.from_asset,
        args.to_asset,
        amount,
        amount_side=AmountSide.RECEIVE if args.receive else AmountSide.SPEND,
        max_slippage=slippage,
        deposit=deposit,
        withdrawal=withdrawal,
    )


# -- swap display --------------------------------------------------------------------------


#: The guide step a state completes (intent states start a step instead).
_COMPLETES = {
    SwapState.AUTHENTICATED: SwapStep.AUTHENTICATE,
    SwapState.FUNDED: SwapStep.FUND,
    SwapState.QUOTED: SwapStep.RATE,
    SwapState.ORDER_PLACED: SwapStep.ORDER,
    SwapState.ORDER_DONE: SwapStep.POLL_ORDER,
    SwapState.TRADES_READ: SwapStep.TRADES,
    SwapState.POSITIONS_CONFIRMED: SwapStep.POSITIONS,
    SwapState.WITHDRAW_PENDING: SwapStep.WITHDRAW,
}


class SwapDisplay:
    """Shows a swap's progress: a line per step, a live status while polling."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self._status: Any = None

    def __call__(self, event: ProgressEvent) -> None:
        if self.output.as_json:
            if event.kind is not ProgressKind.FINISHED:
                self.output.note(str(event))
            return
        step = event.step.title if event.step else ""
        if event.kind is ProgressKind.STATUS:
            self._live(f"{step}: {event.message}")
            return
        self._stop_live()
        if event.kind is ProgressKind.STATE:
            done = _COMPLETES.get(event.state)
            if done is not None:
                mark, label = "✓", done.title
            elif event.state.is_terminal:
                mark, label = ("✓" if event.state is SwapState.COMPLETED else "✗"), "done"
            else:
                mark, label = "→", step
            self.output.note(f"{mark} {label:<18} {event.state.value}: {event.message}")
        elif event.kind in (ProgressKind.RETRY, ProgressKind.RECONCILE):
            self.output.note(f"… {step:<18} {event.message}")

    def _live(self, text: str) -> None:
        if self.output.quiet:
            return
        if self._status is None:
            self._status = self.output.err.status(text)
            self._status.start()
        else:
            self._status.update(text)

    def _stop_live(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None

    def close(self) -> None:
        """Stop the live status line."""
        self._stop_live()


def _name(value: enum.Enum | None) -> str | None:
    # IntEnums would otherwise reach JSON as bare numbers.
    return None if value is None else value.name


def result_dict(result: SwapResult) -> dict[str, Any]:
    """Machine-readable swap result (``--json``)."""
    return {
        "swap_id": result.swap_id,
        "state": result.state.value,
        "ok": result.ok,
        "from": result.from_asset,
        "to": result.to_asset,
        "instrument": result.instrument_symbol,
        "spent": result.spent,
        "received": result.received,
        "net_received": result.net_received,
        "average_price": result.average_price,
        "fees": dict(result.fees),
        "derived": dict(result.derived),
        "order_id": result.order_id,
        "client_order_id": result.client_order_id,
        "order_state": _name(result.order_state),
        "trade_ids": list(result.trade_ids),
        "deposit_ticket": result.deposit_ticket,
        "deposit_status": _name(result.deposit_status),
        "withdrawal_ticket": result.withdrawal_ticket,
        "withdrawal_amount": result.withdrawal_amount,
        "withdrawal_status": _name(result.withdrawal_status),
        "reason": result.reason,
        "failed_step": result.failed_step.label if result.failed_step else None,
        "timeline": [{"state": e.state.value, "at": e.at, "note": e.note} for e in result.timeline],
    }


def _report(result: SwapResult, output: Output, target: Target) -> int:
    if output.as_json:
        output.json(result_dict(result))
    else:
        output.out.print(result.summary(), markup=False)
        if result.state is SwapState.WITHDRAW_FAILED:
            output.note(
                f"retry the withdrawal: {resume_command(result.swap_id, target)} "
                "--withdraw-field KEY=VALUE (or --reopen to retry the same form)"
            )
        elif result.state is not SwapState.COMPLETED:
            output.note(f"inspect: kiiex show {result.swap_id} --env {target.env}")
    return EXIT_OK if result.state is SwapState.COMPLETED else EXIT_NOT_COMPLETED


def resume_target(target: Target, record: SwapRecord, output: Output) -> Target:
    """The target a swap resumes on: the exchange it recorded unless ``--base-url`` names
    one (a different one is then refused by the workflow before anything is sent)."""
    if record.exchange is None:
        output.note(
            f"swap {record.swap_id} was saved without its exchange (older kiiex); resuming "
            f"it on {target.base_url or target.env}"
        )
    elif (
        target.env != "sim"
        and not target.base_url
        and record.exchange.exchange.startswith(("https://", "http://"))
    ):
        target = attrs.evolve(target, base_url=record.exchange.exchange)
    return target


async def _run_swap(
    args: argparse.Namespace, target: Target, output: Output, swap_id: str | None
) -> int:
    request = build_request(args) if swap_id is None else None
    display = SwapDisplay(output)
    current: list[str] = []

    def remember(event: ProgressEvent) -> None:
        if not current:
            current.append(event.swap_id)
            output.note(
                f"swap id {event.swap_id} (resume with: {resume_command(event.swap_id, target)})"
            )
        display(event)

    try:
        async with connect(target, output) as client, open_store(target) as store:
            workflow = SwapWorkflow(
                client, store, on_progress=remember, exchange=exchange_of(target)
            )
            if request is not None:
                result = await workflow.run(request, swap_id=args.swap_id)
            else:
                assert swap_id is not None
                fields = parse_fields(args.withdraw_field) if args.withdraw_field else None
                result = await workflow.resume(swap_id, reopen=args.reopen, withdraw_fields=fields)
    except (asyncio.CancelledError, KeyboardInterrupt):
        display.close()
        hint = f"; resume with: {resume_command(current[0], target)}" if current else ""
        raise CliError(
            f"interrupted{hint}", EXIT_INTERRUPTED, swap_id=current[0] if current else None
        ) from None
    except WorkflowError as exc:
        if exc.swap_id and not isinstance(exc, ExchangeMismatchError):
            exc.add_note(resume_command(exc.swap_id, target))
        raise
    finally:
        display.close()
    return _report(result, output, target)


# -- commands ------------------------------------------------------------------------------


async def cmd_swap(args: argparse.Namespace, target: Target, output: Output) -> int:
    """``kiiex swap FROM TO AMOUNT``."""
    build_request(args)  # bad input fails here, before any connection
    return await _run_swap(args, target, output, None)


async def cmd_resume(args: argparse.Namespace, target: Target, output: Output) -> int:
    """``kiiex resume SWAP_ID`` (or a unique prefix of it)."""
    async with open_store(target) as store:
        record = await find_swap(store, args.swap_id, target)
    return await _run_swap(args, resume_target(target, record, output), output, record.swap_id)


async def find_swap(store: CheckpointStore, text: str, target: Target) -> SwapRecord:
    """The swap whose id is ``text``, or the only one whose id starts with it."""
    record = await store.get(text) if text else None
    if record is not None:
        return record
    found = [r for r in await store.list() if text and r.swap_id.startswith(text)]
    if len(found) == 1:
        return found[0]
    if not found:
        raise CliError(f"no swap {text!r} in {target.store_name} (see: kiiex swaps)", EXIT_USAGE)
    ids = ", ".join(sorted(r.swap_id for r in found)[:3])
    raise CliError(
        f"{len(found)} swaps start with {text!r} ({ids}{', ...' if len(found) > 3 else ''}): "
        "give more of the id",
        EXIT_USAGE,
    )


async def cmd_swaps(args: argparse.Namespace, target: Target, output: Output) -> int:
    """``kiiex swaps``: every swap in the store with its state."""
    async with open_store(target) as store:
        records = await store.list()
    records.sort(key=lambda r: r.created_at)
    if output.as_json:
        rows = [
            {
                "swap_id": r.swap_id,
                "state": r.state.value,
                "request": r.request.describe(),
                "created_at": r.created_at,
                "updated_at": r.updated_at,
            }
            for r in records
        ]
        output.json({"swaps": rows})
        return EXIT_OK
    if not records:
        output.note(f"no swaps in {target.store_name}")
        return EXIT_OK
    table = Table("state", "request", "created (UTC)", "updated (UTC)")
    # Ids are what users copy into `kiiex resume`: never truncate them.
    table.columns.insert(0, Column("swap id", no_wrap=True, min_width=32))
    for r in records:
        table.add_row(
            r.swap_id,
            r.state.value,
            r.request.describe(),
            f"{r.created_at:%Y-%m-%d %H:%M:%S}",
            f"{r.updated_at:%Y-%m-%d %H:%M:%S}",
        )
    output.out.print(table)
    return EXIT_OK


async def cmd_show(args: argparse.Namespace, target: Target, output: Output) -> int:
    """``kiiex show SWAP_ID``: the result and timeline of one swap (a unique id prefix
    is enough)."""
    async with open_store(target) as store:
        record = await find_swap(store, args.swap_id, target)
    result = SwapResult.from_record(record)
    if output.as_json:
        output.json(result_dict(result))
        return EXIT_OK
    output.out.print(result.summary(), markup=False)
    table = Table("time (UTC)", "state", "note")
    for entry in result.timeline:
        table.add_row(f"{entry.at:%H:%M:%S.%f}"[:-3], entry.state.value, entry.note)
    output.out.print(table)
    return EXIT_OK
