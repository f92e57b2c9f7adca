"""What every channel is: ``send`` one notification, ``check`` readiness, ``close``.

A send either returns the provider's reference (the SMTP server's answer, an ACS operation or
message id, the webhook's status) or raises :class:`TransientSendError` (retried with backoff) or
:class:`PermanentSendError` (the item fails at once: a recipient refused, a webhook target the
rules forbid).
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from notifier.records import Item


class SendError(Exception):
    """A send that did not happen; the message says why (kept on the item)."""


class TransientSendError(SendError):
    """It may work later: retried with backoff."""


class PermanentSendError(SendError):
    """It will not work: the item fails now."""


class Sender(Protocol):
    async def send(self, item: Item, now: dt.datetime) -> str: ...

    async def check(self) -> None: ...

    async def close(self) -> None: ...
