"""The tracking stream: a delivery's status as Server-Sent Events (``sse-starlette``).

Protocol (``GET .../public/{id}/tracking`` and ``GET .../{id}/tracking``):

- an unknown delivery is a 404 problem before any stream starts; beyond
  ``DELIVERY_SSE__MAX_WATCHERS`` streams in this replica, 503 with ``Retry-After``;
- the first event at once: ``event: status``, the same JSON as the status (the public one
  without the drone's id), with ``retry:`` (``DELIVERY_SSE__RETRY_MS``);
- then ``event: status`` whenever a fix or a stage change arrives, at most
  ``DELIVERY_SSE__MAX_RATE`` a second on average (default 1) in bursts of at most
  ``DELIVERY_SSE__BURST`` (default 2): a token bucket, so a drone reporting once a second is
  forwarded at once even when its fixes arrive unevenly, and faster updates are coalesced (the
  newest state wins); every stage entry written meanwhile is sent first, in order, with the
  status it had then (never coalesced away);
- every event has an ``id:`` ``<stage entry id>.<tracking version>``; a reconnection with
  ``Last-Event-ID`` gets the stage entries after that id, then the current status (an id that
  does not parse is ignored: a fresh start);
- a comment line (``: ping``) every ``DELIVERY_SSE__HEARTBEAT`` seconds;
- after Completed or Cancelled: that status, then ``event: end`` (data ``{"stage": ...}``) and
  the server closes the stream; a server that stops closes its streams (clients reconnect).
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator

import orjson
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask

from dronecommon.auth.inbound import ANONYMOUS, Caller
from dronecommon.domain import TERMINAL_STAGES

from .repository import StageRecord
from .service import DeliveryService
from .settings import SseSettings
from .views import View
from .watch import Hub, Watcher

_EVENT_ID = re.compile(r"^(\d{1,20})-(\d{1,20})(?:\.\d{1,20})?$")
_TERMINAL = frozenset(stage.value for stage in TERMINAL_STAGES)

Key = tuple[int, int, int]


def resume_point(last_event_id: str | None) -> str | None:
    """The stage entry id in a ``Last-Event-ID``, or None (absent or not one of ours)."""
    if not last_event_id:
        return None
    found = _EVENT_ID.match(last_event_id.strip())
    if found is None:
        return None
    return f"{int(found[1])}-{int(found[2])}"


def _sid_key(sid: str) -> tuple[int, int]:
    ms, _, seq = sid.partition("-")
    return int(ms or 0), int(seq or 0)


def _public(status: str) -> str:
    """A stored (owner's) status JSON without the drone's id or a refused change."""
    document = orjson.loads(status)
    document.pop("refusedChange", None)
    drone = document.get("drone")
    if isinstance(drone, dict):
        drone.pop("droneId", None)
    return orjson.dumps(document).decode()


class Tracker:
    """Opens tracking streams (see the module docstring)."""

    def __init__(self, hub: Hub, deliveries: DeliveryService, settings: SseSettings) -> None:
        self.hub = hub
        self.deliveries = deliveries
        self.settings = settings

    async def open(
        self,
        delivery_id: str,
        *,
        public: bool,
        last_event_id: str | None,
        viewer: Caller = ANONYMOUS,
    ) -> EventSourceResponse:
        """The stream of ``delivery_id``'s status; 404 before anything else unless ``viewer`` may
        see the delivery (the owner's stream) or the stream is the public one."""
        first = await self.deliveries.view(delivery_id, viewer)
        watcher = await self.hub.join(delivery_id)
        watcher.topic.notify("s")  # a change between the read and the join is not missed
        stream = _Stream(self, watcher, public, resume_point(last_event_id))
        return EventSourceResponse(
            stream.events(first),
            ping=self.settings.heartbeat,
            send_timeout=self.settings.send_timeout,
            background=BackgroundTask(watcher.close),
        )


class _Bucket:
    """A token bucket: ``rate`` tokens a second, at most ``size`` kept."""

    def __init__(self, rate: float, size: int) -> None:
        self.rate = rate
        self.size = float(size)
        self.tokens = float(size)
        self.at = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.size, self.tokens + (now - self.at) * self.rate)
        self.at = now

    def wait(self) -> float:
        """Seconds until a token is there (0: now)."""
        self._refill()
        return max(0.0, (1 - self.tokens) / self.rate)

    def take(self) -> None:
        self._refill()
        self.tokens = max(0.0, self.tokens - 1)


class _Stream:
    def __init__(
        self, tracker: Tracker, watcher: Watcher, public: bool, resume: str | None
    ) -> None:
        self.tracker = tracker
        self.watcher = watcher
        self.public = public
        self.sid = resume  # the newest stage entry the client has
        self.last_key: Key = (0, 0, 0)
        self.last_body = ""
        self.sent_status = False  # _send sent the view's status
        self.retry: int | None = tracker.settings.retry_ms

    async def events(self, first: View) -> AsyncIterator[ServerSentEvent]:
        try:
            async for event in self._run(first):
                yield event
        finally:
            self.watcher.close()

    async def _run(self, first: View) -> AsyncIterator[ServerSentEvent]:
        settings = self.tracker.settings
        bucket = _Bucket(settings.max_rate, settings.burst)
        view: View | None = first
        if self.sid is None or _sid_key(self.sid) > _sid_key(first.sid):
            self.sid = first.sid  # a fresh start: the current status says it all
        while view is not None:
            ended = self.sent_status = False
            async for event in self._send(view):
                yield event
                ended = event.event == "end"
            if ended:
                return
            if self.sent_status:
                bucket.take()  # a status left out (nothing new) takes no token
            view = await self.watcher.wait()
            while view is not None:  # over the rate: wait for a token, the newest state wins
                wait = bucket.wait()
                if wait <= 0:
                    break
                newer = await self.watcher.wait(within=wait)
                if self.watcher.closed:
                    return
                view = newer or view

    async def _send(self, view: View) -> AsyncIterator[ServerSentEvent]:
        """The stage entries the client lacks, then the status (unless it adds nothing), then
        ``end`` once the delivery is closed."""
        assert self.sid is not None
        if _sid_key(view.sid) > _sid_key(self.sid):
            for entry in await self.watcher.topic.stages_after(self.sid):
                if _sid_key(entry.id) <= _sid_key(self.sid):
                    continue
                yield self._stage_event(entry)
                if entry.stage in _TERMINAL:
                    yield self._end(entry.stage, f"{entry.id}.{entry.lver}")
                    return
        key = (*_sid_key(view.sid), view.lver)
        if key < self.last_key:
            return  # an older read than what was sent
        body = view.json(public=self.public)
        event_id = f"{view.sid}.{view.lver}"
        if body != self.last_body:
            self.sent_status = True
            yield self._event(body, event_id)
        self.last_key = key
        if view.closed:
            yield self._end(view.status.stage.value, event_id)

    def _stage_event(self, entry: StageRecord) -> ServerSentEvent:
        self.sid = entry.id
        body = _public(entry.status) if self.public else entry.status
        self.last_key = (*_sid_key(entry.id), entry.lver)
        return self._event(body, f"{entry.id}.{entry.lver}")

    def _event(self, body: str, event_id: str) -> ServerSentEvent:
        self.last_body = body
        event = ServerSentEvent(data=body, event="status", id=event_id, retry=self.retry)
        self.retry = None  # on the first event only
        return event

    def _end(self, stage: str, event_id: str) -> ServerSentEvent:
        return ServerSentEvent(
            data=orjson.dumps({"stage": stage}).decode(), event="end", id=event_id
        )
