"""The three operations end to end through a real Redis queue against stand-in services."""

from __future__ import annotations

import asyncio
import random
import uuid

import pytest
from redis.asyncio import Redis

from dronecommon.area import resolve_location
from workflow.repository import Pending, PendingStore, pending_key

from .conftest import FakeBackends, Harness, delivery_body, message, wait_until


def new_id() -> str:
    return str(uuid.uuid4())


async def test_sample_delivery_is_scheduled(workflow: Harness, fake: FakeBackends) -> None:
    delivery_id = new_id()
    await workflow.send(message("delivery", delivery_body(delivery_id)))
    await workflow.drained()

    assert fake.packages["mypackage"] == {
        "size": "Small",
        "weight": 10,
        "tag": "mytag",
        "ownerId": "myowner",
    }
    assignment = fake.assignments[delivery_id]["request"]
    pickup = resolve_location("my pickup").model_dump()
    dropoff = resolve_location("drop off").model_dump()
    assert assignment == {
        "deliveryId": delivery_id,
        "ownerId": "myowner",
        "pickup": pickup,
        "dropoff": dropoff,
        "packageDetail": {"id": "mypackage", "size": "Small", "weight": 10},
        "expedited": True,
    }
    plan = fake.assignments[delivery_id]["plan"]
    created = fake.deliveries[delivery_id]["created"]
    assert created == {
        "id": delivery_id,
        "owner": {"userId": "myowner", "accountId": "myowner"},
        "pickup": pickup,
        "dropoff": dropoff,
        "pickupPlace": "my pickup",
        "dropoffPlace": "drop off",
        "deadline": "",
        "expedited": True,
        "confirmationRequired": "None",
        "droneId": plan["droneId"],
        "pickupETA": plan["pickupETA"],
        "deliveryETA": plan["deliveryETA"],
    }
    assert await workflow.dead_letter_count() == 0


async def test_the_requests_notify_is_registered_in_the_creating_put(
    workflow: Harness, fake: FakeBackends
) -> None:
    delivery_id = new_id()
    notify = {"emailAddress": "ann@example.com", "webhookUrl": "https://hooks.example/drone"}
    await workflow.send(message("delivery", delivery_body(delivery_id, notify=notify)))
    await workflow.drained()
    created = fake.deliveries[delivery_id]["created"]
    assert created["notifyMeRequests"] == [notify]
    # A request without notify registers nobody (the PUT is the one it always was).
    other = new_id()
    await workflow.send(message("delivery", delivery_body(other)))
    await workflow.drained()
    assert "notifyMeRequests" not in fake.deliveries[other]["created"]
    # A notify the rules refuse makes the message malformed: dead-lettered, nothing booked.
    bad = new_id()
    await workflow.send(message("delivery", delivery_body(bad, notify={"sms": "12"})))
    await workflow.drained()
    assert bad not in fake.assignments
    assert await workflow.dead_letter_count() == 1


async def test_redelivered_delivery_books_once(workflow: Harness, fake: FakeBackends) -> None:
    delivery_id = new_id()
    body = delivery_body(delivery_id)
    # The same request three times (a broker duplicate, a redelivery after a crash...).
    await workflow.send(*(message("delivery", body) for _ in range(3)))
    await workflow.drained()
    assert list(fake.assignments) == [delivery_id]
    assert fake.statuses["PUT /api/dronedeliveries"] == {201: 1, 200: 2}
    assert fake.statuses["PUT /api/deliveries"] == {201: 1, 204: 2}


async def test_reschedule_replans_the_drone_and_patches_the_delivery(
    workflow: Harness, fake: FakeBackends
) -> None:
    delivery_id = new_id()
    await workflow.send(message("delivery", delivery_body(delivery_id)))
    await workflow.drained()
    change = {"deliveryId": delivery_id, "dropOffLocation": "47.6,-122.3", "deadline": "soon"}
    await workflow.send(message("reschedule", change))
    await workflow.drained()

    delivery = fake.deliveries[delivery_id]
    assert delivery["stage"] == "Rescheduled"
    assert delivery["dropoff"] == {"latitude": 47.6, "longitude": -122.3, "altitude": 0.0}
    # Coordinates name no place: the drop-off's old name goes; the pickup keeps its own.
    assert (delivery["pickupPlace"], delivery["dropoffPlace"]) == ("my pickup", None)
    assert delivery["deadline"] == "soon"
    plan = fake.assignments[delivery_id]["plan"]
    assert delivery["deliveryETA"] == plan["deliveryETA"]
    assert fake.assignments[delivery_id]["request"]["dropoff"]["latitude"] == 47.6


async def test_pickup_time_only_reschedule_changes_nothing_downstream(
    workflow: Harness, fake: FakeBackends
) -> None:
    delivery_id = new_id()
    await workflow.send(message("delivery", delivery_body(delivery_id)))
    await workflow.drained()
    change = {"deliveryId": delivery_id, "pickupTime": "2030-01-01T00:00:00Z"}
    await workflow.send(message("reschedule", change))
    await workflow.drained()
    assert fake.deliveries[delivery_id]["stage"] == "Created"
    assert fake.calls["PATCH /api/deliveries"] == 0
    assert await workflow.dead_letter_count() == 0


async def test_cancel_releases_the_drone_and_cancels(workflow: Harness, fake: FakeBackends) -> None:
    delivery_id = new_id()
    await workflow.send(message("delivery", delivery_body(delivery_id)))
    await workflow.drained()
    await workflow.send(message("cancel", {"deliveryId": delivery_id}))
    await workflow.drained()
    assert fake.deliveries[delivery_id]["stage"] == "Cancelled"
    assert delivery_id in fake.released
    # A reschedule after the cancel changes nothing.
    await workflow.send(message("reschedule", {"deliveryId": delivery_id, "deadline": "x"}))
    await workflow.drained()
    assert fake.deliveries[delivery_id]["stage"] == "Cancelled"
    assert await workflow.dead_letter_count() == 0


async def test_cancel_that_overtakes_its_delivery_books_nothing(
    workflow: Harness, fake: FakeBackends
) -> None:
    delivery_id = new_id()
    await workflow.send(message("cancel", {"deliveryId": delivery_id}))
    await workflow.drained()
    await workflow.send(message("delivery", delivery_body(delivery_id)))
    await workflow.drained()
    assert delivery_id not in fake.assignments
    assert fake.packages == {}
    # The request is kept, Cancelled, without a drone.
    delivery = fake.deliveries[delivery_id]
    assert delivery["stage"] == "Cancelled"
    assert delivery["droneId"] is None
    assert "pickupETA" not in delivery
    assert await workflow.dead_letter_count() == 0


async def test_reschedule_that_overtakes_its_delivery_is_applied_after_the_create(
    workflow: Harness, fake: FakeBackends
) -> None:
    delivery_id = new_id()
    change = {"deliveryId": delivery_id, "pickupLocation": "somewhere else", "deadline": "later"}
    await workflow.send(message("reschedule", change))
    await workflow.drained()
    assert delivery_id not in fake.deliveries
    await workflow.send(message("delivery", delivery_body(delivery_id)))
    await workflow.drained()
    delivery = fake.deliveries[delivery_id]
    assert delivery["stage"] == "Rescheduled"
    assert delivery["pickup"] == resolve_location("somewhere else").model_dump()
    assert delivery["pickupPlace"] == "somewhere else"
    assert delivery["deadline"] == "later"


async def test_an_older_reschedule_never_undoes_a_newer_one(redis_url: str) -> None:
    delivery_id = new_id()
    async with Redis.from_url(redis_url) as redis:
        store = PendingStore(redis, ttl=60)
        assert await store.read(delivery_id) == Pending()
        # The newer change is recorded first, then an older one (earlier enqueue time).
        await store.record_reschedule(delivery_id, 2_000, {"deadline": "newer"})
        await store.record_reschedule(
            delivery_id, 1_000, {"deadline": "older", "pickupLocation": "a"}
        )
        state = await store.read(delivery_id)
        ttl = await redis.pttl(pending_key(delivery_id))
    assert state == Pending(
        version=2,
        cancelled=False,
        reschedule={"deadline": "newer", "pickupLocation": "a"},
        times={"deadline": 2_000, "pickupLocation": 1_000},
    )
    assert 0 < ttl <= 60_000


@pytest.mark.parametrize("seed", [7, 11, 23])
async def test_racing_operations_converge(workflow: Harness, fake: FakeBackends, seed: int) -> None:
    """Deliveries, reschedules and cancels of 30 requests in a random order, handled 8 at a time:
    every cancelled request ends with no active drone and no live delivery, every other one is
    scheduled once with its latest reschedule."""
    fake.delay = 0.005
    ids = [new_id() for _ in range(30)]
    cancelled = set(ids[::3])
    messages = []
    for delivery_id in ids:
        messages.append(message("delivery", delivery_body(delivery_id)))
        messages.append(message("reschedule", {"deliveryId": delivery_id, "deadline": "moved"}))
        if delivery_id in cancelled:
            messages.append(message("cancel", {"deliveryId": delivery_id}))
    random.Random(seed).shuffle(messages)
    await workflow.send(*messages)
    await workflow.drained(within=30)
    for delivery_id in ids:
        delivery = fake.deliveries.get(delivery_id)
        if delivery_id in cancelled:
            assert delivery is not None
            assert delivery["stage"] == "Cancelled", delivery_id
            assert delivery_id not in fake.active(), delivery_id
        else:
            assert delivery is not None
            assert delivery["stage"] == "Rescheduled"
            assert delivery["deadline"] == "moved"
            assert delivery_id in fake.active()
    drones = [a["plan"]["droneId"] for a in fake.assignments.values()]
    assert len(drones) == len(set(drones))
    assert await workflow.dead_letter_count() == 0


async def test_handles_messages_concurrently(workflow: Harness, fake: FakeBackends) -> None:
    fake.delay = 0.2
    ids = [new_id() for _ in range(8)]
    started = asyncio.get_running_loop().time()
    await workflow.send(*(message("delivery", delivery_body(i)) for i in ids))

    async def done() -> bool:
        return all(i in fake.deliveries for i in ids)

    await wait_until(done, 10, "all deliveries")
    # Four sequential calls of 0.2 s each: one at a time would take 8 x 0.8 s.
    assert asyncio.get_running_loop().time() - started < 4.0


async def test_a_cancel_that_overtakes_the_first_attempt_releases_the_drone(
    workflow: Harness, fake: FakeBackends
) -> None:
    # Attempt 1 reads no pending cancel; the cancel is handled while attempt 1 stores the package
    # (its release finds nothing to release yet); attempt 1 then books a drone and fails to
    # create the delivery (transient). Attempt 2 finds the cancel: it must release that drone.
    delivery_id = new_id()

    async def cancel_meanwhile() -> None:
        await workflow.send(message("cancel", {"deliveryId": delivery_id}))

        async def cancel_applied() -> bool:
            return fake.statuses["DELETE /api/deliveries"][404] >= 1

        await wait_until(cancel_applied, 10, "the cancel to be applied")

    fake.before("PUT /api/packages", cancel_meanwhile)
    fake.fail("PUT /api/deliveries", 503, 503)  # attempt 1's call and its one retry
    await workflow.send(message("delivery", delivery_body(delivery_id)))

    async def cancelled() -> bool:
        return fake.deliveries.get(delivery_id, {}).get("stage") == "Cancelled"

    await wait_until(cancelled, 10, "the delivery to be recorded as Cancelled")
    await workflow.drained()
    assert fake.statuses["PUT /api/dronedeliveries"] == {201: 1}  # attempt 1 booked a drone
    assert delivery_id in fake.assignments
    assert fake.active() == {}, "the drone booked by attempt 1 is still held"
    assert await workflow.dead_letter_count() == 0


async def test_a_later_attempt_that_gives_up_releases_the_drone_an_earlier_one_booked(
    workflow: Harness, fake: FakeBackends
) -> None:
    # Attempt 1 books a drone and fails to create the delivery (transient); attempt 2 fails for
    # good before it reaches the drone scheduler. The message is dead-lettered: the drone of
    # attempt 1 must not stay booked for a delivery that will never exist.
    delivery_id = new_id()

    async def refuse_packages_from_now_on() -> None:
        fake.always("PUT /api/packages", 400)

    fake.before("PUT /api/dronedeliveries", refuse_packages_from_now_on)
    fake.fail("PUT /api/deliveries", 503, 503)
    await workflow.send(message("delivery", delivery_body(delivery_id)))

    async def dead() -> bool:
        return await workflow.dead_letter_count() == 1

    await wait_until(dead, 10, "the dead letter")
    [letter] = await workflow.dead_letters.list()
    assert letter.reason == "PackageRejected"
    assert letter.delivery_count == 2
    assert delivery_id in fake.assignments
    assert fake.active() == {}, "the drone booked by attempt 1 is still held"
    assert letter.description.endswith("any drone an earlier attempt booked was released")


async def test_a_later_attempt_that_gives_up_keeps_the_drone_of_a_created_delivery(
    workflow: Harness, fake: FakeBackends
) -> None:
    # Attempt 1 creates the delivery, then fails applying a recorded reschedule (transient);
    # attempt 2 gives up before its create: the delivery exists, so its drone stays booked.
    delivery_id = new_id()
    await workflow.send(message("reschedule", {"deliveryId": delivery_id, "deadline": "soon"}))
    await workflow.drained()

    async def refuse_packages_from_now_on() -> None:
        fake.always("PUT /api/packages", 400)

    fake.before("PATCH /api/deliveries", refuse_packages_from_now_on)
    fake.fail("PATCH /api/deliveries", 503, 503)
    await workflow.send(message("delivery", delivery_body(delivery_id)))

    async def dead() -> bool:
        return await workflow.dead_letter_count() == 1

    await wait_until(dead, 10, "the dead letter")
    [letter] = await workflow.dead_letters.list()
    assert letter.reason == "PackageRejected"
    assert letter.delivery_count == 2
    assert fake.deliveries[delivery_id]["droneId"] == fake.active()[delivery_id]["plan"]["droneId"]
