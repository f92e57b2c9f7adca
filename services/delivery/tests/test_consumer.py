"""The telemetry consumer: ordering and idempotency (an older fix never overwrites a newer one, a
batch delivered again changes nothing), ``EtaChanged`` once per threshold crossing, fixes that
belong to no live delivery ignored, competing consumers agreeing, the consumer turned off.

Fixes are published on the real stream and consumed by the app's own consumer, on real Redis.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
from redis.asyncio import Redis

from delivery.settings import FixStreamSettings, LiveSettings
from dronecommon.domain import format_utc
from dronecommon.events import (
    Contact,
    EtaChangedData,
    EventData,
    EventType,
    PickedUpData,
    Recipients,
    read_range,
)
from dronecommon.fixes import Phase
from dronetesting.apps import app_client

from .conftest import (
    BASE,
    DROPOFF,
    HOME,
    PICKUP,
    Clock,
    Fleet,
    Flying,
    create,
    get,
    miles,
    t,
)


async def test_an_older_fix_never_overwrites_a_newer_one(
    flying: Flying,
    clock: Clock,
    fleet: Fleet,
    redis: Redis,
) -> None:
    async with flying() as client:
        await create(client, "l-3")
        newer = fleet.fix("l-3", t(60), Phase.TO_DROPOFF, 47.62, -122.30, seq=200)
        older = fleet.fix("l-3", t(50), Phase.AT_PICKUP, 47.60, -122.33, seq=100)
        await fleet.publish(newer)
        await fleet.publish(older)  # late: another replica, a redelivery
        # ... and both in one batch, the older one last.
        await fleet.publish(newer, older)
        clock.at(61)
        status = await get(client, "/l-3/status")
        assert status["drone"]["at"] == format_utc(t(60))
        assert status["drone"]["phase"] == "ToDropoff"
        phases = [e["phase"] for e in await get(client, "/l-3/history") if "phase" in e]
        assert phases == ["ToDropoff"]
        assert len(await redis.lrange("delivery:{l-3}:trail", 0, -1)) == 1
        # The drone's own latest fix keeps the newer one too.
        assert '"seq":200' in (await redis.hget("delivery:drone:drone-7", "fix") or "")


async def test_a_batch_delivered_again_changes_nothing(
    flying: Flying,
    fleet: Fleet,
    redis: Redis,
) -> None:
    live = LiveSettings(eta_change_threshold=1)
    async with flying(live=live) as client:
        await create(client, "l-4")
        batch = [
            fleet.fix("l-4", t(5), Phase.TO_PICKUP, *HOME),
            fleet.fix("l-4", t(400), Phase.AT_PICKUP, 47.60, -122.33, speed_mph=0),
            fleet.fix("l-4", t(460), Phase.TO_DROPOFF, 47.60, -122.33, speed_mph=20),
        ]
        await fleet.publish(*batch)

        async def everything() -> list[Any]:
            key = "delivery:{l-4}"
            return [
                await redis.hgetall(key),
                await redis.lrange(key + ":history", 0, -1),
                await redis.lrange(key + ":trail", 0, -1),
                await redis.xrange(key + ":stages"),
                await redis.xrange("delivery:events"),
                await redis.hgetall("delivery:drone:drone-7"),
            ]

        before = await everything()
        types = {e.type for e in await read_range(redis)}
        assert {EventType.PICKED_UP, EventType.ETA_CHANGED} <= types  # each fix moved the ETA
        await fleet.publish(*batch)
        await fleet.publish(batch[1])
        assert await everything() == before


async def test_the_telemetry_events_carry_who_to_tell(
    flying: Flying,
    fleet: Fleet,
    redis: Redis,
) -> None:
    """``PickedUp`` and ``EtaChanged`` carry ``notify`` as the service's own events do: the
    owner's account and the notify-me requests of the state they were written with (a request
    added in flight included), so the notifier needs no lookup."""
    live = LiveSettings(eta_change_threshold=60)
    async with flying(live=live) as client:
        ann = {"emailAddress": "ann@example.com"}
        await create(client, "l-8", notifyMeRequests=[ann])
        await fleet.publish(fleet.fix("l-8", t(5), Phase.TO_PICKUP, *HOME))
        later = {"sms": "+14255550123"}
        added = await client.post(f"{BASE}/l-8/notifymerequests", json=later)
        assert added.status_code == 204
        # Far later than planned, then off the pickup with the package.
        await fleet.publish(
            fleet.fix("l-8", t(1500), Phase.AT_PICKUP, 47.60, -122.33, speed_mph=0),
            fleet.fix("l-8", t(1560), Phase.TO_DROPOFF, 47.60, -122.33, speed_mph=30),
        )
        events = [e for e in await read_range(redis) if e.delivery_id == "l-8"]
        by_type = {e.type: e for e in events}
        assert {EventType.ASSIGNED, EventType.PICKED_UP, EventType.ETA_CHANGED} <= set(by_type)
        expected = Recipients(
            account_id="account-1",
            requests=[Contact(email_address="ann@example.com"), Contact(sms="+14255550123")],
        )
        for kind in (EventType.PICKED_UP, EventType.ETA_CHANGED):
            data = by_type[kind].parsed()
            assert isinstance(data, EventData)
            assert data.notify == expected, kind
        # On the wire as the service's own events carry it (camelCase, under data.notify).
        wire = by_type[EventType.PICKED_UP].data["notify"]
        assert wire["accountId"] == "account-1"
        assert [r.get("emailAddress") for r in wire["requests"]] == ["ann@example.com", None]
        assert wire == by_type[EventType.ETA_CHANGED].data["notify"]
        picked = by_type[EventType.PICKED_UP].data_as(PickedUpData)
        assert picked.at == t(1560)


async def test_eta_changed_once_per_threshold_crossing(
    flying: Flying,
    clock: Clock,
    fleet: Fleet,
    redis: Redis,
) -> None:
    live = LiveSettings(eta_change_threshold=60, speed_window=1)
    hop = miles(PICKUP, DROPOFF)

    def heading_off(at_seconds: float, arrive_seconds: float) -> Any:
        """A fix at the pickup at ``at_seconds`` whose speed arrives at ``arrive_seconds``."""
        speed = hop / ((arrive_seconds - at_seconds) / 3600)
        return fleet.fix("l-5", t(at_seconds), Phase.TO_DROPOFF, 47.60, -122.33, speed_mph=speed)

    async with flying(live=live) as client:
        await create(client, "l-5")
        planned = t(30 * 60)

        async def changes() -> list[EtaChangedData]:
            events = await read_range(redis)
            return [e.data_as(EtaChangedData) for e in events if e.type is EventType.ETA_CHANGED]

        await fleet.publish(heading_off(1200, 1800 + 30))  # 30 s late: below the threshold
        assert await changes() == []
        await fleet.publish(heading_off(1201, 1800 + 90))  # 90 s late
        (first,) = await changes()
        assert first.previous_eta == planned
        assert abs((first.delivery_eta - t(1890)).total_seconds()) < 0.01
        await fleet.publish(heading_off(1202, 1800 + 120))  # 30 s from the last notice
        assert len(await changes()) == 1
        await fleet.publish(heading_off(1203, 1800 + 20))  # 70 s earlier than the last notice
        second = (await changes())[1]
        assert second.previous_eta == first.delivery_eta
        # A reschedule is a new baseline: its own plan's ETA.
        replan = {"pickupETA": format_utc(t(1000)), "deliveryETA": format_utc(t(1800 + 20))}
        clock.at(1204)
        assert (await client.patch(f"{BASE}/l-5", json=replan)).status_code == 204
        await fleet.publish(heading_off(1205, 1800 + 60))  # 40 s from the new plan
        assert len(await changes()) == 2


async def test_fixes_of_no_live_delivery_are_ignored(
    flying: Flying,
    clock: Clock,
    fleet: Fleet,
    redis: Redis,
) -> None:
    async with flying() as client:
        await create(client, "l-6")
        await create(client, "l-7")
        assert (await client.delete(f"{BASE}/l-7")).status_code == 204
        events_before = await redis.xlen("delivery:events")
        fix = fleet.fix
        await fleet.publish(
            fix("nobody", t(1), Phase.TO_PICKUP, *HOME),  # unknown delivery
            fix(None, t(2), Phase.RETURNING, *HOME),  # a flight for no delivery
            fix("l-7", t(3), Phase.TO_PICKUP, *HOME),  # cancelled
            fix("l-6", t(4), Phase.TO_PICKUP, *HOME, drone_id="drone-8"),  # another drone
        )
        assert await redis.hget("delivery:{l-6}", "live") is None
        assert await redis.hget("delivery:{l-7}", "live") is None
        assert not await redis.exists("delivery:{nobody}")
        assert await redis.xlen("delivery:events") == events_before
        clock.at(5)
        assert (await get(client, "/l-6/status"))["telemetry"] == "none"
        # Each drone's latest fix is still kept, and the consumer goes on.
        assert await redis.hget("delivery:drone:drone-8", "seq") == "4"
        await fleet.publish(fix("l-6", t(5), Phase.TO_PICKUP, *HOME))
        assert (await get(client, "/l-6/status"))["telemetry"] == "live"


async def test_competing_consumers_agree(
    make_app: Callable[..., Any],
    clock: Clock,
    fleet: Fleet,
    redis: Redis,
) -> None:
    """Two replicas share the fixes of five drones (many small entries, interleaved): each
    delivery ends with every phase once and one PickedUp, as with a single consumer."""
    stream = FixStreamSettings(receive_wait=0.05, max_batch=4, fixes_per_entry=2)
    apps = [
        make_app(clock=clock, telemetry_stream=stream, live=LiveSettings(consumer_name=name))
        for name in ("replica-a", "replica-b")
    ]
    names = [f"c-{n}" for n in range(5)]
    async with app_client(apps[0]) as client, app_client(apps[1]):
        for n, name in enumerate(names):
            await create(client, name, droneId=f"drone-{n}")
        fixes = []
        phases = [Phase.TO_PICKUP] * 8 + [Phase.AT_PICKUP] * 4 + [Phase.TO_DROPOFF] * 8
        for step, phase in enumerate(phases):
            for n, name in enumerate(names):
                fixes.append(
                    fleet.fix(
                        name,
                        t(step),
                        phase,
                        47.55 + step * 0.005,
                        -122.33,
                        drone_id=f"drone-{n}",
                        seq=step + 1,
                    )
                )
        fleet.publisher.fixes_per_entry = 2
        await fleet.publish(*fixes)
        clock.at(len(phases))
        events = await read_range(redis)
        for name in names:
            history = await get(client, f"/{name}/history")
            assert [e["phase"] for e in history if "phase" in e] == [
                "ToPickup",
                "AtPickup",
                "ToDropoff",
            ]
            status = await get(client, f"/{name}/status")
            assert status["drone"]["at"] == format_utc(t(len(phases) - 1))
            picked = [e for e in events if e.type is EventType.PICKED_UP and e.delivery_id == name]
            assert len(picked) == 1
            # The trail: newest first, never out of order (a fix that reached the other
            # replica after a newer one was applied is dropped, not inserted).
            trail = [json.loads(f) for f in await redis.lrange(f"delivery:{{{name}}}:trail", 0, -1)]
            seqs = [f["seq"] for f in trail]
            assert seqs[0] == len(phases)
            assert seqs == sorted(seqs, reverse=True)
            assert len(set(seqs)) == len(seqs)
        groups: Any = await redis.xinfo_consumers("telemetry:fixes", "delivery")
        assert {g["name"] for g in groups} == {"replica-a", "replica-b"}


async def test_the_consumer_can_be_turned_off(
    make_app: Callable[..., Any], fleet: Fleet, redis: Redis
) -> None:
    app = make_app(live=LiveSettings(consumer=False))
    async with app_client(app) as client:
        ready = await client.get("/readyz")
        assert set(ready.json()["checks"]) == {"redis"}
        await create(client, "l-10")
        await fleet.publisher.publish([fleet.fix("l-10", t(1), Phase.TO_PICKUP, *HOME)])
        assert await redis.xinfo_groups("telemetry:fixes") == []
        assert (await get(client, "/l-10/status"))["telemetry"] == "none"


async def test_readiness_checks_the_telemetry_stream(client: httpx.AsyncClient) -> None:
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["telemetry"]["status"] == "ok"


async def test_the_trail_keeps_the_newest_fixes_up_to_its_length(
    flying: Flying, fleet: Fleet, redis: Redis
) -> None:
    async with flying(live=LiveSettings(trail_length=3)) as client:
        await create(client, "l-11")
        fix = fleet.fix
        await fleet.publish(fix("l-11", t(1), Phase.TO_PICKUP, *HOME))
        await fleet.publish(fix("l-11", t(2), Phase.TO_PICKUP, *HOME))
        trail = await redis.lrange("delivery:{l-11}:trail", 0, -1)
        assert [json.loads(f)["seq"] for f in trail] == [2, 1]  # not yet at its length
        # Three more in one batch: past the length at once.
        await fleet.publish(*(fix("l-11", t(s), Phase.TO_PICKUP, *HOME) for s in (3, 4, 5)))
        trail = await redis.lrange("delivery:{l-11}:trail", 0, -1)
        assert [json.loads(f)["seq"] for f in trail] == [5, 4, 3]
        await fleet.publish(fix("l-11", t(6), Phase.TO_PICKUP, *HOME))
        trail = await redis.lrange("delivery:{l-11}:trail", 0, -1)
        assert [json.loads(f)["seq"] for f in trail] == [6, 5, 4]
        # The version moved once per applied batch.
        assert await redis.hget("delivery:{l-11}", "lver") == "4"


async def test_a_drones_latest_fix_is_kept_at_least_its_ttl_after_its_last_report(
    flying: Flying, fleet: Fleet, redis: Redis
) -> None:
    """The expiry moves out by one and a half TTLs when less than one TTL is left, so it lies
    between one and one and a half TTLs after the last report, and most fixes write no expiry."""
    ttl, key = 600, "delivery:drone:drone-7"
    async with flying(live=LiveSettings(drone_fix_ttl=ttl)) as client:
        await create(client, "l-12")
        await fleet.publish(fleet.fix("l-12", t(1), Phase.TO_PICKUP, *HOME))
        assert ttl < await redis.ttl(key) <= ttl * 1.5
        expiry = await redis.expiretime(key)
        assert time.time() + ttl <= expiry <= time.time() + ttl * 1.5 + 1
        # The next report keeps the expiry: more than a TTL is left.
        await fleet.publish(fleet.fix("l-12", t(2), Phase.TO_PICKUP, *HOME))
        assert await redis.hget(key, "seq") == "2"
        assert await redis.expiretime(key) == expiry
        # Less than a TTL left (as if most of half a TTL had passed): the next report moves it.
        await redis.expire(key, ttl - 10)
        await fleet.publish(fleet.fix("l-12", t(3), Phase.TO_PICKUP, *HOME))
        assert await redis.hget(key, "seq") == "3"
        assert ttl < await redis.ttl(key) <= ttl * 1.5
        # An older fix changes nothing, its expiry included.
        expiry = await redis.expiretime(key)
        await fleet.publish(fleet.fix("l-12", t(0), Phase.TO_PICKUP, *HOME, seq=1))
        assert await redis.hget(key, "seq") == "3"
        assert await redis.expiretime(key) == expiry
