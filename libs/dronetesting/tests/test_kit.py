"""The kit's own checks fail when they should: problem answers, readiness waits, the sample, the
contract cases."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI

from dronecommon import create_service_app
from dronecommon.problems import DomainError
from dronecommon.settings import AuthSettings, ServiceSettings
from dronetesting.apps import app_client, wait_ready
from dronetesting.contract import GenerationMode, document_cases
from dronetesting.problems import assert_problem, field_errors
from dronetesting.samples import SAMPLE_REQUEST, sample_request


class RefusedError(DomainError):
    status = 409
    problem = "refused"


def example_app() -> FastAPI:
    router = APIRouter()

    @router.get("/refused")
    async def refused() -> None:
        raise RefusedError("not now")

    @router.get("/items/{item}")
    async def item(item: int) -> dict[str, int]:
        return {"item": item}

    return create_service_app(
        ServiceSettings(log_json=False, auth=AuthSettings(enabled=False)),
        title="kit",
        routers=[router],
        configure_logs=False,
    )


async def test_assert_problem_accepts_a_problem_and_names_its_type() -> None:
    async with app_client(example_app()) as client:
        refused = await client.get("/refused")
        body = assert_problem(refused, 409, type="refused")
        assert body["detail"] == "not now"
        assert_problem(refused, 409, type="urn:dronedelivery:problem:refused")
        with pytest.raises(AssertionError):
            assert_problem(refused, 404)
        with pytest.raises(AssertionError):
            assert_problem(refused, 409, type="validation-error")
        invalid = await client.get("/items/x")
        assert field_errors(invalid) == {"item"}
        assert_problem(invalid, 400, fields={"item"})
        with pytest.raises(AssertionError):
            assert_problem(invalid, 400, fields={"other"})
        with pytest.raises(AssertionError):  # a plain JSON answer is no problem
            assert_problem(await client.get("/items/1"), 200)


async def test_wait_ready_returns_the_answer_or_fails_naming_the_last_one() -> None:
    async with app_client(example_app()) as client:
        assert (await wait_ready(client)).json()["status"] == "ready"
        with pytest.raises(AssertionError, match=r"did not answer 503 in 0\.2s: 200"):
            await wait_ready(client, status=503, within=0.2)
    with pytest.raises(AssertionError, match="ConnectError"):
        await wait_ready("http://127.0.0.1:1", within=0.2)


async def test_app_client_fails_naming_a_shutdown_that_hangs() -> None:
    """The lifespan's shutdown is bounded: a hang fails as an assertion, with where it hung."""
    hang = asyncio.Event()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await hang.wait()  # never set: a shutdown that waits forever

    app = FastAPI(lifespan=lifespan)
    with pytest.raises(AssertionError, match=r"did not shut down within 0\.2s") as failure:
        async with app_client(app, shutdown_within=0.2) as client:
            assert (await client.get("/missing")).status_code == 404
    assert isinstance(failure.value.__cause__, TimeoutError)
    # An app that shuts down is unaffected, and an error in the test still shuts it down.
    with pytest.raises(RuntimeError, match="in the test"):
        async with app_client(example_app(), shutdown_within=0.2):
            raise RuntimeError("in the test")


def test_sample_request_copies_do_not_share_the_sample() -> None:
    changed = sample_request(ownerId="someone")
    changed["packageInfo"]["weight"] = 99
    assert SAMPLE_REQUEST["ownerId"] == "myowner"
    assert SAMPLE_REQUEST["packageInfo"]["weight"] == 10


def test_contract_cases_skip_negative_runs_of_operations_without_input(tmp_path: Path) -> None:
    document = tmp_path / "openapi.json"
    document.write_text(
        json.dumps(
            {
                "paths": {
                    "/healthz": {"get": {}},
                    "/items/{id}": {"get": {"parameters": [{"name": "id", "in": "path"}]}},
                }
            }
        )
    )
    cases = [(case.values, case.id) for case in document_cases(document)]
    assert cases == [
        (("GET", "/healthz", GenerationMode.POSITIVE), "GET /healthz positive"),
        (("GET", "/items/{id}", GenerationMode.POSITIVE), "GET /items/{id} positive"),
        (("GET", "/items/{id}", GenerationMode.NEGATIVE), "GET /items/{id} negative"),
    ]
