"""``client.stream()`` logging in a 2FA user: completed with the code source, or refused."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import AsyncIterator
from decimal import Decimal as D

import pytest
from stream_support import QUIET_STREAM, TWOFA, TWOFA_CODE, until

from kiiex_async import (
    AuthenticationError,
    Credentials,
    KiiexClient,
    TwoFactorRequiredError,
)
from kiiex_async.auth import TwoFactorProvider
from kiiex_async.models import Position
from kiiex_async.sim import DemoUser, SimConfig, Simulator

CONFIG = SimConfig(seed=2, time_speed=0.0, drift_bps=D(0), users=(DemoUser(), TWOFA))
CODE, FAST = TWOFA_CODE, QUIET_STREAM


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """A simulator whose user ``twofa`` must give a 2FA code to log in."""
    async with Simulator(CONFIG) as simulator:
        yield simulator


def client_of(sim: Simulator, two_factor: TwoFactorProvider | None) -> KiiexClient:
    """A client of the 2FA user (username and password) with ``two_factor``."""
    credentials = Credentials(username="twofa", password=TWOFA.password, two_factor=two_factor)
    return KiiexClient(sim.url, credentials=credentials, rate_limit=None)


def codes(answer: str, asked: list[str]) -> TwoFactorProvider:
    """A code source answering ``answer`` and noting the 2FA types it is asked for."""

    async def provider(kind: str) -> str:
        asked.append(kind)
        return answer

    return provider


async def test_a_2fa_login_is_completed_with_the_code_source(sim: Simulator) -> None:
    """The socket asks the code source once, then private calls and account events work
    as the 2FA user (account 70)."""
    asked: list[str] = []
    async with client_of(sim, codes(CODE, asked)) as client, client.stream(**FAST) as stream:
        assert asked == ["Google"]
        positions = await stream.call("GetAccountPositions", {"OMSId": 1, "AccountId": 70})
        assert positions and all(isinstance(p, Position) for p in positions)
        assert {p.account_id for p in positions} == {70}
        await stream.account_events()
        assert sim.gateway.subscribers("account") == 1


async def test_a_2fa_login_without_a_code_source_fails_the_entry(sim: Simulator) -> None:
    """No credentials.two_factor: entering the stream raises TwoFactorRequiredError (as
    the HTTP login does) and leaves no socket open."""
    async with client_of(sim, None) as client:
        with pytest.raises(TwoFactorRequiredError) as info:
            async with client.stream(**FAST):
                pytest.fail("the stream claimed a login the exchange did not grant")
        assert info.value.method == "AuthenticateUser"
    await until(lambda: sim.gateway.connections == 0)


async def test_a_refused_2fa_code_fails_the_entry_without_showing_the_code(
    sim: Simulator,
) -> None:
    """A wrong code: AuthenticationError (not the missing-source error), no code in it."""
    async with client_of(sim, codes("000000", [])) as client:
        with pytest.raises(AuthenticationError) as info:
            async with client.stream(**FAST):
                pytest.fail("the stream claimed a login the exchange refused")
    assert not isinstance(info.value, TwoFactorRequiredError)
    assert info.value.method == "Authenticate2FA"
    assert "000000" not in str(info.value) and "000000" not in repr(info.value)


async def test_a_failing_code_source_fails_the_entry_instead_of_hanging(
    sim: Simulator,
) -> None:
    """A code source that raises: its error comes out of the entry, which does not wait."""

    async def broken(kind: str) -> str:
        raise RuntimeError("no phone at hand")

    async with client_of(sim, broken) as client:
        async with asyncio.timeout(10):
            with pytest.raises(RuntimeError, match="no phone"):
                async with client.stream(**FAST):
                    pytest.fail("the stream claimed a login without a code")


async def test_a_reconnect_asks_for_a_new_code_and_stays_private(sim: Simulator) -> None:
    """After the socket drops, the new socket's login asks the code source again and its
    private calls run as the 2FA user."""
    asked: list[str] = []
    async with client_of(sim, codes(CODE, asked)) as client, client.stream(**FAST) as stream:
        await sim.gateway.drop_all()
        await until(lambda: stream.reconnects == 1 and stream.connected)
        assert asked == ["Google", "Google"]
        accounts = await stream.call("GetUserAccounts", {"OMSId": 1})
        assert accounts == [70]


async def test_a_refused_entry_has_closed_its_socket_when_it_fails(sim: Simulator) -> None:
    """The entry fails only after the socket it logged in on is closed: nothing is left for
    the garbage collector to find open (an unclosed aiohttp connection)."""
    async with client_of(sim, codes("000000", [])) as client:
        for _ in range(5):
            with pytest.raises(AuthenticationError):
                async with client.stream(**FAST):
                    pytest.fail("the stream claimed a login the exchange refused")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                gc.collect()
            assert [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)] == []
