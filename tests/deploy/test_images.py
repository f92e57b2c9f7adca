"""What a service image installs: the Dockerfile's build stage replayed without Docker.

Each ``docker/<service>.Dockerfile`` is read as written: its build stage's ``COPY`` lines copy the
same files (less what ``.dockerignore`` drops) into a scratch folder, and its ``uv sync`` steps
run there into a scratch environment. The environment must hold the service and the shared
library (not editable) and none of the test tools or the test kit, which only the workspace's
development group installs. (``scripts/images.sh`` builds the real images; this runs everywhere.)
"""

from __future__ import annotations

import fnmatch
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dronetesting.servers import find_binary

from .conftest import SERVICES

ROOT = Path(__file__).resolve().parents[2]
# Distributions no image may contain.
TEST_ONLY = {"dronetesting", "pytest", "pytest-asyncio", "pytest-timeout", "schemathesis"}
TEST_ONLY |= {"hypothesis", "mypy", "ruff", "locust"}
# Services call out with aiohttp (dronecommon.httpclient); httpx is the tests' client only.
TEST_ONLY |= {"httpx"}


def ignored(relative: Path, patterns: list[str]) -> bool:
    """Whether ``.dockerignore`` keeps ``relative`` out of the build context."""
    text = relative.as_posix()
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch.fnmatch(part, pattern[3:]) for part in relative.parts):
                return True
        elif fnmatch.fnmatch(text, pattern) or fnmatch.fnmatch(relative.parts[0], pattern):
            return True
    return False


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def build_stage(dockerfile: Path) -> list[tuple[str, str]]:
    """(instruction, arguments) of the first stage, continuation lines joined."""
    steps: list[tuple[str, str]] = []
    froms = 0
    for line in dockerfile.read_text().replace("\\\n", " ").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, arguments = line.partition(" ")
        if instruction.upper() == "FROM":
            froms += 1
            if froms > 1:
                break
            continue
        steps.append((instruction.upper(), arguments.strip()))
    return steps


def copy_into(context: Path, sources: list[str], destination: str, patterns: list[str]) -> None:
    target = context / destination
    for source in sources:
        path = ROOT / source
        if path.is_dir():
            for file in path.rglob("*"):
                relative = file.relative_to(ROOT)
                if file.is_file() and not ignored(relative, patterns):
                    out = target / file.relative_to(path)
                    out.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, out)
        else:
            assert not ignored(Path(source), patterns), source
            out = target / path.name if destination.endswith("/") else target
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, out)


def installed(environment: Path) -> dict[str, dict[str, object]]:
    """Distribution name -> its ``direct_url.json`` (empty when installed from the index)."""
    found: dict[str, dict[str, object]] = {}
    for info in environment.glob("lib/python*/site-packages/*.dist-info"):
        name = info.name.removesuffix(".dist-info").rsplit("-", 1)[0]
        direct = info / "direct_url.json"
        found[name.lower().replace("_", "-")] = (
            json.loads(direct.read_text()) if direct.exists() else {}
        )
    return found


def replay(service: str, scratch: Path) -> Path:
    """Run the Dockerfile's build stage for ``service``; the environment it filled."""
    dockerfile = ROOT / "docker" / f"{service}.Dockerfile"
    context = scratch / "src"
    environment = scratch / "venv"
    context.mkdir()
    patterns = dockerignore()
    uv = find_binary("uv", "UV_BIN")
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(environment),
        "UV_PYTHON": sys.executable,
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_NO_PROGRESS": "1",
    }
    env.pop("VIRTUAL_ENV", None)
    synced = 0
    for instruction, arguments in build_stage(dockerfile):
        if instruction == "COPY":
            *sources, destination = shlex.split(arguments)
            copy_into(context, sources, destination.removeprefix("./"), patterns)
        elif instruction == "RUN" and arguments.startswith("/opt/uv/bin/uv sync "):
            command = [uv, *shlex.split(arguments)[1:]]
            result = subprocess.run(
                command, cwd=context, env=env, capture_output=True, text=True, timeout=300
            )
            assert result.returncode == 0, f"{arguments}\n{result.stderr}"
            synced += 1
    assert synced == 2, f"{dockerfile.name}: expected the two-phase uv sync, found {synced}"
    return environment


@pytest.mark.slow
@pytest.mark.parametrize("service", SERVICES)
def test_the_image_installs_the_service_and_no_test_tools(service: str, tmp_path: Path) -> None:
    distributions = installed(replay(service, tmp_path))
    assert not TEST_ONLY & distributions.keys(), sorted(TEST_ONLY & distributions.keys())
    for own in (service, "dronecommon"):
        assert own in distributions, sorted(distributions)
        dir_info = distributions[own].get("dir_info")
        assert isinstance(dir_info, dict), (own, distributions[own])  # from the copied source
        assert not dir_info.get("editable"), (own, distributions[own])
    assert {"fastapi", "uvicorn", "pydantic"} <= distributions.keys()


def test_the_ignore_rules_keep_tests_out_of_the_context() -> None:
    patterns = dockerignore()
    assert ignored(Path("services/package/tests/conftest.py"), patterns)
    assert ignored(Path("libs/dronecommon/benchmarks/bench_http_client.py"), patterns)
    assert not ignored(Path("services/package/src/package/main.py"), patterns)
