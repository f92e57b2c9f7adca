"""What the outbox keeps per notification, and the deterministic names that make it "once".

A notification is one (delivery, event, recipient). Its id is made only of those three, so the
same event handled twice (a redelivered stream entry, or the same event appended twice) names the
same item and is enqueued once:

- the **event key** is a digest of the event's type, delivery, time and data (without the
  recipients it carries): the same event, whichever stream entry brings it;
- the **recipient key** is a digest of the channel and the address (e-mail addresses compared
  case-insensitively, phone numbers in E.164, webhook URLs as registered);
- the **item id** is ``<deliveryId>:<eventKey>:<recipientKey>``.

The e-mail ``Message-ID``, the webhook ``webhook-id`` and the ACS Email ``operation-id`` are
derived from the item id, so a message sent again after a crash carries the same identity and the
receiver can drop it.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dronecommon.domain import format_utc
from dronecommon.events import DeliveryEvent, RefusedChange

# Names ACS Email operation ids (UUIDv5) in this project's own namespace.
OPERATION_NAMESPACE = uuid.UUID("0f4a2d4e-7c1b-5d8e-9a3f-6b2c1d0e9f87")


class Channel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"
    WEBHOOK = "webhook"


class Status(enum.StrEnum):
    PENDING = "pending"  # waiting for its (next) attempt
    SENDING = "sending"  # claimed by a sender (under a lease)
    SENT = "sent"
    FAILED = "failed"  # given up (permanent refusal, or out of attempts/time)


def _digest(text: str, size: int = 16) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:size]


def event_key(event: DeliveryEvent) -> str:
    data = {k: v for k, v in event.data.items() if k != "notify"}
    canonical = json.dumps(
        [event.type.value, event.delivery_id, format_utc(event.at), data],
        sort_keys=True,
        separators=(",", ":"),
    )
    return _digest(canonical)


def normalised_address(channel: Channel, address: str) -> str:
    return address.strip().lower() if channel is Channel.EMAIL else address.strip()


def recipient_key(channel: Channel, address: str) -> str:
    return _digest(f"{channel.value}:{normalised_address(channel, address)}")


def item_id(delivery_id: str, event: str, recipient: str) -> str:
    return f"{delivery_id}:{event}:{recipient}"


def message_id(item: str) -> str:
    """The ``Message-ID`` local part and the ``webhook-id`` of the item ``item``."""
    return _digest(item, 32)


@dataclass(frozen=True, slots=True)
class Facts:
    """What a notification tells: the event, what is known of the delivery's timing and, for
    ``ChangeRefused``, the change that was refused."""

    type: str
    delivery_id: str
    at: dt.datetime
    drone_id: str | None = None
    pickup_eta: dt.datetime | None = None
    delivery_eta: dt.datetime | None = None
    previous_eta: dt.datetime | None = None
    # The drop-off as the customer named it (None: given as coordinates, or not known).
    dropoff_place: str | None = None
    refused: RefusedChange | None = None

    def dumps(self) -> str:
        document: dict[str, Any] = {"type": self.type, "deliveryId": self.delivery_id}
        document["at"] = format_utc(self.at)
        for name, value in (
            ("droneId", self.drone_id),
            ("pickupETA", self.pickup_eta),
            ("deliveryETA", self.delivery_eta),
            ("previousETA", self.previous_eta),
            ("dropoffPlace", self.dropoff_place),
        ):
            if value is not None:
                document[name] = format_utc(value) if isinstance(value, dt.datetime) else value
        if self.refused is not None:
            document["refused"] = self.refused.wire()
        return json.dumps(document, separators=(",", ":"), sort_keys=True)

    @classmethod
    def loads(cls, text: str) -> Facts:
        raw = json.loads(text)

        def when(name: str) -> dt.datetime | None:
            value = raw.get(name)
            return dt.datetime.fromisoformat(value) if value else None

        at = when("at")
        assert at is not None
        return cls(
            type=raw["type"],
            delivery_id=raw["deliveryId"],
            at=at,
            drone_id=raw.get("droneId"),
            pickup_eta=when("pickupETA"),
            delivery_eta=when("deliveryETA"),
            previous_eta=when("previousETA"),
            dropoff_place=raw.get("dropoffPlace"),
            refused=RefusedChange.model_validate(raw["refused"]) if raw.get("refused") else None,
        )


@dataclass(frozen=True, slots=True)
class NewItem:
    """A notification to enqueue."""

    id: str
    delivery_id: str
    event_key: str
    channel: Channel
    to: str
    account: str
    facts: Facts

    def fields(self, now_ms: int) -> dict[str, str]:
        return {
            "id": self.id,
            "deliveryId": self.delivery_id,
            "event": self.facts.type,
            "eventKey": self.event_key,
            "eventAt": format_utc(self.facts.at),
            "channel": self.channel.value,
            "to": self.to,
            "account": self.account,
            "facts": self.facts.dumps(),
            "status": Status.PENDING.value,
            "attempts": "0",
            "createdAt": str(now_ms),
            "dueAt": str(now_ms),
        }


@dataclass(frozen=True, slots=True)
class Item:
    """A notification as the outbox holds it."""

    id: str
    delivery_id: str
    event: str
    event_at: dt.datetime
    channel: Channel
    to: str
    account: str
    facts: Facts
    status: Status
    attempts: int
    created_at: dt.datetime
    due_at: dt.datetime | None
    holder: str | None
    sent_at: dt.datetime | None
    failed_at: dt.datetime | None
    last_error: str | None
    ref: str | None

    @classmethod
    def from_fields(cls, raw: Mapping[str, str]) -> Item:
        def ms(name: str) -> dt.datetime | None:
            value = raw.get(name)
            return dt.datetime.fromtimestamp(int(value) / 1000, dt.UTC) if value else None

        created = ms("createdAt")
        assert created is not None
        return cls(
            id=raw["id"],
            delivery_id=raw["deliveryId"],
            event=raw["event"],
            event_at=dt.datetime.fromisoformat(raw["eventAt"]),
            channel=Channel(raw["channel"]),
            to=raw["to"],
            account=raw.get("account", ""),
            facts=Facts.loads(raw["facts"]),
            status=Status(raw["status"]),
            attempts=int(raw.get("attempts", "0")),
            created_at=created,
            due_at=ms("dueAt") if raw["status"] == Status.PENDING.value else None,
            holder=raw.get("holder") or None,
            sent_at=ms("sentAt"),
            failed_at=ms("failedAt"),
            last_error=raw.get("lastError") or None,
            ref=raw.get("ref") or None,
        )

    @property
    def message_id(self) -> str:
        """The ``Message-ID`` local part and the ``webhook-id``: the same on every attempt."""
        return message_id(self.id)

    @property
    def operation_id(self) -> str:
        """The ACS Email ``operation-id`` (a UUID): the same on every attempt."""
        return str(uuid.uuid5(OPERATION_NAMESPACE, self.id))
