"""The delivery events outbox: one event per state change, none for replays, atomic with the change.

The events are read back from the real stream with the library's decoder (what the simulator and
the notifier read).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
from redis.asyncio import Redis

from dronecommon.events import (
    AssignedData,
    ClosedData,
    DeliveryEvent,
    EventType,
    RescheduledData,
    events_stream,
    read_range,
)

JSON = dict[str, Any]
BASE = "/api/deliveries"
CONFIRMATION: JSON = {
    "dateTime": "2025-05-08T20:30:00Z",
    "geoCoordinates": {"latitude": 47.7, "longitude": -122.2, "altitude": 0},
    "confirmationType": "None",
}
ETAS = {"pickupETA": "2030-01-01T10:00:00Z", "deliveryETA": "2030-01-01T10:20:00Z"}


async def read_events(redis: Redis, prefix: str = "delivery") -> list[DeliveryEvent]:
    return await read_range(redis, prefix=prefix)


async def test_each_transition_appends_exactly_one_event(
    client: httpx.AsyncClient, redis: Redis, new_delivery: Callable[..., JSON]
) -> None:
    body = new_delivery("e-1", confirmationRequired="Picture", **ETAS)
    assert (await client.put(f"{BASE}/e-1", json=body)).status_code == 201
    events = await read_events(redis)
    assert [(e.type, e.delivery_id) for e in events] == [(EventType.ASSIGNED, "e-1")]
    assigned = events[0].data_as(AssignedData)
    assert assigned.drone_id == "drone-7"
    assert assigned.pickup.latitude == 47.60
    assert assigned.dropoff.longitude == -122.20
    assert assigned.pickup_eta.isoformat() == "2030-01-01T10:00:00+00:00"
    assert assigned.confirmation_required.value == "Picture"
    assert assigned.expedited is True
    assert isinstance(events[0].parsed(), AssignedData)

    new_place = {"latitude": 47.65, "longitude": -122.30, "altitude": 0}
    patch = {"dropoff": new_place, "pickupETA": ETAS["pickupETA"], "deliveryETA": ETAS["pickupETA"]}
    assert (await client.patch(f"{BASE}/e-1", json=patch)).status_code == 204
    # A reschedule that gives the delivery another drone is an Assigned for that drone.
    assert (await client.patch(f"{BASE}/e-1", json={"droneId": "drone-9"})).status_code == 204
    assert (await client.delete(f"{BASE}/e-1")).status_code == 204

    events = await read_events(redis)
    assert [e.type for e in events] == [
        EventType.ASSIGNED,
        EventType.RESCHEDULED,
        EventType.ASSIGNED,
        EventType.CANCELLED,
    ]
    rescheduled = events[1].data_as(RescheduledData)
    assert rescheduled.drone_id == "drone-7"
    assert rescheduled.dropoff.latitude == 47.65
    assert rescheduled.confirmation_required.value == "Picture"
    assert events[2].data_as(AssignedData).drone_id == "drone-9"
    cancelled = events[3].data_as(ClosedData)
    assert cancelled.drone_id == "drone-9"
    assert cancelled.location is not None
    ids = [e.id for e in events]
    assert ids == sorted(ids, key=lambda i: tuple(int(p) for p in (i or "0-0").split("-")))

    assert (await client.put(f"{BASE}/e-2", json=new_delivery("e-2"))).status_code == 201
    confirm = await client.post(f"{BASE}/e-2/confirmations", json=CONFIRMATION)
    assert confirm.status_code == 204
    events = await read_events(redis)
    assert [(e.type, e.delivery_id) for e in events[-2:]] == [
        (EventType.ASSIGNED, "e-2"),
        (EventType.COMPLETED, "e-2"),
    ]
    completed = events[-1].data_as(ClosedData)
    assert completed.at.isoformat() == "2025-05-08T20:30:00+00:00"
    assert completed.location is not None
    assert completed.location.latitude == 47.7


async def test_replays_and_non_stage_writes_append_nothing(
    client: httpx.AsyncClient, redis: Redis, new_delivery: Callable[..., JSON]
) -> None:
    body = new_delivery("r-1")
    assert (await client.put(f"{BASE}/r-1", json=body)).status_code == 201
    assert (await client.put(f"{BASE}/r-1", json=body)).status_code == 204  # replay
    patch = {"deadline": "tonight"}
    for _ in range(3):  # a redelivered reschedule
        assert (await client.patch(f"{BASE}/r-1", json=patch)).status_code == 204
    notify = {"emailAddress": "someone@example.com"}
    assert (await client.post(f"{BASE}/r-1/notifymerequests", json=notify)).status_code == 204
    for _ in range(3):  # a repeated cancel
        assert (await client.delete(f"{BASE}/r-1")).status_code == 204
    assert (await client.put(f"{BASE}/r-1", json=body)).status_code == 204  # replay once more

    # A delivery created without a drone has nothing to announce until it gets one.
    unassigned = new_delivery("r-2", droneId=None)
    assert (await client.put(f"{BASE}/r-2", json=unassigned)).status_code == 201
    for _ in range(2):
        confirm = await client.post(f"{BASE}/r-2/confirmations", json=CONFIRMATION)
        assert confirm.status_code == 204

    events = await read_events(redis)
    assert [(e.type, e.delivery_id) for e in events] == [
        (EventType.ASSIGNED, "r-1"),
        (EventType.RESCHEDULED, "r-1"),
        (EventType.CANCELLED, "r-1"),
        (EventType.COMPLETED, "r-2"),
    ]
    # Refused changes (409) append nothing either.
    assert (await client.patch(f"{BASE}/r-1", json=patch)).status_code == 409
    assert (await client.post(f"{BASE}/r-1/confirmations", json=CONFIRMATION)).status_code == 409
    assert len(await read_events(redis)) == 4


async def test_racing_cancel_and_confirm_append_one_terminal_event_each(
    client: httpx.AsyncClient, redis: Redis, new_delivery: Callable[..., JSON]
) -> None:
    ids = [f"race-{n}" for n in range(30)]
    await asyncio.gather(*(client.put(f"{BASE}/{i}", json=new_delivery(i)) for i in ids))

    async def race(delivery_id: str) -> None:
        await asyncio.gather(
            client.delete(f"{BASE}/{delivery_id}"),
            client.post(f"{BASE}/{delivery_id}/confirmations", json=CONFIRMATION),
        )

    await asyncio.gather(*(race(i) for i in ids))
    events = await read_events(redis)
    terminal = Counter(e.delivery_id for e in events if e.type is not EventType.ASSIGNED)
    assert terminal == dict.fromkeys(ids, 1)
    for delivery_id in ids:
        stage = (await client.get(f"{BASE}/{delivery_id}/status")).json()["stage"]
        (event,) = [e for e in events if e.delivery_id == delivery_id and e.type.value == stage]
        assert event.type in (EventType.CANCELLED, EventType.COMPLETED)


async def test_the_stream_follows_the_key_prefix_and_is_trimmed(
    make_app: Callable[..., Any], redis: Redis, new_delivery: Callable[..., JSON]
) -> None:
    from dronetesting.apps import app_client

    async with app_client(make_app(key_prefix="shop", events_maxlen=1000)) as client:
        for n in range(1200):
            await redis.xadd(events_stream("shop"), {"filler": str(n)})
        assert (await client.put(f"{BASE}/p-1", json=new_delivery("p-1"))).status_code == 201
    assert await redis.xlen(events_stream("delivery")) == 0
    # MAXLEN ~ trims whole macro nodes: about 1000 entries remain, never fewer.
    assert 1000 <= await redis.xlen(events_stream("shop")) < 1201
    (last,) = [e for e in await read_events(redis, "shop") if e.delivery_id == "p-1"]
    assert last.type is EventType.ASSIGNED


async def test_events_carry_the_recipients_of_the_moment(
    client: httpx.AsyncClient, redis: Redis, new_delivery: Callable[..., JSON]
) -> None:
    ann = {"emailAddress": "ann@example.com"}
    body = new_delivery("n-1", notifyMeRequests=[ann])
    assert (await client.put(f"{BASE}/n-1", json=body)).status_code == 201
    hook = {"webhookUrl": "https://hooks.example.com/drone"}
    assert (await client.post(f"{BASE}/n-1/notifymerequests", json=hook)).status_code == 204
    assert (await client.delete(f"{BASE}/n-1")).status_code == 204
    assigned, cancelled = await read_events(redis)
    first = assigned.data_as(AssignedData).notify
    assert first is not None
    assert first.account_id == body["owner"]["accountId"]
    assert [r.email_address for r in first.requests] == ["ann@example.com"]
    last = cancelled.data_as(ClosedData).notify
    assert last is not None
    assert [(r.email_address, r.webhook_url) for r in last.requests] == [
        ("ann@example.com", None),
        (None, "https://hooks.example.com/drone"),
    ]
    # A delivery nobody asked to hear about still says so: an empty list, not "unknown".
    assert (await client.put(f"{BASE}/n-2", json=new_delivery("n-2"))).status_code == 201
    (other,) = [e for e in await read_events(redis) if e.delivery_id == "n-2"]
    recipients = other.data_as(AssignedData).notify
    assert recipients is not None
    assert recipients.requests == []
