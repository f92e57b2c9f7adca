"""Onto the queue: one send, bounded in time, traced, and told apart by what a failure means.

A send that fails is one of two things for the client: :class:`~ingestion.errors.QueueUnavailable`
when no connection to the queue could be opened (nothing was queued), or
:class:`~ingestion.errors.QueueOutcomeUnknown` otherwise (a time-out or a connection lost
mid-send: the queue may have taken the message).
"""

from __future__ import annotations

import asyncio
import logging
import socket

from opentelemetry import trace
from opentelemetry.trace import SpanKind

from dronecommon.messaging import MessageSender, OutgoingMessage

from .errors import QueueOutcomeUnknown, QueueUnavailable
from .schemas import Operation

logger = logging.getLogger("ingestion")
tracer = trace.get_tracer("ingestion")


class QueueSender:
    """Sends delivery-request messages within ``timeout`` seconds, in a PRODUCER span."""

    def __init__(
        self, sender: MessageSender, *, queue_name: str, timeout: float, retry_after: int
    ) -> None:
        self._sender = sender
        self._queue_name = queue_name
        self._timeout = timeout
        self._retry_after = retry_after

    async def send(
        self,
        operation: Operation,
        delivery_id: str,
        body: bytes,
        message_id: str,
        *,
        keyed: bool = False,
    ) -> None:
        """Send ``body`` as message ``message_id``; ``keyed``: the request has an
        Idempotency-Key (what a client is told to retry with)."""
        message = OutgoingMessage(
            body=body,
            message_id=message_id,
            content_type="application/json",
            properties={"operation": operation},
        )
        with tracer.start_as_current_span(
            f"{self._queue_name} send",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.destination.name": self._queue_name,
                "messaging.operation.name": "send",
                "messaging.operation.type": "send",
                "messaging.message.id": message.message_id,
                "dronedelivery.delivery_id": delivery_id,
                "dronedelivery.operation": operation,
            },
            record_exception=False,
            set_status_on_exception=False,
        ) as span:
            try:
                async with asyncio.timeout(self._timeout):
                    await self._sender.send(message)
            except Exception as exc:
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR, f"{type(exc).__name__}: {exc}")
                logger.warning(
                    "queue %s did not take %s message %s for %s: %s: %s",
                    self._queue_name,
                    operation,
                    message.message_id,
                    delivery_id,
                    type(exc).__name__,
                    exc,
                )
                if not_sent(exc):
                    raise QueueUnavailable(self._retry_after) from exc
                raise QueueOutcomeUnknown(
                    self._retry_after, operation=operation, delivery_id=delivery_id, keyed=keyed
                ) from exc


def not_sent(exc: BaseException) -> bool:
    """Whether a failed send surely left nothing on the queue: no connection could be opened."""
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        if isinstance(error, ConnectionRefusedError | socket.gaierror):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False
