"""What a map shows, as JSON for the page's script: the service area, the route, the drone.

The scripts draw without tiles (the area's circles, the route, markers, a scale, on a plain
background in the Web Mercator projection) and add a tile layer only when ``WEBAPP_TILES_URL``
is configured.

A delivery's route is base → pickup → drop-off. The base is the one whose name starts the drone's
id (the drone scheduler names its drones ``<base>-<class>-<n>``), else the base nearest the pickup
(the scheduler assigns the nearest free drone).
"""

from __future__ import annotations

from typing import Any

from dronecommon.area import Base
from dronecommon.domain import Location

from .settings import WebappSettings


def base_of(settings: WebappSettings, drone_id: str | None, near: tuple[float, float]) -> Base:
    bases = settings.service_area.bases
    if drone_id:
        named = [base for base in bases if drone_id.startswith(base.name + "-")]
        if named:
            return max(named, key=lambda base: len(base.name))
    nearest, _ = settings.service_area.nearest_base(Location(latitude=near[0], longitude=near[1]))
    return nearest


def trip_refusal(
    settings: WebappSettings, delivery: dict[str, Any], pickup: str, dropoff: str
) -> str | None:
    """Why the delivery's drone could not fly it with the places typed (empty: the place it
    has), as the drone scheduler would refuse the re-plan; None when it can, or when a place is
    not one ingestion would take (its own refusal then says why, in its words).

    The drone flies from its base (named by its id) to the pickup, the drop-off and back.
    """
    area = settings.service_area
    try:
        points = [
            area.resolve(text) if text else Location.model_validate(delivery[name])
            for text, name in ((pickup, "pickup"), (dropoff, "dropoff"))
        ]
    except (KeyError, ValueError):
        return None
    if not all(area.contains(where) for where in points):
        return None
    base = base_of(settings, delivery.get("droneId"), (points[0].latitude, points[0].longitude))
    miles = area.trip_miles(base.location, points[0], points[1])
    if miles <= area.max_trip_miles:
        return None
    return (
        f"The drone cannot fly that far: from its base ({base.name}) to the pickup, the "
        f"drop-off and back is {miles:,.1f} miles, and no trip may be longer than "
        f"{area.max_trip_miles:g} miles."
    )


def point(location: dict[str, Any] | None) -> list[float] | None:
    if not location:
        return None
    return [float(location["latitude"]), float(location["longitude"])]


def map_config(settings: WebappSettings) -> dict[str, Any]:
    """The part every map shares: the area and the tiles (if any)."""
    area = settings.service_area
    return {
        "area": {
            "radiusMeters": area.radius_miles * 1609.344,
            "bases": [
                {"name": base.name, "at": [base.latitude, base.longitude]} for base in area.bases
            ],
        },
        "tiles": (
            {"url": settings.tiles_url, "attribution": settings.tiles_attribution}
            if settings.tiles_url
            else None
        ),
    }


def route_config(
    settings: WebappSettings, delivery: dict[str, Any], drone_id: str | None
) -> dict[str, Any]:
    pickup = point(delivery.get("pickup"))
    dropoff = point(delivery.get("dropoff"))
    route: dict[str, Any] = {"pickup": pickup, "dropoff": dropoff, "base": None}
    if pickup is not None:
        base = base_of(settings, drone_id, (pickup[0], pickup[1]))
        route["base"] = {"name": base.name, "at": [base.latitude, base.longitude]}
    return route
