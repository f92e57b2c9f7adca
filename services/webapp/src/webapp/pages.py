"""The customer's pages: home, schedule a delivery, my deliveries, track one.

Each page is complete as served (the scripts only keep it current). The JSON routes beside them
(``*.json``) and the event stream (``/events``) are what the pages' scripts call.

**My deliveries** refreshes by polling ``/deliveries.json`` every ``WEBAPP_LIST_REFRESH_SECONDS``
(one call for the whole list: a stream per row would hold a connection per delivery); **track
one** follows the delivery's tracking stream and polls its status only while the stream is
unavailable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from dronecommon.domain import format_utc, utcnow

from .backends import Backends
from .errors import NotFound, ServiceUnavailable
from .maps import map_config, point, route_config
from .refused import refusal
from .schedule import CONFIRMATIONS, SIZES, ScheduleForm
from .web import (
    Customer,
    Services,
    Sessions,
    Settings,
    SignedIn,
    Streams,
    read_form,
    render,
    save_notices,
)

router = APIRouter(include_in_schema=False)

DeliveryId = Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$")]
# How many deliveries scheduled in a session are remembered as "maybe not visible yet".
PENDING_KEEP = 20


@router.get("/", name="home")
async def home(request: Request, store: Sessions) -> Response:
    response = render(request, "home.html", {"signedout": "signedout" in request.query_params})
    await save_notices(request, store)
    return response


@router.get("/track")
async def track_by_id(id: Annotated[str, Query(max_length=128)] = "") -> Response:
    wanted = id.strip()
    return RedirectResponse(f"/track/{wanted}" if wanted else "/", status_code=303)


# --- schedule ----------------------------------------------------------------------------------


def _schedule_page(request: Request, form: ScheduleForm, settings: Any, status: int) -> Response:
    context = {
        "form": form,
        "sizes": SIZES,
        "confirmations": CONFIRMATIONS,
        "map": map_config(settings),
    }
    return render(request, "schedule.html", context, status=status)


@router.get("/deliveries/new")
async def schedule_page(request: Request, customer: Customer, settings: Settings) -> Response:
    return _schedule_page(request, ScheduleForm(), settings, 200)


@router.post("/deliveries/new")
async def schedule(
    request: Request, customer: Customer, settings: Settings, store: Sessions, services: Services
) -> Response:
    form = ScheduleForm.parse(await read_form(request, customer.session))
    reply = await services.schedule(
        customer.token, form.request(customer.user.user), form.request_key
    )
    if reply.status != 202 or not isinstance(reply.body, dict):
        form.refused(reply.status, reply.body)
        return _schedule_page(request, form, settings, 400 if reply.status < 500 else 502)
    delivery_id = str(reply.body["deliveryId"])
    data = customer.session.data
    data.pending = [*data.pending, delivery_id][-PENDING_KEEP:]
    data.notices = ["Delivery requested: a drone is being assigned."]
    await store.save(customer.session)
    return RedirectResponse(f"/deliveries/{delivery_id}", status_code=303)


# --- my deliveries -----------------------------------------------------------------------------


def _row(item: dict[str, Any]) -> dict[str, Any]:
    status = item.get("status") or {}
    return {
        "id": item["id"],
        "createdAt": item.get("createdAt"),
        "pickupPlace": item.get("pickupPlace"),
        "dropoffPlace": item.get("dropoffPlace"),
        "stage": status.get("stage") or item.get("stage"),
        "pickupETA": status.get("pickupETA"),
        "deliveryETA": status.get("deliveryETA"),
        "droneId": item.get("droneId"),
    }


async def _my_list(
    services: Backends, customer: SignedIn, cursor: str | None
) -> tuple[list[dict[str, Any]], str | None]:
    reply = await services.my_deliveries(customer.token, customer.user.user, cursor=cursor)
    if not reply.ok or not isinstance(reply.body, dict):
        raise ServiceUnavailable("delivery", f"the list answered {reply.status}")
    rows = [_row(item) for item in reply.body.get("items", [])]
    return rows, reply.body.get("nextCursor")


@router.get("/deliveries")
async def my_deliveries(
    request: Request,
    customer: Customer,
    services: Services,
    store: Sessions,
    settings: Settings,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> Response:
    rows, next_cursor = await _my_list(services, customer, cursor)
    listed = {row["id"] for row in rows}
    pending = [i for i in reversed(customer.session.data.pending) if i not in listed]
    response = render(
        request,
        "deliveries.html",
        {
            "rows": rows,
            "pending": pending if cursor is None else [],
            "next_cursor": next_cursor,
            "cursor": cursor,
            "now": format_utc(utcnow()),
            "refresh_seconds": settings.list_refresh_seconds,
        },
    )
    await save_notices(request, store)
    return response


@router.get("/deliveries.json")
async def my_deliveries_json(
    customer: Customer,
    services: Services,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> JSONResponse:
    rows, next_cursor = await _my_list(services, customer, cursor)
    return JSONResponse(
        {"now": format_utc(utcnow()), "items": rows, "nextCursor": next_cursor},
        headers={"Cache-Control": "no-store"},
    )


# --- track one ---------------------------------------------------------------------------------


#: A stage the drone reports this soon after the plan entered it is shown once (stage_entries).
SAME_MOMENT = dt.timedelta(seconds=5)


def stage_entries(history: Any) -> list[dict[str, Any]]:
    """The timeline: the history's stages and the drone's phases, oldest first.

    A stage the plan entered (a drone assigned: Headed to pickup) that the drone's own report of
    the same stage follows within :data:`SAME_MOMENT` is shown once, as the report ("Headed to
    pickup (flying to the pickup)"): two lines a second apart said the same thing.
    """
    if not isinstance(history, list):
        return []
    entries = [
        {"at": entry.get("at"), "stage": entry.get("stage"), "phase": entry.get("phase")}
        for entry in history
        if isinstance(entry, dict)
    ]
    return [
        entry
        for entry, following in itertools.zip_longest(entries, entries[1:])
        if not _reported_at_once(entry, following)
    ]


def _reported_at_once(entry: dict[str, Any], following: dict[str, Any] | None) -> bool:
    if entry["phase"] or following is None or not following["phase"]:
        return False
    if following["stage"] != entry["stage"]:
        return False
    try:
        gap = dt.datetime.fromisoformat(following["at"]) - dt.datetime.fromisoformat(entry["at"])
    except (TypeError, ValueError):
        return False
    return dt.timedelta(0) <= gap <= SAME_MOMENT


async def _notifications(services: Backends, delivery_id: str) -> list[dict[str, Any]] | None:
    """What was sent for the delivery (None: the notifier cannot say now)."""
    try:
        reply = await services.notifications(delivery_id)
    except ServiceUnavailable:
        return None
    if not reply.ok or not isinstance(reply.body, dict):
        return None
    return [
        {
            "event": item.get("event"),
            "channel": item.get("channel"),
            "to": item.get("to"),
            "status": item.get("status"),
            "at": item.get("sentAt") or item.get("createdAt"),
        }
        for item in reply.body.get("notifications", [])
        if isinstance(item, dict)
    ]


CHANNELS = (("emailAddress", "e-mail"), ("sms", "SMS"), ("webhookUrl", "webhook"))


def told(delivery: dict[str, Any]) -> list[tuple[str, str]]:
    """Who is told about the delivery, each once: (address, channel), in the order added."""
    found: dict[str, str] = {}
    for request in delivery.get("notifyMeRequests") or []:
        for key, channel in CHANNELS:
            value = request.get(key) if isinstance(request, dict) else None
            if value:
                found.setdefault(str(value), channel)
    return list(found.items())


async def delivery_and_status(
    services: Backends, customer: SignedIn, delivery_id: str
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The delivery and its status as this user may see them (None: not found for them)."""
    delivery, status = await asyncio.gather(
        services.delivery_of(customer.token, delivery_id),
        services.status(customer.token, delivery_id),
    )
    if delivery.status == 404 or status.status == 404:
        return None
    for reply in (delivery, status):
        if not reply.ok or not isinstance(reply.body, dict):
            raise ServiceUnavailable("delivery", f"answered {reply.status}")
    return delivery.body, status.body


async def track_details(
    services: Backends, customer: SignedIn, delivery_id: str
) -> dict[str, Any] | None:
    """The delivery, its status, a refused change, timeline and notifications (None: not found
    for this user)."""
    found, history = await asyncio.gather(
        delivery_and_status(services, customer, delivery_id),
        services.history(customer.token, delivery_id),
    )
    if found is None:
        return None
    delivery, status = found
    # Only now that the delivery service has shown it to this user: its notifications.
    notifications = await _notifications(services, delivery_id)
    return {
        "delivery": delivery,
        "status": status,
        "refusal": refusal(delivery, status),
        "timeline": stage_entries(history.body if history.ok else []),
        "notifications": notifications,
        "now": format_utc(utcnow()),
    }


@router.get("/deliveries/{delivery_id}")
async def track(
    request: Request,
    delivery_id: DeliveryId,
    customer: Customer,
    services: Services,
    store: Sessions,
    settings: Settings,
) -> Response:
    details = await track_details(services, customer, delivery_id)
    if details is None:
        if delivery_id in customer.session.data.pending:
            response = render(request, "scheduling.html", {"delivery_id": delivery_id})
            await save_notices(request, store)
            return response
        raise NotFound(f"No delivery {delivery_id} that you can see.")
    delivery: dict[str, Any] = details["delivery"]
    page_data = {
        **map_config(settings),
        "route": route_config(settings, delivery, delivery.get("droneId")),
        "status": details["status"],
        "timeline": details["timeline"],
        "now": details["now"],
        "streamUrl": f"/deliveries/{delivery_id}/events",
        "statusUrl": f"/deliveries/{delivery_id}/details.json",
        "public": False,
        "staleSeconds": settings.tracking_stale_seconds,
    }
    response = render(
        request,
        "track.html",
        {
            "delivery": delivery,
            "status": details["status"],
            "refusal": details["refusal"],
            "timeline": details["timeline"],
            "notifications": details["notifications"],
            "page_data": page_data,
            "public_url": f"/track/{delivery_id}",
            "told": told(delivery),
        },
    )
    await save_notices(request, store)
    return response


def places(delivery: dict[str, Any]) -> dict[str, Any]:
    """The pickup and the drop-off as the page shows them: the name given, if any, and where."""
    return {
        name: {"name": delivery.get(f"{name}Place"), "at": point(delivery.get(name))}
        for name in ("pickup", "dropoff")
    }


@router.get("/deliveries/{delivery_id}/details.json")
async def track_json(
    delivery_id: DeliveryId, customer: Customer, services: Services, settings: Settings
) -> Response:
    """What the page redraws when the delivery changes: its status, a refused change (in the
    page's words), timeline, notifications, and its places and route (a reschedule moves them)."""
    details = await track_details(services, customer, delivery_id)
    if details is None:
        raise NotFound(f"No delivery {delivery_id} that you can see.")
    delivery = details["delivery"]
    return JSONResponse(
        {
            **{
                key: details[key]
                for key in ("status", "refusal", "timeline", "notifications", "now")
            },
            "places": places(delivery),
            "route": route_config(settings, delivery, delivery.get("droneId")),
        },
        headers={"Cache-Control": "no-store"},
    )


@router.get("/deliveries/{delivery_id}/events")
async def track_events(
    request: Request, delivery_id: DeliveryId, customer: Customer, streams: Streams
) -> Response:
    return await streams.open(
        f"/api/deliveries/{delivery_id}/tracking",
        token=customer.token,
        last_event_id=request.headers.get("last-event-id"),
        scope=request.scope,
    )
