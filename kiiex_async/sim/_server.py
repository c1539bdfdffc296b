"""Running the simulator: in-process (:class:`Simulator`) or standalone (:func:`serve`)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from aiohttp import web

from ._app import SimApp
from ._clock import SimClock
from ._config import CredentialsKwargs, DemoUser, SimConfig
from ._exchange import Exchange
from ._faults import Fault, FaultInjector
from ._gateway import Gateway
from ._sessions import SessionStore

__all__ = ["Simulator", "serve", "serve_async"]

_STATE_FORMAT = "kiiex-sim-state"


def _load_state(path: Path) -> dict[str, Any] | None:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    data = json.loads(text)
    if not isinstance(data, dict) or data.get("format") != _STATE_FORMAT:
        raise ValueError(f"{path} is not a kiiex simulator state file")
    exchange = data.get("exchange")
    if not isinstance(exchange, dict):
        raise ValueError(f"{path}: no exchange state")
    return exchange


def _write_state(path: Path, exchange: dict[str, Any]) -> None:
    """Write atomically: a temporary file in the same directory, fsync, ``os.replace``."""
    payload = json.dumps({"format": _STATE_FORMAT, "exchange": exchange}, separators=(",", ":"))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class Simulator:
    """An AlphaPoint-compatible exchange on ``127.0.0.1``, as an async context manager.

    ::

        async with Simulator(SimConfig(seed=1)) as sim:
            sim.url              # "http://127.0.0.1:<port>/ap"
            sim.demo             # the demo DemoUser (credentials, ids)
            sim.exchange         # orders, trades, tickets, balance(account, symbol)
            sim.faults.inject(Fault("SendOrder", "drop_after", times=1))
            sim.advance(5)       # move simulated time (ticket schedules, drift, expiry)

    With ``state_file`` the exchange is loaded from that JSON file if it exists and saved
    to it atomically after every change, so a restarted simulator continues where the
    previous one stopped (sessions excepted: clients log in again).
    """

    def __init__(
        self,
        config: SimConfig | None = None,
        *,
        state_file: str | os.PathLike[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        faults: Iterable[Fault | str] = (),
    ) -> None:
        self.config = config if config is not None else SimConfig()
        self.host = host
        self._requested_port = port
        self.state_file = Path(state_file) if state_file is not None else None
        self.clock = SimClock(self.config.start_time, self.config.time_speed)
        self.faults = FaultInjector(self.config.seed)
        self.faults.extend(faults)
        now = self.clock.now()
        saved = _load_state(self.state_file) if self.state_file is not None else None
        if saved is None:
            self.exchange = Exchange(self.config, now=now)
        else:
            self.exchange = Exchange.from_state(self.config, saved, now=now)
            if self.exchange.last_now > now:
                self.clock.advance(self.exchange.last_now - now)
        self._app = SimApp(self.config, self.exchange, self.clock, self.faults, on_change=self.save)
        #: The ``/WSGateway`` WebSocket face (``gateway.connections``, ``drop_all()``).
        self.gateway = Gateway(self._app)
        self._runner: web.AppRunner | None = None
        self._port: int | None = None

    # ------------------------------------------------------------------ lifetime

    async def start(self) -> None:
        """Bind and start serving (use ``async with`` instead where possible)."""
        if self._runner is not None:
            raise RuntimeError("simulator already started")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if os.name != "nt":
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
            app = self._app.make_app()
            self.gateway.mount(app)
            runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2.0)
            await runner.setup()
            site = web.SockSite(runner, sock)
            await site.start()
        except BaseException:
            sock.close()
            raise
        self._runner = runner
        self._port = sock.getsockname()[1]
        if self.state_file is not None:
            self.save()

    async def aclose(self) -> None:
        """Stop serving, close every connection and save the state (idempotent)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            if self.state_file is not None:
                self.save()

    async def __aenter__(self) -> Simulator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ addresses

    @property
    def port(self) -> int:
        """The bound TCP port."""
        if self._port is None:
            raise RuntimeError("simulator not started")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://<host>:<port>`` (admin routes live under ``/_sim/``)."""
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The API base URL, ``http://127.0.0.1:<port>/ap`` (calls go to ``url/<Method>``)."""
        return self.base_url + "/ap"

    @property
    def ws_url(self) -> str:
        """The WebSocket gateway, ``ws://127.0.0.1:<port>/WSGateway``."""
        return "ws" + self.base_url.removeprefix("http") + "/WSGateway"

    @property
    def demo(self) -> DemoUser:
        """The demo user (id 1, account 1, ``demo``) with its API key and password."""
        return self.config.demo

    @property
    def credentials_kwargs(self) -> CredentialsKwargs:
        """``Credentials(**sim.credentials_kwargs)`` logs in as the demo user."""
        return self.config.demo.credentials_kwargs

    # ------------------------------------------------------------------ control

    def now(self) -> float:
        """Simulated time (epoch seconds)."""
        return self.clock.now()

    def advance(self, seconds: float) -> float:
        """Move simulated time forward (tickets advance, mids drift, sessions age)."""
        return self._app.advance(seconds)

    def set_time_speed(self, speed: float) -> None:
        """Simulated seconds per real second from now on (0 freezes the clock)."""
        self.clock.set_speed(speed)

    @property
    def sessions(self) -> SessionStore:
        """The live session tokens (e.g. ``len(sim.sessions)`` counts logins)."""
        return self._app.sessions

    def expire_sessions(self) -> int:
        """Expire every session now; returns how many there were."""
        return self._app.sessions.expire_all()

    def ledger(self) -> dict[str, Any]:
        """What ``GET /_sim/ledger`` returns, as Python values (Decimals)."""
        return self._app.ledger()

    def save(self) -> None:
        """Write the state file now (a no-op without ``state_file``)."""
        if self.state_file is not None:
            _write_state(self.state_file, self.exchange.to_state())

    def banner(self) -> str:
        """The text ``serve`` prints: URL, demo credentials, admin routes."""
        demo = self.demo
        state = str(self.state_file) if self.state_file is not None else "in memory"
        return "\n".join(
            [
                f"KIIEX simulator (AlphaPoint APEX API, {self.config.dialect} dialect) "
                f"listening on {self.url}",
                f"  demo user:   username={demo.username} password={demo.password} "
                f"user_id={demo.user_id} account_id={demo.account_id}",
                f"  API key:     {demo.api_key}",
                f"  API secret:  {demo.api_secret}",
                f"  websocket:   {self.ws_url}",
                f"  ledger:      {self.base_url}/_sim/ledger",
                f"  state:       {state}",
                "Press Ctrl-C to stop.",
            ]
        )


async def serve_async(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    config: SimConfig | None = None,
    state_file: str | os.PathLike[str] | None = None,
    faults: Iterable[Fault | str] = (),
    out: TextIO | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve until SIGINT/SIGTERM (or ``stop`` is set), printing the banner to ``out``."""
    out = out if out is not None else sys.stdout
    stop = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    async with Simulator(config, state_file=state_file, host=host, port=port, faults=faults) as sim:
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, stop.set)
                installed.append(sig)
            except (NotImplementedError, RuntimeError, ValueError):
                pass
        print(sim.banner(), file=out, flush=True)
        try:
            await stop.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)
    print("KIIEX simulator stopped.", file=out, flush=True)


def serve(
    host: str = "127.0.0.1",
    port: int = 8080,
    *,
    config: SimConfig | None = None,
    state_file: str | os.PathLike[str] | None = None,
    faults: Iterable[Fault | str] = (),
    out: TextIO | None = None,
) -> None:
    """Run a standalone simulator until Ctrl-C or SIGTERM (blocking; for ``kiiex sim``).

    Prints its URL and the demo credentials first, saves ``state_file`` on the way out.
    """
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve_async(host, port, config=config, state_file=state_file, faults=faults, out=out)
        )
