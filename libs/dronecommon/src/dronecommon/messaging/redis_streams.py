"""Redis Streams transport: the embedded local default, with Service Bus semantics.

Key layout (one queue ``name``; the braces are a Redis Cluster hash tag, so both keys live in
the same slot and the Lua scripts below may touch both atomically)::

    queue:{name}              the queue: a stream, one entry per message
    queue:{name}:deadletter   its dead-letter queue: a stream, one entry per dead letter

Each entry carries ``message_id``, ``body``, ``content_type`` and ``properties`` (JSON object of
strings), plus ``enqueued_at`` (milliseconds) and ``deliveries`` (deliveries before this entry)
when a message was re-queued. Dead letters add ``reason``, ``description``, ``source_id`` and
``delivery_count``.

Receivers form one consumer group (``QueueSettings.consumer_group``, created idempotently with
``MKSTREAM`` from id ``0``); each receiver is one consumer with a unique name. How the Service Bus
semantics map onto streams:

* **Lock** = the entry is in the group's pending list (PEL) owned by this consumer; the lock
  token is (consumer, times-delivered). Its age is the PEL idle time. Every settlement first checks
  the token inside a Lua script, so a receiver whose lock was taken over gets
  :class:`MessageLockLostError` instead of settling someone else's delivery.
* **Lock renewal**: every ``lock_duration / 2`` the receiver resets the idle time of the entries
  its handlers hold with ``XCLAIM ... JUSTID`` (which does not count a delivery) — only for
  entries it still owns.
* **Expired locks** (a dead or stalled consumer): entries idle longer than ``lock_duration`` are
  taken over with ``XAUTOCLAIM`` by any live receiver, which counts a new delivery.
* **Complete** = ``XACK`` + ``XDEL`` in one script: the stream only ever holds unfinished work, so
  it is never trimmed (no ``MAXLEN``: trimming could drop unprocessed messages).
* **Abandon** = in one script, ``XACK`` + ``XDEL`` the entry and ``XADD`` a copy carrying the
  delivery count so far: the message is redeliverable at once (by any receiver) instead of after
  the lock would have expired. Its stream id changes and it joins the back of the queue; its
  ``message_id``, properties and ``enqueued_at`` do not change.
* **Delivery count** = ``deliveries`` carried in the entry + the PEL's times-delivered.
* **Dead-lettering** = ``XADD`` to the dead-letter stream + ``XACK`` + ``XDEL``, atomically.
  Abandoning a message whose delivery count has reached ``max_delivery_count`` dead-letters it
  with the reason ``MaxDeliveryCountExceeded``; so does taking over an over-delivered entry (a
  message that keeps killing its consumers).
* **Prefetch**: one ``XREADGROUP`` asks for at most ``min(free handler slots, prefetch)``
  entries and every entry read goes straight to a handler. Entries are never buffered unhandled,
  because a buffered entry's lock would age without being renewed.

At-least-once: a crash between the handler's side effects and ``complete`` redelivers the
message. On shutdown, entries read but not yet handed to a handler are re-queued without counting
a delivery.
"""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
import os
import re
import socket
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Self

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ResponseError

from dronecommon.messaging.base import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    DeadLetter,
    MessageLockLostError,
    MessageSender,
    OutgoingMessage,
    PullReceiver,
    ReceivedMessage,
    bounded_check,
    outgoing_properties,
)

logger = logging.getLogger("dronecommon.messaging.redis")

_ENTRY_ID = re.compile(r"^\d+-\d+$")

# Fields of a queue entry that travel with the message (re-queue and replay copy them).
_MESSAGE_FIELDS = ("message_id", "body", "content_type", "properties")


def stream_key(queue_name: str) -> str:
    """The stream holding the queue ``queue_name``."""
    return f"queue:{{{queue_name}}}"


def dead_letter_key(queue_name: str) -> str:
    """The stream holding the dead letters of ``queue_name``."""
    return f"queue:{{{queue_name}}}:deadletter"


_OWNED = """
local function owned(stream, group, id, consumer, token)
  local p = redis.call('XPENDING', stream, group, id, id, 1)
  return #p == 1 and p[1][2] == consumer and p[1][4] == tonumber(token)
end
"""

# KEYS: stream. ARGV: group, entry id, consumer, token.
_COMPLETE = (
    _OWNED
    + """
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""
)

# KEYS: stream. ARGV: group, entry id, consumer, token, field, value, ... (the copy to add).
_REQUEUE = (
    _OWNED
    + """
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
"""
)

# KEYS: stream, dead-letter stream. ARGV: group, entry id, consumer, token, field, value, ...
_DEAD_LETTER = (
    _OWNED
    + """
if not owned(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4]) then return 0 end
redis.call('XADD', KEYS[2], '*', unpack(ARGV, 5))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""
)

# KEYS: stream. ARGV: group, consumer, id, token, id, token, ... Returns the ids no longer owned.
_RENEW = (
    _OWNED
    + """
local lost = {}
for i = 3, #ARGV, 2 do
  if owned(KEYS[1], ARGV[1], ARGV[i], ARGV[2], ARGV[i + 1]) then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
  else
    lost[#lost + 1] = ARGV[i]
  end
end
return lost
"""
)

# KEYS: stream. ARGV: group, consumer, min idle ms, cursor, count.
# Returns {next cursor, {{id, {field, value, ...}, times delivered}, ...}}.
_RECLAIM = """
local res = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4], 'COUNT', ARGV[5])
local out = {}
for _, entry in ipairs(res[2]) do
  if entry and entry[2] then
    local p = redis.call('XPENDING', KEYS[1], ARGV[1], entry[1], entry[1], 1)
    if #p == 1 then out[#out + 1] = {entry[1], entry[2], p[1][4]} end
  end
end
return {res[1], out}
"""

# KEYS: stream. ARGV: group, min idle ms, own consumer name. Deletes consumers that hold nothing
# and have not been seen for a long time (dead pods); a live consumer would be re-created by its
# next read anyway, and one holding entries is never deleted (that would drop its PEL entries).
_PRUNE = """
local removed = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info['pending'] == 0 and info['idle'] >= tonumber(ARGV[2]) and info['name'] ~= ARGV[3] then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed = removed + 1
  end
end
return removed
"""

# KEYS: stream. ARGV: group, consumer. Deletes the consumer if it holds no entries.
_LEAVE = """
if #redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2]) > 0 then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"""

# KEYS: dead-letter stream, stream. ARGV: dead-letter ids. Returns the ids replayed.
_REPLAY = """
local out = {}
for _, id in ipairs(ARGV) do
  local e = redis.call('XRANGE', KEYS[1], id, id)
  if #e == 1 then
    local f = e[1][2]
    local copy = {}
    for i = 1, #f, 2 do
      local k = f[i]
      if k == 'message_id' or k == 'body' or k == 'content_type' or k == 'properties' then
        copy[#copy + 1] = k
        copy[#copy + 1] = f[i + 1]
      end
    end
    redis.call('XADD', KEYS[2], '*', unpack(copy))
    redis.call('XDEL', KEYS[1], id)
    out[#out + 1] = id
  end
end
return out
"""


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _pairs(fields: Any) -> dict[str, bytes]:
    """Entry fields as ``{name: raw bytes}``, from a dict or a flat ``[k, v, ...]`` list."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(fields, Mapping):
        items = fields.items()
    else:
        flat = list(fields or [])
        items = zip(flat[0::2], flat[1::2], strict=True)
    return {
        _text(key): value if isinstance(value, bytes) else str(value).encode()
        for key, value in items
    }


def _stream_entries(reply: Any) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(id, fields)`` pairs from an ``XREADGROUP`` reply (RESP2 list or RESP3 map)."""
    streams = reply.values() if isinstance(reply, Mapping) else (s[1] for s in reply or [])
    for entries in streams:
        for entry_id, fields in entries:
            if fields is not None:
                yield _text(entry_id), _pairs(fields)


def _int(raw: bytes | None) -> int:
    try:
        return int(raw or 0)
    except ValueError:
        return 0


def _entry_time(entry_id: str) -> datetime:
    return datetime.fromtimestamp(int(entry_id.split("-", 1)[0]) / 1000, tz=UTC)


def _properties(raw: bytes | None, entry_id: str) -> dict[str, str]:
    if not raw:
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError:
        logger.warning("entry %s has malformed properties; ignoring them", entry_id)
        return {}
    if not isinstance(decoded, dict):
        return {}
    return {str(key): str(value) for key, value in decoded.items()}


def redis_client(url: str, *, socket_timeout: float = 5.0, max_connections: int = 100) -> Redis:
    """A raw-bytes client for the queue that reconnects (twice, quickly) after a dropped link.

    ``socket_timeout`` must outlast a receiver's blocking read (its ``receive_wait``). The pool
    blocks (up to ``socket_timeout``) when all ``max_connections`` are busy, so a burst of sends
    waits its turn instead of failing with "Too many connections".
    """
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=socket_timeout,
        socket_timeout=socket_timeout,
        socket_connect_timeout=5.0,
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=0.5), 2),
    )
    client = Redis(connection_pool=pool)
    client.auto_close_connection_pool = True  # the client owns its pool, as with from_url
    return client


def _check_client(redis: Redis) -> None:
    kwargs = getattr(getattr(redis, "connection_pool", None), "connection_kwargs", {})
    if kwargs.get("decode_responses"):
        raise ValueError("the queue needs a Redis client with decode_responses=False (raw bytes)")


def _encode_message(message: OutgoingMessage) -> dict[str, bytes | str]:
    return {
        "message_id": message.message_id,
        "body": message.body,
        "content_type": message.content_type,
        "properties": json.dumps(outgoing_properties(message), separators=(",", ":")),
    }


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
        _check_client(redis)
        self.queue_name = queue_name
        self.stream = stream_key(queue_name)
        self.readiness_timeout = readiness_timeout
        self._redis = redis
        self._owns_client = owns_client

    @classmethod
    def from_url(cls, url: str, queue_name: str, *, readiness_timeout: float = 2.0) -> Self:
        return cls(
            redis_client(url), queue_name, readiness_timeout=readiness_timeout, owns_client=True
        )

    async def send(self, message: OutgoingMessage) -> None:
        await self._redis.xadd(self.stream, _encode_message(message))  # type: ignore[arg-type]

    async def send_many(self, messages: Sequence[OutgoingMessage]) -> None:
        if not messages:
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            for message in messages:
                pipe.xadd(self.stream, _encode_message(message))  # type: ignore[arg-type]
            await pipe.execute()

    async def check_ready(self) -> None:
        await bounded_check(
            self._redis.ping(), self.readiness_timeout, f"redis queue {self.queue_name}"
        )

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()


class RedisStreamMessage(ReceivedMessage):
    """A message read from a stream, locked to one consumer of the group."""

    def __init__(
        self,
        receiver: RedisStreamReceiver,
        entry_id: str,
        fields: dict[str, bytes],
        times_delivered: int,
    ) -> None:
        prior = _int(fields.get("deliveries"))
        enqueued_ms = _int(fields.get("enqueued_at"))
        enqueued_at = (
            datetime.fromtimestamp(enqueued_ms / 1000, tz=UTC)
            if enqueued_ms
            else _entry_time(entry_id)
        )
        content_type = fields.get("content_type")
        super().__init__(
            body=fields.get("body", b""),
            message_id=_text(fields.get("message_id", entry_id.encode())),
            properties=_properties(fields.get("properties"), entry_id),
            delivery_count=prior + times_delivered,
            enqueued_at=enqueued_at,
            content_type=_text(content_type) if content_type is not None else None,
        )
        self.entry_id = entry_id
        self.lock_token = times_delivered
        self._receiver = receiver
        self._fields = fields
        self._enqueued_ms = int(enqueued_at.timestamp() * 1000)

    def _copy(self, deliveries: int | None = None) -> list[bytes | str]:
        """The message fields, for a re-queued copy (with ``deliveries``) or a dead letter."""
        flat: list[bytes | str] = []
        for name in _MESSAGE_FIELDS:
            if name in self._fields:
                flat += [name, self._fields[name]]
        flat += ["enqueued_at", str(self._enqueued_ms)]
        if deliveries is not None:
            flat += ["deliveries", str(deliveries)]
        return flat

    async def _complete(self) -> None:
        await self._receiver._run_owned(self, self._receiver._complete_script)

    async def _abandon(self) -> None:
        limit = self._receiver.max_delivery_count
        if self.delivery_count >= limit:
            await self._dead_letter(
                MAX_DELIVERY_COUNT_EXCEEDED,
                f"abandoned after {self.delivery_count} deliveries; the maximum is {limit}",
            )
            return
        await self._receiver._run_owned(
            self, self._receiver._requeue_script, self._copy(self.delivery_count)
        )

    async def _release(self) -> None:
        # Read but never handed to a handler: re-queue without counting this delivery.
        await self._receiver._run_owned(
            self, self._receiver._requeue_script, self._copy(self.delivery_count - 1)
        )

    async def _dead_letter(self, reason: str, description: str) -> None:
        fields = [
            *self._copy(),
            "delivery_count",
            str(self.delivery_count),
            "reason",
            reason,
            "description",
            description,
            "source_id",
            self.entry_id,
        ]
        await self._receiver._run_owned(
            self, self._receiver._dead_letter_script, fields, dead_letter=True
        )


class RedisStreamReceiver(PullReceiver):
    """One consumer of the queue's consumer group (see the module docstring for the design)."""

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
        _check_client(redis)
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
        self._redis = redis
        self._owns_client = owns_client
        self._complete_script = redis.register_script(_COMPLETE)
        self._requeue_script = redis.register_script(_REQUEUE)
        self._dead_letter_script = redis.register_script(_DEAD_LETTER)
        self._renew_script = redis.register_script(_RENEW)
        self._reclaim_script = redis.register_script(_RECLAIM)
        self._prune_script = redis.register_script(_PRUNE)
        self._leave_script = redis.register_script(_LEAVE)
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
        receive_wait = float(options.get("receive_wait", 1.0))
        client = redis_client(url, socket_timeout=max(5.0, receive_wait + 5.0))
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
                await self._leave_script(keys=[self.stream], args=[self.group, self.consumer_name])
        except Exception:
            logger.debug("could not remove consumer %s", self.consumer_name, exc_info=True)

    def _track(self, message: ReceivedMessage) -> None:
        if isinstance(message, RedisStreamMessage):
            self._held[message.entry_id] = message

    def _untrack(self, message: ReceivedMessage) -> None:
        if isinstance(message, RedisStreamMessage):
            self._held.pop(message.entry_id, None)

    async def _fetch(self, max_count: int) -> Sequence[ReceivedMessage]:
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
            for entry_id, fields in _stream_entries(reply)
        ]
        return await self._admit(candidates)

    # -- internals ---------------------------------------------------------------------------------

    async def _reclaim(self, count: int) -> list[ReceivedMessage]:
        try:
            cursor, rows = await self._reclaim_script(
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
        self._reclaim_cursor = _text(cursor)
        candidates = [
            RedisStreamMessage(self, _text(entry_id), _pairs(fields), int(times))
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
            removed = await self._prune_script(
                keys=[self.stream],
                args=[self.group, int(self._prune_interval * 1000), self.consumer_name],
            )
        except ResponseError:
            logger.debug("could not prune idle consumers", exc_info=True)
            return
        if removed:
            logger.info("removed %s idle consumers from group %s", removed, self.group)

    async def _run_owned(
        self,
        message: RedisStreamMessage,
        script: Any,
        extra: Sequence[bytes | str] = (),
        *,
        dead_letter: bool = False,
    ) -> None:
        keys = [self.stream, self.dead_letter_stream] if dead_letter else [self.stream]
        args = [self.group, message.entry_id, self.consumer_name, message.lock_token, *extra]
        result = await script(keys=keys, args=args)
        if not result:
            raise MessageLockLostError(
                f"message {message.message_id} ({message.entry_id}) is no longer locked by"
                f" {self.consumer_name}"
            )

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
                lost = await self._renew_script(keys=[self.stream], args=args)
            except Exception:
                logger.warning(
                    "renewing message locks on %s failed", self.queue_name, exc_info=True
                )
                continue
            for entry_id in lost or []:
                lost_message = self._held.get(_text(entry_id))
                if lost_message is not None and not lost_message.settled:
                    lost_message._mark_lock_lost()
                    logger.warning(
                        "lost the lock on message %s (%s); another receiver may take it",
                        lost_message.message_id,
                        lost_message.entry_id,
                    )


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
        _check_client(redis)
        self.queue_name = queue_name
        self.stream = stream_key(queue_name)
        self.dead_letter_stream = dead_letter_key(queue_name)
        self.readiness_timeout = readiness_timeout
        self._redis = redis
        self._owns_client = owns_client
        self._replay_script = redis.register_script(_REPLAY)

    @classmethod
    def from_url(cls, url: str, queue_name: str, *, readiness_timeout: float = 2.0) -> Self:
        return cls(
            redis_client(url), queue_name, readiness_timeout=readiness_timeout, owns_client=True
        )

    async def list(self, limit: int = 100) -> list[DeadLetter]:
        entries = await self._redis.xrange(self.dead_letter_stream, "-", "+", count=max(1, limit))
        return [_dead_letter(_text(entry_id), _pairs(fields)) for entry_id, fields in entries or []]

    async def replay(self, ids: Sequence[str]) -> builtins.list[str]:
        valid = [i for i in dict.fromkeys(ids) if _ENTRY_ID.match(i)]
        if not valid:
            return []
        replayed = await self._replay_script(
            keys=[self.dead_letter_stream, self.stream], args=valid
        )
        return [_text(entry_id) for entry_id in replayed or []]

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


def _dead_letter(entry_id: str, fields: dict[str, bytes]) -> DeadLetter:
    enqueued = _int(fields.get("enqueued_at"))
    content_type = fields.get("content_type")
    return DeadLetter(
        id=entry_id,
        message_id=_text(fields.get("message_id", b"")),
        body=fields.get("body", b""),
        content_type=_text(content_type) if content_type is not None else None,
        properties=_properties(fields.get("properties"), entry_id),
        reason=_text(fields.get("reason", b"")),
        description=_text(fields.get("description", b"")),
        delivery_count=_int(fields.get("delivery_count")),
        enqueued_at=datetime.fromtimestamp(enqueued / 1000, tz=UTC) if enqueued else None,
        dead_lettered_at=_entry_time(entry_id),
    )
