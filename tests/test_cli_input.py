"""Input the CLI and the Python API share: one rule for amounts, refused before any I/O."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from kiiex_async import cli
from kiiex_async.errors import InvalidInputError
from kiiex_async.workflow import DepositSpec, SwapRequest, WithdrawSpec

ODD_AMOUNTS = ["١٠٠", "１００", "1_0_0", "1e2", "+1", " 1", "1,000", "Infinity"]


@pytest.mark.parametrize("text", ODD_AMOUNTS)
def test_cli_refuses_odd_amounts_before_anything(
    state_dir: Path, capsys: pytest.CaptureFixture[str], text: str
) -> None:
    """`kiiex swap USDT COPM <odd digits>` exits 2 with one line; no exchange was started."""
    code = cli.run(["swap", "USDT", "COPM", text, "-q"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_USAGE
    assert err.count("\n") == 1
    assert "digits 0-9" in err
    assert not (state_dir / "sim-state.json").exists()


@pytest.mark.parametrize("text", ODD_AMOUNTS)
def test_python_api_refuses_the_same_amounts(text: str) -> None:
    """SwapRequest, DepositSpec and WithdrawSpec refuse the strings the CLI refuses."""
    with pytest.raises(InvalidInputError, match="digits 0-9"):
        SwapRequest("USDT", "COPM", text)
    with pytest.raises(InvalidInputError, match="digits 0-9"):
        DepositSpec(text)
    with pytest.raises(InvalidInputError, match="digits 0-9"):
        WithdrawSpec("Standard", amount=text)


def test_python_api_keeps_decimals_and_plain_strings() -> None:
    """Decimal objects stay allowed as they are; plain ASCII strings become Decimals."""
    assert SwapRequest("USDT", "COPM", Decimal("1E+2")).amount == 100
    assert SwapRequest("USDT", "COPM", "100.50").amount == Decimal("100.50")
    assert SwapRequest("USDT", "COPM", "1", max_slippage="0.5").max_slippage == Decimal("0.5")


@pytest.mark.parametrize("flag", ["--deposit", "--withdraw-amount", "--max-slippage"])
def test_cli_options_follow_the_same_rule(
    state_dir: Path, capsys: pytest.CaptureFixture[str], flag: str
) -> None:
    """Amount options (`--deposit`, `--withdraw-amount`, `--max-slippage`) use the one rule."""
    argv = ["swap", "USDT", "COPM", "10", flag, "１"]
    if flag == "--withdraw-amount":
        argv += ["--withdraw-template", "Standard"]
    code = cli.run([*argv, "-q"])
    assert code == cli.EXIT_USAGE
    assert "digits 0-9" in capsys.readouterr().err
