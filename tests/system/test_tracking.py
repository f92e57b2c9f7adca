"""End to end: drones fly and the customer tracks them, over the real native stack.

The fleet simulator flies a fast fleet here (a hundred times the drones' speed, a second at each
stop, a fix every half second) and the delivery service's live ETAs count the same second of
handling, so a flight of a few miles takes seconds. The sample request goes through ingestion,
the workflow, the drone scheduler and the delivery service; its public tracking stream shows the
drone moving and the ETAs changing until Completed, then ends; the drone comes home and is free
at the scheduler. A cancel and a reschedule reach a drone in flight.

Tokens are on, as in ``make run``: the customer schedules and follows the owner's stream with
its own token (another account's finds no such delivery), anyone follows the public stream
without one, and what no customer may read (the scheduler's assignment, the simulator's fleet)
is read as a service holding the role.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, aconnect_sse
from redis import Redis as SyncRedis
from redis.asyncio import Redis

from dronecommon.events import EventType, read_range
from dronetesting.samples import sample_request

from .conftest import System
from .test_system import dead_letters_of, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

FIXES = "telemetry:fixes"

# New flights at a hundred times the drones' speed, a second at each stop, a fix every half
# second (twice per stop). Flights other modules left in the air keep their usual speed and
# report at this rate too: hundreds of drones, so the rate stays modest on a busy machine.
FAST_FLEET = {
    "SIMULATOR_SPEED_FACTOR": "100",
    "SIMULATOR_HANDLING_SECONDS": "1.0",
    "SIMULATOR_TELEMETRY_INTERVAL": "0.5",
    "SIMULATOR_TICKS_PER_INTERVAL": "5",
    "DELIVERY_LIVE__HANDLING_SECONDS": "1.0",
}


async def diagnose(redis: Redis, delivery_id: str) -> str:
    """What the stack holds of a delivery's telemetry (for a failing assertion's message)."""
    key = f"delivery:{{{delivery_id}}}"
    state = await redis.hgetall(key)
    entries: Any = await redis.xrevrange(FIXES, count=5000)
    mine = [e for e in entries if delivery_id.encode() in e[1].get(b"fixes", b"")]
    groups = await redis.xinfo_groups(FIXES)
    return (
        f"{len(mine)} of the last {len(entries)} fix entries name the delivery; "
        f"live={state.get(b'live')!r} lver={state.get(b'lver')!r} groups={groups}"
    )


def caught_up(system: System, within: float = 60.0) -> None:
    """Wait until the delivery service's consumer has read every fix published so far (the
    restarts leave a backlog): a flight here is then followed as it flies."""
    deadline = time.monotonic() + within
    with SyncRedis.from_url(system.redis_url) as redis:
        while True:
            groups: Any = redis.xinfo_groups(FIXES) if redis.exists(FIXES) else []
            group = next((g for g in groups if g["name"] == b"delivery"), None)
            # Within a few entries (half a second of fixes): the simulator never pauses.
            if group is not None and group["lag"] is not None and group["lag"] <= 5:
                return
            assert time.monotonic() < deadline, f"the delivery consumer lags: {group}"
            time.sleep(0.2)


@pytest.fixture(scope="module")
def fast_fleet(system: System) -> Iterator[System]:
    """The stack with a fast fleet for this module; the usual speeds again afterwards."""
    system.reconfigure("simulator", dict(FAST_FLEET))
    system.reconfigure("delivery", {})
    caught_up(system)
    try:
        yield system
    finally:
        system.reconfigure("simulator", dict.fromkeys(FAST_FLEET))
        system.reconfigure("delivery", {})


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=httpx.Timeout(30, read=60), trust_env=False) as client:
        yield client


def sample(**changes: Any) -> dict[str, Any]:
    body = sample_request(**changes)
    body["packageInfo"]["packageId"] = f"p-{uuid.uuid4().hex}"
    return body


def owner(system: System) -> dict[str, str]:
    """The sample's owner (``myowner`` of ``contoso``: what ``make token`` prints)."""
    return system.customer()


async def schedule(http: httpx.AsyncClient, system: System, body: dict[str, Any]) -> str:
    """Through ingestion as its owner, until the delivery service has it with its drone."""
    response = await http.post(
        system.url("ingestion") + "/api/deliveryrequests", json=body, headers=owner(system)
    )
    assert response.status_code == 202, response.text
    delivery_id = str(response.json()["deliveryId"])

    async def assigned() -> bool:
        found = await http.get(
            system.url("delivery") + f"/api/deliveries/{delivery_id}", headers=owner(system)
        )
        return found.status_code == 200 and bool(found.json()["droneId"])

    await wait_for(assigned, 20, "the delivery with its drone")
    return delivery_id


class Tracking:
    """A tracking stream read in the background; the events so far."""

    def __init__(
        self, http: httpx.AsyncClient, url: str, headers: dict[str, str] | None = None
    ) -> None:
        self.http = http
        self.url = url
        self.headers = headers or {}
        self.events: list[ServerSentEvent] = []
        self.closed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Tracking:
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read(self) -> None:
        try:
            async with aconnect_sse(self.http, "GET", self.url, headers=self.headers) as source:
                assert source.response.status_code == 200
                async for event in source.aiter_sse():
                    self.events.append(event)
        finally:
            self.closed.set()

    def statuses(self) -> list[dict[str, Any]]:
        return [json.loads(e.data) for e in self.events if e.event == "status"]

    async def until(self, predicate: Callable[[dict[str, Any]], bool], within: float) -> None:
        deadline = time.monotonic() + within
        while not any(predicate(status) for status in self.statuses()):
            assert time.monotonic() < deadline, f"not within {within}s: {self.statuses()[-3:]}"
            assert not self.closed.is_set(), f"the stream closed: {self.statuses()[-3:]}"
            await asyncio.sleep(0.05)

    async def ended(self, within: float) -> None:
        await asyncio.wait_for(self.closed.wait(), within)


async def opened(http: httpx.AsyncClient, url: str, headers: dict[str, str]) -> int:
    """The status a tracking stream answers ``headers`` with (the stream closed at once)."""
    async with http.stream("GET", url, headers=headers) as response:
        return response.status_code


def flying(status: dict[str, Any]) -> bool:
    drone = status.get("drone")
    return status["telemetry"] == "live" and drone is not None and drone["phase"] == "ToPickup"


async def until_flying(tracking: Tracking, redis: Redis, delivery_id: str) -> None:
    try:
        await tracking.until(flying, 30)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; {await diagnose(redis, delivery_id)}") from None


async def released(http: httpx.AsyncClient, system: System, delivery_id: str) -> bool:
    url = system.url("dronescheduler") + f"/api/dronedeliveries/{delivery_id}"
    answer = await http.get(url, headers=system.service("dronescheduler", "Drones.Assign"))
    assert answer.status_code == 200, answer.text
    return bool(answer.json()["status"] == "Released")


async def home(http: httpx.AsyncClient, system: System, drone_id: str) -> bool:
    url = system.url("simulator") + f"/api/fleet/{drone_id}"
    answer = await http.get(url, headers=system.service("simulator", "Fleet.Control"))
    assert answer.status_code in (200, 404), answer.text
    return answer.status_code == 404


async def test_the_sample_delivery_is_tracked_live_to_completion(
    fast_fleet: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    system = fast_fleet
    address = f"track-{uuid.uuid4().hex[:12]}@example.com"
    delivery_id = await schedule(http, system, sample(notify={"emailAddress": address}))
    url = system.url("delivery") + f"/api/deliveries/public/{delivery_id}/tracking"
    async with Tracking(http, url) as tracking:
        await tracking.ended(90)
    events = tracking.events
    assert [e.event for e in events][-2:] == ["status", "end"]
    statuses = tracking.statuses()
    assert statuses[-1]["stage"] == "Completed"
    in_flight = [s for s in statuses if s["telemetry"] == "live" and s["stage"] != "Completed"]
    places = {json.dumps(s["drone"]["location"]) for s in in_flight}
    assert len(places) >= 3, await diagnose(redis, delivery_id)  # the drone moves
    assert len({s["deliveryETA"] for s in in_flight}) >= 3  # and the ETA with it
    stages = [s["stage"] for s in statuses]
    assert stages.index("HeadedToPickup") < stages.index("HeadedToDropoff") < len(stages) - 1
    assert all("droneId" not in (s["drone"] or {}) for s in statuses)  # the public view
    assert all(e.id for e in events)

    base = system.url("delivery") + f"/api/deliveries/{delivery_id}"
    history = (await http.get(base + "/history", headers=owner(system))).json()
    phases = [e["phase"] for e in history if "phase" in e]
    assert phases[:4] == ["ToPickup", "AtPickup", "ToDropoff", "AtDropoff"]
    assert history[-1]["stage"] == "Completed"
    events_of = [e.type for e in await read_range(redis) if e.delivery_id == delivery_id]
    assert events_of.count(EventType.PICKED_UP) == 1
    assert EventType.COMPLETED in events_of
    # The plan was the scheduler's at the drone's real speed: the live ETA moved far from it.
    assert EventType.ETA_CHANGED in events_of

    drone_id = (await http.get(base, headers=owner(system))).json()["droneId"]
    await wait_for(lambda: released(http, system, delivery_id), 60, "the drone released")
    await wait_for(lambda: home(http, system, drone_id), 30, "the drone home")

    # The customer was told as the drone reported: picked up, the new arrival time, delivered.
    short = delivery_id[:8]
    told = {
        f"Delivery {short}: a drone is on its way",
        f"Delivery {short}: your package has been picked up",
        f"Delivery {short}: delivered",
    }

    async def subjects() -> list[str]:
        inbox = system.stack.config.inbox_url
        found = await http.get(f"{inbox}/api/v1/search", params={"query": f"to:{address}"})
        return [str(m["Subject"]) for m in found.json()["messages"]]

    async def all_told() -> bool:
        got = await subjects()
        return told <= set(got) and any(" now arriving " in s for s in got)

    await wait_for(all_told, 30, "the e-mails of the flight")
    assert sorted(await subjects()).count(f"Delivery {short}: your package has been picked up") == 1


async def test_a_cancel_reaches_the_drone_in_flight(
    fast_fleet: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    system = fast_fleet
    delivery_id = await schedule(http, system, sample())
    base = system.url("delivery") + f"/api/deliveries/{delivery_id}"
    drone_id = (await http.get(base, headers=owner(system))).json()["droneId"]
    url = base + "/tracking"
    # The owner's stream: the owner, an operator or a service reading deliveries; another
    # account finds no such delivery; no token, no stream.
    assert await opened(http, url, {}) == 401
    assert await opened(http, url, system.customer("myowner", "fabrikam")) == 404
    assert await opened(http, url, system.customer("ops", "fabrikam", "Operator")) == 200
    assert await opened(http, url, system.service("delivery", "Deliveries.Read")) == 200
    async with Tracking(http, url, owner(system)) as tracking:
        await until_flying(tracking, redis, delivery_id)
        cancel = await http.delete(
            system.url("ingestion") + f"/api/deliveryrequests/{delivery_id}",
            headers=owner(system),
        )
        assert cancel.status_code == 202, cancel.text
        await tracking.ended(30)
    statuses = tracking.statuses()
    assert tracking.events[-1].event == "end"
    assert statuses[-1]["stage"] == "Cancelled"
    assert statuses[-1]["drone"]["droneId"] == drone_id  # the owner's view
    assert "Completed" not in [s["stage"] for s in statuses]
    await wait_for(lambda: released(http, system, delivery_id), 30, "the drone released")
    await wait_for(lambda: home(http, system, drone_id), 60, "the drone home")


async def test_a_reschedule_reroutes_the_drone_in_flight(
    fast_fleet: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    system = fast_fleet
    delivery_id = await schedule(http, system, sample())
    url = system.url("delivery") + f"/api/deliveries/public/{delivery_id}/tracking"
    new_dropoff = "47.62,-122.35"
    async with Tracking(http, url) as tracking:
        await until_flying(tracking, redis, delivery_id)
        patch = await http.patch(
            system.url("ingestion") + f"/api/deliveryrequests/{delivery_id}",
            json={"dropOffLocation": new_dropoff},
            headers=owner(system),
        )
        assert patch.status_code == 202, patch.text
        await tracking.ended(90)
    statuses = tracking.statuses()
    assert statuses[-1]["stage"] == "Completed"
    final = statuses[-1]["lastKnownLocation"]
    assert (final["latitude"], final["longitude"]) == (47.62, -122.35)
    base = system.url("delivery") + f"/api/deliveries/{delivery_id}"
    delivery = (await http.get(base, headers=owner(system))).json()
    assert delivery["confirmation"]["geoCoordinates"]["latitude"] == 47.62
    history = await http.get(base + "/history", headers=owner(system))
    assert "Rescheduled" in [e["stage"] for e in history.json()]


async def test_a_change_the_drone_cannot_fly_is_refused_told_and_the_delivery_goes_on(
    fast_fleet: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    """A drop-off far to the south of a pickup far to the north: ingestion accepts the change
    (it does not know the delivery's drone), the drone scheduler refuses the trip, and the owner
    sees the refusal on the delivery's status and by e-mail; the drone flies on as planned."""
    system = fast_fleet
    address = f"refused-{uuid.uuid4().hex[:12]}@example.com"
    body = sample(
        pickupLocation="47.84,-122.325",
        dropOffLocation="47.70,-122.33",
        notify={"emailAddress": address},
    )
    delivery_id = await schedule(http, system, body)
    base = system.url("delivery") + f"/api/deliveries/{delivery_id}"
    patch = await http.patch(
        system.url("ingestion") + f"/api/deliveryrequests/{delivery_id}",
        json={"dropOffLocation": "47.412,-122.274"},
        headers=owner(system),
    )
    assert patch.status_code == 202, patch.text

    async def refused() -> bool:
        status = (await http.get(base + "/status", headers=owner(system))).json()
        return "refusedChange" in status or status["stage"] == "Completed"

    await wait_for(refused, 30, "the refusal on the owner's status")
    status = (await http.get(base + "/status", headers=owner(system))).json()
    assert "refusedChange" in status, f"the delivery ended first: {status}"
    change = status["refusedChange"]
    assert change["reason"] == "trip-too-long"
    assert change["dropoff"]["latitude"] == 47.412
    assert "no trip may be longer than 50 miles" in change["detail"]
    public = await http.get(system.url("delivery") + f"/api/deliveries/public/{delivery_id}")
    assert "refusedChange" not in public.text
    events_of = [e.type for e in await read_range(redis) if e.delivery_id == delivery_id]
    assert EventType.CHANGE_REFUSED in events_of
    assert EventType.RESCHEDULED not in events_of

    async def told() -> bool:
        inbox = system.stack.config.inbox_url
        found = await http.get(f"{inbox}/api/v1/search", params={"query": f"to:{address}"})
        subjects = [str(m["Subject"]) for m in found.json()["messages"]]
        return f"Delivery {delivery_id[:8]}: change not made, it goes on as planned" in subjects

    await wait_for(told, 30, "the e-mail saying the change was not made")

    # Nothing was dead-lettered, and the drone delivers where it was going.
    assert await dead_letters_of(redis, {delivery_id}) == []

    async def completed() -> bool:
        stage = (await http.get(base, headers=owner(system))).json()["stage"]
        return bool(stage == "Completed")

    await wait_for(completed, 90, "the delivery completed")
    delivery = (await http.get(base, headers=owner(system))).json()
    assert delivery["confirmation"]["geoCoordinates"]["latitude"] == 47.70
