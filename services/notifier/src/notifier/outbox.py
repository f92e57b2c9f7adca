"""Every Redis command of the notifier (``<p>`` is ``NOTIFIER_KEY_PREFIX``, default ``notifier``).

All outbox keys share the hash tag ``{outbox}``, so every script runs in one cluster slot:

- ``<p>:{outbox}:item:<id>`` — hash: one notification (:class:`~notifier.records.Item`).
  Created once (``enqueue.lua``: nothing is written when it exists — the dedupe record); expires
  ``retention_seconds`` after it is created and again after it is sent or failed.
- ``<p>:{outbox}:due`` — sorted set: ids of pending items, score = when the next attempt is due
  (ms).
- ``<p>:{outbox}:leased`` — sorted set: ids of items a sender holds, score = when its lease ends.
  ``claim.lua`` moves due items here (``status`` sending, ``holder`` = sender id + claim count, a
  fencing token) and moves items whose lease ran out back to ``due``; ``settle.lua`` ends a claim
  (sent, retry at a time, failed, or handed back) only for the holder.
- ``<p>:{outbox}:delivery:<deliveryId>`` — sorted set: the delivery's item ids by creation time
  (what ``GET /api/notifications`` lists).
- ``<p>:{outbox}:eta:<deliveryId>`` — hash: the delivery's latest ETAs from its events
  (``eta.lua``).
- ``<p>:{outbox}:sms`` — list: the local SMS sink, newest first (``sink.lua``), with
  ``<p>:{outbox}:sms:seen:<messageId>`` markers so a message is pushed once.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from importlib import resources
from typing import Any

from redis.asyncio import Redis

from .records import Item, NewItem


def _script(name: str) -> str:
    return resources.files("notifier").joinpath("lua", name).read_text()


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _pairs(flat: Sequence[Any]) -> dict[str, str]:
    values = [_text(v) for v in flat]
    return dict(zip(values[0::2], values[1::2], strict=True))


def to_ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


class Outbox:
    def __init__(
        self, redis: Redis, *, prefix: str = "notifier", retention_seconds: int = 7 * 86400
    ) -> None:
        self.redis = redis
        self.base = f"{prefix}:{{outbox}}"
        self.retention = retention_seconds
        self.due_key = f"{self.base}:due"
        self.leased_key = f"{self.base}:leased"
        self.sms_key = f"{self.base}:sms"
        self._enqueue = redis.register_script(_script("enqueue.lua"))
        self._claim = redis.register_script(_script("claim.lua"))
        self._settle = redis.register_script(_script("settle.lua"))
        self._sink = redis.register_script(_script("sink.lua"))
        self._eta = redis.register_script(_script("eta.lua"))

    def item_key(self, item_id: str) -> str:
        return f"{self.base}:item:{item_id}"

    def delivery_key(self, delivery_id: str) -> str:
        return f"{self.base}:delivery:{delivery_id}"

    def eta_key(self, delivery_id: str) -> str:
        return f"{self.base}:eta:{delivery_id}"

    # --- writing the outbox ------------------------------------------------------------------

    async def enqueue(self, items: Iterable[NewItem], now: dt.datetime) -> int:
        """Enqueue each item unless it exists; how many were new. All or an error: a partial
        failure raises, and a repeat enqueues only what is still missing."""
        now_ms = to_ms(now)
        async with self.redis.pipeline(transaction=False) as pipe:
            count = 0
            for item in items:
                fields = [part for pair in item.fields(now_ms).items() for part in pair]
                await self._enqueue(
                    keys=[
                        self.item_key(item.id),
                        self.due_key,
                        self.delivery_key(item.delivery_id),
                    ],
                    args=[item.id, now_ms, self.retention, *fields],
                    client=pipe,
                )
                count += 1
            if not count:
                return 0
            results = await pipe.execute()
        return sum(int(r) for r in results)

    async def remember_etas(
        self, delivery_id: str, at: dt.datetime, etas: Mapping[str, str]
    ) -> dict[str, str]:
        """Keep the newest event's ETAs (``pickupETA``, ``deliveryETA``); the memo after it."""
        pairs = [part for pair in etas.items() for part in pair]
        reply: Any = await self._eta(
            keys=[self.eta_key(delivery_id)], args=[to_ms(at), *pairs, self.retention]
        )
        return _pairs(reply)

    async def etas(self, delivery_id: str) -> dict[str, str]:
        raw: Any = await self.redis.hgetall(self.eta_key(delivery_id))
        return {_text(k): _text(v) for k, v in raw.items()}

    # --- senders -----------------------------------------------------------------------------

    async def claim(self, count: int, sender: str, now: dt.datetime, lease: float) -> list[Item]:
        reply: Any = await self._claim(
            keys=[self.due_key, self.leased_key],
            args=[to_ms(now), int(lease * 1000), sender, count, f"{self.base}:item:"],
        )
        return [Item.from_fields(_pairs(flat)) for flat in reply or []]

    async def settle(
        self,
        item: Item,
        outcome: str,
        now: dt.datetime,
        *,
        due: dt.datetime | None = None,
        note: str = "",
    ) -> bool:
        """``sent`` (note: the provider's reference), ``retry`` at ``due`` (note: the error),
        ``failed`` (note: why) or ``back`` (handed back unsent). False when the caller's claim
        was taken over (its lease ran out)."""
        assert item.holder is not None, "only a claimed item can be settled"
        result: Any = await self._settle(
            keys=[self.item_key(item.id), self.leased_key, self.due_key],
            args=[
                item.holder,
                item.id,
                outcome,
                to_ms(now),
                to_ms(due or now),
                self.retention,
                note[:1000],
            ],
        )
        return int(result) == 1

    # --- reading -----------------------------------------------------------------------------

    async def for_delivery(self, delivery_id: str) -> list[Item]:
        ids: list[Any] = await self.redis.zrange(self.delivery_key(delivery_id), 0, -1)
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for raw_id in ids:
                pipe.hgetall(self.item_key(_text(raw_id)))
            replies = await pipe.execute()
        return [
            Item.from_fields({_text(k): _text(v) for k, v in reply.items()})
            for reply in replies
            if reply
        ]

    async def get(self, item_id: str) -> Item | None:
        raw: Any = await self.redis.hgetall(self.item_key(item_id))
        return Item.from_fields({_text(k): _text(v) for k, v in raw.items()}) if raw else None

    async def counts(self) -> dict[str, int]:
        """Items waiting (due now or later) and held by senders."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zcard(self.due_key)
            pipe.zcard(self.leased_key)
            due, leased = await pipe.execute()
        return {"pending": int(due), "sending": int(leased)}

    # --- the local SMS sink ------------------------------------------------------------------

    async def sink_sms(self, message: Mapping[str, Any], message_id: str, keep: int) -> bool:
        """Push ``message`` once per ``message_id``; True when pushed now."""
        result: Any = await self._sink(
            keys=[self.sms_key, f"{self.sms_key}:seen:{message_id}"],
            args=[json.dumps(message, separators=(",", ":")), keep, self.retention],
        )
        return int(result) == 1

    async def sms_messages(self, to: str | None, limit: int) -> list[dict[str, Any]]:
        raw: list[Any] = await self.redis.lrange(self.sms_key, 0, -1)
        messages = [json.loads(_text(entry)) for entry in raw]
        if to is not None:
            messages = [m for m in messages if m.get("to") == to]
        return messages[:limit]

    async def ping(self) -> None:
        await self.redis.ping()
