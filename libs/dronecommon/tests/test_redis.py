"""The one Redis client factory and the queue's client built with it, against real redis-servers.

Microsoft Entra cannot run here: the credential is a fake (named as such) whose token is the
password of an ACL user on the real server.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from redis.asyncio import BlockingConnectionPool, ConnectionPool, Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError

from dronecommon.messaging.redis_streams import queue_redis_client
from dronecommon.redis import EntraIdCredentialProvider, KeylessRedis, create_redis_client
from dronecommon.settings import RedisSettings
from dronetesting.servers import RedisServer


class FakeAsyncCredential:
    """Fake of an async Azure credential (Entra cannot run here): always the same token."""

    def __init__(self, token: str) -> None:
        self.token = token

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time() + 3600))


async def hold_the_only_connection(client: Redis, seconds: float) -> None:
    await client.blpop(["nothing-here"], timeout=seconds)


async def test_the_client_takes_its_shape_from_the_settings(redis_url: str) -> None:
    settings = RedisSettings(url=redis_url, socket_timeout=1.5, max_connections=7)
    client = create_redis_client(settings)
    try:
        pool = client.connection_pool
        assert type(pool) is ConnectionPool
        assert pool.max_connections == 7
        kwargs = pool.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (1.5, 1.5)
        assert kwargs["decode_responses"] is False
        assert kwargs["retry"].get_retries() == 0
        await client.set("k", b"\xff")
        assert await client.get("k") == b"\xff"
    finally:
        await client.aclose()


def test_commands_are_packed_in_c_into_the_same_bytes_redis_py_writes() -> None:
    settings = RedisSettings(url="redis://127.0.0.1:1/0")
    python = Connection()  # redis-py's own asyncio packer, argument by argument in Python
    for url, kind in (
        ("redis://127.0.0.1:1/0", Connection),
        ("rediss://127.0.0.1:1/0", SSLConnection),
        ("unix:///tmp/nothing.sock", UnixDomainSocketConnection),
    ):
        pool = create_redis_client(settings, url=url).connection_pool
        assert issubclass(pool.connection_class, kind), url  # TLS and sockets kept
        packer = pool.connection_class()
        assert type(packer).pack_command is not kind.pack_command
        arguments: tuple[Any, ...] = (
            "EVALSHA",
            "f" * 40,
            2,
            "key:{é}",
            b"\xff\x00raw",
            memoryview(b"viewed"),
            -7,
            2**70,
            0.1,
            1 / 3,
            1e20,
            "x" * 70_000,  # past redis-py's buffer cut-off
        )
        assert b"".join(packer.pack_command(*arguments)) == b"".join(
            python.pack_command(*arguments)
        )
        assert b"".join(packer.pack_command("CONFIG GET", "maxmemory")) == b"".join(
            python.pack_command("CONFIG GET", "maxmemory")
        )
        refused: tuple[Any, ...] = (None, True)  # what redis-py refuses, typed or not
        for value in refused:
            with pytest.raises(DataError):
                packer.pack_command("SET", "k", value)


async def test_callers_override_timeouts_pool_and_decoding(redis_url: str) -> None:
    client = create_redis_client(
        RedisSettings(url="redis://unused:1/0"),
        url=redis_url,
        blocking_pool=True,
        socket_timeout=4.0,
        socket_connect_timeout=0.5,
        max_connections=3,
        reconnect_retries=2,
        decode_responses=True,
    )
    try:
        pool = client.connection_pool
        assert isinstance(pool, BlockingConnectionPool)
        assert (pool.max_connections, pool.timeout) == (3, 4.0)
        kwargs = pool.connection_kwargs
        assert (kwargs["socket_timeout"], kwargs["socket_connect_timeout"]) == (4.0, 0.5)
        assert kwargs["retry"].get_retries() == 2
        await client.set("k", "v")
        assert await client.get("k") == "v"
    finally:
        await client.aclose()


async def test_a_plain_pool_refuses_a_command_when_every_connection_is_busy(
    redis_url: str,
) -> None:
    client = create_redis_client(RedisSettings(url=redis_url, max_connections=1))
    try:
        holder = asyncio.create_task(hold_the_only_connection(client, 0.5))
        await asyncio.sleep(0.1)
        with pytest.raises(RedisConnectionError, match="Too many connections"):
            await client.ping()
        await holder
    finally:
        await client.aclose()


async def test_a_blocking_pool_makes_the_caller_wait_for_a_free_connection(
    redis_url: str,
) -> None:
    client = create_redis_client(
        RedisSettings(url=redis_url, max_connections=1), blocking_pool=True, socket_timeout=5.0
    )
    try:
        holder = asyncio.create_task(hold_the_only_connection(client, 0.5))
        await asyncio.sleep(0.1)
        began = time.monotonic()
        assert await client.ping()
        assert time.monotonic() - began >= 0.2  # it waited for the holder's connection
        await holder
    finally:
        await client.aclose()


async def test_the_queue_client_is_raw_blocking_and_outlasts_a_blocking_read(
    redis_url: str,
) -> None:
    sender = queue_redis_client(redis_url)
    receiver = queue_redis_client(redis_url, receive_wait=12.0, max_concurrency=200)
    try:
        for client in (sender, receiver):
            assert isinstance(client.connection_pool, BlockingConnectionPool)
            kwargs = client.connection_pool.connection_kwargs
            assert kwargs["decode_responses"] is False
            assert kwargs["retry"].get_retries() == 2
            assert kwargs["socket_connect_timeout"] == 5.0
            assert await client.ping()
        assert sender.connection_pool.connection_kwargs["socket_timeout"] == 5.0
        assert sender.connection_pool.max_connections == 100
        assert receiver.connection_pool.connection_kwargs["socket_timeout"] == 17.0
        assert receiver.connection_pool.max_connections == 216
    finally:
        await sender.aclose()
        await receiver.aclose()


async def test_the_queue_client_signs_in_like_the_service(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server = redis_server_factory()
    admin = Redis.from_url(server.url)
    try:
        await admin.acl_setuser(
            "queue-oid", enabled=True, passwords=["+entra-token"], keys=["*"], commands=["+@all"]
        )
        settings = RedisSettings(url="redis://unused:1/0", use_entra_id=True, username="queue-oid")
        client = queue_redis_client(
            server.url, settings=settings, credential=FakeAsyncCredential("entra-token")
        )
        try:
            assert isinstance(client, KeylessRedis)
            provider = client.connection_pool.connection_kwargs["credential_provider"]
            assert isinstance(provider, EntraIdCredentialProvider)
            assert await client.acl_whoami() == "queue-oid"
        finally:
            await client.aclose()
    finally:
        await admin.aclose()
