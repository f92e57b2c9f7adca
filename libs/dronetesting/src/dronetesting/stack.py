"""The native stack: Redis, FerretDB, Mailpit and the services as local processes (``make run``).

Everything listens on 127.0.0.1 with data under one folder (default ``.data/``). The runner waits
until every ``/readyz`` answers 200, prints how to call the API, streams each process's output
with its name in front, and stops everything on Ctrl-C (SIGINT/SIGTERM), services first.

Bearer tokens are on (``StackConfig.auth``): the development issuer's key is created once in
``<data>/dev-issuer`` (:mod:`dronecommon.auth.devissuer`) and every service is configured to
trust it, each with its own audience; the services that call others (the workflow, the
simulator, the notifier) mint their outbound tokens with it, holding the app roles their
identities hold in Azure. ``auth=False`` switches tokens off in every service
(``make run AUTH=off``).

The same runner serves tests and benchmarks (:class:`Stack` as a context manager). It is a
development tool, so it lives in the test kit beside the server runners it starts: a deployed
service runs alone in its container (``python -m <service>``) and never needs it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from dronecommon.auth.devissuer import (
    DEFAULT_DEV_ISSUER,
    JWKS_FILE_NAME,
    KEY_FILE_NAME,
    PUBLIC_AUDIENCE,
    SERVICE_AUDIENCES,
    DevIssuer,
)
from dronetesting.servers import (
    FerretDBServer,
    MailpitServer,
    ManagedServer,
    RedisServer,
    ServerUnavailableError,
)

# The contract's native ports.
SERVICE_PORTS = {
    "ingestion": 8001,
    "delivery": 8002,
    "package": 8003,
    "dronescheduler": 8004,
    "workflow": 8005,
    "simulator": 8006,
    "notifier": 8007,
    "webapp": 8000,
}
# Backends first, then the consumers (the notifier, the workflow, the fleet simulator), then the
# public entry point.
START_ORDER = (
    "package",
    "dronescheduler",
    "delivery",
    "notifier",
    "workflow",
    "simulator",
    "ingestion",
    "webapp",
)


# Settings for this stack's shape: every process on the same few cores. The environment and
# StackConfig.extra_env override them.
# - The workflow's 64 handlers (its default, sized for backends on other machines) make bursts of
#   about 200 concurrent backend calls here, and the front door waits for a core behind them.
#   32 it is: with the fleet simulator and notifications in the stack, a backend call takes
#   longer once the cores are overloaded, and 16 handlers then capped what the workflow drains:
#   past the knee (75/s), make bench scheduled 68/s and 58/s at 1.5x and 2x (49/s in the second
#   half), where 32 scheduled 83/s and 78/s (1.22x and 1.14x its knee of 68/s, the knees within
#   the runs' noise); ingestion's p99 at the knee stayed 88-91 ms (2026-12-06).
NATIVE_DEFAULTS = {"WORKFLOW_QUEUE__MAX_CONCURRENCY": "32"}

# Who calls whom, by the name the caller gives each service it calls.
CALLS = {
    "workflow": ("package", "dronescheduler", "delivery"),
    "simulator": ("dronescheduler", "delivery"),
    "notifier": ("delivery",),
    # The web app's own token (its customers' calls carry the signed-in user's token).
    "webapp": ("simulator", "notifier"),
}


@dataclass
class StackConfig:
    data_dir: Path
    redis_port: int = 6379
    mongo_port: int = 27017
    # Mailpit (started with the notifier): SMTP, and its web inbox and API.
    mailpit_smtp_port: int = 1025
    mailpit_http_port: int = 8025
    ports: dict[str, int] = field(default_factory=lambda: dict(SERVICE_PORTS))
    services: tuple[str, ...] = START_ORDER
    workflow_replicas: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    # Ports of extra replicas ("workflow-1": 8105); by default the service's port + 100 * replica.
    replica_ports: dict[str, int] = field(default_factory=dict)
    log_level: str = "INFO"
    log_json: bool = False
    # Bearer tokens from the development issuer (its key in ``<data_dir>/dev-issuer``).
    auth: bool = True

    @property
    def issuer_dir(self) -> Path:
        return self.data_dir / "dev-issuer"

    def dev_issuer(self) -> DevIssuer:
        """The development issuer the services trust (created on first use)."""
        return DevIssuer.load_or_create(self.issuer_dir)

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def port_of(self, service: str, replica: int = 0) -> int:
        if not replica:
            return self.ports[service]
        return self.replica_ports.get(f"{service}-{replica}", self.ports[service] + 100 * replica)

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    @property
    def mongo_url(self) -> str:
        return f"mongodb://127.0.0.1:{self.mongo_port}/"

    @property
    def inbox_url(self) -> str:
        """Mailpit's web inbox (and API base)."""
        return f"http://127.0.0.1:{self.mailpit_http_port}"

    def env_for(self, service: str, *, replica: int = 0) -> dict[str, str]:
        prefix = service.upper() + "_"
        env = {
            f"{prefix}HOST": "127.0.0.1",
            f"{prefix}PORT": str(self.port_of(service, replica)),
            f"{prefix}LOG_LEVEL": self.log_level,
            f"{prefix}LOG_JSON": "true" if self.log_json else "false",
            f"{prefix}REDIS__URL": self.redis_url,
            f"{prefix}MONGO__URL": self.mongo_url,
            f"{prefix}QUEUE__TRANSPORT": "redis",
            f"{prefix}QUEUE__REDIS_URL": self.redis_url,
        }
        if service == "workflow":
            for target in ("package", "dronescheduler", "delivery"):
                env[f"WORKFLOW_{target.upper()}_URL"] = self.url(target)
        if service == "simulator":
            for target in ("dronescheduler", "delivery"):
                env[f"SIMULATOR_{target.upper()}_URL"] = self.url(target)
        if service == "webapp":
            env.update(self.webapp_env())
        if service == "notifier":
            env["NOTIFIER_DELIVERY_URL"] = self.url("delivery")
            env["NOTIFIER_EMAIL__TRANSPORT"] = "smtp"
            env["NOTIFIER_EMAIL__SMTP__HOST"] = "127.0.0.1"
            env["NOTIFIER_EMAIL__SMTP__PORT"] = str(self.mailpit_smtp_port)
            env["NOTIFIER_SMS__TRANSPORT"] = "sink"
            env["NOTIFIER_SMS__SINK_FILE"] = str(self.data_dir / "sms.jsonl")
            if "webapp" in self.ports:  # the e-mails link to this stack's tracking page
                env["NOTIFIER_PUBLIC_BASE_URL"] = self.url("webapp")
        env.update(self.auth_env(service))
        return env

    def auth_env(self, service: str) -> dict[str, str]:
        """The service's token settings: trust the development issuer, for its own audience and
        the public API's; mint outbound tokens for the services it calls."""
        prefix = service.upper() + "_AUTH__"
        if not self.auth:
            return {prefix + "ENABLED": "false"}
        env = {
            prefix + "ENABLED": "true",
            prefix + "ISSUER": DEFAULT_DEV_ISSUER,
            prefix + "JWKS_FILE": str(self.issuer_dir / JWKS_FILE_NAME),
            prefix + "PUBLIC_AUDIENCE": PUBLIC_AUDIENCE,
        }
        if service in SERVICE_AUDIENCES:
            env[prefix + "AUDIENCE"] = SERVICE_AUDIENCES[service]
        if service in CALLS:
            env[prefix + "DEV_SIGNING_KEY_FILE"] = str(self.issuer_dir / KEY_FILE_NAME)
            for target in CALLS[service]:
                scope = f"api://{SERVICE_AUDIENCES[target]}/.default"
                env[f"{prefix}OUTBOUND_SCOPES__{target.upper()}"] = scope
        return env

    def webapp_env(self) -> dict[str, str]:
        """The web app: the services it calls and sign-in with the development issuer (its key
        in ``<data>/dev-issuer``, which mints the customers' tokens even with tokens off); its
        own tokens for the fleet and the notifications come with :meth:`auth_env`."""
        env = {
            f"WEBAPP_{target.upper()}_URL": self.url(target)
            for target in ("ingestion", "delivery", "workflow", "simulator", "notifier")
            if target in self.ports
        }
        env["WEBAPP_SIGNIN__MODE"] = "development"
        env["WEBAPP_AUTH__DEV_SIGNING_KEY_FILE"] = str(self.issuer_dir / KEY_FILE_NAME)
        return env


class Process:
    """One service process with its output copied, line by line, under its name."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], out: IO[str]) -> None:
        self.name = name
        self.command = command
        self.env = env
        self.out = out
        self.popen: subprocess.Popen[str] | None = None
        self._pump: threading.Thread | None = None

    def start(self) -> None:
        self.popen = subprocess.Popen(
            self.command,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self._pump = threading.Thread(target=self._copy, name=f"out-{self.name}", daemon=True)
        self._pump.start()

    def _copy(self) -> None:
        if self.popen is None or self.popen.stdout is None:
            return
        for line in self.popen.stdout:
            with contextlib.suppress(ValueError, OSError):
                self.out.write(f"{self.name:>16} | {line}")
                self.out.flush()

    @property
    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.alive:
            assert self.popen is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.popen.pid, sig)

    def wait(self, timeout: float) -> int | None:
        """The exit status once the process has exited (its output pipe is then closed)."""
        if self.popen is None:
            return None
        try:
            code = self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        if self._pump is not None:
            self._pump.join(5)
        if self.popen.stdout is not None and not self.popen.stdout.closed:
            self.popen.stdout.close()
        return code


class PortInUseError(RuntimeError):
    """Ports the stack needs are held by other processes (nothing was started)."""

    def __init__(self, taken: dict[str, int]) -> None:
        self.taken = taken
        listed = ", ".join(f"{port} ({name})" for name, port in taken.items())
        example = next(iter(taken.values()))
        super().__init__(
            f"already in use on 127.0.0.1: {listed}; "
            f"`ss -ltnp 'sport = :{example}'` shows which process holds a port"
        )


def _port_free(port: int) -> bool:
    """Whether a server could listen on 127.0.0.1:``port`` now (as uvicorn would bind it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/readyz", timeout=2) as response:  # noqa: S310 - loopback
            return int(response.status) == 200
    except (urllib.error.URLError, OSError):
        return False


class Stack:
    """Start and stop the whole native stack."""

    def __init__(self, config: StackConfig, out: IO[str] | None = None) -> None:
        self.config = config
        self.out = out or sys.stdout
        self.redis = RedisServer(config.data_dir / "redis", config.redis_port, persist=True)
        self.mongo = FerretDBServer(config.data_dir / "ferretdb", config.mongo_port)
        self.mailpit = MailpitServer(
            config.data_dir / "mailpit",
            config.mailpit_smtp_port,
            http_port=config.mailpit_http_port,
        )
        self.processes: dict[str, Process] = {}

    def _say(self, text: str) -> None:
        self.out.write(f"{'stack':>16} | {text}\n")
        self.out.flush()

    def ports(self) -> dict[str, int]:
        """Every port the stack listens on, by process name."""
        ports = {self.redis.name: self.config.redis_port, self.mongo.name: self.config.mongo_port}
        if self.mails:
            ports["mailpit"] = self.config.mailpit_smtp_port
            ports["mailpit-ui"] = self.config.mailpit_http_port
        for service in self.config.services:
            replicas = self.config.workflow_replicas if service == "workflow" else 1
            for replica in range(replicas):
                name = service if not replica else f"{service}-{replica}"
                ports[name] = self.config.port_of(service, replica)
        return ports

    def check_ports(self) -> None:
        """Fail before starting anything when a port is taken: a readiness probe would otherwise
        find another stack's services on it and call this one ready."""
        taken = {name: port for name, port in self.ports().items() if not _port_free(port)}
        if taken:
            raise PortInUseError(taken)

    @property
    def mails(self) -> bool:
        """Whether Mailpit runs: with the notifier, which sends it the e-mail."""
        return "notifier" in self.config.services

    def start_servers(self) -> None:
        servers: list[tuple[ManagedServer, int]] = [
            (self.redis, self.config.redis_port),
            (self.mongo, self.config.mongo_port),
        ]
        if self.mails:
            servers.append((self.mailpit, self.config.mailpit_smtp_port))
        for server, port in servers:
            try:
                server.start()
            except ServerUnavailableError as exc:
                raise ServerUnavailableError(
                    f"{server.name} could not start on 127.0.0.1:{port} "
                    f"(is something else listening there?): {exc}"
                ) from exc
            self._say(f"{server.name} on 127.0.0.1:{port}")
        if self.mails:
            self._say(f"mailpit inbox at {self.config.inbox_url}")

    def service_env(self, service: str, *, replica: int = 0) -> dict[str, str]:
        """A service's environment: this stack's defaults, then the caller's environment, then
        the stack's wiring (ports, URLs), then ``extra_env``."""
        return {
            **NATIVE_DEFAULTS,
            **os.environ,
            **self.config.env_for(service, replica=replica),
            **self.config.extra_env,
        }

    def start_service(self, service: str, *, replica: int = 0) -> Process:
        env = self.service_env(service, replica=replica)
        name = service if not replica else f"{service}-{replica}"
        process = Process(name, [sys.executable, "-m", service], env, self.out)
        process.start()
        self.processes[name] = process
        return process

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = {name: self._url_of(name) for name in self.processes}
        while pending and time.monotonic() < deadline:
            for name, url in list(pending.items()):
                process = self.processes[name]
                if not process.alive:
                    raise RuntimeError(f"{name} exited with {process.wait(0)} before it was ready")
                if _ready(url):
                    self._say(f"{name} ready at {url}")
                    del pending[name]
            time.sleep(0.2)
        if pending:
            raise TimeoutError(f"not ready after {timeout:g}s: {', '.join(sorted(pending))}")

    def _url_of(self, name: str) -> str:
        service, _, replica = name.partition("-")
        return f"http://127.0.0.1:{self.config.port_of(service, int(replica or 0))}"

    def start(self, timeout: float = 90.0) -> None:
        self.check_ports()
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        if self.config.auth:
            issuer = self.config.dev_issuer()
            self._say(f"development token issuer in {self.config.issuer_dir} (kid {issuer.kid})")
        self.start_servers()
        for service in self.config.services:
            replicas = self.config.workflow_replicas if service == "workflow" else 1
            for replica in range(replicas):
                self.start_service(service, replica=replica)
        self.wait_ready(timeout)

    def stop(self, grace: float = 25.0) -> None:
        for name in reversed(list(self.processes)):
            self.processes[name].signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for process in self.processes.values():
            if process.wait(max(0.1, deadline - time.monotonic())) is None:
                self._say(f"{process.name} did not stop in {grace:g}s: killed")
                process.signal(signal.SIGKILL)
                process.wait(5)
        self.processes.clear()
        self.mailpit.stop()
        self.mongo.stop()
        self.redis.stop()

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
