"""The drone scheduler's refusals; the library answers them as problem+json."""

from __future__ import annotations

from dronecommon import DomainError
from dronecommon.domain import PackageSize


class FleetLoading(DomainError):
    """The fleet is not loaded yet (start-up is still reading the lease log)."""

    status = 503
    problem = "starting"

    def __init__(self) -> None:
        super().__init__("The fleet is still loading; retry shortly.", retry_after=2)


class NoCapableDrone(DomainError):
    """No drone class of the fleet can carry the package at all."""

    status = 422
    problem = "no-capable-drone"

    def __init__(self, size: PackageSize, weight: float) -> None:
        super().__init__(f"No drone of the fleet can carry a {size.value} package of {weight:g}.")


class OutsideServiceArea(DomainError):
    """A pickup or drop-off lies outside the service area."""

    status = 422
    problem = "outside-service-area"

    def __init__(self, which: str, miles: float, radius: float) -> None:
        super().__init__(
            f"The {which} is {miles:,.1f} miles from the nearest drone base; the service area "
            f"reaches {radius:g} miles."
        )


class TripTooLong(DomainError):
    """No drone may fly a trip this long."""

    status = 422
    problem = "trip-too-long"

    def __init__(self, miles: float, max_miles: float) -> None:
        super().__init__(
            f"The trip (a drone's base, the pickup, the drop-off and back) would be at least "
            f"{miles:,.1f} miles; no trip may be longer than {max_miles:g} miles."
        )


class NoDroneAvailable(DomainError):
    """Every drone that could carry the package is busy (or other replicas won them)."""

    status = 503
    problem = "no-drone-available"

    def __init__(self, detail: str, *, retry_after: int) -> None:
        super().__init__(detail, retry_after=retry_after)


class DroneBusy(DomainError):
    """Concurrent changes to one drone or delivery kept winning; the client retries."""

    status = 503
    problem = "busy"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, retry_after=1)


class AssignmentNotFound(DomainError):
    """The delivery has no drone assignment."""

    status = 404
    problem = "assignment-not-found"

    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"No drone assignment for delivery {delivery_id}.")


class AssignmentReleased(DomainError):
    """The delivery's drone was released; a released assignment is final."""

    status = 409
    problem = "assignment-released"

    def __init__(self, delivery_id: str, drone_id: str) -> None:
        super().__init__(
            f"Delivery {delivery_id} had drone {drone_id}, which was released; a released "
            "assignment is final."
        )


class DroneRetired(DomainError):
    """The assigned drone is no longer in the fleet's configuration."""

    status = 409
    problem = "drone-retired"

    def __init__(self, drone_id: str) -> None:
        super().__init__(f"Drone {drone_id} is no longer in the fleet.")


class DroneReassigned(DomainError):
    """The drone finished this delivery's trip and went to another delivery."""

    status = 409
    problem = "drone-reassigned"

    def __init__(self, drone_id: str) -> None:
        super().__init__(
            f"Drone {drone_id} finished this delivery's trip and has since been given to "
            "another delivery."
        )


class NoAssignmentsInMonth(DomainError):
    """The owner has no assignment in the month asked for."""

    status = 404
    problem = "no-assignments"

    def __init__(self, owner_id: str, year: int, month: int) -> None:
        super().__init__(f"No drone assignments for owner {owner_id!r} in {year:04d}-{month:02d}.")


class DroneNotFound(DomainError):
    """No drone of the configured fleet has that id."""

    status = 404
    problem = "drone-not-found"

    def __init__(self, drone_id: str) -> None:
        super().__init__(f"No drone {drone_id} in the fleet.")
