"""The Event Hubs telemetry transport at the SDK boundary.

There is no Event Hubs (nor Blob Storage) on these machines, so the SDK's producer and consumer
clients are replaced by fakes (``FakeProducer``, ``FakeConsumerClient``) that record what the
transport asks of them; the events they carry are the SDK's own ``EventData``. The real SDK
clients are built (keyless and from a connection string) to check the wiring, without I/O.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, cast

import pytest
from azure.core.credentials import AccessToken
from azure.core.credentials_async import AsyncTokenCredential
from azure.eventhub import EventData
from azure.eventhub.aio import EventHubConsumerClient, EventHubProducerClient
from pydantic import SecretStr

from dronecommon.fixes import (
    Fix,
    FixStreamNotReadyError,
    Phase,
    create_fix_consumer,
    create_fix_publisher,
    decode_fix,
    encode_fix,
)
from dronecommon.fixes.eventhubs import EventHubsFixConsumer, EventHubsFixPublisher
from dronecommon.settings import TelemetryStreamSettings

T0 = dt.datetime(2030, 1, 1, 10, 0, tzinfo=dt.UTC)


def fix(drone: str, seq: int) -> Fix:
    return Fix(drone, "d-1", T0, seq, 47.6, -122.3, 120.0, 40.0, 90.0, 99.0, Phase.TO_DROPOFF)


class FakeCredential(AsyncTokenCredential):
    """Never asked for a token here: nothing connects."""

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        raise AssertionError("no token should be requested without I/O")

    async def close(self) -> None:
        return None

    async def __aenter__(self) -> FakeCredential:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


EH_SETTINGS = TelemetryStreamSettings(
    transport="eventhubs",
    eventhubs_namespace="fleet.servicebus.windows.net",
    eventhub_name="telemetry",
    consumer_group="delivery",
    checkpoint_account_url="https://fleet.blob.core.windows.net",
    readiness_timeout=0.2,
)


class FakeProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[EventData, str | None]] = []
        self.closed_with: list[bool] = []
        self.hang = False

    async def send_event(self, event: EventData, *, partition_key: str | None = None) -> None:
        self.sent.append((event, partition_key))

    async def get_eventhub_properties(self) -> dict[str, Any]:
        if self.hang:
            await asyncio.sleep(10)
        return {"eventhub_name": "telemetry", "partition_ids": ["0", "1"]}

    async def close(self, *, flush: bool = True) -> None:
        self.closed_with.append(flush)


def publisher_with(fake: FakeProducer) -> EventHubsFixPublisher:
    publisher = EventHubsFixPublisher(readiness_timeout=0.2)
    publisher.producer = cast(EventHubProducerClient, fake)
    return publisher


async def test_each_fix_is_one_json_event_keyed_by_its_drone() -> None:
    fake = FakeProducer()
    publisher = publisher_with(fake)
    fixes = [fix("drone-1", 1), fix("drone-2", 1), fix("drone-1", 2)]
    await publisher.publish(fixes)
    assert [key for _, key in fake.sent] == ["drone-1", "drone-2", "drone-1"]
    assert [decode_fix(event.body_as_str()) for event, _ in fake.sent] == fixes
    assert {event.content_type for event, _ in fake.sent} == {"application/json"}
    await publisher.on_success([e for e, _ in fake.sent], "0")
    await publisher.on_error([fake.sent[0][0]], "1", RuntimeError("throttled"))
    assert (publisher.published, publisher.failed) == (3, 1)
    await publisher.close()
    assert fake.closed_with == [True]  # whatever is buffered is sent before closing


async def test_publisher_readiness_is_bounded() -> None:
    fake = FakeProducer()
    publisher = publisher_with(fake)
    await publisher.check_ready()
    fake.hang = True
    with pytest.raises(FixStreamNotReadyError):
        await publisher.check_ready()


class FakeContext:
    def __init__(self, partition_id: str) -> None:
        self.partition_id = partition_id
        self.checkpoints: list[EventData] = []

    async def update_checkpoint(self, event: EventData | None = None) -> None:
        assert event is not None
        self.checkpoints.append(event)


OnBatch = Callable[[Any, list[EventData]], Awaitable[None]]


class FakeConsumerClient:
    """Delivers scripted batches to ``on_event_batch``, then waits until closed."""

    def __init__(self, batches: Sequence[tuple[FakeContext, list[EventData]]]) -> None:
        self.batches = list(batches)
        self.receive_kwargs: dict[str, Any] = {}
        self.closed = asyncio.Event()
        self.delivered = asyncio.Event()

    async def receive_batch(self, *, on_event_batch: OnBatch, **kwargs: Any) -> None:
        self.receive_kwargs = kwargs
        for context, events in self.batches:
            await on_event_batch(context, events)
        self.delivered.set()
        await self.closed.wait()

    async def get_eventhub_properties(self) -> dict[str, Any]:
        return {}

    async def close(self) -> None:
        self.closed.set()


def events(*fixes: Fix) -> list[EventData]:
    return [EventData(encode_fix(f)) for f in fixes]


async def test_batches_are_checkpointed_only_after_the_handler_returned() -> None:
    zero, one = FakeContext("0"), FakeContext("1")
    malformed = EventData(b'{"droneId": 1}')
    client = FakeConsumerClient(
        [
            (zero, events(fix("drone-1", 1), fix("drone-1", 2))),
            (one, [*events(fix("drone-2", 1)), malformed]),
            (zero, []),  # max_wait_time passed with nothing new
        ]
    )
    consumer = EventHubsFixConsumer(cast(EventHubConsumerClient, client), max_batch=300)
    got: list[list[tuple[str, int]]] = []
    failures = [1]

    async def handler(fixes: Sequence[Fix]) -> None:
        if fixes[0].drone_id == "drone-2" and failures[0]:
            failures[0] -= 1
            assert not one.checkpoints  # nothing acknowledged while the write fails
            raise RuntimeError("the durable write failed")
        got.append([(f.drone_id, f.seq) for f in fixes])

    task = asyncio.create_task(consumer.run(handler))
    await asyncio.wait_for(client.delivered.wait(), timeout=5)
    await consumer.stop()
    await asyncio.wait_for(task, timeout=5)
    assert got == [[("drone-1", 1), ("drone-1", 2)], [("drone-2", 1)]]
    assert [decode_fix(e.body_as_str()).seq for e in zero.checkpoints] == [2]
    assert one.checkpoints[-1] is client.batches[1][1][-1]  # the malformed one is passed over
    assert client.receive_kwargs["max_batch_size"] == 300
    assert client.receive_kwargs["starting_position"] == "@latest"


async def test_a_consumer_stopped_while_its_handler_fails_leaves_no_checkpoint() -> None:
    zero = FakeContext("0")
    client = FakeConsumerClient([(zero, events(fix("drone-1", 1)))])
    consumer = EventHubsFixConsumer(cast(EventHubConsumerClient, client))

    async def failing(fixes: Sequence[Fix]) -> None:
        raise RuntimeError("the store is down")

    task = asyncio.create_task(consumer.run(failing))
    await asyncio.sleep(0.3)
    await consumer.stop()
    await asyncio.wait_for(task, timeout=5)
    assert zero.checkpoints == []


async def test_the_real_sdk_clients_are_built_keyless_or_from_a_connection_string() -> None:
    credential = FakeCredential()
    publisher = create_fix_publisher(EH_SETTINGS, credential=credential)
    assert isinstance(publisher, EventHubsFixPublisher)
    assert isinstance(publisher.producer, EventHubProducerClient)
    assert publisher.producer._address.hostname == "fleet.servicebus.windows.net"
    assert publisher.producer.eventhub_name == "telemetry"
    await publisher.close()

    consumer = create_fix_consumer(EH_SETTINGS, consumer="c", credential=credential)
    assert isinstance(consumer, EventHubsFixConsumer)
    assert isinstance(consumer.client, EventHubConsumerClient)
    assert consumer.client._consumer_group == "delivery"
    await consumer.close()

    emulator = EH_SETTINGS.model_copy(
        update={
            "eventhubs_connection_string": SecretStr(
                "Endpoint=sb://localhost;SharedAccessKeyName=RootManageSharedAccessKey;"
                "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true"
            )
        }
    )
    local = create_fix_publisher(emulator)
    assert isinstance(local, EventHubsFixPublisher)
    await local.close()


def test_missing_eventhubs_settings_are_named() -> None:
    with pytest.raises(ValueError, match="EVENTHUBS_NAMESPACE"):
        create_fix_publisher(
            EH_SETTINGS.model_copy(update={"eventhubs_namespace": None}),
            credential=FakeCredential(),
        )
    with pytest.raises(ValueError, match="CHECKPOINT_ACCOUNT_URL"):
        create_fix_consumer(
            EH_SETTINGS.model_copy(update={"checkpoint_account_url": None}),
            consumer="c",
            credential=FakeCredential(),
        )
    with pytest.raises(ValueError, match="credential"):
        create_fix_publisher(EH_SETTINGS)
