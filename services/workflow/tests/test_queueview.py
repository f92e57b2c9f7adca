"""``GET /api/queue``: the queue as operators see it (depth, in hand, dead letters, total added)."""

from __future__ import annotations

import uuid

from dronecommon.edge import EDGE_HEADER
from dronetesting.problems import assert_problem
from dronetesting.tokens import LocalIssuer

from .conftest import (
    FakeBackends,
    Harness,
    delivery_body,
    message,
    run_workflow,
    wait_until,
    workflow_settings,
)
from .test_deadletters import poison


async def test_the_queue_view_counts_what_was_added_and_what_died(
    workflow: Harness, fake: FakeBackends
) -> None:
    empty = await workflow.client.get("/api/queue")
    assert empty.status_code == 200
    before = empty.json()
    assert before["transport"] == "redis"
    assert before["queue"] == "deliveryrequests"
    assert before["depth"] == 0
    assert before["deadLetters"] == 0
    assert before["deadLetterList"] == []

    ids = await poison(workflow, fake)  # two refused deliveries and one malformed message
    fake.max_weight = 100
    await workflow.send(message("delivery", delivery_body(str(uuid.uuid4()))))
    await workflow.drained()
    view = (await workflow.client.get("/api/queue", params={"limit": 2})).json()
    assert view["depth"] == 0
    assert view["pending"] == 0
    assert view["deadLetters"] == 3
    assert view["enqueuedTotal"] >= before["enqueuedTotal"] + 4
    assert len(view["deadLetterList"]) == 2  # the oldest, as asked
    everything = (await workflow.client.get("/api/queue", params={"limit": 10})).json()
    listed = {letter["deliveryId"]: letter["reason"] for letter in everything["deadLetterList"]}
    assert listed == {
        ids[0]: "DroneschedulerRejected",
        ids[1]: "DroneschedulerRejected",
        None: "MalformedMessage",
    }
    assert view["deadLetterList"] == everything["deadLetterList"][:2]


async def test_operators_only_when_tokens_are_on(
    redis_url: str, fake: FakeBackends, dev_issuer: LocalIssuer
) -> None:
    settings = workflow_settings(redis_url, fake.url, auth=dev_issuer.settings.model_dump())
    async with run_workflow(settings) as harness:
        assert_problem(await harness.client.get("/api/queue"), 401)
        customer = dev_issuer.customer("contoso", "alice")
        refused = assert_problem(await harness.client.get("/api/queue", headers=customer), 403)
        assert refused["type"].endswith("operator-required")
        service = dev_issuer.service("Fleet.Control", "Deliveries.Write")
        assert_problem(await harness.client.get("/api/queue", headers=service), 403)
        operator = dev_issuer.customer("contoso", "olga", roles=("Operator",))
        assert (await harness.client.get("/api/queue", headers=operator)).status_code == 200
        # Never through the public gateway, whatever the token.
        through_gateway = {**operator, EDGE_HEADER: "1"}
        assert_problem(await harness.client.get("/api/queue", headers=through_gateway), 404)
        # Health stays open.
        assert (await harness.client.get("/healthz")).status_code == 200


async def test_depth_counts_messages_before_they_are_taken(
    redis_url: str, fake: FakeBackends
) -> None:
    fake.always("packages", 503)  # every delivery waits (abandoned, then redelivered)
    settings = workflow_settings(redis_url, fake.url)
    async with run_workflow(settings) as harness:
        await harness.send(
            *(message("delivery", delivery_body(str(uuid.uuid4()))) for _ in range(3))
        )

        async def held() -> bool:
            view = (await harness.client.get("/api/queue")).json()
            return bool(view["depth"] == 3)

        await wait_until(held, 10, "three messages in the queue")
        fake.always("packages", None)
        await harness.drained()
        assert (await harness.client.get("/api/queue")).json()["depth"] == 0
