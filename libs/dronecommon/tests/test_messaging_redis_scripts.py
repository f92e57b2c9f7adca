"""The Redis Streams transport's Lua scripts: package data that compiles on a real redis-server
and ships in the library's wheel (the wheel the service images install)."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from dataclasses import fields
from importlib.resources import files
from pathlib import Path

from redis.asyncio import Redis

from dronecommon.messaging.redis_streams.scripts import ReceiverScripts, source
from dronetesting.servers import project_root

PACKAGE = "dronecommon.messaging.redis_streams"


def lua_files() -> set[str]:
    return {
        entry.name for entry in (files(PACKAGE) / "lua").iterdir() if entry.name.endswith(".lua")
    }


def test_every_lua_file_is_a_script_the_transport_runs() -> None:
    used = {field.name for field in fields(ReceiverScripts)} | {"replay", "owned"}
    assert lua_files() == {f"{name}.lua" for name in used}


def test_scripts_that_settle_or_renew_check_the_lock_first() -> None:
    owned = source("owned")
    for name in ("complete", "requeue", "dead_letter", "renew"):
        assert source(name).startswith(owned)
        assert "owned(KEYS[1]" in source(name)
    for name in ("reclaim", "prune", "leave", "replay"):
        assert "local function owned" not in source(name)


async def test_every_script_compiles_on_redis(redis_url: str) -> None:
    client = Redis.from_url(redis_url)
    try:
        for name in sorted(lua_files()):
            digest = await client.script_load(source(name.removesuffix(".lua")))
            assert len(digest) == 40
    finally:
        await client.aclose()


def test_the_wheel_ships_the_lua_scripts(tmp_path: Path) -> None:
    uv = os.environ.get("UV") or shutil.which("uv")
    assert uv, "uv is needed to build the wheel (make setup installs it)"
    subprocess.run(
        [
            uv,
            "build",
            "--offline",
            "--quiet",
            "--package",
            "dronecommon",
            "--wheel",
            "-o",
            tmp_path,
        ],
        cwd=project_root(),
        check=True,
        timeout=50,
    )
    [wheel] = tmp_path.glob("dronecommon-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    lua_dir = PACKAGE.replace(".", "/") + "/lua/"
    assert {name.removeprefix(lua_dir) for name in names if name.startswith(lua_dir)} >= lua_files()
