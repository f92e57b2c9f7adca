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
from dronescheduler.repository import PLAN_PROBES, SchedulerRepository
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


class Commands(monitoring.CommandListener):
    """Every command sent, in order: ``(name, collection, filter)``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command
        self.sent.append(
            (event.command_name, str(command.get(event.command_name)), command.get("filter", {}))
        )

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def names(self) -> list[tuple[str, str]]:
        """``(name, collection)`` of each command sent."""
        return [(name, collection) for name, collection, _ in self.sent]

    def finds(self, collection: str) -> list[dict[str, Any]]:
        """The filters of the ``find`` commands sent for ``collection``."""
        return [f for name, c, f in self.sent if name == "find" and c == collection]


@pytest.fixture
async def watched(
    mongo_url: str, mongo_database: str
) -> AsyncIterator[tuple[SchedulerRepository, Commands]]:
    listener = Commands()
    client: AsyncMongoClient[Document] = AsyncMongoClient(
        mongo_url, tz_aware=True, event_listeners=[listener]
    )
    repository = SchedulerRepository(client[mongo_database])
    await repository.ensure_indexes()
    try:
        yield repository, listener
    finally:
        await client.close()


async def loaded(repository: SchedulerRepository, drones: int) -> Scheduler:
    """A scheduler of ``drones`` drones, seeded and loaded."""
    settings = fleet(count=drones)
    scheduler = Scheduler(Fleet(settings), repository, settings)
    await repository.seed(scheduler.fleet, utcnow())
    await scheduler.load()
    return scheduler


async def replanned(repository: SchedulerRepository, times: int) -> str:
    scheduler = await loaded(repository, 1)
    record, _ = await scheduler.assign(request())
    for n in range(1, times + 1):
        dropoff = Location(latitude=47.6 + n / 1000, longitude=-122.3)
        await scheduler.replan(record.delivery_id, None, dropoff)
    return record.delivery_id


@pytest.mark.parametrize("times", [0, 2, PLAN_PROBES, 9])
async def test_re_plans_are_read_by_id_and_many_of_them_in_one_query(
    watched: tuple[SchedulerRepository, Commands], times: int
) -> None:
    repository, commands = watched
    delivery_id = await replanned(repository, times)
    commands.sent.clear()
    latest = await repository.assignment(delivery_id)
    assert latest is not None
    assert latest.plan_no == times
    if times:
        assert latest.dropoff.latitude == pytest.approx(47.6 + times / 1000)
    probes = [{"_id": f"{delivery_id}:{n}"} for n in range(1, min(times, PLAN_PROBES) + 1)]
    if times < PLAN_PROBES:  # up to the first missing one, by _id (an index lookup everywhere)
        assert commands.finds("plans") == [*probes, {"_id": f"{delivery_id}:{times + 1}"}]
    else:  # the rest in one query, however many there are
        later = {"deliveryId": delivery_id, "n": {"$gt": PLAN_PROBES}}
        assert commands.finds("plans") == [*probes, later]


def test_the_refresh_runs_well_within_the_retention() -> None:
    with pytest.raises(ValueError, match="quarter"):
        DroneSchedulerSettings(lease_refresh_interval=600, lease_retention=1200)
    settings = DroneSchedulerSettings()
    assert settings.lease_refresh_interval * 4 <= settings.lease_retention


async def test_an_assignment_costs_two_inserts_and_a_release_two_round_trips(
    watched: tuple[SchedulerRepository, Commands],
) -> None:
    repository, commands = watched
    scheduler = await loaded(repository, 2)
    commands.sent.clear()
    record, created = await scheduler.assign(request())
    assert created
    # A delivery asked for the first time reads nothing: the assignment's insert decides.
    assert commands.names() == [("insert", "leases"), ("insert", "assignments")]
    commands.sent.clear()
    await scheduler.release(record.delivery_id)
    # Its re-plans by _id (the assignment is cached), the release, then the drone freed early.
    assert commands.names() == [("find", "plans"), ("insert", "releases"), ("insert", "leases")]
    commands.sent.clear()
    await scheduler.release(record.delivery_id)
    # Released before: the release's insert finds it taken, and nothing more is written.
    assert commands.names() == [("find", "plans"), ("insert", "releases")]
    assert await repository.releases.count_documents({"_id": record.delivery_id}) == 1
    leases = [doc async for doc in repository.leases.find({"droneId": record.drone_id})]
    assert sorted((doc["gen"], doc["kind"]) for doc in leases) == [(1, "assign"), (2, "release")]
