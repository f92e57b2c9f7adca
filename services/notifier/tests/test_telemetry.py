"""Notices of what the drone reports: ``PickedUp`` and ``EtaChanged`` as the delivery service's
telemetry consumer writes them, from real fixes on the real telemetry stream, told by e-mail.

The delivery service runs with its consumer on (as deployed); the fixes are published as the
simulator publishes them. Its events carry their recipients, so the notifier tells the address
the delivery had when the drone reported, with the ETA the drone's position gave.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx
from redis.asyncio import Redis

from dronecommon.events import EtaChangedData, EventType, read_range
from dronecommon.fixes import Fix, Phase
from dronecommon.fixes.redis_streams import RedisFixPublisher

from .conftest import PICKUP, Deliveries, Inbox, eventually

FIXES = "telemetry:fixes"


def fix(delivery_id: str, seq: int, phase: Phase, at: dt.datetime, where: dict[str, float]) -> Fix:
    return Fix(
        drone_id="drone-1",
        delivery_id=delivery_id,
        at=at,
        seq=seq,
        latitude=where["latitude"],
        longitude=where["longitude"],
        altitude=120.0,
        speed_mph=40.0,
        heading_deg=90.0,
        battery_pct=90.0,
        phase=phase,
    )


async def consumed(redis: Redis) -> bool:
    """The delivery service's consumer group exists and has read and acked everything."""
    if not await redis.exists(FIXES):
        return False
    groups: Any = await redis.xinfo_groups(FIXES)
    found = [g for g in groups if g["name"] == "delivery"]
    return bool(found) and found[0]["lag"] == 0 and found[0]["pending"] == 0


async def group_ready(redis: Redis) -> bool:
    if not await redis.exists(FIXES):
        return False
    groups: Any = await redis.xinfo_groups(FIXES)
    return any(g["name"] == "delivery" for g in groups)


async def test_a_picked_up_and_an_eta_changed_from_the_drone_s_fixes_are_told(
    notifier: httpx.AsyncClient, deliveries: Deliveries, inbox: Inbox, redis: Redis
) -> None:
    delivery_id = str(uuid.uuid4())
    short = delivery_id[:8]
    await deliveries.create(delivery_id, {"emailAddress": "ann@example.com"})  # plan: 2030
    (assigned,) = await inbox.wait_for(1)
    assert assigned["Subject"] == f"Delivery {short}: a drone is on its way"
    await eventually(lambda: group_ready(redis), what="the delivery service's consumer group")

    publisher = RedisFixPublisher(redis, stream=FIXES)
    now = dt.datetime.now(dt.UTC)
    # At the pickup now (years before the plan's ETAs: the live deliveryETA moves), then off
    # with the package.
    await publisher.publish([fix(delivery_id, 1, Phase.AT_PICKUP, now, PICKUP)])
    await publisher.publish(
        [fix(delivery_id, 2, Phase.TO_DROPOFF, now + dt.timedelta(seconds=1), PICKUP)]
    )
    await eventually(lambda: consumed(redis), what="the fixes consumed")

    events = [e for e in await read_range(redis) if e.delivery_id == delivery_id]
    by_type = {e.type: e for e in events}
    assert {EventType.PICKED_UP, EventType.ETA_CHANGED} <= set(by_type)
    for kind in (EventType.PICKED_UP, EventType.ETA_CHANGED):
        assert by_type[kind].data["notify"]["accountId"] == "acme"  # carried: no lookup
    changed = by_type[EventType.ETA_CHANGED].data_as(EtaChangedData)
    assert changed.delivery_eta < dt.datetime(2030, 1, 1, tzinfo=dt.UTC)

    messages = await inbox.wait_for(3)
    subjects = sorted(m["Subject"] for m in messages)
    assert len(subjects) == 3, subjects
    assert f"Delivery {short}: your package has been picked up" in subjects
    arriving = [s for s in subjects if s.startswith(f"Delivery {short}: now arriving ")]
    assert len(arriving) == 1, subjects
    assert {m["To"][0]["Address"] for m in messages} == {"ann@example.com"}
    # The notice quotes the ETA the drone's position gave, not the plan's.
    detail = await inbox.message(next(m["ID"] for m in messages if m["Subject"] == arriving[0]))
    assert "2030" not in arriving[0]
    assert "Previously: Wednesday 8 May 2030, 20:25 UTC" in detail["Text"]
