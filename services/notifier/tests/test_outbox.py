"""The outbox's scripts on a real Redis: enqueue once, claim under a lease, settle only by the
holder, take over when the lease ran out, hand back without counting the attempt."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from notifier.outbox import Outbox
from notifier.records import Channel, Facts, NewItem, Status
from notifier.sender import backoff

T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


def new_item(n: int = 1) -> NewItem:
    facts = Facts(type="Assigned", delivery_id="d-1", at=T0, drone_id="drone-1")
    return NewItem(
        id=f"d-1:e:{n}",
        delivery_id="d-1",
        event_key="e",
        channel=Channel.EMAIL,
        to=f"r{n}@example.com",
        account="acme",
        facts=facts,
    )


@pytest.fixture
async def outbox(redis_url: str) -> AsyncIterator[Outbox]:
    client = Redis.from_url(redis_url)
    yield Outbox(client, retention_seconds=3600)
    await client.aclose()


def later(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


async def test_an_item_is_enqueued_once(outbox: Outbox) -> None:
    assert await outbox.enqueue([new_item(1), new_item(2)], T0) == 2
    assert await outbox.enqueue([new_item(1), new_item(2), new_item(3)], later(1)) == 1
    items = await outbox.for_delivery("d-1")
    assert sorted(i.to for i in items) == ["r1@example.com", "r2@example.com", "r3@example.com"]
    assert await outbox.counts() == {"pending": 3, "sending": 0}
    # Sent items stay the dedupe record: enqueueing again changes nothing.
    (claimed, *_) = await outbox.claim(3, "s", later(2), lease=10)
    assert await outbox.settle(claimed, "sent", later(2), note="250 ok")
    assert await outbox.enqueue([new_item(1), new_item(2), new_item(3)], later(3)) == 0
    assert (await outbox.get(claimed.id)).status is Status.SENT  # type: ignore[union-attr]


async def test_claims_lease_and_fence(outbox: Outbox) -> None:
    await outbox.enqueue([new_item(1)], T0)
    (first,) = await outbox.claim(10, "a", later(1), lease=5)
    assert first.status is Status.SENDING
    assert first.attempts == 1
    assert first.holder == "a#1"
    assert await outbox.claim(10, "b", later(2), lease=5) == []  # held
    # The lease runs out: another sender takes it over (attempt 2) and the first is fenced off.
    (second,) = await outbox.claim(10, "b", later(7), lease=5)
    assert second.holder == "b#2"
    assert second.attempts == 2
    assert not await outbox.settle(first, "sent", later(7.5), note="late")
    assert await outbox.settle(second, "sent", later(8), note="250 ok")
    stored = await outbox.get(first.id)
    assert stored is not None
    assert stored.status is Status.SENT
    assert stored.ref == "250 ok"
    assert await outbox.counts() == {"pending": 0, "sending": 0}


async def test_retry_waits_until_due_and_hand_back_does_not_count(outbox: Outbox) -> None:
    await outbox.enqueue([new_item(1)], T0)
    (claimed,) = await outbox.claim(1, "a", T0, lease=5)
    assert await outbox.settle(claimed, "retry", later(1), due=later(10), note="SMTP down")
    assert await outbox.claim(1, "a", later(9), lease=5) == []
    (again,) = await outbox.claim(1, "a", later(10), lease=5)
    assert again.attempts == 2
    assert again.last_error == "SMTP down"
    assert await outbox.settle(again, "back", later(11))
    (third,) = await outbox.claim(1, "a", later(11), lease=5)
    assert third.attempts == 2  # the handed-back attempt was not counted
    assert await outbox.settle(third, "failed", later(12), note="gave up")
    stored = await outbox.get(third.id)
    assert stored is not None
    assert stored.status is Status.FAILED
    assert stored.last_error == "gave up"


def test_backoff_grows_exponentially_up_to_its_cap() -> None:
    waits = [backoff(n, 2.0, 60.0, 1.0) for n in range(1, 8)]
    assert waits == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    # With the jitter at its extremes a wait is never shorter than the one before (below the cap).
    for n in range(1, 5):
        assert backoff(n + 1, 2.0, 60.0, 0.5) >= backoff(n, 2.0, 60.0, 1.0)
