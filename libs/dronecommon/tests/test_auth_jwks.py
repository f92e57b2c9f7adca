"""Inbound bearer tokens checked against a JWKS fetched over HTTP: cached, refetched after expiry
and on an unknown key (once per interval), shared by concurrent requests, and 503 while the
issuer's keys are unreachable, slow or unusable.

The JWKS comes from a real aiohttp server on a loopback port.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from dronecommon.auth import DevIssuer, auth_dependency
from dronecommon.settings import AuthSettings
from dronetesting.clocks import FakeClock
from dronetesting.servers import free_port
from dronetesting.tokens import LocalIssuer

from .conftest import bearer, call, make_app


class JwksServer:
    """A real HTTP server (aiohttp on 127.0.0.1) serving a JWKS, counting fetches."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.fetches = 0
        self.mode = "ok"  # ok | error | slow
        self.release = asyncio.Event()
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/keys"

    async def _keys(self, request: web.Request) -> web.Response:
        self.fetches += 1
        if self.mode == "error":
            return web.Response(status=500, text="boom")
        if self.mode == "slow":
            await self.release.wait()
        return web.json_response(self.document)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/keys", self._keys)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        self.release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def jwks_server() -> AsyncIterator[JwksServer]:
    server = JwksServer()
    await server.start()
    yield server
    await server.stop()


def url_settings(issuer: LocalIssuer, server: JwksServer, **overrides: Any) -> AuthSettings:
    return issuer.settings_with(jwks_file=None, jwks_url=server.url, **overrides)


async def test_jwks_from_url_is_cached_then_refetched_after_expiry(
    dev_issuer: LocalIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.document = dev_issuer.issuer.jwks()
    clock = FakeClock()
    settings = url_settings(dev_issuer, jwks_server, jwks_cache_seconds=600)
    app = make_app(auth_dependency(settings, clock=clock))
    for _ in range(3):
        assert (await call(app, dev_issuer.headers())).status_code == 200
    assert jwks_server.fetches == 1
    clock.advance(601)
    assert (await call(app, dev_issuer.headers())).status_code == 200
    assert jwks_server.fetches == 2


async def test_concurrent_requests_share_one_jwks_fetch(
    dev_issuer: LocalIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.document = dev_issuer.issuer.jwks()
    app = make_app(auth_dependency(url_settings(dev_issuer, jwks_server)))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        responses = await asyncio.gather(
            *(client.get("/whoami", headers=dev_issuer.headers()) for _ in range(10))
        )
    assert [response.status_code for response in responses] == [200] * 10
    assert jwks_server.fetches == 1


async def test_key_rotation_refetches_once_per_interval(
    dev_issuer: LocalIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.document = dev_issuer.issuer.jwks()
    clock = FakeClock()
    dependency = auth_dependency(
        url_settings(dev_issuer, jwks_server), refetch_interval=30, clock=clock
    )
    app = make_app(dependency)
    assert (await call(app, dev_issuer.headers())).status_code == 200

    dev_issuer.issuer.rotate(keep_previous=False)
    jwks_server.document = dev_issuer.issuer.jwks()
    clock.advance(31)
    assert (await call(app, dev_issuer.headers())).status_code == 200  # unknown kid: refetched
    assert jwks_server.fetches == 2

    # Forged kids cannot make the service hammer the issuer: one refetch per interval.
    stranger = DevIssuer.generate(dev_issuer.issuer.issuer)
    for _ in range(3):
        response = await call(app, bearer(stranger.mint(audience=dev_issuer.audience)))
        assert response.status_code == 401
    assert jwks_server.fetches == 2


async def test_jwks_endpoint_down_is_503_then_recovers(dev_issuer: LocalIssuer) -> None:
    server = JwksServer()  # not started yet: connection refused
    server.document = dev_issuer.issuer.jwks()
    app = make_app(auth_dependency(url_settings(dev_issuer, server), refetch_interval=0))
    try:
        response = await call(app, dev_issuer.headers())
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        assert "signing keys are unavailable" in response.json()["detail"]
        await server.start()
        assert (await call(app, dev_issuer.headers())).status_code == 200
    finally:
        await server.stop()


async def test_jwks_endpoint_errors_are_503(
    dev_issuer: LocalIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.mode = "error"
    app = make_app(auth_dependency(url_settings(dev_issuer, jwks_server)))
    assert (await call(app, dev_issuer.headers())).status_code == 503
    # A failure moments ago is not retried on every request.
    assert (await call(app, dev_issuer.headers())).status_code == 503
    assert jwks_server.fetches == 1


async def test_jwks_fetch_is_bounded_by_its_timeout(
    dev_issuer: LocalIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.mode = "slow"
    app = make_app(auth_dependency(url_settings(dev_issuer, jwks_server), jwks_timeout=0.3))
    started = time.monotonic()
    response = await call(app, dev_issuer.headers())
    assert response.status_code == 503
    assert "timed out" in response.json()["detail"]
    assert time.monotonic() - started < 2


async def test_cached_keys_outlive_a_failed_refresh(
    dev_issuer: LocalIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.document = dev_issuer.issuer.jwks()
    clock = FakeClock()
    settings = url_settings(dev_issuer, jwks_server, jwks_cache_seconds=60)
    app = make_app(auth_dependency(settings, clock=clock))
    assert (await call(app, dev_issuer.headers())).status_code == 200
    jwks_server.mode = "error"
    clock.advance(61)
    assert (await call(app, dev_issuer.headers())).status_code == 200
    assert jwks_server.fetches == 2


async def test_invalid_jwks_documents_are_503(
    dev_issuer: LocalIssuer, jwks_server: JwksServer
) -> None:
    jwks_server.document = {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "x"}]}
    app = make_app(auth_dependency(url_settings(dev_issuer, jwks_server)))
    response = await call(app, dev_issuer.headers())
    assert response.status_code == 503
    assert "no RS256/ES256 signature keys" in response.json()["detail"]
