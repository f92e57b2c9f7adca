"""Work the service does on its own (the telemetry consumer, the watched deliveries' reads).

Left to the instrumentation, every idle poll of the fixes stream and every read a watched
delivery's announcement causes would start a trace of its own: thousands a minute that say
nothing. :func:`untraced` turns instrumentation off for the task it runs in.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import context
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY


@contextmanager
def untraced() -> Iterator[None]:
    """No spans from instrumented libraries inside (the task's own context only)."""
    token = context.attach(context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        context.detach(token)
