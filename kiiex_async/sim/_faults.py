"""Fault injection: what can go wrong between a client and the exchange, on demand.

Kinds (``Fault.kind``) and when the request is *applied* (reaches the exchange):

==================  =========  =====================================================
kind                applied?   what the client sees
==================  =========  =====================================================
``latency``         yes        the normal answer, ``delay`` seconds late
``error``           no         HTTP ``status`` (default 503), generic error body
``error_after``     yes        HTTP ``status`` (default 503), generic error body
``rate_limit``      no         HTTP 429 with ``Retry-After: <retry_after>``
``drop_before``     no         the connection closes with no response
``drop_after``      yes        the connection closes with no response
``expire_session``  --         every session expires first; the request then runs
                               normally (a private call answers ``Not Authorized``)
``malformed``       no         HTTP 200 with an HTML body (a proxy's error page)
``malformed_after`` yes        HTTP 200 with a truncated JSON body
==================  =========  =====================================================

Socket kinds act on the WebSocket gateway only; ``method`` names a request (``SendOrder``,
``Ping``, ``SubscribeLevel2``) or an event (``Level2UpdateEvent``):

================  ===========================================================
``ws_drop``       the connection closes instead of sending this frame
``ws_silent``     the connection stays open but sends nothing more, ever
``ws_delay``      this frame goes out ``delay`` seconds late
``ws_duplicate``  this frame goes out twice
``ws_reorder``    this frame goes out after the next one
``ws_skip``       this frame is lost (a Level2 update: the book drifts unseen)
``ws_phantom``    (on ``SubscribeLevel2``) levels leaving the ``Depth`` window are
                  never deleted, as live AlphaPoint gateways do
``ws_garble``     this frame goes out with a payload (``o``) that is not JSON: a
                  broken or hostile gateway (the update or event is lost)
================  ===========================================================

``drop_after`` is the case exactly-once code must survive: the order or ticket exists,
the answer is lost.  Faults fire in injection order, ``times`` times (``None`` = until
cleared) with ``probability`` drawn from a seeded generator, so runs are reproducible.

Answer kinds: AlphaPoint's own refusals, on demand (HTTP 200, generic error object):

======================  =========  ==========================================================
``in_process``          no         errorcode 107 ``Operation In Process``
``in_process_after``    yes        errorcode 107 ``Operation In Process``
``not_authorized``      no         errorcode 20 ``Not Authorized`` (a refused signature or
                                   session, whatever the credentials)
======================  =========  ==========================================================
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass

import attrs

from ..errors import InvalidInputError

__all__ = [
    "FAULT_KINDS",
    "SOCKET_FAULT_KINDS",
    "Fault",
    "FaultInjector",
    "FaultPlan",
    "parse_fault_spec",
]

SOCKET_FAULT_KINDS = frozenset(
    {
        "ws_drop",
        "ws_silent",
        "ws_delay",
        "ws_duplicate",
        "ws_reorder",
        "ws_skip",
        "ws_phantom",
        "ws_garble",
    }
)

FAULT_KINDS = frozenset(
    {
        "latency",
        "error",
        "error_after",
        "rate_limit",
        "drop_before",
        "drop_after",
        "in_process",
        "in_process_after",
        "not_authorized",
        "expire_session",
        "malformed",
        "malformed_after",
    }
    | SOCKET_FAULT_KINDS
)
_AFTER = frozenset({"error_after", "drop_after", "malformed_after", "in_process_after"})


def _check_kind(instance: Fault, attribute: attrs.Attribute[str], value: str) -> None:
    if value not in FAULT_KINDS:
        raise InvalidInputError(
            f"unknown fault kind {value!r}; expected one of {', '.join(sorted(FAULT_KINDS))}"
        )


def _check_fault(instance: Fault) -> None:
    if instance.times is not None and instance.times < 1:
        raise InvalidInputError("Fault.times must be >= 1 (or None for unlimited)")
    if not 0.0 <= instance.probability <= 1.0:
        raise InvalidInputError("Fault.probability must be within [0, 1]")
    if instance.delay < 0 or instance.retry_after < 0:
        raise InvalidInputError("Fault.delay and Fault.retry_after must be >= 0")
    if not 400 <= instance.status <= 599:
        raise InvalidInputError("Fault.status must be an HTTP error status (400-599)")


@attrs.frozen
class Fault:
    """One fault rule: ``method`` (AlphaPoint method name, case-insensitive, or ``"*"``).

    ``delay`` is the added latency in seconds (``latency``); ``status`` the HTTP status of
    ``error``/``error_after``; ``retry_after`` the seconds announced by ``rate_limit``.
    """

    method: str
    kind: str = attrs.field(validator=_check_kind)
    times: int | None = None
    probability: float = 1.0
    delay: float = 0.5
    status: int = 503
    retry_after: float = 1.0

    def __attrs_post_init__(self) -> None:
        _check_fault(self)

    @property
    def applies_request(self) -> bool:
        """False when the exchange never sees the request."""
        return self.kind not in {
            "error",
            "rate_limit",
            "drop_before",
            "malformed",
            "in_process",
            "not_authorized",
        }

    @property
    def is_after(self) -> bool:
        """True for kinds that act once the request was applied."""
        return self.kind in _AFTER

    def matches(self, method: str) -> bool:
        """True when this rule targets ``method``."""
        return self.method == "*" or self.method.lower() == method.lower()


_KEYS = {
    "times": "times",
    "n": "times",
    "p": "probability",
    "prob": "probability",
    "probability": "probability",
    "delay": "delay",
    "seconds": "delay",
    "status": "status",
    "retry_after": "retry_after",
    "retry-after": "retry_after",
}


def parse_fault_spec(spec: str) -> Fault:
    """Parse ``METHOD:KIND[:TIMES][:key=value]...`` into a :class:`Fault`.

    ``METHOD`` may be ``*``; ``TIMES`` an integer or ``*`` (unlimited); keys are
    ``times``, ``p`` (probability), ``delay`` (seconds), ``status``, ``retry_after``.
    Examples: ``SendOrder:drop_after:1``, ``GetLevel1:latency:delay=0.2``,
    ``*:error:status=502:p=0.1``.  Raises :class:`~kiiex_async.errors.InvalidInputError`.
    """
    parts = [p.strip() for p in spec.strip().split(":")]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise InvalidInputError(f"fault spec {spec!r}: expected METHOD:KIND[:TIMES][:key=value]")
    method, kind = parts[0], parts[1].lower().replace("-", "_")
    options: dict[str, object] = {}
    for part in parts[2:]:
        if not part:
            continue
        if "=" in part:
            key, _, raw = part.partition("=")
            name = _KEYS.get(key.strip().lower())
            if name is None:
                raise InvalidInputError(f"fault spec {spec!r}: unknown option {key!r}")
        else:
            name, raw = "times", part
        raw = raw.strip()
        try:
            if name == "times":
                options[name] = None if raw in ("*", "inf", "") else int(raw)
            elif name == "status":
                options[name] = int(raw)
            else:
                options[name] = float(raw)
        except ValueError:
            raise InvalidInputError(f"fault spec {spec!r}: bad value {raw!r} for {name}")
    return Fault(method, kind, **options)  # type: ignore[arg-type]  # keys checked above


@dataclass(slots=True)
class FaultPlan:
    """What to do with one request: sleep ``delay``, maybe expire sessions, maybe fail."""

    delay: float = 0.0
    expire_sessions: bool = False
    before: Fault | None = None
    after: Fault | None = None


@dataclass(slots=True)
class _Armed:
    fault: Fault
    remaining: int | None


class FaultInjector:
    """The active fault rules of one simulator; :attr:`fired` logs what fired."""

    def __init__(self, seed: int = 0) -> None:
        self._rng = random.Random(f"{seed}:faults")
        self._armed: list[_Armed] = []
        #: ``(method, kind)`` of every fault that fired, in order.
        self.fired: list[tuple[str, str]] = []

    def __bool__(self) -> bool:
        return bool(self._armed)

    def inject(self, *faults: Fault | str) -> None:
        """Arm faults (a :class:`Fault` or a spec string for :func:`parse_fault_spec`)."""
        for fault in faults:
            rule = parse_fault_spec(fault) if isinstance(fault, str) else fault
            self._armed.append(_Armed(rule, rule.times))

    def extend(self, faults: Iterable[Fault | str]) -> None:
        """Arm several faults."""
        self.inject(*faults)

    def clear(self, method: str | None = None) -> None:
        """Disarm every fault, or those of one method."""
        if method is None:
            self._armed.clear()
        else:
            self._armed = [a for a in self._armed if a.fault.method.lower() != method.lower()]

    @property
    def active(self) -> list[Fault]:
        """The armed rules, with ``times`` showing what remains."""
        return [attrs.evolve(a.fault, times=a.remaining) for a in self._armed]

    def plan(self, method: str) -> FaultPlan:
        """Decide the faults of one call of ``method`` (consumes ``times``)."""
        plan = FaultPlan()
        for armed in list(self._armed):
            fault = armed.fault
            if fault.kind in SOCKET_FAULT_KINDS or not fault.matches(method):
                continue
            if fault.kind not in ("latency", "expire_session") and (plan.before or plan.after):
                continue
            if not self._fires(armed, method):
                continue
            if fault.kind == "latency":
                plan.delay += fault.delay
            elif fault.kind == "expire_session":
                plan.expire_sessions = True
            elif fault.is_after:
                plan.after = fault
            else:
                plan.before = fault
        return plan

    def socket_plan(self, name: str) -> list[Fault]:
        """The socket faults (``ws_*``) that fire for one frame named ``name`` (consumes
        ``times``); empty in the common case."""
        fired: list[Fault] = []
        for armed in list(self._armed):
            fault = armed.fault
            if (
                fault.kind in SOCKET_FAULT_KINDS
                and fault.matches(name)
                and self._fires(armed, name)
            ):
                fired.append(fault)
        return fired

    def _fires(self, armed: _Armed, name: str) -> bool:
        """Draw the probability, consume one of ``times`` and log it; True if it fires."""
        fault = armed.fault
        if fault.probability < 1.0 and self._rng.random() >= fault.probability:
            return False
        if armed.remaining is not None:
            armed.remaining -= 1
            if armed.remaining <= 0:
                self._armed.remove(armed)
        self.fired.append((name, fault.kind))
        return True
