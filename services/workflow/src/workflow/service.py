"""The workflow's rules: schedule, reschedule and cancel a delivery across three services.

**delivery**: upsert the package → assign a drone → create the delivery (owner, resolved places
and their names, drone and ETAs) → apply whatever reschedule/cancel was recorded for it meanwhile.
**reschedule**: record the change, then apply the recorded state (re-plan the drone, patch the
delivery; new places the drone scheduler refuses are recorded on the delivery as a refused
change, which its owner sees and its recipients are told of, and forgotten). **cancel**: record
it, then release the drone and cancel the delivery.

The pending protocol (why an overtaking reschedule/cancel is never lost). Ordering between
messages is not guaranteed (competing consumers, prefetch, redelivery), so a reschedule or cancel
may be handled before, during or after its delivery:

1. A reschedule/cancel handler first *writes* its change to the pending record (Redis, atomic,
   ``version`` incremented), and only then tries to apply the record downstream.
2. The delivery handler reads the record before booking (a recorded cancel books nothing), and
   *reads it again after* the delivery exists, applying what it finds.
3. Whoever applies re-reads ``version`` after applying and applies again if it moved.

Take a change written at W and a delivery created at C and read back at R (C < R). If W < R the
delivery handler sees the change and applies it itself. If R < W then C < W, so the change's own
handler, which applies after W, finds the delivery already created and applies it there. Either way
the change reaches the delivery at least once — there is no interleaving in which both sides miss
it — and applying is idempotent (absolute values, idempotent deletes). Step 3 closes the window
where an older state's PATCH lands after a newer one: the handler that sent the stale PATCH sees
the version moved and applies the newest state last. Fields only move forward in message enqueue
time, so a reschedule overtaking a newer one cannot undo it.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

from dronecommon.area import DEFAULT_SERVICE_AREA, ServiceArea, place_name
from dronecommon.domain import Location, format_utc

from .backends import Backends, Outcome, Refusal
from .errors import PermanentError, TransientError
from .repository import Pending, PendingStore
from .schemas import CancelMessage, DeliveryMessage, RescheduleMessage

logger = logging.getLogger("workflow.service")

# A recorded place → its point and its name in the delivery service's bodies.
PLACE_WIRE = {
    "pickupLocation": ("pickup", "pickupPlace"),
    "dropOffLocation": ("dropoff", "dropoffPlace"),
}


@dataclass
class Progress:
    """How far a delivery got in this attempt (decides whether a failure must compensate)."""

    drone_assigned: bool = False
    delivery_created: bool = False


class Workflow:
    """Runs each operation; raises PermanentError / TransientError (see :mod:`workflow.errors`)."""

    def __init__(
        self,
        backends: Backends,
        pending: PendingStore,
        *,
        apply_rounds: int = 5,
        area: ServiceArea = DEFAULT_SERVICE_AREA,
    ) -> None:
        self.backends = backends
        self.pending = pending
        self.apply_rounds = apply_rounds
        self.area = area

    async def deliver(self, message: DeliveryMessage, progress: Progress) -> str:
        delivery_id = message.delivery_id
        pickup = self.area.resolve(message.pickup_location)
        dropoff = self.area.resolve(message.drop_off_location)
        if (await self.pending.read(delivery_id)).cancelled:
            # Book nothing more, but keep the request's record, Cancelled.
            await self._record_cancelled(message, pickup, dropoff)
            return "cancelled before it was scheduled: recorded as Cancelled, nothing booked"
        await self.backends.upsert_package(message)
        plan = await self.backends.assign_drone(message, pickup, dropoff)
        if plan.assignment is None:
            if (await self.pending.read(delivery_id)).cancelled:
                await self._record_cancelled(message, pickup, dropoff)
                return "cancelled while it was being scheduled: recorded as Cancelled"
            raise PermanentError(
                "DroneAssignmentReleased",
                f"the drone assignment of {delivery_id} was released earlier (a failed attempt "
                "was compensated) and released assignments are final: submit a new request",
            )
        progress.drone_assigned = True
        await self.backends.create_delivery(message, pickup, dropoff, plan.assignment)
        progress.delivery_created = True
        result = f"scheduled with drone {plan.assignment.drone_id}"
        try:
            applied = await self.apply_pending(delivery_id)
        except PermanentError as exc:
            # The delivery itself is done; a recorded change that cannot apply belongs to its own
            # message (which is dead-lettered by its handler), not to this one.
            logger.error("delivery %s: a recorded change was refused: %s", delivery_id, exc)
            return result
        return result if applied is None else f"{result}; then {applied}"

    async def reschedule(self, message: RescheduleMessage, at_ms: int) -> str:
        changes = message.changes()
        if not changes:
            return "nothing to change"
        await self.pending.record_reschedule(message.delivery_id, at_ms, changes)
        return await self.apply_pending(message.delivery_id) or "nothing to apply"

    async def cancel(self, message: CancelMessage, at_ms: int) -> str:
        await self.pending.record_cancel(message.delivery_id, at_ms)
        return await self.apply_pending(message.delivery_id) or "nothing to apply"

    async def _record_cancelled(
        self, message: DeliveryMessage, pickup: Location, dropoff: Location
    ) -> None:
        """End a delivery cancelled before its record existed: release whatever drone an earlier
        attempt of this message booked (a cancel handled between that attempt's pending read and
        its booking released nothing), then record the request as Cancelled."""
        await self.backends.release_drone(message.delivery_id)
        await self.backends.create_delivery(message, pickup, dropoff, None)
        await self.backends.cancel_delivery(message.delivery_id)

    async def compensate(
        self, delivery_id: str, progress: Progress, *, redelivered: bool
    ) -> str | None:
        """Release the drone a delivery that gives up may hold; what was done, or None.

        This attempt's own booking is released when its delivery record was not created. An
        earlier attempt (``redelivered``) may have booked a drone too: it is released unless the
        delivery record exists (then the drone is that delivery's and stays booked).
        """
        if progress.delivery_created:
            return None
        if progress.drone_assigned:
            await self.backends.release_drone(delivery_id)
            return "its drone was released"
        if not redelivered or await self.backends.delivery_exists(delivery_id):
            return None
        await self.backends.release_drone(delivery_id)
        return "any drone an earlier attempt booked was released"

    async def apply_pending(self, delivery_id: str) -> str | None:
        """Apply the recorded state until it stops changing; None when nothing is recorded."""
        state = await self.pending.read(delivery_id)
        for _ in range(self.apply_rounds):
            if state.version == 0:
                return None
            result = await self._apply(delivery_id, state)
            latest = await self.pending.read(delivery_id)
            if latest.version == state.version:
                return result
            state = latest
        raise TransientError(f"the pending changes of {delivery_id} kept changing; retrying")

    async def _apply(self, delivery_id: str, state: Pending) -> str:
        if state.cancelled:
            await self.backends.release_drone(delivery_id)
            outcome = await self.backends.cancel_delivery(delivery_id)
            return {
                Outcome.DONE: "cancelled",
                Outcome.MISSING: "cancel recorded; the delivery is not created yet",
                Outcome.FINAL: "not cancelled: the delivery is already completed",
            }[outcome]
        recorded = state.reschedule
        pickup = _place(self.area, recorded, "pickupLocation")
        dropoff = _place(self.area, recorded, "dropOffLocation")
        changes: dict[str, Any] = {}
        if pickup is not None:
            changes["pickup"] = pickup.model_dump()
            changes["pickupPlace"] = place_name(recorded["pickupLocation"])
        if dropoff is not None:
            changes["dropoff"] = dropoff.model_dump()
            changes["dropoffPlace"] = place_name(recorded["dropOffLocation"])
        if "deadline" in recorded:
            changes["deadline"] = recorded["deadline"]
        refused = None
        if pickup is not None or dropoff is not None:
            plan = await self.backends.replan_drone(delivery_id, pickup, dropoff)
            if plan.outcome is Outcome.MISSING:
                return "reschedule recorded; the delivery is not scheduled yet"
            if plan.outcome is Outcome.REFUSED and plan.refusal is not None:
                refused = await self._refuse(delivery_id, state, plan.refusal, changes)
                changes = {k: v for k, v in changes.items() if k == "deadline"}
            elif plan.outcome is Outcome.FINAL or plan.assignment is None:
                return "not rescheduled: the drone was released (cancelled)"
            else:
                changes["droneId"] = plan.assignment.drone_id
                changes["pickupETA"] = plan.assignment.pickup_eta
                changes["deliveryETA"] = plan.assignment.delivery_eta
        if not changes:
            return refused or "nothing to change downstream (pickup time only)"
        outcome = await self.backends.patch_delivery(delivery_id, changes)
        result = {
            Outcome.DONE: "rescheduled",
            Outcome.MISSING: "reschedule recorded; the delivery is not created yet",
            Outcome.FINAL: "not rescheduled: the delivery is completed or cancelled",
        }[outcome]
        return result if refused is None else f"{refused}; its deadline: {result}"

    async def _refuse(
        self, delivery_id: str, state: Pending, refusal: Refusal, changes: dict[str, Any]
    ) -> str:
        """The drone scheduler refused the recorded places: tell the delivery (its owner sees
        it, its recipients are notified), then forget the places so no later apply asks again.

        The refusal names the places of the newest message among them (the change just asked
        for); every recorded place is forgotten, since the scheduler refused them together.
        """
        recorded = state.reschedule
        times = {name: state.times.get(name, 0) for name in PLACE_WIRE if name in recorded}
        newest = max(times.values())
        body: dict[str, Any] = {
            "requestedAt": format_utc(dt.datetime.fromtimestamp(newest / 1000, dt.UTC)),
            "reason": refusal.reason,
            "detail": refusal.detail,
        }
        for name, (point, label) in PLACE_WIRE.items():
            if times.get(name) == newest:
                body[point] = changes[point]
                if changes[label] is not None:
                    body[label] = changes[label]
        outcome = await self.backends.refuse_change(delivery_id, body)
        if outcome is Outcome.MISSING:
            raise TransientError(
                f"the new places of {delivery_id} were refused before its delivery record "
                "exists; retrying to tell its owner"
            )
        await self.pending.forget(delivery_id, times)
        if outcome is Outcome.FINAL:
            return f"not rescheduled: refused ({refusal.reason}); the delivery has ended"
        return f"not rescheduled: refused ({refusal.reason}); the owner is told"


def _place(area: ServiceArea, recorded: dict[str, str], name: str) -> Any:
    text = recorded.get(name)
    if text is None:
        return None
    try:
        return area.resolve(text)
    except ValueError as exc:
        raise PermanentError("InvalidMessage", f"{name} {text!r}: {exc}") from exc
