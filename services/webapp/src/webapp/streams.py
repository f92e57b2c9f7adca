"""The tracking streams, passed through to the browser.

``GET /deliveries/{id}/events`` (signed in) and ``GET /track/{id}/events`` (public) open the
delivery service's Server-Sent Events stream — the owner's, with the user's token, or the public
one — and copy its bytes to the browser as they arrive: events, ids, ``retry:`` hints and
heartbeat comments unchanged, so ``EventSource`` resumes with ``Last-Event-ID`` (forwarded
upstream) exactly as it would against the service. The upstream connection closes when the
browser goes (Starlette cancels the response when it sees the disconnect) and the response ends
when the service ends the stream (after ``event: end``).

A stream the service refuses (404 unknown delivery, 503 too many watchers) is answered with the
same status before any byte of a stream, so ``EventSource`` stops and the page falls back to
polling the status.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import aiohttp
from starlette.responses import Response, StreamingResponse
from starlette.types import Scope

from dronecommon.problems import problem_response
from dronecommon.settings import HttpClientSettings

from .errors import ServiceUnavailable

STREAM_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",  # proxies must not buffer the stream
}


class StreamProxy:
    """One aiohttp session for every stream (no read timeout: streams are long)."""

    def __init__(self, settings: HttpClientSettings, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self.connect_timeout = settings.connect_timeout
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=self.connect_timeout, sock_read=None
                ),
                cookie_jar=aiohttp.DummyCookieJar(),
                trust_env=False,
                auto_decompress=False,
            )
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def open(
        self, path: str, *, token: str | None, last_event_id: str | None, scope: Scope
    ) -> Response:
        headers = {"Accept": "text/event-stream"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        try:
            upstream = await self._client().get(self.base_url + path, headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServiceUnavailable("delivery", f"tracking stream: {exc!r}") from exc
        content_type = upstream.headers.get("Content-Type", "")
        if upstream.status != 200 or not content_type.startswith("text/event-stream"):
            status = upstream.status if upstream.status != 200 else 502
            upstream.release()
            detail = "No tracking stream for this delivery."
            return problem_response(scope, status, detail)

        async def relay() -> AsyncIterator[bytes]:
            try:
                async for chunk in upstream.content.iter_any():
                    yield chunk
            except (aiohttp.ClientError, TimeoutError):
                return  # the service went away: the browser reconnects
            finally:
                with contextlib.suppress(Exception):
                    upstream.close()

        return StreamingResponse(
            relay(), media_type="text/event-stream", headers=dict(STREAM_HEADERS)
        )
