"""Failure classification: dead-letter permanent failures at once (compensating a half-booked
delivery), redeliver transient ones after a backoff, give up past the maximum delivery count."""

from __future__ import annotations

import json
import logging
import uuid

import pytest

from dronecommon.messaging import MAX_DELIVERY_COUNT_EXCEEDED, DeadLetter, OutgoingMessage
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


def new_id() -> str:
    return str(uuid.uuid4())


async def dead_letters(workflow: Harness, count: int = 1) -> list[DeadLetter]:
    async def arrived() -> bool:
        return await workflow.dead_letter_count() >= count

    await wait_until(arrived, 10, f"{count} dead letters")
    return await workflow.dead_letters.list()


async def test_malformed_json_is_dead_lettered(workflow: Harness) -> None:
    await workflow.send(message("delivery", b"{not json", message_id="bad-json"))
    [letter] = await dead_letters(workflow)
    assert letter.message_id == "bad-json"
    assert letter.reason == "MalformedMessage"
    assert "not UTF-8 JSON" in letter.description
    assert letter.delivery_count == 1


async def test_unknown_operation_is_dead_lettered(workflow: Harness) -> None:
    await workflow.send(message("teleport", {"deliveryId": new_id()}))
    [letter] = await dead_letters(workflow)
    assert letter.reason == "UnknownOperation"
    assert "'teleport'" in letter.description


async def test_missing_operation_is_dead_lettered(workflow: Harness) -> None:
    await workflow.send(message("delivery", {"deliveryId": new_id()}))
    await workflow.sender.send(OutgoingMessage(body=b"{}", message_id="no-operation"))
    letters = await dead_letters(workflow, 2)
    assert {letter.reason for letter in letters} == {"InvalidMessage", "UnknownOperation"}


async def test_invalid_body_is_dead_lettered_with_the_fields(workflow: Harness) -> None:
    body = delivery_body(new_id())
    body["packageInfo"] = {**body["packageInfo"], "size": "Huge"}
    del body["ownerId"]
    await workflow.send(message("delivery", body))
    [letter] = await dead_letters(workflow)
    assert letter.reason == "InvalidMessage"
    assert "ownerId" in letter.description
    assert "packageInfo.size" in letter.description


async def test_unsafe_delivery_id_is_refused(workflow: Harness, fake: FakeBackends) -> None:
    await workflow.send(message("cancel", {"deliveryId": "../packages/x"}))
    [letter] = await dead_letters(workflow)
    assert letter.reason == "InvalidMessage"
    assert fake.calls.total() == 0


async def test_rejected_package_is_dead_lettered_without_booking(
    workflow: Harness, fake: FakeBackends
) -> None:
    fake.always("PUT /api/packages", 400)
    delivery_id = new_id()
    await workflow.send(message("delivery", delivery_body(delivery_id)))
    [letter] = await dead_letters(workflow)
    assert letter.reason == "PackageRejected"
    assert "400" in letter.description
    assert fake.calls["PUT /api/dronedeliveries"] == 0


async def test_undeliverable_package_is_dead_lettered_then_replayed_once_fixed(
    workflow: Harness, fake: FakeBackends
) -> None:
    fake.max_weight = 5
    delivery_id = new_id()
    await workflow.send(message("delivery", delivery_body(delivery_id)))
    [letter] = await dead_letters(workflow)
    assert letter.reason == "DroneschedulerRejected"
    assert "422" in letter.description
    assert "no drone can carry it" in letter.description
    assert fake.calls["DELETE /api/dronedeliveries"] == 0  # nothing was booked
    json.loads(letter.body)  # the original body is kept

    fake.max_weight = 100  # the fleet is fixed
    assert await workflow.dead_letters.replay([letter.id]) == [letter.id]
    await workflow.drained()

    async def created() -> bool:
        return delivery_id in fake.deliveries

    await wait_until(created, 10, "the replayed delivery")
    assert await workflow.dead_letter_count() == 0


async def test_rejected_delivery_releases_its_drone(workflow: Harness, fake: FakeBackends) -> None:
    fake.always("PUT /api/deliveries", 400)
    delivery_id = new_id()
    await workflow.send(message("delivery", delivery_body(delivery_id)))
    [letter] = await dead_letters(workflow)
    assert letter.reason == "DeliveryRejected"
    assert letter.description.endswith("its drone was released")
    assert delivery_id in fake.assignments
    assert fake.active() == {}


async def test_transient_failures_are_retried_until_they_pass(
    workflow: Harness, fake: FakeBackends
) -> None:
    # More failures than one attempt's retries absorb: the message is abandoned and redelivered.
    fake.fail("PUT /api/deliveries", 503, 503, 503, 500, 503)
    delivery_id = new_id()
    await workflow.send(message("delivery", delivery_body(delivery_id)))

    async def created() -> bool:
        return fake.deliveries.get(delivery_id) is not None

    await wait_until(created, 10, "the delivery")
    await workflow.drained()
    assert await workflow.dead_letter_count() == 0
    # Three deliveries (503+503, 503+500, 503+204 with one in-process retry): the same drone.
    assert fake.statuses["PUT /api/dronedeliveries"] == {201: 1, 200: 2}
    assert len(fake.active()) == 1


async def test_unreachable_service_is_retried(redis_url: str, fake: FakeBackends) -> None:
    settings = workflow_settings(redis_url, fake.url, delivery_url="http://127.0.0.1:9")
    async with run_workflow(settings) as workflow:
        delivery_id = new_id()
        await workflow.send(message("delivery", delivery_body(delivery_id)))

        async def retried() -> bool:
            return fake.statuses["PUT /api/dronedeliveries"][200] >= 1

        await wait_until(retried, 10, "a redelivery")
        assert await workflow.dead_letter_count() == 0


async def test_past_the_maximum_delivery_count_it_is_dead_lettered_and_compensated(
    redis_url: str, fake: FakeBackends
) -> None:
    settings = workflow_settings(redis_url, fake.url, queue={"max_delivery_count": 3})
    fake.always("PUT /api/deliveries", 500)
    async with run_workflow(settings) as workflow:
        delivery_id = new_id()
        await workflow.send(message("delivery", delivery_body(delivery_id)))
        [letter] = await dead_letters(workflow)
    assert letter.reason == MAX_DELIVERY_COUNT_EXCEEDED
    assert letter.delivery_count == 3
    assert "last error: TransientHTTPError" in letter.description
    assert "500" in letter.description
    assert letter.description.endswith("its drone was released")
    assert fake.active() == {}


async def test_compensation_that_fails_is_retried(workflow: Harness, fake: FakeBackends) -> None:
    fake.always("PUT /api/deliveries", 400)
    fake.fail("DELETE /api/dronedeliveries", 500, 500)
    delivery_id = new_id()
    await workflow.send(message("delivery", delivery_body(delivery_id)))
    [letter] = await dead_letters(workflow)
    assert letter.reason == "DeliveryRejected"
    assert letter.delivery_count >= 2
    assert fake.active() == {}


async def test_replayed_compensated_delivery_is_final(
    workflow: Harness, fake: FakeBackends
) -> None:
    fake.always("PUT /api/deliveries", 400)
    delivery_id = new_id()
    await workflow.send(message("delivery", delivery_body(delivery_id)))
    [letter] = await dead_letters(workflow)
    fake.always("PUT /api/deliveries", None)
    await workflow.dead_letters.replay([letter.id])

    async def dead_again() -> bool:
        letters = await workflow.dead_letters.list()
        return any(entry.reason == "DroneAssignmentReleased" for entry in letters)

    await wait_until(dead_again, 10, "the replay to be refused")
    assert delivery_id not in fake.deliveries


async def test_401_from_a_backend_is_retried_not_dead_lettered(
    redis_url: str,
    fake: FakeBackends,
    dev_issuer: LocalIssuer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A token refused by the drone scheduler (a key rotation, a role granted late): the message
    # is retried with backoff and succeeds once the backend accepts the token again.
    scope = f"{dev_issuer.audience}/.default"
    auth = {
        "outbound_scopes": {"dronescheduler": scope},
        "dev_signing_key_file": str(dev_issuer.key_file),
        "issuer": dev_issuer.issuer.issuer,
    }
    fake.fail("PUT /api/dronedeliveries", 401, 401, 401)
    settings = workflow_settings(redis_url, fake.url, auth=auth)
    delivery_id = new_id()
    with caplog.at_level(logging.ERROR, logger="workflow"):
        async with run_workflow(settings) as workflow:
            await workflow.send(message("delivery", delivery_body(delivery_id)))

            async def created() -> bool:
                return delivery_id in fake.deliveries

            await wait_until(created, 10, "the delivery")
            await workflow.drained()
            assert await workflow.dead_letter_count() == 0
    assert fake.statuses["PUT /api/dronedeliveries"] == {401: 3, 201: 1}
    alarms = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert alarms, "an authentication failure must raise an alarm (an ERROR log)"
    text = alarms[0].getMessage()
    assert "dronescheduler" in text
    assert "401" in text
    assert scope in text


async def test_403_past_the_maximum_delivery_count_is_dead_lettered_as_an_auth_failure(
    redis_url: str, fake: FakeBackends
) -> None:
    # Authorisation failures are transient: redelivered until the delivery count runs out, then
    # dead-lettered with what was refused (and the half-booked drone released).
    fake.always("PUT /api/deliveries", 403)
    settings = workflow_settings(redis_url, fake.url, queue={"max_delivery_count": 3})
    async with run_workflow(settings) as workflow:
        await workflow.send(message("delivery", delivery_body(new_id())))
        [letter] = await dead_letters(workflow)
    assert letter.reason == MAX_DELIVERY_COUNT_EXCEEDED
    assert letter.delivery_count == 3
    assert "403" in letter.description
    assert "delivery" in letter.description
    assert "no outbound scope" in letter.description
    assert letter.description.endswith("its drone was released")
    assert fake.statuses["PUT /api/deliveries"][403] == 3
    assert fake.active() == {}


async def test_deeply_nested_json_is_dead_lettered_at_once(workflow: Harness) -> None:
    # Python's JSON parser gives up on deep nesting with a RecursionError, not a ValueError: the
    # message is malformed, and no retry will ever parse it.
    deep = b'{"deliveryId": "x", "extra": ' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    await workflow.send(message("delivery", deep, message_id="too-deep"))
    [letter] = await dead_letters(workflow)
    assert letter.message_id == "too-deep"
    assert letter.reason == "MalformedMessage"
    assert "nested too deeply" in letter.description
    assert letter.delivery_count == 1
