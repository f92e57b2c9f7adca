"""Fixes over Redis Streams: the local transport.

One stream (``telemetry:fixes`` by default) holds entries of up to ``fixes_per_entry`` fixes each:
field ``fixes``, a JSON array in publish order, and ``n``, its length. One entry per batch rather
than per fix because the client's cost is per command: ten thousand single-fix ``XADD`` s cost
the publisher about twenty times the CPU of a hundred entries of a hundred fixes (measured with
redis-py and hiredis). A publish sends all its entries in one pipeline, each trimming the stream
to about ``maxlen`` entries (``MAXLEN ~``).

Consumers read with :class:`~dronecommon.streams.StreamGroupReader` (one consumer group per
consuming service, one consumer per process): at least once, acknowledged after the handler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from dronecommon.streams import StreamEntry, StreamGroupReader

from .base import FixConsumer, FixHandler, FixPublisher, FixPublishError, FixStreamNotReadyError
from .model import Fix, FixDecodeError, encode_fixes, fix_from_wire

logger = logging.getLogger("dronecommon.fixes.redis")

FIXES_FIELD = "fixes"


def decode_entry(entry: StreamEntry) -> list[Fix]:
    """The valid fixes of an entry, in order (malformed ones are logged and left out)."""
    raw = entry.fields.get(FIXES_FIELD)
    try:
        items: Any = orjson.loads(raw or "")
    except orjson.JSONDecodeError:
        logger.warning("entry %s holds no fixes; skipped", entry.id)
        return []
    if not isinstance(items, list):
        logger.warning("entry %s holds no list of fixes; skipped", entry.id)
        return []
    fixes: list[Fix] = []
    for item in items:
        try:
            fixes.append(fix_from_wire(item))
        except FixDecodeError as exc:
            logger.warning("entry %s: a malformed fix skipped: %s", entry.id, exc)
    return fixes


async def _bounded(check: Any, limit: float, what: str) -> None:
    try:
        await asyncio.wait_for(check, timeout=limit)
    except (TimeoutError, RedisError, OSError) as exc:
        raise FixStreamNotReadyError(f"{what}: {exc!r}") from exc


class RedisFixPublisher(FixPublisher):
    def __init__(
        self,
        redis: Redis,
        *,
        stream: str = "telemetry:fixes",
        maxlen: int = 100_000,
        fixes_per_entry: int = 100,
        readiness_timeout: float = 2.0,
    ) -> None:
        super().__init__()
        self.redis = redis
        self.stream = stream
        self.maxlen = maxlen
        self.fixes_per_entry = fixes_per_entry
        self.readiness_timeout = readiness_timeout

    async def publish(self, fixes: Sequence[Fix]) -> None:
        if not fixes:
            return
        size = self.fixes_per_entry
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for start in range(0, len(fixes), size):
                    chunk = fixes[start : start + size]
                    entry: dict[Any, Any] = {FIXES_FIELD: encode_fixes(chunk), "n": len(chunk)}
                    pipe.xadd(self.stream, entry, maxlen=self.maxlen, approximate=True)
                await pipe.execute()
        except (RedisError, OSError) as exc:
            self.failed += len(fixes)
            raise FixPublishError(f"stream {self.stream}: {exc!r}") from exc
        self.published += len(fixes)

    async def check_ready(self) -> None:
        await _bounded(self.redis.ping(), self.readiness_timeout, f"redis stream {self.stream}")

    async def close(self) -> None:
        """Nothing to release: the Redis client belongs to whoever made it."""


class RedisFixConsumer(FixConsumer):
    def __init__(
        self,
        redis: Redis,
        group: str,
        consumer: str,
        *,
        stream: str = "telemetry:fixes",
        max_batch: int = 500,
        fixes_per_entry: int = 100,
        receive_wait: float = 1.0,
        claim_idle: float = 30.0,
        start_at_latest: bool = True,
        readiness_timeout: float = 2.0,
    ) -> None:
        self.redis = redis
        self.readiness_timeout = readiness_timeout
        self.reader = StreamGroupReader(
            redis,
            stream,
            group,
            consumer,
            batch_size=max(1, max_batch // fixes_per_entry),
            block=receive_wait,
            claim_idle=claim_idle,
            start_id="$" if start_at_latest else "0",
        )

    async def run(self, handler: FixHandler) -> None:
        async def handle(entries: Sequence[StreamEntry]) -> None:
            fixes = [fix for entry in entries for fix in decode_entry(entry)]
            if fixes:
                await handler(fixes)

        await self.reader.run(handle)

    async def stop(self) -> None:
        self.reader.stop()

    async def check_ready(self) -> None:
        async def check() -> None:
            await self.reader.ensure_group()
            await self.reader.pending_count()

        await _bounded(check(), self.readiness_timeout, f"redis stream {self.reader.stream}")

    async def close(self) -> None:
        """Nothing to release: the Redis client belongs to whoever made it."""
