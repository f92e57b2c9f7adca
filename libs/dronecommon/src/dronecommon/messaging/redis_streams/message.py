"""A message read from the stream, and how each settlement maps onto the stream.

* **Complete** removes the entry.
* **Abandon** replaces the entry by a copy at the back of the queue that carries the delivery
  count so far; at the maximum delivery count it dead-letters the message instead.
* **Release** (read at shutdown, never handled) re-queues the same way without counting this
  delivery.
* **Dead-letter** adds the message, its delivery count, reason, description and source entry id
  to the dead-letter stream and removes the entry.

Each runs as one script that first checks this receiver still holds the lock
(:meth:`~dronecommon.messaging.redis_streams.receiver.RedisStreamReceiver.run_owned`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dronecommon.messaging.base import MAX_DELIVERY_COUNT_EXCEEDED, ReceivedMessage
from dronecommon.messaging.redis_streams.layout import (
    MESSAGE_FIELDS,
    entry_time,
    integer,
    properties,
    text,
)

if TYPE_CHECKING:
    from dronecommon.messaging.redis_streams.receiver import RedisStreamReceiver


class RedisStreamMessage(ReceivedMessage):
    """A message read from a stream, locked to one consumer of the group."""

    def __init__(
        self,
        receiver: RedisStreamReceiver,
        entry_id: str,
        fields: dict[str, bytes],
        times_delivered: int,
    ) -> None:
        prior = integer(fields.get("deliveries"))
        enqueued_ms = integer(fields.get("enqueued_at"))
        enqueued_at = (
            datetime.fromtimestamp(enqueued_ms / 1000, tz=UTC)
            if enqueued_ms
            else entry_time(entry_id)
        )
        content_type = fields.get("content_type")
        super().__init__(
            body=fields.get("body", b""),
            message_id=text(fields.get("message_id", entry_id.encode())),
            properties=properties(fields.get("properties"), entry_id),
            delivery_count=prior + times_delivered,
            enqueued_at=enqueued_at,
            content_type=text(content_type) if content_type is not None else None,
        )
        self.entry_id = entry_id
        self.lock_token = times_delivered
        self._receiver = receiver
        self._fields = fields
        self._enqueued_ms = int(enqueued_at.timestamp() * 1000)

    def _copy(self, deliveries: int | None = None) -> list[bytes | str]:
        """The message fields, for a re-queued copy (with ``deliveries``) or a dead letter."""
        flat: list[bytes | str] = []
        for name in MESSAGE_FIELDS:
            if name in self._fields:
                flat += [name, self._fields[name]]
        flat += ["enqueued_at", str(self._enqueued_ms)]
        if deliveries is not None:
            flat += ["deliveries", str(deliveries)]
        return flat

    async def _complete(self) -> None:
        await self._receiver.run_owned(self, self._receiver.scripts.complete)

    async def _abandon(self) -> None:
        limit = self._receiver.max_delivery_count
        if self.delivery_count >= limit:
            await self._dead_letter(
                MAX_DELIVERY_COUNT_EXCEEDED,
                f"abandoned after {self.delivery_count} deliveries; the maximum is {limit}",
            )
            return
        await self._receiver.run_owned(
            self, self._receiver.scripts.requeue, self._copy(self.delivery_count)
        )

    async def _release(self) -> None:
        # Read but never handed to a handler: re-queue without counting this delivery.
        await self._receiver.run_owned(
            self, self._receiver.scripts.requeue, self._copy(self.delivery_count - 1)
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
        await self._receiver.run_owned(
            self, self._receiver.scripts.dead_letter, fields, dead_letter=True
        )
