"""The Service Bus transport with the real SDK client: readiness fails fast against a closed port,
a silent listener and a listener that answers the AMQP header and then falls silent; the factory
builds the transport's objects from the settings (no broker on these machines)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from dronecommon.messaging import (
    QueueNotReadyError,
    create_dead_letter_store,
    create_receiver,
    create_sender,
)
from dronecommon.messaging.servicebus import (
    ServiceBusDeadLetterStore,
    ServiceBusQueueReceiver,
    ServiceBusQueueSender,
)
from dronecommon.settings import QueueSettings
from dronetesting.servers import free_port, silent_listener

from .queue_readiness import check_every_client
from .servicebus_fakes import QUEUE


def emulator_settings(port: int) -> QueueSettings:
    return QueueSettings(
        transport="servicebus",
        name=QUEUE,
        readiness_timeout=0.5,
        servicebus_connection_string=SecretStr(
            f"Endpoint=sb://127.0.0.1:{port};SharedAccessKeyName=RootManageSharedAccessKey;"
            "SharedAccessKey=SAS_KEY_VALUE;UseDevelopmentEmulator=true;"
        ),
    )


@pytest.mark.parametrize("target", ["closed port", "silent listener", "header then silence"])
async def test_readiness_fails_fast_against_a_broker_that_does_not_answer(target: str) -> None:
    echo = 8 if target == "header then silence" else 0  # AMQP's protocol header
    async with silent_listener(echo_first=echo) as listening_port:
        port = free_port() if target == "closed port" else listening_port
        settings = emulator_settings(port)
        took, outcomes = await check_every_client(settings)
        assert took < 2.0
        assert all(isinstance(outcome, QueueNotReadyError) for outcome in outcomes), outcomes
        assert all("service bus" in str(outcome) for outcome in outcomes)
        if target == "closed port":
            assert all("connect call failed" in str(outcome).lower() for outcome in outcomes)
        else:
            assert all("no answer within 0.5s" in str(outcome) for outcome in outcomes)


def test_the_factory_needs_connection_details_for_service_bus() -> None:
    with pytest.raises(ValueError, match="connection string or a namespace"):
        create_sender(QueueSettings(transport="servicebus"))
    with pytest.raises(ValueError, match="credential"):
        create_receiver(
            QueueSettings(transport="servicebus", servicebus_namespace="x.servicebus.windows.net")
        )


async def test_the_factory_builds_service_bus_objects_from_the_settings() -> None:
    settings = emulator_settings(5672).model_copy(
        update={"max_concurrency": 4, "prefetch": 9, "receive_wait": 0.5}
    )
    sender = create_sender(settings)
    receiver = create_receiver(settings)
    store = create_dead_letter_store(settings)
    try:
        assert isinstance(sender, ServiceBusQueueSender)
        assert isinstance(receiver, ServiceBusQueueReceiver)
        assert isinstance(store, ServiceBusDeadLetterStore)
        assert (receiver.max_concurrency, receiver.prefetch, receiver.receive_wait) == (4, 9, 0.5)
    finally:
        for thing in (sender, receiver, store):
            await thing.close()
