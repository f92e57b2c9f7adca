"""Wire models: the queue messages the workflow reads and the downstream answers it parses.

Message bodies come from ingestion (the normalised request, ``deliveryId`` included). Unknown
fields are ignored; anything that does not validate is a malformed message (dead-lettered at
once). Bodies sent downstream are built as plain dicts in :mod:`workflow.backends`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from pydantic import AliasChoices, Field, field_validator

from dronecommon.area import check_place
from dronecommon.domain import (
    ApiModel,
    ConfirmationType,
    PackageSize,
    UtcDateTime,
)
from dronecommon.notifyme import NotifyMeRequest

# Ids go into URL paths: a safe charset keeps a message from addressing another route.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"
SafeId = Annotated[str, Field(pattern=ID_PATTERN)]
Place = Annotated[str, Field(min_length=1, max_length=1024)]


def _resolvable(value: str | None) -> str | None:
    if value is not None:
        check_place(value)  # raises ValueError: a place no service could use
    return value


class PackageInfo(ApiModel):
    package_id: SafeId
    size: PackageSize
    weight: float = Field(gt=0, allow_inf_nan=False)
    tag: str | None = Field(default=None, max_length=1024)


class Owner(ApiModel):
    """Who owns the delivery (from the customer's token, at ingestion)."""

    user_id: str = Field(min_length=1, max_length=128)
    account_id: str = Field(min_length=1, max_length=128)


class DeliveryMessage(ApiModel):
    """``operation=delivery``: schedule a new delivery."""

    delivery_id: SafeId
    owner_id: str = Field(min_length=1, max_length=128)
    # Absent only in messages queued before owners came from tokens: the account is then the
    # ownerId (see :attr:`owner_of`).
    owner: Owner | None = None
    pickup_location: Place
    drop_off_location: Place = Field(
        validation_alias=AliasChoices("dropOffLocation", "dropoffLocation", "drop_off_location")
    )
    pickup_time: UtcDateTime | None = None
    deadline: str = Field(default="", max_length=1024)
    expedited: bool = False
    confirmation_required: ConfirmationType = ConfirmationType.NONE
    package_info: PackageInfo
    # Registered with the delivery as its first notify-me request (in the creating PUT).
    notify: NotifyMeRequest | None = None

    _places = field_validator("pickup_location", "drop_off_location")(_resolvable)

    @field_validator("deadline", mode="before")
    @classmethod
    def _no_null_deadline(cls, value: object) -> object:
        return "" if value is None else value

    @property
    def owner_of(self) -> Owner:
        return self.owner or Owner(user_id=self.owner_id, account_id=self.owner_id)


class RescheduleMessage(ApiModel):
    """``operation=reschedule``: change some of the places, the pickup time and the deadline."""

    delivery_id: SafeId
    pickup_location: Place | None = None
    drop_off_location: Place | None = Field(
        default=None,
        validation_alias=AliasChoices("dropOffLocation", "dropoffLocation", "drop_off_location"),
    )
    pickup_time: UtcDateTime | None = None
    deadline: str | None = Field(default=None, max_length=1024)

    _places = field_validator("pickup_location", "drop_off_location")(_resolvable)

    def changes(self) -> dict[str, str]:
        """The fields this message sets, as recorded in the pending store."""
        changed: dict[str, str] = {}
        if self.pickup_location is not None:
            changed["pickupLocation"] = self.pickup_location
        if self.drop_off_location is not None:
            changed["dropOffLocation"] = self.drop_off_location
        if self.pickup_time is not None:
            changed["pickupTime"] = self.pickup_time.astimezone(dt.UTC).isoformat()
        if self.deadline is not None:
            changed["deadline"] = self.deadline
        return changed


class CancelMessage(ApiModel):
    """``operation=cancel``: cancel the delivery and release its drone."""

    delivery_id: SafeId


class DroneAssignment(ApiModel):
    """The drone scheduler's answer to an assignment or a re-plan."""

    delivery_id: str
    drone_id: str = Field(min_length=1)
    # Kept as sent (validated as date-times) so a replayed create sends the very same body.
    pickup_eta: str = Field(alias="pickupETA")
    delivery_eta: str = Field(alias="deliveryETA")

    @field_validator("pickup_eta", "delivery_eta")
    @classmethod
    def _is_datetime(cls, value: str) -> str:
        dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return value
