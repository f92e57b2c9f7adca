"""The stack the drone scheduler's benchmarks start: a FerretDB (SQLite) of their own in a
temporary folder, and ``python -m dronescheduler`` on it as a child process on a free loopback
port (JSON logs at INFO, as deployed; no token checks: ``make bench`` measures the whole system
with them).

Imported by the benchmark scripts next to it (``python <script>`` puts this folder on the path).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp

from dronetesting.servers import FerretDBServer, free_port

DATABASE = "bench"


class SchedulerProcess:
    """``python -m dronescheduler`` on ``mongo_url``, started and stopped as often as needed."""

    def __init__(
        self,
        folder: Path,
        mongo_url: str,
        *,
        drones: int = 0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.folder = folder
        self.mongo_url = mongo_url
        self.log = folder / "service.log"
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            **os.environ,
            "DRONESCHEDULER_PORT": str(port),
            "DRONESCHEDULER_MONGO__URL": mongo_url,
            "DRONESCHEDULER_MONGO__DATABASE": DATABASE,
            "DRONESCHEDULER_LOG_LEVEL": "INFO",
            "DRONESCHEDULER_AUTH__ENABLED": "false",
            **(env or {}),
        }
        if drones:
            self.env["DRONESCHEDULER_FLEET__COUNT"] = str(drones)
        self.process: subprocess.Popen[bytes] | None = None

    def _spawn(self) -> subprocess.Popen[bytes]:
        with self.log.open("ab") as out:
            return subprocess.Popen(
                [sys.executable, "-m", "dronescheduler"],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    async def start(self) -> float:
        """Start the process; the seconds until its ``/readyz`` answers 200."""
        started = time.perf_counter()
        self.process = process = self._spawn()
        async with aiohttp.ClientSession() as session:
            while True:
                try:
                    async with session.get(self.url + "/readyz") as response:
                        if response.status == 200:
                            return time.perf_counter() - started
                except aiohttp.ClientError:
                    pass
                if process.poll() is not None:
                    raise RuntimeError(f"the service exited: {self.log.read_text()[-2000:]}")
                await asyncio.sleep(0.02)

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=60)

    def startup_log(self, *keys: str) -> dict[str, Any]:
        """``keys`` of the latest "fleet ready" line the service logged (none yet: empty)."""
        for line in reversed(self.log.read_text().splitlines()):
            if "fleet ready" in line:
                entry: dict[str, Any] = json.loads(line)
                return {k: entry.get(k) for k in keys}
        return {}


@contextmanager
def scheduler_stack(
    *, drones: int = 0, env: Mapping[str, str] | None = None, tmp: str | None = None
) -> Iterator[SchedulerProcess]:
    """A fresh FerretDB in a temporary folder (under ``tmp``) and the scheduler for it, not yet
    started; both stopped and the folder removed on the way out."""
    with (
        tempfile.TemporaryDirectory(dir=tmp) as folder,
        FerretDBServer(Path(folder) / "db") as mongo,
    ):
        service = SchedulerProcess(Path(folder), mongo.url, drones=drones, env=env)
        try:
            yield service
        finally:
            service.stop()
