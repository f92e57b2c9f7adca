"""The dead letters of ``queue:{name}``: list them, replay chosen ones onto the queue."""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from typing import Self

from redis.asyncio import Redis

from dronecommon.messaging.base import DeadLetter, bounded_check
from dronecommon.messaging.redis_streams.client import check_raw_client, queue_redis_client
from dronecommon.messaging.redis_streams.layout import (
    ENTRY_ID,
    dead_letter_key,
    decode_dead_letter,
    pairs,
    stream_key,
    text,
)
from dronecommon.messaging.redis_streams.scripts import replay_script


class RedisDeadLetterStore:
    """The dead letters of ``queue:{name}``: list them, replay chosen ones onto the queue.

    Replaying re-adds the message (same ``message_id``, body, content type and properties, a fresh
    delivery count) and removes the dead letter, atomically per entry.
    """

    def __init__(
        self,
        redis: Redis,
        queue_name: str,
        *,
        readiness_timeout: float = 2.0,
        owns_client: bool = False,
    ) -> None:
        check_raw_client(redis)
        self.queue_name = queue_name
        self.stream = stream_key(queue_name)
        self.dead_letter_stream = dead_letter_key(queue_name)
        self.readiness_timeout = readiness_timeout
        self._redis = redis
        self._owns_client = owns_client
        self._replay_script = replay_script(redis)

    @classmethod
    def from_url(cls, url: str, queue_name: str, *, readiness_timeout: float = 2.0) -> Self:
        return cls(
            queue_redis_client(url),
            queue_name,
            readiness_timeout=readiness_timeout,
            owns_client=True,
        )

    async def list(self, limit: int = 100) -> list[DeadLetter]:
        entries = await self._redis.xrange(self.dead_letter_stream, "-", "+", count=max(1, limit))
        return [
            decode_dead_letter(text(entry_id), pairs(fields)) for entry_id, fields in entries or []
        ]

    async def replay(self, ids: Sequence[str]) -> builtins.list[str]:
        valid = [i for i in dict.fromkeys(ids) if ENTRY_ID.match(i)]
        if not valid:
            return []
        replayed = await self._replay_script(
            keys=[self.dead_letter_stream, self.stream], args=valid
        )
        return [text(entry_id) for entry_id in replayed or []]

    async def count(self) -> int:
        """How many dead letters there are."""
        return int(await self._redis.xlen(self.dead_letter_stream))

    async def check_ready(self) -> None:
        await bounded_check(
            self._redis.ping(), self.readiness_timeout, f"redis dead letters {self.queue_name}"
        )

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
