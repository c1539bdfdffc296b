"""A swap is bound to its exchange, account and user: resuming it elsewhere is refused
before anything is sent, and the CLI resumes it where it ran."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
from workflow_support import assert_ledger, balances, full_request, make_client, sim_config

from kiiex_async import Credentials, KiiexClient, cli
from kiiex_async.cli._env import EMBEDDED_EXCHANGE, Target, resume_command
from kiiex_async.sim import DemoUser, Simulator
from kiiex_async.workflow import (
    CheckpointHook,
    CheckpointStore,
    ExchangeBinding,
    ExchangeMismatchError,
    LeaseOwner,
    MemoryCheckpointStore,
    SqliteCheckpointStore,
    SwapRecord,
    SwapResult,
    SwapState,
    SwapWorkflow,
)
from kiiex_async.workflow._record import exchange_key


class Crash(BaseException):
    """Stands for the process dying."""


def crash_at(label: str) -> CheckpointHook:
    def hook(seen: str, _record: SwapRecord) -> None:
        if seen == label:
            raise Crash(label)

    return hook


@pytest.fixture
async def sims() -> AsyncIterator[tuple[Simulator, Simulator]]:
    async with Simulator(sim_config()) as first, Simulator(sim_config()) as second:
        yield first, second


async def crashed_swap(sim: Simulator, store: CheckpointStore, swap_id: str) -> None:
    """Run a swap on ``sim`` until its order intent is committed, then 'die'."""
    async with make_client(sim) as client:
        workflow = SwapWorkflow(client, store, on_checkpoint=crash_at("send:SendOrder"))
        with pytest.raises(Crash):
            await workflow.run(full_request(), swap_id=swap_id)


def test_exchange_key_normalises_case_and_trailing_slash() -> None:
    """Two spellings of one URL name one exchange; another path is another exchange."""
    assert exchange_key("HTTPS://Host.Example/ap/") == "https://host.example/ap"
    assert exchange_key(" http://127.0.0.1:8080/ap") == "http://127.0.0.1:8080/ap"
    assert exchange_key("https://host/ap") != exchange_key("https://host/other")


async def test_resume_on_another_exchange_is_refused_before_anything_is_sent(
    sims: tuple[Simulator, Simulator],
) -> None:
    """A swap begun on one exchange and resumed with a client of another raises
    ExchangeMismatchError; the other exchange never sees a request of it; the right one
    completes it with exactly one order."""
    first, second = sims
    initial = balances(first)
    store = MemoryCheckpointStore()
    await crashed_swap(first, store, "bound")
    record = await store.get("bound")
    assert record is not None and record.exchange is not None
    assert record.exchange.exchange == exchange_key(first.url)
    second_before = balances(second)
    async with make_client(second) as other:
        with pytest.raises(ExchangeMismatchError, match="resume it against") as info:
            await SwapWorkflow(other, store).resume("bound")
        assert not other.is_authenticated
    assert info.value.recorded == exchange_key(first.url)
    assert info.value.given == exchange_key(second.url)
    assert second.exchange.orders == {}
    assert balances(second) == second_before
    async with make_client(first) as client:
        result = await SwapWorkflow(client, store).resume("bound")
    assert result.state is SwapState.COMPLETED, result.reason
    assert_ledger(first, initial, [result])


async def test_resume_as_another_user_is_refused_after_login_only() -> None:
    """A swap whose first run logged in as one user refuses a run logged in as another
    user (another account) before any call but the login."""
    other_user = DemoUser(user_id=2, account_id=2, username="other", api_key="other-key")
    async with Simulator(sim_config(users=(DemoUser(), other_user))) as sim:
        store = MemoryCheckpointStore()
        await crashed_swap(sim, store, "mine")
        record = await store.get("mine")
        assert record is not None and record.exchange is not None
        assert (record.exchange.account_id, record.exchange.user_id) == (1, 1)
        creds = Credentials(**other_user.credentials_kwargs)
        async with KiiexClient(sim.url, credentials=creds, rate_limit=None) as client:
            with pytest.raises(ExchangeMismatchError, match="account 1") as info:
                await SwapWorkflow(client, store).resume("mine")
        assert info.value.given == "account 2"
        assert [o.account_id for o in sim.exchange.orders.values()] == []


async def test_a_record_without_an_exchange_is_bound_by_its_next_run(sim_store: Path) -> None:
    """A record written before swaps recorded their exchange resumes (with a warning) and
    is bound to the exchange, account and user of that run."""
    async with Simulator(sim_config()) as sim:
        initial = balances(sim)
        async with SqliteCheckpointStore(sim_store) as store, make_client(sim) as client:
            workflow = SwapWorkflow(client, store)
            swap_id = await workflow.create(full_request())
            owner = LeaseOwner.current()
            lease = await store.acquire(swap_id, owner, ttl=30)
            old = await store.get(swap_id)
            assert old is not None
            await store.save(attrs.evolve(old, exchange=None, revision=1), lease, ttl=30)
            await store.release(lease)
            result = await workflow.resume(swap_id)
            bound = await store.get(swap_id)
        assert result.state is SwapState.COMPLETED, result.reason
        assert bound is not None
        assert bound.exchange == ExchangeBinding(exchange_key(sim.url), 1, 1)
        assert_ledger(sim, initial, [result])


@pytest.fixture
def sim_store(tmp_path: Path) -> Path:
    return tmp_path / "swaps.sqlite3"


@pytest.fixture
def staging_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI on 'staging' with the simulators' demo credentials and a private state dir."""
    demo = DemoUser()
    monkeypatch.setenv("KIIEX_API_KEY", demo.api_key)
    monkeypatch.setenv("KIIEX_API_SECRET", demo.api_secret)
    monkeypatch.setenv("KIIEX_USER_ID", str(demo.user_id))
    for name in ("KIIEX_USERNAME", "KIIEX_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KIIEX_STATE_DIR", str(tmp_path))
    return tmp_path


async def test_cli_resume_goes_to_the_recorded_exchange_and_refuses_another(
    sims: tuple[Simulator, Simulator],
    staging_env: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`kiiex resume ID --base-url OTHER` exits non-zero with one line and sends nothing
    to OTHER; `kiiex resume ID` without --base-url completes it on the exchange it began on."""
    first, second = sims
    initial = balances(first)
    async with SqliteCheckpointStore(staging_env / "swaps-staging.sqlite3") as store:
        await crashed_swap(first, store, "cli-bound")
    capsys.readouterr()
    argv = ["resume", "cli-bound", "--env", "staging", "-q"]
    code = await asyncio.to_thread(cli.run, [*argv, "--base-url", second.url])
    err = capsys.readouterr().err
    assert code == cli.EXIT_ERROR
    assert err.count("\n") == 1 and err.startswith("kiiex: error: swap cli-bound runs on")
    assert exchange_key(first.url) in err
    assert second.exchange.orders == {}
    code = await asyncio.to_thread(cli.run, [*argv, "--json"])
    assert code == cli.EXIT_OK, capsys.readouterr().err
    async with SqliteCheckpointStore(staging_env / "swaps-staging.sqlite3") as store:
        record = await store.get("cli-bound")
    assert record is not None and record.state is SwapState.COMPLETED
    assert second.exchange.orders == {}
    assert_ledger(first, initial, [SwapResult.from_record(record)])


def test_resume_hint_names_every_option(tmp_path: Path) -> None:
    """The resume hint carries the environment, the base URL and the state directory."""
    target = Target("staging", None, tmp_path, "http://127.0.0.1:1/ap")
    assert resume_command("abc", target) == (
        f"kiiex resume --env staging --base-url http://127.0.0.1:1/ap --state-dir {tmp_path} abc"
    )


def test_cli_resumes_a_record_without_an_exchange_with_a_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`kiiex resume` of a swap saved before swaps recorded their exchange says so in one
    line, resumes it on the exchange given (here the embedded simulator) and binds it."""
    for name in ("KIIEX_API_KEY", "KIIEX_API_SECRET", "KIIEX_USER_ID", "KIIEX_USERNAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KIIEX_STATE_DIR", str(tmp_path))

    async def register() -> None:
        async with (
            KiiexClient("http://127.0.0.1:9/ap") as client,
            SqliteCheckpointStore(tmp_path / "swaps-sim.sqlite3") as store,
        ):
            workflow = SwapWorkflow(client, MemoryCheckpointStore())
            swap_id = await workflow.create(full_request(withdrawal=None, deposit=None))
            record = await workflow.store.get(swap_id)
            assert record is not None
            await store.create(attrs.evolve(record, swap_id="old", exchange=None))

    asyncio.run(register())
    assert cli.run(["resume", "old"]) == cli.EXIT_OK
    assert "saved without its exchange" in capsys.readouterr().err

    async def read() -> SwapRecord | None:
        async with SqliteCheckpointStore(tmp_path / "swaps-sim.sqlite3") as store:
            return await store.get("old")

    record = asyncio.run(read())
    assert record is not None and record.state is SwapState.COMPLETED
    assert record.exchange is not None and record.exchange.exchange == EMBEDDED_EXCHANGE
