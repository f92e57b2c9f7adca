"""Fixtures for the ingestion tests: the app in process on the real Redis, and the queue's view.

The queue is the Redis Streams transport on the fixture's real ``redis-server``; ``queued()``
reads what the workflow would receive (``XRANGE`` on the stream, decoded).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from dronecommon.messaging.redis_streams import stream_key
from dronecommon.settings import AuthSettings, QueueSettings, RedisSettings
from dronetesting.apps import app_client
from ingestion.accounts import AccountStore, Owner
from ingestion.main import create_app
from ingestion.settings import IngestionSettings, LimitSettings

QUEUE = "deliveryrequests"


def make_settings(redis_url: str, **overrides: Any) -> IngestionSettings:
    """Settings on the test Redis with short bounds (so failure tests are quick)."""
    values: dict[str, Any] = {
        "redis": RedisSettings(url=redis_url, socket_timeout=1.0),
        "queue": QueueSettings(name=QUEUE, readiness_timeout=1.0),
        "send_timeout": 1.0,
        "store_timeout": 1.0,
        "idempotency_lease": 3.0,
        "idempotency_wait": 2.5,
        "retry_after": 7,
        "log_json": False,
        # Tokens are tested in test_access.py; here the owner is the body's ownerId.
        "auth": AuthSettings(enabled=False),
    }
    values.update(overrides)
    return IngestionSettings(**values)


@dataclass
class Queued:
    """One message as it sits on the queue's stream."""

    message_id: str
    body: dict[str, Any]
    raw_body: bytes
    content_type: str
    properties: dict[str, str]


async def queued(redis_url: str, queue: str = QUEUE) -> list[Queued]:
    """Every message on the queue, oldest first."""
    client = Redis.from_url(redis_url)
    try:
        entries = await client.xrange(stream_key(queue))
    finally:
        await client.aclose()
    messages = []
    for _, raw in entries or []:
        fields = {bytes(k): bytes(v) for k, v in (raw or {}).items()}  # type: ignore[arg-type]
        messages.append(
            Queued(
                message_id=fields[b"message_id"].decode(),
                body=json.loads(fields[b"body"]),
                raw_body=fields[b"body"],
                content_type=fields[b"content_type"].decode(),
                properties=json.loads(fields[b"properties"]),
            )
        )
    return messages


async def owned(
    redis_url: str, delivery_id: str | None = None, *, user: str = "myowner", account: str = ""
) -> str:
    """Record ``delivery_id`` (default: a new UUID) as accepted for this owner, as a POST does
    (without tokens the account is the ownerId); return the id."""
    delivery_id = delivery_id or str(uuid.uuid4())
    client = Redis.from_url(redis_url)
    try:
        store = AccountStore(client, limits=LimitSettings(), ownership_ttl=3600)
        await store.record_owner(delivery_id, Owner(user_id=user, account_id=account or user))
    finally:
        await client.aclose()
    return delivery_id


@pytest.fixture
def settings(redis_url: str) -> IngestionSettings:
    return make_settings(redis_url)


@pytest.fixture
async def client(settings: IngestionSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(create_app(settings, configure_logs=False)) as http:
        yield http
