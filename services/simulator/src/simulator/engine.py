"""The fleet in flight: the tick loop, the events it applies, the work it does on the way (the
flights themselves and their saving: :mod:`simulator.fleetstate`).

**Ticks.** Every ``telemetry_interval`` (default 1 s) each drone in the air reports one fix. The
interval is cut into ``ticks_per_interval`` ticks and each drone belongs to one of them (by a
hash of its id), so the fixes of ten thousand drones are spread over the second instead of
leaving in one burst. A tick is plain arithmetic per drone (:func:`simulator.flight.sample`) and
one pipelined publish of its fixes; it never waits on anything else. A tick that is late skips
ahead (the clock, not the tick count, says where a drone is).

**Work.** Confirmations and releases (:mod:`simulator.backends`) run in a loop of their own, a
bounded number at once, retried with backoff while the other service is away; a flight whose
drone is home with nothing left to do is forgotten.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

from dronecommon.domain import Location
from dronecommon.events import (
    AssignedData,
    DeliveryEvent,
    EventDecodeError,
    EventType,
    RescheduledData,
)
from dronecommon.fixes import Fix, FixPublisher, FixPublishError
from dronecommon.telemetry import untraced

from .backends import RETRYABLE, Backends
from .fleetstate import FleetState, fix_of
from .flight import Point
from .flights import DroneInfo, Flight, Mission, Rules, later
from .store import FlightStore

logger = logging.getLogger("simulator.engine")


@dataclass(slots=True)
class Stats:
    ticks: int = 0
    late_ticks: int = 0
    fixes: int = 0
    publish_errors: int = 0
    events: int = 0


def _point(location: Location) -> Point:
    return Point(location.latitude, location.longitude, location.altitude)


class Engine(FleetState):
    def __init__(
        self,
        rules: Rules,
        store: FlightStore,
        publisher: FixPublisher,
        backends: Backends,
        *,
        interval: float = 1.0,
        ticks_per_interval: int = 10,
        events_max_age: float = 3600.0,
        action_concurrency: int = 32,
        action_retry_max: float = 30.0,
    ) -> None:
        super().__init__(rules, store, ticks_per_interval=ticks_per_interval)
        self.publisher = publisher
        self.backends = backends
        self.interval = interval
        self.events_max_age = events_max_age
        self.action_retry_max = action_retry_max
        self.stats = Stats()
        self._retry_at: dict[tuple[str, str], tuple[float, int]] = {}
        self._actions = asyncio.Semaphore(action_concurrency)

    # --- ticks ----------------------------------------------------------------------------------

    def tick(self, slot: int, now: float) -> list[Fix]:
        """The fixes of the drones of ``slot`` at ``now`` (and the transitions now due)."""
        at = dt.datetime.fromtimestamp(now, dt.UTC)
        at_ms = int(now * 1000)
        fixes: list[Fix] = []
        flights, due = self.flights, self._due
        for drone_id in list(self._slot_members[slot]):
            flight = flights[drone_id]
            if now >= due[drone_id]:
                if self.rules.advance(flight, now):
                    self._changed(flight)
                if flight.landed(now):
                    if flight.has_work():
                        self._work.add(drone_id)
                    else:
                        self._forget(drone_id)
                    continue
                due[drone_id] = self._next_due(flight)
            seq = flight.seq + 1 if flight.seq >= at_ms else at_ms
            flight.seq = seq
            fixes.append(fix_of(flight, flight.at(now), at, seq))
        return fixes

    async def run_ticks(self, stop: asyncio.Event) -> None:
        step = self.interval / self.slots
        number = 0
        next_at = time.monotonic()
        while not stop.is_set():
            fixes = self.tick(number % self.slots, time.time())
            self.stats.ticks += 1
            if fixes:
                try:
                    with untraced():  # fixes by the thousand a second: no trace each
                        await self.publisher.publish(fixes)
                    self.stats.fixes += len(fixes)
                except FixPublishError:
                    self.stats.publish_errors += 1
                    if self.stats.publish_errors % 100 == 1:
                        logger.warning("telemetry not published", exc_info=True)
            await self._flush_quietly()
            number += 1
            next_at += step
            delay = next_at - time.monotonic()
            if delay < -self.interval:
                self.stats.late_ticks += 1
                next_at = time.monotonic()  # behind by a whole interval: skip ahead
                delay = 0.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=max(delay, 0.0))

    # --- work: confirmations and releases ------------------------------------------------------

    def _ready(self, kind: str, delivery_id: str, now: float) -> bool:
        retry = self._retry_at.get((kind, delivery_id))
        return retry is None or now >= retry[0]

    def _failed(self, kind: str, delivery_id: str, now: float) -> None:
        _, attempts = self._retry_at.get((kind, delivery_id), (0.0, 0))
        wait = min(self.action_retry_max, 0.5 * 2 ** min(attempts, 16))
        self._retry_at[(kind, delivery_id)] = (now + wait, attempts + 1)

    async def _confirm(self, flight: Flight, delivery_id: str) -> None:
        confirm = next((c for c in flight.confirms if c.delivery_id == delivery_id), None)
        if confirm is None:
            return
        async with self._actions:
            try:
                await self.backends.confirm(confirm)
            except RETRYABLE:
                logger.warning("confirmation of %s failed; retrying later", delivery_id)
                self._failed("confirm", delivery_id, time.time())
                return
        self._retry_at.pop(("confirm", delivery_id), None)
        flight.confirms = [c for c in flight.confirms if c.delivery_id != delivery_id]
        self._settle(flight)

    async def _release(self, flight: Flight, delivery_id: str) -> None:
        async with self._actions:
            try:
                await self.backends.release(delivery_id)
            except RETRYABLE:
                logger.warning("release of %s failed; retrying later", delivery_id)
                self._failed("release", delivery_id, time.time())
                return
        self._retry_at.pop(("release", delivery_id), None)
        flight.done = [d for d in flight.done if d != delivery_id]
        self._settle(flight)

    def _settle(self, flight: Flight) -> None:
        if self.flights.get(flight.drone_id) is not flight:
            return  # replaced meanwhile (this process lost and regained the lead)
        if flight.landed(time.time()) and not flight.has_work():
            self._forget(flight.drone_id)
        else:
            self._changed(flight)
            if not flight.has_work():
                self._work.discard(flight.drone_id)

    async def work_once(self) -> None:
        """Send every confirmation and release that is due now (and not waiting to retry)."""
        now = time.time()
        calls = []
        for drone_id in list(self._work):
            flight = self.flights.get(drone_id)
            if flight is None or not flight.has_work():
                self._work.discard(drone_id)
                continue
            # A confirmation goes before the drone's release, so the delivery ends Completed.
            pending = {c.delivery_id for c in flight.confirms}
            calls += [
                self._confirm(flight, c.delivery_id)
                for c in flight.confirms
                if self._ready("confirm", c.delivery_id, now)
            ]
            calls += [
                self._release(flight, d)
                for d in flight.releasable(now)
                if d not in pending and self._ready("release", d, now)
            ]
        if calls:
            await asyncio.gather(*calls)
            await self.flush()

    async def run_work(self, stop: asyncio.Event, every: float = 0.1) -> None:
        while not stop.is_set():
            try:
                await self.work_once()
            except Exception:
                logger.warning("work loop failed; retrying", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=every)

    # --- delivery events ------------------------------------------------------------------------

    async def apply(self, events: Sequence[DeliveryEvent]) -> None:
        """Apply a batch of delivery events in order, then save (the reader acks after this)."""
        now = time.time()
        fresh = [e for e in events if now - e.at.timestamp() <= self.events_max_age]
        if len(fresh) < len(events):
            logger.warning("%d delivery events too old to fly; skipped", len(events) - len(fresh))
        flying = [e for e in fresh if e.type in (EventType.ASSIGNED, EventType.RESCHEDULED)]
        finished = await self.store.finished(e.delivery_id for e in flying)
        wanted = sorted(
            {
                str(e.data.get("droneId"))
                for e in flying
                if e.data.get("droneId") and e.delivery_id not in finished
            }
            - set(self.flights)
        )
        found = await asyncio.gather(*(self._drone(d) for d in wanted))
        drones = dict(zip(wanted, found, strict=True))
        for event in fresh:
            self.stats.events += 1
            try:
                self._apply(event, now, finished, drones)
            except EventDecodeError:
                logger.exception("delivery event %s skipped", event.id)
        await self.flush()

    async def _drone(self, drone_id: str) -> DroneInfo | None:
        async with self._actions:
            return await self.backends.drone(drone_id)

    def _apply(
        self,
        event: DeliveryEvent,
        now: float,
        finished: set[str],
        drones: dict[str, DroneInfo | None],
    ) -> None:
        delivery_id = event.delivery_id
        current = self.drone_of(delivery_id)
        if current is not None and event.id is not None and not later(event.id, current.applied):
            return  # applied before (a redelivery)
        if event.type in (EventType.CANCELLED, EventType.COMPLETED):
            if current is not None and self.rules.end(current, delivery_id, now):
                current.applied = event.id or current.applied
                self._changed(current)
            return
        if event.type not in (EventType.ASSIGNED, EventType.RESCHEDULED) or delivery_id in finished:
            return
        data: AssignedData | RescheduledData = (
            event.data_as(AssignedData)
            if event.type is EventType.ASSIGNED
            else event.data_as(RescheduledData)
        )
        drone_id = data.drone_id
        if drone_id is None:
            return
        mission = Mission(
            delivery_id,
            _point(data.pickup),
            _point(data.dropoff),
            data.confirmation_required.value,
            data.expedited,
        )
        if current is not None and current.drone_id != drone_id:
            # The delivery moved to another drone: this one drops it (the scheduler's assignment
            # is the delivery's, so it is not released here).
            self.rules.end(current, delivery_id, now, release=False)
            self._changed(current)
            current = None
        flight = self.flights.get(drone_id)
        if current is not None:
            changed = self.rules.reschedule(current, mission, now)
            flight = current
        else:
            info = flight.drone if flight is not None else drones.get(drone_id)
            if info is None:
                return  # the scheduler does not know the drone (logged)
            flight = self.rules.assign(flight, info, mission, now)
            changed = True
        if event.id is not None and later(event.id, flight.applied):
            flight.applied = event.id
            changed = True
        if changed:
            self._changed(flight)
