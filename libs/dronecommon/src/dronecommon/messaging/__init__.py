"""The delivery-request queue: one small interface, two transports.

``create_sender`` / ``create_receiver`` / ``create_dead_letter_store`` pick Azure Service Bus or
Redis Streams from :class:`~dronecommon.settings.QueueSettings`; see :mod:`.base` for the
semantics both share, :mod:`.redis_streams` and :mod:`.servicebus` for how each provides them.
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
