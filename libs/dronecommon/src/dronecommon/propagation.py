"""W3C trace context carried in message properties and other string carriers.

Queue messages carry ``traceparent`` (and ``tracestate``/``baggage`` when present) in their
application properties, plus ``Diagnostic-Id`` with the same value as ``traceparent`` for tools that
read the legacy name.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping

from opentelemetry import propagate
from opentelemetry.context import Context

TRACEPARENT = "traceparent"
DIAGNOSTIC_ID = "Diagnostic-Id"


def inject_trace_context(
    carrier: MutableMapping[str, str], context: Context | None = None
) -> MutableMapping[str, str]:
    """Write the current (or given) trace context into ``carrier`` and return it."""
    propagate.inject(carrier, context=context)
    if TRACEPARENT in carrier:
        carrier[DIAGNOSTIC_ID] = carrier[TRACEPARENT]
    return carrier


def extract_trace_context(carrier: Mapping[str, object]) -> Context:
    """The trace context in a carrier (``Diagnostic-Id`` stands in for ``traceparent``)."""
    strings = {str(key): _text(value) for key, value in carrier.items()}
    if TRACEPARENT not in strings and DIAGNOSTIC_ID in strings:
        strings[TRACEPARENT] = strings[DIAGNOSTIC_ID]
    return propagate.extract(strings)


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
