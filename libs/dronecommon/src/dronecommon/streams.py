"""Reading a Redis stream as one consumer of a consumer group: batches, ack after the work.

The delivery events (:mod:`dronecommon.events`) and the telemetry fixes (:mod:`dronecommon.fixes`)
are streams that several services read, each with its own consumer group. Unlike the queue
(:mod:`dronecommon.messaging`), entries stay in the stream after they are acknowledged (other
groups still read them) and the stream is trimmed by length (``MAXLEN ~``) by its producers.

:class:`StreamGroupReader` gives one consumer at-least-once batches:

* **Batches**: ``XREADGROUP ... COUNT batch_size BLOCK block`` from ``>`` (entries never
  delivered to the group).
* **Ack after the work**: :meth:`run` calls the handler with a batch and ``XACK`` s it only when
  the handler returned, i.e. after the consumer's own durable write. A handler that raises
  leaves the batch pending; the reader waits (backoff up to ``retry_max``) and reads its own
  pending entries again from the start of its pending list, so the same entries come back, in
  order, before anything newer.
* **Restart under the same name** resumes with the entries that consumer had read but not
  acknowledged (``XREADGROUP ... 0``): nothing read before a crash is lost, and nothing newer
  overtakes it.
* **Reclaim**: every ``claim_interval`` seconds, entries left pending by *other* consumers for
  longer than ``claim_idle`` (a consumer that died under another name) are taken over with
  ``XAUTOCLAIM`` and handled like new ones. Entries trimmed away while pending are dropped from
  the pending list by Redis (``XAUTOCLAIM``) or acknowledged here (``XREADGROUP ... 0`` answers
  them without fields).

Handlers must be idempotent (an entry is handled again after a crash before its ack). Entry ids
increase with time, so a handler may use them to ignore what it has already applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

logger = logging.getLogger("dronecommon.streams")


@dataclass(frozen=True, slots=True)
class StreamEntry:
    """One stream entry: its id (``<ms>-<n>``) and its fields, decoded as UTF-8."""

    id: str
    fields: Mapping[str, str]


StreamHandler = Callable[[Sequence[StreamEntry]], Awaitable[None]]


def default_consumer_name(service: str) -> str:
    """``<service>-<host>-<pid>``: unique per process (for readers that may run side by side)."""
    return f"{service}-{socket.gethostname()}-{os.getpid()}"


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _fields(raw: Any) -> dict[str, str] | None:
    if raw is None:
        return None
    if isinstance(raw, Mapping):
        return {_text(k): _text(v) for k, v in raw.items()}
    flat = list(raw)
    return {_text(k): _text(v) for k, v in zip(flat[0::2], flat[1::2], strict=True)}


def _entries(reply: Any) -> Iterator[tuple[str, dict[str, str] | None]]:
    """``(id, fields or None)`` from an ``XREADGROUP`` reply (RESP2 list or RESP3 map)."""
    if not reply:
        return
    streams = reply.values() if isinstance(reply, Mapping) else (item[1] for item in reply)
    for entries in streams:
        for entry_id, fields in entries:
            yield _text(entry_id), _fields(fields)


class StreamGroupReader:
    """One consumer of one consumer group of one stream (see the module docstring)."""

    def __init__(
        self,
        redis: Redis,
        stream: str,
        group: str,
        consumer: str,
        *,
        batch_size: int = 100,
        block: float = 1.0,
        claim_idle: float = 60.0,
        claim_interval: float = 10.0,
        retry_base: float = 0.2,
        retry_max: float = 10.0,
        start_id: str = "0",
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.redis = redis
        self.stream = stream
        self.group = group
        self.consumer = consumer
        self.batch_size = batch_size
        self.block = block
        self.claim_idle = claim_idle
        self.claim_interval = claim_interval
        self.retry_base = retry_base
        self.retry_max = retry_max
        self.start_id = start_id
        self._own_pending = True  # read this consumer's pending entries first
        self._next_claim = 0.0
        self._claim_cursor = "0-0"
        self._stopping = asyncio.Event()

    async def ensure_group(self) -> None:
        """Create the group (and the stream) if missing; the group starts at ``start_id``."""
        try:
            await self.redis.xgroup_create(self.stream, self.group, id=self.start_id, mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def read(self) -> list[StreamEntry]:
        """The next batch: own pending entries, then reclaimed ones, then new ones (blocking)."""
        if self._own_pending:
            pending = await self._read_from("0", block=None)
            if pending:
                return pending
            self._own_pending = False
        now = time.monotonic()
        if now >= self._next_claim:
            claimed = await self._reclaim()
            if claimed:
                return claimed
            self._next_claim = now + self.claim_interval
        return await self._read_from(">", block=self.block)

    async def _read_from(self, start: str, *, block: float | None) -> list[StreamEntry]:
        try:
            reply = await self.redis.xreadgroup(
                self.group,
                self.consumer,
                {self.stream: start},
                count=self.batch_size,
                block=None if block is None else max(1, int(block * 1000)),
            )
        except ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            await self.ensure_group()  # the stream was deleted: start again
            return []
        entries: list[StreamEntry] = []
        gone: list[str] = []
        for entry_id, fields in _entries(reply):
            if fields is None:
                gone.append(entry_id)  # trimmed while pending
            else:
                entries.append(StreamEntry(entry_id, fields))
        if gone:
            await self.ack(gone)
        return entries

    async def _reclaim(self) -> list[StreamEntry]:
        reply: Any = await self.redis.xautoclaim(
            self.stream,
            self.group,
            self.consumer,
            min_idle_time=int(self.claim_idle * 1000),
            start_id=self._claim_cursor,
            count=self.batch_size,
        )
        cursor, claimed = reply[0], reply[1]
        self._claim_cursor = _text(cursor)
        entries = [
            StreamEntry(_text(entry_id), fields)
            for entry_id, raw in claimed
            if (fields := _fields(raw)) is not None
        ]
        if self._claim_cursor != "0-0":
            self._next_claim = 0.0  # more to look at: continue on the next read
        return entries

    async def ack(self, ids: Sequence[str]) -> None:
        if ids:
            await self.redis.xack(self.stream, self.group, *ids)

    def stop(self) -> None:
        """Make :meth:`run` return after the batch in hand (and its ack)."""
        self._stopping.set()

    async def run(self, handler: StreamHandler) -> None:
        """Read, handle and acknowledge batches until :meth:`stop`.

        Redis errors and handler errors are logged and retried with backoff (the batch stays
        pending and is read again); nothing is acknowledged that the handler did not finish.
        """
        failures = 0
        await self._retrying(self.ensure_group)
        while not self._stopping.is_set():
            try:
                entries = await self.read()
                if entries:
                    await handler(entries)
                    await self.ack([entry.id for entry in entries])
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:
                failures += 1
                self._own_pending = True  # read the unacknowledged batch again, in order
                delay = min(self.retry_max, self.retry_base * 2 ** min(failures - 1, 16))
                logger.warning(
                    "stream %s group %s: batch failed (attempt %d); retrying in %.1fs",
                    self.stream,
                    self.group,
                    failures,
                    delay,
                    exc_info=True,
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def _retrying(self, action: Callable[[], Awaitable[None]]) -> None:
        failures = 0
        while not self._stopping.is_set():
            try:
                await action()
                return
            except (RedisError, OSError):
                failures += 1
                delay = min(self.retry_max, self.retry_base * 2 ** min(failures - 1, 16))
                logger.warning("stream %s: %s failed; retrying", self.stream, action.__name__)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=delay)

    async def pending_count(self) -> int:
        """Entries of the group read but not acknowledged (by any consumer)."""
        summary: Any = await self.redis.xpending(self.stream, self.group)
        return int(summary["pending"] if isinstance(summary, Mapping) else summary[0])
