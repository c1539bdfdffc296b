"""The ``kiiex`` command line: swaps, their checkpoints, rates, balances and the simulator.

Environments: with no credentials in the environment every command runs against the
embedded simulator (and says so); credentials select staging; production is only ever
used when ``--env production`` is named.  Errors print one line and exit non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import functools
import json
import os
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, NoReturn

import attrs
import platformdirs
from rich.console import Console
from rich.table import Column, Table

from . import __version__, _cli_worker
from .auth import Credentials
from .client import KiiexClient
from .errors import (
    ConfigurationError,
    InsufficientFundsError,
    InvalidInputError,
    KiiexError,
    WorkflowError,
)
from .rates import RatePoller, RateTick
from .sim import SimConfig, Simulator, parse_fault_spec, serve
from .workflow import (
    AmountSide,
    CheckpointStore,
    DepositSpec,
    ExchangeMismatchError,
    ProgressEvent,
    ProgressKind,
    SqliteCheckpointStore,
    SwapRecord,
    SwapRequest,
    SwapResult,
    SwapState,
    SwapStep,
    SwapWorkflow,
    WithdrawSpec,
)

__all__ = ["main"]

ENVIRONMENTS = ("sim", "staging", "production")
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_COMPLETED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class CliError(Exception):
    """A problem worth one line to the user; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


@attrs.frozen
class Target:
    """Where commands go: the environment, its URL and credentials."""

    env: str
    credentials: Credentials | None
    state_dir: Path
    base_url: str | None = None
    #: ``--store``: a shared checkpoint store (PostgreSQL DSN or SQLite path).
    store: str | None = None

    @property
    def store_path(self) -> Path:
        """Checkpoints are kept per environment so a sim swap never resumes on staging."""
        return self.state_dir / f"swaps-{self.env}.sqlite3"

    @property
    def store_name(self) -> str:
        """Where this target's swaps are, as it may be shown (no DSN password)."""
        return _cli_worker.store_label(self.store) if self.store else str(self.store_path)

    @property
    def sim_state(self) -> Path:
        """The embedded simulator's exchange state (so a killed demo swap can resume)."""
        return self.state_dir / "sim-state.json"


#: The exchange swaps run with the embedded simulator are bound to (its port changes).
EMBEDDED_EXCHANGE = "kiiex-sim:embedded"


def exchange_of(target: Target) -> str | None:
    """The exchange name the target's swaps are bound to (``None``: the client's URL)."""
    return EMBEDDED_EXCHANGE if target.env == "sim" and not target.base_url else None


def resume_command(swap_id: str, target: Target) -> str:
    """The full ``kiiex resume`` command line that continues ``swap_id`` where it ran."""
    parts = ["kiiex", "resume", "--env", target.env]
    if target.base_url:
        parts += ["--base-url", target.base_url]
    if target.store:
        # The DSN is not repeated (it may hold a password): name the same --store.
        parts += ["--store", "<the same --store>"]
    parts += ["--state-dir", str(target.state_dir), swap_id]
    return " ".join(parts)


def _default_state_dir() -> Path:
    return Path(os.environ.get("KIIEX_STATE_DIR") or platformdirs.user_data_dir("kiiex"))


def resolve_target(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Target:
    """Pick the environment: explicit ``--env``, else staging with credentials, else sim."""
    env_vars = dict(os.environ if environ is None else environ)
    state_dir = Path(args.state_dir) if args.state_dir else _default_state_dir()
    configured = Credentials.env_configured(env_vars)
    env = args.env or ("staging" if configured else "sim")
    store = getattr(args, "store", None)
    if env == "sim":
        return Target("sim", None, state_dir, store=store)
    if not configured:
        raise CliError(
            f"--env {env} needs credentials: set KIIEX_API_KEY, KIIEX_API_SECRET and "
            "KIIEX_USER_ID (or KIIEX_USERNAME and KIIEX_PASSWORD)",
            EXIT_USAGE,
        )
    return Target(env, Credentials.from_env(env_vars), state_dir, args.base_url, store)


class Output:
    """Human output on stderr (progress) and stdout (results), or JSON lines on stdout."""

    def __init__(self, *, as_json: bool, quiet: bool = False) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def note(self, message: str) -> None:
        """A progress / context line for humans (never on stdout)."""
        if not self.quiet:
            self.err.print(message, markup=False)

    def json(self, value: Any) -> None:
        """One JSON document per line on stdout."""
        self.out.out(json.dumps(value, default=_json_default, sort_keys=True), highlight=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "name") and hasattr(value, "value"):
        return value.name
    raise TypeError(f"cannot serialise {type(value).__name__}")


@contextlib.asynccontextmanager
async def connect(target: Target, output: Output) -> AsyncIterator[KiiexClient]:
    """A logged-in-on-demand client for the target (starting the embedded simulator)."""
    if target.env == "sim":
        target.state_dir.mkdir(parents=True, exist_ok=True)
        output.note(
            "No credentials configured: using the embedded KIIEX simulator "
            f"(state in {target.sim_state}). Set KIIEX_API_KEY/KIIEX_API_SECRET/KIIEX_USER_ID "
            "for staging."
        )
        async with Simulator(SimConfig(), state_file=target.sim_state) as sim:
            demo = sim.demo
            creds = Credentials(
                api_key=demo.api_key, api_secret=demo.api_secret, user_id=demo.user_id
            )
            async with KiiexClient(sim.url, credentials=creds, rate_limit=None) as client:
                yield client
        return
    assert target.credentials is not None
    base_url = target.base_url
    if base_url:
        factory: Callable[..., KiiexClient] = functools.partial(KiiexClient, base_url)
    elif target.env == "production":
        factory = KiiexClient.production
    else:
        factory = KiiexClient.staging
    output.note(f"Using KIIEX {target.env}.")
    async with factory(credentials=target.credentials) as client:
        yield client


@contextlib.asynccontextmanager
async def open_store(target: Target) -> AsyncIterator[CheckpointStore]:
    """The checkpoint store of the target's environment (or ``--store``)."""
    if target.store:
        async with _cli_worker.open_store_at(target.store) as shared:
            yield shared
        return
    target.state_dir.mkdir(parents=True, exist_ok=True)
    async with SqliteCheckpointStore(target.store_path) as store:
        yield store


# -- amounts and forms ---------------------------------------------------------------------


def parse_amount(text: str, *, what: str = "amount") -> Decimal:
    """A positive, finite decimal from the command line."""
    try:
        value = Decimal(text.replace("_", ""))
    except InvalidOperation:
        raise CliError(f"{what} must be a number, got {text!r}", EXIT_USAGE) from None
    if not value.is_finite() or value <= 0:
        raise CliError(f"{what} must be a positive number, got {text!r}", EXIT_USAGE)
    return value


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
        text = args.max_slippage.strip()
        percent = text.endswith("%")
        slippage = parse_amount(text.rstrip("%"), what="--max-slippage")
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
        step = f"{event.step.value}/9 {event.step.label}" if event.step else ""
        if event.kind is ProgressKind.STATUS:
            self._live(f"{step}: {event.message}")
            return
        self._stop_live()
        if event.kind is ProgressKind.STATE:
            done = _COMPLETES.get(event.state)
            if done is not None:
                mark, label = "✓", f"{done.value}/9 {done.label}"
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
        if result.state is not SwapState.COMPLETED:
            output.note(f"inspect: kiiex show {result.swap_id} --env {target.env}")
    return EXIT_OK if result.state is SwapState.COMPLETED else EXIT_NOT_COMPLETED


async def resume_target(target: Target, swap_id: str, output: Output) -> Target:
    """The target a swap resumes on: the exchange it recorded unless ``--base-url`` names
    one (a different one is then refused by the workflow before anything is sent)."""
    async with open_store(target) as store:
        record = await store.get(swap_id)
    if record is None:
        raise CliError(f"no swap {swap_id!r} in {target.store_name}")
    if record.exchange is None:
        output.note(
            f"swap {swap_id} was saved without its exchange (older kiiex); resuming it on "
            f"{target.base_url or target.env}"
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
    if swap_id is not None:
        target = await resume_target(target, swap_id, output)
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
                result = await workflow.resume(swap_id, reopen=args.reopen)
    except (asyncio.CancelledError, KeyboardInterrupt):
        display.close()
        hint = f"; resume with: {resume_command(current[0], target)}" if current else ""
        raise CliError(f"interrupted{hint}", EXIT_INTERRUPTED) from None
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
    """``kiiex resume SWAP_ID``."""
    return await _run_swap(args, target, output, args.swap_id)


async def cmd_swaps(args: argparse.Namespace, target: Target, output: Output) -> int:
    """``kiiex swaps``: every swap in the store with its state."""
    async with open_store(target) as store:
        records = await store.list()
    records.sort(key=lambda r: r.created_at)
    if output.as_json:
        for r in records:
            output.json(
                {
                    "swap_id": r.swap_id,
                    "state": r.state.value,
                    "request": r.request.describe(),
                    "created_at": r.created_at,
                    "updated_at": r.updated_at,
                }
            )
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
    """``kiiex show SWAP_ID``: the result and timeline of one swap."""
    async with open_store(target) as store:
        record: SwapRecord | None = await store.get(args.swap_id)
    if record is None:
        raise CliError(f"no swap {args.swap_id!r} in {target.store_name}")
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


async def cmd_balances(args: argparse.Namespace, target: Target, output: Output) -> int:
    """``kiiex balances``: positions of the account."""
    async with connect(target, output) as client:
        positions = await client.get_account_positions()
    if output.as_json:
        for p in positions:
            output.json(
                {
                    "product": p.product_symbol,
                    "amount": p.amount,
                    "hold": p.hold,
                    "available": p.available,
                }
            )
        return EXIT_OK
    table = Table("product", "amount", "hold", "available")
    for p in positions:
        table.add_row(p.product_symbol, str(p.amount), str(p.hold), str(p.available))
    output.out.print(table)
    return EXIT_OK


def _fmt(value: Decimal | None) -> str:
    return "-" if value is None else str(value)


async def cmd_rates(args: argparse.Namespace, target: Target, output: Output) -> int:
    """``kiiex rates [SYMBOL ...]``: a live table (or JSON lines) of bid/ask/last."""
    interval = float(parse_amount(args.interval, what="--interval"))
    duration = float(parse_amount(args.duration, what="--duration")) if args.duration else None
    async with connect(target, output) as client:
        symbols: list[str | int] = list(args.symbols)
        if not symbols:
            symbols = [i.symbol for i in await client.get_instruments()]
        poller = RatePoller(client, symbols, interval=interval, changes_only=args.changes_only)
        async with poller:
            if output.as_json:
                await _stream_json(poller, output, args.count, duration)
            else:
                await _live_table(poller, output, args.count, duration)
    return EXIT_OK


def _tick_dict(tick: RateTick) -> dict[str, Any]:
    return {
        "symbol": tick.symbol,
        "instrument_id": tick.instrument_id,
        "bid": tick.bid,
        "ask": tick.ask,
        "last": tick.last,
        "exchange_time": tick.exchange_time,
        "received_at": tick.received_at,
        "age": round(tick.age, 3),
        "stale": tick.stale,
    }


async def _stream_json(
    poller: RatePoller, output: Output, count: int | None, duration: float | None
) -> None:
    seen = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(duration), poller.subscribe() as sub:
            async for tick in sub:
                output.json(_tick_dict(tick))
                seen += 1
                if count is not None and seen >= count:
                    return


async def _live_table(
    poller: RatePoller, output: Output, count: int | None, duration: float | None
) -> None:
    from rich.live import Live

    def render() -> Table:
        table = Table("symbol", "bid", "ask", "last", "age (s)", "stale")
        for tick in sorted(poller.snapshot(), key=lambda t: t.symbol):
            table.add_row(
                tick.symbol,
                _fmt(tick.bid),
                _fmt(tick.ask),
                _fmt(tick.last),
                f"{tick.age:.1f}",
                "STALE" if tick.stale else "",
            )
        return table

    seen = 0
    with (
        Live(render(), console=output.out, auto_refresh=False) as live,
        contextlib.suppress(TimeoutError),
    ):
        async with asyncio.timeout(duration), poller.subscribe() as sub:
            async for _tick in sub:
                live.update(render(), refresh=True)
                seen += 1
                if count is not None and seen >= count:
                    return


def cmd_sim(args: argparse.Namespace) -> int:
    """``kiiex sim``: a standalone simulator until Ctrl-C."""
    faults = [parse_fault_spec(spec) for spec in args.fault]
    serve(
        args.host,
        args.port,
        config=SimConfig(seed=args.seed),
        state_file=args.state,
        faults=faults,
    )
    return EXIT_OK


# -- parser --------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``kiiex`` argument parser."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--env",
        choices=ENVIRONMENTS,
        default=None,
        help="sim (embedded simulator; default without credentials), staging (default with "
        "credentials) or production (only when named)",
    )
    common.add_argument("--base-url", default=None, help="override the environment's API URL")
    common.add_argument(
        "--state-dir",
        default=None,
        help="where checkpoints (and the embedded simulator's state) live "
        "(default: $KIIEX_STATE_DIR or the user data directory)",
    )
    _cli_worker.add_store_option(common)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress lines")

    parser = argparse.ArgumentParser(
        prog="kiiex", description="KIIEX swaps, rates and balances; a local simulator."
    )
    parser.add_argument("--version", action="version", version=f"kiiex_async {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    swap = sub.add_parser("swap", parents=[common], help="swap one stablecoin for another")
    swap.add_argument("from_asset", metavar="FROM", help="asset to spend, e.g. USDT")
    swap.add_argument("to_asset", metavar="TO", help="asset to receive, e.g. COPM")
    swap.add_argument("amount", metavar="AMOUNT", help="amount of FROM to spend")
    swap.add_argument(
        "--receive", action="store_true", help="AMOUNT is what to receive in TO instead"
    )
    swap.add_argument(
        "--max-slippage", default=None, help="limit vs the best price: 0.01 or 1%% (protected)"
    )
    swap.add_argument("--deposit", default=None, help="deposit this much FROM first")
    swap.add_argument("--withdraw-template", default=None, help="withdraw TO with this template")
    swap.add_argument(
        "--withdraw-field",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a field of the withdraw template form (repeatable)",
    )
    swap.add_argument(
        "--withdraw-amount", default=None, help="amount to withdraw (default: all received)"
    )
    swap.add_argument("--swap-id", default=None, help="choose the swap id (idempotent)")

    resume = sub.add_parser("resume", parents=[common], help="continue a swap after a crash")
    resume.add_argument("swap_id", metavar="SWAP_ID")
    resume.add_argument(
        "--reopen", action="store_true", help="resume a swap that stopped for an operator"
    )

    sub.add_parser("swaps", parents=[common], help="list swaps and their states")
    show = sub.add_parser("show", parents=[common], help="one swap's result and timeline")
    show.add_argument("swap_id", metavar="SWAP_ID")

    rates = sub.add_parser("rates", parents=[common], help="live rates")
    rates.add_argument("symbols", nargs="*", metavar="SYMBOL", help="instruments (default: all)")
    rates.add_argument("--interval", default="1", help="seconds between polls (default 1)")
    rates.add_argument("--duration", default=None, help="stop after this many seconds")
    rates.add_argument("--count", type=int, default=None, help="stop after this many ticks")
    rates.add_argument("--changes-only", action="store_true", help="only changed rates")

    sub.add_parser("balances", parents=[common], help="account positions")
    _cli_worker.register(sub, common)

    sim = sub.add_parser("sim", help="run a standalone KIIEX simulator")
    sim.add_argument("--host", default="127.0.0.1")
    sim.add_argument("--port", type=int, default=8080, help="0 picks a free port")
    sim.add_argument("--state", default=None, help="JSON file that keeps the exchange state")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="METHOD:KIND[:TIMES][:key=value], e.g. SendOrder:drop_after:1 (repeatable)",
    )
    return parser


COMMANDS = {
    "swap": cmd_swap,
    "resume": cmd_resume,
    "swaps": cmd_swaps,
    "show": cmd_show,
    "balances": cmd_balances,
    "rates": cmd_rates,
    **_cli_worker.COMMANDS,
}


def _exit_code(exc: KiiexError) -> int:
    if isinstance(exc, InvalidInputError | ConfigurationError | InsufficientFundsError):
        return EXIT_USAGE
    return EXIT_ERROR


def run(argv: Sequence[str] | None = None) -> int:
    """Run the command line and return the exit status (no ``SystemExit``)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    output = Output(as_json=getattr(args, "json", False), quiet=getattr(args, "quiet", False))
    try:
        if args.command == "sim":
            return cmd_sim(args)
        target = resolve_target(args)
        return asyncio.run(COMMANDS[args.command](args, target, output))
    except CliError as exc:
        output.err.print(f"kiiex: error: {exc}", markup=False, highlight=False)
        return exc.code
    except KiiexError as exc:
        hint = ""
        if isinstance(exc, WorkflowError) and exc.swap_id:
            step = f" at step {exc.step}" if exc.step else ""
            notes = getattr(exc, "__notes__", None)
            if isinstance(exc, ExchangeMismatchError):
                hint = f" (swap {exc.swap_id})"
            else:
                command = notes[-1] if notes else f"kiiex resume {exc.swap_id}"
                hint = f" (swap {exc.swap_id}{step}; continue with: {command})"
        output.err.print(f"kiiex: error: {exc}{hint}", markup=False, highlight=False)
        return _exit_code(exc)
    except KeyboardInterrupt:
        output.err.print("kiiex: interrupted", markup=False)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("KIIEX_DEBUG"):
            raise
        output.err.print(
            f"kiiex: internal error: {type(exc).__name__}: {exc} "
            "(set KIIEX_DEBUG=1 for the traceback)",
            markup=False,
            highlight=False,
        )
        return EXIT_ERROR


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Console-script entry point."""
    sys.exit(run(argv))
