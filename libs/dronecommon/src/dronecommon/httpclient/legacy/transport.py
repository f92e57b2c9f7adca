"""The transports a :class:`~dronecommon.httpclient.ResilientClient` can send with.

``"httptools"`` (the default) is :class:`~dronecommon.httpclient.wire.Http11Transport`: HTTP/1.1
on the event loop's protocols with the httptools parser, built for many small calls at once (see
:mod:`dronecommon.httpclient.wire`). ``"aiohttp"`` is httpx-aiohttp's ``AiohttpTransport`` over one
``aiohttp`` connection pool, a general-purpose alternative (about 2.5 times the CPU per call on the
benchmark machine). ``"native"`` is ``httpx.AsyncHTTPTransport``, whose pure-Python connection
handling collapses under concurrency; it is kept for comparison. Any other
``httpx.AsyncBaseTransport`` (``httpx.ASGITransport(app)`` in tests, ``httpx.MockTransport``) can
be passed as it is. The figures are in the library README's "Outbound HTTP" section.

:class:`BufferedAiohttpTransport` narrows httpx-aiohttp's transport to what the client needs, for
speed and for precise errors: the body is read in one piece (the client never streams responses),
so the response carries bytes instead of an async stream adapter; headers go over as a list of
pairs; the already-encoded URL is not re-quoted; and aiohttp's exceptions map to the httpx ones
that mean the same thing (the stock mapping turns a refused connection or a server that hung up
into ``httpx.ConnectTimeout``).

The aiohttp session is service-to-service shaped: no cookie jar (a response's ``Set-Cookie``
must not leak into the next call), no proxies from the environment, no automatic decompression
(httpx decodes), ``max_connections`` connections in all, idle ones kept for 30 s.
"""

from __future__ import annotations

from typing import Any, Literal

import aiohttp
import httpx
from aiohttp import ClientTimeout, hdrs
from httpx_aiohttp import AiohttpTransport
from yarl import URL

from dronecommon.httpclient.legacy.wire import Http11Transport, buffered_response
from dronecommon.settings import HttpClientSettings

TransportKind = Literal["httptools", "aiohttp", "native"]

KEEPALIVE_EXPIRY = 30.0

_HTTP11 = {"http_version": b"HTTP/1.1"}


class BufferedAiohttpTransport(AiohttpTransport):
    """httpx-aiohttp's transport, reading whole bodies and mapping aiohttp errors precisely."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timeouts: dict[tuple[float | None, float | None, float | None], ClientTimeout] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self.client
        if not isinstance(session, aiohttp.ClientSession):
            session = self.client = self.get_client()
        extension = request.extensions.get("timeout", {})
        timeout = self._timeout(
            extension.get("connect"), extension.get("read"), extension.get("pool")
        )
        data: bytes | httpx.AsyncByteStream | None
        try:
            data = request.content or None
        except httpx.RequestNotRead:  # a streamed upload: aiohttp sends it chunked
            data = request.stream  # type: ignore[assignment]
            request.headers.pop("transfer-encoding", None)
        try:
            async with session.request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=data,
                allow_redirects=False,
                auto_decompress=False,
                timeout=timeout,
                server_hostname=request.extensions.get("sni_hostname"),
            ) as response:
                body = await response.read()
        except aiohttp.ClientError as exc:
            raise _httpx_error(exc) from exc
        except TimeoutError as exc:
            raise httpx.TimeoutException(str(exc) or "timed out") from exc
        extensions = _HTTP11
        if response.reason:
            extensions = {**_HTTP11, "reason_phrase": response.reason.encode()}
        return buffered_response(
            response.status,
            response.raw_headers,
            body,
            request,
            extensions,
            encoded=hdrs.CONTENT_ENCODING in response.headers,
        )

    def _timeout(
        self, connect: float | None, read: float | None, pool: float | None
    ) -> ClientTimeout:
        key = (connect, read, pool)
        timeout = self._timeouts.get(key)
        if timeout is not None:
            return timeout
        # ``connect`` in aiohttp covers waiting for a pooled connection plus connecting.
        timeout = ClientTimeout(sock_connect=connect, sock_read=read, connect=pool)
        if len(self._timeouts) < 64:  # the usual few; budget-clipped ones are one-offs
            self._timeouts[key] = timeout
        return timeout


def _httpx_error(exc: aiohttp.ClientError) -> httpx.TransportError:
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(message)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx.RemoteProtocolError(message)
    if isinstance(exc, aiohttp.ClientPayloadError | aiohttp.ClientOSError):
        return httpx.ReadError(message)
    if isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return httpx.UnsupportedProtocol(message)
    if isinstance(exc, aiohttp.ClientConnectionError):
        return httpx.NetworkError(message)
    return httpx.ProtocolError(message)  # a malformed response and the like


def build_transport(
    kind: TransportKind | httpx.AsyncBaseTransport, settings: HttpClientSettings
) -> httpx.AsyncBaseTransport:
    """The transport named by ``kind`` sized by ``settings`` (or ``kind`` itself if a transport)."""
    if isinstance(kind, httpx.AsyncBaseTransport):
        return kind
    limits = httpx.Limits(
        max_connections=settings.max_connections,
        max_keepalive_connections=settings.max_connections,
        keepalive_expiry=KEEPALIVE_EXPIRY,
    )
    if kind == "httptools":
        # The SSL context is made on the first https connection: no certificate loading at
        # start-up for a client that only speaks http inside the cluster.
        return Http11Transport(
            max_connections=settings.max_connections, keepalive_expiry=KEEPALIVE_EXPIRY
        )
    if kind == "native":
        return httpx.AsyncHTTPTransport(limits=limits, retries=0)
    if kind == "aiohttp":
        ssl_context = httpx.create_ssl_context()

        def session() -> aiohttp.ClientSession:
            # Called by the transport on its first request, inside the running event loop.
            connector = aiohttp.TCPConnector(
                limit=settings.max_connections,
                keepalive_timeout=KEEPALIVE_EXPIRY,
                ssl=ssl_context,
            )
            return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

        transport: httpx.AsyncBaseTransport = BufferedAiohttpTransport(
            limits=limits, client=session
        )
        return transport
    raise ValueError(
        f"unknown transport {kind!r}: use 'httptools', 'aiohttp', 'native' or a transport"
    )
