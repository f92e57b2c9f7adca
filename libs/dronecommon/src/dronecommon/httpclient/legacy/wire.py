"""HTTP/1.1 over asyncio protocols, parsed by httptools: the client's default transport.

A service calls a handful of backends with small JSON bodies, many at a time. For that shape the
general-purpose clients spend most of a call in their own Python layers: on the 2-core benchmark
machine aiohttp's request path alone cost about three times what this transport does (measured
with ``libs/dronecommon/benchmarks/bench_http_client.py``; the figures are in the README). So
:class:`Http11Transport` is a small ``httpx.AsyncBaseTransport`` that does only what such calls
need, on the event loop's own protocol interface:

- one request at a time per connection, kept alive and reused most-recently-used first, at most
  ``max_connections`` in all (across hosts); a call that finds none free waits for one up to the
  request's ``pool`` timeout (``httpx.PoolTimeout``);
- the request is written in one ``transport.write`` (head and body together); a streamed body is
  written as it comes, chunked unless the request has a ``Content-Length``;
- the response is parsed by httptools (llhttp, the parser Node.js uses) and read whole: the
  transport returns a closed ``httpx.Response`` holding the body;
- timeouts: ``connect`` bounds connecting (TCP and TLS), ``read`` bounds each wait for the server
  (it restarts whenever bytes arrive), ``pool`` bounds waiting for a connection;
- failures are the httpx exceptions that mean the same (``ConnectError``, ``ConnectTimeout``,
  ``ReadTimeout``, ``RemoteProtocolError`` for a malformed or cut-short response, ``ReadError``
  for a reset, ``LocalProtocolError`` for a header that would break the request);
- a kept-alive connection the server closed just as it was reused (nothing received) is retried
  once on a new connection for idempotent methods with a replayable body — the race every
  keep-alive client has, handled the way browsers and aiohttp handle it;
- idle connections are dropped after ``keepalive_expiry`` seconds, when the server closes them, and
  when the server says ``Connection: close``; ``https`` URLs use TLS with the given SSL context.

Not supported, as the client does not need them: HTTP/2, proxies, protocol upgrades (101 is a
protocol error) and pipelining.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any, cast

import httptools
import httpx

_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
_FORBIDDEN_IN_HEADERS = (b"\r", b"\n", b"\0")
_COALESCE_LIMIT = 64 * 1024  # bodies up to this size go out in the same write as the head
_HTTP_VERSIONS = {"1.1": b"HTTP/1.1", "1.0": b"HTTP/1.0"}

PoolKey = tuple[bytes, bytes, int]


class _Exchange:
    """One response being received: its parts as they arrive and the future that ends it."""

    __slots__ = (
        "body",
        "encoded",
        "future",
        "head",
        "headers",
        "headers_done",
        "http_version",
        "keep_alive",
        "reason",
        "status",
    )

    def __init__(self, future: asyncio.Future[None], head: bool) -> None:
        self.future = future
        self.head = head  # a HEAD request: the response ends with its headers
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.reason = b""
        self.headers_done = False
        self.status = 0
        self.http_version = b"HTTP/1.1"
        self.keep_alive = False  # the connection may serve another request after this one
        self.encoded = False  # a Content-Encoding header came: httpx decodes the body


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: sends a request, parses its response, then idles or closes."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._exchange: _Exchange | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._read_timeout = 0.0
        self._last_read = 0.0
        self._writable: asyncio.Future[None] | None = None
        self.received = False  # any byte of the current exchange's response
        self.closed = False
        self.reused = False
        self.idle_since = 0.0
        self.on_lost: Callable[[_Connection], None] | None = None  # the pool forgets it

    # -- asyncio.Protocol --------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self._transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        exchange = self._exchange
        parser = self._parser
        if exchange is None or parser is None:
            # Bytes nobody asked for (a server's "408" before it hangs up, say): unusable.
            self.close()
            return
        self.received = True
        self._last_read = self._loop.time()
        try:
            parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(httpx.RemoteProtocolError("the server switched protocols (not supported)"))
        except httptools.HttpParserError as exc:
            self._fail(httpx.RemoteProtocolError(f"malformed response: {exc}"))

    def eof_received(self) -> bool:
        self.closed = True  # not to be taken from the pool while the close is under way
        return False  # close the transport; connection_lost settles any exchange

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self._loop.create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._cancel_timer()
        self.resume_writing()
        exchange = self._exchange
        if exchange is not None and not exchange.future.done():
            if exchange.headers_done and self._ends_at_eof():
                self._complete(reusable=False)
            elif exc is not None:
                self._fail(httpx.ReadError(str(exc) or type(exc).__name__))
            elif self.received:
                self._fail(
                    httpx.RemoteProtocolError(
                        "the server closed the connection before the response was complete"
                    )
                )
            else:
                self._fail(
                    httpx.RemoteProtocolError("the server disconnected without sending a response")
                )
        if self.on_lost is not None:
            self.on_lost(self)
            self.on_lost = None

    # -- httptools callbacks --------------------------------------------------------------------

    def on_status(self, status: bytes) -> None:
        if self._exchange is not None:
            self._exchange.reason += status

    def on_header(self, name: bytes, value: bytes) -> None:
        exchange = self._exchange
        if exchange is not None:
            exchange.headers.append((name, value))
            if len(name) == 16 and name.lower() == b"content-encoding":
                exchange.encoded = True

    def on_headers_complete(self) -> None:
        exchange, parser = self._exchange, self._parser
        if exchange is None or parser is None:
            return
        status = parser.get_status_code()
        if 100 <= status < 200:
            return  # informational: the real response follows (on_message_complete resets)
        exchange.headers_done = True
        exchange.status = status
        exchange.http_version = _HTTP_VERSIONS.get(parser.get_http_version(), b"HTTP/1.1")
        exchange.keep_alive = parser.should_keep_alive()
        if exchange.head:
            # No body follows a HEAD response whatever its headers say; the parser cannot be
            # told that, so the exchange ends here and the connection is not reused.
            self._complete(reusable=False)

    def on_body(self, body: bytes) -> None:
        if self._exchange is not None:
            self._exchange.body.append(body)

    def on_message_complete(self) -> None:
        exchange, parser = self._exchange, self._parser
        if exchange is None or parser is None or exchange.future.done():
            return
        if not exchange.headers_done:  # the end of a 1xx: start over for the real response
            exchange.headers.clear()
            exchange.reason = b""
            exchange.encoded = False
            return
        self._complete()

    # -- the exchange ---------------------------------------------------------------------------

    def start(self, head: bool, read_timeout: float | None) -> _Exchange:
        """Get ready for a response (before the request goes out) and arm the read timeout."""
        exchange = _Exchange(self._loop.create_future(), head)
        self._exchange = exchange
        self._parser = httptools.HttpResponseParser(self)
        self.received = False
        self._last_read = self._loop.time()
        if read_timeout is not None:
            self._read_timeout = read_timeout
            self._timer = self._loop.call_at(self._last_read + read_timeout, self._check_timeout)
        return exchange

    def write(self, data: bytes) -> None:
        assert self._transport is not None
        self._transport.write(data)

    async def drain(self) -> None:
        """Wait while the kernel's send buffer is full (streamed bodies only)."""
        writable = self._writable
        if writable is not None:
            await writable

    def finish(self) -> None:
        """The caller is done with the exchange."""
        self._exchange = None
        self._parser = None
        self._cancel_timer()

    def close(self) -> None:
        if self._transport is not None and not self.closed:
            self._transport.close()
        self.closed = True
        self._cancel_timer()

    def _complete(self, *, reusable: bool = True) -> None:
        self._cancel_timer()
        exchange = self._exchange
        assert exchange is not None
        if not reusable:
            exchange.keep_alive = False
        if not exchange.future.done():
            exchange.future.set_result(None)

    def _fail(self, error: Exception) -> None:
        exchange = self._exchange
        self.close()
        if exchange is not None and not exchange.future.done():
            exchange.future.set_exception(error)

    def _ends_at_eof(self) -> bool:
        """A response with neither Content-Length nor chunked coding: its body ends at EOF."""
        assert self._exchange is not None
        for name, value in self._exchange.headers:
            lowered = name.lower()
            if lowered == b"content-length" or (
                lowered == b"transfer-encoding" and b"chunked" in value.lower()
            ):
                return False
        return self._exchange.status not in (204, 304)

    def _check_timeout(self) -> None:
        self._timer = None
        exchange = self._exchange
        if exchange is None or exchange.future.done():
            return
        due = self._last_read + self._read_timeout
        if self._loop.time() < due:  # bytes arrived since: wait the rest of the interval
            self._timer = self._loop.call_at(due, self._check_timeout)
            return
        self._fail(httpx.ReadTimeout(f"no response data for {self._read_timeout:g}s"))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class Http11Transport(httpx.AsyncBaseTransport):
    """An httpx transport over a pool of HTTP/1.1 connections (see the module docstring)."""

    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive_expiry: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._ssl_context = ssl_context
        self._idle: dict[PoolKey, list[_Connection]] = {}
        self._open: set[_Connection] = set()  # every connection, idle or busy
        self._opening = 0  # connections being opened (they count against the limit)
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._closed = False

    # -- httpx.AsyncBaseTransport --------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._closed:
            raise RuntimeError("the transport is closed")
        url = request.url
        scheme = url.raw_scheme
        if scheme not in (b"http", b"https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {url.scheme!r}")
        if not url.raw_host:
            raise httpx.UnsupportedProtocol(f"no host in {url!r}")
        port = url.port or (443 if scheme == b"https" else 80)
        key: PoolKey = (scheme, url.raw_host, port)
        timeouts = request.extensions.get("timeout", {})
        head, closes = _request_head(request)
        try:
            body: bytes | None = request.content
        except httpx.RequestNotRead:
            body = None  # a streamed body
        method = request.method
        retry_stale = body is not None and method in _IDEMPOTENT

        connection = await self._acquire(request, key, timeouts, reuse=True)
        while True:
            try:
                exchange = await self._exchange(connection, request, head, body, timeouts)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                self._discard(connection)
                if not (retry_stale and connection.reused and not connection.received):
                    raise
                # A kept-alive connection the server had closed: once, on a new connection.
                retry_stale = False
                connection = await self._acquire(request, key, timeouts, reuse=False)
                continue
            except BaseException:
                self._discard(connection)
                raise
            break

        if exchange.keep_alive and not connection.closed and not closes:
            self._release(connection, key)
        else:
            self._discard(connection)
        extensions: dict[str, object] = {"http_version": exchange.http_version}
        if exchange.reason:
            extensions["reason_phrase"] = exchange.reason
        content = exchange.body[0] if len(exchange.body) == 1 else b"".join(exchange.body)
        return buffered_response(
            exchange.status,
            exchange.headers,
            content,
            request,
            extensions,
            encoded=exchange.encoded,
        )

    async def aclose(self) -> None:
        self._closed = True
        for connection in list(self._open):
            connection.close()
        self._open.clear()
        self._idle.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)

    # -- one exchange -----------------------------------------------------------------------------

    async def _exchange(
        self,
        connection: _Connection,
        request: httpx.Request,
        head: bytes,
        body: bytes | None,
        timeouts: dict[str, float | None],
    ) -> _Exchange:
        exchange = connection.start(request.method == "HEAD", timeouts.get("read"))
        try:
            if body is not None:
                if len(body) <= _COALESCE_LIMIT:
                    connection.write(head + body if body else head)
                else:
                    connection.write(head)
                    connection.write(body)
            else:
                connection.write(head)
                await _send_stream(connection, request)
            await exchange.future
        finally:
            connection.finish()
        return exchange

    # -- the pool ------------------------------------------------------------------------------

    def _take_idle(self, key: PoolKey) -> _Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        oldest_allowed = time.monotonic() - self._keepalive_expiry
        while idle:
            connection = idle.pop()  # the most recently used: the warmest, least likely stale
            if connection.closed:
                continue
            if connection.idle_since < oldest_allowed:
                self._discard(connection)
                continue
            connection.reused = True
            return connection
        return None

    async def _acquire(
        self,
        request: httpx.Request,
        key: PoolKey,
        timeouts: dict[str, float | None],
        *,
        reuse: bool,
    ) -> _Connection:
        """An idle connection to ``key`` (if ``reuse``) or a new one, waiting for room if full."""
        pool_timeout = timeouts.get("pool")
        deadline = None if pool_timeout is None else time.monotonic() + pool_timeout
        while True:
            if self._closed:
                raise RuntimeError("the transport is closed")
            if reuse:
                connection = self._take_idle(key)
                if connection is not None:
                    return connection
            if len(self._open) + self._opening < self._max_connections:
                return await self._connect(request, key, timeouts.get("connect"))
            if self._close_an_idle_connection():  # another host's idle one makes room
                continue
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise httpx.PoolTimeout("no connection came free in the pool in time")
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                async with asyncio.timeout(remaining):
                    await waiter
            except BaseException as exc:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, but leaving: the room goes to the next in line
                else:
                    waiter.cancel()
                    with contextlib.suppress(ValueError):
                        self._waiters.remove(waiter)
                if isinstance(exc, TimeoutError):
                    raise httpx.PoolTimeout("no connection came free in the pool in time") from exc
                raise

    async def _connect(
        self, request: httpx.Request, key: PoolKey, connect_timeout: float | None
    ) -> _Connection:
        loop = asyncio.get_running_loop()
        scheme, host, port = key
        ssl_context: ssl.SSLContext | None = None
        server_hostname: str | None = None
        if scheme == b"https":
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            ssl_context = self._ssl_context
            sni = request.extensions.get("sni_hostname")
            server_hostname = sni if isinstance(sni, str) else request.url.host
        self._opening += 1
        try:
            async with asyncio.timeout(connect_timeout):
                _, connection = await loop.create_connection(
                    lambda: _Connection(loop),
                    host.decode("ascii"),
                    port,
                    ssl=ssl_context,
                    server_hostname=server_hostname,
                )
        except TimeoutError as exc:
            raise httpx.ConnectTimeout(f"connecting to {request.url.netloc!r} timed out") from exc
        except OSError as exc:  # refused, unreachable, DNS (socket.gaierror), TLS (ssl.SSLError)
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        finally:
            self._opening -= 1
            if self._opening + len(self._open) < self._max_connections:
                self._wake()  # this attempt failed: its room is free again
        if self._closed:
            connection.close()
            raise RuntimeError("the transport is closed")
        connection.on_lost = self._forget
        self._open.add(connection)
        return connection

    def _release(self, connection: _Connection, key: PoolKey) -> None:
        if self._closed:
            connection.close()
            return
        connection.idle_since = time.monotonic()
        idle = self._idle.setdefault(key, [])
        idle.append(connection)
        # Expire the oldest idle ones of this host on the way (idle lists are oldest first).
        oldest_allowed = connection.idle_since - self._keepalive_expiry
        while idle and idle[0].idle_since < oldest_allowed:
            self._discard(idle.pop(0))
        self._wake()

    def _discard(self, connection: _Connection) -> None:
        connection.close()
        self._forget(connection)

    def _forget(self, connection: _Connection) -> None:
        if connection in self._open:
            self._open.discard(connection)
            self._wake()

    def _close_an_idle_connection(self) -> bool:
        for idle in self._idle.values():
            while idle:
                connection = idle.pop(0)
                if connection in self._open:
                    self._discard(connection)
                    return True
        return False

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


def buffered_response(
    status: int,
    headers: Sequence[tuple[bytes, bytes]],
    body: bytes,
    request: httpx.Request,
    extensions: dict[str, Any],
    *,
    encoded: bool,
) -> httpx.Response:
    """An ``httpx.Response`` already read and closed, holding ``body`` as received.

    The headers are the server's, untouched (``Response(content=...)`` would add a
    ``Content-Length`` next to a ``Transfer-Encoding``). A body in a ``Content-Encoding`` goes
    through httpx's decoders as usual; a plain one is taken as it is, which is what reading it
    would give.
    """
    response = httpx.Response(
        status,
        headers=headers,
        stream=httpx.ByteStream(body),
        request=request,
        extensions=extensions,
    )
    if encoded:
        response.read()
    else:
        response._content = body
        response.is_stream_consumed = True
        response.is_closed = True
    response._num_bytes_downloaded = len(body)
    return response


def _request_head(request: httpx.Request) -> tuple[bytes, bool]:
    """The request line and headers, ready to send, and whether they say ``Connection: close``.

    Header names and values, and the target, are checked for CR, LF and NUL (request splitting).
    """
    target = request.url.raw_path or b"/"
    if b"\r" in target or b"\n" in target or b" " in target or b"\0" in target:
        raise httpx.LocalProtocolError(f"illegal character in request target {target!r}")
    lines = [request.method.encode("ascii"), b" ", target, b" HTTP/1.1\r\n"]
    closes = False
    for name, value in request.headers.raw:
        for forbidden in _FORBIDDEN_IN_HEADERS:
            if forbidden in name or forbidden in value:
                raise httpx.LocalProtocolError(f"illegal character in header {name!r}")
        if len(name) == 10 and name.lower() == b"connection" and b"close" in value.lower():
            closes = True
        lines += (name, b": ", value, b"\r\n")
    lines.append(b"\r\n")
    return b"".join(lines), closes


async def _send_stream(connection: _Connection, request: httpx.Request) -> None:
    """Write a streamed body: chunked unless the request says its length."""
    chunked = "content-length" not in request.headers
    stream = request.stream
    if isinstance(stream, httpx.AsyncByteStream):
        async for chunk in stream:
            _write_chunk(connection, chunk, chunked)
            await connection.drain()
    else:
        for chunk in stream:
            _write_chunk(connection, chunk, chunked)
            await connection.drain()
    if chunked:
        connection.write(b"0\r\n\r\n")


def _write_chunk(connection: _Connection, chunk: bytes, chunked: bool) -> None:
    if not chunk:
        return
    if chunked:
        connection.write(b"%x\r\n%b\r\n" % (len(chunk), chunk))
    else:
        connection.write(chunk)
