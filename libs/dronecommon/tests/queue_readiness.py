"""Readiness of every queue client the factory makes, checked at once (any transport)."""

from __future__ import annotations

import asyncio
import time

from dronecommon.messaging import (
    DeadLetterStore,
    MessageReceiver,
    MessageSender,
    create_dead_letter_store,
    create_receiver,
    create_sender,
)
from dronecommon.settings import QueueSettings


async def check_every_client(settings: QueueSettings) -> tuple[float, list[object]]:
    """``check_ready`` of the sender, receiver and dead-letter store for ``settings`` together:
    the seconds it took and each one's outcome (None or its exception)."""
    things: list[MessageSender | MessageReceiver | DeadLetterStore] = [
        create_sender(settings),
        create_receiver(settings),
        create_dead_letter_store(settings),
    ]
    began = time.monotonic()
    try:
        outcomes = await asyncio.gather(
            *(thing.check_ready() for thing in things), return_exceptions=True
        )
    finally:
        for thing in things:
            await thing.close()
    return time.monotonic() - began, list(outcomes)
