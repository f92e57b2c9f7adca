"""The delivery service's refusals; the library answers them as problem+json."""

from __future__ import annotations

from dronecommon import DomainError


class DeliveryNotFound(DomainError):
    """No delivery has the id (or it has expired)."""

    status = 404
    problem = "delivery-not-found"

    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"No delivery {delivery_id}.")
        self.delivery_id = delivery_id


class SummaryNotFound(DomainError):
    """A customer asked for another owner's summary (whose existence is not revealed)."""

    status = 404
    problem = "summary-not-found"

    def __init__(self, owner_id: str) -> None:
        super().__init__(f"No summary for owner {owner_id} is available to this caller.")


class DeliveryConflict(DomainError):
    """The change does not fit the delivery as it is."""

    status = 409
    problem = "delivery-conflict"


class DeliveryExists(DeliveryConflict):
    """A creating PUT for an id that holds a different delivery."""

    problem = "delivery-exists"

    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"Delivery {delivery_id} already exists with different content.")


class DeliveryClosed(DeliveryConflict):
    """The delivery is Completed or Cancelled, which this change cannot follow."""

    problem = "delivery-closed"


class ConfirmationRejected(DeliveryConflict):
    """The confirmation is not the kind the delivery requires."""

    problem = "confirmation-rejected"


class NotifyLimitReached(DeliveryConflict):
    """The delivery holds as many notify-me requests as it may."""

    problem = "notify-limit-reached"


class DeliveryContended(DomainError):
    """Other requests kept changing the delivery; the client retries."""

    status = 503
    problem = "delivery-contended"

    def __init__(self, delivery_id: str) -> None:
        super().__init__(
            f"Delivery {delivery_id} is being changed by other requests; retry.", retry_after=1
        )


class TooManyWatchers(DomainError):
    """This replica serves as many tracking streams as it may; the client retries (another
    replica may take it)."""

    status = 503
    problem = "too-many-watchers"


class OwnerRequired(DomainError):
    """A list of deliveries without a token naming the user needs ``ownerId``."""

    problem = "owner-required"


class BadCursor(DomainError):
    """The ``cursor`` of a list is not one this service gave."""

    problem = "bad-cursor"


class OthersDeliveries(DomainError):
    """A caller asked for another owner's list without the Operator role."""

    status = 403
    problem = "not-your-deliveries"
