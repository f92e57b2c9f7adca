"""Who watches which delivery in this replica, and how changes reach them.

Every change of a delivery's status is announced on the Redis channel ``<p>:tracking:<id>``
(by the service's writes and by the telemetry consumer of whichever replica applied the fix). A
replica holds **one** pub/sub connection (:class:`Hub`) and subscribes to a delivery's channel
while it has local watchers of it. Per watched delivery a :class:`Topic` reads the status once per
announcement (announcements that arrive while it reads are answered by one more read), and when
the clock alone changes it (``pickupETA`` reached without telemetry, telemetry turning stale), and
offers it to its :class:`Watcher` s. A watcher keeps only the newest status (a slow client gets
the latest state and never holds anyone up); the stage entries in between are read from Redis
when it sends, so none is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from dronecommon.telemetry import untraced

from .errors import DeliveryNotFound, TooManyWatchers
from .repository import StageRecord
from .service import DeliveryService
from .views import View

logger = logging.getLogger("delivery.watch")


class Watcher:
    """One stream's mailbox: the newest status offered, and whether it is closed."""

    def __init__(self, topic: Topic) -> None:
        self.topic = topic
        self.latest: View | None = None
        self.closed = False
        self._changed = asyncio.Event()
        self._left = False

    def offer(self, view: View | None) -> None:
        """The topic's newest status (None: the delivery is gone). Never blocks."""
        if view is None:
            self.closed = True
        else:
            self.latest = view
        self._changed.set()

    async def wait(self, within: float | None = None) -> View | None:
        """The newest status offered since the last call (None when closed or on timeout)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), within)
        self._changed.clear()
        if self.closed:
            return None
        view, self.latest = self.latest, None
        return view

    def close(self) -> None:
        """Leave (idempotent): the topic stops with its last watcher."""
        self.closed = True
        self._changed.set()
        if not self._left:
            self._left = True
            self.topic.leave(self)


class Topic:
    """One watched delivery in this replica: reads its status when told and offers it."""

    def __init__(self, hub: Hub, delivery_id: str) -> None:
        self.hub = hub
        self.delivery_id = delivery_id
        self.channel = hub.deliveries.repository.channel(delivery_id)
        self.watchers: set[Watcher] = set()
        self._wake = asyncio.Event()
        self._deadline: float | None = None
        self._stages: dict[str, asyncio.Future[list[StageRecord]]] = {}
        self._sid = ""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"watch-{self.delivery_id}")

    def notify(self, kind: str) -> None:
        """An announcement (``f`` a fix, ``s`` a stage entry, ``u`` another change)."""
        self._wake.set()

    async def stages_after(self, sid: str) -> list[StageRecord]:
        """The delivery's stage entries after ``sid`` (one read shared by the watchers)."""
        found = self._stages.get(sid)
        if found is None or (found.done() and found.exception() is not None):
            found = asyncio.ensure_future(self.hub.deliveries.stages_after(self.delivery_id, sid))
            self._stages[sid] = found
        return await asyncio.shield(found)

    @property
    def done(self) -> bool:
        """The topic stopped (its delivery went away)."""
        return self._task is not None and self._task.done()

    def leave(self, watcher: Watcher) -> None:
        self.watchers.discard(watcher)
        self.hub.watchers -= 1
        if not self.watchers:
            self.hub.drop(self)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        with untraced():
            await self._follow()

    async def _follow(self) -> None:
        while True:
            timeout = None
            if self._deadline is not None:
                timeout = max(0.0, self._deadline - time.monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            try:
                async with self.hub.reads:
                    view = await self.hub.deliveries.view(self.delivery_id)
            except DeliveryNotFound:
                self._offer(None)
                return
            except (RedisError, OSError):
                logger.warning("reading %s failed; trying again", self.delivery_id, exc_info=True)
                self._deadline = time.monotonic() + 1.0
                continue
            self._deadline = None
            if view.next_change is not None:
                later = (view.next_change - self.hub.deliveries.clock()).total_seconds()
                self._deadline = time.monotonic() + max(0.0, later) + 0.01
            if view.sid != self._sid:
                self._sid = view.sid
                self._stages.clear()  # reads made before this entry are incomplete now
            self._offer(view)

    def _offer(self, view: View | None) -> None:
        for watcher in list(self.watchers):
            watcher.offer(view)


class Hub:
    """This replica's watchers: one pub/sub connection, a topic per watched delivery."""

    def __init__(
        self,
        redis: Redis,
        deliveries: DeliveryService,
        *,
        max_watchers: int,
        retry_after: int,
        max_reads: int = 32,
    ) -> None:
        self.redis = redis
        self.deliveries = deliveries
        self.max_watchers = max_watchers
        self.retry_after = retry_after
        # The topics' reads at once: what they leave of the Redis pool serves the requests.
        self.reads = asyncio.Semaphore(max_reads)
        self.topics: dict[str, Topic] = {}
        self.watchers = 0
        self._pubsub: PubSub | None = None
        self._lock = asyncio.Lock()
        self._subscribed_once = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self._closing = False
        self._stopped_topics: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._pubsub = self.redis.pubsub()
        self._reader = asyncio.create_task(self._read(), name="watch-pubsub")

    async def join(self, delivery_id: str) -> Watcher:
        """A new watcher of ``delivery_id`` (503 beyond ``max_watchers``)."""
        if self._closing:
            raise TooManyWatchers("The service is stopping.", retry_after=1)
        if self.watchers >= self.max_watchers:
            raise TooManyWatchers(
                f"This replica serves {self.max_watchers} tracking streams already.",
                retry_after=self.retry_after,
            )
        topic = self.topics.get(delivery_id)
        if topic is not None and topic.done:
            topic = None  # its delivery went away just now: a fresh topic reads it again
        if topic is None:
            topic = self.topics[delivery_id] = Topic(self, delivery_id)
            topic.start()
            try:
                await self._command("subscribe", topic.channel)
            except BaseException:
                self.topics.pop(delivery_id, None)
                await topic.stop()
                raise
            self._subscribed_once.set()
        watcher = Watcher(topic)
        topic.watchers.add(watcher)
        self.watchers += 1
        return watcher

    def drop(self, topic: Topic) -> None:
        """The topic's last watcher left: stop it and unsubscribe."""
        if self.topics.get(topic.delivery_id) is topic:
            del self.topics[topic.delivery_id]
        task = asyncio.ensure_future(self._retire(topic))
        self._stopped_topics.add(task)
        task.add_done_callback(self._stopped_topics.discard)

    async def _retire(self, topic: Topic) -> None:
        await topic.stop()
        if topic.delivery_id not in self.topics and not self._closing:
            with contextlib.suppress(RedisError, OSError):
                await self._command("unsubscribe", topic.channel)

    async def _command(self, name: str, channel: str) -> None:
        pubsub = self._pubsub
        if pubsub is None:
            raise RuntimeError("the hub is not started")
        async with self._lock:  # subscribe and unsubscribe reach Redis in call order
            command: Callable[..., Any] = getattr(pubsub, name)
            await command(channel)

    async def _read(self) -> None:
        """Dispatch announcements to the topics; after a lost connection, re-read every topic
        (redis-py subscribes again on reconnect)."""
        pubsub = self._pubsub
        assert pubsub is not None
        await self._subscribed_once.wait()  # the connection exists from the first subscribe on
        failures = 0
        while not self._closing:
            try:
                message = await pubsub.get_message(timeout=None)
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:  # a lost connection above all; the streams must not go deaf
                failures += 1
                logger.warning("tracking announcements: reading failed", exc_info=True)
                await asyncio.sleep(min(5.0, 0.1 * 2**failures))
                for each in list(self.topics.values()):
                    each.notify("s")
                continue
            if message is None:
                continue
            kind = message.get("type")
            channel = _text(message.get("channel"))
            topic = self._topic_of(channel)
            if topic is None:
                continue
            if kind == "message":
                topic.notify(_text(message.get("data")))
            elif kind == "subscribe":
                topic.notify("s")  # subscribed: read once, so nothing before it is missed

    def _topic_of(self, channel: str) -> Topic | None:
        delivery_id = channel.rpartition(":tracking:")[2]
        topic = self.topics.get(delivery_id)
        return topic if topic is not None and topic.channel == channel else None

    async def close(self) -> None:
        """Close every stream and the pub/sub connection."""
        self._closing = True
        for topic in list(self.topics.values()):
            for watcher in list(topic.watchers):
                watcher.offer(None)
            await topic.stop()
        self.topics.clear()
        for task in list(self._stopped_topics):
            task.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._pubsub.aclose()  # type: ignore[no-untyped-call]


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
