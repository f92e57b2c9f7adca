"""Wire models of the public API and of the queue message (camelCase JSON).

Input rules where the contract is silent:

- Unknown fields are ignored (a client's ``deliveryId`` included); ``dropoffLocation`` is accepted
  for ``dropOffLocation`` (``dropOffLocation`` wins when both are sent).
- An optional field sent as ``null`` is the same as leaving it out.
- Strings are trimmed. Places must resolve (:mod:`dronecommon.area`: ``"lat,lon"`` in range, or
  any other non-empty text); whether they lie in the service area is the service's rule.
- ``ownerId`` is optional: the owner is the caller the token names (a different ``ownerId`` is
  refused by the service); without tokens it is required.
- ``pickupTime`` is an RFC 3339 date-time string with seconds and an offset (``Z`` or ``+hh:mm``);
  it is answered in UTC with millisecond precision.
- ``expedited`` is a JSON boolean, ``weight`` a JSON number: no strings standing in for either.
- ``packageId`` uses the package service's id alphabet, so the workflow can always store it.
- ``notify`` follows :mod:`dronecommon.notifyme` (e-mail per RFC 5321/6531, E.164 phone numbers,
  https webhook URLs); it travels on the queue message and becomes the delivery's first notify-me
  request. Absent or ``null``, it is left out of the normalised request.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal, Self

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StrictBool,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from dronecommon.area import check_place
from dronecommon.domain import (
    MAX_PACKAGE_WEIGHT,
    MAX_TAG_LENGTH,
    ApiModel,
    ConfirmationType,
    PackageSize,
    format_utc,
)
from dronecommon.notifyme import NotifyMeRequest

MAX_OWNER_ID_LENGTH = 128
MAX_PLACE_LENGTH = 256
MAX_DEADLINE_LENGTH = 256
PACKAGE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"

Operation = Literal["delivery", "reschedule", "cancel"]

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$"
)


def _rfc3339_text(value: object) -> object:
    if not isinstance(value, str) or not _RFC3339.match(value.strip()):
        raise ValueError("must be an RFC 3339 date-time with an offset, e.g. 2019-05-08T20:00:00Z")
    return value.strip()


def _in_utc(value: dt.datetime) -> dt.datetime:
    try:
        return value.astimezone(dt.UTC)
    except OverflowError:
        raise ValueError("is out of range once converted to UTC") from None


def _resolvable(place: str) -> str:
    check_place(place)  # ValueError (a 400 on this field) when it cannot be placed
    return place


RequestTime = Annotated[
    dt.datetime,
    BeforeValidator(_rfc3339_text),
    AfterValidator(_in_utc),
    PlainSerializer(format_utc, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
OwnerId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_OWNER_ID_LENGTH)]
Place = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_PLACE_LENGTH),
    AfterValidator(_resolvable),
]
Deadline = Annotated[str, StringConstraints(max_length=MAX_DEADLINE_LENGTH)]
PackageId = Annotated[
    str, StringConstraints(min_length=1, max_length=128, pattern=PACKAGE_ID_PATTERN)
]
Tag = Annotated[str, StringConstraints(max_length=MAX_TAG_LENGTH)]
Weight = Annotated[
    float, Field(strict=True, gt=0, le=MAX_PACKAGE_WEIGHT, allow_inf_nan=False, examples=[10])
]

_DROP_OFF = Field(
    validation_alias=AliasChoices("dropOffLocation", "dropoffLocation"),
    description='A "lat,lon" string or any place text (dropoffLocation is accepted too)',
    examples=["drop off"],
)


class RequestModel(ApiModel):
    """A request body: camelCase names only (the snake_case Python names are not wire names)."""

    model_config = ConfigDict(populate_by_name=False, validate_by_name=False)


# --- POST /api/deliveryrequests -----------------------------------------------------------------


class PackageInfoIn(RequestModel):
    package_id: PackageId | None = Field(
        default=None, description="Made by the server (a UUID) when absent", examples=["mypackage"]
    )
    size: PackageSize
    weight: Weight
    tag: Tag | None = Field(default=None, examples=["mytag"])


class DeliveryRequestIn(RequestModel):
    """A delivery request as a business sends it."""

    owner_id: OwnerId | None = Field(
        default=None,
        description="The caller's user (the token's oid) when absent; another user is 403",
        examples=["myowner"],
    )
    pickup_location: Place = Field(
        description='A "lat,lon" string or any place text', examples=["my pickup"]
    )
    drop_off_location: Place = _DROP_OFF
    pickup_time: RequestTime | None = Field(
        default=None, description="RFC 3339; the time of the request when absent"
    )
    deadline: Deadline | None = Field(default=None, description="Free text", examples=[""])
    expedited: StrictBool | None = Field(default=None, description="false when absent")
    confirmation_required: ConfirmationType
    package_info: PackageInfoIn
    notify: NotifyMeRequest | None = Field(
        default=None, description="Who to tell when the delivery moves (e-mail, SMS, webhook)"
    )


class PackageInfo(ApiModel):
    package_id: str
    size: PackageSize
    weight: float
    tag: str | None


class Owner(ApiModel):
    """Who owns the delivery: the token's user and account."""

    user_id: str
    account_id: str


class DeliveryRequest(ApiModel):
    """The normalised request: the 202 body and the ``delivery`` message body."""

    delivery_id: str = Field(description="Made by the server (UUID4)")
    owner_id: str = Field(description="The owner's user id (owner.userId)")
    owner: Owner = Field(description="From the token: its user (oid) and account (tid)")
    pickup_location: str
    drop_off_location: str
    pickup_time: Annotated[
        dt.datetime, PlainSerializer(format_utc, return_type=str, when_used="json")
    ] = Field(json_schema_extra={"format": "date-time"})
    deadline: str
    expedited: bool
    confirmation_required: ConfirmationType
    package_info: PackageInfo
    notify: NotifyMeRequest | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Present when the request asked to be notified",
    )


# --- PATCH and DELETE /api/deliveryrequests/{deliveryId} ----------------------------------------


class RescheduleIn(RequestModel):
    """What changes; at least one field."""

    pickup_location: Place | None = Field(default=None, examples=["new pickup"])
    drop_off_location: Place | None = Field(
        default=None,
        validation_alias=AliasChoices("dropOffLocation", "dropoffLocation"),
        description='A "lat,lon" string or any place text (dropoffLocation is accepted too)',
    )
    pickup_time: RequestTime | None = None
    deadline: Deadline | None = None

    @model_validator(mode="after")
    def _something_changes(self) -> Self:
        if not self.model_dump(exclude_none=True):
            raise ValueError(
                "give at least one of pickupLocation, dropOffLocation, pickupTime, deadline"
            )
        return self


class OperationAccepted(ApiModel):
    """The 202 body of a reschedule or a cancel."""

    delivery_id: str
    operation: Literal["reschedule", "cancel"]
