"""Security headers on every answer (pure ASGI): a Content Security Policy without inline scripts;
and what the public gateway may not reach.

The pages load scripts and stylesheets from the app only (``'self'``), never inline; images from
the app (and the tile server when one is configured); scripts connect to the app only (its JSON
and event streams). Forms post to the app, and to the Entra sign-out when that is the sign-in.
The API docs pages (``/docs``, ``/redoc``) are FastAPI's own, with inline scripts: they get the
other headers but not the policy.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dronecommon.edge import EDGE_HEADER
from dronecommon.problems import problem_response

from .settings import WebappSettings

DOCS_PREFIXES = ("/docs", "/redoc")
# Behind the public gateway the web app is its pages and their assets only: its health routes
# and API docs are for the cluster, and no API path is its (the gateways route the public API
# to the services before the web app's catch-all).
HIDDEN_AT_EDGE = ("/api/", "/healthz", "/readyz", "/docs", "/redoc", "/openapi.json")


def _origin(url: str) -> str | None:
    parts = urlsplit(url.replace("{s}", "a"))
    if not parts.scheme or not parts.netloc:
        return None
    host = parts.netloc
    # Tile servers with sub-domains ({s}.tile.example) get a wildcard.
    if "{s}" in url:
        host = "*." + host.split(".", 1)[1] if "." in host else host
    return f"{parts.scheme}://{host}"


def content_security_policy(settings: WebappSettings) -> str:
    images = ["'self'", "data:"]
    if settings.tiles_url and (tiles := _origin(settings.tiles_url)):
        images.append(tiles)
    forms = ["'self'"]
    if settings.signin.mode == "entra":
        forms.append(settings.signin.entra.authority_host.rstrip("/"))
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": images,
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": forms,
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp, *, policy: str) -> None:
        self.app = app
        self.common = [
            (b"x-content-type-options", b"nosniff"),
            (b"referrer-policy", b"same-origin"),
            (b"x-frame-options", b"DENY"),
            (b"permissions-policy", b"camera=(), microphone=(), geolocation=(), payment=()"),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        self.policy = (b"content-security-policy", policy.encode("latin-1"))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        extra = list(self.common)
        if not path.startswith(DOCS_PREFIXES):
            extra.append(self.policy)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)


class EdgeGuardMiddleware:
    """404 to what came through the public gateway (``Dronedelivery-Edge``, as
    :mod:`dronecommon.edge`) for :data:`HIDDEN_AT_EDGE`; the kubelet's probes carry no marker."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and EDGE_HEADER in Headers(scope=scope):
            path = str(scope.get("path", ""))
            if path == "/api" or path.startswith(HIDDEN_AT_EDGE):
                response = problem_response(scope, 404, "No such route.")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
