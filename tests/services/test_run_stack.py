"""What ``make run`` prints once the stack is ready: each service's docs URLs included."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from dronetesting.samples import SAMPLE_REQUEST
from dronetesting.servers import project_root
from dronetesting.stack import SERVICE_PORTS, StackConfig


def run_stack_script() -> ModuleType:
    path = project_root() / "scripts" / "run_stack.py"
    spec = importlib.util.spec_from_file_location("run_stack", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_ready_message_lists_every_services_docs_on_its_port(tmp_path: Path) -> None:
    ports = {service: 9100 + n for n, service in enumerate(SERVICE_PORTS)}
    text = run_stack_script().how_to(StackConfig(data_dir=tmp_path, ports=ports))
    assert isinstance(text, str)
    for service, port in ports.items():
        line = next(line for line in text.splitlines() if line.split()[:1] == [service])
        assert line.split()[1:] == [
            f"http://127.0.0.1:{port}/docs",
            f"http://127.0.0.1:{port}/redoc",
        ]
    assert f"http://127.0.0.1:{ports['ingestion']}/api/deliveryrequests" in text
    # Tokens are on: the sample request carries one from `make token`.
    assert "TOKEN=$(make -s token)" in text
    assert "Authorization: Bearer $TOKEN" in text
    assert "tokens are OFF" not in text
    off = run_stack_script().how_to(StackConfig(data_dir=tmp_path, ports=ports, auth=False))
    assert "tokens are OFF" in off
    assert "Mailpit's inbox" in text
    assert "http://127.0.0.1:8025 " in text
    assert f"http://127.0.0.1:{ports['notifier']}/api/notifications?deliveryId=" in text
    # The notifier's list is internal: a service token holding Notifications.Read reads it.
    assert "make -s token SERVICE=ops AUD=notifier ROLE=Notifications.Read" in text


def test_the_ready_message_sends_the_contracts_sample_request(tmp_path: Path) -> None:
    text = run_stack_script().how_to(StackConfig(data_dir=tmp_path))
    assert isinstance(text, str)
    body = json.loads(text.split("-d '", 1)[1].split("'", 1)[0])
    # The contract's sample, asking to be told by e-mail (Mailpit catches it).
    assert body.pop("notify") == {"emailAddress": "you@example.com"}
    assert body == SAMPLE_REQUEST
