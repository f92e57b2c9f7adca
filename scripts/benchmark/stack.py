"""The native stack on free loopback ports, and the CPU time its processes use."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from dronetesting import servers
from dronetesting.servers import free_port

from .common import r


class BenchStack:
    """The native stack on free ports, data in a temporary folder, logs to a file."""

    def __init__(
        self, *, label: str, workflow_replicas: int, env: dict[str, str], log: Path
    ) -> None:
        from dronetesting.stack import SERVICE_PORTS, StackConfig

        self.data_dir = Path(tempfile.mkdtemp(prefix=f"bench-{label}-"))
        ports = {name: free_port() for name in SERVICE_PORTS}
        replica_ports = {f"workflow-{n}": free_port() for n in range(1, workflow_replicas)}
        self.config = StackConfig(
            data_dir=self.data_dir,
            redis_port=free_port(),
            mongo_port=free_port(),
            mailpit_smtp_port=free_port(),
            mailpit_http_port=free_port(),
            ports=ports,
            workflow_replicas=workflow_replicas,
            replica_ports=replica_ports,
            extra_env=env,
            log_level="WARNING",
            log_json=True,
        )
        self.log = log.open("a")
        self.stack: Any = None

    def __enter__(self) -> BenchStack:
        from dronetesting.stack import Stack

        self.stack = Stack(self.config, out=self.log)
        try:
            self.stack.start(timeout=180)
        except BaseException:
            self.stack.stop()
            shutil.rmtree(self.data_dir, ignore_errors=True)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.stack.stop()
        finally:
            self.log.close()
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def pids(self) -> dict[str, int]:
        pids = {
            name: p.popen.pid for name, p in self.stack.processes.items() if p.popen is not None
        }
        for server in (self.stack.redis, self.stack.mongo, self.stack.mailpit):
            if server.pid is not None:
                pids[server.name] = server.pid
        return pids

    def cpu(self) -> dict[str, float]:
        """Each process's CPU seconds with its children (0 once it ended), from one ``/proc``
        reading (:func:`dronetesting.servers.cpu_seconds_of`)."""
        pids = self.pids()
        found = servers.cpu_seconds_of(pids.values())
        return {name: found.get(pid, 0.0) for name, pid in pids.items()}

    def url(self, service: str) -> str:
        return str(self.config.url(service))

    def customer_tokens(self, owners: int) -> list[str]:
        """Tokens of ``bench-owner-<n>`` of account ``bench`` (the load's customers), for hours."""
        issuer = self.config.dev_issuer()
        return [
            issuer.mint_customer(account="bench", user=f"bench-owner-{n}", lifetime=6 * 3600)
            for n in range(owners)
        ]

    def operator_token(self) -> str:
        """An operator's token: reads every customer's deliveries."""
        issuer = self.config.dev_issuer()
        token: str = issuer.mint_customer(
            account="bench", user="bench-operator", roles=["Operator"], lifetime=6 * 3600
        )
        return token


def cpu_share(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, Any]:
    """CPU used by each process over a window, as a fraction of one core."""
    return {
        name: r((after.get(name, 0.0) - before.get(name, 0.0)) / seconds, 2)
        for name in sorted(after, key=lambda n: before.get(n, 0.0) - after.get(n, 0.0))
    }
