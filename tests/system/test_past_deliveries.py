"""The benchmark's past deliveries (``scripts/benchmark/past.py``) read back through the services:
seeded into the running stack, each is what a completed delivery leaves behind."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from redis.asyncio import Redis

from dronecommon.domain import ACCOUNT_HEADER

from .conftest import System, bench_module

COUNT = 200


async def test_past_deliveries_read_back_completed_and_released(
    system: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    past = bench_module("past")
    load = bench_module("load")
    events_before = (
        await redis.xlen("delivery:events") if await redis.exists("delivery:events") else 0
    )
    outcome = await asyncio.to_thread(past.seed, system.stack.config, COUNT, batch=64)
    assert outcome["count"] == COUNT

    for n in (0, 1, 63, 64, COUNT - 1):
        delivery_id = past.past_id(n)
        owner = f"bench-owner-{n % load.OWNERS}"
        # The delivery: Completed, to its owner (and nobody else), with its drone.
        response = await http.get(
            system.url("delivery") + f"/api/deliveries/{delivery_id}",
            headers=system.customer(owner, "bench"),
        )
        assert response.status_code == 200, response.text
        delivery = response.json()
        assert delivery["id"] == delivery_id
        assert delivery["stage"] == "Completed"
        stranger = await http.get(
            system.url("delivery") + f"/api/deliveries/{delivery_id}",
            headers=system.customer("someone-else", "bench"),
        )
        assert stranger.status_code == 404
        # The scheduler's assignment: the same drone, released at the drone's return.
        response = await http.get(
            system.url("dronescheduler") + f"/api/dronedeliveries/{delivery_id}",
            headers=system.service("dronescheduler", "Drones.Assign"),
        )
        assert response.status_code == 200, response.text
        assignment = response.json()
        assert assignment["status"] == "Released"
        assert assignment["ownerId"] == owner
        assert assignment["droneId"] == delivery["droneId"]
        assert assignment["releasedAt"] == assignment["busyUntil"]
        # The package, in the load's account.
        response = await http.get(
            system.url("package") + f"/api/packages/{assignment['packageDetail']['id']}",
            headers={
                **system.service("package", "Packages.Write"),
                ACCOUNT_HEADER: "bench",
            },
        )
        assert response.status_code == 200, response.text
        # Ingestion knows the owner; the simulator knows the flight ended.
        assert await redis.hgetall(f"ingestion:owner:{delivery_id}") == {
            b"userId": owner.encode(),
            b"accountId": b"bench",
        }
        assert await redis.zscore("simulator:finished", delivery_id) is not None

    # The owner's list holds them, newest first.
    listed: Any = await http.get(
        system.url("delivery") + "/api/deliveries",
        params={"limit": 5},
        headers=system.customer("bench-owner-9", "bench"),
    )
    assert listed.status_code == 200, listed.text
    ids = [item["id"] for item in listed.json()["items"]]
    assert ids[0] == past.past_id(COUNT - 1 - (COUNT - 1 - 9) % load.OWNERS)
    # Nothing was announced again: past events are not appended to the delivery events.
    events_after = (
        await redis.xlen("delivery:events") if await redis.exists("delivery:events") else 0
    )
    assert events_after == events_before
