"""Sending: one ``XADD`` per message to ``queue:{name}`` (a batch in one transaction)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Self

from redis.asyncio import Redis

from dronecommon.messaging.base import MessageSender, OutgoingMessage, bounded_check
from dronecommon.messaging.redis_streams.client import check_raw_client, queue_redis_client
from dronecommon.messaging.redis_streams.layout import encode_message, stream_key


class RedisStreamSender(MessageSender):
    """Adds messages to ``queue:{name}``."""

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
        self.readiness_timeout = readiness_timeout
        self._redis = redis
        self._owns_client = owns_client

    @classmethod
    def from_url(cls, url: str, queue_name: str, *, readiness_timeout: float = 2.0) -> Self:
        return cls(
            queue_redis_client(url),
            queue_name,
            readiness_timeout=readiness_timeout,
            owns_client=True,
        )

    async def send(self, message: OutgoingMessage) -> None:
        await self._redis.xadd(self.stream, encode_message(message))  # type: ignore[arg-type]

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            for message in messages:
                pipe.xadd(self.stream, encode_message(message))  # type: ignore[arg-type]
            await pipe.execute()

    async def check_ready(self) -> None:
        await bounded_check(
            self._redis.ping(), self.readiness_timeout, f"redis queue {self.queue_name}"
        )

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()
