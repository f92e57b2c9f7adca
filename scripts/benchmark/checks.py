"""What must hold after a run, read from the stores and the APIs of the stack itself.

Every accepted request has its delivery record with a drone (in the delivery service's Redis and
through its API), the drone scheduler holds one assignment per delivery and no drone has two
overlapping busy intervals, and the queue has no dead letters.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import json
import random
import time
from typing import Any

from .stack import BenchStack


def parse_time(value: str) -> float:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def wait_scheduled(
    bench: BenchStack, ids: list[str], timeout: float
) -> tuple[dict[str, dict[str, Any]], float]:
    """Poll the delivery store until every id has its record; return the records (parsed)."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=bench.config.redis_port)
    keys = [f"delivery:{{{delivery_id}}}" for delivery_id in ids]
    deadline = time.monotonic() + timeout
    missing = list(range(len(ids)))
    while missing and time.monotonic() < deadline:
        pipe = client.pipeline(transaction=False)
        for index in missing:
            pipe.exists(keys[index])
        flags = pipe.execute()
        missing = [index for index, flag in zip(missing, flags, strict=True) if not flag]
        if missing:
            time.sleep(0.5)
    drained_at = time.time()
    records: dict[str, dict[str, Any]] = {}
    for start in range(0, len(ids), 2000):
        pipe = client.pipeline(transaction=False)
        for key in keys[start : start + 2000]:
            pipe.hget(key, "state")
        for delivery_id, raw in zip(ids[start : start + 2000], pipe.execute(), strict=True):
            if raw is not None:
                records[delivery_id] = json.loads(raw)
    client.close()
    return records, drained_at


def queue_state(bench: BenchStack) -> dict[str, Any]:
    import redis

    client = redis.Redis(host="127.0.0.1", port=bench.config.redis_port, decode_responses=True)
    try:
        stream = "queue:{deliveryrequests}"
        dead = client.xlen(stream + ":deadletter") if client.exists(stream + ":deadletter") else 0
        pending = 0
        with contextlib.suppress(redis.ResponseError):
            for group in client.xinfo_groups(stream):
                pending += int(group.get("pending", 0))
        return {"dead_letters": int(dead), "pending": pending}
    finally:
        client.close()


def check_assignments(bench: BenchStack, records: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The drone scheduler's view: one assignment per delivery, the drone the delivery names,
    and no drone busy with two deliveries at once. A drone is busy from its assignment until
    its release (the simulator's, when it is home) or, unreleased, its planned return."""
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(
        bench.config.mongo_url, serverSelectionTimeoutMS=5000
    )
    try:
        database = client["dronescheduler"]
        docs = list(
            database["assignments"].find({}, {"droneId": 1, "assignedAt": 1, "busyUntil": 1})
        )
        released = {
            doc["_id"]: doc["releasedAt"]
            for doc in database["releases"].find({}, {"releasedAt": 1})
        }
    finally:
        client.close()
    by_id = {doc["_id"]: doc for doc in docs}
    mismatched = 0
    for delivery_id, record in records.items():
        doc = by_id.get(delivery_id)
        drone = record.get("drone_id", record.get("droneId"))
        if doc is None or doc["droneId"] != drone:
            mismatched += 1
    intervals: dict[str, list[tuple[Any, Any]]] = {}
    for doc in docs:
        end = released.get(doc["_id"], doc["busyUntil"])
        intervals.setdefault(doc["droneId"], []).append((doc["assignedAt"], end))
    overlaps = 0
    for spans in intervals.values():
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            if start < end:
                overlaps += 1
    return {
        "assignments": len(docs),
        "releases": len(released),
        "distinct_drones": len(intervals),
        "assignment_mismatches": mismatched,
        "drone_overlaps": overlaps,
    }


def api_sample_check(bench: BenchStack, ids: list[str], sample: int) -> dict[str, Any]:
    """Through the delivery service's API: a sample of the ids answer 200 with a drone."""
    import urllib.request

    chosen = random.Random(7).sample(  # noqa: S311 - a sample, not a secret
        ids, min(sample, len(ids))
    )
    ok = 0
    headers = {"Authorization": "Bearer " + bench.operator_token()}
    for delivery_id in chosen:
        url = f"{bench.url('delivery')}/api/deliveries/{delivery_id}"
        request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback
        with (
            contextlib.suppress(Exception),
            urllib.request.urlopen(request, timeout=5) as response,  # noqa: S310 - loopback
        ):
            if response.status == 200 and json.loads(response.read()).get("droneId"):
                ok += 1
    return {"api_checked": len(chosen), "api_ok": ok}


def verify(bench: BenchStack, ids: list[str], timeout: float) -> dict[str, Any]:
    """After the runs on a stack: every accepted request scheduled exactly once, one assignment
    each, no drone double-booked, nothing dead-lettered, a sample readable through the API."""
    records, _ = wait_scheduled(bench, ids, timeout)
    scheduled = {k: v for k, v in records.items() if v.get("drone_id", v.get("droneId"))}
    queue = queue_state(bench)
    checks = check_assignments(bench, scheduled)
    checks.update(api_sample_check(bench, ids, 300))
    result = {
        "accepted": len(ids),
        "scheduled": len(scheduled),
        "lost": len(ids) - len(scheduled),
        "duplicate_ids": len(ids) - len(set(ids)),
        **queue,
        **checks,
    }
    result["all_scheduled_exactly_once"] = (
        result["lost"] == 0
        and result["duplicate_ids"] == 0
        and checks["assignment_mismatches"] == 0
        and checks["drone_overlaps"] == 0
        and queue["dead_letters"] == 0
        and checks["api_ok"] == checks["api_checked"]
    )
    return result
