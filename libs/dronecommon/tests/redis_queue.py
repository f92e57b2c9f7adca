"""The Redis Streams queue's test kit: the queue, messages, a quick receiver, waiting, running
a receiver in the background (``test_messaging_redis*.py``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from dronecommon.messaging import OutgoingMessage, ReceivedMessage
from dronecommon.messaging.redis_streams import RedisStreamReceiver

QUEUE = "deliveryrequests"
GROUP = "workflow"


def message(n: int | str, **properties: str) -> OutgoingMessage:
    return OutgoingMessage(
        body=json.dumps({"n": n}).encode(), message_id=f"m-{n}", properties=dict(properties)
    )


def receiver(url: str, **options: Any) -> RedisStreamReceiver:
    options.setdefault("receive_wait", 0.1)
    options.setdefault("lock_duration", 5.0)
    options.setdefault("max_concurrency", 8)
    options.setdefault("prefetch", 8)
    options.setdefault("settle_timeout", 2.0)
    return RedisStreamReceiver.from_url(url, QUEUE, **options)


async def wait_until(predicate: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def eventually(probe: Callable[[], Awaitable[object]], expected: object) -> None:
    deadline = time.monotonic() + 10.0
    while (value := await probe()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"still {value!r}, expected {expected!r}")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(
    rx: RedisStreamReceiver, handler: Callable[[ReceivedMessage], Awaitable[None]]
) -> AsyncIterator[asyncio.Task[None]]:
    """Run ``rx`` in the background; stop it (grace 2 s) and close it afterwards."""
    task = asyncio.create_task(rx.run(handler))
    try:
        yield task
    finally:
        if not task.done():
            await rx.stop(2.0)
        await asyncio.gather(task, return_exceptions=True)
        await rx.close()
