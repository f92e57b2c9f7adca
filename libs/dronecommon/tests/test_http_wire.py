"""The former HTTP/1.1 transport (:mod:`dronecommon.httpclient.legacy.wire`), scripted servers.

Each server is a real asyncio TCP server that reads whole requests off the socket and answers with
the exact bytes a test writes, so the cases HTTP libraries get wrong can be played: chunked and
EOF-delimited bodies, ``HEAD``, ``100 Continue``, a server closing a kept-alive connection, a
trickling body, a malformed answer. The transport is driven through ``httpx.AsyncClient`` (it is a
plain httpx transport) and, for the loop the services run on, under uvloop.
"""

from __future__ import annotations

import asyncio
import datetime
import gzip
import ipaddress
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import uvloop

from dronecommon.httpclient.legacy.wire import Http11Transport


@dataclass
class Received:
    method: str
    target: str
    headers: dict[str, str]
    body: bytes
    connection: int
    raw_head: bytes


Handler = Callable[[Received, asyncio.StreamWriter], Awaitable[bool]]
Make = Callable[[Handler], Awaitable["Scripted"]]


@dataclass
class Scripted:
    """A raw HTTP/1.1 server; ``handler`` writes the answer and says whether to keep reading."""

    handler: Handler
    requests: list[Received] = field(default_factory=list)
    connections: int = 0
    open_now: int = 0
    most_open: int = 0
    url: str = ""
    server: asyncio.Server | None = None

    async def start(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=ssl_context)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        number = self.connections
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            while True:
                request = await _read_request(reader, number)
                if request is None:
                    break
                self.requests.append(request)
                if not await self.handler(request, writer):
                    break
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


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
    return Received(method, target, headers, body, connection, head)


def answer(body: bytes = b"ok", status: str = "200 OK", *extra: str) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


@pytest.fixture
async def scripted() -> AsyncIterator[Make]:
    servers: list[Scripted] = []

    async def make(handler: Handler) -> Scripted:
        server = Scripted(handler)
        await server.start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        await server.stop()


def client(transport: Http11Transport, **timeouts: float) -> httpx.AsyncClient:
    timeout = httpx.Timeout(**{"timeout": 2.0, **timeouts})
    return httpx.AsyncClient(transport=transport, timeout=timeout)


async def ok(request: Received, writer: asyncio.StreamWriter) -> bool:
    writer.write(answer(b'{"path": "%s"}' % request.target.encode()))
    return True


# -- connections ----------------------------------------------------------------------------------


async def test_one_kept_alive_connection_serves_sequential_calls(scripted: Make) -> None:
    server = await scripted(ok)
    async with client(Http11Transport()) as http:
        for number in range(5):
            response = await http.get(f"{server.url}/n/{number}")
            assert response.json() == {"path": f"/n/{number}"}
            assert response.http_version == "HTTP/1.1"
            assert response.reason_phrase == "OK"
    assert server.connections == 1
    assert [request.target for request in server.requests] == [f"/n/{n}" for n in range(5)]


async def test_a_connection_the_server_closed_while_idle_is_not_reused(scripted: Make) -> None:
    async def once(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer())
        return False  # hang up after answering, without saying so

    server = await scripted(once)
    async with client(Http11Transport()) as http:
        assert (await http.get(server.url)).status_code == 200
        await asyncio.sleep(0.05)  # the FIN arrives while the connection idles
        assert (await http.post(server.url, content=b"x")).status_code == 200
    assert server.connections == 2
    assert len(server.requests) == 2  # nothing was sent into the dead connection


async def test_connection_close_from_the_server_is_honoured(scripted: Make) -> None:
    async def closing(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(b"bye", "200 OK", "Connection: close"))
        return True  # the server would keep reading; the client must not send more here

    server = await scripted(closing)
    async with client(Http11Transport()) as http:
        for _ in range(3):
            assert (await http.get(server.url)).text == "bye"
    assert server.connections == 3


async def test_a_request_saying_connection_close_gets_a_fresh_connection_next(
    scripted: Make,
) -> None:
    server = await scripted(ok)
    async with client(Http11Transport()) as http:
        await http.get(server.url, headers={"Connection": "close"})
        await http.get(server.url)
    assert server.connections == 2


async def test_a_kept_alive_connection_dropped_as_it_is_reused_is_retried_once_for_get(
    scripted: Make,
) -> None:
    async def first_only(request: Received, writer: asyncio.StreamWriter) -> bool:
        if request.connection == 0 and len(server.requests) > 1:
            return False  # the race: the server gave up on the connection as the request came
        writer.write(answer())
        return True

    server = await scripted(first_only)
    async with client(Http11Transport()) as http:
        await http.get(server.url)
        assert (await http.get(server.url)).status_code == 200
    assert server.connections == 2
    assert len(server.requests) == 3  # the lost GET was sent again on a new connection


async def test_a_post_lost_on_a_reused_connection_is_not_sent_again(scripted: Make) -> None:
    async def first_only(request: Received, writer: asyncio.StreamWriter) -> bool:
        if len(server.requests) > 1:
            return False
        writer.write(answer())
        return True

    server = await scripted(first_only)
    async with client(Http11Transport()) as http:
        await http.get(server.url)
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await http.post(server.url, json={"order": 1})
    assert [request.method for request in server.requests] == ["GET", "POST"]


async def test_idle_connections_expire(scripted: Make) -> None:
    server = await scripted(ok)
    async with client(Http11Transport(keepalive_expiry=0.05)) as http:
        await http.get(server.url)
        await asyncio.sleep(0.1)
        await http.get(server.url)
    assert server.connections == 2


async def test_the_pool_never_opens_more_than_max_connections(scripted: Make) -> None:
    async def slow(request: Received, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.05)
        writer.write(answer(request.target.encode()))
        return True

    server = await scripted(slow)
    async with client(Http11Transport(max_connections=2)) as http:
        responses = await asyncio.gather(*(http.get(f"{server.url}/{n}") for n in range(8)))
    assert sorted(response.text for response in responses) == sorted(f"/{n}" for n in range(8))
    assert server.most_open <= 2
    assert server.connections == 2


async def test_a_full_pool_times_out_as_a_pool_timeout(scripted: Make) -> None:
    async def slow(request: Received, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(0.5)
        writer.write(answer())
        return True

    server = await scripted(slow)
    async with client(Http11Transport(max_connections=1), pool=0.1) as http:
        busy = asyncio.create_task(http.get(server.url))
        await asyncio.sleep(0.05)
        with pytest.raises(httpx.PoolTimeout):
            await http.get(server.url)
        assert (await busy).status_code == 200


async def test_a_cancelled_call_gives_its_connection_back(scripted: Make) -> None:
    async def slow_first(request: Received, writer: asyncio.StreamWriter) -> bool:
        if request.target == "/slow":
            await asyncio.sleep(5)
        writer.write(answer())
        return True

    server = await scripted(slow_first)
    async with client(Http11Transport(max_connections=1), pool=0.5) as http:
        call = asyncio.create_task(http.get(f"{server.url}/slow"))
        await asyncio.sleep(0.05)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        # The connection's state is unknown (an answer may still come): a new one is opened.
        assert (await http.get(f"{server.url}/fast")).status_code == 200
    assert server.connections == 2


async def test_connection_refused_is_a_connect_error() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()
    async with client(Http11Transport()) as http:
        with pytest.raises(httpx.ConnectError):
            await http.get(f"http://127.0.0.1:{port}/")


# -- response framing -------------------------------------------------------------------------


async def test_a_chunked_body_is_read_whole(scripted: Make) -> None:
    async def chunked(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for part in (b"drone-", b"delivery-", b"status"):
            writer.write(b"%x\r\n%b\r\n" % (len(part), part))
            await writer.drain()
            await asyncio.sleep(0.01)
        writer.write(b"0\r\n\r\n")
        return True

    server = await scripted(chunked)
    async with client(Http11Transport()) as http:
        for _ in range(2):
            assert (await http.get(server.url)).content == b"drone-delivery-status"
    assert server.connections == 1  # a complete chunked body leaves the connection reusable


async def test_a_body_delimited_by_the_end_of_the_connection(scripted: Make) -> None:
    async def until_eof(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nall of it")
        return False

    server = await scripted(until_eof)
    async with client(Http11Transport()) as http:
        assert (await http.get(server.url)).text == "all of it"
        assert (await http.get(server.url)).text == "all of it"
    assert server.connections == 2


async def test_a_body_cut_short_is_a_protocol_error(scripted: Make) -> None:
    async def short(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this")
        return False

    server = await scripted(short)
    async with client(Http11Transport()) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="before the response was complete"):
            await http.post(server.url, content=b"x")


async def test_head_ends_with_the_headers(scripted: Make) -> None:
    async def head(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Length: 1234\r\nETag: "v1"\r\n\r\n')
        return True

    server = await scripted(head)
    async with client(Http11Transport(), read=0.5) as http:
        response = await http.head(server.url)
    assert response.status_code == 200
    assert response.headers["content-length"] == "1234"
    assert response.content == b""


async def test_no_content_and_not_modified_have_no_body(scripted: Make) -> None:
    async def empty(request: Received, writer: asyncio.StreamWriter) -> bool:
        status = "204 No Content" if request.target == "/204" else "304 Not Modified"
        writer.write(f'HTTP/1.1 {status}\r\nETag: "v1"\r\n\r\n'.encode())
        return True

    server = await scripted(empty)
    async with client(Http11Transport(), read=0.5) as http:
        assert (await http.delete(f"{server.url}/204")).status_code == 204
        assert (await http.get(f"{server.url}/304")).status_code == 304
    assert server.connections == 1


async def test_an_informational_response_is_skipped(scripted: Make) -> None:
    async def continued(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.02)  # the 100 arrives on its own
        writer.write(answer(b"created", "201 Created", "Location: /x/1"))
        return True

    server = await scripted(continued)
    async with client(Http11Transport()) as http:
        response = await http.put(f"{server.url}/x/1", json={"a": 1})
    assert response.status_code == 201
    assert response.headers["location"] == "/x/1"
    assert response.text == "created"


async def test_a_malformed_response_is_a_protocol_error(scripted: Make) -> None:
    async def garbage(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"SMTP ready\r\n\r\n")
        return True

    server = await scripted(garbage)
    async with client(Http11Transport()) as http:
        with pytest.raises(httpx.RemoteProtocolError, match="malformed response"):
            await http.get(server.url)


async def test_a_compressed_body_is_decoded(scripted: Make) -> None:
    async def zipped(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(answer(gzip.compress(b'{"eta": 12}'), "200 OK", "Content-Encoding: gzip"))
        return True

    server = await scripted(zipped)
    async with client(Http11Transport()) as http:
        assert (await http.get(server.url)).json() == {"eta": 12}


# -- timeouts ---------------------------------------------------------------------------------


async def test_a_silent_server_is_a_read_timeout(scripted: Make) -> None:
    async def silent(request: Received, writer: asyncio.StreamWriter) -> bool:
        await asyncio.sleep(2)
        return False

    server = await scripted(silent)
    async with client(Http11Transport(), read=0.2) as http:
        started = asyncio.get_running_loop().time()
        with pytest.raises(httpx.ReadTimeout):
            await http.get(server.url)
        assert asyncio.get_running_loop().time() - started < 1.0


async def test_the_read_timeout_restarts_whenever_bytes_arrive(scripted: Make) -> None:
    async def trickle(request: Received, writer: asyncio.StreamWriter) -> bool:
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(5):  # 0.5 s in all, never more than 0.1 s quiet
            await writer.drain()
            await asyncio.sleep(0.1)
            writer.write(b"1\r\n.\r\n")
        writer.write(b"0\r\n\r\n")
        return True

    server = await scripted(trickle)
    async with client(Http11Transport(), read=0.3) as http:
        assert (await http.get(server.url)).text == "....."


# -- what is sent -----------------------------------------------------------------------------


async def test_the_request_goes_out_as_written(scripted: Make) -> None:
    server = await scripted(ok)
    async with client(Http11Transport()) as http:
        await http.put(
            f"{server.url}/api/packages/p-1?ownerId=o%201",
            json={"size": "Small"},
            headers={"Idempotency-Key": "k-1"},
        )
    request = server.requests[0]
    assert request.raw_head.startswith(b"PUT /api/packages/p-1?ownerId=o%201 HTTP/1.1\r\n")
    assert request.headers["host"] == server.url.removeprefix("http://")
    assert request.headers["idempotency-key"] == "k-1"
    assert request.headers["content-type"] == "application/json"
    assert request.body == b'{"size":"Small"}'


async def test_a_streamed_body_goes_out_chunked(scripted: Make) -> None:
    server = await scripted(ok)

    async def parts() -> AsyncIterator[bytes]:
        for part in (b"a" * 10, b"", b"b" * 70_000):
            yield part

    async with client(Http11Transport()) as http:
        await http.post(server.url, content=parts())
    request = server.requests[0]
    assert request.headers["transfer-encoding"] == "chunked"
    assert request.body == b"a" * 10 + b"b" * 70_000


async def test_a_large_body_with_a_length_goes_out_whole(scripted: Make) -> None:
    server = await scripted(ok)
    body = bytes(range(256)) * 1024  # 256 KiB: sent after the head, not copied into it
    async with client(Http11Transport()) as http:
        await http.post(server.url, content=body)
    assert server.requests[0].body == body


@pytest.mark.parametrize(
    "headers",
    [{"X-Note": "a\r\nX-Injected: 1"}, {"X-Note": "a\nb"}, {"X-Note\r\nX": "1"}, {"X": "a\0"}],
)
async def test_request_splitting_is_refused_before_anything_is_sent(
    scripted: Make, headers: dict[str, str]
) -> None:
    server = await scripted(ok)
    transport = Http11Transport()
    request = httpx.Request("GET", server.url, headers=headers)
    with pytest.raises(httpx.LocalProtocolError):
        await transport.handle_async_request(request)
    await transport.aclose()
    assert server.requests == []


async def test_a_closed_transport_refuses_requests(scripted: Make) -> None:
    server = await scripted(ok)
    transport = Http11Transport()
    await transport.aclose()
    with pytest.raises(RuntimeError, match="closed"):
        await transport.handle_async_request(httpx.Request("GET", server.url))


async def test_unsupported_schemes_are_refused() -> None:
    async with client(Http11Transport()) as http:
        with pytest.raises(httpx.UnsupportedProtocol):
            await http.get("ftp://127.0.0.1/file")


# -- TLS ----------------------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_is_verified_against_the_given_trust(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    server = Scripted(ok)
    await server.start(server_context)
    try:
        trusting = ssl.create_default_context(cafile=str(cert))
        async with client(Http11Transport(ssl_context=trusting)) as http:
            for _ in range(2):
                assert (await http.get(f"{server.url}/secure")).json() == {"path": "/secure"}
        assert server.connections == 1
        async with client(Http11Transport()) as http:  # the system's trust: not this server
            with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await http.get(server.url)
    finally:
        await server.stop()


# -- the services' event loop -------------------------------------------------------------------


def test_under_uvloop_as_the_services_run() -> None:
    async def scenario() -> tuple[list[str], int]:
        async def chunked(request: Received, writer: asyncio.StreamWriter) -> bool:
            await asyncio.sleep(0.001)
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
            body = request.target.encode()
            writer.write(b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body))
            return True

        server = Scripted(chunked)
        await server.start()
        try:
            async with client(Http11Transport(max_connections=4)) as http:
                responses = await asyncio.gather(
                    *(http.get(f"{server.url}/{n}") for n in range(40))
                )
                texts = [response.text for response in responses]
                silent = Scripted(_silent)
                await silent.start()
                try:
                    with pytest.raises(httpx.ReadTimeout):
                        await http.get(silent.url, timeout=httpx.Timeout(2.0, read=0.1))
                finally:
                    await silent.stop()
        finally:
            await server.stop()
        return texts, server.most_open

    texts, most_open = uvloop.run(scenario())
    assert texts == [f"/{n}" for n in range(40)]
    assert most_open <= 4


async def _silent(request: Received, writer: asyncio.StreamWriter) -> bool:
    await asyncio.sleep(1)
    return False
