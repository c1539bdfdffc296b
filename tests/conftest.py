"""Fixtures shared by the test modules: the command line's state directory, and the
PostgreSQL server (see pg_support)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pg_support import pg_server, postgres_dsn

__all__ = ["pg_server", "postgres_dsn", "state_dir"]

# Variables that configure the test run itself, not `kiiex`.
_TEST_SETTINGS = ("KIIEX_PG_BIN", "KIIEX_REQUIRE_POSTGRES")


@pytest.fixture
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private state dir (0700, empty) and no KIIEX_* variables (no credentials, no 2FA
    code): `kiiex` runs against its embedded simulator there."""
    for name in list(os.environ):
        if name.startswith("KIIEX_") and name not in _TEST_SETTINGS:
            monkeypatch.delenv(name)
    path = tmp_path / "state"
    path.mkdir(mode=0o700)
    monkeypatch.setenv("KIIEX_STATE_DIR", str(path))
    return path
