"""Every Redis command the service sends.

Key layout (``<p>`` is ``DELIVERY_KEY_PREFIX``, default ``delivery``):

- ``<p>:{<id>}`` — hash: ``put`` (the canonical JSON of the creating PUT, for replay checks),
  ``state`` (the :class:`~delivery.records.DeliveryRecord` JSON), ``stage`` (the stored stage, for
  operators) and ``rev`` (incremented by every write: the compare-and-set token).
- ``<p>:{<id>}:history`` — list of :class:`~delivery.records.StoredEvent` JSON, oldest first.
- ``<p>:summary:<ownerId>:<yyyy-mm>`` — sorted set of the ids of the deliveries that owner created
  in that UTC month (score: creation time in ms); the summary is its cardinality.
- ``<p>:owned:<ownerId>`` — sorted set of the ids of every delivery that owner created (score:
  creation time in ms), written by the creation script: the owner's list, newest first. Ids of
  deliveries that have expired are dropped when a read meets them.

The braces make a delivery's two keys one Redis Cluster hash slot, so the Lua scripts that write
both stay valid on Azure Managed Redis (OSS or Enterprise clustering) and Redis Cluster. Scripts
are atomic: creation is one script (exactly one creator wins), and every later write is a
compare-and-set script on ``rev`` that also appends its history event and, for terminal stages,
sets the TTL on both keys.

**Events.** The same scripts append the delivery event of the change (``Assigned``,
``Rescheduled``, ``Cancelled``, ``Completed``; see :mod:`dronecommon.events`) to the stream
``<p>:events``, trimmed to about ``DELIVERY_EVENTS_MAXLEN`` entries: no state change without its
event, no event without its change. A replay, a repeated cancel or confirmation writes nothing
and so appends nothing. The stream is a key of its own slot: on a clustered Redis the scripts
need a database that runs cross-slot scripts within one shard (a single-shard database does).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from dronecommon.events import DEFAULT_MAXLEN, LUA_APPEND, DeliveryEvent, encode, events_stream

from .records import DeliveryRecord, StoredEvent

# KEYS: hash, history, events stream, the owner's list. ARGV: put JSON, state JSON, stage, first
# history event JSON, creation time (ms), id, events maxlen, then the delivery event's fields
# (none: no event). Returns nil when it created the delivery, else the stored ``put``.
_CREATE = (
    LUA_APPEND
    + """
local existing = redis.call('HGET', KEYS[1], 'put')
if existing then
  return existing
end
redis.call('HSET', KEYS[1], 'put', ARGV[1], 'state', ARGV[2], 'stage', ARGV[3], 'rev', 1)
redis.call('DEL', KEYS[2])
redis.call('RPUSH', KEYS[2], ARGV[4])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[6])
if #ARGV > 7 then
  append_event(KEYS[3], ARGV[7], {unpack(ARGV, 8)})
end
return false
"""
)

# KEYS: hash, history, events stream. ARGV: expected rev, state JSON, stage, history event JSON
# ('' for none), TTL seconds (0 for none), events maxlen, then the delivery event's fields (none:
# no event). Returns the new rev, 0 when rev moved on, -1 when there is no delivery.
_WRITE = (
    LUA_APPEND
    + """
local rev = redis.call('HGET', KEYS[1], 'rev')
if not rev then
  return -1
end
if rev ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'stage', ARGV[3])
local next_rev = redis.call('HINCRBY', KEYS[1], 'rev', 1)
if ARGV[4] ~= '' then
  redis.call('RPUSH', KEYS[2], ARGV[4])
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('EXPIRE', KEYS[1], ttl)
  redis.call('EXPIRE', KEYS[2], ttl)
end
if #ARGV > 6 then
  append_event(KEYS[3], ARGV[6], {unpack(ARGV, 7)})
end
return next_rev
"""
)


class WriteOutcome(enum.Enum):
    WRITTEN = "written"
    STALE = "stale"  # another write got there first: re-read and decide again
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A delivery as read, with the revision a conditional write must match."""

    record: DeliveryRecord
    rev: str


class DeliveryRepository:
    def __init__(
        self, redis: Redis, *, prefix: str = "delivery", events_maxlen: int = DEFAULT_MAXLEN
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.events_maxlen = events_maxlen
        self.events_key = events_stream(prefix)
        self._create = redis.register_script(_CREATE)
        self._write = redis.register_script(_WRITE)

    # --- keys ------------------------------------------------------------------------------

    def delivery_key(self, delivery_id: str) -> str:
        return f"{self.prefix}:{{{delivery_id}}}"

    def history_key(self, delivery_id: str) -> str:
        return f"{self.prefix}:{{{delivery_id}}}:history"

    def summary_key(self, owner_id: str, year: int, month: int) -> str:
        return f"{self.prefix}:summary:{owner_id}:{year:04d}-{month:02d}"

    def owned_key(self, owner_id: str) -> str:
        return f"{self.prefix}:owned:{owner_id}"

    def _keys(self, delivery_id: str) -> list[str]:
        return [self.delivery_key(delivery_id), self.history_key(delivery_id), self.events_key]

    def _outbox(self, outbox: DeliveryEvent | None) -> list[str | int]:
        return [self.events_maxlen, *encode(outbox)] if outbox is not None else []

    # --- deliveries ------------------------------------------------------------------------

    async def create(
        self,
        record: DeliveryRecord,
        put: str,
        event: StoredEvent,
        outbox: DeliveryEvent | None = None,
    ) -> str | None:
        """Store a new delivery (and append ``outbox``, if any, in the same step); None when
        created, else the existing delivery's ``put`` (and nothing is written)."""
        created_ms = int(record.created_at.timestamp() * 1000)
        existing: Any = await self._create(
            keys=[*self._keys(record.id), self.owned_key(record.owner.user_id)],
            args=[
                put,
                record.dumps(),
                record.stage.value,
                event.dumps(),
                created_ms,
                record.id,
                *self._outbox(outbox),
            ],
        )
        return None if existing is None else _text(existing)

    async def get(self, delivery_id: str) -> Snapshot | None:
        state, rev = await self.redis.hmget(self.delivery_key(delivery_id), ["state", "rev"])
        if state is None or rev is None:
            return None
        return Snapshot(DeliveryRecord.model_validate_json(state), _text(rev))

    async def write(
        self,
        snapshot: Snapshot,
        record: DeliveryRecord,
        event: StoredEvent | None = None,
        *,
        ttl_seconds: int = 0,
        outbox: DeliveryEvent | None = None,
    ) -> WriteOutcome:
        """Replace the delivery's state if nobody wrote since ``snapshot``, with its history
        event and its delivery event (``outbox``), all or nothing."""
        result: Any = await self._write(
            keys=self._keys(record.id),
            args=[
                snapshot.rev,
                record.dumps(),
                record.stage.value,
                event.dumps() if event is not None else "",
                ttl_seconds,
                *self._outbox(outbox),
            ],
        )
        code = int(result)
        if code > 0:
            return WriteOutcome.WRITTEN
        return WriteOutcome.STALE if code == 0 else WriteOutcome.MISSING

    async def events(self, delivery_id: str) -> list[StoredEvent]:
        raw: list[Any] = await self.redis.lrange(self.history_key(delivery_id), 0, -1)
        return [StoredEvent.model_validate_json(item) for item in raw]

    # --- summaries -------------------------------------------------------------------------

    async def count_creation(
        self, owner_id: str, delivery_id: str, created_at: dt.datetime, expire_at: int | None
    ) -> None:
        """Record that ``owner_id`` created ``delivery_id`` (idempotent: a set member)."""
        utc = created_at.astimezone(dt.UTC)
        key = self.summary_key(owner_id, utc.year, utc.month)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(key, {delivery_id: int(utc.timestamp() * 1000)}, nx=True)
            if expire_at is not None:
                pipe.expireat(key, expire_at)
            await pipe.execute()

    async def count(self, owner_id: str, year: int, month: int) -> int:
        return int(await self.redis.zcard(self.summary_key(owner_id, year, month)))

    # --- the owner's list ------------------------------------------------------------------

    async def owned(
        self, owner_id: str, *, before: tuple[int, str] | None, count: int
    ) -> list[tuple[str, int]]:
        """Up to ``count`` of the owner's ``(id, created ms)``, newest first, after the cursor
        ``before`` (the last ``(created ms, id)`` a previous page ended with).

        Members of one score come in descending id order, so the cursor's id breaks ties.
        """
        key = self.owned_key(owner_id)
        top: float | str = "+inf" if before is None else before[0]
        found: list[tuple[str, int]] = []
        offset = 0
        while len(found) < count:
            page: Any = await self.redis.zrange(
                key,
                top,
                "-inf",
                desc=True,
                byscore=True,
                offset=offset,
                num=count + 16,
                withscores=True,
            )
            if not page:
                break
            offset += len(page)
            for member, score in page:
                delivery_id, created = _text(member), int(score)
                if before is not None and created == before[0] and delivery_id >= before[1]:
                    continue
                found.append((delivery_id, created))
        return found[:count]

    async def records_of(self, delivery_ids: list[str]) -> list[DeliveryRecord | None]:
        """The records of ``delivery_ids`` in one round trip (None: expired)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for delivery_id in delivery_ids:
                pipe.hget(self.delivery_key(delivery_id), "state")
            states: list[Any] = await pipe.execute()
        return [
            None if state is None else DeliveryRecord.model_validate_json(state) for state in states
        ]

    async def forget_owned(self, owner_id: str, delivery_ids: list[str]) -> None:
        """Drop expired deliveries from the owner's list."""
        if delivery_ids:
            await self.redis.zrem(self.owned_key(owner_id), *delivery_ids)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
