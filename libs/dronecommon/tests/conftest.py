"""Helpers the dronecommon tests share (imported: ``from .conftest import ...``): the smallest app
behind the auth dependency and how to call it, a fake Azure credential (Microsoft Entra cannot run
here: the fake stands at the SDK boundary), and the fixtures ``redis`` (a client of the test's
Redis) and ``sender`` (a sender to the Redis Streams queue of ``redis_queue.py``)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import jwt
import pytest
from azure.core.credentials import AccessToken
from fastapi import Depends, FastAPI
from redis.asyncio import Redis

from dronecommon.auth import CurrentCaller
from dronecommon.messaging.redis_streams import RedisStreamSender

from .redis_queue import QUEUE


def make_app(dependency: Callable[..., Any]) -> FastAPI:
    """The smallest app with the auth dependency on every route, echoing the caller."""
    app = FastAPI(dependencies=[Depends(dependency)])

    @app.get("/whoami")
    async def whoami(caller: CurrentCaller) -> dict[str, Any]:
        return {
            "subject": caller.subject,
            "appId": caller.app_id,
            "objectId": caller.object_id,
            "roles": list(caller.roles),
            "authenticated": caller.authenticated,
        }

    return app


async def call(
    app: FastAPI, headers: dict[str, str] | None = None, path: str = "/whoami"
) -> httpx.Response:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get(path, headers=headers or {})


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def challenge(response: httpx.Response) -> str:
    return str(response.headers.get("www-authenticate", ""))


class FakeAsyncCredential:
    """Fake of an async Azure credential (Entra cannot run here): JWTs carrying ``oid``."""

    def __init__(
        self, *, lifetime: float = 3600.0, oid: str = "object-id-1", fail: bool = False
    ) -> None:
        self.lifetime = lifetime
        self.oid = oid
        self.fail = fail
        self.scopes: list[tuple[str, ...]] = []

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        if self.fail:
            raise RuntimeError("entra is unreachable")
        expires_on = int(time.time() + self.lifetime)
        claims = {"oid": self.oid, "n": len(self.scopes), "exp": expires_on}
        token = jwt.encode(claims, "fake-signing-secret-" * 4, algorithm="HS256")
        return AccessToken(token, expires_on)

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> FakeAsyncCredential:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        return None


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    """A client of the test's Redis."""
    client = Redis.from_url(redis_url)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def sender(redis_url: str) -> AsyncIterator[RedisStreamSender]:
    """A sender to the queue ``QUEUE`` on the test's Redis."""
    tx = RedisStreamSender.from_url(redis_url, QUEUE)
    try:
        yield tx
    finally:
        await tx.close()
