"""Fixes over Azure Event Hubs: the transport in Azure (keyless, workload identity).

* **Publisher**: the SDK's producer in *buffered mode* (``EventHubProducerClient(...,
  buffered_mode=True)``). Each fix is one event (JSON body, ``application/json``) sent with
  ``partition_key`` = the drone id, so a drone's fixes stay in one partition, in order; the SDK
  maps keys to partitions on the client (the service's own hash) and sends full batches per
  partition, at the latest after ``max_wait_time``. A batch the service refused is reported to
  ``on_error``: logged and counted (:attr:`~.base.FixPublisher.failed`).
* **Consumer**: ``EventHubConsumerClient.receive_batch`` with a ``BlobCheckpointStore``
  (``azure-eventhub-checkpointstoreblob-aio``) in the container ``checkpoint_container``: the
  processes of one consumer group share the partitions through the store (load balancing), and a
  partition's checkpoint is updated to the last event of a batch only after the handler has
  returned. A handler that raises gets the same batch again after a backoff (the partition waits:
  its order is kept), until it succeeds or the consumer stops (then the partition's next owner
  reads from the last checkpoint).
* **Identity**: the namespace (``<name>.servicebus.windows.net``) and the storage account URL
  with the process's credential (:func:`dronecommon.auth.credentials.create_credential`: workload
  identity in AKS); a connection string only for the Event Hubs emulator.

Nothing here does I/O until the first call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any

from azure.core.credentials_async import AsyncTokenCredential
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient, PartitionContext
from azure.eventhub.extensions.checkpointstoreblobaio import BlobCheckpointStore

from dronecommon.settings import TelemetryStreamSettings

from .base import FixConsumer, FixHandler, FixPublisher, FixStreamNotReadyError
from .model import Fix, FixDecodeError, decode_fix, encode_fix

logger = logging.getLogger("dronecommon.fixes.eventhubs")

CONTENT_TYPE = "application/json"
RETRY_BASE = 0.2
RETRY_MAX = 10.0


def _need(value: str | None, name: str) -> str:
    if not value:
        raise ValueError(
            f"the eventhubs telemetry transport needs TELEMETRY_STREAM__{name.upper()}"
        )
    return value


def create_producer(
    settings: TelemetryStreamSettings,
    credential: AsyncTokenCredential | None,
    publisher: EventHubsFixPublisher,
) -> EventHubProducerClient:
    """The SDK's buffered producer, reporting to ``publisher``'s callbacks."""
    secret = settings.eventhubs_connection_string
    if secret is not None:
        return EventHubProducerClient.from_connection_string(
            secret.get_secret_value(),
            eventhub_name=settings.eventhub_name,
            buffered_mode=True,
            on_success=publisher.on_success,
            on_error=publisher.on_error,
        )
    if credential is None:
        raise ValueError("the eventhubs telemetry transport needs a credential")
    return EventHubProducerClient(
        fully_qualified_namespace=_need(settings.eventhubs_namespace, "eventhubs_namespace"),
        eventhub_name=settings.eventhub_name,
        credential=credential,
        buffered_mode=True,
        on_success=publisher.on_success,
        on_error=publisher.on_error,
    )


def create_consumer_client(
    settings: TelemetryStreamSettings, credential: AsyncTokenCredential | None
) -> EventHubConsumerClient:
    """The SDK's consumer for ``settings.consumer_group``, checkpointing in Blob Storage."""
    if credential is None:
        raise ValueError("the eventhubs telemetry transport needs a credential")
    store = BlobCheckpointStore(
        _need(settings.checkpoint_account_url, "checkpoint_account_url"),
        settings.checkpoint_container,
        credential=credential,
    )
    secret = settings.eventhubs_connection_string
    if secret is not None:
        return EventHubConsumerClient.from_connection_string(
            secret.get_secret_value(),
            consumer_group=settings.consumer_group,
            eventhub_name=settings.eventhub_name,
            checkpoint_store=store,
        )
    return EventHubConsumerClient(
        fully_qualified_namespace=_need(settings.eventhubs_namespace, "eventhubs_namespace"),
        eventhub_name=settings.eventhub_name,
        consumer_group=settings.consumer_group,
        credential=credential,
        checkpoint_store=store,
    )


class EventHubsFixPublisher(FixPublisher):
    """Publishes through a buffered ``EventHubProducerClient`` (set ``producer`` before use)."""

    def __init__(self, *, readiness_timeout: float = 2.0) -> None:
        super().__init__()
        self.readiness_timeout = readiness_timeout
        self.producer: EventHubProducerClient | None = None

    @classmethod
    def create(
        cls, settings: TelemetryStreamSettings, credential: AsyncTokenCredential | None
    ) -> EventHubsFixPublisher:
        publisher = cls(readiness_timeout=settings.readiness_timeout)
        publisher.producer = create_producer(settings, credential, publisher)
        return publisher

    def _producer(self) -> EventHubProducerClient:
        if self.producer is None:
            raise RuntimeError("EventHubsFixPublisher has no producer")
        return self.producer

    async def publish(self, fixes: Sequence[Fix]) -> None:
        producer = self._producer()
        for fix in fixes:
            event = EventData(encode_fix(fix))
            event.content_type = CONTENT_TYPE
            await producer.send_event(event, partition_key=fix.drone_id)

    async def on_success(self, events: list[Any], partition_id: str | None) -> None:
        self.published += len(events)

    async def on_error(self, events: list[Any], partition_id: str | None, error: Exception) -> None:
        self.failed += len(events)
        logger.warning(
            "Event Hubs refused %d fixes (partition %s): %r", len(events), partition_id, error
        )

    async def check_ready(self) -> None:
        try:
            await asyncio.wait_for(
                self._producer().get_eventhub_properties(), timeout=self.readiness_timeout
            )
        except Exception as exc:
            raise FixStreamNotReadyError(f"event hub: {exc!r}") from exc

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.close(flush=True)


class EventHubsFixConsumer(FixConsumer):
    def __init__(
        self,
        client: EventHubConsumerClient,
        *,
        max_batch: int = 500,
        receive_wait: float = 1.0,
        start_at_latest: bool = True,
        readiness_timeout: float = 2.0,
    ) -> None:
        self.client = client
        self.max_batch = max_batch
        self.receive_wait = receive_wait
        self.start_at_latest = start_at_latest
        self.readiness_timeout = readiness_timeout
        self._stopping = asyncio.Event()

    @classmethod
    def create(
        cls, settings: TelemetryStreamSettings, credential: AsyncTokenCredential | None
    ) -> EventHubsFixConsumer:
        return cls(
            create_consumer_client(settings, credential),
            max_batch=settings.max_batch,
            receive_wait=settings.receive_wait,
            start_at_latest=settings.start_at_latest,
            readiness_timeout=settings.readiness_timeout,
        )

    async def run(self, handler: FixHandler) -> None:
        async def on_batch(context: PartitionContext, events: list[EventData]) -> None:
            if not events:
                return
            fixes = _decode(events)
            failures = 0
            while fixes:
                try:
                    await handler(fixes)
                    break
                except Exception:
                    failures += 1
                    delay = min(RETRY_MAX, RETRY_BASE * 2 ** min(failures - 1, 16))
                    logger.warning(
                        "partition %s: handler failed (attempt %d); retrying in %.1fs",
                        context.partition_id,
                        failures,
                        delay,
                        exc_info=True,
                    )
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stopping.wait(), timeout=delay)
                    if self._stopping.is_set():
                        return  # no checkpoint: the partition's next owner reads it again
            await context.update_checkpoint(events[-1])

        async def on_error(context: PartitionContext | None, error: Exception) -> None:
            partition = context.partition_id if context is not None else "-"
            logger.warning("Event Hubs receive error (partition %s): %r", partition, error)

        await self.client.receive_batch(
            on_event_batch=on_batch,
            max_batch_size=self.max_batch,
            max_wait_time=self.receive_wait,
            starting_position="@latest" if self.start_at_latest else "-1",
            on_error=on_error,
        )

    async def stop(self) -> None:
        self._stopping.set()
        await self.client.close()

    async def check_ready(self) -> None:
        try:
            await asyncio.wait_for(
                self.client.get_eventhub_properties(), timeout=self.readiness_timeout
            )
        except Exception as exc:
            raise FixStreamNotReadyError(f"event hub: {exc!r}") from exc

    async def close(self) -> None:
        await self.client.close()


def _decode(events: Sequence[EventData]) -> list[Fix]:
    fixes: list[Fix] = []
    for event in events:
        try:
            fixes.append(decode_fix(event.body_as_str()))
        except (FixDecodeError, TypeError) as exc:
            logger.warning("a malformed fix skipped (sequence %s): %s", event.sequence_number, exc)
    return fixes
