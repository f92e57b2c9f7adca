"""The control API (a service token holding ``Fleet.Control``): what the fleet is doing now."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from typing import Annotated

from fastapi import APIRouter, Path, Query

from dronecommon import error_responses
from dronecommon.auth.policy import requires
from dronecommon.auth.roles import FLEET_CONTROL
from dronecommon.domain import Location
from dronecommon.fixes import Fix, Phase
from dronecommon.state import from_state

from .engine import Engine
from .errors import DroneNotInFlight
from .flight import Point
from .flights import Flight
from .pilot import Pilot
from .runtime import State
from .schemas import DroneDetail, DroneView, FleetView, LegView

Fleet = Annotated[Engine, from_state(State, "engine")]
Lead = Annotated[Pilot, from_state(State, "pilot")]


router = APIRouter(prefix="/api/fleet", tags=["fleet"], dependencies=[requires(FLEET_CONTROL)])


def _location(point: Point) -> Location:
    return Location(latitude=point.lat, longitude=point.lon, altitude=point.alt)


def _view(fix: Fix, flight: Flight, now: float) -> DroneView:
    ends = flight.leg_ends(now)
    return DroneView(
        drone_id=fix.drone_id,
        delivery_id=fix.delivery_id,
        phase=fix.phase,
        location=fix.location,
        speed_mph=fix.speed_mph,
        heading_deg=fix.heading_deg,
        battery_pct=fix.battery_pct,
        at=fix.at,
        phase_ends_at=None if ends is None else _utc(ends),
    )


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, dt.UTC)


@router.get("", summary="The drones in the air and their phases", responses=error_responses(400))
async def fleet(
    engine: Fleet,
    pilot: Lead,
    phase: Annotated[Phase | None, Query(description="only drones in this phase")] = None,
    limit: Annotated[int, Query(ge=0, le=100_000)] = 1000,
) -> FleetView:
    now = time.time()
    snapshot = engine.snapshot(now)
    flying = [(flight, fix) for flight, fix in snapshot if fix is not None]
    counts = Counter(fix.phase.value for _, fix in flying)
    chosen = sorted(
        ((flight, fix) for flight, fix in flying if phase is None or fix.phase is phase),
        key=lambda pair: pair[1].drone_id,
    )
    return FleetView(
        in_flight=len(flying),
        by_phase={p.value: counts.get(p.value, 0) for p in Phase},
        landed=len(snapshot) - len(flying),
        leading=pilot.leading,
        drones=[_view(fix, flight, now) for flight, fix in chosen[:limit]],
    )


@router.get(
    "/{droneId}",
    summary="One drone in the air: where it is, its route and what it still has to do",
    responses=error_responses(400, 404),
)
async def drone(
    engine: Fleet,
    drone_id: Annotated[str, Path(alias="droneId", pattern=r"^[a-z0-9][a-z0-9-]{0,127}$")],
) -> DroneDetail:
    flight: Flight | None = engine.flights.get(drone_id)
    now = time.time()
    if flight is None or flight.landed(now):
        raise DroneNotInFlight(drone_id)
    fix = next(f for fl, f in engine.snapshot(now) if fl is flight and f is not None)
    return DroneDetail(
        **_view(fix, flight, now).model_dump(),
        base=_location(flight.drone.base),
        route=[
            LegView(
                phase=leg.phase,
                start=_utc(leg.start),
                end=_utc(leg.end),
                target=_location(leg.target),
            )
            for leg in flight.legs
        ],
        queue=[m.delivery_id for m in flight.queue],
        confirmations_due=[c.delivery_id for c in flight.confirms],
        releases_due=list(flight.done),
    )
