"""Redis Streams transport: the embedded local default, with Service Bus semantics.

Key layout (one queue ``name``; the braces are a Redis Cluster hash tag, so both keys live in
the same slot and the Lua scripts may touch both atomically)::

    queue:{name}              the queue: a stream, one entry per message
    queue:{name}:deadletter   its dead-letter queue: a stream, one entry per dead letter

Each entry carries ``message_id``, ``body``, ``content_type`` and ``properties`` (JSON object of
strings), plus ``enqueued_at`` (milliseconds) and ``deliveries`` (deliveries before this entry)
when a message was re-queued. Dead letters add ``reason``, ``description``, ``source_id`` and
``delivery_count``.

Receivers form one consumer group (``QueueSettings.consumer_group``, created idempotently with
``MKSTREAM`` from id ``0``); each receiver is one consumer with a unique name. How the Service Bus
semantics map onto streams:

* **Lock** = the entry is in the group's pending list (PEL) owned by this consumer; the lock
  token is (consumer, times-delivered). Its age is the PEL idle time. Every settlement first checks
  the token inside a Lua script, so a receiver whose lock was taken over gets
  :class:`MessageLockLostError` instead of settling someone else's delivery.
* **Lock renewal**: every ``lock_duration / 2`` the receiver resets the idle time of the entries
  its handlers hold with ``XCLAIM ... JUSTID`` (which does not count a delivery) — only for
  entries it still owns.
* **Expired locks** (a dead or stalled consumer): entries idle longer than ``lock_duration`` are
  taken over with ``XAUTOCLAIM`` by any live receiver, which counts a new delivery.
* **Complete** = ``XACK`` + ``XDEL`` in one script: the stream only ever holds unfinished work, so
  it is never trimmed (no ``MAXLEN``: trimming could drop unprocessed messages).
* **Abandon** = in one script, ``XACK`` + ``XDEL`` the entry and ``XADD`` a copy carrying the
  delivery count so far: the message is redeliverable at once (by any receiver) instead of after
  the lock would have expired. Its stream id changes and it joins the back of the queue; its
  ``message_id``, properties and ``enqueued_at`` do not change.
* **Delivery count** = ``deliveries`` carried in the entry + the PEL's times-delivered.
* **Dead-lettering** = ``XADD`` to the dead-letter stream + ``XACK`` + ``XDEL``, atomically.
  Abandoning a message whose delivery count has reached ``max_delivery_count`` dead-letters it
  with the reason ``MaxDeliveryCountExceeded``; so does taking over an over-delivered entry (a
  message that keeps killing its consumers).
* **Prefetch**: one ``XREADGROUP`` asks for at most ``min(free handler slots, prefetch)``
  entries and every entry read goes straight to a handler. Entries are never buffered unhandled,
  because a buffered entry's lock would age without being renewed.

At-least-once: a crash between the handler's side effects and ``complete`` redelivers the
message. On shutdown, entries read but not yet handed to a handler are re-queued without counting
a delivery.

Modules: :mod:`.layout` (keys and entry fields), :mod:`.scripts` (the Lua scripts, ``lua/*.lua``),
:mod:`.client` (the queue's Redis client), :mod:`.sender`, :mod:`.message` (settlement),
:mod:`.receiver` and :mod:`.deadletters`.
"""

from dronecommon.messaging.redis_streams.client import queue_redis_client
from dronecommon.messaging.redis_streams.deadletters import RedisDeadLetterStore
from dronecommon.messaging.redis_streams.layout import dead_letter_key, stream_key
from dronecommon.messaging.redis_streams.message import RedisStreamMessage
from dronecommon.messaging.redis_streams.receiver import RedisStreamReceiver
from dronecommon.messaging.redis_streams.sender import RedisStreamSender

__all__ = [
    "RedisDeadLetterStore",
    "RedisStreamMessage",
    "RedisStreamReceiver",
    "RedisStreamSender",
    "dead_letter_key",
    "queue_redis_client",
    "stream_key",
]
