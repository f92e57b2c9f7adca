"""``/track/{deliveryId}``: the public tracking page, for anyone holding the id.

No sign-in and no personal data: it reads only the delivery service's public view, public
history and public tracking stream (no owner, contacts, named places or proof of delivery), and
shows from them the stage, the ETAs, the route, the drone and the stages so far. The signed-in
user's session is not consulted.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from dronecommon.domain import format_utc, utcnow

from .backends import Backends
from .errors import NotFound, ServiceUnavailable
from .maps import map_config, route_config
from .pages import DeliveryId, stage_entries
from .web import Services, Settings, Streams, render

router = APIRouter(include_in_schema=False)

# What the public page may show of the public view (anything else the view carries is dropped).
PUBLIC_FIELDS = ("id", "pickup", "dropoff", "expedited", "stage", "createdAt", "updatedAt")


def public_status(view: dict[str, Any]) -> dict[str, Any]:
    """The public view as a status: stage, ETAs, and the drone when the service reports it."""
    status: dict[str, Any] = {
        "stage": view.get("stage"),
        "pickupETA": view.get("pickupETA"),
        "deliveryETA": view.get("deliveryETA"),
        "lastKnownLocation": view.get("lastKnownLocation"),
        "telemetry": view.get("telemetry"),
    }
    drone = view.get("drone")
    if isinstance(drone, dict):
        status["drone"] = {
            key: drone.get(key) for key in ("location", "at", "phase", "speedMph") if key in drone
        }
    return status


async def _public(services: Backends, delivery_id: str) -> dict[str, Any]:
    reply = await services.public_delivery(delivery_id)
    if reply.status in (400, 404):
        raise NotFound(f"No delivery {delivery_id}.")
    if not reply.ok or not isinstance(reply.body, dict):
        raise ServiceUnavailable("delivery", f"answered {reply.status}")
    return reply.body


@router.get("/track/{delivery_id}")
async def public_track(
    request: Request, delivery_id: DeliveryId, services: Services, settings: Settings
) -> Response:
    view, history = await asyncio.gather(
        _public(services, delivery_id), services.public_history(delivery_id)
    )
    shown = {key: view.get(key) for key in PUBLIC_FIELDS}
    status = public_status(view)
    page_data = {
        **map_config(settings),
        "route": route_config(settings, view, None),
        "status": status,
        # The stages so far (no places); the page adds each new one as the stream brings it.
        "timeline": stage_entries(history.body if history.ok else []),
        "now": format_utc(utcnow()),
        "streamUrl": f"/track/{delivery_id}/events",
        "statusUrl": f"/track/{delivery_id}/status.json",
        "public": True,
        "staleSeconds": settings.tracking_stale_seconds,
    }
    return render(
        request,
        "public_track.html",
        {"delivery": shown, "status": status, "page_data": page_data},
    )


@router.get("/track/{delivery_id}/status.json")
async def public_status_json(
    delivery_id: DeliveryId, services: Services, settings: Settings
) -> Response:
    """The status, and the route (a reschedule moves it)."""
    view = await _public(services, delivery_id)
    return JSONResponse(
        {
            "status": public_status(view),
            "route": route_config(settings, view, None),
            "now": format_utc(utcnow()),
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/track/{delivery_id}/events")
async def public_events(request: Request, delivery_id: DeliveryId, streams: Streams) -> Response:
    return await streams.open(
        f"/api/deliveries/public/{delivery_id}/tracking",
        token=None,
        last_event_id=request.headers.get("last-event-id"),
        scope=request.scope,
    )
