"""``dronecommon.server.serve``: a served process tunes its garbage collector once started."""

from __future__ import annotations

import gc
import os
import sys
import textwrap
from pathlib import Path

import httpx
from fastapi import APIRouter

from dronecommon import create_service_app
from dronecommon.server import GC_THRESHOLDS
from dronecommon.settings import ServiceSettings
from dronetesting.apps import app_client, start_service_process
from dronetesting.servers import free_port

PROBE = """
import gc
from typing import ClassVar

from fastapi import APIRouter
from pydantic_settings import SettingsConfigDict

from dronecommon import create_service_app
from dronecommon.server import serve
from dronecommon.settings import ServiceSettings


class ProbeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PROBE_")
    service_name: ClassVar[str] = "probe"


def create_app():
    router = APIRouter()

    @router.get("/gc")
    async def state() -> dict[str, object]:
        return {"frozen": gc.get_freeze_count(), "thresholds": list(gc.get_threshold())}

    return create_service_app(ProbeSettings(), title="probe", public_routers=[router])


if __name__ == "__main__":
    serve("gcprobe:create_app", ProbeSettings())
"""


async def test_a_served_app_freezes_its_start_up_heap_and_collects_less_often(
    tmp_path: Path,
) -> None:
    (tmp_path / "gcprobe.py").write_text(textwrap.dedent(PROBE))
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
        "PROBE_PORT": str(port),
    }
    process = await start_service_process("gcprobe", env, tmp_path / "probe.log", port=port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            state = (await client.get("/gc")).json()
    finally:
        process.terminate()
        assert await process.wait() == 0
    assert state["thresholds"] == list(GC_THRESHOLDS)
    assert state["frozen"] > 10_000  # modules, the app, its clients: out of the collector's way


async def test_an_app_run_in_process_leaves_the_collector_alone() -> None:
    class Settings(ServiceSettings):
        pass

    before = gc.get_freeze_count(), gc.get_threshold()
    app = create_service_app(Settings(), title="t", public_routers=[APIRouter()])
    async with app_client(app) as client:
        assert (await client.get("/healthz")).status_code == 200
    assert (gc.get_freeze_count(), gc.get_threshold()) == before
