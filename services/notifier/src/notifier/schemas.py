"""Wire models of the notifier's internal API (camelCase JSON, RFC 3339 UTC date-times)."""

from __future__ import annotations

from pydantic import Field

from dronecommon.domain import ApiModel, UtcDateTime

from .records import Channel, Item, Status


class Notification(ApiModel):
    """One notification: a (delivery, event, recipient) and how sending it went."""

    id: str
    delivery_id: str
    event: str = Field(
        description="The delivery event told: Assigned, Rescheduled, ChangeRefused, PickedUp, "
        "EtaChanged, Completed or Cancelled"
    )
    event_at: UtcDateTime
    channel: Channel
    to: str = Field(description="the e-mail address, phone number or webhook URL")
    status: Status
    attempts: int = Field(description="attempts made (the current one included while sending)")
    created_at: UtcDateTime
    next_attempt_at: UtcDateTime | None = Field(description="when pending: the next attempt")
    sent_at: UtcDateTime | None
    failed_at: UtcDateTime | None
    last_error: str | None = Field(description="why the last attempt failed, if it did")
    reference: str | None = Field(description="the provider's reference once sent")

    @classmethod
    def of(cls, item: Item) -> Notification:
        return cls(
            id=item.id,
            delivery_id=item.delivery_id,
            event=item.event,
            event_at=item.event_at,
            channel=item.channel,
            to=item.to,
            status=item.status,
            attempts=item.attempts,
            created_at=item.created_at,
            next_attempt_at=item.due_at,
            sent_at=item.sent_at,
            failed_at=item.failed_at,
            last_error=item.last_error,
            reference=item.ref,
        )


class NotificationList(ApiModel):
    delivery_id: str
    notifications: list[Notification] = Field(description="oldest first")


class SmsMessage(ApiModel):
    """A message of the local SMS sink."""

    id: str = Field(description="the notification's message id")
    to: str
    text: str
    delivery_id: str
    event: str
    at: UtcDateTime


class WebhookSecretView(ApiModel):
    account_id: str
    secret: str = Field(description="whsec_<base64>: verifies the webhook-signature header")
    created_at: UtcDateTime
