"""Real Redis, FerretDB and Mailpit servers for tests and the native stack.

Each server runs as a child process on a free loopback port with its data in its own folder, and
can be stopped and started again on the same port (to test outages). Binaries are found on PATH or
in the project's tools folder (``.tools/bin``, filled by ``make setup``); ``REDIS_SERVER_BIN``,
``FERRETDB_BIN`` and ``MAILPIT_BIN`` override.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from types import TracebackType
from typing import Self


class ServerUnavailableError(RuntimeError):
    """A server binary is missing or the server did not come up."""


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
#: How many ports below the kernel's ephemeral range :func:`free_port` hands out.
LISTEN_PORTS = 16_384


def ephemeral_floor() -> int:
    """The lowest local port the kernel gives outgoing connections (Linux's default else)."""
    try:
        return int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _listen_ports() -> range:
    floor = ephemeral_floor()
    return range(max(1024, floor - LISTEN_PORTS), floor)


_ports = _listen_ports()
_next = random.randrange(len(_ports)) if _ports else 0  # noqa: S311 - spreads processes, no secret


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Taken below the kernel's ephemeral range: an outgoing connection takes its local port from
    that range, and could take a port handed out there before its server binds it (a stack's
    slowest starter, the notifier, lost its port that way while the other services connected to
    Redis and to each other). Ports are tried in turn from a random start, so this process hands
    out every port of the range before any twice.
    """
    global _next
    for _ in range(len(_ports)):
        port = _ports[_next % len(_ports)]
        _next += 1
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:  # the range is all taken
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def project_root() -> Path:
    """The repository root (the folder holding ``uv.lock``), searched upwards from here."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "uv.lock").exists():
            return parent
    return Path.cwd()


def find_binary(name: str, env_var: str) -> str:
    explicit = os.environ.get(env_var)
    if explicit:
        return explicit
    local = project_root() / ".tools" / "bin" / name
    if local.exists():
        return str(local)
    found = shutil.which(name)
    if found:
        return found
    raise ServerUnavailableError(f"{name} not found: run `make setup` (or set {env_var})")


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@contextlib.asynccontextmanager
async def silent_listener(*, echo_first: int = 0) -> AsyncIterator[int]:
    """A loopback port (yielded) that accepts connections and never answers: a server that hangs.

    With ``echo_first``, the first that many bytes a client sends are echoed back (a protocol
    header, as an AMQP broker answers the client's), and then nothing more.
    """
    writers: list[asyncio.StreamWriter] = []
    tasks: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        tasks.add(task)
        writers.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            if echo_first:
                writer.write(await reader.readexactly(echo_first))
                await writer.drain()
            while await reader.read(65536):
                pass
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()
        if tasks:
            await asyncio.wait(tasks, timeout=2.0)


def cpu_seconds(pid: int) -> float:
    """The user + system CPU time a live process and its children have used, in seconds (from
    ``/proc``): what the benchmarks count a server's or a replica's cost with.

    A child counts while it runs (found by its parent id) and, once its parent has waited for it,
    in the parent's ``cutime``/``cstime``: a child that ends between two readings (redis-server's
    snapshot fork) moves from one count to the other, so the figure never goes down. Raises
    ``FileNotFoundError`` when ``pid`` is not running.
    """
    found = cpu_seconds_of([pid])
    if pid not in found:
        raise FileNotFoundError(f"no process {pid}")
    return found[pid]


def cpu_seconds_of(pids: Iterable[int]) -> dict[int, float]:
    """:func:`cpu_seconds` of each of ``pids`` that is running, from one reading of ``/proc``."""
    stats: dict[int, list[str]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            with contextlib.suppress(FileNotFoundError, ProcessLookupError):  # ended meanwhile
                stats[int(entry.name)] = _stat(int(entry.name))
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, float] = {}
    for pid in pids:
        if pid not in stats:
            continue
        ticks, pending = 0, [pid]
        while pending:  # the process and every running process under it, at any depth
            current = pending.pop()
            ticks += _cpu_ticks(stats[current])
            pending.extend(children.get(current, []))
        found[pid] = ticks / tick
    return found


def _stat(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the name (``state`` first, ``ppid`` second)."""
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()  # the name, in brackets, may hold spaces


def _cpu_ticks(fields: list[str]) -> int:
    """``utime + stime + cutime + cstime``: its own CPU and that of the children it waited for."""
    return sum(int(value) for value in fields[11:15])


class ManagedServer:
    """A child server process bound to one loopback port."""

    name = "server"

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        self.data_dir = data_dir
        self.port = port or free_port()
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path = data_dir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def ready(self) -> bool:
        return _port_open(self.port)

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The server process's id while it was started and not stopped."""
        return self._process.pid if self._process is not None else None

    def cpu_seconds(self) -> float:
        """The CPU time the running server has used (:func:`cpu_seconds`)."""
        if self._process is None:
            raise ServerUnavailableError(f"{self.name} is not running")
        return cpu_seconds(self._process.pid)

    def start(self, timeout: float = 30.0) -> None:
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise ServerUnavailableError(
                    f"{self.name} exited with {self._process.returncode}: {self.log_tail()}"
                )
            if self.ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServerUnavailableError(f"{self.name} did not start in {timeout}s: {self.log_tail()}")

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): it keeps its port and connections and answers nothing,
        as a store stalled by its host does; :meth:`resume` lets it go on where it stopped."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT)."""
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGCONT)

    def stop(self, timeout: float = 10.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGCONT)  # a paused server handles SIGTERM only once resumed
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout)
        # The port is free once nothing accepts on it any more.
        deadline = time.monotonic() + timeout
        while _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class RedisServer(ManagedServer):
    """``redis-server`` for tests and local runs: without persistence, or (``persist``, the native
    stack) with the append-only file alone.

    The AOF is what a restart loads and what bounds a loss: Redis writes it before it sends the
    replies of an event-loop turn and fsyncs it every second, so a killed server or a crashed OS
    loses about the last second at most. RDB snapshots on top of it would add nothing a restart
    reads, yet each one forks and writes the whole data set: with ``save 60 1`` that was a full
    dump a minute, whatever its size (the benchmark's 1 M-delivery row read 2.6 to 38.6 ms of
    Redis CPU a delivery depending on whether one fell in its window). The AOF's own rewrites
    (when it has doubled) stay: they keep the file bounded.
    """

    name = "redis"

    def __init__(self, data_dir: Path, port: int | None = None, *, persist: bool = False) -> None:
        super().__init__(data_dir, port)
        self.persist = persist

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        command = [
            find_binary("redis-server", "REDIS_SERVER_BIN"),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--protected-mode",
            "yes",
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
        ]
        if self.persist:
            command += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
        else:
            command += ["--save", "", "--appendonly", "no"]
        return command

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


# FerretDB's own SQLite defaults, in its order (the busy handler before WAL), plus
# synchronous=NORMAL: in WAL mode a commit is then written but not fsynced (the WAL is synced at
# checkpoints). A crash of FerretDB or of any process loses nothing committed; an OS crash or
# power loss can lose the last moments, the same bound as Redis's appendfsync everysec. It halves
# FerretDB's CPU per insert on the benchmark machine (0.55-0.62 ms to 0.28-0.30 ms) and more
# than doubles its insert rate.
SQLITE_PRAGMAS = (
    "busy_timeout(10000)",
    "journal_mode(wal)",
    "synchronous(normal)",
    "auto_vacuum(none)",
)


class FerretDBServer(ManagedServer):
    """FerretDB with its SQLite handler: the MongoDB wire protocol on a local folder."""

    name = "ferretdb"

    def __init__(self, data_dir: Path, port: int | None = None) -> None:
        super().__init__(data_dir, port)
        self.debug_port = free_port()

    @property
    def url(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/"

    def command(self) -> list[str]:
        sqlite_dir = self.data_dir / "sqlite"
        state_dir = self.data_dir / "state"
        sqlite_dir.mkdir(parents=True, exist_ok=True)
        state_dir.mkdir(parents=True, exist_ok=True)
        return [
            find_binary("ferretdb", "FERRETDB_BIN"),
            "--handler=sqlite",
            f"--sqlite-url=file:{sqlite_dir}/?"
            + "&".join(f"_pragma={pragma}" for pragma in SQLITE_PRAGMAS),
            f"--listen-addr=127.0.0.1:{self.port}",
            f"--debug-addr=127.0.0.1:{self.debug_port}",
            f"--state-dir={state_dir}",
            "--telemetry=disable",
            "--log-level=warn",
        ]

    def ready(self) -> bool:
        # FerretDB answers the wire protocol as soon as it accepts connections.
        return _port_open(self.port)


class MailpitServer(ManagedServer):
    """Mailpit: a real SMTP server that keeps every message, with a web inbox and an HTTP API.

    ``port`` is SMTP; ``http_port`` serves the inbox and the API (``/api/v1/messages``,
    ``/api/v1/message/{ID}``, ``/api/v1/search?query=``). Messages are kept in a SQLite file in
    the data folder (they survive a restart) and are never dropped as duplicates: counting what
    arrived is the point.
    """

    name = "mailpit"

    def __init__(
        self, data_dir: Path, port: int | None = None, *, http_port: int | None = None
    ) -> None:
        super().__init__(data_dir, port)
        self.http_port = http_port or free_port()

    @property
    def smtp_port(self) -> int:
        return self.port

    @property
    def url(self) -> str:
        """The web inbox and the API's base."""
        return f"http://127.0.0.1:{self.http_port}"

    def command(self) -> list[str]:
        return [
            find_binary("mailpit", "MAILPIT_BIN"),
            "--smtp",
            f"127.0.0.1:{self.port}",
            "--listen",
            f"127.0.0.1:{self.http_port}",
            "--database",
            str(self.data_dir / "mailpit.db"),
            "--max",
            "1000000",
            "--smtp-auth-accept-any",
            "--smtp-auth-allow-insecure",
            "--smtp-disable-rdns",
            "--disable-version-check",
            "--quiet",
        ]

    def ready(self) -> bool:
        return _port_open(self.port) and _port_open(self.http_port)
