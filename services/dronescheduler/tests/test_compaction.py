"""The lease log stays compact: start-up reads what the fleet holds (one generation per drone and
the recent ones), never the history; deleted generations are never claimed again; an
assignment's re-plans are read in one query."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from pymongo.asynchronous.database import AsyncDatabase

from dronecommon.domain import Location, utcnow
from dronescheduler.compaction import prunable
from dronescheduler.fleet import Fleet
from dronescheduler.repository import SchedulerRepository
from dronescheduler.schemas import DroneDeliveryIn
from dronescheduler.service import Scheduler
from dronescheduler.settings import DroneSchedulerSettings

from .conftest import delivery, fleet, put, running, scheduler_settings

Document = dict[str, Any]
T0 = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def test_superseded_generations_go_once_their_successor_is_old_the_latest_stays() -> None:
    cutoff = at(100)
    generations = {
        "old": [(3, at(30)), (1, at(10)), (2, at(20))],  # all old: only the latest stays
        "recent": [(1, at(10)), (2, at(150)), (3, at(160))],  # 1's successor is recent
        "mixed": [(5, at(50)), (6, at(60)), (7, at(120)), (8, at(130))],
        "alone": [(9, at(0))],
        # A successor written by a replica whose clock lagged: the run stops there.
        "skewed": [(1, at(10)), (2, at(150)), (3, at(40)), (4, at(50))],
    }
    assert sorted(prunable(generations, cutoff)) == ["mixed:5", "old:1", "old:2"]


async def test_start_up_reads_the_fleet_not_the_history(
    mongo_url: str, mongo_database: str, database: AsyncDatabase[Document]
) -> None:
    # Three drones, forty deliveries each made and released: 240 generations written (the
    # latest of each drone is its 80th). Once they are older than the retention, the log keeps
    # one generation per drone, and a replica that starts reads those three.
    settings = scheduler_settings(
        mongo_url,
        mongo_database,
        fleet(count=3),
        lease_retention=2.0,
        lease_refresh_interval=0.5,
    )
    async with running(settings) as client:
        for _ in range(40):
            bodies = [delivery() for _ in range(3)]
            for body in bodies:
                assert (await put(client, body)).status_code == 201
            for body in bodies:
                deleted = await client.delete(f"/api/dronedeliveries/{body['deliveryId']}")
                assert deleted.status_code == 204
        for _ in range(100):  # the retention passes, then a refresh deletes what is superseded
            if await database["leases"].count_documents({}) == 3:
                break
            await asyncio.sleep(0.1)
        heads = [doc async for doc in database["leases"].find({})]
        assert sorted((doc["_id"], doc["kind"]) for doc in heads) == [
            (f"downtown-standard-0000{n}:80", "release") for n in (1, 2, 3)
        ]
        # The history utilization needs is all there.
        assert await database["assignments"].count_documents({}) == 120
        assert await database["releases"].count_documents({}) == 120

    async with running(settings) as client:
        # The restarted replica read three generations and knows every drone is free.
        drones = {(await put(client, delivery())).json()["droneId"] for _ in range(3)}
        assert len(drones) == 3
    latest = await database["leases"].count_documents({"gen": 81, "kind": "assign"})
    assert latest == 3


async def test_a_replica_never_claims_a_deleted_generation(
    mongo_url: str, mongo_database: str
) -> None:
    # Replica A loaded the log when the drone was at generation 0 and has not touched it since;
    # replica B then used the drone twice and, an hour later, deleted the superseded generations.
    # A's knowledge is too old to claim on: it reads the drone's latest generation first, instead
    # of inserting generation 1 again (which, deleted, would be accepted).
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url, tz_aware=True)
    repository = SchedulerRepository(client[mongo_database], cache_size=0)
    await repository.ensure_indexes()
    settings = fleet(count=1)
    now = {"a": T0, "b": T0}

    def replica(name: str) -> Scheduler:
        return Scheduler(
            Fleet(settings), repository, settings, clock=lambda: now[name], lease_retention=600
        )

    try:
        await repository.seed(Fleet(settings), T0)
        first, second = replica("a"), replica("b")
        await first.load()
        await second.load()
        for _ in range(2):
            record, _ = await second.assign(request())
            await second.release(record.delivery_id)
        now["b"] = at(3600)
        read, deleted = await second.refresh()
        assert read.leases == 4
        assert deleted == 3
        assert [doc["gen"] async for doc in repository.leases.find({})] == [4]

        now["a"] = at(3600)
        record, created = await first.assign(request())
        assert created
        assert record.lease_gen == 5
        assert sorted([doc["gen"] async for doc in repository.leases.find({})]) == [4, 5]
    finally:
        await client.close()


def request() -> DroneDeliveryIn:
    return DroneDeliveryIn.model_validate(delivery())


class FindsOn(monitoring.CommandListener):
    """Counts the ``find`` commands sent for one collection."""

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == self.collection:
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def watched(
    mongo_url: str, mongo_database: str
) -> AsyncIterator[tuple[SchedulerRepository, FindsOn]]:
    listener = FindsOn("plans")
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongo_url, tz_aware=True, event_listeners=[listener]
    )
    repository = SchedulerRepository(client[mongo_database])
    await repository.ensure_indexes()
    try:
        yield repository, listener
    finally:
        await client.close()


async def test_an_assignment_with_many_re_plans_is_read_in_one_query(
    watched: tuple[SchedulerRepository, FindsOn],
) -> None:
    repository, finds = watched
    settings = fleet(count=1)
    scheduler = Scheduler(Fleet(settings), repository, settings)
    await repository.seed(scheduler.fleet, utcnow())
    await scheduler.load()
    record, _ = await scheduler.assign(request())
    for n in range(1, 7):
        dropoff = Location(latitude=47.6 + n / 1000, longitude=-122.3)
        await scheduler.replan(record.delivery_id, None, dropoff)
    finds.count = 0
    latest = await repository.assignment(record.delivery_id)
    assert latest is not None
    assert latest.plan_no == 6
    assert latest.dropoff.latitude == pytest.approx(47.606)
    assert finds.count == 1


def test_the_refresh_runs_well_within_the_retention() -> None:
    with pytest.raises(ValueError, match="quarter"):
        DroneSchedulerSettings(lease_refresh_interval=600, lease_retention=1200)
    settings = DroneSchedulerSettings()
    assert settings.lease_refresh_interval * 4 <= settings.lease_retention
