"""Who may call what, with real tokens: services by app role, customers for their own deliveries,
operators for all, the public view for anyone and without personal data."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from dronetesting.apps import app_client
from dronetesting.tokens import LocalIssuer

JSON = dict[str, Any]
BASE = "/api/deliveries"
ID = "d-access-1"
OWNER = {"userId": "alice", "accountId": "contoso"}


@pytest.fixture
async def client(
    make_app: Callable[..., Any], dev_issuer: LocalIssuer, new_delivery: Callable[..., JSON]
) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(make_app(auth=dev_issuer.settings)) as http:
        created = await http.put(
            f"{BASE}/{ID}",
            json=new_delivery(ID, owner=OWNER),
            headers=dev_issuer.service("Deliveries.Write", caller="workflow"),
        )
        assert created.status_code == 201, created.text
        yield http


OWNER_READS = (f"/{ID}", f"/{ID}/owner", f"/{ID}/status", f"/{ID}/history")


async def test_the_owner_reads_its_delivery(
    client: httpx.AsyncClient, dev_issuer: LocalIssuer
) -> None:
    alice = dev_issuer.customer("contoso", "alice")
    for path in OWNER_READS:
        assert (await client.get(BASE + path, headers=alice)).status_code == 200, path
    assert (await client.get(f"{BASE}/{ID}/owner", headers=alice)).json() == OWNER
    summary = await client.get(
        f"{BASE}/summary", params={"ownerId": "alice", "year": 2020, "month": 1}, headers=alice
    )
    assert summary.status_code == 200
    notify = await client.post(
        f"{BASE}/{ID}/notifymerequests", json={"emailAddress": "a@example.com"}, headers=alice
    )
    assert notify.status_code == 204


@pytest.mark.parametrize(
    ("account", "user"),
    [("fabrikam", "alice"), ("contoso", "bob")],
    ids=["same user, another account", "another user, same account"],
)
async def test_anyone_else_finds_no_such_delivery(
    client: httpx.AsyncClient,
    dev_issuer: LocalIssuer,
    problem: Callable[..., JSON],
    account: str,
    user: str,
) -> None:
    stranger = dev_issuer.customer(account, user)
    for path in OWNER_READS:
        body = problem(await client.get(BASE + path, headers=stranger), 404)
        assert body["type"].endswith("delivery-not-found"), path
        # Exactly what an unknown delivery answers: existence is not revealed.
        unknown = problem(
            await client.get(BASE + path.replace(ID, "d-nope"), headers=stranger), 404
        )
        assert body["detail"].replace(ID, "") == unknown["detail"].replace("d-nope", "")
    notify = await client.post(
        f"{BASE}/{ID}/notifymerequests", json={"emailAddress": "x@example.com"}, headers=stranger
    )
    problem(notify, 404)
    # Summaries are per user (an Entra object id names one user of one account): another
    # user's is not found.
    other = await client.get(
        f"{BASE}/summary", params={"ownerId": "carol", "year": 2020, "month": 1}, headers=stranger
    )
    problem(other, 404)
    # The stranger's notify-me request was not stored.
    full = await client.get(f"{BASE}/{ID}", headers=dev_issuer.customer("contoso", "alice"))
    assert full.json()["notifyMeRequests"] == []


async def test_an_operator_reads_every_delivery(
    client: httpx.AsyncClient, dev_issuer: LocalIssuer
) -> None:
    operator = dev_issuer.customer("fabrikam", "ops", roles=("Operator",))
    for path in OWNER_READS:
        assert (await client.get(BASE + path, headers=operator)).status_code == 200, path
    summary = await client.get(
        f"{BASE}/summary", params={"ownerId": "alice", "year": 2020, "month": 1}, headers=operator
    )
    assert summary.status_code == 200


async def test_customers_cannot_write_or_confirm(
    client: httpx.AsyncClient,
    dev_issuer: LocalIssuer,
    new_delivery: Callable[..., JSON],
    problem: Callable[..., JSON],
) -> None:
    for headers in (
        dev_issuer.customer("contoso", "alice"),
        dev_issuer.customer("fabrikam", "ops", roles=("Operator",)),
    ):
        problem(await client.put(f"{BASE}/d-2", json=new_delivery("d-2"), headers=headers), 403)
        problem(await client.patch(f"{BASE}/{ID}", json={"deadline": "x"}, headers=headers), 403)
        problem(await client.delete(f"{BASE}/{ID}", headers=headers), 403)
        confirmation = {
            "dateTime": "2025-01-01T00:00:00Z",
            "geoCoordinates": {"latitude": 47.6, "longitude": -122.3, "altitude": 0},
            "confirmationType": "None",
        }
        response = await client.post(
            f"{BASE}/{ID}/confirmations", json=confirmation, headers=headers
        )
        problem(response, 403)


async def test_services_hold_the_role_of_what_they_do(
    client: httpx.AsyncClient, dev_issuer: LocalIssuer, problem: Callable[..., JSON]
) -> None:
    drone = dev_issuer.service("Deliveries.Confirm", caller="simulator")
    writer = dev_issuer.service("Deliveries.Write", caller="workflow")
    # The simulator confirms; it cannot reschedule, cancel or read owners.
    problem(await client.patch(f"{BASE}/{ID}", json={"deadline": "x"}, headers=drone), 403)
    problem(await client.get(f"{BASE}/{ID}/owner", headers=drone), 403)
    confirmation = {
        "dateTime": "2025-01-01T00:00:00Z",
        "geoCoordinates": {"latitude": 47.6, "longitude": -122.3, "altitude": 0},
        "confirmationType": "None",
    }
    problem(await client.post(f"{BASE}/{ID}/confirmations", json=confirmation, headers=writer), 403)
    done = await client.post(f"{BASE}/{ID}/confirmations", json=confirmation, headers=drone)
    assert done.status_code == 204
    # The workflow reads what it wrote.
    assert (await client.get(f"{BASE}/{ID}", headers=writer)).json()["stage"] == "Completed"
    problem(await client.get(f"{BASE}/{ID}", headers=dev_issuer.service()), 403)


async def test_the_notifiers_read_role_reads_and_changes_nothing(
    client: httpx.AsyncClient, dev_issuer: LocalIssuer, problem: Callable[..., JSON]
) -> None:
    reader = dev_issuer.service("Deliveries.Read", caller="notifier")
    # The delivery with its notify-me requests, its status and history: read.
    read = await client.get(f"{BASE}/{ID}", headers=reader)
    assert read.status_code == 200, read.text
    assert "notifyMeRequests" in read.json()
    assert (await client.get(f"{BASE}/{ID}/status", headers=reader)).status_code == 200
    assert (await client.get(f"{BASE}/{ID}/history", headers=reader)).status_code == 200
    # Nothing else: no owner lookup, no summaries, no notify-me requests, no writes.
    problem(await client.get(f"{BASE}/{ID}/owner", headers=reader), 403)
    summary = f"{BASE}/summary?ownerId=myowner&year=2025&month=1"
    problem(await client.get(summary, headers=reader), 403)
    notify = {"emailAddress": "ann@example.com"}
    problem(await client.post(f"{BASE}/{ID}/notifymerequests", json=notify, headers=reader), 403)
    problem(await client.patch(f"{BASE}/{ID}", json={"deadline": "x"}, headers=reader), 403)
    problem(await client.delete(f"{BASE}/{ID}", headers=reader), 403)


async def test_no_token_is_401_but_the_public_view_is_open_and_anonymous(
    client: httpx.AsyncClient, problem: Callable[..., JSON]
) -> None:
    for path in (*OWNER_READS, "/summary?ownerId=alice&year=2020&month=1"):
        problem(await client.get(BASE + path), 401)
    public = await client.get(f"{BASE}/public/{ID}")
    assert public.status_code == 200
    body = public.json()
    assert body["id"] == ID
    for personal in ("owner", "notifyMeRequests", "confirmation"):
        assert personal not in body
    assert "alice" not in public.text
    assert "contoso" not in public.text
    history = await client.get(f"{BASE}/public/{ID}/history")
    assert history.status_code == 200
    assert [entry["stage"] for entry in history.json()] == ["Created"]
    assert "location" not in history.text
    problem(await client.get(f"{BASE}/public/no-such-delivery/history"), 404)


async def test_through_the_public_gateway_internal_routes_do_not_exist(
    client: httpx.AsyncClient,
    dev_issuer: LocalIssuer,
    new_delivery: Callable[..., JSON],
    problem: Callable[..., JSON],
) -> None:
    edge = {"Dronedelivery-Edge": "public"}  # what the gateways set on what they forward
    owner = dev_issuer.customer("contoso", "alice") | edge
    writer = dev_issuer.service("Deliveries.Write", caller="workflow") | edge
    confirmation = {
        "dateTime": "2025-01-01T00:00:00Z",
        "geoCoordinates": {"latitude": 47.6, "longitude": -122.3, "altitude": 0},
        "confirmationType": "None",
    }
    for headers in (edge, owner, writer):
        hidden = [
            await client.get(f"{BASE}/{ID}/owner", headers=headers),
            await client.put(f"{BASE}/d-9", json=new_delivery("d-9"), headers=headers),
            await client.patch(f"{BASE}/{ID}", json={"deadline": "x"}, headers=headers),
            await client.delete(f"{BASE}/{ID}", headers=headers),
            await client.post(f"{BASE}/{ID}/confirmations", json=confirmation, headers=headers),
        ]
        for response in hidden:
            assert problem(response, 404)["detail"] == "No such route."
    # What the gateway exposes still answers through it.
    for path in (f"/{ID}", f"/{ID}/status", f"/{ID}/history"):
        assert (await client.get(BASE + path, headers=owner)).status_code == 200
    assert (await client.get(f"{BASE}/public/{ID}", headers=edge)).status_code == 200
    # Inside the cluster (no marker) the same calls work.
    plain = dev_issuer.service("Deliveries.Write", caller="workflow")
    assert (await client.get(f"{BASE}/{ID}/owner", headers=plain)).status_code == 200
