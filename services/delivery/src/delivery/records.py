"""What the service stores per delivery (JSON in Redis), apart from the wire models.

A delivery's *stored* stage is one of Created, Rescheduled, Completed or Cancelled: the stages a
write causes. HeadedToPickup and HeadedToDropoff follow from the drone's reported phase, or
without telemetry from the clock and the drone timing (see :mod:`delivery.tracking`), so they are
never written as the stage (the history keeps the phase changes the drone reported).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import BaseModel, ConfigDict

from dronecommon.domain import ConfirmationType, DeliveryStage, Location, UtcDateTime
from dronecommon.events import Contact, Recipients, RefusedChange
from dronecommon.fixes import Phase
from dronecommon.notifyme import NotifyMeRequest

from .schemas import Confirmation, Owner

STORED_STAGES = frozenset(
    {
        DeliveryStage.CREATED,
        DeliveryStage.RESCHEDULED,
        DeliveryStage.COMPLETED,
        DeliveryStage.CANCELLED,
    }
)


class Plan(BaseModel):
    """One (re)schedule: when it started and, once a drone is assigned, the drone's timing."""

    model_config = ConfigDict(frozen=True)

    start: UtcDateTime
    pickup_eta: UtcDateTime | None = None
    delivery_eta: UtcDateTime | None = None

    @property
    def timed(self) -> bool:
        """Whether a drone timing is known (both ETAs came from the drone scheduler)."""
        return self.pickup_eta is not None and self.delivery_eta is not None


class DeliveryRecord(BaseModel):
    """The delivery's current state (the ``state`` field of its hash)."""

    id: str
    owner: Owner
    pickup: Location
    dropoff: Location
    # As the customer named them (absent in records written before they were kept).
    pickup_place: str | None = None
    dropoff_place: str | None = None
    deadline: str
    expedited: bool
    confirmation_required: ConfirmationType
    drone_id: str | None
    stage: DeliveryStage
    created_at: UtcDateTime
    updated_at: UtcDateTime
    plan: Plan
    confirmation: Confirmation | None = None
    cancelled_at: UtcDateTime | None = None
    cancel_location: Location | None = None
    notify_me_requests: list[NotifyMeRequest] = []
    # The latest change of places refused after it was accepted; cleared by a reschedule.
    refused_change: RefusedChange | None = None

    def dumps(self) -> str:
        return self.model_dump_json()

    def event_context(self) -> dict[str, Any]:
        """What every event this delivery writes carries besides its own fields
        (``dronecommon.events.EventData``): who to tell, and the drop-off by its name."""
        return {"notify": self.recipients(), "dropoff_place": self.dropoff_place}

    def recipients(self) -> Recipients:
        """Who to tell about this delivery (every event it writes carries them): its owner's
        account and its notify-me requests."""
        return Recipients(
            account_id=self.owner.account_id,
            requests=[Contact.model_validate(r.wire()) for r in self.notify_me_requests],
        )


class StoredEvent(BaseModel):
    """One entry of the history list; events that start a plan carry it, and the drone's
    reported phase changes (written by the telemetry consumer) carry the phase."""

    at: UtcDateTime
    stage: DeliveryStage
    location: Location | None
    plan: Plan | None = None
    phase: Phase | None = None

    def dumps(self) -> str:
        return self.model_dump_json(exclude_none=True)


def month_of(moment: dt.datetime) -> tuple[int, int]:
    utc = moment.astimezone(dt.UTC)
    return utc.year, utc.month
