"""Who may follow a tracking stream, with real tokens, over a real socket.

The owner's stream (``/{id}/tracking``) is an owner route like the status: the owner, an
operator, or a service reading deliveries; anyone else finds no such delivery (404 before any
stream starts, as for an unknown id); no token is 401. The public stream needs no token and
names no drone.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from httpx_sse import aconnect_sse

from dronetesting.apps import running_server
from dronetesting.tokens import LocalIssuer

JSON = dict[str, Any]
BASE = "/api/deliveries"
ID = "d-stream-1"
OWNER = {"userId": "alice", "accountId": "contoso"}
EDGE = {"Dronedelivery-Edge": "public"}  # what the gateways set on what they forward


@pytest.fixture
async def client(
    make_app: Callable[..., Any], dev_issuer: LocalIssuer, new_delivery: Callable[..., JSON]
) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_server(make_app(auth=dev_issuer.settings)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as http,
    ):
        created = await http.put(
            f"{BASE}/{ID}",
            json=new_delivery(ID, owner=OWNER),
            headers=dev_issuer.service("Deliveries.Write", caller="workflow"),
        )
        assert created.status_code == 201, created.text
        yield http


async def first_status(client: httpx.AsyncClient, path: str, headers: dict[str, str]) -> JSON:
    """The stream's first event (``status``), the stream then closed by the client."""
    async with aconnect_sse(client, "GET", BASE + path, headers=headers) as source:
        assert source.response.status_code == 200
        event = await anext(source.aiter_sse())
    assert event.event == "status"
    status: JSON = json.loads(event.data)
    return status


async def test_the_owner_an_operator_and_the_reading_services_follow_the_owner_s_stream(
    client: httpx.AsyncClient, dev_issuer: LocalIssuer
) -> None:
    readers = {
        "owner": dev_issuer.customer("contoso", "alice"),
        "operator": dev_issuer.customer("fabrikam", "ops", roles=("Operator",)),
        "workflow": dev_issuer.service("Deliveries.Write", caller="workflow"),
        "notifier": dev_issuer.service("Deliveries.Read", caller="notifier"),
        "owner through the gateway": dev_issuer.customer("contoso", "alice") | EDGE,
    }
    expected = (await client.get(f"{BASE}/{ID}/status", headers=readers["owner"])).json()
    for who, headers in readers.items():
        status = await first_status(client, f"/{ID}/tracking", headers)
        assert status["stage"] == expected["stage"], who
        assert status["pickupETA"] == expected["pickupETA"], who


@pytest.mark.parametrize(
    ("account", "user"),
    [("fabrikam", "alice"), ("contoso", "bob")],
    ids=["same user, another account", "another user, same account"],
)
async def test_anyone_else_finds_no_such_delivery_before_any_stream(
    client: httpx.AsyncClient,
    dev_issuer: LocalIssuer,
    problem: Callable[..., JSON],
    account: str,
    user: str,
) -> None:
    stranger = dev_issuer.customer(account, user)
    body = problem(await client.get(f"{BASE}/{ID}/tracking", headers=stranger), 404)
    assert body["type"].endswith("delivery-not-found")
    unknown = problem(await client.get(f"{BASE}/d-nope/tracking", headers=stranger), 404)
    assert body["detail"].replace(ID, "") == unknown["detail"].replace("d-nope", "")


async def test_no_token_or_a_service_without_the_role_is_refused(
    client: httpx.AsyncClient, dev_issuer: LocalIssuer, problem: Callable[..., JSON]
) -> None:
    problem(await client.get(f"{BASE}/{ID}/tracking"), 401)
    problem(await client.get(f"{BASE}/{ID}/tracking", headers=EDGE), 401)
    drone = dev_issuer.service("Deliveries.Confirm", caller="simulator")
    problem(await client.get(f"{BASE}/{ID}/tracking", headers=drone), 403)


async def test_the_public_stream_is_open_to_anyone_and_names_no_one(
    client: httpx.AsyncClient, dev_issuer: LocalIssuer
) -> None:
    for headers in ({}, EDGE, dev_issuer.customer("fabrikam", "mallory")):
        status = await first_status(client, f"/public/{ID}/tracking", headers)
        assert status["stage"] == "Created"
        text = json.dumps(status)
        for personal in ("alice", "contoso", "drone-7", "droneId"):
            assert personal not in text, (headers, personal)
