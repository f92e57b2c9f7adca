"""The services the web app calls for the browser (the backend-for-frontend's outbound side).

Customer calls carry the signed-in user's token (``Authorization: Bearer``): ingestion (schedule,
reschedule, cancel), the delivery service's owner routes (the list, a delivery, its status and
history), the workflow's queue view (an operator's token). Reads that need a role no customer
holds carry the web app's own token: the fleet (simulator, ``Fleet.Control``) and a delivery's
notifications (notifier, ``Notifications.Read``, only after the delivery service has shown the
user owns the delivery). Public reads carry no token.

Every call goes through the library's resilient client (timeouts, retries of idempotent calls,
breakers). An answer the page can explain (a 4xx) comes back as a :class:`Reply`; a service that
cannot answer raises :class:`~webapp.errors.ServiceUnavailable`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from dronecommon.httpclient import ResilientClient, TransientHTTPError

from .errors import ServiceUnavailable


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: Any
    headers: dict[str, str]

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def _id(delivery_id: str) -> str:
    return quote(delivery_id, safe="")


class Backends:
    def __init__(
        self,
        *,
        ingestion: ResilientClient,
        delivery: ResilientClient,
        workflow: ResilientClient,
        simulator: ResilientClient,
        notifier: ResilientClient,
    ) -> None:
        self.ingestion = ingestion
        self.delivery = delivery
        self.workflow = workflow
        self.simulator = simulator
        self.notifier = notifier

    @property
    def clients(self) -> dict[str, ResilientClient]:
        return {
            "ingestion": self.ingestion,
            "delivery": self.delivery,
            "workflow": self.workflow,
            "simulator": self.simulator,
            "notifier": self.notifier,
        }

    async def aclose(self) -> None:
        for client in self.clients.values():
            await client.aclose()

    async def _call(self, client: ResilientClient, method: str, url: str, **options: Any) -> Reply:
        try:
            response = await client.request(method, url, **options)
        except TransientHTTPError as exc:
            raise ServiceUnavailable(client.name, str(exc)) from exc
        if response.status_code >= 500:
            raise ServiceUnavailable(client.name, f"answered {response.status_code}")
        body: Any = None
        if response.content:
            try:
                body = response.json()
            except ValueError:
                body = response.text
        return Reply(response.status_code, body, dict(response.headers))

    # --- customers (the user's token) ----------------------------------------------------------

    async def schedule(self, token: str | None, body: dict[str, Any], key: str) -> Reply:
        return await self._call(
            self.ingestion,
            "POST",
            "/api/deliveryrequests",
            json=body,
            headers={**_bearer(token), "Idempotency-Key": key},
            idempotent=True,  # the key makes a retry the same request
        )

    async def reschedule(
        self, token: str | None, delivery_id: str, body: dict[str, str], key: str
    ) -> Reply:
        return await self._call(
            self.ingestion,
            "PATCH",
            f"/api/deliveryrequests/{_id(delivery_id)}",
            json=body,
            headers={**_bearer(token), "Idempotency-Key": key},
            idempotent=True,  # the key makes a retry the same request
        )

    async def cancel(self, token: str | None, delivery_id: str) -> Reply:
        return await self._call(
            self.ingestion,
            "DELETE",
            f"/api/deliveryrequests/{_id(delivery_id)}",
            headers=_bearer(token),
        )

    async def my_deliveries(
        self, token: str | None, owner_id: str, *, limit: int = 20, cursor: str | None = None
    ) -> Reply:
        params: dict[str, str] = {"limit": str(limit), "ownerId": owner_id}
        if cursor:
            params["cursor"] = cursor
        return await self._call(
            self.delivery, "GET", "/api/deliveries", params=params, headers=_bearer(token)
        )

    async def notify_me(self, token: str | None, delivery_id: str, body: dict[str, str]) -> Reply:
        return await self._call(
            self.delivery,
            "POST",
            f"/api/deliveries/{_id(delivery_id)}/notifymerequests",
            json=body,
            headers=_bearer(token),
        )

    async def delivery_of(self, token: str | None, delivery_id: str) -> Reply:
        return await self._call(
            self.delivery, "GET", f"/api/deliveries/{_id(delivery_id)}", headers=_bearer(token)
        )

    async def status(self, token: str | None, delivery_id: str) -> Reply:
        return await self._call(
            self.delivery,
            "GET",
            f"/api/deliveries/{_id(delivery_id)}/status",
            headers=_bearer(token),
        )

    async def history(self, token: str | None, delivery_id: str) -> Reply:
        return await self._call(
            self.delivery,
            "GET",
            f"/api/deliveries/{_id(delivery_id)}/history",
            headers=_bearer(token),
        )

    async def queue(self, token: str | None) -> Reply:
        return await self._call(self.workflow, "GET", "/api/queue", headers=_bearer(token))

    # --- public (no token) --------------------------------------------------------------------

    async def public_delivery(self, delivery_id: str) -> Reply:
        return await self._call(self.delivery, "GET", f"/api/deliveries/public/{_id(delivery_id)}")

    async def public_history(self, delivery_id: str) -> Reply:
        return await self._call(
            self.delivery, "GET", f"/api/deliveries/public/{_id(delivery_id)}/history"
        )

    # --- the web app's own token --------------------------------------------------------------

    async def notifications(self, delivery_id: str) -> Reply:
        return await self._call(
            self.notifier, "GET", "/api/notifications", params={"deliveryId": delivery_id}
        )

    async def fleet(self) -> Reply:
        return await self._call(self.simulator, "GET", "/api/fleet", params={"limit": "2000"})
