"""Webhooks: signed per the Standard Webhooks specification, retried on failure, and never sent to
a private or loopback target outside development."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from standardwebhooks.webhooks import Webhook

from dronetesting.apps import app_client, running_server
from notifier.channels.targets import refusal
from notifier.main import create_app

from .conftest import BASE_URL, FAR_SOUTH, TOO_LONG, Deliveries, eventually, notifications


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The specification's algorithm, written out with the standard library: the signature is
    base64(HMAC-SHA256(key, "{webhook-id}.{webhook-timestamp}.{body}")), the key the base64
    after ``whsec_``; the header lists ``v1,<signature>`` entries separated by spaces."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    return any(
        hmac.compare_digest(entry.split(",", 1)[1], expected)
        for entry in headers["webhook-signature"].split()
        if entry.startswith("v1,")
    )


def test_the_signature_follows_the_specification_test_vector() -> None:
    # The example of the Standard Webhooks specification (its reference libraries test it).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    body = b'{"test": 2432232314}'
    assert verify(secret, headers, body)
    assert not verify(secret, headers, body + b" ")
    import datetime as dt

    signed = Webhook(secret).sign(
        headers["webhook-id"], dt.datetime.fromtimestamp(1614265330, dt.UTC), body
    )
    assert signed == headers["webhook-signature"]


@dataclass
class Receiver:
    """A webhook endpoint that fails its first ``failures`` calls with 500."""

    failures: int = 0
    calls: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hooks/{name}")
        async def hook(request: Request) -> Response:
            self.calls.append((dict(request.headers), await request.body()))
            if len(self.calls) <= self.failures:
                return Response(status_code=500)
            return Response(status_code=204)

        return app


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    endpoint = Receiver(failures=2)
    async with running_server(endpoint.app()) as url:
        yield endpoint, url


async def test_a_webhook_is_signed_retried_on_500_and_sent_once(
    notifier: httpx.AsyncClient, deliveries: Deliveries, receiver: tuple[Receiver, str]
) -> None:
    endpoint, url = receiver
    delivery_id = str(uuid.uuid4())
    await deliveries.create(delivery_id, {"webhookUrl": f"{url}/hooks/acme"})

    async def sent() -> bool:
        listed = await notifications(notifier, delivery_id)
        return bool(listed) and listed[0]["status"] == "sent"

    await eventually(sent, what="the webhook sent after two 500s")
    (item,) = await notifications(notifier, delivery_id)
    assert item["attempts"] == 3
    assert item["reference"] == "webhook:204"
    assert len(endpoint.calls) == 3
    secret = (await notifier.get("/api/accounts/acme/webhooksecret")).json()["secret"]
    assert secret.startswith("whsec_")
    ids = {headers["webhook-id"] for headers, _ in endpoint.calls}
    assert len(ids) == 1  # the same message on every attempt: receivers deduplicate on it
    for headers, body in endpoint.calls:
        assert headers["content-type"] == "application/json"
        assert verify(secret, headers, body)
        Webhook(secret).verify(body, headers)  # and by the package's own verifier
    payload: dict[str, Any] = json.loads(endpoint.calls[-1][1])
    assert payload["type"] == "delivery.assigned"
    assert payload["data"]["deliveryId"] == delivery_id
    assert payload["data"]["deliveryETA"] == "2030-05-08T20:25:00.000Z"
    assert payload["data"]["trackingUrl"] == f"{BASE_URL}/track/{delivery_id}"
    # A tampered body does not verify.
    headers, body = endpoint.calls[-1]
    assert not verify(secret, headers, body.replace(b"assigned", b"cancelled"))


async def test_a_refused_change_is_a_signed_change_refused_webhook_carrying_it(
    notifier: httpx.AsyncClient, deliveries: Deliveries
) -> None:
    endpoint = Receiver()
    async with running_server(endpoint.app()) as url:
        delivery_id = str(uuid.uuid4())
        await deliveries.create(
            delivery_id, {"webhookUrl": f"{url}/hooks/acme"}, dropoff_place="Gas Works Park"
        )
        pickup = {"latitude": 47.6205, "longitude": -122.3493, "altitude": 0.0}
        asked = {"pickup": pickup, "dropoff": FAR_SOUTH, "dropoffPlace": "Pier 9, Tukwila"}
        await deliveries.refuse(delivery_id, asked)

        async def sent() -> bool:
            listed = await notifications(notifier, delivery_id)
            return len(listed) == 2 and all(n["status"] == "sent" for n in listed)

        await eventually(sent, what="the Assigned and ChangeRefused webhooks sent")
    secret = (await notifier.get("/api/accounts/acme/webhooksecret")).json()["secret"]
    bodies = {}
    for headers, body in endpoint.calls:
        Webhook(secret).verify(body, headers)
        payload: dict[str, Any] = json.loads(body)
        bodies[payload["type"]] = payload
    assert set(bodies) == {"delivery.assigned", "delivery.change_refused"}
    data = bodies["delivery.change_refused"]["data"]
    assert data["event"] == "ChangeRefused"
    assert data["deliveryId"] == delivery_id
    assert data["dropoffPlace"] == "Gas Works Park"  # where it still goes
    assert data["trackingUrl"] == f"{BASE_URL}/track/{delivery_id}"
    refused = data["refused"]
    assert refused["requestedAt"] == "2030-05-08T20:05:00.000Z"
    assert (refused["reason"], refused["detail"]) == ("trip-too-long", TOO_LONG)
    assert (refused["pickup"], refused["pickupPlace"]) == (pickup, None)
    assert (refused["dropoff"], refused["dropoffPlace"]) == (FAR_SOUTH, "Pier 9, Tukwila")
    # The event carries no ETAs, so the body has none.
    assert not {"pickupETA", "deliveryETA", "previousETA", "droneId"} & set(data)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1:{port}/hooks/x", "loopback"),
        ("https://localhost:{port}/hooks/x", "resolves to 127.0.0.1 is a loopback"),
        ("https://10.1.2.3/hooks/x", "private"),
        ("https://[::ffff:169.254.169.254]/latest", "link-local"),
        ("http://127.0.0.1:{port}/hooks/x", "plain http"),
    ],
)
async def test_private_targets_are_refused_outside_development(
    make_settings: Any,
    deliveries: Deliveries,
    receiver: tuple[Receiver, str],
    url: str,
    why: str,
) -> None:
    endpoint, base = receiver
    port = base.rsplit(":", 1)[1]
    # Outside development (a production service would check tokens too; the refusal is the same).
    app = create_app(make_settings(environment="test"), configure_logs=False)
    async with app_client(app) as notifier:
        delivery_id = str(uuid.uuid4())
        await deliveries.create(delivery_id, {"webhookUrl": url.format(port=port)})

        async def failed() -> bool:
            listed = await notifications(notifier, delivery_id)
            return bool(listed) and listed[0]["status"] == "failed"

        await eventually(failed, what="the webhook refused")
        (item,) = await notifications(notifier, delivery_id)
        assert item["attempts"] == 1  # refused for good, not retried
        assert "refused" in item["lastError"]
        assert why in item["lastError"]
    assert endpoint.calls == []


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.1",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "2001:db8::1",
        "::ffff:10.0.0.1",
        "::ffff:127.0.0.1",
    ],
)
def test_every_non_public_address_is_refused(address: str) -> None:
    assert refusal(address) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert refusal(address) is None
