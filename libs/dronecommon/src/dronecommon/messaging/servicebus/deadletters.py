"""The dead-letter sub-queue of one Service Bus queue: list (peek) and replay chosen entries."""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import Sequence
from typing import Any

from azure.servicebus import ServiceBusReceivedMessage, ServiceBusReceiveMode, ServiceBusSubQueue
from azure.servicebus.aio import ServiceBusClient, ServiceBusReceiver

from dronecommon.messaging.base import DeadLetter
from dronecommon.messaging.servicebus.clients import bounded_probe
from dronecommon.messaging.servicebus.convert import replay_copy, to_dead_letter


class ServiceBusDeadLetterStore:
    """The dead-letter sub-queue of one Service Bus queue; ids are sequence numbers."""

    def __init__(
        self,
        client: ServiceBusClient,
        queue_name: str,
        *,
        readiness_timeout: float = 2.0,
        receive_wait: float = 1.0,
        probe_client: ServiceBusClient | None = None,
        owns_client: bool = True,
    ) -> None:
        self.queue_name = queue_name
        self.readiness_timeout = readiness_timeout
        self.receive_wait = receive_wait
        self._client = client
        self._probe_client = probe_client or client
        self._owns_client = owns_client

    def _dead_letter_receiver(self, **options: Any) -> ServiceBusReceiver:
        return self._client.get_queue_receiver(
            self.queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER, **options
        )

    async def list(self, limit: int = 100) -> builtins.list[DeadLetter]:
        letters: builtins.list[DeadLetter] = []
        async with self._dead_letter_receiver() as receiver:
            next_sequence = 0
            while len(letters) < limit:
                batch = await receiver.peek_messages(
                    max_message_count=limit - len(letters), sequence_number=next_sequence
                )
                if not batch:
                    break
                letters += [to_dead_letter(message) for message in batch]
                next_sequence = max(int(m.sequence_number or 0) for m in batch) + 1
        return letters[:limit]

    async def replay(self, ids: Sequence[str]) -> builtins.list[str]:
        wanted = set(ids)
        replayed: builtins.list[str] = []
        if not wanted:
            return replayed
        held: builtins.list[ServiceBusReceivedMessage] = []
        async with (
            self._dead_letter_receiver(
                receive_mode=ServiceBusReceiveMode.PEEK_LOCK, max_wait_time=self.receive_wait
            ) as receiver,
            self._client.get_queue_sender(self.queue_name) as sender,
        ):
            try:
                while len(replayed) < len(wanted):
                    batch = await receiver.receive_messages(
                        max_message_count=50, max_wait_time=self.receive_wait
                    )
                    if not batch:
                        break
                    for message in batch:
                        key = str(message.sequence_number)
                        if key in wanted and key not in replayed:
                            await sender.send_messages(replay_copy(message))
                            await receiver.complete_message(message)
                            replayed.append(key)
                        else:
                            # Keep it locked until the scan ends so it is not received again.
                            held.append(message)
            finally:
                for message in held:
                    with contextlib.suppress(Exception):
                        await receiver.abandon_message(message)
        return replayed

    async def check_ready(self) -> None:
        probe = self._probe_client.get_queue_receiver(
            self.queue_name, sub_queue=ServiceBusSubQueue.DEAD_LETTER
        )
        await bounded_probe(
            probe,
            lambda: probe.peek_messages(max_message_count=1),
            self.readiness_timeout,
            f"service bus dead letters {self.queue_name}",
        )

    async def close(self) -> None:
        if self._owns_client:
            await self._client.close()
            if self._probe_client is not self._client:
                await self._probe_client.close()
