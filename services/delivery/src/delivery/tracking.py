"""Where a delivery is and when it will get there: pure functions of its state and the clock.

The rules (also in the README):

- **Timing.** Each (re)schedule starts a *plan* at the moment it is written. When the drone
  scheduler's timing is known (``pickupETA``/``deliveryETA`` sent with the PUT or PATCH), those are
  the ETAs. Otherwise they are estimated: ``pickupETA`` = plan start + the dispatch allowance
  (``DELIVERY_ESTIMATE_DISPATCH_MINUTES``, default 10), ``deliveryETA`` = ``pickupETA`` + the
  great-circle distance from pickup to drop-off at ``DELIVERY_ESTIMATE_SPEED_MPH`` (default 30).
- **Telemetry** (:mod:`delivery.live`): once the delivery's drone has reported, its latest fix
  is ``live`` while younger than ``DELIVERY_LIVE__STALE_AFTER`` (default 30 s), then ``stale``;
  ``none`` before any fix of that drone. Live telemetry gives the ETAs (computed from the fix);
  stale telemetry falls back to the plan's.
- **Stage.** Completed and Cancelled are what was written. Otherwise, once the drone has
  reported, its latest phase gives the stage (ToPickup/AtPickup: HeadedToPickup; ToDropoff,
  AtDropoff, Returning: HeadedToDropoff). Without telemetry and drone timing the stage is the
  written one (Created or Rescheduled); with timing, HeadedToPickup before ``pickupETA`` and
  HeadedToDropoff from ``pickupETA`` until the confirmation (a delivery is Completed only by its
  confirmation, even after ``deliveryETA``).
- **Last known location** (of the package). With telemetry: the pickup until the drone has the
  package, the drone's latest position while it carries it (ToDropoff), the drop-off from
  AtDropoff on. Without: at the pickup until ``pickupETA``; then along the great circle from
  pickup to drop-off in proportion to the time elapsed between ``pickupETA`` and ``deliveryETA``
  (altitude linearly); at the drop-off from ``deliveryETA``. Completed: where the confirmation
  was made. Cancelled: where these rules put it when it was cancelled.
- **Terminal ETAs.** Cancelled keeps the ETAs of its last plan; Completed answers the confirmation
  time as ``deliveryETA`` and, as ``pickupETA``, when the drone reached the pickup if it reported
  it, else the plan's (no later than the confirmation either way).
- **History.** The stored events (Created, Rescheduled, Completed, Cancelled, and the drone's
  phase changes) plus the passages the clock implies for each plan with drone timing:
  HeadedToPickup when the plan starts (if before its ``pickupETA``) and HeadedToDropoff at
  ``pickupETA``, each only if it happened before the next stored event, is not in the future and
  is before the drone's first report: from then on the drone's reports replace the clock, and a
  plan written after it is followed by the stage of the drone's latest phase.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from dronecommon.domain import TERMINAL_STAGES, DeliveryStage, Location, travel_time

from .live import Live, LiveRules, live_etas, stage_of
from .records import DeliveryRecord, Plan, StoredEvent
from .schemas import DeliveryStatus, Drone, Telemetry, TrackingEvent

_COORDINATE_DIGITS = 6


@dataclass(frozen=True, slots=True)
class Estimates:
    """How ETAs are estimated when no drone timing is known."""

    speed_mph: float = 30.0
    dispatch: dt.timedelta = dt.timedelta(minutes=10)


@dataclass(frozen=True, slots=True)
class Timing:
    pickup_eta: dt.datetime
    delivery_eta: dt.datetime
    known: bool


def timing(plan: Plan, pickup: Location, dropoff: Location, estimates: Estimates) -> Timing:
    """The plan's ETAs: the drone's when known, else estimated from the distance."""
    if plan.pickup_eta is not None and plan.delivery_eta is not None:
        return Timing(plan.pickup_eta, plan.delivery_eta, known=True)
    pickup_eta = plan.start + estimates.dispatch
    delivery_eta = pickup_eta + travel_time(pickup, dropoff, estimates.speed_mph)
    return Timing(pickup_eta, delivery_eta, known=False)


def _vector(location: Location) -> tuple[float, float, float]:
    lat, lon = math.radians(location.latitude), math.radians(location.longitude)
    return (math.cos(lat) * math.cos(lon), math.cos(lat) * math.sin(lon), math.sin(lat))


def interpolate(a: Location, b: Location, fraction: float) -> Location:
    """The point ``fraction`` of the way from ``a`` to ``b`` along the great circle."""
    if fraction <= 0:
        return a
    if fraction >= 1:
        return b
    va, vb = _vector(a), _vector(b)
    dot = max(-1.0, min(1.0, sum(x * y for x, y in zip(va, vb, strict=True))))
    omega = math.acos(dot)
    if math.sin(omega) < 1e-9:
        # The same point (or antipodes, which have no unique great circle): weigh linearly.
        wa, wb = 1 - fraction, fraction
    else:
        wa = math.sin((1 - fraction) * omega) / math.sin(omega)
        wb = math.sin(fraction * omega) / math.sin(omega)
    x, y, z = (wa * p + wb * q for p, q in zip(va, vb, strict=True))
    latitude = math.degrees(math.atan2(z, math.hypot(x, y)))
    longitude = math.degrees(math.atan2(y, x))
    return Location(
        latitude=round(latitude, _COORDINATE_DIGITS),
        longitude=round(longitude, _COORDINATE_DIGITS),
        altitude=a.altitude + (b.altitude - a.altitude) * fraction,
    )


def location_at(when: Timing, pickup: Location, dropoff: Location, now: dt.datetime) -> Location:
    """Where the package is at ``now`` under a plan's timing (at the pickup until it is known)."""
    if not when.known or now <= when.pickup_eta:
        return pickup
    if now >= when.delivery_eta:
        return dropoff
    flight = (when.delivery_eta - when.pickup_eta).total_seconds()
    return interpolate(pickup, dropoff, (now - when.pickup_eta).total_seconds() / flight)


def stage_at(record: DeliveryRecord, when: Timing, now: dt.datetime) -> DeliveryStage:
    if record.stage in (DeliveryStage.COMPLETED, DeliveryStage.CANCELLED) or not when.known:
        return record.stage
    if now < when.pickup_eta:
        return DeliveryStage.HEADED_TO_PICKUP
    return DeliveryStage.HEADED_TO_DROPOFF


def tracked(record: DeliveryRecord, live: Live | None) -> Live | None:
    """The telemetry of the delivery's current drone (another drone's is not this delivery's)."""
    return live if live is not None and live.drone_id == record.drone_id else None


def _moment(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


def drone_of(live: Live) -> Drone:
    return Drone.model_construct(
        drone_id=live.drone_id,
        location=live.location,
        at=live.at,
        phase=live.phase,
        speed_mph=live.speed_mph,
    )


def status(
    record: DeliveryRecord,
    now: dt.datetime,
    estimates: Estimates,
    live: Live | None = None,
    rules: LiveRules | None = None,
) -> DeliveryStatus:
    """The delivery's status at ``now`` (``live``: its tracking state, if any)."""
    rules = rules or LiveRules()
    when = timing(record.plan, record.pickup, record.dropoff, estimates)
    pickup_eta, delivery_eta = when.pickup_eta, when.delivery_eta
    live = tracked(record, live)
    telemetry: Telemetry = "none"
    if live is not None:
        telemetry = "live" if live.is_live(now, rules) else "stale"
    stage = stage_at(record, when, now)
    if record.stage == DeliveryStage.COMPLETED and record.confirmation is not None:
        location = record.confirmation.geo_coordinates
        delivery_eta = record.confirmation.date_time
        if live is not None and live.pickup_at_ms is not None:
            pickup_eta = _moment(live.pickup_at_ms / 1000)  # when the drone reached it
        pickup_eta = min(pickup_eta, delivery_eta)
    elif record.stage == DeliveryStage.CANCELLED and record.cancel_location is not None:
        location = record.cancel_location
    elif live is not None:
        stage = stage_of(live.phase)
        location = _package_location(record, live)
        if telemetry == "live":
            pickup, delivery = live_etas(record, live, rules)
            pickup_eta, delivery_eta = _moment(pickup), _moment(delivery)
    else:
        location = location_at(when, record.pickup, record.dropoff, now)
    return DeliveryStatus.model_construct(
        stage=stage,
        last_known_location=location,
        pickup_eta=pickup_eta,
        delivery_eta=delivery_eta,
        telemetry=telemetry,
        drone=None if live is None else drone_of(live),
        refused_change=None if record.stage in TERMINAL_STAGES else record.refused_change,
    )


def _package_location(record: DeliveryRecord, live: Live) -> Location:
    if stage_of(live.phase) == DeliveryStage.HEADED_TO_PICKUP:
        return record.pickup
    if live.pickup_at_ms is not None and live.dropoff_at_ms is None:
        return live.location  # aboard
    return record.dropoff


def next_change(
    record: DeliveryRecord,
    now: dt.datetime,
    estimates: Estimates,
    live: Live | None = None,
    rules: LiveRules | None = None,
) -> dt.datetime | None:
    """The next moment the status changes by the clock alone (the plan reaching ``pickupETA``
    without telemetry, or live telemetry turning stale), if any."""
    rules = rules or LiveRules()
    if record.stage in (DeliveryStage.COMPLETED, DeliveryStage.CANCELLED):
        return None
    live = tracked(record, live)
    if live is not None:
        stale = live.at + dt.timedelta(seconds=rules.stale_after)
        return stale if stale > now else None
    when = timing(record.plan, record.pickup, record.dropoff, estimates)
    if when.known and when.pickup_eta > now:
        return when.pickup_eta
    return None


def history(events: Sequence[StoredEvent], now: dt.datetime) -> list[TrackingEvent]:
    """The stored events with the passages the clock implies, oldest first."""
    first_report = next((event.at for event in events if event.phase is not None), None)
    reported: DeliveryStage | None = None  # the stage of the drone's latest phase so far
    out: list[TrackingEvent] = []
    for index, event in enumerate(events):
        out.append(
            TrackingEvent(
                at=event.at, stage=event.stage, location=event.location, phase=event.phase
            )
        )
        if event.phase is not None:
            reported = event.stage
            continue
        plan = event.plan
        if plan is None:
            continue
        if first_report is not None and event.at >= first_report:
            # The drone reports where it is: a new plan goes on from its latest phase.
            if reported is not None and reported != event.stage:
                out.append(TrackingEvent(at=event.at, stage=reported, location=event.location))
            continue
        if plan.pickup_eta is None:
            continue
        following = events[index + 1].at if index + 1 < len(events) else None

        def happened(moment: dt.datetime, following: dt.datetime | None = following) -> bool:
            return (
                moment <= now
                and (following is None or moment < following)
                and (first_report is None or moment < first_report)
            )

        if event.at < plan.pickup_eta and happened(event.at):
            out.append(
                TrackingEvent(
                    at=event.at, stage=DeliveryStage.HEADED_TO_PICKUP, location=event.location
                )
            )
        reached = max(plan.pickup_eta, event.at)
        if happened(reached):
            out.append(
                TrackingEvent(
                    at=reached, stage=DeliveryStage.HEADED_TO_DROPOFF, location=event.location
                )
            )
    return out
