"""Azure Service Bus transport (``azure.servicebus.aio``), used in Azure.

* **Clients** come from a connection string (the emulator:
  ``Endpoint=sb://127.0.0.1:PORT;...;UseDevelopmentEmulator=true;``) or from a fully qualified
  namespace plus an ``AsyncTokenCredential`` (the workload identity); see
  :func:`servicebus_clients`.
* **Sending**: one ``ServiceBusMessage`` per message (body, ``message_id`` for the broker's
  duplicate detection, content type, application properties with the trace context). The SDK's
  sender is not coroutine-safe, so sends on one sender are serialised with a lock.
* **Receiving**: ``PEEK_LOCK`` with ``max_wait_time`` and the SDK's prefetch buffer off
  (``prefetch_count=0``): each receive call asks the broker for the engine's free handler slots
  (at most ``prefetch``), so no message sits locked in a buffer, its lock running out unrenewed,
  while every handler is busy. Each message is registered with an ``AutoLockRenewer`` as it is
  received (the SDK renews shortly before the lock the broker granted runs out — the lock
  duration and the maximum delivery count are properties of the queue, set by the
  infrastructure, not by this client). Settlement maps to
  ``complete_message``, ``abandon_message`` and ``dead_letter_message(reason,
  error_description)``; the SDK's lock-lost and already-settled errors become
  :class:`MessageLockLostError` and :class:`MessageAlreadySettledError`. The SDK's renewer
  checks its locks once a second, so ``stop()`` may take up to a second longer than ``grace``
  while it winds down.
* **Delivery count**: the SDK reports the AMQP header's count of *earlier* attempts (0 on the
  first delivery); one is added so both transports say 1 on the first delivery.
* **Dead letters**: the queue's ``$DeadLetterQueue`` sub-queue. Listing peeks it; replaying
  receives the chosen messages (by sequence number), sends copies to the queue and completes
  them. A copy gets the message id ``"<original id>:replay:<sequence number>"`` so the broker's
  duplicate detection does not drop it as a repeat of the original, while replaying the same dead
  letter twice is still caught.
* **Readiness** opens a short-lived link — a sender link for senders, a peek for receivers and
  the dead-letter store — through a client without retries, bounded by ``readiness_timeout``.
  When the bound is hit the probe's socket is closed explicitly: the SDK does not close a
  connection whose AMQP handshake was cancelled, which would leak it on a silent listener.

Modules: :mod:`.clients` (clients and readiness probes), :mod:`.convert` (message conversions),
:mod:`.sender`, :mod:`.receiver` and :mod:`.deadletters`.
"""

from dronecommon.messaging.servicebus.clients import servicebus_clients
from dronecommon.messaging.servicebus.deadletters import ServiceBusDeadLetterStore
from dronecommon.messaging.servicebus.receiver import (
    ServiceBusQueueMessage,
    ServiceBusQueueReceiver,
)
from dronecommon.messaging.servicebus.sender import ServiceBusQueueSender

__all__ = [
    "ServiceBusDeadLetterStore",
    "ServiceBusQueueMessage",
    "ServiceBusQueueReceiver",
    "ServiceBusQueueSender",
    "servicebus_clients",
]
