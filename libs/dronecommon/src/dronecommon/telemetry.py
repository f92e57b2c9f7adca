"""OpenTelemetry set-up: where traces and metrics go, and what is instrumented.

Export destination, in order of precedence:

1. ``APPLICATIONINSIGHTS_CONNECTION_STRING`` (or ``<PREFIX>TELEMETRY__CONNECTION_STRING``): the
   Azure Monitor distro (``configure_azure_monitor``) with live metrics, statsbeat and offline
   storage as configured (all off by default: no phoning home unless asked). The distro's own
   FastAPI/HTTPX instrumentation is switched off: FastAPI traces itself, the HTTP client its calls.
2. ``OTEL_EXPORTER_OTLP_ENDPOINT``: OTLP over HTTP for traces and metrics (the standard
   ``OTEL_EXPORTER_OTLP_*`` variables tune the exporters).
3. Neither: nothing is exported and the global providers are left alone (a test's in-memory
   provider keeps working). Nothing is instrumented then (it would cost about a millisecond per
   request for spans nobody reads) unless a process installed an SDK provider itself; an inbound
   ``traceparent`` is still honoured by :class:`TraceContextMiddleware`.

Work a service does on its own — polling a stream or a queue, handling delivery events (which
carry no trace context), publishing the fleet's fixes — runs :func:`untraced`: left to the
instrumentation, every poll and every command of it would start a one-span trace of its own,
thousands a minute that say nothing (a tenth of them exported at the default ratio), and each
costs the sampler and a span even when not sampled.

When spans are recorded, FastAPI records the server spans and HTTP metrics itself (health routes
excluded; :func:`server_telemetry`), and Redis and PyMongo are instrumented; outbound HTTP spans
come from the shared HTTP client. Inside a request or a queue message whose span is not sampled,
the Redis and PyMongo instrumentation is suppressed (:func:`traced_only_if_sampled`): its spans
could not be recorded anyway. Server spans and HTTP metrics follow the stable HTTP semantic
conventions, as the client's spans do (``OTEL_SEMCONV_STABILITY_OPT_IN`` defaults to ``http`` for
the instrumentations that read it): ``http.server.request.duration`` keyed by method, route and
status — not the old ``http.server.duration`` keyed by the full target, a series per delivery id.
:meth:`Telemetry.shutdown` flushes within a bound so a stopping pod never hangs on an unreachable
collector.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi.telemetry import TelemetryConfig
from opentelemetry import context as otel_context
from opentelemetry import metrics, propagate, trace
from opentelemetry.context import _SUPPRESS_INSTRUMENTATION_KEY
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from starlette.types import ASGIApp, Receive, Scope, Send

from dronecommon.health import HEALTH_PATHS
from dronecommon.settings import TelemetrySettings

logger = logging.getLogger("dronecommon.telemetry")

# Not recorded: see WithoutActiveRequests.
ACTIVE_REQUESTS = "http.server.active_requests"

_instrumented_libraries = False
_instrument_lock = threading.Lock()


@dataclass
class Telemetry:
    """What :func:`configure_telemetry` switched on, and how to stop it."""

    exporter: str  # "azure-monitor" | "otlp" | "none"
    shutdown_timeout: float
    # Spans go somewhere: an exporter here, or a provider installed by the process (tests).
    recording: bool = True
    _tracer_provider: object | None = field(default=None, repr=False)
    _meter_provider: object | None = field(default=None, repr=False)

    def shutdown(self) -> None:
        """Flush and stop exporters, waiting at most ``shutdown_timeout`` seconds in all."""
        if self.exporter == "none":
            return
        tracer_provider = self._tracer_provider or trace.get_tracer_provider()
        meter_provider = self._meter_provider or metrics.get_meter_provider()

        def stop() -> None:
            for provider in (tracer_provider, meter_provider):
                flush = getattr(provider, "force_flush", None)
                if flush is not None:
                    try:
                        flush(int(self.shutdown_timeout * 1000))
                    except Exception:  # an exporter's failure must not block shutdown
                        logger.warning("telemetry flush failed", exc_info=True)
                stop_provider = getattr(provider, "shutdown", None)
                if stop_provider is not None:
                    try:
                        stop_provider()
                    except Exception:
                        logger.warning("telemetry shutdown failed", exc_info=True)

        worker = threading.Thread(target=stop, name="telemetry-shutdown", daemon=True)
        worker.start()
        worker.join(self.shutdown_timeout)
        if worker.is_alive():
            logger.warning(
                "telemetry shutdown took longer than %ss; abandoned", self.shutdown_timeout
            )


def _resource(service_name: str, version: str) -> Resource:
    return Resource.create(
        {
            "service.name": os.environ.get("OTEL_SERVICE_NAME", service_name),
            "service.namespace": "dronedelivery",
            "service.version": version,
        }
    )


def _configure_azure_monitor(
    settings: TelemetrySettings, service_name: str, version: str
) -> Telemetry:
    from azure.monitor.opentelemetry import configure_azure_monitor

    assert settings.connection_string is not None
    if not settings.enable_statsbeat:
        os.environ["APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL"] = "true"
    configure_azure_monitor(
        connection_string=settings.connection_string.get_secret_value(),
        resource=_resource(service_name, version),
        enable_live_metrics=settings.enable_live_metrics,
        disable_offline_storage=settings.disable_offline_storage,
        sampling_ratio=settings.sampling_ratio,
        # Instrumented here, once, with health routes excluded.
        instrumentation_options={
            "fastapi": {"enabled": False},
            "httpx": {"enabled": False},
            "requests": {"enabled": False},
            "urllib": {"enabled": False},
            "urllib3": {"enabled": False},
        },
    )
    return Telemetry("azure-monitor", settings.shutdown_timeout)


def _configure_otlp(settings: TelemetrySettings, service_name: str, version: str) -> Telemetry:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    resource = _resource(service_name, version)
    # Exporter timeouts within the shutdown bound, and no provider shutdown at interpreter exit
    # (Telemetry.shutdown does it, bounded): a dead collector never holds a stopping pod.
    timeout = settings.shutdown_timeout
    tracer_provider = TracerProvider(
        resource=resource,
        sampler=ParentBased(TraceIdRatioBased(settings.sampling_ratio)),
        shutdown_on_exit=False,
    )
    tracer_provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(timeout=timeout), export_timeout_millis=timeout * 1000)
    )
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[
            PeriodicExportingMetricReader(
                OTLPMetricExporter(timeout=timeout), export_timeout_millis=timeout * 1000
            )
        ],
        shutdown_on_exit=False,
    )
    trace.set_tracer_provider(tracer_provider)
    metrics.set_meter_provider(meter_provider)
    return Telemetry(
        "otlp",
        settings.shutdown_timeout,
        _tracer_provider=tracer_provider,
        _meter_provider=meter_provider,
    )


def instrument_libraries() -> None:
    """Redis and PyMongo spans (process-wide, once; before clients are created)."""
    global _instrumented_libraries
    with _instrument_lock:
        if _instrumented_libraries:
            return
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor

        RedisInstrumentor().instrument()
        PymongoInstrumentor().instrument()
        _instrumented_libraries = True


def use_stable_http_conventions() -> None:
    """The stable HTTP semantic conventions, unless the process chose otherwise.

    Read once per process by the first instrumentation (the HTTP clients' and the Redis and
    PyMongo ones), so set before any: by :func:`configure_telemetry`.
    """
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")


def configure_telemetry(
    settings: TelemetrySettings, *, service_name: str, version: str = "0.1.0"
) -> Telemetry:
    """Choose the exporter from settings and instrument the libraries (no network here)."""
    use_stable_http_conventions()
    if settings.connection_string is not None:
        telemetry = _configure_azure_monitor(settings, service_name, version)
    elif settings.otlp_endpoint:
        telemetry = _configure_otlp(settings, service_name, version)
    else:
        telemetry = Telemetry("none", settings.shutdown_timeout, recording=spans_recorded())
    if settings.instrument and telemetry.recording:
        instrument_libraries()
    logger.debug("telemetry export: %s", telemetry.exporter)
    return telemetry


@contextmanager
def untraced() -> Iterator[None]:
    """No spans from instrumented libraries inside (the current task's context only: a task
    created inside inherits it, one created before does not)."""
    token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
    try:
        yield
    finally:
        otel_context.detach(token)


@contextmanager
def traced_only_if_sampled() -> Iterator[None]:
    """Library spans inside only when the current span is recorded (sampled).

    Every sampler this module configures decides by the trace (parent-based ratio; Azure
    Monitor's ratio sampler hashes the trace id), so the children of a span that is not sampled
    are never recorded either. Instrumented Redis and PyMongo commands would still each ask the
    sampler and make a span nobody exports; inside an unsampled span they are suppressed
    instead. Spans made directly (the HTTP client's, the queue's) are unaffected, so an
    unsampled trace still travels to the next service as ``traceparent`` with its flag unset.
    """
    if trace.get_current_span().is_recording():
        yield
        return
    with untraced():
        yield


class SampledRequestMiddleware:
    """:func:`traced_only_if_sampled` for every HTTP request, inside its server span.

    With this and :class:`WithoutActiveRequests`, a status read at the production default (one
    request in ten sampled) went from 0.177x to 0.201x of bare uvicorn (runs interleaved on one
    machine); the Redis instrumentation removed altogether was worth about 5 % of that read.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # traced_only_if_sampled written out: with the two generator-based context managers a
        # status read measured 0.192-0.195x of bare uvicorn, 0.197-0.204x as here (interleaved).
        if trace.get_current_span().is_recording():
            await self.app(scope, receive, send)
            return
        token = otel_context.attach(otel_context.set_value(_SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)


def spans_recorded() -> bool:
    """Whether a real (SDK) tracer provider is installed, by this module or by a test."""
    return isinstance(trace.get_tracer_provider(), TracerProvider)


class TraceContextMiddleware:
    """Honour an inbound W3C ``traceparent`` when no spans are recorded.

    Instrumentation costs about a millisecond per request; with nothing to export it is skipped,
    and this middleware only attaches the caller's context, so outbound calls and queue messages
    still carry the caller's trace.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {
            key.decode("latin-1"): value.decode("latin-1")
            for key, value in scope.get("headers", ())
            if key in (b"traceparent", b"tracestate", b"baggage")
        }
        if not carrier:
            await self.app(scope, receive, send)
            return
        token = otel_context.attach(propagate.extract(carrier))
        try:
            await self.app(scope, receive, send)
        finally:
            otel_context.detach(token)


def _is_health_probe(scope: MutableMapping[str, Any]) -> bool:
    return scope.get("path") in HEALTH_PATHS


class WithoutActiveRequests(metrics.MeterProvider):
    """A meter provider (``inner``, else the global one when a meter is asked for) whose meters
    make ``http.server.active_requests`` a no-op; every other instrument is ``inner``'s.

    FastAPI records that up-down counter twice per request, beside the request-duration
    histogram: two of its three measurements, for an instrument of *development* stability in
    the HTTP semantic conventions whose figure follows from the histogram (concurrency = rate x
    mean duration). Without it a status read served about 5 % more requests per second at the
    production default (0.181x/0.188x -> 0.194x/0.194x of bare uvicorn, interleaved runs).
    """

    def __init__(self, inner: metrics.MeterProvider | None = None) -> None:
        self.inner = inner

    def get_meter(
        self,
        name: str,
        version: str | None = None,
        schema_url: str | None = None,
        attributes: Any = None,
    ) -> metrics.Meter:
        provider = self.inner or metrics.get_meter_provider()
        meter = provider.get_meter(name, version, schema_url, attributes)
        return _MeterWithoutActiveRequests(meter)  # type: ignore[return-value]


class _MeterWithoutActiveRequests:
    def __init__(self, meter: metrics.Meter) -> None:
        self._meter = meter

    def create_up_down_counter(self, name: str, *args: Any, **kwargs: Any) -> Any:
        if name == ACTIVE_REQUESTS:
            return metrics.NoOpUpDownCounter(name)
        return self._meter.create_up_down_counter(name, *args, **kwargs)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._meter, attribute)


def server_telemetry(
    *, instrumented: bool, meter_provider: MeterProvider | None = None
) -> TelemetryConfig:
    """FastAPI's own telemetry settings (``FastAPI(telemetry=...)``): with ``instrumented``, one
    SERVER span per request and the request-duration histogram (not the active-requests counter:
    :class:`WithoutActiveRequests`), for every route but the health probes.

    FastAPI records them itself (stable conventions; the route taken from the routing it does
    anyway): the contrib ASGI instrumentation it replaces matched every request's route a second
    time to name its span and wrapped it in two more middlewares, and a status read served 16 %
    more requests per second without it (a status read: 0.145x -> 0.168x of bare uvicorn, measured
    minutes apart on one machine). FastAPI's
    *operation* spans (dependencies, endpoint, serialization: three INTERNAL spans per request)
    stay off: they say nothing the server span does not. Its OpenTelemetry *logs* stay off too:
    errors are logged by :mod:`dronecommon.logs`. Without ``instrumented`` everything is off,
    whatever provider a process installs. Metrics go to ``meter_provider`` (the global one by
    default).
    """
    if not instrumented:
        return {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    return {
        "tracing": True,
        "metrics": True,
        "logs": False,
        "operation_spans": False,
        "meter_provider": WithoutActiveRequests(meter_provider),
        "exclude": _is_health_probe,
    }
