"""Per-account webhook signing secrets (Standard Webhooks ``whsec_<base64>``), kept in Redis.

``<p>:whsec:<accountId>`` holds ``{"secret", "createdAt"}`` (JSON). A secret is made on first use
(32 random bytes; ``SET NX``, so two replicas racing to make one agree on the winner's) and
never changes by itself: the account reads it (``GET /api/accounts/{accountId}/webhooksecret``)
to verify the signatures its endpoints receive.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import secrets as random
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from dronecommon.domain import format_utc

PREFIX = "whsec_"
SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class WebhookSecret:
    account_id: str
    secret: str
    created_at: dt.datetime


def new_secret() -> str:
    return PREFIX + base64.b64encode(random.token_bytes(SECRET_BYTES)).decode()


class WebhookSecrets:
    def __init__(self, redis: Redis, *, prefix: str = "notifier") -> None:
        self.redis = redis
        self.prefix = prefix

    def key(self, account_id: str) -> str:
        return f"{self.prefix}:whsec:{account_id}"

    async def get_or_create(self, account_id: str, now: dt.datetime | None = None) -> WebhookSecret:
        created = now or dt.datetime.now(dt.UTC)
        document = json.dumps({"secret": new_secret(), "createdAt": format_utc(created)})
        key = self.key(account_id)
        await self.redis.set(key, document, nx=True)
        raw: Any = await self.redis.get(key)
        stored = json.loads(raw)
        return WebhookSecret(
            account_id, stored["secret"], dt.datetime.fromisoformat(stored["createdAt"])
        )
