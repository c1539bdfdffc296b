"""What every ``kiiex`` command shares: exit codes, the target environment, output,
the client and the checkpoint store it connects to."""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
import platformdirs
from rich.console import Console

from ..auth import Credentials
from ..client import KiiexClient
from ..sim import SimConfig, Simulator
from ..workflow import (
    SqliteCheckpointStore,
)

ENVIRONMENTS = ("sim", "staging", "production")
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_COMPLETED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class CliError(Exception):
    """A problem worth one line to the user; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


@attrs.frozen
class Target:
    """Where commands go: the environment, its URL and credentials."""

    env: str
    credentials: Credentials | None
    state_dir: Path
    base_url: str | None = None

    @property
    def store_path(self) -> Path:
        """Checkpoints are kept per environment so a sim swap never resumes on staging."""
        return self.state_dir / f"swaps-{self.env}.sqlite3"

    @property
    def sim_state(self) -> Path:
        """The embedded simulator's exchange state (so a killed demo swap can resume)."""
        return self.state_dir / "sim-state.json"


def _default_state_dir() -> Path:
    return Path(os.environ.get("KIIEX_STATE_DIR") or platformdirs.user_data_dir("kiiex"))


def resolve_target(args: argparse.Namespace, environ: dict[str, str] | None = None) -> Target:
    """Pick the environment: explicit ``--env``, else staging with credentials, else sim."""
    env_vars = dict(os.environ if environ is None else environ)
    state_dir = Path(args.state_dir) if args.state_dir else _default_state_dir()
    configured = Credentials.env_configured(env_vars)
    env = args.env or ("staging" if configured else "sim")
    if env == "sim":
        return Target("sim", None, state_dir)
    if not configured:
        raise CliError(
            f"--env {env} needs credentials: set KIIEX_API_KEY, KIIEX_API_SECRET and "
            "KIIEX_USER_ID (or KIIEX_USERNAME and KIIEX_PASSWORD)",
            EXIT_USAGE,
        )
    return Target(env, Credentials.from_env(env_vars), state_dir, args.base_url)


class Output:
    """Human output on stderr (progress) and stdout (results), or JSON lines on stdout."""

    def __init__(self, *, as_json: bool, quiet: bool = False) -> None:
        self.as_json = as_json
        self.quiet = quiet
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def note(self, message: str) -> None:
        """A progress / context line for humans (never on stdout)."""
        if not self.quiet:
            self.err.print(message, markup=False)

    def json(self, value: Any) -> None:
        """One JSON document per line on stdout."""
        self.out.out(json.dumps(value, default=_json_default, sort_keys=True), highlight=False)


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if hasattr(value, "name") and hasattr(value, "value"):
        return value.name
    raise TypeError(f"cannot serialise {type(value).__name__}")


@contextlib.asynccontextmanager
async def connect(target: Target, output: Output) -> AsyncIterator[KiiexClient]:
    """A logged-in-on-demand client for the target (starting the embedded simulator)."""
    if target.env == "sim":
        target.state_dir.mkdir(parents=True, exist_ok=True)
        output.note(
            "No credentials configured: using the embedded KIIEX simulator "
            f"(state in {target.sim_state}). Set KIIEX_API_KEY/KIIEX_API_SECRET/KIIEX_USER_ID "
            "for staging."
        )
        async with Simulator(SimConfig(), state_file=target.sim_state) as sim:
            demo = sim.demo
            creds = Credentials(
                api_key=demo.api_key, api_secret=demo.api_secret, user_id=demo.user_id
            )
            async with KiiexClient(sim.url, credentials=creds, rate_limit=None) as client:
                yield client
        return
    assert target.credentials is not None
    base_url = target.base_url
    if base_url:
        factory: Callable[..., KiiexClient] = functools.partial(KiiexClient, base_url)
    elif target.env == "production":
        factory = KiiexClient.production
    else:
        factory = KiiexClient.staging
    output.note(f"Using KIIEX {target.env}.")
    async with factory(credentials=target.credentials) as client:
        yield client


@contextlib.asynccontextmanager
async def open_store(target: Target) -> AsyncIterator[SqliteCheckpointStore]:
    """The checkpoint store of the target's environment."""
    target.state_dir.mkdir(parents=True, exist_ok=True)
    async with SqliteCheckpointStore(target.store_path) as store:
        yield store
