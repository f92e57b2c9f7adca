"""Locust scenarios against the public API (ingestion + delivery).

    locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 60s --host http://127.0.0.1:8443
    INGESTION_URL=http://127.0.0.1:8001 DELIVERY_URL=http://127.0.0.1:8002 \
        locust -f loadtests/locustfile.py --headless -u 50 -r 10 -t 60s

Hosts: one ``--host`` (the gateway, which routes ``/api/deliveryrequests`` to ingestion and
``/api/deliveries`` to delivery), or ``INGESTION_URL`` and ``DELIVERY_URL`` (the native stack:
8001 and 8002). The environment variables win over ``--host``.

Users (weights from the environment):

- ``SchedulingCustomer`` (``LOADTEST_WEIGHT_SCHEDULE``, 3): POSTs a delivery request, then polls
  ``GET /api/deliveries/{id}/status`` until it is *scheduled* — the delivery exists and has a drone
  (``GET /api/deliveries/{id}`` answers 200 with a ``droneId``; the status route alone cannot say,
  as it answers for every existing delivery). The time from the 202 to that moment is reported as
  the request ``scheduled`` of type ``E2E`` (so its percentiles show in the reports). 404s while
  polling are expected and not failures; not scheduled within ``LOADTEST_SCHEDULE_TIMEOUT``
  seconds (30) is a failure.
- ``StatusTracker`` (``LOADTEST_WEIGHT_STATUS``, 5): reads the status (and now and then the
  delivery and its history) of deliveries that exist — the ones this run scheduled, shared by all
  users of the process; it creates a few itself when none exist yet.
- ``ChangingCustomer`` (``LOADTEST_WEIGHT_CHANGE``, 1): schedules, waits until scheduled, then
  reschedules (PATCH) and/or cancels (DELETE), and checks the stage the delivery service shows.

Every request carries a fresh W3C ``traceparent`` and ``baggage: synthetic_request=true``, and
the bearer token ``LOADTEST_TOKEN`` (a customer's: ``LOADTEST_TOKEN=$(make -s token)``; the
native runner mints one for the stack it starts). With a token the requests leave ``ownerId``
out: every delivery is that customer's, so every user may read every delivery of the run. The
target's per-account limits (``INGESTION_LIMITS__*``) must allow the load, or its 429s count as
failures; the native runner raises them.

Thresholds, checked when the run ends (the exit code is 1 when one fails):
``LOADTEST_MAX_P99_MS`` (1000; over every API request, polling and E2E excluded),
``LOADTEST_MAX_FAILURE_RATIO`` (0.01), ``LOADTEST_MIN_RPS`` (0 = off),
``LOADTEST_MAX_SCHEDULE_P99_MS`` (10000; the E2E ``scheduled`` time).
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import threading
import time
import uuid
from collections import deque
from typing import Any

from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment

logger = logging.getLogger("loadtest")


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


INGESTION_URL = os.environ.get("INGESTION_URL", "").rstrip("/")
DELIVERY_URL = os.environ.get("DELIVERY_URL", "").rstrip("/")
SCHEDULE_TIMEOUT = _env_float("LOADTEST_SCHEDULE_TIMEOUT", 30.0)
POLL_INTERVAL = _env_float("LOADTEST_POLL_INTERVAL", 0.1)
MAX_P99_MS = _env_float("LOADTEST_MAX_P99_MS", 1000.0)
MAX_FAILURE_RATIO = _env_float("LOADTEST_MAX_FAILURE_RATIO", 0.01)
MIN_RPS = _env_float("LOADTEST_MIN_RPS", 0.0)
MAX_SCHEDULE_P99_MS = _env_float("LOADTEST_MAX_SCHEDULE_P99_MS", 10000.0)
OWNERS = [f"loadtest-owner-{n}" for n in range(20)]
TOKEN = os.environ.get("LOADTEST_TOKEN", "").strip()
SIZES = ["Small", "Medium", "Large"]
E2E = "E2E"  # request type of the derived "scheduled" measurement
POLL_NAMES = {"poll status", "poll delivery", "poll history"}

# Deliveries known to be scheduled, shared by the users of this process.
_known: deque[str] = deque(maxlen=5000)
_known_lock = threading.Lock()


def remember(delivery_id: str) -> None:
    with _known_lock:
        _known.append(delivery_id)


def known_delivery() -> str | None:
    with _known_lock:
        return random.choice(_known) if _known else None  # noqa: S311 - not crypto


def trace_headers() -> dict[str, str]:
    """A fresh trace context, and the customer's token when there is one."""
    headers = {
        "traceparent": f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01",
        "baggage": "synthetic_request=true",
    }
    if TOKEN:
        headers["Authorization"] = f"Bearer {TOKEN}"
    return headers


def delivery_request() -> dict[str, Any]:
    size = random.choice(SIZES)  # noqa: S311
    weight = {"Small": 4, "Medium": 12, "Large": 40}[size]
    request: dict[str, Any] = {} if TOKEN else {"ownerId": random.choice(OWNERS)}  # noqa: S311
    return request | {
        "pickupLocation": f"loadtest pickup {random.randrange(10_000)}",  # noqa: S311
        "dropOffLocation": f"loadtest drop-off {random.randrange(10_000)}",  # noqa: S311
        "pickupTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()),
        "deadline": "",
        "expedited": random.random() < 0.25,  # noqa: S311
        "confirmationRequired": "None",
        "packageInfo": {"packageId": f"lt-{uuid.uuid4().hex}", "size": size, "weight": weight},
    }


class ApiUser(FastHttpUser):
    """Shared helpers: absolute URLs per service, trace headers on every request."""

    abstract = True
    # FastHttpUser needs a base host; with separate services the absolute URLs below win.
    host = INGESTION_URL or None
    wait_time = between(0.5, 1.5)
    # Plenty of connections per user is not needed; keep the pool small and reused.
    concurrency = 4
    network_timeout = 30.0
    connection_timeout = 10.0

    def ingestion(self, path: str) -> str:
        return (INGESTION_URL or self.host or "").rstrip("/") + path

    def delivery(self, path: str) -> str:
        return (DELIVERY_URL or self.host or "").rstrip("/") + path

    def fire_e2e(self, name: str, started: float, error: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type=E2E,
            name=name,
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=error,
            context={},
        )

    def schedule(self) -> str | None:
        """POST a delivery request; the delivery id, or None (the failure is recorded)."""
        with self.client.post(
            self.ingestion("/api/deliveryrequests"),
            json=delivery_request(),
            headers=trace_headers(),
            name="POST /api/deliveryrequests",
            catch_response=True,
        ) as response:
            if response.status_code != 202:
                response.failure(f"expected 202, got {response.status_code}")
                return None
            try:
                delivery_id = str(response.json()["deliveryId"])
            except (ValueError, KeyError, TypeError) as exc:
                response.failure(f"no deliveryId in the 202: {exc}")
                return None
            response.success()
            return delivery_id

    def wait_scheduled(self, delivery_id: str) -> bool:
        """Poll the status until the delivery exists with a drone; record the E2E time."""
        started = time.perf_counter()
        deadline = started + SCHEDULE_TIMEOUT
        while time.perf_counter() < deadline:
            with self.client.get(
                self.delivery(f"/api/deliveries/{delivery_id}/status"),
                headers=trace_headers(),
                name="poll status",
                catch_response=True,
            ) as response:
                if response.status_code == 404:
                    response.success()  # not created yet: expected while polling
                elif response.status_code != 200:
                    response.failure(f"status: {response.status_code}")
                else:
                    response.success()
                    if self._has_drone(delivery_id):
                        self.fire_e2e("scheduled", started, None)
                        remember(delivery_id)
                        return True
            time.sleep(POLL_INTERVAL)
        self.fire_e2e(
            "scheduled",
            started,
            TimeoutError(f"{delivery_id} not scheduled within {SCHEDULE_TIMEOUT:g}s"),
        )
        return False

    def _has_drone(self, delivery_id: str) -> bool:
        with self.client.get(
            self.delivery(f"/api/deliveries/{delivery_id}"),
            headers=trace_headers(),
            name="poll delivery",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                response.success()
                try:
                    return bool(response.json().get("droneId"))
                except ValueError:
                    return False
            if response.status_code == 404:
                response.success()
            else:
                response.failure(f"delivery: {response.status_code}")
            return False


class SchedulingCustomer(ApiUser):
    weight = int(_env_float("LOADTEST_WEIGHT_SCHEDULE", 3))

    @task
    def schedule_and_wait(self) -> None:
        delivery_id = self.schedule()
        if delivery_id:
            self.wait_scheduled(delivery_id)


class StatusTracker(ApiUser):
    weight = int(_env_float("LOADTEST_WEIGHT_STATUS", 5))
    wait_time = between(0.05, 0.2)

    def on_start(self) -> None:
        if known_delivery() is None:
            delivery_id = self.schedule()
            if delivery_id:
                self.wait_scheduled(delivery_id)

    def _pick(self) -> str | None:
        delivery_id = known_delivery()
        if delivery_id is None:
            time.sleep(0.5)
        return delivery_id

    @task(10)
    def status(self) -> None:
        delivery_id = self._pick()
        if delivery_id is None:
            return
        with self.client.get(
            self.delivery(f"/api/deliveries/{delivery_id}/status"),
            headers=trace_headers(),
            name="GET /api/deliveries/{id}/status",
            catch_response=True,
        ) as response:
            if response.status_code != 200:
                response.failure(f"expected 200, got {response.status_code}")
                return
            body = response.json()
            if not body.get("stage") or not body.get("pickupETA") or not body.get("deliveryETA"):
                response.failure(f"incomplete status: {body}")

    @task(2)
    def public_view(self) -> None:
        delivery_id = self._pick()
        if delivery_id:
            self.client.get(
                self.delivery(f"/api/deliveries/public/{delivery_id}"),
                headers=trace_headers(),
                name="GET /api/deliveries/public/{id}",
            )

    @task(1)
    def history(self) -> None:
        delivery_id = self._pick()
        if delivery_id:
            self.client.get(
                self.delivery(f"/api/deliveries/{delivery_id}/history"),
                headers=trace_headers(),
                name="GET /api/deliveries/{id}/history",
            )


class ChangingCustomer(ApiUser):
    weight = int(_env_float("LOADTEST_WEIGHT_CHANGE", 1))
    wait_time = between(1, 3)

    @task
    def reschedule_or_cancel(self) -> None:
        delivery_id = self.schedule()
        if not delivery_id or not self.wait_scheduled(delivery_id):
            return
        roll = random.random()  # noqa: S311
        expected = None
        if roll < 0.6:
            self._change(delivery_id)
            expected = "Rescheduled"
        if roll >= 0.4:
            self._cancel(delivery_id)
            expected = "Cancelled"
        if expected:
            self._wait_stage(delivery_id, expected)

    def _change(self, delivery_id: str) -> None:
        latitude = 47.55 + random.random() / 10  # noqa: S311
        longitude = -122.35 + random.random() / 10  # noqa: S311
        body = {"dropOffLocation": f"{latitude:.5f},{longitude:.5f}"}
        with self.client.patch(
            self.ingestion(f"/api/deliveryrequests/{delivery_id}"),
            data=json.dumps(body),
            headers={**trace_headers(), "Content-Type": "application/json"},
            name="PATCH /api/deliveryrequests/{id}",
            catch_response=True,
        ) as response:
            if response.status_code != 202:
                response.failure(f"expected 202, got {response.status_code}")

    def _cancel(self, delivery_id: str) -> None:
        with self.client.delete(
            self.ingestion(f"/api/deliveryrequests/{delivery_id}"),
            headers=trace_headers(),
            name="DELETE /api/deliveryrequests/{id}",
            catch_response=True,
        ) as response:
            if response.status_code != 202:
                response.failure(f"expected 202, got {response.status_code}")

    def _wait_stage(self, delivery_id: str, stage: str) -> None:
        """The change shows on the delivery service (recorded as E2E "rescheduled"/"cancelled"):
        a cancel as the status stage, a reschedule as a Rescheduled event in the history (the
        stage itself moves on to HeadedToPickup once the drone is re-planned)."""
        started = time.perf_counter()
        deadline = started + SCHEDULE_TIMEOUT
        seen: object = None
        path = "status" if stage == "Cancelled" else "history"
        while time.perf_counter() < deadline:
            with self.client.get(
                self.delivery(f"/api/deliveries/{delivery_id}/{path}"),
                headers=trace_headers(),
                name=f"poll {path}",
                catch_response=True,
            ) as response:
                if response.status_code == 200:
                    response.success()
                    body = response.json()
                    if path == "status":
                        seen = body.get("stage")
                        done = seen == stage
                    else:
                        seen = [event.get("stage") for event in body]
                        done = stage in seen
                    if done:
                        self.fire_e2e(stage.lower(), started, None)
                        return
                else:
                    response.failure(f"{path}: {response.status_code}")
            time.sleep(POLL_INTERVAL)
        self.fire_e2e(stage.lower(), started, TimeoutError(f"saw {seen}, expected {stage}"))


# -- thresholds ----------------------------------------------------------------------------------


def evaluate(environment: Environment) -> list[str]:
    """The failed thresholds, as sentences (empty when the run passes)."""
    stats = environment.stats
    total = stats.total
    failures: list[str] = []
    api = [
        entry
        for (name, method), entry in stats.entries.items()
        if method != E2E and name not in POLL_NAMES
    ]
    requests = sum(entry.num_requests for entry in stats.entries.values())
    failed = sum(entry.num_failures for entry in stats.entries.values())
    if requests == 0:
        return ["no requests were made"]
    ratio = failed / requests
    if ratio > MAX_FAILURE_RATIO:
        failures.append(
            f"failure ratio {ratio:.4f} > LOADTEST_MAX_FAILURE_RATIO {MAX_FAILURE_RATIO}"
        )
    for entry in api:
        if entry.num_requests:
            p99 = entry.get_response_time_percentile(0.99)
            if p99 > MAX_P99_MS:
                failures.append(
                    f"{entry.method} {entry.name}: p99 {p99:.0f} ms"
                    f" > LOADTEST_MAX_P99_MS {MAX_P99_MS:g}"
                )
    for (name, method), entry in stats.entries.items():
        if method == E2E and entry.num_requests:
            p99 = entry.get_response_time_percentile(0.99)
            if p99 > MAX_SCHEDULE_P99_MS:
                failures.append(
                    f"E2E {name}: p99 {p99:.0f} ms"
                    f" > LOADTEST_MAX_SCHEDULE_P99_MS {MAX_SCHEDULE_P99_MS:g}"
                )
    if MIN_RPS > 0:
        rps = total.total_rps
        if rps < MIN_RPS:
            failures.append(f"throughput {rps:.1f} req/s < LOADTEST_MIN_RPS {MIN_RPS:g}")
    return failures


@events.init.add_listener
def _check_hosts(environment: Environment, **kwargs: Any) -> None:
    if not environment.host and not (INGESTION_URL and DELIVERY_URL):
        logger.warning("no --host and no INGESTION_URL/DELIVERY_URL: requests will fail")


@events.quitting.add_listener
def _enforce_thresholds(environment: Environment, **kwargs: Any) -> None:
    failures = evaluate(environment)
    if failures:
        for failure in failures:
            logger.error("threshold failed: %s", failure)
        environment.process_exit_code = 1
    else:
        # Failures within LOADTEST_MAX_FAILURE_RATIO are tolerated (locust would exit 1 on any).
        environment.process_exit_code = 0
        logger.info(
            "thresholds met (p99 <= %g ms, failures <= %g, rps >= %g, E2E p99 <= %g ms)",
            MAX_P99_MS,
            MAX_FAILURE_RATIO,
            MIN_RPS,
            MAX_SCHEDULE_P99_MS,
        )
