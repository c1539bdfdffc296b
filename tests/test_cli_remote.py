"""`kiiex` against an exchange it did not start (--base-url): the URL it names, 2FA codes
from the environment, and what it logs."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from kiiex_async.sim import DemoUser, Fault, SimConfig, Simulator

CODE = "424242"


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A simulator whose demo user holds 1234.5 USDT (the embedded one holds 10000)."""
    user = DemoUser(balances={"USDT": "1234.5", "COPM": "0"})
    async with Simulator(SimConfig(users=[user])) as simulator:
        yield simulator


@pytest.fixture
async def sim_2fa() -> AsyncIterator[Simulator]:
    async with Simulator(SimConfig(users=[DemoUser(two_fa_code=CODE)])) as simulator:
        yield simulator


def clean_env(state: Path, **extra: str) -> dict[str, str]:
    """The environment without KIIEX_* variables, with a private state dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIIEX_")}
    env["KIIEX_STATE_DIR"] = str(state)
    env.update(extra)
    return env


def key_env(sim: Simulator, state: Path, **extra: str) -> dict[str, str]:
    """Credentials of the simulator's demo user, as a real user would export them."""
    demo = sim.demo
    return clean_env(
        state,
        KIIEX_API_KEY=demo.api_key,
        KIIEX_API_SECRET=demo.api_secret,
        KIIEX_USER_ID=str(demo.user_id),
        **extra,
    )


async def kiiex(env: dict[str, str], *argv: str) -> tuple[int, str, str]:
    """Run the `kiiex` console script in a subprocess (stdin not a terminal)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "kiiex_async",
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_base_url_without_credentials_uses_that_simulator(
    sim: Simulator, tmp_path: Path
) -> None:
    """`kiiex balances --base-url <sim>` with no credentials talks to that simulator as its
    demo user (not the embedded one) and says which URL it uses."""
    code, out, err = await kiiex(clean_env(tmp_path), "balances", "--base-url", sim.url)
    assert code == 0, err
    assert "1234.500000" in out
    assert f"Using {sim.url}" in err
    assert "embedded" not in err
    assert not (tmp_path / "sim-state.json").exists()


async def test_banner_names_the_url_not_staging(sim: Simulator, tmp_path: Path) -> None:
    """With credentials and --base-url the banner names the URL, never "KIIEX staging"."""
    code, _out, err = await kiiex(key_env(sim, tmp_path), "balances", "--base-url", sim.url)
    assert code == 0, err
    assert f"Using {sim.url}" in err
    assert "Using KIIEX staging" not in err


@pytest.mark.parametrize(
    "source",
    [{"KIIEX_2FA_CODE": CODE}, {"KIIEX_2FA_COMMAND": f"{sys.executable} -c print({CODE})"}],
)
async def test_two_factor_code_from_the_environment(
    sim_2fa: Simulator, tmp_path: Path, source: dict[str, str]
) -> None:
    """A 2FA account logs in with KIIEX_2FA_CODE or KIIEX_2FA_COMMAND; the code appears
    nowhere in the output, even with -v."""
    env = key_env(sim_2fa, tmp_path, **source)
    code, out, err = await kiiex(env, "balances", "--base-url", sim_2fa.url, "-v")
    assert code == 0, err
    assert "USDT" in out
    assert CODE not in out + err


async def test_two_factor_without_a_code_says_how_to_give_one(
    sim_2fa: Simulator, tmp_path: Path
) -> None:
    """No code and no terminal: exit 2 with one line naming KIIEX_2FA_CODE/_COMMAND."""
    code, _out, err = await kiiex(key_env(sim_2fa, tmp_path), "balances", "--base-url", sim_2fa.url)
    assert code == 2
    (line,) = [x for x in err.splitlines() if x.startswith("kiiex: error")]
    assert "KIIEX_2FA_CODE" in line
    assert "KIIEX_2FA_COMMAND" in line


async def test_retries_are_quiet_by_default_and_shown_with_verbose(
    sim: Simulator, tmp_path: Path
) -> None:
    """A retried read prints no bare `stamina.retry_scheduled` line by default; -v shows
    the retry and the requests as `kiiex:` lines."""
    sim.faults.inject(Fault("GetAccountPositions", "error", times=1))
    code, _out, err = await kiiex(clean_env(tmp_path), "balances", "--base-url", sim.url, "-q")
    assert code == 0, err
    assert err == ""
    sim.faults.inject(Fault("GetAccountPositions", "error", times=1))
    code, _out, err = await kiiex(clean_env(tmp_path), "balances", "--base-url", sim.url, "-v")
    assert code == 0, err
    assert "stamina.retry_scheduled" not in err
    assert "kiiex: warning: retry 1 of" in err
    assert "GetAccountPositions -> HTTP 200" in err


#: Runs `kiiex` with its stdin (a pseudo-terminal) as its controlling terminal.
_ON_TTY = (
    "import fcntl, runpy, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "sys.argv = ['kiiex', *sys.argv[1:]]; runpy.run_module('kiiex_async', run_name='__main__')"
)


def _run_on_a_terminal(argv: list[str], env: dict[str, str], answer: str) -> tuple[int, str]:
    """Run `kiiex` on a pseudo-terminal (its controlling terminal), type ``answer`` at the
    first prompt, and return its exit status and everything the terminal showed."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-c", _ON_TTY, *argv],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
    )
    os.close(slave)
    shown = b""
    answered = False
    try:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            shown += chunk
            if not answered and b"2FA code:" in shown:
                os.write(master, answer.encode() + b"\n")
                answered = True
    finally:
        os.close(master)
        code = proc.wait(timeout=60)
    return code, shown.decode(errors="replace")


async def test_two_factor_prompt_on_a_terminal(sim_2fa: Simulator, tmp_path: Path) -> None:
    """On a terminal with no code in the environment, `kiiex` asks for the code without
    echoing it, and logs in with the answer."""
    env = key_env(sim_2fa, tmp_path)
    argv = ["balances", "--base-url", sim_2fa.url]
    code, shown = await asyncio.to_thread(_run_on_a_terminal, argv, env, CODE)
    assert code == 0, shown
    assert "2FA code:" in shown
    assert "USDT" in shown
    assert CODE not in shown
