"""A change of places the drone scheduler refuses after ingestion accepted it: the workflow
records the refusal on the delivery (its owner sees it, its recipients are told), forgets the
refused places, applies the rest of the change, and dead-letters nothing. Through a real Redis
queue against the stand-in services (the system tests run the real ones)."""

from __future__ import annotations

import datetime as dt
import uuid

from redis.asyncio import Redis

from workflow.repository import pending_key

from .conftest import FakeBackends, Harness, delivery_body, message

FAR_SOUTH = "47.412,-122.274"
FAR_SOUTH_POINT = {"latitude": 47.412, "longitude": -122.274, "altitude": 0.0}


def new_id() -> str:
    return str(uuid.uuid4())


def moment(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


async def scheduled(workflow: Harness) -> str:
    delivery_id = new_id()
    await workflow.send(message("delivery", delivery_body(delivery_id)))
    await workflow.drained()
    return delivery_id


async def test_a_refused_drop_off_is_told_and_the_delivery_goes_on(
    workflow: Harness, fake: FakeBackends
) -> None:
    delivery_id = await scheduled(workflow)
    before = dict(fake.deliveries[delivery_id])
    sent = dt.datetime.now(dt.UTC)
    change = {"deliveryId": delivery_id, "dropOffLocation": FAR_SOUTH, "deadline": "by six"}
    await workflow.send(message("reschedule", change))
    await workflow.drained()

    assert await workflow.dead_letter_count() == 0
    (refusal,) = fake.refusals[delivery_id]
    assert refusal["reason"] == "trip-too-long"
    assert "no trip may be longer than 50 miles" in refusal["detail"]
    assert refusal["dropoff"] == FAR_SOUTH_POINT
    assert "dropoffPlace" not in refusal  # coordinates name no place
    assert "pickup" not in refusal
    requested = moment(refusal["requestedAt"])
    assert sent - dt.timedelta(seconds=1) <= requested <= dt.datetime.now(dt.UTC)
    # The places and the plan are as they were; the deadline, which nothing refused, moved.
    delivery = fake.deliveries[delivery_id]
    for name in ("pickup", "dropoff", "dropoffPlace", "droneId", "deliveryETA"):
        assert delivery[name] == before[name], name
    assert delivery["deadline"] == "by six"
    assert delivery["refusedChange"] == refusal


async def test_a_refused_place_is_forgotten_and_a_later_change_applies(
    workflow: Harness, fake: FakeBackends
) -> None:
    delivery_id = await scheduled(workflow)
    refused = {"deliveryId": delivery_id, "dropOffLocation": "Pier 9 south"}
    fake.southmost = 90  # every drop-off is out of reach
    await workflow.send(message("reschedule", refused))
    await workflow.drained()
    assert fake.refusals[delivery_id][0]["dropoffPlace"] == "Pier 9 south"
    async with Redis.from_url(workflow.redis_url, decode_responses=True) as redis:
        recorded = await redis.hgetall(pending_key(delivery_id))
    # The value goes; its time stays (an older message arriving late cannot bring a place back).
    assert "dropOffLocation" not in recorded
    assert "at:dropOffLocation" in recorded

    # A deadline-only change does not ask for the refused place again.
    replans = fake.calls["PATCH /api/dronedeliveries"]
    await workflow.send(message("reschedule", {"deliveryId": delivery_id, "deadline": "noon"}))
    await workflow.drained()
    assert fake.calls["PATCH /api/dronedeliveries"] == replans
    assert len(fake.refusals[delivery_id]) == 1
    assert fake.deliveries[delivery_id]["deadline"] == "noon"

    # A drop-off the drone can fly applies, and is the latest word on the places.
    fake.southmost = 47.45
    near = {"deliveryId": delivery_id, "dropOffLocation": "47.62,-122.35"}
    await workflow.send(message("reschedule", near))
    await workflow.drained()
    delivery = fake.deliveries[delivery_id]
    assert delivery["dropoff"]["latitude"] == 47.62
    assert "refusedChange" not in delivery
    assert await workflow.dead_letter_count() == 0


async def test_a_refused_change_that_overtakes_its_delivery_is_told_once_it_exists(
    workflow: Harness, fake: FakeBackends
) -> None:
    delivery_id = new_id()
    change = {"deliveryId": delivery_id, "dropOffLocation": FAR_SOUTH}
    await workflow.send(message("reschedule", change))
    await workflow.drained()
    assert delivery_id not in fake.deliveries
    await workflow.send(message("delivery", delivery_body(delivery_id)))
    await workflow.drained()
    # Scheduled at the places it was asked for; the change it could not take is told.
    delivery = fake.deliveries[delivery_id]
    assert delivery["stage"] == "Created"
    assert delivery["refusedChange"]["dropoff"] == FAR_SOUTH_POINT
    assert len(fake.refusals[delivery_id]) == 1
    assert await workflow.dead_letter_count() == 0


async def test_a_refusal_the_delivery_service_cannot_take_yet_is_retried(
    workflow: Harness, fake: FakeBackends
) -> None:
    delivery_id = await scheduled(workflow)
    fake.fail("POST /api/deliveries/refusals", 503, 503, 503)
    await workflow.send(
        message("reschedule", {"deliveryId": delivery_id, "dropOffLocation": FAR_SOUTH})
    )
    await workflow.drained(within=20)
    assert len(fake.refusals[delivery_id]) == 1
    assert fake.statuses["POST /api/deliveries/refusals"][503] == 3
    assert await workflow.dead_letter_count() == 0


async def test_a_refusal_after_the_delivery_ended_is_not_told(
    workflow: Harness, fake: FakeBackends
) -> None:
    delivery_id = await scheduled(workflow)
    fake.deliveries[delivery_id]["stage"] = "Completed"
    await workflow.send(
        message("reschedule", {"deliveryId": delivery_id, "dropOffLocation": FAR_SOUTH})
    )
    await workflow.drained()
    assert fake.statuses["POST /api/deliveries/refusals"] == {409: 1}
    assert fake.refusals[delivery_id] == []
    assert await workflow.dead_letter_count() == 0
