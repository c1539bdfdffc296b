"""What `kiiex` prints: one JSON object per exit, options anywhere, id prefixes, exit codes
as the README tables them, rounded amounts, untruncated tables, completion scripts."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from kiiex_async import __version__, cli
from kiiex_async.workflow import SwapRequest, SwapStep

ROOT = Path(__file__).resolve().parent.parent


def json_exit(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, dict[str, object]]:
    """Run with --json; stdout must hold exactly one JSON object."""
    code = cli.run(argv)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    value = json.loads(lines[0])
    assert isinstance(value, dict)
    return code, value


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["swap", "USDT", "COPM", "abc", "--json"], 2),
        (["show", "nope", "--json"], 2),
        (["swap", "USDT", "--json"], 2),
        (["--json", "sim", "--port", "99999"], 2),
        (["balances", "--json", "-q", "--base-url", "http://127.0.0.1:9/ap"], 1),
    ],
)
def test_every_failure_prints_one_json_error_object(
    state_dir: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int
) -> None:
    """With --json a failure prints exactly one object {"error", "exit_code"} on stdout."""
    got, value = json_exit(capsys, argv)
    assert got == code
    assert value["exit_code"] == code
    assert isinstance(value["error"], str)
    assert value["error"]


def test_global_options_before_the_command(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`kiiex --env sim --json -q balances` is accepted like `kiiex balances --env sim ...`,
    and an option given before the command is not reset by the command's defaults."""
    code, value = json_exit(capsys, ["--env", "sim", "--json", "-q", "balances"])
    assert code == 0
    assert "balances" in value
    code, value = json_exit(capsys, ["--json", "swaps", "--env", "sim"])
    assert code == 0
    assert value == {"swaps": []}


def test_show_and_resume_take_a_unique_prefix(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`show`/`resume` accept a unique id prefix; an ambiguous one is one clear line."""
    for swap_id in ("pfx-one", "pfx-two"):
        assert cli.run(["swap", "USDT", "COPM", "3", "--swap-id", swap_id, "-q", "--json"]) == 0
    capsys.readouterr()
    code, shown = json_exit(capsys, ["show", "pfx-o", "--json"])
    assert code == 0
    assert shown["swap_id"] == "pfx-one"
    code, resumed = json_exit(capsys, ["resume", "pfx-t", "--json", "-q"])
    assert code == 0
    assert resumed["swap_id"] == "pfx-two"
    assert cli.run(["show", "pfx"]) == cli.EXIT_USAGE
    (line,) = capsys.readouterr().err.splitlines()
    assert "2 swaps start with 'pfx'" in line


def readme_exit_codes() -> dict[int, str]:
    """The README's exit status table: code -> meaning."""
    text = (ROOT / "README.md").read_text()
    section = text.split("### Exit status", 1)[1].split("\n#", 1)[0]
    rows = re.findall(r"^\| `(\d+)` \| (.+?) \|$", section, re.M)
    return {int(code): meaning for code, meaning in rows}


def test_readme_exit_codes_are_the_cli_s(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's exit status table lists exactly the CLI's codes, and commands exit
    with them: 0 done, 1 exchange unreachable, 2 bad input (3, a swap not completed, and
    130, interrupted, are pinned in test_cli_withdraw and test_cli)."""
    assert readme_exit_codes() == cli.EXIT_CODES
    assert cli.run(["swaps", "-q"]) == cli.EXIT_OK
    assert cli.run(["balances", "-q", "--base-url", "http://127.0.0.1:9/ap"]) == cli.EXIT_ERROR
    assert cli.run(["swap", "USDT", "COPM", "1e2", "-q"]) == cli.EXIT_USAGE


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`kiiex --version` prints the package version and exits 0."""
    assert cli.run(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"kiiex_async {__version__}"


@pytest.mark.parametrize(
    ("shell", "marker"), [("bash", "-F _shtab_kiiex kiiex"), ("zsh", "#compdef kiiex")]
)
def test_completion_scripts(capsys: pytest.CaptureFixture[str], shell: str, marker: str) -> None:
    """`kiiex completion bash|zsh` prints a script that knows every command and option."""
    assert cli.run(["completion", shell]) == 0
    script = capsys.readouterr().out
    assert marker in script
    for word in ("swap", "resume", "swaps", "show", "balances", "rates", "sim", "--withdraw-field"):
        assert word in script


def test_summary_rounds_to_the_products_increments(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The human summary shows COPM with its 2 decimals, USDT with 6 and the price with
    the instrument's 2 (no 28-digit quotients, no exponent); --json keeps exact values."""
    assert cli.run(["swap", "USDT", "COPM", "25", "-q"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.strip().startswith("spent"))
    assert "E+" not in out
    assert re.search(r"spent 25\.000000 USDT, received \d+\.\d\d COPM \(net \d+\.\d\d\)", line)
    assert re.search(r" at \d+\.\d\d USDTCOPM;", line), line
    assert "FULLY_EXECUTED" in out  # enum names, never their numbers
    assert cli.run(["swaps", "--json", "-q"]) == 0
    swap_id = json.loads(capsys.readouterr().out)["swaps"][0]["swap_id"]
    assert cli.run(["show", swap_id, "--json", "-q"]) == 0
    exact = json.loads(capsys.readouterr().out)
    assert exact["spent"] == "25"


def test_describe_never_uses_exponent_notation() -> None:
    """A request for Decimal('1E+2') describes itself as 100, not 1E+2."""
    assert SwapRequest("USDT", "COPM", Decimal("1E+2")).describe() == "spend 100 USDT for COPM"


def test_swaps_table_is_not_truncated_when_piped(tmp_path: Path) -> None:
    """`kiiex swaps | cat` shows whole states and requests (no 80-column cut)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIIEX_")}
    env.pop("COLUMNS", None)
    env["KIIEX_STATE_DIR"] = str(tmp_path)
    command = [sys.executable, "-m", "kiiex_async"]
    swap = [*command, "swap", "USDT", "COPM", "4", "--max-slippage", "0.5%", "-q"]
    subprocess.run(swap, env=env, check=True, capture_output=True, timeout=120)
    listed = subprocess.run(
        [*command, "swaps"], env=env, check=True, capture_output=True, text=True, timeout=60
    )
    assert "COMPLETED" in listed.stdout
    assert "spend 4 USDT for COPM (max slippage 0.5%)" in listed.stdout


def test_step_labels_are_the_same_in_events_and_cli(
    state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The CLI's progress lines use SwapStep.title, the label ProgressEvent prints."""
    assert cli.run(["swap", "USDT", "COPM", "5"]) == 0
    err = capsys.readouterr().err
    for step in (SwapStep.AUTHENTICATE, SwapStep.RATE, SwapStep.POLL_ORDER, SwapStep.POSITIONS):
        assert f"✓ {step.title}" in err
    assert SwapStep.POLL_ORDER.title == "5/9 poll_order"
