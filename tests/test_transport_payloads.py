"""The default transport's request bodies: one aiohttp payload per distinct body, never a
secret one kept, and what reaches the server unchanged (a server on 127.0.0.1 echoes it).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from loopback import serve_app

from kiiex_async import Credentials, KiiexClient
from kiiex_async._pipeline import Pipeline
from kiiex_async._transport import _PAYLOADS_KEPT, AiohttpTransport

PASSWORD = "correct horse battery staple"


async def _echo(request: web.Request) -> web.Response:
    """What the server received: the content type, the aptoken header and the body."""
    return web.json_response(
        {
            "ContentType": request.headers.get("Content-Type"),
            "Token": request.headers.get("aptoken"),
            "Body": (await request.read()).decode(),
        }
    )


async def _login(request: web.Request) -> web.Response:
    return web.json_response({"Authenticated": True, "SessionToken": "t0k3n", "UserId": 5})


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/ap/Echo", _echo)
    app.router.add_post("/ap/AuthenticateUser", _login)
    async with serve_app(app) as base:
        yield f"{base}/ap"


def kept(pipeline: Pipeline) -> dict[bytes, object]:
    """The payloads the pipeline's aiohttp transport keeps, by body."""
    assert isinstance(pipeline.transport, AiohttpTransport)
    return dict(pipeline.transport._payloads)


async def test_identical_bodies_share_one_payload_and_arrive_intact(server: str) -> None:
    """Concurrent calls with one body share one payload; each server sees it whole, with
    the JSON content type, and a different body gets a payload of its own."""
    async with Pipeline(server, AiohttpTransport(), rate_limit=None) as pipeline:
        answers = await asyncio.gather(
            *(pipeline.call("Echo", {"OMSId": 1, "InstrumentId": 7}) for _ in range(20))
        )
        assert {(a["ContentType"], a["Body"], a["Token"]) for a in answers} == {
            ("application/json", '{"OMSId":1,"InstrumentId":7}', None)
        }
        assert list(kept(pipeline)) == [b'{"OMSId":1,"InstrumentId":7}']
        pipeline.set_session_token("s3ss10n")
        other = await pipeline.call("Echo", {"OMSId": 1, "InstrumentId": 8})
        assert (other["ContentType"], other["Body"], other["Token"]) == (
            "application/json",
            '{"OMSId":1,"InstrumentId":8}',
            "s3ss10n",
        )
        assert len(kept(pipeline)) == 2


@pytest.mark.parametrize(
    ("credentials", "secret"),
    [
        (Credentials(username="u", password=PASSWORD), PASSWORD),
        (Credentials(api_key="k3y", api_secret=PASSWORD, user_id="5"), "Signature"),
    ],
    ids=["password", "api-key"],
)
async def test_a_login_body_is_never_kept(
    server: str, credentials: Credentials, secret: str
) -> None:
    """The client's login (a password, or a signature and nonce) is sent, not kept."""
    async with KiiexClient(
        server, credentials=credentials, account_id=9, rate_limit=None
    ) as client:
        await client.authenticate()
        assert client.is_authenticated
        echoed = await client._transport.call("Echo", {"OMSId": 1})
        assert echoed["Token"] == "t0k3n"
        assert list(kept(client._transport)) == [b'{"OMSId":1}']
        assert not any(secret.encode() in body for body in kept(client._transport))


async def test_the_kept_payloads_are_bounded(server: str) -> None:
    """A client sending ever new bodies keeps at most a fixed number of payloads."""
    async with Pipeline(server, AiohttpTransport(), rate_limit=None) as pipeline:
        for index in range(_PAYLOADS_KEPT + 10):
            await pipeline.call("Echo", {"OMSId": 1, "InstrumentId": index})
            assert len(kept(pipeline)) <= _PAYLOADS_KEPT
        assert kept(pipeline)
