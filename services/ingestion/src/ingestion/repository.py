"""Every Redis query of the service: the ``Idempotency-Key`` records.

One hash per (caller, key), ``ingestion:idempotency:<sha256 hex of caller + "\\n" + key>``, kept
for the idempotency TTL (24 h by default) from its last change::

    state        pending | failed | done
    fingerprint  sha256 of the request's parsed JSON, canonicalised (sorted keys, no spaces)
    response     the normalised request (the 202 body and the message body), JSON
    token        the attempt that holds the key while it sends
    lease        until when (Redis server time, ms) that attempt holds it

A request *claims* the key (one Lua script, so concurrent requests cannot both win): a new key
becomes ``pending`` with the request's own normalised body; a ``failed`` key, or a ``pending`` one
whose lease ran out (its owner died), is taken over *keeping the stored body*, so a retry resends
exactly the same message (same deliveryId, same message id) and an ambiguous send (a timeout after
the broker took it) cannot turn into two deliveries. Only a ``done`` record answers a request by
itself, and it is written only after the queue took the message.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Literal

from redis.asyncio import Redis

KEY_PREFIX = "ingestion:idempotency:"

ClaimState = Literal["claimed", "pending", "done", "mismatch"]

# KEYS: record. ARGV: fingerprint, token, response, lease ms, ttl ms.
# Returns {state, stored response or ""}.
_CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = string.format('%d', now + tonumber(ARGV[4]))
local rec = redis.call('HMGET', KEYS[1], 'state', 'fingerprint', 'lease', 'response')
if not rec[1] then
  redis.call('HSET', KEYS[1], 'state', 'pending', 'fingerprint', ARGV[1], 'token', ARGV[2],
             'lease', lease, 'response', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  return {'claimed', ARGV[3]}
end
if rec[2] ~= ARGV[1] then return {'mismatch', ''} end
if rec[1] == 'done' then return {'done', rec[4]} end
if rec[1] == 'pending' and tonumber(rec[3]) > now then return {'pending', ''} end
redis.call('HSET', KEYS[1], 'state', 'pending', 'token', ARGV[2], 'lease', lease)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return {'claimed', rec[4]}
"""

# KEYS: record. ARGV: token, new state, ttl ms. Settles the attempt if it still holds the key.
_SETTLE = """
if redis.call('HGET', KEYS[1], 'token') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2])
redis.call('HDEL', KEYS[1], 'token', 'lease')
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""


def record_key(caller: str, idempotency_key: str) -> str:
    """The Redis key of ``idempotency_key`` as sent by ``caller``."""
    digest = hashlib.sha256(f"{caller}\n{idempotency_key}".encode()).hexdigest()
    return KEY_PREFIX + digest


@dataclass(frozen=True, slots=True)
class Claim:
    """What claiming a key found: ``response`` is the body to send (claimed) or answer (done)."""

    state: ClaimState
    response: bytes


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class IdempotencyStore:
    """The ``Idempotency-Key`` records (see the module docstring)."""

    def __init__(self, redis: Redis, *, ttl: float, lease: float) -> None:
        self._redis = redis
        self._ttl_ms = int(ttl * 1000)
        self._lease_ms = int(lease * 1000)
        self._claim = redis.register_script(_CLAIM)
        self._settle = redis.register_script(_SETTLE)

    async def claim(self, key: str, *, fingerprint: str, token: str, response: bytes) -> Claim:
        """Take ``key`` for the attempt ``token`` (with ``response`` if the key is new)."""
        state, stored = await self._claim(
            keys=[key], args=[fingerprint, token, response, self._lease_ms, self._ttl_ms]
        )
        stored_bytes = stored if isinstance(stored, bytes) else str(stored).encode()
        return Claim(state=_text(state), response=stored_bytes)  # type: ignore[arg-type]

    async def complete(self, key: str, token: str) -> bool:
        """The queue took the message: the record answers retries from now on."""
        return bool(await self._settle(keys=[key], args=[token, "done", self._ttl_ms]))

    async def fail(self, key: str, token: str) -> bool:
        """The send failed: a retry may take the key (and resend the same message)."""
        return bool(await self._settle(keys=[key], args=[token, "failed", self._ttl_ms]))
