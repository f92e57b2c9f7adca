"""The tracking streams (Server-Sent Events), over real sockets: the app served by uvicorn on
loopback, fixes published on the real stream, real Redis.

First event at once (the status), events as fixes and stages arrive (about one a second, stage
changes never dropped), heartbeats, ``end`` and the server closing after Completed, 404
before any stream, resuming with ``Last-Event-ID``, the watcher limit, and the clock's own stage
change without telemetry. Across replicas and on SIGTERM: ``test_stream_processes.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from httpx_sse import ServerSentEvent, SSEError, aconnect_sse

from delivery.settings import SseSettings
from dronecommon.domain import format_utc
from dronecommon.fixes import Phase
from dronetesting.apps import running_server

JSON = dict[str, Any]
BASE = "/api/deliveries"
PICKUP = {"latitude": 47.60, "longitude": -122.33, "altitude": 0.0}
DROPOFF = {"latitude": 47.70, "longitude": -122.20, "altitude": 0.0}
EVENT_ID = re.compile(r"^\d+-\d+\.\d+$")


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def plan(pickup_in: float = 600, delivery_in: float = 1800) -> JSON:
    return {
        "pickupETA": format_utc(now() + dt.timedelta(seconds=pickup_in)),
        "deliveryETA": format_utc(now() + dt.timedelta(seconds=delivery_in)),
    }


@contextlib.asynccontextmanager
async def served(make_app: Callable[..., Any], **values: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        running_server(make_app(**values)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield client


@pytest.fixture
def app_settings(fast: Callable[..., JSON]) -> Callable[..., JSON]:
    def settings(**sse: Any) -> JSON:
        return fast(sse=SseSettings(**sse))

    return settings


async def create(
    client: httpx.AsyncClient, new_delivery: Callable[..., JSON], name: str, **changes: Any
) -> None:
    body = new_delivery(name, pickup=PICKUP, dropoff=DROPOFF, **(plan() | changes))
    response = await client.put(f"{BASE}/{name}", json=body)
    assert response.status_code == 201, response.text


class Reader:
    """Events of one stream, read in the background, with their arrival times."""

    def __init__(self, client: httpx.AsyncClient, path: str, headers: dict[str, str] | None = None):
        self.client = client
        self.path = path
        self.headers = headers or {}
        self.events: list[tuple[float, ServerSentEvent]] = []
        self.ended = asyncio.Event()  # the server closed the stream
        self.status_code = 0
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Reader:
        self._task = asyncio.create_task(self._read())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def _read(self) -> None:
        try:
            async with aconnect_sse(self.client, "GET", self.path, headers=self.headers) as source:
                self.status_code = source.response.status_code
                async for event in source.aiter_sse():
                    self.events.append((time.monotonic(), event))
                    self._arrived.set()
        except SSEError:
            pass  # not a stream: the status code tells why
        finally:
            self.ended.set()
            self._arrived.set()

    async def until(
        self, predicate: Callable[[list[ServerSentEvent]], bool], within: float = 10
    ) -> list[ServerSentEvent]:
        deadline = time.monotonic() + within
        while True:
            self._arrived.clear()
            if predicate(self.all()):
                return self.all()
            left = deadline - time.monotonic()
            seen = [(e.event, e.data[:80]) for e in self.all()]
            assert left > 0, f"not within {within}s; got {seen}"
            assert not self.ended.is_set(), f"the stream ended; got {seen}"
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), left)

    def all(self) -> list[ServerSentEvent]:
        return [event for _, event in self.events]

    def statuses(self) -> list[JSON]:
        return [json.loads(e.data) for e in self.all() if e.event == "status"]


def count(n: int) -> Callable[[list[ServerSentEvent]], bool]:
    return lambda events: len(events) >= n


async def test_the_first_event_is_the_status_at_once(
    make_app: Callable[..., Any],
    app_settings: Callable[..., JSON],
    fleet: Any,
    new_delivery: Callable[..., JSON],
) -> None:
    async with served(make_app, **app_settings()) as client:
        await create(client, new_delivery, "s-1")
        await fleet.publish(fleet.fix("s-1", now(), Phase.TO_PICKUP, 47.55, -122.33))
        started = time.monotonic()
        async with Reader(client, f"{BASE}/s-1/tracking") as owner:
            (first,) = await owner.until(count(1), within=2)
        assert time.monotonic() - started < 1.0
        assert owner.status_code == 200
        assert first.event == "status"
        assert EVENT_ID.match(first.id)
        assert first.retry == 3000
        status = (await client.get(f"{BASE}/s-1/status")).json()
        assert json.loads(first.data) == status
        assert status["drone"]["droneId"] == "drone-7"

        async with Reader(client, f"{BASE}/public/s-1/tracking") as anyone:
            (first,) = await anyone.until(count(1), within=2)
        public = json.loads(first.data)
        assert public["drone"] == {k: v for k, v in status["drone"].items() if k != "droneId"}
        assert {k: v for k, v in public.items() if k != "drone"} == {
            k: v for k, v in status.items() if k != "drone"
        }


async def test_fixes_stream_about_once_a_second_and_stages_are_never_dropped(
    make_app: Callable[..., Any],
    app_settings: Callable[..., JSON],
    fleet: Any,
    new_delivery: Callable[..., JSON],
) -> None:
    async with served(make_app, **app_settings()) as client:
        await create(client, new_delivery, "s-2")
        async with Reader(client, f"{BASE}/public/s-2/tracking") as reader:
            await reader.until(count(1))
            # Ten fixes within half a second, a stage change among them ...
            for step in range(10):
                phase = (
                    Phase.TO_PICKUP
                    if step < 3
                    else Phase.AT_PICKUP
                    if step < 5
                    else Phase.TO_DROPOFF
                )
                await fleet.publish(
                    fleet.fix(
                        "s-2", now(), phase, 47.55 + step * 0.01, -122.33, speed_mph=40 + step
                    )
                )
                await asyncio.sleep(0.05)
            # ... then one every 0.3 s for about three seconds.
            for step in range(10):
                await fleet.publish(
                    fleet.fix(
                        "s-2",
                        now(),
                        Phase.TO_DROPOFF,
                        47.65 + step * 0.004,
                        -122.3,
                        speed_mph=45 + step,
                    )
                )
                await asyncio.sleep(0.3)
            last = fleet.seq

            def caught_up(events: list[ServerSentEvent]) -> bool:
                drone = json.loads(events[-1].data)["drone"]
                return drone is not None and drone["speedMph"] == 54

            await reader.until(caught_up, within=3)
        times = [arrived for arrived, _ in reader.events]
        statuses = reader.statuses()
        # The stage entries (first report, then the pickup left behind) came through ...
        stages = [(s["stage"], (s["drone"] or {}).get("phase")) for s in statuses]
        assert ("HeadedToPickup", "ToPickup") in stages
        assert ("HeadedToDropoff", "ToDropoff") in stages
        # ... and the drone moved with its ETAs, at no more than one status a second besides a
        # burst of two (and the stage entries, sent with the status that followed them).
        assert len({json.dumps(s["drone"]) for s in statuses}) >= 4
        assert len({s["deliveryETA"] for s in statuses}) >= 4
        bursts = [b - a for a, b in itertools.pairwise(times) if b - a > 0.05]
        assert all(gap >= 0.85 for gap in bursts[1:]), bursts
        assert 3 <= len(bursts) <= 6, bursts
        assert last >= 20


async def test_heartbeats_keep_an_idle_stream_alive(
    make_app: Callable[..., Any],
    app_settings: Callable[..., JSON],
    new_delivery: Callable[..., JSON],
) -> None:
    async with served(make_app, **app_settings(heartbeat=0.2)) as client:
        await create(client, new_delivery, "s-3")
        lines: list[str] = []
        started = time.monotonic()
        async with client.stream("GET", f"{BASE}/s-3/tracking") as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            assert response.headers["cache-control"] == "no-store"
            async for line in response.aiter_lines():
                lines.append(line)
                if sum(line.startswith(":") for line in lines) >= 3:
                    break
        assert time.monotonic() - started < 2
        assert [line for line in lines if line.startswith("event:")] == ["event: status"]


async def test_completed_ends_the_stream_and_the_server_closes_it(
    make_app: Callable[..., Any],
    app_settings: Callable[..., JSON],
    new_delivery: Callable[..., JSON],
) -> None:
    async with served(make_app, **app_settings()) as client:
        await create(client, new_delivery, "s-4", confirmationRequired="Picture")
        async with Reader(client, f"{BASE}/s-4/tracking") as reader:
            await reader.until(count(1))
            confirmation = {
                "dateTime": format_utc(now()),
                "geoCoordinates": DROPOFF,
                "confirmationType": "Picture",
                "confirmationBlob": "a picture",
            }
            posted = await client.post(f"{BASE}/s-4/confirmations", json=confirmation)
            assert posted.status_code == 204
            await asyncio.wait_for(reader.ended.wait(), 5)  # the server closed it
        events = reader.all()
        assert [e.event for e in events][-2:] == ["status", "end"]
        assert json.loads(events[-2].data)["stage"] == "Completed"
        assert json.loads(events[-1].data) == {"stage": "Completed"}
        assert all(EVENT_ID.match(e.id) for e in events)

        # A stream of a delivery already closed: its status, end, closed.
        async with Reader(client, f"{BASE}/public/s-4/tracking") as late:
            await asyncio.wait_for(late.ended.wait(), 5)
        assert [e.event for e in late.all()] == ["status", "end"]


async def test_an_unknown_delivery_is_404_before_any_stream(
    make_app: Callable[..., Any], app_settings: Callable[..., JSON], problem: Callable[..., JSON]
) -> None:
    async with served(make_app, **app_settings()) as client:
        for path in (f"{BASE}/nobody/tracking", f"{BASE}/public/nobody/tracking"):
            response = await client.get(path, headers={"Accept": "text/event-stream"})
            body = problem(response, 404)
            assert body["type"].endswith("delivery-not-found")
        problem(await client.get(f"{BASE}/{'x' * 129}/tracking"), 400, fields={"id"})
        problem(await client.get(f"{BASE}/public/bad%20id/tracking"), 400, fields={"id"})


async def test_resuming_replays_the_stage_changes_missed(
    make_app: Callable[..., Any],
    app_settings: Callable[..., JSON],
    fleet: Any,
    new_delivery: Callable[..., JSON],
) -> None:
    async with served(make_app, **app_settings()) as client:
        await create(client, new_delivery, "s-5")
        async with Reader(client, f"{BASE}/s-5/tracking") as reader:
            (first,) = await reader.until(count(1))
        # Meanwhile (nobody watching): the drone flies, picks up, then the delivery completes.
        fix = fleet.fix
        await fleet.publish(fix("s-5", now(), Phase.TO_PICKUP, 47.55, -122.33))
        await fleet.publish(fix("s-5", now(), Phase.AT_PICKUP, 47.60, -122.33, speed_mph=0))
        await fleet.publish(fix("s-5", now(), Phase.TO_DROPOFF, 47.61, -122.32))
        resume = {"Last-Event-ID": first.id}
        async with Reader(client, f"{BASE}/s-5/tracking", resume) as reader:
            events = await reader.until(count(2))
            await asyncio.sleep(0.3)
        stages = [(s["stage"], s["drone"]["phase"]) for s in reader.statuses()]
        assert stages == [("HeadedToPickup", "ToPickup"), ("HeadedToDropoff", "ToDropoff")]
        # The last stage entry is the current status here (else the status follows it).
        assert reader.statuses()[-1] == (await client.get(f"{BASE}/s-5/status")).json()
        assert events[0].retry == 3000
        ids = [e.id for e in events]
        assert ids == sorted(ids, key=lambda i: [int(p) for p in re.split(r"[-.]", i)])

        confirmation = {
            "dateTime": format_utc(now()),
            "geoCoordinates": DROPOFF,
            "confirmationType": "None",
        }
        assert (
            await client.post(f"{BASE}/s-5/confirmations", json=confirmation)
        ).status_code == 204
        async with Reader(client, f"{BASE}/public/s-5/tracking", resume) as reader:
            await asyncio.wait_for(reader.ended.wait(), 5)
        statuses = reader.statuses()
        assert [s["stage"] for s in statuses] == ["HeadedToPickup", "HeadedToDropoff", "Completed"]
        assert all("droneId" not in s["drone"] for s in statuses)
        assert reader.all()[-1].event == "end"


async def test_a_last_event_id_that_is_not_ours_starts_afresh(
    make_app: Callable[..., Any],
    app_settings: Callable[..., JSON],
    new_delivery: Callable[..., JSON],
) -> None:
    async with served(make_app, **app_settings()) as client:
        await create(client, new_delivery, "s-6")
        status = (await client.get(f"{BASE}/s-6/status")).json()
        for bad in ("nonsense", "", "12-x.3", "9" * 30, "99999999999999-0.0", "1-0." + "7" * 300):
            async with Reader(client, f"{BASE}/s-6/tracking", {"Last-Event-ID": bad}) as reader:
                (first,) = await reader.until(count(1))
            assert reader.status_code == 200
            assert json.loads(first.data) == status, bad


async def test_the_clock_moves_the_stage_without_telemetry(
    make_app: Callable[..., Any],
    app_settings: Callable[..., JSON],
    new_delivery: Callable[..., JSON],
) -> None:
    async with served(make_app, **app_settings()) as client:
        await create(client, new_delivery, "s-7", **plan(pickup_in=1.0, delivery_in=600))
        async with Reader(client, f"{BASE}/s-7/tracking") as reader:
            await reader.until(lambda events: len(events) >= 2, within=5)
        assert [s["stage"] for s in reader.statuses()][:2] == ["HeadedToPickup", "HeadedToDropoff"]
        first, second = reader.events[:2]
        assert 0.5 < second[0] - first[0] < 2.5


async def test_watchers_beyond_the_limit_are_refused(
    make_app: Callable[..., Any],
    app_settings: Callable[..., JSON],
    new_delivery: Callable[..., JSON],
    problem: Callable[..., JSON],
) -> None:
    async with served(make_app, **app_settings(max_watchers=2, retry_after=7)) as client:
        await create(client, new_delivery, "s-8")
        async with (
            Reader(client, f"{BASE}/s-8/tracking") as one,
            Reader(client, f"{BASE}/public/s-8/tracking") as two,
        ):
            await one.until(count(1))
            await two.until(count(1))
            refused = await client.get(f"{BASE}/s-8/tracking")
            body = problem(refused, 503)
            assert body["type"].endswith("too-many-watchers")
            assert refused.headers["retry-after"] == "7"

        # Slots are given back when streams end.
        async def admitted() -> bool:
            async with Reader(client, f"{BASE}/s-8/tracking") as again:
                await again.until(lambda events: bool(events) or again.ended.is_set())
                return again.status_code == 200

        deadline = time.monotonic() + 5
        while not await admitted():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)


async def test_a_delivery_that_goes_away_closes_its_streams(
    make_app: Callable[..., Any],
    app_settings: Callable[..., JSON],
    fleet: Any,
    redis: Any,
    new_delivery: Callable[..., JSON],
) -> None:
    async with served(make_app, **app_settings()) as client:
        await create(client, new_delivery, "s-9")
        async with Reader(client, f"{BASE}/s-9/tracking") as reader:
            await reader.until(count(1))
            await redis.delete("delivery:{s-9}")  # as when a closed delivery expires
            await fleet.publish(fleet.fix("s-9", now(), Phase.TO_PICKUP, 47.55, -122.33))
            await redis.publish("delivery:tracking:s-9", "u")
            await asyncio.wait_for(reader.ended.wait(), 5)
        assert [e.event for e in reader.all()] == ["status"]  # closed, no end: nothing to end
        # The same id again (a new delivery): a fresh stream of it.
        await create(client, new_delivery, "s-9")
        async with Reader(client, f"{BASE}/s-9/tracking") as again:
            await again.until(count(1))
            await fleet.publish(fleet.fix("s-9", now(), Phase.TO_PICKUP, 47.56, -122.33))
            await again.until(count(2))
