"""Pure ASGI middleware (no ``BaseHTTPMiddleware``: no task per request, streaming kept).

- :class:`RequestGuardMiddleware` rejects bodies over the limit (413, from ``Content-Length`` at
  once, or as a chunked body streams in) and request bodies that are not JSON (415).
- :class:`AccessLogMiddleware` logs one structured line per request with its trace id.
"""

from __future__ import annotations

import logging
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from dronecommon.problems import problem_response

DEFAULT_MAX_BODY = 64 * 1024
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

access_logger = logging.getLogger("dronecommon.access")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1")
    return None


def is_json_media_type(content_type: str) -> bool:
    """``application/json`` (any parameters, e.g. charset) or any ``+json`` type."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media == "application/json":
        return True
    kind, _, subtype = media.partition("/")
    return bool(kind) and subtype.endswith("+json")


class RequestGuardMiddleware:
    """413 for bodies over ``max_body`` bytes; 415 for non-JSON request bodies."""

    def __init__(
        self, app: ASGIApp, *, max_body: int = DEFAULT_MAX_BODY, json_only: bool = True
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.json_only = json_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return

        length_header = _header(scope, b"content-length")
        declared: int | None = None
        if length_header is not None:
            try:
                declared = int(length_header)
            except ValueError:
                response = problem_response(scope, 400, "Content-Length is not a number.")
                await response(scope, receive, send)
                return
            if declared > self.max_body:
                response = problem_response(
                    scope, 413, f"The request body is larger than {self.max_body} bytes."
                )
                await response(scope, receive, send)
                return

        has_body = declared is None and _header(scope, b"transfer-encoding") is not None
        has_body = has_body or bool(declared)
        if self.json_only and has_body:
            content_type = _header(scope, b"content-type")
            if content_type is None or not is_json_media_type(content_type):
                response = problem_response(
                    scope,
                    415,
                    f"Request bodies must be application/json, not {content_type or 'untyped'}.",
                    headers={"Accept-Post": "application/json"},
                )
                await response(scope, receive, send)
                return

        # Bodies are small (64 KiB at most), so read them whole before the app sees them: a body
        # that streams past the limit is refused here, before any handler starts work.
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body:
                response = problem_response(
                    scope, 413, f"The request body is larger than {self.max_body} bytes."
                )
                await response(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class AccessLogMiddleware:
    """One log line per request: method, path, status, duration and trace id."""

    def __init__(self, app: ASGIApp, *, quiet_paths: tuple[str, ...] = ()) -> None:
        self.app = app
        self.quiet_paths = frozenset(quiet_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = str(scope.get("path", ""))
        level = logging.DEBUG if path in self.quiet_paths else logging.INFO
        if not access_logger.isEnabledFor(level):
            # Services run at WARNING under load: no line, so no wrapper around every message.
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            access_logger.log(
                level,
                "%s %s %d",
                scope.get("method", ""),
                path,
                status,
                extra={
                    "http_method": scope.get("method", ""),
                    "http_path": path,
                    "http_status": status,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
