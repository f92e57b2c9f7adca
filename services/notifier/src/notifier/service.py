"""The API's rules: list a delivery's notifications, read the SMS sink, hand out webhook secrets."""

from __future__ import annotations

from .errors import SmsSinkOff
from .outbox import Outbox
from .schemas import Notification, NotificationList, SmsMessage, WebhookSecretView
from .secrets import WebhookSecrets
from .settings import NotifierSettings


class Notifications:
    def __init__(self, outbox: Outbox, secrets: WebhookSecrets, settings: NotifierSettings) -> None:
        self.outbox = outbox
        self.secrets = secrets
        self.settings = settings

    async def of_delivery(self, delivery_id: str) -> NotificationList:
        items = sorted(await self.outbox.for_delivery(delivery_id), key=lambda i: i.created_at)
        return NotificationList(
            delivery_id=delivery_id, notifications=[Notification.of(i) for i in items]
        )

    async def sms(self, to: str | None, limit: int) -> list[SmsMessage]:
        if self.settings.sms.transport != "sink":
            raise SmsSinkOff(self.settings.sms.transport)
        return [SmsMessage.model_validate(m) for m in await self.outbox.sms_messages(to, limit)]

    async def webhook_secret(self, account_id: str) -> WebhookSecretView:
        secret = await self.secrets.get_or_create(account_id)
        return WebhookSecretView(
            account_id=secret.account_id, secret=secret.secret, created_at=secret.created_at
        )
