"""Every Redis command of the simulator's own state (``<p>`` is ``SIMULATOR_KEY_PREFIX``).

- ``<p>:flights`` — hash: drone id → the drone's flight (JSON, :func:`simulator.flights.dumps`).
  Written whenever a flight changes (an event, a phase that triggers work, work done), deleted
  when the drone is home with nothing left to do. Positions are never stored: they follow from
  the route.
- ``<p>:finished`` — sorted set: ids of deliveries whose flight ended, score = when (ms);
  entries older than ``SIMULATOR_FINISHED_TTL`` are dropped. A late or replayed ``Assigned`` for
  one of them is not flown again.
- ``<p>:leader`` — string: the id of the process flying the fleet, with a TTL (the lease).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from redis.asyncio import Redis

# KEYS: lease. ARGV: holder, ttl ms. 1 when the holder has (or renewed) the lease.
_HOLD = """
local current = redis.call('GET', KEYS[1])
if current == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
"""

# KEYS: lease. ARGV: holder.
_LEAVE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class FlightStore:
    def __init__(
        self, redis: Redis, *, prefix: str = "simulator", finished_ttl: float = 86400
    ) -> None:
        self.redis = redis
        self.flights_key = f"{prefix}:flights"
        self.finished_key = f"{prefix}:finished"
        self.leader_key = f"{prefix}:leader"
        self.finished_ttl = finished_ttl
        self._hold = redis.register_script(_HOLD)
        self._leave = redis.register_script(_LEAVE)

    async def load(self) -> dict[str, bytes]:
        raw: Any = await self.redis.hgetall(self.flights_key)
        return {_text(k): v if isinstance(v, bytes) else str(v).encode() for k, v in raw.items()}

    async def save(
        self, changed: Mapping[str, bytes], removed: Iterable[str], finished: Iterable[str]
    ) -> None:
        """Write changed flights, delete landed ones and remember finished deliveries, at once."""
        removed = list(removed)
        finished = list(finished)
        async with self.redis.pipeline(transaction=True) as pipe:
            if changed:
                pipe.hset(self.flights_key, mapping=dict[Any, Any](changed))
            if removed:
                pipe.hdel(self.flights_key, *removed)
            if finished:
                now_ms = int(time.time() * 1000)
                pipe.zadd(self.finished_key, dict.fromkeys(finished, now_ms))
                pipe.zremrangebyscore(self.finished_key, 0, now_ms - int(self.finished_ttl * 1000))
            await pipe.execute()

    async def finished(self, delivery_ids: Iterable[str]) -> set[str]:
        ids = list(delivery_ids)
        if not ids:
            return set()
        scores = await self.redis.zmscore(self.finished_key, ids)
        return {i for i, score in zip(ids, scores, strict=True) if score is not None}

    async def hold_lease(self, holder: str, ttl: float) -> bool:
        result: Any = await self._hold(keys=[self.leader_key], args=[holder, int(ttl * 1000)])
        return int(result) == 1

    async def leave_lease(self, holder: str) -> None:
        await self._leave(keys=[self.leader_key], args=[holder])

    async def ping(self) -> None:
        await self.redis.ping()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
