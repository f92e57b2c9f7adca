"""Wire models of the simulator's control API (camelCase JSON, RFC 3339 UTC date-times)."""

from __future__ import annotations

from pydantic import Field

from dronecommon.domain import ApiModel, Location, UtcDateTime
from dronecommon.fixes import Phase


class DroneView(ApiModel):
    """A drone in the air, now."""

    drone_id: str
    delivery_id: str | None = Field(description="the delivery it flies for (or has just done)")
    phase: Phase
    location: Location
    speed_mph: float
    heading_deg: float
    battery_pct: float
    at: UtcDateTime
    phase_ends_at: UtcDateTime | None = Field(
        default=None,
        description="when the phase ends by the drone's flight plan (it reaches the pickup, "
        "leaves it, reaches the drop-off, leaves it, lands at its base); null once the plan is "
        "over",
    )


class FleetView(ApiModel):
    in_flight: int = Field(description="drones in the air")
    by_phase: dict[str, int]
    landed: int = Field(description="drones home with a confirmation or release still to send")
    leading: bool = Field(description="whether this process flies the fleet (holds the lease)")
    drones: list[DroneView] = Field(description="at most `limit` of them, by drone id")


class LegView(ApiModel):
    phase: Phase
    start: UtcDateTime
    end: UtcDateTime
    target: Location


class DroneDetail(DroneView):
    base: Location
    route: list[LegView]
    queue: list[str] = Field(description="deliveries assigned to it after the current one")
    confirmations_due: list[str]
    releases_due: list[str]
