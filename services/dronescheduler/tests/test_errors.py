"""Each refusal of the scheduler is a named problem type."""

from __future__ import annotations

import uuid

import httpx

from dronetesting.problems import assert_problem

from .conftest import delivery, put

PROBLEM = "urn:dronedelivery:problem:"


async def test_unknown_assignment_and_empty_month_are_named_404s(
    client: httpx.AsyncClient,
) -> None:
    missing = assert_problem(await client.get(f"/api/dronedeliveries/{uuid.uuid4()}"), 404)
    assert missing["type"] == PROBLEM + "assignment-not-found"
    assert missing["title"] == "Not Found"
    query = "ownerId=nobody&year=2024&month=5"
    empty = assert_problem(await client.get(f"/api/dronedeliveries/utilization?{query}"), 404)
    assert empty["type"] == PROBLEM + "no-assignments"


async def test_a_body_for_another_delivery_is_a_400_naming_the_field(
    client: httpx.AsyncClient,
) -> None:
    body = delivery()
    response = await client.put(f"/api/dronedeliveries/{uuid.uuid4()}", json=body)
    problem = assert_problem(response, 400)
    assert problem["type"] == PROBLEM + "validation-error"
    assert [error["field"] for error in problem["errors"]] == ["deliveryId"]
    assert (await put(client, body)).status_code == 201  # nothing was assigned for it


async def test_a_released_assignment_is_final(client: httpx.AsyncClient) -> None:
    body = delivery()
    assert (await put(client, body)).status_code == 201
    delivery_id = body["deliveryId"]
    assert (await client.delete(f"/api/dronedeliveries/{delivery_id}")).status_code == 204
    released = assert_problem(await put(client, body), 409)
    assert released["type"] == PROBLEM + "assignment-released"
