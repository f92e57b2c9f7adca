"""Delivery events: the customer side's one outbox, a Redis stream ``{prefix}:events``.

The delivery service appends an event in the same Lua script that changes the delivery's state
(:data:`LUA_APPEND` is the fragment those scripts embed), so a state change and its event are
written together or not at all. Code that changes nothing else in the same step (the telemetry
consumer's ``PickedUp`` and ``EtaChanged``) appends with :func:`append` or, inside its own
script, with :data:`LUA_APPEND` too.

Each entry has four fields: ``type``, ``deliveryId``, ``at`` (RFC 3339 UTC) and ``data`` (a JSON
object whose shape depends on the type):

================ ===============================================================================
``Assigned``     :class:`AssignedData`: created with a drone, or a (different) drone newly set
``Rescheduled``  :class:`RescheduledData`: the new plan (places, drone, ETAs)
``Cancelled``    :class:`ClosedData`: the drone, when, and where the package was
``Completed``    :class:`ClosedData`: the drone, when, and where it was confirmed
``PickedUp``     :class:`PickedUpData`: the drone reported leaving the pickup with the package
``EtaChanged``   :class:`EtaChangedData`: the live delivery ETA moved past the threshold
``ChangeRefused`` :class:`ChangeRefusedData`: a change of places the drone cannot fly (refused
                 after ingestion accepted it; the delivery goes on as it was)
================ ===============================================================================

Every data model may carry ``notify`` (:class:`Recipients`): the owner's account and the
delivery's notify-me requests as they were when the event was written. The delivery service adds
them to every event it writes from the delivery's state; an event without them (``null``) leaves
the notifier to look them up.

Consumers read with a consumer group of their own (``simulator``, ``notifier``) through
:class:`EventReader`, which acknowledges a batch only after the handler's durable write and
takes over entries a dead consumer left pending (see :mod:`dronecommon.streams`). The stream is
trimmed by its producers to about ``maxlen`` entries (``XADD ... MAXLEN ~``).
"""

from __future__ import annotations

import builtins
import contextlib
import datetime as dt
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, Field, ValidationError
from redis.asyncio import Redis

from dronecommon.domain import (
    ApiModel,
    CaseInsensitiveEnum,
    ConfirmationType,
    Location,
    UtcDateTime,
    format_utc,
)
from dronecommon.streams import StreamEntry, StreamGroupReader
from dronecommon.telemetry import untraced

logger = logging.getLogger("dronecommon.events")

#: Default approximate length the producers trim the stream to.
DEFAULT_MAXLEN = 1_000_000


class EventType(CaseInsensitiveEnum):
    ASSIGNED = "Assigned"
    RESCHEDULED = "Rescheduled"
    CANCELLED = "Cancelled"
    COMPLETED = "Completed"
    PICKED_UP = "PickedUp"
    ETA_CHANGED = "EtaChanged"
    CHANGE_REFUSED = "ChangeRefused"


def events_stream(prefix: str = "delivery") -> str:
    """The stream of the delivery service whose key prefix is ``prefix``."""
    return f"{prefix}:events"


# --- data of each type ---------------------------------------------------------------------------


class Contact(ApiModel):
    """One notify-me request as an event carries it (validated when it was registered:
    :class:`dronecommon.notifyme.NotifyMeRequest`; read leniently here, so an event is never
    unreadable for a contact that later rules would refuse)."""

    email_address: str | None = None
    sms: str | None = None
    webhook_url: str | None = None


class Recipients(ApiModel):
    """Who to tell about a delivery: its owner's account (webhooks are signed with the account's
    secret) and its notify-me requests."""

    account_id: str
    requests: list[Contact] = Field(default_factory=list)


class EventData(ApiModel):
    """What every event's data may carry besides its own fields."""

    notify: Recipients | None = None
    # Not length-checked here: a reader must never refuse an event its writer validated.
    dropoff_place: str | None = Field(
        default=None,
        description="The drop-off as the customer named it (what a notification calls the "
        "delivery by); personal data, for the delivery's recipients",
    )


class AssignedData(EventData):
    drone_id: str
    pickup: Location
    dropoff: Location
    pickup_eta: UtcDateTime = Field(alias="pickupETA")
    delivery_eta: UtcDateTime = Field(alias="deliveryETA")
    confirmation_required: ConfirmationType = ConfirmationType.NONE
    expedited: bool = False


class RescheduledData(EventData):
    """The new plan. ``confirmationRequired`` and ``expedited`` travel too, so a consumer that
    missed the ``Assigned`` still has everything the delivery needs."""

    drone_id: str | None
    pickup: Location
    dropoff: Location
    pickup_eta: UtcDateTime = Field(alias="pickupETA")
    delivery_eta: UtcDateTime = Field(alias="deliveryETA")
    confirmation_required: ConfirmationType = ConfirmationType.NONE
    expedited: bool = False


class ClosedData(EventData):
    """``Cancelled`` and ``Completed``."""

    drone_id: str | None
    at: UtcDateTime
    location: Location | None = None


class PickedUpData(EventData):
    drone_id: str
    at: UtcDateTime
    location: Location | None = None


class EtaChangedData(EventData):
    delivery_eta: UtcDateTime = Field(alias="deliveryETA")
    previous_eta: UtcDateTime = Field(alias="previousETA")


class RefusedChange(ApiModel):
    """A change of places that was accepted at the front door and then refused (the drone
    scheduler cannot re-plan it: the trip would be too long for the delivery's drone, or a place
    is outside the service area). The delivery keeps its places and plan; the owner sees this on
    the delivery's status until a later change succeeds."""

    at: UtcDateTime = Field(description="When the change was refused")
    requested_at: UtcDateTime = Field(
        description="When the change was asked for (its message's enqueue time; identifies it)"
    )
    reason: str = Field(description="Why, as a short name: the refusal's problem type")
    detail: str = Field(description="Why, as a sentence")
    pickup: Location | None = Field(default=None, description="The pickup asked for, if any")
    dropoff: Location | None = Field(default=None, description="The drop-off asked for, if any")
    # Not length-checked here: a reader must never refuse an event its writer validated.
    pickup_place: str | None = Field(
        default=None, description="The pickup asked for, as the customer named it"
    )
    dropoff_place: str | None = Field(
        default=None, description="The drop-off asked for, as the customer named it"
    )


class ChangeRefusedData(EventData):
    """The refused change; ``dropoffPlace`` (from :class:`EventData`) stays the delivery's
    current drop-off."""

    refused: RefusedChange


DATA_MODELS: dict[EventType, type[ApiModel]] = {
    EventType.ASSIGNED: AssignedData,
    EventType.RESCHEDULED: RescheduledData,
    EventType.CANCELLED: ClosedData,
    EventType.COMPLETED: ClosedData,
    EventType.PICKED_UP: PickedUpData,
    EventType.ETA_CHANGED: EtaChangedData,
    EventType.CHANGE_REFUSED: ChangeRefusedData,
}

D = TypeVar("D", bound=BaseModel)


class EventDecodeError(ValueError):
    """A stream entry that is not a delivery event (missing field, unknown type, bad data)."""


@dataclass(frozen=True, slots=True)
class DeliveryEvent:
    """One delivery event; ``id`` is its stream entry id once read (``None`` before)."""

    type: EventType
    delivery_id: str
    at: dt.datetime
    data: Mapping[str, Any] = field(default_factory=dict)
    id: str | None = None

    @classmethod
    def of(
        cls, type_: EventType, delivery_id: str, at: dt.datetime, data: ApiModel
    ) -> DeliveryEvent:
        """An event whose data is a typed model (camelCase JSON on the wire)."""
        return cls(type_, delivery_id, at, data.wire())

    def parsed(self) -> ApiModel:
        """The data as the model of this event's type (raises :class:`EventDecodeError`)."""
        return self._parse(DATA_MODELS[self.type])

    def data_as(self, model: builtins.type[D]) -> D:
        """The data as ``model`` (raises :class:`EventDecodeError`)."""
        return self._parse(model)

    def _parse(self, model: builtins.type[D]) -> D:
        try:
            return model.model_validate(self.data)
        except ValidationError as exc:
            raise EventDecodeError(f"{self.type.value} event data: {exc}") from exc


def encode(event: DeliveryEvent) -> list[str]:
    """The entry as a flat ``[field, value, ...]`` list (for ``XADD`` or a script's ARGV)."""
    return [
        "type",
        event.type.value,
        "deliveryId",
        event.delivery_id,
        "at",
        format_utc(event.at),
        "data",
        json.dumps(dict(event.data), separators=(",", ":"), sort_keys=True),
    ]


def decode(entry: StreamEntry) -> DeliveryEvent:
    """The event in a stream entry (raises :class:`EventDecodeError`)."""
    fields = entry.fields
    try:
        type_ = EventType(fields["type"])
        delivery_id = fields["deliveryId"]
        at = dt.datetime.fromisoformat(fields["at"])
        data = json.loads(fields.get("data") or "{}")
    except (KeyError, ValueError) as exc:
        raise EventDecodeError(f"entry {entry.id}: {exc!r}") from exc
    if not delivery_id or not isinstance(data, dict):
        raise EventDecodeError(f"entry {entry.id}: no deliveryId, or data is not an object")
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return DeliveryEvent(type_, delivery_id, at.astimezone(dt.UTC), data, entry.id)


# --- producing -----------------------------------------------------------------------------------

#: A Lua function for producers' scripts: ``append_event(stream, maxlen, fields)`` adds the entry
#: ``fields`` (a flat list, as :func:`encode` gives) and trims the stream to about ``maxlen``.
LUA_APPEND = """
local function append_event(stream, maxlen, fields)
  return redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', unpack(fields))
end
"""


async def append(
    redis: Redis, event: DeliveryEvent, *, prefix: str = "delivery", maxlen: int = DEFAULT_MAXLEN
) -> str:
    """Append ``event`` on its own (not part of a state change); the new entry id."""
    fields = encode(event)
    entry: dict[Any, Any] = dict(zip(fields[0::2], fields[1::2], strict=True))
    entry_id: Any = await redis.xadd(events_stream(prefix), entry, maxlen=maxlen, approximate=True)
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


# --- consuming -----------------------------------------------------------------------------------


async def read_range(
    redis: Redis,
    *,
    prefix: str = "delivery",
    start: str = "-",
    end: str = "+",
    count: int | None = None,
) -> list[DeliveryEvent]:
    """The events with ids in ``[start, end]``, oldest first, outside any group (inspection,
    tests); entries that are not events are skipped."""
    reply: Any = await redis.xrange(events_stream(prefix), start, end, count=count)
    events: list[DeliveryEvent] = []
    for entry_id, raw in reply or []:
        fields = {_text(k): _text(v) for k, v in (raw or {}).items()}
        with contextlib.suppress(EventDecodeError):
            events.append(decode(StreamEntry(_text(entry_id), fields)))
    return events


def _text(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


EventHandler = Callable[[Sequence[DeliveryEvent]], Awaitable[None]]


class EventReader:
    """The delivery events as one consumer of ``group`` (at least once, in stream order).

    ``handler`` gets each batch of decoded events; the batch is acknowledged when it returns.
    Entries that are not events are logged and acknowledged (never retried forever).
    """

    def __init__(
        self,
        redis: Redis,
        group: str,
        consumer: str,
        *,
        prefix: str = "delivery",
        batch_size: int = 100,
        block: float = 1.0,
        claim_idle: float = 60.0,
        start_id: str = "0",
    ) -> None:
        self.reader = StreamGroupReader(
            redis,
            events_stream(prefix),
            group,
            consumer,
            batch_size=batch_size,
            block=block,
            claim_idle=claim_idle,
            start_id=start_id,
        )

    async def run(self, handler: EventHandler) -> None:
        async def handle(entries: Sequence[StreamEntry]) -> None:
            events: list[DeliveryEvent] = []
            for entry in entries:
                try:
                    events.append(decode(entry))
                except EventDecodeError:
                    logger.exception("skipping an entry of %s", self.reader.stream)
            if events:
                await handler(events)

        # The events carry no trace context: polls, acks and the handler's own calls would
        # each be a trace of one span (see dronecommon.telemetry).
        with untraced():
            await self.reader.run(handle)

    def stop(self) -> None:
        self.reader.stop()

    async def check_ready(self) -> None:
        """The stream's group answers (``XPENDING``): Redis is up and the group exists."""
        await self.reader.ensure_group()
        await self.reader.pending_count()


__all__ = [
    "DATA_MODELS",
    "DEFAULT_MAXLEN",
    "LUA_APPEND",
    "AssignedData",
    "ClosedData",
    "Contact",
    "DeliveryEvent",
    "EtaChangedData",
    "EventData",
    "EventDecodeError",
    "EventHandler",
    "EventReader",
    "EventType",
    "PickedUpData",
    "Recipients",
    "RescheduledData",
    "append",
    "decode",
    "encode",
    "events_stream",
    "read_range",
]
