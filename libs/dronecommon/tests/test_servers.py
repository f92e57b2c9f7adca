"""The test servers themselves: real processes that answer their protocols."""

from __future__ import annotations

from collections.abc import Callable

from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from dronecommon.testing.servers import RedisServer


async def test_redis_answers_and_restarts_on_the_same_port(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server: RedisServer = redis_server_factory()
    async with Redis.from_url(server.url) as client:
        assert await client.ping()
    server.stop()
    server.start()
    async with Redis.from_url(server.url) as client:
        assert await client.ping()


async def test_ferretdb_speaks_the_mongodb_wire_protocol(
    mongo_url: str, mongo_database: str
) -> None:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    try:
        collection = client[mongo_database]["things"]
        await collection.insert_one({"_id": "a", "n": 1})
        found = await collection.find_one({"_id": "a"})
        assert found == {"_id": "a", "n": 1}
    finally:
        await client.close()
