"""Route by route, the contract's "Delivery (Redis)" section, every error case included."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

JSON = dict[str, Any]
Problem = Callable[..., JSON]
NewDelivery = Callable[..., JSON]

BASE = "/api/deliveries"
CONFIRMATION: JSON = {
    "dateTime": "2025-05-08T20:30:00Z",
    "geoCoordinates": {"latitude": 47.70, "longitude": -122.20, "altitude": 3},
    "confirmationType": "Picture",
    "confirmationBlob": "aGVsbG8=",
}


async def put(
    client: httpx.AsyncClient, body: JSON, delivery_id: str | None = None
) -> httpx.Response:
    return await client.put(f"{BASE}/{delivery_id or body['id']}", json=body)


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


# --- PATCH ----------------------------------------------------------------------------------


async def test_patch_reschedules(client: httpx.AsyncClient, new_delivery: NewDelivery) -> None:
    await put(client, new_delivery("d-7"))
    place = {"latitude": 47.65, "longitude": -122.30, "altitude": 10}
    response = await client.patch(f"{BASE}/d-7", json={"dropoff": place, "deadline": "evening"})
    assert response.status_code == 204
    document = (await client.get(f"{BASE}/d-7")).json()
    assert document["stage"] == "Rescheduled"
    assert document["dropoff"] == place
    assert document["deadline"] == "evening"
    assert document["pickup"] == new_delivery("d-7")["pickup"]
    stages = [event["stage"] for event in (await client.get(f"{BASE}/d-7/history")).json()]
    assert stages == ["Created", "Rescheduled"]
    # The same reschedule again (a redelivered message) records nothing new.
    await client.patch(f"{BASE}/d-7", json={"dropoff": place, "deadline": "evening"})
    assert len((await client.get(f"{BASE}/d-7/history")).json()) == 2
    # A re-plan from the drone scheduler brings timing: the drone is on its way.
    timing = {"pickupETA": "2099-01-01T00:00:00Z", "deliveryETA": "2099-01-01T01:00:00Z"}
    assert (
        await client.patch(f"{BASE}/d-7", json=timing | {"droneId": "drone-9"})
    ).status_code == 204
    document = (await client.get(f"{BASE}/d-7")).json()
    assert (document["stage"], document["droneId"]) == ("HeadedToPickup", "drone-9")
    assert document["deliveryETA"] == "2099-01-01T01:00:00.000Z"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"body"}),
        ({"pickup": None, "deadline": None}, {"body"}),
        ({"pickup": {"latitude": 100, "longitude": 0}}, {"pickup.latitude"}),
        ({"deliveryETA": "2030-01-01T00:00:00Z"}, {"body"}),
        ({"droneId": ""}, {"droneId"}),
    ],
)
async def test_patch_rejects_invalid_bodies(
    client: httpx.AsyncClient,
    new_delivery: NewDelivery,
    problem: Problem,
    body: JSON,
    fields: set[str],
) -> None:
    await put(client, new_delivery("d-8"))
    problem(await client.patch(f"{BASE}/d-8", json=body), 400, fields=fields)


async def test_patch_conflicts_once_terminal_and_404_when_unknown(
    client: httpx.AsyncClient, new_delivery: NewDelivery, problem: Problem
) -> None:
    change = {"deadline": "later"}
    problem(await client.patch(f"{BASE}/ghost", json=change), 404)
    await put(client, new_delivery("d-9"))
    await client.delete(f"{BASE}/d-9")
    problem(await client.patch(f"{BASE}/d-9", json=change), 409)
    await put(client, new_delivery("d-10"))
    await client.post(f"{BASE}/d-10/confirmations", json=CONFIRMATION)
    problem(await client.patch(f"{BASE}/d-10", json=change), 409)


# --- DELETE ---------------------------------------------------------------------------------


async def test_delete_cancels_idempotently(
    client: httpx.AsyncClient, new_delivery: NewDelivery, problem: Problem
) -> None:
    problem(await client.delete(f"{BASE}/ghost"), 404)
    problem(await client.delete(f"{BASE}/bad%20id"), 400, fields={"id"})
    await put(client, new_delivery("d-11"))
    assert (await client.delete(f"{BASE}/d-11")).status_code == 204
    assert (await client.delete(f"{BASE}/d-11")).status_code == 204
    assert (await client.get(f"{BASE}/d-11/status")).json()["stage"] == "Cancelled"
    history = (await client.get(f"{BASE}/d-11/history")).json()
    assert [event["stage"] for event in history] == ["Created", "Cancelled"]
    problem(await client.post(f"{BASE}/d-11/confirmations", json=CONFIRMATION), 409)


async def test_delete_after_completion_is_409(
    client: httpx.AsyncClient, new_delivery: NewDelivery, problem: Problem
) -> None:
    await put(client, new_delivery("d-12"))
    assert (await client.post(f"{BASE}/d-12/confirmations", json=CONFIRMATION)).status_code == 204
    problem(await client.delete(f"{BASE}/d-12"), 409)


# --- notify-me requests ---------------------------------------------------------------------


async def test_notify_me_requests_are_stored_once(
    client: httpx.AsyncClient, new_delivery: NewDelivery
) -> None:
    await put(client, new_delivery("d-13"))
    url = f"{BASE}/d-13/notifymerequests"
    assert (await client.post(url, json={"emailAddress": "Ann@Example.COM"})).status_code == 204
    assert (await client.post(url, json={"emailAddress": "Ann@example.com"})).status_code == 204
    assert (await client.post(url, json={"sms": "+1 (425) 555-0100"})).status_code == 204
    stored = (await client.get(f"{BASE}/d-13")).json()["notifyMeRequests"]
    assert stored == [
        {"emailAddress": "Ann@example.com", "sms": None, "webhookUrl": None},
        {"emailAddress": None, "sms": "+14255550100", "webhookUrl": None},
    ]
    # Not a stage change: the history is untouched.
    assert len((await client.get(f"{BASE}/d-13/history")).json()) == 1


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("用户@例子.广告", "用户@例子.广告"),  # RFC 6531: Unicode local part and domain
        ("josé@example.com", "josé@example.com"),
        ("JOSÉ@EXAMPLE.COM", "JOSÉ@example.com"),  # the domain is lower-cased, not the local part
        ("ann@xn--fsqu00a.xn--55qx5d", "ann@例子.公司"),  # an IDNA domain, in its Unicode form
        ("Ann.O'Neil+drones@Example.COM", "Ann.O'Neil+drones@example.com"),
        ("  ann@example.com ", "ann@example.com"),
        ("Ann <ann@example.com>", "ann@example.com"),
        # No DNS lookup: a domain without mail servers (or without network) is accepted.
        ("ann@no-mx.example.com", "ann@no-mx.example.com"),
    ],
)
async def test_notify_me_accepts_internationalised_addresses(
    client: httpx.AsyncClient, new_delivery: NewDelivery, sent: str, stored: str
) -> None:
    await put(client, new_delivery("d-16"))
    url = f"{BASE}/d-16/notifymerequests"
    response = await client.post(url, json={"emailAddress": sent})
    assert response.status_code == 204, response.text
    requests = (await client.get(f"{BASE}/d-16")).json()["notifyMeRequests"]
    assert requests == [{"emailAddress": stored, "sms": None, "webhookUrl": None}]


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"body"}),
        ({"emailAddress": None, "sms": None}, {"body"}),
        ({"emailAddress": "not-an-address"}, {"emailAddress"}),
        ({"emailAddress": "a@b"}, {"emailAddress"}),
        ({"emailAddress": "a..b@example.com"}, {"emailAddress"}),
        ({"emailAddress": "@example.com"}, {"emailAddress"}),
        ({"emailAddress": "ann@"}, {"emailAddress"}),
        ({"emailAddress": "ann@localhost"}, {"emailAddress"}),
        ({"emailAddress": "ann@[127.0.0.1]"}, {"emailAddress"}),
        ({"emailAddress": "ann@-example.com"}, {"emailAddress"}),
        ({"emailAddress": "ann@exa_mple.com"}, {"emailAddress"}),
        ({"emailAddress": "ann@example.invalid"}, {"emailAddress"}),
        ({"emailAddress": '"ann smith"@example.com'}, {"emailAddress"}),
        ({"emailAddress": "ann@example.com\r\nBcc: eve@example.com"}, {"emailAddress"}),
        ({"emailAddress": "a@" + "b" * 250 + ".com"}, {"emailAddress"}),
        ({"emailAddress": 42}, {"emailAddress"}),
        ({"sms": "12345"}, {"sms"}),
        ({"sms": "+1 425 CALL ME"}, {"sms"}),
        ({"emailAddress": "a@example.com", "sms": "0"}, {"sms"}),
        ({"webhookUrl": "http://hooks.example.com/x"}, {"webhookUrl"}),  # https only
        ({"webhookUrl": "ftp://hooks.example.com/x"}, {"webhookUrl"}),
        ({"webhookUrl": "https://user:pw@hooks.example.com/x"}, {"webhookUrl"}),
        ({"webhookUrl": "https://hooks.example.com/x#frag"}, {"webhookUrl"}),
        ({"webhookUrl": "/relative"}, {"webhookUrl"}),
        ({"webhookUrl": "https://hooks.example.com/" + "x" * 2048}, {"webhookUrl"}),
        ({"webhookUrl": "https://hooks.example.com:99999/x"}, {"webhookUrl"}),
    ],
)
async def test_notify_me_requests_are_validated(
    client: httpx.AsyncClient,
    new_delivery: NewDelivery,
    problem: Problem,
    body: JSON,
    fields: set[str],
) -> None:
    await put(client, new_delivery("d-14"))
    problem(await client.post(f"{BASE}/d-14/notifymerequests", json=body), 400, fields=fields)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/drone?account=acme",
        "https://[2001:db8::1]:8443/hooks",
        "http://127.0.0.1:9000/hooks",  # development: plain http to loopback
        "http://localhost/hooks",
    ],
)
async def test_notify_me_accepts_webhook_urls(
    client: httpx.AsyncClient, new_delivery: NewDelivery, url: str
) -> None:
    await put(client, new_delivery("d-17"))
    response = await client.post(f"{BASE}/d-17/notifymerequests", json={"webhookUrl": url})
    assert response.status_code == 204, response.text
    requests = (await client.get(f"{BASE}/d-17")).json()["notifyMeRequests"]
    assert requests == [{"emailAddress": None, "sms": None, "webhookUrl": url}]


async def test_the_creating_put_can_carry_notify_me_requests(
    client: httpx.AsyncClient, new_delivery: NewDelivery, problem: Problem
) -> None:
    ann = {"emailAddress": "ann@example.com"}
    body = new_delivery("d-18", notifyMeRequests=[ann, {"sms": "+14255550100"}, ann])
    await put(client, body)
    requests = (await client.get(f"{BASE}/d-18")).json()["notifyMeRequests"]
    assert requests == [  # each one once
        {"emailAddress": "ann@example.com", "sms": None, "webhookUrl": None},
        {"emailAddress": None, "sms": "+14255550100", "webhookUrl": None},
    ]
    assert (await client.put(f"{BASE}/d-18", json=body)).status_code == 204  # a replay
    bad = new_delivery("d-19", notifyMeRequests=[{"sms": "12"}])
    problem(await client.put(f"{BASE}/d-19", json=bad), 400, fields={"notifyMeRequests[0].sms"})


async def test_notify_me_requests_404_and_cap(
    make_app: Callable[..., Any], new_delivery: NewDelivery, problem: Problem
) -> None:
    from dronetesting.apps import app_client

    async with app_client(make_app(max_notify_requests=2)) as client:
        url = f"{BASE}/d-15/notifymerequests"
        problem(await client.post(url, json={"sms": "+14255550100"}), 404)
        await put(client, new_delivery("d-15"))
        for number in ("+14255550100", "+14255550101"):
            assert (await client.post(url, json={"sms": number})).status_code == 204
        problem(await client.post(url, json={"sms": "+14255550102"}), 409)
        assert (await client.post(url, json={"sms": "+14255550101"})).status_code == 204


# --- confirmations --------------------------------------------------------------------------


async def test_confirmation_completes_and_is_idempotent(
    client: httpx.AsyncClient, new_delivery: NewDelivery, problem: Problem
) -> None:
    await put(client, new_delivery("d-16"))
    url = f"{BASE}/d-16/confirmations"
    assert (await client.post(url, json=CONFIRMATION)).status_code == 204
    assert (
        await client.post(url, json=CONFIRMATION | {"confirmationType": "picture"})
    ).status_code == 204
    problem(await client.post(url, json=CONFIRMATION | {"confirmationBlob": "other"}), 409)
    document = (await client.get(f"{BASE}/d-16")).json()
    assert document["stage"] == "Completed"
    assert document["confirmation"]["dateTime"] == "2025-05-08T20:30:00.000Z"
    status = (await client.get(f"{BASE}/d-16/status")).json()
    assert status == {
        "stage": "Completed",
        "lastKnownLocation": CONFIRMATION["geoCoordinates"] | {"altitude": 3.0},
        "pickupETA": "2025-05-08T20:30:00.000Z",
        "deliveryETA": "2025-05-08T20:30:00.000Z",
        "telemetry": "none",  # no drone reported (the live fields: test_live.py)
        "drone": None,
    }
    stages = [event["stage"] for event in (await client.get(f"{BASE}/d-16/history")).json()]
    assert stages == ["Created", "Completed"]


async def test_confirmation_must_be_of_the_required_type(
    client: httpx.AsyncClient, new_delivery: NewDelivery, problem: Problem
) -> None:
    await put(client, new_delivery("d-17", confirmationRequired="FingerPrint"))
    url = f"{BASE}/d-17/confirmations"
    body = problem(await client.post(url, json=CONFIRMATION), 409)
    assert "FingerPrint" in body["detail"]
    fingerprint = CONFIRMATION | {"confirmationType": "fingerprint"}
    assert (await client.post(url, json=fingerprint)).status_code == 204


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"dateTime": "yesterday"}, {"dateTime"}),
        ({"geoCoordinates": {"latitude": -91, "longitude": 0}}, {"geoCoordinates.latitude"}),
        ({"confirmationType": "Selfie"}, {"confirmationType"}),
        ({"confirmationType": None}, {"confirmationType"}),
    ],
)
async def test_confirmations_are_validated(
    client: httpx.AsyncClient,
    new_delivery: NewDelivery,
    problem: Problem,
    changes: JSON,
    fields: set[str],
) -> None:
    await put(client, new_delivery("d-18"))
    url = f"{BASE}/d-18/confirmations"
    problem(await client.post(url, json=CONFIRMATION | changes), 400, fields=fields)
    problem(await client.post(f"{BASE}/ghost/confirmations", json=CONFIRMATION), 404)


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
