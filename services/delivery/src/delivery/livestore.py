"""The telemetry consumer's Redis commands: one read and one write per batch of fixes.

``live_read`` reads what the consumer needs of every delivery of a batch (its revision, stored
stage, tracking state and version, and the state JSON only when the revision differs from the one
the caller has cached) and keeps each drone's latest fix (an older ``seq`` is dropped);
``live_apply`` writes each delivery's update only if neither its revision nor its tracking version
moved since the read, appending the trail, the history entries, the stage entry and the delivery
events and announcing the change on the delivery's channel. One script call per batch rather than
one per delivery: the client's cost is per command (a pipeline of one script per delivery cost
the consumer about twice the CPU).

Keys besides the delivery's own (see :mod:`delivery.repository`): ``<p>:{<id>}:trail`` (list, the
delivery's latest fixes as JSON in the telemetry wire format, newest first, at most
``DELIVERY_LIVE__TRAIL_LENGTH``) and ``<p>:drone:<droneId>`` (hash: ``seq`` and ``fix``, the
drone's latest fix, expiring between one and one and a half ``DELIVERY_LIVE__DRONE_FIX_TTL``
after its last report: its expiry is set only once less than one TTL is left). The
scripts span many hash slots, like the events outbox: on a clustered Redis they need a database
that runs cross-slot scripts within one shard.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from dronecommon.domain import format_utc
from dronecommon.events import DeliveryEvent, encode
from dronecommon.fixes import Fix

from .records import StoredEvent
from .repository import DeliveryRepository
from .scripts import source

APPLIED, CONFLICT, MISSING, CLOSED = "applied", "conflict", "missing", "closed"


@dataclass(frozen=True, slots=True)
class LiveRead:
    rev: str
    stage: str
    live: str | None
    lver: str
    state: str | None  # only when the rev differs from the one asked with


@dataclass(frozen=True, slots=True)
class LiveWrite:
    delivery_id: str
    rev: str
    lver: str
    live: bytes
    trail: Sequence[Fix]
    history: Sequence[StoredEvent]
    stage: tuple[str, str] | None  # (stage, status JSON)
    events: Sequence[DeliveryEvent]


class LiveStore:
    def __init__(
        self,
        redis: Redis,
        deliveries: DeliveryRepository,
        *,
        trail_length: int,
        drone_fix_ttl: int,
    ) -> None:
        self.redis = redis
        self.keys = deliveries
        self.trail_length = trail_length
        self.drone_fix_ttl = drone_fix_ttl
        self._read = redis.register_script(source("live_read.lua"))
        self._apply = redis.register_script(source("live_apply.lua"))

    def drone_key(self, drone_id: str) -> str:
        return f"{self.keys.prefix}:drone:{drone_id}"

    async def read(
        self, wanted: Sequence[tuple[str, str]], drones: Sequence[Fix] = ()
    ) -> list[LiveRead | None]:
        """For each ``(delivery id, cached rev)``: what the consumer needs (None: no delivery);
        and, in the same call, keep the latest fix of each drone in ``drones``."""
        if not wanted and not drones:
            return []
        keys = [self.keys.delivery_key(delivery_id) for delivery_id, _ in wanted]
        keys += [self.drone_key(fix.drone_id) for fix in drones]
        args: list[Any] = [len(wanted), self.drone_fix_ttl]
        args += [rev for _, rev in wanted]
        wire = _Wire()
        for fix in drones:
            args += [fix.seq, wire.encode(fix)]
        replies: Any = await self._read(keys=keys, args=args)
        return [None if reply is None else LiveRead(*reply) for reply in replies]

    async def apply(self, writes: Sequence[LiveWrite]) -> list[str]:
        """Write each update if its delivery is as read; per write ``APPLIED``, ``CONFLICT`` (read
        again), ``MISSING`` or ``CLOSED`` (Completed or Cancelled meanwhile)."""
        if not writes:
            return []
        names = self.keys
        keys: list[str] = []
        args: list[Any] = [
            len(writes),
            self.trail_length,
            names.stages_maxlen,
            names.events_maxlen,
        ]
        wire = _Wire()
        for write in writes:
            delivery_id = write.delivery_id
            keys += [
                names.delivery_key(delivery_id),
                names.history_key(delivery_id),
                names.trail_key(delivery_id),
                names.stages_key(delivery_id),
            ]
            args += [
                write.rev,
                write.lver,
                write.live,
                names.channel(delivery_id),
                len(write.trail),
                len(write.history),
                0 if write.stage is None else 1,
                len(write.events),
            ]
            args += [wire.encode(fix) for fix in write.trail]
            args += [event.dumps() for event in write.history]
            if write.stage is not None:
                args += write.stage
            for event in write.events:
                args += encode(event)
        keys.append(names.events_key)
        replies: Any = await self._apply(keys=keys, args=args)
        return [_outcome(int(reply)) for reply in replies]

    async def drone_fix(self, drone_id: str) -> str | None:
        """A drone's latest fix (JSON), if it reported within the TTL."""
        raw: Any = await self.redis.hget(self.drone_key(drone_id), "fix")
        return None if raw is None else str(raw)


class _Wire:
    """Fixes in the telemetry wire format; a time shared by several fixes (one tick of the fleet)
    is formatted once."""

    def __init__(self) -> None:
        self._times: dict[dt.datetime, str] = {}

    def encode(self, fix: Fix) -> bytes:
        at = self._times.get(fix.at)
        if at is None:
            at = self._times[fix.at] = format_utc(fix.at)
        return orjson.dumps(fix.wire(at))


def _outcome(code: int) -> str:
    if code > 0:
        return APPLIED
    return {0: CONFLICT, -1: MISSING}.get(code, CLOSED)
