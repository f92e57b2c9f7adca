"""Conversions between the queue's messages and the SDK's."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from azure.servicebus import ServiceBusMessage, ServiceBusReceivedMessage

from dronecommon.messaging.base import DeadLetter, OutgoingMessage, outgoing_properties

# Application properties Service Bus adds to dead-lettered messages.
_DEAD_LETTER_PROPERTIES = frozenset({"DeadLetterReason", "DeadLetterErrorDescription"})


def text(value: object) -> str:
    """A string from bytes (UTF-8, lenient) or anything else."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def body_bytes(body: object) -> bytes:
    """A received body as bytes, whatever shape the SDK handed it in."""
    if isinstance(body, bytes | bytearray):
        return bytes(body)
    if isinstance(body, str):
        return body.encode()
    try:
        return b"".join(bytes(part) for part in cast("Any", body))
    except TypeError:
        return str(body).encode()


def string_properties(raw: Mapping[Any, Any] | None) -> dict[str, str]:
    """Application properties as strings (the SDK may hand out bytes)."""
    return {text(key): text(value) for key, value in (raw or {}).items()}


def to_sdk(message: OutgoingMessage) -> ServiceBusMessage:
    """The SDK message to send: ``message_id`` feeds the broker's duplicate detection."""
    return ServiceBusMessage(
        body=message.body,
        message_id=message.message_id,
        content_type=message.content_type,
        application_properties=cast("Any", outgoing_properties(message)),
    )


def to_dead_letter(message: ServiceBusReceivedMessage) -> DeadLetter:
    """A message of the dead-letter sub-queue; its id is its sequence number."""
    properties = string_properties(message.application_properties)
    return DeadLetter(
        id=str(message.sequence_number),
        message_id=text(message.message_id or ""),
        body=body_bytes(message.body),
        content_type=message.content_type,
        properties={k: v for k, v in properties.items() if k not in _DEAD_LETTER_PROPERTIES},
        reason=message.dead_letter_reason or "",
        description=message.dead_letter_error_description or "",
        delivery_count=(message.delivery_count or 0) + 1,
        enqueued_at=message.enqueued_time_utc,
        dead_lettered_at=None,
    )


def replay_copy(message: ServiceBusReceivedMessage) -> ServiceBusMessage:
    """The copy of a dead letter to send back to the queue.

    Its message id ``"<original id>:replay:<sequence number>"`` keeps the broker's duplicate
    detection from dropping it as a repeat of the original, while replaying the same dead letter
    twice is still caught.
    """
    letter = to_dead_letter(message)
    return ServiceBusMessage(
        body=letter.body,
        message_id=f"{letter.message_id}:replay:{letter.id}",
        content_type=letter.content_type,
        application_properties=cast("Any", letter.properties),
    )
