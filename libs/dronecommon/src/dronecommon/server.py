"""Run a service under uvicorn the same way everywhere (native stack, containers)."""

from __future__ import annotations

import uvicorn

from dronecommon.settings import ServiceSettings


def serve(factory: str, settings: ServiceSettings, *, workers: int = 1) -> None:
    """Serve ``factory`` (``"package.main:create_app"``) on the settings' host and port.

    uvloop and httptools are used explicitly: with more than one worker the pure-Python defaults
    cost most of the throughput. Access logs come from the app's own middleware.
    """
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
