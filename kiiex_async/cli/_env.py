"""Where ``kiiex`` commands go: the target exchange and its credentials, the private state
directory, the lock that gives one process at a time the embedded simulator, and where a
2FA code comes from.

Every problem here is a :class:`CliError` that says what is wrong and what to do.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import shlex
import stat
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from pathlib import Path

import attrs
import platformdirs

from ..auth import Credentials, TwoFactorProvider
from ..client import PRODUCTION_URL, STAGING_URL, KiiexClient
from ..errors import ConfigurationError
from ..sim import DemoUser, SimConfig, Simulator
from ..workflow import CheckpointStore, SqliteCheckpointStore
from ._base import EXIT_USAGE, CliError, Output
from ._worker import open_store_at, store_label

if sys.platform != "win32":
    import fcntl

__all__ = [
    "PRIVATE_DIR",
    "PRIVATE_FILE",
    "Target",
    "connect",
    "embedded_simulator",
    "open_store",
    "prepare_state_dir",
    "resolve_target",
    "two_factor_provider",
]

#: The state directory and the files in it hold account ids, balances and withdrawal
#: addresses: only their owner may read them.
PRIVATE_DIR, PRIVATE_FILE = 0o700, 0o600
_LOCK_NAME = "sim.lock"
_LOCK_POLL = 0.1
#: Suffixes of the files SQLite keeps beside a database.
_SQLITE_SIDES = ("", "-wal", "-shm", "-journal")


def _fix_hint(path: Path) -> str:
    return f"point --state-dir (or KIIEX_STATE_DIR) elsewhere, or fix {path}"


def prepare_state_dir(state_dir: Path, files: Iterable[Path] = ()) -> None:
    """Create ``state_dir`` (mode 0700) if needed and check that it is a writable directory.

    ``files`` are this CLI's own files in it (checkpoints, simulator state): existing ones
    readable by others, left by older versions, are tightened to 0600, and so is the
    default directory (the user data directory's ``kiiex``) to 0700.  Another existing
    directory keeps its mode: it is one the user chose, maybe the current one.
    """
    try:
        state_dir.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    except FileExistsError:
        raise CliError(
            f"state directory {state_dir} is a file, not a directory: {_fix_hint(state_dir)}",
            EXIT_USAGE,
        ) from None
    except OSError as exc:
        raise CliError(
            f"cannot create the state directory {state_dir} ({exc.strerror}): "
            f"{_fix_hint(state_dir)}",
            EXIT_USAGE,
        ) from None
    if not state_dir.is_dir():
        raise CliError(
            f"state directory {state_dir} is not a directory: {_fix_hint(state_dir)}", EXIT_USAGE
        )
    if not os.access(state_dir, os.W_OK | os.X_OK):
        raise CliError(
            f"state directory {state_dir} is not writable: {_fix_hint(state_dir)}", EXIT_USAGE
        )
    if state_dir.resolve() == Path(platformdirs.user_data_dir("kiiex")).resolve():
        _tighten(state_dir, PRIVATE_DIR)
    for base in files:
        for suffix in _SQLITE_SIDES:
            _tighten(base.with_name(base.name + suffix))


def _tighten(path: Path, private: int = PRIVATE_FILE) -> None:
    """Take group and other permissions off ``path`` (a regular file, or a directory when
    ``private`` is :data:`PRIVATE_DIR`)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return
    kind_ok = stat.S_ISDIR(mode) if private == PRIVATE_DIR else stat.S_ISREG(mode)
    if kind_ok and mode & 0o077:
        with contextlib.suppress(OSError):  # not ours to change: reading it still works
            path.chmod(private)


@contextlib.asynccontextmanager
async def _exclusive(state_dir: Path, note: Callable[[str], None]) -> AsyncIterator[None]:
    """Hold ``state_dir/sim.lock``; when another process holds it, say so and wait."""
    if sys.platform == "win32":  # pragma: no cover - no fcntl: one run at a time
        yield
        return
    path = state_dir / _LOCK_NAME
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, PRIVATE_FILE)
    except OSError as exc:
        raise CliError(
            f"cannot open the lock file {path} ({exc.strerror}): {_fix_hint(state_dir)}",
            EXIT_USAGE,
        ) from None
    try:
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    waited = True
                    note(
                        f"another kiiex command is using the embedded simulator of {state_dir}; "
                        "waiting for it to finish (Ctrl-C to stop, or use another --state-dir)"
                    )
                # Polling keeps Ctrl-C responsive (a thread blocked in flock would not be).
                await asyncio.sleep(_LOCK_POLL)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


@contextlib.asynccontextmanager
async def embedded_simulator(
    state_dir: Path, state_file: Path, note: Callable[[str], None]
) -> AsyncIterator[Simulator]:
    """The embedded simulator, loaded from and saved to ``state_file``, owned by this
    process alone for as long as it runs (another ``kiiex`` waits: two copies of one
    exchange would overwrite each other's state)."""
    async with _exclusive(state_dir, note):
        try:
            sim = Simulator(SimConfig(), state_file=state_file)
        except (ValueError, KeyError, TypeError) as exc:
            raise CliError(
                f"the embedded simulator's state file {state_file} is damaged ({exc}): move it "
                "away (or delete it) to start a fresh demo exchange",
                EXIT_USAGE,
            ) from None
        except OSError as exc:
            raise CliError(
                f"cannot read {state_file} ({exc.strerror}): {_fix_hint(state_dir)}", EXIT_USAGE
            ) from None
        async with sim:
            yield sim


def two_factor_provider(
    environ: Mapping[str, str], *, interactive: bool | None = None
) -> TwoFactorProvider:
    """Where the CLI gets a 2FA code when the exchange asks for one, in this order:
    ``KIIEX_2FA_CODE``; the first line printed by ``KIIEX_2FA_COMMAND`` (for jobs, e.g.
    ``oathtool --totp -b "$SECRET"``); a hidden prompt when stdin is a terminal.  Otherwise
    :class:`~kiiex_async.errors.ConfigurationError` says how to give one.  The code is never
    logged or echoed."""
    code = environ.get("KIIEX_2FA_CODE", "").strip()
    command = environ.get("KIIEX_2FA_COMMAND", "").strip()
    tty = sys.stdin.isatty() if interactive is None else interactive

    async def provide(kind: str) -> str:
        if code:
            return code
        if command:
            return await _run_code_command(command)
        if tty:
            answer = await asyncio.to_thread(getpass.getpass, f"KIIEX {kind} 2FA code: ")
            if answer.strip():
                return answer.strip()
        raise ConfigurationError(
            "the account asks for a 2FA code: set KIIEX_2FA_CODE, or KIIEX_2FA_COMMAND to a "
            "command that prints one, or run kiiex on a terminal to be prompted"
        )

    return provide


async def _run_code_command(command: str) -> str:
    try:
        proc = await asyncio.create_subprocess_exec(
            *shlex.split(command),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"KIIEX_2FA_COMMAND could not start: {exc}") from None
    out, _ = await proc.communicate()
    lines = out.decode("utf-8", "replace").strip().splitlines()
    # The output is the code itself: it never appears in a message.
    if proc.returncode != 0 or not lines or not lines[0].strip():
        raise ConfigurationError(
            f"KIIEX_2FA_COMMAND exited {proc.returncode} without printing a code"
        )
    return lines[0].strip()


@attrs.frozen
class Target:
    """Where commands go: the environment (which checkpoints), its URL and credentials.

    ``base_url`` ``None`` means the environment's own URL; for ``sim`` that is the
    embedded simulator, otherwise a simulator (or exchange) already running there, used
    as its demo user unless credentials are configured.
    """

    env: str
    credentials: Credentials | None
    state_dir: Path
    base_url: str | None = None
    environ: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    #: ``--store``: a shared checkpoint store (PostgreSQL DSN or SQLite path).
    store: str | None = None

    @property
    def store_path(self) -> Path:
        """Checkpoints are kept per environment so a sim swap never resumes on staging."""
        return self.state_dir / f"swaps-{self.env}.sqlite3"

    @property
    def store_name(self) -> str:
        """Where this target's swaps are, as it may be shown (no DSN password)."""
        return store_label(self.store) if self.store else str(self.store_path)

    @property
    def sim_state(self) -> Path:
        """The embedded simulator's exchange state (so a killed demo swap can resume)."""
        return self.state_dir / "sim-state.json"

    @property
    def embedded(self) -> bool:
        """True when commands run against the simulator this process starts."""
        return self.env == "sim" and self.base_url is None

    @property
    def url(self) -> str | None:
        """The API URL commands talk to (``None`` for the embedded simulator)."""
        if self.base_url is not None:
            return self.base_url
        return {"staging": STAGING_URL, "production": PRODUCTION_URL}.get(self.env)


#: The exchange swaps run with the embedded simulator are bound to (its port changes).
EMBEDDED_EXCHANGE = "kiiex-sim:embedded"


def exchange_of(target: Target) -> str | None:
    """The exchange name the target's swaps are bound to (``None``: the client's URL)."""
    return EMBEDDED_EXCHANGE if target.embedded else None


def resume_command(swap_id: str, target: Target) -> str:
    """The full ``kiiex resume`` command line that continues ``swap_id`` where it ran."""
    parts = ["kiiex", "resume", "--env", target.env]
    if target.base_url:
        parts += ["--base-url", target.base_url]
    if target.store:
        # The DSN is not repeated (it may hold a password): name the same --store.
        parts += ["--store", "<the same --store>"]
    parts += ["--state-dir", str(target.state_dir), swap_id]
    return " ".join(parts)


def _default_state_dir(environ: Mapping[str, str]) -> Path:
    return Path(environ.get("KIIEX_STATE_DIR") or platformdirs.user_data_dir("kiiex"))


def resolve_target(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Target:
    """Pick the environment: explicit ``--env``, else staging with credentials, else sim.

    ``--base-url`` replaces the environment's URL for every command (with ``sim``: a
    standalone simulator, logged in as its demo user unless credentials are configured).
    """
    env_vars = dict(os.environ if environ is None else environ)
    state_dir = Path(args.state_dir) if args.state_dir else _default_state_dir(env_vars)
    configured = Credentials.env_configured(env_vars)
    env = args.env or ("staging" if configured else "sim")
    base_url = args.base_url or None
    store = getattr(args, "store", None) or None
    if env == "sim":
        if base_url is None:
            return Target("sim", None, state_dir, environ=env_vars, store=store)
        creds = Credentials.from_env(env_vars) if configured else _demo_credentials(DemoUser())
        return Target("sim", creds, state_dir, base_url, env_vars, store)
    if not configured:
        raise CliError(
            f"--env {env} needs credentials: set KIIEX_API_KEY, KIIEX_API_SECRET and "
            "KIIEX_USER_ID (or KIIEX_USERNAME and KIIEX_PASSWORD)",
            EXIT_USAGE,
        )
    return Target(env, Credentials.from_env(env_vars), state_dir, base_url, env_vars, store)


@contextlib.asynccontextmanager
async def connect(target: Target, output: Output) -> AsyncIterator[KiiexClient]:
    """A logged-in-on-demand client for the target (starting the embedded simulator).

    The first note names the URL actually used.
    """
    if target.embedded:
        prepare_state_dir(target.state_dir, [target.sim_state])
        if _configured(target):
            output.note(f"Using the embedded KIIEX simulator (state in {target.sim_state}).")
        else:
            output.note(
                "No credentials configured: using the embedded KIIEX simulator "
                f"(state in {target.sim_state}). Set KIIEX_API_KEY/KIIEX_API_SECRET/"
                "KIIEX_USER_ID for staging."
            )
        async with embedded_simulator(target.state_dir, target.sim_state, output.note) as sim:
            creds = _demo_credentials(sim.demo)
            async with KiiexClient(sim.url, credentials=creds, rate_limit=None) as client:
                yield client
        return
    url, given = target.url, target.credentials
    assert url is not None
    assert given is not None
    creds = given
    if creds.two_factor is None:
        creds = attrs.evolve(creds, two_factor=two_factor_provider(target.environ))
    if target.base_url is None:
        output.note(f"Using KIIEX {target.env} at {url}.")
    else:
        who = "its demo user" if target.env == "sim" and not _configured(target) else "your key"
        output.note(f"Using {url} (--base-url) as {who}; checkpoints of --env {target.env}.")
    async with KiiexClient(url, credentials=creds) as client:
        yield client


def _demo_credentials(demo: DemoUser) -> Credentials:
    return Credentials(api_key=demo.api_key, api_secret=demo.api_secret, user_id=demo.user_id)


def _configured(target: Target) -> bool:
    return Credentials.env_configured(dict(target.environ))


@contextlib.asynccontextmanager
async def open_store(target: Target) -> AsyncIterator[CheckpointStore]:
    """The checkpoint store of the target's environment (created 0600 in a 0700 dir), or
    the shared one ``--store`` names."""
    if target.store:
        async with open_store_at(target.store) as shared:
            yield shared
        return
    prepare_state_dir(target.state_dir, [target.store_path])
    async with SqliteCheckpointStore(target.store_path) as store:
        yield store
