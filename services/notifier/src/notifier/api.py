"""The internal API: what was sent for a delivery, the local SMS sink, webhook secrets.

With auth on, every route needs a token (the library checks ``NOTIFIER_AUTH__REQUIRED_ROLES``:
any of ``Notifications.Read``, ``Webhooks.Secrets``, ``Operator``), and each route its own role:
the lists need ``Notifications.Read`` or ``Operator``; a webhook secret needs
``Webhooks.Secrets`` or ``Operator``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.params import Depends

from dronecommon import ServiceApp, error_responses, from_state
from dronecommon.auth.inbound import caller_or_anonymous

from .errors import RoleRequired
from .runtime import State
from .schemas import NotificationList, SmsMessage, WebhookSecretView
from .service import Notifications
from .settings import NOTIFICATIONS_READ, OPERATOR, WEBHOOK_SECRETS

Service = Annotated[Notifications, from_state(State, "notifications")]

DELIVERY_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~-]{0,127}$"


def require(*roles: str) -> Depends:
    """A route dependency: with auth on, the caller must hold one of ``roles``."""

    async def check(request: Request) -> None:
        app = request.app
        if not isinstance(app, ServiceApp) or not app.settings.auth.enabled:
            return
        caller = await caller_or_anonymous(request)
        if not any(caller.has_role(role) for role in roles):
            raise RoleRequired(list(roles))

    return Depends(dependency=check)


router = APIRouter(prefix="/api", tags=["notifications"])


@router.get(
    "/notifications",
    summary="A delivery's notifications: sent, pending and failed",
    dependencies=[require(NOTIFICATIONS_READ, OPERATOR)],
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
    dependencies=[require(NOTIFICATIONS_READ, OPERATOR)],
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
    dependencies=[require(WEBHOOK_SECRETS, OPERATOR)],
    responses=error_responses(400, 503),
)
async def webhook_secret(
    service: Service,
    account_id: Annotated[str, Path(alias="accountId", min_length=1, max_length=128)],
) -> WebhookSecretView:
    return await service.webhook_secret(account_id)
