"""SMS without a carrier: the local sink.

Each message goes to the Redis list ``<p>:{outbox}:sms`` (newest first, the last
``NOTIFIER_SMS__SINK_MAX`` kept; ``GET /api/notifications/sms`` reads it) once per message id, and
is then appended to ``NOTIFIER_SMS__SINK_FILE`` as one JSON line when that is set (``make run``:
``.data/sms.jsonl``). The list is the record; the file is a convenience copy for ``tail -f`` (a
crash between the two writes leaves a message out of the file only).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

from dronecommon.domain import format_utc
from notifier import messages
from notifier.outbox import Outbox
from notifier.records import Item


class SmsSink:
    def __init__(
        self, outbox: Outbox, *, base_url: str, keep: int, file: str | None = None
    ) -> None:
        self.outbox = outbox
        self.base_url = base_url
        self.keep = keep
        self.file = Path(file) if file else None
        self._lock = asyncio.Lock()

    async def send(self, item: Item, now: dt.datetime) -> str:
        message: dict[str, Any] = {
            "id": item.message_id,
            "to": item.to,
            "text": messages.sms(item, self.base_url),
            "deliveryId": item.delivery_id,
            "event": item.event,
            "at": format_utc(now),
        }
        if await self.outbox.sink_sms(message, item.message_id, self.keep) and self.file:
            line = json.dumps(message, ensure_ascii=False, separators=(",", ":")) + "\n"
            async with self._lock:
                await asyncio.to_thread(self._append, line)
        return f"sink:{item.message_id}"

    def _append(self, line: str) -> None:
        assert self.file is not None
        self.file.parent.mkdir(parents=True, exist_ok=True)
        with self.file.open("a", encoding="utf-8") as out:
            out.write(line)

    async def check(self) -> None:
        await self.outbox.ping()

    async def close(self) -> None:
        return None
