"""Fetching a JWKS over HTTP (:class:`HttpJwks`) from a real aiohttp server on 127.0.0.1:
redirects followed, error statuses and oversized documents refused, the total timeout kept."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from dronecommon.auth.errors import SigningKeysUnavailableError
from dronecommon.auth.jwks import MAX_JWKS_BYTES, HttpJwks

DOCUMENT = {"keys": [{"kty": "oct", "use": "enc", "k": "c2VjcmV0"}]}


async def keys(request: web.Request) -> web.Response:
    return web.json_response(DOCUMENT)


async def moved(request: web.Request) -> web.Response:
    raise web.HTTPFound("/keys")


async def huge(request: web.Request) -> web.Response:
    padding = "x" * MAX_JWKS_BYTES
    return web.json_response({"keys": [], "padding": padding})


async def missing(request: web.Request) -> web.Response:
    return web.Response(status=404, text="no keys here")


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(5)
    return web.json_response(DOCUMENT)


@pytest.fixture
async def issuer() -> AsyncIterator[str]:
    app = web.Application()
    for path, handler in (
        ("/keys", keys),
        ("/moved", moved),
        ("/huge", huge),
        ("/missing", missing),
        ("/slow", slow),
    ):
        app.router.add_get(path, handler)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


async def test_the_document_is_fetched_and_redirects_followed(issuer: str) -> None:
    assert await HttpJwks(f"{issuer}/keys").fetch() == DOCUMENT
    assert await HttpJwks(f"{issuer}/moved").fetch() == DOCUMENT


@pytest.mark.parametrize(
    ("path", "why"),
    [("/missing", "ClientResponseError: 404"), ("/huge", "JWKS larger than")],
)
async def test_error_statuses_and_oversized_documents_are_refused(
    issuer: str, path: str, why: str
) -> None:
    with pytest.raises(SigningKeysUnavailableError, match=why):
        await HttpJwks(f"{issuer}{path}").fetch()


async def test_a_slow_issuer_fails_within_the_timeout(issuer: str) -> None:
    started = asyncio.get_running_loop().time()
    with pytest.raises(SigningKeysUnavailableError, match=r"timed out after 0\.3s"):
        await HttpJwks(f"{issuer}/slow", timeout=0.3).fetch()
    assert asyncio.get_running_loop().time() - started < 2
