"""``dronecommon.server.serve``: a served process tunes its garbage collector once started."""

from __future__ import annotations

import gc
import os
import sys
import textwrap
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter
from pydantic import ValidationError

from dronecommon import create_service_app
from dronecommon.server import GC_THRESHOLDS
from dronecommon.settings import ServiceSettings
from dronetesting.apps import app_client, start_service_process
from dronetesting.servers import free_port

PROBE = """
import gc
from typing import ClassVar

from fastapi import APIRouter, Request
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

    @router.get("/whoami")
    async def whoami(request: Request) -> dict[str, object]:
        return {"client": request.client.host if request.client else None,
                "scheme": request.url.scheme}

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


async def _whoami(tmp_path: Path, **env_overrides: str) -> dict[str, object]:
    """What a served app sees of a request from 127.0.0.1 claiming to be forwarded."""
    (tmp_path / "gcprobe.py").write_text(textwrap.dedent(PROBE))
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
        "PROBE_PORT": str(port),
        **env_overrides,
    }
    process = await start_service_process("gcprobe", env, tmp_path / "probe.log", port=port)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            headers = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
            seen: dict[str, object] = (await client.get("/whoami", headers=headers)).json()
    finally:
        process.terminate()
        assert await process.wait() == 0
    return seen


async def test_forwarded_headers_are_trusted_only_from_the_configured_proxies(
    tmp_path: Path,
) -> None:
    # The default trusts loopback only (a local proxy); elsewhere the gateway's addresses.
    assert await _whoami(tmp_path) == {"client": "203.0.113.7", "scheme": "https"}
    untrusted = await _whoami(tmp_path, PROBE_FORWARDED_ALLOW_IPS="10.20.8.0/24")
    assert untrusted == {"client": "127.0.0.1", "scheme": "http"}
    trusted = await _whoami(tmp_path, PROBE_FORWARDED_ALLOW_IPS="10.20.8.0/24,127.0.0.0/8")
    assert trusted == {"client": "203.0.113.7", "scheme": "https"}


def test_forwarded_allow_ips_must_be_addresses_or_networks() -> None:
    class Settings(ServiceSettings):
        pass

    assert Settings().forwarded_allow_ips == "127.0.0.1,::1"
    assert Settings(forwarded_allow_ips=" 10.0.0.0/8 , fd00::/8 ").forwarded_allow_ips == (
        "10.0.0.0/8,fd00::/8"
    )
    with pytest.raises(ValidationError, match="gateway"):
        Settings(forwarded_allow_ips="10.0.0.0/8,gateway")
