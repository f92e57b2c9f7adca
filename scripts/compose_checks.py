"""End-to-end checks of a running compose stack, through its TLS gateway (`make compose-test`).

    COMPOSE_TEST_TOKEN=<a customer's token> python scripts/compose_checks.py \
        --gateway https://127.0.0.1:8443 --services "redis mongo ..." \
        [--mailpit http://127.0.0.1:8025 --smtp 127.0.0.1:1025] [--jaeger http://127.0.0.1:16686]

Tokens are on in the compose stack: the public calls carry ``COMPOSE_TEST_TOKEN`` (compose_test.sh
mints the sample owner's, contoso/myowner, with the development issuer's key in the compose
volume).

The checks run in the order of ``CHECKS``, every one of them, and each must pass: a check whose
component (``requires``) is missing from the compose file fails, naming it, as does a route the
gateway or a service does not serve. Exit status 1 when any check fails.
"""

from __future__ import annotations

import argparse
import json
import os
import smtplib
import ssl
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any, TextIO

import httpx

APP_SERVICES = ("ingestion", "workflow", "package", "dronescheduler", "delivery")
SCHEDULE_TIMEOUT = 60.0
STREAM_TIMEOUT = 20.0
MAIL_TIMEOUT = 60.0
TRACE_TIMEOUT = 45.0
GATEWAY_404 = "No such route on the gateway."

# The README's sample request.
SAMPLE: dict[str, Any] = {
    "ownerId": "myowner",
    "pickupLocation": "my pickup",
    "pickupTime": "2019-05-08T20:00:00.000Z",
    "deadline": "",
    "expedited": True,
    "confirmationRequired": "None",
    "packageInfo": {"packageId": "mypackage", "size": "Small", "weight": 10, "tag": "mytag"},
    "dropOffLocation": "drop off",
}


class CheckFailedError(Exception):
    """A check found the stack wrong."""


@dataclass
class Stack:
    gateway: str
    services: frozenset[str]
    mailpit: str | None
    smtp: str | None
    jaeger: str | None
    token: str | None
    tls: ssl.SSLContext
    delivery_id: str = ""
    recipient: str = field(
        default_factory=lambda: f"compose-test-{uuid.uuid4().hex[:8]}@example.com"
    )

    def client(self, base: str | None = None, timeout: httpx.Timeout | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(
            base_url=base or self.gateway,
            verify=self.tls,
            headers=headers,
            timeout=timeout or httpx.Timeout(10.0),
        )


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Stack], str]
    requires: str | None = None


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise CheckFailedError(message)


def poll(deadline: float, interval: float = 0.5) -> Iterator[None]:
    """Yield until the monotonic deadline passes."""
    while time.monotonic() < deadline:
        yield
        time.sleep(interval)


def describe(response: httpx.Response) -> str:
    request = response.request
    return f"{request.method} {request.url.path} -> {response.status_code}: {response.text[:300]}"


# --- the checks ---------------------------------------------------------------------------------


def gateway_health(stack: Stack) -> str:
    with stack.client() as client:
        response = client.get("/healthz")
    expect(response.status_code == 200, describe(response))
    return f"TLS handshake by IP literal and /healthz on {stack.gateway}"


def internal_routes_hidden(stack: Stack) -> str:
    probes = [
        ("GET", "/api/packages/mypackage"),
        ("GET", "/api/dronedeliveries/x"),
        ("PUT", "/api/deliveries/x"),
        ("PATCH", "/api/deliveries/x"),
        ("DELETE", "/api/deliveries/x"),
        ("GET", "/api/deliveries/x/owner"),
        ("POST", "/api/deliveries/x/confirmations"),
        ("GET", "/api/fleet"),
        ("GET", "/api/notifications"),
    ]
    with stack.client() as client:
        for method, path in probes:
            response = client.request(method, path, json={})
            expect(
                response.status_code == 404 and response.json().get("detail") == GATEWAY_404,
                f"internal route reachable through the gateway: {describe(response)}",
            )
    return f"{len(probes)} internal routes answer the gateway's 404"


def tokens_required(stack: Stack) -> str:
    """Tokens are on, as in `make run`: a request without one is 401, with a Bearer challenge."""
    with httpx.Client(base_url=stack.gateway, verify=stack.tls, timeout=10.0) as client:
        response = client.post("/api/deliveryrequests", json=SAMPLE)
    expect(response.status_code == 401, f"without a token: {describe(response)}")
    challenge = response.headers.get("www-authenticate", "")
    expect(challenge.startswith("Bearer"), f"WWW-Authenticate {challenge!r}")
    return "a request without a bearer token is 401 (Bearer challenge)"


def schedule_sample(stack: Stack) -> str:
    body = dict(SAMPLE)
    if "notifier" in stack.services:
        body["notify"] = {"emailAddress": stack.recipient}
    started = time.monotonic()
    with stack.client() as client:
        response = client.post("/api/deliveryrequests", json=body)
        if response.status_code == 401:
            raise CheckFailedError(
                "the API refused the token: COMPOSE_TEST_TOKEN must be a customer's token from "
                "the stack's development issuer (" + describe(response) + ")"
            )
        expect(response.status_code == 202, describe(response))
        stack.delivery_id = str(response.json()["deliveryId"])
        expect(
            response.headers.get("location", "").endswith(stack.delivery_id),
            f"Location header: {response.headers.get('location')!r}",
        )
        view: dict[str, Any] = {}
        for _ in poll(started + SCHEDULE_TIMEOUT):
            public = client.get(f"/api/deliveries/public/{stack.delivery_id}")
            if public.status_code == 200:
                view = public.json()
                # The public view names the drone, or (by design later) only its stage.
                if view.get("droneId") or ("droneId" not in view and view.get("stage")):
                    break
            else:
                expect(public.status_code == 404, describe(public))
        else:
            raise CheckFailedError(
                f"not scheduled in {SCHEDULE_TIMEOUT:.0f} s: {view or 'no view'}"
            )
        took = time.monotonic() - started
        # The owner (the token's customer) reads the full record through the gateway.
        full = client.get(f"/api/deliveries/{stack.delivery_id}")
        expect(full.status_code == 200, f"the owner's read: {describe(full)}")
        owner = full.json().get("owner") or {}
    return (
        f"delivery {stack.delivery_id} scheduled in {took:.1f} s "
        f"(drone {view.get('droneId', '-')}, stage {view.get('stage')}), "
        f"owned by {owner.get('accountId')}/{owner.get('userId')}"
    )


def tracking_stream(stack: Stack) -> str:
    path = f"/api/deliveries/public/{stack.delivery_id}/tracking"
    event: dict[str, str] = {}
    with (
        stack.client(timeout=httpx.Timeout(10.0, read=STREAM_TIMEOUT)) as client,
        client.stream("GET", path, headers={"Accept": "text/event-stream"}) as response,
    ):
        if response.status_code != 200:
            response.read()
            raise CheckFailedError(describe(response))
        content_type = response.headers.get("content-type", "")
        expect(content_type.startswith("text/event-stream"), f"content-type {content_type!r}")
        for line in response.iter_lines():
            if not line:
                if "data" in event:
                    break
                continue
            name, _, value = line.partition(":")
            if name:  # a line starting with ":" is a comment (heartbeat)
                event[name] = event.get(name, "") + value.removeprefix(" ")
    expect(event.get("event") == "status", f"first event is not 'status': {event}")
    expect("id" in event, f"first event has no id: {event}")
    status = json.loads(event["data"])
    expect("stage" in status, f"first event's data has no stage: {status}")
    return f"first event 'status' (id {event['id']}, stage {status['stage']}) through the gateway"


def webapp_page(stack: Stack) -> str:
    """The web app behind the gateway's catch-all: its home page, and the public tracking page of
    the sample delivery, which names neither the owner nor the notify-me recipient."""
    with stack.client() as client:
        for path in ("/", f"/track/{stack.delivery_id}"):
            response = client.get(path)
            expect(response.status_code == 200, describe(response))
            content_type = response.headers.get("content-type", "")
            expect(content_type.startswith("text/html"), f"{path}: content-type {content_type!r}")
        page = response.text
    expect(stack.delivery_id in page, "the public page does not name the delivery")
    for personal in (stack.recipient, "myowner"):
        expect(personal not in page, f"the public page shows personal data: {personal!r}")
    return "/ and the public /track/{id} (no personal data) are HTML pages through the gateway"


def mailpit_smtp_and_api(stack: Stack) -> str:
    if not (stack.mailpit and stack.smtp):
        raise CheckFailedError("--mailpit and --smtp are needed")
    host, _, port = stack.smtp.rpartition(":")
    subject = f"compose-test {uuid.uuid4()}"
    message = EmailMessage()
    message["From"] = "compose-test@example.com"
    message["To"] = stack.recipient
    message["Subject"] = subject
    message.set_content("Mailpit round trip.")
    # local_hostname: no reverse lookup of this machine's name for the EHLO.
    with smtplib.SMTP(host, int(port), local_hostname="localhost", timeout=10) as smtp:
        smtp.send_message(message)
    found = _mailpit_search(stack, f'subject:"{subject}"')
    expect(len(found) == 1, f"Mailpit holds {len(found)} messages with subject {subject!r}")
    return f"SMTP {stack.smtp} -> Mailpit API {stack.mailpit}"


def notification_email(stack: Stack) -> str:
    messages = _mailpit_search(stack, f'to:"{stack.recipient}"', wait_for=stack.delivery_id)
    return f"{len(messages)} e-mail(s) to {stack.recipient} naming delivery {stack.delivery_id}"


def _mailpit_search(stack: Stack, query: str, wait_for: str | None = None) -> list[dict[str, Any]]:
    """Messages matching a Mailpit search; with wait_for, until one's text contains it."""
    with stack.client(stack.mailpit) as client:
        for _ in poll(time.monotonic() + MAIL_TIMEOUT):
            response = client.get("/api/v1/search", params={"query": query})
            expect(response.status_code == 200, describe(response))
            messages: list[dict[str, Any]] = response.json().get("messages") or []
            if messages and wait_for is None:
                return messages
            for summary in messages:
                full = client.get(f"/api/v1/message/{summary['ID']}").json()
                if wait_for and wait_for in f"{full.get('Text', '')}{full.get('HTML', '')}":
                    return messages
    raise CheckFailedError(f"no message for {query} in {MAIL_TIMEOUT:.0f} s")


def jaeger_traces(stack: Stack) -> str:
    wanted = {name for name in APP_SERVICES if name in stack.services}
    seen: set[str] = set()
    with stack.client(stack.jaeger) as client:
        for _ in poll(time.monotonic() + TRACE_TIMEOUT, interval=2.0):
            response = client.get("/api/services")
            expect(response.status_code == 200, describe(response))
            seen = set(response.json().get("data") or [])
            if wanted <= seen:
                return f"spans from {', '.join(sorted(wanted))} in Jaeger"
    raise CheckFailedError(f"Jaeger knows {sorted(seen)}, missing {sorted(wanted - seen)}")


CHECKS = [
    Check("gateway health over TLS", gateway_health, requires="gateway"),
    Check("internal routes hidden by the gateway", internal_routes_hidden, requires="gateway"),
    Check("bearer tokens required", tokens_required, requires="gateway"),
    Check("sample request scheduled through the gateway", schedule_sample, requires="gateway"),
    Check("public tracking stream (SSE) through the gateway", tracking_stream, requires="gateway"),
    Check("web app pages through the gateway", webapp_page, requires="webapp"),
    Check("Mailpit: SMTP in, HTTP API out", mailpit_smtp_and_api, requires="mailpit"),
    Check("notification e-mail in Mailpit", notification_email, requires="notifier"),
    Check("traces of every service in Jaeger", jaeger_traces, requires="jaeger"),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--services", required=True, help="the compose file's services")
    parser.add_argument("--mailpit")
    parser.add_argument("--smtp", help="host:port of Mailpit's SMTP")
    parser.add_argument("--jaeger")
    parser.add_argument(
        "--gateway-ca", required=True, help="the gateway's root certificate (Caddy's internal CA)"
    )
    args = parser.parse_args(argv)
    stack = Stack(
        gateway=args.gateway,
        services=frozenset(args.services.split()),
        mailpit=args.mailpit,
        smtp=args.smtp,
        jaeger=args.jaeger,
        token=os.environ.get("COMPOSE_TEST_TOKEN") or None,
        # Verified: the chain to Caddy's local CA and the name, 127.0.0.1, as an IP address SAN.
        tls=ssl.create_default_context(cafile=args.gateway_ca),
    )
    failed = run_checks(stack, sys.stdout)
    if failed:
        sys.stdout.write(f"FAILED: {', '.join(failed)}\n")
        return 1
    return 0


def run_checks(stack: Stack, out: TextIO) -> list[str]:
    """Every check in order, a line each on ``out``; the names of those that failed."""
    failed: list[str] = []
    for check in CHECKS:
        started = time.monotonic()
        try:
            if check.requires and check.requires not in stack.services:
                raise CheckFailedError(f"no '{check.requires}' service in the compose file")
            detail = check.run(stack)
        except (CheckFailedError, httpx.HTTPError, OSError, KeyError, ValueError) as exc:
            failed.append(check.name)
            out.write(f"    FAIL  {check.name}: {type(exc).__name__}: {exc}\n")
            if check.run is schedule_sample:
                break  # everything after needs the delivery
        else:
            out.write(f"    PASS  {check.name}: {detail} ({time.monotonic() - started:.1f} s)\n")
        out.flush()
    return failed


if __name__ == "__main__":
    sys.exit(main())
