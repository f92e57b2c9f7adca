"""PATCH (reschedule) and DELETE (cancel) /api/deliveryrequests/{deliveryId}."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from dronetesting.problems import assert_problem, field_errors
from ingestion.repository import record_key
from ingestion.service import MESSAGE_NAMESPACE

from .conftest import owned, queued

URL = "/api/deliveryrequests"


async def test_reschedule_queues_the_changed_fields(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    delivery_id = await owned(redis_url)
    response = await client.patch(
        f"{URL}/{delivery_id}",
        json={
            "pickupLocation": " 47.6,-122.3 ",
            "dropoffLocation": "the new place",
            "pickupTime": "2030-01-02T05:00:00+05:00",
            "deadline": "before noon",
            "ownerId": "ignored",
        },
    )

    assert response.status_code == 202, response.text
    assert response.json() == {"deliveryId": delivery_id, "operation": "reschedule"}
    assert response.headers["location"] == f"/api/deliveries/{delivery_id}"
    [message] = await queued(redis_url)
    assert message.body == {
        "deliveryId": delivery_id,
        "pickupLocation": "47.6,-122.3",
        "dropOffLocation": "the new place",
        "pickupTime": "2030-01-02T00:00:00.000Z",
        "deadline": "before noon",
    }
    assert message.properties["operation"] == "reschedule"
    assert message.content_type == "application/json"
    assert uuid.UUID(message.message_id).version == 4  # a new request, a new id


async def test_reschedule_carries_only_what_changes(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    delivery_id = await owned(redis_url)
    response = await client.patch(f"{URL}/{delivery_id}", json={"deadline": "", "pickupTime": None})
    assert response.status_code == 202, response.text
    [message] = await queued(redis_url)
    assert message.body == {"deliveryId": delivery_id, "deadline": ""}


async def test_cancel_queues_the_delivery_id(client: httpx.AsyncClient, redis_url: str) -> None:
    delivery_id = await owned(redis_url)
    response = await client.delete(f"{URL}/{delivery_id}")

    assert response.status_code == 202, response.text
    assert response.json() == {"deliveryId": delivery_id, "operation": "cancel"}
    [message] = await queued(redis_url)
    assert message.body == {"deliveryId": delivery_id}
    assert message.properties["operation"] == "cancel"
    assert uuid.UUID(message.message_id).version == 4


async def test_a_reschedule_back_to_an_earlier_place_is_a_message_of_its_own(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    # X -> Y -> X: the third request repeats the first one's body but is a request of its own;
    # a broker that drops repeated message ids (Service Bus duplicate detection) must keep it.
    delivery_id = await owned(redis_url)
    for place in ("47.61,-122.33", "47.62,-122.34", "47.61,-122.33"):
        response = await client.patch(f"{URL}/{delivery_id}", json={"dropOffLocation": place})
        assert response.status_code == 202, response.text
    to_x, to_y, back_to_x = await queued(redis_url)
    assert to_x.raw_body == back_to_x.raw_body
    assert len({to_x.message_id, to_y.message_id, back_to_x.message_id}) == 3


async def test_every_request_without_an_idempotency_key_is_a_new_message(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    delivery_id = await owned(redis_url)
    for _ in range(2):
        assert (await client.delete(f"{URL}/{delivery_id}")).status_code == 202
        patch = await client.patch(f"{URL}/{delivery_id}", json={"pickupLocation": "here"})
        assert patch.status_code == 202
    messages = await queued(redis_url)
    assert len(messages) == 4
    assert len({message.message_id for message in messages}) == 4


async def test_a_retry_with_its_idempotency_key_is_the_same_request(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    delivery_id = await owned(redis_url)
    target = f"{URL}/{delivery_id}"
    change = {"dropOffLocation": "the new place"}
    first = await client.patch(target, json=change, headers={"Idempotency-Key": "move-1"})
    again = await client.patch(target, json=change, headers={"Idempotency-Key": "move-1"})
    assert first.status_code == again.status_code == 202, again.text
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json() == {"deliveryId": delivery_id, "operation": "reschedule"}
    other_body = await client.patch(
        target, json={"dropOffLocation": "elsewhere"}, headers={"Idempotency-Key": "move-1"}
    )
    assert_problem(other_body, 422)
    other_delivery = await client.patch(
        f"{URL}/{await owned(redis_url)}", json=change, headers={"Idempotency-Key": "move-1"}
    )
    assert_problem(other_delivery, 422)
    cancel = await client.delete(target, headers={"Idempotency-Key": "stop-1"})
    cancel_again = await client.delete(target, headers={"Idempotency-Key": "stop-1"})
    assert cancel.status_code == cancel_again.status_code == 202
    assert cancel_again.headers["idempotent-replayed"] == "true"
    assert_problem(await client.delete(target, headers={"Idempotency-Key": "move-1"}), 422)
    moved, stopped = await queued(redis_url)
    assert (moved.properties["operation"], stopped.properties["operation"]) == (
        "reschedule",
        "cancel",
    )
    assert moved.body == {"deliveryId": delivery_id, **change}
    # The id is the request's: derived from who sent which key, never from the body.
    assert moved.message_id == str(
        uuid.uuid5(MESSAGE_NAMESPACE, f"{record_key('anonymous', 'move-1')}|reschedule")
    )


async def test_upper_case_ids_are_normalised(client: httpx.AsyncClient, redis_url: str) -> None:
    delivery_id = await owned(redis_url)
    response = await client.delete(f"{URL}/{delivery_id.upper()}")
    assert response.json()["deliveryId"] == delivery_id
    [message] = await queued(redis_url)
    assert message.body == {"deliveryId": delivery_id}


async def test_unknown_deliveries_are_404_and_enqueue_nothing(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    unknown = str(uuid.uuid4())
    for response in (
        await client.delete(f"{URL}/{unknown}"),
        await client.patch(f"{URL}/{unknown}", json={"deadline": "today"}),
    ):
        body = assert_problem(response, 404)
        assert body["type"] == "urn:dronedelivery:problem:delivery-not-found"
    assert await queued(redis_url) == []


async def test_reschedules_keep_to_the_service_area(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    delivery_id = await owned(redis_url)
    response = await client.patch(f"{URL}/{delivery_id}", json={"pickupLocation": "-47.6,57.7"})
    body = assert_problem(response, 400)
    assert body["type"] == "urn:dronedelivery:problem:outside-service-area"
    assert [error["field"] for error in body["errors"]] == ["pickupLocation"]
    assert await queued(redis_url) == []


NOT_UUIDS = [
    "not-a-uuid",
    "123",
    "3fa85f6457174562b3fc2c963f66afa6",
    "{3fa85f64-5717-4562-b3fc-2c963f66afa6}",
    "3fa85f64-5717-4562-b3fc-2c963f66afaz",
    "3fa85f64-5717-4562-b3fc-2c963f66afa6-1",
]


@pytest.mark.parametrize("delivery_id", NOT_UUIDS)
async def test_a_delivery_id_that_is_not_a_uuid_is_400(
    client: httpx.AsyncClient, redis_url: str, delivery_id: str
) -> None:
    assert field_errors(await client.delete(f"{URL}/{delivery_id}")) == {"deliveryId"}
    patch = await client.patch(f"{URL}/{delivery_id}", json={"deadline": "today"})
    assert field_errors(patch) == {"deliveryId"}
    assert await queued(redis_url) == []


BAD_PATCHES: list[tuple[str, Any, set[str]]] = [
    ("empty object", {}, {"body"}),
    ("only nulls", {"pickupLocation": None, "deadline": None}, {"body"}),
    ("only unknown fields", {"ownerId": "someone"}, {"body"}),
    ("a list", [{"deadline": "x"}], {"body"}),
    ("blank place", {"pickupLocation": "  "}, {"pickupLocation"}),
    ("place out of range", {"dropOffLocation": "95,10"}, {"dropOffLocation"}),
    ("bad time", {"pickupTime": "tomorrow"}, {"pickupTime"}),
    ("time without offset", {"pickupTime": "2030-01-01T10:00:00"}, {"pickupTime"}),
    ("deadline too long", {"deadline": "d" * 257}, {"deadline"}),
    ("deadline a number", {"deadline": 3}, {"deadline"}),
]


@pytest.mark.parametrize(
    ("body", "fields"),
    [(body, fields) for _, body, fields in BAD_PATCHES],
    ids=[name for name, _, _ in BAD_PATCHES],
)
async def test_bad_reschedules_are_400_and_enqueue_nothing(
    client: httpx.AsyncClient, redis_url: str, body: Any, fields: set[str]
) -> None:
    response = await client.patch(
        f"{URL}/{uuid.uuid4()}",
        content=json.dumps(body),
        headers={"content-type": "application/json"},
    )
    assert field_errors(response) == fields
    assert await queued(redis_url) == []


async def test_unreadable_reschedules_are_refused(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    target = f"{URL}/{uuid.uuid4()}"
    assert field_errors(await client.patch(target)) == {"body"}
    malformed = await client.patch(
        target, content=b"{", headers={"content-type": "application/json"}
    )
    assert field_errors(malformed) == {"body"}
    assert_problem(
        await client.patch(target, content=b"deadline=x", headers={"content-type": "text/plain"}),
        415,
    )
    huge = json.dumps({"deadline": "x" * (65 * 1024)}).encode()
    assert_problem(
        await client.patch(target, content=huge, headers={"content-type": "application/json"}),
        413,
    )
    assert await queued(redis_url) == []
