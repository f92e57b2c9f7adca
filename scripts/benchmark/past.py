"""Past deliveries: the stores of a stack as a run of ``count`` completed deliveries left them.

Delivery ``past-<n>`` (the load's ids are UUIDs, so none collides) belongs to the load's account
and owners (``bench``, ``bench-owner-<n % 50>``), carries the load's package and places, and was
accepted, scheduled, flown and confirmed in the hours before now (spread evenly over
``SPAN_SECONDS``, inside the shortest retention, so every record it left is still kept). Each one
leaves, written with the services' own code in bulk (``insert_many`` batches, Redis pipelines):

- **package** (MongoDB ``packages``): its package, as the repository's ``insert_one`` stores it;
- **drone scheduler** (MongoDB): its ``assignments`` document (a drone of the nearest base and
  the least capable class, planned by ``Fleet.plan``) and its ``releases`` document at the
  drone's return;
- **delivery** (Redis): ``DeliveryService.create`` then ``DeliveryService.confirm`` (the
  service's own decisions and Lua scripts, queued on a pipeline): the hash, history, stage
  entries, the owner's list and monthly summary, Completed with the retention TTL;
- **ingestion** (Redis): the owner record of the delivery (``ingestion:owner:<id>``), with what
  is left of its TTL;
- **simulator** (Redis): the delivery in the finished set.

Not seeded, and why:

- drone **leases**: one document per change of a drone, compacted to each drone's latest
  generations, so their number follows the fleet, not the deliveries;
- re-**plans** and the workflow's **pending** records: the load neither reschedules nor cancels;
- ingestion's **idempotency** records: the load sends no ``Idempotency-Key``; its per-account
  **in progress** set: a completed delivery leaves it;
- the delivery **events** stream: capped (``events_maxlen``) and read by every consumer group
  long ago; appending past events now would have the notifier, ingestion and the simulator act on
  them again;
- the **telemetry** state of a flight (the delivery's trail of fixes, its live status and the
  reported phases in its history): written fix by fix by the telemetry consumer; past deliveries
  are stored as completed without telemetry (their ETAs from the plan);
- the notifier's **outbox** items of past notices (one delivery in ten asks for e-mail): they
  expire after the notifier's retention and the outbox is read by id and due time only.

The TTLs written by the services' scripts run from now (the retention of a delivery confirmed an
hour ago ends an hour late): every record is present during the run, as it would be.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import time
from collections.abc import Iterator
from typing import Any

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from delivery.repository import DeliveryRepository, Snapshot
from delivery.schemas import Confirmation, DeliveryIn
from delivery.service import DeliveryService
from delivery.settings import DeliverySettings
from dronecommon.domain import ConfirmationType, PackageSize
from dronescheduler.fleet import Drone, Fleet
from dronescheduler.records import AssignmentRecord
from dronescheduler.repository import SchedulerRepository
from dronescheduler.settings import DroneSchedulerSettings
from ingestion.accounts import OWNER_PREFIX
from ingestion.settings import IngestionSettings
from package.repository import COLLECTION, PackageRecord, _new_document
from package.settings import PackageSettings
from simulator.settings import SimulatorSettings
from simulator.store import FlightStore

from .common import say
from .load import NOTIFY_EVERY, OWNERS

#: Past deliveries happened over this many seconds before now (inside every 24 h retention).
SPAN_SECONDS = 20 * 3600
#: Deliveries written per round trip (one pipeline, one ``insert_many`` per collection).
BATCH = 2000
#: The load's places repeat after this many requests (``load.delivery_body``).
PLACES = 2000
PREFIX = "past-"


def past_id(n: int) -> str:
    return f"{PREFIX}{n:08d}"


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``env`` on top (services read their settings from it)."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def seed(config: Any, count: int, *, batch: int = BATCH) -> dict[str, Any]:
    """Write ``count`` past deliveries into the stores of the stack ``config`` (a
    ``dronetesting.stack.StackConfig``, its services running); how long it took."""
    began = time.monotonic()
    if count > 0:
        asyncio.run(_seed(config, count, batch))
    seconds = time.monotonic() - began
    say(f"past deliveries: {count:,} seeded in {seconds:.1f} s")
    return {"count": count, "seconds": round(seconds, 1)}


def _settings(config: Any) -> dict[str, Any]:
    """Each service's settings, as the stack starts it."""
    kinds = {
        "delivery": DeliverySettings,
        "scheduler": DroneSchedulerSettings,
        "ingestion": IngestionSettings,
        "package": PackageSettings,
        "simulator": SimulatorSettings,
    }
    found = {}
    for name, cls in kinds.items():
        service = "dronescheduler" if name == "scheduler" else name
        with environment({**config.env_for(service), **config.extra_env}):
            found[name] = cls()
    return found


async def _seed(config: Any, count: int, batch: int) -> None:
    redis = Redis.from_url(config.redis_url)
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(config.mongo_url, tz_aware=True)
    now = dt.datetime.now(dt.UTC)
    began = reported = time.monotonic()
    try:
        writer = _Writer(redis, mongo, **_settings(config))
        for start in range(0, count, batch):
            numbers = range(start, min(count, start + batch))
            await writer.write(numbers, count, now)
            if time.monotonic() - reported > 10:
                reported = time.monotonic()
                rate = (numbers[-1] + 1) / (reported - began)
                say(f"past deliveries: {numbers[-1] + 1:,}/{count:,} ({rate:,.0f}/s)")
        await writer.flush()
    finally:
        await redis.aclose()
        await mongo.close()


class _QueuedDeliveries(DeliveryRepository):
    """The delivery service's repository with its writes queued on a pipeline: the service's own
    scripts and decisions, a batch per round trip. Past events are not appended (see above)."""

    def __init__(self, pipe: Any, settings: DeliverySettings) -> None:
        super().__init__(
            pipe,
            prefix=settings.key_prefix,
            events_maxlen=settings.events_maxlen,
            stages_maxlen=settings.live.stages_maxlen,
        )
        self.revs: dict[str, str] = {}
        self.created: dict[str, Any] = {}
        self._create = _Queued(self._create, None)  # type: ignore[method-assign]
        self._write = _Queued(self._write, 1)  # type: ignore[method-assign]

    def _outbox(self, outbox: Any) -> list[str]:
        return []

    async def create(
        self, record: Any, put: str, event: Any, stage: Any, outbox: Any = None
    ) -> str | None:
        self.created[record.id] = record
        return await super().create(record, put, event, stage, None)

    async def get(self, delivery_id: str) -> Snapshot | None:
        record = self.created.get(delivery_id)
        rev = self.revs.get(delivery_id)
        return None if record is None or rev is None else Snapshot(record, rev)

    async def count_creation(
        self, owner_id: str, delivery_id: str, created_at: dt.datetime, expire_at: int | None
    ) -> None:
        utc = created_at.astimezone(dt.UTC)
        key = self.summary_key(owner_id, utc.year, utc.month)
        self.redis.zadd(key, {delivery_id: int(utc.timestamp() * 1000)}, nx=True)
        if expire_at is not None:
            self.redis.expireat(key, expire_at)

    def clear(self) -> None:
        self.revs.clear()
        self.created.clear()


class _Queued:
    """A script of the repository that queues on its pipeline and answers ``reply``."""

    def __init__(self, script: Any, reply: Any) -> None:
        self.script = script
        self.reply = reply

    async def __call__(self, *, keys: list[str], args: list[Any]) -> Any:
        await self.script(keys=keys, args=args)
        return self.reply


class _Writer:
    """One batch of past deliveries at a time, into every store."""

    def __init__(self, redis: Redis, mongo: Any, **settings: Any) -> None:
        self.settings = settings
        scheduler: DroneSchedulerSettings = settings["scheduler"]
        area = scheduler.service_area
        self.fleet = Fleet(scheduler.fleet, area.bases)
        self.places = [
            (area.resolve(f"bench pickup {i}"), area.resolve(f"bench drop-off {i}"))
            for i in range(PLACES)
        ]
        self.drones: dict[tuple[str, str], list[Drone]] = {}
        for drone in self.fleet.drones:
            self.drones.setdefault((drone.base.name, drone.drone_class.name), []).append(drone)
        self.gens: dict[str, int] = {}
        delivery: DeliverySettings = settings["delivery"]
        self.redis = redis
        self.pipe = redis.pipeline(transaction=False)
        self.repository = _QueuedDeliveries(self.pipe, delivery)
        self.clock = [dt.datetime.now(dt.UTC)]
        self.service = DeliveryService(self.repository, delivery, lambda: self.clock[0])
        self.packages = mongo[settings["package"].mongo.database][COLLECTION]
        self.scheduler = SchedulerRepository(mongo[scheduler.mongo.database])
        simulator = settings["simulator"]
        self.finished_key = FlightStore(redis, prefix=simulator.key_prefix).finished_key
        self.ownership_ms = int(settings["ingestion"].ownership_ttl * 1000)
        self.inserting: asyncio.Future[Any] | None = None

    async def write(self, numbers: range, count: int, now: dt.datetime) -> None:
        """Deliveries ``numbers`` of ``count``, accepted over the ``SPAN_SECONDS`` before now."""
        packages, assignments, releases = [], [], []
        confirmations: dict[str, Confirmation] = {}
        finished: dict[str, int] = {}
        for n in numbers:
            delivery_id = past_id(n)
            owner = f"bench-owner-{n % OWNERS}"
            accepted = now - dt.timedelta(seconds=SPAN_SECONDS * (1 - n / count))
            pickup, dropoff = self.places[n % PLACES]
            expedited = n % 4 == 0
            package = PackageRecord(id=f"{PREFIX}package-{n}", size="Small", weight=10.0, tag=None)
            packages.append(_new_document(package, "bench", owner, accepted))
            record = self._assignment(delivery_id, owner, package, pickup, dropoff, accepted, n)
            assignments.append(record.document())
            back = record.busy_until
            releases.append({"_id": delivery_id, "releasedAt": back, "at": back})
            body: dict[str, Any] = {
                "id": delivery_id,
                "owner": {"userId": owner, "accountId": "bench"},
                "pickup": pickup.model_dump(mode="json"),
                "dropoff": dropoff.model_dump(mode="json"),
                "deadline": "",
                "expedited": expedited,
                "confirmationRequired": "None",
                "droneId": record.drone_id,
                "pickupETA": record.pickup_eta.isoformat(),
                "deliveryETA": record.delivery_eta.isoformat(),
            }
            if n % NOTIFY_EVERY == 0:
                body["notifyMeRequests"] = [{"emailAddress": f"{owner}@example.com"}]
            self.clock[0] = record.assigned_at
            await self.service.create(delivery_id, DeliveryIn.model_validate(body))
            confirmations[delivery_id] = Confirmation(
                date_time=record.delivery_eta,
                geo_coordinates=dropoff,
                confirmation_type=ConfirmationType.NONE,
            )
            key = OWNER_PREFIX + delivery_id
            self.pipe.hset(key, mapping={"userId": owner, "accountId": "bench"})
            age_ms = int((now - accepted).total_seconds() * 1000)
            self.pipe.pexpire(key, max(1000, self.ownership_ms - age_ms))
            finished[delivery_id] = int(back.timestamp() * 1000)
        self.pipe.zadd(self.finished_key, finished)
        await self.flush()  # the previous batch's documents
        self.inserting = asyncio.gather(
            self.packages.insert_many(packages, ordered=False),
            self.scheduler.assignments.insert_many(assignments, ordered=False),
            self.scheduler.releases.insert_many(releases, ordered=False),
        )
        await self.pipe.execute()
        # The confirmations, each against the revision its creation left.
        revs = self.redis.pipeline(transaction=False)
        for delivery_id in confirmations:
            revs.hget(self.repository.delivery_key(delivery_id), "rev")
        for delivery_id, rev in zip(confirmations, await revs.execute(), strict=True):
            self.repository.revs[delivery_id] = rev.decode()
        for delivery_id, confirmation in confirmations.items():
            self.clock[0] = confirmation.date_time
            await self.service.confirm(delivery_id, confirmation)
        await self.pipe.execute()
        self.repository.clear()

    async def flush(self) -> None:
        """Wait for the documents of the batch written last (they go in while the next one is
        made)."""
        inserting, self.inserting = self.inserting, None
        if inserting is not None:
            await inserting

    def _assignment(
        self,
        delivery_id: str,
        owner: str,
        package: PackageRecord,
        pickup: Any,
        dropoff: Any,
        accepted: dt.datetime,
        n: int,
    ) -> AssignmentRecord:
        """As the scheduler plans it: a drone of the nearest base, of the least capable class
        that carries the package (drones taken in turn), its lease's next generation."""
        base = self.fleet.bases_by_distance(pickup)[0]
        drone_class = self.fleet.capable_classes(PackageSize.SMALL, package.weight)[0]
        drones = self.drones[(base.name, drone_class.name)]
        drone = drones[n % len(drones)]
        expedited = n % 4 == 0
        plan = self.fleet.plan(drone, pickup, dropoff, accepted, expedited=expedited)
        gen = self.gens[drone.id] = self.gens.get(drone.id, 0) + 2  # assigned, then released
        return AssignmentRecord(
            delivery_id=delivery_id,
            owner_id=owner,
            drone_id=drone.id,
            base=drone.base.name,
            drone_class=drone.drone_class.name,
            lease_gen=gen - 1,
            pickup=pickup,
            dropoff=dropoff,
            package_id=package.id,
            package_size=PackageSize.SMALL,
            package_weight=package.weight,
            expedited=expedited,
            speed_mph=plan.speed_mph,
            miles=plan.miles,
            assigned_at=plan.start,
            pickup_eta=plan.pickup_eta,
            delivery_eta=plan.delivery_eta,
            busy_until=plan.busy_until,
        )
