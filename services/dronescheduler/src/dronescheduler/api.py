"""The drone scheduler routes (thin: validation is in the schemas, rules in the service).

Every route is internal and needs a service token holding the app role named below (a customer
token is 403): ``Drones.Assign`` (the workflow) assigns, re-plans and releases; ``Drones.Fly``
(the drones: the simulator) reads drones and releases them when they are back at base;
``Fleet.Control`` (operations) may read the utilization report.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status
from fastapi.exceptions import RequestValidationError

from dronecommon import error_responses, from_state
from dronecommon.auth.policy import requires
from dronecommon.auth.roles import DRONES_ASSIGN, DRONES_FLY, FLEET_CONTROL

from .records import AssignmentRecord
from .runtime import State
from .schemas import (
    DELIVERY_ID_PATTERN,
    DRONE_ID_PATTERN,
    MAX_ID_LENGTH,
    AssignmentOut,
    BaseOut,
    DroneAssignmentOut,
    DroneDeliveryIn,
    DroneOut,
    PackageDetailOut,
    ReplanIn,
    UtilizationOut,
)
from .service import Scheduler

Drones = Annotated[Scheduler, from_state(State, "scheduler")]
DeliveryId = Annotated[
    str,
    Path(
        alias="deliveryId",
        pattern=DELIVERY_ID_PATTERN,
        max_length=MAX_ID_LENGTH,
        description="1..128 of A-Z a-z 0-9 . _ ~ : -, starting with a letter or digit",
        examples=["3d4e5f60-7a8b-4c9d-8e0f-1a2b3c4d5e6f"],
    ),
]
OwnerId = Annotated[
    str, Query(alias="ownerId", min_length=1, max_length=MAX_ID_LENGTH, examples=["myowner"])
]
Year = Annotated[int, Query(ge=1, le=9999, description="UTC calendar year")]
Month = Annotated[int, Query(ge=1, le=12, description="UTC calendar month, 1..12")]

router = APIRouter(prefix="/api/dronedeliveries", tags=["dronedeliveries"])
drones = APIRouter(prefix="/api/drones", tags=["drones"])

ASSIGNER = requires(DRONES_ASSIGN)
FLYER_OR_ASSIGNER = requires(DRONES_ASSIGN, DRONES_FLY)
REPORTER = requires(DRONES_ASSIGN, FLEET_CONTROL)

_REPLAY: dict[int | str, dict[str, Any]] = {
    200: {
        "model": DroneAssignmentOut,
        "description": "Replay: the delivery already had this drone (same body as the 201)",
    },
    201: {"description": "A drone was assigned now"},
}


def _assignment(record: AssignmentRecord) -> DroneAssignmentOut:
    return DroneAssignmentOut(
        delivery_id=record.delivery_id,
        drone_id=record.drone_id,
        pickupETA=record.pickup_eta,
        deliveryETA=record.delivery_eta,
    )


# Declared before "/{deliveryId}" so that the report is never taken for a delivery.
@router.get(
    "/utilization",
    summary="Miles flown and hours assigned for an owner's deliveries in one UTC month",
    responses=error_responses(400, 404, 503),
    dependencies=[REPORTER],
)
async def utilization(
    owner_id: OwnerId, year: Year, month: Month, drones: Drones
) -> UtilizationOut:
    miles, hours = await drones.utilization(owner_id, year, month)
    return UtilizationOut(traveled_miles=miles, assigned_hours=hours)


@router.put(
    "/{deliveryId}",
    status_code=status.HTTP_201_CREATED,
    summary="Assign the nearest free drone that can carry the package",
    description="422: no drone can carry the package (no-capable-drone), a place outside the "
    "service area (outside-service-area), or no base within the longest trip (trip-too-long).",
    responses={**_REPLAY, **error_responses(400, 409, 422, 503)},
    dependencies=[ASSIGNER],
)
async def assign_drone(
    delivery_id: DeliveryId, body: DroneDeliveryIn, drones: Drones, response: Response
) -> DroneAssignmentOut:
    if body.delivery_id != delivery_id:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "deliveryId"),
                    "msg": f"must be {delivery_id!r}, the deliveryId in the path",
                    "input": body.delivery_id,
                }
            ]
        )
    record, created = await drones.assign(body)
    if not created:
        response.status_code = status.HTTP_200_OK
    return _assignment(record)


@router.get(
    "/{deliveryId}",
    summary="Read a delivery's drone assignment",
    responses=error_responses(400, 404, 503),
    dependencies=[FLYER_OR_ASSIGNER],
)
async def get_assignment(delivery_id: DeliveryId, drones: Drones) -> AssignmentOut:
    record = await drones.get(delivery_id)
    return AssignmentOut(
        delivery_id=record.delivery_id,
        owner_id=record.owner_id,
        drone_id=record.drone_id,
        base=record.base,
        drone_class=record.drone_class,
        pickup=record.pickup,
        dropoff=record.dropoff,
        package_detail=PackageDetailOut(
            id=record.package_id, size=record.package_size, weight=record.package_weight
        ),
        expedited=record.expedited,
        status="Released" if record.released else "Assigned",
        assigned_at=record.assigned_at,
        pickupETA=record.pickup_eta,
        deliveryETA=record.delivery_eta,
        busy_until=record.busy_until,
        released_at=record.released_at,
        route_miles=round(record.miles, 3),
        speed_mph=record.speed_mph,
    )


@router.patch(
    "/{deliveryId}",
    summary="Re-plan a delivery's route with the same drone (new ETAs and busy time)",
    description="422: a place outside the service area, or a trip longer than the longest "
    "allowed for the assigned drone.",
    responses=error_responses(400, 404, 409, 422, 503),
    dependencies=[ASSIGNER],
)
async def replan(delivery_id: DeliveryId, body: ReplanIn, drones: Drones) -> DroneAssignmentOut:
    record = await drones.replan(delivery_id, body.pickup, body.dropoff)
    return _assignment(record)


@router.delete(
    "/{deliveryId}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Release the delivery's drone (idempotent; unknown deliveries too)",
    responses=error_responses(400, 503),
    dependencies=[FLYER_OR_ASSIGNER],
)
async def release(delivery_id: DeliveryId, drones: Drones) -> Response:
    await drones.release(delivery_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@drones.get(
    "/{droneId}",
    summary="A drone of the fleet: base, class, speeds and cruise altitude (for its flight)",
    responses=error_responses(400, 404),
    dependencies=[FLYER_OR_ASSIGNER],
)
async def get_drone(
    drone_id: Annotated[
        str,
        Path(
            alias="droneId",
            pattern=DRONE_ID_PATTERN,
            max_length=MAX_ID_LENGTH,
            examples=["downtown-standard-00042"],
        ),
    ],
    scheduler: Drones,
) -> DroneOut:
    drone = scheduler.drone(drone_id)
    drone_class = drone.drone_class
    return DroneOut(
        drone_id=drone.id,
        base=BaseOut(name=drone.base.name, location=drone.base.location),
        drone_class=drone_class.name,
        max_size=drone_class.max_size,
        max_weight=drone_class.max_weight,
        speed_mph=drone_class.speed_mph,
        expedited_speed_mph=drone_class.speed_mph * scheduler.settings.expedited_speed_factor,
        cruise_altitude=drone_class.cruise_altitude,
    )
