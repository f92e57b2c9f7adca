"""Receiving: one consumer of the queue's consumer group, on the shared receive engine.

Each fetch first takes over expired locks (at most every ``lock_duration / 2``) and, when there
were none, reads new entries with one blocking ``XREADGROUP`` for at most ``min(free handler
slots, prefetch)`` entries. Messages delivered more often than ``max_delivery_count`` are
dead-lettered instead of handled. While handlers run, a background task renews their locks every
``lock_duration / 2``; a lock found taken over marks its message. Now and then it deletes idle
consumers that hold nothing (dead pods), and on the way out it deletes itself from the group
unless it still holds entries.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Sequence
from typing import Any, Self

from redis.asyncio import Redis
from redis.commands.core import AsyncScript
from redis.exceptions import ResponseError

from dronecommon.messaging.base import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    MessageLockLostError,
    ReceivedMessage,
    bounded_check,
)
from dronecommon.messaging.engine import PullReceiver
from dronecommon.messaging.redis_streams.client import check_raw_client, queue_redis_client
from dronecommon.messaging.redis_streams.layout import (
    dead_letter_key,
    pairs,
    stream_entries,
    stream_key,
    text,
)
from dronecommon.messaging.redis_streams.message import RedisStreamMessage
from dronecommon.messaging.redis_streams.scripts import ReceiverScripts
from dronecommon.telemetry import untraced

logger = logging.getLogger("dronecommon.messaging.redis")


class RedisStreamReceiver(PullReceiver):
    """One consumer of the queue's consumer group (see the package docstring for the design)."""

    messaging_system = "redis"

    def __init__(
        self,
        redis: Redis,
        queue_name: str,
        *,
        consumer_group: str = "workflow",
        consumer_name: str | None = None,
        max_concurrency: int = 32,
        prefetch: int = 64,
        lock_duration: float = 60.0,
        max_delivery_count: int = 10,
        receive_wait: float = 1.0,
        readiness_timeout: float = 2.0,
        settle_timeout: float = 10.0,
        owns_client: bool = False,
    ) -> None:
        super().__init__(
            queue_name=queue_name,
            max_concurrency=max_concurrency,
            settle_timeout=settle_timeout,
            consumer_group=consumer_group,
        )
        check_raw_client(redis)
        if lock_duration <= 0 or receive_wait <= 0 or max_delivery_count < 1:
            raise ValueError("lock_duration and receive_wait must be > 0, max_delivery_count >= 1")
        self.stream = stream_key(queue_name)
        self.dead_letter_stream = dead_letter_key(queue_name)
        self.group = consumer_group
        self.consumer_name = consumer_name or (
            f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        )
        self.prefetch = prefetch
        self.lock_duration = lock_duration
        self.max_delivery_count = max_delivery_count
        self.receive_wait = receive_wait
        self.readiness_timeout = readiness_timeout
        self.scripts = ReceiverScripts.register(redis)
        self._redis = redis
        self._owns_client = owns_client
        # Take over expired locks and renew held ones twice per lock duration.
        self._renew_interval = max(0.05, lock_duration / 2)
        self._reclaim_interval = self._renew_interval
        self._block_ms = max(1, int(min(receive_wait, self._reclaim_interval) * 1000))
        self._prune_interval = max(300.0, 10 * lock_duration)
        self._next_reclaim = 0.0
        self._next_prune = 0.0
        self._reclaim_cursor = "0-0"
        self._held: dict[str, RedisStreamMessage] = {}
        self._renewer: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str, queue_name: str, **options: Any) -> Self:
        client = queue_redis_client(
            url,
            receive_wait=float(options.get("receive_wait", 1.0)),
            max_concurrency=int(options.get("max_concurrency", 0)),
        )
        return cls(client, queue_name, owns_client=True, **options)

    # -- group and readiness ---------------------------------------------------------------------

    async def ensure_group(self) -> None:
        """Create the stream and the consumer group unless they exist (idempotent)."""
        try:
            await self._redis.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def check_ready(self) -> None:
        """Bounded check that the stream and group can be used (creates them if missing)."""
        await bounded_check(
            self.ensure_group(), self.readiness_timeout, f"redis queue {self.queue_name}"
        )

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()

    # -- settlement --------------------------------------------------------------------------------

    async def run_owned(
        self,
        message: RedisStreamMessage,
        script: AsyncScript,
        extra: Sequence[bytes | str] = (),
        *,
        dead_letter: bool = False,
    ) -> None:
        """Run a settlement ``script`` on ``message`` if this consumer still holds its lock.

        Raises :class:`MessageLockLostError` when it does not.
        """
        keys = [self.stream, self.dead_letter_stream] if dead_letter else [self.stream]
        args = [self.group, message.entry_id, self.consumer_name, message.lock_token, *extra]
        result = await script(keys=keys, args=args)
        if not result:
            raise MessageLockLostError(
                f"message {message.message_id} ({message.entry_id}) is no longer locked by"
                f" {self.consumer_name}"
            )

    # -- PullReceiver hooks ------------------------------------------------------------------------

    async def _start(self) -> None:
        try:
            await self.ensure_group()
        except Exception:
            logger.warning("could not create consumer group %s yet", self.group, exc_info=True)
        self._renewer = asyncio.create_task(self._renew_locks())

    async def _finish(self) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            await asyncio.gather(self._renewer, return_exceptions=True)
            self._renewer = None
        try:
            # Leave the group tidy: this consumer goes unless it still holds entries (which
            # another receiver takes over once their locks expire).
            async with asyncio.timeout(self.settle_timeout):
                await self.scripts.leave(keys=[self.stream], args=[self.group, self.consumer_name])
        except Exception:
            logger.debug("could not remove consumer %s", self.consumer_name, exc_info=True)

    def _track(self, message: ReceivedMessage) -> None:
        if isinstance(message, RedisStreamMessage):
            self._held[message.entry_id] = message

    def _untrack(self, message: ReceivedMessage) -> None:
        if isinstance(message, RedisStreamMessage):
            self._held.pop(message.entry_id, None)

    async def _fetch(self, max_count: int) -> Sequence[ReceivedMessage]:
        # Polls (most of them empty) are no traces; each message's handling is, under the
        # trace its sender started (dronecommon.telemetry).
        with untraced():
            return await self._poll(max_count)

    async def _poll(self, max_count: int) -> Sequence[ReceivedMessage]:
        count = max(1, min(max_count, self.prefetch or 1))
        now = asyncio.get_running_loop().time()
        if now >= self._next_reclaim:
            self._next_reclaim = now + self._reclaim_interval
            reclaimed = await self._reclaim(count)
            if reclaimed:
                return reclaimed
            if now >= self._next_prune:
                self._next_prune = now + self._prune_interval
                await self._prune()
        try:
            reply = await self._redis.xreadgroup(
                self.group,
                self.consumer_name,
                {self.stream: ">"},
                count=count,
                block=self._block_ms,
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()
            return []
        candidates = [
            RedisStreamMessage(self, entry_id, fields, times_delivered=1)
            for entry_id, fields in stream_entries(reply)
        ]
        return await self._admit(candidates)

    # -- internals ---------------------------------------------------------------------------------

    async def _reclaim(self, count: int) -> list[ReceivedMessage]:
        try:
            cursor, rows = await self.scripts.reclaim(
                keys=[self.stream],
                args=[
                    self.group,
                    self.consumer_name,
                    int(self.lock_duration * 1000),
                    self._reclaim_cursor,
                    count,
                ],
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()
            return []
        self._reclaim_cursor = text(cursor)
        candidates = [
            RedisStreamMessage(self, text(entry_id), pairs(fields), int(times))
            for entry_id, fields, times in rows
        ]
        for message in candidates:
            logger.info(
                "took over message %s (delivery %d) from %s after its lock expired",
                message.message_id,
                message.delivery_count,
                self.queue_name,
            )
        return await self._admit(candidates)

    async def _admit(self, candidates: list[RedisStreamMessage]) -> list[ReceivedMessage]:
        admitted: list[ReceivedMessage] = []
        for message in candidates:
            if message.delivery_count <= self.max_delivery_count:
                admitted.append(message)
                continue
            try:
                await message.dead_letter(
                    MAX_DELIVERY_COUNT_EXCEEDED,
                    f"delivered {message.delivery_count} times; the maximum is "
                    f"{self.max_delivery_count}",
                )
            except Exception:
                logger.warning(
                    "could not dead-letter over-delivered message %s",
                    message.message_id,
                    exc_info=True,
                )
        return admitted

    async def _prune(self) -> None:
        try:
            removed = await self.scripts.prune(
                keys=[self.stream],
                args=[self.group, int(self._prune_interval * 1000), self.consumer_name],
            )
        except ResponseError:
            logger.debug("could not prune idle consumers", exc_info=True)
            return
        if removed:
            logger.info("removed %s idle consumers from group %s", removed, self.group)

    async def _renew_locks(self) -> None:
        while True:
            await asyncio.sleep(self._renew_interval)
            held = [m for m in self._held.values() if not m.settled and not m.lock_lost]
            if not held:
                continue
            args: list[str | int] = [self.group, self.consumer_name]
            for message in held:
                args += [message.entry_id, message.lock_token]
            try:
                lost = await self.scripts.renew(keys=[self.stream], args=args)
            except Exception:
                logger.warning(
                    "renewing message locks on %s failed", self.queue_name, exc_info=True
                )
                continue
            for entry_id in lost or []:
                lost_message = self._held.get(text(entry_id))
                if lost_message is not None and not lost_message.settled:
                    lost_message._mark_lock_lost()
                    logger.warning(
                        "lost the lock on message %s (%s); another receiver may take it",
                        lost_message.message_id,
                        lost_message.entry_id,
                    )
