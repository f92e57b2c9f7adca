"""The internal API: the local SMS sink, readiness, roles, problem answers."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
from redis.asyncio import Redis

from dronecommon.auth.credentials import outbound_token_provider
from dronecommon.auth.inbound import Authenticator
from dronecommon.events import DeliveryEvent, EventType, PickedUpData, append
from dronetesting.apps import app_client
from dronetesting.problems import assert_problem
from dronetesting.tokens import LocalIssuer
from notifier.main import create_app
from notifier.settings import NotifierAuthSettings, NotifierSettings

from .conftest import BASE_URL, Deliveries, Inbox, eventually, notifications


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
    auth = NotifierAuthSettings(**dev_issuer.settings.model_dump(exclude={"dev_roles"}))
    app = create_app(make_settings(auth=auth), configure_logs=False)
    list_url = "/api/notifications?deliveryId=d-1"
    sms_url = "/api/notifications/sms"
    secret_url = "/api/accounts/acme/webhooksecret"
    async with app_client(app) as notifier:
        assert_problem(await notifier.get(list_url), 401)
        # Customers never reach the internal API, operators included.
        for customer in (
            dev_issuer.customer(),
            dev_issuer.customer("fabrikam", "ops", roles=("Operator",)),
        ):
            for url in (list_url, sms_url, secret_url):
                assert_problem(await notifier.get(url, headers=customer), 403)
        reader = dev_issuer.service("Notifications.Read", caller="webapp")
        assert (await notifier.get(list_url, headers=reader)).status_code == 200
        assert (await notifier.get(sms_url, headers=reader)).status_code == 200
        refused = assert_problem(await notifier.get(secret_url, headers=reader), 403)
        assert "Webhooks.Secrets" in refused["detail"]
        keeper = dev_issuer.service("Webhooks.Secrets", caller="webapp")
        assert_problem(await notifier.get(list_url, headers=keeper), 403)
        first = await notifier.get(secret_url, headers=keeper)
        assert first.status_code == 200
        again = await notifier.get(secret_url, headers=keeper)
        assert again.json() == first.json()  # made once, then the same
        # A role of another API is not this one's.
        assert_problem(
            await notifier.get(list_url, headers=dev_issuer.service("Deliveries.Read")), 403
        )
        assert (await notifier.get("/healthz")).status_code == 200  # health needs no token


async def test_recipients_are_read_from_delivery_with_the_notifiers_own_token(
    redis_url: str, make_settings: Any, inbox: Inbox, dev_issuer: LocalIssuer
) -> None:
    """An event without recipients: the notifier asks the delivery service, which checks tokens,
    with a token of its own holding Deliveries.Read (what its identity is assigned in Azure)."""
    workflow = dev_issuer.service("Deliveries.Write", caller="workflow")
    async with Deliveries.serving(redis_url, dev_issuer.settings, workflow) as deliveries:
        own = NotifierAuthSettings(
            **dev_issuer.settings_with(
                outbound_scopes={"delivery": f"api://{dev_issuer.audience}/.default"},
                dev_signing_key_file=str(dev_issuer.key_file),
            ).model_dump(exclude={"dev_roles"})
        )
        app = create_app(make_settings(delivery_url=deliveries.url, auth=own), configure_logs=False)
        async with app_client(app):
            delivery_id = str(uuid.uuid4())
            await deliveries.create(delivery_id)
            await deliveries.notify_me(delivery_id, {"emailAddress": "ann@example.com"})
            at = dt.datetime(2030, 5, 8, 20, 12, tzinfo=dt.UTC)
            picked_up = PickedUpData(drone_id="drone-1", at=at)
            redis = Redis.from_url(redis_url)
            try:
                await append(
                    redis, DeliveryEvent.of(EventType.PICKED_UP, delivery_id, at, picked_up)
                )
            finally:
                await redis.aclose()
            [message] = await inbox.wait_for(1)
            assert message["Subject"] == (
                f"Delivery {delivery_id[:8]}: your package has been picked up"
            )
        # The token it sent: the notifier's identity, for delivery's audience, reads only.
        provider = outbound_token_provider(own, caller="notifier", target="delivery")
        assert provider is not None
        token = await provider.token()
        caller = await Authenticator(dev_issuer.settings).authenticate(token)
        assert (caller.app_id, caller.roles) == ("notifier", ("Deliveries.Read",))
        reader = {"Authorization": f"Bearer {token}"}
        read = await deliveries.client.get(f"/api/deliveries/{delivery_id}", headers=reader)
        assert read.status_code == 200
        cancel = await deliveries.client.delete(f"/api/deliveries/{delivery_id}", headers=reader)
        assert_problem(cancel, 403)


def test_openapi_document_is_current() -> None:
    from pathlib import Path

    from dronetesting.openapi import assert_openapi_current

    document = Path(__file__).resolve().parents[1] / "openapi.json"
    settings = NotifierSettings(auth=NotifierAuthSettings(enabled=False))
    assert_openapi_current(create_app(settings, configure_logs=False), document)
