"""What a swap is asked to do: :class:`SwapRequest` and its parts (pure values)."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from decimal import Decimal
from types import MappingProxyType
from typing import Any

import attrs

from .. import _validate as check
from ..errors import InvalidInputError
from ..pricing import check_amount, format_amount

__all__ = ["AmountSide", "DepositSpec", "StepTimeouts", "SwapRequest", "WithdrawSpec"]


class AmountSide(enum.Enum):
    """Which side of the swap ``SwapRequest.amount`` fixes."""

    #: "Spend exactly 100 USDT": the amount is of ``from_asset``.
    SPEND = "spend"
    #: "Receive exactly 400,000 COPM": the amount is of ``to_asset`` (gross of fees).
    RECEIVE = "receive"


#: What an amount may be given as (a ``float`` is refused: at run time too).
AmountIn = Decimal | int | str

# The converters are typed with what callers may pass, so that mypy (attrs plugin) catches
# a wrong type in ``SwapRequest(...)``; each still checks at run time through a helper that
# takes ``object``, for callers without a type checker.


def _amount(value: AmountIn) -> Decimal:
    return check_amount(value, name="amount")


def _deposit_amount(value: AmountIn) -> Decimal:
    return check_amount(value, name="deposit amount")


def _withdrawal_amount(value: AmountIn | None) -> Decimal | None:
    return None if value is None else check_amount(value, name="withdrawal amount")


def _symbol(value: str) -> str:
    return check.text(value, "asset").strip().upper()


def _form(value: Mapping[str, str | None] | None) -> Mapping[str, str]:
    return _checked_form(value)


def _checked_form(value: object) -> Mapping[str, str]:
    if value is None:
        return MappingProxyType({})
    if not isinstance(value, Mapping):
        raise InvalidInputError("a template form / deposit info must be a mapping of strings")
    return MappingProxyType({str(k): "" if v is None else str(v) for k, v in value.items()})


def _seconds(minimum: float) -> Any:
    def check(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < minimum
        ):
            raise InvalidInputError(f"{attribute.name} must be a number >= {minimum} (seconds)")

    return check


@attrs.frozen
class StepTimeouts:
    """Per-step time limits and poll intervals, in seconds.

    Each read is given the running step's limit as its whole budget (the attempt in
    flight included): the client's retry engine retries it on transient failures (5xx,
    429, timeouts, dropped connections) until then (:meth:`KiiexClient.retry_scope`).
    """

    #: Limit for steps without a poll of their own (authenticate, rate, trades, positions...),
    #: and the budget of each read.
    step: float = attrs.field(default=30.0, validator=_seconds(0.001))
    #: How long to wait for a deposit ticket to be credited.
    deposit: float = attrs.field(default=300.0, validator=_seconds(0.0))
    #: How long to wait for the order to reach a terminal state.
    order: float = attrs.field(default=60.0, validator=_seconds(0.0))
    #: How long to wait for the withdraw ticket to reach a terminal status.
    withdrawal: float = attrs.field(default=600.0, validator=_seconds(0.0))
    #: First interval between two polls of a deposit ticket (then backs off x1.5).
    deposit_poll: float = attrs.field(default=1.0, validator=_seconds(0.001))
    #: First interval between two polls of the order.
    order_poll: float = attrs.field(default=0.25, validator=_seconds(0.001))
    #: First interval between two polls of a withdraw ticket.
    withdrawal_poll: float = attrs.field(default=1.0, validator=_seconds(0.001))
    #: Longest interval between two polls, and longest backoff of a failing read.
    max_poll: float = attrs.field(default=5.0, validator=_seconds(0.001))
    #: After an unknown write outcome, how long to keep looking before concluding that the
    #: request never reached the exchange (and only then sending it again).
    reconcile_grace: float = attrs.field(default=2.0, validator=_seconds(0.0))


@attrs.frozen
class DepositSpec:
    """Deposit ``amount`` of the swap's ``from_asset`` first (``CreateDepositTicket``).

    ``deposit_info`` holds extra fields for the ticket's ``DepositInfo``; the swap adds
    ``Comment: kiiex-swap:<swap_id>`` unless a ``Comment`` is given, so that a resumed swap
    can recognise its ticket.
    """

    amount: Decimal = attrs.field(converter=_deposit_amount)
    deposit_info: Mapping[str, str] = attrs.field(factory=dict, converter=_form)


@attrs.frozen
class WithdrawSpec:
    """Withdraw the swap's ``to_asset`` at the end (``CreateWithdrawTicket``).

    ``template_type`` is one of ``GetWithdrawTemplateTypes``; ``form`` fills the
    template's fields (``ExternalAddress``...).  ``amount`` defaults to what the swap
    received net of fees charged in ``to_asset``.  The swap writes
    ``Comment: kiiex-swap:<swap_id>`` into the form unless you set a ``Comment``; the
    marker is how a resumed swap finds its ticket, since tickets carry no client id.
    """

    template_type: str = attrs.field()
    form: Mapping[str, str] = attrs.field(factory=dict, converter=_form)
    amount: Decimal | None = attrs.field(default=None, converter=_withdrawal_amount)

    @template_type.validator
    def _check_template_type(self, _attribute: attrs.Attribute[str], value: str) -> None:
        check.text(value, "withdrawal template_type")


def _slippage(value: AmountIn | None) -> Decimal | None:
    return _checked_slippage(value)


def _checked_slippage(value: object) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, float):
        raise InvalidInputError("max_slippage must be a Decimal fraction such as Decimal('0.01')")
    slip = check_amount(value, name="max_slippage", allow_zero=True)
    if slip >= 1:
        raise InvalidInputError(f"max_slippage must be a fraction in [0, 1), got {slip}")
    return slip


@attrs.frozen
class SwapRequest:
    """One swap: convert ``amount`` between two assets the exchange lists.

    ``amount_side`` says which side ``amount`` fixes (:class:`AmountSide`);
    ``max_slippage`` (a fraction: ``Decimal("0.005")`` is 0.5 %) turns the market order into
    a protected Limit + IOC order at the worst acceptable price.  Invalid values (same asset
    twice, amount <= 0, a float amount) raise :class:`~kiiex_async.errors.InvalidInputError`
    here, before anything is sent.
    """

    from_asset: str = attrs.field(converter=_symbol)
    to_asset: str = attrs.field(converter=_symbol)
    amount: Decimal = attrs.field(converter=_amount)
    amount_side: AmountSide = AmountSide.SPEND
    max_slippage: Decimal | None = attrs.field(default=None, converter=_slippage)
    deposit: DepositSpec | None = None
    withdrawal: WithdrawSpec | None = None
    timeouts: StepTimeouts = attrs.field(factory=StepTimeouts)
    #: Trade in this account instead of the one authentication returned.
    account_id: int | None = None

    def __attrs_post_init__(self) -> None:
        if self.from_asset == self.to_asset:
            raise InvalidInputError(
                f"cannot swap {self.from_asset} for itself: from_asset and to_asset are equal"
            )
        if not isinstance(self.amount_side, AmountSide):
            raise InvalidInputError("amount_side must be AmountSide.SPEND or AmountSide.RECEIVE")
        for name, spec, cls in (
            ("deposit", self.deposit, DepositSpec),
            ("withdrawal", self.withdrawal, WithdrawSpec),
        ):
            if spec is not None and not isinstance(spec, cls):
                raise InvalidInputError(f"{name} must be a {cls.__name__}")
        if self.account_id is not None:
            check.positive_id(self.account_id, "account_id")

    @property
    def amount_asset(self) -> str:
        """The asset ``amount`` is counted in."""
        return self.from_asset if self.amount_side is AmountSide.SPEND else self.to_asset

    def describe(self) -> str:
        """One line for humans: ``"spend 100 USDT for COPM"``."""
        verb = self.amount_side.value
        amount = format_amount(self.amount)
        if self.amount_side is AmountSide.SPEND:
            text = f"spend {amount} {self.from_asset} for {self.to_asset}"
        else:
            text = f"{verb} {amount} {self.to_asset} for {self.from_asset}"
        if self.max_slippage is not None:
            text += f" (max slippage {format_amount((self.max_slippage * 100).normalize())}%)"
        return text
