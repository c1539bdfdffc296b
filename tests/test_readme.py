"""Every `kiiex` command in the README's code blocks runs, in order, on a fresh state
directory (the embedded simulator), as a newcomer would type it."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands(*, templates: bool = False) -> list[list[str]]:
    """The `kiiex ...` lines of the README's ``sh`` code blocks, comments stripped.

    Blocks fenced as ``sh template`` need the reader's own database or credentials: they
    are left out, or (``templates=True``) they are the only ones returned.
    """
    commands = []
    fence: list[str] | None = None  # inside a fence: its info words ([] if none)
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            fence = line[3:].split() if fence is None else None
            continue
        if fence is None or (fence[:1] or [""])[0] not in ("sh", "bash", "console", ""):
            continue
        if ("template" in fence) != templates:
            continue
        words = shlex.split(line, comments=True)
        if words and words[0] == "kiiex":
            commands.append(words[1:])
    return commands


def test_template_blocks_only_hold_commands_with_placeholders() -> None:
    """A block is left out only when it is a template: each of its commands names a
    placeholder the reader fills in ($DSN), so no runnable command escapes the test."""
    templates = readme_commands(templates=True)
    assert templates
    assert all(any(w.startswith("$") for w in words) for words in templates)


def test_the_readme_has_the_commands_it_promises() -> None:
    """The extraction finds the swap job's commands (an empty list would prove nothing)."""
    commands = readme_commands()
    assert ["swaps"] in commands
    assert len([c for c in commands if c[:1] == ["swap"]]) >= 7


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_readme_command_runs_in_order_on_a_fresh_state_dir(tmp_path: Path) -> None:
    """Each README `kiiex` command exits 0 on a fresh demo (SWAP_ID = the last swap)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIIEX_")}
    env["KIIEX_STATE_DIR"] = str(tmp_path)
    base = [sys.executable, "-m", "kiiex_async"]
    last_swap: str | None = None
    for words in readme_commands():
        if "SWAP_ID" in words:
            assert last_swap is not None, "SWAP_ID used before any swap"
            words = [last_swap if w == "SWAP_ID" else w for w in words]
        proc = subprocess.run(
            [*base, *words, "-q"], env=env, capture_output=True, text=True, timeout=240
        )
        assert proc.returncode == 0, f"kiiex {shlex.join(words)}: {proc.stderr}"
        if words[0] == "swap":
            listed = subprocess.run(
                [*base, "swaps", "--json", "-q"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=True,
            )
            swaps = json.loads(listed.stdout)["swaps"]
            last_swap = max(swaps, key=lambda s: s["created_at"])["swap_id"]
