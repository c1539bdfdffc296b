"""The examples run as users would run them, against the embedded simulator."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def run_example(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run one example script with no KIIEX credentials in the environment."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIIEX_")}
    return subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
        check=False,
    )


@pytest.mark.slow
def test_swap_example_completes(tmp_path: Path) -> None:
    """examples/swap.py completes a swap and prints its result."""
    proc = run_example("swap.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "COMPLETED" in proc.stdout


@pytest.mark.slow
def test_resume_example_finds_exactly_one_order(tmp_path: Path) -> None:
    """examples/resume_after_crash.py resumes a killed swap and the exchange holds one order."""
    proc = run_example("resume_after_crash.py", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # The child really died after SendOrder, before checkpointing the order id...
    assert "child: the exchange has the order" in proc.stdout
    assert f"child exited with {-signal.SIGKILL} (killed)" in proc.stdout
    assert "checkpoint: ORDER_INTENT" in proc.stdout
    # ...and the resume completed it.
    assert "COMPLETED" in proc.stdout
    assert "holds 1 order(s)" in proc.stdout
