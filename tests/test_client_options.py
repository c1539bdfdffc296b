"""KiiexClient's options: typed keywords, the transport knobs, logging and the version."""

from __future__ import annotations

import inspect
import logging
import ssl
from importlib import metadata
from typing import Any

import aiohttp
import pytest

import kiiex_async
from kiiex_async import (
    AiohttpTransport,
    AsyncTransport,
    ClientOptions,
    KiiexClient,
    errors,
)
from kiiex_async.testing import MockTransport, Request, Response

BASE = "http://127.0.0.1:1/ap"


def _pong(_request: Request) -> Response:
    return Response(200, json={"msg": "PONG"})


def test_staging_and_production_refuse_a_misspelt_keyword() -> None:
    """A typo in staging()/production() options is a TypeError, not silently ignored."""
    with pytest.raises(TypeError, match="timout"):
        KiiexClient.staging(timout=3.0)  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="rate_limt"):
        KiiexClient.production(rate_limt=None)  # type: ignore[call-arg]


def test_client_options_name_every_keyword_of_the_client() -> None:
    """ClientOptions (what staging/production take) lists exactly KiiexClient's keywords."""
    keywords = {
        name
        for name, parameter in inspect.signature(KiiexClient.__init__).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert set(ClientOptions.__annotations__) == keywords


async def test_staging_passes_its_options_through() -> None:
    """staging(...) builds a client of the staging URL with the options given."""
    transport = MockTransport(_pong)
    async with KiiexClient.staging(transport=transport, rate_limit=None) as client:
        assert client.base_url == kiiex_async.STAGING_URL
        await client.ping()
    assert [r.url for r in transport.requests] == [f"{kiiex_async.STAGING_URL}/Ping"]


@pytest.mark.parametrize(
    "options",
    [
        {"transport": MockTransport(_pong), "session": "set"},
        {"transport": MockTransport(_pong), "pool_size": 3},
        {"transport": MockTransport(_pong), "trust_env": True},
        {"transport": MockTransport(_pong), "connect_timeout": 1.0},
        {"transport": object()},
        {"ssl": False},
        {"ssl": "yes"},
        {"session": "not a session"},
        {"max_body_size": 0},
        {"max_history_body_size": True},
    ],
    ids=[
        "transport+session",
        "transport+pool_size",
        "transport+trust_env",
        "transport+connect_timeout",
        "not-a-transport",
        "ssl-off",
        "ssl-junk",
        "session-junk",
        "body-size-0",
        "history-size-bool",
    ],
)
async def test_inconsistent_transport_options_are_configuration_errors(
    options: dict[str, Any],
) -> None:
    """Options that cannot be honoured fail at construction with ConfigurationError."""
    if options.get("session") == "set":
        async with aiohttp.ClientSession() as session:
            with pytest.raises(errors.ConfigurationError):
                KiiexClient(BASE, **{**options, "session": session})
        return
    with pytest.raises(errors.ConfigurationError):
        KiiexClient(BASE, **options)


async def test_a_borrowed_session_cannot_be_combined_with_session_options() -> None:
    """session= plus pool_size/ssl/trust_env/trace_configs is refused (configure your session)."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=7)) as session:
        for extra in ({"pool_size": 3}, {"ssl": ssl.create_default_context()}):
            with pytest.raises(errors.ConfigurationError, match="session"):
                KiiexClient(BASE, session=session, **extra)
        client = KiiexClient(BASE, session=session)
        assert client.pool_size == 7  # read from the session's own connector
        await client.aclose()
        assert not session.closed


async def test_an_ssl_context_and_trust_env_reach_the_session() -> None:
    """ssl= and trust_env= configure the session the client opens."""
    context = ssl.create_default_context()
    transport = AiohttpTransport(ssl=context, trust_env=True, pool_size=5)
    async with transport:
        session = transport.session
        assert session is not None and session.trust_env is True
        connector = session.connector
        assert isinstance(connector, aiohttp.TCPConnector) and connector.limit == 5
        assert connector._ssl is context  # aiohttp keeps no public accessor for it
    assert session.closed


def test_mock_transport_is_an_async_transport() -> None:
    """MockTransport and AiohttpTransport satisfy the public AsyncTransport protocol."""
    assert isinstance(MockTransport(_pong), AsyncTransport)
    assert isinstance(AiohttpTransport(), AsyncTransport)


async def test_mock_transport_handler_must_return_a_response() -> None:
    """A handler returning something else is a clear TypeError, not a confusing failure."""
    transport = MockTransport(lambda _request: {"msg": "PONG"})  # type: ignore[arg-type,return-value]
    async with KiiexClient(BASE, transport=transport, rate_limit=None) as client:
        with pytest.raises(TypeError, match="Response"):
            await client.ping()


def test_request_and_response_reprs_hide_headers_and_bodies() -> None:
    """Request/Response reprs name the call, never the aptoken or the body."""
    request = Request(
        "POST", f"{BASE}/AuthenticateUser", headers={"aptoken": "T0K"}, content=b'{"Password":"pw"}'
    )
    assert "T0K" not in repr(request) and "pw" not in repr(request)
    assert repr(Response(200, json={"a": 1})) == "<Response 200 (7 bytes)>"
    with pytest.raises(errors.ConfigurationError):
        Response(99)


def test_the_package_logger_has_a_null_handler() -> None:
    """Library logs go to kiiex_async.* with a NullHandler: nothing printed unless configured."""
    package = logging.getLogger("kiiex_async")
    assert any(isinstance(h, logging.NullHandler) for h in package.handlers)
    assert logging.getLogger("kiiex_async.transport").parent is package


def test_version_comes_from_the_package_metadata() -> None:
    """__version__ is the installed distribution's version, not a second copy."""
    assert kiiex_async.__version__ == metadata.version("kiiex_async")
