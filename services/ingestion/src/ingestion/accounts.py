"""Every Redis query about accounts: who owns each delivery, and each account's limits.

Layout (ingestion's Redis):

- ``ingestion:owner:<deliveryId>`` — hash ``userId``, ``accountId``: the delivery's owner as
  accepted, kept ``INGESTION_OWNERSHIP_TTL`` (a reschedule or cancel is checked against it);
- ``ingestion:account:{<accountId>}:rate`` — the account's GCRA theoretical arrival time (ms,
  Redis server time), expiring when it has passed;
- ``ingestion:account:{<accountId>}:active`` — sorted set of the account's deliveries in
  progress, scored by when each stops counting (acceptance + ``in_progress_seconds``): a
  delivery leaves it when it ends (Completed or Cancelled, from the delivery events) or when
  its score passes, so no delivery is counted forever; the set expires with its last member.

The two keys of an account share a hash slot (``{<accountId>}``), so the admission script
(``lua/admit.lua``: the rate, then the cap, then the count, in one step) is valid on a clustered
Redis and every replica sees the same limits.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any, Literal

from redis.asyncio import Redis

from .settings import LimitSettings

OWNER_PREFIX = "ingestion:owner:"
OWNER_FIELDS = ("userId", "accountId")


@dataclass(frozen=True, slots=True)
class Owner:
    """Who owns a delivery: a user of an account."""

    user_id: str
    account_id: str


@dataclass(frozen=True, slots=True)
class Verdict:
    """What admission decided: ``ok``, ``rate`` (wait ``wait_seconds``) or ``busy`` (``count``
    deliveries in progress already)."""

    state: Literal["ok", "rate", "busy"]
    wait_seconds: int = 0
    count: int = 0


@cache
def _lua(name: str) -> str:
    return (files(__package__ or "ingestion") / "lua" / f"{name}.lua").read_text(encoding="utf-8")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def rate_key(account_id: str) -> str:
    return f"ingestion:account:{{{account_id}}}:rate"


def active_key(account_id: str) -> str:
    return f"ingestion:account:{{{account_id}}}:active"


class AccountStore:
    """Owners and per-account limits (see the module docstring)."""

    def __init__(self, redis: Redis, *, limits: LimitSettings, ownership_ttl: float) -> None:
        self._redis = redis
        self._limits = limits
        self._ownership_ttl_ms = int(ownership_ttl * 1000)
        self._admit = redis.register_script(_lua("admit"))

    async def admit(self, owner: Owner, delivery_id: str) -> Verdict:
        """Count ``delivery_id`` against its account's rate and cap, if both allow it."""
        limits = self._limits
        interval_ms = max(1, round(60_000 / limits.requests_per_minute))
        state, value = await self._admit(
            keys=[rate_key(owner.account_id), active_key(owner.account_id)],
            args=[
                delivery_id,
                interval_ms,
                limits.burst,
                limits.max_in_progress,
                int(limits.in_progress_seconds * 1000),
            ],
        )
        verdict = _text(state)
        if verdict == "rate":
            return Verdict("rate", wait_seconds=max(1, math.ceil(int(value) / 1000)))
        if verdict == "busy":
            return Verdict("busy", count=int(value))
        return Verdict("ok")

    async def ended(self, account_id: str, delivery_id: str) -> bool:
        """``delivery_id`` no longer counts as in progress (True if it did)."""
        return bool(await self._redis.zrem(active_key(account_id), delivery_id))

    async def all_ended(self, owners: Mapping[str, Owner]) -> int:
        """Each delivery of ``owners`` no longer counts (one round trip); how many did."""
        if not owners:
            return 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for delivery_id, owner in owners.items():
                pipe.zrem(active_key(owner.account_id), delivery_id)
            return sum(int(removed) for removed in await pipe.execute())

    async def in_progress(self, account_id: str) -> int:
        """How many of the account's deliveries count as in progress now (for operators)."""
        key = active_key(account_id)
        seconds, micros = await self._redis.time()
        await self._redis.zremrangebyscore(key, "-inf", seconds * 1000 + micros // 1000)
        return int(await self._redis.zcard(key))

    async def record_owner(self, delivery_id: str, owner: Owner) -> None:
        key = OWNER_PREFIX + delivery_id
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(key, mapping={"userId": owner.user_id, "accountId": owner.account_id})
            pipe.pexpire(key, self._ownership_ttl_ms)
            await pipe.execute()

    async def owner_of(self, delivery_id: str) -> Owner | None:
        return _owner(await self._redis.hmget(OWNER_PREFIX + delivery_id, OWNER_FIELDS))

    async def owners_of(self, delivery_ids: Iterable[str]) -> dict[str, Owner]:
        """The recorded owner of each delivery that has one (one round trip)."""
        ids = list(dict.fromkeys(delivery_ids))
        if not ids:
            return {}
        async with self._redis.pipeline(transaction=False) as pipe:
            for delivery_id in ids:
                pipe.hmget(OWNER_PREFIX + delivery_id, OWNER_FIELDS)
            found = await pipe.execute()
        owners = {key: _owner(fields) for key, fields in zip(ids, found, strict=True)}
        return {key: owner for key, owner in owners.items() if owner is not None}


def _owner(fields: Sequence[Any]) -> Owner | None:
    """An owner from its hash's ``OWNER_FIELDS`` (None unless both are there)."""
    user, account = fields
    if user is None or account is None:
        return None
    return Owner(user_id=_text(user), account_id=_text(account))
