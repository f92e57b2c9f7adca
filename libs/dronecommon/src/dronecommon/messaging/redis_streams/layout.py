"""Where the queue lives in Redis and what its entries hold (see the package docstring).

Key names, the fields of a queue entry and of a dead letter, and the conversions between them
and :class:`~dronecommon.messaging.base.OutgoingMessage` /
:class:`~dronecommon.messaging.base.DeadLetter`. Replies are read whether they come as RESP2
lists or RESP3 maps.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from dronecommon.messaging.base import DeadLetter, OutgoingMessage, outgoing_properties

logger = logging.getLogger("dronecommon.messaging.redis")

#: A stream entry id (``<milliseconds>-<sequence>``).
ENTRY_ID = re.compile(r"^\d+-\d+$")

#: Fields of a queue entry that travel with the message (re-queue and replay copy them).
MESSAGE_FIELDS = ("message_id", "body", "content_type", "properties")


def stream_key(queue_name: str) -> str:
    """The stream holding the queue ``queue_name``."""
    return f"queue:{{{queue_name}}}"


def dead_letter_key(queue_name: str) -> str:
    """The stream holding the dead letters of ``queue_name``."""
    return f"queue:{{{queue_name}}}:deadletter"


def encode_message(message: OutgoingMessage) -> dict[str, bytes | str]:
    """The fields of a new queue entry for ``message`` (its trace context included)."""
    return {
        "message_id": message.message_id,
        "body": message.body,
        "content_type": message.content_type,
        "properties": json.dumps(outgoing_properties(message), separators=(",", ":")),
    }


def text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def pairs(fields: Any) -> dict[str, bytes]:
    """Entry fields as ``{name: raw bytes}``, from a dict or a flat ``[k, v, ...]`` list."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(fields, Mapping):
        items = fields.items()
    else:
        flat = list(fields or [])
        items = zip(flat[0::2], flat[1::2], strict=True)
    return {
        text(key): value if isinstance(value, bytes) else str(value).encode()
        for key, value in items
    }


def stream_entries(reply: Any) -> Iterator[tuple[str, dict[str, bytes]]]:
    """``(id, fields)`` pairs from an ``XREADGROUP`` reply (RESP2 list or RESP3 map)."""
    streams = reply.values() if isinstance(reply, Mapping) else (s[1] for s in reply or [])
    for entries in streams:
        for entry_id, fields in entries:
            if fields is not None:
                yield text(entry_id), pairs(fields)


def integer(raw: bytes | None) -> int:
    try:
        return int(raw or 0)
    except ValueError:
        return 0


def entry_time(entry_id: str) -> datetime:
    """When the entry was added (the milliseconds in its id)."""
    return datetime.fromtimestamp(int(entry_id.split("-", 1)[0]) / 1000, tz=UTC)


def properties(raw: bytes | None, entry_id: str) -> dict[str, str]:
    """The application properties of an entry (malformed ones are ignored, with a warning)."""
    if not raw:
        return {}
    try:
        decoded = json.loads(raw)
    except ValueError:
        logger.warning("entry %s has malformed properties; ignoring them", entry_id)
        return {}
    if not isinstance(decoded, dict):
        return {}
    return {str(key): str(value) for key, value in decoded.items()}


def decode_dead_letter(entry_id: str, fields: dict[str, bytes]) -> DeadLetter:
    """The dead letter an entry of the dead-letter stream holds."""
    enqueued = integer(fields.get("enqueued_at"))
    content_type = fields.get("content_type")
    return DeadLetter(
        id=entry_id,
        message_id=text(fields.get("message_id", b"")),
        body=fields.get("body", b""),
        content_type=text(content_type) if content_type is not None else None,
        properties=properties(fields.get("properties"), entry_id),
        reason=text(fields.get("reason", b"")),
        description=text(fields.get("description", b"")),
        delivery_count=integer(fields.get("delivery_count")),
        enqueued_at=datetime.fromtimestamp(enqueued / 1000, tz=UTC) if enqueued else None,
        dead_lettered_at=entry_time(entry_id),
    )
