"""End to end: real processes, real sockets, real Redis and FerretDB (see conftest.py).

The client's view: ingestion accepts a request (202) and, within seconds, the delivery service
shows it with its drone; reschedules and cancels reach it; bad requests enqueue nothing. The
operator's view: many concurrent requests are all scheduled once with distinct drones, a killed
consumer or a stopped backend loses nothing, poison messages are dead-lettered, listed and
replayed, and one trace spans the five services.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from dronetesting.samples import SAMPLE_REQUEST

from .conftest import DEAD_LETTER_STREAM, QUEUE_STREAM, System

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


async def wait_for(
    predicate: Callable[[], Awaitable[bool]], within: float, what: str, every: float = 0.2
) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(every)
    raise AssertionError(f"not within {within}s: {what}")


def request(owner: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(json.dumps(SAMPLE_REQUEST))
    body["ownerId"] = owner
    body["packageInfo"]["packageId"] = f"p-{uuid.uuid4().hex}"
    body.update(changes)
    return body


async def schedule(http: httpx.AsyncClient, system: System, body: dict[str, Any]) -> str:
    """POST ``body`` as its owner (a customer token for its ownerId)."""
    response = await http.post(
        system.url("ingestion") + "/api/deliveryrequests",
        json=body,
        headers=system.customer(body["ownerId"]),
    )
    assert response.status_code == 202, response.text
    delivery_id = response.json()["deliveryId"]
    assert isinstance(delivery_id, str)
    return delivery_id


def reader(system: System) -> dict[str, str]:
    """A service that may read every delivery (as the workflow does)."""
    return system.service("delivery", "Deliveries.Write")


async def delivery_of(
    http: httpx.AsyncClient,
    system: System,
    delivery_id: str,
    headers: dict[str, str] | None = None,
) -> dict[str, Any] | None:
    response = await http.get(
        system.url("delivery") + f"/api/deliveries/{delivery_id}",
        headers=headers or reader(system),
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, dict)
    return body


async def stage_of(
    http: httpx.AsyncClient,
    system: System,
    delivery_id: str,
    headers: dict[str, str] | None = None,
) -> str | None:
    response = await http.get(
        system.url("delivery") + f"/api/deliveries/{delivery_id}/status",
        headers=headers or reader(system),
    )
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return str(response.json()["stage"])


async def all_scheduled(
    http: httpx.AsyncClient, system: System, ids: list[str], within: float
) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    async def done() -> bool:
        missing = [i for i in ids if i not in found]
        results = await asyncio.gather(*(delivery_of(http, system, i) for i in missing[:50]))
        found.update(
            (delivery_id, delivery)
            for delivery_id, delivery in zip(missing, results, strict=False)
            if delivery is not None and delivery.get("droneId")
        )
        return len(found) == len(ids)

    await wait_for(done, within, f"all {len(ids)} deliveries scheduled ({len(found)} were)")
    return found


async def owner_count(http: httpx.AsyncClient, system: System, owner: str) -> int:
    now = dt.datetime.now(dt.UTC)
    response = await http.get(
        system.url("delivery") + "/api/deliveries/summary",
        params={"ownerId": owner, "year": now.year, "month": now.month},
        headers=reader(system),
    )
    assert response.status_code == 200, response.text
    return int(response.json()["count"])


async def stream_entries(redis: Redis, key: str) -> list[dict[str, bytes]]:
    """Every entry of a stream as ``{field: raw value}``."""
    entries: Any = await redis.xrange(key)
    return [{_text(k): bytes(v) for k, v in fields.items()} for _, fields in entries or []]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


async def dead_letters_of(redis: Redis, ids: set[str]) -> list[dict[str, str]]:
    letters = []
    for fields in await stream_entries(redis, DEAD_LETTER_STREAM):
        try:
            body = json.loads(fields["body"])
        except ValueError:
            continue
        if isinstance(body, dict) and body.get("deliveryId") in ids:
            letters.append({k: v.decode(errors="replace") for k, v in fields.items()})
    return letters


async def entries_added(redis: Redis) -> int:
    try:
        info = await redis.xinfo_stream(QUEUE_STREAM)
    except Exception:  # no stream yet
        return 0
    return int(info["entries-added"])


async def assignment_of(http: httpx.AsyncClient, system: System, delivery_id: str) -> Any:
    response = await http.get(
        system.url("dronescheduler") + f"/api/dronedeliveries/{delivery_id}",
        headers=system.service("dronescheduler", "Drones.Assign"),
    )
    assert response.status_code == 200, response.text
    return response.json()


# -- the client's view --------------------------------------------------------------------------


async def test_sample_request_is_scheduled_rescheduled_and_cancelled(
    system: System, http: httpx.AsyncClient
) -> None:
    ingestion = system.url("ingestion") + "/api/deliveryrequests"
    owner = system.customer()  # what `make token` prints: contoso/myowner, the sample's owner
    assert (await http.post(ingestion, json=SAMPLE_REQUEST)).status_code == 401
    response = await http.post(ingestion, json=SAMPLE_REQUEST, headers=owner)
    assert response.status_code == 202, response.text
    delivery_id = response.json()["deliveryId"]
    assert str(uuid.UUID(delivery_id)) == delivery_id
    assert response.headers["Location"] == f"/api/deliveries/{delivery_id}"

    async def scheduled() -> bool:
        delivery = await delivery_of(http, system, delivery_id, owner)
        return delivery is not None and bool(delivery.get("droneId"))

    started = time.monotonic()
    await wait_for(scheduled, 10, "the sample delivery with its drone")
    latency = time.monotonic() - started
    delivery = await delivery_of(http, system, delivery_id, owner)
    assert delivery is not None
    assert delivery["owner"] == {"userId": "myowner", "accountId": "contoso"}
    assignment = await assignment_of(http, system, delivery_id)
    assert assignment["droneId"] == delivery["droneId"]

    patch = await http.patch(
        f"{ingestion}/{delivery_id}", json={"dropOffLocation": "47.61,-122.33"}, headers=owner
    )
    assert patch.status_code == 202, patch.text

    async def rescheduled() -> bool:
        delivery = await delivery_of(http, system, delivery_id, owner)
        return delivery is not None and delivery["dropoff"]["latitude"] == 47.61

    await wait_for(rescheduled, 10, "the reschedule")
    history = await http.get(
        system.url("delivery") + f"/api/deliveries/{delivery_id}/history", headers=owner
    )
    assert "Rescheduled" in [event["stage"] for event in history.json()]

    cancel = await http.delete(f"{ingestion}/{delivery_id}", headers=owner)
    assert cancel.status_code == 202, cancel.text

    async def cancelled() -> bool:
        return await stage_of(http, system, delivery_id, owner) == "Cancelled"

    await wait_for(cancelled, 10, "the cancel")
    print(f"sample request scheduled {latency:.2f}s after its 202")  # noqa: T201


async def test_a_reschedule_back_to_an_earlier_place_is_applied(
    system: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    # X -> Y -> X: three requests, three messages (ids name requests, not bodies), and the last
    # one wins downstream.
    ingestion = system.url("ingestion") + "/api/deliveryrequests"
    delivery_id = await schedule(http, system, request("back-and-forth"))
    await all_scheduled(http, system, [delivery_id], 10)
    added = await entries_added(redis)
    owner = system.customer("back-and-forth")
    for place in ("47.61,-122.33", "47.65,-122.30", "47.61,-122.33"):
        patch = await http.patch(
            f"{ingestion}/{delivery_id}", json={"dropOffLocation": place}, headers=owner
        )
        assert patch.status_code == 202, patch.text

    async def settled() -> bool:
        if await entries_added(redis) < added + 3 or await redis.xlen(QUEUE_STREAM) > 0:
            return False
        delivery = await delivery_of(http, system, delivery_id)
        return delivery is not None and delivery["dropoff"]["latitude"] == 47.61

    await wait_for(settled, 15, "the three reschedules, the last one in force")
    assignment = await assignment_of(http, system, delivery_id)
    assert (assignment["dropoff"]["latitude"], assignment["dropoff"]["longitude"]) == (
        47.61,
        -122.33,
    )


async def test_the_requests_notify_is_told_by_e_mail_through_the_whole_stack(
    system: System, http: httpx.AsyncClient
) -> None:
    """ingestion → queue → workflow → delivery (its events) → notifier → Mailpit."""
    address = f"sys-{uuid.uuid4().hex[:12]}@example.com"
    delivery_id = await schedule(
        http, system, request("notified", notify={"emailAddress": address})
    )
    inbox = system.stack.config.inbox_url

    async def mails() -> list[dict[str, Any]]:
        found = await http.get(f"{inbox}/api/v1/search", params={"query": f"to:{address}"})
        messages: list[dict[str, Any]] = found.json()["messages"]
        return messages

    async def assigned() -> bool:
        return len(await mails()) == 1

    await wait_for(assigned, 20, "the Assigned e-mail in Mailpit")
    cancel = await http.delete(
        f"{system.url('ingestion')}/api/deliveryrequests/{delivery_id}",
        headers=system.customer("notified"),
    )
    assert cancel.status_code == 202

    async def both() -> bool:
        return len(await mails()) == 2

    await wait_for(both, 20, "the Cancelled e-mail in Mailpit")
    subjects = sorted(m["Subject"] for m in await mails())
    assert subjects == [
        f"Delivery {delivery_id[:8]}: a drone is on its way",
        f"Delivery {delivery_id[:8]}: cancelled",
    ]
    notifications = system.url("notifier") + "/api/notifications"
    query = {"deliveryId": delivery_id}
    # An internal route: a service holding Notifications.Read (the web app) reads it, the
    # customer does not.
    refused = await http.get(notifications, params=query, headers=system.customer("notified"))
    assert refused.status_code == 403
    listed = await http.get(
        notifications, params=query, headers=system.service("notifier", "Notifications.Read")
    )
    assert [n["status"] for n in listed.json()["notifications"]] == ["sent", "sent"]


async def test_bad_requests_enqueue_nothing(
    system: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    url = system.url("ingestion") + "/api/deliveryrequests"
    before = await entries_added(redis)
    missing = {k: v for k, v in SAMPLE_REQUEST.items() if k != "pickupLocation"}
    bad_enum = {**SAMPLE_REQUEST, "packageInfo": {**SAMPLE_REQUEST["packageInfo"], "size": "Huge"}}
    cases: list[tuple[int, dict[str, Any]]] = [
        (400, {"json": missing}),
        (400, {"json": bad_enum}),
        (400, {"json": {**SAMPLE_REQUEST, "confirmationRequired": "Maybe"}}),
        (
            400,
            {
                "json": {
                    **SAMPLE_REQUEST,
                    "packageInfo": {**SAMPLE_REQUEST["packageInfo"], "weight": 0},
                }
            },
        ),
        (400, {"content": b'{"ownerId": ', "headers": {"Content-Type": "application/json"}}),
        (415, {"content": json.dumps(SAMPLE_REQUEST), "headers": {"Content-Type": "text/plain"}}),
        (413, {"json": {**SAMPLE_REQUEST, "deadline": "x" * 70_000}}),
    ]
    owner = system.customer()
    for status, kwargs in cases:
        headers = {**owner, **kwargs.pop("headers", {})}
        response = await http.post(url, headers=headers, **kwargs)
        assert response.status_code == status, (kwargs, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    bad_id = await http.delete(f"{url}/not-a-uuid", headers=owner)
    assert bad_id.status_code == 400
    empty = await http.patch(f"{url}/{uuid.uuid4()}", json={}, headers=owner)
    assert empty.status_code == 400
    assert await entries_added(redis) == before


async def test_one_trace_spans_the_five_services(system: System, http: httpx.AsyncClient) -> None:
    trace_id = uuid.uuid4().hex
    owner = f"trace-{uuid.uuid4().hex[:8]}"
    headers = {
        "traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01",
        **system.customer(owner),
    }
    response = await http.post(
        system.url("ingestion") + "/api/deliveryrequests", json=request(owner), headers=headers
    )
    assert response.status_code == 202
    expected = {"ingestion", "workflow", "package", "dronescheduler", "delivery"}

    async def traced() -> bool:
        return system.collector.services_in(trace_id) >= expected

    await wait_for(traced, 20, f"spans of {expected} in trace {trace_id}", every=0.5)


# -- the operator's view ------------------------------------------------------------------------


async def test_concurrent_requests_are_each_scheduled_once(
    system: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    owner = f"load-{uuid.uuid4().hex[:8]}"
    count = 200
    started = time.monotonic()
    ids = await asyncio.gather(*(schedule(http, system, request(owner)) for _ in range(count)))
    accepted = time.monotonic() - started
    assert len(set(ids)) == count
    deliveries = await all_scheduled(http, system, ids, within=90)
    elapsed = time.monotonic() - started
    after_last = elapsed - accepted
    drones = [d["droneId"] for d in deliveries.values()]
    assert len(set(drones)) == count, "a drone was booked twice"
    assert await owner_count(http, system, owner) == count, "duplicate or missing deliveries"
    assignments = await asyncio.gather(*(assignment_of(http, system, i) for i in ids))
    assert {a["deliveryId"]: a["droneId"] for a in assignments} == {
        i: deliveries[i]["droneId"] for i in ids
    }
    assert await dead_letters_of(redis, set(ids)) == []
    print(  # noqa: T201
        f"{count} concurrent requests: all 202 in {accepted:.1f}s, all scheduled "
        f"{after_last:.1f}s after the last 202 ({elapsed:.1f}s in all)"
    )


async def test_a_killed_consumer_loses_nothing(
    system: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    owner = f"kill-{uuid.uuid4().hex[:8]}"
    victim = system.stack.processes["workflow-1"]
    assert victim.popen is not None
    marker = f"-{victim.popen.pid}-"
    count = 150
    held: list[int] = []

    async def victim_holds_messages() -> bool:
        consumers: Any = await redis.xinfo_consumers(QUEUE_STREAM, "workflow")
        held[:] = [
            int(c["pending"]) for c in consumers if marker in _text(c["name"]) and c["pending"]
        ]
        return bool(held)

    try:
        posting = asyncio.gather(*(schedule(http, system, request(owner)) for _ in range(count)))
        # Kill -9 one of the two consumers while it holds messages (locked, being handled).
        await wait_for(victim_holds_messages, 30, "the victim to hold messages", every=0.01)
        victim.signal(signal.SIGKILL)
        assert await asyncio.to_thread(victim.wait, 10) == -signal.SIGKILL
        ids = await posting
        deliveries = await all_scheduled(http, system, ids, within=60)
        assert len({d["droneId"] for d in deliveries.values()}) == count
        assert await owner_count(http, system, owner) == count
        assert await dead_letters_of(redis, set(ids)) == []
        # What the victim held was taken over once its locks expired.
        consumers: Any = await redis.xinfo_consumers(QUEUE_STREAM, "workflow")
        assert all(int(c["pending"]) == 0 for c in consumers if marker in _text(c["name"]))
        print(f"killed a consumer holding {held[0]} messages; all {count} scheduled once")  # noqa: T201
    finally:
        await asyncio.to_thread(system.restart, "workflow-1")


async def test_a_stopped_backend_delays_but_loses_nothing(
    system: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    owner = f"outage-{uuid.uuid4().hex[:8]}"
    delivery = system.stack.processes["delivery"]
    delivery.signal(signal.SIGTERM)
    assert await asyncio.to_thread(delivery.wait, 15) is not None
    try:
        ids = await asyncio.gather(*(schedule(http, system, request(owner)) for _ in range(20)))
        # Longer than one attempt's retry budget: messages are abandoned and redelivered.
        await asyncio.sleep(8)
        assert await dead_letters_of(redis, set(ids)) == []
    finally:
        await asyncio.to_thread(system.restart, "delivery")
    deliveries = await all_scheduled(http, system, ids, within=60)
    assert len(deliveries) == len(ids)
    assert await owner_count(http, system, owner) == len(ids)
    assert await dead_letters_of(redis, set(ids)) == []
    # They did fail meanwhile: abandoned after their backoff and delivered again.
    retried = {i for i in ids for line in system.log_lines("transient failure") if i in line}
    assert retried


async def test_a_rejected_request_is_dead_lettered_then_replayed_once_the_fleet_is_fixed(
    system: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    # A fleet whose heaviest drone carries 50: an 80 (kg) package is refused for good (422).
    small_fleet = [
        {"name": "light", "max_size": "Small", "max_weight": 5, "speed_mph": 45, "share": 1},
        {"name": "heavy", "max_size": "Large", "max_weight": 50, "speed_mph": 30, "share": 1},
    ]
    fleet_env = "DRONESCHEDULER_FLEET__CLASSES"
    await asyncio.to_thread(
        system.reconfigure, "dronescheduler", {fleet_env: json.dumps(small_fleet)}
    )
    try:
        heavy = request(f"heavy-{uuid.uuid4().hex[:8]}")
        heavy["packageInfo"].update(size="Large", weight=80)
        delivery_id = await schedule(http, system, heavy)

        async def dead() -> bool:
            return bool(await dead_letters_of(redis, {delivery_id}))

        await wait_for(dead, 15, "the refused request in the dead letters")
        listed = json.loads(await deadletters_command(system, "list", "--json", "--limit", "1000"))
        [row] = [r for r in listed if r["deliveryId"] == delivery_id]
        assert row["reason"] == "DroneschedulerRejected"
        assert "422" in row["description"]
        assert row["operation"] == "delivery"
        assert await delivery_of(http, system, delivery_id) is None  # nothing half-done
    finally:
        # The fix: the fleet gets its heavy drones back.
        await asyncio.to_thread(system.reconfigure, "dronescheduler", {fleet_env: None})
    output = await deadletters_command(system, "replay", row["id"])
    assert f"replayed {row['id']}" in output
    [delivery] = (await all_scheduled(http, system, [delivery_id], within=20)).values()
    assert delivery["droneId"]
    assert await dead_letters_of(redis, {delivery_id}) == []


async def test_a_malformed_message_is_dead_lettered_and_listed(
    system: System, http: httpx.AsyncClient, redis: Redis
) -> None:
    # A malformed body put straight on the stream: dead-lettered at once.
    message_id = f"garbage-{uuid.uuid4().hex[:8]}"
    await redis.xadd(
        QUEUE_STREAM,
        {
            "message_id": message_id,
            "body": b"{not json",
            "content_type": "application/json",
            "properties": json.dumps({"operation": "delivery"}),
        },
    )

    async def dead() -> bool:
        entries = await stream_entries(redis, DEAD_LETTER_STREAM)
        return any(fields["message_id"].decode() == message_id for fields in entries)

    await wait_for(dead, 10, "the malformed message in the dead letters")
    rows = await deadletters_command(system, "list", "--json", "--limit", "1000")
    [row] = [r for r in json.loads(rows) if r["messageId"] == message_id]
    assert row["reason"] == "MalformedMessage"
    assert row["operation"] == "delivery"
    assert row["deliveryCount"] == 1
    assert row["description"]

    # Replayed, it is still malformed: it comes back to the dead letters (with a new id).
    output = await deadletters_command(system, "replay", row["id"])
    assert f"replayed {row['id']}" in output

    async def dead_again() -> bool:
        listed = json.loads(await deadletters_command(system, "list", "--json", "--limit", "1000"))
        return any(r["messageId"] == message_id and r["id"] != row["id"] for r in listed)

    await wait_for(dead_again, 20, "the replayed malformed message back in the dead letters")


async def deadletters_command(system: System, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKFLOW_")}
    env["WORKFLOW_REDIS__URL"] = system.redis_url
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "workflow.deadletters",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode()
