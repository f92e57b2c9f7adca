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
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from dronecommon.events import DEFAULT_MAXLEN, DeliveryEvent, encode, events_stream

from .live import Live
from .records import DeliveryRecord, StoredEvent
from .scripts import source

DEFAULT_STAGES_MAXLEN = 100


@dataclass(frozen=True, slots=True)
class StageEntry:
    """A stage entry to append with a write: the stage and the status at that moment (the
    owner's JSON). ``if_changed``: only if the newest entry has another stage."""

    stage: str
    status: str
    if_changed: bool = False


@dataclass(frozen=True, slots=True)
class StageRecord:
    """A stage entry as read back: its id, the status JSON, and the tracking version then."""

    id: str
    stage: str
    status: str
    lver: int


class WriteOutcome(enum.Enum):
    WRITTEN = "written"
    STALE = "stale"  # another write got there first: re-read and decide again
    MISSING = "missing"


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A delivery as read, with the revision a conditional write must match, its tracking state
    (``live``, version ``lver``) and the id of its newest stage entry (``sid``)."""

    record: DeliveryRecord
    rev: str
    live: Live | None = None
    lver: int = 0
    sid: str = "0-0"


class RecordCache:
    """Parsed records by delivery, kept with the JSON they were parsed from: reads that come
    often (the watched deliveries' above all) parse a state once per change. Bounded, least
    recently used out."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self._records: OrderedDict[str, tuple[str, DeliveryRecord]] = OrderedDict()

    def parse(self, delivery_id: str, state: str) -> DeliveryRecord:
        found = self._records.get(delivery_id)
        if found is not None and found[0] == state:
            self._records.move_to_end(delivery_id)
            return found[1]
        record = DeliveryRecord.model_validate_json(state)
        self._records[delivery_id] = (state, record)
        self._records.move_to_end(delivery_id)
        if len(self._records) > self.size:
            self._records.popitem(last=False)
        return record


class DeliveryRepository:
    def __init__(
        self,
        redis: Redis,
        *,
        prefix: str = "delivery",
        events_maxlen: int = DEFAULT_MAXLEN,
        stages_maxlen: int = DEFAULT_STAGES_MAXLEN,
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.events_maxlen = events_maxlen
        self.stages_maxlen = stages_maxlen
        self.events_key = events_stream(prefix)
        self.records = RecordCache()
        self._create = redis.register_script(source("create.lua"))
        self._write = redis.register_script(source("write.lua"))

    # --- keys ------------------------------------------------------------------------------

    def delivery_key(self, delivery_id: str) -> str:
        return f"{self.prefix}:{{{delivery_id}}}"

    def history_key(self, delivery_id: str) -> str:
        return f"{self.prefix}:{{{delivery_id}}}:history"

    def stages_key(self, delivery_id: str) -> str:
        return f"{self.prefix}:{{{delivery_id}}}:stages"

    def trail_key(self, delivery_id: str) -> str:
        return f"{self.prefix}:{{{delivery_id}}}:trail"

    def channel(self, delivery_id: str) -> str:
        """The pub/sub channel announcing every change of the delivery's status."""
        return f"{self.prefix}:tracking:{delivery_id}"

    def summary_key(self, owner_id: str, year: int, month: int) -> str:
        return f"{self.prefix}:summary:{owner_id}:{year:04d}-{month:02d}"

    def owned_key(self, owner_id: str) -> str:
        return f"{self.prefix}:owned:{owner_id}"

    def _outbox(self, outbox: DeliveryEvent | None) -> list[str]:
        return encode(outbox) if outbox is not None else []

    # --- deliveries ------------------------------------------------------------------------

    async def create(
        self,
        record: DeliveryRecord,
        put: str,
        event: StoredEvent,
        stage: StageEntry,
        outbox: DeliveryEvent | None = None,
    ) -> str | None:
        """Store a new delivery with its first stage entry (and append ``outbox``, if any, in
        the same step); None when created, else the existing delivery's ``put`` (and nothing is
        written)."""
        delivery_id = record.id
        created_ms = int(record.created_at.timestamp() * 1000)
        existing: Any = await self._create(
            keys=[
                self.delivery_key(delivery_id),
                self.history_key(delivery_id),
                self.events_key,
                self.stages_key(delivery_id),
                self.owned_key(record.owner.user_id),
            ],
            args=[
                put,
                record.dumps(),
                record.stage.value,
                event.dumps(),
                self.events_maxlen,
                self.stages_maxlen,
                self.channel(delivery_id),
                stage.stage,
                stage.status,
                created_ms,
                delivery_id,
                *self._outbox(outbox),
            ],
        )
        return None if existing is None else _text(existing)

    async def get(self, delivery_id: str) -> Snapshot | None:
        state, rev, live, lver, sid = await self.redis.hmget(
            self.delivery_key(delivery_id), ["state", "rev", "live", "lver", "sid"]
        )
        if state is None or rev is None:
            return None
        return Snapshot(
            self.records.parse(delivery_id, _text(state)),
            _text(rev),
            Live.parse(live),
            int(lver or 0),
            _text(sid) if sid else "0-0",
        )

    async def write(
        self,
        snapshot: Snapshot,
        record: DeliveryRecord,
        event: StoredEvent | None = None,
        *,
        ttl_seconds: int = 0,
        outbox: DeliveryEvent | None = None,
        stages: Sequence[StageEntry] = (),
        announce: bool = True,
    ) -> WriteOutcome:
        """Replace the delivery's state if nobody wrote since ``snapshot``, with its history
        event, its stage entries and its delivery event (``outbox``), all or nothing; announce
        the change on the delivery's channel unless ``announce`` is false."""
        delivery_id = record.id
        entries: list[str] = []
        for stage in stages:
            entries += [stage.stage, stage.status, "1" if stage.if_changed else "0"]
        result: Any = await self._write(
            keys=[
                self.delivery_key(delivery_id),
                self.history_key(delivery_id),
                self.events_key,
                self.stages_key(delivery_id),
                self.trail_key(delivery_id),
            ],
            args=[
                snapshot.rev,
                record.dumps(),
                record.stage.value,
                event.dumps() if event is not None else "",
                ttl_seconds,
                self.events_maxlen,
                self.stages_maxlen,
                self.channel(delivery_id) if announce else "",
                len(stages),
                *entries,
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

    async def stages_after(self, delivery_id: str, after: str) -> list[StageRecord]:
        """The stage entries newer than the entry id ``after``, oldest first."""
        reply: Any = await self.redis.xrange(self.stages_key(delivery_id), f"({after}", "+")
        out: list[StageRecord] = []
        for entry_id, fields in reply or []:
            out.append(
                StageRecord(
                    _text(entry_id),
                    _text(fields.get("stage", "")),
                    _text(fields.get("status", "")),
                    int(fields.get("lver") or 0),
                )
            )
        return out

    async def trail(self, delivery_id: str) -> list[str]:
        """The delivery's latest fixes (JSON), newest first."""
        raw: list[Any] = await self.redis.lrange(self.trail_key(delivery_id), 0, -1)
        return [_text(item) for item in raw]

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

    async def records_of(
        self, delivery_ids: list[str]
    ) -> list[tuple[DeliveryRecord, Live | None] | None]:
        """The records of ``delivery_ids`` with their tracking state, in one round trip (None:
        expired)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for delivery_id in delivery_ids:
                pipe.hmget(self.delivery_key(delivery_id), ["state", "live"])
            found: list[Any] = await pipe.execute()
        return [
            None
            if state is None
            else (self.records.parse(delivery_id, _text(state)), Live.parse(live))
            for delivery_id, (state, live) in zip(delivery_ids, found, strict=True)
        ]

    async def forget_owned(self, owner_id: str, delivery_ids: list[str]) -> None:
        """Drop expired deliveries from the owner's list."""
        if delivery_ids:
            await self.redis.zrem(self.owned_key(owner_id), *delivery_ids)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
