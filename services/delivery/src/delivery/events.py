"""The delivery events this service appends with each state change (its outbox).

Written by the same Lua script as the change itself (see :mod:`delivery.repository`); the wire
format and the consumers' reader are in :mod:`dronecommon.events`.

- ``Assigned``: a delivery created with a drone, or a reschedule that sets a drone the delivery
  did not have (none before, or another one);
- ``Rescheduled``: any other reschedule (new places, deadline or drone timing);
- ``Cancelled`` and ``Completed``: the terminal changes;
- ``ChangeRefused``: a change of places the workflow could not apply (the drone scheduler
  refused it), recorded on the delivery without changing its plan.

``PickedUp`` and ``EtaChanged`` come from the drone's telemetry: the consumer (:mod:`delivery.live`)
appends them in its own compare-and-set write.

Each event carries ``notify``: the owner's account and the delivery's notify-me requests as they
are in the state written with it, and ``dropoffPlace``, the drop-off as the customer named it
(whom the notifier tells, and what it calls the delivery, without asking this service): both
from :meth:`~delivery.records.DeliveryRecord.event_context`.

ETAs are the plan's, estimated from the distance when the drone scheduler's timing is unknown
(as in the status), so an event never carries a null ETA.
"""

from __future__ import annotations

import datetime as dt

from dronecommon.domain import Location
from dronecommon.events import (
    AssignedData,
    ChangeRefusedData,
    ClosedData,
    DeliveryEvent,
    EventType,
    RefusedChange,
    RescheduledData,
)

from . import tracking
from .records import DeliveryRecord
from .schemas import Confirmation


def assigned(
    record: DeliveryRecord, drone_id: str, now: dt.datetime, estimates: tracking.Estimates
) -> DeliveryEvent:
    when = tracking.timing(record.plan, record.pickup, record.dropoff, estimates)
    data = AssignedData(
        drone_id=drone_id,
        pickup=record.pickup,
        dropoff=record.dropoff,
        pickupETA=when.pickup_eta,
        deliveryETA=when.delivery_eta,
        confirmation_required=record.confirmation_required,
        expedited=record.expedited,
        **record.event_context(),
    )
    return DeliveryEvent.of(EventType.ASSIGNED, record.id, now, data)


def replanned(
    before: DeliveryRecord,
    after: DeliveryRecord,
    now: dt.datetime,
    estimates: tracking.Estimates,
) -> DeliveryEvent:
    """``Assigned`` when the reschedule gave the delivery a drone it did not have, else
    ``Rescheduled``."""
    if after.drone_id is not None and after.drone_id != before.drone_id:
        return assigned(after, after.drone_id, now, estimates)
    when = tracking.timing(after.plan, after.pickup, after.dropoff, estimates)
    data = RescheduledData(
        drone_id=after.drone_id,
        pickup=after.pickup,
        dropoff=after.dropoff,
        pickupETA=when.pickup_eta,
        deliveryETA=when.delivery_eta,
        confirmation_required=after.confirmation_required,
        expedited=after.expedited,
        **after.event_context(),
    )
    return DeliveryEvent.of(EventType.RESCHEDULED, after.id, now, data)


def cancelled(record: DeliveryRecord, now: dt.datetime, where: Location) -> DeliveryEvent:
    data = ClosedData(
        drone_id=record.drone_id,
        at=now,
        location=where,
        **record.event_context(),
    )
    return DeliveryEvent.of(EventType.CANCELLED, record.id, now, data)


def completed(
    record: DeliveryRecord, confirmation: Confirmation, now: dt.datetime
) -> DeliveryEvent:
    data = ClosedData(
        drone_id=record.drone_id,
        at=confirmation.date_time,
        location=confirmation.geo_coordinates,
        **record.event_context(),
    )
    return DeliveryEvent.of(EventType.COMPLETED, record.id, now, data)


def change_refused(record: DeliveryRecord, refused: RefusedChange) -> DeliveryEvent:
    data = ChangeRefusedData(refused=refused, **record.event_context())
    return DeliveryEvent.of(EventType.CHANGE_REFUSED, record.id, refused.at, data)
