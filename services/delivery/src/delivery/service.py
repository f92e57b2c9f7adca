"""The record rules of a delivery: creation and replays, reschedules, cancel and confirm,
notify-me requests, reads of the record, the owner's list and summaries. The status, the views
the tracking streams read and the history are :mod:`delivery.views`, the base of
:class:`DeliveryService`.

Every change is read → decide → conditional write: the write succeeds only if the delivery is
still at the revision that was read (a Lua compare-and-set), otherwise the decision is made again
on the fresh state. So a cancel and a confirmation racing each other end with exactly one terminal
stage and one terminal event, whichever lands first; the other sees the terminal stage and
answers 409.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import json
import random
from collections.abc import Callable
from dataclasses import dataclass

from dronecommon.auth.inbound import ANONYMOUS, Caller
from dronecommon.domain import TERMINAL_STAGES, ConfirmationType, DeliveryStage, month_bounds
from dronecommon.events import DeliveryEvent, RefusedChange
from dronecommon.notifyme import NotifyMeRequest

from . import events, tracking
from .errors import (
    BadCursor,
    ConfirmationRejected,
    DeliveryClosed,
    DeliveryContended,
    DeliveryExists,
    DeliveryNotFound,
    NotifyLimitReached,
    OthersDeliveries,
    OwnerRequired,
    SummaryNotFound,
)
from .records import DeliveryRecord, Plan, StoredEvent
from .repository import Snapshot, WriteOutcome
from .schemas import (
    Confirmation,
    DeliveryIn,
    DeliveryPatch,
    DeliveryStatus,
    RefusalIn,
)
from .settings import SECONDS_PER_DAY
from .views import DeliveryViews, stage_entry, visible

# Conditional writes retried this many times before the request is answered 503 (only reached
# under a storm of writes to one delivery).
MAX_ATTEMPTS = 16


def encode_cursor(created_ms: int, delivery_id: str) -> str:
    return base64.urlsafe_b64encode(f"{created_ms}.{delivery_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created, _, delivery_id = text.partition(".")
        if not delivery_id:
            raise ValueError(text)
        return int(created), delivery_id
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("cursor is not one this service gave: start again without it") from None


def canonical(body: DeliveryIn, delivery_id: str) -> str:
    """The creating PUT as compared on replay: normalised values, sorted keys."""
    document = body.model_copy(update={"id": delivery_id}).wire()
    if not document["notifyMeRequests"]:
        del document["notifyMeRequests"]  # as a PUT without them was always stored
    for name in ("pickupPlace", "dropoffPlace"):
        if document[name] is None:
            del document[name]  # likewise: a PUT stored before places were kept had none
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class _Write:
    """What a decision writes: the new state, its history event, the TTL if terminal, and the
    delivery event for the outbox (see :mod:`delivery.events`)."""

    record: DeliveryRecord
    event: StoredEvent | None = None
    ttl_seconds: int = 0
    outbox: DeliveryEvent | None = None
    # Whether the owner's view changes without a stage change (the streams read it again).
    announce: bool = False


class DeliveryService(DeliveryViews):
    """The delivery rules: the record rules here, the status and the views from
    :class:`~delivery.views.DeliveryViews`."""

    # --- creation --------------------------------------------------------------------------

    async def create(
        self, delivery_id: str, body: DeliveryIn
    ) -> tuple[DeliveryRecord, DeliveryStatus] | None:
        """Create the delivery and return it; None on an identical replay; 409 otherwise.

        The body's id (if any) is checked against ``delivery_id`` by the caller.
        """
        now = self.clock()
        put = canonical(body, delivery_id)
        notify: list[NotifyMeRequest] = []
        for request in body.notify_me_requests:  # each request once, in order
            if request not in notify:
                notify.append(request)
        if len(notify) > self.settings.max_notify_requests:
            raise NotifyLimitReached(
                f"A delivery keeps at most {self.settings.max_notify_requests} notify-me requests."
            )
        plan = Plan(start=now, pickup_eta=body.pickup_eta, delivery_eta=body.delivery_eta)
        record = DeliveryRecord(
            id=delivery_id,
            owner=body.owner,
            pickup=body.pickup,
            dropoff=body.dropoff,
            pickup_place=body.pickup_place,
            dropoff_place=body.dropoff_place,
            deadline=body.deadline,
            expedited=body.expedited,
            confirmation_required=body.confirmation_required,
            drone_id=body.drone_id,
            stage=DeliveryStage.CREATED,
            created_at=now,
            updated_at=now,
            plan=plan,
            notify_me_requests=notify,
        )
        event = StoredEvent(at=now, stage=DeliveryStage.CREATED, location=body.pickup, plan=plan)
        outbox = (
            events.assigned(record, record.drone_id, now, self.estimates)
            if record.drone_id
            else None
        )
        first = stage_entry(tracking.status(record, now, self.estimates))
        existing = await self.repository.create(record, put, event, first, outbox)
        if existing is not None and existing != put:
            raise DeliveryExists(delivery_id)
        if existing is not None:
            # A replay: make sure the creation is counted (heals a crash between the two writes).
            snapshot = await self.repository.get(delivery_id)
            if snapshot is not None:
                record = snapshot.record
        await self.repository.count_creation(
            record.owner.user_id, record.id, record.created_at, self._summary_expiry(record)
        )
        if existing is not None:
            return None
        return record, tracking.status(record, now, self.estimates)

    def _summary_expiry(self, record: DeliveryRecord) -> int | None:
        days = self.settings.summary_retention_days
        if days == 0:
            return None
        created = record.created_at.astimezone(dt.UTC)
        _, month_end = month_bounds(created.year, created.month)
        return int(month_end.timestamp()) + days * SECONDS_PER_DAY

    # --- reads -----------------------------------------------------------------------------

    async def get(
        self, delivery_id: str, viewer: Caller = ANONYMOUS
    ) -> tuple[DeliveryRecord, DeliveryStatus]:
        """The delivery and its status now; not found unless ``viewer`` may see it (its owner,
        an operator, a service), so that a stranger learns nothing, not even that it exists."""
        snapshot = await self._snapshot(delivery_id, viewer)
        return snapshot.record, self._status(snapshot, self.clock())

    async def summary(
        self, owner_id: str, year: int, month: int, viewer: Caller = ANONYMOUS
    ) -> int:
        """How many deliveries ``owner_id`` created that month; a customer's own only."""
        if not viewer.sees_everything and viewer.user_id != owner_id:
            raise SummaryNotFound(owner_id)
        return await self.repository.count(owner_id, year, month)

    async def owned(
        self, caller: Caller, owner_id: str | None, limit: int, cursor: str | None
    ) -> tuple[list[tuple[DeliveryRecord, DeliveryStatus]], str | None]:
        """A page of an owner's deliveries, newest first, and the cursor of the next page.

        A customer's list is its own (the token's user, within the token's account); naming
        another owner (``owner_id``) needs the Operator role. A service or an anonymous caller
        (tokens off) names the owner.
        """
        own = caller.user_id if caller.kind == "customer" else None
        owner = owner_id or own
        if owner is None:
            raise OwnerRequired("ownerId is required when the caller is not a customer")
        if own is not None and owner != own and not caller.operator:
            raise OthersDeliveries("only an Operator may list another owner's deliveries")
        account = caller.account_id if owner == own else None
        before = decode_cursor(cursor) if cursor else None
        found: list[tuple[DeliveryRecord, DeliveryStatus]] = []
        now = self.clock()
        last: tuple[int, str] | None = None
        while len(found) < limit:
            page = await self.repository.owned(owner, before=before, count=limit - len(found))
            if not page:
                last = None
                break
            records = await self.repository.records_of([delivery_id for delivery_id, _ in page])
            gone = [
                delivery_id
                for (delivery_id, _), rec in zip(page, records, strict=True)
                if rec is None
            ]
            await self.repository.forget_owned(owner, gone)
            for (delivery_id, created), read in zip(page, records, strict=True):
                last = before = (created, delivery_id)
                if read is None:
                    continue
                record, live = read
                if account is not None and record.owner.account_id != account:
                    continue
                # The status as GET .../status answers it: from the drone's reports, if any.
                found.append(
                    (record, tracking.status(record, now, self.estimates, live, self.rules))
                )
        next_cursor = encode_cursor(*last) if last is not None and len(found) >= limit else None
        return found, next_cursor

    # --- changes ---------------------------------------------------------------------------

    async def _change(
        self,
        delivery_id: str,
        decide: Callable[[Snapshot, dt.datetime], _Write | None],
    ) -> None:
        """Read, decide and write conditionally until the write lands or nothing is to be done."""
        for attempt in range(MAX_ATTEMPTS):
            snapshot = await self.repository.get(delivery_id)
            if snapshot is None:
                raise DeliveryNotFound(delivery_id)
            now = self.clock()
            write = decide(snapshot, now)
            if write is None:
                return
            outcome = await self.repository.write(
                snapshot,
                write.record,
                write.event,
                ttl_seconds=write.ttl_seconds,
                outbox=write.outbox,
                stages=(
                    self._stage_entries(snapshot, write.record, now)
                    if write.event is not None
                    else []
                ),
                announce=write.event is not None or write.announce,
            )
            if outcome is WriteOutcome.WRITTEN:
                return
            if outcome is WriteOutcome.MISSING:
                raise DeliveryNotFound(delivery_id)
            await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter
        raise DeliveryContended(delivery_id)

    async def reschedule(self, delivery_id: str, patch: DeliveryPatch) -> None:
        """A new plan from now: new places, deadline or drone timing; stage Rescheduled."""

        def decide(snapshot: Snapshot, now: dt.datetime) -> _Write | None:
            current = snapshot.record
            if current.stage in TERMINAL_STAGES:
                raise DeliveryClosed(
                    f"Delivery {delivery_id} is {current.stage.value}: it cannot change."
                )
            after = {
                "pickup": patch.pickup or current.pickup,
                "dropoff": patch.dropoff or current.dropoff,
                # A new place without its name (a caller that sends no names) forgets the old.
                "pickup_place": patch.pickup_place if patch.pickup else current.pickup_place,
                "dropoff_place": patch.dropoff_place if patch.dropoff else current.dropoff_place,
                "deadline": patch.deadline if patch.deadline is not None else current.deadline,
                "drone_id": patch.drone_id or current.drone_id,
            }
            unchanged = (
                current.stage == DeliveryStage.RESCHEDULED
                and all(getattr(current, name) == value for name, value in after.items())
                and (patch.pickup_eta is None or patch.pickup_eta == current.plan.pickup_eta)
                and (patch.delivery_eta is None or patch.delivery_eta == current.plan.delivery_eta)
            )
            if unchanged:
                return None  # a replayed reschedule: nothing new to record
            plan = Plan(start=now, pickup_eta=patch.pickup_eta, delivery_eta=patch.delivery_eta)
            record = current.model_copy(
                update={
                    **after,
                    "stage": DeliveryStage.RESCHEDULED,
                    "updated_at": now,
                    "plan": plan,
                    # A change of places that lands is the latest word on the places.
                    "refused_change": (
                        None if patch.pickup or patch.dropoff else current.refused_change
                    ),
                }
            )
            event = StoredEvent(
                at=now, stage=DeliveryStage.RESCHEDULED, location=record.pickup, plan=plan
            )
            outbox = events.replanned(current, record, now, self.estimates)
            return _Write(record, event, outbox=outbox)

        await self._change(delivery_id, decide)

    async def refuse_change(self, delivery_id: str, refusal: RefusalIn) -> None:
        """Record a change of places that was refused after it was accepted: the delivery keeps
        its places and plan, its owner's status shows the refusal and a ``ChangeRefused`` event
        tells whoever is notified. A repeat (same ``requestedAt`` and reason) records nothing."""

        def decide(snapshot: Snapshot, now: dt.datetime) -> _Write | None:
            current = snapshot.record
            if current.stage in TERMINAL_STAGES:
                raise DeliveryClosed(
                    f"Delivery {delivery_id} is {current.stage.value}: it cannot change."
                )
            known = current.refused_change
            if (
                known is not None
                and known.requested_at == refusal.requested_at
                and known.reason == refusal.reason
            ):
                return None
            refused = RefusedChange(at=now, **refusal.model_dump())
            record = current.model_copy(update={"refused_change": refused, "updated_at": now})
            return _Write(record, outbox=events.change_refused(record, refused), announce=True)

        await self._change(delivery_id, decide)

    async def cancel(self, delivery_id: str) -> None:
        """Cancel: idempotent; 409 once Completed. Starts the retention period."""

        def decide(snapshot: Snapshot, now: dt.datetime) -> _Write | None:
            current = snapshot.record
            if current.stage == DeliveryStage.CANCELLED:
                return None
            if current.stage == DeliveryStage.COMPLETED:
                raise DeliveryClosed(
                    f"Delivery {delivery_id} is Completed: it can no longer be cancelled."
                )
            where = self._status(snapshot, now).last_known_location
            record = current.model_copy(
                update={
                    "stage": DeliveryStage.CANCELLED,
                    "updated_at": now,
                    "cancelled_at": now,
                    "cancel_location": where,
                }
            )
            event = StoredEvent(at=now, stage=DeliveryStage.CANCELLED, location=where)
            return _Write(
                record, event, self.settings.retention_seconds, events.cancelled(record, now, where)
            )

        await self._change(delivery_id, decide)

    async def confirm(self, delivery_id: str, confirmation: Confirmation) -> None:
        """Complete the delivery with its proof; a repeat of the same proof is a no-op."""

        def decide(snapshot: Snapshot, now: dt.datetime) -> _Write | None:
            current = snapshot.record
            if current.stage == DeliveryStage.CANCELLED:
                raise DeliveryClosed(
                    f"Delivery {delivery_id} is Cancelled: it cannot be confirmed."
                )
            if current.stage == DeliveryStage.COMPLETED:
                if current.confirmation == confirmation:
                    return None
                raise DeliveryClosed(
                    f"Delivery {delivery_id} is already Completed with another confirmation."
                )
            required = current.confirmation_required
            if required != ConfirmationType.NONE and confirmation.confirmation_type != required:
                raise ConfirmationRejected(
                    f"Delivery {delivery_id} requires a {required.value} confirmation, "
                    f"not {confirmation.confirmation_type.value}."
                )
            record = current.model_copy(
                update={
                    "stage": DeliveryStage.COMPLETED,
                    "updated_at": now,
                    "confirmation": confirmation,
                }
            )
            event = StoredEvent(
                at=now, stage=DeliveryStage.COMPLETED, location=confirmation.geo_coordinates
            )
            return _Write(
                record,
                event,
                self.settings.retention_seconds,
                events.completed(record, confirmation, now),
            )

        await self._change(delivery_id, decide)

    async def notify_me(
        self, delivery_id: str, request: NotifyMeRequest, viewer: Caller = ANONYMOUS
    ) -> None:
        """Keep a notify-me request with the delivery (a repeated request is kept once)."""

        def decide(snapshot: Snapshot, now: dt.datetime) -> _Write | None:
            current = snapshot.record
            if not visible(current, viewer):
                raise DeliveryNotFound(delivery_id)
            if request in current.notify_me_requests:
                return None
            if len(current.notify_me_requests) >= self.settings.max_notify_requests:
                raise NotifyLimitReached(
                    f"Delivery {delivery_id} already has "
                    f"{self.settings.max_notify_requests} notify-me requests."
                )
            record = current.model_copy(
                update={
                    "notify_me_requests": [*current.notify_me_requests, request],
                    "updated_at": now,
                }
            )
            return _Write(record)

        await self._change(delivery_id, decide)
