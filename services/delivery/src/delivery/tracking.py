"""Where a delivery is and when it will get there: pure functions of its state and the clock.

The rules (also in the README):

- **Timing.** Each (re)schedule starts a *plan* at the moment it is written. When the drone
  scheduler's timing is known (``pickupETA``/``deliveryETA`` sent with the PUT or PATCH), those are
  the ETAs. Otherwise they are estimated: ``pickupETA`` = plan start + the dispatch allowance
  (``DELIVERY_ESTIMATE_DISPATCH_MINUTES``, default 10), ``deliveryETA`` = ``pickupETA`` + the
  great-circle distance from pickup to drop-off at ``DELIVERY_ESTIMATE_SPEED_MPH`` (default 30).
- **Stage.** Completed and Cancelled are what was written. Otherwise, without drone timing the stage
  is the written one (Created or Rescheduled); with it, HeadedToPickup before ``pickupETA`` and
  HeadedToDropoff from ``pickupETA`` until the confirmation (a delivery is Completed only by its
  confirmation, even after ``deliveryETA``).
- **Last known location** (of the package). At the pickup until ``pickupETA``; then along the
  great circle from pickup to drop-off in proportion to the time elapsed between ``pickupETA`` and
  ``deliveryETA`` (altitude linearly); at the drop-off from ``deliveryETA``. Completed: where the
  confirmation was made. Cancelled: where the rule put it when it was cancelled.
- **Terminal ETAs.** Cancelled keeps the ETAs of its last plan; Completed answers the confirmation
  time as ``deliveryETA`` (and ``pickupETA`` no later than it).
- **History.** The stored events (Created, Rescheduled, Completed, Cancelled) plus the passages the
  clock implies for each plan with drone timing: HeadedToPickup when the plan starts (if before its
  ``pickupETA``) and HeadedToDropoff at ``pickupETA``, each only if it happened before the next
  stored event and is not in the future.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass

from dronecommon.domain import DeliveryStage, Location, travel_time

from .records import DeliveryRecord, Plan, StoredEvent
from .schemas import DeliveryStatus, TrackingEvent

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


def status(record: DeliveryRecord, now: dt.datetime, estimates: Estimates) -> DeliveryStatus:
    """The delivery's status at ``now``."""
    when = timing(record.plan, record.pickup, record.dropoff, estimates)
    pickup_eta, delivery_eta = when.pickup_eta, when.delivery_eta
    if record.stage == DeliveryStage.COMPLETED and record.confirmation is not None:
        location = record.confirmation.geo_coordinates
        delivery_eta = record.confirmation.date_time
        pickup_eta = min(pickup_eta, delivery_eta)
    elif record.stage == DeliveryStage.CANCELLED and record.cancel_location is not None:
        location = record.cancel_location
    else:
        location = location_at(when, record.pickup, record.dropoff, now)
    return DeliveryStatus(
        stage=stage_at(record, when, now),
        last_known_location=location,
        pickupETA=pickup_eta,
        deliveryETA=delivery_eta,
    )


def history(events: Sequence[StoredEvent], now: dt.datetime) -> list[TrackingEvent]:
    """The stored events with the passages the clock implies, oldest first."""
    out: list[TrackingEvent] = []
    for index, event in enumerate(events):
        out.append(TrackingEvent(at=event.at, stage=event.stage, location=event.location))
        plan = event.plan
        if plan is None or plan.pickup_eta is None:
            continue
        following = events[index + 1].at if index + 1 < len(events) else None

        def happened(moment: dt.datetime, following: dt.datetime | None = following) -> bool:
            return moment <= now and (following is None or moment < following)

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
