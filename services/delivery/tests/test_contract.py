"""Route by route, the contract's "Delivery (Redis)" section, every error case included: the
creating PUT, the reads and the summaries (the changes: ``test_contract_changes.py``)."""

from __future__ import annotations

import httpx
import pytest

from .conftest import BASE, JSON, NewDelivery, Problem, put

# --- PUT ------------------------------------------------------------------------------------


async def test_put_creates_with_location_then_replays_with_204(
    client: httpx.AsyncClient, new_delivery: NewDelivery
) -> None:
    body = new_delivery("d-1")
    created = await put(client, body)
    assert created.status_code == 201
    assert created.headers["location"] == f"{BASE}/d-1"
    document = created.json()
    assert document["id"] == "d-1"
    assert document["stage"] == "Created"
    assert document["owner"] == {"userId": "owner-1", "accountId": "account-1"}
    assert document["createdAt"].endswith("Z")
    assert document["pickupETA"] is None

    replay = await put(client, body)
    assert replay.status_code == 204
    assert replay.content == b""
    # The same content written differently (enum case, defaults spelled out) is the same delivery.
    same = dict(body, confirmationRequired="none")
    assert (await put(client, same)).status_code == 204
    no_deadline = await put(client, new_delivery("d-1b", deadline=None))
    assert no_deadline.json()["deadline"] == ""
    assert (await put(client, new_delivery("d-1b", deadline=""))).status_code == 204
    assert (
        await put(client, {k: v for k, v in body.items() if k != "id"}, "d-1")
    ).status_code == 204


async def test_put_with_different_content_is_409(
    client: httpx.AsyncClient, new_delivery: NewDelivery, problem: Problem
) -> None:
    assert (await put(client, new_delivery("d-2"))).status_code == 201
    problem(await put(client, new_delivery("d-2", deadline="tomorrow")), 409)
    problem(await put(client, new_delivery("d-2", droneId="drone-8")), 409)


async def test_put_accepts_drone_timing_extensions(
    client: httpx.AsyncClient, new_delivery: NewDelivery
) -> None:
    body = new_delivery(
        "d-3", pickupETA="2030-01-01T10:00:00+01:00", deliveryETA="2030-01-01T09:30:00Z"
    )
    created = await put(client, body)
    assert created.status_code == 201
    assert created.json()["pickupETA"] == "2030-01-01T09:00:00.000Z"
    assert created.json()["stage"] == "HeadedToPickup"
    assert (await put(client, body)).status_code == 204


@pytest.mark.parametrize(
    ("path_id", "changes", "fields"),
    [
        ("d-4", {"id": "other"}, {"id"}),
        ("bad id", {"id": "bad id"}, {"id"}),
        ("x" * 129, {"id": "x" * 129}, {"id"}),
        ("summary", {"id": "summary"}, {"id"}),
        (".hidden", {"id": ".hidden"}, {"id"}),
        ("d-4", {"owner": None}, {"owner"}),
        ("d-4", {"owner": {"userId": "", "accountId": "a"}}, {"owner.userId"}),
        ("d-4", {"pickup": {"latitude": 91, "longitude": 0}}, {"pickup.latitude"}),
        ("d-4", {"dropoff": {"latitude": 0, "longitude": -181}}, {"dropoff.longitude"}),
        ("d-4", {"confirmationRequired": "Signature"}, {"confirmationRequired"}),
        ("d-4", {"expedited": "perhaps"}, {"expedited"}),
        ("d-4", {"pickupETA": "2030-01-01T10:00:00Z"}, {"body"}),
        (
            "d-4",
            {"pickupETA": "2030-01-01T10:00:00Z", "deliveryETA": "2030-01-01T09:00:00Z"},
            {"body"},
        ),
        ("d-4", {"pickupETA": "soon", "deliveryETA": "later"}, {"pickupETA", "deliveryETA"}),
        ("d-4", {"deadline": "x" * 1025}, {"deadline"}),
    ],
)
async def test_put_rejects_invalid_requests_with_400(
    client: httpx.AsyncClient,
    new_delivery: NewDelivery,
    problem: Problem,
    path_id: str,
    changes: JSON,
    fields: set[str],
) -> None:
    body = new_delivery(path_id, **changes)
    if changes.get("owner", "") is None:
        del body["owner"]
    problem(await put(client, body, path_id), 400, fields=fields)
    assert (await client.get(f"{BASE}/d-4")).status_code == 404


async def test_put_rejects_malformed_json_wrong_type_and_huge_bodies(
    client: httpx.AsyncClient, problem: Problem
) -> None:
    url = f"{BASE}/d-5"
    body = problem(
        await client.put(url, content=b'{"id": ', headers={"content-type": "application/json"}),
        400,
        fields={"body"},
    )
    assert "JSON" in body["detail"]
    problem(await client.put(url, content=b"id=d-5", headers={"content-type": "text/plain"}), 415)
    problem(
        await client.put(
            url, content=b"[" + b"0," * 40_000 + b"0]", headers={"content-type": "application/json"}
        ),
        413,
    )
    problem(await client.put(url, json=[1, 2]), 400)
    charset = await client.put(
        url, content=b"{}", headers={"content-type": "application/json; charset=utf-8"}
    )
    problem(charset, 400)  # accepted as JSON, then found incomplete


# --- reads ----------------------------------------------------------------------------------


async def test_get_public_and_owner(client: httpx.AsyncClient, new_delivery: NewDelivery) -> None:
    await put(client, new_delivery("d-6"))
    full = (await client.get(f"{BASE}/d-6")).json()
    public = (await client.get(f"{BASE}/public/d-6")).json()
    assert public["stage"] == full["stage"] == "Created"
    assert public["createdAt"] == full["createdAt"]
    assert "owner" not in public
    assert "notifyMeRequests" not in public
    assert "confirmation" not in public
    assert {k: v for k, v in full.items() if k in public} == public
    owner = await client.get(f"{BASE}/d-6/owner")
    assert owner.status_code == 200
    assert owner.json() == {"userId": "owner-1", "accountId": "account-1"}


@pytest.mark.parametrize("suffix", ["", "/owner", "/status", "/history"])
async def test_reads_of_unknown_deliveries_are_404(
    client: httpx.AsyncClient, problem: Problem, suffix: str
) -> None:
    body = problem(await client.get(f"{BASE}/nope{suffix}"), 404)
    assert "nope" in body["detail"]
    problem(await client.get(f"{BASE}/public/nope"), 404)


@pytest.mark.parametrize("suffix", ["", "/owner", "/status", "/history"])
async def test_reads_with_invalid_ids_are_400(
    client: httpx.AsyncClient, problem: Problem, suffix: str
) -> None:
    problem(await client.get(f"{BASE}/bad%20id{suffix}"), 400, fields={"id"})
    problem(await client.get(f"{BASE}/public/{'x' * 129}"), 400, fields={"id"})


async def test_route_segments_are_not_taken_for_ids(
    client: httpx.AsyncClient, new_delivery: NewDelivery, problem: Problem
) -> None:
    # Deliveries named like the sub-resources still have a public view.
    for name in ("owner", "status", "history"):
        assert (await put(client, new_delivery(name))).status_code == 201
        assert (await client.get(f"{BASE}/public/{name}")).json()["id"] == name
    problem(await client.get(f"{BASE}/summary"), 400, fields={"ownerId", "year", "month"})
    problem(await put(client, new_delivery("public")), 400, fields={"id"})
    problem(await client.get(f"{BASE}/public"), 400, fields={"id"})


async def test_unknown_routes_and_wrong_methods(
    client: httpx.AsyncClient, problem: Problem
) -> None:
    problem(await client.get("/api/nothing"), 404)
    problem(await client.get(f"{BASE}/d-1/unknown"), 404)
    not_allowed = problem(await client.post(f"{BASE}/d-1/status", json={}), 405)
    assert not_allowed["status"] == 405


# --- summary --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ("year=2025&month=1", {"ownerId"}),
        ("ownerId=&year=2025&month=1", {"ownerId"}),
        ("ownerId=o&month=1", {"year"}),
        ("ownerId=o&year=0&month=1", {"year"}),
        ("ownerId=o&year=2025&month=0", {"month"}),
        ("ownerId=o&year=2025&month=13", {"month"}),
        ("ownerId=o&year=twenty&month=1", {"year"}),
        ("ownerId=o&year=2025", {"month"}),
    ],
)
async def test_summary_rejects_bad_parameters(
    client: httpx.AsyncClient, problem: Problem, query: str, fields: set[str]
) -> None:
    problem(await client.get(f"{BASE}/summary?{query}"), 400, fields=fields)


async def test_summary_counts_this_months_creations(
    client: httpx.AsyncClient, new_delivery: NewDelivery
) -> None:
    for index in range(3):
        await put(client, new_delivery(f"s-{index}"))
    await put(client, new_delivery("s-0"))  # a replay is not a new delivery
    await put(client, new_delivery("s-9", owner={"userId": "someone-else", "accountId": "a"}))
    created = (await client.get(f"{BASE}/s-0")).json()["createdAt"]
    year, month = int(created[:4]), int(created[5:7])
    summary = await client.get(f"{BASE}/summary?ownerId=owner-1&year={year}&month={month}")
    assert summary.status_code == 200
    assert summary.json() == {"count": 3}
    other = await client.get(f"{BASE}/summary?ownerId=nobody&year={year}&month={month}")
    assert other.json() == {"count": 0}
