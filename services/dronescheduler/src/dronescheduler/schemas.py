"""Wire models of the drone scheduler (camelCase JSON, RFC 3339 UTC date-times)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from dronecommon.domain import MAX_PACKAGE_WEIGHT, ApiModel, Location, PackageSize, UtcDateTime

MAX_ID_LENGTH = 128
DELIVERY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~:-]{0,127}$"


class PackageDetail(ApiModel):
    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, examples=["mypackage"])
    size: PackageSize
    weight: float = Field(gt=0, le=MAX_PACKAGE_WEIGHT, allow_inf_nan=False, examples=[10])


class DroneDeliveryIn(ApiModel):
    """A delivery that needs a drone."""

    delivery_id: str = Field(pattern=DELIVERY_ID_PATTERN, max_length=MAX_ID_LENGTH)
    owner_id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, examples=["myowner"])
    pickup: Location
    dropoff: Location
    package_detail: PackageDetail
    expedited: bool = False


class ReplanIn(ApiModel):
    """New pickup and/or drop-off for an assigned delivery (at least one)."""

    pickup: Location | None = None
    dropoff: Location | None = None

    @model_validator(mode="after")
    def _something(self) -> ReplanIn:
        if self.pickup is None and self.dropoff is None:
            raise ValueError("give pickup, dropoff or both")
        return self


class DroneAssignmentOut(ApiModel):
    """The drone a delivery got and when it is expected at the pickup and at the drop-off."""

    delivery_id: str
    drone_id: str
    pickup_eta: UtcDateTime = Field(alias="pickupETA")
    delivery_eta: UtcDateTime = Field(alias="deliveryETA")


class PackageDetailOut(ApiModel):
    id: str
    size: PackageSize
    weight: float


class AssignmentOut(ApiModel):
    """An assignment as recorded."""

    delivery_id: str
    owner_id: str
    drone_id: str
    base: str = Field(description="the drone's base, where it starts and returns")
    drone_class: str
    pickup: Location
    dropoff: Location
    package_detail: PackageDetailOut
    expedited: bool
    status: Literal["Assigned", "Released"]
    assigned_at: UtcDateTime
    pickup_eta: UtcDateTime = Field(alias="pickupETA")
    delivery_eta: UtcDateTime = Field(alias="deliveryETA")
    busy_until: UtcDateTime = Field(description="when the drone is back at its base")
    released_at: UtcDateTime | None = None
    route_miles: float = Field(description="base → pickup → drop-off → base")
    speed_mph: float


class UtilizationOut(ApiModel):
    traveled_miles: float
    assigned_hours: float


DRONE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,127}$"


class BaseOut(ApiModel):
    name: str
    location: Location


class DroneOut(ApiModel):
    """A drone of the fleet as configured: what a flight of it needs to know."""

    drone_id: str
    base: BaseOut = Field(description="where the drone starts and returns to")
    drone_class: str
    max_size: PackageSize
    max_weight: float
    speed_mph: float = Field(description="cruise speed")
    expedited_speed_mph: float = Field(description="cruise speed on an expedited delivery")
    cruise_altitude: float = Field(description="metres above the ground")
