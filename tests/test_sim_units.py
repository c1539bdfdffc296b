"""Pure pieces of the simulator: hand-written JSON, fault specs, sessions, clock, config."""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest

import kiiex_async.sim
from kiiex_async.errors import ConfigurationError, InvalidInputError
from kiiex_async.sim import DemoUser, Fault, SimConfig, parse_fault_spec
from kiiex_async.sim._clock import SimClock
from kiiex_async.sim._faults import FaultInjector
from kiiex_async.sim._json import decimal_text, dumps, loads
from kiiex_async.sim._sessions import SessionStore


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (D("100.50"), "100.5"),
        (D("1E+2"), "100"),
        (D("0.0000000100000000000000000000"), "0.00000001"),
        (D("-0.000"), "0"),
        (D("123456789012345678901234567.89"), "123456789012345678901234567.89"),
        (D("4000"), "4000"),
    ],
)
def test_decimal_is_written_as_an_exact_plain_number(value: D, text: str) -> None:
    """Decimals become exact JSON numbers: no exponent, trailing zeros stripped."""
    assert decimal_text(value) == text
    assert loads(dumps({"x": value})) == {"x": D(text) if "." in text else int(text)}


def test_dumps_writes_compact_json_and_refuses_floats() -> None:
    """dumps writes compact JSON with escaped strings and refuses float money."""
    payload = {"a": [1, True, None, 'é"x'], "b": {}, "c": []}
    assert dumps(payload) == json.dumps(payload, separators=(",", ":")).encode()
    with pytest.raises(TypeError, match="float"):
        dumps({"Amount": 1.5})
    with pytest.raises(ValueError, match="finite"):
        dumps(D("NaN"))


def test_loads_reads_fractions_as_decimal_and_refuses_nan() -> None:
    """Request JSON: fractions -> Decimal (ccxt floats stay exact), ints stay int, NaN refused."""
    assert loads(b'{"Quantity": 0.1, "Side": 1}') == {"Quantity": D("0.1"), "Side": 1}
    with pytest.raises(ValueError, match="NaN"):
        loads('{"Quantity": NaN}')


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("SendOrder:drop_after:1", Fault("SendOrder", "drop_after", times=1)),
        ("GetLevel1:latency:delay=0.2", Fault("GetLevel1", "latency", delay=0.2)),
        ("*:error:status=502:p=0.25", Fault("*", "error", status=502, probability=0.25)),
        ("x:rate-limit:*:retry_after=3", Fault("x", "rate_limit", retry_after=3.0)),
        (
            "CreateWithdrawTicket:drop_before:times=2",
            Fault("CreateWithdrawTicket", "drop_before", times=2),
        ),
    ],
)
def test_parse_fault_spec(spec: str, expected: Fault) -> None:
    """``METHOD:KIND[:TIMES][:key=value]`` parses into the equivalent Fault."""
    assert parse_fault_spec(spec) == expected


@pytest.mark.parametrize(
    "spec",
    [
        "SendOrder",
        "SendOrder:explode",
        ":drop_after",
        "A:error:status=200",
        "A:error:x=1",
        "A:latency:0",
    ],
)
def test_parse_fault_spec_rejects_bad_specs(spec: str) -> None:
    """Bad specs raise InvalidInputError (a ValueError) naming the problem."""
    with pytest.raises(InvalidInputError):
        parse_fault_spec(spec)


def test_fault_injector_counts_times_and_matches_case_insensitively() -> None:
    """A fault fires ``times`` times for its method only (any casing), then disarms."""
    faults = FaultInjector(seed=1)
    faults.inject(Fault("SendOrder", "drop_after", times=2), "GetLevel1:latency:delay=0.1")
    assert faults.plan("GetLevel1").delay == pytest.approx(0.1)
    assert faults.plan("sendorder").after is not None
    assert faults.plan("Ping").after is None
    assert faults.plan("SendOrder").after is not None
    assert faults.plan("SendOrder").after is None
    assert [f.method for f in faults.active] == ["GetLevel1"]
    assert faults.fired == [
        ("GetLevel1", "latency"),
        ("sendorder", "drop_after"),
        ("SendOrder", "drop_after"),
    ]
    faults.clear()
    assert not faults


def test_fault_probability_is_reproducible_with_a_seed() -> None:
    """Probabilistic faults fire on the same calls for the same seed."""

    def pattern(seed: int) -> list[bool]:
        faults = FaultInjector(seed=seed)
        faults.inject(Fault("*", "error", probability=0.5))
        return [faults.plan("Ping").before is not None for _ in range(40)]

    assert pattern(5) == pattern(5)
    assert pattern(5) != pattern(6)
    assert 5 < sum(pattern(5)) < 35


def test_only_one_failure_per_request_but_latency_adds_up() -> None:
    """Latency and expiry combine with one failure; a second failure rule waits its turn."""
    faults = FaultInjector()
    faults.inject(
        Fault("*", "latency", delay=0.1, times=1),
        Fault("*", "expire_session", times=1),
        Fault("*", "error", times=1),
        Fault("*", "rate_limit", times=1),
    )
    first = faults.plan("Ping")
    assert first.delay == pytest.approx(0.1) and first.expire_sessions
    assert first.before is not None and first.before.kind == "error"
    second = faults.plan("Ping")
    assert second.before is not None and second.before.kind == "rate_limit"


def test_sessions_expire_after_inactivity() -> None:
    """A session lives ttl seconds after its last use; using it extends it."""
    store = SessionStore(ttl=60)
    token = store.create(1, now=0)
    assert store.get(token, now=50) is not None
    assert store.get(token, now=100) is not None  # touched at 50
    assert store.get(token, now=161) is None
    assert store.get(token, now=0) is None  # gone for good


def test_pending_2fa_sessions_never_pass_for_full_sessions() -> None:
    """A pending 2FA token only works for Authenticate2FA, and a session token not for it."""
    store = SessionStore(ttl=60)
    pending = store.create(1, now=0, pending_2fa=True)
    full = store.create(1, now=0)
    assert store.get(pending, now=1) is None
    assert store.get(pending, now=1, pending_2fa=True) is not None
    assert store.get(full, now=1, pending_2fa=True) is None
    assert pending not in repr(store.get(pending, now=1, pending_2fa=True))
    assert store.expire_all() == 2 and len(store) == 0


def test_frozen_clock_moves_only_when_advanced() -> None:
    """speed=0 freezes simulated time; advance moves it; set_speed restarts it from there."""
    clock = SimClock(start=1000.0, speed=0.0)
    assert clock.now() == 1000.0
    assert clock.advance(5) == 1005.0
    with pytest.raises(ValueError, match="forward"):
        clock.advance(-1)
    clock.set_speed(1000.0)
    assert clock.now() >= 1005.0


def test_config_validation_names_the_problem() -> None:
    """SimConfig refuses floats for money, duplicate users and unknown products."""
    with pytest.raises(ConfigurationError, match="Decimal"):
        SimConfig(maker_fee=0.001)
    with pytest.raises(ConfigurationError, match="duplicate"):
        SimConfig(users=(DemoUser(), DemoUser()))
    with pytest.raises(ConfigurationError, match="unknown product"):
        SimConfig(users=(DemoUser(balances={"BTC": 1}),))
    with pytest.raises(ConfigurationError, match="probability"):
        SimConfig(withdraw_fail_probability=2.0)


def test_demo_user_hides_secrets_and_builds_credentials() -> None:
    """DemoUser's repr hides secret, password and 2FA code; credentials_kwargs has them all."""
    user = DemoUser(two_fa_code="123456")
    text = repr(user)
    assert user.api_secret not in text and user.password not in text and "123456" not in text
    kwargs = user.credentials_kwargs
    assert kwargs["user_id"] == "1" and kwargs["api_secret"] == user.api_secret
    assert user.balances == {"USDT": D(10_000), "USDC": D(10_000)}


def test_public_names_of_the_sim_package() -> None:
    """kiiex_async.sim exports exactly its documented, docstring-carrying public names."""
    assert kiiex_async.sim.__all__ == [
        "DIALECTS",
        "DemoUser",
        "Fault",
        "InstrumentSpec",
        "ProductSpec",
        "SimConfig",
        "Simulator",
        "parse_fault_spec",
        "serve",
        "serve_async",
    ]
    for name in kiiex_async.sim.__all__:
        assert getattr(kiiex_async.sim, name).__doc__, name
