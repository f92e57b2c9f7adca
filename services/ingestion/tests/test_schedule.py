"""POST /api/deliveryrequests: the sample, normalisation, the queue message, every bad input."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from typing import Any

import httpx
import pytest

from dronecommon.messaging import ReceivedMessage, create_receiver
from dronecommon.settings import QueueSettings
from dronetesting.problems import assert_problem, field_errors
from dronetesting.samples import SAMPLE_REQUEST
from ingestion.service import MESSAGE_NAMESPACE

from .conftest import QUEUE, queued

URL = "/api/deliveryrequests"


def with_changes(**changes: Any) -> dict[str, Any]:
    """The sample with top-level fields changed (``None`` removes one)."""
    body = {**SAMPLE_REQUEST, "packageInfo": dict(SAMPLE_REQUEST["packageInfo"])}
    for name, value in changes.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return body


async def test_notify_travels_on_the_message_normalised(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    notify = {
        "emailAddress": "José <JOSÉ@EXAMPLE.COM>",
        "sms": "+1 (425) 555-0123",
        "webhookUrl": "https://hooks.example.com/drone",
    }
    response = await client.post(URL, json=with_changes(notify=notify))
    assert response.status_code == 202, response.text
    expected = {
        "emailAddress": "JOSÉ@example.com",
        "sms": "+14255550123",
        "webhookUrl": "https://hooks.example.com/drone",
    }
    assert response.json()["notify"] == expected
    [message] = await queued(redis_url)
    assert message.body["notify"] == expected
    # null is the same as leaving it out: no notify in the answer or on the queue.
    response = await client.post(URL, json=with_changes(notify=None) | {"notify": None})
    assert "notify" not in response.json()


@pytest.mark.parametrize(
    ("notify", "field"),
    [
        ({}, "notify"),
        ({"emailAddress": "not-an-address"}, "notify.emailAddress"),
        ({"sms": "12345"}, "notify.sms"),
        ({"webhookUrl": "http://hooks.example.com/x"}, "notify.webhookUrl"),
        ({"webhookUrl": "https://user:pw@hooks.example.com/x"}, "notify.webhookUrl"),
        ("ann@example.com", "notify"),
    ],
)
async def test_a_bad_notify_is_400_and_nothing_is_queued(
    client: httpx.AsyncClient, redis_url: str, notify: Any, field: str
) -> None:
    response = await client.post(URL, json=with_changes(notify=notify))
    assert_problem(response, 400)
    assert field in field_errors(response)
    assert await queued(redis_url) == []


def with_package(**changes: Any) -> dict[str, Any]:
    body = with_changes()
    for name, value in changes.items():
        if value is None:
            body["packageInfo"].pop(name, None)
        else:
            body["packageInfo"][name] = value
    return body


async def test_the_sample_request_is_accepted_and_queued(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    response = await client.post(URL, json=SAMPLE_REQUEST)

    assert response.status_code == 202, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    delivery_id = body["deliveryId"]
    assert uuid.UUID(delivery_id).version == 4
    assert response.headers["location"] == f"/api/deliveries/{delivery_id}"
    assert "idempotent-replayed" not in response.headers
    assert body == {
        "deliveryId": delivery_id,
        "ownerId": "myowner",
        "owner": {"userId": "myowner", "accountId": "myowner"},  # tokens off: account = ownerId
        "pickupLocation": "my pickup",
        "dropOffLocation": "drop off",
        "pickupTime": "2019-05-08T20:00:00.000Z",
        "deadline": "",
        "expedited": True,
        "confirmationRequired": "None",
        "packageInfo": {"packageId": "mypackage", "size": "Small", "weight": 10.0, "tag": "mytag"},
    }

    [message] = await queued(redis_url)
    assert message.body == body
    assert message.raw_body == response.content
    assert message.content_type == "application/json"
    assert message.properties["operation"] == "delivery"
    expected_id = uuid.uuid5(
        MESSAGE_NAMESPACE, f"{delivery_id}|delivery|{message.raw_body.decode()}"
    )
    assert message.message_id == str(expected_id)


async def test_a_workflow_receiver_gets_the_message(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    response = await client.post(URL, json=SAMPLE_REQUEST)
    assert response.status_code == 202

    received: list[ReceivedMessage] = []
    done = asyncio.Event()

    async def handler(message: ReceivedMessage) -> None:
        received.append(message)
        await message.complete()
        done.set()

    receiver = create_receiver(
        QueueSettings(name=QUEUE, receive_wait=0.1, max_concurrency=1), redis_url=redis_url
    )
    task = asyncio.create_task(receiver.run(handler))
    try:
        await asyncio.wait_for(done.wait(), timeout=10)
    finally:
        await receiver.stop(1.0)
        await task
        await receiver.close()

    [message] = received
    assert message.json() == response.json()
    assert message.content_type == "application/json"
    assert message.properties["operation"] == "delivery"
    assert message.delivery_count == 1
    assert await queued(redis_url) == []  # completed


async def test_the_request_is_normalised(client: httpx.AsyncClient, redis_url: str) -> None:
    before = dt.datetime.now(dt.UTC).replace(microsecond=0)
    request = {
        "ownerId": "  owner-2  ",
        "pickupLocation": "47.61, -122.33",
        "dropoffLocation": "Space Needle",
        "confirmationRequired": "fingerprint",
        "packageInfo": {"size": "LARGE", "weight": 100, "tag": None},
        "deliveryId": "00000000-0000-4000-8000-000000000000",
        "unknownField": {"ignored": True},
        "deadline": None,
    }
    response = await client.post(URL, json=request)

    assert response.status_code == 202, response.text
    body = response.json()
    assert body["deliveryId"] != request["deliveryId"]
    assert body["ownerId"] == "owner-2"
    assert body["pickupLocation"] == "47.61, -122.33"
    assert body["dropOffLocation"] == "Space Needle"
    assert "dropoffLocation" not in body
    assert body["confirmationRequired"] == "FingerPrint"
    assert body["expedited"] is False
    assert body["deadline"] == ""
    assert "unknownField" not in body
    package = body["packageInfo"]
    assert package["size"] == "Large"
    assert package["weight"] == 100
    assert package["tag"] is None
    assert uuid.UUID(package["packageId"]).version == 4
    pickup_time = dt.datetime.fromisoformat(body["pickupTime"])
    assert body["pickupTime"].endswith("Z")
    assert before <= pickup_time <= dt.datetime.now(dt.UTC)
    [message] = await queued(redis_url)
    assert message.body == body


@pytest.mark.parametrize(
    ("sent", "normalised"),
    [
        ("2019-05-08T22:00:00+02:00", "2019-05-08T20:00:00.000Z"),
        ("2019-05-08t20:00:00.123456z", "2019-05-08T20:00:00.123Z"),
        ("2019-05-08 15:30:00-04:30", "2019-05-08T20:00:00.000Z"),
        ("2999-12-31T23:59:59Z", "2999-12-31T23:59:59.000Z"),
    ],
)
async def test_pickup_time_is_answered_in_utc(
    client: httpx.AsyncClient, sent: str, normalised: str
) -> None:
    response = await client.post(URL, json=with_changes(pickupTime=sent))
    assert response.status_code == 202, response.text
    assert response.json()["pickupTime"] == normalised


async def test_each_request_is_a_new_delivery(client: httpx.AsyncClient, redis_url: str) -> None:
    first = await client.post(URL, json=SAMPLE_REQUEST)
    second = await client.post(URL, json=SAMPLE_REQUEST)
    assert first.json()["deliveryId"] != second.json()["deliveryId"]
    messages = await queued(redis_url)
    assert len({m.message_id for m in messages}) == 2


async def test_json_media_types_with_parameters_are_accepted(client: httpx.AsyncClient) -> None:
    for content_type in ("application/json; charset=utf-8", "application/vnd.fabrikam+json"):
        response = await client.post(
            URL, content=json.dumps(SAMPLE_REQUEST).encode(), headers={"content-type": content_type}
        )
        assert response.status_code == 202, (content_type, response.text)


LONG = "x" * 300

BAD_REQUESTS: list[tuple[str, dict[str, Any] | list[Any] | None, set[str]]] = [
    ("no ownerId", with_changes(ownerId=None), {"ownerId"}),
    ("empty ownerId", with_changes(ownerId="   "), {"ownerId"}),
    ("ownerId too long", with_changes(ownerId="o" * 129), {"ownerId"}),
    ("ownerId a number", with_changes(ownerId=42), {"ownerId"}),
    ("snake_case name", with_changes(ownerId=None, owner_id="myowner"), {"ownerId"}),
    ("no pickupLocation", with_changes(pickupLocation=None), {"pickupLocation"}),
    ("blank pickupLocation", with_changes(pickupLocation=" "), {"pickupLocation"}),
    ("latitude out of range", with_changes(pickupLocation="91,0"), {"pickupLocation"}),
    ("longitude out of range", with_changes(dropOffLocation="0,-181"), {"dropOffLocation"}),
    ("place too long", with_changes(dropOffLocation=LONG), {"dropOffLocation"}),
    ("no dropOffLocation", with_changes(dropOffLocation=None), {"dropOffLocation"}),
    ("no confirmationRequired", with_changes(confirmationRequired=None), {"confirmationRequired"}),
    ("bad confirmation", with_changes(confirmationRequired="Retina"), {"confirmationRequired"}),
    ("no packageInfo", with_changes(packageInfo=None), {"packageInfo"}),
    ("packageInfo a string", with_changes(packageInfo="small"), {"packageInfo"}),
    ("no size", with_package(size=None), {"packageInfo.size"}),
    ("bad size", with_package(size="Huge"), {"packageInfo.size"}),
    ("no weight", with_package(weight=None), {"packageInfo.weight"}),
    ("weight 0", with_package(weight=0), {"packageInfo.weight"}),
    ("negative weight", with_package(weight=-1), {"packageInfo.weight"}),
    ("weight too big", with_package(weight=100.01), {"packageInfo.weight"}),
    ("weight a string", with_package(weight="10"), {"packageInfo.weight"}),
    ("weight a boolean", with_package(weight=True), {"packageInfo.weight"}),
    ("tag too long", with_package(tag="t" * 65), {"packageInfo.tag"}),
    ("packageId with a space", with_package(packageId="my package"), {"packageInfo.packageId"}),
    ("packageId with a slash", with_package(packageId="a/b"), {"packageInfo.packageId"}),
    ("pickupTime text", with_changes(pickupTime="yesterday"), {"pickupTime"}),
    ("pickupTime date only", with_changes(pickupTime="2019-05-08"), {"pickupTime"}),
    ("pickupTime no offset", with_changes(pickupTime="2019-05-08T20:00:00"), {"pickupTime"}),
    ("pickupTime a number", with_changes(pickupTime=1557345600), {"pickupTime"}),
    ("pickupTime bad day", with_changes(pickupTime="2019-02-30T20:00:00Z"), {"pickupTime"}),
    ("pickupTime overflows", with_changes(pickupTime="0001-01-01T00:00:00+01:00"), {"pickupTime"}),
    ("pickupTime past 9999", with_changes(pickupTime="9999-12-31T23:30:00-01:00"), {"pickupTime"}),
    ("deadline too long", with_changes(deadline=LONG), {"deadline"}),
    ("deadline a number", with_changes(deadline=5), {"deadline"}),
    ("expedited a string", with_changes(expedited="yes"), {"expedited"}),
    ("expedited a number", with_changes(expedited=1), {"expedited"}),
    ("a list", [SAMPLE_REQUEST], {"body"}),
    ("null", None, {"body"}),
    (
        "several at once",
        with_package(size="tiny", weight=0),
        {"packageInfo.size", "packageInfo.weight"},
    ),
]


@pytest.mark.parametrize(
    ("request_body", "fields"),
    [(body, fields) for _, body, fields in BAD_REQUESTS],
    ids=[name for name, _, _ in BAD_REQUESTS],
)
async def test_bad_requests_are_400_and_enqueue_nothing(
    client: httpx.AsyncClient,
    redis_url: str,
    request_body: dict[str, Any] | list[Any] | None,
    fields: set[str],
) -> None:
    response = await client.post(
        URL, content=json.dumps(request_body), headers={"content-type": "application/json"}
    )
    assert field_errors(response) == fields
    assert await queued(redis_url) == []


async def test_a_validation_problem_has_the_documented_shape(client: httpx.AsyncClient) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    response = await client.post(
        URL,
        json=with_package(size="Huge"),
        headers={"traceparent": f"00-{trace_id}-00f067aa0ba902b7-01"},
    )
    body = assert_problem(response, 400)
    assert body["title"] == "Invalid request"
    assert body["traceId"] == trace_id
    assert body["detail"]
    [error] = body["errors"]
    assert error["field"] == "packageInfo.size"
    assert "Small" in error["message"]


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b'{"ownerId": "myowner",', {"content-type": "application/json"}, 400),
        (b"", {"content-type": "application/json"}, 400),
        (b"ownerId=myowner", {"content-type": "application/x-www-form-urlencoded"}, 415),
        (json.dumps(SAMPLE_REQUEST).encode(), {"content-type": "text/plain"}, 415),
        (json.dumps(SAMPLE_REQUEST).encode(), {}, 415),
        (b'{"pad": "' + b"x" * (64 * 1024) + b'"}', {"content-type": "application/json"}, 413),
    ],
    ids=["malformed JSON", "empty body", "form", "text/plain", "untyped", "over 64 KiB"],
)
async def test_unreadable_bodies_are_refused_and_enqueue_nothing(
    client: httpx.AsyncClient,
    redis_url: str,
    content: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    response = await client.post(URL, content=content, headers=headers)
    body = assert_problem(response, status)
    if status == 400:
        assert {error["field"] for error in body["errors"]} == {"body"}
    assert await queued(redis_url) == []


async def test_a_chunked_body_over_the_limit_is_413(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    async def chunks() -> Any:
        for _ in range(80):
            yield b"x" * 1024

    response = await client.post(
        URL, content=chunks(), headers={"content-type": "application/json"}
    )
    assert_problem(response, 413)
    assert await queued(redis_url) == []


async def test_unknown_routes_and_wrong_methods(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/api/nothing"), 404)
    response = await client.get(URL)
    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"
    response = await client.put(URL + f"/{uuid.uuid4()}", json={})
    assert_problem(response, 405)
    assert set(response.headers["allow"].split(", ")) == {"PATCH", "DELETE"}
