"""What this replica knows about every drone: its lease generation and until when it is busy.

The knowledge picks candidates without a database round trip; the lease log decides (see
``service.py``). Drones are grouped in pools, one per (base, class). A pool keeps its free drones
in a heap by this replica's preference order, and its busy drones in a heap by the time they
come back, so taking the first free drone and finding the soonest return are O(log n) however
large the fleet. A drone handed to a request is *reserved* until the request has won or lost it
in the database, so concurrent requests of one replica never race for the same drone.

Each replica rotates its preference order by a random offset per pool: replicas that start from
the same drone would otherwise contend for it on every request.

Replicas' clocks disagree a little, and a trip's end was computed by another replica's clock: a
drone counts as free only ``margin`` after the time its last lease frees it, by this replica's
clock (``FleetSettings.clock_skew_margin``).
"""

from __future__ import annotations

import datetime as dt
import heapq
import random
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass

from dronecommon.domain import Location

from .fleet import Drone, DroneClass, Fleet

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass(slots=True, eq=False)
class DroneState:
    drone: Drone
    index: int
    order: int
    gen: int = 0
    busy_until: dt.datetime = EPOCH
    delivery_id: str | None = None
    reserved: bool = False
    queued: bool = False
    # When this replica last confirmed ``gen`` is the drone's latest generation (its own write,
    # or a read of the drone's leases); see FleetState.confirmed.
    learned_at: dt.datetime = EPOCH


class Pool:
    """The drones of one class at one base."""

    def __init__(
        self, drones: Sequence[Drone], rotation: int, margin: dt.timedelta = dt.timedelta(0)
    ) -> None:
        self.margin = margin
        size = len(drones)
        self.states = [
            DroneState(drone, index, (index - rotation) % size)
            for index, drone in enumerate(drones)
        ]
        self._free = [(state.order, state.index) for state in self.states]
        heapq.heapify(self._free)
        for state in self.states:
            state.queued = True
        self._busy: list[tuple[dt.datetime, int, int]] = []

    def busy(self, state: DroneState, now: dt.datetime) -> bool:
        """Whether the drone is out at ``now`` (its busy time plus the clock margin)."""
        return state.busy_until + self.margin > now

    def _wake(self, now: dt.datetime) -> None:
        """Move drones whose busy time (and margin) has ended to the free heap."""
        while self._busy and self._busy[0][0] + self.margin <= now:
            until, index, gen = heapq.heappop(self._busy)
            state = self.states[index]
            if state.gen == gen and state.busy_until == until:
                self._enqueue(state)

    def _enqueue(self, state: DroneState) -> None:
        if not state.queued and not state.reserved:
            heapq.heappush(self._free, (state.order, state.index))
            state.queued = True

    def place(self, state: DroneState, now: dt.datetime) -> None:
        """File an unreserved drone under free or busy according to what is known of it."""
        if state.reserved:
            return
        if self.busy(state, now):
            heapq.heappush(self._busy, (state.busy_until, state.index, state.gen))
        else:
            self._enqueue(state)

    def take(self, now: dt.datetime) -> DroneState | None:
        """Reserve the first free drone in this replica's order, if any."""
        self._wake(now)
        while self._free:
            _, index = heapq.heappop(self._free)
            state = self.states[index]
            state.queued = False
            if state.reserved or self.busy(state, now):
                continue  # a stale entry: the drone was reserved or became busy meanwhile
            state.reserved = True
            return state
        return None

    def soonest(self, now: dt.datetime) -> dt.datetime | None:
        """When the first busy drone of this pool is free again (``None`` if none is busy)."""
        self._wake(now)
        while self._busy:
            until, index, gen = self._busy[0]
            state = self.states[index]
            if state.gen == gen and state.busy_until == until and not state.reserved:
                return until + self.margin
            # Stale, or reserved now (filed again when the reservation ends).
            heapq.heappop(self._busy)
        return None


class FleetState:
    """Every pool of the fleet, and the drones by id."""

    def __init__(
        self,
        fleet: Fleet,
        rng: random.Random | None = None,
        *,
        margin: dt.timedelta = dt.timedelta(0),
    ) -> None:
        self.fleet = fleet
        rng = rng or random.Random()  # noqa: S311 - load spreading, not security
        grouped: dict[tuple[str, str], list[Drone]] = {}
        for drone in fleet.drones:
            grouped.setdefault((drone.base.name, drone.drone_class.name), []).append(drone)
        self.pools = {
            key: Pool(drones, rng.randrange(len(drones)), margin) for key, drones in grouped.items()
        }
        self.by_id: dict[str, tuple[Pool, DroneState]] = {
            state.drone.id: (pool, state) for pool in self.pools.values() for state in pool.states
        }
        # The start of the last complete read of the lease log: every drone's knowledge was the
        # latest then (see compaction.py).
        self.refreshed_at = EPOCH

    def confirmed(self, state: DroneState) -> dt.datetime:
        """Since when this replica's knowledge of the drone is known to be current (or newer)."""
        return max(state.learned_at, self.refreshed_at)

    def _pools(self, bases: Iterable[str], classes: Sequence[DroneClass]) -> Iterable[Pool]:
        for base in bases:
            for drone_class in classes:
                pool = self.pools.get((base, drone_class.name))
                if pool is not None:
                    yield pool

    def take(
        self,
        pickup: Location,
        classes: Sequence[DroneClass],
        now: dt.datetime,
        *,
        within: Collection[str] | None = None,
    ) -> DroneState | None:
        """Reserve a free capable drone: the nearest base that has one (among the bases named in
        ``within``, when given), the least capable class there, then the first drone in this
        replica's order."""
        bases = (
            base.name
            for base in self.fleet.bases_by_distance(pickup)
            if within is None or base.name in within
        )
        for pool in self._pools(bases, classes):
            state = pool.take(now)
            if state is not None:
                return state
        return None

    def soonest(self, classes: Sequence[DroneClass], now: dt.datetime) -> dt.datetime | None:
        """When the first busy capable drone comes back, at any base."""
        times = [
            until
            for pool in self._pools((base.name for base in self.fleet.bases), classes)
            if (until := pool.soonest(now)) is not None
        ]
        return min(times, default=None)

    def learn(
        self,
        drone_id: str,
        gen: int,
        busy_until: dt.datetime,
        delivery_id: str | None,
        now: dt.datetime,
        *,
        confirmed_at: dt.datetime | None = None,
    ) -> None:
        """Record a lease generation of a drone (ignored unless newer than what is known).

        ``confirmed_at``: the generation was the drone's latest at that time (this replica wrote
        it, or read the drone's leases then).
        """
        found = self.by_id.get(drone_id)
        if found is None:
            return  # a drone no longer in the configured fleet
        pool, state = found
        if gen < state.gen:
            return
        if confirmed_at is not None and confirmed_at > state.learned_at:
            state.learned_at = confirmed_at
        if gen == state.gen:
            return
        state.gen = gen
        state.busy_until = busy_until
        state.delivery_id = delivery_id
        pool.place(state, now)

    def unreserve(self, state: DroneState, now: dt.datetime) -> None:
        """End a request's reservation; the drone is filed by what is now known of it."""
        pool, _ = self.by_id[state.drone.id]
        state.reserved = False
        pool.place(state, now)

    def busy(self, state: DroneState, now: dt.datetime) -> bool:
        """Whether the drone is out at ``now`` (its busy time plus the clock margin)."""
        pool, _ = self.by_id[state.drone.id]
        return pool.busy(state, now)

    def state(self, drone_id: str) -> DroneState | None:
        found = self.by_id.get(drone_id)
        return found[1] if found else None
