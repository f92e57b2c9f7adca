"""Route by route, the contract's "Delivery (Redis)" section, every error case included: the
changes (PATCH, DELETE, notify-me requests, confirmations; creation and reads:
``test_contract.py``)."""

from __future__ import annotations

import httpx
import pytest

from .conftest import BASE, CONFIRMATION, JSON, AppFactory, NewDelivery, Problem, put

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
    make_app: AppFactory, new_delivery: NewDelivery, problem: Problem
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
