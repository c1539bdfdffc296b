"""Fixtures shared by the command-line tests."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state dir (0700, empty) and no KIIEX_* variables (no credentials, no 2FA
    code): `kiiex` runs against its embedded simulator there."""
    for name in list(os.environ):
        if name.startswith("KIIEX_"):
            monkeypatch.delenv(name)
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("KIIEX_STATE_DIR", str(path))
    return path
