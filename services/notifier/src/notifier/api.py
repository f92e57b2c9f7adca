"""The internal API: what was sent for a delivery, the local SMS sink, webhook secrets.

Every route needs a service token holding its app role (:mod:`dronecommon.auth.policy`): the
lists ``Notifications.Read``, a webhook secret ``Webhooks.Secrets``. A customer's token is 403
(internal routes serve the system's services, such as the web app, never customers directly).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from dronecommon import error_responses, from_state
from dronecommon.auth.policy import requires
from dronecommon.auth.roles import NOTIFICATIONS_READ, WEBHOOKS_SECRETS

from .runtime import State
from .schemas import NotificationList, SmsMessage, WebhookSecretView
from .service import Notifications

Service = Annotated[Notifications, from_state(State, "notifications")]

DELIVERY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"


router = APIRouter(prefix="/api", tags=["notifications"])


@router.get(
    "/notifications",
    summary="A delivery's notifications: sent, pending and failed",
    dependencies=[requires(NOTIFICATIONS_READ)],
    responses=error_responses(400, 503),
)
async def notifications(
    service: Service,
    delivery_id: Annotated[
        str, Query(alias="deliveryId", pattern=DELIVERY_ID_PATTERN, max_length=128)
    ],
) -> NotificationList:
    return await service.of_delivery(delivery_id)


@router.get(
    "/notifications/sms",
    summary="The local SMS sink, newest first (development: no carrier)",
    dependencies=[requires(NOTIFICATIONS_READ)],
    responses=error_responses(400, 404, 503),
)
async def sms(
    service: Service,
    to: Annotated[str | None, Query(description="only messages to this number (E.164)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[SmsMessage]:
    return await service.sms(to, limit)


@router.get(
    "/accounts/{accountId}/webhooksecret",
    summary="The account's webhook signing secret (made on first use)",
    dependencies=[requires(WEBHOOKS_SECRETS)],
    responses=error_responses(400, 503),
)
async def webhook_secret(
    service: Service,
    account_id: Annotated[str, Path(alias="accountId", min_length=1, max_length=128)],
) -> WebhookSecretView:
    return await service.webhook_secret(account_id)
