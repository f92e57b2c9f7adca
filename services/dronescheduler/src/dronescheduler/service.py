"""The scheduling rules: assign, replay, release, re-plan, utilization.

**Leases.** Every change of a drone's state is a generation in the lease log, which only one
writer wins (``leases.py``): two requests, in one replica or many, never hold the same drone at
once.

**Assignments.** The assignment document is keyed by the delivery id and inserted after the
drone is won: it is the arbiter between duplicate requests. The request that inserts it answers
201; a request that loses gives its drone back at once (a release generation) and answers 200
with the winner's assignment, or 409 when that assignment was released.

**Knowledge.** Candidates come from this replica's in-memory view (``state.py``), built from the
lease log at start-up and kept up to date by its own writes. A drone another replica moved on
shows up as a duplicate-key error; the replica then reads that drone's newer generations and
tries its next candidate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from pymongo.errors import DuplicateKeyError

from dronecommon.area import DEFAULT_SERVICE_AREA, ServiceArea
from dronecommon.domain import Location, month_bounds, utcnow

from .compaction import LogRead, prune, read_log
from .errors import (
    AssignmentNotFound,
    AssignmentReleased,
    DroneBusy,
    DroneNotFound,
    DroneReassigned,
    DroneRetired,
    FleetLoading,
    NoAssignmentsInMonth,
    NoCapableDrone,
    NoDroneAvailable,
    OutsideServiceArea,
    TripTooLong,
)
from .fleet import Drone, DroneClass, Fleet, Plan, to_millis
from .leases import MAX_ADVANCES, Holder, LeaseLog, Outcome
from .records import AssignmentRecord, Lease, LeaseKind
from .repository import SchedulerRepository
from .schemas import DroneDeliveryIn
from .settings import FleetSettings
from .state import DroneState, FleetState

KNOWN_IDS = 500_000


class KeyedLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[str, tuple[asyncio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        lock, users = self._locks.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._locks[key]


class Scheduler:
    def __init__(
        self,
        fleet: Fleet,
        repository: SchedulerRepository,
        settings: FleetSettings,
        *,
        clock: Callable[[], dt.datetime] = utcnow,
        state: FleetState | None = None,
        lease_retention: float = 900.0,
        prune_batch: int = 500,
        area: ServiceArea = DEFAULT_SERVICE_AREA,
    ) -> None:
        self.fleet = fleet
        self.repository = repository
        self.settings = settings
        self.area = area
        self.clock = clock
        self.state = state or FleetState(
            fleet, margin=dt.timedelta(seconds=settings.clock_skew_margin)
        )
        self.retention = dt.timedelta(seconds=lease_retention)
        self.prune_batch = prune_batch
        self.leases = LeaseLog(fleet, repository, self.state, clock, trust=self.retention / 2)
        self.loaded = False
        self._locks = KeyedLocks()
        # Deliveries this replica has been asked for (or seen assigned): a PUT for one of them
        # reads its record rather than recording the request first.
        self._known: dict[str, None] = {}

    # --- start-up -------------------------------------------------------------------------------

    async def load(self) -> LogRead:
        """Learn the latest generation of every drone from the lease log (O(fleet) documents:
        ``compaction.py``); serve from then on."""
        read = await self._read_log()
        self.loaded = True
        return read

    async def refresh(self) -> tuple[LogRead, int]:
        """Read the lease log again (every replica, every refresh interval) and delete the
        generations it no longer needs; the read and how many were deleted."""
        read = await self._read_log()
        deleted = await prune(self.repository, read.prunable, batch=self.prune_batch)
        return read, deleted

    async def _read_log(self) -> LogRead:
        def remember(lease: Lease) -> None:
            if lease.kind is LeaseKind.ASSIGN:
                self._remember(lease.delivery_id)

        return await read_log(
            self.repository, self.state, self.clock, retention=self.retention, on_lease=remember
        )

    def _require_loaded(self) -> None:
        if not self.loaded:
            raise FleetLoading()

    def _remember(self, delivery_id: str) -> None:
        self._known[delivery_id] = None
        if len(self._known) > KNOWN_IDS:
            del self._known[next(iter(self._known))]

    # --- assign ---------------------------------------------------------------------------------

    async def assign(self, request: DroneDeliveryIn) -> tuple[AssignmentRecord, bool]:
        """The delivery's assignment and whether it was made now (``False``: a replay)."""
        self._require_loaded()
        package = request.package_detail
        classes = self.fleet.capable_classes(package.size, package.weight)
        if not classes:
            raise NoCapableDrone(package.size, package.weight)
        delivery_id = request.delivery_id
        async with self._locks.hold(delivery_id):
            if delivery_id in self._known:
                existing = await self.repository.assignment(delivery_id)
                if existing is not None:
                    return self._replay(existing), False
            self._remember(delivery_id)
            bases = self._bases_for(request.pickup, request.dropoff)
            try:
                # A delivery this replica never saw is claimed for straight away: the assignment's
                # insert decides between duplicates (``_claim``), so a first request reads nothing.
                return await self._claim(request, classes, bases)
            except NoDroneAvailable:
                # Every drone out: a retry of a delivery another replica assigned still gets its
                # assignment, not a 503.
                existing = await self.repository.assignment(delivery_id)
                if existing is None:
                    raise
                return self._replay(existing), False

    # --- the service area -----------------------------------------------------------------------

    def _check_area(self, pickup: Location, dropoff: Location) -> None:
        for which, place in (("pickup", pickup), ("drop-off", dropoff)):
            _, miles = self.area.nearest_base(place)
            if miles > self.area.radius_miles:
                raise OutsideServiceArea(which, miles, self.area.radius_miles)

    def _bases_for(self, pickup: Location, dropoff: Location) -> frozenset[str]:
        """The bases whose drones may fly this trip (within the longest trip allowed)."""
        self._check_area(pickup, dropoff)
        trips = {
            base.name: self.area.trip_miles(base.location, pickup, dropoff)
            for base in self.fleet.bases
        }
        allowed = frozenset(name for name, miles in trips.items() if miles <= self._max_trip)
        if not allowed:
            raise TripTooLong(min(trips.values()), self._max_trip)
        return allowed

    @property
    def _max_trip(self) -> float:
        return self.area.max_trip_miles

    def _replay(self, existing: AssignmentRecord) -> AssignmentRecord:
        if existing.released:
            raise AssignmentReleased(existing.delivery_id, existing.drone_id)
        return existing

    async def _claim(
        self, request: DroneDeliveryIn, classes: list[DroneClass], bases: frozenset[str]
    ) -> tuple[AssignmentRecord, bool]:
        for _ in range(self.settings.max_claim_attempts):
            now = self.clock()
            state = self.state.take(request.pickup, classes, now, within=bases)
            if state is None:
                raise self._no_drone(classes, now)
            won = await self.leases.claim(state, request, now)
            if won is None:
                continue  # another replica had moved that drone on
            lease, plan = won
            record = self._record(request, state, lease, plan)
            try:
                await self.repository.insert_assignment(record)
            except DuplicateKeyError:
                await self.leases.give_back_quietly(lease)
                existing = await self.repository.assignment(request.delivery_id)
                if existing is None:  # cannot be: assignments are never deleted
                    raise
                return self._replay(existing), False
            except BaseException:
                await asyncio.shield(self.leases.give_back_quietly(lease))
                raise
            return record, True
        raise NoDroneAvailable(
            "Other schedulers kept taking the drones tried; retry.", retry_after=1
        )

    def _record(
        self, request: DroneDeliveryIn, state: DroneState, lease: Lease, plan: Plan
    ) -> AssignmentRecord:
        drone = state.drone
        package = request.package_detail
        return AssignmentRecord(
            delivery_id=request.delivery_id,
            owner_id=request.owner_id,
            drone_id=drone.id,
            base=drone.base.name,
            drone_class=drone.drone_class.name,
            lease_gen=lease.gen,
            pickup=request.pickup,
            dropoff=request.dropoff,
            package_id=package.id,
            package_size=package.size,
            package_weight=package.weight,
            expedited=request.expedited,
            speed_mph=plan.speed_mph,
            miles=plan.miles,
            assigned_at=plan.start,
            pickup_eta=plan.pickup_eta,
            delivery_eta=plan.delivery_eta,
            busy_until=plan.busy_until,
        )

    def _no_drone(self, classes: list[DroneClass], now: dt.datetime) -> NoDroneAvailable:
        soonest = self.state.soonest(classes, now)
        wait = 1 if soonest is None else math.ceil((soonest - now).total_seconds())
        wait = min(max(wait, 1), self.settings.retry_after_max)
        return NoDroneAvailable(
            f"Every drone that can carry this package is busy; retry in {wait} s.",
            retry_after=wait,
        )

    # --- release and re-plan --------------------------------------------------------------------

    async def release(self, delivery_id: str) -> None:
        """Free the delivery's drone now; the release is recorded and final. Idempotent.

        The release document is inserted first and decides: a delivery released before writes
        nothing more. Then, when the drone's busy time has not ended, a release generation frees
        it early; should that fail (or the process stop in between), the drone is free when its
        busy time ends, as it would have been without the release.
        """
        self._require_loaded()
        async with self._locks.hold(delivery_id):
            record = await self.repository.assignment(delivery_id, with_release=False)
            if record is None:
                return
            now = to_millis(self.clock())
            if not await self.repository.insert_release(
                delivery_id, min(now, record.busy_until), now
            ):
                return
            if self.fleet.free_at(record.assigned_at, record.busy_until) > now:
                await self.leases.advance(Holder.of(record), LeaseKind.RELEASE, now, now)

    async def replan(
        self, delivery_id: str, pickup: Location | None, dropoff: Location | None
    ) -> AssignmentRecord:
        """The same drone on the new route, planned from the time of the assignment."""
        self._require_loaded()
        async with self._locks.hold(delivery_id):
            for _ in range(MAX_ADVANCES):
                record = self._replay(await self.get(delivery_id))
                updated = await self._replan(
                    record, pickup or record.pickup, dropoff or record.dropoff
                )
                if updated is not None:
                    return updated
        raise DroneBusy(f"Delivery {delivery_id} is being re-planned concurrently; retry.")

    async def _replan(
        self, record: AssignmentRecord, pickup: Location, dropoff: Location
    ) -> AssignmentRecord | None:
        """``record`` on the new route, stored; ``None`` when another re-plan came first."""
        if pickup == record.pickup and dropoff == record.dropoff:
            return record
        drone = self.fleet.by_id.get(record.drone_id)
        if drone is None:
            raise DroneRetired(record.drone_id)
        self._check_area(pickup, dropoff)
        trip = self.area.trip_miles(drone.base.location, pickup, dropoff)
        if trip > self._max_trip:
            raise TripTooLong(trip, self._max_trip)
        plan = self.fleet.plan(
            drone, pickup, dropoff, record.assigned_at, expedited=record.expedited
        )
        now = to_millis(self.clock())
        outcome, lease = await self.leases.advance(
            Holder.of(record), LeaseKind.REPLAN, plan.free_at, now
        )
        if outcome is Outcome.RELEASED:
            self._replay(record.replace(released_at=lease.at))
        if outcome is Outcome.MOVED:
            raise DroneReassigned(record.drone_id)
        updated = record.replace(
            plan_no=record.plan_no + 1,
            pickup=pickup,
            dropoff=dropoff,
            lease_gen=lease.gen,
            miles=plan.miles,
            pickup_eta=plan.pickup_eta,
            delivery_eta=plan.delivery_eta,
            busy_until=plan.busy_until,
        )
        try:
            await self.repository.insert_plan(updated, now)
        except DuplicateKeyError:
            return None  # another replica re-planned meanwhile: plan again on top of its plan
        return updated

    # --- reads ----------------------------------------------------------------------------------

    def drone(self, drone_id: str) -> Drone:
        """A drone of the configured fleet (404 if there is none by that id)."""
        drone = self.fleet.by_id.get(drone_id)
        if drone is None:
            raise DroneNotFound(drone_id)
        return drone

    async def get(self, delivery_id: str) -> AssignmentRecord:
        record = await self.repository.assignment(delivery_id)
        if record is None:
            raise AssignmentNotFound(delivery_id)
        return record

    async def utilization(self, owner_id: str, year: int, month: int) -> tuple[float, float]:
        """(traveled miles, assigned hours) of the owner's assignments made in that UTC month."""
        start, end = month_bounds(year, month)
        records = await self.repository.owner_assignments(owner_id, start, end)
        if not records:
            raise NoAssignmentsInMonth(owner_id, year, month)
        miles = sum(record.used_miles() for record in records)
        hours = sum(record.used_hours() for record in records)
        return round(miles, 3), round(hours, 4)
