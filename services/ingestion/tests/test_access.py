"""With tokens on: the owner comes from the token, and only the owner (or an operator) may
reschedule or cancel; everyone else finds no such delivery."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from dronetesting.apps import app_client
from dronetesting.problems import assert_problem
from dronetesting.samples import SAMPLE_REQUEST
from dronetesting.tokens import LocalIssuer
from ingestion.main import create_app

from .conftest import make_settings, queued

URL = "/api/deliveryrequests"
WITHOUT_OWNER = {key: value for key, value in SAMPLE_REQUEST.items() if key != "ownerId"}


@pytest.fixture
async def client(redis_url: str, dev_issuer: LocalIssuer) -> AsyncIterator[httpx.AsyncClient]:
    settings = make_settings(redis_url, auth=dev_issuer.settings)
    async with app_client(create_app(settings, configure_logs=False)) as http:
        yield http


async def test_no_token_is_401_and_nothing_is_queued(
    client: httpx.AsyncClient, redis_url: str
) -> None:
    for response in (
        await client.post(URL, json=SAMPLE_REQUEST),
        await client.delete(f"{URL}/{uuid.uuid4()}"),
        await client.patch(f"{URL}/{uuid.uuid4()}", json={"deadline": "x"}),
        await client.post(URL, json=SAMPLE_REQUEST, headers={"Authorization": "Bearer nonsense"}),
    ):
        assert_problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert await queued(redis_url) == []
    # Health stays public.
    assert (await client.get("/healthz")).status_code == 200
    assert (await client.get("/readyz")).status_code == 200


async def test_the_owner_is_the_token_s_user_and_account(
    client: httpx.AsyncClient, redis_url: str, dev_issuer: LocalIssuer
) -> None:
    alice = dev_issuer.customer("contoso", "alice")
    response = await client.post(URL, json=WITHOUT_OWNER, headers=alice)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["ownerId"] == "alice"
    assert body["owner"] == {"userId": "alice", "accountId": "contoso"}
    same = await client.post(URL, json={**SAMPLE_REQUEST, "ownerId": "alice"}, headers=alice)
    assert same.status_code == 202
    messages = await queued(redis_url)
    assert [m.body["owner"] for m in messages] == [{"userId": "alice", "accountId": "contoso"}] * 2


async def test_an_ownerid_that_is_not_the_caller_is_403(
    client: httpx.AsyncClient, redis_url: str, dev_issuer: LocalIssuer
) -> None:
    alice = dev_issuer.customer("contoso", "alice")
    response = await client.post(URL, json={**SAMPLE_REQUEST, "ownerId": "bob"}, headers=alice)
    body = assert_problem(response, 403)
    assert body["type"] == "urn:dronedelivery:problem:owner-mismatch"
    assert "'bob'" in body["detail"]
    assert [error["field"] for error in body["errors"]] == ["ownerId"]
    # An operator schedules for itself too.
    operator = dev_issuer.customer("contoso", "ops", roles=("Operator",))
    assert_problem(await client.post(URL, json=SAMPLE_REQUEST, headers=operator), 403)
    assert await queued(redis_url) == []


async def test_the_sample_request_fits_the_default_development_customer(
    client: httpx.AsyncClient, dev_issuer: LocalIssuer
) -> None:
    # `make token` names account contoso and user myowner: the sample's ownerId.
    response = await client.post(URL, json=SAMPLE_REQUEST, headers=dev_issuer.customer())
    assert response.status_code == 202, response.text
    assert response.json()["owner"] == {"userId": "myowner", "accountId": "contoso"}


async def test_service_tokens_are_403(
    client: httpx.AsyncClient, redis_url: str, dev_issuer: LocalIssuer
) -> None:
    service = dev_issuer.service("Deliveries.Write", caller="workflow")
    assert_problem(await client.post(URL, json=SAMPLE_REQUEST, headers=service), 403)
    assert await queued(redis_url) == []


async def test_only_the_owner_or_an_operator_reschedules_or_cancels(
    client: httpx.AsyncClient, redis_url: str, dev_issuer: LocalIssuer
) -> None:
    alice = dev_issuer.customer("contoso", "alice")
    accepted = await client.post(URL, json=WITHOUT_OWNER, headers=alice)
    delivery_id = accepted.json()["deliveryId"]
    item = f"{URL}/{delivery_id}"

    for stranger in (
        dev_issuer.customer("fabrikam", "alice"),  # the same user name in another account
        dev_issuer.customer("contoso", "bob"),  # another user of the same account
    ):
        for response in (
            await client.patch(item, json={"deadline": "x"}, headers=stranger),
            await client.delete(item, headers=stranger),
        ):
            body = assert_problem(response, 404)
            assert body["type"] == "urn:dronedelivery:problem:delivery-not-found"
    unknown = await client.delete(f"{URL}/{uuid.uuid4()}", headers=alice)
    assert unknown.status_code == 404
    assert len(await queued(redis_url)) == 1  # only the POST

    assert (await client.patch(item, json={"deadline": "x"}, headers=alice)).status_code == 202
    operator = dev_issuer.customer("fabrikam", "ops", roles=("Operator",))
    assert (await client.delete(item, headers=operator)).status_code == 202
    assert [m.properties["operation"] for m in await queued(redis_url)] == [
        "delivery",
        "reschedule",
        "cancel",
    ]


async def test_idempotency_keys_belong_to_their_customer(
    client: httpx.AsyncClient, redis_url: str, dev_issuer: LocalIssuer
) -> None:
    # Both sign in through the same client application (one azp): keys still never meet.
    key = {"Idempotency-Key": "shared-key"}
    alice = dev_issuer.customer("contoso", "alice") | key
    bob = dev_issuer.customer("contoso", "bob") | key
    first = await client.post(URL, json=WITHOUT_OWNER, headers=alice)
    other = await client.post(URL, json=WITHOUT_OWNER, headers=bob)
    replay = await client.post(URL, json=WITHOUT_OWNER, headers=alice)
    assert first.status_code == other.status_code == replay.status_code == 202
    assert replay.content == first.content
    assert other.json()["owner"]["userId"] == "bob"
    assert len(await queued(redis_url)) == 2


async def test_idempotency_keys_are_the_user_s_within_the_client_app(
    client: httpx.AsyncClient, redis_url: str, dev_issuer: LocalIssuer
) -> None:
    # One user through two client applications (the web app and an account's own client), and
    # a namesake in another account: the same key is a request of each; in one app, a retry.
    key = {"Idempotency-Key": "order-1"}
    web = dev_issuer.customer("contoso", "alice", client="web-app") | key
    own_client = dev_issuer.customer("contoso", "alice", client="contoso-orders") | key
    namesake = dev_issuer.customer("fabrikam", "alice", client="web-app") | key
    first = await client.post(URL, json=WITHOUT_OWNER, headers=web)
    other_app = await client.post(URL, json=WITHOUT_OWNER, headers=own_client)
    other_account = await client.post(URL, json=WITHOUT_OWNER, headers=namesake)
    replay = await client.post(URL, json=WITHOUT_OWNER, headers=web)
    assert {r.status_code for r in (first, other_app, other_account, replay)} == {202}
    assert replay.content == first.content
    assert len({r.json()["deliveryId"] for r in (first, other_app, other_account)}) == 3
    assert len(await queued(redis_url)) == 3
    # A reschedule's key is its user's too: the owner's retry is a replay.
    item = f"{URL}/{first.json()['deliveryId']}"
    move = {"dropOffLocation": "47.62,-122.34"}
    moved = await client.patch(item, json=move, headers=web | {"Idempotency-Key": "move-1"})
    again = await client.patch(item, json=move, headers=web | {"Idempotency-Key": "move-1"})
    assert moved.status_code == again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert len(await queued(redis_url)) == 4
