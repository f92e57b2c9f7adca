"""Wire models: what the delivery API reads and answers (camelCase JSON)."""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import AfterValidator, Field, StringConstraints, field_validator, model_validator

from dronecommon.domain import ApiModel, ConfirmationType, DeliveryStage, Location, UtcDateTime
from dronecommon.events import RefusedChange
from dronecommon.fixes import Phase
from dronecommon.notifyme import NotifyMeRequest

# Delivery ids: 1..128 URL-safe characters (RFC 3986 "unreserved"), starting with a letter or digit
# (so "." and ".." never name a delivery). The workflow sends UUIDs, which always match. Ids are
# opaque and case-sensitive. Two words are reserved because they are route segments.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"
RESERVED_IDS = frozenset({"summary", "public"})
MAX_TEXT = 128
MAX_DEADLINE = 1024  # ingestion caps it at 256; the workflow at 1024
MAX_PLACE = 1024  # the same caps as the deadline


def not_reserved(value: str) -> str:
    if value in RESERVED_IDS:
        raise ValueError(f"{value!r} is reserved (a route segment) and cannot be a delivery id")
    return value


DeliveryId = Annotated[
    str, StringConstraints(pattern=ID_PATTERN, max_length=128), AfterValidator(not_reserved)
]
Text = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
PlaceText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PLACE)]
PICKUP_PLACE = (
    "Extension: the pickup as the customer named it (the request's `pickupLocation`, which "
    "`pickup` resolves); personal data, so only in the owner's view"
)
DROPOFF_PLACE = (
    "Extension: the drop-off as the customer named it (the request's `dropOffLocation`); "
    "personal data, so only in the owner's view"
)


class Owner(ApiModel):
    user_id: Text
    account_id: str = Field(max_length=MAX_TEXT)


class Eta(ApiModel):
    """Drone timing: both ETAs or neither, the pickup not after the drop-off."""

    pickup_eta: UtcDateTime | None = Field(
        default=None,
        alias="pickupETA",
        description="Extension: when the assigned drone reaches the pickup (from the scheduler)",
    )
    delivery_eta: UtcDateTime | None = Field(
        default=None,
        alias="deliveryETA",
        description="Extension: when the assigned drone reaches the drop-off (from the scheduler)",
    )

    @model_validator(mode="after")
    def _timing_is_whole(self) -> Self:
        if (self.pickup_eta is None) != (self.delivery_eta is None):
            raise ValueError("pickupETA and deliveryETA go together: send both or neither")
        if self.pickup_eta and self.delivery_eta and self.pickup_eta > self.delivery_eta:
            raise ValueError("pickupETA must not be after deliveryETA")
        return self


class DeliveryIn(Eta):
    """``PUT /api/deliveries/{id}``: the delivery as the workflow creates it."""

    id: DeliveryId | None = Field(default=None, description="Must equal the path id when sent")
    owner: Owner
    pickup: Location
    dropoff: Location
    pickup_place: PlaceText | None = Field(default=None, description=PICKUP_PLACE)
    dropoff_place: PlaceText | None = Field(default=None, description=DROPOFF_PLACE)
    deadline: str = Field(default="", max_length=MAX_DEADLINE, description='Free text; null is ""')
    expedited: bool = False
    confirmation_required: ConfirmationType
    drone_id: Text | None = None
    notify_me_requests: list[NotifyMeRequest] = Field(
        default_factory=list,
        max_length=1000,
        description="Who to notify from the start (the request's `notify`); more can be added "
        "with POST .../notifymerequests",
    )

    @field_validator("deadline", mode="before")
    @classmethod
    def _no_deadline(cls, value: object) -> object:
        return "" if value is None else value


class DeliveryPatch(Eta):
    """``PATCH /api/deliveries/{id}``: a reschedule, optionally with the drone's new plan."""

    pickup: Location | None = None
    dropoff: Location | None = None
    pickup_place: PlaceText | None = Field(default=None, description=PICKUP_PLACE)
    dropoff_place: PlaceText | None = Field(default=None, description=DROPOFF_PLACE)
    deadline: str | None = Field(default=None, max_length=MAX_DEADLINE)
    drone_id: Text | None = None

    @model_validator(mode="after")
    def _something_changes(self) -> Self:
        if all(getattr(self, name) is None for name in type(self).model_fields):
            raise ValueError(
                "send at least one of pickup, dropoff, deadline, droneId, pickupETA/deliveryETA"
            )
        if self.pickup_place is not None and self.pickup is None:
            raise ValueError("pickupPlace names the new pickup: send it with pickup")
        if self.dropoff_place is not None and self.dropoff is None:
            raise ValueError("dropoffPlace names the new drop-off: send it with dropoff")
        return self


class RefusalIn(ApiModel):
    """``POST /api/deliveries/{id}/refusals``: a change of places the workflow accepted from
    the queue and the drone scheduler refused (the delivery keeps its plan)."""

    requested_at: UtcDateTime = Field(
        description="When the change was asked for (its queue message's enqueue time): the "
        "refusal's identity, so a repeat records nothing new"
    )
    reason: Text = Field(description="The refusal's problem type, e.g. `trip-too-long`")
    detail: Annotated[str, StringConstraints(min_length=1, max_length=MAX_PLACE)] = Field(
        description="Why, as a sentence the owner can read"
    )
    pickup: Location | None = None
    dropoff: Location | None = None
    pickup_place: PlaceText | None = Field(default=None, description=PICKUP_PLACE)
    dropoff_place: PlaceText | None = Field(default=None, description=DROPOFF_PLACE)

    @model_validator(mode="after")
    def _a_place(self) -> Self:
        if self.pickup is None and self.dropoff is None:
            raise ValueError("a refused change names the pickup or drop-off it asked for")
        if self.pickup_place is not None and self.pickup is None:
            raise ValueError("pickupPlace names the refused pickup: send it with pickup")
        if self.dropoff_place is not None and self.dropoff is None:
            raise ValueError("dropoffPlace names the refused drop-off: send it with dropoff")
        return self


class Confirmation(ApiModel):
    """``POST /api/deliveries/{id}/confirmations``: the drone's proof of delivery."""

    date_time: UtcDateTime
    geo_coordinates: Location
    confirmation_type: ConfirmationType
    confirmation_blob: str | None = None


Telemetry = Literal["live", "stale", "none"]
TELEMETRY_DESCRIPTION = (
    "live: the drone's latest fix is recent (the ETAs are computed from it); stale: it is older "
    "than the staleness limit (the ETAs are the plan's); none: no fix from the delivery's drone"
)


class PublicDrone(ApiModel):
    """The delivery's drone as anyone may see it: its latest fix."""

    location: Location
    at: UtcDateTime = Field(description="When the drone reported it")
    phase: Phase
    speed_mph: float = Field(description="Ground speed, miles per hour")


class Drone(PublicDrone):
    """The delivery's drone as its owner sees it."""

    drone_id: str


class PublicDelivery(ApiModel):
    """A delivery as anyone may see it: no owner, contacts or proof of delivery.

    ``pickupETA``/``deliveryETA`` are the drone timing as sent (null until a drone timing is
    known); ``GET .../status`` always answers ETAs, estimated when needed. ``stage`` is the
    current stage, as in the status; ``drone`` the drone's latest fix (null without telemetry).
    """

    id: str
    pickup: Location
    dropoff: Location
    deadline: str
    expedited: bool
    confirmation_required: ConfirmationType
    drone_id: str | None
    pickup_eta: UtcDateTime | None = Field(alias="pickupETA")
    delivery_eta: UtcDateTime | None = Field(alias="deliveryETA")
    stage: DeliveryStage
    created_at: UtcDateTime
    updated_at: UtcDateTime
    drone: PublicDrone | None = None
    telemetry: Telemetry = Field(default="none", description=TELEMETRY_DESCRIPTION)


class Delivery(PublicDelivery):
    """A delivery as its owner and the other services see it."""

    drone: Drone | None = None
    owner: Owner
    pickup_place: str | None = Field(default=None, description=PICKUP_PLACE)
    dropoff_place: str | None = Field(default=None, description=DROPOFF_PLACE)
    notify_me_requests: list[NotifyMeRequest]
    confirmation: Confirmation | None


class StatusBase(ApiModel):
    stage: DeliveryStage
    last_known_location: Location = Field(
        description="The package: at the pickup until the drone has it, then the drone's latest "
        "position, then at the drop-off"
    )
    pickup_eta: UtcDateTime = Field(alias="pickupETA")
    delivery_eta: UtcDateTime = Field(alias="deliveryETA")
    telemetry: Telemetry = Field(default="none", description=TELEMETRY_DESCRIPTION)


class DeliveryStatus(StatusBase):
    """``GET .../status`` and the owner's tracking stream."""

    drone: Drone | None = None
    refused_change: RefusedChange | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Only while it is the latest word on a change of places: the change the "
        "drone scheduler refused after it was accepted (the delivery goes on as before). "
        "Owner's view only; a later change that succeeds clears it",
    )

    def public(self) -> PublicStatus:
        """The same status without the drone's id."""
        return PublicStatus.model_construct(
            stage=self.stage,
            last_known_location=self.last_known_location,
            pickup_eta=self.pickup_eta,
            delivery_eta=self.delivery_eta,
            telemetry=self.telemetry,
            drone=None
            if self.drone is None
            else PublicDrone.model_construct(
                location=self.drone.location,
                at=self.drone.at,
                phase=self.drone.phase,
                speed_mph=self.drone.speed_mph,
            ),
        )


class PublicStatus(StatusBase):
    """The public tracking stream's status: the status without the drone's id."""

    drone: PublicDrone | None = None


class PublicTrackingEvent(ApiModel):
    """A tracking event as anyone may see it: when and which stage (and the drone's phase), not
    where."""

    at: UtcDateTime
    stage: DeliveryStage
    phase: Phase | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="Only on the drone's reports: the phase it reported entering",
    )


class TrackingEvent(PublicTrackingEvent):
    """A tracking event as the owner sees it: with its place."""

    location: Location | None


class Summary(ApiModel):
    count: int = Field(ge=0)


class OwnedDelivery(Delivery):
    """One of the owner's deliveries, with its status now."""

    status: DeliveryStatus


class DeliveryPage(ApiModel):
    """A page of the owner's deliveries, newest first; ``nextCursor`` fetches the next one."""

    items: list[OwnedDelivery]
    next_cursor: str | None = Field(description="null on the last page")
