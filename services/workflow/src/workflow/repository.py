"""The pending store: reschedules and cancels recorded before they are applied (Redis).

Key layout, one hash per delivery that was ever rescheduled or cancelled::

    workflow:pending:{deliveryId}     hash, expires pending_ttl after its last write
        version                       incremented by every write (the apply loop's change mark)
        cancel                        "1" once a cancel was recorded
        pickupLocation, dropOffLocation, pickupTime, deadline
                                      the latest value of each rescheduled field
        at:<field>                    enqueue time (ms) of the message that set <field>

Writes go through one Lua script, so a record is atomic and a field only moves forward in
message time: a reschedule that overtakes a newer one in the queue cannot undo it.

A change of places the drone scheduler refused is *forgotten* (:meth:`PendingStore.forget`):
its values go, unless a newer message set them meanwhile, and their ``at:`` times stay, so an
older message arriving late cannot bring back a place the refused change superseded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from redis.asyncio import Redis

KEY_PREFIX = "workflow:pending:"
RESCHEDULE_FIELDS = ("pickupLocation", "dropOffLocation", "pickupTime", "deadline")

# KEYS: the hash. ARGV: ttl ms, message time ms, field, value, field, value...
_RECORD = """
local at = tonumber(ARGV[2])
for i = 3, #ARGV, 2 do
  local f = ARGV[i]
  local prev = redis.call('HGET', KEYS[1], 'at:' .. f)
  if (not prev) or tonumber(prev) <= at then
    redis.call('HSET', KEYS[1], f, ARGV[i + 1], 'at:' .. f, ARGV[2])
  end
end
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return version
"""


# KEYS: the hash. ARGV: field, message time ms, field, message time ms...
_FORGET = """
for i = 1, #ARGV, 2 do
  if redis.call('HGET', KEYS[1], 'at:' .. ARGV[i]) == ARGV[i + 1] then
    redis.call('HDEL', KEYS[1], ARGV[i])
  end
end
return 1
"""


def pending_key(delivery_id: str) -> str:
    return KEY_PREFIX + delivery_id


@dataclass(frozen=True, slots=True)
class Pending:
    """What has been recorded for one delivery (nothing: version 0)."""

    version: int = 0
    cancelled: bool = False
    reschedule: dict[str, str] = field(default_factory=dict)
    # The enqueue time (ms) of the message that set each field of ``reschedule``.
    times: dict[str, int] = field(default_factory=dict)


class PendingStore:
    """Record and read pending reschedules/cancels (see the module docstring)."""

    def __init__(self, redis: Redis, *, ttl: float) -> None:
        self._redis = redis
        self._ttl_ms = max(1, int(ttl * 1000))
        self._record = redis.register_script(_RECORD)
        self._forget = redis.register_script(_FORGET)

    async def record_cancel(self, delivery_id: str, at_ms: int) -> int:
        return await self._write(delivery_id, at_ms, {"cancel": "1"})

    async def record_reschedule(self, delivery_id: str, at_ms: int, changes: dict[str, str]) -> int:
        return await self._write(delivery_id, at_ms, changes)

    async def _write(self, delivery_id: str, at_ms: int, values: dict[str, str]) -> int:
        args: list[Any] = [self._ttl_ms, at_ms]
        for name, value in values.items():
            args += [name, value]
        return int(await self._record(keys=[pending_key(delivery_id)], args=args))

    async def read(self, delivery_id: str) -> Pending:
        raw = await self._redis.hgetall(pending_key(delivery_id))
        if not raw:
            return Pending()
        values = {_text(k): _text(v) for k, v in raw.items()}
        return Pending(
            version=int(values.get("version", "0")),
            cancelled=values.get("cancel") == "1",
            reschedule={name: values[name] for name in RESCHEDULE_FIELDS if name in values},
            times={
                name: int(values["at:" + name])
                for name in RESCHEDULE_FIELDS
                if name in values and "at:" + name in values
            },
        )

    async def forget(self, delivery_id: str, times: dict[str, int]) -> None:
        """Drop the recorded values of ``times``' fields still set by the message of that time
        (a refused change; see the module docstring)."""
        args: list[Any] = []
        for name, at_ms in times.items():
            args += [name, str(at_ms)]
        if args:
            await self._forget(keys=[pending_key(delivery_id)], args=args)

    async def ping(self) -> None:
        await self._redis.ping()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
