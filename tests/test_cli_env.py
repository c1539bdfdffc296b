"""The CLI's local environment: private files, one owner of the embedded simulator, and
one readable line for every problem with the state directory or a state file."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kiiex_async import cli

CREDENTIAL_VARS = ("KIIEX_API_KEY", "KIIEX_API_SECRET", "KIIEX_USER_ID", "KIIEX_USERNAME")


@pytest.fixture
def fresh_state_dir(state_dir: Path) -> Path:
    """The state dir of KIIEX_STATE_DIR, not created yet: the CLI creates it."""
    state_dir.rmdir()
    return state_dir


def mode(path: Path) -> int:
    """The permission bits of ``path``."""
    return stat.S_IMODE(path.stat().st_mode)


def test_state_dir_is_0700_and_its_files_0600(
    fresh_state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a swap the new state dir is 0700 and the checkpoint DB (with its WAL files)
    and sim-state.json are 0600, whatever the umask."""
    old = os.umask(0o022)
    try:
        assert cli.run(["swap", "USDT", "COPM", "5", "-q"]) == 0
    finally:
        os.umask(old)
    capsys.readouterr()
    assert mode(fresh_state_dir) == 0o700
    files = [p for p in fresh_state_dir.iterdir() if p.is_file()]
    assert {p.name for p in files} >= {"swaps-sim.sqlite3", "sim-state.json", "sim.lock"}
    assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}


def test_older_world_readable_files_are_tightened(
    fresh_state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A checkpoint DB left 0644 by an older version is made 0600 on the next command;
    a directory the user created keeps its own mode."""
    fresh_state_dir.mkdir(mode=0o755)
    fresh_state_dir.chmod(0o755)
    assert cli.run(["swaps", "-q"]) == 0
    db = fresh_state_dir / "swaps-sim.sqlite3"
    db.chmod(0o644)
    assert cli.run(["swaps", "-q"]) == 0
    capsys.readouterr()
    assert mode(db) == 0o600
    assert mode(fresh_state_dir) == 0o755


def test_the_default_state_dir_is_tightened(
    state_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The default state dir (user data dir), left 0755 by an older version, becomes 0700."""
    monkeypatch.delenv("KIIEX_STATE_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    default = tmp_path / "data" / "kiiex"
    default.mkdir(parents=True)
    default.chmod(0o755)
    assert cli.run(["swaps", "-q"]) == 0
    capsys.readouterr()
    assert mode(default) == 0o700
    assert (default / "swaps-sim.sqlite3").exists()


def one_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The single stderr line of a failed command (no traceback, no 'internal error')."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("kiiex: error: ")
    assert "internal error" not in err
    return lines[0]


def test_state_dir_that_is_a_file(
    fresh_state_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state dir that is a file: one line naming it and the way out (--state-dir)."""
    fresh_state_dir.parent.mkdir(exist_ok=True)
    fresh_state_dir.write_text("not a directory")
    assert cli.run(["balances", "-q"]) == cli.EXIT_USAGE
    line = one_error(capsys)
    assert f"{fresh_state_dir} is a file" in line
    assert "--state-dir" in line


def test_state_dir_that_cannot_be_created(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A state dir below a file cannot be created: one line with the reason and the fix."""
    (tmp_path / "file").write_text("x")
    assert cli.run(["swaps", "-q", "--state-dir", str(tmp_path / "file" / "state")]) == 2
    line = one_error(capsys)
    assert "cannot create the state directory" in line
    assert "--state-dir" in line


def test_unwritable_state_dir(
    fresh_state_dir: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A state dir the user cannot write: one line saying so (not an OSError dump).
    (os.access is faked: the suite may run as root, who can write anywhere.)"""
    fresh_state_dir.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, m: False if Path(path) == fresh_state_dir else real_access(path, m),
    )
    assert cli.run(["swaps", "-q"]) == cli.EXIT_USAGE
    assert "not writable" in one_error(capsys)


def test_damaged_sim_state_file(fresh_state_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A damaged sim-state.json: one line naming the file and saying to move it away."""
    fresh_state_dir.mkdir()
    (fresh_state_dir / "sim-state.json").write_text("{not json")
    assert cli.run(["balances", "-q"]) == cli.EXIT_USAGE
    line = one_error(capsys)
    assert "sim-state.json is damaged" in line
    assert "move it away" in line


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_sim_port_out_of_range(capsys: pytest.CaptureFixture[str], port: str) -> None:
    """`kiiex sim --port 99999` is a usage error of one line, before anything starts."""
    assert cli.run(["sim", "--port", port]) == cli.EXIT_USAGE
    assert "port" in one_error(capsys)


def test_sim_damaged_state_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`kiiex sim --state FILE` with a damaged file: one line, nothing served."""
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    assert cli.run(["sim", "--port", "0", "--state", str(bad)]) == cli.EXIT_USAGE
    line = one_error(capsys)
    assert f"--state {bad}" in line


def test_sim_port_in_use(capsys: pytest.CaptureFixture[str]) -> None:
    """A port already taken: one line suggesting another --port."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.run(["sim", "--port", str(port)]) == cli.EXIT_USAGE
    assert "pick another --port" in one_error(capsys)


def _env(state: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIIEX_")}
    env["KIIEX_STATE_DIR"] = str(state)
    return env


@pytest.mark.slow
def test_two_runs_sharing_a_state_dir_keep_both_swaps(tmp_path: Path) -> None:
    """Two `kiiex swap` processes on one state dir: the second waits for the first (and
    says so); the saved exchange ends with both orders and both balances moved."""
    env = _env(tmp_path)
    command = [sys.executable, "-m", "kiiex_async"]
    first = subprocess.Popen(
        [*command, "swap", "USDT", "COPM", "10", "--deposit", "20", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    second: subprocess.Popen[str] | None = None
    try:
        assert first.stderr is not None
        seen = ""
        deadline = time.monotonic() + 60
        while "DEPOSIT_PENDING" not in seen and time.monotonic() < deadline:
            line = first.stderr.readline()
            if not line:
                break
            seen += line
        assert "DEPOSIT_PENDING" in seen, seen
        second = subprocess.Popen(
            [*command, "swap", "USDT", "COPM", "7", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        out2, err2 = second.communicate(timeout=120)
        out1, _ = first.communicate(timeout=120)
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.communicate(timeout=10)
    assert first.returncode == 0
    assert second.returncode == 0, err2
    assert "waiting for it to finish" in err2
    results = [json.loads(out1), json.loads(out2)]
    assert sorted(r["spent"] for r in results) == ["10", "7"]
    exchange = json.loads((tmp_path / "sim-state.json").read_text())["exchange"]
    demo = [o for o in exchange["orders"] if o["account_id"] == 1]
    assert len(demo) == 2
