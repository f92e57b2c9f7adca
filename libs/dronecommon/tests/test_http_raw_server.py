"""The outbound HTTP client against scripted raw TCP servers on 127.0.0.1.

Each server is a real asyncio TCP server that reads whole requests off the socket and answers with
the exact bytes a test writes, so what well-behaved servers never send can be played: bytes after a
complete response, oversized or too many headers, a body over the limit, a response dripping one
byte at a time, chunked and EOF-delimited bodies, ``HEAD``, ``1xx``, a server closing a kept-alive
connection, garbage. The client must either read the one response exactly or fail with a
:class:`TransientHTTPError` within its budget, and never hand one call's bytes to another.
(Longer than 400 lines: each case is a few lines of raw bytes on the one scripted server above.)
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import uvloop

from dronecommon.httpclient import (
    CircuitState,
    ResilientClient,
    TransientHTTPError,
    create_http_client,
)
from dronecommon.settings import HttpClientSettings


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int


Handler = Callable[[Received, asyncio.StreamWriter], Awaitable[bool]]


@dataclass
class Scripted:
    """A raw HTTP/1.1 server; ``handler`` writes the answer and says whether to keep reading."""

    handler: Handler
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    url: str = ""
    server: asyncio.Server | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks)
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        task = asyncio.current_task()
        assert task is not None
        self.tasks.add(task)
        try:
            while True:
                request = await _read_request(reader, number)
                if request is None:
                    break
                self.requests.append(request)
                if not await self.handler(request, writer):
                    break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self.tasks.discard(task)


async def _read_request(reader: asyncio.StreamReader, connection: int) -> Received | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    line, *lines = head[:-4].decode("latin-1").split("\r\n")
    method, target, _ = line.split(" ")
    headers = {}
    for header in lines:
        name, _, value = header.partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    if "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    return Received(method, target, headers, body, connection)


def answer(body: bytes = b"ok", status: str = "200 OK", *extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


FAST: dict[str, Any] = {
    "connect_timeout": 0.5,
    "read_timeout": 0.5,
    "retries": 1,
    "backoff_base": 0.001,
    "backoff_max": 0.005,
    "retry_after_max": 0.05,
}


class Harness:
    """Starts scripted servers and clients for them; stops everything afterwards."""

    def __init__(self) -> None:
        self.servers: list[Scripted] = []
        self.clients: list[ResilientClient] = []

    async def server(self, handler: Handler) -> Scripted:
        server = Scripted(handler)
        await server.start()
        self.servers.append(server)
        return server

    def client(
        self, server: Scripted, *, budget: float | None = None, **settings: Any
    ) -> ResilientClient:
        client = create_http_client(
            HttpClientSettings(**{**FAST, **settings}),
            base_url=server.url,
            name="scripted",
            budget=budget,
        )
        self.clients.append(client)
        return client

    async def close(self) -> None:
        for client in self.clients:
            await client.aclose()
        for server in self.servers:
            await server.stop()


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    made = Harness()
    yield made
    await made.close()


def by_target(answers: dict[str, bytes]) -> Handler:
    """A handler answering each target with its bytes (written in one go)."""

    async def handler(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answers[request.target])
        return True

    return handler


# -- responses that break the rules ---------------------------------------------------------------


async def test_a_complete_response_after_the_answer_is_never_handed_to_the_next_call(
    harness: Harness,
) -> None:
    # The server answers the first request with two responses in the same write: the second
    # must not become the answer to the next call, nor be merged into the first body.
    smuggled = answer(b"smuggled", "200 OK", "X-Smuggled: yes")
    server = await harness.server(
        by_target({"/first": answer(b"first") + smuggled, "/second": answer(b"second")})
    )
    client = harness.client(server)

    first = await client.get("/first")
    assert first.content == b"first"
    assert "X-Smuggled" not in first.headers
    second = await client.get("/second")
    assert second.content == b"second"
    assert "X-Smuggled" not in second.headers
    assert [request.target for request in server.requests] == ["/first", "/second"]
    assert server.connections == 2  # the connection with unread bytes was not reused


async def test_garbage_after_the_answer_fails_cleanly_and_is_not_merged(
    harness: Harness,
) -> None:
    server = await harness.server(
        by_target({"/first": answer(b"first") + b"GARBAGE", "/second": answer(b"second")})
    )
    client = harness.client(server, retries=0)

    outcome: bytes | str
    try:
        outcome = (await client.get("/first")).content
    except TransientHTTPError as failure:
        outcome = failure.kind
    assert outcome in (b"first", "protocol", "network")  # the one response exactly, or a failure
    assert (await client.get("/second")).content == b"second"


@pytest.mark.parametrize(
    ("head", "settings"),
    [
        pytest.param("X-Big: " + "a" * 9000, {}, id="a header over the default max_header_field"),
        pytest.param("X-Big: " + "a" * 300, {"max_header_field": 256}, id="a configured limit"),
        pytest.param(
            "\r\n".join(f"X-{n}: {n}" for n in range(200)), {}, id="more than max_headers"
        ),
        pytest.param(
            "\r\n".join(f"X-{n}: {n}" for n in range(20)), {"max_headers": 10}, id="configured"
        ),
    ],
)
async def test_oversized_or_too_many_headers_fail_as_protocol_errors(
    harness: Harness, head: str, settings: dict[str, Any]
) -> None:
    raw = f"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n{head}\r\n\r\nok".encode()
    server = await harness.server(by_target({"/big": raw, "/fine": answer(b"fine")}))
    client = harness.client(server, **settings)

    with pytest.raises(TransientHTTPError) as caught:
        await client.get("/big")
    assert caught.value.kind == "protocol"
    assert caught.value.attempts == 1  # asking again would get the same answer
    assert (await client.get("/fine")).content == b"fine"


async def test_a_status_line_over_max_header_line_fails(harness: Harness) -> None:
    raw = b"HTTP/1.1 200 " + b"O" * 200 + b"\r\nContent-Length: 2\r\n\r\nok"
    server = await harness.server(by_target({"/": raw}))
    with pytest.raises(TransientHTTPError) as caught:
        await harness.client(server, max_header_line=128).get("/")
    assert caught.value.kind == "protocol"


async def test_a_declared_body_over_the_limit_is_refused(harness: Harness) -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n" + b"x" * 2000
    server = await harness.server(by_target({"/big": raw, "/fine": answer(b"fine")}))
    client = harness.client(server, max_response_body=1000)

    with pytest.raises(TransientHTTPError, match="1000") as caught:
        await client.get("/big")
    assert caught.value.kind == "protocol"
    assert (await client.get("/fine")).content == b"fine"


async def test_a_chunked_body_over_the_limit_stops_being_read(harness: Harness) -> None:
    async def endless(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(400):  # 25 MiB if anyone read it all
            writer.write(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        return True

    server = await harness.server(endless)
    client = harness.client(server, max_response_body=100_000)
    with pytest.raises(TransientHTTPError) as caught:
        await client.get("/")
    assert caught.value.kind == "protocol"


async def test_a_body_at_the_limit_is_read(harness: Harness) -> None:
    body = b"x" * 1000
    server = await harness.server(by_target({"/": answer(body)}))
    assert (await harness.client(server, max_response_body=1000).get("/")).content == body


async def test_a_compressed_body_is_limited_after_decoding(harness: Harness) -> None:
    bomb = gzip.compress(b"0" * 200_000)  # about 200 bytes on the wire
    server = await harness.server(
        by_target({"/": answer(bomb, "200 OK", "Content-Encoding: gzip")})
    )
    with pytest.raises(TransientHTTPError) as caught:
        await harness.client(server, max_response_body=10_000).get("/")
    assert caught.value.kind == "protocol"


async def test_a_response_dripping_one_byte_at_a_time_is_cut_at_the_budget(
    harness: Harness,
) -> None:
    # Every byte comes well within the read timeout, so only the call's budget can stop it.
    async def drip(request: Received, writer: asyncio.StreamWriter) -> bool:
        for byte in answer(b"x" * 100):
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.05)
        return True

    server = await harness.server(drip)
    client = harness.client(server, read_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(TransientHTTPError, match="budget") as caught:
        await client.get("/", budget=0.6)
    elapsed = time.monotonic() - started
    assert caught.value.kind == "timeout"
    assert 0.5 <= elapsed < 1.5  # the whole drip would take about 7 s
    assert client.circuit_state() is CircuitState.CLOSED  # one failure, under the threshold


async def test_a_malformed_response_is_a_protocol_failure(harness: Harness) -> None:
    server = await harness.server(by_target({"/": b"SMTP ready\r\n\r\n"}))
    with pytest.raises(TransientHTTPError) as caught:
        await harness.client(server).get("/")
    assert caught.value.kind == "protocol"


async def test_a_body_cut_short_is_a_network_failure(harness: Harness) -> None:
    async def short(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        return False

    server = await harness.server(short)
    with pytest.raises(TransientHTTPError) as caught:
        await harness.client(server, retries=0).get("/")
    assert caught.value.kind == "network"


# -- framing and connections ----------------------------------------------------------------------


async def test_one_kept_alive_connection_serves_sequential_calls(harness: Harness) -> None:
    async def ok(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(request.target.encode(), "200 OK"))
        return True

    server = await harness.server(ok)
    client = harness.client(server)
    for number in range(5):
        response = await client.get(f"/n/{number}")
        assert response.text == f"/n/{number}"
        assert response.http_version == "HTTP/1.1"
        assert response.reason_phrase == "OK"
    assert server.connections == 1


async def test_a_chunked_body_is_read_whole(harness: Harness) -> None:
    async def chunked(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (b"drone-", b"delivery-", b"status"):
            writer.write(b"%x\r\n%b\r\n" % (len(part), part))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        return True

    server = await harness.server(chunked)
    client = harness.client(server)
    for _ in range(2):
        assert (await client.get("/")).content == b"drone-delivery-status"
    assert server.connections == 1


async def test_a_body_delimited_by_the_end_of_the_connection(harness: Harness) -> None:
    async def until_eof(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        return False

    server = await harness.server(until_eof)
    client = harness.client(server)
    assert (await client.get("/")).text == "all of it"
    assert (await client.get("/")).text == "all of it"
    assert server.connections == 2


async def test_head_204_and_304_have_no_body(harness: Harness) -> None:
    async def empty(request: Received, writer: asyncio.StreamWriter) -> bool:
        if request.method == "HEAD":
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 99999999\r\n\r\n")
        elif request.target == "/204":
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
        else:
            writer.write(b'HTTP/1.1 304 Not Modified\r\nETag: "v1"\r\n\r\n')
        return True

    server = await harness.server(empty)
    client = harness.client(server, max_response_body=1000)
    head = await client.head("/")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["content-length"] == "99999999"
    assert (await client.delete("/204")).status_code == 204
    assert (await client.get("/304")).status_code == 304
    assert server.connections == 1


async def test_an_informational_response_is_skipped(harness: Harness) -> None:
    async def continued(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.02)
        writer.write(answer(b"created", "201 Created", "Location: /x/1"))
        return True

    server = await harness.server(continued)
    response = await harness.client(server).put("/x/1", json={"a": 1})
    assert response.status_code == 201
    assert response.headers["location"] == "/x/1"
    assert response.text == "created"


async def test_a_connection_the_server_closed_while_idle_is_not_reused(harness: Harness) -> None:
    async def once(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer())
        return False  # hang up after answering, without saying so

    server = await harness.server(once)
    client = harness.client(server, retries=0)
    assert (await client.get("/")).status_code == 200
    await asyncio.sleep(0.05)  # the FIN arrives while the connection idles
    assert (await client.post("/", content=b"x")).status_code == 200
    assert server.connections == 2
    assert len(server.requests) == 2


async def test_connection_close_from_the_server_is_honoured(harness: Harness) -> None:
    async def closing(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b"bye", "200 OK", "Connection: close"))
        return True

    server = await harness.server(closing)
    client = harness.client(server)
    for _ in range(3):
        assert (await client.get("/")).text == "bye"
    assert server.connections == 3


async def test_the_request_goes_out_as_written(harness: Harness) -> None:
    async def ok(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer())
        return True

    server = await harness.server(ok)
    client = harness.client(server)
    await client.put("/api/packages/p-1", json={"weight": 2.5, "tag": "é"})
    await client.post("/raw", content=b"bytes", headers={"Idempotency-Key": "k"})
    put, post = server.requests
    assert (put.method, put.target) == ("PUT", "/api/packages/p-1")
    assert put.body == '{"weight":2.5,"tag":"é"}'.encode()
    assert put.headers["content-type"] == "application/json"
    assert put.headers["content-length"] == str(len(put.body))
    assert put.headers["host"] == server.url.removeprefix("http://")
    # Nothing the caller did not ask for: no default Accept, Accept-Encoding or User-Agent.
    for header in ("accept", "accept-encoding", "user-agent"):
        assert header not in put.headers
    assert (post.body, post.headers["idempotency-key"]) == (b"bytes", "k")
    assert "content-type" not in post.headers


async def test_request_splitting_is_refused_before_anything_is_sent(harness: Harness) -> None:
    async def ok(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer())
        return True

    server = await harness.server(ok)
    with pytest.raises(ValueError, match=r"(?i)forbidden|newline|carriage|invalid"):
        await harness.client(server).get("/", headers={"X-A": "1\r\nX-Injected: 1"})
    assert server.requests == []


def test_under_uvloop_as_the_services_run() -> None:
    async def scenario() -> None:
        harness = Harness()
        try:
            smuggled = answer(b"smuggled")
            server = await harness.server(
                by_target({"/a": answer(b"a") + smuggled, "/b": answer(b"b")})
            )
            client = harness.client(server)
            assert (await client.get("/a")).content == b"a"
            assert (await client.get("/b")).content == b"b"
        finally:
            await harness.close()

    uvloop.run(scenario())
