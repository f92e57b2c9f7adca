"""Several replicas on one database, and restarts: no drone is ever held twice, none leaks."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pymongo.asynchronous.database import AsyncDatabase

from dronescheduler.settings import DroneSchedulerSettings
from dronetesting.problems import assert_problem

from .conftest import delivery, fleet, put, running, scheduler_settings

Document = dict[str, Any]


@contextlib.asynccontextmanager
async def replicas(
    settings: DroneSchedulerSettings, count: int = 2
) -> AsyncIterator[list[httpx.AsyncClient]]:
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(running(settings)) for _ in range(count)]


async def test_replicas_never_hand_out_the_same_drone(mongo_url: str, mongo_database: str) -> None:
    # As many attempts as drones: a request gives up only when it has seen every drone busy.
    settings = scheduler_settings(mongo_url, mongo_database, fleet(count=10, max_claim_attempts=10))
    async with replicas(settings, 3) as apps:
        answers = await asyncio.gather(*(put(apps[i % 3], delivery()) for i in range(30)))
        won = [answer.json()["droneId"] for answer in answers if answer.status_code == 201]
        assert len(won) == 10
        assert len(set(won)) == 10
        assert Counter(answer.status_code for answer in answers) == {201: 10, 503: 20}


async def test_duplicates_on_two_replicas_get_one_drone_and_leak_none(
    mongo_url: str, mongo_database: str, database: AsyncDatabase[Document]
) -> None:
    settings = scheduler_settings(mongo_url, mongo_database, fleet(count=10))
    async with replicas(settings) as (first, second):
        bodies = [delivery() for _ in range(5)]
        answers = await asyncio.gather(
            *(put(app, body) for body in bodies for app in (first, second))
        )
        for i, body in enumerate(bodies):
            pair = answers[2 * i : 2 * i + 2]
            assert sorted(a.status_code for a in pair) == [200, 201], body["deliveryId"]
            assert pair[0].json() == pair[1].json()
        # The losers gave their drones back: a replica starting now (which reads the lease log)
        # can assign the other five drones, and no more.
        async with running(settings) as third:
            more = await asyncio.gather(*(put(third, delivery()) for _ in range(5)))
            assert {answer.status_code for answer in more} == {201}, [a.text for a in more]
            assert_problem(await put(third, delivery()), 503)
        held = {a.json()["droneId"] for a in answers} | {a.json()["droneId"] for a in more}
        assert len(held) == 10
        # A loser that found the winner's assignment before claiming claimed nothing; one that
        # claimed a drone first gave it back.
        releases = await database["leases"].count_documents({"kind": "release"})
        assert releases <= 5
        # All ten drones are out: the running replicas, which learn of the others' claims when
        # they try a drone, agree. (One that saw a loser's claim before it was given back even
        # believes that drone out until the claim's trip would have ended; see the README.)
        for app in (first, second):
            assert_problem(await put(app, delivery()), 503)


async def test_a_release_on_one_replica_is_final_on_the_other(
    mongo_url: str, mongo_database: str
) -> None:
    settings = scheduler_settings(mongo_url, mongo_database, fleet(count=1))
    async with replicas(settings) as (first, second):
        body = delivery()
        drone = (await put(first, body)).json()["droneId"]
        assert (
            await second.delete(f"/api/dronedeliveries/{body['deliveryId']}")
        ).status_code == 204
        assert_problem(await put(first, body), 409)
        # The releasing replica hands the drone out again at once. The first one believes it busy
        # until its trip would have ended: replicas learn of each other's releases lazily.
        assert_problem(await put(first, delivery()), 503)
        assert (await put(second, delivery())).json()["droneId"] == drone


async def test_a_restarted_replica_knows_which_drones_are_busy(
    mongo_url: str, mongo_database: str
) -> None:
    settings = scheduler_settings(mongo_url, mongo_database, fleet(count=3))
    bodies = [delivery() for _ in range(3)]
    async with running(settings) as client:
        first = [(await put(client, body)).json() for body in bodies]
        await client.delete(f"/api/dronedeliveries/{bodies[0]['deliveryId']}")
    async with running(settings) as client:
        # One drone is free again (released); the other two are still out.
        assert (await put(client, delivery())).json()["droneId"] == first[0]["droneId"]
        assert_problem(await put(client, delivery()), 503)
        # Replays after the restart still answer 200 with the original drone, fleet busy or not.
        replay = await put(client, bodies[1])
        assert replay.status_code == 200
        assert replay.json() == first[1]
        assert_problem(await put(client, bodies[0]), 409)


async def assigned_then_replayed(
    first: httpx.AsyncClient, second: httpx.AsyncClient, body: dict[str, Any]
) -> dict[str, Any]:
    """``body`` assigned on ``first`` (201), then retried on ``second``, which never saw it: 200
    with the same assignment. The assignment."""
    assigned = await put(first, body)
    assert assigned.status_code == 201, assigned.text
    replay = await put(second, body)
    assert replay.status_code == 200, replay.text
    assert replay.json() == assigned.json()
    return dict(assigned.json())


async def test_another_replica_replays_an_assignment_with_the_fleet_busy(
    mongo_url: str, mongo_database: str
) -> None:
    # The workflow's retry of a delivery (a redelivered message) lands on a replica that has never
    # seen it, while every drone is out: the delivery has its drone, so the answer is its replay.
    settings = scheduler_settings(mongo_url, mongo_database, fleet(count=1))
    async with replicas(settings) as (first, second):
        body = delivery()
        await assigned_then_replayed(first, second, body)
        assert_problem(await put(second, delivery()), 503)  # the fleet was busy, and still is
        # A release on the first replica is final on the second one too.
        assert (await first.delete(f"/api/dronedeliveries/{body['deliveryId']}")).status_code == 204
        assert_problem(await put(second, body), 409)


async def test_another_replica_replays_an_assignment_and_gives_back_the_drone_it_tried(
    mongo_url: str, mongo_database: str
) -> None:
    # The retry lands on a replica that has never seen the delivery, with a drone free: it claims
    # that drone, loses the assignment's insert, gives the drone back and answers the replay.
    settings = scheduler_settings(mongo_url, mongo_database, fleet(count=2))
    async with replicas(settings) as (first, second):
        assignment = await assigned_then_replayed(first, second, delivery())
        # The drone it tried is free again: the second replica hands it out, and then has none.
        other = await put(second, delivery())
        assert other.status_code == 201, other.text
        assert other.json()["droneId"] != assignment["droneId"]
        assert_problem(await put(second, delivery()), 503)
