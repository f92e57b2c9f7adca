"""The delivery routes: thin HTTP over :class:`~delivery.service.DeliveryService`.

Who may call what (``dronecommon.auth.policy``; a token is required on every route but the
public ones):

- **writes** (create, reschedule, cancel): services holding ``Deliveries.Write`` (the workflow);
- **confirmations**: services holding ``Deliveries.Confirm`` (the drones: the simulator);
- **owner routes** (the full delivery, its owner, status, history, tracking stream, notify-me
  requests, summaries): the delivery's owner (a customer token naming its account and user), an
  ``Operator``, or a service holding ``Deliveries.Write``; the full delivery, its status, history
  and tracking stream also a service holding ``Deliveries.Read`` (the notifier). For anyone
  else a delivery does not exist (404): :data:`Viewer` (or :data:`Reader`) is the dependency
  every owner route takes, and the service checks it against the delivery's owner;
- **public** routes (no token): the public view of a delivery, its stages over time and its
  public tracking stream (no owner, contacts, named places, proof of delivery or drone id).

The public gateway reaches the owner routes (``owned``) but its owner lookup, and the public
ones; the ``internal`` router (writes, confirmations, ``/owner``) answers 404 to anything that
came through the gateway (``dronecommon.edge``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Response
from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator
from sse_starlette import EventSourceResponse

from dronecommon import error_responses, from_state
from dronecommon.auth.inbound import Caller
from dronecommon.auth.policy import requires
from dronecommon.auth.roles import DELIVERIES_CONFIRM, DELIVERIES_READ, DELIVERIES_WRITE
from dronecommon.notifyme import NotifyMeRequest

from .records import DeliveryRecord
from .runtime import State
from .schemas import (
    ID_PATTERN,
    MAX_TEXT,
    Confirmation,
    Delivery,
    DeliveryIn,
    DeliveryPage,
    DeliveryPatch,
    DeliveryStatus,
    OwnedDelivery,
    Owner,
    PublicDelivery,
    PublicTrackingEvent,
    RefusalIn,
    Summary,
    TrackingEvent,
    not_reserved,
)
from .service import DeliveryService
from .sse import Tracker

PREFIX = "/api/deliveries"

Deliveries = Annotated[DeliveryService, from_state(State, "deliveries")]
# The workflow's writes; the drones' confirmations; who may see a delivery (owner routes) and who
# may read it (the owner routes' reads: the notifier's role too).
Writer = Annotated[Caller, requires(DELIVERIES_WRITE)]
Confirmer = Annotated[Caller, requires(DELIVERIES_CONFIRM)]
Viewer = Annotated[Caller, requires(DELIVERIES_WRITE, customers=True)]
Reader = Annotated[Caller, requires(DELIVERIES_READ, DELIVERIES_WRITE, customers=True)]
Tracking = Annotated[Tracker, from_state(State, "tracker")]
LastEventId = Annotated[
    str | None,
    Header(
        alias="Last-Event-ID",
        description="Resume after this event (sent by EventSource on reconnection); "
        "an id that is not one of the stream's starts afresh",
    ),
]
DeliveryId = Annotated[
    str,
    Path(
        pattern=ID_PATTERN,
        max_length=128,
        description="1..128 of A-Z a-z 0-9 . _ ~ - (first a letter or digit); "
        "not 'summary' or 'public'",
        examples=["3fa85f64-5717-4562-b3fc-2c963f66afa6"],
    ),
    AfterValidator(not_reserved),
]

NO_CONTENT: dict[int | str, dict[str, Any]] = {204: {"description": "Done"}}

_STREAM_EXAMPLE = """\
retry: 3000
id: 1767261600123-0.0
event: status
data: {"stage":"HeadedToPickup","lastKnownLocation":{...},"pickupETA":"...","deliveryETA":"...",\
"telemetry":"none","drone":null}

id: 1767261600123-0.7
event: status
data: {"stage":"HeadedToPickup",...,"telemetry":"live","drone":{"location":{...},"at":"...",\
"phase":"ToPickup","speedMph":41.2}}

: ping

id: 1767261902456-0.188
event: end
data: {"stage":"Completed"}
"""


def stream_responses(body: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {
            "description": "Server-Sent Events: `status` events (data: " + body + "), then "
            "`end` once Completed or Cancelled",
            "content": {
                "text/event-stream": {"schema": {"type": "string"}, "example": _STREAM_EXAMPLE}
            },
        },
        **error_responses(400, 404, 503),
    }


def _public_view(record: DeliveryRecord, status: DeliveryStatus) -> dict[str, Any]:
    return {
        "id": record.id,
        "pickup": record.pickup,
        "dropoff": record.dropoff,
        "deadline": record.deadline,
        "expedited": record.expedited,
        "confirmation_required": record.confirmation_required,
        "drone_id": record.drone_id,
        "pickup_eta": record.plan.pickup_eta,
        "delivery_eta": record.plan.delivery_eta,
        "stage": status.stage,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "telemetry": status.telemetry,
    }


def delivery_view(record: DeliveryRecord, status: DeliveryStatus) -> Delivery:
    return Delivery(
        **_public_view(record, status),
        drone=status.drone,
        owner=record.owner,
        pickup_place=record.pickup_place,
        dropoff_place=record.dropoff_place,
        notify_me_requests=record.notify_me_requests,
        confirmation=record.confirmation,
    )


# The public gateway exposes the owner routes and the public ones; internal routes answer 404 to
# anything that came through it (dronecommon.edge), whatever its token.
owned = APIRouter(prefix=PREFIX, tags=["deliveries"])
internal = APIRouter(prefix=PREFIX, tags=["internal"])
public = APIRouter(prefix=PREFIX, tags=["tracking"])


@owned.get(
    "",
    summary="The caller's deliveries, newest first",
    description="A customer's own deliveries (the token's user, within its account); an Operator "
    "may name another owner with `ownerId` (any other customer: 403). A service holding "
    "`Deliveries.Read` or `Deliveries.Write`, or any caller when tokens are off, names the owner "
    "(`ownerId` required). `nextCursor` fetches the next page (the last page may come back empty).",
    responses=error_responses(400, 403, 503),
)
async def mine(
    deliveries: Deliveries,
    caller: Reader,
    owner_id: Annotated[
        str | None, Query(alias="ownerId", min_length=1, max_length=MAX_TEXT)
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
) -> DeliveryPage:
    found, next_cursor = await deliveries.owned(caller, owner_id, limit, cursor)
    items = [
        OwnedDelivery(**delivery_view(record, status).model_dump(), status=status)
        for record, status in found
    ]
    return DeliveryPage(items=items, next_cursor=next_cursor)


# Declared before "/{id}" so that "summary" is never taken for an id.
@owned.get(
    "/summary",
    summary="How many deliveries an owner created in a UTC month",
    description="A customer may ask for its own ownerId only (another is 404); an Operator or a "
    "service for any.",
    responses=error_responses(400, 404, 503),
)
async def summary(
    deliveries: Deliveries,
    viewer: Viewer,
    owner_id: Annotated[str, Query(alias="ownerId", min_length=1, max_length=MAX_TEXT)],
    year: Annotated[int, Query(ge=1, le=9999)],
    month: Annotated[int, Query(ge=1, le=12)],
) -> Summary:
    return Summary(count=await deliveries.summary(owner_id, year, month, viewer))


@internal.put(
    "/{id}",
    status_code=201,
    response_model=Delivery,
    summary="Create a delivery (idempotent)",
    response_description="Created; Location names the delivery",
    responses={
        204: {"description": "The same delivery already exists (a replay)"},
        **error_responses(400, 409, 413, 415, 503),
    },
)
async def create(
    id: DeliveryId, body: DeliveryIn, deliveries: Deliveries, response: Response, _: Writer
) -> Delivery | Response:
    if body.id is not None and body.id != id:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "id"),
                    "msg": f"must equal the id in the path ({id!r})",
                    "input": body.id,
                }
            ]
        )
    created = await deliveries.create(id, body)
    if created is None:
        return Response(status_code=204)
    response.headers["Location"] = f"{PREFIX}/{id}"
    return delivery_view(*created)


@owned.get(
    "/{id}",
    summary="A delivery, with its owner",
    responses=error_responses(400, 404, 503),
)
async def get(id: DeliveryId, deliveries: Deliveries, viewer: Reader) -> Delivery:
    return delivery_view(*await deliveries.get(id, viewer))


@internal.get(
    "/{id}/owner",
    summary="Who owns a delivery",
    responses=error_responses(400, 404, 503),
)
async def owner(id: DeliveryId, deliveries: Deliveries, viewer: Viewer) -> Owner:
    record, _ = await deliveries.get(id, viewer)
    return record.owner


@internal.patch(
    "/{id}",
    status_code=204,
    summary="Reschedule a delivery (optionally with the drone's new timing)",
    responses={**NO_CONTENT, **error_responses(400, 404, 409, 413, 415, 503)},
)
async def reschedule(
    id: DeliveryId, patch: DeliveryPatch, deliveries: Deliveries, _: Writer
) -> None:
    await deliveries.reschedule(id, patch)


@internal.post(
    "/{id}/refusals",
    status_code=204,
    summary="Record a change of places that was refused after it was accepted",
    description="The drone scheduler refused to re-plan a reschedule ingestion had accepted "
    "(the trip too long for the delivery's drone, a place outside the service area). The "
    "delivery keeps its places and plan; its owner's status carries `refusedChange` until a "
    "later reschedule succeeds, and a `ChangeRefused` event tells the recipients. A repeat "
    "(same `requestedAt` and `reason`) records nothing. 409 once Completed or Cancelled.",
    responses={**NO_CONTENT, **error_responses(400, 404, 409, 413, 415, 503)},
)
async def refuse_change(id: DeliveryId, body: RefusalIn, deliveries: Deliveries, _: Writer) -> None:
    await deliveries.refuse_change(id, body)


@internal.delete(
    "/{id}",
    status_code=204,
    summary="Cancel a delivery (idempotent)",
    responses={**NO_CONTENT, **error_responses(400, 404, 409, 503)},
)
async def cancel(id: DeliveryId, deliveries: Deliveries, _: Writer) -> None:
    await deliveries.cancel(id)


@owned.post(
    "/{id}/notifymerequests",
    status_code=204,
    summary="Ask to be notified about a delivery",
    responses={**NO_CONTENT, **error_responses(400, 404, 409, 413, 415, 503)},
)
async def notify_me(
    id: DeliveryId, body: NotifyMeRequest, deliveries: Deliveries, viewer: Viewer
) -> None:
    await deliveries.notify_me(id, body, viewer)


@internal.post(
    "/{id}/confirmations",
    status_code=204,
    summary="Confirm a delivery (completes it; idempotent for the same confirmation)",
    responses={**NO_CONTENT, **error_responses(400, 404, 409, 413, 415, 503)},
)
async def confirm(id: DeliveryId, body: Confirmation, deliveries: Deliveries, _: Confirmer) -> None:
    await deliveries.confirm(id, body)


# Public: registered ahead of the internal routes (see main.py), so "/public/{id}" is never
# taken for "/{id}/owner" and the like.
@public.get(
    "/public/{id}",
    summary="A delivery as anyone may see it",
    responses=error_responses(400, 404, 503),
)
async def get_public(id: DeliveryId, deliveries: Deliveries) -> PublicDelivery:
    record, status = await deliveries.get(id)
    return PublicDelivery(**_public_view(record, status), drone=status.public().drone)


@public.get(
    "/public/{id}/tracking",
    summary="Track a delivery live, as anyone may (no drone id)",
    response_class=EventSourceResponse,
    responses=stream_responses("the status without the drone's id"),
)
async def track_public(
    id: DeliveryId, tracker: Tracking, last_event_id: LastEventId = None
) -> EventSourceResponse:
    return await tracker.open(id, public=True, last_event_id=last_event_id)


@public.get(
    "/public/{id}/history",
    summary="A delivery's stages and the drone's phases, oldest first, as anyone may see them",
    description="The history of `GET .../{id}/history` without its places.",
    responses=error_responses(400, 404, 503),
)
async def history_public(id: DeliveryId, deliveries: Deliveries) -> list[PublicTrackingEvent]:
    return [
        PublicTrackingEvent(at=event.at, stage=event.stage, phase=event.phase)
        for event in await deliveries.history(id)
    ]


@owned.get(
    "/{id}/status",
    summary="Where a delivery is and when it will arrive",
    responses=error_responses(400, 404, 503),
)
async def status(id: DeliveryId, deliveries: Deliveries, viewer: Reader) -> DeliveryStatus:
    return await deliveries.status(id, viewer)


@owned.get(
    "/{id}/history",
    summary="A delivery's tracking events, oldest first",
    responses=error_responses(400, 404, 503),
)
async def history(id: DeliveryId, deliveries: Deliveries, viewer: Reader) -> list[TrackingEvent]:
    return await deliveries.history(id, viewer)


@owned.get(
    "/{id}/tracking",
    summary="Track a delivery live, as its owner",
    response_class=EventSourceResponse,
    responses=stream_responses("the same JSON as `GET .../status`"),
)
async def track(
    id: DeliveryId, tracker: Tracking, viewer: Reader, last_event_id: LastEventId = None
) -> EventSourceResponse:
    return await tracker.open(id, viewer=viewer, public=False, last_event_id=last_event_id)
