"""One exchange on the wire: the aiohttp session, the gate on calls in flight, the body read.

The session is service-to-service shaped: no cookie jar (a response's ``Set-Cookie`` must not
leak into the next call), no proxies or ``.netrc`` from the environment, no redirects followed,
none of aiohttp's default ``Accept``, ``Accept-Encoding``, ``Content-Type`` and ``User-Agent``
headers (a request carries what the caller set, ``Host``, ``Content-Length`` or chunked coding,
and the client's own), ``max_connections``
connections in all (across hosts), idle ones kept for 30 s, and the response limits of
:class:`~dronecommon.settings.HttpClientSettings`: aiohttp's parser refuses a status line longer
than ``max_header_line``, a header whose name plus value is longer than ``max_header_field`` and
more than ``max_headers`` headers; the client itself stops reading a body at ``max_response_body``.

aiohttp's connector would queue a call that finds every connection busy and count the wait in its
``connect`` timeout, so a full local pool would look like an unreachable target and trip its
circuit breaker. :class:`ConnectionGate` admits at most ``max_connections`` calls at a time in
front of it instead: a call waits for room up to the connect timeout and then fails as ``pool``,
which says nothing about the target.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque

import aiohttp
from aiohttp import ClientTimeout

from dronecommon.httpclient.errors import PoolTimeoutError, ResponseTooLargeError
from dronecommon.httpclient.request import Request
from dronecommon.httpclient.response import Response
from dronecommon.settings import HttpClientSettings

KEEPALIVE_EXPIRY = 30.0
_NO_ROUNDING = 1e9  # aiohttp rounds timeouts from this many seconds up to whole seconds
_READ_CHUNK = 64 * 1024

_SKIPPED_DEFAULT_HEADERS = ("Accept", "Accept-Encoding", "Content-Type", "User-Agent")


def create_session(settings: HttpClientSettings) -> aiohttp.ClientSession:
    """A session sized and limited by ``settings`` (call inside the running event loop)."""
    connector = aiohttp.TCPConnector(
        limit=settings.max_connections,
        limit_per_host=0,
        keepalive_timeout=KEEPALIVE_EXPIRY,
    )
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        skip_auto_headers=_SKIPPED_DEFAULT_HEADERS,
        trust_env=False,
        auto_decompress=True,
        max_line_size=settings.max_header_line,
        max_field_size=settings.max_header_field,
        max_headers=settings.max_headers,
    )


class Wire:
    """Sends requests on one aiohttp session (made on the first call, inside the event loop)."""

    __slots__ = ("_gate", "_max_body", "_session", "_settings")

    def __init__(self, settings: HttpClientSettings) -> None:
        self._settings = settings
        self._max_body = settings.max_response_body
        self._gate = ConnectionGate(settings.max_connections)
        self._session: aiohttp.ClientSession | None = None

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def exchange(
        self, request: Request, deadline: float, connect: float, read: float
    ) -> Response:
        """Send ``request`` and read its response whole, all before the loop time ``deadline``.

        Raises aiohttp's exceptions, :class:`TimeoutError` when the deadline passes,
        :class:`PoolTimeoutError` and :class:`ResponseTooLargeError`.
        """
        session = self._session
        if session is None:
            session = self._session = create_session(self._settings)
        loop = asyncio.get_running_loop()
        gate = self._gate
        remaining = deadline - loop.time()
        await gate.acquire(min(connect, max(0.0, remaining)))
        try:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError("the call's budget ran out waiting for a connection")
            # total bounds the whole exchange (connecting, sending, every read of the body) by
            # the budget left; sock_read bounds each wait for data.
            timeout = ClientTimeout(
                total=remaining,
                sock_connect=min(connect, remaining),
                sock_read=min(read, remaining),
                ceil_threshold=_NO_ROUNDING,
            )
            async with session.request(
                request.method,
                request.url,
                headers=request.headers,
                data=request.body,
                allow_redirects=False,
                timeout=timeout,
            ) as answer:
                if request.method == "HEAD" or answer.status in (204, 304):
                    content = await answer.read()  # no body, whatever Content-Length says
                else:
                    content = await self._read_body(answer)
                version = answer.version
                response = Response(
                    status_code=answer.status,
                    headers=answer.headers,
                    content=content,
                    method=request.method,
                    url=request.url,
                    reason_phrase=answer.reason or "",
                    http_version=f"HTTP/{version.major}.{version.minor}" if version else "",
                )
        except TimeoutError as exc:
            if isinstance(exc, aiohttp.ServerTimeoutError):
                raise  # connect or read timeout: aiohttp's message says which
            raise TimeoutError(
                f"no complete response within the call's budget ({remaining:.3g}s were left)"
            ) from exc
        finally:
            gate.release()
        return response

    async def _read_body(self, answer: aiohttp.ClientResponse) -> bytes:
        """The whole body, or :class:`ResponseTooLargeError` past ``max_response_body``."""
        limit = self._max_body
        length = answer.content_length
        if length is not None and length > limit:
            answer.close()
            raise ResponseTooLargeError(f"the response declares {length} bytes (limit {limit})")
        if length is not None and "Content-Encoding" not in answer.headers:
            return await answer.read()  # exactly Content-Length bytes, within the limit
        body = bytearray()
        stream = answer.content
        while chunk := await stream.read(_READ_CHUNK):
            body += chunk
            if len(body) > limit:
                answer.close()
                raise ResponseTooLargeError(f"the response body exceeds {limit} bytes")
        return bytes(body)


class ConnectionGate:
    """At most ``limit`` calls at a time; the others wait in line (first come, first served)."""

    __slots__ = ("_busy", "_limit", "_waiters")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self._limit = limit
        self._busy = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def busy(self) -> int:
        """Calls admitted and not yet released."""
        return self._busy

    async def acquire(self, timeout: float | None) -> None:  # noqa: ASYNC109 - a deadline per call
        """Wait for room up to ``timeout`` seconds, else raise :class:`PoolTimeoutError`."""
        if self._busy < self._limit and not self._waiters:
            self._busy += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter  # release() hands its slot over: _busy is unchanged
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled():
                self.release()  # given a slot while leaving: hand it to the next in line
            else:
                waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise PoolTimeoutError(
                    f"no connection came free in {timeout:g}s ({self._limit} in use)"
                ) from exc
            raise

    def release(self) -> None:
        """Give a slot back (to the first caller waiting, if any)."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._busy -= 1
