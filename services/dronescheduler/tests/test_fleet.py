"""The fleet: deterministic drones, idempotent seeding (measured), the in-memory pools."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
import time
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from dronecommon.domain import Location, PackageSize
from dronescheduler.fleet import Fleet
from dronescheduler.repository import SchedulerRepository
from dronescheduler.settings import DroneClassSpec, DroneSchedulerSettings, FleetSettings
from dronescheduler.state import FleetState

from .conftest import DOWNTOWN, HEAVY, LIGHT, NORTHGATE, STANDARD, area, fleet

Document = dict[str, Any]
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


def test_drones_spread_over_bases_and_classes_deterministically() -> None:
    settings = fleet(count=11, classes=[LIGHT, STANDARD, HEAVY])
    bases = [DOWNTOWN, NORTHGATE]
    first, second = Fleet(settings, bases), Fleet(settings, bases)
    assert [d.id for d in first.drones] == [d.id for d in second.drones]
    assert first.fingerprint == second.fingerprint
    assert len(first.drones) == 11
    per_base = {b: sum(d.base.name == b for d in first.drones) for b in ("downtown", "northgate")}
    assert per_base == {"downtown": 6, "northgate": 5}
    assert first.drones[0].id == "downtown-light-00001"
    assert len({d.id for d in first.drones}) == 11


def test_default_fleet_lasts_a_minute_at_400_per_second() -> None:
    default = Fleet(FleetSettings())
    assert len(default.drones) == 40_000
    assert len(default.bases) == 6

    def capable(size: PackageSize, weight: float) -> int:
        classes = default.capable_classes(size, weight)
        return sum(drone.drone_class in classes for drone in default.drones)

    assert [c.name for c in default.capable_classes(PackageSize.SMALL, 10)] == [
        "standard",
        "heavy",
    ]
    assert capable(PackageSize.SMALL, 10) == 35_998  # the sample package
    # Whatever the packages, about 24,000 drones (60 s x 400/s) can carry them.
    assert capable(PackageSize.LARGE, 100) == 23_998
    assert capable(PackageSize.SMALL, 1) == 40_000
    assert default.fingerprint != Fleet(FleetSettings(count=39_999)).fingerprint


def test_invalid_fleet_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="unique"):
        area([DOWNTOWN, DOWNTOWN])
    with pytest.raises(ValueError, match="at least one drone"):
        DroneSchedulerSettings(fleet=fleet(count=1), service_area=area([DOWNTOWN, NORTHGATE]))
    with pytest.raises(ValueError, match="pattern"):
        DroneClassSpec(name="Bad Name", max_size=PackageSize.SMALL, max_weight=1, speed_mph=1)
    with pytest.raises(ValueError, match="greater than 0"):
        DroneClassSpec(name="stuck", max_size=PackageSize.SMALL, max_weight=1, speed_mph=0)


def test_pools_take_first_free_and_know_the_soonest_return() -> None:
    state = FleetState(Fleet(fleet(count=3)), random.Random(1))
    classes = list(state.fleet.classes)
    here = Location(latitude=DOWNTOWN.latitude, longitude=DOWNTOWN.longitude)
    taken = [state.take(here, classes, NOW) for _ in range(3)]
    assert all(taken)
    assert len({s.drone.id for s in taken if s}) == 3
    assert state.take(here, classes, NOW) is None
    assert state.soonest(classes, NOW) is None  # reserved drones are not "busy until" anything
    for minutes, drone_state in zip((5, 3, 9), taken, strict=True):
        assert drone_state is not None
        state.learn(drone_state.drone.id, 1, NOW + dt.timedelta(minutes=minutes), "d", NOW)
        state.unreserve(drone_state, NOW)
    assert state.soonest(classes, NOW) == NOW + dt.timedelta(minutes=3)
    assert state.take(here, classes, NOW + dt.timedelta(minutes=2)) is None
    back = state.take(here, classes, NOW + dt.timedelta(minutes=3))
    assert back is taken[1]
    # Old news changes nothing; a newer generation (a release) frees a drone at once.
    assert taken[0] is not None
    state.learn(taken[0].drone.id, 1, NOW, "d", NOW)
    assert state.soonest(classes, NOW) == NOW + dt.timedelta(minutes=5)
    state.learn(taken[0].drone.id, 2, NOW, "d", NOW)
    assert state.take(here, classes, NOW) is taken[0]


async def test_seeding_is_idempotent_even_when_replicas_start_together(
    mongo_url: str, mongo_database: str, database: AsyncDatabase[Document]
) -> None:
    settings = fleet(count=500, classes=[LIGHT, STANDARD])
    bases = [DOWNTOWN, NORTHGATE]
    clients: list[AsyncMongoClient[Document]] = [
        AsyncMongoClient(mongo_url, tz_aware=True) for _ in range(2)
    ]
    try:
        repositories = [SchedulerRepository(c[mongo_database]) for c in clients]
        results = await asyncio.gather(*(r.seed(Fleet(settings, bases), NOW) for r in repositories))
        assert sum(result.inserted for result in results) == 500
        assert await database["drones"].count_documents({}) == 500
        again = await repositories[0].seed(Fleet(settings, bases), NOW)
        assert again.already_seeded
        assert again.inserted == 0
        # A bigger fleet adds its new drones only.
        bigger = settings.model_copy(update={"count": 520})
        grown = await repositories[1].seed(Fleet(bigger, bases), NOW)
        assert grown.inserted == 20
        assert await database["drones"].count_documents({}) == 520
        drone = await database["drones"].find_one({"_id": "northgate-standard-00001"})
        assert drone is not None
        assert drone["base"] == "northgate"
        assert drone["droneClass"] == "standard"
        meta = await database["fleet"].find_one({"_id": "fleet"})
        assert meta is not None
        assert meta["count"] == 520
        assert [b["name"] for b in meta["bases"]] == ["downtown", "northgate"]
        # Indexes are created idempotently.
        for _ in range(2):
            await repositories[0].ensure_indexes()
        names = {index["name"] async for index in await database["leases"].list_indexes()}
        assert "drone_gen" in names
    finally:
        for c in clients:
            await c.close()


async def test_seeding_the_default_fleet_is_fast(mongo_url: str, mongo_database: str) -> None:
    """40,000 drones in one unordered bulk insert: about a second on FerretDB/SQLite."""
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url, tz_aware=True)
    try:
        repository = SchedulerRepository(client[mongo_database])
        default = Fleet(FleetSettings())
        started = time.perf_counter()
        result = await repository.seed(default, NOW)
        seeded = time.perf_counter() - started
        assert result.inserted == 40_000
        started = time.perf_counter()
        assert (await repository.seed(default, NOW)).already_seeded
        skipped = time.perf_counter() - started
        assert seeded < 15
        assert skipped < 1
    finally:
        await client.close()
