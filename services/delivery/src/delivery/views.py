"""The tracking side of the delivery rules: a delivery's status now (live from its drone's
telemetry, or from the plan and the clock), the view the tracking streams read, its stage entries
and its history.

:class:`DeliveryViews` is the base of :class:`~delivery.service.DeliveryService`, which adds the
record rules (creation, changes, the owner's list, summaries).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

from dronecommon.auth.inbound import ANONYMOUS, Caller
from dronecommon.domain import TERMINAL_STAGES

from . import tracking
from .errors import DeliveryNotFound
from .live import LiveRules
from .records import DeliveryRecord
from .repository import DeliveryRepository, Snapshot, StageEntry, StageRecord
from .schemas import DeliveryStatus, TrackingEvent
from .settings import DeliverySettings

Clock = Callable[[], dt.datetime]


@dataclass(frozen=True, slots=True)
class View:
    """A delivery's status now, with what the tracking streams need besides: the id of its
    newest stage entry (``sid``), its tracking version (``lver``) and the next moment its status
    changes by the clock alone (``next_change``). ``rendered`` caches the JSON per view."""

    status: DeliveryStatus
    sid: str
    lver: int
    next_change: dt.datetime | None
    rendered: dict[bool, str] = field(default_factory=dict)

    def json(self, *, public: bool) -> str:
        """The status JSON: the owner's, or the public one (no drone id)."""
        text = self.rendered.get(public)
        if text is None:
            status = self.status.public() if public else self.status
            text = self.rendered[public] = status.model_dump_json(by_alias=True)
        return text

    @property
    def closed(self) -> bool:
        return self.status.stage in TERMINAL_STAGES


def stage_entry(status: DeliveryStatus, *, if_changed: bool = False) -> StageEntry:
    return StageEntry(status.stage.value, status.model_dump_json(by_alias=True), if_changed)


def visible(record: DeliveryRecord, viewer: Caller) -> bool:
    return viewer.may_access(record.owner.user_id, record.owner.account_id)


class DeliveryViews:
    def __init__(
        self, repository: DeliveryRepository, settings: DeliverySettings, clock: Clock
    ) -> None:
        self.repository = repository
        self.settings = settings
        self.clock = clock
        self.estimates = tracking.Estimates(
            speed_mph=settings.estimate_speed_mph,
            dispatch=dt.timedelta(minutes=settings.estimate_dispatch_minutes),
        )
        live = settings.live
        self.rules = LiveRules(
            stale_after=live.stale_after,
            handling_seconds=live.handling_seconds,
            speed_window=live.speed_window,
            min_speed_mph=live.min_speed_mph,
            eta_change_threshold=live.eta_change_threshold,
            fallback_speed_mph=settings.estimate_speed_mph,
        )

    def _status(self, snapshot: Snapshot, now: dt.datetime) -> DeliveryStatus:
        return tracking.status(snapshot.record, now, self.estimates, snapshot.live, self.rules)

    async def _snapshot(self, delivery_id: str, viewer: Caller = ANONYMOUS) -> Snapshot:
        snapshot = await self.repository.get(delivery_id)
        if snapshot is None or not visible(snapshot.record, viewer):
            raise DeliveryNotFound(delivery_id)
        return snapshot

    async def status(self, delivery_id: str, viewer: Caller = ANONYMOUS) -> DeliveryStatus:
        snapshot = await self._snapshot(delivery_id, viewer)
        return self._status(snapshot, self.clock())

    async def view(self, delivery_id: str, viewer: Caller = ANONYMOUS) -> View:
        """The status with what the tracking streams need; not found unless ``viewer`` may see
        the delivery."""
        snapshot = await self._snapshot(delivery_id, viewer)
        now = self.clock()
        record, live = snapshot.record, snapshot.live
        return View(
            self._status(snapshot, now),
            snapshot.sid,
            snapshot.lver,
            tracking.next_change(record, now, self.estimates, live, self.rules),
        )

    async def stages_after(self, delivery_id: str, sid: str) -> list[StageRecord]:
        """The delivery's stage entries after the entry ``sid``, oldest first."""
        return await self.repository.stages_after(delivery_id, sid)

    async def history(self, delivery_id: str, viewer: Caller = ANONYMOUS) -> list[TrackingEvent]:
        if not viewer.sees_everything:
            await self._snapshot(delivery_id, viewer)
        events = await self.repository.events(delivery_id)
        if not events:
            raise DeliveryNotFound(delivery_id)
        return tracking.history(events, self.clock())

    def _stage_entries(
        self, snapshot: Snapshot, after: DeliveryRecord, now: dt.datetime
    ) -> list[StageEntry]:
        """A write that changes the stage: its stage entry (the status with ``after``),
        preceded, for a delivery without telemetry, by the stage the clock had reached unless
        that one is already the newest entry (HeadedToDropoff at ``pickupETA``)."""
        entries = []
        if tracking.tracked(snapshot.record, snapshot.live) is None:
            entries.append(stage_entry(self._status(snapshot, now), if_changed=True))
        changed = Snapshot(after, snapshot.rev, snapshot.live)
        entries.append(stage_entry(self._status(changed, now)))
        return entries
