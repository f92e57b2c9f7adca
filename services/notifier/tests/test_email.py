"""E-mail through a real Mailpit: one per (delivery, event, recipient), read back by its API."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Callable

import httpx
from redis.asyncio import Redis

from dronecommon.events import (
    DeliveryEvent,
    EtaChangedData,
    EventType,
    PickedUpData,
    append,
    events_stream,
    read_range,
)
from dronetesting.apps import app_client
from dronetesting.servers import MailpitServer
from notifier.main import create_app as create_notifier
from notifier.records import Channel, event_key, item_id, message_id, recipient_key
from notifier.settings import NotifierSettings

from .conftest import (
    BASE_URL,
    FAR_SOUTH,
    JSON,
    TOO_LONG,
    Deliveries,
    Inbox,
    eventually,
    notifications,
)


def _id() -> str:
    return str(uuid.uuid4())


def mail_id(event: DeliveryEvent, address: str) -> str:
    """The Message-ID (without brackets) the notifier gives this (delivery, event, recipient)."""
    item = item_id(event.delivery_id, event_key(event), recipient_key(Channel.EMAIL, address))
    return f"{message_id(item)}@dronedelivery.example"


async def events_of(redis: Redis, delivery_id: str) -> list[DeliveryEvent]:
    return [e for e in await read_range(redis) if e.delivery_id == delivery_id]


async def test_one_event_is_one_email_per_recipient_with_the_delivery_its_etas_and_the_link(
    notifier: httpx.AsyncClient, deliveries: Deliveries, inbox: Inbox, redis: Redis
) -> None:
    delivery_id = _id()
    await deliveries.create(
        delivery_id,
        {"emailAddress": "ann@example.com", "sms": "+14255550123"},
        {"emailAddress": "josé@example.com"},
        {"emailAddress": "ANN@example.com"},  # the same mailbox: told once
    )
    messages = await inbox.wait_for(2)
    assert sorted(m["To"][0]["Address"] for m in messages) == [
        "ann@example.com",
        "josé@example.com",
    ]
    (assigned,) = await events_of(redis, delivery_id)
    assert {m["MessageID"] for m in messages} == {
        mail_id(assigned, "ann@example.com"),
        mail_id(assigned, "josé@example.com"),
    }
    detail = await inbox.message(messages[0]["ID"])
    assert detail["Subject"] == f"Delivery {delivery_id[:8]}: a drone is on its way"
    text = detail["Text"]
    link = f"{BASE_URL}/track/{delivery_id}"
    for expected in (
        delivery_id,
        "drone-1",
        "Pickup ETA: Wednesday 8 May 2030, 20:10 UTC (2030-05-08T20:10:00.000Z)",
        "Delivery ETA: Wednesday 8 May 2030, 20:25 UTC (2030-05-08T20:25:00.000Z)",
        f"Track it live: {link}",
    ):
        assert expected in text
    assert f"href='{link}'" in detail["HTML"] or f'href="{link}"' in detail["HTML"]
    assert "2030-05-08T20:25:00.000Z" in detail["HTML"]

    async def all_sent() -> bool:
        listed = await notifications(notifier, delivery_id)
        return len(listed) == 3 and all(n["status"] == "sent" for n in listed)

    await eventually(all_sent, what="three notifications sent (two e-mails, one SMS)")
    listed = await notifications(notifier, delivery_id)
    assert sorted(n["channel"] for n in listed) == ["email", "email", "sms"]
    assert all(n["event"] == "Assigned" and n["attempts"] == 1 for n in listed)
    assert all(n["reference"] for n in listed)


async def test_every_email_and_text_names_where_the_delivery_goes(
    notifier: httpx.AsyncClient, deliveries: Deliveries, inbox: Inbox
) -> None:
    delivery_id = _id()
    place = "Gus's <b>café</b>"
    await deliveries.create(
        delivery_id, {"emailAddress": "gus@example.com", "sms": "+14255550199"}, dropoff_place=place
    )
    await inbox.wait_for(1)

    async def texted() -> list[JSON]:
        answer = await notifier.get("/api/notifications/sms", params={"to": "+14255550199"})
        found: list[JSON] = answer.json()
        return found

    async def sent() -> bool:
        return bool(await texted())

    await eventually(sent, what="the SMS in the sink")
    (sms,) = await texted()
    assert sms["text"].startswith(
        f"Fabrikam: Delivery {delivery_id[:8]}: a drone is on its way (to {place}). Pickup ETA:"
    )
    await deliveries.complete(delivery_id)
    messages = await inbox.wait_for(2)
    subjects = set()
    for message in messages:
        detail = await inbox.message(message["ID"])
        subjects.add(detail["Subject"])
        assert f"To: {place}" in detail["Text"]
        assert "Gus&#x27;s &lt;b&gt;café&lt;/b&gt;" in detail["HTML"]
        assert "<b>café" not in detail["HTML"]
    assert subjects == {
        f"Delivery {delivery_id[:8]}: a drone is on its way",
        f"Delivery {delivery_id[:8]}: delivered",
    }
    # A drop-off given as coordinates has no name: no such line.
    other = _id()
    await deliveries.create(other, {"emailAddress": "hal@example.com"})
    messages = await inbox.wait_for(3)
    (hal,) = [m for m in messages if m["To"][0]["Address"] == "hal@example.com"]
    assert "To:" not in (await inbox.message(hal["ID"]))["Text"]


async def test_a_reschedule_tells_where_the_delivery_goes_now_and_its_new_times(
    notifier: httpx.AsyncClient, deliveries: Deliveries, inbox: Inbox
) -> None:
    delivery_id = _id()
    await deliveries.create(delivery_id, {"emailAddress": "ivy@example.com"}, dropoff_place="Home")
    await inbox.wait_for(1)
    await deliveries.reschedule(
        delivery_id,
        {
            "dropoff": {"latitude": 47.65, "longitude": -122.35, "altitude": 0},
            "dropoffPlace": "Ivy's office",
            "pickupETA": "2030-05-08T20:40:00Z",
            "deliveryETA": "2030-05-08T20:55:00Z",
        },
    )
    messages = await inbox.wait_for(2)
    (moved,) = [m for m in messages if m["Subject"].endswith("rescheduled")]
    assert moved["Subject"] == f"Delivery {delivery_id[:8]}: rescheduled"
    text = (await inbox.message(moved["ID"]))["Text"]
    for expected in (
        "Your delivery has been rescheduled: these are its new times.",
        "To: Ivy's office",
        "Pickup ETA: Wednesday 8 May 2030, 20:40 UTC",
        "Delivery ETA: Wednesday 8 May 2030, 20:55 UTC",
    ):
        assert expected in text


async def test_a_refused_change_tells_it_was_not_made_what_was_asked_and_why(
    notifier: httpx.AsyncClient, deliveries: Deliveries, inbox: Inbox
) -> None:
    delivery_id = _id()
    short = delivery_id[:8]
    await deliveries.create(
        delivery_id,
        {"emailAddress": "ivy@example.com", "sms": "+14255550142"},
        dropoff_place="Gas Works Park",
    )
    await inbox.wait_for(1)
    await deliveries.refuse(delivery_id, {"dropoff": FAR_SOUTH, "dropoffPlace": "Pier 9, Tukwila"})
    messages = await inbox.wait_for(2)
    subject = f"Delivery {short}: change not made, it goes on as planned"
    (refused,) = [m for m in messages if m["Subject"] == subject]
    detail = await inbox.message(refused["ID"])
    text = detail["Text"]
    for expected in (
        "The change asked for was not made: your delivery goes on as planned.",
        "To: Gas Works Park",  # where it still goes
        "Drop-off asked for: Pier 9, Tukwila",
        f"Why: {TOO_LONG}",
    ):
        assert expected in text
    # The event carries no ETAs: none are quoted (not even the ones the delivery had).
    assert "ETA" not in text
    assert "None" not in text
    assert "Pier 9, Tukwila" in detail["HTML"]
    assert "a drone&#x27;s base" in detail["HTML"]

    async def texted() -> list[JSON]:
        answer = await notifier.get("/api/notifications/sms", params={"to": "+14255550142"})
        found: list[JSON] = answer.json()
        return [sms for sms in found if sms["event"] == "ChangeRefused"]

    async def sent() -> bool:
        return bool(await texted())

    await eventually(sent, what="the refusal's SMS in the sink")
    (sms,) = await texted()
    assert sms["text"] == (
        f"Fabrikam: {subject} (to Gas Works Park). Drop-off asked for: Pier 9, Tukwila."
        f" Track: {BASE_URL}/track/{delivery_id}"
    )

    # A drop-off asked for as coordinates (no name) is given as its coordinates.
    await deliveries.refuse(
        delivery_id, {"dropoff": FAR_SOUTH}, requested_at="2030-05-08T20:07:00Z"
    )
    messages = await inbox.wait_for(3)
    later = [m for m in messages if m["Subject"] == subject and m["ID"] != refused["ID"]]
    (again,) = later
    text = (await inbox.message(again["ID"]))["Text"]
    assert "Drop-off asked for: 47.41200, -122.27400" in text
    assert "None" not in text


async def test_the_same_event_twice_is_still_one_email(
    notifier: httpx.AsyncClient, deliveries: Deliveries, inbox: Inbox, redis: Redis
) -> None:
    delivery_id = _id()
    await deliveries.create(delivery_id, {"emailAddress": "ann@example.com"})
    await inbox.wait_for(1)
    (assigned,) = await events_of(redis, delivery_id)
    # The same event appended again (a second stream entry), and the whole stream read again by
    # the group (as after a crash before the acknowledgement).
    await append(redis, assigned)
    await redis.xgroup_setid(events_stream(), "notifier", "0")
    await deliveries.complete(delivery_id)  # a later event still gets through
    messages = await inbox.wait_for(2)
    await eventually(lambda: _all_read(redis), what="the group to have read the whole stream again")
    messages = await inbox.messages()
    assert sorted(m["Subject"] for m in messages) == [
        f"Delivery {delivery_id[:8]}: a drone is on its way",
        f"Delivery {delivery_id[:8]}: delivered",
    ]
    assert len(await notifications(notifier, delivery_id)) == 2


async def _all_read(redis: Redis) -> bool:
    (group,) = [g for g in await redis.xinfo_groups(events_stream()) if g["name"] == "notifier"]
    pending: int = group["pending"]
    lag: int = group["lag"]
    return pending == 0 and lag == 0


async def test_picked_up_and_eta_changed_look_the_recipients_up_and_quote_the_latest_eta(
    notifier: httpx.AsyncClient, deliveries: Deliveries, inbox: Inbox, redis: Redis
) -> None:
    delivery_id = _id()
    await deliveries.create(delivery_id)  # nobody to tell yet
    await deliveries.notify_me(delivery_id, {"emailAddress": "ann@example.com"})
    at = dt.datetime(2030, 5, 8, 20, 12, tzinfo=dt.UTC)
    later = dt.datetime(2030, 5, 8, 20, 40, tzinfo=dt.UTC)
    before = dt.datetime(2030, 5, 8, 20, 25, tzinfo=dt.UTC)
    # Events without recipients in their data (a producer that does not write them).
    await append(
        redis,
        DeliveryEvent.of(
            EventType.PICKED_UP, delivery_id, at, PickedUpData(drone_id="drone-1", at=at)
        ),
    )
    await append(
        redis,
        DeliveryEvent.of(
            EventType.ETA_CHANGED,
            delivery_id,
            at + dt.timedelta(minutes=1),
            EtaChangedData(deliveryETA=later, previousETA=before),
        ),
    )
    await deliveries.cancel(delivery_id)
    messages = await inbox.wait_for(3)
    subjects = {m["Subject"]: m["ID"] for m in messages}
    short = delivery_id[:8]
    assert set(subjects) == {
        f"Delivery {short}: your package has been picked up",
        f"Delivery {short}: now arriving Wednesday 8 May 2030, 20:40 UTC",
        f"Delivery {short}: cancelled",
    }
    picked = await inbox.message(subjects[f"Delivery {short}: your package has been picked up"])
    assert "Picked up: Wednesday 8 May 2030, 20:12 UTC" in picked["Text"]
    # The delivery's ETA as its Assigned event gave it.
    assert "Delivery ETA: Wednesday 8 May 2030, 20:25 UTC" in picked["Text"]
    changed = await inbox.message(
        subjects[f"Delivery {short}: now arriving Wednesday 8 May 2030, 20:40 UTC"]
    )
    assert (
        "Previously: Wednesday 8 May 2030, 20:25 UTC (2030-05-08T20:25:00.000Z)" in changed["Text"]
    )


async def test_smtp_down_is_retried_with_backoff_and_sent_when_it_is_back(
    notifier: httpx.AsyncClient, deliveries: Deliveries, inbox: Inbox, mailpit: MailpitServer
) -> None:
    mailpit.stop()
    try:
        delivery_id = _id()
        await deliveries.create(delivery_id, {"emailAddress": "ann@example.com"})

        async def retried() -> bool:
            listed = await notifications(notifier, delivery_id)
            return bool(listed) and listed[0]["attempts"] >= 3

        await eventually(retried, what="three failed attempts")
        (pending,) = await notifications(notifier, delivery_id)
        assert pending["status"] in ("pending", "sending")
        assert "SMTP" in pending["lastError"]
        ready = await notifier.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["email"]["status"] != "ok"
    finally:
        mailpit.start()
    (message,) = await inbox.wait_for(1)
    assert message["To"][0]["Address"] == "ann@example.com"

    async def sent() -> bool:
        (item,) = await notifications(notifier, delivery_id)
        return bool(item["status"] == "sent")

    await eventually(sent, what="the notification marked sent")
    assert (await notifier.get("/readyz")).status_code == 200
    assert len(await inbox.messages()) == 1


async def test_an_enqueued_notification_goes_out_at_once_not_at_the_next_poll(
    make_settings: Callable[..., NotifierSettings], deliveries: Deliveries, inbox: Inbox
) -> None:
    # An idle sender looks for due items every 30 s here: only the intake's wake-up is quick.
    settings = make_settings(outbox={"poll_interval": 30.0})
    async with app_client(create_notifier(settings, configure_logs=False)):
        await asyncio.sleep(0.5)  # the senders' first (empty) claim is behind them
        for n in range(3):  # each within 5 s (the wait asserts it), not after a 30 s poll
            await deliveries.create(_id(), {"emailAddress": f"ann{n}@example.com"})
            await inbox.wait_for(n + 1, within=5)
