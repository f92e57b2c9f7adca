"""The test servers themselves: real processes that answer their protocols."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from dronetesting.servers import (
    FerretDBServer,
    RedisServer,
    ServerUnavailableError,
    cpu_seconds,
    cpu_seconds_of,
    ephemeral_floor,
    free_port,
)


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


async def test_a_persisting_redis_keeps_an_acknowledged_write_when_killed_and_never_snapshots(
    tmp_path: Path,
) -> None:
    # The native stack's Redis: the append-only file alone (no RDB schedule forking a full dump).
    server = RedisServer(tmp_path / "redis", persist=True)
    server.start()
    try:
        async with Redis.from_url(server.url) as client:
            assert await client.config_get("save") == {"save": ""}
            assert await client.config_get("appendonly") == {"appendonly": "yes"}
            await client.set("kept", "yes")
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)  # no shutdown, no final write
        server.stop()  # only reaps it (and waits for the port to be free)
        server.start()
        async with Redis.from_url(server.url) as client:
            assert await client.get("kept") == b"yes"
    finally:
        server.stop()


# A parent that forks a child burning 0.6 s of CPU (saying so once it has burnt 0.2 s), waits for
# it, says so, then idles until it is killed. The lines order the readings whatever the load.
PARENT = """
import os, time
pid = os.fork()
if pid == 0:
    said = False
    while time.process_time() < 0.6:
        if not said and time.process_time() >= 0.2:
            print("burning", flush=True)
            said = True
    os._exit(0)
os.waitpid(pid, 0)
print("reaped", flush=True)
time.sleep(60)
"""


def test_a_processs_cpu_time_counts_a_child_running_and_after_it_ended() -> None:
    # redis-server's snapshot fork: counted while it runs, and still once it has been waited for.
    with subprocess.Popen(
        [sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True
    ) as parent:
        assert parent.stdout is not None
        try:
            assert parent.stdout.readline().strip() == "burning"  # the child runs
            before = cpu_seconds(parent.pid)
            assert parent.stdout.readline().strip() == "reaped"  # it ended, was waited for
            after = cpu_seconds(parent.pid)
        finally:
            parent.kill()
    # /proc counts in clock ticks (10 ms): a little below the child's own reckoning.
    assert before >= 0.15
    assert after >= 0.55
    assert after >= before


async def test_a_servers_cpu_time_counts_its_work_and_ends_with_it(
    redis_server_factory: Callable[[], RedisServer],
) -> None:
    server: RedisServer = redis_server_factory()
    before = server.cpu_seconds()
    async with Redis.from_url(server.url) as client:
        for _ in range(20):
            await client.eval("for i = 1, 200000 do redis.call('INCR', 'spin') end", 0)
    assert server.cpu_seconds() - before > 0.1  # 4 M INCRs: well over a tenth of a second
    pid = server.pid
    assert pid is not None
    server.stop()
    assert server.pid is None
    with pytest.raises(ServerUnavailableError):
        server.cpu_seconds()
    with pytest.raises(FileNotFoundError):
        cpu_seconds(pid)
    # Several at once (the benchmark's reading): an ended process is left out.
    assert list(cpu_seconds_of([pid, os.getpid()])) == [os.getpid()]


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


async def test_ferretdb_finds_by_id_through_its_index(mongo_url: str, mongo_database: str) -> None:
    """`make setup` builds FerretDB with its `_id` lookups spelled as its `_id` index is (upstream
    1.24.2 scans the whole table for them): SQLite's own query plan says which."""
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(mongo_url)
    try:
        database = client[mongo_database]
        await database["indexed"].insert_many([{"_id": f"d{i}"} for i in range(3)])
        explained = await database.command("explain", {"find": "indexed", "filter": {"_id": "d2"}})
        plan = " ".join(explained["queryPlanner"]["Plan"])
        assert "USING INDEX" in plan, plan
        assert "SCAN" not in plan, plan
        assert await database["indexed"].find_one({"_id": "d2"}) == {"_id": "d2"}
    finally:
        await client.close()


async def test_what_ferretdb_committed_survives_its_crash(tmp_path: Path) -> None:
    """SQLite runs with synchronous=NORMAL (no fsync per commit): killing FerretDB loses nothing."""
    server = FerretDBServer(tmp_path)
    server.start()
    try:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(server.url)
        collection = client["crash"]["things"]
        await collection.insert_many([{"_id": f"t-{n}", "n": n} for n in range(200)])
        await collection.insert_one({"_id": "last", "n": -1})
        await client.close()
        assert server._process is not None
        server._process.send_signal(signal.SIGKILL)  # no shutdown, no checkpoint
        server._process.wait(timeout=10)
        server.start()
        client = AsyncMongoClient(server.url)
        collection = client["crash"]["things"]
        assert await collection.count_documents({}) == 201
        assert await collection.find_one({"_id": "last"}) == {"_id": "last", "n": -1}
        await client.close()
    finally:
        server.stop()


def test_free_ports_lie_below_the_ephemeral_range_and_do_not_repeat() -> None:
    low = ephemeral_floor()
    ports = [free_port() for _ in range(50)]
    assert all(port < low for port in ports)
    assert len(set(ports)) == len(ports)
    # Free to listen on.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", ports[-1]))
