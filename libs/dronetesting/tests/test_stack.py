"""The native stack: which setting wins in each service's environment; ports checked first."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from dronetesting.servers import free_port
from dronetesting.stack import SERVICE_PORTS, PortInUseError, Stack, StackConfig


def test_the_workflow_runs_fewer_handlers_on_the_shared_cores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WORKFLOW_QUEUE__MAX_CONCURRENCY", raising=False)
    stack = Stack(StackConfig(tmp_path))
    assert stack.service_env("workflow")["WORKFLOW_QUEUE__MAX_CONCURRENCY"] == "32"
    # Only the workflow reads it; the other services get it unused, as they get os.environ.
    assert stack.service_env("ingestion")["INGESTION_PORT"] == "8001"


def test_the_callers_environment_and_extra_env_override_the_stack_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WORKFLOW_QUEUE__MAX_CONCURRENCY", "48")
    monkeypatch.setenv("WORKFLOW_PORT", "1")  # the stack's wiring wins over the environment
    stack = Stack(StackConfig(tmp_path, extra_env={"WORKFLOW_LOG_LEVEL": "DEBUG"}))
    env = stack.service_env("workflow", replica=1)
    assert env["WORKFLOW_QUEUE__MAX_CONCURRENCY"] == "48"
    assert env["WORKFLOW_PORT"] == str(StackConfig(tmp_path).port_of("workflow", 1))
    assert env["WORKFLOW_LOG_LEVEL"] == "DEBUG"
    assert env["WORKFLOW_PACKAGE_URL"] == "http://127.0.0.1:8003"
    extra = Stack(StackConfig(tmp_path, extra_env={"WORKFLOW_QUEUE__MAX_CONCURRENCY": "4"}))
    assert extra.service_env("workflow")["WORKFLOW_QUEUE__MAX_CONCURRENCY"] == "4"


def test_the_simulator_is_started_with_the_services_it_calls(tmp_path: Path) -> None:
    config = StackConfig(tmp_path)
    assert config.ports["simulator"] == 8006
    env = Stack(config).service_env("simulator")
    assert env["SIMULATOR_PORT"] == "8006"
    assert env["SIMULATOR_DELIVERY_URL"] == "http://127.0.0.1:8002"
    assert env["SIMULATOR_DRONESCHEDULER_URL"] == "http://127.0.0.1:8004"
    assert env["SIMULATOR_REDIS__URL"] == "redis://127.0.0.1:6379/0"
    order = config.services
    assert order.index("simulator") > order.index("delivery")
    assert order.index("simulator") > order.index("dronescheduler")


def test_a_port_in_use_stops_the_start_before_anything_runs(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        config = StackConfig(
            tmp_path / "data",
            redis_port=free_port(),
            mongo_port=free_port(),
            mailpit_smtp_port=free_port(),
            mailpit_http_port=free_port(),
            ports={**{s: free_port() for s in SERVICE_PORTS}, "delivery": taken},
        )
        stack = Stack(config)
        assert stack.ports()["delivery"] == taken
        with pytest.raises(PortInUseError) as raised:
            stack.start()
    assert raised.value.taken == {"delivery": taken}
    assert f"{taken} (delivery)" in str(raised.value)
    assert f"sport = :{taken}" in str(raised.value)
    assert stack.processes == {}
    assert not stack.redis.running
    assert not (tmp_path / "data").exists()


def test_every_process_has_its_port(tmp_path: Path) -> None:
    stack = Stack(StackConfig(tmp_path, workflow_replicas=2))
    assert stack.ports() == {
        "redis": 6379,
        "ferretdb": 27017,
        "mailpit": 1025,
        "mailpit-ui": 8025,
        "package": 8003,
        "dronescheduler": 8004,
        "delivery": 8002,
        "workflow": 8005,
        "workflow-1": 8105,
        "simulator": 8006,
        "notifier": 8007,
        "ingestion": 8001,
        "webapp": 8000,
    }


def test_every_service_checks_tokens_from_the_development_issuer(tmp_path: Path) -> None:
    config = StackConfig(tmp_path)
    stack = Stack(config)
    issuer_dir = tmp_path / "dev-issuer"
    for service in SERVICE_PORTS:
        env = stack.service_env(service)
        prefix = service.upper() + "_AUTH__"
        assert env[prefix + "ENABLED"] == "true"
        assert env[prefix + "ISSUER"] == "http://localhost/dev-issuer"
        assert env[prefix + "JWKS_FILE"] == str(issuer_dir / "jwks.json")
        assert env[prefix + "PUBLIC_AUDIENCE"] == "dronedelivery-api"
    # One audience per internal API; ingestion serves customers only.
    assert stack.service_env("delivery")["DELIVERY_AUTH__AUDIENCE"] == "delivery-internal"
    assert stack.service_env("package")["PACKAGE_AUTH__AUDIENCE"] == "package"
    assert "INGESTION_AUTH__AUDIENCE" not in stack.service_env("ingestion")
    # The callers mint a token per called service with the development key.
    workflow = stack.service_env("workflow")
    assert workflow["WORKFLOW_AUTH__DEV_SIGNING_KEY_FILE"] == str(issuer_dir / "signing-key.pem")
    assert (
        workflow["WORKFLOW_AUTH__OUTBOUND_SCOPES__DELIVERY"] == "api://delivery-internal/.default"
    )
    assert workflow["WORKFLOW_AUTH__OUTBOUND_SCOPES__PACKAGE"] == "api://package/.default"
    simulator = stack.service_env("simulator")
    assert simulator["SIMULATOR_AUTH__OUTBOUND_SCOPES__DRONESCHEDULER"] == (
        "api://dronescheduler/.default"
    )
    assert "INGESTION_AUTH__DEV_SIGNING_KEY_FILE" not in stack.service_env("ingestion")
    notifier = stack.service_env("notifier")
    assert notifier["NOTIFIER_AUTH__AUDIENCE"] == "notifier"
    assert notifier["NOTIFIER_AUTH__OUTBOUND_SCOPES__DELIVERY"] == (
        "api://delivery-internal/.default"
    )
    # The key is made once, in the data folder, and kept.
    first = config.dev_issuer().kid
    assert (issuer_dir / "signing-key.pem").stat().st_mode & 0o077 == 0
    assert config.dev_issuer().kid == first


def test_tokens_can_be_switched_off_for_the_whole_stack(tmp_path: Path) -> None:
    stack = Stack(StackConfig(tmp_path, auth=False))
    for service in SERVICE_PORTS:
        env = stack.service_env(service)
        assert env[service.upper() + "_AUTH__ENABLED"] == "false"
        assert service.upper() + "_AUTH__ISSUER" not in env


def test_the_notifier_sends_to_the_stacks_mailpit(tmp_path: Path) -> None:
    config = StackConfig(tmp_path, mailpit_smtp_port=2025, mailpit_http_port=9025)
    stack = Stack(config)
    env = stack.service_env("notifier")
    assert env["NOTIFIER_PORT"] == "8007"
    assert env["NOTIFIER_EMAIL__SMTP__PORT"] == "2025"
    assert env["NOTIFIER_DELIVERY_URL"] == "http://127.0.0.1:8002"
    assert env["NOTIFIER_SMS__SINK_FILE"] == str(tmp_path / "sms.jsonl")
    assert config.inbox_url == "http://127.0.0.1:9025"
    assert stack.mails
    assert config.services.index("notifier") > config.services.index("delivery")
    without = Stack(StackConfig(tmp_path, services=("delivery",)))
    assert not without.mails
    assert "mailpit" not in without.ports()


def test_the_web_app_signs_in_with_the_issuer_and_calls_with_its_own_tokens(
    tmp_path: Path,
) -> None:
    for auth in (True, False):
        stack = Stack(StackConfig(tmp_path, auth=auth))
        env = stack.service_env("webapp")
        assert env["WEBAPP_PORT"] == "8000"
        assert env["WEBAPP_SIGNIN__MODE"] == "development"
        # Sign-in mints customers' tokens with the issuer's key, tokens on or off.
        key = str(tmp_path / "dev-issuer" / "signing-key.pem")
        assert env["WEBAPP_AUTH__DEV_SIGNING_KEY_FILE"] == key
        for service in ("ingestion", "delivery", "workflow", "simulator", "notifier"):
            assert env[f"WEBAPP_{service.upper()}_URL"] == stack.config.url(service)
        scopes = {name: value for name, value in env.items() if "_AUTH__OUTBOUND_SCOPES__" in name}
        expected = {
            "WEBAPP_AUTH__OUTBOUND_SCOPES__SIMULATOR": "api://simulator/.default",
            "WEBAPP_AUTH__OUTBOUND_SCOPES__NOTIFIER": "api://notifier/.default",
        }
        assert {k: v for k, v in scopes.items() if k.startswith("WEBAPP_")} == (
            expected if auth else {}
        )
        # The notifier's e-mails link to this stack's tracking pages.
        assert stack.service_env("notifier")["NOTIFIER_PUBLIC_BASE_URL"] == "http://127.0.0.1:8000"
