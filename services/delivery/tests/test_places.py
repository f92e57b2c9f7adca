"""The places as the customer named them (``pickupPlace``, ``dropoffPlace``): kept with the
delivery, shown to its owner, changed by a reschedule, never in the public view."""

from __future__ import annotations

import httpx
import pytest

from .conftest import BASE, NewDelivery, Problem, put

NAMED = {"pickupPlace": "Pike Place Market", "dropoffPlace": "12 Elm St, apt 4"}
SOMEWHERE = {"latitude": 47.65, "longitude": -122.30, "altitude": 0}


async def test_the_owner_sees_the_names_and_the_public_view_does_not(
    client: httpx.AsyncClient, new_delivery: NewDelivery
) -> None:
    assert (await put(client, new_delivery("p-1", **NAMED))).status_code == 201
    full = (await client.get(f"{BASE}/p-1")).json()
    assert {name: full[name] for name in NAMED} == NAMED
    listed = (await client.get(f"{BASE}?ownerId=owner-1")).json()["items"]
    assert [(item["id"], item["dropoffPlace"]) for item in listed] == [("p-1", "12 Elm St, apt 4")]
    public = (await client.get(f"{BASE}/public/p-1")).text
    for private in ("Elm St", "Pike Place", "pickupPlace", "dropoffPlace"):
        assert private not in public, private


async def test_replays_compare_the_names(
    client: httpx.AsyncClient, new_delivery: NewDelivery, problem: Problem
) -> None:
    assert (await put(client, new_delivery("p-2", **NAMED))).status_code == 201
    assert (await put(client, new_delivery("p-2", **NAMED))).status_code == 204
    other = new_delivery("p-2", **(NAMED | {"dropoffPlace": "somewhere else"}))
    problem(await put(client, other), 409)
    # A delivery created without names replays as it always did (null is no name).
    assert (await put(client, new_delivery("p-3"))).status_code == 201
    unnamed = new_delivery("p-3", pickupPlace=None, dropoffPlace=None)
    assert (await put(client, unnamed)).status_code == 204
    document = (await client.get(f"{BASE}/p-3")).json()
    assert (document["pickupPlace"], document["dropoffPlace"]) == (None, None)


async def test_a_reschedule_renames_or_forgets_the_place_it_moves(
    client: httpx.AsyncClient, new_delivery: NewDelivery
) -> None:
    await put(client, new_delivery("p-4", **NAMED))
    moved = {"dropoff": SOMEWHERE, "dropoffPlace": "The office"}
    assert (await client.patch(f"{BASE}/p-4", json=moved)).status_code == 204
    document = (await client.get(f"{BASE}/p-4")).json()
    assert (document["dropoff"], document["dropoffPlace"]) == (SOMEWHERE, "The office")
    assert document["pickupPlace"] == "Pike Place Market"  # not moved, still named
    # The same reschedule again records nothing new.
    before = len((await client.get(f"{BASE}/p-4/history")).json())
    assert (await client.patch(f"{BASE}/p-4", json=moved)).status_code == 204
    assert len((await client.get(f"{BASE}/p-4/history")).json()) == before
    # Moved to coordinates (no name): the old name no longer names it.
    pickup = {"latitude": 47.61, "longitude": -122.31, "altitude": 0}
    assert (await client.patch(f"{BASE}/p-4", json={"pickup": pickup})).status_code == 204
    document = (await client.get(f"{BASE}/p-4")).json()
    assert (document["pickup"], document["pickupPlace"]) == (pickup, None)
    assert document["dropoffPlace"] == "The office"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"dropoffPlace": "The office"}, {"body"}),
        ({"pickupPlace": "Home", "deadline": "soon"}, {"body"}),
        ({"dropoff": SOMEWHERE, "dropoffPlace": ""}, {"dropoffPlace"}),
        ({"dropoff": SOMEWHERE, "dropoffPlace": "x" * 1025}, {"dropoffPlace"}),
    ],
    ids=["a name without its place", "a pickup name without the pickup", "empty", "too long"],
)
async def test_a_name_goes_with_its_place(
    client: httpx.AsyncClient,
    new_delivery: NewDelivery,
    problem: Problem,
    body: dict[str, object],
    fields: set[str],
) -> None:
    await put(client, new_delivery("p-5", **NAMED))
    problem(await client.patch(f"{BASE}/p-5", json=body), 400, fields=fields)
    assert (await client.get(f"{BASE}/p-5")).json()["dropoffPlace"] == "12 Elm St, apt 4"


async def test_a_creating_put_refuses_an_empty_name(
    client: httpx.AsyncClient, new_delivery: NewDelivery, problem: Problem
) -> None:
    problem(await put(client, new_delivery("p-6", dropoffPlace="")), 400, fields={"dropoffPlace"})
