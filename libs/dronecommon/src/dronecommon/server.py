"""Run a service under uvicorn the same way everywhere (native stack, containers)."""

from __future__ import annotations

import signal
from types import FrameType

import uvicorn

from dronecommon.settings import ServiceSettings


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def serve(factory: str, settings: ServiceSettings, *, workers: int = 1) -> None:
    """Serve ``factory`` (``"package.main:create_app"``) on the settings' host and port.

    uvloop and httptools are used explicitly: with more than one worker the pure-Python defaults
    cost most of the throughput. Access logs come from the app's own middleware.
    """
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal with the
    # handler it found installed: this one turns that completed shutdown into exit status 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    uvicorn.run(
        factory,
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_config=None,
        proxy_headers=True,
        forwarded_allow_ips="*",
        timeout_graceful_shutdown=20,
        server_header=False,
    )
