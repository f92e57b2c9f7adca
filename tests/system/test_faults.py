"""The native stack under faults loses nothing and dead-letters nothing a retry would complete.

Careful clients (customers with their tokens, an Idempotency-Key per request, retried on 503
until 202) send requests while, one after the other: a backend refuses the workflow's calls
(401: the package service is given an audience the workflow's tokens are not for), Redis is
frozen (SIGSTOP, then SIGCONT a few seconds later: the queue, the pending store, the delivery
records and the idempotency records all stall at once), FerretDB is frozen the same way, and the
drone scheduler is killed (SIGKILL) and started again. Every request ends scheduled exactly once
— one delivery record with its drone, no two on one drone — and nothing is dead-lettered.
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from .conftest import System
from .test_system import all_scheduled, assignment_of, dead_letters_of, owner_count, request

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]

WAVE = 12


async def careful_post(
    http: httpx.AsyncClient, system: System, body: dict[str, Any], refusals: list[int]
) -> str:
    """POST with an Idempotency-Key, retried with the same key until 202 (what a careful client
    does with a 503, whatever it says, and with a lost connection); every refusal is noted."""
    url = system.url("ingestion") + "/api/deliveryrequests"
    headers = system.customer(body["ownerId"]) | {"Idempotency-Key": str(uuid.uuid4())}
    deadline = time.monotonic() + 90
    while True:
        try:
            response = await http.post(url, json=body, headers=headers, timeout=10)
        except httpx.TransportError:
            response = None
        if response is not None and response.status_code == 202:
            delivery_id = response.json()["deliveryId"]
            assert isinstance(delivery_id, str)
            return delivery_id
        if response is not None:
            assert response.status_code in (409, 503), response.text
        refusals.append(response.status_code if response is not None else 0)
        assert time.monotonic() < deadline, "the request was never accepted"
        await asyncio.sleep(0.5)


async def wave(
    http: httpx.AsyncClient,
    system: System,
    owner: str,
    during: Callable[[], Awaitable[None]],
    refusals: list[int] | None = None,
) -> list[str]:
    """``WAVE`` requests sent one every 0.4 s while ``during`` runs (the fault)."""

    async def later(delay: float) -> str:
        await asyncio.sleep(delay)
        noted = refusals if refusals is not None else []
        return await careful_post(http, system, request(owner), noted)

    posting = asyncio.gather(*(later(0.4 * i) for i in range(WAVE)))
    await during()
    return list(await posting)


def retried(system: System, ids: list[str]) -> set[str]:
    """The deliveries the workflow had to retry (a transient failure, then redelivery)."""
    lines = system.log_lines("transient failure")
    return {delivery_id for delivery_id in ids if any(delivery_id in line for line in lines)}


def frozen(server: Any, seconds: float) -> Callable[[], Awaitable[None]]:
    async def freeze() -> None:
        await asyncio.sleep(0.3)  # requests on their way
        server.pause()
        try:
            await asyncio.sleep(seconds)
        finally:
            server.resume()

    return freeze


async def test_faults_lose_nothing_and_dead_letter_nothing_a_retry_completes(
    system: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    owner = f"faults-{uuid.uuid4().hex[:8]}"
    ids: list[str] = []

    # 1. The package service refuses every call (401) for a while: its audience is one no token
    # the workflow holds is for (an app registration changed under a running system).
    with_auth = {"PACKAGE_AUTH__AUDIENCE": "nobody-sends-this"}
    await asyncio.to_thread(system.reconfigure, "package", dict(with_auth))
    try:

        async def refused_for_a_while() -> None:
            await asyncio.sleep(6)

        ids += await wave(http, system, owner, refused_for_a_while)
    finally:
        await asyncio.to_thread(system.reconfigure, "package", dict.fromkeys(with_auth, None))

    # 2. Redis frozen: queue, pending store, delivery and idempotency records stall together.
    refusals: list[int] = []
    ids += await wave(http, system, owner, frozen(system.stack.redis, 4), refusals)
    assert refusals, "no request met the frozen Redis"  # ingestion answered 503 meanwhile
    # 3. FerretDB frozen: the package service and the drone scheduler stall.
    stalled = await wave(http, system, owner, frozen(system.stack.mongo, 4))
    ids += stalled

    # 4. The drone scheduler killed, then started again (it reads its lease log).
    scheduler = system.stack.processes["dronescheduler"]

    async def killed() -> None:
        await asyncio.sleep(0.5)
        scheduler.signal(signal.SIGKILL)
        assert await asyncio.to_thread(scheduler.wait, 10) == -signal.SIGKILL
        await asyncio.sleep(2)
        await asyncio.to_thread(system.restart, "dronescheduler")

    try:
        orphaned = await wave(http, system, owner, killed)
        ids += orphaned
    finally:
        await asyncio.to_thread(system.restart, "dronescheduler")

    assert len(set(ids)) == len(ids) == 4 * WAVE  # one delivery per request, retries included
    deliveries = await all_scheduled(http, system, ids, within=150)
    drones = {delivery["droneId"] for delivery in deliveries.values()}
    assert len(drones) == len(ids)  # no two deliveries on one drone
    for delivery_id, delivery in deliveries.items():
        assignment = await assignment_of(http, system, delivery_id)
        assert assignment["droneId"] == delivery["droneId"]
    assert await owner_count(http, system, owner) == len(ids)  # nothing scheduled twice
    assert await dead_letters_of(redis, set(ids)) == []
    # The faults were felt: the 401s raised the alarm and were retried, the frozen store and the
    # killed scheduler made the workflow retry.
    refused = [line for line in system.log_lines("CredentialsRefused") if "package" in line]
    assert refused, "no call was refused: the 401 phase did not reach the workflow"
    assert retried(system, stalled), "nothing met the frozen FerretDB"
    assert retried(system, orphaned), "nothing met the killed drone scheduler"
    print(  # noqa: T201
        f"{len(ids)} requests under faults: {len(refusals)} refusals met by the clients while "
        f"Redis was frozen, {len(refused)} calls refused with 401, "
        f"{len(retried(system, ids))} deliveries retried by the workflow; all scheduled once"
    )
