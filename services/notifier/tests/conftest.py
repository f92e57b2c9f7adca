"""Fixtures: real Redis, real Mailpit, the real delivery service on a loopback socket (its events
are the notifier's input), and the notifier in process or as a process.

The tests play the workflow's part with the delivery service's own routes (create with notify-me
requests, reschedule, record a refused change, cancel, confirm); ``PickedUp``/``EtaChanged`` come
from the delivery service's telemetry consumer fed real fixes (``test_telemetry.py``), or are
appended directly (``dronecommon.events.append``), without recipients, to test the lookup.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from delivery.main import create_app as create_delivery
from delivery.settings import DeliverySettings
from dronecommon.settings import AuthSettings, RedisSettings
from dronetesting.apps import app_client, running_server
from dronetesting.servers import MailpitServer
from notifier.main import create_app as create_notifier
from notifier.records import Channel, Facts, Item, NewItem
from notifier.settings import NotifierSettings

JSON = dict[str, Any]
PICKUP = {"latitude": 47.6497, "longitude": -122.3321, "altitude": 0.0}
DROPOFF = {"latitude": 47.6497, "longitude": -122.2676, "altitude": 0.0}
ETAS = {"pickupETA": "2030-05-08T20:10:00Z", "deliveryETA": "2030-05-08T20:25:00Z"}
BASE_URL = "https://drones.example"
# A drop-off the drones cannot reach from their bases, and the drone scheduler's reason.
FAR_SOUTH = {"latitude": 47.412, "longitude": -122.274, "altitude": 0.0}
TOO_LONG = (
    "The trip (a drone's base, the pickup, the drop-off and back) would be at least 60.8 miles;"
    " no trip may be longer than 50 miles."
)
ITEM_AT = dt.datetime(2030, 5, 8, 20, 0, tzinfo=dt.UTC)


def claimed_item(channel: Channel, to: str, delivery_id: str = "d-42") -> Item:
    """The ``Assigned`` notice of ``delivery_id`` to ``to`` as a sender holds it once claimed,
    made the way the outbox stores it (:meth:`NewItem.fields`, :meth:`Item.from_fields`)."""
    facts = Facts(
        type="Assigned",
        delivery_id=delivery_id,
        at=ITEM_AT,
        drone_id="drone-7",
        pickup_eta=ITEM_AT + dt.timedelta(minutes=10),
        delivery_eta=ITEM_AT + dt.timedelta(minutes=25),
    )
    new = NewItem(
        f"{delivery_id}:ev:{channel.value}", delivery_id, "ev", channel, to, "acme", facts
    )
    fields = new.fields(int(ITEM_AT.timestamp() * 1000))
    return Item.from_fields({**fields, "status": "sending", "holder": "s#1", "attempts": "1"})


def notifier_settings(redis_url: str, mailpit: MailpitServer, **values: Any) -> NotifierSettings:
    """Fast retries and polling; every event from the start of the stream."""
    base: JSON = {
        "redis": RedisSettings(url=redis_url),
        "events_start_at_latest": False,
        "events_claim_idle": 2.0,
        "public_base_url": BASE_URL,
        "log_json": False,
        "auth": {"enabled": False},
        "email": {"smtp": {"port": mailpit.smtp_port}},
        "outbox": {
            "poll_interval": 0.05,
            "backoff_base": 0.2,
            "backoff_max": 1.0,
            "send_timeout": 2.0,
            "lease_seconds": 5.0,
            "shutdown_grace": 5.0,
        },
    }
    for key, value in values.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return NotifierSettings(**base)


class Inbox:
    """Mailpit's API: what really arrived."""

    def __init__(self, server: MailpitServer) -> None:
        self.server = server
        self.client = httpx.AsyncClient(base_url=server.url, timeout=10)

    async def messages(self) -> list[JSON]:
        listed = (await self.client.get("/api/v1/messages", params={"limit": 100_000})).json()
        messages: list[JSON] = listed["messages"]
        return messages

    async def message(self, message_id: str) -> JSON:
        detail: JSON = (await self.client.get(f"/api/v1/message/{message_id}")).json()
        return detail

    async def wait_for(self, count: int, *, within: float = 20.0) -> list[JSON]:
        """The messages once at least ``count`` arrived (and a moment passed for strays)."""
        deadline = time.monotonic() + within
        while True:
            messages = await self.messages()
            if len(messages) >= count:
                await asyncio.sleep(0.3)
                return await self.messages()
            assert time.monotonic() < deadline, f"{len(messages)} of {count} messages arrived"
            await asyncio.sleep(0.1)


@pytest.fixture
async def inbox(mailpit: MailpitServer) -> AsyncIterator[Inbox]:
    box = Inbox(mailpit)
    yield box
    await box.client.aclose()


@dataclass
class Deliveries:
    """The delivery service, called as the workflow and the simulator call it."""

    client: httpx.AsyncClient
    url: str

    @classmethod
    @contextlib.asynccontextmanager
    async def serving(
        cls, redis_url: str, auth: AuthSettings | None = None, headers: dict[str, str] | None = None
    ) -> AsyncIterator[Deliveries]:
        """The delivery service on a loopback socket (``auth``: it checks tokens, and the
        client sends ``headers``)."""
        settings = DeliverySettings(
            redis=RedisSettings(url=redis_url),
            log_json=False,
            auth=auth or AuthSettings(enabled=False),
        )
        app = create_delivery(settings, configure_logs=False)
        async with (
            running_server(app) as url,
            httpx.AsyncClient(base_url=url, timeout=10, headers=headers) as client,
        ):
            yield cls(client, url)

    async def create(
        self,
        delivery_id: str,
        *notify: JSON,
        drone: str = "drone-1",
        dropoff_place: str | None = None,
    ) -> None:
        body = {
            "id": delivery_id,
            "owner": {"userId": "ann", "accountId": "acme"},
            "pickup": PICKUP,
            "dropoff": DROPOFF,
            "dropoffPlace": dropoff_place,
            "confirmationRequired": "None",
            "droneId": drone,
            **ETAS,
            "notifyMeRequests": list(notify),
        }
        response = await self.client.put(f"/api/deliveries/{delivery_id}", json=body)
        assert response.status_code == 201, response.text

    async def notify_me(self, delivery_id: str, request: JSON) -> None:
        response = await self.client.post(
            f"/api/deliveries/{delivery_id}/notifymerequests", json=request
        )
        assert response.status_code == 204, response.text

    async def complete(self, delivery_id: str) -> None:
        confirmation = {
            "dateTime": "2030-05-08T20:24:00Z",
            "geoCoordinates": DROPOFF,
            "confirmationType": "None",
        }
        response = await self.client.post(
            f"/api/deliveries/{delivery_id}/confirmations", json=confirmation
        )
        assert response.status_code == 204, response.text

    async def reschedule(self, delivery_id: str, changes: JSON) -> None:
        response = await self.client.patch(f"/api/deliveries/{delivery_id}", json=changes)
        assert response.status_code == 204, response.text

    async def refuse(
        self,
        delivery_id: str,
        asked: JSON,
        *,
        requested_at: str = "2030-05-08T20:05:00Z",
        reason: str = "trip-too-long",
        detail: str = TOO_LONG,
    ) -> None:
        """Record that the change ``asked`` (``pickup``/``dropoff`` and their names) was refused,
        as the workflow does when the drone scheduler cannot re-plan it."""
        refusal = {"requestedAt": requested_at, "reason": reason, "detail": detail, **asked}
        response = await self.client.post(f"/api/deliveries/{delivery_id}/refusals", json=refusal)
        assert response.status_code == 204, response.text

    async def cancel(self, delivery_id: str) -> None:
        assert (await self.client.delete(f"/api/deliveries/{delivery_id}")).status_code == 204


@pytest.fixture
async def deliveries(redis_url: str) -> AsyncIterator[Deliveries]:
    async with Deliveries.serving(redis_url) as served:
        yield served


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


NotifierFactory = Callable[..., Any]


@pytest.fixture
def make_settings(
    redis_url: str, mailpit: MailpitServer, deliveries: Deliveries
) -> Callable[..., NotifierSettings]:
    def make(**values: Any) -> NotifierSettings:
        values.setdefault("delivery_url", deliveries.url)
        return notifier_settings(redis_url, mailpit, **values)

    return make


@pytest.fixture
async def notifier(
    make_settings: Callable[..., NotifierSettings],
) -> AsyncIterator[httpx.AsyncClient]:
    """The notifier in process (its intake and senders run in the test's event loop)."""
    app = create_notifier(make_settings(), configure_logs=False)
    async with app_client(app) as client:
        yield client


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 15.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def notifications(client: httpx.AsyncClient, delivery_id: str) -> list[JSON]:
    response = await client.get("/api/notifications", params={"deliveryId": delivery_id})
    assert response.status_code == 200, response.text
    listed: list[JSON] = response.json()["notifications"]
    return listed


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)
