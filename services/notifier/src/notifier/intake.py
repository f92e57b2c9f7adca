"""From delivery events to outbox items: who is told what, enqueued before the event is acked.

For each event (consumer group ``notifier``; :class:`dronecommon.events.EventReader` acknowledges
a batch only after :meth:`Intake.handle` returned):

1. ``Assigned``, ``Rescheduled`` and ``EtaChanged`` update the delivery's remembered ETAs (the
   newest event wins), which later notices (``PickedUp``, ``Completed``) quote; those are read
   only for an event that has someone to tell.
2. Types not in ``NOTIFIER_EVENTS`` and events older than ``NOTIFIER_EVENTS_MAX_AGE`` stop here.
3. The recipients are the ones the event carries (``data.notify``, written by the delivery
   service with the state change); an event without them (``null``) gets them from the delivery
   service (``GET /api/deliveries/{id}``: its notify-me requests now).
4. One item per (delivery, event, recipient) on each configured channel is enqueued with
   ``enqueue.lua``, which writes nothing for an item that exists: an event handled twice (a crash
   before the ack, the same event appended twice) enqueues nothing new. New items wake this
   process's senders (``on_enqueued``), so they go out at once rather than at the next poll.

An event that cannot be handled now (Redis or the delivery service down) fails the batch, after
the others were handled: the reader reads the batch again later, and what was enqueued already is
not enqueued twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection, Sequence
from urllib.parse import quote

from pydantic import ValidationError

from dronecommon.events import (
    AssignedData,
    ChangeRefusedData,
    ClosedData,
    Contact,
    DeliveryEvent,
    EtaChangedData,
    EventData,
    EventDecodeError,
    EventType,
    PickedUpData,
    Recipients,
    RescheduledData,
)
from dronecommon.httpclient import ResilientClient
from dronecommon.notifyme import e164, webhook_url

from .outbox import Outbox
from .records import Channel, Facts, NewItem, event_key, item_id, recipient_key

logger = logging.getLogger("notifier.intake")

ETA_EVENTS = frozenset({EventType.ASSIGNED, EventType.RESCHEDULED, EventType.ETA_CHANGED})
# Events whose notifications tell no times (a refused change changed none).
UNTIMED_EVENTS = frozenset({EventType.CHANGE_REFUSED})


class DirectoryError(RuntimeError):
    """The delivery service could not say who to tell (retried with the batch)."""


class Directory:
    """The recipients of a delivery, from the delivery service (events that do not carry them)."""

    def __init__(self, client: ResilientClient) -> None:
        self.client = client

    async def recipients(self, delivery_id: str) -> Recipients | None:
        response = await self.client.get(f"api/deliveries/{quote(delivery_id, safe='')}")
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise DirectoryError(f"delivery answered {response.status_code} for {delivery_id}")
        body = response.json()
        return Recipients(
            account_id=str((body.get("owner") or {}).get("accountId") or ""),
            requests=[Contact.model_validate(r) for r in body.get("notifyMeRequests") or []],
        )

    async def aclose(self) -> None:
        await self.client.aclose()


def addresses(contact: Contact, channels: Collection[Channel]) -> list[tuple[Channel, str]]:
    """The (channel, address) pairs of one notify-me request on the channels in use; addresses
    that do not pass the registration rules are left out (logged)."""
    found: list[tuple[Channel, str]] = []
    try:
        if contact.email_address and Channel.EMAIL in channels:
            if "@" not in contact.email_address:
                raise ValueError(f"not an e-mail address: {contact.email_address!r}")
            found.append((Channel.EMAIL, contact.email_address))
        if contact.sms and Channel.SMS in channels:
            found.append((Channel.SMS, e164(contact.sms)))
        if contact.webhook_url and Channel.WEBHOOK in channels:
            found.append((Channel.WEBHOOK, webhook_url(contact.webhook_url)))
    except ValueError as exc:
        logger.warning("a notify-me request is left out: %s", exc)
    return found


def facts_of(event: DeliveryEvent, data: EventData, etas: dict[str, str]) -> Facts:
    def when(name: str) -> dt.datetime | None:
        value = etas.get(name)
        return dt.datetime.fromisoformat(value) if value else None

    at = event.at
    drone = None
    pickup, delivery, previous = when("pickupETA"), when("deliveryETA"), None
    refused = None
    if isinstance(data, AssignedData | RescheduledData):
        drone, pickup, delivery = data.drone_id, data.pickup_eta, data.delivery_eta
    elif isinstance(data, PickedUpData | ClosedData):
        drone, at = data.drone_id, data.at
    elif isinstance(data, EtaChangedData):
        delivery, previous = data.delivery_eta, data.previous_eta
    elif isinstance(data, ChangeRefusedData):
        refused = data.refused
    return Facts(
        type=event.type.value,
        delivery_id=event.delivery_id,
        at=at,
        drone_id=drone,
        pickup_eta=pickup,
        delivery_eta=delivery,
        previous_eta=previous,
        dropoff_place=data.dropoff_place,
        refused=refused,
    )


def plan(
    event: DeliveryEvent, facts: Facts, recipients: Recipients, channels: Collection[Channel]
) -> list[NewItem]:
    """One item per distinct (channel, address) of the recipients."""
    key = event_key(event)
    items: dict[str, NewItem] = {}
    for contact in recipients.requests:
        for channel, address in addresses(contact, channels):
            new_id = item_id(event.delivery_id, key, recipient_key(channel, address))
            items.setdefault(
                new_id,
                NewItem(
                    id=new_id,
                    delivery_id=event.delivery_id,
                    event_key=key,
                    channel=channel,
                    to=address,
                    account=recipients.account_id,
                    facts=facts,
                ),
            )
    return list(items.values())


class Intake:
    def __init__(
        self,
        outbox: Outbox,
        directory: Directory,
        *,
        events: Collection[EventType],
        channels: Collection[Channel],
        max_age: float,
        clock: Callable[[], dt.datetime],
        on_enqueued: Callable[[], None] | None = None,
    ) -> None:
        self.outbox = outbox
        self.on_enqueued = on_enqueued
        self.directory = directory
        self.events = frozenset(events)
        self.channels = frozenset(channels)
        self.max_age = dt.timedelta(seconds=max_age)
        self.clock = clock

    async def handle(self, events: Sequence[DeliveryEvent]) -> None:
        failure: Exception | None = None
        for event in events:
            try:
                await self.take(event)
            except Exception as exc:  # the others still go; the batch is read again
                logger.warning("event %s of %s: not handled yet", event.id, event.delivery_id)
                failure = failure or exc
        if failure is not None:
            raise failure

    async def take(self, event: DeliveryEvent) -> int:
        """Enqueue the event's notifications; how many were new."""
        try:
            data = event.parsed()
        except EventDecodeError:
            logger.exception(
                "event %s of %s: unreadable data, skipped", event.id, event.delivery_id
            )
            return 0
        assert isinstance(data, EventData)
        remembered = await self._remember_etas(event, data)
        if event.type not in self.events or not self.channels:
            return 0
        now = self.clock()
        if now - event.at > self.max_age:
            logger.info("event %s of %s: too old to tell, skipped", event.id, event.delivery_id)
            return 0
        recipients = data.notify
        if recipients is None:
            try:
                recipients = await self.directory.recipients(event.delivery_id)
            except (ValidationError, ValueError) as exc:
                logger.warning("delivery %s: unreadable recipients: %s", event.delivery_id, exc)
                return 0
            if recipients is None:
                logger.info("delivery %s is unknown: nobody to tell", event.delivery_id)
                return 0
        if not recipients.requests:  # most deliveries: nobody asked, so no ETAs to look up
            return 0
        if remembered is not None:
            etas = remembered
        elif event.type in UNTIMED_EVENTS:
            etas = {}
        else:
            etas = await self.outbox.etas(event.delivery_id)
        items = plan(event, facts_of(event, data, etas), recipients, self.channels)
        if not items:
            return 0
        new = await self.outbox.enqueue(items, now)
        if new and self.on_enqueued is not None:
            self.on_enqueued()
        logger.info(
            "%s of %s: %d notification(s) enqueued, %d already known",
            event.type.value,
            event.delivery_id,
            new,
            len(items) - new,
        )
        return new

    async def _remember_etas(self, event: DeliveryEvent, data: EventData) -> dict[str, str] | None:
        """For an event that sets ETAs, remember them (the newest event wins) and return what is
        known now; None for other events."""
        if event.type not in ETA_EVENTS:
            return None
        wire = data.wire()
        known = {k: wire[k] for k in ("pickupETA", "deliveryETA") if wire.get(k)}
        return await self.outbox.remember_etas(event.delivery_id, event.at, known)
