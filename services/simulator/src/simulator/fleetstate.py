"""The flights a simulator flies, in memory and in Redis: which drones are in the air, which tick
each belongs to, which delivery each carries, what changed and must be saved.

**State.** Flights live in memory and in Redis (:mod:`simulator.store`). A flight is written when
it changes (an event, the end of the drop-off handling, work done), not on every tick: positions
follow from the route. Writes go through :meth:`FleetState.flush`, one at a time, so a later write
never loses to an earlier one.

:class:`FleetState` owns that state and its flush; :class:`simulator.engine.Engine` flies it (the
ticks, the work, the delivery events), as layers on top.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import zlib

from dronecommon.fixes import Fix, Phase
from dronecommon.telemetry import untraced

from .flight import Sample
from .flights import Flight, Rules, dumps, loads
from .store import FlightStore

logger = logging.getLogger("simulator.fleetstate")


def fix_of(flight: Flight, s: Sample, at: dt.datetime, seq: int) -> Fix:
    """The fix ``flight`` reports at ``at`` from where its route puts it (``s``)."""
    mission = flight.mission
    return Fix(
        flight.drone_id,
        mission.delivery_id if mission is not None else flight.trip,
        at,
        seq,
        round(s.lat, 6),
        round(s.lon, 6),
        round(s.alt, 1),
        round(s.speed_mph, 1),
        round(s.heading, 1),
        round(s.battery, 1),
        s.phase,
    )


class FleetState:
    def __init__(self, rules: Rules, store: FlightStore, *, ticks_per_interval: int = 10) -> None:
        self.rules = rules
        self.store = store
        self.slots = ticks_per_interval
        self.flights: dict[str, Flight] = {}
        self._slot_members: list[dict[str, None]] = [{} for _ in range(self.slots)]
        self._due: dict[str, float] = {}
        self._deliveries: dict[str, str] = {}  # delivery id -> drone id (flown or queued)
        self._indexed: dict[str, list[str]] = {}
        self._dirty: set[str] = set()
        self._removed: set[str] = set()
        self._work: set[str] = set()
        self._flush_lock = asyncio.Lock()

    # --- membership -----------------------------------------------------------------------------

    def load(self, raw: dict[str, bytes]) -> None:
        """Take over the stored flights (at start, or when this process becomes the leader)."""
        self.flights.clear()
        for members in self._slot_members:
            members.clear()
        self._due.clear()
        self._deliveries.clear()
        self._indexed.clear()
        for drone_id, blob in raw.items():
            try:
                flight = loads(blob, self.rules.weather)
            except (ValueError, KeyError, IndexError, TypeError):
                logger.exception("stored flight of %s is unreadable; dropped", drone_id)
                self._removed.add(drone_id)
                continue
            self._track(flight)
            if flight.has_work():
                self._work.add(drone_id)
        logger.info("flying %d drones from the stored state", len(self.flights))

    def _slot(self, drone_id: str) -> int:
        return zlib.crc32(drone_id.encode()) % self.slots

    def _track(self, flight: Flight) -> None:
        """Register a new or changed flight: its tick, when it next needs attention, its index."""
        drone_id = flight.drone_id
        if drone_id not in self.flights:
            self._slot_members[self._slot(drone_id)][drone_id] = None
        self.flights[drone_id] = flight
        self._removed.discard(drone_id)
        self._due[drone_id] = self._next_due(flight)
        for delivery_id in self._indexed.pop(drone_id, []):
            if self._deliveries.get(delivery_id) == drone_id:
                del self._deliveries[delivery_id]
        ids = [m.delivery_id for m in ([flight.mission] if flight.mission else []) + flight.queue]
        for delivery_id in ids:
            self._deliveries[delivery_id] = drone_id
        self._indexed[drone_id] = ids

    def _next_due(self, flight: Flight) -> float:
        if flight.mission is not None:
            for leg in flight.legs:
                if leg.phase is Phase.AT_DROPOFF:
                    return leg.end
        return flight.arrival

    def put(self, flight: Flight) -> None:
        """Fly ``flight`` (saved on the next :meth:`flush`)."""
        self._changed(flight)

    def _changed(self, flight: Flight) -> None:
        self._track(flight)
        self._dirty.add(flight.drone_id)
        if flight.has_work():
            self._work.add(flight.drone_id)

    def _forget(self, drone_id: str) -> None:
        flight = self.flights.pop(drone_id, None)
        if flight is None:
            return
        self._slot_members[self._slot(drone_id)].pop(drone_id, None)
        self._due.pop(drone_id, None)
        for delivery_id in self._indexed.pop(drone_id, []):
            if self._deliveries.get(delivery_id) == drone_id:
                del self._deliveries[delivery_id]
        self._dirty.discard(drone_id)
        self._removed.add(drone_id)
        self._work.discard(drone_id)

    def drone_of(self, delivery_id: str) -> Flight | None:
        drone_id = self._deliveries.get(delivery_id)
        return self.flights.get(drone_id) if drone_id is not None else None

    # --- persistence ----------------------------------------------------------------------------

    async def flush(self) -> None:
        """Write what changed since the last flush (one flush at a time: last write wins)."""
        async with self._flush_lock:
            if not self._dirty and not self._removed:
                return
            dirty, removed = self._dirty, self._removed
            self._dirty, self._removed = set(), set()
            changed = {d: dumps(self.flights[d]) for d in dirty if d in self.flights}
            finished = {done for d in dirty if d in self.flights for done in self.flights[d].done}
            try:
                with untraced():  # the flights' state, saved after every change
                    await self.store.save(changed, removed, finished)
            except BaseException:
                self._dirty |= dirty
                self._removed |= removed - set(self.flights)
                raise

    async def _flush_quietly(self) -> None:
        try:
            await self.flush()
        except Exception:
            logger.warning("flight state not saved; retrying", exc_info=True)

    # --- reads ----------------------------------------------------------------------------------

    def snapshot(self, now: float) -> list[tuple[Flight, Fix | None]]:
        """Every flight with where its drone is now (``None`` once home)."""
        at = dt.datetime.fromtimestamp(now, dt.UTC)
        return [
            (flight, None if flight.landed(now) else fix_of(flight, flight.at(now), at, flight.seq))
            for flight in self.flights.values()
        ]
