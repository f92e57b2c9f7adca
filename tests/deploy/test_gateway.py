"""The gateways expose the public API and the web app, nothing else: the compose Caddyfile run in
a real Caddy, and the AKS HTTPRoutes as rendered, each checked against one table of requests.

Caddy (``.tools/bin/caddy``, built by ``make setup``) runs the committed Caddyfile, its upstreams
pointed at recording servers on loopback, over real TLS; an API request the table calls internal
must come back 404 without reaching any, and what the web app's catch-all takes that is not its
public part (its health routes and docs) reaches the web app only, which answers 404 to it at
the edge. For the HTTPRoutes, the Gateway API's matching rules (Exact, then the longest
PathPrefix, element-wise; the method) are applied to the rendered routes: a request they let
through that the table calls internal must be one the service itself answers 404 at the edge
(``dronecommon.edge``; the web app's edge guard), which the real delivery and web apps show.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from delivery.main import create_app as create_delivery
from delivery.settings import DeliverySettings
from dronecommon.edge import EDGE_HEADER
from dronecommon.settings import AuthSettings, RedisSettings
from dronetesting.apps import app_client, running_server
from dronetesting.servers import free_port
from dronetesting.tokens import TEST_AUDIENCE
from webapp.main import create_app as create_webapp
from webapp.settings import WebappAuthSettings, WebappSettings

from .conftest import ROOT, Manifest
from .policy import of_kind

CADDYFILE = ROOT / "docker" / "gateway" / "Caddyfile"
CADDY = ROOT / ".tools" / "bin" / "caddy"
ID = "3fa85f64-5717-4562-b3fc-2c963f66afa6"

# (method, path, the service that must get it, or None: 404 at the gateway).
PUBLIC = [
    ("POST", "/api/deliveryrequests", "ingestion"),
    ("PATCH", f"/api/deliveryrequests/{ID}", "ingestion"),
    ("DELETE", f"/api/deliveryrequests/{ID}", "ingestion"),
    ("GET", f"/api/deliveries/public/{ID}", "delivery"),
    ("GET", f"/api/deliveries/public/{ID}/tracking", "delivery"),
    ("GET", f"/api/deliveries/public/{ID}/history", "delivery"),
    ("GET", f"/api/deliveries/{ID}", "delivery"),
    ("GET", f"/api/deliveries/{ID}/status", "delivery"),
    ("GET", f"/api/deliveries/{ID}/history", "delivery"),
    ("GET", f"/api/deliveries/{ID}/tracking", "delivery"),
    ("GET", "/api/deliveries/summary?ownerId=myowner&year=2026&month=1", "delivery"),
    ("POST", f"/api/deliveries/{ID}/notifymerequests", "delivery"),
    ("GET", "/api/deliveries?limit=5", "delivery"),
    ("GET", "/", "webapp"),
    ("GET", "/signin", "webapp"),
    ("POST", "/signin", "webapp"),
    ("GET", "/deliveries/new", "webapp"),
    ("GET", f"/track/{ID}", "webapp"),
    ("GET", f"/track/{ID}/events", "webapp"),
    ("GET", "/static/css/app.css", "webapp"),
]
# Reach the web app by the catch-all, which hides them at the edge (health and docs).
HIDDEN_BY_THE_WEBAPP = [
    ("GET", "/docs"),
    ("GET", "/readyz"),
    ("GET", "/openapi.json"),
]
INTERNAL = [
    ("GET", "/api/deliveryrequests"),
    ("PUT", f"/api/deliveryrequests/{ID}"),
    ("GET", f"/api/deliveries/{ID}/owner"),
    ("PUT", f"/api/deliveries/{ID}"),
    ("PATCH", f"/api/deliveries/{ID}"),
    ("DELETE", f"/api/deliveries/{ID}"),
    ("POST", f"/api/deliveries/{ID}/confirmations"),
    ("PUT", f"/api/dronedeliveries/{ID}"),
    ("GET", f"/api/dronedeliveries/{ID}"),
    ("DELETE", f"/api/dronedeliveries/{ID}"),
    ("GET", "/api/drones/downtown-standard-00001"),
    ("PUT", "/api/packages/mypackage"),
    ("GET", "/api/packages/mypackage"),
    ("GET", "/api/fleet"),
    ("GET", "/api/notifications"),
    ("GET", "/api/notifications/sms"),
    ("GET", "/api/accounts/contoso/webhooksecret"),
    ("GET", "/api/queue"),
    ("GET", "/api"),
]


# --- Caddy ---------------------------------------------------------------------------------------


@dataclass
class Upstream:
    """A recording server standing in for a service behind the gateway. Asked for
    ``text/event-stream``, it answers as a tracking stream does: one event at once, the next
    only once :attr:`release` is set."""

    name: str
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def _events(self) -> AsyncIterator[bytes]:
        yield b'id: 1\nevent: status\ndata: {"stage":"HeadedToPickup"}\n\n'
        await self.release.wait()
        yield b'id: 2\nevent: end\ndata: {"stage":"Completed"}\n\n'

    def app(self) -> Starlette:
        async def record(request: Request) -> Response:
            path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            self.seen.append((request.method, path, request.headers.get(EDGE_HEADER)))
            if request.headers.get("accept") == "text/event-stream":
                return StreamingResponse(self._events(), media_type="text/event-stream")
            return JSONResponse({"service": self.name})

        methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
        return Starlette(routes=[Route("/{path:path}", record, methods=methods)])


@dataclass
class Gateway:
    url: str
    upstreams: dict[str, Upstream]


def caddy_config(ports: dict[str, int], listen: int) -> str:
    """The committed Caddyfile with its upstreams and port moved to loopback test ports."""
    text = CADDYFILE.read_text(encoding="utf-8")
    for name, port in ports.items():
        text = text.replace(f"{name}:8080", f"127.0.0.1:{port}")
    assert ":8443" in text
    return text.replace(":8443", f":{listen}")


@contextlib.contextmanager
def caddy(config: Path, home: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    log = (home / "caddy.log").open("wb")
    process = subprocess.Popen(
        [str(CADDY), "run", "--config", str(config), "--adapter", "caddyfile"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def require_caddy() -> None:
    if not (CADDY.is_file() and os.access(CADDY, os.X_OK)):
        pytest.fail(f"{CADDY} is missing: `make setup` builds it")


@pytest.fixture
async def gateway(tmp_path: Path) -> AsyncIterator[Gateway]:
    require_caddy()
    upstreams = {name: Upstream(name) for name in ("ingestion", "delivery", "webapp")}
    async with contextlib.AsyncExitStack() as stack:
        ports = {}
        for name, upstream in upstreams.items():
            url = await stack.enter_async_context(running_server(upstream.app()))
            ports[name] = int(url.rsplit(":", 1)[1])
        listen = free_port()
        config = tmp_path / "Caddyfile"
        config.write_text(caddy_config(ports, listen), encoding="utf-8")
        process = stack.enter_context(caddy(config, tmp_path))
        url = f"https://127.0.0.1:{listen}"
        async with httpx.AsyncClient(verify=False, timeout=5) as client:  # noqa: S501 - Caddy's internal CA
            deadline = time.monotonic() + 20
            while True:
                assert process.poll() is None, (tmp_path / "caddy.log").read_text()
                with contextlib.suppress(httpx.TransportError):
                    if (await client.get(url + "/healthz")).status_code == 200:
                        break
                assert time.monotonic() < deadline, (tmp_path / "caddy.log").read_text()
                await asyncio.sleep(0.1)
        yield Gateway(url, upstreams)


def test_the_caddyfile_adapts(tmp_path: Path) -> None:
    require_caddy()
    result = subprocess.run(
        [str(CADDY), "adapt", "--config", str(CADDYFILE), "--adapter", "caddyfile"],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
        check=False,
    )
    assert result.returncode == 0, result.stderr


async def test_caddy_routes_the_public_api_to_its_services(gateway: Gateway) -> None:
    async with httpx.AsyncClient(verify=False, timeout=5) as client:  # noqa: S501
        for method, path, service in PUBLIC:
            headers = {EDGE_HEADER: "forged-by-a-client"}
            response = await client.request(method, gateway.url + path, headers=headers, json={})
            assert response.status_code == 200, (method, path, response.text)
            assert response.json() == {"service": service}, (method, path)
            # What reached the service is marked as having come through the gateway: the
            # client's own value replaced.
            assert gateway.upstreams[service].seen[-1] == (method, path, "public")


async def test_caddy_forwards_each_tracking_event_as_it_comes(gateway: Gateway) -> None:
    """The tracking streams through the gateway: an event reaches the client while the service
    still holds the stream open (no buffering until the response ends, no timeout cutting it)."""
    delivery = gateway.upstreams["delivery"]
    paths = [p for m, p, s in PUBLIC if s == "delivery" and m == "GET" and p.endswith("/tracking")]
    assert len(paths) == 2  # the public stream and the owner's
    for path in paths:
        delivery.release.clear()
        timeout = httpx.Timeout(5, read=3)
        async with (
            httpx.AsyncClient(verify=False, timeout=timeout) as client,  # noqa: S501
            client.stream(
                "GET", gateway.url + path, headers={"Accept": "text/event-stream"}
            ) as response,
        ):
            assert response.status_code == 200, path
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            first = [await anext(lines) for _ in range(3)]
            assert first == ["id: 1", "event: status", 'data: {"stage":"HeadedToPickup"}'], path
            assert not delivery.release.is_set()  # the service has not ended the stream
            delivery.release.set()
            rest = [line async for line in lines]
        assert 'data: {"stage":"Completed"}' in rest, path


async def test_caddy_answers_404_to_everything_internal(gateway: Gateway) -> None:
    async with httpx.AsyncClient(verify=False, timeout=5) as client:  # noqa: S501
        for method, path in INTERNAL:
            if path == "/api":  # outside /api/: the web app's, which hides it (below)
                continue
            response = await client.request(method, gateway.url + path)
            assert response.status_code == 404, (method, path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
        assert all(not upstream.seen for upstream in gateway.upstreams.values())
        for method, path in [*HIDDEN_BY_THE_WEBAPP, ("GET", "/api")]:
            response = await client.request(method, gateway.url + path)
            assert response.json() == {"service": "webapp"}, (method, path)
    assert not gateway.upstreams["ingestion"].seen
    assert not gateway.upstreams["delivery"].seen
    await assert_hidden_by_the_webapp([*HIDDEN_BY_THE_WEBAPP, ("GET", "/api")])


# --- the AKS HTTPRoutes ---------------------------------------------------------------------------


def _prefix_matches(prefix: str, path: str) -> bool:
    """Gateway API PathPrefix: element-wise, a trailing slash ignored."""
    want = [part for part in prefix.split("/") if part]
    have = [part for part in path.split("/") if part]
    return have[: len(want)] == want


def routed_to(routes: dict[str, Manifest], method: str, target: str) -> str | None:
    """The service whose HTTPRoute takes ``method target``, by the Gateway API's precedence:
    an Exact match, else the longest matching PathPrefix."""
    path = target.split("?", 1)[0]
    best: tuple[int, str] | None = None
    for service, route in routes.items():
        for rule in route["spec"]["rules"]:
            for match in rule["matches"]:
                if match.get("method", method) != method:
                    continue
                kind, value = match["path"]["type"], match["path"]["value"]
                if kind == "Exact" and path == value:
                    return service
                if kind == "PathPrefix" and _prefix_matches(value, path):
                    length = len([part for part in value.split("/") if part])
                    if best is None or length > best[0]:
                        best = (length, service)
    return best[1] if best else None


def edge_filter(route: Manifest) -> list[Any]:
    return [
        header
        for rule in route["spec"]["rules"]
        for f in rule.get("filters", [])
        if f["type"] == "RequestHeaderModifier"
        for header in f["requestHeaderModifier"]["set"]
    ]


@pytest.mark.parametrize("env", ["default", "dev", "prod"])
async def test_the_httproutes_expose_the_public_api_and_hide_the_rest(
    rendered: dict[tuple[str, str], list[Manifest]], env: str
) -> None:
    routes = {
        service: of_kind(rendered[service, env], "HTTPRoute")[0]
        for service in ("ingestion", "delivery", "webapp")
    }
    for route in routes.values():
        assert edge_filter(route) == [{"name": EDGE_HEADER, "value": "public"}]
        for rule in route["spec"]["rules"]:
            for match in rule["matches"]:
                assert match["path"]["type"] in {"Exact", "PathPrefix"}
                assert match.get("method"), "every match names its method"
    for method, path, service in PUBLIC:
        assert routed_to(routes, method, path) == service, (method, path)
    # What the routes let through but is internal must be hidden by the service.
    let_through = [(m, p) for m, p in INTERNAL if routed_to(routes, m, p) is not None]
    by_delivery = [(m, p) for m, p in let_through if routed_to(routes, m, p) == "delivery"]
    by_webapp = [(m, p) for m, p in let_through if routed_to(routes, m, p) == "webapp"]
    assert by_delivery, "the delivery prefix lets /owner and confirmations through"
    assert by_webapp, "the web app's catch-all takes the other GETs and POSTs"
    assert {routed_to(routes, m, p) for m, p in let_through} == {"delivery", "webapp"}
    for method, path in HIDDEN_BY_THE_WEBAPP:
        assert routed_to(routes, method, path) == "webapp", (method, path)
    await assert_hidden_at_the_edge(by_delivery)
    await assert_hidden_by_the_webapp([*by_webapp, *HIDDEN_BY_THE_WEBAPP])


async def assert_hidden_by_the_webapp(requests: list[tuple[str, str]]) -> None:
    """The real web app answers 404 to these at the edge, and serves its pages there."""
    with tempfile.TemporaryDirectory() as scratch:
        settings = WebappSettings(
            redis=RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0"),  # never reached
            auth=WebappAuthSettings(
                enabled=False, dev_signing_key_file=str(Path(scratch) / "key.pem")
            ),
            log_json=False,
        )
        edge = {EDGE_HEADER: "public"}
        async with app_client(create_webapp(settings, configure_logs=False)) as client:
            for method, path in requests:
                response = await client.request(method, path, headers=edge)
                assert response.status_code == 404, (method, path, response.text)
                assert response.json()["detail"] == "No such route.", (method, path)
            # Without the marker (the kubelet's probes) the health routes answer.
            assert (await client.get("/healthz")).status_code == 200
            page = await client.get("/static/css/app.css", headers=edge)
            assert page.status_code == 200


async def assert_hidden_at_the_edge(requests: list[tuple[str, str]]) -> None:
    """The real delivery app answers 404 to these at the edge, and not to the public ones."""
    settings = DeliverySettings(
        redis=RedisSettings(url=f"redis://127.0.0.1:{free_port()}/0"),  # never reached
        auth=AuthSettings(
            issuer="http://localhost/dev-issuer",
            audience=TEST_AUDIENCE,
            jwks_file="/nonexistent/jwks.json",
        ),
        log_json=False,
    )
    edge = {EDGE_HEADER: "public"}
    async with app_client(create_delivery(settings, configure_logs=False)) as client:
        for method, path in requests:
            response = await client.request(method, path, headers=edge, json={})
            assert response.status_code == 404, (method, path, response.text)
            assert response.json()["detail"] == "No such route.", (method, path)
        for method, path, service in PUBLIC:
            # The owner routes (the owner's tracking stream among them): through the gateway
            # they ask for a token; they do not deny the route.
            if service != "delivery" or "/public/" in path:
                continue
            response = await client.request(method, path, headers=edge, json={})
            assert response.status_code == 401, (method, path, response.text)
