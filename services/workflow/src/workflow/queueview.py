"""What the queue holds now, for operators: depth, messages in hand, dead letters, the total added.

- **Redis Streams**: the stream keeps only unfinished work (a completed message is deleted), so
  its length is the depth (waiting and being processed); the consumer group's pending count is
  what consumers hold now; ``entries-added`` (``XINFO STREAM``) counts every message ever added
  (requests, and messages put back by an abandon) — it only grows, so its growth over time is the
  queue's throughput; the dead-letter stream's length and oldest entries.
- **Service Bus**: the dead letters (peeked, the oldest first) from the dead-letter sub-queue; the
  depth and the totals are Azure Monitor metrics of the namespace (``ActiveMessages``,
  ``IncomingMessages``), not readable with the consumer's data-plane role, so they are null.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import Field
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from dronecommon.domain import ApiModel
from dronecommon.messaging import DeadLetter, DeadLetterStore
from dronecommon.messaging.redis_streams import dead_letter_key, stream_key


def summary(letter: DeadLetter) -> dict[str, Any]:
    """One dead letter as the command shows it."""
    delivery_id: str | None = None
    try:
        body = json.loads(letter.body)
        if isinstance(body, dict) and isinstance(body.get("deliveryId"), str):
            delivery_id = body["deliveryId"]
    except ValueError:
        pass
    when = letter.dead_lettered_at or letter.enqueued_at
    return {
        "id": letter.id,
        "messageId": letter.message_id,
        "operation": letter.properties.get("operation"),
        "deliveryId": delivery_id,
        "reason": letter.reason,
        "description": letter.description,
        "deliveryCount": letter.delivery_count,
        "deadLetteredAt": when.isoformat().replace("+00:00", "Z") if when else None,
    }


class DeadLetterView(ApiModel):
    """One dead letter as operators see it."""

    id: str
    message_id: str | None
    operation: str | None
    delivery_id: str | None
    reason: str | None
    description: str | None
    delivery_count: int | None
    dead_lettered_at: str | None = Field(description="RFC 3339 UTC")


class QueueSnapshot(ApiModel):
    """The queue now; a null count is one this transport cannot read here."""

    transport: str
    queue: str
    depth: int | None = Field(description="messages waiting or being processed")
    pending: int | None = Field(description="messages consumers hold now")
    enqueued_total: int | None = Field(
        description="every message ever added (only grows: its change over time is throughput)"
    )
    dead_letters: int | None
    dead_letter_list: list[DeadLetterView] = Field(description="the oldest, up to `limit`")


class QueueView:
    def __init__(
        self,
        *,
        transport: str,
        name: str,
        group: str,
        dead_letters: DeadLetterStore,
        redis: Redis | None,
    ) -> None:
        self.transport = transport
        self.name = name
        self.group = group
        self.store = dead_letters
        self.redis = redis

    async def snapshot(self, limit: int) -> QueueSnapshot:
        letters = [
            DeadLetterView.model_validate(summary(letter))
            for letter in await self.store.list(limit)
        ]
        if self.redis is None:
            return QueueSnapshot(
                transport=self.transport,
                queue=self.name,
                depth=None,
                pending=None,
                enqueued_total=None,
                dead_letters=len(letters) if len(letters) < limit else None,
                dead_letter_list=letters,
            )
        stream = stream_key(self.name)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.xlen(stream)
            pipe.xlen(dead_letter_key(self.name))
            depth, dead = await pipe.execute()
        pending = 0
        added: int | None = 0
        try:
            info: Any = await self.redis.xinfo_stream(stream)
            added = int(info.get("entries-added", info.get(b"entries-added", 0)))
            summary_reply: Any = await self.redis.xpending(stream, self.group)
            pending = int(summary_reply.get("pending", 0))
        except ResponseError:
            added = 0  # no stream yet: nothing was ever added
        return QueueSnapshot(
            transport=self.transport,
            queue=self.name,
            depth=int(depth),
            pending=pending,
            enqueued_total=added,
            dead_letters=int(dead),
            dead_letter_list=letters,
        )
