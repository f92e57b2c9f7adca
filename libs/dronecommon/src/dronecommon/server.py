"""Run a service under uvicorn the same way everywhere (native stack, containers)."""

from __future__ import annotations

import gc
import signal
from types import FrameType

import uvicorn

from dronecommon.settings import ServiceSettings


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


# Young-generation collections every 700 allocations (CPython's default) cost a service a few
# percent of its CPU; objects a request allocates are nearly all freed by reference counting first.
GC_THRESHOLDS = (20_000, 20, 20)
_settle_heap_at_startup = False


def settle_heap() -> None:
    """Collect once, then move every object alive now out of the collector's sight (gc.freeze).

    Called when a served app has started: what start-up built (modules, the app, clients, caches
    such as the drone scheduler's fleet) stays for the process's life, and full collections no
    longer walk it. A no-op unless :func:`serve` runs the process.
    """
    if _settle_heap_at_startup:
        gc.collect()
        gc.freeze()


def serve(factory: str, settings: ServiceSettings, *, workers: int = 1) -> None:
    """Serve ``factory`` (``"package.main:create_app"``) on the settings' host and port.

    uvloop and httptools are used explicitly: with more than one worker the pure-Python defaults
    cost most of the throughput. Access logs come from the app's own middleware.
    """
    # uvicorn shuts down gracefully on SIGTERM/SIGINT and then re-raises the signal with the
    # handler it found installed: this one turns that completed shutdown into exit status 0.
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, _exit_cleanly)
    global _settle_heap_at_startup
    _settle_heap_at_startup = True
    gc.set_threshold(*GC_THRESHOLDS)
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
        forwarded_allow_ips=settings.forwarded_allow_ips,
        timeout_graceful_shutdown=20,
        server_header=False,
    )
