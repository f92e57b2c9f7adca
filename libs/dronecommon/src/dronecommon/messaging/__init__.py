"""The delivery-request queue: one small interface, two transports.

``create_sender`` / ``create_receiver`` / ``create_dead_letter_store`` (:mod:`.factory`) pick
Azure Service Bus or Redis Streams from :class:`~dronecommon.settings.QueueSettings`. The parts:

- :mod:`.base` — the interface and the semantics both transports share;
- :mod:`.engine` — the receive engine both receivers run on (concurrency, settlement, shutdown);
- :mod:`.redis_streams` and :mod:`.servicebus` — one package per transport.
"""

from dronecommon.messaging.base import (
    MAX_DELIVERY_COUNT_EXCEEDED,
    DeadLetter,
    DeadLetterStore,
    Handler,
    MessageAlreadySettledError,
    MessageLockLostError,
    MessageReceiver,
    MessageSender,
    MessagingError,
    OutgoingMessage,
    QueueNotReadyError,
    ReceivedMessage,
    Settlement,
)
from dronecommon.messaging.factory import (
    create_dead_letter_store,
    create_receiver,
    create_sender,
)

__all__ = [
    "MAX_DELIVERY_COUNT_EXCEEDED",
    "DeadLetter",
    "DeadLetterStore",
    "Handler",
    "MessageAlreadySettledError",
    "MessageLockLostError",
    "MessageReceiver",
    "MessageSender",
    "MessagingError",
    "OutgoingMessage",
    "QueueNotReadyError",
    "ReceivedMessage",
    "Settlement",
    "create_dead_letter_store",
    "create_receiver",
    "create_sender",
]
