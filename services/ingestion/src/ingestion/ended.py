"""Deliveries that end stop counting against their account's cap.

Each replica reads the delivery events (the delivery service's outbox, ``dronecommon.events``)
as one consumer of the ``ingestion`` group: a ``Completed`` or ``Cancelled`` event takes the
delivery out of its account's set of deliveries in progress (the account is the one recorded as
the delivery's owner at acceptance). Removing is idempotent, so an event handled twice (after a
crash before its acknowledgement) changes nothing. If this consumer stops, nothing is counted
forever: each delivery also stops counting ``in_progress_seconds`` after its acceptance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from dronecommon.events import DeliveryEvent, EventType

from .accounts import AccountStore

logger = logging.getLogger("ingestion.ended")

ENDINGS = frozenset({EventType.COMPLETED, EventType.CANCELLED})


class EndedDeliveries:
    """The events handler: ended deliveries leave their account's count."""

    def __init__(self, accounts: AccountStore) -> None:
        self.accounts = accounts

    async def handle(self, events: Sequence[DeliveryEvent]) -> None:
        """Two round trips per batch: the owners of its ended deliveries, then their removal."""
        ended = [event.delivery_id for event in events if event.type in ENDINGS]
        # A delivery without an owner record was not accepted here (or the record expired):
        # nothing was counted for it.
        owners = await self.accounts.owners_of(ended)
        removed = await self.accounts.all_ended(owners)
        if removed:
            logger.debug("%d of %d ended deliveries no longer in progress", removed, len(ended))
