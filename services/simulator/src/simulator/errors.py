"""The simulator's refusals; the library answers them as problem+json."""

from __future__ import annotations

from dronecommon import DomainError


class DroneNotInFlight(DomainError):
    """The drone is not flying now (landed at its base, or unknown)."""

    status = 404
    problem = "drone-not-in-flight"

    def __init__(self, drone_id: str) -> None:
        super().__init__(f"Drone {drone_id} is not in the air.")
