"""Replicas' clocks disagree a little: a drone is handed out again only a safety margin after the
time its last trip frees it, by the clock of the replica that hands it out."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from dronecommon.domain import utcnow
from dronescheduler.errors import NoDroneAvailable
from dronescheduler.fleet import Fleet
from dronescheduler.repository import SchedulerRepository
from dronescheduler.schemas import DroneDeliveryIn
from dronescheduler.service import Scheduler
from dronescheduler.settings import FleetSettings

from .conftest import delivery, fleet

Document = dict[str, Any]


@pytest.fixture
async def repository(mongo_url: str, mongo_database: str) -> AsyncIterator[SchedulerRepository]:
    client: AsyncMongoClient[Document] = AsyncMongoClient(mongo_url, tz_aware=True)
    repository = SchedulerRepository(client[mongo_database])
    await repository.ensure_indexes()
    try:
        yield repository
    finally:
        await client.close()


async def replica(
    repository: SchedulerRepository, settings: FleetSettings, clock: Any = utcnow
) -> Scheduler:
    scheduler = Scheduler(Fleet(settings), repository, settings, clock=clock)
    await repository.seed(scheduler.fleet, utcnow())
    await scheduler.load()
    return scheduler


def request() -> DroneDeliveryIn:
    return DroneDeliveryIn.model_validate(delivery())


async def test_a_replica_whose_clock_runs_ahead_waits_out_the_margin(
    repository: SchedulerRepository,
) -> None:
    settings = fleet(count=1, clock_skew_margin=2.0)
    first = await replica(repository, settings)
    record, _ = await first.assign(request())
    frees_at = first.fleet.free_at(record.assigned_at, record.busy_until)

    # A replica whose clock reads 1 s past the end of that trip: within the margin, still busy.
    ahead = await replica(repository, settings, clock=lambda: frees_at + dt.timedelta(seconds=1))
    with pytest.raises(NoDroneAvailable) as busy:
        await ahead.assign(request())
    assert busy.value.headers["Retry-After"] == "1"  # what is left of the margin, rounded up

    # Past the margin, the drone is free again.
    later = await replica(repository, settings, clock=lambda: frees_at + dt.timedelta(seconds=2.5))
    again, created = await later.assign(request())
    assert created
    assert again.drone_id == record.drone_id


def test_the_margin_is_a_documented_setting() -> None:
    assert FleetSettings().clock_skew_margin == 2.0
    with pytest.raises(ValueError, match="clock_skew_margin"):
        FleetSettings(clock_skew_margin=-1)
