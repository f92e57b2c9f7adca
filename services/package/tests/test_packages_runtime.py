"""The service as it runs: tokens and accounts, readiness, store outages, the committed OpenAPI,
``python -m``."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from dronecommon.settings import AuthSettings, MongoSettings
from dronetesting.apps import app_client, start_service_process, wait_ready
from dronetesting.openapi import assert_openapi_current
from dronetesting.problems import assert_problem
from dronetesting.servers import FerretDBServer, free_port
from dronetesting.tokens import LocalIssuer
from package.main import create_app
from package.settings import PackageSettings

SERVICE_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = {"size": "Small", "weight": 10, "tag": "mytag"}


def settings_for(url: str, database: str = "packages_test", **overrides: Any) -> PackageSettings:
    mongo = MongoSettings(url=url, database=database, server_selection_timeout=0.5)
    values: dict[str, Any] = {"auth": AuthSettings(enabled=False), **overrides}
    return PackageSettings(mongo=mongo, log_json=False, query_timeout=0.5, **values)


# --- auth ---------------------------------------------------------------------------------------


async def test_auth_on_requires_a_valid_token_with_the_role(
    mongo_url: str, mongo_database: str, dev_issuer: LocalIssuer
) -> None:
    settings = settings_for(mongo_url, mongo_database, auth=dev_issuer.settings)
    async with app_client(create_app(settings, configure_logs=False)) as client:
        anonymous = await client.put("/api/packages/p1", json=PACKAGE)
        body = assert_problem(anonymous, 401)
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert body["title"] == "Unauthorized"
        assert_problem(await client.get("/api/packages/p1"), 401)
        assert_problem(await client.get("/api/packages/summary/o?year=2024&month=1"), 401)
        forged = await client.get("/api/packages/p1", headers={"Authorization": "Bearer x.y.z"})
        assert_problem(forged, 401)
        # A customer, or a service without Packages.Write, is 403.
        for refused in (dev_issuer.customer(), dev_issuer.service("Drones.Fly")):
            assert_problem(await client.put("/api/packages/p1", json=PACKAGE, headers=refused), 403)

        headers = dev_issuer.service("Packages.Write", caller="workflow")
        created = await client.put("/api/packages/p1", json=PACKAGE, headers=headers)
        assert created.status_code == 201
        read = await client.get("/api/packages/p1", headers=headers)
        assert read.status_code == 200
        assert read.json()["id"] == "p1"
        # Health stays public.
        assert (await client.get("/healthz")).status_code == 200
        assert (await wait_ready(client)).status_code == 200


async def test_one_account_never_reads_or_changes_another_s_package(
    mongo_url: str, mongo_database: str, dev_issuer: LocalIssuer
) -> None:
    settings = settings_for(mongo_url, mongo_database, auth=dev_issuer.settings)
    workflow = dev_issuer.service("Packages.Write", caller="workflow")
    contoso = workflow | {"Dronedelivery-Account-Id": "contoso"}
    fabrikam = workflow | {"Dronedelivery-Account-Id": "fabrikam"}
    async with app_client(create_app(settings, configure_logs=False)) as client:
        await wait_ready(client)
        mine = {**PACKAGE, "tag": "contoso's", "ownerId": "alice"}
        assert (await client.put("/api/packages/p1", json=mine, headers=contoso)).status_code == 201
        # The same id in another account is another package: created, not an update.
        theirs = {**PACKAGE, "weight": 99, "tag": "fabrikam's", "ownerId": "alice"}
        put = await client.put("/api/packages/p1", json=theirs, headers=fabrikam)
        assert put.status_code == 201
        patch = await client.patch("/api/packages/p2", json={"weight": 1}, headers=fabrikam)
        assert_problem(patch, 404)
        await client.put("/api/packages/p2", json=mine, headers=contoso)
        assert_problem(
            await client.patch("/api/packages/p2", json={"weight": 1}, headers=fabrikam), 404
        )
        assert_problem(await client.get("/api/packages/p2", headers=fabrikam), 404)
        read = await client.get("/api/packages/p1", headers=contoso)
        assert read.json()["tag"] == "contoso's"
        assert read.json()["weight"] == PACKAGE["weight"]
        now = time.gmtime()
        params = {"year": now.tm_year, "month": now.tm_mon}
        summary = await client.get("/api/packages/summary/alice", params=params, headers=fabrikam)
        assert summary.json() == {"totalWeight": 99}


# --- readiness and outages ----------------------------------------------------------------------


async def test_readiness_and_routes_when_the_store_is_unreachable() -> None:
    closed = f"mongodb://127.0.0.1:{free_port()}/"
    async with app_client(create_app(settings_for(closed), configure_logs=False)) as client:
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        body = assert_problem(ready, 503)
        assert ready.headers["retry-after"]
        assert body["checks"]["mongo"]["status"] == "fail"
        assert body["checks"]["mongo"]["error"]
        assert body["checks"]["indexes"]["status"] == "fail"
        assert "mongo" in body["detail"]

        started = time.monotonic()
        responses = [
            await client.put("/api/packages/p1", json=PACKAGE),
            await client.put("/api/packages", json=PACKAGE),
            await client.get("/api/packages/p1"),
            await client.patch("/api/packages/p1", json={"tag": "x"}),
            await client.get("/api/packages/summary/o1?year=2024&month=5"),
        ]
        for response in responses:
            problem = assert_problem(response, 503)
            assert problem["type"] == "urn:dronedelivery:problem:dependency-unavailable"
            assert response.headers["retry-after"] == "1"
        assert time.monotonic() - started < 5  # each bounded by the query timeout (0.5 s)
        # Validation still comes first: a bad request is the caller's problem even now.
        assert (await client.put("/api/packages/p1", json={})).status_code == 400


async def test_the_service_follows_the_store_down_and_back(tmp_path: Path) -> None:
    server = FerretDBServer(tmp_path / "ferretdb")
    server.start()
    try:
        async with app_client(create_app(settings_for(server.url), configure_logs=False)) as client:
            ready = await wait_ready(client)
            assert ready.status_code == 200, ready.text
            checks = ready.json()["checks"]
            assert checks["mongo"]["status"] == checks["indexes"]["status"] == "ok"
            assert (await client.put("/api/packages/p1", json=PACKAGE)).status_code == 201

            server.stop()
            assert_problem(await client.get("/readyz"), 503)
            assert_problem(await client.get("/api/packages/p1"), 503)

            server.start()
            assert (await wait_ready(client)).status_code == 200
            read = await client.get("/api/packages/p1")
            assert read.status_code == 200
            assert read.json()["tag"] == "mytag"
    finally:
        server.stop()


async def test_indexes_are_created_once_the_store_comes_up(tmp_path: Path) -> None:
    server = FerretDBServer(tmp_path / "ferretdb")  # not started yet
    try:
        async with app_client(create_app(settings_for(server.url), configure_logs=False)) as client:
            down = await client.get("/readyz")
            assert "indexes not created yet" in assert_problem(down, 503)["detail"]
            await asyncio.to_thread(server.start)
            ready = await wait_ready(client, within=20)
            assert ready.status_code == 200, ready.text
    finally:
        server.stop()


# --- the committed OpenAPI document -------------------------------------------------------------


def test_committed_openapi_is_current() -> None:
    app = create_app(PackageSettings(auth=AuthSettings(enabled=False)), configure_logs=False)
    assert_openapi_current(app, SERVICE_ROOT / "openapi.json")


def test_openapi_documents_the_real_statuses() -> None:
    document = json.loads((SERVICE_ROOT / "openapi.json").read_text())
    paths = document["paths"]

    def statuses(path: str, method: str) -> set[str]:
        return set(paths[path][method]["responses"])

    assert statuses("/api/packages/{id}", "put") >= {"201", "204", "400", "503"}
    assert statuses("/api/packages", "put") >= {"201", "400", "503"}
    assert statuses("/api/packages/{id}", "get") >= {"200", "400", "404", "503"}
    assert statuses("/api/packages/{id}", "patch") >= {"204", "400", "404", "503"}
    assert statuses("/api/packages/summary/{ownerId}", "get") >= {"200", "400", "503"}
    for path in paths.values():
        for operation in path.values():
            assert "422" not in operation["responses"]
    assert "404" not in statuses("/api/packages/{id}", "put")
    assert "404" not in statuses("/api/packages/summary/{ownerId}", "get")


# --- python -m package --------------------------------------------------------------------------


@pytest.mark.slow
async def test_python_m_package_serves_and_stops_on_sigterm(
    mongo_url: str, mongo_database: str, tmp_path: Path
) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PACKAGE_HOST": "127.0.0.1",
        "PACKAGE_PORT": str(port),
        "PACKAGE_MONGO__URL": mongo_url,
        "PACKAGE_MONGO__DATABASE": mongo_database,
        "PACKAGE_AUTH__ENABLED": "false",
    }
    log = tmp_path / "package.log"
    process = await start_service_process("package", env, log, port=port, ready_within=20)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            created = await client.put("/api/packages/mypackage", json=PACKAGE)
            assert created.status_code == 201
            assert created.headers["location"] == "/api/packages/mypackage"
            assert "server" not in created.headers
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(process.wait(), timeout=10)
        assert code == 0, log.read_text()
        assert time.monotonic() - stopping < 5
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "dronecommon.access"]
    assert any(line.get("http_status") == 201 for line in access), lines
    assert all(line["service"] == "package" for line in lines)
