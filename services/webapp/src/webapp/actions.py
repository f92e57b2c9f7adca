"""What a customer does to a delivery besides watching it: change where it goes, tell someone
else about it, cancel it.

Each asks first on a page of its own (``/deliveries/{id}/change``, ``/deliveries/{id}/notify``,
``/deliveries/{id}/cancel``) and acts on the form it posts; a delivery that has ended goes back
to its page, saying there is nothing left to do.

A change of places is ingestion's reschedule: it reaches the delivery through the queue and the
workflow, the drone re-routes, and the delivery's page redraws the route when its stream brings
the change. Once the drone has the package only the drop-off can change. A trip the delivery's
drone cannot fly is refused on the form before anything is sent (:func:`webapp.maps.trip_refusal`);
a change the drone scheduler refuses after ingestion accepted it (a race, or another client) shows
on both pages until a later change succeeds (:mod:`webapp.refused`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from .backends import Backends, Reply
from .errors import NotFound
from .maps import map_config, point, trip_refusal
from .pages import DeliveryId, delivery_and_status, told
from .refused import refusal
from .schedule import ChangeForm, Form, NotifyForm
from .sessions import SessionStore
from .web import (
    Customer,
    Services,
    Sessions,
    Settings,
    SignedIn,
    label,
    read_form,
    render,
    save_notices,
)

router = APIRouter(include_in_schema=False)

ENDED = ("Completed", "Cancelled")
NOTHING_TO_TELL = "Fill in an e-mail address, an SMS number or a webhook URL."
NOTHING_TO_CHANGE = "Type a new pickup or drop-off, or pick one on the map."
PICKED_UP = "The drone has the package already: only the drop-off can change."
# The stage in which the drone carries the package (the status's stage from its phase).
CARRYING = "HeadedToDropoff"


async def _back_to(
    customer: SignedIn, store: SessionStore, delivery_id: str, notice: str
) -> RedirectResponse:
    """To the delivery's page, which shows ``notice``."""
    customer.session.data.notices = [notice]
    await store.save(customer.session)
    return RedirectResponse(f"/deliveries/{delivery_id}", status_code=303)


def _refused(reply: Reply, delivery_id: str, form: Form) -> bool:
    """Whether the service refused what the form asked (its refusal is now on the form); a 404
    is the page's own."""
    if reply.status == 404:
        raise NotFound(f"No delivery {delivery_id} that you can see.")
    if reply.ok:
        return False
    form.refused(reply.status, reply.body)
    return True


async def _open(
    services: Backends, customer: SignedIn, store: SessionStore, delivery_id: str, what: str
) -> tuple[dict[str, Any], dict[str, Any]] | Response:
    """The delivery and its status for a page that acts on it, or the way back to its page
    (saying why) once it has ended: there is nothing left ``what`` (to cancel, to tell)."""
    found = await delivery_and_status(services, customer, delivery_id)
    if found is None:
        raise NotFound(f"No delivery {delivery_id} that you can see.")
    stage = str(found[1].get("stage"))
    if stage in ENDED:
        notice = f"This delivery is {label(stage).lower()}: {what}."
        return await _back_to(customer, store, delivery_id, notice)
    return found


def _notify_page(
    request: Request, delivery: dict[str, Any], form: NotifyForm, status: int = 200
) -> Response:
    context = {"delivery": delivery, "told": told(delivery), "form": form}
    return render(request, "notify.html", context, status=status)


def _change_page(
    request: Request,
    settings: Any,
    found: tuple[dict[str, Any], dict[str, Any]],
    form: ChangeForm,
    status: int = 200,
) -> Response:
    delivery, now = found
    page_data = {
        **map_config(settings),
        "current": {name: point(delivery.get(name)) for name in ("pickup", "dropoff")},
    }
    context = {
        "delivery": delivery,
        "status": now,
        "carrying": now.get("stage") == CARRYING,
        "refusal": refusal(delivery, now),
        "form": form,
        "map": page_data,
    }
    return render(request, "change.html", context, status=status)


@router.get("/deliveries/{delivery_id}/change")
async def change_page(
    request: Request,
    delivery_id: DeliveryId,
    customer: Customer,
    services: Services,
    store: Sessions,
    settings: Settings,
) -> Response:
    """Change the pickup (until the drone has the package) or the drop-off: where they are now,
    on the map too, and a field for each new place, typed or picked on the map."""
    found = await _open(services, customer, store, delivery_id, "it can no longer change")
    if isinstance(found, Response):
        return found
    response = _change_page(request, settings, found, ChangeForm())
    await save_notices(request, store)
    return response


@router.post("/deliveries/{delivery_id}/change")
async def change(
    request: Request,
    delivery_id: DeliveryId,
    customer: Customer,
    services: Services,
    store: Sessions,
    settings: Settings,
) -> Response:
    form = ChangeForm.parse(await read_form(request, customer.session))
    found = await _open(services, customer, store, delivery_id, "it can no longer change")
    if isinstance(found, Response):
        return found
    body = form.request()
    if form.pickup and found[1].get("stage") == CARRYING:
        form.add_error("pickup", PICKED_UP)
    elif not body:
        form.problem = NOTHING_TO_CHANGE
    elif too_far := trip_refusal(settings, found[0], form.pickup, form.dropoff):
        form.add_error("dropoff" if form.dropoff else "pickup", too_far)
    if form.problem or form.errors:
        return _change_page(request, settings, found, form, 400)
    reply = await services.reschedule(customer.token, delivery_id, body, form.request_key)
    if _refused(reply, delivery_id, form):
        return _change_page(request, settings, found, form, 400)
    places = (("pickup", form.pickup), ("drop-off", form.dropoff))
    changed = " and ".join(f"the {what} to {place}" for what, place in places if place)
    notice = f"Change requested: {changed}. The route shows it once the drone has it."
    return await _back_to(customer, store, delivery_id, notice)


@router.get("/deliveries/{delivery_id}/notify")
async def notify_page(
    request: Request,
    delivery_id: DeliveryId,
    customer: Customer,
    services: Services,
    store: Sessions,
) -> Response:
    """Tell someone else about the delivery: who is told now, and a form for one more."""
    found = await _open(services, customer, store, delivery_id, "there is nothing more to tell")
    if isinstance(found, Response):
        return found
    response = _notify_page(request, found[0], NotifyForm())
    await save_notices(request, store)
    return response


@router.post("/deliveries/{delivery_id}/notify")
async def notify(
    request: Request,
    delivery_id: DeliveryId,
    customer: Customer,
    services: Services,
    store: Sessions,
) -> Response:
    form = NotifyForm.parse(await read_form(request, customer.session))
    found = await _open(services, customer, store, delivery_id, "there is nothing more to tell")
    if isinstance(found, Response):
        return found
    body = form.notify()
    if not body:
        form.problem = NOTHING_TO_TELL
        return _notify_page(request, found[0], form, 400)
    reply = await services.notify_me(customer.token, delivery_id, body)
    if _refused(reply, delivery_id, form):
        return _notify_page(request, found[0], form, 400)
    notice = f"From now on, {', '.join(body.values())} will be told too."
    return await _back_to(customer, store, delivery_id, notice)


@router.get("/deliveries/{delivery_id}/cancel")
async def cancel_page(
    request: Request,
    delivery_id: DeliveryId,
    customer: Customer,
    services: Services,
    store: Sessions,
) -> Response:
    """Ask before cancelling: what the cancel does now (the drone turns back, with the package
    once it has it), and that it cannot be undone. A delivery that has ended goes back to its
    page, saying so."""
    found = await _open(services, customer, store, delivery_id, "there is nothing to cancel")
    if isinstance(found, Response):
        return found
    delivery, status = found
    stage = str(status.get("stage"))
    response = render(
        request,
        "cancel.html",
        {"delivery": delivery, "status": status, "carrying": stage == CARRYING},
    )
    await save_notices(request, store)
    return response


@router.post("/deliveries/{delivery_id}/cancel")
async def cancel(
    request: Request,
    delivery_id: DeliveryId,
    customer: Customer,
    services: Services,
    store: Sessions,
) -> Response:
    await read_form(request, customer.session)
    reply: Reply = await services.cancel(customer.token, delivery_id)
    if reply.status == 404:
        raise NotFound(f"No delivery {delivery_id} that you can see.")
    notice = (
        "Cancellation requested."
        if reply.ok
        else f"The delivery could not be cancelled ({reply.status})."
    )
    return await _back_to(customer, store, delivery_id, notice)
