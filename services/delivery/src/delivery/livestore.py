"""The telemetry consumer's Redis commands: batched reads and compare-and-set writes.

Per batch of fixes, one pipeline reads what the consumer needs of each delivery (``live_read``:
its revision, stored stage, tracking state and version, and the state JSON only when the revision
differs from the one the caller has cached) and keeps each drone's latest fix (``drone_fix``:
an older ``seq`` is dropped); a second pipeline writes each delivery's update (``live_apply``)
only if neither its revision nor its tracking version moved since the read, appending the trail,
the history entries, the stage entry and the delivery events and announcing the change on the
delivery's channel, all in one step.

Keys besides the delivery's own (see :mod:`delivery.repository`): ``<p>:{<id>}:trail`` (list, the
delivery's latest fixes as JSON, newest first, at most ``DELIVERY_LIVE__TRAIL_LENGTH``) and
``<p>:drone:<droneId>`` (hash: ``seq`` and ``fix``, the drone's latest fix, expiring
``DELIVERY_LIVE__DRONE_FIX_TTL`` after its last report).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from dronecommon.events import DeliveryEvent, encode
from dronecommon.fixes import Fix, encode_fix

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
        self._drone = redis.register_script(source("drone_fix.lua"))

    def drone_key(self, drone_id: str) -> str:
        return f"{self.keys.prefix}:drone:{drone_id}"

    async def read(
        self, wanted: Sequence[tuple[str, str]], drones: Sequence[Fix] = ()
    ) -> list[LiveRead | None]:
        """For each ``(delivery id, cached rev)``: what the consumer needs (None: no delivery);
        and, in the same round trip, keep the latest fix of each drone in ``drones``."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for delivery_id, rev in wanted:
                await self._read(
                    keys=[self.keys.delivery_key(delivery_id)], args=[rev], client=pipe
                )
            for fix in drones:
                await self._drone(
                    keys=[self.drone_key(fix.drone_id)],
                    args=[fix.seq, encode_fix(fix), self.drone_fix_ttl],
                    client=pipe,
                )
            replies: list[Any] = await pipe.execute()
        return [None if reply is None else LiveRead(*reply) for reply in replies[: len(wanted)]]

    async def apply(self, writes: Sequence[LiveWrite]) -> list[str]:
        """Write each update if its delivery is as read; per write ``APPLIED``, ``CONFLICT`` (read
        again), ``MISSING`` or ``CLOSED`` (Completed or Cancelled meanwhile)."""
        if not writes:
            return []
        keys = self.keys
        async with self.redis.pipeline(transaction=False) as pipe:
            for write in writes:
                delivery_id = write.delivery_id
                args: list[Any] = [
                    write.rev,
                    write.lver,
                    write.live,
                    self.trail_length,
                    keys.stages_maxlen,
                    keys.events_maxlen,
                    keys.channel(delivery_id),
                    len(write.trail),
                    len(write.history),
                    0 if write.stage is None else 1,
                    len(write.events),
                ]
                args += [encode_fix(fix) for fix in write.trail]
                args += [event.dumps() for event in write.history]
                if write.stage is not None:
                    args += write.stage
                for event in write.events:
                    args += encode(event)
                await self._apply(
                    keys=[
                        keys.delivery_key(delivery_id),
                        keys.history_key(delivery_id),
                        keys.trail_key(delivery_id),
                        keys.stages_key(delivery_id),
                        keys.events_key,
                    ],
                    args=args,
                    client=pipe,
                )
            replies: list[Any] = await pipe.execute()
        return [_outcome(int(reply)) for reply in replies]

    async def drone_fix(self, drone_id: str) -> str | None:
        """A drone's latest fix (JSON), if it reported within the TTL."""
        raw: Any = await self.redis.hget(self.drone_key(drone_id), "fix")
        return None if raw is None else str(raw)


def _outcome(code: int) -> str:
    if code > 0:
        return APPLIED
    return {0: CONFLICT, -1: MISSING}.get(code, CLOSED)
