"""The simulator's calls to the drone scheduler and the delivery service.

- ``GET /api/drones/{droneId}`` (scheduler): the drone's base, speeds and cruise altitude, cached
  for ``SIMULATOR_DRONE_CACHE_SECONDS`` (the fleet is configuration).
- ``POST /api/deliveries/{id}/confirmations`` (delivery): the drone's proof of delivery, with the
  confirmation type the delivery asked for. The same confirmation again is a 204 (idempotent),
  so a confirmation retried after a crash completes the delivery once.
- ``DELETE /api/dronedeliveries/{id}`` (scheduler): release the drone (idempotent).

Transient failures (timeouts, 5xx, 429, an open circuit) raise
:class:`~dronecommon.httpclient.TransientHTTPError` (from the client) or :class:`RetryLaterError`
(an answer no contract allows): the caller tries again later. Answers that will not change
(404, 409 and other 4xx) are logged and count as done: a delivery cancelled meanwhile cannot be
confirmed, and saying so again would not help.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

from pydantic import ValidationError

from dronecommon.domain import ApiModel, Location, format_utc
from dronecommon.httpclient import ResilientClient, Response, TransientHTTPError

from .flight import Point
from .flights import Confirm, DroneInfo

logger = logging.getLogger("simulator.backends")


class RetryLaterError(RuntimeError):
    """An answer that a later attempt may improve on."""


#: What a caller of :class:`Backends` retries later.
RETRYABLE: tuple[type[Exception], ...] = (TransientHTTPError, RetryLaterError)


class _Base(ApiModel):
    name: str
    location: Location


class _Drone(ApiModel):
    drone_id: str
    base: _Base
    speed_mph: float
    expedited_speed_mph: float
    cruise_altitude: float


def _location(point: Point) -> dict[str, float]:
    return {"latitude": point.lat, "longitude": point.lon, "altitude": point.alt}


def confirmation_body(confirm: Confirm) -> dict[str, object]:
    """The confirmation the drone sends: a simulated proof for types other than None."""
    body: dict[str, object] = {
        "dateTime": format_utc(dt.datetime.fromtimestamp(confirm.at, dt.UTC)),
        "geoCoordinates": _location(confirm.location),
        "confirmationType": confirm.confirmation,
    }
    if confirm.confirmation.casefold() != "none":
        body["confirmationBlob"] = f"simulated-{confirm.confirmation.lower()}:{confirm.delivery_id}"
    return body


class Backends:
    def __init__(
        self,
        *,
        delivery: ResilientClient,
        dronescheduler: ResilientClient,
        cache_seconds: float = 3600.0,
    ) -> None:
        self.delivery = delivery
        self.dronescheduler = dronescheduler
        self.cache_seconds = cache_seconds
        self._drones: dict[str, tuple[float, DroneInfo]] = {}

    async def aclose(self) -> None:
        await self.delivery.aclose()
        await self.dronescheduler.aclose()

    async def drone(self, drone_id: str) -> DroneInfo | None:
        """The drone as the scheduler describes it; None when it has no such drone."""
        cached = self._drones.get(drone_id)
        if cached is not None and time.monotonic() - cached[0] < self.cache_seconds:
            return cached[1]
        response = await self.dronescheduler.get(f"api/drones/{drone_id}")
        if response.status_code in (400, 404):
            logger.error("the drone scheduler has no drone %s: it cannot fly", drone_id)
            return None
        _require(response, "GET drone")
        try:
            found = _Drone.model_validate(response.json())
        except (ValueError, ValidationError) as exc:
            raise RetryLaterError(f"the drone scheduler answered {drone_id} with {exc}") from exc
        base = found.base.location
        info = DroneInfo(
            found.drone_id,
            Point(base.latitude, base.longitude, base.altitude),
            found.speed_mph,
            found.expedited_speed_mph,
            found.cruise_altitude,
        )
        self._drones[drone_id] = (time.monotonic(), info)
        return info

    async def confirm(self, confirm: Confirm) -> None:
        response = await self.delivery.post(
            f"api/deliveries/{confirm.delivery_id}/confirmations",
            json=confirmation_body(confirm),
            idempotent=True,
        )
        if response.status_code == 204:
            return
        _require(response, f"confirm {confirm.delivery_id}")
        logger.warning(
            "delivery %s not confirmed: %s %s",
            confirm.delivery_id,
            response.status_code,
            response.text[:300],
        )

    async def release(self, delivery_id: str) -> None:
        response = await self.dronescheduler.delete(f"api/dronedeliveries/{delivery_id}")
        if response.status_code in (200, 204):
            return
        _require(response, f"release {delivery_id}")
        logger.warning(
            "drone of %s not released: %s %s",
            delivery_id,
            response.status_code,
            response.text[:300],
        )


def _require(response: Response, what: str) -> None:
    """A 5xx or an unexpected status that a later attempt may not get: transient."""
    if response.status_code >= 500 or response.status_code in (408, 429):
        raise RetryLaterError(f"{what}: {response.status_code}")
