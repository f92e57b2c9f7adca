"""The lease log: every change of a drone's state is a new generation that only one writer wins.

A lease document has the unique ``_id`` ``"<droneId>:<gen>"``. Whoever inserts generation
``g + 1`` of a drone has won it; everyone else gets a duplicate-key error. A drone is claimed only
by someone who knows its latest generation ``g`` ended (busy time past), so two requests, in one
replica or many, never hold the same drone at once. Releases and re-plans are generations too,
so they cannot be lost between a claim and the drone's next user.

Superseded generations are deleted after a while (``compaction.py``): a claim of ``g + 1`` is
then safe only if ``g`` was known to be the latest recently enough, so a claim made on knowledge
older than ``trust`` first reads the drone's latest generation (:meth:`LeaseLog.verify`).

:class:`LeaseLog` writes generations and keeps this replica's knowledge (``state.py``) up to date
with every generation it writes or meets; the rules that decide what to write are in
``service.py``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

from pymongo.errors import DuplicateKeyError

from .errors import DroneBusy
from .fleet import Fleet, Plan, to_millis
from .records import AssignmentRecord, Lease, LeaseKind
from .repository import SchedulerRepository
from .schemas import DroneDeliveryIn
from .state import DroneState, FleetState

logger = logging.getLogger("dronescheduler")

# Newer generations read one by one (by _id, which every store answers from its index) before
# asking for the latest one directly.
MAX_PROBES = 4
MAX_ADVANCES = 16


@dataclass(frozen=True, slots=True)
class Holder:
    """The generation of a drone a delivery holds (from its assignment or a fresh lease)."""

    drone_id: str
    gen: int
    delivery_id: str

    @classmethod
    def of(cls, record: AssignmentRecord) -> Holder:
        return cls(record.drone_id, record.lease_gen, record.delivery_id)


class Outcome(Enum):
    DONE = "done"
    RELEASED = "released"  # the delivery's drone was released already
    MOVED = "moved"  # the drone has since gone to another delivery


class LeaseLog:
    """Generations written and learned by this replica."""

    def __init__(
        self,
        fleet: Fleet,
        repository: SchedulerRepository,
        state: FleetState,
        clock: Callable[[], dt.datetime],
        *,
        trust: dt.timedelta,
    ) -> None:
        self.fleet = fleet
        self.repository = repository
        self.state = state
        self.clock = clock
        self.trust = trust

    def learn(self, lease: Lease, now: dt.datetime) -> None:
        """Learn a generation this replica wrote or read as the drone's latest just now."""
        self.state.learn(
            lease.drone_id, lease.gen, lease.busy_until, lease.delivery_id, now, confirmed_at=now
        )

    async def verify(self, candidate: DroneState) -> None:
        """Read the drone's latest generation from the log (knowledge too old to claim on)."""
        now = self.clock()
        latest = await self.repository.latest_lease(candidate.drone.id)
        if latest is not None:
            self.learn(latest, now)
        else:  # no generation at all: nothing was ever written, nothing can have been deleted
            candidate.learned_at = now

    async def claim(
        self, candidate: DroneState, request: DroneDeliveryIn, now: dt.datetime
    ) -> tuple[Lease, Plan] | None:
        """Insert the next generation of a reserved drone for ``request``; ``None`` if someone
        else holds it. The reservation ends either way."""
        plan = self.fleet.plan(
            candidate.drone, request.pickup, request.dropoff, now, expedited=request.expedited
        )
        try:
            if self.state.confirmed(candidate) < now - self.trust:
                await self.verify(candidate)
                if self.state.busy(candidate, self.clock()):
                    return None
            for _ in range(MAX_PROBES):
                lease = Lease(
                    drone_id=candidate.drone.id,
                    gen=candidate.gen + 1,
                    delivery_id=request.delivery_id,
                    kind=LeaseKind.ASSIGN,
                    busy_until=plan.free_at,
                    at=plan.start,
                )
                try:
                    await self.repository.insert_lease(lease)
                except DuplicateKeyError:
                    await self.catch_up(candidate)
                    if self.state.busy(candidate, self.clock()):
                        return None
                    continue  # freed meanwhile (a release): claim its next generation
                self.learn(lease, now)
                return lease, plan
            return None
        finally:
            self.state.unreserve(candidate, self.clock())

    async def catch_up(self, candidate: DroneState) -> None:
        """Learn the generations of a drone that were written by someone else."""
        drone_id, gen = candidate.drone.id, candidate.gen
        now = self.clock()
        for _ in range(MAX_PROBES):
            lease = await self.repository.lease(drone_id, gen + 1)
            if lease is None:
                return
            self.learn(lease, now)
            gen = lease.gen
        latest = await self.repository.latest_lease(drone_id)
        if latest is not None:
            self.learn(latest, now)

    async def advance(
        self, holder: Holder, kind: LeaseKind, busy_until: dt.datetime, now: dt.datetime
    ) -> tuple[Outcome, Lease]:
        """Write the next generation of the delivery's drone, following generations written by
        others for the same delivery; stops when the drone was released or went elsewhere."""
        gen = holder.gen
        for _ in range(MAX_ADVANCES):
            lease = Lease(holder.drone_id, gen + 1, holder.delivery_id, kind, busy_until, now)
            try:
                await self.repository.insert_lease(lease)
            except DuplicateKeyError:
                existing = await self.repository.lease(holder.drone_id, gen + 1)
                if existing is None:
                    break
                self.learn(existing, self.clock())
                if existing.delivery_id != holder.delivery_id:
                    return Outcome.MOVED, existing
                if existing.kind is LeaseKind.RELEASE:
                    return Outcome.RELEASED, existing
                gen = existing.gen
                continue
            self.learn(lease, self.clock())
            return Outcome.DONE, lease
        raise DroneBusy(f"Drone {holder.drone_id} is being changed concurrently; retry.")

    async def give_back(self, lease: Lease) -> None:
        """Free a drone won for a request that lost its delivery to a duplicate."""
        now = to_millis(self.clock())
        holder = Holder(lease.drone_id, lease.gen, lease.delivery_id)
        await self.advance(holder, LeaseKind.RELEASE, now, now)

    async def give_back_quietly(self, lease: Lease) -> None:
        try:
            await self.give_back(lease)
        except Exception:  # the drone frees itself when its busy time ends
            logger.warning("could not give drone %s back", lease.drone_id, exc_info=True)
