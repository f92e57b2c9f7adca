"""The internal API: the local SMS sink, readiness, roles, problem answers."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import httpx

from dronetesting.apps import app_client
from dronetesting.tokens import LocalIssuer
from notifier.main import create_app

from .conftest import BASE_URL, Deliveries, eventually, notifications


async def test_sms_go_to_a_readable_sink_once(
    make_settings: Any, deliveries: Deliveries, tmp_path: Path
) -> None:
    sink = tmp_path / "sms.jsonl"
    app = create_app(make_settings(sms={"sink_file": str(sink)}), configure_logs=False)
    async with app_client(app) as notifier:
        delivery_id = str(uuid.uuid4())
        await deliveries.create(delivery_id, {"sms": "+1 (425) 555-0123"})
        await deliveries.cancel(delivery_id)

        async def two_sent() -> bool:
            listed = await notifications(notifier, delivery_id)
            return len(listed) == 2 and all(n["status"] == "sent" for n in listed)

        await eventually(two_sent, what="two SMS")
        response = await notifier.get("/api/notifications/sms", params={"to": "+14255550123"})
        assert response.status_code == 200
        # Sent side by side: the sink holds both, newest first, in the order they were sent.
        messages = {m["event"]: m for m in response.json()}
        assert len(response.json()) == 2
        assert set(messages) == {"Cancelled", "Assigned"}
        text = messages["Assigned"]["text"]
        assert text.startswith(f"Fabrikam: Delivery {delivery_id[:8]}: a drone")
        assert f"{BASE_URL}/track/{delivery_id}" in text
        assert "Pickup ETA: Wednesday 8 May 2030, 20:10 UTC" in text
        other = await notifier.get("/api/notifications/sms", params={"to": "+14255550100"})
        assert other.json() == []
    lines = [json.loads(line) for line in sink.read_text().splitlines()]
    assert sorted(line["event"] for line in lines) == ["Assigned", "Cancelled"]
    assert {line["to"] for line in lines} == {"+14255550123"}


async def test_the_sink_is_not_there_when_sms_go_elsewhere(make_settings: Any) -> None:
    app = create_app(make_settings(sms={"transport": "off"}), configure_logs=False)
    async with app_client(app) as notifier:
        response = await notifier.get("/api/notifications/sms")
        assert response.status_code == 404
        assert response.json()["type"] == "urn:dronedelivery:problem:sms-sink-off"


async def test_listing_needs_a_delivery_id_and_answers_nothing_for_an_unknown_one(
    notifier: httpx.AsyncClient,
) -> None:
    missing = await notifier.get("/api/notifications")
    assert missing.status_code == 400
    assert missing.headers["content-type"] == "application/problem+json"
    bad = await notifier.get("/api/notifications", params={"deliveryId": "../x"})
    assert bad.status_code == 400
    unknown = await notifier.get("/api/notifications", params={"deliveryId": "nope"})
    assert unknown.json() == {"deliveryId": "nope", "notifications": []}


async def test_readiness_names_each_dependency(notifier: httpx.AsyncClient) -> None:
    response = await notifier.get("/readyz")
    assert response.status_code == 200, response.text
    assert set(response.json()["checks"]) == {
        "redis",
        "events",
        "email",
        "sms",
        "webhook",
        "senders",
    }


async def test_internal_routes_need_their_roles(
    make_settings: Any, dev_issuer: LocalIssuer
) -> None:
    app = create_app(
        make_settings(
            auth=dev_issuer.settings_with(
                required_roles=["Notifications.Read", "Webhooks.Secrets", "Operator"]
            )
        ),
        configure_logs=False,
    )
    list_url = "/api/notifications?deliveryId=d-1"
    secret_url = "/api/accounts/acme/webhooksecret"
    async with app_client(app) as notifier:
        assert (await notifier.get(list_url)).status_code == 401
        customer = dev_issuer.headers(roles=[])
        assert (await notifier.get(list_url, headers=customer)).status_code == 403
        reader = dev_issuer.headers(roles=["Notifications.Read"])
        assert (await notifier.get(list_url, headers=reader)).status_code == 200
        refused = await notifier.get(secret_url, headers=reader)
        assert refused.status_code == 403
        assert refused.json()["type"] == "urn:dronedelivery:problem:role-required"
        keeper = dev_issuer.headers(roles=["Webhooks.Secrets"])
        assert (await notifier.get(list_url, headers=keeper)).status_code == 403
        first = await notifier.get(secret_url, headers=keeper)
        assert first.status_code == 200
        operator = dev_issuer.headers(roles=["Operator"])
        again = await notifier.get(secret_url, headers=operator)
        assert again.json() == first.json()  # made once, then the same
        assert (await notifier.get(list_url, headers=operator)).status_code == 200
        assert (await notifier.get("/healthz")).status_code == 200  # health needs no token


def test_openapi_document_is_current() -> None:
    from pathlib import Path

    from dronetesting.openapi import assert_openapi_current

    document = Path(__file__).resolve().parents[1] / "openapi.json"
    assert_openapi_current(create_app(configure_logs=False), document)
