"""The notifier as a process (``python -m notifier``), stopped in the middle of a burst.

SIGTERM: the reader finishes its batch, the senders finish their sends, and the next process
takes over — Mailpit then holds exactly one message per (delivery, event, recipient). kill -9:
nothing is lost (events read but not acknowledged are taken over, leased items come back when the
lease ends); a message the dead process had handed to Mailpit but not marked sent is sent again,
so duplicates are bounded by the sends that were in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from dronecommon.events import read_range
from dronetesting.apps import start_service_process
from dronetesting.servers import MailpitServer, free_port

from .conftest import Deliveries, Inbox
from .test_email import mail_id

pytestmark = pytest.mark.slow

DELIVERIES = 30
RECIPIENTS = ("ann@example.com", "bob@example.com")
CONCURRENCY = 8

Start = Callable[[], Awaitable[asyncio.subprocess.Process]]


@pytest.fixture
async def start_notifier(
    redis_url: str, mailpit: MailpitServer, deliveries: Deliveries, tmp_path: Path
) -> AsyncIterator[Start]:
    port = free_port()
    env = {
        **os.environ,
        "NOTIFIER_PORT": str(port),
        "NOTIFIER_REDIS__URL": redis_url,
        "NOTIFIER_DELIVERY_URL": deliveries.url,
        "NOTIFIER_EMAIL__SMTP__PORT": str(mailpit.smtp_port),
        "NOTIFIER_EVENTS_START_AT_LATEST": "false",
        "NOTIFIER_EVENTS_CLAIM_IDLE": "2",
        "NOTIFIER_EVENTS_BATCH": "10",
        "NOTIFIER_OUTBOX__CONCURRENCY": str(CONCURRENCY),
        "NOTIFIER_OUTBOX__POLL_INTERVAL": "0.05",
        "NOTIFIER_OUTBOX__SEND_TIMEOUT": "2",
        "NOTIFIER_OUTBOX__LEASE_SECONDS": "4",
        "NOTIFIER_OUTBOX__BACKOFF_BASE": "0.2",
        "NOTIFIER_OUTBOX__BACKOFF_MAX": "1",
        "NOTIFIER_LOG_JSON": "false",
        "NOTIFIER_AUTH__ENABLED": "false",
        "NOTIFIER_LOG_LEVEL": "WARNING",
    }
    processes: list[asyncio.subprocess.Process] = []

    async def start() -> asyncio.subprocess.Process:
        log = tmp_path / f"notifier-{len(processes)}.log"
        process = await start_service_process("notifier", env, log, port=port, ready_within=45)
        processes.append(process)
        return process

    yield start
    for process in processes:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def burst(deliveries: Deliveries, ids: list[str]) -> None:
    """Each delivery created with two recipients, then completed, five at a time."""
    for first in range(0, len(ids), 5):
        chunk = ids[first : first + 5]
        await asyncio.gather(*(deliveries.create(i, *map(_email, RECIPIENTS)) for i in chunk))
        await asyncio.gather(*(deliveries.complete(i) for i in chunk))
        await asyncio.sleep(0.05)


def _email(address: str) -> dict[str, str]:
    return {"emailAddress": address}


async def expected_ids(redis: Redis, ids: list[str]) -> set[str]:
    ours = set(ids)
    events = [e for e in await read_range(redis) if e.delivery_id in ours]
    assert len(events) == 2 * len(ids)
    return {mail_id(event, address) for event in events for address in RECIPIENTS}


async def interrupted_burst(
    start: Start, deliveries: Deliveries, inbox: Inbox, stop: signal.Signals
) -> tuple[list[str], asyncio.subprocess.Process]:
    first = await start()
    ids = [str(uuid.uuid4()) for _ in range(DELIVERIES)]
    sending = asyncio.create_task(burst(deliveries, ids))
    try:
        await inbox.wait_for(DELIVERIES // 2, within=30)  # well into the burst
        first.send_signal(stop)
        code = await asyncio.wait_for(first.wait(), timeout=30)
        if stop is signal.SIGTERM:
            assert code == 0
        second = await start()
        await sending
    finally:
        if not sending.done():
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sending
    return ids, second


async def test_a_burst_across_a_graceful_restart_is_told_exactly_once(
    start_notifier: Start, deliveries: Deliveries, inbox: Inbox, redis: Redis
) -> None:
    ids, _ = await interrupted_burst(start_notifier, deliveries, inbox, signal.SIGTERM)
    total = DELIVERIES * 2 * len(RECIPIENTS)
    messages = await inbox.wait_for(total, within=40)
    counts = Counter(m["MessageID"] for m in messages)
    assert len(messages) == total, f"{len(messages) - total} extra: {counts.most_common(3)}"
    assert set(counts) == await expected_ids(redis, ids)


async def test_kill_9_loses_nothing_and_repeats_at_most_what_was_in_flight(
    start_notifier: Start, deliveries: Deliveries, inbox: Inbox, redis: Redis
) -> None:
    ids, _ = await interrupted_burst(start_notifier, deliveries, inbox, signal.SIGKILL)
    total = DELIVERIES * 2 * len(RECIPIENTS)
    expected = await expected_ids(redis, ids)

    async def all_there() -> set[str]:
        return {m["MessageID"] for m in await inbox.messages()}

    for _ in range(400):  # the dead process's leases and pending events come back in seconds
        if await all_there() >= expected:
            break
        await asyncio.sleep(0.1)
    messages = await inbox.messages()
    counts = Counter(m["MessageID"] for m in messages)
    assert set(counts) == expected  # none lost, nothing else
    repeated = len(messages) - total
    assert 0 <= repeated <= CONCURRENCY, counts.most_common(3)
