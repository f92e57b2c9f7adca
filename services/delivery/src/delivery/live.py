"""Live tracking: what the telemetry consumer keeps per delivery and the rules it follows.

The consumer folds the fixes of the delivery's drone into a :class:`Live` (the hash field
``live`` of the delivery, JSON) with :func:`fold`; the status reads it back and computes the live
ETAs with :func:`live_etas`, the same function the consumer uses, so both agree. Pure functions:
no I/O, no clock (every time comes from the fixes).

**Phases and stages.** The drone's phase gives the delivery's stage while it is live:
``ToPickup`` and ``AtPickup`` are HeadedToPickup; ``ToDropoff``, ``AtDropoff`` and ``Returning``
(delivered, the confirmation not written yet) are HeadedToDropoff. Every change of phase (the
first fix counts as one) is a history entry ``{at, stage, location, phase}`` at the fix's time and
place. The first ``ToDropoff`` (or a later phase, if its fixes were missed) is ``PickedUp``.

**ETAs** from the latest fix ``F`` at time ``t``, with ``v`` the recent ground speed (the mean
``speedMph`` of the last ``speed_window`` airborne fixes, at least ``min_speed_mph``; before any,
the estimate speed) and ``H`` the handling time:

========== =========================================== ===========================================
phase      pickupETA                                   deliveryETA
========== =========================================== ===========================================
ToPickup   t + |F→pickup| / v                           pickupETA + H + |pickup→drop-off| / v
AtPickup   when it reported AtPickup                   max(t, arrival + H) + |F→drop-off| / v
ToDropoff  when it reported AtPickup (or left it)      t + |F→drop-off| / v
AtDropoff  as above                                    when it reported AtDropoff
Returning  as above                                    as above
========== =========================================== ===========================================

**EtaChanged**: after each fix, when the live deliveryETA is at least ``eta_change_threshold``
away from the baseline — the deliveryETA of the last ``Assigned``/``Rescheduled`` (the plan's, kept
per plan start) or of the last ``EtaChanged`` — the event is emitted and the new ETA becomes the
baseline.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from dronecommon.domain import DeliveryStage, Location, distance_miles
from dronecommon.events import DeliveryEvent, EtaChangedData, EventType, PickedUpData
from dronecommon.fixes import Fix, Phase

from .records import DeliveryRecord, StoredEvent

logger = logging.getLogger("delivery.live")

_STAGE_OF_PHASE = {
    Phase.TO_PICKUP: DeliveryStage.HEADED_TO_PICKUP,
    Phase.AT_PICKUP: DeliveryStage.HEADED_TO_PICKUP,
    Phase.TO_DROPOFF: DeliveryStage.HEADED_TO_DROPOFF,
    Phase.AT_DROPOFF: DeliveryStage.HEADED_TO_DROPOFF,
    Phase.RETURNING: DeliveryStage.HEADED_TO_DROPOFF,
}
_AIRBORNE = frozenset({Phase.TO_PICKUP, Phase.TO_DROPOFF, Phase.RETURNING})
_CARRYING_OR_DONE = frozenset({Phase.TO_DROPOFF, Phase.AT_DROPOFF, Phase.RETURNING})
_PHASES = {phase.value: phase for phase in Phase}


def stage_of(phase: Phase) -> DeliveryStage:
    return _STAGE_OF_PHASE[phase]


@dataclass(frozen=True, slots=True)
class LiveRules:
    """The settings the live rules depend on (``DELIVERY_LIVE__*``)."""

    stale_after: float = 30.0
    handling_seconds: float = 60.0
    speed_window: int = 5
    min_speed_mph: float = 5.0
    eta_change_threshold: float = 300.0
    # Before any airborne fix: the speed of the estimates (DELIVERY_ESTIMATE_SPEED_MPH).
    fallback_speed_mph: float = 30.0


def _ms(moment: dt.datetime) -> int:
    return round(moment.timestamp() * 1000)


def _moment(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


@dataclass(slots=True)
class Live:
    """A delivery's tracking state: the latest fix of its drone and what earlier fixes told."""

    drone_id: str
    seq: int
    at_ms: int  # the latest fix
    latitude: float
    longitude: float
    altitude: float
    speed_mph: float
    heading_deg: float
    battery_pct: float
    phase: Phase
    since_ms: int  # the first fix of this drone for the delivery
    pickup_at_ms: int | None = None  # reached the pickup (AtPickup, or left it without one)
    dropoff_at_ms: int | None = None  # reached the drop-off
    picked_up: bool = False  # PickedUp was emitted
    speeds: list[float] = field(default_factory=list)  # latest airborne speeds, oldest first
    eta_plan_ms: int | None = None  # the plan (its start) the baseline belongs to
    eta_base_ms: int | None = None  # the deliveryETA last announced

    @property
    def at(self) -> dt.datetime:
        return _moment(self.at_ms)

    @property
    def location(self) -> Location:
        return Location.model_construct(
            latitude=self.latitude, longitude=self.longitude, altitude=self.altitude
        )

    def is_live(self, now: dt.datetime, rules: LiveRules) -> bool:
        """Whether the latest fix is recent enough for live ETAs."""
        return _ms(now) - self.at_ms <= rules.stale_after * 1000

    def speed(self, rules: LiveRules) -> float:
        """The recent ground speed (mph)."""
        if not self.speeds:
            return max(rules.min_speed_mph, rules.fallback_speed_mph)
        return max(rules.min_speed_mph, sum(self.speeds) / len(self.speeds))

    def dumps(self) -> bytes:
        return orjson.dumps(
            [
                self.drone_id,
                self.seq,
                self.at_ms,
                self.latitude,
                self.longitude,
                self.altitude,
                self.speed_mph,
                self.heading_deg,
                self.battery_pct,
                self.phase.value,
                self.since_ms,
                self.pickup_at_ms,
                self.dropoff_at_ms,
                self.picked_up,
                self.speeds,
                self.eta_plan_ms,
                self.eta_base_ms,
            ]
        )

    @classmethod
    def parse(cls, raw: str | bytes | None) -> Live | None:
        """The stored state, or None (none stored, or not one this version reads: the next fix
        starts a new one)."""
        if not raw:
            return None
        try:
            return cls.loads(raw)
        except (orjson.JSONDecodeError, LookupError, TypeError, ValueError):
            logger.warning("a tracking state that does not parse was ignored: %.80r", raw)
            return None

    @classmethod
    def loads(cls, raw: str | bytes) -> Live:
        items: Any = orjson.loads(raw)
        if not isinstance(items, list) or len(items) != 17:
            raise ValueError("not a tracking state")
        return cls(
            items[0],
            items[1],
            items[2],
            items[3],
            items[4],
            items[5],
            items[6],
            items[7],
            items[8],
            _PHASES[items[9]],
            items[10],
            items[11],
            items[12],
            items[13],
            items[14],
            items[15],
            items[16],
        )

    @classmethod
    def first(cls, fix: Fix) -> Live:
        at_ms = _ms(fix.at)
        return cls(
            fix.drone_id,
            fix.seq,
            at_ms,
            fix.latitude,
            fix.longitude,
            fix.altitude,
            fix.speed_mph,
            fix.heading_deg,
            fix.battery_pct,
            fix.phase,
            since_ms=at_ms,
        )


def live_etas(record: DeliveryRecord, live: Live, rules: LiveRules) -> tuple[float, float]:
    """``(pickupETA, deliveryETA)`` as epoch seconds, from the latest fix (see the module doc)."""
    t = live.at_ms / 1000
    hours = 3600 / live.speed(rules)  # seconds per mile
    here = live  # a point itself: no Location built for every fix
    phase = live.phase
    if phase is Phase.TO_PICKUP:
        pickup = t + distance_miles(here, record.pickup) * hours
        delivery = (
            pickup + rules.handling_seconds + distance_miles(record.pickup, record.dropoff) * hours
        )
        return pickup, delivery
    arrived = live.pickup_at_ms / 1000 if live.pickup_at_ms is not None else t
    if phase is Phase.AT_PICKUP:
        leaves = max(t, arrived + rules.handling_seconds)
        return arrived, leaves + distance_miles(here, record.dropoff) * hours
    if phase is Phase.TO_DROPOFF:
        return arrived, t + distance_miles(here, record.dropoff) * hours
    delivered = live.dropoff_at_ms / 1000 if live.dropoff_at_ms is not None else t
    return min(arrived, delivered), delivered


@dataclass(slots=True)
class Folded:
    """What a run of fixes changed: the new state, the fixes applied (for the trail), the
    history entries (phase changes) and the delivery events (``PickedUp``, ``EtaChanged``)."""

    live: Live
    applied: list[Fix] = field(default_factory=list)
    history: list[StoredEvent] = field(default_factory=list)
    events: list[DeliveryEvent] = field(default_factory=list)
    stage_changed: bool = False


def fold(
    record: DeliveryRecord,
    live: Live | None,
    fixes: Sequence[Fix],
    rules: LiveRules,
    planned_delivery: dt.datetime,
) -> Folded | None:
    """Apply ``fixes`` (the delivery's drone's, oldest first) to ``live``; None if none is newer.

    ``planned_delivery`` is the deliveryETA of the record's current plan (its last Assigned or
    Rescheduled). A fix whose ``seq`` is not above the state's is dropped (older, or delivered
    again); another drone's fix starts a new state.
    """
    folded: Folded | None = None
    plan_ms = _ms(record.plan.start)
    for fix in fixes:
        if live is not None and live.drone_id == fix.drone_id and fix.seq <= live.seq:
            continue
        previous = None if live is None or live.drone_id != fix.drone_id else live
        at_ms = _ms(fix.at)
        if previous is None:
            live = Live.first(fix)
            prior_phase: Phase | None = None
        else:
            live = previous
            prior_phase = live.phase
            live.seq, live.at_ms, live.phase = fix.seq, at_ms, fix.phase
            live.latitude, live.longitude, live.altitude = fix.latitude, fix.longitude, fix.altitude
            live.speed_mph, live.heading_deg = fix.speed_mph, fix.heading_deg
            live.battery_pct = fix.battery_pct
        if folded is None:
            folded = Folded(live)
        folded.live = live
        folded.applied.append(fix)
        if fix.phase is not prior_phase:
            _phase_changed(record, live, fix, prior_phase, folded)
        if fix.phase in _AIRBORNE and fix.speed_mph > 0:
            live.speeds.append(fix.speed_mph)
            if len(live.speeds) > rules.speed_window:
                del live.speeds[: len(live.speeds) - rules.speed_window]
        _eta_check(record, live, fix, rules, plan_ms, planned_delivery, folded)
    return folded


def _phase_changed(
    record: DeliveryRecord, live: Live, fix: Fix, prior: Phase | None, folded: Folded
) -> None:
    at_ms = live.at_ms
    phase = fix.phase
    if phase is Phase.TO_PICKUP:
        live.pickup_at_ms = live.dropoff_at_ms = None  # (re)routed to a pickup
    elif phase is Phase.AT_PICKUP:
        live.pickup_at_ms = at_ms
    elif phase is Phase.AT_DROPOFF:
        live.dropoff_at_ms = at_ms
    if phase in _CARRYING_OR_DONE and live.pickup_at_ms is None:
        live.pickup_at_ms = at_ms
    if phase is Phase.RETURNING and live.dropoff_at_ms is None:
        live.dropoff_at_ms = at_ms
    stage = stage_of(phase)
    folded.history.append(StoredEvent(at=fix.at, stage=stage, location=fix.location, phase=phase))
    if prior is None or stage_of(prior) != stage:
        folded.stage_changed = True
    if phase in _CARRYING_OR_DONE and not live.picked_up:
        live.picked_up = True
        data = PickedUpData(
            drone_id=fix.drone_id,
            at=fix.at,
            location=fix.location,
            **record.event_context(),
        )
        folded.events.append(DeliveryEvent.of(EventType.PICKED_UP, record.id, fix.at, data))


def _eta_check(
    record: DeliveryRecord,
    live: Live,
    fix: Fix,
    rules: LiveRules,
    plan_ms: int,
    planned_delivery: dt.datetime,
    folded: Folded,
) -> None:
    if live.eta_plan_ms != plan_ms or live.eta_base_ms is None:
        live.eta_plan_ms, live.eta_base_ms = plan_ms, _ms(planned_delivery)
    _, delivery = live_etas(record, live, rules)
    delivery_ms = round(delivery * 1000)
    if abs(delivery_ms - live.eta_base_ms) < rules.eta_change_threshold * 1000:
        return
    data = EtaChangedData(
        deliveryETA=_moment(delivery_ms),
        previousETA=_moment(live.eta_base_ms),
        **record.event_context(),
    )
    folded.events.append(DeliveryEvent.of(EventType.ETA_CHANGED, record.id, fix.at, data))
    live.eta_base_ms = delivery_ms
